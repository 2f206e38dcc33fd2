//! A Messages API request as the neutral request.

use std::borrow::Cow;

use crate::anthropic::{
    Block, Content, ImageSource, InputMessage, MessagesRequest, OutputFormat, Role as WireRole,
    ThinkingDef, ToolChoiceDef, ToolDef,
};
use crate::core::{
    Chat, Delivery, Message, Part, Reasoning, Request, ResponseFormat, Role, Sampling, Streaming,
    Task, Tool, ToolCall, ToolChoice, TranslateError,
};
use crate::openai::request::report_ignored;
use crate::text::sanitize;

/// The most characters of a caller's block or tool `type` repeated in an error.
const MAX_KIND_CHARS: usize = 40;

/// Thinking budgets below this many tokens read as effort `low`.
const LOW_EFFORT_BELOW: u64 = 4_096;
/// Thinking budgets below this many tokens (and not below [`LOW_EFFORT_BELOW`]) read as
/// effort `medium`; larger ones as `high`.
const MEDIUM_EFFORT_BELOW: u64 = 16_384;

/// The name given to `output_config.format`'s schema, which Anthropic leaves unnamed and
/// OpenAI-style surfaces require.
const OUTPUT_SCHEMA_NAME: &str = "output";

/// A Messages API request as the neutral request, moving its strings rather than copying them.
/// Checks what the Messages API requires, in its words.
///
/// - `system` becomes a system message; each user and assistant message keeps its blocks in
///   order, except that each `tool_result` block becomes a tool message of its own (Anthropic
///   puts results in user messages, the core in tool messages), between the user message's
///   other blocks before and after it.
/// - A `tool_result` with `is_error: true` reaches the model as its text prefixed `Error: `:
///   the core's results carry no error flag, and the model must still learn that the tool
///   failed.
/// - `thinking` and `redacted_thinking` blocks of earlier answers are dropped, and `thinking` is
///   reported ignored: the core carries no reasoning, and signed thinking is only meaningful to
///   the model that wrote it.
/// - `cache_control` marks are dropped unreported: they steer costs, not the answer.
/// - `document`, `search_result`, server tool blocks and server tools are refused, never
///   dropped: the core has no way to carry them, and dropping them would change the answer.
/// - `output_config.effort` becomes the reasoning effort, as given. Without it, `thinking`
///   `{"type": "enabled", "budget_tokens": n}` reads as effort `low` below 4,096 tokens,
///   `medium` below 16,384 and `high` above; `adaptive` and `disabled` leave the model's
///   default.
///
/// ```
/// use sf_models_bridge::anthropic::MessagesRequest;
/// use sf_models_bridge::core::{Part, Role, Task};
/// use sf_models_bridge::front::messages::to_core;
///
/// let body = br#"{"model": "claude", "max_tokens": 64, "system": "Be terse.",
///     "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}"#;
/// let request: MessagesRequest<'_> = serde_json::from_slice(body)?;
/// let Task::Chat(chat) = to_core(request).unwrap().task else { unreachable!() };
/// assert_eq!(chat.messages[0].role, Role::System);
/// assert_eq!(chat.messages[1].parts, [Part::Text("Hi".into())]);
/// assert_eq!(chat.max_output_tokens, Some(64));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_core(request: MessagesRequest<'_>) -> Result<Request<'_>, TranslateError> {
    let model = request.model.ok_or_else(|| required("model"))?;
    let max_tokens = request.max_tokens.ok_or_else(|| required("max_tokens"))?;
    let input = request.messages.ok_or_else(|| required("messages"))?;
    if input.is_empty() {
        return Err(TranslateError::NoMessages);
    }
    let mut ignored = request.ignored;
    let mut messages = Vec::with_capacity(input.len() + 1);
    if let Some(system) = request.system {
        messages.extend(system_message(system)?);
    }
    let last = input.len() - 1;
    for (index, message) in input.into_iter().enumerate() {
        push_message(index, index == last, message, &mut messages, &mut ignored)?;
    }
    let (tool_choice, parallel_tool_calls) = match request.tool_choice {
        Some(choice) => to_tool_choice(choice)?,
        None => (None, None),
    };
    let mut chat = Chat::new(messages);
    chat.tools = request
        .tools
        .into_iter()
        .enumerate()
        .map(|(index, tool)| to_tool(index, tool))
        .collect::<Result<_, _>>()?;
    chat.tool_choice = tool_choice;
    chat.parallel_tool_calls = parallel_tool_calls;
    chat.sampling = Sampling {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop_sequences,
    };
    let output_config = request.output_config.unwrap_or_default();
    chat.reasoning = to_reasoning(request.thinking, output_config.effort)?;
    chat.response_format = to_response_format(output_config.format)?;
    chat.max_output_tokens = Some(max_tokens);
    Ok(Request {
        model,
        task: Task::Chat(chat),
        delivery: Delivery {
            // Anthropic's streams always end with the token counts.
            stream: request.stream.then_some(Streaming {
                include_usage: true,
            }),
            ..Delivery::WHOLE
        },
        ignored,
    })
}

