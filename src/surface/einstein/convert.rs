//! Neutral requests → Models API bodies, and extracted answers → neutral answers. Pure.

use std::borrow::Cow;

use super::extract::Extracted;
use super::request::{ChatGenerationsRequest, EmbeddingsRequest, GenerationsRequest, Message};
use crate::core::{Chat, Embed, Generation, Part, Role, Text, TranslateError};
use crate::surface::one_choice;

/// The body of `chat-generations` for a conversation. The documented surface takes roles and
/// plain strings only: tools, images and more than one choice are refused, as dropping them
/// would change the answer.
pub fn chat_body<'r>(chat: &'r Chat<'_>) -> Result<ChatGenerationsRequest<'r>, TranslateError> {
    if !chat.tools.is_empty() {
        return Err(TranslateError::Tools);
    }
    one_choice(chat.choices)?;
    let messages = chat
        .messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let role = match message.role {
                Role::System | Role::Developer => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => {
                    return Err(TranslateError::ToolMessage {
                        index,
                        role: "tool",
                    })
                }
            };
            Ok(Message {
                role,
                content: join_text(index, &message.parts)?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ChatGenerationsRequest { messages })
}

/// The Chat Completions names of the settings `chat` carries, all of which this surface drops:
/// the documented API has no generation settings (they belong to a model configured in Einstein
/// Studio). An output limit is reported as `max_tokens` whichever name the caller used.
pub fn dropped_settings(chat: &Chat<'_>) -> Vec<&'static str> {
    let sampling = &chat.sampling;
    [
        ("temperature", sampling.temperature.is_some()),
        ("top_p", sampling.top_p.is_some()),
        ("top_k", sampling.top_k.is_some()),
        ("stop", !sampling.stop.is_empty()),
        ("max_tokens", chat.max_output_tokens.is_some()),
        ("tool_choice", chat.tool_choice.is_some()),
        ("parallel_tool_calls", chat.parallel_tool_calls.is_some()),
        ("reasoning_effort", chat.reasoning.is_some()),
        ("response_format", chat.response_format.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// The body of `generations` for a prompt.
pub fn text_body<'r>(text: &'r Text<'_>) -> Result<GenerationsRequest<'r>, TranslateError> {
    one_choice(text.choices)?;
    Ok(GenerationsRequest {
        prompt: Cow::Borrowed(text.prompt.as_ref()),
    })
}

/// The body of `embeddings`: the texts alone. The documented surface has no `dimensions`, so a
/// caller asking for a length is refused rather than given another.
pub fn embed_body<'r>(embed: &'r Embed<'_>) -> Result<EmbeddingsRequest<'r>, TranslateError> {
    if embed.dimensions.is_some() {
        return Err(TranslateError::Setting("dimensions"));
    }
    Ok(EmbeddingsRequest {
        input: &embed.inputs,
    })
}

/// The text parts as one string, as the Models API takes a plain string.
fn join_text<'r>(index: usize, parts: &'r [Part<'_>]) -> Result<Cow<'r, str>, TranslateError> {
    let mut texts = parts.iter().map(|part| match part {
        Part::Text(text) => Ok(text.as_ref()),
        Part::Image { .. } => Err(TranslateError::UnsupportedPart {
            index,
            kind: "image_url".to_owned(),
        }),
        Part::ToolCall(_) => Err(TranslateError::ToolCalls { index }),
        Part::ToolResult { .. } => Err(TranslateError::ToolMessage {
            index,
            role: "tool",
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

/// An extracted answer as the neutral answer: the documented surface has no tool calls.
pub fn generation(extracted: Extracted<'_>) -> Generation<'_> {
    Generation {
        id: extracted.id,
        text: extracted.text,
        tool_calls: Vec::new(),
        finish: extracted.finish,
        usage: extracted.usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Task;
    use crate::front;
    use serde_json::{json, Value};

    /// A Chat Completions body, through the front, as the einstein body.
    fn chat(body: &Value) -> Result<Value, TranslateError> {
        let text = serde_json::to_vec(body).unwrap();
        let request = front::chat::to_core(serde_json::from_slice(&text).unwrap())?;
        let Task::Chat(chat) = &request.task else {
            panic!("not a chat")
        };
        chat_body(chat).map(|r| serde_json::to_value(r).unwrap())
    }

    /// A Completions body, through the front, as the einstein body.
    fn completion(body: &Value) -> Result<Value, TranslateError> {
        let text = serde_json::to_vec(body).unwrap();
        let request = front::completions::to_core(serde_json::from_slice(&text).unwrap())?;
        let Task::Text(text) = &request.task else {
            panic!("not a prompt")
        };
        text_body(text).map(|r| serde_json::to_value(r).unwrap())
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

    #[test]
    fn embeddings_send_the_texts_and_refuse_a_length() {
        let fixture: Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/tests/fixtures/embeddings.request.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let inputs: Vec<std::borrow::Cow<'_, str>> = fixture["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|input| input.as_str().unwrap().into())
            .collect();
        let mut embed = Embed {
            inputs,
            dimensions: None,
        };
        let body = serde_json::to_value(embed_body(&embed).unwrap()).unwrap();
        assert_eq!(body, fixture);
        embed.dimensions = Some(256);
        assert_eq!(
            embed_body(&embed).unwrap_err(),
            TranslateError::Setting("dimensions")
        );
    }

    #[test]
    fn every_generation_setting_is_reported_dropped() {
        let text: &'static [u8] = serde_json::to_vec(&json!({"model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 7, "stop": ["END"],
            "tool_choice": "none", "parallel_tool_calls": false, "reasoning_effort": "low",
            "response_format": {"type": "text"}}))
        .unwrap()
        .leak();
        let request = front::chat::to_core(serde_json::from_slice(text).unwrap()).unwrap();
        let Task::Chat(chat) = &request.task else {
            panic!("not a chat")
        };
        assert_eq!(
            dropped_settings(chat),
            [
                "temperature",
                "top_p",
                "stop",
                "max_tokens",
                "tool_choice",
                "parallel_tool_calls",
                "reasoning_effort",
                "response_format"
            ]
        );
        assert!(dropped_settings(&Chat::default()).is_empty());
    }
}
