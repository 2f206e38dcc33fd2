//! A local stand-in for the Salesforce Models API and its OAuth token endpoint, with fault injection.
//!
//! It imitates `salesforce-models-api.md`: the client-credentials token endpoint answers JWTs (readable
//! `exp`, no `expires_in`); the model endpoints check the bearer token, the two Einstein headers, the
//! content type and the body the way the real API does, and answer in the documented shapes with an
//! `x-request-id`. Chat answers say `"Echo: "` and the last user message; text answers `"Echo: "` and
//! the prompt. Usage follows the provider: models whose name holds `Bedrock` or `Vertex` report camelCase
//! counts and `stop_reason`, the others snake_case counts and `finish_reason`. Known models are the
//! `sfdc_ai__Default…` names of the spec and any name starting with `custom_`; others answer 404.
//! The native surfaces of `salesforce-native-surfaces.md` are served too, under
//! [`MockSalesforce::gpt_api_base`] (see [Native surfaces](#native-surfaces)).
//!
//! ```
//! use sf_models_bridge::mock::{Fault, MockSalesforce};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let mock = MockSalesforce::start().await?; // on 127.0.0.1, a free port
//! assert!(mock.api_base().ends_with("/einstein/platform/v1"));
//! // Point the bridge at mock.api_base() and mock.token_url(), with MOCK_CLIENT_ID and MOCK_CLIENT_SECRET.
//! mock.state().inject(Fault::Status { status: 429, retry_after_secs: Some(1) }, 2);
//! assert_eq!(mock.state().counters().model_requests(), 0);
//! mock.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Admin API
//!
//! For other processes (the demo, soak and load tests). Writes answer `204`; bad JSON answers
//! `400 {"error": "..."}`.
//!
//! | request | effect |
//! |---|---|
//! | `GET /__mock/counters` | [`Counters`] as JSON: `{"token_requests":1,"tokens_issued":1,"chat_requests":3,"generation_requests":0,"embedding_requests":0,"abandoned_model_calls":0,"responses_requests":2,"bedrock_requests":0}` |
//! | `POST /__mock/faults` | [`MockState::inject`], body below |
//! | `DELETE /__mock/faults` | [`MockState::clear_faults`] (model and token faults) |
//! | `POST /__mock/token_faults` | [`MockState::inject_token_fault`], body below |
//! | `POST /__mock/shape` | [`MockState::set_shape`]: `{"shape": "snake_case"}` |
//! | `POST /__mock/stream_pace` | [`MockState::set_stream_pace`]: `{"millis": 50}` |
//! | `POST /__mock/revoke` | [`MockState::revoke_tokens`] |
//! | `POST /__mock/reset` | [`MockState::reset`] |
//!
//! A fault body names the fault in `"fault"` and adds its fields; `"times"` is optional (default 1;
//! `4294967295`, that is `u32::MAX`, means every call until cleared):
//!
//! ```json
//! {"fault": "status", "status": 429, "retry_after_secs": 1, "times": 3}
//! {"fault": "unauthorized"}
//! {"fault": "slow", "millis": 500, "times": 1}
//! {"fault": "malformed_json"}
//! {"fault": "truncated_json"}
//! {"fault": "connection_reset", "times": 1}
//! {"fault": "oversized", "bytes": 9000000}
//! {"fault": "stream_failure"}
//! {"fault": "stream_stall", "millis": 2000}
//! {"fault": "malformed_event"}
//! {"fault": "not_a_stream"}
//! {"fault": "empty_stream"}
//! {"fault": "endless_stream"}
//! {"fault": "oversized_event", "bytes": 2000000}
//! ```
//!
//! Token faults: `{"fault": "status", "status": 500}`, `{"fault": "slow", "millis": 500}`,
//! `{"fault": "down"}`, `{"fault": "no_access_token"}`, `{"fault": "not_jwt"}`, each with an optional
//! `"times"`. Shapes: `documented`, `generation_text`, `snake_case`, `openai_choices`,
//! `generations_array`, `no_text` ([`ResponseShape`]).
//!
//! # Native surfaces
//!
//! Under `/ai/gpt/v1` ([`MockSalesforce::gpt_api_base`]), with the Einstein endpoints' token and
//! header checks. Those checks, the content type and the model name answer in Salesforce's error
//! shape (401 `error.401.json`, 404 `error.404.json`, ...): the gateway makes them before the
//! provider sees the call. The provider's own checks answer 400 in the provider's shape.
//! Every call is counted ([`Counters::responses_requests`], [`Counters::bedrock_requests`]) and
//! recorded byte for byte ([`MockState::last_model_request`]).
//!
//! | request | serves |
//! |---|---|
//! | `POST /ai/gpt/v1/responses` | OpenAI's Responses API, for `sfdc_ai__DefaultGPT…` and `custom_…` models |
//! | `POST /ai/gpt/v1/model/{model}/invoke` | Anthropic's Messages API in Bedrock's shape, for `sfdc_ai__DefaultBedrockAnthropic…` and `custom_…` models |
//! | `POST /ai/gpt/v1/model/{model}/invoke-with-response-stream` | the same, streamed as AWS event-stream frames |
//!
//! `/responses` refuses, in OpenAI's envelope `{"error": {"message", "type":
//! "invalid_request_error", "param", "code"}}`: `temperature` or `top_p` with a `reasoning.effort`
//! other than `none` (param `temperature` / `top_p`); an effort outside `none`, `minimal`, `low`,
//! `medium`, `high`, `xhigh` (`"Unexpected value 'max' …"`, param `reasoning.effort`); a function
//! tool without `name` (Chat Completions' nested `function`: param `tools[0].name`) or with a
//! `function` key; `input` missing or neither a string nor a list; unknown item, role or content
//! part types; items missing their fields. Unknown top-level fields and non-function tools pass.
//!
//! Bedrock refuses with 400 `{"message": "..."}` and `x-amzn-errortype: ValidationException`, in
//! its wording (`"Malformed input request: #: extraneous key [model] is not permitted, please
//! reformat your input and try again."`): `model` or `stream` in the body; `anthropic_version`
//! missing or not `bedrock-2023-05-31`; `max_tokens` missing or not a positive integer;
//! `messages` missing, empty, with a role other than `user` / `assistant` or not starting with
//! `user`; `anthropic_beta` not an array of strings; unknown content block types;
//! `thinking: {"type": "enabled"}` on models whose name holds `Claude46` or `Claude5`
//! (`"thinking.type.enabled is not supported for this model. Use thinking.type.adaptive and
//! output_config.effort to control thinking behavior."`); `temperature`, `top_k` or `top_p` while
//! thinking is on (``"`temperature` is not supported when thinking is enabled"``).
//!
//! Answers are deterministic, the same on both surfaces:
//!
//! - the last input item is a `function_call_output` (the last user message holds a
//!   `tool_result`): text `Tool <call id> said: <output text>`;
//! - else, with function tools (tools) and a tool choice other than `none`: one call to the first
//!   tool or the named one, id `call_<n>` (`toolu_<n>`), arguments (input)
//!   `{"echo":"<last user text>"}`, Bedrock's `stop_reason` `tool_use`; `n` counts the tool calls
//!   the mock has answered, from 1;
//! - else text `Echo: <last user text>` (a message's text parts are joined by spaces).
//!
//! Token counts are words. `/responses`: `input_tokens` counts the words of `instructions` and
//! the input, plus 32 `cached_tokens` when `prompt_cache_key` is set (OpenAI counts cached tokens
//! inside `input_tokens`); `output_tokens` counts the answer's words plus 16 `reasoning_tokens`
//! when reasoning is on, which also puts a `reasoning` item first in `output`. A text longer than
//! `max_output_tokens` words is cut to that many, `status: "incomplete"`, `incomplete_details:
//! {"reason": "max_output_tokens"}`. Bedrock: `input_tokens` counts the words of `system` and
//! the messages, `cache_read_input_tokens` is 256 when a system block carries `cache_control`; a
//! text is cut before the first `stop_sequences` match (`stop_sequence`) and to `max_tokens`
//! words (`max_tokens`); `model` is Bedrock's id (`…Claude46Sonnet` answers `claude-sonnet-4-6`).
//! Cuts apply to text only. Ids: `resp_…`, `msg_…`, `fc_…`, `rs_…`, `msg_bdrk_…`.
//!
//! Streams send one text delta per word (its leading whitespace with it) and tool arguments in
//! three fragments cut anywhere, `pace` apart ([`MockState::set_stream_pace`], default none).
//! `/responses` (`"stream": true`) sends server-sent events (`event: <type>`, `data: <json>`,
//! `sequence_number` from 0, no `[DONE]`) in the order of `native.responses.stream.sse`, ending
//! with `response.completed` (`response.incomplete` when cut); each event is its own write and
//! every third one is cut in two writes at an odd offset. Bedrock sends event frames
//! (`{"bytes": "<base64>"}`) in the order of `native.bedrock.stream.events.jsonl`, `message_stop`
//! carrying `amazon-bedrock-invocationMetrics`; every write ends inside a frame and holds the
//! start of the next. A stream dropped before its end counts in
//! [`Counters::abandoned_model_calls`].
//!
//! Faults: [`Fault::Status`] answers in the surface's shape (Bedrock's with `x-amzn-errortype`),
//! with `Retry-After` when set, stream or not; [`Fault::Unauthorized`], [`Fault::Slow`] and
//! [`Fault::ConnectionReset`] act as on the Einstein endpoints; [`Fault::MalformedJson`] answers
//! 200 HTML; [`Fault::TruncatedJson`] cuts a whole answer, or a stream's bytes, in half;
//! [`Fault::Oversized`] pads whole answers only. The stream faults ([`Fault::StreamFailure`],
//! [`Fault::StreamStall`], [`Fault::MalformedEvent`], [`Fault::NotAStream`],
//! [`Fault::EmptyStream`], [`Fault::EndlessStream`], [`Fault::OversizedEvent`]) shape streams,
//! and are used up without effect by calls that do not stream.
//!
//! # Fast mode
//!
//! [`MockOptions::fast`] is for benchmarks: no token or request checks, no recorded request, and chat,
//! text and embeddings calls answered with bodies serialized once at start-up (documented shape,
//! content [`MockOptions::answer_bytes`] long). Requests are still counted; latency and queued faults
//! still apply; the response shape is fixed. The native surfaces skip the token and header checks
//! and record nothing, but still check and answer each body.

