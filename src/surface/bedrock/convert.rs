//! Neutral requests → Bedrock's Anthropic body. Pure.
//!
//! Anthropic's Messages API differs from Chat Completions in ways that shape this file: system
//! text is a top-level `system`, not a message; turns alternate between `user` and `assistant`
//! (so consecutive messages of one side are merged); tool results are `tool_result` blocks in a
//! user turn; and `max_tokens` is required.

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{refused, ANTHROPIC_VERSION};
use crate::core::{
    Chat, Message, Part, ResponseFormat, Role, Sampling, Text, ToolCall, ToolChoice, TranslateError,
};
use crate::surface::one_choice;

/// The body of `invoke`.
#[derive(Debug, Serialize)]
pub(super) struct MessagesBody<'r> {
    anthropic_version: &'static str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<TextBlock<'r>>,
    messages: Vec<Turn<'r>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolSpec<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceSpec<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'r [Cow<'r, str>],
}

#[derive(Debug, Serialize)]
struct TextBlock<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'r str,
}

/// One turn: a side and its blocks.
#[derive(Debug, Serialize)]
struct Turn<'r> {
    role: &'static str,
    content: Vec<Block<'r>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'r> {
    Text {
        text: &'r str,
    },
    Image {
        source: ImageSource<'r>,
    },
    ToolUse {
        id: &'r str,
        name: &'r str,
        input: Json<'r>,
    },
    ToolResult {
        tool_use_id: &'r str,
        content: &'r str,
    },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'r> {
    Base64 { media_type: &'r str, data: &'r str },
    Url { url: &'r str },
}

#[derive(Debug, Serialize)]
struct ToolSpec<'r> {
    name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'r str>,
    input_schema: Json<'r>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoiceSpec<'r> {
    Auto {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: &'r str,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

/// A JSON value sent as the caller wrote it, or one the bridge fills in.
#[derive(Debug)]
enum Json<'r> {
    Raw(&'r RawValue),
    /// `{}`: the input of a call without arguments.
    EmptyObject,
    /// `{"type": "object"}`: the schema of a tool without parameters, which Anthropic requires.
    ObjectSchema,
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Raw(raw) => raw.serialize(serializer),
            Json::EmptyObject => serializer.serialize_map(Some(0))?.end(),
            Json::ObjectSchema => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("type", "object")?;
                map.end()
            }
        }
    }
}

