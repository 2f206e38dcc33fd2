//! Requests: `POST /v1/chat/completions` and `POST /v1/completions`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::params::{ResponseFormatDef, Scalar, Stop, Text, ToolChoiceDef};

/// `POST /v1/chat/completions`, parsed leniently: parameters the bridge does not act on are
/// accepted and listed in [`ignored`](Self::ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCompletionRequest<'a> {
    /// The model name the caller asked for.
    pub model: Cow<'a, str>,
    /// The conversation.
    pub messages: Vec<ChatMessage<'a>>,
    /// `stream`: answer as server-sent events.
    pub stream: bool,
    /// `stream_options`.
    pub stream_options: StreamOptions,
    /// `n`: how many choices the caller wants.
    pub n: Option<u64>,
    /// The tools offered in `tools`, then the legacy `functions`, as sent.
    pub tools: Vec<ToolDef<'a>>,
    /// `tool_choice`.
    pub tool_choice: Option<ToolChoiceDef<'a>>,
    /// `parallel_tool_calls`.
    pub parallel_tool_calls: Option<bool>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// `max_tokens`, the older name of `max_completion_tokens`.
    pub max_tokens: Option<u64>,
    /// `max_completion_tokens`.
    pub max_completion_tokens: Option<u64>,
    /// `stop`, as a list (a single string is a list of one).
    pub stop: Vec<Cow<'a, str>>,
    /// `reasoning_effort`, as sent (`none`, `minimal`, `low`, `medium`, `high`, `xhigh`, ...).
    pub reasoning_effort: Option<Cow<'a, str>>,
    /// `response_format`.
    pub response_format: Option<ResponseFormatDef<'a>>,
    /// The names of top-level parameters that were accepted but are not acted on.
    pub ignored: Vec<Cow<'a, str>>,
}

/// `POST /v1/completions`, the legacy text-completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest<'a> {
    /// The model name the caller asked for.
    pub model: Cow<'a, str>,
    /// The prompt.
    pub prompt: Prompt<'a>,
    /// `stream`: answer as server-sent events.
    pub stream: bool,
    /// `stream_options`.
    pub stream_options: StreamOptions,
    /// `n`: how many choices the caller wants.
    pub n: Option<u64>,
    /// `echo`: whether the caller wants the prompt repeated before the answer.
    pub echo: bool,
    /// The names of top-level parameters that were accepted but are not forwarded.
    pub ignored: Vec<Cow<'a, str>>,
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk carrying `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// A message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions.
    System,
    /// OpenAI's newer name for system instructions.
    Developer,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// A legacy function result.
    Function,
}

/// One message of a chat request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatMessage<'a> {
    /// Who wrote it.
    pub role: Role,
    /// What it says; absent or null on an assistant message that only calls tools.
    #[serde(borrow, default)]
    pub content: Option<MessageContent<'a>>,
    /// Tool calls made by an assistant message.
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCallDef<'a>>>,
    /// A legacy function call made by an assistant message.
    #[serde(default)]
    pub function_call: Option<IgnoredAny>,
    /// On a `tool` message: the id of the call it answers.
    #[serde(borrow, default)]
    pub tool_call_id: Option<Cow<'a, str>>,
}

/// One offered tool: an entry of `tools` (`{"type": "function", "function": {...}}`), or of the
/// legacy `functions` (the function alone). Parsed leniently: the front says what is missing.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ToolDef<'a> {
    /// `function` (the only type Chat Completions defines for `tools`).
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The function.
    #[serde(borrow, default)]
    pub function: Option<FunctionDef<'a>>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct FunctionDef<'a> {
    /// Its name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// What it does.
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema of its arguments, kept as the caller wrote it.
    #[serde(borrow, default)]
    pub parameters: Option<RawJson<'a>>,
    /// Whether arguments must follow the schema exactly.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// A tool call made by an assistant message: `{"id", "type": "function", "function": {"name",
/// "arguments"}}`, parsed leniently.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ToolCallDef<'a> {
    /// The call's id.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// The function called.
    #[serde(borrow, default)]
    pub function: Option<FunctionCallDef<'a>>,
}

/// The function of a tool call.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct FunctionCallDef<'a> {
    /// The tool's name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// The arguments, as JSON text.
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
}

