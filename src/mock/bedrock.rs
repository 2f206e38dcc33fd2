//! `POST /ai/gpt/v1/model/{model}/invoke` and `…/invoke-with-response-stream`: Anthropic's Messages
//! API in Amazon Bedrock's shape, as the Models API serves it for Claude models.
//!
//! The checks are Bedrock's (its `ValidationException` wordings, `{"message": "..."}`) plus what
//! `salesforce-native-surfaces.md` records of newer Claude models. Answers are deterministic (see the
//! [module docs](super)); streams are AWS event-stream frames written across network writes.

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{json, Map, Value};

use super::answer::random_id;
use super::catalog::CUSTOM_PREFIX;
use super::errors::{injected_message, ApiError};
use super::models::with_request_id;
use super::native::{self, json_error, Refusal, Route, Surface};
use super::state::MockState;
use super::stream::{
    self, keep_bytes, keep_words, thirds, word_deltas, words, Ev, Events, Piece, Script, Steps,
    StreamFault,
};
use crate::eventstream::{
    chunk_frame, encode_frame, Header, CONTENT_TYPE, EXCEPTION_TYPE, MESSAGE_TYPE,
};

/// The Salesforce-managed Claude names start with this; they are served here, as observed.
const CLAUDE_PREFIX: &str = "sfdc_ai__DefaultBedrockAnthropic";

/// The only `anthropic_version` Bedrock accepts.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Cache reads reported when a system block carries `cache_control`.
pub(crate) const CACHE_READ_TOKENS: u64 = 256;

/// Newer Claude models refuse `thinking: {"type": "enabled"}` (observed); their names hold these.
const ADAPTIVE_ONLY: [&str; 2] = ["Claude46", "Claude5"];

/// The message of an injected [`Fault::StreamFailure`](super::Fault::StreamFailure) exception frame.
const STREAM_ERROR: &str = "The model stream failed (injected).";

/// [`Fault::OversizedEvent`](super::Fault::OversizedEvent) deltas are cut to this: a frame's
/// length is a `u32`, and base64 makes the event a third larger.
const MAX_OVERSIZED: usize = 1 << 30;

const BLOCK_TYPES: [&str; 7] = [
    "text",
    "image",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "document",
];

/// The axum handler for both paths.
pub(crate) async fn call(
    State(state): State<MockState>,
    method: Method,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path((model, action))) = path else {
        return with_request_id(ApiError::NotFound.into_response());
    };
    let stream = match action.as_str() {
        "invoke" => false,
        "invoke-with-response-stream" => true,
        _ => return with_request_id(ApiError::NotFound.into_response()),
    };
    let route = Route {
        model: Some(model),
        stream,
    };
    native::handle::<Bedrock>(state, method, uri, route, headers, body).await
}

/// The Bedrock surface.
#[derive(Debug)]
pub(crate) struct Bedrock;

impl Surface for Bedrock {
    type Call = Call;

    type Error = Validation;

    const STREAM_CONTENT_TYPE: &'static str = "application/vnd.amazon.eventstream";

    fn count(state: &MockState) {
        state.count_bedrock();
    }

    fn injected(status: StatusCode, retry_after_secs: Option<u64>) -> Response {
        let body = json!({"message": injected_message(status)});
        let mut response = json_error(status, &body, retry_after_secs);
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static(exception_type(status)),
        );
        response
    }

    fn check(route: &Route, body: &[u8]) -> Result<Call, Refusal<Validation>> {
        let model = route.model.as_deref().unwrap_or_default();
        if !is_known(model) {
            return Err(Refusal::Gateway(ApiError::NotFound));
        }
        parse(model, route.stream, body).map_err(|message| Refusal::Provider(Validation(message)))
    }

    fn streams(call: &Call) -> bool {
        call.stream
    }

    fn answer(state: &MockState, call: &Call) -> Bytes {
        Bytes::from(Answer::new(state, call, None).whole().to_string())
    }

    fn stream(state: &MockState, call: &Call, fault: Option<StreamFault>, pace: Duration) -> Steps {
        let answer = Answer::new(state, call, fault);
        let script = if fault == Some(StreamFault::Empty) {
            answer.empty_script()
        } else {
            answer.script()
        };
        stream::frame_writes(encode(script.arrange(fault)), pace)
    }
}

