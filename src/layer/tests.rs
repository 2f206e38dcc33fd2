//! Service tests: the real layer over a scripted upstream and a counting token source; no sockets.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::{Layer, Service, ServiceExt};

use super::SalesforceLayer;
use crate::config::Config;
use crate::token::{AccessToken, FetchedToken, TokenError, TokenSource};
use crate::upstream::{UpstreamBody, UpstreamError, UpstreamService};

const CONF: &str = r#"
    [salesforce]
    api_base = "http://upstream.test/einstein/platform/v1"
    token_url = "http://upstream.test/services/oauth2/token"
    client_id = "id"
    client_secret = "secret"
    stream_keepalive_secs = 1
    max_request_bytes = 1000

    [retry]
    base_delay_ms = 1
    max_delay_ms = 10

    [[routes]]
    model = "gpt-4o-mini"
    salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
"#;

/// Hands out `token-1`, `token-2`, ... and counts fetches.
#[derive(Clone, Default)]
struct CountingTokens(Arc<AtomicU32>);

impl TokenSource for CountingTokens {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            Ok(FetchedToken {
                token: AccessToken::new(format!("token-{n}")),
                lifetime: Duration::from_secs(1800),
            })
        })
    }
}

/// What the scripted upstream saw: (authorization, uri, body).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

fn upstream(answers: Vec<(u16, &'static str)>) -> (impl UpstreamService, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let service = tower::service_fn(move |request: Request<Bytes>| {
        let auth = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        log.lock().unwrap().push((
            auth,
            request.uri().to_string(),
            String::from_utf8(request.body().to_vec()).unwrap(),
        ));
        let (status, body) = answers.lock().unwrap().next().unwrap_or((200, CHAT_OK));
        async move { Ok::<_, UpstreamError>(answer(status, body)) }
    });
    (service, seen)
}

/// The Models API's `x-request-id` on every scripted answer, as the real API sends one.
const UPSTREAM_ID: &str = "sf-req-1";

