//! The request body of `POST {gpt_api_base}/responses`: OpenAI's Responses API, borrowing every
//! string from the neutral request.

use serde::Serialize;
use serde_json::value::RawValue;

/// The body of `POST /responses`. Settings the caller left out are left out here too, so the
/// model's defaults apply.
#[derive(Debug, Serialize)]
pub struct ResponsesRequest<'r> {
    /// The Salesforce model name (`sfdc_ai__DefaultGPT5`, ...).
    pub model: &'r str,
    /// The conversation, or a prompt.
    pub input: Input<'r>,
    /// Function tools.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tools: Vec<FunctionTool<'r>>,
    /// Whether and which tools the model must call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'r>>,
    /// Whether the model may call several tools in one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// The most tokens the answer may take, reasoning included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Randomness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// How hard the model thinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningParam<'r>>,
    /// The form of the answer's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextParam<'r>>,
    /// Answer as server-sent events.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// `input`: a prompt, or items.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Input<'r> {
    /// One prompt (legacy completions).
    Text(&'r str),
    /// Messages, tool calls and tool results, oldest first.
    Items(Vec<InputItem<'r>>),
}

/// One input item.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputItem<'r> {
    /// A message.
    Message {
        /// `system`, `developer`, `user` or `assistant`.
        role: &'static str,
        /// Its parts, in order.
        content: Vec<Content<'r>>,
    },
    /// A tool call the model made earlier.
    FunctionCall {
        /// The id its result names.
        call_id: &'r str,
        /// The tool's name.
        name: &'r str,
        /// The arguments, as JSON text.
        arguments: &'r str,
    },
    /// The result of a tool call.
    FunctionCallOutput {
        /// The id of the call it answers.
        call_id: &'r str,
        /// What the tool returned.
        output: &'r str,
    },
}

/// One part of a message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content<'r> {
    /// Text of a system, developer or user message.
    InputText {
        /// The text.
        text: &'r str,
    },
    /// Text the model wrote (assistant messages): the Responses API refuses `input_text` there.
    OutputText {
        /// The text.
        text: &'r str,
    },
    /// An image, by URL (a `data:` URL for inline images).
    InputImage {
        /// The URL.
        image_url: &'r str,
    },
}

/// A function tool, flattened: `{"type": "function", "name", ...}`.
#[derive(Debug, Serialize)]
pub struct FunctionTool<'r> {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its name.
    pub name: &'r str,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'r str>,
    /// The JSON schema of its arguments, written as the caller wrote it; `null` without one (the
    /// field is required, nullable).
    pub parameters: Option<&'r RawValue>,
    /// Whether arguments must follow the schema exactly. Always sent: left out, the Responses
    /// API makes the schema strict, which Chat Completions and Anthropic callers never asked for.
    pub strict: bool,
}

/// `tool_choice`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ToolChoice<'r> {
    /// `auto`, `none` or `required`.
    Mode(&'static str),
    /// One function.
    Function {
        /// Always `function`.
        #[serde(rename = "type")]
        kind: &'static str,
        /// The tool's name.
        name: &'r str,
    },
}

/// `reasoning`.
#[derive(Debug, Serialize)]
pub struct ReasoningParam<'r> {
    /// `minimal`, `low`, `medium`, `high`, `xhigh`, ...
    pub effort: &'r str,
}

/// `text`.
#[derive(Debug, Serialize)]
pub struct TextParam<'r> {
    /// The answer's format.
    pub format: TextFormat<'r>,
}

/// `text.format`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat<'r> {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// The schema's name.
        name: &'r str,
        /// What the schema is for.
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'r str>,
        /// The schema, written as the caller wrote it.
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<&'r RawValue>,
        /// Whether the answer must follow the schema exactly.
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

impl<'r> ResponsesRequest<'r> {
    /// A request for `input` with no settings, answered whole.
    pub fn new(model: &'r str, input: Input<'r>) -> Self {
        Self {
            model,
            input,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            max_output_tokens: None,
            temperature: None,
            top_p: None,
            reasoning: None,
            text: None,
            stream: false,
        }
    }
}
