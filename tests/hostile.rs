//! Hostile and broken callers, through each mount: oversized bodies (with and without
//! `Content-Length`), bodies that are not the request they claim to be, deep nesting, gigantic
//! strings within the limit, and clients that trickle their body or headers. Each case gets its
//! answer, nothing panics, and the bridge then serves an ordinary request normally.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sf_models_bridge::mock::Fault;

use common::{
    assert_serves, chat, error_kind, get_json, http, panics, post_json, status_and_json, Gateway,
    Mount, Setup, CALLER_KEY, CHAT_MODEL,
};

for_each_mount!(
    oversized_bodies_get_413,
    oversized_bodies_without_a_key_get_401,
    the_head_is_judged_before_the_body_is_read,
    malformed_requests_get_400_with_a_helpful_message,
    deep_nesting_gets_400,
    gigantic_strings_within_the_limit_are_served,
    trickled_body_is_cut_off_by_the_body_deadline,
    a_caller_that_leaves_cancels_its_upstream_call,
    a_client_that_stops_reading_is_cut_after_the_write_timeout,
    a_stream_is_in_flight_until_written_and_a_499_when_left,
    bodies_being_read_share_one_budget,
    an_early_answer_to_a_client_waiting_for_100_continue_closes_its_connection,
);

/// The body limit of these tests' bridges.
const LIMIT: usize = 1024 * 1024;

/// `body_read_timeout_secs = 2` and `header_read_timeout_secs = 2` come from the default setup.
fn setup() -> Setup {
    Setup::default().salesforce(&format!("max_request_bytes = {LIMIT}"))
}

/// POSTs raw bytes as JSON: the status and the parsed envelope.
async fn post_bytes(gateway: &Gateway, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let request = http()
        .post(gateway.url(path))
        .header("content-type", "application/json")
        .body(body);
    status_and_json(request).await
}

/// Writes `request` on a fresh connection, then reads until the server closes it (5 s at most).
/// Returns the answer and how long its first byte took.
async fn raw_exchange(gateway: &Gateway, request: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let started = Instant::now();
    stream.write_all(request).await.expect("write");
    let mut response = vec![0; 64 * 1024];
    let first = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let first_byte = started.elapsed();
    response.truncate(first);
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response));
    // EOF, or a reset after the answer: either way what was read is the answer.
    let _ = rest.await.expect("closed within 5 s");
    (String::from_utf8_lossy(&response).into_owned(), first_byte)
}