fn answer(status: u16, body: &'static str) -> Response<UpstreamBody> {
    let mut response = Response::new(UpstreamBody::whole(body.as_bytes()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("x-request-id", UPSTREAM_ID.parse().unwrap());
    response
}

const CHAT_OK: &str = r#"{"id":"up-1","generationDetails":{"generations":[{"content":"Hello!","parameters":{"finish_reason":"stop"}}],"parameters":{"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}}}"#;

fn bridge(
    answers: Vec<(u16, &'static str)>,
    conf: &str,
) -> (
    impl Service<Request<Full<Bytes>>, Response = Response<super::BridgeBody>, Error = Infallible>
        + Clone,
    Seen,
    CountingTokens,
) {
    let config = Config::from_toml_with_env(conf, |_| None).unwrap();
    let tokens = CountingTokens::default();
    let layer = SalesforceLayer::builder(&config)
        .token_source(tokens.clone())
        .build()
        .unwrap();
    let (upstream, seen) = upstream(answers);
    (layer.layer(upstream), seen, tokens)
}

fn post(path: &str, body: Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn send(
    service: impl Service<
        Request<Full<Bytes>>,
        Response = Response<super::BridgeBody>,
        Error = Infallible,
    >,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, String) {
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn chat_body() -> Value {
    json!({"model": "gpt-4o-mini", "temperature": 0.3,
           "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn chat_completion_round_trip() {
    let (service, seen, tokens) = bridge(vec![], CONF);
    let (status, headers, body) = send(service, post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["usage"]["total_tokens"], 5);
    assert_eq!(headers["x-sfbridge-ignored-params"], "temperature");
    assert!(headers.contains_key("x-request-id"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "Bearer token-1");
    assert_eq!(
        seen[0].1,
        "http://upstream.test/einstein/platform/v1/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations"
    );
    assert_eq!(
        seen[0].2,
        r#"{"messages":[{"role":"user","content":"Hi"}]}"#
    );
    assert_eq!(tokens.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_refreshes_once_and_resends() {
    let (service, seen, tokens) = bridge(vec![(401, "{}"), (200, CHAT_OK)], CONF);
    let (status, _, body) = send(service, post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 200, "{body}");
    let seen = seen.lock().unwrap();
    let auths: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(auths, ["Bearer token-1", "Bearer token-2"]);
    assert_eq!(tokens.0.load(Ordering::SeqCst), 2);
}

/// The resend after a 401 retries the 401'd attempt: `retries` counts it, so attempts minus
/// retries is the number of requests that reached the upstream.
#[tokio::test]
async fn the_resend_after_a_401_counts_as_a_retry() {
    let (service, _, _) = bridge(vec![(401, "{}"), (200, CHAT_OK)], CONF);
    let get = |path: &str| Request::get(path).body(Full::default()).unwrap();
    let (status, _, body) = send(service.clone(), post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, summary) = send(service.clone(), get("/metrics/performance")).await;
    let upstream = &serde_json::from_str::<Value>(&summary).unwrap()["upstream"];
    assert_eq!(
        (&upstream["attempts"], &upstream["retries"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(upstream["by_outcome"]["unauthorized"], 1);
    let (_, _, text) = send(service, get("/metrics")).await;
    assert!(
        text.contains(r#"sfbridge_upstream_retries_total{reason="unauthorized"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_second_401_is_a_502_not_a_loop() {
    let (service, seen, _) = bridge(vec![(401, "{}"), (401, "{}"), (401, "{}")], CONF);
    let (status, _, body) = send(service, post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_model_lists_the_configured_ones() {
    let (service, seen, _) = bridge(vec![], CONF);
    let mut body = chat_body();
    body["model"] = json!("gpt-9");
    let (status, _, body) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o-mini"));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_model_names_are_bounded_and_one_line() {
    // The name was cut but kept its line breaks, which reached the `request refused` log.
    let (service, _, _) = bridge(vec![], CONF);
    let mut body = chat_body();
    body["model"] = json!(format!("gpt\nINFO forged\r\x1b[31m{}", "m".repeat(500)));
    let (status, _, body) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.chars().any(char::is_control), "{message}");
    assert!(
        message.starts_with("The model `gpt INFO forged  [31mmmm"),
        "{message}"
    );
    assert!(message.contains("m…` does not exist"), "{message}");
}

#[tokio::test]
async fn refusals_never_reach_the_upstream() {
    let (service, seen, _) = bridge(vec![], CONF);
    let cases = [
        (
            post("/v1/chat/completions", json!({"model": "gpt-4o-mini"})),
            400,
        ),
        (
            post(
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "messages": [], "tools": [{}]}),
            ),
            400,
        ),
        (
            post(
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(2000)}]}),
            ),
            413,
        ),
        (
            Request::get("/v1/chat/completions")
                .body(Full::default())
                .unwrap(),
            405,
        ),
        (Request::get("/nope").body(Full::default()).unwrap(), 404),
        (post("/v1/chat/completions", json!("not an object")), 400),
    ];
    for (request, expected) in cases {
        let (status, _, body) = send(service.clone(), request).await;
        assert_eq!(status, expected, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deep_nesting_anywhere_is_a_400_even_where_the_parser_skips() {
    let (service, seen, tokens) = bridge(vec![], CONF);
    // 300 levels fit in `max_request_bytes = 1000`; 128 is the limit.
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    for body in [
        format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"x"}}],"metadata":{nested}}}"#
        ),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"x","name":{nested}}}]}}"#
        ),
    ] {
        let request = Request::post("/v1/chat/completions")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let (status, _, body) = send(service.clone(), request).await;
        assert_eq!(status, 400, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_json");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("nested deeper than 128 levels at line 1 column"),
            "{message}"
        );
    }
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(tokens.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rate_limits_are_retried_then_mapped_to_429() {
    let limited = r#"{"errorCode":"LIMIT_EXCEEDED","message":"slow down"}"#;
    let (service, seen, _) = bridge(vec![(429, limited); 5], CONF);
    let (status, _, body) = send(service, post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_stream_is_openai_events() {
    let (service, _, _) = bridge(vec![], CONF);
    let mut body = chat_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, headers, text) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 5, "{text}");
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    assert!(events[1].contains(r#""content":"Hello!""#));
}

/// Every log line written while it is the thread's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Logs {
    type Writer = Logs;

    fn make_writer(&self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn an_oversized_upstream_id_is_replaced_in_answers_and_every_event() {
    let long_id = "x".repeat(64 * 1024);
    let answer: &'static str = CHAT_OK.replace("up-1", &long_id).leak();
    for stream in [false, true] {
        let (service, _, _) = bridge(vec![(200, answer)], CONF);
        let mut body = chat_body();
        body["stream"] = json!(stream);
        let (status, headers, text) = send(service, post("/v1/chat/completions", body)).await;
        assert_eq!(status, 200, "{text}");
        assert!(!text.contains("xxxx"), "stream: {stream}");
        let fallback = format!("chatcmpl-{}", headers["x-request-id"].to_str().unwrap());
        assert!(text.contains(&format!(r#""id":"{fallback}""#)), "{text}");
    }
}

/// A stream request whose upstream answers a 400 after 3.5 s: its status, headers and body.
async fn slow_stream(config: &Config) -> (StatusCode, http::HeaderMap, String) {
    let layer = SalesforceLayer::builder(config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let slow = tower::service_fn(|_: Request<Bytes>| async {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        Ok::<_, UpstreamError>(answer(400, "{}"))
    });
    let mut body = chat_body();
    body["stream"] = json!(true);
    send(layer.layer(slow), post("/v1/chat/completions", body)).await
}

#[tokio::test(start_paused = true)]
async fn a_slow_stream_sends_keepalives_then_its_error() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let (status, headers, text) = slow_stream(&config).await;
    assert_eq!(status, 200);
    // The headers left before the upstream answered: its id is in the request's log instead.
    assert!(!headers.contains_key("x-salesforce-request-id"));
    let logs = logs.text();
    let refused = logs
        .lines()
        .find(|line| line.contains("error=Salesforce answered 400"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        refused.contains(&format!("upstream_request_id=\"{UPSTREAM_ID}\"")),
        "{refused}"
    );
    assert!(
        text.starts_with(": keep-alive\n\n: keep-alive\n\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}\n\n"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
}

#[tokio::test(start_paused = true)]
async fn a_zero_keepalive_set_in_code_does_not_panic() {
    // The conf file refuses 0, but a SalesforceConfig built in code can hold it, and Tokio's
    // interval panics on a zero period.
    let mut config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    config.salesforce.stream_keepalive = Duration::ZERO;
    let (status, _, text) = slow_stream(&config).await;
    assert_eq!(status, 200);
    assert!(
        text.starts_with(": keep-alive\n\n: keep-alive\n\n"),
        "{text}"
    );
    assert!(text.contains("invalid_request_error"), "{text}");
}

#[tokio::test]
async fn every_answer_after_the_upstream_carries_its_request_id() {
    // Only successful JSON answers carried it: support cases need it for errors most of all.
    let invalid = r#"{"errorCode":"BAD_ARGUMENT","message":"no"}"#;
    let cases = [
        ("success", vec![(200, CHAT_OK)], false, 200),
        ("upstream error status", vec![(400, invalid)], false, 400),
        ("malformed answer", vec![(200, "<html>")], false, 502),
        ("answer with no text", vec![(200, "{}")], false, 502),
        ("stream failing at once", vec![(400, invalid)], true, 400),
        ("stream with no text", vec![(200, "{}")], true, 502),
    ];
    for (case, answers, stream, want) in cases {
        let (service, _, _) = bridge(answers, CONF);
        let mut body = chat_body();
        body["stream"] = json!(stream);
        let (status, headers, text) = send(service, post("/v1/chat/completions", body)).await;
        assert_eq!(status, want, "{case}: {text}");
        assert_eq!(
            headers
                .get("x-salesforce-request-id")
                .map(|id| id.to_str().unwrap()),
            Some(UPSTREAM_ID),
            "{case}"
        );
    }
    let (service, _, _) = bridge(vec![], CONF);
    let mut body = chat_body();
    body["model"] = json!("unrouted");
    let (status, headers, _) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 404);
    assert!(
        !headers.contains_key("x-salesforce-request-id"),
        "refused before any upstream answer"
    );
}

#[tokio::test]
async fn local_endpoints() {
    let (service, _, _) = bridge(vec![], CONF);
    let get = |path: &str| Request::get(path).body(Full::default()).unwrap();
    let (status, _, body) = send(service.clone(), get("/v1/models")).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "salesforce"}]})
    );
    let (status, _, _) = send(service.clone(), get("/health")).await;
    assert_eq!(status, 200);
    let (status, _, body) = send(service.clone(), get("/ready")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"ready"}"#)
    );
    let (status, headers, body) = send(service, get("/metrics")).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(body.contains("sfbridge_requests_total"));
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let config_text = CONF.replace("[[routes]]", "[auth]\napi_keys = [\"k1\"]\n\n[[routes]]");
    let (service, seen, _) = bridge(vec![], &config_text);
    let (status, _, body) = send(service.clone(), post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 401, "{body}");
    let mut request = post("/v1/chat/completions", chat_body());
    request
        .headers_mut()
        .insert("x-api-key", "k1".parse().unwrap());
    let (status, _, _) = send(service.clone(), request).await;
    assert_eq!(status, 200);
    // The caller's key never travels upstream.
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|(auth, _, _)| !auth.contains("k1")));
    let (status, _, _) = send(
        service,
        Request::get("/health").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}

/// Compiles only if the bridge has the bounds axum's `route_service` and the Pingora filter need.
#[test]
fn the_bridge_has_the_bounds_its_mounts_need() {
    fn assert_mountable<S>()
    where
        S: Service<
                Request<Full<Bytes>>,
                Response = Response<super::BridgeBody>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
    }
    fn assert_body<B: http_body::Body<Data = Bytes> + Send + 'static>() {}
    assert_mountable::<super::Salesforce<crate::upstream::Upstream>>();
    assert_body::<super::BridgeBody>();
}

#[tokio::test]
async fn the_final_429_passes_retry_after_on() {
    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    // 7 s is beyond `max_delay_ms`, so the bridge gives up at once and the caller should wait.
    let limited = tower::service_fn(|_: Request<Bytes>| async {
        let mut response = Response::new(UpstreamBody::whole(&b"{}"[..]));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert("retry-after", "7".parse().unwrap());
        Ok::<_, UpstreamError>(response)
    });
    let (status, headers, _) = send(
        layer.layer(limited),
        post("/v1/chat/completions", chat_body()),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
}

/// An application that answers `/health` itself keeps it; the bridge still answers its other paths.
#[cfg(feature = "mock")]
#[tokio::test]
async fn the_app_keeps_the_endpoints_the_mount_excepts() {
    use crate::{Endpoint, SalesforceRoutesLayer};

    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let (upstream, _) = upstream(vec![]);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "the app's own" }))
        .layer(SalesforceRoutesLayer::new(layer.layer(upstream)).except([Endpoint::Health]));
    let get = |path: &str| Request::get(path).body(axum::body::Body::empty()).unwrap();
    let text = |response: Response<_>| async move {
        let body: axum::body::Body = axum::body::Body::new(response.into_body());
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };

    let health = app.clone().oneshot(get("/health")).await.unwrap();
    assert_eq!(text(health).await, "the app's own");
    let models = app.oneshot(get("/v1/models")).await.unwrap();
    assert_eq!(models.status(), StatusCode::OK);
    assert!(text(models).await.contains(r#""id":"gpt-4o-mini""#));
}

/// A row added to the endpoint table without saying `open` is served only with a key: the key
/// check is the table's default, not a list kept somewhere else.
#[tokio::test]
async fn a_new_row_needs_a_key_unless_it_says_open() {
    use crate::endpoint::{Endpoint, Handler, Row};
    let config = Config::from_toml_with_env(
        &format!("{CONF}\n[auth]\napi_keys = [\"sk-test\"]\n"),
        |_| None,
    )
    .unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let (upstream, _) = upstream(vec![]);
    let bridge = layer.layer(upstream);
    let serve = |row: Row, key: Option<&str>| {
        let mut request = Request::get("/v1/new")
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Some(key) = key {
            let value = format!("Bearer {key}").parse().unwrap();
            request.headers_mut().insert("authorization", value);
        }
        let id = http::HeaderValue::from_static("id-1");
        bridge.serve(
            Endpoint::Health,
            row,
            request,
            tokio::time::Instant::now(),
            id,
        )
    };
    let new_row = || Row::get("/v1/new", "new", Handler::Health);

    let Ok(response) = serve(new_row(), None).await;
    assert_eq!(response.status(), 401);
    let Ok(response) = serve(new_row(), Some("sk-wrong")).await;
    assert_eq!(response.status(), 401);
    let Ok(response) = serve(new_row(), Some("sk-test")).await;
    assert_eq!(response.status(), 200);
    let Ok(response) = serve(new_row().open(), None).await;
    assert_eq!(response.status(), 200);
}

/// What the route's surface cannot do is a 400 that names the route and its surface.
#[tokio::test]
async fn surface_refusals_name_the_route_and_the_surface() {
    let (service, seen, _) = bridge(vec![], CONF);
    let mut body = chat_body();
    body["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    let (status, _, body) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("route `gpt-4o-mini` (surface `einstein`): `tools`"),
        "{message}"
    );
    assert_eq!(body["error"]["param"], "tools");
    assert!(seen.lock().unwrap().is_empty());
}

/// A conf whose one route is a Claude model on the `bedrock` surface.
fn bedrock_conf() -> String {
    CONF.replace(
        r#"salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini""#,
        "salesforce_model = \"sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet\"\nsurface = \"bedrock\"\ndefault_max_tokens = 512",
    )
}

/// A scripted upstream answering every call with `body` and `content_type`.
fn bedrock_upstream(body: Vec<u8>, content_type: &'static str) -> (impl UpstreamService, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let body = Bytes::from(body);
    let service = tower::service_fn(move |request: Request<Bytes>| {
        log.lock().unwrap().push((
            String::new(),
            request.uri().to_string(),
            String::from_utf8(request.body().to_vec()).unwrap(),
        ));
        let mut response = Response::new(UpstreamBody::whole(body.clone()));
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        async move { Ok::<_, UpstreamError>(response) }
    });
    (service, seen)
}

fn bedrock_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The spec's stream fixture, one event-stream frame per event.
fn bedrock_stream() -> Vec<u8> {
    bedrock_fixture("native.bedrock.stream.events.jsonl")
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .flat_map(crate::eventstream::chunk_frame)
        .collect()
}

async fn bedrock_chat(body: Vec<u8>, content_type: &'static str, stream: bool) -> (String, Seen) {
    let config = Config::from_toml_with_env(&bedrock_conf(), |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let (upstream, seen) = bedrock_upstream(body, content_type);
    let mut request = chat_body();
    request["stream"] = json!(stream);
    let (status, _, text) =
        send(layer.layer(upstream), post("/v1/chat/completions", request)).await;
    assert_eq!(status, 200, "{text}");
    (text, seen)
}

#[tokio::test]
async fn a_bedrock_route_answers_chat_completions() {
    let answer = bedrock_fixture("native.bedrock.invoke.response.json");
    let (text, seen) = bedrock_chat(answer, "application/json", false).await;
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "18 °C and clear in Paris."
    );
    assert_eq!(body["usage"]["prompt_tokens"], 668);
    let seen = seen.lock().unwrap();
    let (_, uri, sent) = &seen[0];
    assert_eq!(
        uri,
        "https://api.salesforce.com/ai/gpt/v1/model/sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet/invoke"
    );
    let sent: Value = serde_json::from_str(sent).unwrap();
    assert_eq!(sent["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(sent["max_tokens"], 512);
}

#[tokio::test]
async fn a_bedrock_stream_relays_tool_call_fragments_as_they_come() {
    let (text, seen) =
        bedrock_chat(bedrock_stream(), "application/vnd.amazon.eventstream", true).await;
    assert!(seen.lock().unwrap()[0]
        .1
        .ends_with("/invoke-with-response-stream"));
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let arguments: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .filter(|piece| !piece.is_empty())
        .collect();
    assert_eq!(arguments, ["{\"ci", "ty\":\"Paris\"}"], "{text}");
    assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn a_bedrock_200_without_an_event_stream_is_an_error_not_a_success() {
    let config = Config::from_toml_with_env(&bedrock_conf(), |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let (upstream, _) = bedrock_upstream(
        br#"{"message": "Too many requests, please wait"}"#.to_vec(),
        "application/json",
    );
    let mut request = chat_body();
    request["stream"] = json!(true);
    let (_, _, text) = send(layer.layer(upstream), post("/v1/chat/completions", request)).await;
    assert!(
        text.contains("without an event stream: Too many requests"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn an_anthropic_caller_passes_through_to_a_bedrock_route() {
    let config = Config::from_toml_with_env(&bedrock_conf(), |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(CountingTokens::default())
        .build()
        .unwrap();
    let (upstream, seen) = bedrock_upstream(bedrock_stream(), "application/vnd.amazon.eventstream");
    let body = json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 64,
        "context_management": {"edits": []},
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let request = Request::post("/v1/messages")
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let (status, _, text) = send(layer.layer(upstream), request).await;
    assert_eq!(status, 200, "{text}");
    let (_, uri, sent) = seen.lock().unwrap()[0].clone();
    assert!(uri.ends_with("/invoke-with-response-stream"), "{uri}");
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(
        sent,
        json!({"max_tokens": 64, "context_management": {"edits": []},
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "anthropic_version": "bedrock-2023-05-31",
            "anthropic_beta": ["interleaved-thinking-2025-05-14"]})
    );
    assert!(text.starts_with("event: message_start\ndata: "), "{text}");
    assert!(text.contains(r#""model":"gpt-4o-mini""#), "{text}");
    assert!(text.contains("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}"), "{text}");
    assert!(
        text.trim_end().ends_with(r#""firstByteLatency":410}}"#),
        "{text}"
    );
}
/// A route on the `responses` surface, beside the einstein one.
fn responses_conf() -> String {
    format!(
        "{CONF}\n    [[routes]]\n    model = \"gpt-5\"\n    salesforce_model = \"sfdc_ai__DefaultGPT5\"\n    surface = \"responses\"\n"
    )
}

/// A Chat Completions call with tools and settings on a `responses` route: one call to
/// `{gpt_api_base}/responses` with the settings, the tool call back with the caller's model, and
/// what the surface has no field for reported.
#[tokio::test]
async fn a_responses_route_round_trip() {
    const ANSWER: &str = r#"{"id":"resp_1","object":"response","status":"completed","output":[
        {"type":"function_call","call_id":"call_1","name":"f","arguments":"{\"a\":1}"}],
        "usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":4},"output_tokens":6,
                 "output_tokens_details":{"reasoning_tokens":5},"total_tokens":15}}"#;
    let (service, seen, _) = bridge(vec![(200, ANSWER)], &responses_conf());
    let request = json!({"model": "gpt-5", "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
        "max_tokens": 50, "reasoning_effort": "low", "stop": "END", "seed": 1});
    let (status, headers, body) = send(service, post("/v1/chat/completions", request)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-sfbridge-ignored-params"], "seed, stop");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["model"], "gpt-5");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}])
    );
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        5
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, "https://api.salesforce.com/ai/gpt/v1/responses");
    let sent: Value = serde_json::from_str(&seen[0].2).unwrap();
    assert_eq!(
        sent,
        json!({"model": "sfdc_ai__DefaultGPT5",
               "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
               "tools": [{"type": "function", "name": "f", "parameters": null, "strict": false}],
               "tool_choice": "required", "max_output_tokens": 50, "reasoning": {"effort": "low"}})
    );
}

/// The upstream's OpenAI-shaped refusal keeps its status and words; an empty or failed answer is
/// a 502, never an empty 200.
#[tokio::test]
async fn responses_route_errors() {
    let refusal = r#"{"error":{"message":"Unsupported parameter: 'temperature'","type":"invalid_request_error","code":"unsupported_parameter"}}"#;
    let empty = r#"{"status":"completed","output":[]}"#;
    let failed =
        r#"{"status":"failed","output":[],"error":{"code":"server_error","message":"boom"}}"#;
    for (answer, want_status, want_message) in [
        (
            (400, refusal),
            400,
            "Salesforce answered 400: unsupported_parameter: Unsupported parameter: 'temperature'",
        ),
        (
            (200, empty),
            502,
            "Salesforce returned a response with no generated text",
        ),
        (
            (200, failed),
            502,
            "Salesforce returned a response that is not an answer: status failed, server_error: boom",
        ),
    ] {
        let (service, _, _) = bridge(vec![answer], &responses_conf());
        let request = json!({"model": "gpt-5", "temperature": 0.1,
                             "messages": [{"role": "user", "content": "Hi"}]});
        let (status, _, body) = send(service, post("/v1/chat/completions", request)).await;
        assert_eq!(status, want_status, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["message"], want_message);
    }
}

#[tokio::test]
async fn the_service_reloads_itself_and_keeps_a_supplied_token_source() {
    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let tokens = CountingTokens::default();
    let layer = SalesforceLayer::builder(&config)
        .token_source(tokens.clone())
        .build()
        .unwrap();
    let (upstream, _seen) = upstream(vec![]);
    let service = layer.layer(upstream);
    let (status, _, _) = send(service.clone(), post("/v1/chat/completions", chat_body())).await;
    assert_eq!(status, 200);

    // New credentials do not matter to a token source the embedder supplied: it stays.
    let reloaded = format!(
        "{}\n[[routes]]\nmodel = \"gpt-5-mini\"\nsalesforce_model = \"sfdc_ai__DefaultGPT5Mini\"\n",
        CONF.replace("\"secret\"", "\"rotated\"")
    );
    let outcome = service
        .reload(Config::from_toml_with_env(&reloaded, |_| None).unwrap())
        .unwrap();
    assert_eq!(outcome.routes, 2);
    assert!(outcome.token_cache_kept);
    let mut body = chat_body();
    body["model"] = json!("gpt-5-mini");
    let (status, _, text) = send(service, post("/v1/chat/completions", body)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        tokens.0.load(Ordering::SeqCst),
        1,
        "the cached token served both"
    );
    let metrics = layer.metrics().render();
    assert!(metrics.contains(r#"sfbridge_config_reloads_total{result="ok"} 1"#));
    assert!(metrics.contains(r#"model="gpt-5-mini""#));
}
