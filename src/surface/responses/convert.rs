//! Neutral requests → Responses API bodies. Pure.

use serde_json::value::RawValue;

use super::request::{
    Content, FunctionTool, Input, InputItem, ReasoningParam, ResponsesRequest, TextFormat,
    TextParam, ToolChoice,
};
use crate::core::{
    Chat, Message, Part, ResponseFormat, Role, Text, Tool, ToolChoice as CoreToolChoice,
    TranslateError,
};
use crate::surface::one_choice;

/// The effort that turns reasoning off: observed to be best left out rather than sent.
const NO_EFFORT: &str = "none";

/// The body of `/responses` for a conversation, as `model`. Tools, images, sampling, reasoning
/// and the answer's format all have a field here; what has none is listed by
/// [`dropped_settings`]. Settings that clash on the model (`temperature` while reasoning) are
/// sent as asked: the upstream's 400 says what to change better than a guess here could.
pub fn chat_body<'r>(
    model: &'r str,
    chat: &'r Chat<'_>,
    stream: bool,
) -> Result<ResponsesRequest<'r>, TranslateError> {
    one_choice(chat.choices)?;
    let tools = chat
        .tools
        .iter()
        .enumerate()
        .map(|(index, tool)| function_tool(index, tool))
        .collect::<Result<_, _>>()?;
    let mut body = ResponsesRequest::new(model, Input::Items(input_items(&chat.messages)?));
    body.tools = tools;
    body.tool_choice = chat.tool_choice.as_ref().map(tool_choice);
    body.parallel_tool_calls = chat.parallel_tool_calls;
    body.max_output_tokens = chat.max_output_tokens;
    body.temperature = chat.sampling.temperature;
    body.top_p = chat.sampling.top_p;
    body.reasoning = chat
        .reasoning
        .as_ref()
        .map(|reasoning| reasoning.effort.as_ref())
        .filter(|effort| *effort != NO_EFFORT)
        .map(|effort| ReasoningParam { effort });
    body.text = chat
        .response_format
        .as_ref()
        .map(text_format)
        .transpose()?
        .map(|format| TextParam { format });
    body.stream = stream;
    Ok(body)
}

/// The body of `/responses` for a prompt: the prompt is the whole `input`.
pub fn text_body<'r>(
    model: &'r str,
    text: &'r Text<'_>,
    stream: bool,
) -> Result<ResponsesRequest<'r>, TranslateError> {
    one_choice(text.choices)?;
    let mut body = ResponsesRequest::new(model, Input::Text(&text.prompt));
    body.stream = stream;
    Ok(body)
}