/// Whether this surface serves `model`: the Bedrock Claude names, and the invented `custom_…` ones.
pub(crate) fn is_known(model: &str) -> bool {
    model.starts_with(CLAUDE_PREFIX) || model.starts_with(CUSTOM_PREFIX)
}

/// The model id Bedrock answers with, derived from the Salesforce name as the real service's
/// answers show (`…Claude46Sonnet` answers `claude-sonnet-4-6`).
pub(crate) fn bedrock_model(name: &str) -> String {
    const DEFAULT: &str = "claude-sonnet-4-6";
    let Some((_, rest)) = name.split_once("Claude") else {
        return DEFAULT.to_owned();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let family = rest[digits.len()..].to_ascii_lowercase();
    if digits.is_empty() || !["opus", "sonnet", "haiku"].contains(&family.as_str()) {
        return DEFAULT.to_owned();
    }
    let version = digits
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join("-");
    // Claude 3 put the version first (`claude-3-7-sonnet`); later models put it last.
    if digits.starts_with('3') {
        format!("claude-{version}-{family}")
    } else {
        format!("claude-{family}-{version}")
    }
}

fn exception_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ if status.is_client_error() => "ValidationException",
        _ => "InternalServerException",
    }
}

/// A 400 `ValidationException`: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validation(String);

impl IntoResponse for Validation {
    fn into_response(self) -> Response {
        let body = json!({"message": self.0});
        let mut response = json_error(StatusCode::BAD_REQUEST, &body, None);
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ValidationException"),
        );
        response
    }
}

// Bedrock validates the body against a JSON schema and words its refusals this way.

fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

fn required_key(path: &str, key: &str) -> String {
    malformed(&format!("{path}: required key [{key}] not found"))
}

fn expected_type(path: &str, expected: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "Integer",
        Value::Number(_) => "BigDecimal",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    };
    malformed(&format!(
        "{path}: expected type: {expected}, found: {found}"
    ))
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    model: String,
    stream: bool,
    tools: Vec<String>,
    tool_choice: ToolChoice,
    /// The last `tool_result` of the last user message: its `tool_use_id` and text.
    tool_result: Option<(String, String)>,
    /// The text of the last user message.
    user_text: String,
    input_words: u64,
    max_tokens: u64,
    stop_sequences: Vec<String>,
    cache_read: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ToolChoice {
    /// `auto` or `any`: the first tool is called.
    Auto,
    None,
    Named(String),
}

impl Call {
    fn chosen_tool(&self) -> Option<&str> {
        match &self.tool_choice {
            ToolChoice::None => None,
            ToolChoice::Auto => self.tools.first().map(String::as_str),
            ToolChoice::Named(name) => Some(name),
        }
    }
}

fn parse(model: &str, stream: bool, body: &[u8]) -> Result<Call, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(
            "Malformed input request, please reformat your input and try again.".to_owned(),
        );
    };
    // The path carries these two; Bedrock's schema has no room for them.
    for key in ["model", "stream"] {
        if fields.contains_key(key) {
            return Err(malformed(&format!(
                "#: extraneous key [{key}] is not permitted"
            )));
        }
    }
    match fields.get("anthropic_version") {
        None => return Err(required_key("#", "anthropic_version")),
        Some(Value::String(version)) if version == ANTHROPIC_VERSION => {}
        Some(Value::String(version)) => {
            return Err(malformed(&format!(
                "#/anthropic_version: {version} is not a valid enum value"
            )))
        }
        Some(other) => return Err(expected_type("#/anthropic_version", "String", other)),
    }
    if let Some(beta) = fields.get("anthropic_beta") {
        let Value::Array(flags) = beta else {
            return Err(expected_type("#/anthropic_beta", "JSONArray", beta));
        };
        if let Some((index, flag)) = flags.iter().enumerate().find(|(_, flag)| !flag.is_string()) {
            return Err(expected_type(
                &format!("#/anthropic_beta/{index}"),
                "String",
                flag,
            ));
        }
    }
    let max_tokens = match fields.get("max_tokens") {
        None => return Err(required_key("#", "max_tokens")),
        Some(Value::Number(number)) if number.as_u64().is_some_and(|max| max >= 1) => {
            number.as_u64().unwrap_or(1)
        }
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
            return Err(malformed(&format!(
                "#/max_tokens: {number} is not greater or equal to 1"
            )))
        }
        Some(other) => return Err(expected_type("#/max_tokens", "Integer", other)),
    };
    thinking(model, &fields)?;
    let (system_words, cache_read) = system(&fields)?;
    let tools = tools(&fields)?;
    let tool_choice = tool_choice(&fields)?;
    let stop_sequences = stop_sequences(&fields)?;
    let messages = messages(&fields)?;
    Ok(Call {
        model: model.to_owned(),
        stream,
        tools,
        tool_choice,
        tool_result: messages.tool_result,
        user_text: messages.user_text,
        input_words: system_words + messages.words,
        max_tokens,
        stop_sequences,
        cache_read,
    })
}

