//! The extractor: find the model's text, finish reason and usage in any known response shape.

use super::response::{EmbeddingsResponse, GenerationDetails, ModelsResponse, RawUsage};
use super::Operation;
use crate::core::{Embeddings, Finish, Usage};

/// Which response shape served the answer. [`ExtractPath::Primary`] is the documented shape of
/// the operation that was called; every other path is a counted fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtractPath {
    /// The documented field of the called operation: one direct lookup.
    Primary,
    /// `generationDetails.generations[0].content`, answering a text call.
    ChatGenerations,
    /// `generation.generatedText`, answering a chat call.
    GeneratedText,
    /// `generation.text`: the field name in the spec's own schema.
    GenerationText,
    /// `generation_details.generations[0].content`: the newer `/ai/gpt/v1` surface.
    SnakeCase,
    /// `choices[0].message.content`: OpenAI-shaped bodies from custom models.
    OpenAiChoices,
    /// `generations[0].text` or `.content`: seen in third-party fixtures, never confirmed.
    GenerationsArray,
}

impl ExtractPath {
    /// Every path, primary first.
    pub const ALL: [ExtractPath; 7] = [
        ExtractPath::Primary,
        ExtractPath::ChatGenerations,
        ExtractPath::GeneratedText,
        ExtractPath::GenerationText,
        ExtractPath::SnakeCase,
        ExtractPath::OpenAiChoices,
        ExtractPath::GenerationsArray,
    ];

    /// A fixed name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractPath::Primary => "primary",
            ExtractPath::ChatGenerations => "chat_generations",
            ExtractPath::GeneratedText => "generated_text",
            ExtractPath::GenerationText => "generation_text",
            ExtractPath::SnakeCase => "snake_case",
            ExtractPath::OpenAiChoices => "openai_choices",
            ExtractPath::GenerationsArray => "generations_array",
        }
    }
}

/// No answer could be taken from a success response.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The body is not JSON, or a known field has an impossible type. Only where and what kind
    /// of problem is kept: serde_json's own message quotes the body, which is unbounded upstream
    /// content, and this message reaches the caller and the logs.
    #[error("Salesforce returned a response that is not valid JSON of a known shape: {problem} at line {line} column {column}")]
    Malformed {
        /// What kind of problem, in a few fixed words.
        problem: &'static str,
        /// Where it was found, counted from 1.
        line: usize,
        /// Where in the line, counted from 1.
        column: usize,
    },
    /// The body parsed, but no known field holds the model's text.
    #[error("Salesforce returned a response with no generated text")]
    NoText,
    /// The body says the generation failed, or is not done (a `responses` answer whose
    /// `status` is `failed`, `cancelled`, ...); the upstream's words, sanitised and bounded.
    #[error("Salesforce returned a response that is not an answer: {0}")]
    Failed(String),
    /// An embeddings answer without a vector for each input.
    #[error("Salesforce returned {got} embeddings for {expected} inputs")]
    MissingVectors {
        /// The vectors answered.
        got: usize,
        /// The inputs sent.
        expected: usize,
    },
}

/// The answer found in a response, borrowing its text from the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'r> {
    /// The model's text, unaltered.
    pub text: &'r str,
    /// Why the model stopped, normalised.
    pub finish: Finish,
    /// Token counts, from either key style, when the response has them.
    pub usage: Option<Usage>,
    /// Which shape served.
    pub path: ExtractPath,
    /// The upstream's response id, when it sent a non-empty one.
    pub id: Option<&'r str>,
}

/// What a shape offers: the text and the provider's raw finish reason.
type Candidate<'r> = (Option<&'r str>, Option<&'r str>);

/// Parses a success body in one pass.
pub fn parse(body: &[u8]) -> Result<ModelsResponse<'_>, ExtractError> {
    parse_as(body)
}

/// Parses a success body of any shape, keeping only where and what kind of problem it had.
pub(crate) fn parse_as<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ExtractError> {
    serde_json::from_slice(body).map_err(|error| ExtractError::invalid(&error))
}

