//! The answers of `POST /responses`: the Responses object, and the events of its stream. One
//! flat borrowed struct per shape: fields nobody reads are skipped without being built, and a
//! field of an odd type (a count as a string) is read leniently where a stricter read would
//! lose the whole answer.

use std::borrow::Cow;

use serde::Deserialize;

use crate::surface::einstein::lenient_count;

/// A Responses object: the whole answer, or the `response` of `response.completed`,
/// `response.incomplete` and `response.failed` events.
#[derive(Debug, Default, Deserialize)]
pub struct ResponseObject<'a> {
    /// The upstream's answer id (`resp_...`).
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// `completed`, `incomplete`, `failed`, `cancelled`, `in_progress`, `queued`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// Why an `incomplete` answer stopped.
    #[serde(borrow, default)]
    pub incomplete_details: Option<IncompleteDetails<'a>>,
    /// Why a `failed` answer failed.
    #[serde(borrow, default)]
    pub error: Option<ResponseError<'a>>,
    /// Messages, tool calls and reasoning, in order.
    #[serde(borrow, default)]
    pub output: Vec<OutputItem<'a>>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
}

/// `incomplete_details`.
#[derive(Debug, Default, Deserialize)]
pub struct IncompleteDetails<'a> {
    /// `max_output_tokens` or `content_filter`.
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
}

/// `error` of a failed answer, and the body of an `error` event.
#[derive(Debug, Default, Deserialize)]
pub struct ResponseError<'a> {
    /// A machine-readable code (`server_error`, `rate_limit_exceeded`, ...).
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    /// A sentence.
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// One output item: a `message`, a `function_call`, a `reasoning` item or one of another type,
/// told apart by `type`.
#[derive(Debug, Default, Deserialize)]
pub struct OutputItem<'a> {
    /// The item's type.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// A message's parts.
    #[serde(borrow, default)]
    pub content: Option<Vec<OutputContent<'a>>>,
    /// A function call's id, which its result names.
    #[serde(borrow, default)]
    pub call_id: Option<Cow<'a, str>>,
    /// A function call's tool.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// A function call's arguments, as JSON text.
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
}

impl OutputItem<'_> {
    /// Whether this item is of type `kind`.
    pub fn is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }
}

/// One part of an output message: `output_text` with `text`, or `refusal` with `refusal`.
#[derive(Debug, Default, Deserialize)]
pub struct OutputContent<'a> {
    /// The part's type.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// An `output_text` part's text.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// A `refusal` part's explanation.
    #[serde(borrow, default)]
    pub refusal: Option<Cow<'a, str>>,
}

impl OutputContent<'_> {
    /// The text this part shows the caller: an `output_text`'s text, or a refusal's words (the
    /// neutral answer has no separate refusal, and dropping it would leave an empty answer).
    pub fn shown_text(&self) -> Option<&str> {
        match self.kind.as_deref() {
            Some("output_text") => self.text.as_deref(),
            Some("refusal") => self.refusal.as_deref(),
            _ => None,
        }
    }
}

/// `usage`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct ResponsesUsage {
    /// Tokens read, cached ones included.
    #[serde(default, deserialize_with = "lenient_count")]
    pub input_tokens: Option<u64>,
    /// Tokens written, reasoning included.
    #[serde(default, deserialize_with = "lenient_count")]
    pub output_tokens: Option<u64>,
    /// Their sum.
    #[serde(default, deserialize_with = "lenient_count")]
    pub total_tokens: Option<u64>,
    /// `cached_tokens` inside.
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    /// `reasoning_tokens` inside.
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct InputDetails {
    /// Input tokens served from the prompt cache.
    #[serde(default, deserialize_with = "lenient_count")]
    pub cached_tokens: Option<u64>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct OutputDetails {
    /// Output tokens spent reasoning.
    #[serde(default, deserialize_with = "lenient_count")]
    pub reasoning_tokens: Option<u64>,
}

/// One event of a `/responses` stream, flat: each field is set by the event types that carry
/// it.
#[derive(Debug, Default, Deserialize)]
pub struct StreamEventWire<'a> {
    /// The event's type, equal to its SSE name.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// `response.output_text.delta`, `response.function_call_arguments.delta`: the piece.
    #[serde(borrow, default)]
    pub delta: Option<Cow<'a, str>>,
    /// Which output item the event is about.
    #[serde(default)]
    pub output_index: Option<u64>,
    /// `response.output_item.added` and `.done`: the item.
    #[serde(borrow, default)]
    pub item: Option<OutputItem<'a>>,
    /// `response.created`, `.completed`, `.incomplete`, `.failed`: the response object.
    #[serde(borrow, default)]
    pub response: Option<ResponseObject<'a>>,
    /// `error` events: the code.
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    /// `error` events: the message.
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    /// `error` events in the newer shape: code and message inside an `error` object.
    #[serde(borrow, default)]
    pub error: Option<ResponseError<'a>>,
}