/// `thinking` as newer models take it, and the settings it excludes.
fn thinking(model: &str, fields: &Map<String, Value>) -> Result<(), String> {
    let kind = match fields.get("thinking") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(thinking)) => match thinking.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            None => return Err(required_key("#/thinking", "type")),
            Some(other) => return Err(expected_type("#/thinking/type", "String", other)),
        },
        Some(other) => return Err(expected_type("#/thinking", "JSONObject", other)),
    };
    if kind == "enabled" && ADAPTIVE_ONLY.iter().any(|name| model.contains(name)) {
        // Observed on real orgs: these models take the adaptive form only.
        return Err(
            "thinking.type.enabled is not supported for this model. Use \
                    thinking.type.adaptive and output_config.effort to control thinking \
                    behavior."
                .to_owned(),
        );
    }
    if kind != "disabled" {
        for key in ["temperature", "top_k", "top_p"] {
            if fields.get(key).is_some_and(|value| !value.is_null()) {
                return Err(format!("`{key}` is not supported when thinking is enabled"));
            }
        }
    }
    Ok(())
}

/// The system prompt's words, and whether a block of it carries `cache_control`.
fn system(fields: &Map<String, Value>) -> Result<(u64, bool), String> {
    match fields.get("system") {
        None | Some(Value::Null) => Ok((0, false)),
        Some(Value::String(text)) => Ok((words(text), false)),
        Some(Value::Array(blocks)) => {
            let mut count = 0;
            let mut cached = false;
            for (index, block) in blocks.iter().enumerate() {
                let Value::Object(block) = block else {
                    return Err(expected_type(
                        &format!("#/system/{index}"),
                        "JSONObject",
                        block,
                    ));
                };
                count += block.get("text").and_then(Value::as_str).map_or(0, words);
                cached |= block
                    .get("cache_control")
                    .is_some_and(|value| !value.is_null());
            }
            Ok((count, cached))
        }
        Some(other) => Err(expected_type("#/system", "JSONArray", other)),
    }
}

fn tools(fields: &Map<String, Value>) -> Result<Vec<String>, String> {
    let tools = match fields.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(expected_type("#/tools", "JSONArray", other)),
    };
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| match tool.get("name") {
            Some(Value::String(name)) => Ok(name.clone()),
            None => Err(required_key(&format!("#/tools/{index}"), "name")),
            Some(other) => Err(expected_type(
                &format!("#/tools/{index}/name"),
                "String",
                other,
            )),
        })
        .collect()
}

fn tool_choice(fields: &Map<String, Value>) -> Result<ToolChoice, String> {
    let choice = match fields.get("tool_choice") {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::Object(choice)) => choice,
        Some(other) => return Err(expected_type("#/tool_choice", "JSONObject", other)),
    };
    match choice.get("type").and_then(Value::as_str) {
        Some("auto" | "any") => Ok(ToolChoice::Auto),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => match choice.get("name") {
            Some(Value::String(name)) => Ok(ToolChoice::Named(name.clone())),
            _ => Err(required_key("#/tool_choice", "name")),
        },
        Some(other) => Err(malformed(&format!(
            "#/tool_choice/type: {other} is not a valid enum value"
        ))),
        None => Err(required_key("#/tool_choice", "type")),
    }
}

