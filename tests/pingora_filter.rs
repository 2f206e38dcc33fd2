//! The Pingora mount, end to end: a real Pingora server on loopback (started with
//! `sf_models_bridge::pingora::spawn_gateway`) around a stand-in bridge service (or the real
//! bridge, where its limits are the point), a plain HTTP upstream for the other paths, and clients
//! speaking real HTTP (reqwest, or raw TCP where the exact bytes and their timing are the point).
#![cfg(feature = "pingora")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use sf_models_bridge::pingora::{spawn_gateway, RunningGateway, SessionBody};
use sf_models_bridge::{Config, SalesforceLayer, Upstream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tower::util::BoxCloneSyncService;
use tower::Layer;

type Bridge = BoxCloneSyncService<
    Request<SessionBody>,
    Response<UnsyncBoxBody<Bytes, Infallible>>,
    Infallible,
>;

const LIMIT: usize = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The stand-in bridge and the upstream
// ---------------------------------------------------------------------------------------------

/// Stands in for the core's Tower service:
/// - `POST /v1/chat/completions` with `x-test-stream`: reads the body, then answers an event
///   stream, four frames 200 ms apart;
/// - `GET /v1/models`: a small JSON body with no `Content-Length` (the mount must add it);
/// - `GET /health` with `x-test-delay-ms`: answers after that delay;
/// - anything else: echoes the request body, with `Content-Length`, and what it saw in headers
///   (a body that cannot be read: 400).
///
/// It has no body limits: the tests of limits use the real bridge (see [`bridge_gateway`]).
fn bridge() -> Bridge {
    BoxCloneSyncService::new(tower::service_fn(
        |request: Request<SessionBody>| async move {
            let path = request.uri().path().to_owned();
            let response = if path == "/v1/chat/completions"
                && request.headers().contains_key("x-test-stream")
            {
                // Read first, as the bridge reads a request before it streams the answer.
                request.into_body().collect().await.ok();
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(event_stream())
            } else if path == "/v1/models" {
                Response::builder()
                    .header("content-type", "application/json")
                    .body(full(r#"{"object":"list","data":[]}"#))
            } else if path == "/health" {
                let delay = request
                    .headers()
                    .get("x-test-delay-ms")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Response::builder().body(full(r#"{"status":"ok"}"#))
            } else {
                let method = request.method().to_string();
                let content_type = request.headers().get("content-type").cloned();
                let Ok(body) = request.into_body().collect().await else {
                    return Ok(Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(full("unreadable body"))
                        .unwrap());
                };
                let body = body.to_bytes();
                let mut builder = Response::builder()
                    .header("content-length", body.len())
                    .header("x-seen-method", method);
                if let Some(value) = content_type {
                    builder = builder.header("x-seen-content-type", value);
                }
                builder.body(Full::new(body).boxed_unsync())
            };
            Ok::<_, Infallible>(response.unwrap())
        },
    ))
}

fn full(text: &'static str) -> UnsyncBoxBody<Bytes, Infallible> {
    Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync()
}

/// A keep-alive comment, then three events, 200 ms apart, like the core's emulated streams.
fn event_stream() -> UnsyncBoxBody<Bytes, Infallible> {
    let frames = futures_util::stream::unfold(0u32, |n| async move {
        if n == 4 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = match n {
            0 => ": keep-alive\n\n".to_owned(),
            n => format!("data: {{\"n\":{n}}}\n\n"),
        };
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(text))), n + 1))
    });
    StreamBody::new(frames).boxed_unsync()
}

/// A plain HTTP/1 upstream that answers `upstream saw METHOD PATH?QUERY: BODY`.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let head = format!("upstream saw {} {}: ", request.method(), request.uri());
                        let body = request.into_body().collect().await?.to_bytes();
                        let mut text = head.into_bytes();
                        text.extend_from_slice(&body);
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                    .ok();
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Starting gateways
// ---------------------------------------------------------------------------------------------

fn config(pingora: &str) -> Config {
    let text = format!(
        r#"
        [server]
        body_read_timeout_secs = 1

        [salesforce]
        api_base = "http://127.0.0.1:1/einstein/platform/v1"
        token_url = "http://127.0.0.1:1/services/oauth2/token"
        client_id = "id"
        client_secret = "secret"
        max_request_bytes = {LIMIT}

        [pingora]
        {pingora}

        [[routes]]
        model = "gpt-4o-mini"
        salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
        "#
    );
    Config::from_toml_with_env(&text, |_| None).unwrap()
}

/// A gateway whose other paths go to a fresh upstream.
async fn gateway() -> RunningGateway {
    let upstream = upstream().await;
    spawn_gateway(&config(&format!("upstream = \"{upstream}\"")), bridge())
        .await
        .unwrap()
}

/// A gateway around the real bridge (no route of it is reachable: only answers given before the
/// upstream are tested with it), with the body limits of [`config`] and, when `key` is set, an API
/// key to present.
async fn bridge_gateway(key: Option<&str>) -> RunningGateway {
    let auth = key.map_or(String::new(), |key| {
        format!("[auth]\napi_keys = [\"{key}\"]")
    });
    let config = config(&auth);
    let layer = SalesforceLayer::new(&config).unwrap();
    let bridge = layer.layer(Upstream::new(&config.salesforce).unwrap());
    spawn_gateway(&config, bridge).await.unwrap()
}

fn url(gateway: &RunningGateway, path: &str) -> String {
    format!("http://{}{path}", gateway.local_addr())
}

fn error_code(body: &[u8]) -> (String, String) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    let error = &value["error"];
    assert!(
        error.get("message").is_some_and(|m| m.is_string()),
        "{value}"
    );
    assert!(error.get("param").is_some(), "{value}");
    (
        error["type"].as_str().unwrap().to_owned(),
        error["code"].as_str().unwrap().to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client, for exact bytes and timings
// ---------------------------------------------------------------------------------------------

/// One client connection: a reader for responses, a writer for requests.
struct Raw {
    reader: Reader,
    writer: OwnedWriteHalf,
}

struct Reader(BufReader<OwnedReadHalf>);

struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

impl Raw {
    async fn connect(gateway: &RunningGateway) -> Self {
        let (read, writer) = TcpStream::connect(gateway.local_addr())
            .await
            .unwrap()
            .into_split();
        Self {
            reader: Reader(BufReader::new(read)),
            writer,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn line(&mut self) -> String {
        self.reader.line().await
    }

    async fn response(&mut self) -> RawResponse {
        self.reader.response().await
    }
}

impl Reader {
    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        line
    }

    /// Reads one response: status line, headers, and a body framed by length or chunks.
    async fn response(&mut self) -> RawResponse {
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"))
            .parse()
            .unwrap();
        let mut head = String::new();
        loop {
            let line = self.line().await;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut response = RawResponse {
            status,
            head,
            body: Vec::new(),
        };
        if let Some(length) = response.header("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.0.read_exact(&mut body).await.unwrap();
            response.body = body;
        } else if response.header("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let size = usize::from_str_radix(self.line().await.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.0.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk[..size]);
            }
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn other_paths_are_proxied_to_the_upstream_intact() {
    let gateway = gateway().await;
    let response = reqwest::Client::new()
        .post(url(&gateway, "/app/echo?x=1"))
        .body("ping")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "upstream saw POST /app/echo?x=1: ping"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn bridge_sees_method_headers_and_body() {
    let gateway = gateway().await;
    let response = reqwest::Client::new()
        .post(url(&gateway, "/v1/completions"))
        .header("content-type", "application/json")
        .body(r#"{"model":"gpt-4o-mini"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-seen-method"], "POST");
    assert_eq!(
        response.headers()["x-seen-content-type"],
        "application/json"
    );
    assert_eq!(response.text().await.unwrap(), r#"{"model":"gpt-4o-mini"}"#);
}

#[tokio::test]
async fn two_megabyte_bodies_pass_both_ways() {
    let gateway = gateway().await;
    let body: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let response = reqwest::Client::new()
        .post(url(&gateway, "/v1/completions"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(body.len() as u64));
    assert!(response.bytes().await.unwrap() == body);
}

#[tokio::test]
async fn response_without_length_gets_one() {
    let gateway = gateway().await;
    let response = reqwest::get(url(&gateway, "/v1/models")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(27));
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"object":"list","data":[]}"#
    );
}

#[tokio::test]
async fn expect_continue_is_answered_without_a_stall() {
    let gateway = gateway().await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let started = Instant::now();
    let line = tokio::time::timeout(Duration::from_millis(500), raw.line())
        .await
        .expect("no 100 Continue within 500 ms");
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(raw.line().await, "\r\n");
    raw.send(b"hello").await;
    let response = raw.response().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
}

#[tokio::test]
async fn declared_body_over_the_limit_is_refused_at_once() {
    let gateway = bridge_gateway(None).await;
    // Only the header is sent: the 413 must not wait for a body.
    let mut raw = Raw::connect(&gateway).await;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    raw.send(head.as_bytes()).await;
    let response = tokio::time::timeout(Duration::from_secs(1), raw.response())
        .await
        .expect("no 413 within 1 s");
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert_eq!(
        error_code(&response.body),
        (
            "invalid_request_error".to_owned(),
            "request_too_large".to_owned()
        )
    );

    // A client that sends the whole oversized body anyway still gets to read the 413.
    let response = reqwest::Client::new()
        .post(url(&gateway, "/v1/completions"))
        .body(vec![b'x'; LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, code) = error_code(&response.bytes().await.unwrap());
    assert_eq!(code, "request_too_large");
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_refused() {
    let gateway = bridge_gateway(None).await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    let Raw {
        mut reader,
        writer: mut write,
    } = raw;
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..5 {
            if write.write_all(b"100000\r\n").await.is_err()
                || write.write_all(&chunk).await.is_err()
                || write.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        write.write_all(b"0\r\n\r\n").await.ok();
    });
    let response = reader.response().await;
    assert_eq!(response.status, 413);
    assert_eq!(error_code(&response.body).1, "request_too_large");
    writer.await.unwrap();
}

/// The key of [`bridge_gateway`]s that want one.
const KEY: &str = "sk-pingora-filter";

/// A caller without a key that declares a large body and waits for `100 Continue`: the bridge
/// answers 401 from the head, and the client is never invited to upload.
#[tokio::test]
async fn no_key_with_expect_continue_gets_401_without_100_continue() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let response = tokio::time::timeout(Duration::from_secs(1), raw.response())
        .await
        .expect("no answer within 1 s");
    assert_eq!(response.status, 401, "{}", response.head);
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert_eq!(error_code(&response.body).1, "invalid_api_key");
    // Nothing else follows: the connection is closed at once, not lingered on.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), raw.reader.0.read_to_end(&mut rest))
        .await
        .expect("closed at once")
        .ok();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// A caller without a key that sends its body is answered before it has sent most of it: the
/// gateway waited for no body byte. The rest is drained, so the client reads its 401 whole.
#[tokio::test]
async fn no_key_is_answered_before_the_body_is_sent() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n{\"model\":")
        .await;
    let response = tokio::time::timeout(Duration::from_secs(1), raw.response())
        .await
        .expect("no answer before the body was sent");
    assert_eq!(response.status, 401);
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert_eq!(error_code(&response.body).1, "invalid_api_key");
    // The client sends the rest anyway, and the gateway closes once it has it.
    raw.send(&vec![b' '; 100000 - 9]).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), raw.reader.0.read_to_end(&mut rest))
        .await
        .expect("closed after the rest")
        .unwrap();
    assert!(rest.is_empty());
}

/// A refused upload does not keep its Pingora session (and the tens of KB of state that go with
/// it) while it lingers: the answer is followed at once by the end of the connection's sending
/// side, and what the client still sends is drained in the background, not reset.
#[tokio::test]
async fn a_refused_upload_lingers_without_its_session() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n{\"model\":")
        .await;
    let response = tokio::time::timeout(Duration::from_secs(1), raw.response())
        .await
        .expect("no answer before the body was sent");
    assert_eq!(response.status, 401);
    // The session ended with its answer: no waiting for the rest of the body, or for the linger.
    let mut rest = Vec::new();
    tokio::time::timeout(
        Duration::from_millis(500),
        raw.reader.0.read_to_end(&mut rest),
    )
    .await
    .expect("the answer's connection ended at once")
    .unwrap();
    assert!(rest.is_empty());
    // The client, still uploading, is read rather than reset (a reset fails these writes).
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..32 {
        raw.send(&chunk).await;
    }
}

/// An authorised request that expects `100 Continue` gets it, sends its body, and gets the answer
/// to that body (here: its model is not routed).
#[tokio::test]
async fn authorised_expect_continue_gets_100_continue_then_the_answer() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let body = r#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#;
    let mut raw = Raw::connect(&gateway).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    raw.send(head.as_bytes()).await;
    let line = tokio::time::timeout(Duration::from_millis(500), raw.line())
        .await
        .expect("no 100 Continue within 500 ms");
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    assert_eq!(raw.line().await, "\r\n");
    raw.send(body.as_bytes()).await;
    let response = raw.response().await;
    assert_eq!(response.status, 404);
    assert_eq!(error_code(&response.body).1, "model_not_found");
    assert!(String::from_utf8_lossy(&response.body).contains("gpt-9"));
}

/// A declared length over the limit, with a valid key and `Expect: 100-continue`: the bridge's
/// 413 from the head, and no `100 Continue`.
#[tokio::test]
async fn declared_body_over_the_limit_with_a_key_gets_413_without_100_continue() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let mut raw = Raw::connect(&gateway).await;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        LIMIT + 1
    );
    raw.send(head.as_bytes()).await;
    let response = tokio::time::timeout(Duration::from_secs(1), raw.response())
        .await
        .expect("no answer within 1 s");
    assert_eq!(response.status, 413, "{}", response.head);
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert_eq!(error_code(&response.body).1, "request_too_large");
}

/// A body that stops mid-way gets the bridge's 408 when its body deadline
/// (`body_read_timeout_secs = 1`) passes, and the connection is closed after a short linger
/// (one second at most, for a client still uploading to read its answer).
#[tokio::test]
async fn stalled_body_gets_the_bridges_408() {
    let gateway = bridge_gateway(Some(KEY)).await;
    let mut raw = Raw::connect(&gateway).await;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: 100\r\n\r\n{{\"model\":"
    );
    let started = Instant::now();
    raw.send(head.as_bytes()).await;
    let response = tokio::time::timeout(Duration::from_secs(3), raw.response())
        .await
        .expect("no answer within 3 s");
    assert_eq!(response.status, 408);
    assert_eq!(error_code(&response.body).1, "request_timeout");
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    let mut rest = Vec::new();
    tokio::time::timeout(
        Duration::from_millis(1500),
        raw.reader.0.read_to_end(&mut rest),
    )
    .await
    .expect("closed after the short linger")
    .ok();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(3200),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn event_stream_arrives_chunk_by_chunk() {
    let gateway = gateway().await;
    let mut response = reqwest::Client::new()
        .post(url(&gateway, "/v1/chat/completions"))
        .header("x-test-stream", "1")
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response.content_length().is_none());
    assert_eq!(
        response.headers().get("transfer-encoding"),
        Some(&HeaderValue::from_static("chunked"))
    );
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push((Instant::now(), chunk));
    }
    assert!(
        chunks.len() >= 3,
        "one blob instead of a stream: {chunks:?}"
    );
    let spread = chunks.last().unwrap().0 - chunks.first().unwrap().0;
    assert!(
        spread >= Duration::from_millis(400),
        "chunks arrived together: {spread:?}"
    );
    let text: Vec<u8> = chunks
        .iter()
        .flat_map(|(_, chunk)| chunk.to_vec())
        .collect();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        ": keep-alive\n\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\n"
    );
}

#[tokio::test]
async fn trickling_body_is_cut_off_by_the_deadline() {
    let gateway = bridge_gateway(None).await;
    let mut raw = Raw::connect(&gateway).await;
    raw.send(b"POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .await;
    let started = Instant::now();
    let Raw {
        mut reader,
        writer: mut write,
    } = raw;
    // One byte every 100 ms: every single read is quick, the whole body never arrives in time.
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let response = reader.response().await;
    assert_eq!(response.status, 408);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(error_code(&response.body).1, "request_timeout");
    trickle.abort();
}

#[tokio::test]
async fn keep_alive_connection_serves_bridge_and_proxied_requests() {
    let gateway = gateway().await;
    let mut raw = Raw::connect(&gateway).await;

    raw.send(b"GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let models = raw.response().await;
    assert_eq!(models.status, 200);
    assert_eq!(models.header("connection").as_deref(), Some("keep-alive"));

    raw.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nx-test-stream: 1\r\nContent-Length: 2\r\n\r\n{}")
        .await;
    let stream = raw.response().await;
    assert_eq!(stream.status, 200);
    assert!(stream.body.ends_with(b"data: {\"n\":3}\n\n"));

    raw.send(b"GET /app HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let proxied = raw.response().await;
    assert_eq!(proxied.status, 200);
    assert_eq!(proxied.body, b"upstream saw GET /app: ");

    raw.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(raw.response().await.status, 200);
}

#[tokio::test]
async fn without_upstream_other_paths_get_a_404_envelope() {
    let gateway = spawn_gateway(&config(""), bridge()).await.unwrap();
    let response = reqwest::get(url(&gateway, "/nope")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/json");
    let (kind, code) = error_code(&response.bytes().await.unwrap());
    assert_eq!(
        (kind.as_str(), code.as_str()),
        ("invalid_request_error", "not_found")
    );

    let health = reqwest::get(url(&gateway, "/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    gateway.stop().await;
}

/// The 404 quotes the path as the service's own 404 does: 200 characters at most, so a 10 KB path
/// does not come back whole.
#[tokio::test]
async fn the_404_quotes_a_long_path_cut_short() {
    let gateway = spawn_gateway(&config(""), bridge()).await.unwrap();
    let path = format!("/{}", "p".repeat(10 * 1024));
    let response = reqwest::get(url(&gateway, &path)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let value: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let message = value["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Invalid URL (GET /ppp"), "{message}");
    assert!(
        message.chars().count() < 250,
        "{} characters",
        message.len()
    );
    gateway.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    // conf/pingora.yaml: grace_period_seconds 3.
    let server_conf = format!(
        "server_conf = \"{}/conf/pingora.yaml\"",
        env!("CARGO_MANIFEST_DIR")
    );
    let gateway = spawn_gateway(&config(&server_conf), bridge())
        .await
        .unwrap();
    let addr = gateway.local_addr();
    let slow = tokio::spawn(
        reqwest::Client::new()
            .get(format!("http://{addr}/health"))
            .header("x-test-delay-ms", "1500")
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let shutdown = tokio::spawn(gateway.shutdown());

    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown began"
    );

    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown did not finish")
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the grace period was not waited"
    );
}

/// A plain HTTP/1 upstream that answers with the request's headers, one `name: value` a line.
async fn header_echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let mut text = String::new();
                        for (name, value) in request.headers() {
                            let value = String::from_utf8_lossy(value.as_bytes());
                            text.push_str(&format!("{name}: {value}\n"));
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                    .ok();
            });
        }
    });
    addr
}

/// The caller's keys are the bridge's: the ready-made gateway keeps `Authorization`, `api-key`
/// and `x-api-key` from the upstream of other paths, unless told otherwise.
#[tokio::test]
async fn callers_keys_are_not_proxied_to_the_upstream() {
    let upstream = header_echo_upstream().await;
    let seen_upstream = |gateway: &RunningGateway| {
        let url = url(gateway, "/app/whoami");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("authorization", "Bearer sk-caller-secret")
                .header("api-key", "sk-caller-secret")
                .header("x-api-key", "sk-caller-secret")
                .header("x-other", "kept")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };

    let stripping = spawn_gateway(&config(&format!("upstream = \"{upstream}\"")), bridge())
        .await
        .unwrap();
    let seen = seen_upstream(&stripping).await;
    assert!(seen.contains("x-other: kept\n"), "{seen}");
    assert!(!seen.contains("sk-caller-secret"), "{seen}");
    stripping.stop().await;

    let forwarding = config(&format!(
        "upstream = \"{upstream}\"\nstrip_caller_credentials = false"
    ));
    let forwarding = spawn_gateway(&forwarding, bridge()).await.unwrap();
    let seen = seen_upstream(&forwarding).await;
    for name in ["authorization: Bearer ", "api-key: ", "x-api-key: "] {
        assert!(
            seen.contains(&format!("{name}sk-caller-secret\n")),
            "{seen}"
        );
    }
    forwarding.stop().await;
}