impl ExtractError {
    /// A body serde_json could not read, keeping only where and what kind of problem it had.
    pub(crate) fn invalid(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        ExtractError::Malformed {
            problem: match error.classify() {
                Category::Syntax => "invalid JSON syntax",
                Category::Data => "a field of an unexpected type",
                Category::Eof => "the body ends early",
                Category::Io => "the body could not be read",
            },
            line: error.line(),
            column: error.column(),
        }
    }
}

/// Finds the answer in `response`, trying the documented shape of `operation` first and then the
/// fallbacks in the spec's order.
pub fn extract<'r>(
    response: &'r ModelsResponse<'_>,
    operation: Operation,
) -> Result<Extracted<'r>, ExtractError> {
    let primary = match operation {
        Operation::Chat => Shape::ChatGenerations,
        Operation::Text => Shape::GeneratedText,
        // Embeddings answers hold vectors, not text: `read_embeddings` reads them.
        Operation::Embeddings(_) => return Err(ExtractError::NoText),
    };
    let fallbacks = Shape::IN_SPEC_ORDER
        .into_iter()
        .filter(|shape| *shape != primary);
    for (index, shape) in std::iter::once(primary).chain(fallbacks).enumerate() {
        let (Some(text), raw_reason) = candidate(response, shape) else {
            continue;
        };
        let finish = normalise_finish_reason(raw_reason);
        // An empty answer is real only when the model was cut off or filtered; otherwise an
        // empty field means the text lives elsewhere (or nowhere).
        if text.is_empty() && !matches!(finish, Finish::ContentFilter | Finish::Length) {
            continue;
        }
        return Ok(Extracted {
            text,
            finish,
            usage: usage(response),
            path: if index == 0 {
                ExtractPath::Primary
            } else {
                shape.fallback_path()
            },
            id: response.id.as_deref().filter(|id| !id.is_empty()),
        });
    }
    Err(ExtractError::NoText)
}

/// Reads an embeddings answer for `expected` inputs: one vector per input, put in the inputs'
/// order when every entry names a distinct index.
pub fn read_embeddings(body: &[u8], expected: usize) -> Result<Embeddings, ExtractError> {
    let response: EmbeddingsResponse = parse_as(body)?;
    let mut items = response.embeddings.unwrap_or_default();
    if items.len() != expected {
        return Err(ExtractError::MissingVectors {
            got: items.len(),
            expected,
        });
    }
    let mut seen = vec![false; items.len()];
    let indexed = items.iter().all(|item| {
        item.index
            .and_then(|index| seen.get_mut(index))
            .is_some_and(|seen| !std::mem::replace(seen, true))
    });
    if indexed {
        items.sort_unstable_by_key(|item| item.index);
    }
    let usage = response
        .parameters
        .iter()
        .flat_map(|p| [p.usage.as_ref(), Some(&p.counts)])
        .chain([response.usage.as_ref()])
        .flatten()
        .find_map(normalise_usage);
    Ok(Embeddings {
        vectors: items.into_iter().map(|item| item.embedding).collect(),
        usage,
    })
}

fn first_chat_generation<'r>(details: Option<&'r GenerationDetails<'_>>) -> Candidate<'r> {
    let first = details
        .and_then(|details| details.generations.as_ref())
        .and_then(|generations| generations.first());
    match first {
        Some(generation) => (
            generation.content.as_deref(),
            generation.parameters.as_ref().and_then(|p| p.reason()),
        ),
        None => (None, None),
    }
}

/// The response shapes the extractor knows, in the spec's priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    ChatGenerations,
    GeneratedText,
    GenerationText,
    SnakeCase,
    OpenAiChoices,
    GenerationsArray,
}

impl Shape {
    const IN_SPEC_ORDER: [Shape; 6] = [
        Shape::ChatGenerations,
        Shape::GeneratedText,
        Shape::GenerationText,
        Shape::SnakeCase,
        Shape::OpenAiChoices,
        Shape::GenerationsArray,
    ];

    /// The path reported when this shape serves as a fallback.
    fn fallback_path(self) -> ExtractPath {
        match self {
            Shape::ChatGenerations => ExtractPath::ChatGenerations,
            Shape::GeneratedText => ExtractPath::GeneratedText,
            Shape::GenerationText => ExtractPath::GenerationText,
            Shape::SnakeCase => ExtractPath::SnakeCase,
            Shape::OpenAiChoices => ExtractPath::OpenAiChoices,
            Shape::GenerationsArray => ExtractPath::GenerationsArray,
        }
    }
}

