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
//! - **Through the core** (Chat Completions, legacy Completions): [`Route::call`] builds the body
//!   from the neutral request; [`read_answer`], or [`EventStreamFrames`] then [`AnthropicEvents`]
//!   for a stream, read the answer back as neutral answers and events.
//! - **Native** (an Anthropic Messages caller): the caller's body passes through nearly untouched
//!   ([`native_body`]), the answer comes back with the caller's model name
//!   ([`message_with_model`], [`sse_event`]), so fields the bridge does not know keep working.
//!
//! # The thinking switches
//!
//! Two rewrites of the native body were needed on real orgs; each is a per-route conf switch, off
//! by default, never applied unasked ([`ThinkingSwitches`]):
//!
//! - `thinking_enabled_to_adaptive`: newer Claude models refuse `thinking: {"type": "enabled",
//!   "budget_tokens": N}` and take `{"type": "adaptive"}` (with `output_config.effort`). Current
//!   clients already send the adaptive form; older ones do not.
//! - `strip_thinking_history`: `thinking` and `redacted_thinking` blocks in the history made some
//!   orgs answer 502 "No user context has been created"; a public proxy strips them by default.
//!
//! The road through the core never sends thinking (the neutral request has no thinking blocks,
//! and a reasoning effort is reported as dropped), so the switches concern the native road only.
//!
//! ```
//! use sf_models_bridge::surface::bedrock::{native_body, ThinkingSwitches};
//!
//! let caller = br#"{"model": "claude", "stream": true, "max_tokens": 64,
//!     "messages": [{"role": "user", "content": "Hi"}]}"#;
//! let body = native_body(caller, Some("context-1m-2025-08-07"), ThinkingSwitches::default())?;
//! assert_eq!(
//!     String::from_utf8(body).unwrap(),
//!     r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{"role": "user", "content": "Hi"}],"anthropic_beta":["context-1m-2025-08-07"]}"#
//! );
//! # Ok::<(), sf_models_bridge::core::TranslateError>(())
//! ```

mod convert;
mod events;
mod passthrough;
mod read;
mod unframe;
mod wire;

pub use events::AnthropicEvents;
pub use passthrough::{message_with_model, native_body, sse_event, MAX_BETA_FLAGS};
pub use read::{is_event_stream, read_answer, read_failure, read_non_stream};
pub use unframe::EventStreamFrames;

use crate::config;
use crate::core::{Task, TranslateError};
use crate::surface::{Call, Reading};
use crate::upstream::Target;

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
        let mut body = Vec::with_capacity(size_hint);
        let dropped = convert::write_body(task, self.max_tokens, &mut body)?;
        Ok(Call {
            body,
            reading: Reading::Bedrock { stream },
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

    /// The route's thinking switches, for [`native_body`].
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the layer's native /v1/messages path reads it")
    )]
    pub(crate) fn thinking(&self) -> ThinkingSwitches {
        self.thinking
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
        assert_eq!(route.thinking(), ThinkingSwitches::default());

        let route = route_with(
            "default_max_tokens = 100\nthinking_enabled_to_adaptive = true\nstrip_thinking_history = true",
        );
        assert_eq!(route.max_tokens, 100);
        assert_eq!(
            route.thinking(),
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
            assert_eq!(call.reading, Reading::Bedrock { stream });
            let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 100,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
            );
        }
    }
}
