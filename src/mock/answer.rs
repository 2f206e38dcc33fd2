//! Successful answers, in the documented shapes and in the other shapes the extractor knows.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};

use super::catalog::{Operation, Provider};
use super::faults::ResponseShape;
use super::validate::{token_count, Call, Prompt};

/// The identifiers and time stamp of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    /// The body's top-level `id`.
    pub(crate) response: String,
    /// The generation's `id`.
    pub(crate) generation: String,
    /// Seconds since the epoch.
    pub(crate) created: u64,
}

impl Ids {
    pub(crate) fn fresh() -> Self {
        Self {
            response: format!("chatcmpl-mock{:016x}", fastrand::u64(..)),
            generation: uuid(),
            created: now_secs(),
        }
    }
}

/// A random version-4 UUID, the form of Salesforce's generation ids and `x-request-id`s.
pub(crate) fn uuid() -> String {
    let bits = fastrand::u128(..);
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    // `hex` is 32 ASCII digits, so these ranges are in bounds.
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `prefix` and 32 random hex digits: the form of OpenAI's and Anthropic's ids (`resp_…`, `msg_…`).
pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", fastrand::u128(..))
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The answer to a valid call: chat and text answers say `"Echo: "` followed by the prompt.
pub(crate) fn body(call: &Call, model: &str, shape: ResponseShape, ids: &Ids) -> Value {
    let provider = Provider::of(model);
    match call {
        Call::Chat(prompt) => echo(Text::Chat, provider, prompt, shape, ids),
        Call::Generations(prompt) => echo(Text::Generations, provider, prompt, shape, ids),
        Call::Embeddings {
            inputs,
            prompt_tokens,
        } => embeddings(inputs, *prompt_tokens),
    }
}

/// The benchmark answers, serialized once: documented shape, OpenAI style, content `answer_bytes` long.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    chat: Bytes,
    generations: Bytes,
    embeddings: Bytes,
}

impl Canned {
    pub(crate) fn new(answer_bytes: usize) -> Self {
        const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
        let answer: String = FILLER.chars().cycle().take(answer_bytes).collect();
        let ids = Ids {
            response: "chatcmpl-mockfast".to_owned(),
            generation: uuid(),
            created: now_secs(),
        };
        let serialize = |value: Value| Bytes::from(value.to_string());
        let text = |kind| {
            serialize(text_body(
                kind,
                Provider::OpenAi,
                &answer,
                10,
                ResponseShape::Documented,
                &ids,
            ))
        };
        Self {
            chat: text(Text::Chat),
            generations: text(Text::Generations),
            embeddings: serialize(embeddings(&["benchmark".to_owned()], 1)),
        }
    }