/// The Chat Completions names of the settings `chat` carries that this surface does not send:
/// a reasoning effort (Anthropic's thinking takes a token budget or `adaptive`, not an effort
/// word, and refuses sampling settings while on: not guessed at), an answer format other than
/// text, and a tool's `strict`.
pub(super) fn dropped_settings(chat: &Chat<'_>) -> Vec<&'static str> {
    let format = !matches!(chat.response_format, None | Some(ResponseFormat::Text));
    [
        ("reasoning_effort", chat.reasoning.is_some()),
        ("response_format", format),
        (
            "tools.function.strict",
            chat.tools.iter().any(|tool| tool.strict.is_some()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// The body for a conversation; `default_max_tokens` stands in when the caller names none.
pub(super) fn chat_body<'r>(
    chat: &'r Chat<'_>,
    default_max_tokens: u64,
) -> Result<MessagesBody<'r>, TranslateError> {
    one_choice(chat.choices)?;
    let (system, messages) = turns(&chat.messages)?;
    let tools = chat
        .tools
        .iter()
        .enumerate()
        .map(|(index, tool)| {
            let input_schema = match tool.parameters.as_deref() {
                Some(schema) => Json::Raw(
                    serde_json::from_str(schema)
                        .map_err(|_| TranslateError::InvalidTool { index })?,
                ),
                None => Json::ObjectSchema,
            };
            Ok(ToolSpec {
                name: &tool.name,
                description: tool.description.as_deref(),
                input_schema,
            })
        })
        .collect::<Result<_, _>>()?;
    let Sampling {
        temperature,
        top_p,
        top_k,
        ref stop,
    } = chat.sampling;
    Ok(MessagesBody {
        anthropic_version: ANTHROPIC_VERSION,
        max_tokens: chat.max_output_tokens.unwrap_or(default_max_tokens),
        system,
        messages,
        tools,
        tool_choice: tool_choice(chat.tool_choice.as_ref(), chat.parallel_tool_calls),
        temperature,
        top_p,
        top_k,
        stop_sequences: stop,
    })
}

/// A prompt as a conversation of one user turn.
pub(super) fn text_body<'r>(
    text: &'r Text<'_>,
    max_tokens: u64,
) -> Result<MessagesBody<'r>, TranslateError> {
    one_choice(text.choices)?;
    if text.prompt.is_empty() {
        return Err(TranslateError::MissingContent { index: 0 });
    }
    Ok(MessagesBody {
        anthropic_version: ANTHROPIC_VERSION,
        max_tokens,
        system: Vec::new(),
        messages: vec![Turn {
            role: "user",
            content: vec![Block::Text { text: &text.prompt }],
        }],
        tools: Vec::new(),
        tool_choice: None,
        temperature: None,
        top_p: None,
        top_k: None,
        stop_sequences: &[],
    })
}

/// `tool_choice`, with `parallel_tool_calls: false` as `disable_parallel_tool_use` (which
/// `none` has no room for: no tool, nothing in parallel).
fn tool_choice<'r>(
    choice: Option<&'r ToolChoice<'_>>,
    parallel: Option<bool>,
) -> Option<ToolChoiceSpec<'r>> {
    let disable_parallel_tool_use = (parallel == Some(false)).then_some(true);
    Some(match choice {
        None if disable_parallel_tool_use.is_none() => return None,
        None | Some(ToolChoice::Auto) => ToolChoiceSpec::Auto {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::None) => ToolChoiceSpec::None,
        Some(ToolChoice::Required) => ToolChoiceSpec::Any {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::Named(name)) => ToolChoiceSpec::Tool {
            name,
            disable_parallel_tool_use,
        },
    })
}

/// The system text and the alternating turns: system and developer messages, wherever they
/// stand, go to `system` in order; consecutive messages of one side become one turn.
fn turns<'r>(
    messages: &'r [Message<'_>],
) -> Result<(Vec<TextBlock<'r>>, Vec<Turn<'r>>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'r>> = Vec::with_capacity(messages.len());
    // The message each turn starts with, to name it when the turn is empty.
    let mut first_of_turn = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let role = match message.role {
            Role::System | Role::Developer => {
                system_text(index, message, &mut system)?;
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        if turns.last().is_none_or(|turn| turn.role != role) {
            first_of_turn.push(index);
            turns.push(Turn {
                role,
                content: Vec::with_capacity(message.parts.len()),
            });
        }
        // Never `None`: a turn was just pushed if there was none.
        let Some(turn) = turns.last_mut() else {
            continue;
        };
        for part in &message.parts {
            if let Some(block) = block(index, message.role, part)? {
                turn.content.push(block);
            }
        }
    }
    if turns.is_empty() {
        return Err(TranslateError::NoMessages);
    }
    // Anthropic refuses a turn without content.
    if let Some((_, &index)) = turns
        .iter()
        .zip(&first_of_turn)
        .find(|(turn, _)| turn.content.is_empty())
    {
        return Err(TranslateError::MissingContent { index });
    }
    Ok((system, turns))
}

/// A system or developer message's text, as system blocks (empty text skipped: Anthropic refuses
/// empty text blocks).
fn system_text<'r>(
    index: usize,
    message: &'r Message<'_>,
    system: &mut Vec<TextBlock<'r>>,
) -> Result<(), TranslateError> {
    let role = if message.role == Role::Developer {
        "developer"
    } else {
        "system"
    };
    for part in &message.parts {
        let Part::Text(text) = part else {
            return Err(part_not_allowed(index, part, role));
        };
        if !text.is_empty() {
            system.push(TextBlock { kind: "text", text });
        }
    }
    Ok(())
}

