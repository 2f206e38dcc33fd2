//! The Salesforce Models API: wire types, the response extractor, and error mapping.
//!
//! The extractor reads a response in one pass into [`ModelsResponse`], a borrowed struct that
//! covers every shape the bridge knows (unknown fields are skipped without being built), then
//! picks the answer: the documented field for the endpoint that was called first, then an ordered
//! list of fallbacks, reporting which [`ExtractPath`] served.
//!
//! ```
//! use sf_models_bridge::salesforce::{extract, ExtractPath, ModelsResponse, Operation};
//!
//! let body = br#"{"generationDetails": {"generations": [{"content": "Hi!",
//!     "parameters": {"finish_reason": "stop"}}],
//!     "parameters": {"usage": {"inputTokenCount": 3, "outputTokenCount": 2}}}}"#;
//! let response: ModelsResponse<'_> = serde_json::from_slice(body)?;
//! let answer = extract(&response, Operation::Chat).unwrap();
//! assert_eq!(answer.text, "Hi!");
//! assert_eq!(answer.path, ExtractPath::Primary);
//! assert_eq!(answer.finish_reason, "stop");
//! assert_eq!(answer.usage.unwrap().total_tokens, 5);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod error;
mod extract;
mod request;
mod response;

pub use error::{ErrorResponse, UpstreamFailure};
pub use extract::{extract, normalise_finish_reason, parse, ExtractError, ExtractPath, Extracted};
pub use request::{ChatGenerationsRequest, GenerationsRequest, Message};
pub use response::{
    ChatGeneration, GenerationDetails, GenerationParameters, LooseGeneration, ModelsResponse,
    OpenAiChoice, OpenAiMessage, Parameters, RawUsage, TextGeneration,
};

/// Which Models API operation a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /models/{model}/chat-generations`.
    Chat,
    /// `POST /models/{model}/generations`.
    Text,
}

impl Operation {
    /// The last path segment of this operation's URL.
    pub fn path_suffix(self) -> &'static str {
        match self {
            Operation::Chat => "chat-generations",
            Operation::Text => "generations",
        }
    }
}

/// `x-sfdc-app-context`, required on every call.
pub const APP_CONTEXT_HEADER: &str = "x-sfdc-app-context";
/// The value of [`APP_CONTEXT_HEADER`].
pub const APP_CONTEXT: &str = "EinsteinGPT";
/// `x-client-feature-id`, required on every call.
pub const CLIENT_FEATURE_HEADER: &str = "x-client-feature-id";
/// The value of [`CLIENT_FEATURE_HEADER`].
pub const CLIENT_FEATURE: &str = "ai-platform-models-connected-app";
