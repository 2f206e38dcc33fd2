//! `POST /ai/gpt/v1/responses`: OpenAI's Responses API, as the Models API serves it for GPT models.
//!
//! The checks are the ones `salesforce-native-surfaces.md` records the real service making, refused in
//! OpenAI's error envelope. Answers are deterministic (see the [module docs](super)): a tool's output
//! is acknowledged, function tools get one call, anything else is echoed.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Map, Value};

use super::answer::{now_secs, random_id};
use super::catalog::CUSTOM_PREFIX;
use super::errors::{injected_message, ApiError};
use super::native::{self, json_error, Refusal, Route, Surface};
use super::state::MockState;
use super::stream::{
    self, keep_words, thirds, word_deltas, words, Ev, Events, Piece, Script, Steps, StreamFault,
};

/// The Salesforce-managed GPT names start with this; they are served here, as observed.
const GPT_PREFIX: &str = "sfdc_ai__DefaultGPT";

/// Reasoning tokens reported when reasoning is on, so that a bridge's mapping of them shows.
pub(crate) const REASONING_TOKENS: u64 = 16;

/// Cached input tokens reported when `prompt_cache_key` is set.
pub(crate) const CACHED_TOKENS: u64 = 32;

/// The efforts the real service accepts; `max` is not one of them (observed).
const EFFORTS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

const ROLES: [&str; 4] = ["system", "developer", "user", "assistant"];

const ITEM_TYPES: [&str; 4] = [
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
];

const PART_TYPES: [&str; 3] = ["input_text", "input_image", "output_text"];

/// A broken event for [`Fault::MalformedEvent`](super::Fault::MalformedEvent): its `data:` line is
/// JSON cut short.
const MALFORMED: &[u8] =
    b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"cut sh\n\n";

/// The axum handler.
pub(crate) async fn call(
    State(state): State<MockState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    native::handle::<Responses>(state, method, uri, Route::default(), headers, body).await
}

/// The Responses surface.
#[derive(Debug)]
pub(crate) struct Responses;

impl Surface for Responses {
    type Call = Call;

    type Error = OpenAiError;

    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream; charset=utf-8";

    fn count(state: &MockState) {
        state.count_responses();
    }

    fn injected(status: StatusCode, retry_after_secs: Option<u64>) -> Response {
        // OpenAI's own types and codes for these statuses.
        let (kind, code) = match status.as_u16() {
            401 => ("invalid_request_error", Some("invalid_api_key")),
            429 => ("requests", Some("rate_limit_exceeded")),
            _ if status.is_server_error() => ("server_error", None),
            _ => ("invalid_request_error", None),
        };
        let error = OpenAiError {
            status,
            message: injected_message(status).to_owned(),
            kind,
            param: None,
            code,
        };
        json_error(status, &error.body(), retry_after_secs)
    }

    fn check(_route: &Route, body: &[u8]) -> Result<Call, Refusal<OpenAiError>> {
        let fields = object(body).map_err(Refusal::Provider)?;
        let model = model(&fields).map_err(Refusal::Provider)?;
        if !is_known(&model) {
            return Err(Refusal::Gateway(ApiError::NotFound));
        }
        parse(model, &fields).map_err(Refusal::Provider)
    }

    fn streams(call: &Call) -> bool {
        call.stream
    }

    fn answer(state: &MockState, call: &Call) -> Bytes {
        let answer = Answer::new(state, call, None);
        Bytes::from(answer.whole().to_string())
    }

    fn stream(state: &MockState, call: &Call, fault: Option<StreamFault>, pace: Duration) -> Steps {
        let answer = Answer::new(state, call, fault);
        let script = if fault == Some(StreamFault::Empty) {
            answer.empty_script()
        } else {
            answer.script()
        };
        let events = script.arrange(fault);
        stream::event_writes(encode(&answer, events), pace)
    }
}

/// Whether this surface serves `model`: the GPT names, and the invented `custom_…` ones.
pub(crate) fn is_known(model: &str) -> bool {
    model.starts_with(GPT_PREFIX) || model.starts_with(CUSTOM_PREFIX)
}

/// OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl OpenAiError {
    /// A 400 `invalid_request_error`.
    fn invalid(message: String, param: Option<String>, code: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
            kind: "invalid_request_error",
            param,
            code,
        }
    }

    fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        json_error(self.status, &self.body(), None)
    }
}

// OpenAI's wordings for each kind of refusal.

fn missing(param: String) -> OpenAiError {
    OpenAiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param),
        Some("missing_required_parameter"),
    )
}

fn invalid_type(param: String, expected: &str, found: &Value) -> OpenAiError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    OpenAiError::invalid(
        format!("Invalid type for '{param}': expected {expected}, but got {found} instead."),
        Some(param),
        Some("invalid_type"),
    )
}

fn invalid_value(param: String, value: &str, supported: &[&str]) -> OpenAiError {
    OpenAiError::invalid(
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            quoted(supported)
        ),
        Some(param),
        Some("invalid_value"),
    )
}

fn unsupported(param: &str) -> OpenAiError {
    OpenAiError::invalid(
        format!("Unsupported parameter: '{param}' is not supported with reasoning enabled."),
        Some(param.to_owned()),
        Some("unsupported_parameter"),
    )
}

fn unknown(param: String) -> OpenAiError {
    OpenAiError::invalid(
        format!("Unknown parameter: '{param}'."),
        Some(param),
        Some("unknown_parameter"),
    )
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|value| format!("'{value}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    model: String,
    stream: bool,
    /// A `reasoning.effort` other than `none`.
    reasoning: bool,
    /// The names of the function tools, in order.
    tools: Vec<String>,
    tool_choice: ToolChoice,
    /// The last input item, when it is a `function_call_output`: its call id and output.
    tool_output: Option<(String, String)>,
    /// The text of the last user message.
    user_text: String,
    input_words: u64,
    max_output_tokens: Option<u64>,
    cached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ToolChoice {
    /// `auto` or `required`, or a non-function tool choice: the first function tool is called.
    Auto,
    None,
    Named(String),
}

impl Call {
    /// The tool the answer calls, if it calls one.
    fn chosen_tool(&self) -> Option<&str> {
        match &self.tool_choice {
            ToolChoice::None => None,
            ToolChoice::Auto => self.tools.first().map(String::as_str),
            ToolChoice::Named(name) => Some(name),
        }
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, OpenAiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) | Err(_) => Err(OpenAiError::invalid(
            "We could not parse the JSON body of your request. The body must be a JSON object."
                .to_owned(),
            None,
            None,
        )),
    }
}

/// A present, non-null field.
fn field<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    fields.get(key).filter(|value| !value.is_null())
}

fn string<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, OpenAiError> {
    match field(fields, key) {
        None => Err(missing(format!("{path}{key}"))),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(invalid_type(format!("{path}{key}"), "a string", other)),
    }
}

fn model(fields: &Map<String, Value>) -> Result<String, OpenAiError> {
    string(fields, "model", "").map(str::to_owned)
}

fn parse(model: String, fields: &Map<String, Value>) -> Result<Call, OpenAiError> {
    let stream = match field(fields, "stream") {
        None => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => return Err(invalid_type("stream".to_owned(), "a boolean", other)),
    };
    let reasoning = reasoning(fields)?;
    if reasoning {
        // Observed: reasoning models refuse sampling settings.
        for key in ["temperature", "top_p"] {
            if field(fields, key).is_some() {
                return Err(unsupported(key));
            }
        }
    }
    let tools = tools(fields)?;
    let tool_choice = tool_choice(fields, &tools)?;
    let max_output_tokens =
        match field(fields, "max_output_tokens") {
            None => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| {
                invalid_type("max_output_tokens".to_owned(), "an integer", value)
            })?),
        };
    let cached = match field(fields, "prompt_cache_key") {
        None => false,
        Some(Value::String(_)) => true,
        Some(other) => {
            return Err(invalid_type(
                "prompt_cache_key".to_owned(),
                "a string",
                other,
            ))
        }
    };
    let instructions = match field(fields, "instructions") {
        None => 0,
        Some(Value::String(text)) => words(text),
        Some(other) => return Err(invalid_type("instructions".to_owned(), "a string", other)),
    };
    let input = match field(fields, "input") {
        None => return Err(missing("input".to_owned())),
        Some(Value::String(text)) => Input {
            user_text: text.clone(),
            words: words(text),
            tool_output: None,
        },
        Some(Value::Array(items)) => input_items(items)?,
        Some(other) => {
            return Err(invalid_type(
                "input".to_owned(),
                "a string or an array of input items",
                other,
            ))
        }
    };
    Ok(Call {
        model,
        stream,
        reasoning,
        tools,
        tool_choice,
        tool_output: input.tool_output,
        user_text: input.user_text,
        input_words: input.words + instructions,
        max_output_tokens,
        cached,
    })
}

