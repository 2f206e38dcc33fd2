//! Pure translation: OpenAI requests → Models API requests, and extracted answers → OpenAI
//! responses. No I/O, no clock, no globals: the caller passes in `created`, ids and names.
//!
//! ```
//! use sf_models_bridge::openai::ChatCompletionRequest;
//! use sf_models_bridge::translate::chat_request;
//!
//! let body = br#"{"model": "gpt-4o-mini", "messages": [
//!     {"role": "developer", "content": "Be terse."},
//!     {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}"#;
//! let request: ChatCompletionRequest<'_> = serde_json::from_slice(body)?;
//! let upstream = chat_request(&request).unwrap();
//! assert_eq!(
//!     serde_json::to_value(&upstream)?,
//!     serde_json::json!({"messages": [{"role": "system", "content": "Be terse."},
//!                                     {"role": "user", "content": "Hi"}]})
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;

use crate::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, ChatMessage, Completion,
    CompletionChoice, CompletionRequest, MessageContent, Prompt, Role,
};
use crate::salesforce::{ChatGenerationsRequest, Extracted, GenerationsRequest, Message};
use crate::text::sanitize;

/// The most characters of an unsupported part's `type` repeated in the error.
const MAX_PART_KIND_CHARS: usize = 40;

/// A request the Models API cannot honour. Each variant says what to change; none is ever
/// silently dropped when dropping it would change the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// `messages` is empty.
    #[error("`messages` must hold at least one message")]
    NoMessages,
    /// A `tool` or `function` message.
    #[error("messages[{index}]: role `{role}` is not supported: the Salesforce Models API has no tool calling")]
    ToolMessage {
        /// The message's position.
        index: usize,
        /// `tool` or `function`.
        role: &'static str,
    },
    /// An assistant message that carries tool calls.
    #[error("messages[{index}]: assistant tool calls are not supported: the Salesforce Models API has no tool calling")]
    ToolCalls {
        /// The message's position.
        index: usize,
    },
    /// `tools` or `functions` offered.
    #[error(
        "`tools` and `functions` are not supported: the Salesforce Models API has no tool calling"
    )]
    Tools,
    /// `n` other than 1.
    #[error("`n` = {0} is not supported: the Salesforce Models API returns exactly one choice")]
    Choices(u64),
    /// An image, audio, file or other non-text content part.
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
}

impl TranslateError {
    /// The request parameter at fault, for the error envelope's `param`.
    pub fn param(&self) -> Cow<'static, str> {
        match self {
            TranslateError::NoMessages => "messages".into(),
            TranslateError::ToolMessage { index, .. } => format!("messages[{index}].role").into(),
            TranslateError::ToolCalls { index } => format!("messages[{index}].tool_calls").into(),
            TranslateError::Tools => "tools".into(),
            TranslateError::Choices(_) => "n".into(),
            TranslateError::UnsupportedPart { index, .. }
            | TranslateError::EmptyTextPart { index }
            | TranslateError::MissingContent { index } => {
                format!("messages[{index}].content").into()
            }
            TranslateError::PromptBatch(_) | TranslateError::PromptTokens => "prompt".into(),
            TranslateError::Echo => "echo".into(),
        }
    }
}

fn check_choices(n: Option<u64>) -> Result<(), TranslateError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(TranslateError::Choices(n)),
    }
}

/// `POST /v1/chat/completions` → the body of `chat-generations`.
pub fn chat_request<'r>(
    request: &'r ChatCompletionRequest<'_>,
) -> Result<ChatGenerationsRequest<'r>, TranslateError> {
    if request.tools > 0 {
        return Err(TranslateError::Tools);
    }
    check_choices(request.n)?;
    if request.messages.is_empty() {
        return Err(TranslateError::NoMessages);
    }
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(index, message)| translate_message(index, message))
        .collect::<Result<_, _>>()?;
    Ok(ChatGenerationsRequest { messages })
}

fn translate_message<'r>(
    index: usize,
    message: &'r ChatMessage<'_>,
) -> Result<Message<'r>, TranslateError> {
    let role = match message.role {
        // The Models API has no `developer` role; it means what `system` means.
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => {
            return Err(TranslateError::ToolMessage {
                index,
                role: "tool",
            })
        }
        Role::Function => {
            return Err(TranslateError::ToolMessage {
                index,
                role: "function",
            })
        }
    };
    let has_tool_calls = message
        .tool_calls
        .as_ref()
        .is_some_and(|calls| !calls.is_empty())
        || message.function_call.is_some();
    if has_tool_calls {
        return Err(TranslateError::ToolCalls { index });
    }
    let content = match &message.content {
        Some(MessageContent::Text(text)) => Cow::Borrowed(text.as_ref()),
        Some(MessageContent::Parts(parts)) => join_text_parts(index, parts)?,
        None => return Err(TranslateError::MissingContent { index }),
    };
    Ok(Message { role, content })
}

