//! The `bedrock` surface: Claude models served by Salesforce in Amazon Bedrock's invoke shape,
//! `{gpt_api_base}/model/{model}/invoke` and `.../invoke-with-response-stream`.
//!
//! The body is Anthropic's Messages body without `model` (it is in the path) and `stream` (the
//! path decides), with `"anthropic_version": "bedrock-2023-05-31"`. The whole answer is one
//! Anthropic message; the stream is AWS event-stream frames, each carrying one Anthropic stream
//! event in `{"bytes": "<base64>"}`.
//!
//! Two roads lead here:
//!
//! - **Through the core** (Chat Completions, legacy Completions): the route's `call` builds the
//!   body from the neutral request; [`read_answer`], or [`EventStreamFrames`] then
//!   [`AnthropicEvents`] for a stream, read the answer back as neutral answers and events.
//! - **Native** (an Anthropic Messages caller): the caller's body passes through nearly
//!   untouched, and the answer and each stream event come back with the caller's model name, so
//!   fields the bridge does not know keep working.
//!
//! # The thinking switches
//!
//! Two rewrites of the native body were needed on real orgs; each is a per-route conf switch, off
//! by default, never applied unasked ([`ThinkingSwitches`]):
//!
//! - `thinking_enabled_to_adaptive`: newer Claude models refuse `thinking: {"type": "enabled",
//!   "budget_tokens": N}` and take `{"type": "adaptive"}` (with `output_config.effort`). Current
//!   clients already send the adaptive form; older ones do not. The budget goes; an
//!   `output_config.effort` the caller set stays.
//! - `strip_thinking_history`: `thinking` and `redacted_thinking` blocks in the history made some
//!   orgs answer 502 "No user context has been created"; a public proxy strips them by default.
//!   A message left without content goes too.
//!
//! The road through the core never sends thinking (the neutral request has no thinking blocks,
//! and a reasoning effort is reported as dropped), so the switches concern the native road only.
//!
//! ```
//! use sf_models_bridge::core::StreamEvent;
//! use sf_models_bridge::eventstream::chunk_frame;
//! use sf_models_bridge::surface::bedrock::{AnthropicEvents, EventStreamFrames};
//! use sf_models_bridge::surface::stream::{ReadEvents, Unframe};
//!
//! let mut wire = Vec::new();
//! for event in [
//!     r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
//!     r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
//!     r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
//!     r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
//!     r#"{"type":"message_stop"}"#,
//! ] {
//!     wire.extend(chunk_frame(event.as_bytes()));
//! }
//! let (mut frames, mut reader) = (EventStreamFrames::default(), AnthropicEvents::default());
//! let mut text = String::new();
//! let mut collect = |event: StreamEvent<'_>| {
//!     if let StreamEvent::TextDelta(piece) = event {
//!         text.push_str(piece);
//!     }
//! };
//! for read in wire.chunks(10) {
//!     frames.push(read)?;
//!     while let Some(event) = frames.next_event()? {
//!         reader.read(&event, &mut collect)?;
//!     }
//! }
//! frames.finish()?;
//! reader.finish(&mut collect)?;
//! assert_eq!(text, "Hi");
//! # Ok::<(), sf_models_bridge::core::Failure>(())
//! ```

mod convert;
mod events;
mod passthrough;
mod read;
mod unframe;
mod wire;

pub use events::AnthropicEvents;
pub(crate) use passthrough::{native_answer, MessagesRelay};
pub use read::{is_event_stream, read_answer, read_failure, read_non_stream};
pub use unframe::EventStreamFrames;

/// The Bedrock body for a conversation, as JSON; `default_max_tokens` stands in when the caller
/// names none. (What a route's call sends, for tools such as the fuzz targets.)
pub fn chat_body_json(
    chat: &crate::core::Chat<'_>,
    default_max_tokens: u64,
) -> Result<Vec<u8>, TranslateError> {
    Ok(encode(&convert::chat_body(chat, default_max_tokens)?, 0))
}

use std::borrow::Cow;

use crate::config;
use crate::core::{Task, TranslateError};
use crate::surface::{encode, Call, NativeCall, Reading};
use crate::upstream::Target;

/// The name a served answer's parse path has in the metrics.
pub(crate) const PARSE_PATH: &str = "bedrock";

/// The `anthropic_version` Bedrock requires in every body.
pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The `max_tokens` sent when neither the caller nor the route's `default_max_tokens` names one:
/// Anthropic's API requires it, and 4096 is what Anthropic's own examples and most clients use.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The per-route rewrites of a native body's thinking (see the module docs), all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThinkingSwitches {
    /// `thinking_enabled_to_adaptive`: `{"type": "enabled", ...}` becomes `{"type": "adaptive"}`.
    pub enabled_to_adaptive: bool,
    /// `strip_thinking_history`: `thinking` and `redacted_thinking` blocks leave the history.
    pub strip_history: bool,
}

/// A route on this surface: its two URLs and its settings, built once at start-up.
#[derive(Debug)]
pub(crate) struct Route {
    invoke: Target,
    stream: Target,
    max_tokens: u64,
    thinking: ThinkingSwitches,
}

