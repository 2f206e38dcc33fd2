use serde_json::json;

use super::models::assert_same_shape;
use super::*;

/// The events of a `/responses` stream: `(event name, data)`, in order.
pub(super) fn sse_events(body: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = value.to_owned();
                } else {
                    panic!("unexpected line {line:?}");
                }
            }
            (name, data)
        })
        .collect()
}

/// The events of a well-formed stream as JSON, each checked to carry its name as `type`.
pub(super) fn sse_json(body: &[u8]) -> Vec<Value> {
    sse_events(body)
        .into_iter()
        .map(|(name, data)| {
            let event: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(event["type"], name.as_str());
            event
        })
        .collect()
}

pub(super) fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect()
}

pub(super) async fn respond(mock: &MockSalesforce, token: &str, body: Value) -> Reply {
    native(mock, "/responses", token, &body).await
}

pub(super) async fn respond_stream(mock: &MockSalesforce, token: &str, mut body: Value) -> Chunks {
    body["stream"] = json!(true);
    let request = native_request(mock, "/responses", token, &[], &body);
    chunks(request.send().await.unwrap()).await
}

fn hello(text: &str) -> Value {
    json!({"model": GPT_MODEL, "input": text})
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true})
}

fn text_of(response: &Value) -> String {
    let message = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["type"] == "message")
        .unwrap();
    message["content"][0]["text"].as_str().unwrap().to_owned()
}

fn refused(reply: &Reply) -> (String, Value) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error.get("code").is_some() && error.get("param").is_some());
    (
        error["message"].as_str().unwrap().to_owned(),
        error["param"].clone(),
    )
}

#[tokio::test]
async fn responses_echo_in_the_spec_shape() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let body = json!({
        "model": GPT_MODEL,
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "developer", "content": "Answer in English."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is"}, {"type": "input_image", "image_url": "data:image/png;base64,AA=="}, {"type": "input_text", "text": "up?"}]},
        ],
        "reasoning": {"effort": "high", "summary": "auto"},
        "prompt_cache_key": "session-1",
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "client_metadata": {"x": "y"},
        "metadata": {"a": "b"},
        "parallel_tool_calls": true,
        "text": {"format": {"type": "text"}},
        "tools": [{"type": "web_search"}, {"type": "namespace", "name": "ns"}],
    });
    let reply = respond(&mock, &token, body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.headers.contains_key("x-request-id"));
    let answer = reply.json();
    assert_same_shape(&answer, &fixture("native.responses.response.json"), "");
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["model"], GPT_MODEL);
    assert!(answer["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(answer["output"][0]["type"], "reasoning");
    assert_eq!(answer["output"][1]["type"], "message");
    assert!(answer["output"][1]["id"]
        .as_str()
        .unwrap()
        .starts_with("msg_"));
    assert_eq!(text_of(&answer), "Echo: What is up?");
    // 2 + 3 + 3 words, plus 32 cached; 4 words out, plus 16 reasoning.
    let usage = &answer["usage"];
    assert_eq!(usage["input_tokens"], 8 + 32);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 32);
    assert_eq!(usage["output_tokens"], 4 + 16);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 16);
    assert_eq!(usage["total_tokens"], 40 + 20);

    let recorded = mock.state().last_model_request().unwrap();
    assert_eq!(recorded.path, "/ai/gpt/v1/responses");
    assert_eq!(recorded.body, body.to_string().as_bytes());
    assert_eq!(recorded.headers["x-sfdc-app-context"], "EinsteinGPT");
    assert_eq!(mock.state().counters().responses_requests, 1);
    assert_eq!(mock.state().counters().model_requests(), 1);

    let plain = respond(&mock, &token, hello("hi there")).await.json();
    assert_eq!(text_of(&plain), "Echo: hi there");
    assert_eq!(plain["output"].as_array().unwrap().len(), 1);
    assert_eq!(plain["usage"]["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        plain["usage"]["output_tokens_details"]["reasoning_tokens"],
        0
    );
    assert_eq!(plain["usage"]["input_tokens"], 2);
    assert_eq!(plain["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn function_tools_get_one_call_and_tool_outputs_an_answer() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let other = json!({"type": "function", "name": "get_time", "parameters": {}});
    let mut body = json!({
        "model": GPT_MODEL,
        "input": [{"role": "user", "content": "Weather in \"Paris\"?"}],
        "tools": [{"type": "web_search"}, weather_tool(), other],
        "tool_choice": "auto",
    });
    let answer = respond(&mock, &token, body.clone()).await.json();
    let call = &answer["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["call_id"], "call_1");
    assert_eq!(call["status"], "completed");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"echo": "Weather in \"Paris\"?"}));

    body["tool_choice"] = json!({"type": "function", "name": "get_time"});
    let answer = respond(&mock, &token, body.clone()).await.json();
    assert_eq!(answer["output"][0]["name"], "get_time");
    assert_eq!(answer["output"][0]["call_id"], "call_2");

    body["tool_choice"] = json!("none");
    let answer = respond(&mock, &token, body.clone()).await.json();
    assert_eq!(text_of(&answer), "Echo: Weather in \"Paris\"?");

    body["tool_choice"] = json!("required");
    body["input"] = json!([
        {"type": "message", "role": "user", "content": "Weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18 C, clear"},
    ]);
    let answer = respond(&mock, &token, body.clone()).await.json();
    assert_eq!(text_of(&answer), "Tool call_1 said: 18 C, clear");
}