/// Whether reasoning is on; refuses the efforts the real service refuses.
fn reasoning(fields: &Map<String, Value>) -> Result<bool, OpenAiError> {
    let Some(reasoning) = field(fields, "reasoning") else {
        return Ok(false);
    };
    let Value::Object(reasoning) = reasoning else {
        return Err(invalid_type("reasoning".to_owned(), "an object", reasoning));
    };
    match field(reasoning, "effort") {
        None => Ok(false),
        Some(Value::String(effort)) if EFFORTS.contains(&effort.as_str()) => Ok(effort != "none"),
        // The observed wording for `max`.
        Some(Value::String(effort)) => Err(OpenAiError::invalid(
            format!(
                "Unexpected value '{effort}' for 'reasoning.effort'. Supported values are: {}.",
                quoted(&EFFORTS)
            ),
            Some("reasoning.effort".to_owned()),
            Some("invalid_value"),
        )),
        Some(other) => Err(invalid_type(
            "reasoning.effort".to_owned(),
            "a string",
            other,
        )),
    }
}

/// The function tools' names. Other tool types pass: whether the real service takes them is unknown.
fn tools(fields: &Map<String, Value>) -> Result<Vec<String>, OpenAiError> {
    let tools = match field(fields, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(invalid_type("tools".to_owned(), "an array", other)),
    };
    let mut names = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let path = format!("tools[{index}].");
        let Value::Object(tool) = tool else {
            return Err(invalid_type(format!("tools[{index}]"), "an object", tool));
        };
        if string(tool, "type", &path)? != "function" {
            continue;
        }
        // Chat Completions' nested `{"type": "function", "function": {...}}` has no `name` here.
        let name = string(tool, "name", &path)?;
        if tool.contains_key("function") {
            return Err(unknown(format!("{path}function")));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn tool_choice(fields: &Map<String, Value>, tools: &[String]) -> Result<ToolChoice, OpenAiError> {
    const MODES: [&str; 3] = ["none", "auto", "required"];
    match field(fields, "tool_choice") {
        None => Ok(ToolChoice::Auto),
        Some(Value::String(mode)) => match mode.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" | "required" => Ok(ToolChoice::Auto),
            other => Err(invalid_value("tool_choice".to_owned(), other, &MODES)),
        },
        Some(Value::Object(choice)) if choice.get("type") == Some(&json!("function")) => {
            let name = string(choice, "name", "tool_choice.")?;
            if !tools.iter().any(|tool| tool == name) {
                return Err(OpenAiError::invalid(
                    format!("Tool choice '{name}' not found in 'tools' parameter."),
                    Some("tool_choice".to_owned()),
                    None,
                ));
            }
            Ok(ToolChoice::Named(name.to_owned()))
        }
        // Choices of hosted tools, or `allowed_tools`: the mock has only function tools to call.
        Some(Value::Object(_)) => Ok(ToolChoice::Auto),
        Some(other) => Err(invalid_type(
            "tool_choice".to_owned(),
            "a string or an object",
            other,
        )),
    }
}

/// What the input items say.
#[derive(Debug, Default)]
struct Input {
    user_text: String,
    words: u64,
    tool_output: Option<(String, String)>,
}

fn input_items(items: &[Value]) -> Result<Input, OpenAiError> {
    let mut input = Input::default();
    for (index, item) in items.iter().enumerate() {
        let path = format!("input[{index}].");
        let Value::Object(item) = item else {
            return Err(invalid_type(format!("input[{index}]"), "an object", item));
        };
        // An item with a role and no type is a message, as OpenAI's "easy input message".
        let kind = if field(item, "type").is_none() && item.contains_key("role") {
            "message"
        } else {
            string(item, "type", &path)?
        };
        input.tool_output = None;
        match kind {
            "message" => {
                let role = string(item, "role", &path)?;
                if !ROLES.contains(&role) {
                    return Err(invalid_value(format!("{path}role"), role, &ROLES));
                }
                let text = content(item, &path)?;
                input.words += words(&text);
                if role == "user" {
                    input.user_text = text;
                }
            }
            "function_call" => {
                string(item, "call_id", &path)?;
                string(item, "name", &path)?;
                input.words += words(string(item, "arguments", &path)?);
            }
            "function_call_output" => {
                let call_id = string(item, "call_id", &path)?;
                let output = match field(item, "output") {
                    None => return Err(missing(format!("{path}output"))),
                    Some(Value::String(output)) => output.clone(),
                    Some(Value::Array(parts)) => texts(parts, &format!("{path}output"))?,
                    Some(other) => {
                        return Err(invalid_type(
                            format!("{path}output"),
                            "a string or an array of content parts",
                            other,
                        ))
                    }
                };
                input.words += words(&output);
                input.tool_output = Some((call_id.to_owned(), output));
            }
            // Carried over from earlier turns; nothing in them changes the answer.
            "reasoning" => {}
            other => return Err(invalid_value(format!("{path}type"), other, &ITEM_TYPES)),
        }
    }
    Ok(input)
}

/// A message's text: its string content, or its text parts joined by spaces.
fn content(item: &Map<String, Value>, path: &str) -> Result<String, OpenAiError> {
    match field(item, "content") {
        None => Err(missing(format!("{path}content"))),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => texts(parts, &format!("{path}content")),
        Some(other) => Err(invalid_type(
            format!("{path}content"),
            "a string or an array of content parts",
            other,
        )),
    }
}

fn texts(parts: &[Value], path: &str) -> Result<String, OpenAiError> {
    let mut texts = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let path = format!("{path}[{index}].");
        let Value::Object(part) = part else {
            return Err(invalid_type(
                path.trim_end_matches('.').to_owned(),
                "an object",
                part,
            ));
        };
        match string(part, "type", &path)? {
            "input_text" | "output_text" => texts.push(string(part, "text", &path)?),
            "input_image" => {}
            other => return Err(invalid_value(format!("{path}type"), other, &PART_TYPES)),
        }
    }
    Ok(texts.join(" "))
}

