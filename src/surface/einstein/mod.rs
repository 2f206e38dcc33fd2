//! The `einstein` surface: the documented Models API, `{api_base}/models/{model}/...`.
//!
//! Chat goes to `chat-generations`, prompts to `generations` and texts to embed to `embeddings`,
//! as roles and plain strings: this surface has no tools, no images, no streaming and no
//! generation settings. Its answers are read
//! by the extractor: one pass into [`ModelsResponse`], a borrowed struct that covers every shape
//! the bridge knows (unknown fields are skipped without being built), then the documented field
//! for the operation that was called first, then an ordered list of fallbacks, reporting which
//! [`ExtractPath`] served.
//!
//! ```
//! use sf_models_bridge::core::Finish;
//! use sf_models_bridge::surface::einstein::{extract, ExtractPath, ModelsResponse, Operation};
//!
//! let body = br#"{"generationDetails": {"generations": [{"content": "Hi!",
//!     "parameters": {"finish_reason": "stop"}}],
//!     "parameters": {"usage": {"inputTokenCount": 3, "outputTokenCount": 2}}}}"#;
//! let response: ModelsResponse<'_> = serde_json::from_slice(body)?;
//! let answer = extract(&response, Operation::Chat).unwrap();
//! assert_eq!(answer.text, "Hi!");
//! assert_eq!(answer.path, ExtractPath::Primary);
//! assert_eq!(answer.finish, Finish::Stop);
//! assert_eq!(answer.usage.unwrap().total_tokens, 5);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod convert;
mod error;
mod extract;
mod request;
mod response;

pub use convert::{chat_body, dropped_settings, embed_body, generation, text_body};
pub(crate) use error::{failure_from, read_failure_at};
pub use error::{read_failure, ErrorResponse, NestedError, OpenAiError};
pub(crate) use extract::parse_as;
pub use extract::{
    extract, normalise_finish_reason, parse, read_embeddings, ExtractError, ExtractPath, Extracted,
};
pub use request::{ChatGenerationsRequest, EmbeddingsRequest, GenerationsRequest, Message};
pub(crate) use response::lenient_count;
pub use response::{
    ChatGeneration, EmbeddingItem, EmbeddingsResponse, GenerationDetails, GenerationParameters,
    LooseGeneration, ModelsResponse, OpenAiChoice, OpenAiMessage, Parameters, RawUsage,
    TextGeneration,
};

use super::{encode, Call, Reading};
use crate::core::{Answer, Task, TranslateError};
use crate::upstream::Target;

/// Which Models API operation a request calls: it picks the URL and the extractor's primary
/// shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /models/{model}/chat-generations`.
    Chat,
    /// `POST /models/{model}/generations`.
    Text,
    /// `POST /models/{model}/embeddings`, for this many inputs.
    Embeddings(usize),
}

impl Operation {
    /// The last path segment of this operation's URL.
    pub fn path_suffix(self) -> &'static str {
        match self {
            Operation::Chat => "chat-generations",
            Operation::Text => "generations",
            Operation::Embeddings(_) => "embeddings",
        }
    }
}

/// A route's URLs on this surface, built once at start-up.
#[derive(Debug)]
pub(crate) struct Urls {
    chat: Target,
    text: Target,
    embeddings: Target,
}

impl Urls {
    /// The URLs of `model` under `api_base`; `None` when they are not valid URIs.
    pub(crate) fn new(api_base: &str, model: &str) -> Option<Self> {
        let url = |operation: Operation| {
            Target::parse(&format!(
                "{api_base}/models/{model}/{}",
                operation.path_suffix()
            ))
        };
        Some(Self {
            chat: url(Operation::Chat)?,
            text: url(Operation::Text)?,
            embeddings: url(Operation::Embeddings(0))?,
        })
    }

    /// The call for `task`: this surface answers whole, so a stream is emulated from the whole
    /// answer, and every generation setting is reported as dropped (see [`dropped_settings`]).
    pub(crate) fn call(&self, task: &Task<'_>, size_hint: usize) -> Result<Call, TranslateError> {
        let (operation, body, dropped) = match task {
            Task::Chat(chat) => (
                Operation::Chat,
                encode(&chat_body(chat)?, size_hint),
                dropped_settings(chat),
            ),
            Task::Text(text) => (
                Operation::Text,
                encode(&text_body(text)?, size_hint),
                Vec::new(),
            ),
            Task::Embed(embed) => (
                Operation::Embeddings(embed.inputs.len()),
                encode(&embed_body(embed)?, size_hint),
                Vec::new(),
            ),
        };
        Ok(Call {
            body,
            reading: Reading::Einstein(operation),
            dropped,
        })
    }

    /// The URL of `operation`.
    pub(crate) fn target(&self, operation: Operation) -> &Target {
        match operation {
            Operation::Chat => &self.chat,
            Operation::Text => &self.text,
            Operation::Embeddings(_) => &self.embeddings,
        }
    }
}

/// Reads a success body of `operation` and hands the answer to `render`: the answer borrows from
/// a parse that lives only here. Also gives the extractor path that served.
pub(crate) fn read_answer<R>(
    operation: Operation,
    body: &[u8],
    render: impl FnOnce(Answer<'_>) -> R,
) -> Result<(R, ExtractPath), ExtractError> {
    if let Operation::Embeddings(inputs) = operation {
        let embeddings = read_embeddings(body, inputs)?;
        return Ok((render(Answer::Embeddings(embeddings)), ExtractPath::Primary));
    }
    let response = parse(body)?;
    let extracted = extract(&response, operation)?;
    let path = extracted.path;
    Ok((render(Answer::Generation(generation(extracted))), path))
}
