//! A reference extractor written against `serde_json::Value`, independent of the crate's typed
//! parse: which bodies are malformed, and which text, finish reason, usage and path the spec's
//! priority order picks from the rest.
//!
//! "Malformed" follows serde's rules for the crate's response structs: every field is optional
//! and unknown fields are skipped, but a known field of the wrong type fails the whole body. A
//! derived struct also accepts an array listing its fields in declaration order (serde_json
//! calls `visit_seq` for `[`), so the field lists below are in the declaration order of
//! `src/salesforce/response.rs`; `Parameters` flattens its counts and so accepts objects only.

use serde_json::{Map, Value};

/// `Err(())` where the crate must answer `ExtractError::Malformed`.
pub type Typed<T> = Result<T, ()>;

const RESPONSE: &[&str] = &[
    "id",
    "generationDetails",
    "generation_details",
    "generation",
    "choices",
    "generations",
    "parameters",
    "usage",
];
const DETAILS: &[&str] = &["generations", "parameters"];
const CHAT_GENERATION: &[&str] = &["content", "parameters"];
const TEXT_GENERATION: &[&str] = &["generatedText", "text", "parameters"];
const GENERATION_PARAMETERS: &[&str] = &["finish_reason", "stop_reason", "finishReason"];
const CHOICE: &[&str] = &["message", "finish_reason"];
const MESSAGE: &[&str] = &["content"];
const LOOSE_GENERATION: &[&str] = &["text", "content", "finish_reason"];
const USAGE: &[&str] = &[
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "inputTokenCount",
    "outputTokenCount",
    "totalTokenCount",
];

/// The fields of a struct-typed position.
#[derive(Clone, Copy)]
struct Fields<'v> {
    names: &'static [&'static str],
    source: Source<'v>,
}

#[derive(Clone, Copy)]
enum Source<'v> {
    Map(&'v Map<String, Value>),
    Seq(&'v [Value]),
}

impl<'v> Fields<'v> {
    /// A required struct: an object, or an array of at most as many fields.
    fn of(value: &'v Value, names: &'static [&'static str]) -> Typed<Self> {
        let source = match value {
            Value::Object(map) => Source::Map(map),
            Value::Array(items) if items.len() <= names.len() => Source::Seq(items),
            _ => return Err(()),
        };
        Ok(Fields { names, source })
    }

    /// An optional struct: null and absent are `None`.
    fn optional(value: Option<&'v Value>, names: &'static [&'static str]) -> Typed<Option<Self>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Fields::of(value, names).map(Some),
        }
    }

    fn get(self, name: &str) -> Option<&'v Value> {
        match self.source {
            Source::Map(map) => map.get(name),
            Source::Seq(items) => {
                let index = self.names.iter().position(|n| *n == name)?;
                items.get(index)
            }
        }
    }

    fn string(self, name: &str) -> Typed<Option<&'v str>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(()),
        }
    }

    fn list<T>(self, name: &str, item: impl Fn(&'v Value) -> Typed<T>) -> Typed<Option<Vec<T>>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items.iter().map(item).collect::<Typed<_>>().map(Some),
            Some(_) => Err(()),
        }
    }
}

/// A response as the spec reads it.
#[derive(Debug, Default)]
pub struct Response<'v> {
    pub id: Option<&'v str>,
    details: Option<Details<'v>>,
    details_snake: Option<Details<'v>>,
    generation: Option<TextGeneration<'v>>,
    choices: Option<Vec<Candidate<'v>>>,
    generations: Option<Vec<Candidate<'v>>>,
    parameters: Option<Parameters>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct Details<'v> {
    generations: Option<Vec<Candidate<'v>>>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Default)]
struct TextGeneration<'v> {
    generated_text: Option<&'v str>,
    text: Option<&'v str>,
    reason: Option<&'v str>,
}

/// What one shape offers: the text and the provider's raw finish reason.
#[derive(Debug, Default, Clone, Copy)]
struct Candidate<'v> {
    text: Option<&'v str>,
    reason: Option<&'v str>,
}