mod admin;
mod answer;
mod bedrock;
mod catalog;
mod errors;
mod faults;
mod models;
mod native;
mod responses;
mod server;
mod state;
mod stream;
mod token;
mod validate;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{Fault, ResponseShape, TokenFault};
pub use state::{Counters, MockState, RecordedRequest};

/// The client id the mock accepts by default.
pub const MOCK_CLIENT_ID: &str = "mock-client-id";

/// The client secret the mock accepts by default. Public on purpose: it guards nothing.
pub const MOCK_CLIENT_SECRET: &str = "mock-client-secret";

/// How a [`MockSalesforce`] behaves; [`Default`] suits tests.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port, see [`MockSalesforce::addr`]).
    pub listen: SocketAddr,
    /// The accepted client id; default [`MOCK_CLIENT_ID`].
    pub client_id: String,
    /// The accepted client secret; default [`MOCK_CLIENT_SECRET`].
    pub client_secret: String,
    /// How long issued tokens are accepted, and their JWT `exp` after `iat`; default 30 minutes.
    pub token_lifetime: Duration,
    /// Added to every model call before it is answered; default none.
    pub latency: Duration,
    /// Benchmark mode (see the module docs); default off.
    pub fast: bool,
    /// Length of the fast-mode answer's content; default 2048.
    pub answer_bytes: usize,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            client_id: MOCK_CLIENT_ID.to_owned(),
            client_secret: MOCK_CLIENT_SECRET.to_owned(),
            token_lifetime: Duration::from_secs(1800),
            latency: Duration::ZERO,
            fast: false,
            answer_bytes: 2048,
        }
    }
}

