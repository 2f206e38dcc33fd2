//! A Responses API request as the neutral request.

use std::borrow::Cow;

use crate::core::{
    Chat, Delivery, Message, Part, Reasoning, Request, ResponseFormat, Role, Sampling, Streaming,
    Task, Tool, ToolCall, ToolChoice, TranslateError,
};
use crate::openai::request::report_ignored;
use crate::openai::responses::{
    ContentPartDef, FormatDef, Input, InputItem, ItemContent, ResponsesRequest, ResponsesTool,
    ToolChoiceDef,
};
use crate::text::sanitize;

/// The most characters of an unsupported item's, part's or tool's `type` repeated in an error.
const MAX_KIND_CHARS: usize = 40;

/// A Responses API request as the neutral request, moving its strings rather than copying them.
///
/// `instructions` become a leading system message, a string `input` one user message. Input
/// items: `message`s keep their role; `function_call`s join the assistant message before them
/// (consecutive calls are one turn); each `function_call_output` is a tool message; `reasoning`
/// items are dropped and reported as ignored (`input.reasoning`): they hold the provider's own,
/// mostly encrypted, record of its thinking, which no other model can read, and leaving them out
/// changes no message of the conversation. Everything that cannot be carried is refused: other
/// item and tool types (the provider runs those tools itself), images by file id, and the
/// parameters that point at state OpenAI keeps between requests.
///
/// ```
/// use sf_models_bridge::core::{Part, Role, Task};
/// use sf_models_bridge::front::responses::to_core;
///
/// let body = br#"{"model": "gpt-5", "instructions": "Be terse.", "input": [
///     {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
///     {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
///     {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]}"#;
/// let Task::Chat(chat) = to_core(serde_json::from_slice(body)?).unwrap().task else { unreachable!() };
/// let roles: Vec<Role> = chat.messages.iter().map(|m| m.role).collect();
/// assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::Tool]);
/// assert!(matches!(&chat.messages[2].parts[0], Part::ToolCall(call) if call.name == "weather"));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_core(request: ResponsesRequest<'_>) -> Result<Request<'_>, TranslateError> {
    if let Some(name) = request.server_state {
        return Err(TranslateError::ServerState(name));
    }
    let mut ignored = request.ignored;
    let mut messages = Vec::new();
    if let Some(instructions) = request.instructions {
        messages.push(Message::text(Role::System, instructions));
    }
    match request.input {
        Input::Text(text) => messages.push(Message::text(Role::User, text)),
        Input::Items(items) if items.is_empty() => return Err(TranslateError::NoItems),
        Input::Items(items) => {
            messages.reserve(items.len());
            for (index, item) in items.into_iter().enumerate() {
                add_item(&mut messages, &mut ignored, index, item)?;
            }
        }
    }
    let mut chat = Chat::new(messages);
    chat.tools = request
        .tools
        .into_iter()
        .enumerate()
        .map(|(index, tool)| to_tool(index, tool))
        .collect::<Result<_, _>>()?;
    chat.tool_choice = request.tool_choice.map(to_tool_choice).transpose()?;
    chat.parallel_tool_calls = request.parallel_tool_calls;
    chat.sampling = Sampling {
        temperature: request.temperature,
        top_p: request.top_p,
        ..Sampling::default()
    };
    chat.reasoning = request
        .reasoning
        .and_then(|reasoning| reasoning.effort)
        .map(|effort| Reasoning { effort });
    chat.max_output_tokens = request.max_output_tokens;
    chat.response_format = request
        .text
        .and_then(|text| text.format)
        .map(to_response_format)
        .transpose()?;
    Ok(Request {
        model: request.model,
        task: Task::Chat(chat),
        delivery: Delivery {
            // The Responses API always ends a stream with the usage (in `response.completed`).
            stream: request.stream.then_some(Streaming {
                include_usage: true,
            }),
            ..Delivery::WHOLE
        },
        ignored,
    })
}

/// What an input item is, read before it is taken apart.
enum ItemKind {
    Message,
    FunctionCall,
    FunctionCallOutput,
    Reasoning,
}

