//! The native surfaces end to end: OpenAI's Responses API on a `responses` route and Anthropic's
//! Messages API on a `bedrock` route (passed through), every front on every native surface (through
//! the core), driven by the official SDKs (`tests/sdk/python/native_client.py`,
//! `tests/sdk/node/anthropic_client.mjs`), async-openai and raw HTTP, through each mount, against the
//! mock Salesforce's `/ai/gpt/v1`.
//!
//! The mock answers `Echo: <last user text>`; offered function tools, it calls the first one with
//! `{"echo": "<last user text>"}` (ids `call_<n>` and `toolu_<n>`, counted from 1 after a reset);
//! given a tool's result last, it answers `Tool <id> said: <result>`. Its stream faults shape the
//! upstream stream; the bridge must turn each into an error in the caller's own format, and keep
//! serving.

mod common;

use std::time::{Duration, Instant};

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use async_openai::types::responses::CreateResponse;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sf_models_bridge::mock::Fault;

use common::sdk::{answer, observe, Script, ANTHROPIC_NODE, NATIVE_PY};
use common::{
    http, panics, Gateway, Mount, Setup, CALLER_KEY, CHAT_MODEL, CLAUDE_NATIVE_MODEL,
    CLAUDE_NATIVE_SALESFORCE_MODEL, GPT_NATIVE_MODEL, GPT_NATIVE_SALESFORCE_MODEL, ROUTED_MODELS,
};

for_each_mount!(
    // The official SDKs.
    sdk_chat_tools_in_two_turns,
    sdk_chat_tool_call_stream,
    sdk_chat_reasoning_usage,
    sdk_chat_stream_arrives_incrementally,
    sdk_chat_midstream_failure_raises,
    sdk_responses_tools_in_two_turns,
    sdk_responses_through_the_core,
    sdk_responses_midstream_failure,
    sdk_openai_on_the_bedrock_route,
    sdk_messages_text_streams_and_metadata,
    sdk_messages_tools,
    sdk_messages_errors_have_anthropic_classes,
    sdk_messages_sdk_retries_a_429,
    sdk_messages_midstream_failure_raises,
    // async-openai.
    async_openai_chat_tools_on_native_routes,
    async_openai_responses_in_two_turns,
    // Raw HTTP.
    answers_name_the_callers_model,
    cached_and_reasoning_tokens_reach_the_caller,
    keys_and_anthropic_conventions,
    streams_are_incremental,
    a_caller_leaving_mid_stream_cancels_the_upstream,
    stream_faults_become_error_events,
    quiet_and_endless_upstreams_end_at_their_bounds,
    a_429_before_the_stream_is_retried,
    hostile_input_on_native_paths,
);

// What the scripts send (the same in native_client.py and anthropic_client.mjs).
const USER: &str = "What is the weather in Paris?";
const TOOL_OUTPUT: &str = "sunny and 21 C";
const TIMING_TEXT: &str = "one two three four five six seven";

/// The pace of paced streams: the mock waits this long between two events.
const PACE: Duration = Duration::from_millis(120);

/// Past any per-event bound the bridge may keep, well short of the whole-stream one.
const OVERSIZED_EVENT_BYTES: usize = 3 * 1024 * 1024;

const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A gateway that requires [`CALLER_KEY`].
async fn start(mount: Mount) -> Gateway {
    start_with(mount, Setup::default()).await
}

async fn start_with(mount: Mount, setup: Setup) -> Gateway {
    // Marks this thread as a test thread: its own failed assertions are not the bridge's panics.
    panics();
    let setup = setup.sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"));
    Gateway::start_with(mount, setup).await
}

fn echo(text: &str) -> String {
    format!("Echo: {text}")
}

fn tool_said(id: &str) -> String {
    format!("Tool {id} said: {TOOL_OUTPUT}")
}

fn echo_arguments() -> Value {
    json!({"echo": USER})
}

/// The body the bridge sent to the mock for the last model call, and its path.
fn upstream(gateway: &Gateway) -> (String, Value) {
    let sent = gateway
        .upstream()
        .last_model_request()
        .expect("a model call reached the mock");
    let body = serde_json::from_slice(&sent.body).expect("the bridge sent JSON");
    (sent.path, body)
}

// ---------------------------------------------------------------------------------------------
// The client APIs (fronts), for the raw HTTP tests
// ---------------------------------------------------------------------------------------------

/// A client API the bridge serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Chat,
    Responses,
    Messages,
}

/// The front and route pairs that stream for real: the native pairs pass through, the others go
/// through the core.
const STREAMING_PAIRS: [(Front, &str); 5] = [
    (Front::Chat, GPT_NATIVE_MODEL),
    (Front::Chat, CLAUDE_NATIVE_MODEL),
    (Front::Responses, GPT_NATIVE_MODEL),
    (Front::Messages, CLAUDE_NATIVE_MODEL),
    (Front::Messages, GPT_NATIVE_MODEL),
];

impl Front {
    fn path(self) -> &'static str {
        match self {
            Front::Chat => "/v1/chat/completions",
            Front::Responses => "/v1/responses",
            Front::Messages => "/v1/messages",
        }
    }

    /// A request for `text` to `model`.
    fn body(self, model: &str, text: &str, stream: bool) -> Value {
        match self {
            Front::Chat => json!({
                "model": model, "stream": stream,
                "messages": [{"role": "user", "content": text}],
            }),
            Front::Responses => json!({"model": model, "stream": stream, "input": text}),
            Front::Messages => json!({
                "model": model, "stream": stream, "max_tokens": 256,
                "messages": [{"role": "user", "content": text}],
            }),
        }
    }

    /// `POST` with the caller key presented as this front's clients do.
    fn post(
        self,
        client: &reqwest::Client,
        gateway: &Gateway,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let request = client.post(gateway.url(self.path())).json(body);
        match self {
            Front::Chat | Front::Responses => request.bearer_auth(CALLER_KEY),
            Front::Messages => request
                .header("x-api-key", CALLER_KEY)
                .header("anthropic-version", ANTHROPIC_VERSION),
        }
    }

    /// The text a whole answer carries.
    fn answer_text(self, body: &Value) -> String {
        match self {
            Front::Chat => body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Front::Responses => body["output"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|item| item["type"] == "message")
                .flat_map(|item| item["content"].as_array().into_iter().flatten())
                .filter_map(|part| part["text"].as_str())
                .collect(),
            Front::Messages => body["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|block| block["text"].as_str())
                .collect(),
        }
    }

    /// The text one streamed event adds.
    fn delta_text(self, event: &Sse) -> String {
        let Some(data) = event.json() else {
            return String::new();
        };
        match self {
            Front::Chat => data["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Front::Responses if data["type"] == "response.output_text.delta" => {
                data["delta"].as_str().unwrap_or_default().to_owned()
            }
            Front::Messages if data["delta"]["type"] == "text_delta" => data["delta"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Front::Responses | Front::Messages => String::new(),
        }
    }

    /// Whether `events` end as a complete answer does in this front.
    fn completed(self, events: &[Sse]) -> bool {
        match self {
            Front::Chat => events.iter().any(|event| event.data == "[DONE]"),
            Front::Responses => events
                .iter()
                .any(|event| event.kind() == "response.completed"),
            Front::Messages => events.iter().any(|event| event.kind() == "message_stop"),
        }
    }

    /// The error event a failed stream ends with in this front's format, if there is one.
    fn error_event(self, events: &[Sse]) -> Option<Value> {
        events.iter().find_map(|event| {
            let data = event.json()?;
            let is_error = match self {
                // `data: {"error": {"message", "type", ...}}`, OpenAI's mid-stream error.
                Front::Chat => data["error"]["message"].is_string(),
                // `event: error` (`{"type": "error", "message", "code"}`), or the API's own
                // `response.failed`.
                Front::Responses => {
                    (event.kind() == "error" && data["type"] == "error")
                        || (event.kind() == "response.failed"
                            && data["response"]["status"] == "failed")
                }
                // `event: error` + `{"type": "error", "error": {"type", "message"}}`.
                Front::Messages => {
                    event.kind() == "error"
                        && data["type"] == "error"
                        && data["error"]["type"].is_string()
                        && data["error"]["message"].is_string()
                }
            };
            is_error.then_some(data)
        })
    }

    /// Whether `body` is an error body in this front's format.
    fn is_error_body(self, body: &Value) -> bool {
        match self {
            Front::Chat | Front::Responses => {
                body["error"]["message"].is_string() && body["error"]["type"].is_string()
            }
            Front::Messages => {
                body["type"] == "error"
                    && body["error"]["type"].is_string()
                    && body["error"]["message"].is_string()
            }
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
struct Sse {
    event: Option<String>,
    data: String,
    /// When its last byte arrived, from the request's start.
    at: Duration,
}

impl Sse {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }

    /// The `event:` name, or the JSON `type`.
    fn kind(&self) -> String {
        self.event.clone().unwrap_or_else(|| {
            self.json()
                .and_then(|data| data["type"].as_str().map(str::to_owned))
                .unwrap_or_default()
        })
    }
}

/// What a streamed request got.
#[derive(Debug)]
struct Streamed {
    status: u16,
    content_type: String,
    /// Parsed events when the answer is an event stream.
    events: Vec<Sse>,
    /// The whole body otherwise (an error before the stream).
    body: String,
    /// The transport error that ended the body, if any.
    cut: Option<String>,
}

impl Streamed {
    fn text(&self, front: Front) -> String {
        self.events
            .iter()
            .map(|event| front.delta_text(event))
            .collect()
    }

    fn describe(&self) -> String {
        let events: Vec<String> = self
            .events
            .iter()
            .map(|event| {
                let data: String = event.data.chars().take(160).collect();
                format!("[{:?}] {data}", event.event)
            })
            .collect();
        format!(
            "status {} ({}), cut {:?}, body {:?}, events:\n{}",
            self.status,
            self.content_type,
            self.cut,
            self.body.chars().take(300).collect::<String>(),
            events.join("\n")
        )
    }
}

/// Splits complete events off the front of `buffer`.
fn take_events(buffer: &mut String, at: Duration, out: &mut Vec<Sse>) {
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = Sse {
            at,
            ..Sse::default()
        };
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event.event = Some(name.trim().to_owned());
            } else if let Some(line) = line.strip_prefix("data:") {
                data.push(line.strip_prefix(' ').unwrap_or(line));
            }
        }
        if data.is_empty() && event.event.is_none() {
            continue; // a keep-alive comment
        }
        event.data = data.join("\n");
        out.push(event);
    }
}