fn candidate<'r>(response: &'r ModelsResponse<'_>, shape: Shape) -> Candidate<'r> {
    let text_reason = || {
        response
            .generation
            .as_ref()
            .and_then(|g| g.parameters.as_ref())
            .and_then(|p| p.reason())
    };
    match shape {
        Shape::ChatGenerations => first_chat_generation(response.generation_details.as_ref()),
        Shape::GeneratedText => (
            response
                .generation
                .as_ref()
                .and_then(|g| g.generated_text.as_deref()),
            text_reason(),
        ),
        Shape::GenerationText => (
            response.generation.as_ref().and_then(|g| g.text.as_deref()),
            text_reason(),
        ),
        Shape::SnakeCase => first_chat_generation(response.generation_details_snake.as_ref()),
        Shape::OpenAiChoices => match response.choices.as_ref().and_then(|c| c.first()) {
            Some(choice) => (
                choice.message.as_ref().and_then(|m| m.content.as_deref()),
                choice.finish_reason.as_deref(),
            ),
            None => (None, None),
        },
        Shape::GenerationsArray => match response.generations.as_ref().and_then(|g| g.first()) {
            Some(generation) => {
                // Two names for one field: an empty `text` must not hide a `content` that holds
                // the answer, as an empty field means the text lives elsewhere.
                let text = generation.text.as_deref();
                let text = text
                    .filter(|text| !text.is_empty())
                    .or(generation.content.as_deref())
                    .or(text);
                (text, generation.finish_reason.as_deref())
            }
            None => (None, None),
        },
    }
}

/// Usage from wherever the provider put it, in either key style.
fn usage(response: &ModelsResponse<'_>) -> Option<Usage> {
    let details = [
        response.generation_details.as_ref(),
        response.generation_details_snake.as_ref(),
    ];
    let detail_params = details
        .into_iter()
        .flatten()
        .filter_map(|d| d.parameters.as_ref());
    let params = detail_params.chain(response.parameters.as_ref());
    params
        .flat_map(|p| [p.usage.as_ref(), Some(&p.counts)])
        .chain([response.usage.as_ref()])
        .flatten()
        .find_map(normalise_usage)
}

fn normalise_usage(raw: &RawUsage) -> Option<Usage> {
    let prompt = raw.prompt_tokens.or(raw.input_token_count);
    let completion = raw.completion_tokens.or(raw.output_token_count);
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let prompt_tokens = prompt.unwrap_or(0);
    let completion_tokens = completion.unwrap_or(0);
    Some(Usage {
        input_tokens: prompt_tokens,
        output_tokens: completion_tokens,
        total_tokens: raw
            .total_tokens
            .or(raw.total_token_count)
            .unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
        cached_tokens: raw
            .prompt_tokens_details
            .and_then(|details| details.cached_tokens)
            .or(raw.cache_read_input_token_count),
        cache_write_tokens: None,
        reasoning_tokens: None,
    })
}

