//! The Chat Completions front: `POST /v1/chat/completions`.

use std::borrow::Cow;

use super::sse::StreamKind;
use super::{json_with_capacity, usable_id, AnswerCtx, OpenAiGeneration};
use crate::core::{
    Chat, Delivery, Generation, Message, Part, Reasoning, Request, ResponseFormat, Role, Sampling,
    Streaming, Task, Tool, ToolCall, ToolChoice, TranslateError,
};
use crate::openai::{
    self, AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, ChatMessage,
    ContentPart, MessageContent, ResponseFormatDef, ToolChoiceDef, ToolDef,
};
use crate::text::sanitize;

/// The most characters of an unsupported part's `type` repeated in the error.
const MAX_PART_KIND_CHARS: usize = 40;

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatCompletions;

impl OpenAiGeneration for ChatCompletions {
    const ID_PREFIX: &'static str = "chatcmpl-";
    const STREAM: StreamKind = StreamKind::Chat;
    type Wire<'b> = ChatCompletionRequest<'b>;

    fn to_core<'b>(wire: Self::Wire<'b>) -> Result<Request<'b>, TranslateError> {
        to_core(wire)
    }

    fn json(answer: &Generation<'_>, ctx: &AnswerCtx<'_>) -> Result<Vec<u8>, serde_json::Error> {
        completion_json(answer, ctx)
    }
}

/// A Chat Completions request as the neutral request, moving its strings rather than copying
/// them. `max_completion_tokens` wins over its older name `max_tokens` when both are sent.
///
/// ```
/// use sf_models_bridge::core::{Part, Role, Task};
/// use sf_models_bridge::front::chat::to_core;
/// use sf_models_bridge::openai::ChatCompletionRequest;
///
/// let body = br#"{"model": "gpt-4o-mini", "messages": [
///     {"role": "developer", "content": "Be terse."},
///     {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}"#;
/// let request: ChatCompletionRequest<'_> = serde_json::from_slice(body)?;
/// let Task::Chat(chat) = to_core(request).unwrap().task else { unreachable!() };
/// assert_eq!(chat.messages[0].role, Role::Developer);
/// assert_eq!(chat.messages[1].parts, [Part::Text("Hi".into())]);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_core(request: ChatCompletionRequest<'_>) -> Result<Request<'_>, TranslateError> {
    if request.messages.is_empty() {
        return Err(TranslateError::NoMessages);
    }
    let tools = request
        .tools
        .into_iter()
        .enumerate()
        .map(|(index, tool)| to_tool(index, tool))
        .collect::<Result<_, _>>()?;
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| to_message(index, message))
        .collect::<Result<_, _>>()?;
    let chat = Chat {
        messages,
        tools,
        tool_choice: request.tool_choice.map(to_tool_choice),
        parallel_tool_calls: request.parallel_tool_calls,
        sampling: Sampling {
            temperature: request.temperature,
            top_p: request.top_p,
            top_k: None,
            stop: request.stop,
        },
        reasoning: request.reasoning_effort.map(|effort| Reasoning { effort }),
        max_output_tokens: request.max_completion_tokens.or(request.max_tokens),
        response_format: request.response_format.map(to_response_format),
        choices: request.n,
    };
    Ok(Request {
        model: request.model,
        task: Task::Chat(chat),
        delivery: Delivery {
            stream: request.stream.then_some(Streaming {
                include_usage: request.stream_options.include_usage,
            }),
            ..Delivery::WHOLE
        },
        ignored: request.ignored,
    })
}