#[derive(Debug, Default)]
struct Parameters {
    usage: Option<Usage>,
    counts: Usage,
}

/// Raw counts, lenient: each is `None` unless it reads as a non-negative integer.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    prompt: Option<u64>,
    completion: Option<u64>,
    total: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
    total_count: Option<u64>,
}

/// Reads a response body, or says it is malformed.
pub fn read(value: &Value) -> Typed<Response<'_>> {
    let fields = Fields::of(value, RESPONSE)?;
    Ok(Response {
        id: fields.string("id")?,
        details: details(fields.get("generationDetails"))?,
        details_snake: details(fields.get("generation_details"))?,
        generation: text_generation(fields.get("generation"))?,
        choices: fields.list("choices", choice)?,
        generations: fields.list("generations", loose_generation)?,
        parameters: parameters(fields.get("parameters"))?,
        usage: usage(fields.get("usage"))?,
    })
}

fn details(value: Option<&Value>) -> Typed<Option<Details<'_>>> {
    let Some(fields) = Fields::optional(value, DETAILS)? else {
        return Ok(None);
    };
    Ok(Some(Details {
        generations: fields.list("generations", chat_generation)?,
        parameters: parameters(fields.get("parameters"))?,
    }))
}

fn chat_generation(value: &Value) -> Typed<Candidate<'_>> {
    let fields = Fields::of(value, CHAT_GENERATION)?;
    Ok(Candidate {
        text: fields.string("content")?,
        reason: reason(fields.get("parameters"))?,
    })
}

fn text_generation(value: Option<&Value>) -> Typed<Option<TextGeneration<'_>>> {
    let Some(fields) = Fields::optional(value, TEXT_GENERATION)? else {
        return Ok(None);
    };
    Ok(Some(TextGeneration {
        generated_text: fields.string("generatedText")?,
        text: fields.string("text")?,
        reason: reason(fields.get("parameters"))?,
    }))
}

/// A generation's `parameters`: the first of `finish_reason`, `stop_reason`, `finishReason`.
fn reason(value: Option<&Value>) -> Typed<Option<&str>> {
    let Some(fields) = Fields::optional(value, GENERATION_PARAMETERS)? else {
        return Ok(None);
    };
    let finish_reason = fields.string("finish_reason")?;
    let stop_reason = fields.string("stop_reason")?;
    let finish_reason_camel = fields.string("finishReason")?;
    Ok(finish_reason.or(stop_reason).or(finish_reason_camel))
}

fn choice(value: &Value) -> Typed<Candidate<'_>> {
    let fields = Fields::of(value, CHOICE)?;
    let message = Fields::optional(fields.get("message"), MESSAGE)?;
    Ok(Candidate {
        text: match message {
            Some(message) => message.string("content")?,
            None => None,
        },
        reason: fields.string("finish_reason")?,
    })
}

/// `generations[]`: the text under `text`, or under `content` when `text` is absent or empty.
fn loose_generation(value: &Value) -> Typed<Candidate<'_>> {
    let fields = Fields::of(value, LOOSE_GENERATION)?;
    let text = fields.string("text")?;
    let content = fields.string("content")?;
    Ok(Candidate {
        text: match (text, content) {
            (Some(text), _) if !text.is_empty() => Some(text),
            (text, None) => text,
            (_, content) => content,
        },
        reason: fields.string("finish_reason")?,
    })
}

/// `parameters` flattens its counts, so serde reads it as a map only.
fn parameters(value: Option<&Value>) -> Typed<Option<Parameters>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(Parameters {
            usage: usage(map.get("usage"))?,
            counts: counts(|name| map.get(name)),
        })),
        Some(_) => Err(()),
    }
}

fn usage(value: Option<&Value>) -> Typed<Option<Usage>> {
    let Some(fields) = Fields::optional(value, USAGE)? else {
        return Ok(None);
    };
    Ok(Some(counts(|name| fields.get(name))))
}

