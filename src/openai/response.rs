//! Responses: completions, stream chunks and the model list, borrowing their text.

use serde::Serialize;

use crate::core::{self, Finish};

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
    /// Present when the upstream reported reasoning tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl From<core::Usage> for Usage {
    fn from(usage: core::Usage) -> Self {
        Usage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens,
            prompt_tokens_details: usage
                .cached_tokens
                .map(|cached_tokens| PromptTokensDetails { cached_tokens }),
            completion_tokens_details: usage
                .reasoning_tokens
                .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens }),
        }
    }
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompletionTokensDetails {
    /// Completion tokens the model spent reasoning.
    pub reasoning_tokens: u64,
}

/// OpenAI's `finish_reason` for why a generation ended.
pub fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
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
    /// The model's text, unaltered; null when the model only called tools.
    pub content: Option<&'a str>,
    /// Always null.
    pub refusal: Option<()>,
    /// The tools the model called, when it called any.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tool_calls: &'a [ToolCallOut<'a>],
}

/// A tool call in an answer: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallOut<'a> {
    /// The call's id, which the tool message answering it names.
    pub id: &'a str,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What is called.
    pub function: FunctionCallOut<'a>,
}

/// The function of a [`ToolCallOut`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCallOut<'a> {
    /// The tool's name.
    pub name: &'a str,
    /// The arguments, as JSON text.
    pub arguments: &'a str,
}

impl<'a> From<&'a core::ToolCall<'_>> for ToolCallOut<'a> {
    fn from(call: &'a core::ToolCall<'_>) -> Self {
        ToolCallOut {
            id: &call.id,
            kind: "function",
            function: FunctionCallOut {
                name: &call.name,
                arguments: &call.arguments,
            },
        }
    }
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
    /// The start of a tool call, or a piece of its arguments.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tool_calls: &'a [ChunkToolCall<'a>],
}

/// A tool call's start (`id`, `type` and `name` set) or a piece of its arguments, in a chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkToolCall<'a> {
    /// The call's position among the answer's calls.
    pub index: usize,
    /// The call's id, on its first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// `function`, on its first chunk.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The name (first chunk) and a piece of the arguments.
    pub function: ChunkFunction<'a>,
}

/// The function of a [`ChunkToolCall`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkFunction<'a> {
    /// The tool's name, on the call's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// A piece of the arguments.
    pub arguments: &'a str,
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