fn stop_sequences(fields: &Map<String, Value>) -> Result<Vec<String>, String> {
    match fields.get("stop_sequences") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(sequences)) => sequences
            .iter()
            .enumerate()
            .map(|(index, sequence)| {
                sequence.as_str().map(str::to_owned).ok_or_else(|| {
                    expected_type(&format!("#/stop_sequences/{index}"), "String", sequence)
                })
            })
            .collect(),
        Some(other) => Err(expected_type("#/stop_sequences", "JSONArray", other)),
    }
}

/// What the messages say.
#[derive(Debug, Default)]
struct Messages {
    user_text: String,
    words: u64,
    tool_result: Option<(String, String)>,
}

fn messages(fields: &Map<String, Value>) -> Result<Messages, String> {
    let messages = match fields.get("messages") {
        None => return Err(required_key("#", "messages")),
        Some(Value::Array(messages)) => messages,
        Some(other) => return Err(expected_type("#/messages", "JSONArray", other)),
    };
    if messages.is_empty() {
        return Err(malformed(
            "#/messages: expected minimum item count: 1, found: 0",
        ));
    }
    let mut said = Messages::default();
    for (index, message) in messages.iter().enumerate() {
        let path = format!("#/messages/{index}");
        let Value::Object(message) = message else {
            return Err(expected_type(&path, "JSONObject", message));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) if role == "user" || role == "assistant" => role.as_str(),
            Some(Value::String(role)) => {
                return Err(malformed(&format!(
                    "{path}/role: {role} is not a valid enum value"
                )))
            }
            None => return Err(required_key(&path, "role")),
            Some(other) => return Err(expected_type(&format!("{path}/role"), "String", other)),
        };
        if index == 0 && role != "user" {
            // Anthropic's own check, passed through by Bedrock.
            return Err("messages: first message must use the \"user\" role".to_owned());
        }
        let (text, tool_result) = content(message.get("content"), index)?;
        said.words += words(&text) + tool_result.as_ref().map_or(0, |(_, text)| words(text));
        if role == "user" {
            said.user_text = text;
            said.tool_result = tool_result;
        }
    }
    Ok(said)
}

