use serde_json::json;

use super::models::assert_same_shape;
use super::*;
use crate::eventstream::{chunk_bytes, DecodeError, Decoder, Frame, Limits};
use crate::mock::Fault;

pub(super) fn body(text: &str) -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
    })
}

pub(super) async fn invoke(mock: &MockSalesforce, token: &str, model: &str, body: &Value) -> Reply {
    native(mock, &format!("/model/{model}/invoke"), token, body).await
}

pub(super) async fn invoke_stream(
    mock: &MockSalesforce,
    token: &str,
    model: &str,
    body: &Value,
) -> Chunks {
    let path = format!("/model/{model}/invoke-with-response-stream");
    chunks(
        native_request(mock, &path, token, &[], body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The frames of a stream, fed to the decoder read by read; how the stream ended; and whether some
/// read ended inside a frame.
pub(super) fn read_frames(streamed: &Chunks) -> (Vec<Frame>, Result<(), DecodeError>, bool) {
    let mut decoder = Decoder::new(Limits::default());
    let mut frames = Vec::new();
    let mut split = false;
    for (_, chunk) in &streamed.chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Err(error), split),
            }
        }
        split |= decoder.buffered() > 0;
    }
    let end = decoder.finish();
    (frames, end, split)
}

/// The Anthropic events of a well-formed stream, each frame checked to be a JSON `chunk` event.
pub(super) fn read_events(streamed: &Chunks) -> Vec<Value> {
    let (frames, end, _) = read_frames(streamed);
    end.unwrap();
    frames
        .iter()
        .map(|frame| {
            assert_eq!(frame.string_header(":message-type"), Some("event"));
            assert_eq!(frame.string_header(":event-type"), Some("chunk"));
            assert_eq!(
                frame.string_header(":content-type"),
                Some("application/json")
            );
            serde_json::from_slice(&chunk_bytes(&frame.payload).unwrap()).unwrap()
        })
        .collect()
}

pub(super) fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect()
}

pub(super) fn text_deltas(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["delta"]["type"] == "text_delta")
        .map(|event| event["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

fn refused(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.headers["x-amzn-errortype"], "ValidationException");
    let json = reply.json();
    assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
    json["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn invoke_answers_the_spec_request() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let request = fixture("native.bedrock.invoke.request.json");
    let reply = invoke(&mock, &token, CLAUDE_MODEL, &request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.headers.contains_key("x-request-id"));
    let answer = reply.json();
    assert_same_shape(&answer, &fixture("native.bedrock.invoke.response.json"), "");
    assert!(answer["id"].as_str().unwrap().starts_with("msg_bdrk_"));
    assert_eq!(answer["model"], "claude-sonnet-4-6");
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(
        answer["content"],
        json!([{"type": "text", "text": "Tool toolu_01A said: 18 C, clear"}])
    );
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(answer["stop_sequence"], Value::Null);
    // 3 system words, 6 in the question, 3 in the tool result; the system block is cached.
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 12, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 256})
    );

    let recorded = mock.state().last_model_request().unwrap();
    assert_eq!(
        recorded.path,
        format!("/ai/gpt/v1/model/{CLAUDE_MODEL}/invoke")
    );
    assert_eq!(recorded.body, request.to_string().as_bytes());
    assert_eq!(mock.state().counters().bedrock_requests, 1);
    assert_eq!(mock.state().counters().model_requests(), 1);

    let answer = invoke(&mock, &token, "custom_claude", &body("hi there"))
        .await
        .json();
    assert_eq!(answer["content"][0]["text"], "Echo: hi there");
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(answer["usage"]["input_tokens"], 2);
    assert_eq!(answer["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn tools_get_one_tool_use() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut request = body("Weather in \"Paris\"?");
    request["tools"] = json!([
        {"name": "get_weather", "input_schema": {"type": "object"}},
        {"name": "get_time", "input_schema": {"type": "object"}},
    ]);
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"echo": "Weather in \"Paris\"?"}}])
    );
    request["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["name"], "get_time");
    assert_eq!(answer["content"][0]["id"], "toolu_2");
    request["tool_choice"] = json!({"type": "none"});
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["text"], "Echo: Weather in \"Paris\"?");
    assert_eq!(answer["stop_reason"], "end_turn");

    request["tool_choice"] = json!({"type": "any"});
    request["messages"] = json!([
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": [{"type": "text", "text": "sunny"}]}]},
    ]);
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["text"], "Tool toolu_9 said: sunny");
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_cut_the_answer() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut request = body("one two three");
    request["max_tokens"] = json!(2);
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["text"], "Echo: one");
    assert_eq!(answer["stop_reason"], "max_tokens");
    assert_eq!(answer["usage"]["output_tokens"], 2);

    request["max_tokens"] = json!(100);
    request["stop_sequences"] = json!(["three", "two"]);
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["text"], "Echo: one ");
    assert_eq!(answer["stop_reason"], "stop_sequence");
    assert_eq!(answer["stop_sequence"], "two");

    request["max_tokens"] = json!(1);
    let answer = invoke(&mock, &token, CLAUDE_MODEL, &request).await.json();
    assert_eq!(answer["content"][0]["text"], "Echo:");
    assert_eq!(answer["stop_reason"], "max_tokens");
    assert_eq!(answer["stop_sequence"], Value::Null);
}

