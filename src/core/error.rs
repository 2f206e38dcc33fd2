//! [`TranslateError`]: a request that cannot be honoured as asked.

use std::borrow::Cow;

/// A request that cannot be honoured: malformed for its front, or asking for what the route's
/// surface cannot do. Each variant says what to change; nothing is ever silently dropped when
/// dropping it would change the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// `messages` is empty.
    #[error("`messages` must hold at least one message")]
    NoMessages,
    /// A `tool` or `function` message, on a surface without tool calling (or a legacy
    /// `function` message, which no surface takes).
    #[error("messages[{index}]: role `{role}` is not supported: the Salesforce Models API has no tool calling")]
    ToolMessage {
        /// The message's position.
        index: usize,
        /// `tool` or `function`.
        role: &'static str,
    },
    /// An assistant message that carries tool calls, on a surface without tool calling (or a
    /// legacy `function_call`, which no surface takes).
    #[error("messages[{index}]: assistant tool calls are not supported: the Salesforce Models API has no tool calling")]
    ToolCalls {
        /// The message's position.
        index: usize,
    },
    /// `tools` or `functions` offered to a surface without tool calling.
    #[error(
        "`tools` and `functions` are not supported: the Salesforce Models API has no tool calling"
    )]
    Tools,
    /// `n` other than 1.
    #[error("`n` = {0} is not supported: the Salesforce Models API returns exactly one choice")]
    Choices(u64),
    /// A content part the front cannot carry or the surface cannot take.
    #[error("messages[{index}].content: `{kind}` parts are not supported: the Salesforce Models API takes text only")]
    UnsupportedPart {
        /// The message's position.
        index: usize,
        /// The part's `type`.
        kind: String,
    },
    /// A `text` part without its text.
    #[error("messages[{index}].content: a `text` part has no `text`")]
    EmptyTextPart {
        /// The message's position.
        index: usize,
    },
    /// A message with no content.
    #[error("messages[{index}].content is required")]
    MissingContent {
        /// The message's position.
        index: usize,
    },
    /// Several prompts in one legacy completion request.
    #[error("`prompt` holds {0} prompts: the Salesforce Models API takes one prompt per request")]
    PromptBatch(usize),
    /// Token ids instead of prompt text.
    #[error("`prompt` as token ids is not supported: send text")]
    PromptTokens,
    /// `echo: true`.
    #[error("`echo` is not supported")]
    Echo,
    /// A tool call without an id or a function name.
    #[error("messages[{index}].tool_calls: each call needs an `id` and a `function.name`")]
    InvalidToolCall {
        /// The message's position.
        index: usize,
    },
    /// A tool that is not a function with a name.
    #[error("tools[{index}]: a tool must be `{{\"type\": \"function\", \"function\": {{\"name\": ...}}}}`")]
    InvalidTool {
        /// The tool's position.
        index: usize,
    },
    /// A setting the surface has no field for.
    #[error("`{0}` is not supported here")]
    Setting(&'static str),
    /// Token ids instead of texts to embed.
    #[error("`input` as token ids is not supported: send a string or an array of strings")]
    InputTokens,
    /// Nothing to embed.
    #[error("`input` must hold at least one string")]
    NoInput,
    /// An `input` array with no item in it.
    #[error("`input` must hold at least one item")]
    NoItems,
    /// An input item of a type that cannot be served on this path.
    #[error("input[{index}]: items of type `{kind}` are not supported here")]
    UnsupportedItem {
        /// The item's position in `input`.
        index: usize,
        /// The item's `type`, sanitised and bounded.
        kind: String,
    },
    /// A content part of an input item that cannot be carried.
    #[error("input[{index}].{field}: `{kind}` parts are not supported here")]
    UnsupportedItemPart {
        /// The item's position in `input`.
        index: usize,
        /// `content` (a message's) or `output` (a function call output's).
        field: &'static str,
        /// The part's `type`, sanitised and bounded.
        kind: String,
    },
    /// A parameter, item or field that is missing or malformed, and what it must be.
    #[error("{param}: {problem}")]
    Malformed {
        /// Where: `input[2].call_id`, `tools[0].name`, `text.format.type`, ...
        param: Cow<'static, str>,
        /// What is wrong: `missing`, `must be ...`, or the caller's API's own words
        /// (`Field required`).
        problem: Cow<'static, str>,
    },
    /// A tool of a type other than `function`: one the provider runs itself (web search, file
    /// search, ...) or one without a JSON schema (free-form `custom` tools).
    #[error("tools[{index}]: `{kind}` tools are not supported here: only `function` tools can be offered on this route")]
    UnsupportedTool {
        /// The tool's position.
        index: usize,
        /// The tool's `type`, sanitised and bounded.
        kind: String,
    },
    /// A parameter that refers to state the provider keeps between requests (a stored response,
    /// a conversation), which a route through the neutral core does not keep.
    #[error("`{0}` is not supported here: it refers to state kept on the server between requests, which this route does not keep; send the whole conversation in `input` instead")]
    ServerState(&'static str),
    /// A tool result that does not name the call it answers, on a surface that pairs them by
    /// id (or a tool message holding anything but its result).
    #[error(
        "messages[{index}]: a tool result needs the id of the call it answers (`tool_call_id`)"
    )]
    ToolResultId {
        /// The message's position.
        index: usize,
    },
    /// Texts to embed, on a surface without embeddings.
    #[error("this surface has no embeddings")]
    NoEmbeddings,
}

impl TranslateError {
    /// The request parameter at fault, for an error envelope's `param`.
    pub fn param(&self) -> Cow<'static, str> {
        match self {
            TranslateError::NoMessages => "messages".into(),
            TranslateError::ToolMessage { index, .. } => format!("messages[{index}].role").into(),
            TranslateError::ToolCalls { index } | TranslateError::InvalidToolCall { index } => {
                format!("messages[{index}].tool_calls").into()
            }
            TranslateError::InvalidTool { .. } => "tools".into(),
            TranslateError::Tools => "tools".into(),
            TranslateError::Choices(_) => "n".into(),
            TranslateError::UnsupportedPart { index, .. }
            | TranslateError::EmptyTextPart { index }
            | TranslateError::MissingContent { index } => {
                format!("messages[{index}].content").into()
            }
            TranslateError::PromptBatch(_) | TranslateError::PromptTokens => "prompt".into(),
            TranslateError::Echo => "echo".into(),
            TranslateError::Setting(name) => Cow::Borrowed(name),
            TranslateError::InputTokens | TranslateError::NoInput => "input".into(),
            TranslateError::NoItems => "input".into(),
            TranslateError::UnsupportedItem { index, .. } => format!("input[{index}]").into(),
            TranslateError::UnsupportedItemPart { index, field, .. } => {
                format!("input[{index}].{field}").into()
            }
            TranslateError::Malformed { param, .. } => param.clone(),
            TranslateError::UnsupportedTool { index, .. } => format!("tools[{index}]").into(),
            TranslateError::ServerState(name) => Cow::Borrowed(name),
            TranslateError::ToolResultId { index } => {
                format!("messages[{index}].tool_call_id").into()
            }
            TranslateError::NoEmbeddings => "model".into(),
        }
    }
}
