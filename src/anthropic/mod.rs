//! Anthropic wire types: the Messages API request the bridge accepts, and the messages, stream
//! events and errors it sends.
//!
//! Requests are parsed in one pass into borrowed structs, leniently: strings without escapes
//! point into the request body, parameters the bridge does not act on are recorded by name
//! ([`MessagesRequest::ignored`]), and what a field must hold is checked by the front
//! ([`front::messages`](crate::front::messages)), which answers in Anthropic's words. Nothing
//! here knows about Salesforce.
//!
//! ```
//! use sf_models_bridge::anthropic::{Content, MessagesRequest, Role};
//!
//! let body = br#"{"model": "claude-sonnet-4-5", "max_tokens": 1024, "metadata": {"user_id": "u"},
//!                 "messages": [{"role": "user", "content": "Hi"}]}"#;
//! let request: MessagesRequest<'_> = serde_json::from_slice(body)?;
//! assert_eq!(request.max_tokens, Some(1024));
//! let messages = request.messages.unwrap();
//! assert_eq!(messages[0].role, Role::User);
//! assert_eq!(messages[0].content, Content::Text("Hi".into()));
//! assert_eq!(request.ignored, ["metadata"]);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod error;
mod request;
mod response;
mod stream;

pub use error::{ErrorBody, ErrorDetail, ErrorType};
pub use request::{
    Block, Content, ImageSource, InputMessage, MessagesRequest, OutputConfig, OutputFormat, Role,
    ThinkingDef, ToolChoiceDef, ToolDef,
};
pub use response::{ContentBlock, Message, ModelInfo, ModelList, StopReason, Usage};
pub use stream::{Delta, DeltaUsage, MessageEnd, MessageStreamEvent};
