//! What the upstream answers, as far as the bridge reads it: Anthropic's message, its stream
//! events, its usage and stop reasons. Unknown fields are skipped without being built.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::core::{Finish, Usage};

/// An Anthropic message, the answer of `invoke`.
#[derive(Debug, Deserialize)]
pub(super) struct MessageBody<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) content: Option<Vec<ContentBlock<'a>>>,
    #[serde(borrow, default)]
    pub(super) stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

/// One content block of a message, or the block a stream's `content_block_start` opens.
#[derive(Debug, Deserialize)]
pub(super) struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) input: Option<&'a RawValue>,
}

/// One Anthropic stream event, every kind in one flat shape: a stream carries many small
/// events, and a flat struct reads each in one pass, where a tagged enum would buffer it first.
#[derive(Debug, Deserialize)]
pub(super) struct StreamEventBody<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(default)]
    pub(super) index: Option<u64>,
    /// `message_start`.
    #[serde(default)]
    pub(super) message: Option<StartMessage>,
    /// `content_block_start`.
    #[serde(borrow, default)]
    pub(super) content_block: Option<ContentBlock<'a>>,
    /// `content_block_delta` and `message_delta`.
    #[serde(borrow, default)]
    pub(super) delta: Option<Delta<'a>>,
    /// `message_delta`.
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    /// `error`.
    #[serde(borrow, default)]
    pub(super) error: Option<ErrorObject<'a>>,
}

/// The message of `message_start`: only its usage matters here.
#[derive(Debug, Deserialize)]
pub(super) struct StartMessage {
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

/// The `delta` of `content_block_delta` (`text_delta`, `input_json_delta`, ...) or of
/// `message_delta` (`stop_reason`).
#[derive(Debug, Deserialize)]
pub(super) struct Delta<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) stop_reason: Option<Cow<'a, str>>,
}

/// The `error` of an `error` event: `{"type": "overloaded_error", "message": ...}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorObject<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) message: Option<Cow<'a, str>>,
}

/// Anthropic's usage. Its `input_tokens` counts only the tokens neither read from nor written
/// to the prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) output_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes the counts `later` reports: a stream's `message_delta` repeats some of
    /// `message_start`'s, cumulatively.
    pub(super) fn update(&mut self, later: WireUsage) {
        let WireUsage {
            input_tokens,
            output_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
        } = later;
        self.input_tokens = input_tokens.or(self.input_tokens);
        self.output_tokens = output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens =
            cache_creation_input_tokens.or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = cache_read_input_tokens.or(self.cache_read_input_tokens);
    }

    /// The neutral usage, whose input counts every token read, cached or not; `None` when the
    /// upstream reported no count.
    pub(super) fn to_core(self) -> Option<Usage> {
        if self == WireUsage::default() {
            return None;
        }
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        let input_tokens = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(read)
            .saturating_add(written);
        let output_tokens = self.output_tokens.unwrap_or(0);
        Some(Usage {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
            cached_tokens: self.cache_read_input_tokens,
            cache_write_tokens: self.cache_creation_input_tokens,
            reasoning_tokens: None,
        })
    }
}

/// Anthropic's `stop_reason` as the neutral finish. `pause_turn` (a server tool's long turn,
/// paused for the client to send back as it is) becomes `Stop`: the answer so far is complete
/// as far as a client without server tools can tell. `model_context_window_exceeded` is a cut
/// like `max_tokens`. Unknown and absent reasons are `Stop`.
pub(super) fn finish(stop_reason: Option<&str>) -> Finish {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => Finish::Length,
        Some("tool_use") => Finish::ToolCalls,
        Some("refusal") => Finish::ContentFilter,
        // `end_turn`, `stop_sequence`, `pause_turn`, and any reason added later.
        _ => Finish::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map() {
        let cases = [
            (Some("end_turn"), Finish::Stop),
            (Some("stop_sequence"), Finish::Stop),
            (Some("pause_turn"), Finish::Stop),
            (Some("max_tokens"), Finish::Length),
            (Some("model_context_window_exceeded"), Finish::Length),
            (Some("tool_use"), Finish::ToolCalls),
            (Some("refusal"), Finish::ContentFilter),
            (Some("something_new"), Finish::Stop),
            (None, Finish::Stop),
        ];
        for (reason, expected) in cases {
            assert_eq!(finish(reason), expected, "{reason:?}");
        }
    }

    #[test]
    fn usage_counts_cache_reads_and_writes_as_input() {
        let usage: WireUsage = serde_json::from_str(
            r#"{"input_tokens": 10, "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000, "output_tokens": 5}"#,
        )
        .unwrap();
        assert_eq!(
            usage.to_core(),
            Some(Usage {
                input_tokens: 1110,
                output_tokens: 5,
                total_tokens: 1115,
                cached_tokens: Some(1000),
                cache_write_tokens: Some(100),
                reasoning_tokens: None,
            })
        );
        assert_eq!(WireUsage::default().to_core(), None);
        let nulls: WireUsage =
            serde_json::from_str(r#"{"input_tokens": 3, "cache_read_input_tokens": null}"#)
                .unwrap();
        assert_eq!(nulls.to_core().unwrap().cached_tokens, None);
    }

    #[test]
    fn later_usage_overrides_what_it_repeats() {
        let mut usage = WireUsage {
            input_tokens: Some(20),
            output_tokens: Some(1),
            cache_read_input_tokens: Some(4),
            ..WireUsage::default()
        };
        usage.update(WireUsage {
            output_tokens: Some(18),
            ..WireUsage::default()
        });
        assert_eq!(usage.input_tokens, Some(20));
        assert_eq!(usage.output_tokens, Some(18));
        assert_eq!(usage.cache_read_input_tokens, Some(4));
    }
}