/// Text parts become one string, as the Models API takes a plain string; any other part would
/// change the answer if dropped, so it is refused.
fn join_text_parts<'r>(
    index: usize,
    parts: &'r [crate::openai::ContentPart<'_>],
) -> Result<Cow<'r, str>, TranslateError> {
    let mut texts = parts
        .iter()
        .map(|part| match (part.kind.as_ref(), &part.text) {
            ("text", Some(text)) => Ok(text.as_ref()),
            ("text", None) => Err(TranslateError::EmptyTextPart { index }),
            (kind, _) => Err(TranslateError::UnsupportedPart {
                index,
                kind: sanitize(kind, MAX_PART_KIND_CHARS),
            }),
        });
    let Some(first) = texts.next() else {
        return Err(TranslateError::MissingContent { index });
    };
    let first = first?;
    let Some(second) = texts.next() else {
        return Ok(Cow::Borrowed(first));
    };
    let mut joined = String::from(first);
    joined.push_str(second?);
    for text in texts {
        joined.push_str(text?);
    }
    Ok(Cow::Owned(joined))
}

/// `POST /v1/completions` → the body of `generations`.
pub fn completion_request<'r>(
    request: &'r CompletionRequest<'_>,
) -> Result<GenerationsRequest<'r>, TranslateError> {
    check_choices(request.n)?;
    if request.echo {
        return Err(TranslateError::Echo);
    }
    match &request.prompt {
        Prompt::Text(text) => Ok(GenerationsRequest {
            prompt: Cow::Borrowed(text.as_ref()),
        }),
        Prompt::Batch(count) => Err(TranslateError::PromptBatch(*count)),
        Prompt::Tokens => Err(TranslateError::PromptTokens),
    }
}

/// The longest upstream answer id passed on.
const MAX_ID_BYTES: usize = 128;

/// The upstream's answer id, when it is at most 128 bytes of ASCII letters, digits, `-`, `_`,
/// `.` and `:`; `None` otherwise, for the caller's fallback to stand in. Every event of a stream
/// repeats the id, so an unbounded one would multiply the answer's size, and clients put ids in
/// logs and URLs.
pub fn usable_id(id: Option<&str>) -> Option<&str> {
    id.filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_ID_BYTES
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    })
}

/// What a response needs besides the answer: chosen by the caller, never read from a clock here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCtx<'a> {
    /// The id to use when the upstream sent none.
    pub fallback_id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: &'a str,
}

/// The JSON body of a `chat.completion`.
pub fn chat_completion_json(
    answer: &Extracted<'_>,
    ctx: &ResponseCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let completion = ChatCompletion {
        id: usable_id(answer.id).unwrap_or(ctx.fallback_id),
        object: "chat.completion",
        created: ctx.created,
        model: ctx.model,
        choices: [ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: answer.text,
                refusal: None,
            },
            finish_reason: answer.finish_reason,
            logprobs: None,
        }],
        usage: answer.usage,
    };
    to_json(&completion, answer.text.len())
}

/// The JSON body of a `text_completion`.
pub fn text_completion_json(
    answer: &Extracted<'_>,
    ctx: &ResponseCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let choices = [CompletionChoice {
        text: answer.text,
        index: 0,
        logprobs: None,
        finish_reason: Some(answer.finish_reason),
    }];
    let completion = Completion {
        id: usable_id(answer.id).unwrap_or(ctx.fallback_id),
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices: &choices,
        usage: answer.usage,
    };
    to_json(&completion, answer.text.len())
}