/// The answer to a call: ids, what it says, and its usage.
#[derive(Debug, Clone)]
struct Answer {
    id: String,
    created_at: u64,
    model: String,
    /// The reasoning item's id, when reasoning is on.
    reasoning: Option<String>,
    said: Said,
    /// Cut at `max_output_tokens`.
    incomplete: bool,
    usage: Value,
    input_tokens: u64,
    cached_tokens: u64,
}

#[derive(Debug, Clone)]
enum Said {
    Text {
        id: String,
        deltas: Vec<String>,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        deltas: Vec<String>,
    },
}

impl Answer {
    fn new(state: &MockState, call: &Call, fault: Option<StreamFault>) -> Self {
        let endless = fault == Some(StreamFault::Endless);
        let text = |text: String| Said::Text {
            id: random_id("msg_"),
            deltas: word_deltas(&text),
        };
        let mut said = match (&call.tool_output, call.chosen_tool()) {
            (Some((call_id, output)), _) => text(format!("Tool {call_id} said: {output}")),
            // An endless stream is text deltas, whatever the call asked for.
            (None, Some(name)) if !endless => {
                let arguments = json!({"echo": call.user_text}).to_string();
                Said::Call {
                    id: random_id("fc_"),
                    call_id: format!("call_{}", state.next_tool_call()),
                    name: name.to_owned(),
                    deltas: thirds(&arguments),
                }
            }
            (None, _) => text(format!("Echo: {}", call.user_text)),
        };
        let mut incomplete = false;
        if let Some(StreamFault::Oversized(bytes)) = fault {
            match &mut said {
                Said::Text { deltas, .. } => deltas.insert(0, "x".repeat(bytes)),
                // Leading whitespace keeps the arguments valid JSON.
                Said::Call { deltas, .. } => deltas.insert(0, " ".repeat(bytes)),
            }
        }
        if let (Said::Text { deltas, .. }, Some(max), false) =
            (&mut said, call.max_output_tokens, endless)
        {
            incomplete = keep_words(deltas, max);
        }
        let reasoning_tokens = if call.reasoning { REASONING_TOKENS } else { 0 };
        let cached_tokens = if call.cached { CACHED_TOKENS } else { 0 };
        // OpenAI counts cached tokens inside `input_tokens`.
        let input_tokens = call.input_words.max(1) + cached_tokens;
        let output_tokens = words(&said.whole()) + reasoning_tokens;
        Self {
            id: random_id("resp_"),
            created_at: now_secs(),
            model: call.model.clone(),
            reasoning: call.reasoning.then(|| random_id("rs_")),
            said,
            incomplete,
            usage: usage(input_tokens, cached_tokens, output_tokens, reasoning_tokens),
            input_tokens,
            cached_tokens,
        }
    }