/// A JSON value kept as the caller wrote it, borrowed from the request body.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub struct RawJson<'a>(#[serde(borrow)] pub &'a serde_json::value::RawValue);

impl<'a> RawJson<'a> {
    /// The JSON text.
    pub fn get(self) -> &'a str {
        self.0.get()
    }
}

impl PartialEq for RawJson<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// A message's content: a string, or a list of typed parts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent<'a> {
    /// Plain text.
    Text(Cow<'a, str>),
    /// Content parts such as `{"type": "text", "text": "..."}` or `{"type": "image_url", ...}`.
    Parts(Vec<ContentPart<'a>>),
}

/// One content part.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ContentPart<'a> {
    /// `text`, `image_url`, `input_audio`, `file`, `refusal`, ...
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The text of a `text` part.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// The image of an `image_url` part.
    #[serde(borrow, default)]
    pub image_url: Option<ImageUrl<'a>>,
}

/// `image_url` of a content part.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImageUrl<'a> {
    /// An `https:` or `data:` URL.
    #[serde(borrow)]
    pub url: Cow<'a, str>,
}

/// A legacy completion prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt<'a> {
    /// One prompt string (or a list holding exactly one).
    Text(Cow<'a, str>),
    /// Several prompt strings: a batch.
    Batch(usize),
    /// Token ids instead of text.
    Tokens,
}

/// The longest parameter name reported back in a header; longer names are ignored unreported.
const MAX_REPORTED_NAME: usize = 64;
/// The most parameter names reported back.
const MAX_REPORTED: usize = 32;

/// Records `name` as a parameter accepted but not acted on, if it can be reported back safely.
pub(crate) fn report_ignored<'a>(ignored: &mut Vec<Cow<'a, str>>, name: Cow<'a, str>) {
    // The list travels back in a response header, so only names that are safe and short there.
    let printable = name.len() <= MAX_REPORTED_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if printable && ignored.len() < MAX_REPORTED && !ignored.contains(&name) {
        ignored.push(name);
    }
}