/// Serializes a response into a buffer sized for its text up front: growing a `Vec` from empty
/// to a few kilobytes would reallocate and copy it a dozen times.
fn to_json(value: &impl serde::Serialize, text_len: usize) -> Result<Vec<u8>, serde_json::Error> {
    // The envelope is a few hundred bytes; escapes make the text a little longer.
    let mut json = Vec::with_capacity(text_len + text_len / 16 + 512);
    serde_json::to_writer(&mut json, value)?;
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Usage;
    use crate::salesforce::ExtractPath;
    use serde_json::{json, Value};

    fn chat(body: &Value) -> Result<Value, TranslateError> {
        let text = serde_json::to_vec(body).unwrap();
        let request: ChatCompletionRequest<'_> = serde_json::from_slice(&text).unwrap();
        chat_request(&request).map(|r| serde_json::to_value(r).unwrap())
    }

    fn completion(body: &Value) -> Result<Value, TranslateError> {
        let text = serde_json::to_vec(body).unwrap();
        let request: CompletionRequest<'_> = serde_json::from_slice(&text).unwrap();
        completion_request(&request).map(|r| serde_json::to_value(r).unwrap())
    }

    #[test]
    fn spec_fixture_request_is_produced() {
        let fixture: Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/tests/fixtures/chat-generations.request.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let openai = json!({"model": "gpt-4o-mini", "temperature": 0.5,
                            "messages": fixture["messages"].clone()});
        assert_eq!(
            chat(&openai).unwrap(),
            json!({"messages": fixture["messages"]})
        );
    }

    #[test]
    fn unsupported_part_kinds_are_bounded_and_one_line() {
        // The caller's `type` went into the message, and so into the `request refused` log,
        // with its line breaks and escapes intact.
        let kind = format!("x\nINFO forged\x1b[2J{}", "k".repeat(100));
        let body =
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": kind}]}]});
        let message = chat(&body).unwrap_err().to_string();
        assert!(!message.chars().any(char::is_control), "{message}");
        assert!(message.contains("`x INFO forged [2Jkkkk"), "{message}");
        assert!(message.contains("k…` parts are not supported"), "{message}");
    }

    #[test]
    fn roles_map_and_parts_join() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "s"},
            {"role": "developer", "content": "d"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "x", "tool_calls": []},
            {"role": "user", "content": ""}]});
        assert_eq!(
            chat(&body).unwrap(),
            json!({"messages": [
                {"role": "system", "content": "s"}, {"role": "system", "content": "d"},
                {"role": "user", "content": "ab"}, {"role": "assistant", "content": "x"},
                {"role": "user", "content": ""}]})
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_with_its_param() {
        let cases = [
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "r", "tool_call_id": "1"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "function", "content": "r"}]}),
                "messages[0].role",
            ),
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
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": []}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}]}),
                "messages[0].content",
            ),
        ];
        for (body, param) in cases {
            let err = chat(&body).unwrap_err();
            assert_eq!(err.param(), param, "{body}");
            assert!(!err.to_string().is_empty());
        }
        let err = chat(&json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})).unwrap_err();
        assert_eq!(err.to_string(), "messages[0].content: `image_url` parts are not supported: the Salesforce Models API takes text only");
    }

    #[test]
    fn completion_requests() {
        let fixture: Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/tests/fixtures/generations.request.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let body = json!({"model": "m", "prompt": fixture["prompt"].clone(), "max_tokens": 5});
        assert_eq!(completion(&body).unwrap(), fixture);
        assert_eq!(
            completion(&json!({"model": "m", "prompt": ["x"]})).unwrap(),
            json!({"prompt": "x"})
        );
        assert_eq!(
            completion(&json!({"model": "m", "prompt": ["x", "y"]})).unwrap_err(),
            TranslateError::PromptBatch(2)
        );
        assert_eq!(
            completion(&json!({"model": "m", "prompt": [1, 2]})).unwrap_err(),
            TranslateError::PromptTokens
        );
        assert_eq!(
            completion(&json!({"model": "m", "prompt": "x", "echo": true})).unwrap_err(),
            TranslateError::Echo
        );
        assert_eq!(
            completion(&json!({"model": "m", "prompt": "x", "n": 3})).unwrap_err(),
            TranslateError::Choices(3)
        );
    }

    fn answer(id: Option<&str>) -> Extracted<'_> {
        Extracted {
            text: "Hello",
            finish_reason: "length",
            usage: Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                prompt_tokens_details: None,
            }),
            path: ExtractPath::Primary,
            id,
        }
    }

    const CTX: ResponseCtx<'static> = ResponseCtx {
        fallback_id: "chatcmpl-local",
        created: 1700000000,
        model: "gpt-4o-mini",
    };

    #[test]
    fn chat_completion_shape() {
        let body: Value =
            serde_json::from_slice(&chat_completion_json(&answer(Some("up-1")), &CTX).unwrap())
                .unwrap();
        assert_eq!(
            body,
            json!({"id": "up-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "refusal": null},
                                "finish_reason": "length", "logprobs": null}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
        );
    }

    #[test]
    fn only_short_plain_ids_are_passed_on() {
        let longest = "a".repeat(MAX_ID_BYTES);
        for id in ["up-1", "chatcmpl-A1b2.c3:d_4", longest.as_str()] {
            assert_eq!(usable_id(Some(id)), Some(id));
        }
        let too_long = "a".repeat(MAX_ID_BYTES + 1);
        for id in ["", "a b", "id\n", "a/b", "<script>", "é", too_long.as_str()] {
            assert_eq!(usable_id(Some(id)), None, "{id:?}");
        }
        assert_eq!(usable_id(None), None);
    }

    #[test]
    fn an_unusable_upstream_id_gives_way_to_the_fallback() {
        let long = "x".repeat(1 << 20);
        for id in [long.as_str(), "two words"] {
            for json in [
                chat_completion_json(&answer(Some(id)), &CTX).unwrap(),
                text_completion_json(&answer(Some(id)), &CTX).unwrap(),
            ] {
                let body: Value = serde_json::from_slice(&json).unwrap();
                assert_eq!(body["id"], "chatcmpl-local");
            }
        }
    }

    #[test]
    fn text_completion_shape() {
        let mut no_usage = answer(None);
        no_usage.usage = None;
        let body: Value =
            serde_json::from_slice(&text_completion_json(&no_usage, &CTX).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"id": "chatcmpl-local", "object": "text_completion", "created": 1700000000, "model": "gpt-4o-mini",
                   "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "length"}]})
        );
    }
}
