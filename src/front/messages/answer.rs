//! A neutral answer as an Anthropic `message`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::{to_raw_value, RawValue};

use super::super::{json_with_capacity, usable_id, AnswerCtx};
use crate::anthropic::{ContentBlock, Message, Usage};
use crate::core::Generation;

/// The JSON body of a `message`: a text block when there is text, then a `tool_use` block per
/// call, in order.
///
/// ```
/// use sf_models_bridge::core::{Delivery, Finish, Generation};
/// use sf_models_bridge::front::messages::message_json;
/// use sf_models_bridge::front::AnswerCtx;
///
/// let answer = Generation { id: None, text: "Hi", tool_calls: vec![], finish: Finish::Length, usage: None };
/// let ctx = AnswerCtx { fallback_id: "msg_1", created: 1, model: "claude", delivery: Delivery::WHOLE };
/// let body: serde_json::Value = serde_json::from_slice(&message_json(&answer, &ctx)?)?;
/// assert_eq!(body["content"][0]["text"], "Hi");
/// assert_eq!(body["stop_reason"], "max_tokens");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn message_json(
    answer: &Generation<'_>,
    ctx: &AnswerCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let inputs: Vec<Cow<'_, RawValue>> = answer
        .tool_calls
        .iter()
        .map(|call| tool_input(&call.arguments))
        .collect();
    let mut content = Vec::with_capacity(answer.tool_calls.len() + 1);
    if !answer.text.is_empty() {
        content.push(ContentBlock::Text { text: answer.text });
    }
    content.extend(answer.tool_calls.iter().zip(&inputs).map(|(call, input)| {
        ContentBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input,
        }
    }));
    let mut message = Message::new(
        usable_id(answer.id).unwrap_or(ctx.fallback_id),
        ctx.model,
        content,
    );
    message.stop_reason = Some(answer.finish.into());
    message.usage = answer.usage.map(Usage::from).unwrap_or_default();
    let inputs_len: usize = inputs.iter().map(|input| input.get().len()).sum();
    json_with_capacity(&message, answer.text.len().saturating_add(inputs_len))
}

/// A tool call's arguments as a `tool_use` block's `input`, which must be a JSON object:
///
/// - a JSON object is passed on as it is;
/// - nothing (OpenAI-style upstreams send `""` for a call without arguments) becomes `{}`;
/// - anything else (arguments cut off by the output limit, malformed or not an object) becomes
///   `{"_raw_arguments": "<the text>"}`: the caller's schema check then fails on it visibly, the
///   model's words survive into the history it is sent back, and nothing is dropped.
pub(crate) fn tool_input(arguments: &str) -> Cow<'_, RawValue> {
    let trimmed = arguments.trim();
    if trimmed.is_empty() {
        return Cow::Borrowed(empty_object());
    }
    match serde_json::from_str::<&RawValue>(trimmed) {
        Ok(object) if trimmed.starts_with('{') => Cow::Borrowed(object),
        _ => to_raw_value(&RawArguments {
            raw_arguments: arguments,
        })
        .map_or(Cow::Borrowed(empty_object()), Cow::Owned),
    }
}

/// `{}`: the input of a call without arguments, and of a streamed call as it starts.
pub(crate) fn empty_object() -> &'static RawValue {
    // A constant that is valid JSON: the fallback is never taken.
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

/// Arguments that are not a JSON object, kept as text.
#[derive(Serialize)]
struct RawArguments<'a> {
    #[serde(rename = "_raw_arguments")]
    raw_arguments: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Delivery, Finish, ToolCall};
    use serde_json::{json, Value};

    const CTX: AnswerCtx<'static> = AnswerCtx {
        fallback_id: "msg_local",
        created: 1700000000,
        model: "claude-sonnet",
        delivery: Delivery::WHOLE,
    };

    fn render(answer: &Generation<'_>) -> Value {
        serde_json::from_slice(&message_json(answer, &CTX).unwrap()).unwrap()
    }

    #[test]
    fn text_answer_matches_anthropic() {
        let answer = Generation {
            id: Some("up-1"),
            text: "Hello",
            tool_calls: vec![],
            finish: Finish::Stop,
            usage: Some(crate::core::Usage {
                input_tokens: 12,
                output_tokens: 3,
                total_tokens: 15,
                cached_tokens: Some(2),
                cache_write_tokens: None,
                reasoning_tokens: None,
            }),
        };
        assert_eq!(
            render(&answer),
            json!({"id": "up-1", "type": "message", "role": "assistant", "model": "claude-sonnet",
                   "content": [{"type": "text", "text": "Hello"}],
                   "stop_reason": "end_turn", "stop_sequence": null,
                   "usage": {"input_tokens": 10, "output_tokens": 3,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2}})
        );
    }

    #[test]
    fn tool_calls_follow_the_text_with_their_inputs() {
        let call = |id: &'static str, arguments: &'static str| ToolCall {
            id: id.into(),
            name: "get_weather".into(),
            arguments: arguments.into(),
        };
        let answer = Generation {
            id: Some("bad id"),
            text: "Let me check.",
            tool_calls: vec![
                call("toolu_1", r#" {"city": "Paris"} "#),
                call("toolu_2", ""),
                call("toolu_3", r#"{"city": "Par"#),
                call("toolu_4", "[1]"),
            ],
            finish: Finish::ToolCalls,
            usage: None,
        };
        assert_eq!(
            render(&answer),
            json!({"id": "msg_local", "type": "message", "role": "assistant", "model": "claude-sonnet",
                   "content": [
                       {"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                       {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
                       {"type": "tool_use", "id": "toolu_3", "name": "get_weather",
                        "input": {"_raw_arguments": "{\"city\": \"Par"}},
                       {"type": "tool_use", "id": "toolu_4", "name": "get_weather",
                        "input": {"_raw_arguments": "[1]"}}],
                   "stop_reason": "tool_use", "stop_sequence": null,
                   "usage": {"input_tokens": 0, "output_tokens": 0,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        );
    }

    #[test]
    fn stop_reasons() {
        for (finish, reason) in [
            (Finish::Stop, "end_turn"),
            (Finish::Length, "max_tokens"),
            (Finish::ToolCalls, "tool_use"),
            (Finish::ContentFilter, "refusal"),
        ] {
            let answer = Generation {
                id: None,
                text: "",
                tool_calls: vec![],
                finish,
                usage: None,
            };
            let body = render(&answer);
            assert_eq!(body["stop_reason"], reason);
            assert_eq!(body["content"], json!([]));
        }
    }
}