/// One part of a user, tool or assistant message as a block; `None` for empty text.
fn block<'r>(
    index: usize,
    role: Role,
    part: &'r Part<'_>,
) -> Result<Option<Block<'r>>, TranslateError> {
    let assistant = role == Role::Assistant;
    let misplaced = || part_not_allowed(index, part, if assistant { "assistant" } else { "user" });
    Ok(Some(match part {
        Part::Text(text) if text.is_empty() => return Ok(None),
        Part::Text(text) => Block::Text { text },
        Part::Image { url } if !assistant => Block::Image {
            source: image_source(index, url)?,
        },
        Part::ToolCall(call) if assistant => tool_use(index, call)?,
        Part::ToolResult { call_id, content } if !assistant => Block::ToolResult {
            tool_use_id: call_id.as_deref().ok_or_else(|| {
                refused(
                    format!("messages[{index}].tool_call_id"),
                    "required on this route: it names the call this message answers",
                )
            })?,
            content,
        },
        Part::Image { .. } | Part::ToolCall(_) | Part::ToolResult { .. } => return Err(misplaced()),
    }))
}

/// A part that a message of `role` cannot hold (an image in a system message).
fn part_not_allowed(index: usize, part: &Part<'_>, role: &str) -> TranslateError {
    let part = match part {
        Part::Text(_) => "text",
        Part::Image { .. } => "image",
        Part::ToolCall(_) => "tool call",
        Part::ToolResult { .. } => "tool result",
    };
    refused(
        format!("messages[{index}].content"),
        format!("a `{role}` message cannot hold {part} parts"),
    )
}

/// A call's arguments as its `input` object; no arguments at all is `{}`.
fn tool_use<'r>(index: usize, call: &'r ToolCall<'_>) -> Result<Block<'r>, TranslateError> {
    let invalid = || {
        refused(
            format!("messages[{index}].tool_calls"),
            "each call's `function.arguments` must be a JSON object",
        )
    };
    let arguments = call.arguments.trim();
    let input = if arguments.is_empty() {
        Json::EmptyObject
    } else if arguments.starts_with('{') {
        Json::Raw(serde_json::from_str(arguments).map_err(|_| invalid())?)
    } else {
        return Err(invalid());
    };
    Ok(Block::ToolUse {
        id: &call.id,
        name: &call.name,
        input,
    })
}