    /// A reference-counted copy of the answer to `operation`.
    pub(crate) fn get(&self, operation: Operation) -> Bytes {
        match operation {
            Operation::Chat => self.chat.clone(),
            Operation::Generations => self.generations.clone(),
            Operation::Embeddings => self.embeddings.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Chat,
    Generations,
}

fn echo(kind: Text, provider: Provider, prompt: &Prompt, shape: ResponseShape, ids: &Ids) -> Value {
    let answer = format!("Echo: {}", prompt.echo);
    text_body(kind, provider, &answer, prompt.prompt_tokens, shape, ids)
}

fn text_body(
    kind: Text,
    provider: Provider,
    answer: &str,
    prompt_tokens: u64,
    shape: ResponseShape,
    ids: &Ids,
) -> Value {
    let completion_tokens = token_count(answer);
    let counts = usage(provider, prompt_tokens, completion_tokens);
    match shape {
        ResponseShape::Documented => documented(kind, provider, answer, counts, ids),
        ResponseShape::NoText => {
            let mut body = documented(kind, provider, answer, counts, ids);
            let (parent, field) = match kind {
                Text::Chat => ("/generationDetails/generations/0", "content"),
                Text::Generations => ("/generation", "generatedText"),
            };
            body.pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .map(|parent| parent.remove(field));
            body
        }
        ResponseShape::GenerationText => json!({
            "id": ids.response,
            "generation": {"id": ids.generation, "text": answer, "parameters": finish(provider)},
            "parameters": parameters(provider, counts, ids),
        }),
        ResponseShape::SnakeCase => json!({
            "id": ids.response,
            "generation_details": {
                "generations": [
                    {"id": ids.generation, "role": "assistant", "content": answer, "parameters": finish(provider)}
                ],
                "parameters": parameters(provider, counts, ids),
            },
        }),
        ResponseShape::OpenAiChoices => json!({
            "id": ids.response,
            "object": "chat.completion",
            "created": ids.created,
            "model": upstream_model(provider),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": usage(Provider::OpenAi, prompt_tokens, completion_tokens),
        }),
        ResponseShape::GenerationsArray => json!({
            "id": ids.response,
            "generations": [{"id": ids.generation, "text": answer, "parameters": finish(provider)}],
            "parameters": parameters(provider, counts, ids),
        }),
    }
}

fn documented(kind: Text, provider: Provider, answer: &str, usage: Value, ids: &Ids) -> Value {
    match kind {
        Text::Chat => json!({
            "id": ids.response,
            "generationDetails": {
                "generations": [{
                    "id": ids.generation,
                    "role": "assistant",
                    "content": answer,
                    "timestamp": ids.created,
                    "parameters": finish(provider),
                    "contentQuality": content_quality(),
                }],
                "parameters": parameters(provider, usage, ids),
            },
        }),
        Text::Generations => json!({
            "id": ids.response,
            "generation": {
                "id": ids.generation,
                "generatedText": answer,
                "contentQuality": content_quality(),
                "parameters": finish(provider),
            },
            "moreGenerations": null,
            "prompt": null,
            "parameters": parameters(provider, usage, ids),
        }),
    }
}

/// Usage in the provider's own key style, as observed.
fn usage(provider: Provider, prompt_tokens: u64, completion_tokens: u64) -> Value {
    let total = prompt_tokens + completion_tokens;
    match provider {
        Provider::OpenAi => json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }),
        Provider::Bedrock | Provider::Vertex => json!({
            "inputTokenCount": prompt_tokens,
            "outputTokenCount": completion_tokens,
            "totalTokenCount": total,
            "cacheReadInputTokenCount": 0,
            "cacheWriteInputTokenCount": 0,
        }),
    }
}

/// A generation's `parameters`: where the finish reason sits.
fn finish(provider: Provider) -> Value {
    match provider {
        Provider::OpenAi => {
            json!({"finish_reason": "stop", "refusal": null, "index": 0, "logprobs": null})
        }
        Provider::Bedrock | Provider::Vertex => json!({"stop_reason": "end_turn"}),
    }
}

/// The answer-level `parameters`, which carry the usage.
fn parameters(provider: Provider, usage: Value, ids: &Ids) -> Value {
    match provider {
        Provider::OpenAi => json!({
            "provider": "OpenAI",
            "created": ids.created,
            "model": upstream_model(provider),
            "object": "chat.completion",
            "system_fingerprint": null,
            "usage": usage,
        }),
        Provider::Bedrock => {
            json!({"provider": "Bedrock", "model": upstream_model(provider), "usage": usage})
        }
        Provider::Vertex => {
            json!({"provider": "Vertex", "model": upstream_model(provider), "usage": usage})
        }
    }
}

fn upstream_model(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "gpt-4o-mini-2024-07-18",
        Provider::Bedrock => "anthropic.claude-sonnet-4",
        Provider::Vertex => "gemini-2.5-flash",
    }
}

fn content_quality() -> Value {
    json!({"scanToxicity": {"isDetected": false, "categories": [{"categoryName": "toxicity", "score": 0.0}]}})
}

/// Dimensions of `text-embedding-ada-002`.
const EMBEDDING_DIMENSIONS: usize = 1536;

fn embeddings(inputs: &[String], prompt_tokens: u64) -> Value {
    let embeddings: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"embedding": vector(text), "index": index}))
        .collect();
    json!({
        "embeddings": embeddings,
        "parameters": {
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            "model": "text-embedding-ada-002-v2",
            "object": "list",
        },
    })
}