#[tokio::test]
async fn max_output_tokens_cuts_the_answer() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let mut body = hello("one two three four");
    body["max_output_tokens"] = json!(3);
    let answer = respond(&mock, &token, body.clone()).await.json();
    assert_eq!(answer["status"], "incomplete");
    assert_eq!(answer["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(text_of(&answer), "Echo: one two");
    assert_eq!(answer["output"][0]["status"], "incomplete");
    assert_eq!(answer["usage"]["output_tokens"], 3);

    body["max_output_tokens"] = json!(5);
    let answer = respond(&mock, &token, body).await.json();
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["incomplete_details"], Value::Null);
}

#[tokio::test]
async fn responses_refuse_what_the_real_service_refuses() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let with = |extra: Value| {
        let mut body = hello("hi");
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for (extra, param) in [
        (
            json!({"reasoning": {"effort": "low"}, "temperature": 0.5}),
            "temperature",
        ),
        (
            json!({"reasoning": {"effort": "xhigh"}, "top_p": 0.9}),
            "top_p",
        ),
        (json!({"reasoning": {"effort": "max"}}), "reasoning.effort"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            "tools[0].name",
        ),
        (
            json!({"tools": [{"type": "function", "name": "f", "function": {"name": "f"}}]}),
            "tools[0].function",
        ),
        (json!({"input": null}), "input"),
        (json!({"input": 42}), "input"),
        (json!({"input": {"role": "user", "content": "hi"}}), "input"),
        (
            json!({"input": [{"type": "image", "url": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"input": [{"type": "message", "role": "robot", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c"}]}),
            "input[0].output",
        ),
        (
            json!({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}),
            "input[0].name",
        ),
        (json!({"tool_choice": "sometimes"}), "tool_choice"),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "name": "nope"}}),
            "tool_choice",
        ),
        (json!({"max_output_tokens": "ten"}), "max_output_tokens"),
        (json!({"stream": "yes"}), "stream"),
    ] {
        let reply = respond(&mock, &token, with(extra.clone())).await;
        let (message, found) = refused(&reply);
        assert_eq!(found, param, "{extra}: {message}");
    }
    let reply = respond(&mock, &token, with(json!({"reasoning": {"effort": "max"}}))).await;
    assert!(refused(&reply).0.starts_with("Unexpected value 'max'"));

    // Reasoning off: sampling settings pass.
    for extra in [
        json!({"temperature": 0.5, "top_p": 0.5}),
        json!({"reasoning": {"effort": "none"}, "temperature": 0.5}),
    ] {
        let reply = respond(&mock, &token, with(extra)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    let reply = native_request(&mock, "/responses", &token, &[], &json!(null))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(mock.state().counters().responses_requests, 20);
}

#[tokio::test]
async fn responses_share_the_gateway_checks() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let send = |headers: &'static [(&'static str, &'static str)], body: Value| {
        let request = native_request(&mock, "/responses", &token, headers, &body);
        async move { reply(request.send().await.unwrap()).await }
    };
    let reply = send(&[("authorization", "")], hello("hi")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), fixture("error.401.json"));
    let reply = send(&[("x-sfdc-app-context", "")], hello("hi")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errorCode"], "BAD_ARGUMENT");
    let reply = send(&[("content-type", "text/plain")], hello("hi")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for model in [
        "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet",
        "gpt-5",
        "sfdc_ai__DefaultO3",
    ] {
        let reply = send(&[], json!({"model": model, "input": "hi"})).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{model}");
        assert_eq!(reply.json(), fixture("error.404.json"));
    }
    let reply = send(&[], json!({"model": "custom_gpt", "input": "hi"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = reqwest::Client::new()
        .get(format!("{}/responses", mock.gpt_api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(mock.state().counters().responses_requests, 7);
}

#[tokio::test]
async fn a_text_stream_follows_the_spec_events() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let streamed = respond_stream(&mock, &token, hello("hello big world")).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(streamed.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let body = streamed.body();
    assert!(!String::from_utf8_lossy(&body).contains("[DONE]"));
    let events = sse_json(&body);
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], index);
    }
    let deltas: String = events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Echo: hello big world");
    assert_eq!(events[8]["text"], "Echo: hello big world");
    // The fixture's events, key for key.
    let spec: Vec<Value> = sse_json(
        &std::fs::read(format!(
            "{}/tests/fixtures/native.responses.stream.sse",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    );
    for expected in &spec {
        let found = events
            .iter()
            .find(|event| event["type"] == expected["type"])
            .unwrap();
        assert_same_shape(found, expected, expected["type"].as_str().unwrap());
    }
    let completed = &events[11]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(text_of(completed), "Echo: hello big world");
    assert_eq!(completed["usage"]["output_tokens"], 4);
    let item_id = &events[2]["item"]["id"];
    assert!(events[4..9]
        .iter()
        .all(|event| event["item_id"] == *item_id));

    // Every event its own write at least; some split inside.
    assert!(streamed.chunks.len() >= events.len());
    assert!(streamed
        .chunks
        .iter()
        .any(|(_, chunk)| !chunk.ends_with(b"\n\n")));
    let recorded = mock.state().last_model_request().unwrap();
    let sent: Value = serde_json::from_slice(&recorded.body).unwrap();
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn streams_carry_calls_reasoning_and_cuts() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let body = json!({"model": GPT_MODEL, "input": "Weather in Paris, please?", "tools": [weather_tool()], "reasoning": {"effort": "medium"}});
    let events = sse_json(&respond_stream(&mock, &token, body).await.body());
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2]["item"]["type"], "reasoning");
    assert_eq!(events[4]["item"]["type"], "function_call");
    assert_eq!(events[4]["item"]["arguments"], "");
    assert_eq!(events[4]["output_index"], 1);
    let arguments: String = events[5..8]
        .iter()
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(events[8]["arguments"], arguments.as_str());
    let parsed: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(parsed["echo"], "Weather in Paris, please?");
    let completed = &events[10]["response"];
    assert_eq!(completed["output"][1]["call_id"], "call_1");
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        16
    );

    let mut cut = hello("a b c d e");
    cut["max_output_tokens"] = json!(2);
    let events = sse_json(&respond_stream(&mock, &token, cut).await.body());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    let deltas = events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 2);
}

#[tokio::test]
async fn the_stream_pace_spaces_events_out() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().set_stream_pace(Duration::from_millis(60));
    let streamed = respond_stream(&mock, &token, hello("a b c")).await;
    let events = sse_json(&streamed.body());
    assert_eq!(events.len(), 12);
    // The first event came long before the last: 11 pauses of 60 ms lie between them.
    let (first, _) = streamed.chunks[0];
    let (last, _) = streamed.chunks.last().unwrap();
    assert!(
        *last - first >= Duration::from_millis(500),
        "{first:?} {last:?}"
    );
    assert!(first < Duration::from_millis(100), "{first:?}");

    mock.state().reset();
    let started = Instant::now();
    respond_stream(&mock, &token, hello("a b c")).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}