/// An inline `data:<media type>;base64,<data>` image, or one by URL.
fn image_source<'r>(index: usize, url: &'r str) -> Result<ImageSource<'r>, TranslateError> {
    let invalid = || {
        refused(
            format!("messages[{index}].content"),
            "an image must be an http(s) URL or a `data:<media type>;base64,...` URL",
        )
    };
    let Some(rest) = strip_prefix_ignore_case(url, "data:") else {
        return if strip_prefix_ignore_case(url, "https://").is_some()
            || strip_prefix_ignore_case(url, "http://").is_some()
        {
            Ok(ImageSource::Url { url })
        } else {
            Err(invalid())
        };
    };
    let (header, data) = rest.split_once(',').ok_or_else(invalid)?;
    let media_type = strip_suffix_ignore_case(header, ";base64").ok_or_else(invalid)?;
    // Parameters such as `;charset=...` are not part of Anthropic's media type.
    let media_type = media_type.split(';').next().unwrap_or_default();
    if media_type.is_empty() || data.is_empty() {
        return Err(invalid());
    }
    Ok(ImageSource::Base64 { media_type, data })
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ignore_case<'t>(text: &'t str, suffix: &str) -> Option<&'t str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| text.get(..cut))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Reasoning, Task, Tool};
    use crate::surface::bedrock::test_fixtures::fixture;
    use serde_json::{json, Value};

    fn body(task: &Task<'_>) -> Result<(Value, Vec<&'static str>), TranslateError> {
        let (json, dropped) = match task {
            Task::Chat(chat) => (
                serde_json::to_vec(&chat_body(chat, 4096)?).unwrap(),
                dropped_settings(chat),
            ),
            Task::Text(text) => (serde_json::to_vec(&text_body(text, 4096)?).unwrap(), vec![]),
            Task::Embed(_) => panic!("no embeddings on this surface"),
        };
        Ok((serde_json::from_slice(&json).unwrap(), dropped))
    }

    fn chat_value(chat: Chat<'_>) -> Value {
        body(&Task::Chat(chat)).unwrap().0
    }

    fn chat_err(chat: Chat<'_>) -> TranslateError {
        body(&Task::Chat(chat)).unwrap_err()
    }

    fn call<'a>(id: &'a str, name: &'a str, arguments: &'a str) -> Part<'a> {
        Part::ToolCall(ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        })
    }

    fn result<'a>(id: Option<&'a str>, content: &'a str) -> Part<'a> {
        Part::ToolResult {
            call_id: id.map(Cow::Borrowed),
            content: content.into(),
        }
    }

    #[test]
    fn the_spec_fixture_conversation_is_produced() {
        let mut expected: Value =
            serde_json::from_slice(&fixture("native.bedrock.invoke.request.json")).unwrap();
        let mut chat = Chat::new(vec![
            Message::text(Role::System, "You are terse."),
            Message::text(Role::User, "What is the weather in Paris?"),
            Message {
                role: Role::Assistant,
                parts: vec![call("toolu_01A", "get_weather", r#"{"city": "Paris"}"#)],
            },
            Message {
                role: Role::Tool,
                parts: vec![result(Some("toolu_01A"), "18 C, clear")],
            },
        ]);
        let schema = expected["tools"][0]["input_schema"].to_string();
        chat.tools = vec![Tool {
            name: "get_weather".into(),
            description: Some("Current weather for a city".into()),
            parameters: Some(schema.into()),
            strict: None,
        }];
        chat.max_output_tokens = Some(1024);
        // What the core cannot say: beta flags, cache control, and a user turn as a plain string.
        let object = expected.as_object_mut().unwrap();
        object.remove("anthropic_beta");
        object["system"][0]
            .as_object_mut()
            .unwrap()
            .remove("cache_control");
        object["messages"][0]["content"] =
            json!([{"type": "text", "text": "What is the weather in Paris?"}]);
        assert_eq!(chat_value(chat), expected);
    }

    #[test]
    fn system_and_developer_text_leaves_the_turns_and_same_sides_merge() {
        let chat = Chat::new(vec![
            Message::text(Role::System, "s"),
            Message::text(Role::User, "a"),
            Message::text(Role::Developer, "d"),
            Message::text(Role::User, "b"),
            Message {
                role: Role::User,
                parts: vec![Part::Image {
                    url: "data:image/png;base64,iVBORw0KGgo=".into(),
                }],
            },
            Message::text(Role::Assistant, "x"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text("".into()),
                    call("c1", "f", ""),
                    call("c2", "g", " {\"a\": [1]} "),
                ],
            },
            Message {
                role: Role::Tool,
                parts: vec![result(Some("c1"), "r1")],
            },
            Message {
                role: Role::Tool,
                parts: vec![result(Some("c2"), "")],
            },
            Message {
                role: Role::User,
                parts: vec![Part::Image {
                    url: "https://example.com/cat.jpg".into(),
                }],
            },
        ]);
        assert_eq!(
            chat_value(chat),
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4096,
            "system": [{"type": "text", "text": "s"}, {"type": "text", "text": "d"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "x"},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "c2", "name": "g", "input": {"a": [1]}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": ""},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]}
            ]})
        );
    }

    #[test]
    fn settings_are_sent_or_reported() {
        let mut chat = Chat::new(vec![Message::text(Role::User, "hi")]);
        chat.tools = vec![Tool {
            name: "f".into(),
            description: None,
            parameters: None,
            strict: Some(true),
        }];
        chat.sampling = Sampling {
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            stop: vec!["END".into()],
        };
        chat.max_output_tokens = Some(77);
        chat.reasoning = Some(Reasoning {
            effort: "high".into(),
        });
        chat.response_format = Some(ResponseFormat::JsonObject);
        let (value, dropped) = body(&Task::Chat(chat.clone())).unwrap();
        assert_eq!(
            value,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 77,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"]})
        );
        assert_eq!(
            dropped,
            [
                "reasoning_effort",
                "response_format",
                "tools.function.strict"
            ]
        );

        let choices = [
            (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
            (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
            (Some(ToolChoice::Required), None, json!({"type": "any"})),
            (
                Some(ToolChoice::Named("f".into())),
                Some(false),
                json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
            ),
            (
                None,
                Some(false),
                json!({"type": "auto", "disable_parallel_tool_use": true}),
            ),
            (None, Some(true), Value::Null),
        ];
        for (choice, parallel, expected) in choices {
            chat.tool_choice = choice;
            chat.parallel_tool_calls = parallel;
            let value = chat_value(chat.clone());
            assert_eq!(value.get("tool_choice").unwrap_or(&Value::Null), &expected);
        }
    }

    #[test]
    fn a_prompt_is_one_user_turn() {
        let text = Text {
            prompt: "Once upon".into(),
            choices: None,
        };
        assert_eq!(
            body(&Task::Text(text)).unwrap().0,
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Once upon"}]}]})
        );
        let text = Text {
            prompt: "x".into(),
            choices: Some(2),
        };
        assert_eq!(
            body(&Task::Text(text)).unwrap_err(),
            TranslateError::Choices(2)
        );
    }

    #[test]
    fn what_cannot_be_sent_is_refused_with_its_param() {
        let user = || Message::text(Role::User, "hi");
        let assistant = |part: Part<'static>| Message {
            role: Role::Assistant,
            parts: vec![part],
        };
        let image = |url: &'static str| Message {
            role: Role::User,
            parts: vec![Part::Image { url: url.into() }],
        };
        let cases: Vec<(Vec<Message<'static>>, &str)> = vec![
            (
                vec![assistant(call("c", "f", "not json"))],
                "messages[0].tool_calls",
            ),
            (
                vec![user(), assistant(call("c", "f", "[1]"))],
                "messages[1].tool_calls",
            ),
            (
                vec![user(), assistant(call("c", "f", "{\"a\":"))],
                "messages[1].tool_calls",
            ),
            (
                vec![Message {
                    role: Role::Tool,
                    parts: vec![result(None, "r")],
                }],
                "messages[0].tool_call_id",
            ),
            (vec![image("ftp://x/cat.png")], "messages[0].content"),
            (vec![image("data:image/png,abc")], "messages[0].content"),
            (vec![image("data:;base64,abc")], "messages[0].content"),
            (vec![image("data:image/png;base64,")], "messages[0].content"),
            (
                vec![Message {
                    role: Role::System,
                    parts: vec![Part::Image {
                        url: "https://x/y".into(),
                    }],
                }],
                "messages[0].content",
            ),
            (
                vec![assistant(Part::Image {
                    url: "https://x/y".into(),
                })],
                "messages[0].content",
            ),
            (
                vec![assistant(result(Some("c"), "r"))],
                "messages[0].content",
            ),
            (
                vec![user(), Message::text(Role::Assistant, "")],
                "messages[1].content",
            ),
            (vec![Message::text(Role::System, "s")], "messages"),
            (vec![], "messages"),
        ];
        for (messages, param) in cases {
            let err = chat_err(Chat::new(messages.clone()));
            assert_eq!(err.param(), param, "{messages:?}");
        }
        let mut chat = Chat::new(vec![user()]);
        chat.choices = Some(3);
        assert_eq!(chat_err(chat.clone()), TranslateError::Choices(3));
        chat.choices = Some(1);
        chat.tools = vec![Tool {
            name: "f".into(),
            description: None,
            parameters: Some("{".into()),
            strict: None,
        }];
        assert_eq!(chat_err(chat), TranslateError::InvalidTool { index: 0 });
    }

    #[test]
    fn data_urls_are_read_leniently() {
        let source = image_source(0, "DATA:image/jpeg;charset=x;BASE64,/9j/").unwrap();
        assert_eq!(
            serde_json::to_value(source).unwrap(),
            json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/"})
        );
        assert!(image_source(0, "").is_err());
        assert!(image_source(0, "daté:").is_err());
    }
}