/// A field the Messages API requires, missing.
fn required(param: impl Into<Cow<'static, str>>) -> TranslateError {
    invalid(param, "Field required")
}

fn invalid(
    param: impl Into<Cow<'static, str>>,
    reason: impl Into<Cow<'static, str>>,
) -> TranslateError {
    TranslateError::Malformed {
        param: param.into(),
        problem: reason.into(),
    }
}

/// `system`, as one system message of text parts; none when it is empty.
fn system_message(system: Content<'_>) -> Result<Option<Message<'_>>, TranslateError> {
    let parts: Vec<Part<'_>> = match system {
        Content::Text(text) if text.is_empty() => return Ok(None),
        Content::Text(text) => vec![Part::Text(text)],
        Content::Blocks(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(index, block)| match (block.kind.as_ref(), block.text) {
                ("text", Some(text)) => Ok(Part::Text(text)),
                ("text", None) => Err(required(format!("system.{index}.text"))),
                (kind, _) => Err(invalid(
                    format!("system.{index}.type"),
                    format!(
                        "`{}` blocks are not allowed in `system`: send text blocks",
                        sanitize(kind, MAX_KIND_CHARS)
                    ),
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok((!parts.is_empty()).then_some(Message {
        role: Role::System,
        parts,
    }))
}

/// Appends `message` to `messages`: one message, or for a user message holding tool results,
/// its blocks in order as user messages and one tool message per result.
fn push_message<'a>(
    index: usize,
    is_last: bool,
    message: InputMessage<'a>,
    messages: &mut Vec<Message<'a>>,
    ignored: &mut Vec<Cow<'a, str>>,
) -> Result<(), TranslateError> {
    let role = match message.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let blocks = match message.content {
        Content::Text(text) => {
            messages.push(Message::text(role, text));
            return Ok(());
        }
        Content::Blocks(blocks) if blocks.is_empty() => {
            // An empty final assistant message asks for a fresh answer, as no message would.
            if role == Role::Assistant && is_last {
                return Ok(());
            }
            return Err(invalid(
                format!("messages.{index}.content"),
                "all messages must have non-empty content except for the optional final assistant message",
            ));
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (at, block) in blocks.into_iter().enumerate() {
        match to_part(index, at, role, block)? {
            Converted::Part(part) => parts.push(part),
            Converted::Result(result) => {
                if !parts.is_empty() {
                    messages.push(Message {
                        role,
                        parts: std::mem::take(&mut parts),
                    });
                }
                messages.push(Message {
                    role: Role::Tool,
                    parts: vec![result],
                });
            }
            Converted::Thinking => report_ignored(ignored, Cow::Borrowed("thinking")),
        }
    }
    if !parts.is_empty() {
        messages.push(Message { role, parts });
    }
    Ok(())
}

/// What one block becomes.
enum Converted<'a> {
    /// A part of its message.
    Part(Part<'a>),
    /// A tool result: a tool message of its own.
    Result(Part<'a>),
    /// Thinking of an earlier answer, which the core cannot carry.
    Thinking,
}

fn to_part<'a>(
    index: usize,
    at: usize,
    role: Role,
    block: Block<'a>,
) -> Result<Converted<'a>, TranslateError> {
    let field = |name: &str| format!("messages.{index}.content.{at}.{name}");
    let part = match (block.kind.as_ref(), role) {
        ("text", _) => Part::Text(block.text.ok_or_else(|| required(field("text")))?),
        ("image", _) => {
            let source = block
                .source
                .ok_or_else(|| required(field("source")))?;
            Part::Image {
                url: image_url(source.get()).map_err(|reason| invalid(field("source"), reason))?,
            }
        }
        ("tool_use", Role::Assistant) => {
            let (Some(id), Some(name), Some(input)) = (block.id, block.name, block.input) else {
                return Err(invalid(
                    format!("messages.{index}.content.{at}"),
                    "a `tool_use` block needs `id`, `name` and `input`",
                ));
            };
            Part::ToolCall(ToolCall {
                id,
                name,
                arguments: Cow::Borrowed(input.get()),
            })
        }
        ("tool_result", Role::User) => {
            let call_id = block
                .tool_use_id
                .ok_or_else(|| required(field("tool_use_id")))?;
            let content = match block.content {
                Some(content) => result_text(content.get())
                    .map_err(|reason| invalid(field("content"), reason))?,
                None => Cow::Borrowed(""),
            };
            let content = match (block.is_error, content.is_empty()) {
                (Some(true), true) => Cow::Borrowed("Error"),
                (Some(true), false) => Cow::Owned(format!("Error: {content}")),
                _ => content,
            };
            return Ok(Converted::Result(Part::ToolResult {
                call_id: Some(call_id),
                content,
            }));
        }
        ("thinking" | "redacted_thinking", _) => return Ok(Converted::Thinking),
        ("tool_use", _) => {
            return Err(invalid(
                field("type"),
                "`tool_use` blocks belong in assistant messages",
            ))
        }
        ("tool_result", _) => {
            return Err(invalid(
                field("type"),
                "`tool_result` blocks belong in user messages",
            ))
        }
        (kind, _) => {
            return Err(invalid(
                field("type"),
                format!(
                    "`{}` blocks cannot be carried to this model: the gateway translates text, image, tool_use and tool_result blocks only",
                    sanitize(kind, MAX_KIND_CHARS)
                ),
            ))
        }
    };
    Ok(Converted::Part(part))
}

/// An image `source` as a URL: a `data:` URL for base64 bytes.
fn image_url(source: &str) -> Result<Cow<'_, str>, Cow<'static, str>> {
    let source: ImageSource<'_> = serde_json::from_str(source)
        .map_err(|_| "must be `{\"type\": \"base64\", \"media_type\", \"data\"}` or `{\"type\": \"url\", \"url\"}`")?;
    match (
        source.kind.as_ref(),
        source.media_type,
        source.data,
        source.url,
    ) {
        ("base64", Some(media_type), Some(data), _) => {
            Ok(Cow::Owned(format!("data:{media_type};base64,{data}")))
        }
        ("base64", _, _, _) => Err("a `base64` source needs `media_type` and `data`".into()),
        ("url", _, _, Some(url)) => Ok(url),
        ("url", _, _, None) => Err("a `url` source needs `url`".into()),
        (kind, _, _, _) => Err(format!(
            "`{}` sources cannot be carried to this model: send `base64` or `url`",
            sanitize(kind, MAX_KIND_CHARS)
        )
        .into()),
    }
}

/// A `tool_result`'s `content` as text: the string, or its text blocks one per line. The core's
/// results are text: images and documents in a result are refused.
fn result_text(content: &str) -> Result<Cow<'_, str>, Cow<'static, str>> {
    let content: Content<'_> = serde_json::from_str(content)
        .map_err(|_| "must be a string or an array of content blocks")?;
    let blocks = match content {
        Content::Text(text) => return Ok(text),
        Content::Blocks(blocks) => blocks,
    };
    let mut texts = blocks
        .into_iter()
        .map(|block| match (block.kind.as_ref(), block.text) {
            ("text", Some(text)) => Ok(text),
            ("text", None) => Err(Cow::Borrowed("a text block has no `text`")),
            (kind, _) => Err(format!(
                "`{}` blocks in a tool result cannot be carried to this model: send text",
                sanitize(kind, MAX_KIND_CHARS)
            )
            .into()),
        });
    let Some(first) = texts.next() else {
        return Ok(Cow::Borrowed(""));
    };
    let mut joined = first?;
    for text in texts {
        let joined = joined.to_mut();
        joined.push('\n');
        joined.push_str(&text?);
    }
    Ok(joined)
}

fn to_tool(index: usize, tool: ToolDef<'_>) -> Result<Tool<'_>, TranslateError> {
    if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
        return Err(invalid(
            format!("tools.{index}.type"),
            format!(
                "`{}` tools cannot be offered to this model: the gateway translates client tools (`name`, `input_schema`) only",
                sanitize(kind, MAX_KIND_CHARS)
            ),
        ));
    }
    let name = tool
        .name
        .ok_or_else(|| required(format!("tools.{index}.name")))?;
    let schema = tool
        .input_schema
        .ok_or_else(|| required(format!("tools.{index}.input_schema")))?;
    Ok(Tool {
        name,
        description: tool.description,
        parameters: Some(Cow::Borrowed(schema.get())),
        strict: tool.strict,
    })
}

/// `tool_choice` as the core's choice and its parallel calls setting.
fn to_tool_choice(
    choice: ToolChoiceDef<'_>,
) -> Result<(Option<ToolChoice<'_>>, Option<bool>), TranslateError> {
    let tool_choice = match choice.kind.as_ref() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Named(choice.name.ok_or_else(|| required("tool_choice.name"))?),
        _ => {
            return Err(invalid(
                "tool_choice.type",
                "must be `auto`, `any`, `tool` or `none`",
            ))
        }
    };
    // Parallel calls are the default: only their refusal is a setting.
    let parallel = choice
        .disable_parallel_tool_use
        .filter(|disable| *disable)
        .map(|_| false);
    Ok((Some(tool_choice), parallel))
}

/// `output_config.effort`, else `thinking`, as the core's reasoning effort.
fn to_reasoning<'a>(
    thinking: Option<ThinkingDef<'a>>,
    effort: Option<Cow<'a, str>>,
) -> Result<Option<Reasoning<'a>>, TranslateError> {
    if let Some(effort) = effort {
        return Ok(Some(Reasoning { effort }));
    }
    let Some(thinking) = thinking else {
        return Ok(None);
    };
    let effort = match thinking.kind.as_ref() {
        "enabled" => match thinking.budget_tokens {
            Some(budget) if budget < LOW_EFFORT_BELOW => "low",
            Some(budget) if budget < MEDIUM_EFFORT_BELOW => "medium",
            Some(_) => "high",
            None => return Err(required("thinking.budget_tokens")),
        },
        "adaptive" | "disabled" => return Ok(None),
        _ => {
            return Err(invalid(
                "thinking.type",
                "must be `enabled`, `adaptive` or `disabled`",
            ))
        }
    };
    Ok(Some(Reasoning {
        effort: Cow::Borrowed(effort),
    }))
}

/// `output_config.format` as the core's response format.
fn to_response_format(
    format: Option<OutputFormat<'_>>,
) -> Result<Option<ResponseFormat<'_>>, TranslateError> {
    let Some(format) = format else {
        return Ok(None);
    };
    if format.kind != "json_schema" {
        return Err(invalid(
            "output_config.format.type",
            "must be `json_schema`",
        ));
    }
    let schema = format
        .schema
        .ok_or_else(|| required("output_config.format.schema"))?;
    Ok(Some(ResponseFormat::JsonSchema {
        name: Cow::Borrowed(OUTPUT_SCHEMA_NAME),
        description: None,
        schema: Some(Cow::Borrowed(schema.get())),
        // Anthropic's structured outputs always follow the schema.
        strict: Some(true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn core(body: &Value) -> Result<Request<'static>, TranslateError> {
        let text: &'static [u8] = serde_json::to_vec(body).unwrap().leak();
        to_core(serde_json::from_slice(text).unwrap())
    }

    fn chat(body: &Value) -> Chat<'static> {
        match core(body).unwrap().task {
            Task::Chat(chat) => chat,
            task => panic!("not a chat: {task:?}"),
        }
    }

    fn with_messages(messages: Value) -> Value {
        json!({"model": "claude", "max_tokens": 100, "messages": messages})
    }

    fn refusal(body: &Value) -> (String, String) {
        let error = core(body).unwrap_err();
        (error.param().into_owned(), error.to_string())
    }

    #[test]
    fn required_fields_are_named_as_anthropic_does() {
        let cases = [
            (json!({"max_tokens": 1, "messages": []}), "model"),
            (json!({"model": "m", "messages": []}), "max_tokens"),
            (json!({"model": "m", "max_tokens": 1}), "messages"),
        ];
        for (body, param) in cases {
            let (at, message) = refusal(&body);
            assert_eq!(at, param);
            assert_eq!(message, format!("{param}: Field required"));
        }
        assert_eq!(
            core(&json!({"model": "m", "max_tokens": 1, "messages": []})).unwrap_err(),
            TranslateError::NoMessages
        );
    }

    #[test]
    fn settings_reach_the_core() {
        let request = core(&json!({
            "model": "claude", "max_tokens": 2048, "stream": true, "temperature": 0.3,
            "top_p": 0.9, "top_k": 40, "stop_sequences": ["\n\nHuman:"], "metadata": {"user_id": "u"},
            "system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "B"}],
            "tools": [{"name": "get_weather", "description": "Weather", "strict": true,
                       "input_schema": {"type": "object", "properties": {}}},
                      {"type": "custom", "name": "g", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
            "messages": [{"role": "user", "content": "Hi"}]}))
        .unwrap();
        assert_eq!(request.model, "claude");
        assert_eq!(
            request.delivery.stream,
            Some(Streaming {
                include_usage: true
            })
        );
        assert_eq!(request.ignored, ["metadata"]);
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(chat.max_output_tokens, Some(2048));
        assert_eq!(
            chat.sampling,
            Sampling {
                temperature: Some(0.3),
                top_p: Some(0.9),
                top_k: Some(40),
                stop: vec!["\n\nHuman:".into()],
            }
        );
        assert_eq!(
            chat.messages[0],
            Message {
                role: Role::System,
                parts: vec![Part::Text("A".into()), Part::Text("B".into())]
            }
        );
        assert_eq!(chat.messages[1], Message::text(Role::User, "Hi"));
        assert_eq!(
            chat.tools[0],
            Tool {
                name: "get_weather".into(),
                description: Some("Weather".into()),
                // `json!` sorts keys; the caller's text is kept as it was.
                parameters: Some(r#"{"properties":{},"type":"object"}"#.into()),
                strict: Some(true),
            }
        );
        assert_eq!(chat.tools[1].name, "g");
        assert_eq!(
            chat.tool_choice,
            Some(ToolChoice::Named("get_weather".into()))
        );
        assert_eq!(chat.parallel_tool_calls, Some(false));
        assert_eq!(chat.reasoning, None);
    }

    #[test]
    fn tool_choices() {
        for (choice, expected, parallel) in [
            (json!({"type": "auto"}), ToolChoice::Auto, None),
            (
                json!({"type": "any", "disable_parallel_tool_use": false}),
                ToolChoice::Required,
                None,
            ),
            (json!({"type": "none"}), ToolChoice::None, None),
            (
                json!({"type": "auto", "disable_parallel_tool_use": true}),
                ToolChoice::Auto,
                Some(false),
            ),
        ] {
            let mut body = with_messages(json!([{"role": "user", "content": "x"}]));
            body["tool_choice"] = choice;
            let chat = chat(&body);
            assert_eq!(chat.tool_choice, Some(expected));
            assert_eq!(chat.parallel_tool_calls, parallel);
        }
    }

    #[test]
    fn every_block_type_of_a_conversation() {
        let chat = chat(&with_messages(json!([
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZGF0YQ=="},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "png"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a logo"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "timed out"}, {"type": "text", "text": "retry later"}]},
                {"type": "text", "text": "Go on."}]},
            {"role": "assistant", "content": []}
        ])));
        let expected = vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("What is this?".into()),
                    Part::Image {
                        url: "data:image/png;base64,iVBORw0KGgo=".into(),
                    },
                    Part::Image {
                        url: "https://example.com/a.png".into(),
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text("Checking.".into()),
                    Part::ToolCall(ToolCall {
                        id: "toolu_1".into(),
                        name: "lookup".into(),
                        arguments: r#"{"q":"png"}"#.into(),
                    }),
                    Part::ToolCall(ToolCall {
                        id: "toolu_2".into(),
                        name: "lookup".into(),
                        arguments: "{}".into(),
                    }),
                ],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: Some("toolu_1".into()),
                    content: "a logo".into(),
                }],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: Some("toolu_2".into()),
                    content: "Error: timed out\nretry later".into(),
                }],
            },
            Message::text(Role::User, "Go on."),
        ];
        assert_eq!(chat.messages, expected);
    }

    #[test]
    fn thinking_in_the_history_is_reported_and_an_assistant_turn_of_it_alone_dropped() {
        let request = core(&with_messages(json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "eA=="}]},
            {"role": "user", "content": "Again"}])))
        .unwrap();
        assert_eq!(request.ignored, ["thinking"]);
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(
            chat.messages,
            [
                Message::text(Role::User, "Hi"),
                Message::text(Role::User, "Again")
            ]
        );
    }

    #[test]
    fn text_around_tool_results_keeps_its_order() {
        let chat = chat(&with_messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "before"},
            {"type": "tool_result", "tool_use_id": "t", "is_error": true},
            {"type": "text", "text": "after"}]}])));
        assert_eq!(
            chat.messages,
            [
                Message::text(Role::User, "before"),
                Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: Some("t".into()),
                        content: "Error".into()
                    }]
                },
                Message::text(Role::User, "after"),
            ]
        );
    }

    #[test]
    fn blocks_the_core_cannot_carry_are_refused() {
        let block = |role: &str, block: Value| {
            refusal(&with_messages(
                json!([{"role": role, "content": [{"type": "text", "text": "x"}, block]}]),
            ))
        };
        let cases = [
            (
                block(
                    "user",
                    json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}),
                ),
                "messages.0.content.1.type",
                "`document` blocks cannot be carried",
            ),
            (
                block(
                    "user",
                    json!({"type": "search_result", "source": "https://x", "title": "t", "content": []}),
                ),
                "messages.0.content.1.type",
                "`search_result` blocks",
            ),
            (
                block(
                    "assistant",
                    json!({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}),
                ),
                "messages.0.content.1.type",
                "`server_tool_use` blocks",
            ),
            (
                block(
                    "user",
                    json!({"type": "image", "source": {"type": "file", "file_id": "f"}}),
                ),
                "messages.0.content.1.source",
                "`file` sources cannot be carried",
            ),
            (
                block(
                    "user",
                    json!({"type": "image", "source": {"type": "base64", "data": "x"}}),
                ),
                "messages.0.content.1.source",
                "needs `media_type` and `data`",
            ),
            (
                block(
                    "user",
                    json!({"type": "tool_result", "tool_use_id": "t",
                                     "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}),
                ),
                "messages.0.content.1.content",
                "`image` blocks in a tool result",
            ),
            (
                block("user", json!({"type": "tool_result", "content": "r"})),
                "messages.0.content.1.tool_use_id",
                "Field required",
            ),
            (
                block(
                    "user",
                    json!({"type": "tool_use", "id": "t", "name": "f", "input": {}}),
                ),
                "messages.0.content.1.type",
                "belong in assistant messages",
            ),
            (
                block(
                    "assistant",
                    json!({"type": "tool_result", "tool_use_id": "t"}),
                ),
                "messages.0.content.1.type",
                "belong in user messages",
            ),
            (
                block(
                    "assistant",
                    json!({"type": "tool_use", "id": "t", "name": "f"}),
                ),
                "messages.0.content.1",
                "needs `id`, `name` and `input`",
            ),
            (
                block("user", json!({"type": "text"})),
                "messages.0.content.1.text",
                "Field required",
            ),
            (
                refusal(&with_messages(json!([{"role": "user", "content": []}]))),
                "messages.0.content",
                "non-empty content",
            ),
        ];
        for ((param, message), want_param, want_words) in cases {
            assert_eq!(param, want_param, "{message}");
            assert!(message.starts_with(&format!("{want_param}: ")), "{message}");
            assert!(message.contains(want_words), "{message}");
        }
    }

    #[test]
    fn tools_and_settings_the_core_cannot_carry_are_refused() {
        let mut body = with_messages(json!([{"role": "user", "content": "x"}]));
        let cases = [
            (
                "tools",
                json!([{"type": "web_search_20250305", "name": "web_search"}]),
                "tools.0.type",
            ),
            ("tools", json!([{"name": "f"}]), "tools.0.input_schema"),
            (
                "tools",
                json!([{"input_schema": {"type": "object"}}]),
                "tools.0.name",
            ),
            ("tool_choice", json!({"type": "tool"}), "tool_choice.name"),
            ("tool_choice", json!({"type": "some"}), "tool_choice.type"),
            (
                "thinking",
                json!({"type": "enabled"}),
                "thinking.budget_tokens",
            ),
            ("thinking", json!({"type": "on"}), "thinking.type"),
            (
                "system",
                json!([{"type": "image", "source": {}}]),
                "system.0.type",
            ),
            (
                "output_config",
                json!({"format": {"type": "xml"}}),
                "output_config.format.type",
            ),
        ];
        for (field, value, param) in cases {
            let saved = body.clone();
            body[field] = value;
            assert_eq!(refusal(&body).0, param, "{field}");
            body = saved;
        }
    }

    #[test]
    fn thinking_and_effort_become_reasoning() {
        let effort = |thinking: Option<Value>, output_config: Option<Value>| {
            let mut body = with_messages(json!([{"role": "user", "content": "x"}]));
            if let Some(thinking) = thinking {
                body["thinking"] = thinking;
            }
            if let Some(output_config) = output_config {
                body["output_config"] = output_config;
            }
            chat(&body).reasoning.map(|r| r.effort.into_owned())
        };
        let enabled = |budget: u64| Some(json!({"type": "enabled", "budget_tokens": budget}));
        assert_eq!(effort(enabled(1024), None).as_deref(), Some("low"));
        assert_eq!(effort(enabled(10_000), None).as_deref(), Some("medium"));
        assert_eq!(effort(enabled(31_999), None).as_deref(), Some("high"));
        assert_eq!(effort(Some(json!({"type": "adaptive"})), None), None);
        assert_eq!(effort(Some(json!({"type": "disabled"})), None), None);
        assert_eq!(
            effort(
                Some(json!({"type": "adaptive"})),
                Some(json!({"effort": "xhigh"}))
            )
            .as_deref(),
            Some("xhigh")
        );
        assert_eq!(effort(None, None), None);
    }

    #[test]
    fn output_format_becomes_a_strict_schema() {
        let mut body = with_messages(json!([{"role": "user", "content": "x"}]));
        body["output_config"] =
            json!({"format": {"type": "json_schema", "schema": {"type": "object"}}});
        assert_eq!(
            chat(&body).response_format,
            Some(ResponseFormat::JsonSchema {
                name: "output".into(),
                description: None,
                schema: Some(r#"{"type":"object"}"#.into()),
                strict: Some(true),
            })
        );
    }
}