fn assert_413(case: &str, status: u16, body: &Value) {
    assert_eq!(status, 413, "{case}: {body}");
    assert_eq!(
        error_kind(body),
        ("invalid_request_error", Some("request_too_large")),
        "{case}: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&LIMIT.to_string()), "{case}: {message}");
}

async fn oversized_bodies_get_413(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;
    // Far more than the socket buffers hold, so the refusal leaves while the client still sends.
    let oversized = serde_json::to_vec(&chat(CHAT_MODEL, &"a".repeat(8 * LIMIT))).unwrap();

    // With Content-Length: refused from the header.
    let (status, body) = post_bytes(&gateway, "/v1/chat/completions", oversized.clone()).await;
    assert_413("with Content-Length", status, &body);
    assert_serves(&gateway).await;

    // Without: a chunked body that only grows past the limit as it is read.
    let chunks: Vec<Result<Bytes, std::io::Error>> = oversized
        .chunks(64 * 1024)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let stream = futures_util::stream::iter(chunks);
    let (status, body) = post_bytes(
        &gateway,
        "/v1/completions",
        reqwest::Body::wrap_stream(stream),
    )
    .await;
    assert_413("chunked", status, &body);
    assert_serves(&gateway).await;

    // A declared length of 10 GB, never sent: answered at once, not waited for.
    let (answer, first_byte) = raw_exchange(
        &gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000000\r\n\r\n{\"model\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");
    assert!(first_byte < Duration::from_secs(1), "answered at once");

    // Exactly at the limit is not refused for its size.
    let frame =
        format!(r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":""}}]}}"#);
    let at_limit = frame.replacen(
        r#""content":"""#,
        &format!(r#""content":"{}""#, "b".repeat(LIMIT - frame.len())),
        1,
    );
    assert_eq!(at_limit.len(), LIMIT);
    let (status, body) = post_bytes(&gateway, "/v1/chat/completions", at_limit).await;
    assert_eq!(status, 200, "a body of exactly the limit: {body}");

    assert_eq!(gateway.counters().chat_requests, 3, "only the served ones");
    // Counted by the bridge in both mounts: in both, the bridge reads the body itself.
    let scrape = gateway.scrape().await;
    assert_eq!(
        errors_counted(&scrape, "chat_completions", "413"),
        2,
        "{scrape}"
    );
    assert_eq!(errors_counted(&scrape, "completions", "413"), 1, "{scrape}");
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// The value of `sfbridge_errors_total` for `endpoint` and `status` in a scrape, 0 when absent.
fn errors_counted(scrape: &str, endpoint: &str, status: &str) -> u64 {
    scrape
        .lines()
        .filter(|line| line.starts_with("sfbridge_errors_total{"))
        .filter(|line| line.contains(&format!(r#"endpoint="{endpoint}""#)))
        .filter(|line| line.contains(&format!(r#"status="{status}""#)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The API key is checked before the body's size: a caller without one learns nothing more.
async fn oversized_bodies_without_a_key_get_401(mount: Mount) {
    let setup = setup().sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"));
    let gateway = Gateway::start_with(mount, setup).await;
    // Far more than the socket buffers hold: the answer leaves while the client is still sending,
    // and the rest of the body must be drained, or the close resets the connection before the
    // client reads the 401.
    let oversized = vec![b'a'; 8 * LIMIT];
    for _ in 0..3 {
        let (status, body) = post_bytes(&gateway, "/v1/chat/completions", oversized.clone()).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            error_kind(&body),
            ("authentication_error", Some("invalid_api_key"))
        );
    }
    let scrape = gateway.scrape().await;
    assert_eq!(
        errors_counted(&scrape, "chat_completions", "401"),
        3,
        "{scrape}"
    );
    assert_eq!(gateway.counters().chat_requests, 0);
    gateway.stop().await;
}

/// Reads one final answer from `stream` (after any `100 Continue`), within `within`: everything
/// read up to the end of its body, and its status.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> (String, u16) {
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = String::from_utf8_lossy(&read).into_owned();
        // The last head read so far, and what follows it.
        let mut start = 0;
        while let Some(end) = text[start..].find("\r\n\r\n") {
            let head = &text[start..start + end];
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            let body_start = start + end + 4;
            if (100..200).contains(&status) {
                start = body_start;
                continue;
            }
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if read.len() >= body_start + length {
                return (text, status);
            }
            break;
        }
        let mut buf = [0; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no whole answer within {within:?}: {text:?}"))
            .expect("read");
        assert!(n > 0, "closed before the answer: {text:?}");
        read.extend_from_slice(&buf[..n]);
    }
}

/// The bridge judges the request head (key, declared length) before it reads a body byte, and
/// only a request it will read is invited to send its body (`100 Continue`).
async fn the_head_is_judged_before_the_body_is_read(mount: Mount) {
    let panicked = panics();
    let setup = setup().sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"));
    let gateway = Gateway::start_with(mount, setup).await;
    let chat_path =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json";

    // No key, a declared megabyte, and a client that waits for `100 Continue`: a 401 at once.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!("{chat_path}\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    let (answer, status) = read_answer(&mut stream, Duration::from_secs(1)).await;
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("invalid_api_key"), "{answer}");

    // No key and a body on its way: answered before the client sent most of it.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!("{chat_path}\r\nContent-Length: 100000\r\n\r\n{{\"model\":");
    stream.write_all(head.as_bytes()).await.expect("head");
    let (answer, status) = read_answer(&mut stream, Duration::from_secs(1)).await;
    assert_eq!(status, 401, "{answer}");
    // The rest still goes out, and the client can read its 401 in full meanwhile (above).
    stream.write_all(&vec![b' '; 100_000 - 9]).await.ok();

    // A valid key and a declared length over the limit: a 413, and no invitation either.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!(
        "{chat_path}\r\nAuthorization: Bearer {CALLER_KEY}\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        LIMIT + 1
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let (answer, status) = read_answer(&mut stream, Duration::from_secs(1)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");

    // A valid key and a body within the limit: `100 Continue`, then the answer to the body.
    let body = serde_json::to_string(&chat(CHAT_MODEL, "after the invitation")).unwrap();
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!(
        "{chat_path}\r\nAuthorization: Bearer {CALLER_KEY}\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut invitation = [0; 25];
    tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut invitation))
        .await
        .expect("100 Continue within 1 s")
        .expect("read");
    assert_eq!(&invitation, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).await.expect("body");
    let (answer, status) = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Echo: after the invitation"), "{answer}");

    assert_eq!(gateway.counters().chat_requests, 1, "only the invited one");
    let scrape = gateway.scrape().await;
    assert_eq!(
        errors_counted(&scrape, "chat_completions", "401"),
        2,
        "{scrape}"
    );
    assert_eq!(
        errors_counted(&scrape, "chat_completions", "413"),
        1,
        "{scrape}"
    );
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

async fn malformed_requests_get_400_with_a_helpful_message(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;
    let user = json!({"role": "user", "content": "x"});
    let chat_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", b"".to_vec(), "EOF"),
        ("not JSON", b"hello".to_vec(), "expected"),
        (
            "cut-off JSON",
            br#"{"model": "gpt-4o-mini", "messages": ["#.to_vec(),
            "EOF",
        ),
        ("a JSON array", b"[]".to_vec(), "invalid type"),
        (
            "invalid UTF-8",
            b"{\"model\": \"\xff\xfe\"}".to_vec(),
            "invalid unicode code point at line 1 column 12",
        ),
        (
            "model is a number",
            json!({"model": 42, "messages": [user]}).to_string().into(),
            "invalid type: integer `42`",
        ),
        (
            "messages is a string",
            json!({"model": CHAT_MODEL, "messages": "hi"})
                .to_string()
                .into(),
            "invalid type: string",
        ),
        (
            "content is a number",
            json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": 5}]})
                .to_string()
                .into(),
            "invalid type",
        ),
        (
            "unknown role",
            json!({"model": CHAT_MODEL, "messages": [{"role": "wizard", "content": "x"}]})
                .to_string()
                .into(),
            "unknown variant `wizard`",
        ),
        (
            "stream is a string",
            json!({"model": CHAT_MODEL, "messages": [user], "stream": "yes"})
                .to_string()
                .into(),
            "invalid type",
        ),
        (
            "missing messages",
            json!({"model": CHAT_MODEL}).to_string().into(),
            "missing field `messages`",
        ),
        (
            "missing model",
            json!({"messages": [user]}).to_string().into(),
            "missing field `model`",
        ),
        (
            "empty messages",
            json!({"model": CHAT_MODEL, "messages": []})
                .to_string()
                .into(),
            "messages",
        ),
    ];
    for (case, body, says) in chat_cases {
        let (status, error) = post_bytes(&gateway, "/v1/chat/completions", body).await;
        assert_eq!(status, 400, "{case}: {error}");
        assert_eq!(error_kind(&error).0, "invalid_request_error", "{case}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{case}: {message:?} should say {says:?}"
        );
    }
    let text_cases: Vec<(&str, Value, &str)> = vec![
        (
            "missing prompt",
            json!({"model": CHAT_MODEL}),
            "missing field `prompt`",
        ),
        (
            "prompt is an object",
            json!({"model": CHAT_MODEL, "prompt": {"a": 1}}),
            "invalid type: map, expected a string or an array of strings",
        ),
    ];
    for (case, body, says) in text_cases {
        let (status, error) = post_json(&gateway, "/v1/completions", &body).await;
        assert_eq!(status, 400, "{case}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{case}: {message:?} should say {says:?}"
        );
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    assert_serves(&gateway).await;
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// `[[[…]]]`, `depth` deep.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

async fn deep_nesting_gets_400(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;
    let arrays = nested_arrays(10_000);
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let too_deep = "arrays and objects nested deeper than 128 levels at line 1 column";
    let cases = [
        ("nested arrays as the body", arrays.clone(), too_deep),
        (
            "nested arrays as messages",
            format!(r#"{{"model":"{CHAT_MODEL}","messages":{arrays}}}"#),
            too_deep,
        ),
        (
            "nested arrays as a content part",
            format!(
                r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":{arrays}}}]}}"#
            ),
            too_deep,
        ),
        // serde_json skips values the bridge does not read without its depth limit: these
        // were answered 200 before the bridge checked the depth of the whole body.
        (
            "nested arrays in an ignored parameter",
            format!(
                r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":"x"}}],"metadata":{arrays}}}"#
            ),
            too_deep,
        ),
        (
            "nested objects in an ignored parameter",
            format!(
                r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":"x"}}],"metadata":{objects}}}"#
            ),
            too_deep,
        ),
        (
            "nested arrays in an unknown field of a message",
            format!(
                r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":"x","name":{arrays}}}]}}"#
            ),
            too_deep,
        ),
        (
            "shallow nesting of the wrong shape as messages",
            format!(r#"{{"model":"{CHAT_MODEL}","messages":[[[1]]]}}"#),
            "expected value at line 1 column 37",
        ),
    ];
    for (case, body, says) in cases {
        let (status, error) = post_bytes(&gateway, "/v1/chat/completions", body).await;
        assert_eq!(status, 400, "{case}: {error}");
        assert_eq!(
            error_kind(&error),
            ("invalid_request_error", Some("invalid_json")),
            "{case}: {error}"
        );
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{case}: {message}");
        assert_serves(&gateway).await;
    }
    let (status, error) = post_bytes(
        &gateway,
        "/v1/completions",
        format!(r#"{{"model":"{CHAT_MODEL}","prompt":{arrays}}}"#),
    )
    .await;
    assert_eq!(status, 400, "nested prompt: {error}");
    assert_eq!(
        gateway.counters().model_requests(),
        7,
        "only the `assert_serves` requests"
    );
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

async fn gigantic_strings_within_the_limit_are_served(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;

    // Nearly a megabyte of content, echoed back whole.
    let content = "a".repeat(LIMIT - 200);
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, &content),
    )
    .await;
    assert_eq!(status, 200, "{}", error_kind(&body).0);
    let echoed = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(echoed.len(), "Echo: ".len() + content.len());

    // Escapes that expand: 150,000 `\u00e9` (900 KB on the wire, 300 KB decoded).
    let escaped = format!(
        r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":"{}"}}]}}"#,
        r"\u00e9".repeat(150_000)
    );
    let (status, body) = post_bytes(&gateway, "/v1/chat/completions", escaped).await;
    assert_eq!(status, 200);
    let echoed = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(echoed.chars().count(), "Echo: ".len() + 150_000);

    // A gigantic model name: 404, with the name cut short in the message.
    let model = "m".repeat(LIMIT - 200);
    let (status, body) = post_json(&gateway, "/v1/chat/completions", &chat(&model, "x")).await;
    assert_eq!(status, 404);
    assert_eq!(error_kind(&body).1, Some("model_not_found"));
    assert!(body.to_string().len() < 2_000, "the message is bounded");

    // A gigantic unknown parameter name and value: accepted, and not echoed into a header.
    let mut request = chat(CHAT_MODEL, "x");
    request[&"k".repeat(400_000)] = Value::from("v".repeat(400_000));
    let response = http()
        .post(gateway.url("/v1/chat/completions"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header_bytes: usize = response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    assert!(header_bytes < 4_096, "{header_bytes} bytes of headers");

    // Gigantic paths and headers are someone else's limit, but must not break the bridge.
    let response = http()
        .get(gateway.url(&format!("/v1/{}", "p".repeat(4_000))))
        .header("x-big", "h".repeat(32_000))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!([404, 414, 431].contains(&status), "{status}");

    assert_serves(&gateway).await;
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// Sends `head` on a fresh connection, then one byte of `trickle` every 500 ms while reading the
/// answer. Returns what was read (possibly nothing) and when the server ended the exchange.
async fn trickle(gateway: &Gateway, head: &str, trickle: &'static [u8]) -> (String, Duration) {
    let stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.expect("head");
    let started = Instant::now();
    let writing = tokio::spawn(async move {
        for byte in trickle {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
        // Keep the connection open without sending more, so only the server can end it.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut answer)).await;
    let ended = started.elapsed();
    writing.abort();
    assert!(
        read.is_ok(),
        "the server never ended the exchange: {}",
        String::from_utf8_lossy(&answer)
    );
    (String::from_utf8_lossy(&answer).into_owned(), ended)
}

/// A byte every 500 ms for longer than any deadline under test.
const SLOW_BYTES: &[u8] = &[b' '; 16];

async fn trickled_body_is_cut_off_by_the_body_deadline(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;
    let with_length = "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\n\
                       Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let chunked = "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\n\
                   Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";
    const CHUNKS: &[u8] = b"1\r\n \r\n1\r\n \r\n1\r\n \r\n1\r\n \r\n1\r\n \r\n1\r\n \r\n";
    for (case, head, bytes) in [
        ("with Content-Length", with_length, SLOW_BYTES),
        ("chunked", chunked, CHUNKS),
        // Nothing after the first byte: a stall, not a trickle.
        ("stalled", with_length, &[][..]),
    ] {
        let (answer, ended) = trickle(&gateway, head, bytes).await;
        eprintln!(
            "{mount:?}, body trickled {case}: ended after {ended:?} with {:?}",
            answer.lines().next()
        );
        // `body_read_timeout_secs = 2`: a 408 (or a closed connection) at 2 s, however
        // steadily the bytes come.
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
            "{case}: {answer}"
        );
        assert!(
            ended >= Duration::from_millis(1900) && ended < Duration::from_secs(4),
            "{case}: ended after {ended:?}"
        );
        if !answer.is_empty() {
            assert!(answer.contains("request_timeout"), "{case}: {answer}");
        }
        assert_serves(&gateway).await;
    }
    assert_eq!(gateway.counters().model_requests(), 3);
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// A client that trickles its request headers is cut off by `header_read_timeout_secs`.
///
/// Axum mount only: Pingora offers no hook before the request header is parsed, and its
/// per-read timeout never fires for a client that sends a byte every 500 ms, so a header
/// trickle is the embedding gateway's limit, not the filter's (see ARCHITECTURE.md and the
/// README). The axum mount serves with hyper's `header_read_timeout` and a Tokio timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off_by_the_header_deadline_axum_only() {
    let panicked = panics();
    let gateway = Gateway::start_with(Mount::Axum, setup()).await;
    let (answer, ended) = trickle(
        &gateway,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nX-Slow: ",
        b"abcdefghijklmnop",
    )
    .await;
    eprintln!(
        "headers trickled: ended after {ended:?} with {:?}",
        answer.lines().next()
    );
    // `header_read_timeout_secs = 2`: hyper ends the connection (with a 408 or without a word).
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        ended >= Duration::from_millis(1500) && ended < Duration::from_secs(4),
        "ended after {ended:?}"
    );
    assert_serves(&gateway).await;
    let (status, _) = get_json(&gateway, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// The sum of a metric family's samples whose line contains each of `labels`, 0 when absent.
fn metric_sum(scrape: &str, name: &str, labels: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The chat endpoint's series (a scrape is itself in flight on its own endpoint).
const CHAT: &[&str] = &[r#"endpoint="chat_completions""#];

/// A caller that disconnects while its (non-streamed) request waits on a slow Salesforce gives
/// up its upstream call: within a second the upstream connection is closed (the mock counts the
/// call abandoned), the in-flight gauge is back to 0, and the request is counted as a 499.
async fn a_caller_that_leaves_cancels_its_upstream_call(mount: Mount) {
    let panicked = panics();
    let gateway = Gateway::start_with(mount, setup()).await;
    assert_serves(&gateway).await; // the token is cached: only the model call is slow
    gateway
        .upstream()
        .inject(Fault::Slow(Duration::from_secs(20)), 1);
    let body = serde_json::to_string(&chat(CHAT_MODEL, "I will not wait")).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {CALLER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_flight = metric_sum(&gateway.scrape().await, "sfbridge_in_flight_requests", CHAT);
    assert_eq!(
        in_flight, 1.0,
        "the request is in flight before the caller leaves"
    );
    drop(stream);
    let left = Instant::now();

    let (abandoned, in_flight, closed) = loop {
        let scrape = gateway.scrape().await;
        let abandoned = gateway.counters().abandoned_model_calls;
        let in_flight = metric_sum(&scrape, "sfbridge_in_flight_requests", CHAT);
        // 499 has no label of its own among the error statuses: it is counted as "other".
        let closed = errors_counted(&scrape, "chat_completions", "other");
        if (abandoned, in_flight, closed) == (1, 0.0, 1) || left.elapsed() > Duration::from_secs(3)
        {
            break (abandoned, in_flight, closed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = left.elapsed();
    eprintln!("{mount:?}: upstream call abandoned {took:?} after the caller left");
    assert_eq!(abandoned, 1, "the upstream call was not cancelled");
    assert_eq!(in_flight, 0.0, "the request is still in flight");
    assert_eq!(closed, 1, "no 499 was counted");
    assert!(
        took < Duration::from_secs(1),
        "cancelled only after {took:?}"
    );
    assert_eq!(
        gateway.counters().chat_requests,
        2,
        "no retry after the caller left"
    );

    assert_serves(&gateway).await;
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// A client that asks for a large answer and never reads it is disconnected once a write has
/// waited `write_timeout_secs`, instead of holding its connection and its answer forever.
async fn a_client_that_stops_reading_is_cut_after_the_write_timeout(mount: Mount) {
    let panicked = panics();
    // An answer larger than every socket buffer between the bridge and the client (a send buffer
    // grows to 4 MiB at most here, and the client's receive buffer is kept small), so the
    // bridge's writes block for good.
    const CONTENT: usize = 6 * 1024 * 1024;
    let setup = Setup::default()
        .salesforce(&format!("max_request_bytes = {}", 2 * CONTENT))
        .server("write_timeout_secs = 1");
    let gateway = Gateway::start_with(mount, setup).await;
    let body = serde_json::to_string(&chat(CHAT_MODEL, &"a".repeat(CONTENT))).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {CALLER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(gateway.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    // The answer takes a while to make (megabytes of JSON, parsed and written twice): wait for
    // its first byte without reading it (a peek leaves the receive window as full as it was).
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(20), stream.peek(&mut first))
        .await
        .expect("the answer starts within 20 s")
        .expect("peek");
    let answering = Instant::now();

    // Not a byte read for write_timeout + 2 s ...
    tokio::time::sleep(Duration::from_secs(3)).await;
    // ... then what the bridge wrote before it gave up, and the end of the connection: a bridge
    // still waiting to write would now send the whole answer and keep the connection open.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    eprintln!(
        "{mount:?}: {} bytes of the answer arrived, connection {}",
        answer.len(),
        if read.is_ok() { "closed" } else { "still open" }
    );
    assert!(
        read.is_ok(),
        "the connection was not closed within write_timeout + 2 s"
    );
    assert!(answer.len() < CONTENT, "the whole answer was written");
    assert!(answering.elapsed() < Duration::from_secs(6));

    assert_serves(&gateway).await;
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// After the shutdown grace period, `server::serve` closes the connections still open, as it
/// says, rather than leaving their tasks running after it returned.
///
/// Axum mount only: the Pingora mount's grace period is Pingora's own, and the harness stops
/// Pingora gateways at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_open_after_the_grace_period_are_closed_axum_only() {
    let panicked = panics();
    let gateway = Gateway::start_with(Mount::Axum, setup()).await; // shutdown_grace_secs = 2
    assert_serves(&gateway).await;
    gateway
        .upstream()
        .inject(Fault::Slow(Duration::from_secs(30)), 1);
    let body = serde_json::to_string(&chat(CHAT_MODEL, "outlive the grace period")).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), gateway.stop())
        .await
        .expect("serve returns after the grace period");
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    let took = stopping.elapsed();
    assert!(
        closed.is_ok(),
        "the connection is still open {took:?} after the stop"
    );
    assert!(took < Duration::from_secs(4), "closed only after {took:?}");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(panics(), panicked, "nothing panicked");
}

/// A streamed answer counts as in flight while it is written, not only until Salesforce
/// answered, and a caller that leaves mid-stream is a 499, not a 200.
async fn a_stream_is_in_flight_until_written_and_a_499_when_left(mount: Mount) {
    let panicked = panics();
    // Events far larger than the socket buffers, so the stream is still being written while
    // the client does not read.
    const CONTENT: usize = 6 * 1024 * 1024;
    let setup = Setup::default().salesforce(&format!("max_request_bytes = {}", 2 * CONTENT));
    let gateway = Gateway::start_with(mount, setup).await;
    let mut request = chat(CHAT_MODEL, &"a".repeat(CONTENT));
    request["stream"] = json!(true);
    let body = serde_json::to_string(&request).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {CALLER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(gateway.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    // Wait for the answer's events without reading them: the keep-alive comments of a waiting
    // stream are a few bytes, the events megabytes.
    let started = Instant::now();
    let mut seen = vec![0u8; 64 * 1024];
    loop {
        let peeked = stream.peek(&mut seen).await.expect("peek");
        if peeked >= 2048 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no events within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let scrape = gateway.scrape().await;
    let in_flight = metric_sum(&scrape, "sfbridge_in_flight_requests", CHAT);
    let answered = metric_sum(
        &scrape,
        "sfbridge_requests_total",
        &[CHAT[0], r#"status_class="2xx""#],
    );
    assert_eq!(
        (in_flight, answered),
        (1.0, 0.0),
        "a stream still being written is in flight and not yet answered"
    );

    drop(stream);
    let left = Instant::now();
    let (in_flight, answered, closed) = loop {
        let scrape = gateway.scrape().await;
        let in_flight = metric_sum(&scrape, "sfbridge_in_flight_requests", CHAT);
        let answered = metric_sum(
            &scrape,
            "sfbridge_requests_total",
            &[CHAT[0], r#"status_class="2xx""#],
        );
        // 499 has no label of its own among the error statuses: it is counted as "other".
        let closed = errors_counted(&scrape, "chat_completions", "other");
        if in_flight == 0.0 || left.elapsed() > Duration::from_secs(3) {
            break (in_flight, answered, closed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        in_flight, 0.0,
        "the stream is still in flight after its caller left"
    );
    assert_eq!(
        (answered, closed),
        (0.0, 1),
        "a stream left mid-way is a 499"
    );

    assert_serves(&gateway).await;
    assert_eq!(panics(), panicked, "nothing panicked");
    gateway.stop().await;
}

/// Bodies being read share one budget (`server.body_budget_bytes`): past it, the next upload gets
/// a 503 at once instead of adding to the memory held, and the budget comes back with each body.
async fn bodies_being_read_share_one_budget(mount: Mount) {
    let setup = Setup::default()
        .salesforce("max_request_bytes = 4096")
        .server("body_budget_bytes = 6000");
    let gateway = Gateway::start_with(mount, setup).await;

    // A slow upload declares 4000 bytes, sends 3500 and stalls: it holds 3500 of the 6000.
    let mut slow = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\n\
                Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    slow.write_all(head.as_bytes()).await.expect("write");
    slow.write_all(&[b' '; 3500]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let body = serde_json::to_vec(&common::chat(CHAT_MODEL, &"x".repeat(2900))).unwrap();
    let started = Instant::now();
    let (status, answer) = post_bytes(&gateway, "/v1/chat/completions", body.clone()).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "overloaded", "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gateway.counters().chat_requests, 0);

    // The slow upload is cut off by its deadline; its bytes come back to the budget.
    let (answer, status) = read_answer(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(status, 408, "{answer}");
    let (status, answer) = post_bytes(&gateway, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{answer}");
}

/// A client that waits for `100 Continue` and is answered on the head (a wrong key, an oversized
/// declared length) never sends its body: the connection closes at once, rather than waiting for a
/// body that will not come, or reading the client's next request as this one's body.
async fn an_early_answer_to_a_client_waiting_for_100_continue_closes_its_connection(mount: Mount) {
    let setup = setup().sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"));
    let gateway = Gateway::start_with(mount, setup).await;
    for (case, key, length) in [("no key", "", 1000), ("too large", CALLER_KEY, LIMIT + 1)] {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\
             Expect: 100-continue\r\n\r\n"
        );
        let started = Instant::now();
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{case}: the connection stayed open"))
            .expect("read");
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(!answer.contains("100 continue"), "{case}: {answer}");
        assert!(
            answer.starts_with("http/1.1 401") || answer.starts_with("http/1.1 413"),
            "{case}: {answer}"
        );
        assert!(
            answer.contains("\r\nconnection: close\r\n"),
            "{case}: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{case}: {:?}",
            started.elapsed()
        );
    }
}