/// A running mock server. It stops when dropped or on [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct MockSalesforce {
    addr: SocketAddr,
    state: MockState,
    server: JoinHandle<()>,
}

impl MockSalesforce {
    /// Starts a mock with [`MockOptions::default`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(MockOptions::default()).await
    }

    /// Starts a mock; fails only if `options.listen` cannot be bound.
    pub async fn start_with(options: MockOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let state = MockState::new(&options, addr);
        let server = tokio::spawn(server::serve(listener, server::router(state.clone())));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Models API base, `http://{addr}/einstein/platform/v1`: the conf's `api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}/einstein/platform/v1", self.addr)
    }

    /// The native surfaces' base, `http://{addr}/ai/gpt/v1`: `/responses` and
    /// `/model/{model}/invoke` (`-with-response-stream`) hang off it.
    pub fn gpt_api_base(&self) -> String {
        format!("http://{}/ai/gpt/v1", self.addr)
    }

    /// The token endpoint, `http://{addr}/services/oauth2/token`: the conf's `token_url`.
    pub fn token_url(&self) -> String {
        format!("http://{}/services/oauth2/token", self.addr)
    }

    /// The mock's state: faults, counters, the last request.
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// Stops listening and closes every connection, then returns.
    pub async fn shutdown(mut self) {
        self.server.abort();
        // Waiting for the aborted task means the listener is closed once this returns.
        let _ = (&mut self.server).await;
    }
}

impl Drop for MockSalesforce {
    fn drop(&mut self) {
        self.server.abort();
    }
}
