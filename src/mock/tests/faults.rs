use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::mock::{Fault, MockOptions};

fn status(status: u16, retry_after_secs: Option<u64>) -> Fault {
    Fault::Status {
        status,
        retry_after_secs,
    }
}

#[tokio::test]
async fn status_faults_use_the_spec_error_bodies() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(status(429, Some(7)), 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(reply.json(), fixture("error.429.json"));

    mock.state().inject(status(500, None), 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.headers.contains_key("retry-after"));
    assert_eq!(reply.json(), fixture("error.500.json"));

    for (code, error_code) in [
        (423, "SERVER_BUSY"),
        (503, "SERVICE_UNAVAILABLE"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND"),
    ] {
        mock.state().inject(status(code, None), 1);
        let reply = chat(&mock, &token, "hi").await;
        assert_eq!(reply.status.as_u16(), code);
        assert_eq!(reply.json()["errorCode"], error_code);
    }
    mock.state().inject(Fault::Unauthorized, 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), fixture("error.401.json"));
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);
    assert_eq!(mock.state().counters().chat_requests, 8);
}

#[tokio::test]
async fn faults_apply_in_order_then_run_out() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(status(429, None), 2);
    mock.state().inject(status(503, None), 1);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(chat(&mock, &token, "hi").await.status.as_u16());
    }
    assert_eq!(seen, [429, 429, 503, 200]);

    mock.state().inject(status(500, None), u32::MAX);
    for _ in 0..3 {
        assert_eq!(
            chat(&mock, &token, "hi").await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    mock.state().clear_faults();
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);
    assert_eq!(mock.state().counters().chat_requests, 8);
}

#[tokio::test]
async fn slow_faults_and_latency_delay_a_normal_answer() {
    let options = MockOptions {
        latency: Duration::from_millis(100),
        ..MockOptions::default()
    };
    let mock = MockSalesforce::start_with(options).await.unwrap();
    let token = token(&mock).await;
    let started = Instant::now();
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(100));

    mock.state()
        .inject(Fault::Slow(Duration::from_millis(200)), 1);
    let started = Instant::now();
    let reply = chat(&mock, &token, "hi").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.chat_content(), "Echo: hi");
}

#[tokio::test]
async fn broken_bodies_are_200s() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::MalformedJson, 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());

    let whole = chat(&mock, &token, "hi").await.body.len();
    mock.state().inject(Fault::TruncatedJson, 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.starts_with(b"{\""));
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
    assert!(
        reply.body.len() <= whole / 2 + 1,
        "{} of {whole}",
        reply.body.len()
    );
}

#[tokio::test]
async fn oversized_answers_are_padded_valid_json_without_a_length() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::Oversized(300_000), 1);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers.contains_key("content-length"));
    assert_eq!(reply.body.len(), 300_000);
    assert_eq!(reply.chat_content(), "Echo: hi");
}

#[tokio::test]
async fn connection_reset_closes_without_a_response() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::ConnectionReset, 2);
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let result = call_with(
        &mock,
        CHAT_MODEL,
        "chat-generations",
        &token,
        &[],
        body.clone(),
    )
    .await;
    assert!(result.is_err(), "no response expected");
    // The whole request was read (and counted) before the close: to a client, the connection
    // was lost after the request was sent, which is the case the bridge must not resend.
    assert_eq!(mock.state().counters().chat_requests, 1);
    let recorded = mock
        .state()
        .last_model_request()
        .expect("the request was recorded");
    assert_eq!(recorded.body, body.as_bytes());

    // At the socket level: the request goes out, nothing at all comes back before the close.
    let mut stream = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let request = format!(
        "POST /einstein/platform/v1/models/{CHAT_MODEL}/chat-generations HTTP/1.1\r\nhost: mock\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    // A close (Ok) or a reset (Err) are both fine; a single byte of response is not.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .unwrap();
    assert!(
        received.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );

    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);
    assert_eq!(mock.state().counters().chat_requests, 3);
}