/// Sends `body` to `front` and reads the answer as it arrives.
async fn stream(gateway: &Gateway, front: Front, body: &Value) -> Streamed {
    let client = http();
    let started = Instant::now();
    let response = front
        .post(&client, gateway, body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let sse = content_type.starts_with("text/event-stream");
    let mut chunks = response.bytes_stream();
    let (mut buffer, mut raw, mut events, mut cut) = (String::new(), Vec::new(), Vec::new(), None);
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => {
                raw.extend_from_slice(&bytes);
                if sse {
                    buffer.push_str(&String::from_utf8_lossy(&bytes));
                    take_events(&mut buffer, started.elapsed(), &mut events);
                }
            }
            Err(error) => {
                cut = Some(error.to_string());
                break;
            }
        }
    }
    Streamed {
        status,
        content_type,
        events,
        body: String::from_utf8_lossy(&raw).into_owned(),
        cut,
    }
}

/// A whole (non-streamed) request: status and JSON body.
async fn whole(gateway: &Gateway, front: Front, body: &Value) -> (u16, Value) {
    common::status_and_json(front.post(&http(), gateway, body)).await
}

/// The pair still answers normally, streamed and whole.
async fn assert_pair_serves(gateway: &Gateway, front: Front, model: &str) {
    let text = "still serving?";
    let (status, body) = whole(gateway, front, &front.body(model, text, false)).await;
    assert_eq!(status, 200, "{front:?} on {model}: {body}");
    assert_eq!(
        front.answer_text(&body),
        echo(text),
        "{front:?} on {model}: {body}"
    );
    let streamed = stream(gateway, front, &front.body(model, text, true)).await;
    assert_eq!(
        streamed.status,
        200,
        "{front:?} on {model}: {}",
        streamed.describe()
    );
    assert_eq!(
        streamed.text(front),
        echo(text),
        "{front:?} on {model}: {}",
        streamed.describe()
    );
    assert!(
        front.completed(&streamed.events),
        "{front:?} on {model}: {}",
        streamed.describe()
    );
}

/// Why the stream did not fail in `front`'s format, if it did not. Failed means: an error event
/// and no completion, or, when the failure was seen before the answer started, an error status
/// with an error body in that format.
fn not_failed(front: Front, model: &str, what: &str, streamed: &Streamed) -> Option<String> {
    let context = format!("{what}: {front:?} on {model}: {}", streamed.describe());
    let problem = if streamed.status == 200 {
        if !streamed.content_type.starts_with("text/event-stream") {
            Some("a 200 that is not an event stream")
        } else if front.error_event(&streamed.events).is_none() {
            Some("no error event")
        } else if front.completed(&streamed.events) {
            Some("an error event, and a completion too")
        } else {
            None
        }
    } else if streamed.status < 400 {
        Some("neither a stream nor an error status")
    } else {
        match serde_json::from_str::<Value>(&streamed.body) {
            Ok(body) if front.is_error_body(&body) => None,
            _ => Some("an error status without the front's error body"),
        }
    };
    problem.map(|problem| format!("{problem}: {context}"))
}

fn assert_failed(front: Front, model: &str, what: &str, streamed: &Streamed) {
    if let Some(problem) = not_failed(front, model, what, streamed) {
        panic!("{problem}");
    }
}

