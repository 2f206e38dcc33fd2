//! OpenAI wire types: the requests the bridge accepts and the responses it sends.
//!
//! Requests are parsed in one pass into borrowed structs: strings without escapes point into the
//! request body, and every top-level parameter the bridge does not act on is recorded by name (see
//! [`ChatCompletionRequest::ignored`]) so it can be reported to the caller instead of being dropped
//! silently. Nothing here knows about Salesforce: the fronts in [`front`](crate::front) convert
//! these to and from the neutral [`core`](crate::core) types.
//!
//! ```
//! use sf_models_bridge::openai::{ChatCompletionRequest, Role};
//!
//! let body = br#"{"model": "gpt-4o-mini", "temperature": 0.2, "seed": 7,
//!                 "messages": [{"role": "user", "content": "Hi"}]}"#;
//! let request: ChatCompletionRequest<'_> = serde_json::from_slice(body)?;
//! assert_eq!(request.model, "gpt-4o-mini");
//! assert_eq!(request.messages[0].role, Role::User);
//! assert_eq!(request.temperature, Some(0.2));
//! assert_eq!(request.ignored, ["seed"]);
//! # Ok::<(), serde_json::Error>(())
//! ```

pub(crate) mod depth;
mod error;
mod params;
pub(crate) mod request;
mod response;
pub mod responses;

pub use error::{ErrorBody, ErrorDetail, ErrorType};
pub use params::{JsonSchemaDef, ResponseFormatDef, ToolChoiceDef};
pub use request::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, ContentPart, FunctionCallDef,
    FunctionDef, ImageUrl, MessageContent, Prompt, RawJson, Role, StreamOptions, ToolCallDef,
    ToolDef,
};
pub use response::{
    finish_reason, AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletion,
    ChatCompletionChunk, ChunkDelta, ChunkFunction, ChunkToolCall, Completion, CompletionChoice,
    CompletionTokensDetails, FunctionCallOut, Model, ModelList, PromptTokensDetails, ToolCallOut,
    Usage,
};
