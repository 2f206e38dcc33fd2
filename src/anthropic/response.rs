//! Answers: a `message`, borrowing its text.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::core::{self, Finish};

/// A complete answer: `{"id", "type": "message", "role": "assistant", "model", "content",
/// "stop_reason", "stop_sequence", "usage"}`. Also the `message` of a stream's
/// `message_start`, with no content and no stop reason yet.
#[derive(Debug, Clone, Serialize)]
pub struct Message<'a> {
    /// The message id.
    pub id: &'a str,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `assistant`.
    pub role: &'static str,
    /// The model name the caller used.
    pub model: &'a str,
    /// Text and tool calls, in order.
    pub content: Vec<ContentBlock<'a>>,
    /// Why the model stopped; `None` only at the start of a stream.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence met, when known (never: the core does not say which).
    pub stop_sequence: Option<&'a str>,
    /// Token counts.
    pub usage: Usage,
}

impl<'a> Message<'a> {
    /// A message with `content`, as the Messages API frames it.
    pub fn new(id: &'a str, model: &'a str, content: Vec<ContentBlock<'a>>) -> Self {
        Self {
            id,
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }
}

/// One block of an answer's content.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock<'a> {
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// A tool call.
    ToolUse {
        /// The call's id, which its `tool_result` names.
        id: &'a str,
        /// The tool's name.
        name: &'a str,
        /// The arguments: a JSON object.
        input: &'a RawValue,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A natural end (or a stop sequence: the core does not tell them apart).
    EndTurn,
    /// `max_tokens` cut it off.
    MaxTokens,
    /// The model called tools and waits for their results.
    ToolUse,
    /// A safety filter stopped it.
    Refusal,
}

impl From<Finish> for StopReason {
    fn from(finish: Finish) -> Self {
        match finish {
            Finish::Stop => StopReason::EndTurn,
            Finish::Length => StopReason::MaxTokens,
            Finish::ToolCalls => StopReason::ToolUse,
            Finish::ContentFilter => StopReason::Refusal,
        }
    }
}

/// Token counts, as Anthropic reports them: `input_tokens` excludes the tokens read from and
/// written to the prompt cache, which have fields of their own (their sum is the input).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens neither read from nor written to the cache.
    pub input_tokens: u64,
    /// Tokens written, thinking included.
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache.
    pub cache_read_input_tokens: u64,
}

impl From<core::Usage> for Usage {
    fn from(usage: core::Usage) -> Self {
        let cache_read_input_tokens = usage.cached_tokens.unwrap_or(0);
        let cache_creation_input_tokens = usage.cache_write_tokens.unwrap_or(0);
        Usage {
            // The core counts cached and cache-written tokens in the input, Anthropic apart.
            input_tokens: usage
                .input_tokens
                .saturating_sub(cache_read_input_tokens)
                .saturating_sub(cache_creation_input_tokens),
            output_tokens: usage.output_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_splits_the_cache_out_of_the_input() {
        let usage = Usage::from(core::Usage {
            input_tokens: 100,
            output_tokens: 7,
            total_tokens: 107,
            cached_tokens: Some(60),
            cache_write_tokens: Some(30),
            reasoning_tokens: Some(3),
        });
        assert_eq!(
            serde_json::to_value(usage).unwrap(),
            json!({"input_tokens": 10, "output_tokens": 7,
                   "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60})
        );
    }

    #[test]
    fn blocks_are_tagged() {
        let input: &RawValue = serde_json::from_str(r#"{"a":1}"#).unwrap();
        let blocks = [
            ContentBlock::Text { text: "hi" },
            ContentBlock::ToolUse {
                id: "t",
                name: "f",
                input,
            },
        ];
        assert_eq!(
            serde_json::to_value(blocks).unwrap(),
            json!([{"type": "text", "text": "hi"},
                   {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}])
        );
    }
}

/// `GET /v1/models` in Anthropic's shape: every configured model, on one page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelList<'a> {
    /// The models.
    pub data: Vec<ModelInfo<'a>>,
    /// Always `false`: the list is never paged.
    pub has_more: bool,
    /// The first model's id.
    pub first_id: Option<&'a str>,
    /// The last model's id.
    pub last_id: Option<&'a str>,
}

/// One model of a [`ModelList`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo<'a> {
    /// Always `model`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The name callers use (a route's `model`).
    pub id: &'a str,
    /// The same name: the conf has no other.
    pub display_name: &'a str,
    /// Unknown to the bridge: the Unix epoch, in RFC 3339.
    pub created_at: &'static str,
    /// Always `active`: a routed model is served.
    pub lifecycle: &'static str,
}

impl<'a> ModelList<'a> {
    /// The list of `names`, in order.
    ///
    /// ```
    /// let list = sf_models_bridge::anthropic::ModelList::new(&["claude-sonnet-4-6"]);
    /// let json = serde_json::to_value(&list).unwrap();
    /// assert_eq!(json["data"][0]["type"], "model");
    /// assert_eq!(json["first_id"], "claude-sonnet-4-6");
    /// assert_eq!(json["has_more"], false);
    /// ```
    pub fn new(names: &[&'a str]) -> Self {
        Self {
            data: names
                .iter()
                .map(|id| ModelInfo {
                    kind: "model",
                    id,
                    display_name: id,
                    created_at: "1970-01-01T00:00:00Z",
                    lifecycle: "active",
                })
                .collect(),
            has_more: false,
            first_id: names.first().copied(),
            last_id: names.last().copied(),
        }
    }
}