/// `sfbridge_in_flight_requests`, all endpoints, as the layer renders them (no scrape in flight).
fn requests_in_flight(gateway: &Gateway) -> f64 {
    gateway
        .layer
        .metrics()
        .render()
        .lines()
        .filter(|line| line.starts_with("sfbridge_in_flight_requests{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The official SDKs
// ---------------------------------------------------------------------------------------------

/// Runs `items` (scenario, model) in turn in one process of `script` (an interpreter start and an
/// SDK import cost seconds), presenting `key`: one observation per item.
async fn runs(script: Script, gateway: &Gateway, key: &str, items: &[(&str, &str)]) -> Vec<Value> {
    let joined: Vec<String> = items
        .iter()
        .map(|(scenario, model)| format!("{scenario}@{model}"))
        .collect();
    let seen = observe(script, gateway, key, &[&joined.join(",")]).await;
    if items.len() == 1 {
        return vec![seen];
    }
    let runs = seen["runs"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{script}: no runs: {seen}"));
    assert_eq!(runs.len(), items.len(), "{script}: {seen}");
    runs
}

/// [`runs`] with the key the test gateways accept, asserting that the SDK raised nothing.
async fn answers(script: Script, gateway: &Gateway, items: &[(&str, &str)]) -> Vec<Value> {
    let runs = runs(script, gateway, CALLER_KEY, items).await;
    for seen in &runs {
        assert!(seen.get("error").is_none(), "{script} raised: {seen}");
    }
    runs
}

/// The strings of a JSON array.
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Arguments or input that must be the mock's `{"echo": USER}`, as JSON text.
fn assert_echo_arguments(arguments: &Value, seen: &Value) {
    let parsed: Value = serde_json::from_str(arguments.as_str().unwrap_or("null"))
        .unwrap_or_else(|_| panic!("the arguments are JSON text: {seen}"));
    assert_eq!(parsed, echo_arguments(), "{seen}");
}

/// The id the upstream gives a tool call: `call_<n>` on Responses, `toolu_<n>` on Bedrock.
fn assert_call_id(id: &Value, model: &str, seen: &Value) {
    let prefix = if model == CLAUDE_NATIVE_MODEL {
        "toolu_"
    } else {
        "call_"
    };
    assert!(
        id.as_str().is_some_and(|id| id.starts_with(prefix)),
        "{model}: {seen}"
    );
}

async fn sdk_chat_tools_in_two_turns(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    let seen = answer(NATIVE_PY, &gateway, &["chat_tools_two_turns"]).await;
    assert_eq!(seen["model"], GPT_NATIVE_MODEL, "{seen}");
    let first = &seen["first"];
    assert_eq!(first["finish_reason"], "tool_calls", "{seen}");
    assert_eq!(
        first["tool_calls"].as_array().map(Vec::len),
        Some(1),
        "{seen}"
    );
    let call = &first["tool_calls"][0];
    assert_eq!(call["id"], "call_1", "{seen}");
    assert_eq!(call["type"], "function", "{seen}");
    assert_eq!(call["name"], "get_weather", "{seen}");
    assert_echo_arguments(&call["arguments"], &seen);
    let second = &seen["second"];
    assert_eq!(second["finish_reason"], "stop", "{seen}");
    assert_eq!(second["text"], tool_said("call_1"), "{seen}");
    // The second turn reached the Responses surface as the API's own items.
    let (path, body) = upstream(&gateway);
    assert!(path.ends_with("/ai/gpt/v1/responses"), "{path}");
    assert_eq!(body["model"], GPT_NATIVE_SALESFORCE_MODEL, "{body}");
    let items = body["input"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = items
        .iter()
        .filter_map(|item| item["type"].as_str())
        .collect();
    assert!(kinds.contains(&"function_call"), "{body}");
    let output = items
        .iter()
        .find(|item| item["type"] == "function_call_output")
        .unwrap_or_else(|| panic!("a function_call_output: {body}"));
    assert_eq!(output["call_id"], "call_1", "{body}");
    assert_eq!(output["output"], TOOL_OUTPUT, "{body}");
    assert_eq!(
        body["tools"][0]["name"], "get_weather",
        "tools flattened for /responses: {body}"
    );
    assert_eq!(gateway.counters().responses_requests, 2);
    gateway.stop().await;
}

async fn sdk_chat_tool_call_stream(mount: Mount) {
    let gateway = start(mount).await;
    let models = [GPT_NATIVE_MODEL, CLAUDE_NATIVE_MODEL];
    let items = models.map(|model| ("chat_tools_stream", model));
    let observed = answers(NATIVE_PY, &gateway, &items).await;
    for (model, seen) in models.into_iter().zip(&observed) {
        assert_eq!(seen["models"], json!([model]), "{seen}");
        assert_eq!(seen["finish_reason"], "tool_calls", "{seen}");
        assert_eq!(
            seen["tool_calls"].as_array().map(Vec::len),
            Some(1),
            "{seen}"
        );
        let call = &seen["tool_calls"][0];
        assert_call_id(&call["id"], model, seen);
        assert_eq!(call["name"], "get_weather", "{seen}");
        assert_echo_arguments(&call["arguments"], seen);
        assert!(
            seen["argument_pieces"].as_u64().unwrap_or(0) >= 2,
            "the arguments arrived in pieces, as the upstream sent them: {seen}"
        );
    }
    gateway.stop().await;
}

async fn sdk_chat_reasoning_usage(mount: Mount) {
    let gateway = start(mount).await;
    let seen = answer(NATIVE_PY, &gateway, &["chat_usage_reasoning"]).await;
    assert_eq!(seen["text"], echo(USER), "{seen}");
    let usage = &seen["usage"];
    assert_eq!(
        usage["completion_tokens_details"]["reasoning_tokens"], 16,
        "{seen}"
    );
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["completion_tokens"].as_u64().unwrap_or(0),
    );
    assert!(
        completion >= 16,
        "reasoning is part of the completion: {seen}"
    );
    assert_eq!(usage["total_tokens"], prompt + completion, "{seen}");
    let (_, body) = upstream(&gateway);
    assert_eq!(body["reasoning"]["effort"], "low", "{body}");
    gateway.stop().await;
}

async fn sdk_chat_stream_arrives_incrementally(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().set_stream_pace(PACE);
    let seen = answer(NATIVE_PY, &gateway, &["chat_stream_timing"]).await;
    assert_eq!(seen["text"], echo(TIMING_TEXT), "{seen}");
    let arrivals: Vec<f64> = seen["arrivals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    assert!(arrivals.len() >= 6, "one chunk per word: {seen}");
    let (first, last) = (arrivals[0], arrivals[arrivals.len() - 1]);
    // Relayed as produced: the words reached the SDK spread over the time the upstream took to
    // send them, not at once at its end.
    let produced = PACE.as_secs_f64() * (arrivals.len() - 1) as f64;
    assert!(
        last - first >= 0.6 * produced && first < 0.6 * last,
        "the first words reached the SDK at {first}s, the last at {last}s: {seen}"
    );
    gateway.stop().await;
}

async fn sdk_chat_midstream_failure_raises(mount: Mount) {
    let gateway = start(mount).await;
    let models = [GPT_NATIVE_MODEL, CLAUDE_NATIVE_MODEL];
    gateway.upstream().inject(Fault::StreamFailure, 2);
    let items = models.map(|model| ("chat_midstream_failure", model));
    let observed = answers(NATIVE_PY, &gateway, &items).await;
    for (model, seen) in models.into_iter().zip(&observed) {
        let raised = &seen["raised"];
        assert_eq!(raised["class"], "APIError", "{model}: {seen}");
        assert!(
            raised["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{model}: {seen}"
        );
        // Two deltas left before the failure: "Echo:" and the first word.
        assert!(
            seen["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Echo:")),
            "{model}: the deltas before the failure reached the SDK: {seen}"
        );
        assert_ne!(seen["text"], echo(TIMING_TEXT), "{model}: {seen}");
        assert_pair_serves(&gateway, Front::Chat, model).await;
    }
    gateway.stop().await;
}

/// The function call a Responses summary's output holds.
fn function_call(summary: &Value) -> Value {
    summary["output"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["type"] == "function_call")
        .cloned()
        .unwrap_or(Value::Null)
}

async fn sdk_responses_tools_in_two_turns(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    let observed = answers(
        NATIVE_PY,
        &gateway,
        &[
            ("responses_create", GPT_NATIVE_MODEL),
            ("responses_stream", GPT_NATIVE_MODEL),
        ],
    )
    .await;
    let seen = &observed[0];
    let (first, second) = (&seen["first"], &seen["second"]);
    assert_eq!(first["object"], "response", "{seen}");
    assert_eq!(first["model"], GPT_NATIVE_MODEL, "{seen}");
    assert_eq!(first["status"], "completed", "{seen}");
    let call = function_call(first);
    assert_eq!(call["call_id"], "call_1", "{seen}");
    assert_eq!(call["name"], "get_weather", "{seen}");
    assert_echo_arguments(&call["arguments"], seen);
    assert_eq!(second["output_text"], tool_said("call_1"), "{seen}");
    assert_eq!(second["model"], GPT_NATIVE_MODEL, "{seen}");

    let seen = &observed[1];
    let (first, second) = (&seen["first"], &seen["second"]);
    let first_types = strings(&first["types"]);
    for kind in [
        "response.created",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ] {
        assert!(first_types.contains(&kind), "{kind}: {seen}");
    }
    assert_eq!(first_types.last(), Some(&"response.completed"), "{seen}");
    let call = function_call(&first["final"]);
    assert_eq!(call["call_id"], "call_2", "{seen}");
    assert_eq!(first["final"]["model"], GPT_NATIVE_MODEL, "{seen}");
    let deltas = strings(&second["types"])
        .into_iter()
        .filter(|kind| *kind == "response.output_text.delta")
        .count();
    assert!(deltas >= 4, "one delta per word: {seen}");
    assert_eq!(second["deltas"], tool_said("call_2"), "{seen}");
    assert_eq!(
        second["final"]["output_text"],
        tool_said("call_2"),
        "{seen}"
    );
    // Passed through: the caller's items, the Salesforce model.
    let (_, body) = upstream(&gateway);
    assert_eq!(body["model"], GPT_NATIVE_SALESFORCE_MODEL, "{body}");
    assert_eq!(body["stream"], true, "{body}");
    assert_eq!(body["input"][2]["type"], "function_call_output", "{body}");
    assert_eq!(body["input"][2]["call_id"], "call_2", "{body}");
    assert_eq!(body["tools"][0]["name"], "get_weather", "{body}");
    assert_eq!(gateway.counters().responses_requests, 4);
    gateway.stop().await;
}

async fn sdk_responses_through_the_core(mount: Mount) {
    let gateway = start(mount).await;
    let models = [CHAT_MODEL, CLAUDE_NATIVE_MODEL];
    let items = [
        ("responses_text", CHAT_MODEL),
        ("responses_text_stream", CHAT_MODEL),
        ("responses_text", CLAUDE_NATIVE_MODEL),
        ("responses_text_stream", CLAUDE_NATIVE_MODEL),
    ];
    let observed = answers(NATIVE_PY, &gateway, &items).await;
    for (model, pair) in models.into_iter().zip(observed.chunks(2)) {
        let seen = &pair[0];
        assert_eq!(seen["object"], "response", "{model}: {seen}");
        assert_eq!(seen["model"], model, "{model}: {seen}");
        assert_eq!(seen["status"], "completed", "{model}: {seen}");
        assert_eq!(seen["output_text"], echo(USER), "{model}: {seen}");
        let seen = &pair[1];
        assert_eq!(seen["deltas"], echo(USER), "{model}: {seen}");
        assert_eq!(seen["final"]["output_text"], echo(USER), "{model}: {seen}");
        assert_eq!(seen["final"]["model"], model, "{model}: {seen}");
        let types = strings(&seen["types"]);
        assert_eq!(types.first(), Some(&"response.created"), "{model}: {seen}");
        assert_eq!(types.last(), Some(&"response.completed"), "{model}: {seen}");
    }
    let counters = gateway.counters();
    assert_eq!((counters.chat_requests, counters.bedrock_requests), (2, 2));
    gateway.stop().await;
}

async fn sdk_responses_midstream_failure(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().inject(Fault::StreamFailure, 1);
    let seen = answer(NATIVE_PY, &gateway, &["responses_midstream_failure"]).await;
    let types = strings(&seen["types"]);
    let failed = seen["raised"].is_object()
        || types.contains(&"error")
        || types.contains(&"response.failed");
    assert!(failed, "the SDK saw the failure: {seen}");
    assert!(!types.contains(&"response.completed"), "{seen}");
    assert!(
        seen["deltas"]
            .as_str()
            .is_some_and(|d| d.starts_with("Echo:")),
        "{seen}"
    );
    assert_pair_serves(&gateway, Front::Responses, GPT_NATIVE_MODEL).await;
    gateway.stop().await;
}

async fn sdk_openai_on_the_bedrock_route(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    let seen = answer(NATIVE_PY, &gateway, &["chat_on_bedrock"]).await;
    let text = &seen["text"];
    assert_eq!(text["object"], "chat.completion", "{seen}");
    assert_eq!(text["model"], CLAUDE_NATIVE_MODEL, "{seen}");
    assert_eq!(text["text"], echo(USER), "{seen}");
    assert_eq!(text["finish_reason"], "stop", "{seen}");
    let usage = &text["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["completion_tokens"].as_u64().unwrap_or(0),
    );
    assert!(prompt > 0 && completion > 0, "{seen}");
    assert_eq!(usage["total_tokens"], prompt + completion, "{seen}");
    assert!(
        usage["prompt_tokens_details"]["cached_tokens"].is_u64(),
        "cached tokens are reported: {seen}"
    );
    let tools = &seen["tools"];
    assert_eq!(tools["model"], CLAUDE_NATIVE_MODEL, "{seen}");
    assert_eq!(tools["first"]["finish_reason"], "tool_calls", "{seen}");
    let call = &tools["first"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_1", "{seen}");
    assert_eq!(call["name"], "get_weather", "{seen}");
    assert_echo_arguments(&call["arguments"], &seen);
    assert_eq!(tools["second"]["text"], tool_said("toolu_1"), "{seen}");
    let streamed = &seen["tools_stream"];
    assert_eq!(streamed["finish_reason"], "tool_calls", "{seen}");
    assert_eq!(streamed["tool_calls"][0]["id"], "toolu_2", "{seen}");
    assert_echo_arguments(&streamed["tool_calls"][0]["arguments"], &seen);
    // The last call was an event-stream call with Bedrock's body: no model, no stream flag.
    let (path, body) = upstream(&gateway);
    assert!(
        path.ends_with(&format!(
            "/model/{CLAUDE_NATIVE_SALESFORCE_MODEL}/invoke-with-response-stream"
        )),
        "{path}"
    );
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31", "{body}");
    assert!(
        body.get("model").is_none() && body.get("stream").is_none(),
        "{body}"
    );
    assert_eq!(body["tools"][0]["name"], "get_weather", "{body}");
    assert_eq!(gateway.counters().bedrock_requests, 4);
    gateway.stop().await;
}

/// A message summary (from either script) for a text answer to [`USER`].
fn assert_message(script: Script, seen: &Value, model: &str) {
    assert_eq!(seen["type"], "message", "{script}: {seen}");
    assert_eq!(seen["role"], "assistant", "{script}: {seen}");
    assert_eq!(seen["model"], model, "{script}: {seen}");
    assert_eq!(
        seen["content"],
        json!([{"type": "text", "text": echo(USER)}]),
        "{script}: {seen}"
    );
    assert_eq!(seen["stop_reason"], "end_turn", "{script}: {seen}");
    assert!(
        seen["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{script}: {seen}"
    );
    let usage = &seen["usage"];
    assert!(
        usage["input_tokens"].as_u64().unwrap_or(0) > 0,
        "{script}: {seen}"
    );
    assert!(
        usage["output_tokens"].as_u64().unwrap_or(0) > 0,
        "{script}: {seen}"
    );
}

/// Messages to each kind of route: passed through to Bedrock, through the core elsewhere.
const MESSAGES_MODELS: [&str; 3] = [CLAUDE_NATIVE_MODEL, GPT_NATIVE_MODEL, CHAT_MODEL];

async fn sdk_messages_text_streams_and_metadata(mount: Mount) {
    let gateway = start(mount).await;
    for script in [NATIVE_PY, ANTHROPIC_NODE] {
        let mut items: Vec<(&str, &str)> = MESSAGES_MODELS
            .iter()
            .flat_map(|model| [("messages_create", *model), ("messages_stream", *model)])
            .collect();
        if script == NATIVE_PY {
            items.extend([
                ("messages_create_bearer", CLAUDE_NATIVE_MODEL),
                ("count_tokens", CLAUDE_NATIVE_MODEL),
                ("count_tokens", GPT_NATIVE_MODEL),
                ("models_list", CLAUDE_NATIVE_MODEL),
            ]);
        }
        // Each observation is checked in turn, so that one failure does not hide the others.
        let observed = runs(script, &gateway, CALLER_KEY, &items).await;
        for (model, pair) in MESSAGES_MODELS.into_iter().zip(observed.chunks(2)) {
            for seen in pair {
                assert!(seen.get("error").is_none(), "{script} raised: {seen}");
            }
            assert_message(script, &pair[0], model);
            let seen = &pair[1];
            assert_eq!(seen["text"], echo(USER), "{script} {model}: {seen}");
            assert_message(script, &seen["final"], model);
            if model != CHAT_MODEL {
                assert!(
                    seen["pieces"].as_u64().unwrap_or(0) >= 3,
                    "{script} {model}: a text event per word: {seen}"
                );
            }
        }
        if script == NATIVE_PY {
            let rest = &observed[MESSAGES_MODELS.len() * 2..];
            assert!(
                rest[0].get("error").is_none(),
                "{script} raised: {}",
                rest[0]
            );
            assert_message(script, &rest[0], CLAUDE_NATIVE_MODEL);
            // No surface counts tokens, and the bridge makes up no figures: a clear 404.
            for seen in &rest[1..3] {
                assert_raised("count_tokens", seen, "NotFoundError", &["not_found_error"]);
            }
            // Validated strictly against the SDK's `ModelInfo`.
            assert!(
                rest[3].get("error").is_none(),
                "{script} raised: {}",
                rest[3]
            );
            assert_eq!(rest[3]["ids"], json!(ROUTED_MODELS), "{}", rest[3]);
            assert_eq!(rest[3]["types"], json!(["model"]), "{}", rest[3]);
        }
    }
    gateway.stop().await;
}

async fn sdk_messages_tools(mount: Mount) {
    let gateway = start(mount).await;
    // Claude last, so that the last upstream call is its second turn.
    let models = [GPT_NATIVE_MODEL, CLAUDE_NATIVE_MODEL];
    for script in [NATIVE_PY, ANTHROPIC_NODE] {
        let mut items: Vec<(&str, &str)> = Vec::new();
        if script == NATIVE_PY {
            items.extend(models.map(|model| ("messages_tools_stream", model)));
        }
        items.extend(models.map(|model| ("messages_tools_two_turns", model)));
        if script == NATIVE_PY {
            items.push(("messages_cache_control", CLAUDE_NATIVE_MODEL));
        }
        let observed = answers(script, &gateway, &items).await;
        let two_turns = if script == NATIVE_PY {
            &observed[2..4]
        } else {
            &observed[..2]
        };
        for (model, seen) in models.into_iter().zip(two_turns) {
            let first = &seen["first"];
            assert_eq!(first["stop_reason"], "tool_use", "{script} {model}: {seen}");
            assert_eq!(first["model"], model, "{script} {model}: {seen}");
            let tool_use = first["content"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|block| block["type"] == "tool_use")
                .cloned()
                .unwrap_or(Value::Null);
            assert_call_id(&tool_use["id"], model, seen);
            assert_eq!(tool_use["name"], "get_weather", "{script} {model}: {seen}");
            assert_eq!(
                tool_use["input"],
                echo_arguments(),
                "{script} {model}: {seen}"
            );
            let second = &seen["second"];
            assert_eq!(
                second["stop_reason"], "end_turn",
                "{script} {model}: {seen}"
            );
            // The id went out and came back: the upstream answers with the id it was given.
            let id = tool_use["id"].as_str().unwrap_or_default();
            assert_eq!(
                second["content"][0]["text"],
                tool_said(id),
                "{script} {model}: {seen}"
            );
            if model == CLAUDE_NATIVE_MODEL && script == ANTHROPIC_NODE {
                let (_, body) = upstream(&gateway);
                let result = &body["messages"][2]["content"][0];
                assert_eq!(result["type"], "tool_result", "{body}");
                assert_eq!(result["tool_use_id"], id, "{body}");
            }
        }
        if script == NATIVE_PY {
            for (model, seen) in models.into_iter().zip(&observed[..2]) {
                let message = &seen["final"];
                assert_eq!(message["stop_reason"], "tool_use", "{model}: {seen}");
                assert_eq!(message["model"], model, "{model}: {seen}");
                let tool_use = &message["content"][0];
                assert_eq!(tool_use["type"], "tool_use", "{model}: {seen}");
                assert_eq!(tool_use["name"], "get_weather", "{model}: {seen}");
                assert_eq!(tool_use["input"], echo_arguments(), "{model}: {seen}");
                assert!(
                    seen["json_pieces"].as_u64().unwrap_or(0) >= 2,
                    "{model}: the input arrived in pieces: {seen}"
                );
                let types = strings(&seen["types"]);
                assert_eq!(types.first(), Some(&"message_start"), "{model}: {seen}");
                assert_eq!(types.last(), Some(&"message_stop"), "{model}: {seen}");
            }
            let cached = &observed[4];
            assert_eq!(cached["usage"]["cache_read_input_tokens"], 256, "{cached}");
            let (_, body) = upstream(&gateway);
            assert_eq!(
                body["system"],
                json!([{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]),
                "the system blocks reached Bedrock as sent: {body}"
            );
        }
    }
    gateway.stop().await;
}

/// What the Anthropic SDK raised: its class (with its bases) and Anthropic's error type.
fn assert_raised(case: &str, seen: &Value, class: &str, kinds: &[&str]) {
    let raised = &seen["raised"];
    assert!(
        strings(&raised["bases"]).contains(&class),
        "{case}: expected {class}: {seen}"
    );
    assert!(
        kinds.contains(&raised["type"].as_str().unwrap_or_default()),
        "{case}: expected the type {kinds:?}: {seen}"
    );
    assert_eq!(
        seen["body"]["type"], "error",
        "{case}: Anthropic's envelope: {seen}"
    );
}

async fn sdk_messages_errors_have_anthropic_classes(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    // Statuses from Salesforce, each on every attempt of the bridge (3 in the test gateways), in
    // the order of the scenarios that meet them; the other scenarios never reach Salesforce,
    // except the last, once the faults are used up.
    // A 529 is not retried: the policy retries 500 among the server errors.
    for (status, attempts) in [(429, 3), (500, 3), (503, 3), (529, 1)] {
        let fault = Fault::Status {
            status,
            retry_after_secs: None,
        };
        gateway.upstream().inject(fault, attempts);
    }
    let observed = answers(
        NATIVE_PY,
        &gateway,
        &[
            ("messages_wrong_key", CLAUDE_NATIVE_MODEL),
            ("messages_error", "claude-nope"),
            ("messages_bad_request", GPT_NATIVE_MODEL),
            ("messages_error", CLAUDE_NATIVE_MODEL),
            ("messages_error", CLAUDE_NATIVE_MODEL),
            ("messages_error", CLAUDE_NATIVE_MODEL),
            ("messages_error", CLAUDE_NATIVE_MODEL),
            ("messages_bad_request", CLAUDE_NATIVE_MODEL),
        ],
    )
    .await;
    let auth = ["authentication_error"];
    assert_raised("a wrong key", &observed[0], "AuthenticationError", &auth);
    let not_found = ["not_found_error"];
    assert_raised(
        "an unknown model",
        &observed[1],
        "NotFoundError",
        &not_found,
    );
    let invalid = ["invalid_request_error"];
    assert_raised("a role (core)", &observed[2], "BadRequestError", &invalid);
    assert_raised("429", &observed[3], "RateLimitError", &["rate_limit_error"]);
    assert_raised("500", &observed[4], "InternalServerError", &["api_error"]);
    let overloaded = ["overloaded_error", "api_error"];
    assert_raised("503", &observed[5], "InternalServerError", &overloaded);
    assert_raised("529", &observed[6], "InternalServerError", &overloaded);
    assert_raised(
        "a role (Bedrock)",
        &observed[7],
        "BadRequestError",
        &invalid,
    );
    assert_eq!(
        gateway.counters().bedrock_requests,
        3 * 3 + 1 + 1,
        "429, 500 and 503 tried 3 times, 529 once, then the bad role"
    );
    gateway.stop().await;
}

async fn sdk_messages_sdk_retries_a_429(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    // Every attempt of the bridge's first request is refused: the SDK gets the 429, waits and
    // retries on its own, and its second request succeeds.
    gateway.upstream().inject(
        Fault::Status {
            status: 429,
            retry_after_secs: None,
        },
        3,
    );
    let seen = answer(NATIVE_PY, &gateway, &["messages_retry_429"]).await;
    assert_message(NATIVE_PY, &seen, CLAUDE_NATIVE_MODEL);
    assert_eq!(seen["retries_taken"], 1, "{seen}");
    assert_eq!(gateway.counters().bedrock_requests, 4);
    gateway.stop().await;
}

async fn sdk_messages_midstream_failure_raises(mount: Mount) {
    let gateway = start(mount).await;
    let models = [CLAUDE_NATIVE_MODEL, GPT_NATIVE_MODEL];
    gateway.upstream().inject(Fault::StreamFailure, 2);
    let items = models.map(|model| ("messages_midstream_failure", model));
    let observed = answers(NATIVE_PY, &gateway, &items).await;
    for (model, seen) in models.into_iter().zip(&observed) {
        assert!(
            strings(&seen["raised"]["bases"]).contains(&"APIStatusError"),
            "{model}: {seen}"
        );
        assert_eq!(seen["body"]["type"], "error", "{model}: {seen}");
        assert!(seen["body"]["error"]["type"].is_string(), "{model}: {seen}");
        assert!(
            seen["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Echo:")),
            "{model}: {seen}"
        );
        assert_ne!(seen["text"], echo(TIMING_TEXT), "{model}: {seen}");
        assert_pair_serves(&gateway, Front::Messages, model).await;
    }
    gateway.stop().await;
}

// ---------------------------------------------------------------------------------------------
// async-openai
// ---------------------------------------------------------------------------------------------

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }})
}

async fn async_openai_chat_tools_on_native_routes(mount: Mount) {
    let gateway = start(mount).await;
    let client = gateway.openai();
    for (model, id) in [
        (GPT_NATIVE_MODEL, "call_1"),
        (CLAUDE_NATIVE_MODEL, "toolu_1"),
    ] {
        gateway.upstream().reset();
        let messages = vec![json!({"role": "user", "content": USER})];
        let request: CreateChatCompletionRequest = serde_json::from_value(json!({
            "model": model, "messages": messages, "tools": [weather_tool()],
        }))
        .unwrap();
        let first: CreateChatCompletionResponse = client.chat().create(request).await.unwrap();
        let first = serde_json::to_value(&first).unwrap();
        assert_eq!(first["model"], model, "{first}");
        let message = &first["choices"][0]["message"];
        assert_eq!(
            first["choices"][0]["finish_reason"], "tool_calls",
            "{first}"
        );
        assert_eq!(message["tool_calls"][0]["id"], id, "{first}");
        assert_eq!(
            message["tool_calls"][0]["function"]["name"], "get_weather",
            "{first}"
        );

        let request: CreateChatCompletionRequest = serde_json::from_value(json!({
            "model": model,
            "messages": [
                {"role": "user", "content": USER},
                {"role": "assistant", "tool_calls": message["tool_calls"]},
                {"role": "tool", "tool_call_id": id, "content": TOOL_OUTPUT},
            ],
            "tools": [weather_tool()],
        }))
        .unwrap();
        let second = client.chat().create(request).await.unwrap();
        let second = serde_json::to_value(&second).unwrap();
        assert_eq!(
            second["choices"][0]["message"]["content"],
            tool_said(id),
            "{second}"
        );

        // Streamed, through async-openai's chunk types.
        let request: CreateChatCompletionRequest = serde_json::from_value(json!({
            "model": model, "messages": [{"role": "user", "content": USER}],
            "tools": [weather_tool()], "stream": true,
        }))
        .unwrap();
        let mut chunks = client.chat().create_stream(request).await.unwrap();
        let (mut name, mut arguments, mut finish) = (String::new(), String::new(), None);
        while let Some(chunk) = chunks.next().await {
            let chunk = serde_json::to_value(chunk.unwrap()).unwrap();
            for call in chunk["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
                finish = Some(reason.to_owned());
            }
        }
        assert_eq!(name, "get_weather", "{model}");
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).ok(),
            Some(echo_arguments()),
            "{model}: {arguments}"
        );
        assert_eq!(finish.as_deref(), Some("tool_calls"), "{model}");
    }
    gateway.stop().await;
}

async fn async_openai_responses_in_two_turns(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().reset();
    let client = gateway.openai();
    let tool = json!({"type": "function", "name": "get_weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let request: CreateResponse =
        serde_json::from_value(json!({"model": GPT_NATIVE_MODEL, "input": USER, "tools": [tool]}))
            .unwrap();
    let first = client.responses().create(request).await.unwrap();
    let first = serde_json::to_value(&first).unwrap();
    assert_eq!(first["model"], GPT_NATIVE_MODEL, "{first}");
    let call = first["output"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["type"] == "function_call")
        .cloned()
        .unwrap_or_else(|| panic!("a function call: {first}"));
    assert_eq!(call["call_id"], "call_1", "{first}");

    let request: CreateResponse = serde_json::from_value(json!({
        "model": GPT_NATIVE_MODEL,
        "tools": [tool],
        "stream": true,
        "input": [
            {"role": "user", "content": USER},
            {"type": "function_call", "call_id": call["call_id"], "name": call["name"],
             "arguments": call["arguments"]},
            {"type": "function_call_output", "call_id": call["call_id"], "output": TOOL_OUTPUT},
        ],
    }))
    .unwrap();
    let mut events = client.responses().create_stream(request).await.unwrap();
    let (mut kinds, mut text, mut model) = (Vec::new(), String::new(), Value::Null);
    while let Some(event) = events.next().await {
        let event = serde_json::to_value(event.unwrap()).unwrap();
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        if kind == "response.output_text.delta" {
            text.push_str(event["delta"].as_str().unwrap_or_default());
        }
        if kind == "response.completed" {
            model = event["response"]["model"].clone();
        }
        kinds.push(kind);
    }
    assert_eq!(text, tool_said("call_1"), "{kinds:?}");
    assert_eq!(model, GPT_NATIVE_MODEL, "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("response.completed"));
    gateway.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

async fn answers_name_the_callers_model(mount: Mount) {
    let gateway = start(mount).await;
    // Whole answers.
    let (status, body) = whole(
        &gateway,
        Front::Messages,
        &Front::Messages.body(CLAUDE_NATIVE_MODEL, USER, false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], CLAUDE_NATIVE_MODEL, "{body}");
    let (path, sent) = upstream(&gateway);
    assert!(
        path.ends_with(&format!("/model/{CLAUDE_NATIVE_SALESFORCE_MODEL}/invoke")),
        "{path}"
    );
    assert!(
        sent.get("model").is_none(),
        "the model is in the path: {sent}"
    );
    assert_eq!(sent["anthropic_version"], "bedrock-2023-05-31", "{sent}");
    assert_eq!(sent["max_tokens"], 256, "{sent}");

    let (status, body) = whole(
        &gateway,
        Front::Responses,
        &Front::Responses.body(GPT_NATIVE_MODEL, USER, false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], GPT_NATIVE_MODEL, "{body}");
    let (path, sent) = upstream(&gateway);
    assert!(path.ends_with("/ai/gpt/v1/responses"), "{path}");
    assert_eq!(sent["model"], GPT_NATIVE_SALESFORCE_MODEL, "{sent}");
    assert_eq!(sent["input"], USER, "{sent}");

    // Streams: every event that names a model names the caller's.
    for (front, model) in STREAMING_PAIRS {
        let streamed = stream(&gateway, front, &front.body(model, USER, true)).await;
        assert_eq!(
            streamed.status,
            200,
            "{front:?} {model}: {}",
            streamed.describe()
        );
        assert_eq!(
            streamed.text(front),
            echo(USER),
            "{front:?} {model}: {}",
            streamed.describe()
        );
        let mut named = 0;
        for event in &streamed.events {
            let Some(data) = event.json() else { continue };
            for seen in [
                &data["model"],
                &data["message"]["model"],
                &data["response"]["model"],
            ] {
                if !seen.is_null() {
                    named += 1;
                    assert_eq!(seen, model, "{front:?}: {}", streamed.describe());
                }
            }
        }
        assert!(named > 0, "{front:?} {model}: {}", streamed.describe());
    }
    gateway.stop().await;
}

async fn cached_and_reasoning_tokens_reach_the_caller(mount: Mount) {
    let gateway = start(mount).await;
    // Passed through: Responses' own usage details, whole and streamed.
    for stream_it in [false, true] {
        let mut body = Front::Responses.body(GPT_NATIVE_MODEL, USER, stream_it);
        body["prompt_cache_key"] = json!("conversation-1");
        body["reasoning"] = json!({"effort": "low"});
        let usage = if stream_it {
            let streamed = stream(&gateway, Front::Responses, &body).await;
            let completed = streamed
                .events
                .iter()
                .filter_map(Sse::json)
                .find(|data| data["type"] == "response.completed")
                .unwrap_or_else(|| panic!("{}", streamed.describe()));
            completed["response"]["usage"].clone()
        } else {
            let (status, answer) = whole(&gateway, Front::Responses, &body).await;
            assert_eq!(status, 200, "{answer}");
            answer["usage"].clone()
        };
        assert_eq!(
            usage["input_tokens_details"]["cached_tokens"], 32,
            "{usage}"
        );
        assert_eq!(
            usage["output_tokens_details"]["reasoning_tokens"], 16,
            "{usage}"
        );
    }
    // Passed through too: Bedrock's cache reads, for a system block with `cache_control`.
    let body = json!({"model": CLAUDE_NATIVE_MODEL, "max_tokens": 64,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": USER}]});
    let (status, answer) = whole(&gateway, Front::Messages, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 256, "{answer}");
    gateway.stop().await;
}

async fn keys_and_anthropic_conventions(mount: Mount) {
    let gateway = start(mount).await;
    let client = http();
    let body = Front::Messages.body(CLAUDE_NATIVE_MODEL, USER, false);
    // `?beta=true`, and either key header.
    let (status, answer) = common::status_and_json(
        client
            .post(gateway.url("/v1/messages?beta=true"))
            .header("x-api-key", CALLER_KEY)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = common::status_and_json(
        client
            .post(gateway.url("/v1/messages"))
            .bearer_auth(CALLER_KEY)
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // x-api-key on an OpenAI endpoint too.
    let (status, answer) = common::status_and_json(
        client
            .post(gateway.url("/v1/responses"))
            .header("x-api-key", CALLER_KEY)
            .json(&Front::Responses.body(GPT_NATIVE_MODEL, USER, false)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // A wrong key on /v1/messages: Anthropic's envelope.
    let (status, answer) = common::status_and_json(
        client
            .post(gateway.url("/v1/messages"))
            .header("x-api-key", "sk-wrong")
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&body),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"]["type"], "authentication_error", "{answer}");
    // An unknown model on /v1/messages: Anthropic's not_found_error.
    let (status, answer) = whole(
        &gateway,
        Front::Messages,
        &Front::Messages.body("claude-nope", USER, false),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["type"], "not_found_error", "{answer}");
    // count_tokens: no surface counts tokens, and the bridge makes up no figures: a clear 404
    // in Anthropic's envelope, and no call to Salesforce.
    let before = gateway.counters().model_requests();
    let (status, answer) = common::status_and_json(
        client
            .post(gateway.url("/v1/messages/count_tokens"))
            .header("x-api-key", CALLER_KEY)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&json!({"model": CLAUDE_NATIVE_MODEL,
                          "messages": [{"role": "user", "content": USER}]})),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"]["type"], "not_found_error", "{answer}");
    assert_eq!(gateway.counters().model_requests(), before);
    // /v1/models: Anthropic's shape when anthropic-version is present, OpenAI's otherwise.
    let (status, list) = common::status_and_json(
        client
            .get(gateway.url("/v1/models"))
            .header("x-api-key", CALLER_KEY)
            .header("anthropic-version", ANTHROPIC_VERSION),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["has_more"], false, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, ROUTED_MODELS, "{list}");
    assert!(
        list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|model| model["type"] == "model" && model["display_name"].is_string()),
        "{list}"
    );
    assert_eq!(list["first_id"], ROUTED_MODELS[0], "{list}");
    let (status, list) = common::status_and_json(
        client
            .get(gateway.url("/v1/models"))
            .bearer_auth(CALLER_KEY),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list", "{list}");
    gateway.stop().await;
}

async fn streams_are_incremental(mount: Mount) {
    let gateway = start(mount).await;
    gateway.upstream().set_stream_pace(PACE);
    let runs = STREAMING_PAIRS.map(|(front, model)| {
        let gateway = &gateway;
        async move {
            let streamed = stream(gateway, front, &front.body(model, TIMING_TEXT, true)).await;
            (front, model, streamed)
        }
    });
    for (front, model, streamed) in futures_util::future::join_all(runs).await {
        let context = format!("{front:?} on {model}: {}", streamed.describe());
        assert_eq!(streamed.status, 200, "{context}");
        assert_eq!(streamed.text(front), echo(TIMING_TEXT), "{context}");
        let deltas: Vec<Duration> = streamed
            .events
            .iter()
            .filter(|event| !front.delta_text(event).is_empty())
            .map(|event| event.at)
            .collect();
        assert!(deltas.len() >= 6, "one event per word: {context}");
        let (first, last) = (deltas[0], deltas[deltas.len() - 1]);
        // Relayed as produced: the words arrived spread over the time the upstream took to send
        // them (a pace apart), not at once at its end.
        let produced = PACE.mul_f64((deltas.len() - 1) as f64);
        assert!(
            last - first >= produced.mul_f64(0.6) && first.as_secs_f64() < 0.6 * last.as_secs_f64(),
            "first text at {first:?}, last at {last:?}: {context}"
        );
    }
    gateway.stop().await;
}

async fn a_caller_leaving_mid_stream_cancels_the_upstream(mount: Mount) {
    let gateway = start(mount).await;
    for (front, model) in [
        (Front::Chat, GPT_NATIVE_MODEL),
        (Front::Responses, GPT_NATIVE_MODEL),
        (Front::Messages, CLAUDE_NATIVE_MODEL),
        (Front::Chat, CLAUDE_NATIVE_MODEL),
    ] {
        gateway.upstream().reset();
        gateway
            .upstream()
            .set_stream_pace(Duration::from_millis(20));
        gateway.upstream().inject(Fault::EndlessStream, 1);
        let response = front
            .post(&http(), &gateway, &front.body(model, USER, true))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{front:?} on {model}");
        let mut chunks = response.bytes_stream();
        let mut buffer = String::new();
        let mut events = Vec::new();
        // Read until some text arrived: the stream is live.
        while !events
            .iter()
            .any(|event: &Sse| !front.delta_text(event).is_empty())
        {
            let chunk = tokio::time::timeout(Duration::from_secs(5), chunks.next())
                .await
                .unwrap_or_else(|_| panic!("{front:?} on {model}: no text within 5 s"))
                .expect("the stream goes on")
                .expect("bytes");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            take_events(&mut buffer, Duration::ZERO, &mut events);
        }
        assert!(requests_in_flight(&gateway) >= 1.0, "{front:?} on {model}");
        drop(chunks);
        let left = Instant::now();
        let (abandoned, in_flight) = loop {
            let abandoned = gateway.counters().abandoned_model_calls;
            let in_flight = requests_in_flight(&gateway);
            if (abandoned, in_flight) == (1, 0.0) || left.elapsed() > Duration::from_secs(3) {
                break (abandoned, in_flight);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = left.elapsed();
        assert_eq!(
            abandoned, 1,
            "{front:?} on {model}: the upstream stream was not cancelled"
        );
        assert_eq!(in_flight, 0.0, "{front:?} on {model}: still in flight");
        assert!(
            took < Duration::from_secs(1),
            "{front:?} on {model}: cancelled after {took:?}"
        );
    }
    gateway.upstream().reset();
    for (front, model) in STREAMING_PAIRS {
        assert_pair_serves(&gateway, front, model).await;
    }
    gateway.stop().await;
}

async fn stream_faults_become_error_events(mount: Mount) {
    let panicked = panics();
    let gateway = start(mount).await;
    let faults = [
        Fault::StreamFailure,
        Fault::MalformedEvent,
        Fault::NotAStream,
        Fault::EmptyStream,
        Fault::OversizedEvent(OVERSIZED_EVENT_BYTES),
    ];
    let mut failures = Vec::new();
    for fault in faults {
        for (front, model) in STREAMING_PAIRS {
            gateway.upstream().reset();
            gateway.upstream().inject(fault.clone(), 1);
            let streamed = stream(&gateway, front, &front.body(model, TIMING_TEXT, true)).await;
            failures.extend(not_failed(front, model, &format!("{fault:?}"), &streamed));
        }
    }
    gateway.upstream().reset();
    for (front, model) in STREAMING_PAIRS {
        assert_pair_serves(&gateway, front, model).await;
    }
    assert!(
        failures.is_empty(),
        "{} cases:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(panicked, Vec::<String>::new());
    assert_eq!(panics(), Vec::<String>::new(), "the bridge panicked");
    gateway.stop().await;
}

async fn quiet_and_endless_upstreams_end_at_their_bounds(mount: Mount) {
    // A gateway per pair, so that the pairs' waits overlap.
    let runs = STREAMING_PAIRS.map(|(front, model)| quiet_and_endless(mount, front, model));
    futures_util::future::join_all(runs).await;
}

/// One pair of [`quiet_and_endless_upstreams_end_at_their_bounds`].
async fn quiet_and_endless(mount: Mount, front: Front, model: &str) {
    // One attempt may wait 1 s for the upstream; a request lasts at most 3 s.
    let setup = Setup::default().salesforce("timeout_secs = 1\nrequest_deadline_secs = 3");
    let gateway = start_with(mount, setup).await;
    // A short stall is only a pause.
    gateway
        .upstream()
        .inject(Fault::StreamStall(Duration::from_millis(300)), 1);
    let streamed = stream(&gateway, front, &front.body(model, USER, true)).await;
    let context = format!("{front:?} on {model}: {}", streamed.describe());
    assert_eq!(streamed.text(front), echo(USER), "{context}");
    assert!(front.completed(&streamed.events), "{context}");
    // Quiet longer than the idle limit: the stream ends with an error.
    gateway
        .upstream()
        .inject(Fault::StreamStall(Duration::from_millis(2500)), 1);
    let started = Instant::now();
    let streamed = stream(&gateway, front, &front.body(model, USER, true)).await;
    assert_failed(front, model, "stall", &streamed);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2400),
        "{front:?} on {model}: the quiet stream ended after {took:?}"
    );
    // Endless: cut at the deadline (3 s; a loaded machine may take a while longer to notice).
    gateway.upstream().inject(Fault::EndlessStream, 1);
    let started = Instant::now();
    let streamed = stream(&gateway, front, &front.body(model, USER, true)).await;
    let took = started.elapsed();
    assert_failed(front, model, "endless", &streamed);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{front:?} on {model}: the endless stream ended after {took:?}"
    );
    assert_pair_serves(&gateway, front, model).await;
    gateway.stop().await;
}

async fn a_429_before_the_stream_is_retried(mount: Mount) {
    let gateway = start(mount).await;
    for (front, model) in STREAMING_PAIRS {
        for fault in [
            Fault::Status {
                status: 429,
                retry_after_secs: None,
            },
            Fault::Unauthorized,
        ] {
            gateway.upstream().reset();
            gateway.upstream().inject(fault.clone(), 1);
            let streamed = stream(&gateway, front, &front.body(model, USER, true)).await;
            let context = format!("{fault:?}: {front:?} on {model}: {}", streamed.describe());
            assert_eq!(streamed.status, 200, "{context}");
            assert_eq!(streamed.text(front), echo(USER), "{context}");
            assert!(front.completed(&streamed.events), "{context}");
            let counters = gateway.counters();
            assert_eq!(
                counters.responses_requests + counters.bedrock_requests,
                2,
                "{context}"
            );
        }
    }
    gateway.stop().await;
}

/// `[[[...]]]` nested `depth` deep.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

async fn hostile_input_on_native_paths(mount: Mount) {
    let panicked = panics();
    let gateway = start(mount).await;
    let client = http();
    let fronts = [Front::Chat, Front::Responses, Front::Messages];
    let send = |front: Front, body: String| {
        let request = client.post(gateway.url(front.path())).body(body);
        let request = request.header("content-type", "application/json");
        match front {
            Front::Chat | Front::Responses => request.bearer_auth(CALLER_KEY),
            Front::Messages => request
                .header("x-api-key", CALLER_KEY)
                .header("anthropic-version", ANTHROPIC_VERSION),
        }
    };
    // Refused by the bridge itself: nothing reaches Salesforce.
    for front in fronts {
        for model in [GPT_NATIVE_MODEL, CLAUDE_NATIVE_MODEL] {
            let cases = [
                (
                    "deep nesting",
                    format!(r#"{{"model": "{model}", "x": {}}}"#, nested(100_000)),
                ),
                (
                    "deep nesting before the model",
                    format!(r#"{{"x": {}, "model": "{model}"}}"#, nested(5_000)),
                ),
                ("not JSON", "{\"model\": ".to_owned()),
                ("an array", "[]".to_owned()),
                ("a string", "\"hello\"".to_owned()),
                (
                    "model a number",
                    r#"{"model": 5, "stream": true}"#.to_owned(),
                ),
                (
                    "stream a string",
                    format!(r#"{{"model": "{model}", "stream": "yes"}}"#),
                ),
                (
                    "model twice",
                    format!(r#"{{"model": "{model}", "model": "{model}"}}"#),
                ),
                (
                    "a lone surrogate",
                    format!(r#"{{"model": "{model}\ud800"}}"#),
                ),
            ];
            for (case, body) in cases {
                let (status, answer) = common::status_and_json(send(front, body)).await;
                assert_eq!(status, 400, "{case}: {front:?} on {model}: {answer}");
                assert!(
                    front.is_error_body(&answer),
                    "{case}: {front:?} on {model}: {answer}"
                );
            }
            // Over max_request_bytes (1 MiB by default): 413 before it is read whole.
            let huge = format!(
                r#"{{"model": "{model}", "input": "{}"}}"#,
                "x".repeat(2 << 20)
            );
            let (status, answer) = common::status_and_json(send(front, huge)).await;
            assert_eq!(status, 413, "{front:?} on {model}: {answer}");
            assert!(
                front.is_error_body(&answer),
                "{front:?} on {model}: {answer}"
            );
        }
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    // Wrong types deeper in: refused with a 400 in the caller's format (by the bridge or by the
    // upstream), never a 5xx.
    let wrong = [
        (
            Front::Messages,
            json!({"model": CLAUDE_NATIVE_MODEL, "max_tokens": "many", "messages": "hi"}),
        ),
        (
            Front::Messages,
            json!({"model": GPT_NATIVE_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": 5}]}),
        ),
        (
            Front::Responses,
            json!({"model": GPT_NATIVE_MODEL, "input": 5}),
        ),
        (
            Front::Responses,
            json!({"model": CHAT_MODEL, "input": {"nested": true}}),
        ),
        (
            Front::Chat,
            json!({"model": GPT_NATIVE_MODEL, "messages": [{"role": "user", "content": {"a": 1}}]}),
        ),
        (
            Front::Chat,
            json!({"model": CLAUDE_NATIVE_MODEL, "messages": "hi"}),
        ),
        // Tool arguments that are not JSON cannot become a Bedrock tool_use input.
        (
            Front::Chat,
            json!({"model": CLAUDE_NATIVE_MODEL, "messages": [
                {"role": "user", "content": USER},
                {"role": "assistant", "tool_calls": [{"id": "call_x", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{not json"}}]},
                {"role": "tool", "tool_call_id": "call_x", "content": TOOL_OUTPUT},
            ]}),
        ),
        (
            Front::Chat,
            json!({"model": CLAUDE_NATIVE_MODEL, "messages": [
                {"role": "user", "content": USER},
                {"role": "assistant", "tool_calls": [{"id": "call_x", "type": "function",
                    "function": {"name": "get_weather", "arguments": "[1, 2]"}}]},
                {"role": "tool", "tool_call_id": "call_x", "content": TOOL_OUTPUT},
            ]}),
        ),
    ];
    for (front, body) in wrong {
        let (status, answer) = whole(&gateway, front, &body).await;
        assert_eq!(status, 400, "{front:?}: {body}: {answer}");
        assert!(front.is_error_body(&answer), "{front:?}: {body}: {answer}");
    }
    // A huge string that fits: passed on and answered.
    let big = "word ".repeat(150_000);
    let (status, answer) = whole(
        &gateway,
        Front::Responses,
        &Front::Responses.body(GPT_NATIVE_MODEL, &big, false),
    )
    .await;
    assert_eq!(
        status,
        200,
        "{}",
        answer.to_string().chars().take(300).collect::<String>()
    );
    for (front, model) in STREAMING_PAIRS {
        assert_pair_serves(&gateway, front, model).await;
    }
    assert_eq!(panicked, Vec::<String>::new());
    assert_eq!(panics(), Vec::<String>::new(), "the bridge panicked");
    gateway.stop().await;
}
