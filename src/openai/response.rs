//! Responses: completions, stream chunks and the model list, borrowing their text.

use serde::Serialize;

/// Token counts, as OpenAI reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    pub completion_tokens: u64,
    /// Their sum, unless the upstream said otherwise.
    pub total_tokens: u64,
    /// Present when the upstream reported prompt tokens served from its cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_tokens: u64,
}

/// `chat.completion`: the answer to a non-streamed chat request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion<'a> {
    /// The completion id.
    pub id: &'a str,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: &'a str,
    /// Exactly one choice: the Models API produces one.
    pub choices: [ChatChoice<'a>; 1],
    /// Token counts, when the upstream reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The one choice of a chat completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatChoice<'a> {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage<'a>,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    pub finish_reason: &'static str,
    /// Always null: the Models API does not return log probabilities.
    pub logprobs: Option<()>,
}

/// The model's message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantMessage<'a> {
    /// Always `assistant`.
    pub role: &'static str,
    /// The model's text, unaltered.
    pub content: &'a str,
    /// Always null.
    pub refusal: Option<()>,
}

/// `text_completion`: the answer to a non-streamed legacy completion request, and each of its
/// stream chunks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion<'a> {
    /// The completion id.
    pub id: &'a str,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: &'a str,
    /// One choice, or none on a stream's usage chunk.
    pub choices: &'a [CompletionChoice<'a>],
    /// Token counts, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The one choice of a legacy completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionChoice<'a> {
    /// The model's text (or a piece of it, in a stream).
    pub text: &'a str,
    /// Always 0.
    pub index: u32,
    /// Always null.
    pub logprobs: Option<()>,
    /// Set on the last piece only.
    pub finish_reason: Option<&'static str>,
}

/// `chat.completion.chunk`: one event of a streamed chat answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionChunk<'a> {
    /// The completion id, the same in every chunk.
    pub id: &'a str,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds, the same in every chunk.
    pub created: u64,
    /// The model name the caller used.
    pub model: &'a str,
    /// One choice, or none on the usage chunk.
    pub choices: &'a [ChatChunkChoice<'a>],
    /// With `stream_options.include_usage`: null on every chunk but the last, which has counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

/// The choice of a stream chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatChunkChoice<'a> {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds.
    pub delta: ChunkDelta<'a>,
    /// Always null.
    pub logprobs: Option<()>,
    /// Set on the finish chunk only.
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds: the role (first chunk), a piece of content, or nothing (finish chunk).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ChunkDelta<'a> {
    /// `assistant`, on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// A piece of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelList<'a> {
    /// Always `list`.
    pub object: &'static str,
    /// One entry per configured route.
    pub data: Vec<Model<'a>>,
}

/// One model of the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model<'a> {
    /// The name callers send as `model`.
    pub id: &'a str,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds; 0, as routes have no creation date.
    pub created: u64,
    /// Always `salesforce`.
    pub owned_by: &'static str,
}