fn to_tool_choice(choice: ToolChoiceDef<'_>) -> ToolChoice<'_> {
    match choice {
        ToolChoiceDef::Auto => ToolChoice::Auto,
        ToolChoiceDef::None => ToolChoice::None,
        ToolChoiceDef::Required => ToolChoice::Required,
        ToolChoiceDef::Function(name) => ToolChoice::Named(name),
    }
}

fn to_response_format(format: ResponseFormatDef<'_>) -> ResponseFormat<'_> {
    match format {
        ResponseFormatDef::Text => ResponseFormat::Text,
        ResponseFormatDef::JsonObject => ResponseFormat::JsonObject,
        ResponseFormatDef::JsonSchema(schema) => ResponseFormat::JsonSchema {
            name: schema.name,
            description: schema.description,
            schema: schema.schema.map(|schema| Cow::Borrowed(schema.get())),
            strict: schema.strict,
        },
    }
}

fn to_tool(index: usize, tool: ToolDef<'_>) -> Result<Tool<'_>, TranslateError> {
    let function = tool
        .function
        .filter(|_| tool.kind.as_deref().is_none_or(|kind| kind == "function"));
    let Some(function) = function else {
        return Err(TranslateError::InvalidTool { index });
    };
    let Some(name) = function.name else {
        return Err(TranslateError::InvalidTool { index });
    };
    Ok(Tool {
        name,
        description: function.description,
        parameters: function
            .parameters
            .map(|parameters| Cow::Borrowed(parameters.get())),
        strict: function.strict,
    })
}

fn to_message(index: usize, message: ChatMessage<'_>) -> Result<Message<'_>, TranslateError> {
    let role = match message.role {
        openai::Role::System => Role::System,
        openai::Role::Developer => Role::Developer,
        openai::Role::User => Role::User,
        openai::Role::Assistant => Role::Assistant,
        openai::Role::Tool => Role::Tool,
        // Legacy function calling predates tool ids; no surface can carry it.
        openai::Role::Function => {
            return Err(TranslateError::ToolMessage {
                index,
                role: "function",
            })
        }
    };
    if message.function_call.is_some() {
        return Err(TranslateError::ToolCalls { index });
    }
    let calls = message.tool_calls.unwrap_or_default();
    let mut parts = match message.content {
        Some(MessageContent::Text(text)) => vec![Part::Text(text)],
        Some(MessageContent::Parts(parts)) if !parts.is_empty() => to_parts(index, parts)?,
        Some(MessageContent::Parts(_)) | None if calls.is_empty() => {
            return Err(TranslateError::MissingContent { index })
        }
        Some(MessageContent::Parts(_)) | None => Vec::with_capacity(calls.len()),
    };
    if role == Role::Tool {
        let content = join_texts(index, parts)?;
        parts = vec![Part::ToolResult {
            call_id: message.tool_call_id,
            content,
        }];
    }
    for call in calls {
        let (Some(id), Some(function)) = (call.id, call.function) else {
            return Err(TranslateError::InvalidToolCall { index });
        };
        let Some(name) = function.name else {
            return Err(TranslateError::InvalidToolCall { index });
        };
        parts.push(Part::ToolCall(ToolCall {
            id,
            name,
            arguments: function.arguments.unwrap_or(Cow::Borrowed("")),
        }));
    }
    Ok(Message { role, parts })
}

/// Content parts, in order: text and images; any other part (audio, files) is refused, as
/// dropping it would change the answer.
fn to_parts(index: usize, parts: Vec<ContentPart<'_>>) -> Result<Vec<Part<'_>>, TranslateError> {
    parts
        .into_iter()
        .map(
            |part| match (part.kind.as_ref(), part.text, part.image_url) {
                ("text", Some(text), _) => Ok(Part::Text(text)),
                ("text", None, _) => Err(TranslateError::EmptyTextPart { index }),
                ("image_url", _, Some(image)) => Ok(Part::Image { url: image.url }),
                (kind, _, _) => Err(TranslateError::UnsupportedPart {
                    index,
                    kind: sanitize(kind, MAX_PART_KIND_CHARS),
                }),
            },
        )
        .collect()
}

/// The text of a tool message: its text parts, joined.
fn join_texts(index: usize, parts: Vec<Part<'_>>) -> Result<Cow<'_, str>, TranslateError> {
    let mut texts = parts.into_iter().map(|part| match part {
        Part::Text(text) => Ok(text),
        Part::Image { .. } | Part::ToolCall(_) | Part::ToolResult { .. } => {
            Err(TranslateError::UnsupportedPart {
                index,
                kind: "image_url".to_owned(),
            })
        }
    });
    let Some(first) = texts.next() else {
        return Ok(Cow::Borrowed(""));
    };
    let mut joined = first?;
    for text in texts {
        joined.to_mut().push_str(&text?);
    }
    Ok(joined)
}

/// The JSON body of a `chat.completion`.
pub fn completion_json(
    answer: &Generation<'_>,
    ctx: &AnswerCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let tool_calls: Vec<openai::ToolCallOut<'_>> = answer
        .tool_calls
        .iter()
        .map(openai::ToolCallOut::from)
        .collect();
    let completion = ChatCompletion {
        id: usable_id(answer.id).unwrap_or(ctx.fallback_id),
        object: "chat.completion",
        created: ctx.created,
        model: ctx.model,
        choices: [ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: (!answer.text.is_empty() || tool_calls.is_empty()).then_some(answer.text),
                refusal: None,
                tool_calls: &tool_calls,
            },
            finish_reason: openai::finish_reason(answer.finish),
            logprobs: None,
        }],
        usage: answer.usage.map(openai::Usage::from),
    };
    json_with_capacity(&completion, answer.text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Finish, Usage};
    use serde_json::{json, Value};

    fn answer(id: Option<&str>) -> Generation<'_> {
        Generation {
            id,
            text: "Hello",
            tool_calls: vec![],
            finish: Finish::Length,
            usage: Some(Usage {
                input_tokens: 1,
                output_tokens: 2,
                total_tokens: 3,
                cached_tokens: None,
                cache_write_tokens: None,
                reasoning_tokens: None,
            }),
        }
    }

    pub(crate) const CTX: AnswerCtx<'static> = AnswerCtx {
        fallback_id: "chatcmpl-local",
        created: 1700000000,
        model: "gpt-4o-mini",
        delivery: Delivery::WHOLE,
    };

    #[test]
    fn chat_completion_shape() {
        let body: Value =
            serde_json::from_slice(&completion_json(&answer(Some("up-1")), &CTX).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"id": "up-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": null},
                                "finish_reason": "length", "logprobs": null}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
        );
    }

    #[test]
    fn tool_calls_are_rendered_with_null_content() {
        let mut answer = answer(None);
        answer.text = "";
        answer.finish = Finish::ToolCalls;
        answer.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }];
        let body: Value = serde_json::from_slice(&completion_json(&answer, &CTX).unwrap()).unwrap();
        assert_eq!(
            body["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        );
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    }

    fn core(body: &Value) -> Result<Request<'static>, TranslateError> {
        let text: &'static [u8] = serde_json::to_vec(body).unwrap().leak();
        to_core(serde_json::from_slice(text).unwrap())
    }

    #[test]
    fn tools_calls_and_results_reach_the_core() {
        let request = core(&json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}, {"type": "text", "text": "s"}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "functions": [{"name": "g"}]}))
        .unwrap();
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(
            chat.messages[0].parts,
            [
                Part::Text("a".into()),
                Part::Image {
                    url: "data:x".into()
                }
            ]
        );
        assert_eq!(
            chat.messages[1].parts,
            [Part::ToolCall(ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{}".into()
            })]
        );
        assert_eq!(
            chat.messages[2].parts,
            [Part::ToolResult {
                call_id: Some("c1".into()),
                content: "rs".into()
            }]
        );
        // In the body's order (`json!` sorts keys: `functions` comes first).
        let names: Vec<&str> = chat.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["g", "f"]);
        assert_eq!(
            chat.tools[1].parameters.as_deref(),
            Some(r#"{"type":"object"}"#)
        );
    }

    #[test]
    fn malformed_tools_and_calls_are_refused() {
        let cases = [
            (
                json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]}]}),
                "messages[0].tool_calls",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}),
                "tools",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "functions": [{}]}),
                "tools",
            ),
            (
                json!({"model": "m", "messages": [{"role": "function", "content": "r"}]}),
                "messages[0].role",
            ),
        ];
        for (body, param) in cases {
            assert_eq!(core(&body).unwrap_err().param(), param, "{body}");
        }
    }

    #[test]
    fn settings_reach_the_core() {
        let request = core(&json!({"model": "m",
            "messages": [{"role": "developer", "content": "d"}, {"role": "system", "content": "s"}],
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 5, "max_completion_tokens": 7,
            "stop": "END", "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": true, "reasoning_effort": "low",
            "response_format": {"type": "json_schema",
                "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}}}))
        .unwrap();
        assert!(request.ignored.is_empty(), "{:?}", request.ignored);
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        let roles: Vec<Role> = chat.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::Developer, Role::System]);
        assert_eq!(
            chat.sampling,
            Sampling {
                temperature: Some(0.2),
                top_p: Some(0.9),
                top_k: None,
                stop: vec!["END".into()]
            }
        );
        assert_eq!(chat.max_output_tokens, Some(7), "the newer name wins");
        assert_eq!(chat.tool_choice, Some(ToolChoice::Named("f".into())));
        assert_eq!(chat.parallel_tool_calls, Some(true));
        assert_eq!(
            chat.reasoning,
            Some(Reasoning {
                effort: "low".into()
            })
        );
        assert_eq!(
            chat.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "n".into(),
                description: None,
                schema: Some(r#"{"type":"object"}"#.into()),
                strict: Some(true)
            })
        );
        let request = core(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                   "max_tokens": 5, "response_format": {"type": "json_object"}}),
        )
        .unwrap();
        let Task::Chat(chat) = request.task else {
            panic!("not a chat")
        };
        assert_eq!(chat.max_output_tokens, Some(5));
        assert_eq!(chat.response_format, Some(ResponseFormat::JsonObject));
    }
}
