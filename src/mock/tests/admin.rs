use std::time::Duration;

use super::*;
use crate::mock::{Counters, Fault, MockOptions};

async fn admin(mock: &MockSalesforce, method: reqwest::Method, path: &str, body: &str) -> Reply {
    let url = format!("http://{}/__mock/{path}", mock.addr());
    let request = reqwest::Client::new()
        .request(method, url)
        .body(body.to_owned());
    reply(request.send().await.unwrap()).await
}

async fn post(mock: &MockSalesforce, path: &str, body: &str) -> StatusCode {
    admin(mock, reqwest::Method::POST, path, body).await.status
}

#[tokio::test]
async fn the_admin_api_round_trips() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;

    assert_eq!(
        post(
            &mock,
            "faults",
            r#"{"fault": "status", "status": 429, "retry_after_secs": 1, "times": 2}"#
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&mock, "faults", r#"{"fault": "connection_reset"}"#).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(chat(&mock, &token, "hi").await.headers["retry-after"], "1");
    assert_eq!(
        chat(&mock, &token, "hi").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    assert!(
        call_with(&mock, CHAT_MODEL, "chat-generations", &token, &[], body)
            .await
            .is_err()
    );
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);

    for fault in [
        r#"{"fault": "slow", "millis": 1}"#,
        r#"{"fault": "unauthorized"}"#,
        r#"{"fault": "malformed_json"}"#,
        r#"{"fault": "truncated_json", "times": 4294967295}"#,
        r#"{"fault": "oversized", "bytes": 9000000}"#,
    ] {
        assert_eq!(
            post(&mock, "faults", fault).await,
            StatusCode::NO_CONTENT,
            "{fault}"
        );
    }
    assert_eq!(
        admin(&mock, reqwest::Method::DELETE, "faults", "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);

    for fault in [
        r#"{"fault": "status", "status": 500}"#,
        r#"{"fault": "slow", "millis": 1}"#,
        r#"{"fault": "down"}"#,
        r#"{"fault": "no_access_token"}"#,
        r#"{"fault": "not_jwt", "times": 2}"#,
    ] {
        assert_eq!(
            post(&mock, "token_faults", fault).await,
            StatusCode::NO_CONTENT,
            "{fault}"
        );
    }
    assert_eq!(
        fetch_token(&mock).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    assert_eq!(
        post(&mock, "shape", r#"{"shape": "generation_text"}"#).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        chat(&mock, &token, "hi").await.json()["generation"]["text"],
        "Echo: hi"
    );

    let counters = admin(&mock, reqwest::Method::GET, "counters", "").await;
    let counters: Counters = serde_json::from_slice(&counters.body).unwrap();
    assert_eq!(counters, mock.state().counters());
    assert_eq!(counters.chat_requests, 6);
    assert_eq!(counters.token_requests, 2);

    assert_eq!(post(&mock, "revoke", "").await, StatusCode::NO_CONTENT);
    assert_eq!(
        chat(&mock, &token, "hi").await.status,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(post(&mock, "reset", "").await, StatusCode::NO_CONTENT);
    assert_eq!(mock.state().counters(), Counters::default());
    let token = super::token(&mock).await;
    assert_eq!(
        chat(&mock, &token, "hi").await.chat_content(),
        "Echo: hi",
        "shape and token faults reset too"
    );
}

#[tokio::test]
async fn bad_admin_requests_say_why() {
    let mock = MockSalesforce::start().await.unwrap();
    for (path, body) in [
        ("faults", "not json"),
        ("faults", r#"{"fault": "explode"}"#),
        ("faults", r#"{"fault": "status", "status": 200}"#),
        ("faults", r#"{"fault": "slow"}"#),
        ("token_faults", r#"{"fault": "status", "status": 99}"#),
        ("shape", r#"{"shape": "round"}"#),
    ] {
        let reply = admin(&mock, reqwest::Method::POST, path, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.json()["error"].is_string());
    }
}

#[tokio::test]
async fn shutdown_closes_the_port_and_drop_stops_the_server() {
    let mock = MockSalesforce::start().await.unwrap();
    let addr = mock.addr();
    mock.state()
        .inject(Fault::Slow(Duration::from_secs(3600)), 1);
    let stuck = tokio::spawn({
        let url =
            format!("http://{addr}/einstein/platform/v1/models/{CHAT_MODEL}/chat-generations");
        async move { reqwest::Client::new().post(url).body("{}").send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    mock.shutdown().await;
    let result = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err(), "the in-flight call ends with the server");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let options = MockOptions {
        fast: true,
        ..MockOptions::default()
    };
    let mock = MockSalesforce::start_with(options).await.unwrap();
    let addr = mock.addr();
    drop(mock);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn stream_faults_and_the_stream_pace_have_admin_requests() {
    let mock = MockSalesforce::start().await.unwrap();
    for fault in [
        r#"{"fault": "stream_failure"}"#,
        r#"{"fault": "stream_stall", "millis": 10}"#,
        r#"{"fault": "malformed_event"}"#,
        r#"{"fault": "not_a_stream"}"#,
        r#"{"fault": "empty_stream"}"#,
        r#"{"fault": "endless_stream"}"#,
        r#"{"fault": "oversized_event", "bytes": 100000, "times": 2}"#,
    ] {
        assert_eq!(
            post(&mock, "faults", fault).await,
            StatusCode::NO_CONTENT,
            "{fault}"
        );
    }
    for fault in [
        Fault::StreamFailure,
        Fault::StreamStall(Duration::from_millis(10)),
        Fault::MalformedEvent,
        Fault::NotAStream,
        Fault::EmptyStream,
        Fault::EndlessStream,
        Fault::OversizedEvent(100_000),
        Fault::OversizedEvent(100_000),
    ] {
        assert_eq!(mock.state().take_fault(), Some(fault));
    }
    assert_eq!(mock.state().take_fault(), None);

    assert_eq!(
        post(&mock, "stream_pace", r#"{"millis": 250}"#).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(mock.state().stream_pace(), Duration::from_millis(250));
    for body in [r#"{"millis": -1}"#, r#"{}"#, "x"] {
        assert_eq!(
            post(&mock, "stream_pace", body).await,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(post(&mock, "reset", "").await, StatusCode::NO_CONTENT);
    assert_eq!(mock.state().stream_pace(), Duration::ZERO);

    let counters = admin(&mock, reqwest::Method::GET, "counters", "")
        .await
        .json();
    assert_eq!(counters["responses_requests"], 0);
    assert_eq!(counters["bedrock_requests"], 0);
    // Counters from before these fields still read.
    let old: Counters = serde_json::from_str(
        r#"{"token_requests":1,"tokens_issued":1,"chat_requests":3,"generation_requests":0,"embedding_requests":0}"#,
    )
    .unwrap();
    assert_eq!(old.model_requests(), 3);
}
