//! Request bodies sent to the Models API.

use std::borrow::Cow;

use serde::Serialize;

/// The body of `POST /models/{model}/chat-generations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatGenerationsRequest<'a> {
    /// The conversation, roles already mapped to `system`, `user` or `assistant`.
    pub messages: Vec<Message<'a>>,
}

/// One message: the Models API takes a role and a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message<'a> {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: Cow<'a, str>,
}

/// The body of `POST /models/{model}/generations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationsRequest<'a> {
    /// The prompt.
    pub prompt: Cow<'a, str>,
}

/// The body of `POST /models/{model}/embeddings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmbeddingsRequest<'a> {
    /// The texts, in order.
    pub input: &'a [Cow<'a, str>],
}