fn item_kind(index: usize, item: &InputItem<'_>) -> Result<ItemKind, TranslateError> {
    match (item.kind.as_deref(), &item.role) {
        // `type` may be left out of a message.
        (Some("message"), _) | (None, Some(_)) => Ok(ItemKind::Message),
        (Some("function_call"), _) => Ok(ItemKind::FunctionCall),
        (Some("function_call_output"), _) => Ok(ItemKind::FunctionCallOutput),
        (Some("reasoning"), _) => Ok(ItemKind::Reasoning),
        (Some(kind), _) => Err(TranslateError::UnsupportedItem {
            index,
            kind: sanitize(kind, MAX_KIND_CHARS),
        }),
        (None, None) => Err(missing(format!("input[{index}].type"))),
    }
}

fn add_item<'a>(
    messages: &mut Vec<Message<'a>>,
    ignored: &mut Vec<Cow<'a, str>>,
    index: usize,
    item: InputItem<'a>,
) -> Result<(), TranslateError> {
    match item_kind(index, &item)? {
        ItemKind::Message => messages.push(to_message(index, item)?),
        ItemKind::FunctionCall => {
            let call = Part::ToolCall(to_call(index, item)?);
            match messages.last_mut() {
                Some(last) if last.role == Role::Assistant => last.parts.push(call),
                _ => messages.push(Message {
                    role: Role::Assistant,
                    parts: vec![call],
                }),
            }
        }
        ItemKind::FunctionCallOutput => messages.push(to_result(index, item)?),
        ItemKind::Reasoning => report_ignored(ignored, Cow::Borrowed("input.reasoning")),
    }
    Ok(())
}

fn to_message(index: usize, item: InputItem<'_>) -> Result<Message<'_>, TranslateError> {
    let role = match item.role.as_deref() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("system") => Role::System,
        Some("developer") => Role::Developer,
        Some(_) => {
            return Err(TranslateError::Malformed {
                param: format!("input[{index}].role").into(),
                problem: "must be `user`, `assistant`, `system` or `developer`".into(),
            })
        }
        None => return Err(missing(format!("input[{index}].role"))),
    };
    let parts = match item.content {
        Some(ItemContent::Text(text)) => vec![Part::Text(text)],
        Some(ItemContent::Parts(parts)) if !parts.is_empty() => parts
            .into_iter()
            .map(|part| to_part(index, part))
            .collect::<Result<_, _>>()?,
        Some(ItemContent::Parts(_)) | None => {
            return Err(missing(format!("input[{index}].content")))
        }
        Some(ItemContent::Other) => return Err(not_content(index, "content")),
    };
    Ok(Message { role, parts })
}