/// Fills `slot`, or fails on a key given twice.
pub(crate) fn set_once<T, E: de::Error>(
    slot: &mut Option<T>,
    value: T,
    name: &'static str,
) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de: 'a, 'a> Deserialize<'de> for ChatCompletionRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChatVisitor;

        impl<'de> Visitor<'de> for ChatVisitor {
            type Value = ChatCompletionRequest<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chat completion request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut model = None;
                let mut messages = None;
                let mut stream = None;
                let mut stream_options = None;
                let mut n = None;
                let mut tools = Vec::new();
                let mut tool_choice = None;
                let mut parallel_tool_calls = None;
                let mut temperature = None;
                let mut top_p = None;
                let mut max_tokens = None;
                let mut max_completion_tokens = None;
                let mut stop = Stop::default();
                let mut reasoning_effort = None;
                let mut response_format = None;
                let mut ignored = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => set_once(&mut model, map.next_value::<CowStr>()?.0, "model")?,
                        "messages" => set_once(&mut messages, map.next_value()?, "messages")?,
                        "stream" => stream = map.next_value::<Option<bool>>()?,
                        "stream_options" => {
                            stream_options = map.next_value::<Option<StreamOptions>>()?
                        }
                        "n" => n = map.next_value::<Option<u64>>()?,
                        "tools" => {
                            let listed: Option<Vec<ToolDef<'de>>> = map.next_value()?;
                            tools.extend(listed.into_iter().flatten());
                        }
                        "functions" => {
                            let listed: Option<Vec<FunctionDef<'de>>> = map.next_value()?;
                            tools.extend(listed.into_iter().flatten().map(|function| ToolDef {
                                kind: Some(Cow::Borrowed("function")),
                                function: Some(function),
                            }));
                        }
                        "tool_choice" => tool_choice = map.next_value()?,
                        "parallel_tool_calls" => {
                            parallel_tool_calls =
                                map.next_value_seed(Scalar::named("parallel_tool_calls"))?
                        }
                        "temperature" => {
                            temperature = map.next_value_seed(Scalar::named("temperature"))?
                        }
                        "top_p" => top_p = map.next_value_seed(Scalar::named("top_p"))?,
                        "max_tokens" => {
                            max_tokens = map.next_value_seed(Scalar::named("max_tokens"))?
                        }
                        "max_completion_tokens" => {
                            max_completion_tokens =
                                map.next_value_seed(Scalar::named("max_completion_tokens"))?
                        }
                        "stop" => stop = map.next_value()?,
                        "reasoning_effort" => {
                            reasoning_effort =
                                map.next_value_seed(Text::named("reasoning_effort"))?
                        }
                        "response_format" => response_format = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            report_ignored(&mut ignored, key);
                        }
                    }
                }
                Ok(ChatCompletionRequest {
                    model: model.ok_or_else(|| de::Error::missing_field("model"))?,
                    messages: messages.ok_or_else(|| de::Error::missing_field("messages"))?,
                    stream: stream.unwrap_or(false),
                    stream_options: stream_options.unwrap_or_default(),
                    n,
                    tools,
                    tool_choice,
                    parallel_tool_calls,
                    temperature,
                    top_p,
                    max_tokens,
                    max_completion_tokens,
                    stop: stop.0,
                    reasoning_effort,
                    response_format,
                    ignored,
                })
            }
        }

        deserializer.deserialize_map(ChatVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CompletionRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CompletionVisitor;

        impl<'de> Visitor<'de> for CompletionVisitor {
            type Value = CompletionRequest<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a completion request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut model = None;
                let mut prompt = None;
                let mut stream = None;
                let mut stream_options = None;
                let mut n = None;
                let mut echo = None;
                let mut ignored = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => set_once(&mut model, map.next_value::<CowStr>()?.0, "model")?,
                        "prompt" => set_once(&mut prompt, map.next_value()?, "prompt")?,
                        "stream" => stream = map.next_value::<Option<bool>>()?,
                        "stream_options" => {
                            stream_options = map.next_value::<Option<StreamOptions>>()?
                        }
                        "n" => n = map.next_value::<Option<u64>>()?,
                        "echo" => echo = map.next_value::<Option<bool>>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            report_ignored(&mut ignored, key);
                        }
                    }
                }
                Ok(CompletionRequest {
                    model: model.ok_or_else(|| de::Error::missing_field("model"))?,
                    prompt: prompt.ok_or_else(|| de::Error::missing_field("prompt"))?,
                    stream: stream.unwrap_or(false),
                    stream_options: stream_options.unwrap_or_default(),
                    n,
                    echo: echo.unwrap_or(false),
                    ignored,
                })
            }
        }

        deserializer.deserialize_map(CompletionVisitor)
    }
}

/// A string borrowed from the input when it holds no escapes. (serde's own `Cow<str>` always
/// allocates outside derived structs.)
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CowStrVisitor).map(CowStr)
    }
}

