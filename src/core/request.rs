//! The neutral request: a conversation, a prompt, or texts to embed, with their settings.

use std::borrow::Cow;

/// One caller request, as every surface reads it. Strings borrow from the caller's body where
/// they can.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The model name the caller asked for (a route's `model`).
    pub model: Cow<'a, str>,
    /// What to do.
    pub task: Task<'a>,
    /// How the caller wants the answer delivered.
    pub delivery: Delivery,
    /// Top-level parameters the caller sent that the front accepted but does not act on, to be
    /// reported back rather than dropped silently.
    pub ignored: Vec<Cow<'a, str>>,
}

/// How the caller wants the answer delivered: what fronts need at render time, which the flow
/// carries past the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// As a stream, and how; `None`: whole.
    pub stream: Option<Streaming>,
    /// How vectors are written.
    pub vectors: VectorEncoding,
}

impl Delivery {
    /// A whole answer, vectors as lists of floats.
    pub const WHOLE: Delivery = Delivery {
        stream: None,
        vectors: VectorEncoding::Float,
    };
}

/// How the caller wants a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streaming {
    /// Whether the stream ends with the token counts.
    pub include_usage: bool,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
// One per request, built once and borrowed: boxing the conversation would cost an allocation
// to save a move.
#[allow(clippy::large_enum_variant)]
pub enum Task<'a> {
    /// Continue a conversation.
    Chat(Chat<'a>),
    /// Continue one prompt (legacy completions).
    Text(Text<'a>),
    /// Embed texts.
    Embed(Embed<'a>),
}

/// Which kind of route serves a task: `kind` in the conf.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// A generative model: chat and text tasks.
    #[default]
    Chat,
    /// An embeddings model.
    Embeddings,
}

impl RouteKind {
    /// The conf's name for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Chat => "chat",
            RouteKind::Embeddings => "embeddings",
        }
    }
}

impl Task<'_> {
    /// The kind of route that can serve this task.
    pub fn kind(&self) -> RouteKind {
        match self {
            Task::Chat(_) | Task::Text(_) => RouteKind::Chat,
            Task::Embed(_) => RouteKind::Embeddings,
        }
    }
}

/// A conversation to continue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chat<'a> {
    /// The messages, oldest first.
    pub messages: Vec<Message<'a>>,
    /// Tools the model may call.
    pub tools: Vec<Tool<'a>>,
    /// Whether and which tools the model must call.
    pub tool_choice: Option<ToolChoice<'a>>,
    /// Whether the model may call several tools in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Sampling settings.
    pub sampling: Sampling<'a>,
    /// Reasoning settings.
    pub reasoning: Option<Reasoning<'a>>,
    /// The most tokens the answer may take.
    pub max_output_tokens: Option<u64>,
    /// The form the answer's text must take.
    pub response_format: Option<ResponseFormat<'a>>,
    /// How many alternative answers the caller wants (`None`: one).
    pub choices: Option<u64>,
}

impl<'a> Chat<'a> {
    /// A conversation with no tools and default settings.
    pub fn new(messages: Vec<Message<'a>>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    /// Who wrote it.
    pub role: Role,
    /// What it holds, in order.
    pub parts: Vec<Part<'a>>,
}

impl<'a> Message<'a> {
    /// A message holding one text part.
    pub fn text(role: Role, text: impl Into<Cow<'a, str>>) -> Self {
        Self {
            role,
            parts: vec![Part::Text(text.into())],
        }
    }
}

/// A message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the model.
    System,
    /// Instructions for the model from the application's developer (OpenAI's newer name for
    /// `system`; surfaces without the distinction read it as `System`).
    Developer,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// Results of tool calls.
    Tool,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part<'a> {
    /// Text.
    Text(Cow<'a, str>),
    /// An image, by URL (a `data:` URL for inline images).
    Image {
        /// The image's URL.
        url: Cow<'a, str>,
    },
    /// A tool call the model made (assistant messages).
    ToolCall(ToolCall<'a>),
    /// The result of a tool call (tool messages).
    ToolResult {
        /// The id of the call this answers, when the caller gave one.
        call_id: Option<Cow<'a, str>>,
        /// What the tool returned.
        content: Cow<'a, str>,
    },
}

/// A tool call: which tool, with which arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall<'a> {
    /// The call's id, which its result names.
    pub id: Cow<'a, str>,
    /// The tool's name.
    pub name: Cow<'a, str>,
    /// The arguments, as JSON text.
    pub arguments: Cow<'a, str>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool<'a> {
    /// Its name.
    pub name: Cow<'a, str>,
    /// What it does, for the model.
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema of its arguments, as JSON text.
    pub parameters: Option<Cow<'a, str>>,
    /// Whether the arguments must follow the schema exactly.
    pub strict: Option<bool>,
}

/// Whether and which tools the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    /// The model decides.
    Auto,
    /// No tool.
    None,
    /// Some tool.
    Required,
    /// This tool.
    Named(Cow<'a, str>),
}

/// Sampling settings; `None` leaves the model's default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sampling<'a> {
    /// Randomness.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Sampling from the `k` likeliest tokens only.
    pub top_k: Option<u64>,
    /// Texts that end the answer.
    pub stop: Vec<Cow<'a, str>>,
}

/// Reasoning settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reasoning<'a> {
    /// How hard the model should think, in the provider's words (`low`, `medium`, `high`, ...).
    pub effort: Cow<'a, str>,
}

/// The form an answer's text must take.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat<'a> {
    /// Free text (the default).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// The schema's name.
        name: Cow<'a, str>,
        /// What the schema is for, for the model.
        description: Option<Cow<'a, str>>,
        /// The JSON schema, as JSON text.
        schema: Option<Cow<'a, str>>,
        /// Whether the answer must follow the schema exactly.
        strict: Option<bool>,
    },
}

/// One prompt to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'a> {
    /// The prompt.
    pub prompt: Cow<'a, str>,
    /// How many alternative answers the caller wants (`None`: one).
    pub choices: Option<u64>,
}

/// Texts to embed.
#[derive(Debug, Clone, PartialEq)]
pub struct Embed<'a> {
    /// The texts, in the order their vectors are answered.
    pub inputs: Vec<Cow<'a, str>>,
    /// The length of vector the caller wants, when it names one.
    pub dimensions: Option<u64>,
}

/// How vectors are delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VectorEncoding {
    /// Lists of numbers.
    #[default]
    Float,
    /// Base64 of little-endian 32-bit floats.
    Base64,
}