#[tokio::test]
async fn bedrock_refuses_what_the_real_service_refuses() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut request = body("hi");
        change(&mut request);
        request
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|r| r["model"] = json!(CLAUDE_MODEL)),
            "extraneous key [model] is not permitted",
        ),
        (
            with(&|r| r["stream"] = json!(true)),
            "extraneous key [stream] is not permitted",
        ),
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("anthropic_version");
            }),
            "required key [anthropic_version] not found",
        ),
        (
            with(&|r| r["anthropic_version"] = json!("2023-06-01")),
            "#/anthropic_version",
        ),
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("max_tokens");
            }),
            "required key [max_tokens] not found",
        ),
        (with(&|r| r["max_tokens"] = json!(0)), "#/max_tokens"),
        (with(&|r| r["max_tokens"] = json!("10")), "#/max_tokens"),
        (with(&|r| r["max_tokens"] = json!(1.5)), "#/max_tokens"),
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("messages");
            }),
            "required key [messages] not found",
        ),
        (
            with(&|r| r["messages"] = json!([])),
            "expected minimum item count: 1",
        ),
        (
            with(&|r| r["messages"] = json!([{"role": "assistant", "content": "hi"}])),
            "first message must use the \"user\" role",
        ),
        (
            with(&|r| r["messages"] = json!([{"role": "system", "content": "hi"}])),
            "#/messages/0/role",
        ),
        (
            with(&|r| {
                r["messages"] =
                    json!([{"role": "user", "content": [{"type": "input_text", "text": "x"}]}])
            }),
            "messages.0.content.0.type",
        ),
        (
            with(&|r| r["anthropic_beta"] = json!("interleaved-thinking-2025-05-14")),
            "#/anthropic_beta",
        ),
        (
            with(&|r| r["anthropic_beta"] = json!([1])),
            "#/anthropic_beta/0",
        ),
        (
            with(&|r| r["thinking"] = json!({"type": "enabled", "budget_tokens": 2048})),
            "thinking.type.adaptive",
        ),
        (
            with(&|r| {
                r["thinking"] = json!({"type": "adaptive"});
                r["temperature"] = json!(0.3);
            }),
            "`temperature`",
        ),
        (
            with(&|r| {
                r["thinking"] = json!({"type": "adaptive"});
                r["top_p"] = json!(0.3);
            }),
            "`top_p`",
        ),
        (
            with(&|r| {
                r["thinking"] = json!({"type": "adaptive"});
                r["top_k"] = json!(3);
            }),
            "`top_k`",
        ),
    ];
    let count = cases.len() as u64;
    for (request, expected) in cases {
        let message = refused(&invoke(&mock, &token, CLAUDE_MODEL, &request).await);
        assert!(message.contains(expected), "{request}: {message}");
    }
    // Older models take the budgeted form; the adaptive one passes everywhere.
    let enabled = with(&|r| r["thinking"] = json!({"type": "enabled", "budget_tokens": 2048}));
    let older = "sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet";
    let reply = invoke(&mock, &token, older, &enabled).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = invoke(
        &mock,
        &token,
        "sfdc_ai__DefaultBedrockAnthropicClaude5Opus",
        &enabled,
    )
    .await;
    assert!(refused(&reply).contains("adaptive"));
    let adaptive = with(&|r| {
        r["thinking"] = json!({"type": "adaptive"});
        r["anthropic_beta"] = json!(["interleaved-thinking-2025-05-14"]);
        r["output_config"] = json!({"effort": "high"});
    });
    let reply = invoke(&mock, &token, CLAUDE_MODEL, &adaptive).await;
    assert_eq!(reply.status, StatusCode::OK);

    let reply = native_request(
        &mock,
        &format!("/model/{CLAUDE_MODEL}/invoke"),
        &token,
        &[],
        &json!(null),
    )
    .body("{nope")
    .send()
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(mock.state().counters().bedrock_requests, count + 4);
}

