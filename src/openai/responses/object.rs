//! The answer of `POST /v1/responses`: the response object, its output items, and the events of
//! its stream, borrowing their text.

use serde::Serialize;

use crate::core;

/// A response object, `"object": "response"`: the whole answer, and what the stream's lifecycle
/// events (`response.created`, `response.completed`, ...) carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseObject<'a> {
    /// The response's id.
    pub id: &'a str,
    /// Always `response`.
    pub object: &'static str,
    /// Unix seconds.
    pub created_at: u64,
    /// `in_progress`, `completed` or `incomplete`.
    pub status: &'static str,
    /// Always `null`: a failed answer is an error, not a response.
    pub error: Option<()>,
    /// Why an `incomplete` response stopped.
    pub incomplete_details: Option<IncompleteDetails>,
    /// Always `null`: the caller's instructions are not repeated.
    pub instructions: Option<()>,
    /// The model name the caller used.
    pub model: &'a str,
    /// The output items, in order.
    pub output: &'a [OutputItem<'a>],
    /// Required by the SDKs' `Response`; the request's value is not known when answering, so
    /// the API's default.
    pub parallel_tool_calls: bool,
    /// Required by the SDKs' `Response`; the API's default, as above.
    pub tool_choice: &'static str,
    /// Required by the SDKs' `Response`; the offered tools are not repeated.
    pub tools: [(); 0],
    /// Token counts; `null` until the answer is complete, or when the upstream sent none.
    pub usage: Option<ResponseUsage>,
}

/// `incomplete_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: &'static str,
}

/// One output item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem<'a> {
    /// The model's text.
    Message {
        /// The item's id (`msg_…`).
        id: &'a str,
        /// `in_progress`, `completed` or `incomplete`.
        status: &'static str,
        /// Always `assistant`.
        role: &'static str,
        /// The text, as one part; no part while the item is being added.
        content: OutputContent<'a>,
    },
    /// A call of one of the caller's functions.
    FunctionCall {
        /// The item's id (`fc_…`).
        id: &'a str,
        /// The call's id, which the function's output names.
        call_id: &'a str,
        /// The function's name.
        name: &'a str,
        /// The arguments, as JSON text.
        arguments: &'a str,
        /// `in_progress`, `completed` or `incomplete`.
        status: &'static str,
    },
}

/// A message item's `content`: no part yet (`[]`), or one `output_text` part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputContent<'a>(pub Option<&'a str>);

impl Serialize for OutputContent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.map(OutputText::new))
    }
}

/// An `output_text` content part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputText<'a> {
    /// Always `output_text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The text.
    pub text: &'a str,
    /// Always empty: the bridge has no citations.
    pub annotations: [(); 0],
}

impl<'a> OutputText<'a> {
    /// An `output_text` part holding `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            kind: "output_text",
            text,
            annotations: [],
        }
    }
}

/// `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResponseUsage {
    /// Tokens read, cached ones included.
    pub input_tokens: u64,
    /// Details of the input tokens.
    pub input_tokens_details: InputTokensDetails,
    /// Tokens written, reasoning included.
    pub output_tokens: u64,
    /// Details of the output tokens.
    pub output_tokens_details: OutputTokensDetails,
    /// Their sum.
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`; counts the upstream did not report are zeros, as the SDKs
/// require every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputTokensDetails {
    /// Served from the prompt cache.
    pub cached_tokens: u64,
    /// Written to the prompt cache.
    pub cache_write_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutputTokensDetails {
    /// Spent reasoning.
    pub reasoning_tokens: u64,
}

impl From<core::Usage> for ResponseUsage {
    fn from(usage: core::Usage) -> Self {
        ResponseUsage {
            input_tokens: usage.input_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: usage.cached_tokens.unwrap_or(0),
                cache_write_tokens: usage.cache_write_tokens.unwrap_or(0),
            },
            output_tokens: usage.output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: usage.reasoning_tokens.unwrap_or(0),
            },
            total_tokens: usage.total_tokens,
        }
    }
}

/// `response.created`, `response.in_progress`, `response.completed`, `response.incomplete`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleEvent<'a> {
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's position in the stream.
    pub sequence_number: u64,
    /// The response as it stands.
    pub response: &'a ResponseObject<'a>,
}

/// `response.output_item.added`, `response.output_item.done`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemEvent<'a> {
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's position in the stream.
    pub sequence_number: u64,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The item as it stands.
    pub item: OutputItem<'a>,
}

/// `response.content_part.added`, `response.content_part.done`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartEvent<'a> {
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's position in the stream.
    pub sequence_number: u64,
    /// The message item's id.
    pub item_id: &'a str,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `content`.
    pub content_index: usize,
    /// The part as it stands.
    pub part: OutputText<'a>,
}

/// `response.output_text.delta` (with `delta`) and `response.output_text.done` (with `text`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextEvent<'a> {
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's position in the stream.
    pub sequence_number: u64,
    /// The message item's id.
    pub item_id: &'a str,
    /// The item's position in `output`.
    pub output_index: usize,
    /// The part's position in the item's `content`.
    pub content_index: usize,
    /// A piece of text (`delta` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<&'a str>,
    /// The whole text (`done` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    /// Always empty; the SDKs require the field.
    pub logprobs: [(); 0],
}

/// `response.function_call_arguments.delta` (with `delta`) and `…done` (with `arguments`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgumentsEvent<'a> {
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event's position in the stream.
    pub sequence_number: u64,
    /// The function call item's id.
    pub item_id: &'a str,
    /// The item's position in `output`.
    pub output_index: usize,
    /// A piece of the arguments (`delta` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<&'a str>,
    /// The whole arguments (`done` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a str>,
}

/// The `error` event that ends a stream that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorEvent<'a> {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A stable machine-readable code, such as `upstream_timeout`.
    pub code: Option<&'a str>,
    /// A sentence for people.
    pub message: &'a str,
    /// The request parameter at fault.
    pub param: Option<&'a str>,
    /// The event's position in the stream.
    pub sequence_number: u64,
}