    fn status(&self) -> &'static str {
        if self.incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response object.
    fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        let incomplete_details = if status == "incomplete" {
            json!({"reason": "max_output_tokens"})
        } else {
            Value::Null
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete_details,
            "model": self.model,
            "output": output,
            "usage": usage,
        })
    }

    /// The whole, final response.
    fn whole(&self) -> Value {
        let mut output: Vec<Value> = self.reasoning_item().into_iter().collect();
        output.push(self.said.item(self.status()));
        self.response(self.status(), output, self.usage.clone())
    }

    fn reasoning_item(&self) -> Option<Value> {
        let id = self.reasoning.as_ref()?;
        Some(json!({"type": "reasoning", "id": id, "summary": []}))
    }

    /// The events, in the order of `native.responses.stream.sse`.
    fn script(&self) -> Script {
        let started = self.response("in_progress", Vec::new(), Value::Null);
        let mut head = vec![
            json!({"type": "response.created", "response": started}),
            json!({"type": "response.in_progress", "response": started}),
        ];
        let mut index = 0;
        if let Some(item) = self.reasoning_item() {
            head.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
            );
            head.push(
                json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            );
            index = 1;
        }
        head.push(json!({
            "type": "response.output_item.added",
            "output_index": index,
            "item": self.said.item("in_progress"),
        }));
        let (deltas, mut tail) = match &self.said {
            Said::Text { id, deltas } => {
                let part =
                    |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
                let at = |kind: &str| json!({"type": kind, "item_id": id, "output_index": index, "content_index": 0});
                let with = |mut event: Value, key: &str, value: Value| {
                    if let Value::Object(fields) = &mut event {
                        fields.insert(key.to_owned(), value);
                    }
                    event
                };
                head.push(with(at("response.content_part.added"), "part", part("")));
                let deltas = deltas
                    .iter()
                    .map(|delta| with(at("response.output_text.delta"), "delta", json!(delta)))
                    .collect();
                let text = self.said.whole();
                let tail = vec![
                    with(at("response.output_text.done"), "text", json!(text)),
                    with(at("response.content_part.done"), "part", part(&text)),
                ];
                (deltas, tail)
            }
            Said::Call { id, deltas, .. } => {
                let deltas = deltas
                    .iter()
                    .map(|delta| {
                        json!({
                            "type": "response.function_call_arguments.delta",
                            "item_id": id,
                            "output_index": index,
                            "delta": delta,
                        })
                    })
                    .collect();
                let tail = vec![json!({
                    "type": "response.function_call_arguments.done",
                    "item_id": id,
                    "output_index": index,
                    "arguments": self.said.whole(),
                })];
                (deltas, tail)
            }
        };
        tail.push(json!({
            "type": "response.output_item.done",
            "output_index": index,
            "item": self.said.item(self.status()),
        }));
        let kind = if self.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        tail.push(json!({"type": kind, "response": self.whole()}));
        Script { head, deltas, tail }
    }

    /// [`StreamFault::Empty`]: created, then completed with no output at all.
    fn empty_script(&self) -> Script {
        let started = self.response("in_progress", Vec::new(), Value::Null);
        let usage = usage(self.input_tokens, self.cached_tokens, 0, 0);
        let done = self.response("completed", Vec::new(), usage);
        Script {
            head: vec![json!({"type": "response.created", "response": started})],
            deltas: Vec::new(),
            tail: vec![json!({"type": "response.completed", "response": done})],
        }
    }

    /// The `response.failed` event of [`StreamFault::Failure`].
    fn failed(&self) -> Value {
        let mut response = self.response("failed", Vec::new(), Value::Null);
        if let Value::Object(fields) = &mut response {
            fields.insert(
                "error".to_owned(),
                json!({"code": "server_error", "message": "The model failed to generate a response (injected)."}),
            );
        }
        json!({"type": "response.failed", "response": response})
    }
}