/// A message's text (its text blocks joined by spaces) and its last `tool_result`.
fn content(
    content: Option<&Value>,
    index: usize,
) -> Result<(String, Option<(String, String)>), String> {
    let path = format!("#/messages/{index}");
    let blocks = match content {
        None => return Err(required_key(&path, "content")),
        Some(Value::String(text)) => return Ok((text.clone(), None)),
        Some(Value::Array(blocks)) => blocks,
        Some(other) => {
            return Err(expected_type(
                &format!("{path}/content"),
                "JSONArray",
                other,
            ))
        }
    };
    let mut texts = Vec::new();
    let mut tool_result = None;
    for (at, block) in blocks.iter().enumerate() {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "text" => texts.push(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            "tool_result" => {
                let id = match block.get("tool_use_id") {
                    Some(Value::String(id)) => id.clone(),
                    _ => return Err(required_key(&format!("{path}/content/{at}"), "tool_use_id")),
                };
                tool_result = Some((id, result_text(block.get("content"))));
            }
            _ if BLOCK_TYPES.contains(&kind) => {}
            _ => {
                // Anthropic's wording for an unknown block type.
                return Err(format!(
                    "messages.{index}.content.{at}.type: Input tag '{kind}' found using 'type' does \
                     not match any of the expected tags: {}",
                    BLOCK_TYPES
                        .iter()
                        .map(|tag| format!("'{tag}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok((texts.join(" "), tool_result))
}

/// A tool result's content: a string, or its text blocks joined by spaces.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The answer to a call.
#[derive(Debug, Clone)]
struct Answer {
    id: String,
    model: String,
    said: Said,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    input_tokens: u64,
    cache_read: u64,
}

#[derive(Debug, Clone)]
enum Said {
    Text(Vec<String>),
    Tool {
        id: String,
        name: String,
        deltas: Vec<String>,
    },
}

impl Said {
    fn whole(&self) -> String {
        match self {
            Self::Text(deltas) | Self::Tool { deltas, .. } => deltas.concat(),
        }
    }
}

impl Answer {
    fn new(state: &MockState, call: &Call, fault: Option<StreamFault>) -> Self {
        let endless = fault == Some(StreamFault::Endless);
        let mut said = match (&call.tool_result, call.chosen_tool()) {
            (Some((id, text)), _) => Said::Text(word_deltas(&format!("Tool {id} said: {text}"))),
            // An endless stream is text deltas, whatever the call asked for.
            (None, Some(name)) if !endless => Said::Tool {
                id: format!("toolu_{}", state.next_tool_call()),
                name: name.to_owned(),
                deltas: thirds(&json!({"echo": call.user_text}).to_string()),
            },
            (None, _) => Said::Text(word_deltas(&format!("Echo: {}", call.user_text))),
        };
        if let Some(StreamFault::Oversized(bytes)) = fault {
            let bytes = bytes.min(MAX_OVERSIZED);
            match &mut said {
                Said::Text(deltas) => deltas.insert(0, "x".repeat(bytes)),
                // Leading whitespace keeps the input valid JSON.
                Said::Tool { deltas, .. } => deltas.insert(0, " ".repeat(bytes)),
            }
        }
        let mut stop_reason = "end_turn";
        let mut stop_sequence = None;
        if let Said::Tool { .. } = said {
            stop_reason = "tool_use";
        }
        if let (Said::Text(deltas), false) = (&mut said, endless) {
            let text = deltas.concat();
            let first_stop = call
                .stop_sequences
                .iter()
                .filter(|stop| !stop.is_empty())
                .filter_map(|stop| text.find(stop.as_str()).map(|at| (at, stop)))
                .min_by_key(|(at, _)| *at);
            if let Some((at, stop)) = first_stop {
                keep_bytes(deltas, at);
                stop_reason = "stop_sequence";
                stop_sequence = Some(stop.clone());
            }
            if keep_words(deltas, call.max_tokens) {
                stop_reason = "max_tokens";
                stop_sequence = None;
            }
        }
        Self {
            id: random_id("msg_bdrk_"),
            model: bedrock_model(&call.model),
            said,
            stop_reason,
            stop_sequence,
            input_tokens: call.input_words.max(1),
            cache_read: if call.cache_read {
                CACHE_READ_TOKENS
            } else {
                0
            },
        }
    }

    fn output_tokens(&self) -> u64 {
        words(&self.said.whole())
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": output_tokens,
        })
    }

    fn message(
        &self,
        content: Value,
        stop_reason: Value,
        stop_sequence: Value,
        usage: Value,
    ) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        })
    }

    /// The `invoke` answer.
    fn whole(&self) -> Value {
        let block = match &self.said {
            Said::Text(_) => json!({"type": "text", "text": self.said.whole()}),
            Said::Tool { id, name, .. } => {
                let input: Value =
                    serde_json::from_str(&self.said.whole()).unwrap_or_else(|_| json!({}));
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        };
        self.message(
            json!([block]),
            json!(self.stop_reason),
            json!(self.stop_sequence),
            self.usage(self.output_tokens()),
        )
    }

    fn start(&self) -> Value {
        // Anthropic reports one output token at the start.
        let message = self.message(json!([]), Value::Null, Value::Null, self.usage(1));
        json!({"type": "message_start", "message": message})
    }

    fn end(&self, stop_reason: &str, stop_sequence: Value, output_tokens: u64) -> Vec<Value> {
        vec![
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens},
            }),
            json!({
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": self.input_tokens,
                    "outputTokenCount": output_tokens,
                    "invocationLatency": 120,
                    "firstByteLatency": 40,
                },
            }),
        ]
    }

    /// The events, in the order of `native.bedrock.stream.events.jsonl`.
    fn script(&self) -> Script {
        let (block, deltas) = match &self.said {
            Said::Text(deltas) => (
                json!({"type": "text", "text": ""}),
                deltas
                    .iter()
                    .map(|text| json!({"type": "text_delta", "text": text}))
                    .collect::<Vec<_>>(),
            ),
            Said::Tool { id, name, deltas } => (
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                deltas
                    .iter()
                    .map(|json| json!({"type": "input_json_delta", "partial_json": json}))
                    .collect(),
            ),
        };
        let head = vec![
            self.start(),
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ];
        let deltas = deltas
            .into_iter()
            .map(|delta| json!({"type": "content_block_delta", "index": 0, "delta": delta}))
            .collect();
        let mut tail = vec![json!({"type": "content_block_stop", "index": 0})];
        tail.extend(self.end(
            self.stop_reason,
            json!(self.stop_sequence),
            self.output_tokens(),
        ));
        Script { head, deltas, tail }
    }

    /// [`StreamFault::Empty`]: a message with no content block, as observed.
    fn empty_script(&self) -> Script {
        Script {
            head: vec![self.start()],
            deltas: Vec::new(),
            tail: self.end("end_turn", Value::Null, 0),
        }
    }
}

