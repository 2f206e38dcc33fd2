//! The neutral answer: generated text and tool calls, or vectors, with usage.

use super::request::ToolCall;

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<'a> {
    /// Text (and tool calls) from a generative model.
    Generation(Generation<'a>),
    /// Vectors from an embeddings model.
    Embeddings(Embeddings),
}

/// A generated answer, borrowing its text from the upstream's body where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation<'a> {
    /// The upstream's answer id, when it sent one (a front checks it before passing it on).
    pub id: Option<&'a str>,
    /// The model's text, unaltered.
    pub text: &'a str,
    /// Tools the model called.
    pub tool_calls: Vec<ToolCall<'a>>,
    /// Why the model stopped.
    pub finish: Finish,
    /// Token counts, when the upstream reported them.
    pub usage: Option<Usage>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Finish {
    /// The model was done, or met a stop sequence.
    Stop,
    /// The output limit cut it off.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// A safety filter stopped it.
    ContentFilter,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens read, cached ones included.
    pub input_tokens: u64,
    /// Tokens written, reasoning included.
    pub output_tokens: u64,
    /// Their sum, unless the upstream said otherwise.
    pub total_tokens: u64,
    /// Input tokens served from the provider's prompt cache, when reported.
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the provider's prompt cache, when reported (Anthropic's
    /// `cache_creation_input_tokens`); counted in `input_tokens` too.
    pub cache_write_tokens: Option<u64>,
    /// Output tokens spent reasoning, when reported.
    pub reasoning_tokens: Option<u64>,
}

/// Vectors, one per input, in the inputs' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The vectors.
    pub vectors: Vec<Vec<f32>>,
    /// Token counts, when the upstream reported them.
    pub usage: Option<Usage>,
}

impl Finish {
    /// A fixed name for logs and tests: `stop`, `length`, `tool_calls`, `content_filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
        }
    }
}
