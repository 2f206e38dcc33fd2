//! What the mock serves: the three model operations and the model names it knows.

/// A Models API operation, the last segment of `/models/{model}/{operation}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `chat-generations`.
    Chat,
    /// `generations`.
    Generations,
    /// `embeddings`.
    Embeddings,
}

impl Operation {
    pub(crate) fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "chat-generations" => Some(Self::Chat),
            "generations" => Some(Self::Generations),
            "embeddings" => Some(Self::Embeddings),
            _ => None,
        }
    }
}

/// The Salesforce-managed names of `salesforce-models-api.md` ("Model API names").
const MANAGED_MODELS: &[&str] = &[
    "sfdc_ai__DefaultGPT4Omni",
    "sfdc_ai__DefaultGPT4OmniMini",
    "sfdc_ai__DefaultOpenAIGPT4OmniMini",
    "sfdc_ai__DefaultGPT41",
    "sfdc_ai__DefaultGPT41Mini",
    "sfdc_ai__DefaultGPT5",
    "sfdc_ai__DefaultGPT5Mini",
    "sfdc_ai__DefaultGPT51",
    "sfdc_ai__DefaultO3",
    "sfdc_ai__DefaultO4Mini",
    "sfdc_ai__DefaultBedrockAnthropicClaude3Haiku",
    "sfdc_ai__DefaultBedrockAnthropicClaude37Sonnet",
    "sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet",
    "sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet",
    "sfdc_ai__DefaultBedrockAnthropicClaude45Haiku",
    "sfdc_ai__DefaultBedrockAmazonNovaLite",
    "sfdc_ai__DefaultBedrockAmazonNovaPro",
    "sfdc_ai__DefaultVertexAIGemini20Flash001",
    "sfdc_ai__DefaultVertexAIGemini20FlashLite001",
    "sfdc_ai__DefaultVertexAIGemini25Flash001",
    "sfdc_ai__DefaultVertexAIGemini25FlashLite001",
    "sfdc_ai__DefaultVertexAIGeminiPro25",
    "sfdc_ai__DefaultOpenAITextEmbeddingAda_002",
    "sfdc_ai__DefaultAzureOpenAITextEmbeddingAda_002",
    // Retired names still answer: Salesforce reroutes them to current models.
    "sfdc_ai__DefaultOpenAIGPT35Turbo",
    "sfdc_ai__DefaultOpenAIGPT4",
];

/// Prefix of the names tests may invent, standing for models configured in Einstein Studio.
pub(crate) const CUSTOM_PREFIX: &str = "custom_";

/// Whether the mock org "has" this model; any other name answers 404, as an org without it does.
pub(crate) fn is_known(model: &str) -> bool {
    model.starts_with(CUSTOM_PREFIX) || MANAGED_MODELS.contains(&model)
}

/// Whose answer style a model's replies follow: usage keys and finish field differ by provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// OpenAI and Azure OpenAI, and custom models: snake_case usage, `finish_reason`.
    OpenAi,
    /// Anthropic and Amazon on Bedrock: camelCase usage, `stop_reason`.
    Bedrock,
    /// Gemini on Vertex: camelCase usage, like Bedrock.
    Vertex,
}

impl Provider {
    pub(crate) fn of(model: &str) -> Self {
        if model.contains("Bedrock") {
            Self::Bedrock
        } else if model.contains("Vertex") {
            Self::Vertex
        } else {
            Self::OpenAi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_and_custom_names_are_known() {
        assert!(is_known("sfdc_ai__DefaultGPT4OmniMini"));
        assert!(is_known("sfdc_ai__DefaultVertexAIGeminiPro25"));
        assert!(is_known("custom_my_model"));
        assert!(!is_known("gpt-4o-mini"));
        assert!(!is_known("sfdc_ai__DefaultNoSuchModel"));
    }

    #[test]
    fn provider_follows_the_name() {
        assert_eq!(
            Provider::of("sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet"),
            Provider::Bedrock
        );
        assert_eq!(
            Provider::of("sfdc_ai__DefaultVertexAIGemini25Flash001"),
            Provider::Vertex
        );
        assert_eq!(Provider::of("custom_Bedrock_tuned"), Provider::Bedrock);
        assert_eq!(Provider::of("sfdc_ai__DefaultGPT41"), Provider::OpenAi);
    }

    #[test]
    fn operations_come_from_the_path() {
        assert_eq!(
            Operation::from_segment("chat-generations"),
            Some(Operation::Chat)
        );
        assert_eq!(
            Operation::from_segment("embeddings"),
            Some(Operation::Embeddings)
        );
        assert_eq!(Operation::from_segment("feedback"), None);
    }
}
