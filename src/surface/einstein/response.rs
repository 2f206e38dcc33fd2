//! Response bodies from the Models API: one borrowed struct covering every known shape.
//!
//! Fields are optional everywhere, so a shape that lacks one simply leaves it `None`; serde skips
//! the fields nobody reads (`contentQuality`, `moreGenerations`, ...) without building them.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// Any success body of `chat-generations` or `generations`.
#[derive(Debug, Default, Deserialize)]
pub struct ModelsResponse<'a> {
    /// The upstream's response id.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// Chat, documented: `generationDetails.generations[0].content`.
    #[serde(rename = "generationDetails", borrow, default)]
    pub generation_details: Option<GenerationDetails<'a>>,
    /// Chat on the newer `/ai/gpt/v1` surface: `generation_details.generations[0].content`.
    #[serde(rename = "generation_details", borrow, default)]
    pub generation_details_snake: Option<GenerationDetails<'a>>,
    /// Text, documented: `generation.generatedText` (or the spec schema's `generation.text`).
    #[serde(borrow, default)]
    pub generation: Option<TextGeneration<'a>>,
    /// OpenAI-shaped bodies from custom or bring-your-own models: `choices[0].message.content`.
    #[serde(borrow, default)]
    pub choices: Option<Vec<OpenAiChoice<'a>>>,
    /// Third-party fixtures: `generations[0].text` or `generations[0].content`.
    #[serde(borrow, default)]
    pub generations: Option<Vec<LooseGeneration<'a>>>,
    /// Text responses carry `usage` here; some providers put counts directly on it.
    #[serde(default)]
    pub parameters: Option<Parameters>,
    /// OpenAI-shaped bodies carry `usage` at the top level.
    #[serde(default)]
    pub usage: Option<RawUsage>,
}

/// The success body of `embeddings`: `{"embeddings": [{"embedding": [...], "index": 0}],
/// "parameters": {"usage": {...}}}`.
#[derive(Debug, Default, Deserialize)]
pub struct EmbeddingsResponse {
    /// One entry per input.
    #[serde(default)]
    pub embeddings: Option<Vec<EmbeddingItem>>,
    /// Carries `usage`.
    #[serde(default)]
    pub parameters: Option<Parameters>,
    /// `usage` at the top level, as OpenAI-shaped bodies have it.
    #[serde(default)]
    pub usage: Option<RawUsage>,
}

/// One vector of an embeddings answer.
#[derive(Debug, Default, Deserialize)]
pub struct EmbeddingItem {
    /// The vector.
    pub embedding: Vec<f32>,
    /// Which input it belongs to.
    #[serde(default)]
    pub index: Option<usize>,
}

/// `generationDetails` / `generation_details`.
#[derive(Debug, Default, Deserialize)]
pub struct GenerationDetails<'a> {
    /// The generations; the bridge reads the first.
    #[serde(borrow, default)]
    pub generations: Option<Vec<ChatGeneration<'a>>>,
    /// Provider, model and `usage`.
    #[serde(default)]
    pub parameters: Option<Parameters>,
}

/// One chat generation.
#[derive(Debug, Default, Deserialize)]
pub struct ChatGeneration<'a> {
    /// The model's text.
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    /// Carries the finish reason.
    #[serde(borrow, default)]
    pub parameters: Option<GenerationParameters<'a>>,
}

/// `generation`, of the text endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct TextGeneration<'a> {
    /// The documented field.
    #[serde(rename = "generatedText", borrow, default)]
    pub generated_text: Option<Cow<'a, str>>,
    /// The name the spec's own schema lists as required.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// Carries the finish reason.
    #[serde(borrow, default)]
    pub parameters: Option<GenerationParameters<'a>>,
}

/// A generation's `parameters`: the finish reason, under one of its names.
#[derive(Debug, Default, Deserialize)]
pub struct GenerationParameters<'a> {
    /// OpenAI-family models.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Anthropic models on Bedrock.
    #[serde(borrow, default)]
    pub stop_reason: Option<Cow<'a, str>>,
    /// Gemini on Vertex.
    #[serde(rename = "finishReason", borrow, default)]
    pub finish_reason_camel: Option<Cow<'a, str>>,
}

