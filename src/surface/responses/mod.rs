//! The `responses` surface: GPT models on the Models API's native `POST {gpt_api_base}/responses`,
//! which speaks OpenAI's Responses API with the Salesforce model name in the body.
//!
//! Unlike the documented surface it carries tools, images, sampling, output limits, reasoning
//! effort and JSON output ([`chat_body`]); it has no stop sequences and no top-k, which are
//! reported as dropped ([`dropped_settings`]), and no embeddings. A whole answer is one
//! Responses object, read into the neutral answer; a stream is server-sent events
//! ([`SseUnframe`](crate::surface::sse::SseUnframe)) read by [`ResponsesEvents`]. Error bodies
//! are read by the same reader as the documented surface's, which knows OpenAI's shape too.
//!
//! ```
//! use sf_models_bridge::core::{Chat, Message, Role};
//! use sf_models_bridge::surface::responses::chat_body;
//!
//! let chat = Chat::new(vec![Message::text(Role::Developer, "Be terse."), Message::text(Role::User, "Hi")]);
//! let body = serde_json::to_value(chat_body("sfdc_ai__DefaultGPT5", &chat, true).unwrap())?;
//! assert_eq!(body, serde_json::json!({"model": "sfdc_ai__DefaultGPT5", "stream": true, "input": [
//!     {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be terse."}]},
//!     {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}));
//! # Ok::<(), serde_json::Error>(())
//! ```

mod convert;
mod events;
pub(crate) mod native;
mod read;
mod request;
mod response;

pub use convert::{chat_body, dropped_settings, text_body};
pub use events::{ResponsesEvents, MAX_TOOL_CALLS};
pub use request::{
    Content, FunctionTool, Input, InputItem, ReasoningParam, ResponsesRequest, TextFormat,
    TextParam, ToolChoice,
};
pub use response::{
    IncompleteDetails, InputDetails, OutputContent, OutputDetails, OutputItem, ResponseError,
    ResponseObject, ResponsesUsage, StreamEventWire,
};

pub(crate) use read::read_answer;

use http::StatusCode;

use super::{encode, Call, NativeCall, Reading};
use crate::core::{Failure, Task, TranslateError};
use crate::upstream::Target;

/// The name a served answer's parse path has in the metrics.
pub(crate) const PARSE_PATH: &str = "responses";

/// A route's endpoint on this surface, built once at start-up.
#[derive(Debug)]
pub(crate) struct Endpoint {
    target: Target,
    /// The Salesforce model name, which goes in the body.
    model: Box<str>,
}

impl Endpoint {
    /// `{gpt_api_base}/responses` for `model`; `None` when the URL is not a valid URI.
    pub(crate) fn new(gpt_api_base: &str, model: &str) -> Option<Self> {
        Some(Self {
            target: Target::parse(&format!("{gpt_api_base}/responses"))?,
            model: model.into(),
        })
    }

    /// The call for `task`, streamed when `stream` is set.
    pub(crate) fn call(
        &self,
        task: &Task<'_>,
        stream: bool,
        size_hint: usize,
    ) -> Result<Call, TranslateError> {
        let (body, dropped) = match task {
            Task::Chat(chat) => (
                encode(&chat_body(&self.model, chat, stream)?, size_hint),
                dropped_settings(chat),
            ),
            Task::Text(text) => (
                encode(&text_body(&self.model, text, stream)?, size_hint),
                Vec::new(),
            ),
            Task::Embed(_) => return Err(TranslateError::NoEmbeddings),
        };
        Ok(Call {
            body,
            reading: Reading::Responses { stream },
            dropped,
        })
    }

    /// `{gpt_api_base}/responses`.
    /// The pass-through of a Responses API body: the caller's, with the Salesforce model.
    pub(crate) fn native_call(
        &self,
        body: &[u8],
        stream: bool,
    ) -> Result<NativeCall, TranslateError> {
        let body = native::call_body(body, &self.model).map_err(|_| TranslateError::Malformed {
            param: "".into(),
            problem: "the body must be a JSON object".into(),
        })?;
        Ok(NativeCall {
            body,
            reading: Reading::Responses { stream },
        })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

/// Reads an error answer of this surface. `model` is the Salesforce model that was called.
pub(crate) fn read_failure(status: StatusCode, body: &[u8], model: &str) -> Failure {
    super::einstein::read_failure_at(status, body, model, "salesforce.gpt_api_base")
}