impl Route {
    /// The URLs of `route`'s model under `gpt_api_base`, and its settings; `None` when the URLs
    /// are not valid URIs. The conf has checked that the model name is one path segment.
    pub(crate) fn new(gpt_api_base: &str, route: &config::Route) -> Option<Self> {
        let url = |suffix: &str| {
            Target::parse(&format!(
                "{gpt_api_base}/model/{}/{suffix}",
                route.salesforce_model
            ))
        };
        Some(Self {
            invoke: url("invoke")?,
            stream: url("invoke-with-response-stream")?,
            max_tokens: route.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            thinking: ThinkingSwitches {
                enabled_to_adaptive: route.thinking_enabled_to_adaptive,
                strip_history: route.strip_thinking_history,
            },
        })
    }

    /// The upstream call for `task`, to the stream path when `stream`; `size_hint` sizes the
    /// body's buffer.
    pub(crate) fn call(
        &self,
        task: &Task<'_>,
        stream: bool,
        size_hint: usize,
    ) -> Result<Call, TranslateError> {
        let (body, dropped) = match task {
            Task::Chat(chat) => (
                encode(&convert::chat_body(chat, self.max_tokens)?, size_hint),
                convert::dropped_settings(chat),
            ),
            Task::Text(text) => (
                encode(&convert::text_body(text, self.max_tokens)?, size_hint),
                Vec::new(),
            ),
            Task::Embed(_) => return Err(TranslateError::NoEmbeddings),
        };
        Ok(Call {
            body,
            reading: Reading::Bedrock {
                stream,
                native: false,
            },
            dropped,
        })
    }

    /// The URL of a whole (`invoke`) or streamed (`invoke-with-response-stream`) call.
    pub(crate) fn target(&self, stream: bool) -> &Target {
        if stream {
            &self.stream
        } else {
            &self.invoke
        }
    }

    /// The pass-through call for an Anthropic Messages caller's `body`, to the stream path when
    /// the caller asked for a stream; `anthropic_beta` is its `anthropic-beta` header.
    pub(crate) fn native_call(
        &self,
        body: &[u8],
        stream: bool,
        anthropic_beta: Option<&str>,
    ) -> Result<NativeCall, TranslateError> {
        Ok(NativeCall {
            body: passthrough::native_body(body, anthropic_beta, self.thinking)?,
            reading: Reading::Bedrock {
                stream,
                native: true,
            },
        })
    }
}

/// A request this surface cannot send as it is: `param` names where, `problem` says what.
fn refused(
    param: impl Into<Cow<'static, str>>,
    problem: impl Into<Cow<'static, str>>,
) -> TranslateError {
    TranslateError::Malformed {
        param: param.into(),
        problem: problem.into(),
    }
}

#[cfg(test)]
pub(crate) mod test_fixtures {
    //! The spec's Bedrock fixtures, copied into `tests/fixtures/`.

    /// A fixture's bytes.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::{Chat, Message, Role};

    fn route_with(extra: &str) -> Route {
        let text = format!(
            r#"
            [salesforce]
            api_base = "https://api.salesforce.com/einstein/platform/v1"
            token_url = "https://example.my.salesforce.com/services/oauth2/token"
            client_id = "id"
            client_secret = "secret"

            [[routes]]
            model = "claude"
            salesforce_model = "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet"
            surface = "bedrock"
            {extra}
            "#
        );
        let config = Config::from_toml_with_env(&text, |_| None).unwrap();
        Route::new(&config.salesforce.gpt_api_base, &config.routes[0]).unwrap()
    }

    #[test]
    fn urls_and_settings_come_from_the_route() {
        let route = route_with("");
        assert_eq!(
            route.target(false).uri().to_string(),
            "https://api.salesforce.com/ai/gpt/v1/model/sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet/invoke"
        );
        assert_eq!(
            route.target(true).uri().to_string(),
            "https://api.salesforce.com/ai/gpt/v1/model/sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet/invoke-with-response-stream"
        );
        assert_eq!(route.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(route.thinking, ThinkingSwitches::default());

        let route = route_with(
            "default_max_tokens = 100\nthinking_enabled_to_adaptive = true\nstrip_thinking_history = true",
        );
        assert_eq!(route.max_tokens, 100);
        assert_eq!(
            route.thinking,
            ThinkingSwitches {
                enabled_to_adaptive: true,
                strip_history: true
            }
        );
    }

    #[test]
    fn a_call_reads_as_the_path_it_goes_to() {
        let route = route_with("default_max_tokens = 100");
        let task = Task::Chat(Chat::new(vec![Message::text(Role::User, "Hi")]));
        for stream in [false, true] {
            let call = route.call(&task, stream, 64).unwrap();
            assert_eq!(
                call.reading,
                Reading::Bedrock {
                    stream,
                    native: false
                }
            );
            let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 100,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
            );
        }
    }

    #[test]
    fn texts_to_embed_are_refused() {
        let task = Task::Embed(crate::core::Embed {
            inputs: vec!["x".into()],
            dimensions: None,
        });
        assert_eq!(
            route_with("").call(&task, false, 8).unwrap_err(),
            TranslateError::NoEmbeddings
        );
    }

    #[test]
    fn a_native_call_passes_the_body_with_the_routes_switches() {
        let route = route_with("thinking_enabled_to_adaptive = true");
        let caller =
            br#"{"model":"claude","stream":true,"thinking":{"type":"enabled","budget_tokens":9}}"#;
        let call = route.native_call(caller, true, Some("b-1")).unwrap();
        assert_eq!(
            call.reading,
            Reading::Bedrock {
                stream: true,
                native: true
            }
        );
        assert_eq!(
            std::str::from_utf8(&call.body).unwrap(),
            r#"{"thinking":{"type":"adaptive"},"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["b-1"]}"#
        );
    }
}