fn counts<'v>(get: impl Fn(&str) -> Option<&'v Value>) -> Usage {
    let count = |name: &str| get(name).and_then(lenient_count);
    Usage {
        prompt: count("prompt_tokens"),
        completion: count("completion_tokens"),
        total: count("total_tokens"),
        input: count("inputTokenCount"),
        output: count("outputTokenCount"),
        total_count: count("totalTokenCount"),
    }
}

/// A count as providers send it: an integer, an integral float or a numeric string.
pub fn lenient_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            let float = number.as_f64()?;
            let exact = float >= 0.0 && float.fract() == 0.0 && float < 18446744073709551616.0;
            exact.then_some(float as u64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The answer the spec picks.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer<'v> {
    pub text: &'v str,
    pub finish_reason: &'static str,
    pub path: &'static str,
    pub usage: Option<[u64; 3]>,
}

/// The spec's finish-reason table; absent or unknown is `stop`.
pub fn finish_reason(raw: Option<&str>) -> &'static str {
    match raw {
        Some("length") | Some("max_tokens") | Some("MAX_TOKENS") => "length",
        Some("tool_use") | Some("tool_calls") => "tool_calls",
        Some("content_filter") | Some("SAFETY") | Some("RECITATION") => "content_filter",
        _ => "stop",
    }
}

/// Reads the answer: the called operation's documented shape, then the others in spec order.
/// An empty text counts only when the model was cut off or filtered.
pub fn answer<'v>(response: &Response<'v>, chat: bool) -> Option<Answer<'v>> {
    let first = |list: &Option<Vec<Candidate<'v>>>| {
        list.as_ref()
            .and_then(|items| items.first().copied())
            .unwrap_or_default()
    };
    let generation = response.generation.as_ref();
    let reason = generation.and_then(|g| g.reason);
    let in_spec_order = [
        (
            "chat_generations",
            first(
                &response
                    .details
                    .as_ref()
                    .and_then(|d| d.generations.clone()),
            ),
        ),
        (
            "generated_text",
            Candidate {
                text: generation.and_then(|g| g.generated_text),
                reason,
            },
        ),
        (
            "generation_text",
            Candidate {
                text: generation.and_then(|g| g.text),
                reason,
            },
        ),
        (
            "snake_case",
            first(
                &response
                    .details_snake
                    .as_ref()
                    .and_then(|d| d.generations.clone()),
            ),
        ),
        ("openai_choices", first(&response.choices)),
        ("generations_array", first(&response.generations)),
    ];
    let primary = if chat { 0 } else { 1 };
    let order = std::iter::once(primary).chain((0..in_spec_order.len()).filter(|i| *i != primary));
    for (position, index) in order.enumerate() {
        let (name, candidate) = in_spec_order[index];
        let Some(text) = candidate.text else { continue };
        let finish_reason = finish_reason(candidate.reason);
        if text.is_empty() && !matches!(finish_reason, "content_filter" | "length") {
            continue;
        }
        return Some(Answer {
            text,
            finish_reason,
            path: if position == 0 { "primary" } else { name },
            usage: usage_of(response),
        });
    }
    None
}

/// Usage from the first place that has a prompt or completion count, in either key style:
/// `generationDetails.parameters` (`usage`, then direct), the same under `generation_details`,
/// top-level `parameters`, then top-level `usage`.
fn usage_of(response: &Response<'_>) -> Option<[u64; 3]> {
    let parameters = [
        response
            .details
            .as_ref()
            .and_then(|d| d.parameters.as_ref()),
        response
            .details_snake
            .as_ref()
            .and_then(|d| d.parameters.as_ref()),
        response.parameters.as_ref(),
    ];
    let mut places: Vec<Usage> = Vec::new();
    for parameters in parameters.into_iter().flatten() {
        places.extend(parameters.usage);
        places.push(parameters.counts);
    }
    places.extend(response.usage);
    places.into_iter().find_map(|raw| {
        let prompt = raw.prompt.or(raw.input);
        let completion = raw.completion.or(raw.output);
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        let total = raw
            .total
            .or(raw.total_count)
            .unwrap_or(prompt.saturating_add(completion));
        Some([prompt, completion, total])
    })
}