/// Maps a provider's finish reason, per the spec's table; absent or unknown is [`Finish::Stop`].
pub fn normalise_finish_reason(raw: Option<&str>) -> Finish {
    match raw {
        Some("length" | "max_tokens" | "MAX_TOKENS") => Finish::Length,
        Some("tool_use" | "tool_calls") => Finish::ToolCalls,
        Some("content_filter" | "SAFETY" | "RECITATION") => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract_json(
        value: serde_json::Value,
        op: Operation,
    ) -> Result<(String, &'static str, Option<Usage>, ExtractPath), ExtractError> {
        let body = serde_json::to_vec(&value).unwrap();
        let response = parse(&body)?;
        extract(&response, op).map(|e| (e.text.to_owned(), e.finish.as_str(), e.usage, e.path))
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn documented_chat_fixture_uses_the_primary_path() {
        let body = fixture("chat-generations.response.openai.json");
        let response = parse(&body).unwrap();
        let answer = extract(&response, Operation::Chat).unwrap();
        assert_eq!(answer.text, "Here is a recipe for cherry pie...");
        assert_eq!(answer.path, ExtractPath::Primary);
        assert_eq!(answer.finish.as_str(), "stop");
        assert_eq!(answer.id, Some("chatcmpl-9AMuFltdq7M5ntZVvQcAkgyWhfoas"));
        assert_eq!(
            answer.usage,
            Some(Usage {
                input_tokens: 39,
                output_tokens: 607,
                total_tokens: 646,
                cached_tokens: Some(0),
                cache_write_tokens: None,
                reasoning_tokens: None,
            })
        );
    }

    #[test]
    fn bedrock_fixture_has_camel_case_usage_and_stop_reason() {
        let body = fixture("chat-generations.response.bedrock.json");
        let response = parse(&body).unwrap();
        let answer = extract(&response, Operation::Chat).unwrap();
        assert!(answer.text.starts_with("Cherry pie: pit 4 cups"));
        assert_eq!(answer.path, ExtractPath::Primary);
        assert_eq!(answer.finish.as_str(), "stop");
        assert_eq!(
            answer.usage,
            Some(Usage {
                input_tokens: 42,
                output_tokens: 31,
                total_tokens: 73,
                cached_tokens: Some(0),
                cache_write_tokens: None,
                reasoning_tokens: None,
            })
        );
    }

    #[test]
    fn documented_text_fixture_uses_the_primary_path() {
        let body = fixture("generations.response.json");
        let response = parse(&body).unwrap();
        let answer = extract(&response, Operation::Text).unwrap();
        assert!(answer
            .text
            .starts_with("Once upon a time in sunny San Diego"));
        assert_eq!(answer.path, ExtractPath::Primary);
        assert_eq!(answer.usage.unwrap().total_tokens, 646);
    }

    #[test]
    fn every_fallback_shape_is_found_and_named() {
        let cases = [
            (
                json!({"generation": {"generatedText": "a"}}),
                Operation::Chat,
                ExtractPath::GeneratedText,
            ),
            (
                json!({"generationDetails": {"generations": [{"content": "a"}]}}),
                Operation::Text,
                ExtractPath::ChatGenerations,
            ),
            (
                json!({"generation": {"text": "a"}}),
                Operation::Text,
                ExtractPath::GenerationText,
            ),
            (
                json!({"generation": {"text": "a"}}),
                Operation::Chat,
                ExtractPath::GenerationText,
            ),
            (
                json!({"generation_details": {"generations": [{"content": "a"}]}}),
                Operation::Chat,
                ExtractPath::SnakeCase,
            ),
            (
                json!({"choices": [{"message": {"content": "a"}, "finish_reason": "length"}]}),
                Operation::Chat,
                ExtractPath::OpenAiChoices,
            ),
            (
                json!({"generations": [{"text": "a"}]}),
                Operation::Chat,
                ExtractPath::GenerationsArray,
            ),
            (
                json!({"generations": [{"content": "a"}]}),
                Operation::Text,
                ExtractPath::GenerationsArray,
            ),
        ];
        for (body, op, path) in cases {
            let (text, _, _, served) = extract_json(body.clone(), op).unwrap();
            assert_eq!((text.as_str(), served), ("a", path), "{body}");
        }
    }

    #[test]
    fn empty_generations_text_does_not_hide_content() {
        // Found by the property tests: `text.or(content)` took an empty `text` and then
        // skipped the whole shape, answering 502 although `content` held the answer.
        let body = json!({"generations": [{"text": "", "content": "a"}]});
        let (text, _, _, path) = extract_json(body, Operation::Chat).unwrap();
        assert_eq!((text.as_str(), path), ("a", ExtractPath::GenerationsArray));
        let filtered = json!({"generations": [{"text": "", "finish_reason": "content_filter"}]});
        let (text, reason, _, _) = extract_json(filtered, Operation::Chat).unwrap();
        assert_eq!((text.as_str(), reason), ("", "content_filter"));
        let both = json!({"generations": [{"text": "t", "content": "c"}]});
        assert_eq!(extract_json(both, Operation::Text).unwrap().0, "t");
    }

    #[test]
    fn primary_wins_over_fallbacks() {
        let body = json!({"choices": [{"message": {"content": "fallback"}}],
                          "generationDetails": {"generations": [{"content": "primary"}]}});
        let (text, _, _, path) = extract_json(body, Operation::Chat).unwrap();
        assert_eq!((text.as_str(), path), ("primary", ExtractPath::Primary));
    }

    #[test]
    fn no_text_is_an_error_never_an_empty_answer() {
        for body in [
            json!({}),
            json!({"generationDetails": {"generations": []}}),
            json!({"generationDetails": {"generations": [{"content": null}]}}),
            json!({"generationDetails": {"generations": [{"content": ""}]}}),
            json!({"errorCode": "X", "message": "looks like an error"}),
        ] {
            assert!(
                matches!(
                    extract_json(body.clone(), Operation::Chat),
                    Err(ExtractError::NoText)
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn empty_text_is_an_answer_when_filtered() {
        let body = json!({"generationDetails": {"generations": [{"content": "",
                          "parameters": {"finishReason": "SAFETY"}}]}});
        let (text, reason, _, _) = extract_json(body, Operation::Chat).unwrap();
        assert_eq!((text.as_str(), reason), ("", "content_filter"));
    }

    #[test]
    fn malformed_messages_hold_no_upstream_content() {
        // serde_json quotes a whole string found where an object was expected, so its message
        // carried unbounded upstream text to the caller's 502 and the warning log.
        let secret = format!("upstream-secret\n{}", "x".repeat(10_000));
        let cases = [
            (
                json!({ "generationDetails": secret }),
                "a field of an unexpected type at line 1 column",
            ),
            (
                json!(secret),
                "a field of an unexpected type at line 1 column",
            ),
        ];
        for (value, says) in cases {
            let body = serde_json::to_vec(&value).unwrap();
            let message = parse(&body).unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
            assert!(!message.contains("upstream-secret"), "{message}");
            assert!(message.len() < 200, "{message}");
        }
        let message = parse(b"{\"generationDetails\": ").unwrap_err().to_string();
        assert!(
            message.ends_with("the body ends early at line 1 column 22"),
            "{message}"
        );
        let message = parse(b"<html>").unwrap_err().to_string();
        assert!(
            message.ends_with("invalid JSON syntax at line 1 column 1"),
            "{message}"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &b"not json"[..],
            b"{\"generationDetails\": ",
            b"{\"generationDetails\": {\"generations\": [{\"content\": 5}]}}",
        ] {
            assert!(matches!(parse(body), Err(ExtractError::Malformed { .. })));
        }
    }

    #[test]
    fn text_is_not_altered() {
        let body =
            json!({"generationDetails": {"generations": [{"content": "  two\nlines \u{e9} "}]}});
        let (text, _, _, _) = extract_json(body, Operation::Chat).unwrap();
        assert_eq!(text, "  two\nlines \u{e9} ");
    }

    #[test]
    fn usage_in_either_style_and_place() {
        let cases = [
            (
                json!({"prompt_tokens": 8, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 5}}),
                Usage {
                    input_tokens: 8,
                    output_tokens: 3,
                    total_tokens: 11,
                    cached_tokens: Some(5),
                    cache_write_tokens: None,
                    reasoning_tokens: None,
                },
            ),
            (
                json!({"inputTokenCount": 8, "outputTokenCount": 3, "cacheReadInputTokenCount": 5, "cacheWriteInputTokenCount": 2}),
                Usage {
                    input_tokens: 8,
                    output_tokens: 3,
                    total_tokens: 11,
                    cached_tokens: Some(5),
                    cache_write_tokens: None,
                    reasoning_tokens: None,
                },
            ),
            (
                json!({"prompt_tokens": 2, "completion_tokens": 3, "prompt_tokens_details": "n/a"}),
                Usage {
                    input_tokens: 2,
                    output_tokens: 3,
                    total_tokens: 5,
                    cached_tokens: None,
                    cache_write_tokens: None,
                    reasoning_tokens: None,
                },
            ),
            (
                json!({"inputTokenCount": 2, "outputTokenCount": 3, "totalTokenCount": 9}),
                Usage {
                    input_tokens: 2,
                    output_tokens: 3,
                    total_tokens: 9,
                    cached_tokens: None,
                    cache_write_tokens: None,
                    reasoning_tokens: None,
                },
            ),
            (
                json!({"prompt_tokens": "2", "completion_tokens": 3.0}),
                Usage {
                    input_tokens: 2,
                    output_tokens: 3,
                    total_tokens: 5,
                    cached_tokens: None,
                    cache_write_tokens: None,
                    reasoning_tokens: None,
                },
            ),
        ];
        for (counts, expected) in cases {
            let nested = json!({"generationDetails": {"generations": [{"content": "a"}], "parameters": {"usage": counts.clone()}}});
            assert_eq!(
                extract_json(nested, Operation::Chat).unwrap().2,
                Some(expected)
            );
            let direct = json!({"generationDetails": {"generations": [{"content": "a"}], "parameters": counts.clone()}});
            assert_eq!(
                extract_json(direct, Operation::Chat).unwrap().2,
                Some(expected)
            );
            let top =
                json!({"generation": {"generatedText": "a"}, "parameters": {"usage": counts}});
            assert_eq!(
                extract_json(top, Operation::Text).unwrap().2,
                Some(expected)
            );
        }
        let none = json!({"generationDetails": {"generations": [{"content": "a"}], "parameters": {"usage": {"x": 1}}}});
        assert_eq!(extract_json(none, Operation::Chat).unwrap().2, None);
        let junk = json!({"generationDetails": {"generations": [{"content": "a"}], "parameters": {"usage": {"prompt_tokens": [1], "completion_tokens": -1}}}});
        assert_eq!(extract_json(junk, Operation::Chat).unwrap().2, None);
    }

    #[test]
    fn finish_reasons_follow_the_spec_table() {
        let table = [
            (Some("stop"), "stop"),
            (Some("end_turn"), "stop"),
            (Some("stop_sequence"), "stop"),
            (Some("STOP"), "stop"),
            (Some("length"), "length"),
            (Some("max_tokens"), "length"),
            (Some("MAX_TOKENS"), "length"),
            (Some("tool_use"), "tool_calls"),
            (Some("tool_calls"), "tool_calls"),
            (Some("content_filter"), "content_filter"),
            (Some("SAFETY"), "content_filter"),
            (Some("RECITATION"), "content_filter"),
            (None, "stop"),
            (Some("weird"), "stop"),
        ];
        for (raw, expected) in table {
            assert_eq!(normalise_finish_reason(raw).as_str(), expected, "{raw:?}");
        }
    }

    #[test]
    fn embeddings_come_back_in_the_inputs_order_with_usage() {
        let body = fixture("embeddings.response.json");
        let answer = read_embeddings(&body, 1).unwrap();
        assert_eq!(answer.vectors.len(), 1);
        assert_eq!(answer.vectors[0][..3], [0.0015662104, -0.0087213, 0.0231]);
        assert_eq!(
            answer.usage.map(|u| (u.input_tokens, u.total_tokens)),
            Some((11, 11))
        );

        let shuffled = json!({"embeddings": [{"embedding": [2.0], "index": 1},
                                             {"embedding": [1.0], "index": 0}]});
        let answer = read_embeddings(&serde_json::to_vec(&shuffled).unwrap(), 2).unwrap();
        assert_eq!(answer.vectors, [vec![1.0], vec![2.0]]);
        // Indexes that do not name each input once leave the answer's own order.
        let repeated = json!({"embeddings": [{"embedding": [2.0], "index": 0},
                                             {"embedding": [1.0], "index": 0}]});
        let answer = read_embeddings(&serde_json::to_vec(&repeated).unwrap(), 2).unwrap();
        assert_eq!(answer.vectors, [vec![2.0], vec![1.0]]);
    }

    #[test]
    fn an_embeddings_answer_short_of_vectors_is_an_error() {
        let one = json!({"embeddings": [{"embedding": [1.0], "index": 0}]});
        assert!(matches!(
            read_embeddings(&serde_json::to_vec(&one).unwrap(), 2),
            Err(ExtractError::MissingVectors {
                got: 1,
                expected: 2
            })
        ));
        assert!(matches!(
            read_embeddings(b"{}", 1),
            Err(ExtractError::MissingVectors {
                got: 0,
                expected: 1
            })
        ));
        assert!(matches!(
            read_embeddings(b"[", 1),
            Err(ExtractError::Malformed { .. })
        ));
    }
}