/// The Chat Completions names of the settings `chat` carries that the Responses API has no
/// field for: stop sequences and top-k sampling.
pub fn dropped_settings(chat: &Chat<'_>) -> Vec<&'static str> {
    let sampling = &chat.sampling;
    [
        ("stop", !sampling.stop.is_empty()),
        ("top_k", sampling.top_k.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// The messages as input items, in order: each message's text and images become one message
/// item, and each tool call or result its own item where it stands, as the Responses API
/// keeps them apart.
fn input_items<'r>(messages: &'r [Message<'_>]) -> Result<Vec<InputItem<'r>>, TranslateError> {
    let mut items = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let role = match message.role {
            Role::System => Some("system"),
            Role::Developer => Some("developer"),
            Role::User => Some("user"),
            Role::Assistant => Some("assistant"),
            // A tool message holds only results, which are items of their own.
            Role::Tool => None,
        };
        let mut content = Vec::new();
        for part in &message.parts {
            let piece = match part {
                // Chat Completions callers send `""` beside tool calls: no text, not a turn.
                Part::Text(text) if message.role == Role::Assistant && text.is_empty() => continue,
                Part::Text(text) if message.role == Role::Assistant => Content::OutputText { text },
                Part::Text(text) => Content::InputText { text },
                Part::Image { url } => Content::InputImage { image_url: url },
                Part::ToolCall(call) => {
                    flush(&mut items, role, &mut content);
                    items.push(InputItem::FunctionCall {
                        call_id: &call.id,
                        name: &call.name,
                        arguments: &call.arguments,
                    });
                    continue;
                }
                Part::ToolResult {
                    call_id,
                    content: output,
                } => {
                    let Some(call_id) = call_id else {
                        return Err(TranslateError::ToolResultId { index });
                    };
                    flush(&mut items, role, &mut content);
                    items.push(InputItem::FunctionCallOutput { call_id, output });
                    continue;
                }
            };
            if role.is_none() {
                return Err(TranslateError::ToolResultId { index });
            }
            content.push(piece);
        }
        flush(&mut items, role, &mut content);
    }
    Ok(items)
}

/// Ends the message item being filled, if it holds anything.
fn flush<'r>(
    items: &mut Vec<InputItem<'r>>,
    role: Option<&'static str>,
    content: &mut Vec<Content<'r>>,
) {
    if let (Some(role), false) = (role, content.is_empty()) {
        items.push(InputItem::Message {
            role,
            content: std::mem::take(content),
        });
    }
}

fn function_tool<'r>(index: usize, tool: &'r Tool<'_>) -> Result<FunctionTool<'r>, TranslateError> {
    let parameters = match &tool.parameters {
        Some(schema) => Some(raw_json(schema).ok_or(TranslateError::InvalidTool { index })?),
        None => None,
    };
    Ok(FunctionTool {
        kind: "function",
        name: &tool.name,
        description: tool.description.as_deref(),
        parameters,
        // Chat Completions' default, which the Responses API does not share.
        strict: tool.strict.unwrap_or(false),
    })
}

fn tool_choice<'r>(choice: &'r CoreToolChoice<'_>) -> ToolChoice<'r> {
    match choice {
        CoreToolChoice::Auto => ToolChoice::Mode("auto"),
        CoreToolChoice::None => ToolChoice::Mode("none"),
        CoreToolChoice::Required => ToolChoice::Mode("required"),
        CoreToolChoice::Named(name) => ToolChoice::Function {
            kind: "function",
            name,
        },
    }
}

fn text_format<'r>(format: &'r ResponseFormat<'_>) -> Result<TextFormat<'r>, TranslateError> {
    Ok(match format {
        ResponseFormat::Text => TextFormat::Text,
        ResponseFormat::JsonObject => TextFormat::JsonObject,
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        } => TextFormat::JsonSchema {
            name,
            description: description.as_deref(),
            schema: match schema {
                Some(schema) => {
                    Some(raw_json(schema).ok_or(TranslateError::Setting("response_format"))?)
                }
                None => None,
            },
            strict: *strict,
        },
    })
}

/// JSON text, to be written as it is. Fronts hand over the caller's own JSON, so this only
/// fails on a front's mistake.
fn raw_json(text: &str) -> Option<&RawValue> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Reasoning, Request, Sampling, Task, ToolCall};
    use crate::front;
    use serde_json::{json, Value};

    const MODEL: &str = "sfdc_ai__DefaultGPT5";

    /// A Chat Completions body, through the front.
    fn request(body: &Value) -> Request<'static> {
        let text: &'static [u8] = serde_json::to_vec(body).unwrap().leak();
        front::chat::to_core(serde_json::from_slice(text).unwrap()).unwrap()
    }

    /// A Chat Completions body, through the front, as the `/responses` body.
    fn body(chat_completions: &Value, stream: bool) -> Result<Value, TranslateError> {
        let request = request(chat_completions);
        let Task::Chat(chat) = &request.task else {
            panic!("not a chat")
        };
        chat_body(MODEL, chat, stream).map(|body| serde_json::to_value(body).unwrap())
    }

    #[test]
    fn every_field_is_translated() {
        let got = body(
            &json!({"model": "gpt-5", "messages": [
                {"role": "system", "content": "s"},
                {"role": "developer", "content": [{"type": "text", "text": "d"}]},
                {"role": "user", "content": [{"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "r2"}]},
                {"role": "assistant", "content": "done"}],
                "tools": [
                    {"type": "function", "function": {"name": "f", "description": "F",
                     "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}, "strict": true}},
                    {"type": "function", "function": {"name": "g"}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "parallel_tool_calls": false, "max_completion_tokens": 100, "temperature": 0.5,
                "top_p": 0.9, "reasoning_effort": "high", "stop": ["x"],
                "response_format": {"type": "json_schema", "json_schema": {"name": "out",
                    "description": "D", "schema": {"type": "object"}, "strict": true}}}),
            true,
        )
        .unwrap();
        assert_eq!(
            got,
            json!({
                "model": MODEL,
                "input": [
                    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "s"}]},
                    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA"}]},
                    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"},
                    {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "r1"},
                    {"type": "function_call_output", "call_id": "call_2", "output": "r2"},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}],
                "tools": [
                    {"type": "function", "name": "f", "description": "F",
                     "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}, "strict": true},
                    {"type": "function", "name": "g", "parameters": null, "strict": false}],
                "tool_choice": {"type": "function", "name": "f"},
                "parallel_tool_calls": false,
                "max_output_tokens": 100,
                "temperature": 0.5,
                "top_p": 0.9,
                "reasoning": {"effort": "high"},
                "text": {"format": {"type": "json_schema", "name": "out", "description": "D",
                                    "schema": {"type": "object"}, "strict": true}},
                "stream": true
            })
        );
    }

    #[test]
    fn schemas_are_written_as_the_caller_wrote_them() {
        // Raw JSON, not a string holding JSON, and not re-ordered or re-formatted.
        let request = request(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": [2.50]}}}]}),
        );
        let Task::Chat(chat) = &request.task else {
            panic!("not a chat")
        };
        let mut chat = chat.clone();
        chat.tools[0].parameters = Some(r#"{ "z": 1,  "a": 2.50 }"#.into());
        let text = String::from_utf8(
            serde_json::to_vec(&chat_body(MODEL, &chat, false).unwrap()).unwrap(),
        )
        .unwrap();
        assert!(
            text.contains(r#""parameters":{ "z": 1,  "a": 2.50 },"strict":false"#),
            "{text}"
        );
        chat.tools[0].parameters = Some("{not json".into());
        assert_eq!(
            chat_body(MODEL, &chat, false).unwrap_err(),
            TranslateError::InvalidTool { index: 0 }
        );
    }

    #[test]
    fn choices_formats_and_efforts() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let with = |key: &str, value: Value| {
            let mut request = base.clone();
            request[key] = value;
            body(&request, false).unwrap()
        };
        for (choice, want) in [
            (json!("auto"), json!("auto")),
            (json!("none"), json!("none")),
            (json!("required"), json!("required")),
        ] {
            assert_eq!(with("tool_choice", choice)["tool_choice"], want);
        }
        assert_eq!(
            with("response_format", json!({"type": "json_object"}))["text"],
            json!({"format": {"type": "json_object"}})
        );
        assert_eq!(
            with("response_format", json!({"type": "text"}))["text"],
            json!({"format": {"type": "text"}})
        );
        let minimal = with(
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "n"}}),
        );
        assert_eq!(
            minimal["text"],
            json!({"format": {"type": "json_schema", "name": "n"}})
        );
        assert_eq!(
            with("reasoning_effort", json!("minimal"))["reasoning"],
            json!({"effort": "minimal"})
        );
        // An explicit `none` is left out, per the spec's observations.
        assert!(with("reasoning_effort", json!("none"))
            .get("reasoning")
            .is_none());
        // `max_tokens` is the older name of the same limit.
        assert_eq!(with("max_tokens", json!(9))["max_output_tokens"], 9);
        // Nothing given, nothing sent: the model's defaults apply.
        assert_eq!(
            body(&base, false).unwrap(),
            json!({"model": MODEL, "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]})
        );
    }

    #[test]
    fn temperature_goes_with_reasoning_for_the_upstream_to_judge() {
        let got = body(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "temperature": 0.2, "reasoning_effort": "high"}),
            false,
        )
        .unwrap();
        assert_eq!(
            (
                got["temperature"].clone(),
                got["reasoning"]["effort"].clone()
            ),
            (json!(0.2), json!("high"))
        );
    }

    #[test]
    fn stop_and_top_k_are_reported_dropped() {
        let mut chat = Chat::new(vec![Message::text(Role::User, "x")]);
        assert!(dropped_settings(&chat).is_empty());
        chat.sampling = Sampling {
            temperature: Some(1.0),
            top_p: Some(1.0),
            top_k: Some(5),
            stop: vec!["END".into()],
        };
        chat.reasoning = Some(Reasoning {
            effort: "low".into(),
        });
        chat.max_output_tokens = Some(3);
        assert_eq!(dropped_settings(&chat), ["stop", "top_k"]);
        let body = serde_json::to_value(chat_body(MODEL, &chat, false).unwrap()).unwrap();
        assert!(body.get("stop").is_none() && body.get("top_k").is_none());
    }

    #[test]
    fn what_cannot_be_sent_is_refused() {
        let refused = |chat: &Chat<'_>| chat_body(MODEL, chat, false).unwrap_err();
        let mut chat = Chat::new(vec![Message::text(Role::User, "x")]);
        chat.choices = Some(2);
        assert_eq!(refused(&chat), TranslateError::Choices(2));
        let result = Message {
            role: Role::Tool,
            parts: vec![Part::ToolResult {
                call_id: None,
                content: "r".into(),
            }],
        };
        let chat = Chat::new(vec![Message::text(Role::User, "x"), result]);
        let error = refused(&chat);
        assert_eq!(error, TranslateError::ToolResultId { index: 1 });
        assert_eq!(error.param(), "messages[1].tool_call_id");
        let stray = Chat::new(vec![Message::text(Role::Tool, "r")]);
        assert_eq!(refused(&stray), TranslateError::ToolResultId { index: 0 });
        let mut chat = Chat::new(vec![Message::text(Role::User, "x")]);
        chat.response_format = Some(ResponseFormat::JsonSchema {
            name: "n".into(),
            description: None,
            schema: Some("[".into()),
            strict: None,
        });
        assert_eq!(refused(&chat), TranslateError::Setting("response_format"));
    }

    #[test]
    fn tool_results_and_calls_stand_where_they_are_in_any_message() {
        // As an Anthropic front hands them over: results inside a user turn, beside its text.
        let chat = Chat::new(vec![
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text("let me see".into()),
                    Part::ToolCall(ToolCall {
                        id: "t1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult {
                        call_id: Some("t1".into()),
                        content: "42".into(),
                    },
                    Part::Text("and so?".into()),
                ],
            },
        ]);
        let body = serde_json::to_value(chat_body(MODEL, &chat, false).unwrap()).unwrap();
        assert_eq!(
            body["input"],
            json!([
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me see"}]},
                {"type": "function_call", "call_id": "t1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "t1", "output": "42"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and so?"}]}])
        );
    }

    #[test]
    fn a_prompt_is_the_whole_input() {
        let text = Text {
            prompt: "Once upon".into(),
            choices: None,
        };
        assert_eq!(
            serde_json::to_value(text_body(MODEL, &text, true).unwrap()).unwrap(),
            json!({"model": MODEL, "input": "Once upon", "stream": true})
        );
        let batch = Text {
            prompt: "x".into(),
            choices: Some(3),
        };
        assert_eq!(
            text_body(MODEL, &batch, false).unwrap_err(),
            TranslateError::Choices(3)
        );
    }
}