/// Event-stream frames, one per event.
fn encode(events: Events) -> impl Iterator<Item = Piece> + Send + 'static {
    events.map(|event| match event {
        Ev::Event(event) => Piece::Bytes(Bytes::from(chunk_frame(event.to_string().as_bytes()))),
        Ev::Failure => {
            let headers = [
                Header::string(EXCEPTION_TYPE, "modelStreamErrorException"),
                Header::string(CONTENT_TYPE, "application/json"),
                Header::string(MESSAGE_TYPE, "exception"),
            ];
            let payload = json!({"message": STREAM_ERROR}).to_string();
            Piece::Bytes(Bytes::from(encode_frame(&headers, payload.as_bytes())))
        }
        Ev::Malformed => {
            let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " garbled"}});
            let mut frame = chunk_frame(delta.to_string().as_bytes());
            // The last four bytes are the message CRC: flip one of them.
            if let Some(last) = frame.last_mut() {
                *last ^= 0xff;
            }
            Piece::Bytes(Bytes::from(frame))
        }
        Ev::Pause(delay) => Piece::Pause(delay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(model: &str, body: Value) -> Result<Call, String> {
        parse(model, false, body.to_string().as_bytes())
    }

    const NEW: &str = "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet";

    fn body() -> Value {
        json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn model_ids_follow_the_salesforce_names() {
        assert_eq!(bedrock_model(NEW), "claude-sonnet-4-6");
        assert_eq!(
            bedrock_model("sfdc_ai__DefaultBedrockAnthropicClaude46Opus"),
            "claude-opus-4-6"
        );
        assert_eq!(
            bedrock_model("sfdc_ai__DefaultBedrockAnthropicClaude5Sonnet"),
            "claude-sonnet-5"
        );
        assert_eq!(
            bedrock_model("sfdc_ai__DefaultBedrockAnthropicClaude45Haiku"),
            "claude-haiku-4-5"
        );
        assert_eq!(
            bedrock_model("sfdc_ai__DefaultBedrockAnthropicClaude37Sonnet"),
            "claude-3-7-sonnet"
        );
        assert_eq!(bedrock_model("custom_claude"), "claude-sonnet-4-6");
    }

    #[test]
    fn thinking_enabled_is_refused_on_newer_models_only() {
        let mut enabled = body();
        enabled["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        assert!(check(NEW, enabled.clone())
            .unwrap_err()
            .contains("adaptive"));
        assert!(check(
            "sfdc_ai__DefaultBedrockAnthropicClaude5Opus",
            enabled.clone()
        )
        .is_err());
        assert!(check(
            "sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet",
            enabled.clone()
        )
        .is_ok());
        let mut adaptive = body();
        adaptive["thinking"] = json!({"type": "adaptive"});
        assert!(check(NEW, adaptive.clone()).is_ok());
        adaptive["top_k"] = json!(5);
        assert!(check(NEW, adaptive).unwrap_err().contains("top_k"));
        let mut disabled = body();
        disabled["thinking"] = json!({"type": "disabled"});
        disabled["temperature"] = json!(0.1);
        assert!(check(NEW, disabled).is_ok());
    }
}
