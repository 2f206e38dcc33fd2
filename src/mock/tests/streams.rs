//! Faults on the native surfaces, streamed and not.

use serde_json::json;

use super::responses::{respond, respond_stream, sse_events, sse_json, types};
use super::*;
use crate::mock::Fault;

fn hello(text: &str) -> Value {
    json!({"model": GPT_MODEL, "input": text})
}

fn deltas(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .count()
}

#[tokio::test]
async fn a_failed_stream_ends_with_response_failed() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::StreamFailure, 1);
    let streamed = respond_stream(&mock, &token, hello("one two three four")).await;
    assert_eq!(streamed.status, StatusCode::OK);
    let events = sse_json(&streamed.body());
    assert_eq!(deltas(&events), 2);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["sequence_number"], events.len() - 1);
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    assert!(last["response"]["error"]["message"].is_string());
    assert!(!types(&events).contains(&"response.completed"));
    assert_eq!(mock.state().counters().abandoned_model_calls, 0);
}

#[tokio::test]
async fn a_stalled_stream_pauses_after_its_first_delta() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state()
        .inject(Fault::StreamStall(Duration::from_millis(400)), 1);
    let streamed = respond_stream(&mock, &token, hello("one two")).await;
    let events = sse_json(&streamed.body());
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert_eq!(deltas(&events), 3);
    // Find the long gap, and what had arrived before it.
    let gap = (1..streamed.chunks.len())
        .max_by_key(|&at| streamed.chunks[at].0 - streamed.chunks[at - 1].0)
        .unwrap();
    // Most of the 400 ms pause: the chunk before it may be read a little after it was written.
    let pause = streamed.chunks[gap].0 - streamed.chunks[gap - 1].0;
    assert!(pause >= Duration::from_millis(300), "{pause:?}");
    let before: Vec<u8> = streamed.chunks[..gap]
        .iter()
        .flat_map(|(_, chunk)| chunk.to_vec())
        .collect();
    assert_eq!(deltas(&sse_json(&before)), 1);
}

#[tokio::test]
async fn a_malformed_event_is_not_json() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::MalformedEvent, 1);
    let streamed = respond_stream(&mock, &token, hello("one two")).await;
    let events = sse_events(&streamed.body());
    let broken: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (_, data))| serde_json::from_str::<Value>(data).is_err())
        .map(|(at, _)| at)
        .collect();
    // created, in_progress, item added, part added, the first delta, then the broken one.
    assert_eq!(broken, [5]);
    assert_eq!(events[4].0, "response.output_text.delta");
    assert_eq!(events.last().unwrap().0, "response.completed");
}

#[tokio::test]
async fn not_a_stream_is_a_json_error_with_status_200() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::NotAStream, 1);
    let streamed = respond_stream(&mock, &token, hello("hi")).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(streamed.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = serde_json::from_slice(&streamed.body()).unwrap();
    assert_eq!(body, json!({"message": "Too many requests"}));
}

#[tokio::test]
async fn an_empty_stream_completes_without_output() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::EmptyStream, 1);
    let events = sse_json(&respond_stream(&mock, &token, hello("hi")).await.body());
    assert_eq!(types(&events), ["response.created", "response.completed"]);
    assert_eq!(events[1]["response"]["output"], json!([]));
    assert_eq!(events[1]["response"]["status"], "completed");
    assert_eq!(events[1]["sequence_number"], 1);
}

#[tokio::test]
async fn an_endless_stream_runs_until_the_caller_leaves() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::EndlessStream, 1);
    let body = json!({"model": GPT_MODEL, "input": "hi", "stream": true, "tools": [{"type": "function", "name": "f"}]});
    let mut response = native_request(&mock, "/responses", &token, &[], &body)
        .send()
        .await
        .unwrap();
    let mut received = Vec::new();
    let started = Instant::now();
    while received
        .windows(b"output_text.delta\ndata".len())
        .filter(|window| *window == b"output_text.delta\ndata")
        .count()
        < 30
    {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        received.extend_from_slice(&chunk);
    }
    // 10 ms apart when no pace is set.
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(!String::from_utf8_lossy(&received).contains("response.completed"));
    drop(response);
    abandoned(&mock, 1).await;
}

