//! The neutral core: what every front and every surface meet in.
//!
//! A **front** (the API a caller speaks: Chat Completions, Completions, Embeddings, ...) parses its
//! request into a [`Request`] and renders an [`Answer`], the [`StreamEvent`]s of a stream and any
//! [`Failure`] in its own format. A **surface** (how Salesforce serves a route's model) turns a
//! [`Request`] into an upstream call and reads the upstream's answer back into an [`Answer`].
//! Neither knows the other's wire types: these types name no provider and no wire format.
//!
//! ```
//! use sf_models_bridge::core::{Chat, Delivery, Message, Part, Request, Role, RouteKind, Task};
//!
//! let request = Request {
//!     model: "gpt-4o-mini".into(),
//!     task: Task::Chat(Chat::new(vec![Message::text(Role::User, "Hi")])),
//!     delivery: Delivery::WHOLE,
//!     ignored: vec![],
//! };
//! assert_eq!(request.task.kind(), RouteKind::Chat);
//! assert!(matches!(&request.task, Task::Chat(chat) if chat.messages[0].parts == [Part::Text("Hi".into())]));
//! ```

mod answer;
mod error;
mod event;
mod failure;
mod request;

pub use answer::{Answer, Embeddings, Finish, Generation, Usage};
pub use error::TranslateError;
pub use event::{AnswerEvents, StreamEvent, TEXT_PIECE_BYTES};
pub use failure::{Failure, FailureClass, MAX_MESSAGE_CHARS};
pub use request::{
    Chat, Delivery, Embed, Message, Part, Reasoning, Request, ResponseFormat, Role, RouteKind,
    Sampling, Streaming, Task, Text, Tool, ToolCall, ToolChoice, VectorEncoding,
};