impl<'a> GenerationParameters<'a> {
    /// The finish reason under whichever name the provider used.
    pub fn reason(&self) -> Option<&str> {
        self.finish_reason
            .as_deref()
            .or(self.stop_reason.as_deref())
            .or(self.finish_reason_camel.as_deref())
    }
}

/// One `choices[]` entry of an OpenAI-shaped body.
#[derive(Debug, Default, Deserialize)]
pub struct OpenAiChoice<'a> {
    /// The message.
    #[serde(borrow, default)]
    pub message: Option<OpenAiMessage<'a>>,
    /// The finish reason.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// The message of an OpenAI-shaped choice.
#[derive(Debug, Default, Deserialize)]
pub struct OpenAiMessage<'a> {
    /// The model's text.
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
}

/// One entry of a top-level `generations` array.
#[derive(Debug, Default, Deserialize)]
pub struct LooseGeneration<'a> {
    /// The text, under one name...
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// ...or the other.
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    /// The finish reason, when given.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// `parameters` of a response or of `generationDetails`.
#[derive(Debug, Default, Deserialize)]
pub struct Parameters {
    /// Token counts, in the provider's key style.
    #[serde(default)]
    pub usage: Option<RawUsage>,
    /// Some providers put the counts directly on `parameters`.
    #[serde(flatten)]
    pub counts: RawUsage,
}

/// Token counts in either key style: OpenAI's snake_case or Bedrock's and Vertex's camelCase.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RawUsage {
    /// OpenAI style.
    #[serde(default, deserialize_with = "lenient_count")]
    pub prompt_tokens: Option<u64>,
    /// OpenAI style.
    #[serde(default, deserialize_with = "lenient_count")]
    pub completion_tokens: Option<u64>,
    /// OpenAI style.
    #[serde(default, deserialize_with = "lenient_count")]
    pub total_tokens: Option<u64>,
    /// Bedrock and Vertex style.
    #[serde(
        rename = "inputTokenCount",
        default,
        deserialize_with = "lenient_count"
    )]
    pub input_token_count: Option<u64>,
    /// Bedrock and Vertex style.
    #[serde(
        rename = "outputTokenCount",
        default,
        deserialize_with = "lenient_count"
    )]
    pub output_token_count: Option<u64>,
    /// Bedrock and Vertex style.
    #[serde(
        rename = "totalTokenCount",
        default,
        deserialize_with = "lenient_count"
    )]
    pub total_token_count: Option<u64>,
    /// OpenAI style: `cached_tokens` inside.
    #[serde(default, deserialize_with = "lenient_details")]
    pub prompt_tokens_details: Option<RawPromptDetails>,
    /// Bedrock style: prompt tokens read from the cache.
    #[serde(
        rename = "cacheReadInputTokenCount",
        default,
        deserialize_with = "lenient_count"
    )]
    pub cache_read_input_token_count: Option<u64>,
}

/// OpenAI's `prompt_tokens_details`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RawPromptDetails {
    /// Prompt tokens served from the provider's cache.
    #[serde(default, deserialize_with = "lenient_count")]
    pub cached_tokens: Option<u64>,
}

/// `prompt_tokens_details` when it is an object; anything else counts as absent rather than
/// failing the whole answer, as for the counts.
fn lenient_details<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<RawPromptDetails>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Details {
        Object(RawPromptDetails),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Details::deserialize(deserializer)? {
        Details::Object(details) => Some(details),
        Details::Other(_) => None,
    })
}

/// A token count that tolerates what providers send: an integer, an integral float, a numeric
/// string; anything else counts as absent rather than failing the whole answer.
pub(crate) fn lenient_count<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Int(u64),
        Float(f64),
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Count::deserialize(deserializer)? {
        Count::Int(n) => Some(n),
        Count::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Some(f as u64),
        Count::Text(s) => s.trim().parse().ok(),
        Count::Float(_) | Count::Other(_) => None,
    })
}