/// A message's content part: text (the caller's, the model's, or a refusal it gave) or an image
/// by URL; any other part (files, audio) is refused, as dropping it would change the answer.
fn to_part(index: usize, part: ContentPartDef<'_>) -> Result<Part<'_>, TranslateError> {
    match part.kind.as_deref() {
        Some("input_text" | "output_text") => part.text.map(Part::Text).ok_or_else(|| {
            TranslateError::Malformed {
                param: format!("input[{index}].content").into(),
                problem: "a text part needs `text`".into(),
            }
        }),
        Some("refusal") => part.refusal.map(Part::Text).ok_or_else(|| {
            TranslateError::Malformed {
                param: format!("input[{index}].content").into(),
                problem: "a `refusal` part needs `refusal`".into(),
            }
        }),
        Some("input_image") => match (part.image_url, part.file_id) {
            (Some(url), _) => Ok(Part::Image { url }),
            (None, Some(_)) => Err(TranslateError::Malformed {
                param: format!("input[{index}].content").into(),
                problem: "`input_image` by `file_id` is not supported here: the file is in OpenAI's file store; send `image_url` (an https or data URL)".into(),
            }),
            (None, None) => Err(TranslateError::Malformed {
                param: format!("input[{index}].content").into(),
                problem: "an `input_image` part needs `image_url`".into(),
            }),
        },
        Some(kind) => Err(TranslateError::UnsupportedItemPart {
            index,
            field: "content",
            kind: sanitize(kind, MAX_KIND_CHARS),
        }),
        None => Err(missing(format!("input[{index}].content[].type"))),
    }
}

fn to_call(index: usize, item: InputItem<'_>) -> Result<ToolCall<'_>, TranslateError> {
    let Some(id) = item.call_id else {
        return Err(missing(format!("input[{index}].call_id")));
    };
    let Some(name) = item.name else {
        return Err(missing(format!("input[{index}].name")));
    };
    let Some(arguments) = item.arguments else {
        return Err(missing(format!("input[{index}].arguments")));
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

fn to_result(index: usize, item: InputItem<'_>) -> Result<Message<'_>, TranslateError> {
    let Some(call_id) = item.call_id else {
        return Err(missing(format!("input[{index}].call_id")));
    };
    let content = match item.output {
        Some(ItemContent::Text(text)) => text,
        Some(ItemContent::Parts(parts)) => join_texts(index, parts)?,
        Some(ItemContent::Other) => return Err(not_content(index, "output")),
        None => return Err(missing(format!("input[{index}].output"))),
    };
    Ok(Message {
        role: Role::Tool,
        parts: vec![Part::ToolResult {
            call_id: Some(call_id),
            content,
        }],
    })
}

/// A function call output given as parts: its text parts, joined; images and files are refused,
/// as a tool result here is text.
fn join_texts(
    index: usize,
    parts: Vec<ContentPartDef<'_>>,
) -> Result<Cow<'_, str>, TranslateError> {
    let mut joined = Cow::Borrowed("");
    for part in parts {
        match (part.kind.as_deref(), part.text) {
            (Some("input_text" | "output_text"), Some(text)) if joined.is_empty() => joined = text,
            (Some("input_text" | "output_text"), Some(text)) => joined.to_mut().push_str(&text),
            (Some("input_text" | "output_text"), None) => {
                return Err(TranslateError::Malformed {
                    param: format!("input[{index}].output").into(),
                    problem: "a text part needs `text`".into(),
                })
            }
            (Some(kind), _) => {
                return Err(TranslateError::UnsupportedItemPart {
                    index,
                    field: "output",
                    kind: sanitize(kind, MAX_KIND_CHARS),
                })
            }
            (None, _) => return Err(missing(format!("input[{index}].output[].type"))),
        }
    }
    Ok(joined)
}

fn to_tool(index: usize, tool: ResponsesTool<'_>) -> Result<Tool<'_>, TranslateError> {
    match tool.kind.as_deref() {
        Some("function") => {}
        Some(kind) => {
            return Err(TranslateError::UnsupportedTool {
                index,
                kind: sanitize(kind, MAX_KIND_CHARS),
            })
        }
        None => return Err(missing(format!("tools[{index}].type"))),
    }
    let Some(name) = tool.name else {
        return Err(missing(format!("tools[{index}].name")));
    };
    Ok(Tool {
        name,
        description: tool.description,
        parameters: tool
            .parameters
            .map(|parameters| Cow::Borrowed(parameters.get())),
        strict: tool.strict,
    })
}

fn to_tool_choice(choice: ToolChoiceDef<'_>) -> Result<ToolChoice<'_>, TranslateError> {
    match choice {
        ToolChoiceDef::Mode(mode) => match mode.as_ref() {
            "auto" => return Ok(ToolChoice::Auto),
            "none" => return Ok(ToolChoice::None),
            "required" => return Ok(ToolChoice::Required),
            _ => {}
        },
        ToolChoiceDef::Object {
            kind: Some(kind),
            name: Some(name),
        } if kind == "function" => return Ok(ToolChoice::Named(name)),
        ToolChoiceDef::Object { .. } => {}
    }
    Err(TranslateError::Malformed {
        param: "tool_choice".into(),
        problem:
            "must be `auto`, `none`, `required` or `{\"type\": \"function\", \"name\": ...}` here"
                .into(),
    })
}

fn to_response_format(format: FormatDef<'_>) -> Result<ResponseFormat<'_>, TranslateError> {
    match format.kind.as_deref() {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let Some(name) = format.name else {
                return Err(missing("text.format.name".into()));
            };
            Ok(ResponseFormat::JsonSchema {
                name,
                description: format.description,
                schema: format.schema.map(|schema| Cow::Borrowed(schema.get())),
                strict: format.strict,
            })
        }
        _ => Err(TranslateError::Malformed {
            param: "text.format.type".into(),
            problem: "must be `text`, `json_object` or `json_schema`".into(),
        }),
    }
}

fn missing(param: String) -> TranslateError {
    TranslateError::Malformed {
        param: param.into(),
        problem: "missing".into(),
    }
}

fn not_content(index: usize, field: &'static str) -> TranslateError {
    TranslateError::Malformed {
        param: format!("input[{index}].{field}").into(),
        problem: "must be a string or an array of content parts".into(),
    }
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

    #[test]
    fn a_string_input_is_one_user_message_after_the_instructions() {
        let request =
            core(&json!({"model": "m", "input": "Hi", "instructions": "Be terse."})).unwrap();
        assert_eq!(request.model, "m");
        assert_eq!(request.delivery, Delivery::WHOLE);
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(
            chat.messages,
            [
                Message::text(Role::System, "Be terse."),
                Message::text(Role::User, "Hi")
            ]
        );
    }

    #[test]
    fn every_setting_reaches_the_core() {
        let request = core(&json!({"model": "m", "input": "x", "stream": true,
            "tools": [{"type": "function", "name": "f", "description": "d",
                       "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": "required", "parallel_tool_calls": false, "max_output_tokens": 64,
            "temperature": 0.2, "top_p": 0.8, "reasoning": {"effort": "high", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "s", "description": "sd",
                                "schema": {"type": "object"}, "strict": true}},
            "store": false, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
            "metadata": {}, "safety_identifier": "u", "client_metadata": {}, "truncation": "auto",
            "service_tier": "auto", "user": "u"}))
        .unwrap();
        assert_eq!(
            request.delivery.stream,
            Some(Streaming {
                include_usage: true
            })
        );
        let mut ignored: Vec<&str> = request.ignored.iter().map(|name| name.as_ref()).collect();
        ignored.sort_unstable();
        assert_eq!(
            ignored,
            [
                "client_metadata",
                "include",
                "metadata",
                "prompt_cache_key",
                "reasoning.summary",
                "safety_identifier",
                "service_tier",
                "store",
                "truncation",
                "user"
            ]
        );
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(
            chat.tools,
            [Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: Some(r#"{"type":"object"}"#.into()),
                strict: Some(true)
            }]
        );
        assert_eq!(chat.tool_choice, Some(ToolChoice::Required));
        assert_eq!(chat.parallel_tool_calls, Some(false));
        assert_eq!(chat.max_output_tokens, Some(64));
        assert_eq!(chat.sampling.temperature, Some(0.2));
        assert_eq!(chat.sampling.top_p, Some(0.8));
        assert_eq!(
            chat.reasoning,
            Some(Reasoning {
                effort: "high".into()
            })
        );
        assert_eq!(
            chat.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "s".into(),
                description: Some("sd".into()),
                schema: Some(r#"{"type":"object"}"#.into()),
                strict: Some(true)
            })
        );
    }

    #[test]
    fn tool_choices_and_formats() {
        let choice = |value: Value| {
            chat(&json!({"model": "m", "input": "x", "tool_choice": value})).tool_choice
        };
        assert_eq!(choice(json!("auto")), Some(ToolChoice::Auto));
        assert_eq!(choice(json!("none")), Some(ToolChoice::None));
        assert_eq!(
            choice(json!({"type": "function", "name": "f"})),
            Some(ToolChoice::Named("f".into()))
        );
        let format = |value: Value| {
            chat(&json!({"model": "m", "input": "x", "text": {"format": value}})).response_format
        };
        assert_eq!(format(json!({"type": "text"})), Some(ResponseFormat::Text));
        assert_eq!(
            format(json!({"type": "json_object"})),
            Some(ResponseFormat::JsonObject)
        );
        assert_eq!(format(Value::Null), None);
    }

    #[test]
    fn items_become_messages() {
        let chat = chat(&json!({"model": "m", "input": [
            {"type": "message", "role": "developer", "content": "rules"},
            {"role": "system", "content": [{"type": "input_text", "text": "sys"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "auto"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"},
            {"type": "message", "role": "assistant", "status": "completed", "id": "msg_1",
             "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "tw"}, {"type": "input_text", "text": "o"}]},
            {"type": "function_call", "call_id": "c3", "name": "f", "arguments": "{}"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}]}));
        let call = |id: &'static str, name: &'static str, arguments: &'static str| {
            Part::ToolCall(ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: arguments.into(),
            })
        };
        let result = |id: &'static str, content: &'static str| Message {
            role: Role::Tool,
            parts: vec![Part::ToolResult {
                call_id: Some(id.into()),
                content: content.into(),
            }],
        };
        assert_eq!(
            chat.messages,
            [
                Message::text(Role::Developer, "rules"),
                Message::text(Role::System, "sys"),
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::Text("look".into()),
                        Part::Image {
                            url: "data:image/png;base64,AA".into()
                        }
                    ]
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![
                        Part::Text("Let me check.".into()),
                        call("c1", "f", r#"{"a":1}"#),
                        call("c2", "g", "{}")
                    ]
                },
                result("c1", "one"),
                result("c2", "two"),
                Message {
                    role: Role::Assistant,
                    parts: vec![call("c3", "f", "{}")]
                },
                Message::text(Role::Assistant, "No."),
            ]
        );
    }

    #[test]
    fn reasoning_items_are_reported_once() {
        let request = core(&json!({"model": "m", "input": [
            {"type": "reasoning", "summary": []}, {"role": "user", "content": "x"},
            {"type": "reasoning", "summary": []}]}))
        .unwrap();
        assert_eq!(request.ignored, ["input.reasoning"]);
    }

    #[test]
    fn what_cannot_be_carried_is_refused_with_its_place() {
        let cases = [
            (json!({"input": []}), "input", "must hold at least one item"),
            (
                json!({"input": "x", "previous_response_id": "resp_1"}),
                "previous_response_id",
                "state kept on the server",
            ),
            (
                json!({"input": "x", "conversation": "conv_1"}),
                "conversation",
                "state kept on the server",
            ),
            (
                json!({"input": "x", "prompt": {"id": "pmpt_1"}}),
                "prompt",
                "state kept on the server",
            ),
            (
                json!({"input": "x", "background": true}),
                "background",
                "state kept on the server",
            ),
            (
                json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input[0]",
                "`item_reference` are not supported",
            ),
            (
                json!({"input": [{"type": "computer_call_output", "output": {}}]}),
                "input[0]",
                "`computer_call_output`",
            ),
            (
                json!({"input": [{"type": "x\n\u{1b}[31m".repeat(20)}]}),
                "input[0]",
                "x  [31mx",
            ),
            (
                json!({"input": [{"content": "x"}]}),
                "input[0].type",
                "missing",
            ),
            (
                json!({"input": [{"role": "tool", "content": "x"}]}),
                "input[0].role",
                "must be `user`",
            ),
            (
                json!({"input": [{"role": "user"}]}),
                "input[0].content",
                "missing",
            ),
            (
                json!({"input": [{"role": "user", "content": []}]}),
                "input[0].content",
                "missing",
            ),
            (
                json!({"input": [{"role": "user", "content": {"a": 1}}]}),
                "input[0].content",
                "must be a string or an array",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}),
                "input[0].content",
                "needs `text`",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}),
                "input[0].content",
                "`file_id` is not supported",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}),
                "input[0].content",
                "needs `image_url`",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]}),
                "input[0].content",
                "`input_file` parts",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"text": "x"}]}]}),
                "input[0].content[].type",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
                "input[0].call_id",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}),
                "input[0].name",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
                "input[0].arguments",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call_output", "output": "x"}]}),
                "input[0].call_id",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call_output", "call_id": "c"}]}),
                "input[0].output",
                "missing",
            ),
            (
                json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "u"}]}]}),
                "input[0].output",
                "`input_image` parts",
            ),
            (
                json!({"input": "x", "tools": [{"type": "web_search"}]}),
                "tools[0]",
                "`web_search` tools are not supported",
            ),
            (
                json!({"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "custom", "name": "g"}]}),
                "tools[1]",
                "`custom` tools",
            ),
            (
                json!({"input": "x", "tools": [{"name": "f"}]}),
                "tools[0].type",
                "missing",
            ),
            (
                json!({"input": "x", "tools": [{"type": "function"}]}),
                "tools[0].name",
                "missing",
            ),
            (
                json!({"input": "x", "tool_choice": "sometimes"}),
                "tool_choice",
                "must be `auto`",
            ),
            (
                json!({"input": "x", "tool_choice": {"type": "web_search"}}),
                "tool_choice",
                "must be `auto`",
            ),
            (
                json!({"input": "x", "tool_choice": {"type": "function"}}),
                "tool_choice",
                "must be `auto`",
            ),
            (
                json!({"input": "x", "text": {"format": {"type": "yaml"}}}),
                "text.format.type",
                "must be `text`",
            ),
            (
                json!({"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}),
                "text.format.name",
                "missing",
            ),
        ];
        for (mut body, param, message) in cases {
            body["model"] = json!("m");
            let error = core(&body).unwrap_err();
            assert_eq!(error.param(), param, "{body}");
            let text = error.to_string();
            assert!(text.contains(message), "{body}: {text}");
            assert!(text.len() < 400, "{text}");
        }
    }
}