#[tokio::test]
async fn an_oversized_event_holds_one_huge_delta() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::OversizedEvent(100_000), 1);
    let events = sse_json(&respond_stream(&mock, &token, hello("hi")).await.body());
    let first = events
        .iter()
        .find(|event| event["type"] == "response.output_text.delta")
        .unwrap();
    assert_eq!(first["delta"].as_str().unwrap(), "x".repeat(100_000));
    assert_eq!(events.last().unwrap()["type"], "response.completed");
}

#[tokio::test]
async fn status_faults_answer_in_the_openai_envelope() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(
        Fault::Status {
            status: 429,
            retry_after_secs: Some(3),
        },
        1,
    );
    let streamed = respond_stream(&mock, &token, hello("hi")).await;
    assert_eq!(streamed.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(streamed.headers["retry-after"], "3");
    let body: Value = serde_json::from_slice(&streamed.body()).unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["param"], Value::Null);

    mock.state().inject(
        Fault::Status {
            status: 503,
            retry_after_secs: None,
        },
        1,
    );
    let reply = respond(&mock, &token, hello("hi")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["type"], "server_error");
    assert!(!reply.headers.contains_key("retry-after"));

    mock.state().inject(Fault::Unauthorized, 1);
    let reply = respond(&mock, &token, hello("hi")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), fixture("error.401.json"));
}

#[tokio::test]
async fn connection_faults_and_broken_bodies_on_the_native_paths() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::ConnectionReset, 1);
    let mut body = hello("hi");
    body["stream"] = json!(true);
    let result = native_request(&mock, "/responses", &token, &[], &body)
        .send()
        .await;
    assert!(result.is_err(), "no response expected");

    mock.state()
        .inject(Fault::Slow(Duration::from_millis(200)), 1);
    let started = Instant::now();
    let events = sse_json(&respond_stream(&mock, &token, hello("hi")).await.body());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(events.last().unwrap()["type"], "response.completed");

    mock.state().inject(Fault::TruncatedJson, 1);
    let streamed = respond_stream(&mock, &token, hello("one two three")).await;
    assert_eq!(streamed.status, StatusCode::OK);
    let text = String::from_utf8(streamed.body()).unwrap();
    assert!(text.starts_with("event: response.created\n"));
    assert!(!text.contains("response.completed"));

    mock.state().inject(Fault::MalformedJson, 1);
    let streamed = respond_stream(&mock, &token, hello("hi")).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(streamed.body().starts_with(b"<html>"));

    mock.state().inject(Fault::TruncatedJson, 1);
    let reply = respond(&mock, &token, hello("hi")).await;
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());

    mock.state().inject(Fault::Oversized(50_000), 1);
    let reply = respond(&mock, &token, hello("hi")).await;
    assert_eq!(reply.body.len(), 50_000);
    assert_eq!(reply.json()["status"], "completed");
}

#[tokio::test]
async fn stream_faults_are_used_up_by_whole_answers() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    for fault in [
        Fault::StreamFailure,
        Fault::StreamStall(Duration::from_secs(10)),
        Fault::MalformedEvent,
        Fault::NotAStream,
        Fault::EmptyStream,
        Fault::EndlessStream,
        Fault::OversizedEvent(10),
    ] {
        mock.state().inject(fault.clone(), 1);
        let reply = respond(&mock, &token, hello("hi")).await;
        assert_eq!(reply.json()["status"], "completed", "{fault:?}");
        mock.state().inject(fault.clone(), 1);
        assert_eq!(
            chat(&mock, &token, "hi").await.chat_content(),
            "Echo: hi",
            "{fault:?}"
        );
    }
    let events = sse_json(&respond_stream(&mock, &token, hello("hi")).await.body());
    assert_eq!(events.last().unwrap()["type"], "response.completed");
}

#[tokio::test]
async fn a_stream_left_before_its_end_is_abandoned() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    respond_stream(&mock, &token, hello("hi")).await;
    assert_eq!(mock.state().counters().abandoned_model_calls, 0);

    mock.state().set_stream_pace(Duration::from_millis(100));
    let mut body = hello("one two three four five");
    body["stream"] = json!(true);
    let mut response = native_request(&mock, "/responses", &token, &[], &body)
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"event: response.created"));
    drop(response);
    abandoned(&mock, 1).await;
}