impl Said {
    /// The text, or the arguments.
    fn whole(&self) -> String {
        match self {
            Self::Text { deltas, .. } | Self::Call { deltas, .. } => deltas.concat(),
        }
    }

    fn item(&self, status: &str) -> Value {
        let done = status != "in_progress";
        match self {
            Self::Text { id, .. } => {
                let content = if done {
                    json!([{"type": "output_text", "text": self.whole(), "annotations": []}])
                } else {
                    json!([])
                };
                json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
            }
            Self::Call {
                id, call_id, name, ..
            } => {
                let arguments = if done { self.whole() } else { String::new() };
                // A cut never applies to a call, so a finished call is complete.
                let status = if done { "completed" } else { status };
                json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
            }
        }
    }
}

fn usage(input: u64, cached: u64, output: u64, reasoning: u64) -> Value {
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output,
    })
}

/// Server-sent events, each named after its `type`, numbered in the order they go out.
fn encode(answer: &Answer, events: Events) -> impl Iterator<Item = Piece> + Send + 'static {
    let failed = answer.failed();
    let mut sequence = 0_u64;
    events.map(move |event| match event {
        Ev::Event(event) => Piece::Bytes(sse(event, &mut sequence)),
        Ev::Failure => Piece::Bytes(sse(failed.clone(), &mut sequence)),
        Ev::Malformed => Piece::Bytes(Bytes::from_static(MALFORMED)),
        Ev::Pause(delay) => Piece::Pause(delay),
    })
}

fn sse(mut event: Value, sequence: &mut u64) -> Bytes {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Value::Object(fields) = &mut event {
        fields.insert("sequence_number".to_owned(), json!(*sequence));
    }
    *sequence += 1;
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value) -> Result<Call, OpenAiError> {
        let fields = object(body.to_string().as_bytes())?;
        let model = model(&fields)?;
        parse(model, &fields)
    }

    fn refusal(body: Value) -> (String, Option<String>) {
        let error = check(body).unwrap_err();
        (error.message, error.param)
    }

    #[test]
    fn names_follow_the_family() {
        assert!(is_known("sfdc_ai__DefaultGPT54"));
        assert!(is_known("custom_gpt"));
        assert!(!is_known("sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet"));
    }

    #[test]
    fn refusals_name_their_parameter() {
        let (message, param) =
            refusal(json!({"model": "m", "input": "hi", "reasoning": {"effort": "max"}}));
        assert!(message.starts_with("Unexpected value 'max'"), "{message}");
        assert_eq!(param.as_deref(), Some("reasoning.effort"));
        let (_, param) = refusal(
            json!({"model": "m", "input": [{"type": "message", "role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        );
        assert_eq!(param.as_deref(), Some("input[0].content[0].type"));
        let (message, _) = refusal(json!({"model": "m"}));
        assert_eq!(message, "Missing required parameter: 'input'.");
        let (message, _) = refusal(json!({"input": "x"}));
        assert_eq!(message, "Missing required parameter: 'model'.");
    }

    #[test]
    fn effort_none_is_not_reasoning() {
        let call = check(json!({"model": "m", "input": "hi", "reasoning": {"effort": "none"}, "temperature": 0.2})).unwrap();
        assert!(!call.reasoning);
        let call = check(
            json!({"model": "m", "input": "hi", "reasoning": {"summary": "auto"}, "top_p": 0.2}),
        )
        .unwrap();
        assert!(!call.reasoning);
    }
}