/// Accepts a JSON string, borrowing it from the input when it holds no escapes.
pub(crate) struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageContent<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor
                    .visit_borrowed_str(v)
                    .map(MessageContent::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(MessageContent::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(MessageContent::Text)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One element of a prompt array: a string, or a token id (or an array of them).
enum PromptElement<'a> {
    Text(Cow<'a, str>),
    Tokens,
}

impl<'de: 'a, 'a> Deserialize<'de> for PromptElement<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;

        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = PromptElement<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(PromptElement::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(PromptElement::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(PromptElement::Text)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(PromptElement::Tokens)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(PromptElement::Tokens)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<u64>()?.is_some() {}
                Ok(PromptElement::Tokens)
            }
        }

        deserializer.deserialize_any(ElementVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Prompt<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PromptVisitor;

        impl<'de> Visitor<'de> for PromptVisitor {
            type Value = Prompt<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(Prompt::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(Prompt::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(Prompt::Text)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut first = None;
                let mut count = 0usize;
                let mut tokens = false;
                while let Some(element) = seq.next_element::<PromptElement<'de>>()? {
                    count += 1;
                    match element {
                        PromptElement::Text(text) if first.is_none() => first = Some(text),
                        PromptElement::Text(_) => {}
                        PromptElement::Tokens => tokens = true,
                    }
                }
                Ok(match (tokens, count, first) {
                    (true, _, _) => Prompt::Tokens,
                    (false, 1, Some(text)) => Prompt::Text(text),
                    (false, count, _) => Prompt::Batch(count),
                })
            }
        }

        deserializer.deserialize_any(PromptVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<ChatCompletionRequest<'_>, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let request = chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert!(matches!(request.model, Cow::Borrowed("m")));
        assert!(matches!(
            request.messages[0].content,
            Some(MessageContent::Text(Cow::Borrowed("hi")))
        ));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let request =
            chat(r#"{"model":"m","messages":[{"role":"user","content":"a\nb \u00e9"}]}"#).unwrap();
        assert_eq!(
            request.messages[0].content,
            Some(MessageContent::Text("a\nb é".into()))
        );
    }

    #[test]
    fn unknown_parameters_are_listed_once() {
        let request = chat(
            r#"{"seed":1,"model":"m","logprobs":true,"messages":[],"seed":2,
                "bad name!":1,"stream":null,"stream_options":null,"n":null}"#,
        )
        .unwrap();
        assert_eq!(request.ignored, ["seed", "logprobs"]);
        assert!(!request.stream);
        assert_eq!(request.n, None);
    }

    #[test]
    fn tools_are_counted() {
        let request = chat(
            r#"{"model":"m","messages":[],"tools":[{"type":"function"},{}],"functions":null}"#,
        )
        .unwrap();
        assert_eq!(request.tools.len(), 2);
        let request = chat(r#"{"model":"m","messages":[],"tools":[]}"#).unwrap();
        assert_eq!(request.tools.len(), 0);
    }

    #[test]
    fn missing_and_duplicate_fields_are_errors() {
        let err = chat(r#"{"model":"m"}"#).unwrap_err().to_string();
        assert!(err.starts_with("missing field `messages`"), "{err}");
        let err = chat(r#"{"model":"m","model":"n","messages":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("duplicate field `model`"), "{err}");
    }

    #[test]
    fn wrong_types_are_errors() {
        for body in [
            r#"{"model":1,"messages":[]}"#,
            r#"{"model":"m","messages":"hi"}"#,
            r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            r#"[1,2]"#,
        ] {
            assert!(chat(body).is_err(), "{body}");
        }
    }

    #[test]
    fn content_parts_are_kept() {
        let request = chat(
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
        )
        .unwrap();
        let Some(MessageContent::Parts(parts)) = &request.messages[0].content else {
            panic!("expected parts");
        };
        assert_eq!(parts[0].kind, "text");
        assert_eq!(parts[0].text.as_deref(), Some("a"));
        assert_eq!(parts[1].kind, "image_url");
        assert_eq!(parts[1].text, None);
    }

    #[test]
    fn prompt_shapes() {
        fn prompt(body: &str) -> Prompt<'_> {
            serde_json::from_str::<CompletionRequest<'_>>(body)
                .unwrap()
                .prompt
        }
        assert_eq!(
            prompt(r#"{"model":"m","prompt":"x"}"#),
            Prompt::Text("x".into())
        );
        assert_eq!(
            prompt(r#"{"model":"m","prompt":["x"]}"#),
            Prompt::Text("x".into())
        );
        assert_eq!(
            prompt(r#"{"model":"m","prompt":["x","y"]}"#),
            Prompt::Batch(2)
        );
        assert_eq!(prompt(r#"{"model":"m","prompt":[1,2]}"#), Prompt::Tokens);
        assert_eq!(
            prompt(r#"{"model":"m","prompt":[[1],[2]]}"#),
            Prompt::Tokens
        );
        assert_eq!(prompt(r#"{"model":"m","prompt":[]}"#), Prompt::Batch(0));
    }
}
