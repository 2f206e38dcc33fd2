//! The legacy Completions front: `POST /v1/completions`.

use super::sse::StreamKind;
use super::{json_with_capacity, usable_id, AnswerCtx, OpenAiGeneration};
use crate::core::{Delivery, Generation, Request, Streaming, Task, Text, TranslateError};
use crate::openai::{self, Completion, CompletionChoice, CompletionRequest, Prompt};

/// `POST /v1/completions`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completions;

impl OpenAiGeneration for Completions {
    const ID_PREFIX: &'static str = "cmpl-";
    const STREAM: StreamKind = StreamKind::Text;
    type Wire<'b> = CompletionRequest<'b>;

    fn to_core<'b>(wire: Self::Wire<'b>) -> Result<Request<'b>, TranslateError> {
        to_core(wire)
    }

    fn json(answer: &Generation<'_>, ctx: &AnswerCtx<'_>) -> Result<Vec<u8>, serde_json::Error> {
        completion_json(answer, ctx)
    }
}

/// A legacy completion request as the neutral request.
///
/// ```
/// use sf_models_bridge::core::Task;
/// use sf_models_bridge::front::completions::to_core;
///
/// let request = serde_json::from_slice(br#"{"model": "m", "prompt": ["Say hi"]}"#)?;
/// let Task::Text(text) = to_core(request).unwrap().task else { unreachable!() };
/// assert_eq!(text.prompt, "Say hi");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_core(request: CompletionRequest<'_>) -> Result<Request<'_>, TranslateError> {
    if request.echo {
        return Err(TranslateError::Echo);
    }
    let prompt = match request.prompt {
        Prompt::Text(text) => text,
        Prompt::Batch(count) => return Err(TranslateError::PromptBatch(count)),
        Prompt::Tokens => return Err(TranslateError::PromptTokens),
    };
    Ok(Request {
        model: request.model,
        task: Task::Text(Text {
            prompt,
            choices: request.n,
        }),
        delivery: Delivery {
            stream: request.stream.then_some(Streaming {
                include_usage: request.stream_options.include_usage,
            }),
            ..Delivery::WHOLE
        },
        ignored: request.ignored,
    })
}

/// The JSON body of a `text_completion`.
pub fn completion_json(
    answer: &Generation<'_>,
    ctx: &AnswerCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let choices = [CompletionChoice {
        text: answer.text,
        index: 0,
        logprobs: None,
        finish_reason: Some(openai::finish_reason(answer.finish)),
    }];
    let completion = Completion {
        id: usable_id(answer.id).unwrap_or(ctx.fallback_id),
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices: &choices,
        usage: answer.usage.map(openai::Usage::from),
    };
    json_with_capacity(&completion, answer.text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Finish;
    use serde_json::{json, Value};

    const CTX: AnswerCtx<'static> = AnswerCtx {
        fallback_id: "chatcmpl-local",
        created: 1700000000,
        model: "gpt-4o-mini",
        delivery: Delivery::WHOLE,
    };

    #[test]
    fn text_completion_shape() {
        let answer = Generation {
            id: None,
            text: "Hello",
            tool_calls: vec![],
            finish: Finish::Length,
            usage: None,
        };
        let body: Value = serde_json::from_slice(&completion_json(&answer, &CTX).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"id": "chatcmpl-local", "object": "text_completion", "created": 1700000000, "model": "gpt-4o-mini",
                   "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "length"}]})
        );
    }

    #[test]
    fn an_unusable_upstream_id_gives_way_to_the_fallback() {
        let long = "x".repeat(1 << 20);
        for id in [long.as_str(), "two words"] {
            let answer = Generation {
                id: Some(id),
                text: "Hello",
                tool_calls: vec![],
                finish: Finish::Length,
                usage: None,
            };
            for json in [
                completion_json(&answer, &CTX).unwrap(),
                super::super::chat::completion_json(&answer, &CTX).unwrap(),
            ] {
                let body: Value = serde_json::from_slice(&json).unwrap();
                assert_eq!(body["id"], "chatcmpl-local");
            }
        }
    }
}