#[tokio::test]
async fn bedrock_shares_the_gateway_checks() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let reply = invoke(&mock, "not-a-token", CLAUDE_MODEL, &body("hi")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), fixture("error.401.json"));
    for model in [GPT_MODEL, "claude-sonnet-4-6", CHAT_MODEL] {
        let reply = invoke(&mock, &token, model, &body("hi")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{model}");
        assert_eq!(reply.json(), fixture("error.404.json"));
    }
    let reply = native(
        &mock,
        &format!("/model/{CLAUDE_MODEL}/converse"),
        &token,
        &body("hi"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.headers.contains_key("x-request-id"));
    let reply = native_request(
        &mock,
        &format!("/model/{CLAUDE_MODEL}/invoke"),
        &token,
        &[("x-client-feature-id", "")],
        &body("hi"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    // The unknown action was refused before counting, as on the Einstein paths.
    assert_eq!(mock.state().counters().bedrock_requests, 5);
}

#[tokio::test]
async fn a_text_stream_follows_the_spec_events() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut request = body("hello big world");
    request["system"] =
        json!([{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]);
    let streamed = invoke_stream(&mock, &token, CLAUDE_MODEL, &request).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert_eq!(
        streamed.headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let (_, _, split) = read_frames(&streamed);
    assert!(split, "some read ends inside a frame");
    let events = read_events(&streamed);
    assert_eq!(
        kinds(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(text_deltas(&events).concat(), "Echo: hello big world");
    let start = &events[0]["message"];
    assert_eq!(start["model"], "claude-sonnet-4-6");
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 256);
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(events[7]["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[7]["usage"]["output_tokens"], 4);
    let metrics = &events[8]["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["inputTokenCount"], 5);
    assert_eq!(metrics["outputTokenCount"], 4);
    assert!(metrics["invocationLatency"].is_u64() && metrics["firstByteLatency"].is_u64());
    // The fixture's events, key for key.
    let spec = std::fs::read_to_string(format!(
        "{}/tests/fixtures/native.bedrock.stream.events.jsonl",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for line in spec.lines() {
        let expected: Value = serde_json::from_str(line).unwrap();
        if expected["type"] == "content_block_start" || expected["type"] == "content_block_delta" {
            continue; // a tool call there; the next test has one.
        }
        let found = events
            .iter()
            .find(|event| event["type"] == expected["type"])
            .unwrap();
        assert_same_shape(found, &expected, expected["type"].as_str().unwrap());
    }
    let recorded = mock.state().last_model_request().unwrap();
    assert!(recorded.path.ends_with("/invoke-with-response-stream"));
    assert_eq!(recorded.body, request.to_string().as_bytes());
}

#[tokio::test]
async fn a_tool_use_streams_as_json_fragments() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut request = body("Weather in Paris?");
    request["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let events = read_events(&invoke_stream(&mock, &token, CLAUDE_MODEL, &request).await);
    let spec: Vec<Value> = std::fs::read_to_string(format!(
        "{}/tests/fixtures/native.bedrock.stream.events.jsonl",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .lines()
    .map(|line| serde_json::from_str(line).unwrap())
    .collect();
    assert_eq!(kinds(&events)[..2], kinds(&spec)[..2]);
    assert_eq!(
        kinds(&events)[kinds(&events).len() - 3..],
        kinds(&spec)[4..]
    );
    assert_same_shape(&events[1], &spec[1], "content_block_start");
    assert_eq!(events[1]["content_block"]["id"], "toolu_1");
    let fragments: Vec<&str> = events
        .iter()
        .filter(|event| event["delta"]["type"] == "input_json_delta")
        .map(|event| event["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert!(fragments.len() >= 3, "{fragments:?}");
    let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(input, json!({"echo": "Weather in Paris?"}));
    let delta = events
        .iter()
        .find(|event| event["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn a_stream_stops_at_max_tokens_and_stop_sequences() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut request = body("a b c d");
    request["stop_sequences"] = json!([" c"]);
    let events = read_events(&invoke_stream(&mock, &token, CLAUDE_MODEL, &request).await);
    assert_eq!(text_deltas(&events).concat(), "Echo: a b");
    let delta = &events[events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(delta["delta"]["stop_sequence"], " c");
    request["max_tokens"] = json!(2);
    let events = read_events(&invoke_stream(&mock, &token, CLAUDE_MODEL, &request).await);
    assert_eq!(text_deltas(&events), ["Echo:", " a"]);
    assert_eq!(
        events[events.len() - 2]["delta"]["stop_reason"],
        "max_tokens"
    );
}

#[tokio::test]
async fn the_stream_pace_spaces_frames_out() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().set_stream_pace(Duration::from_millis(60));
    let streamed = invoke_stream(&mock, &token, CLAUDE_MODEL, &body("a b")).await;
    assert_eq!(read_events(&streamed).len(), 8);
    let (first, _) = streamed.chunks[0];
    let (last, _) = streamed.chunks.last().unwrap();
    // Eight frames in nine writes, eight pauses between them.
    assert!(
        *last - first >= Duration::from_millis(400),
        "{first:?} {last:?}"
    );
    assert!(first < Duration::from_millis(100));
}

#[tokio::test]
async fn bedrock_stream_faults() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let request = body("one two three four");
    let stream = |fault: Fault| {
        mock.state().inject(fault, 1);
        invoke_stream(&mock, &token, CLAUDE_MODEL, &request)
    };

    // A failure: two deltas, then an exception frame, then nothing.
    let streamed = stream(Fault::StreamFailure).await;
    let (frames, end, _) = read_frames(&streamed);
    end.unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last.string_header(":message-type"), Some("exception"));
    assert_eq!(
        last.string_header(":exception-type"),
        Some("modelStreamErrorException")
    );
    let payload: Value = serde_json::from_slice(&last.payload).unwrap();
    assert!(payload["message"].is_string());
    assert_eq!(payload.as_object().unwrap().len(), 1);
    let deltas = frames[..frames.len() - 1]
        .iter()
        .map(|frame| {
            serde_json::from_slice::<Value>(&chunk_bytes(&frame.payload).unwrap()).unwrap()
        })
        .filter(|event| event["type"] == "content_block_delta")
        .count();
    assert_eq!(deltas, 2);
    assert_eq!(frames.len(), 5);

    // A bad CRC after the first delta.
    let streamed = stream(Fault::MalformedEvent).await;
    let (frames, end, _) = read_frames(&streamed);
    assert!(
        matches!(end, Err(DecodeError::MessageCrc { .. })),
        "{end:?}"
    );
    assert_eq!(frames.len(), 3);

    // No content block at all.
    let events = read_events(&stream(Fault::EmptyStream).await);
    assert_eq!(
        kinds(&events),
        ["message_start", "message_delta", "message_stop"]
    );
    assert_eq!(events[1]["usage"]["output_tokens"], 0);

    // JSON where the stream should be.
    let streamed = stream(Fault::NotAStream).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(streamed.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&streamed.body()).unwrap(),
        json!({"message": "Too many requests"})
    );

    // One huge delta first.
    let events = read_events(&stream(Fault::OversizedEvent(200_000)).await);
    assert_eq!(text_deltas(&events)[0], "x".repeat(200_000));
    assert_eq!(kinds(&events).last(), Some(&"message_stop"));

    // A stall after the first delta.
    let streamed = stream(Fault::StreamStall(Duration::from_millis(400))).await;
    let gap = (1..streamed.chunks.len())
        .max_by_key(|&at| streamed.chunks[at].0 - streamed.chunks[at - 1].0)
        .unwrap();
    // Most of the 400 ms pause: the chunk before it may be read a little after it was written.
    let pause = streamed.chunks[gap].0 - streamed.chunks[gap - 1].0;
    assert!(pause >= Duration::from_millis(300), "{pause:?}");
    let before = Chunks {
        status: streamed.status,
        headers: streamed.headers.clone(),
        chunks: streamed.chunks[..gap].to_vec(),
    };
    assert_eq!(text_deltas(&events_of(&before)), ["Echo:"]);
    assert_eq!(
        text_deltas(&events_of(&streamed)).concat(),
        "Echo: one two three four"
    );

    // Cut in half: the decoder is left inside a frame.
    let streamed = stream(Fault::TruncatedJson).await;
    let (_, end, _) = read_frames(&streamed);
    assert!(matches!(end, Err(DecodeError::Truncated { .. })), "{end:?}");

    // Status faults in Bedrock's shape.
    mock.state().inject(
        Fault::Status {
            status: 429,
            retry_after_secs: Some(2),
        },
        1,
    );
    let reply = invoke(&mock, &token, CLAUDE_MODEL, &request).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["retry-after"], "2");
    assert_eq!(reply.headers["x-amzn-errortype"], "ThrottlingException");
    assert!(reply.json()["message"].is_string());
    let streamed = stream(Fault::Status {
        status: 500,
        retry_after_secs: None,
    })
    .await;
    assert_eq!(streamed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        streamed.headers["x-amzn-errortype"],
        "InternalServerException"
    );
    mock.state().inject(Fault::Unauthorized, 1);
    let reply = invoke(&mock, &token, CLAUDE_MODEL, &request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(mock.state().counters().abandoned_model_calls, 0);
}

/// The events of the frames decoded so far, the stream possibly unfinished.
fn events_of(streamed: &Chunks) -> Vec<Value> {
    let (frames, _, _) = read_frames(streamed);
    frames
        .iter()
        .map(|frame| serde_json::from_slice(&chunk_bytes(&frame.payload).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn an_endless_bedrock_stream_is_abandoned_when_left() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().inject(Fault::EndlessStream, 1);
    let mut request = body("hi");
    request["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    let path = format!("/model/{CLAUDE_MODEL}/invoke-with-response-stream");
    let mut response = native_request(&mock, &path, &token, &[], &request)
        .send()
        .await
        .unwrap();
    let mut decoder = Decoder::new(Limits::default());
    let mut deltas = 0;
    while deltas < 30 {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        decoder.push(&chunk);
        while let Some(frame) = decoder.next_frame().unwrap() {
            let event: Value =
                serde_json::from_slice(&chunk_bytes(&frame.payload).unwrap()).unwrap();
            assert_ne!(event["type"], "message_stop");
            if event["delta"]["type"] == "text_delta" {
                deltas += 1;
            }
        }
    }
    drop(response);
    abandoned(&mock, 1).await;
}