/// A deterministic pseudo-embedding: the same text always gets the same vector.
fn vector(text: &str) -> Vec<f32> {
    // FNV-1a seeds a xorshift generator; small values, like real embeddings.
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    }) | 1;
    (0..EMBEDDING_DIMENSIONS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids {
            response: "r".to_owned(),
            generation: "g".to_owned(),
            created: 1,
        }
    }

    fn chat(shape: ResponseShape, model: &str) -> Value {
        let call = Call::Chat(Prompt {
            echo: "hi there".to_owned(),
            prompt_tokens: 2,
        });
        body(&call, model, shape, &ids())
    }

    fn generation(shape: ResponseShape) -> Value {
        let call = Call::Generations(Prompt {
            echo: "hi".to_owned(),
            prompt_tokens: 1,
        });
        body(&call, "sfdc_ai__DefaultGPT41", shape, &ids())
    }

    const OPENAI: &str = "sfdc_ai__DefaultGPT4OmniMini";

    #[test]
    fn each_shape_puts_the_text_on_its_path() {
        let text = |value: Value, pointer: &str| value.pointer(pointer).cloned();
        let answer = Some(Value::from("Echo: hi there"));
        assert_eq!(
            text(
                chat(ResponseShape::Documented, OPENAI),
                "/generationDetails/generations/0/content"
            ),
            answer
        );
        assert_eq!(
            text(
                chat(ResponseShape::GenerationText, OPENAI),
                "/generation/text"
            ),
            answer
        );
        let snake = chat(ResponseShape::SnakeCase, OPENAI);
        assert_eq!(
            text(snake, "/generation_details/generations/0/content"),
            answer
        );
        assert_eq!(
            text(
                chat(ResponseShape::OpenAiChoices, OPENAI),
                "/choices/0/message/content"
            ),
            answer
        );
        assert_eq!(
            text(
                chat(ResponseShape::GenerationsArray, OPENAI),
                "/generations/0/text"
            ),
            answer
        );
        let documented = generation(ResponseShape::Documented);
        assert_eq!(
            text(documented, "/generation/generatedText"),
            Some(Value::from("Echo: hi"))
        );
    }

    #[test]
    fn no_text_keeps_the_envelope() {
        let chat = chat(ResponseShape::NoText, OPENAI);
        let generation = chat.pointer("/generationDetails/generations/0").unwrap();
        assert!(generation.get("content").is_none());
        assert!(generation.get("role").is_some());
        let text = super::tests::generation(ResponseShape::NoText);
        assert!(text.pointer("/generation/generatedText").is_none());
        assert!(text
            .pointer("/generation/parameters/finish_reason")
            .is_some());
    }

    #[test]
    fn usage_follows_the_provider() {
        let openai = chat(ResponseShape::Documented, OPENAI);
        assert_eq!(
            openai.pointer("/generationDetails/parameters/usage/total_tokens"),
            Some(&json!(5))
        );
        assert_eq!(
            openai.pointer("/generationDetails/generations/0/parameters/finish_reason"),
            Some(&json!("stop"))
        );
        let bedrock = chat(
            ResponseShape::Documented,
            "sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet",
        );
        let usage = bedrock
            .pointer("/generationDetails/parameters/usage")
            .unwrap();
        assert_eq!(usage["inputTokenCount"], 2);
        assert_eq!(usage["outputTokenCount"], 3);
        assert_eq!(usage["totalTokenCount"], 5);
        let stop = bedrock.pointer("/generationDetails/generations/0/parameters/stop_reason");
        assert_eq!(stop, Some(&json!("end_turn")));
    }

    #[test]
    fn embeddings_are_deterministic() {
        let call = Call::Embeddings {
            inputs: vec!["a".to_owned(), "b".to_owned()],
            prompt_tokens: 2,
        };
        let first = body(
            &call,
            "sfdc_ai__DefaultOpenAITextEmbeddingAda_002",
            ResponseShape::Documented,
            &ids(),
        );
        let again = body(
            &call,
            "sfdc_ai__DefaultOpenAITextEmbeddingAda_002",
            ResponseShape::Documented,
            &ids(),
        );
        assert_eq!(first, again);
        let vector = first
            .pointer("/embeddings/1/embedding")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(vector.len(), EMBEDDING_DIMENSIONS);
        assert_ne!(
            first.pointer("/embeddings/0/embedding"),
            first.pointer("/embeddings/1/embedding")
        );
        assert_eq!(
            first.pointer("/parameters/usage/prompt_tokens"),
            Some(&json!(2))
        );
    }

    #[test]
    fn canned_answers_have_the_asked_size() {
        let canned = Canned::new(100);
        let chat: Value = serde_json::from_slice(&canned.get(Operation::Chat)).unwrap();
        let content = chat
            .pointer("/generationDetails/generations/0/content")
            .and_then(Value::as_str)
            .unwrap();
        assert_eq!(content.len(), 100);
        let text: Value = serde_json::from_slice(&canned.get(Operation::Generations)).unwrap();
        assert_eq!(
            text.pointer("/generation/generatedText")
                .and_then(Value::as_str)
                .map(str::len),
            Some(100)
        );
    }

    #[test]
    fn uuids_look_like_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, uuid());
    }
}
