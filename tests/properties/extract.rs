//! The extractor: arbitrary bodies never panic and agree with the reference reading of the
//! spec; generated bodies of every shape give back their text unaltered and their usage
//! normalised.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};
use sf_models_bridge::core::Delivery;
use sf_models_bridge::front::{self, AnswerCtx};
use sf_models_bridge::surface::einstein::{self, ExtractError, Extracted, Operation};

use crate::json;
use crate::reference;

const CTX: AnswerCtx<'static> = AnswerCtx {
    fallback_id: "chatcmpl-local",
    created: 1,
    model: "gpt-4o-mini",
    delivery: Delivery::WHOLE,
};

/// Extracts for both operations and renders each answer; nothing may panic.
fn extract_any(body: &[u8]) {
    let Ok(response) = einstein::parse(body) else {
        return;
    };
    for operation in [Operation::Chat, Operation::Text] {
        if let Ok(answer) = einstein::extract(&response, operation) {
            check_rendered(&answer);
        }
    }
}

/// Both OpenAI bodies carry the text unaltered.
fn check_rendered(answer: &Extracted<'_>) {
    let generation = einstein::generation(answer.clone());
    let chat: Value =
        serde_json::from_slice(&front::chat::completion_json(&generation, &CTX).unwrap()).unwrap();
    assert_eq!(chat["choices"][0]["message"]["content"], answer.text);
    let text: Value =
        serde_json::from_slice(&front::completions::completion_json(&generation, &CTX).unwrap())
            .unwrap();
    assert_eq!(text["choices"][0]["text"], answer.text);
}

/// The crate and the reference agree on malformed bodies, and on every answer.
fn agrees_with_reference(value: &Value) {
    let body = serde_json::to_vec(value).unwrap();
    // Read back, so the reference sees numbers exactly as the parser does.
    let value: Value = serde_json::from_slice(&body).unwrap();
    let expected = reference::read(&value);
    let parsed = einstein::parse(&body);
    let (expected, parsed) = match (expected, parsed) {
        (Err(()), Err(ExtractError::Malformed { .. })) => return,
        (Ok(expected), Ok(parsed)) => (expected, parsed),
        (expected, parsed) => panic!("{value}: reference {expected:?}, crate {parsed:?}"),
    };
    for (operation, chat) in [(Operation::Chat, true), (Operation::Text, false)] {
        let want = reference::answer(&expected, chat);
        match (einstein::extract(&parsed, operation), want) {
            (Err(ExtractError::NoText), None) => {}
            (Ok(got), Some(want)) => {
                let usage = got
                    .usage
                    .map(|u| [u.input_tokens, u.output_tokens, u.total_tokens]);
                let got_answer = reference::Answer {
                    text: got.text,
                    finish_reason: got.finish.as_str(),
                    path: got.path.as_str(),
                    usage,
                };
                assert_eq!(got_answer, want, "{value} {operation:?}");
                assert_eq!(got.id, expected.id.filter(|id| !id.is_empty()));
                check_rendered(&got);
            }
            (got, want) => panic!("{value} {operation:?}: crate {got:?}, reference {want:?}"),
        }
    }
}

/// A finish reason: one from the spec's table, or anything.
fn raw_reason() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "stop", "end_turn", "stop_sequence", "STOP", "length", "max_tokens", "MAX_TOKENS",
            "tool_use", "tool_calls", "content_filter", "SAFETY", "RECITATION",
        ])
        .prop_map(String::from),
        1 => json::string(),
    ]
}

/// A body whose known fields are each absent, null, of the right type, or anything.
fn loose_response() -> impl Strategy<Value = Value> {
    let text = || json::slot(json::string().prop_map(Value::from).boxed());
    let reason = || json::slot(raw_reason().prop_map(Value::from).boxed());
    let generation_parameters = (reason(), reason(), reason()).prop_map(|(a, b, c)| {
        json::object(vec![
            ("finish_reason", a),
            ("stop_reason", b),
            ("finishReason", c),
        ])
    });
    let count = || {
        json::slot(
            prop_oneof![
                (0u64..1000).prop_map(Value::from),
                (0u32..1000).prop_map(|n| Value::from(n.to_string())),
                json::number(),
            ]
            .boxed(),
        )
    };
    let usage =
        (count(), count(), count(), count(), count(), count()).prop_map(|(p, c, t, i, o, tc)| {
            json::object(vec![
                ("prompt_tokens", p),
                ("completion_tokens", c),
                ("total_tokens", t),
                ("inputTokenCount", i),
                ("outputTokenCount", o),
                ("totalTokenCount", tc),
            ])
        });
    let parameters =
        (json::slot(usage.clone().boxed()), usage.clone()).prop_map(|(u, mut flat)| {
            if let (Some(map), Some(u)) = (flat.as_object_mut(), u) {
                map.insert("usage".into(), u);
            }
            flat
        });
    let chat_generation = (text(), json::slot(generation_parameters.clone().boxed()))
        .prop_map(|(c, p)| json::object(vec![("content", c), ("parameters", p)]));
    let details = (
        json::slot(
            prop::collection::vec(chat_generation, 0..3)
                .prop_map(Value::Array)
                .boxed(),
        ),
        json::slot(parameters.clone().boxed()),
    )
        .prop_map(|(g, p)| json::object(vec![("generations", g), ("parameters", p)]));
    let generation =
        (text(), text(), json::slot(generation_parameters.boxed())).prop_map(|(g, t, p)| {
            json::object(vec![("generatedText", g), ("text", t), ("parameters", p)])
        });
    let choice = (text(), reason()).prop_map(|(c, r)| {
        json::object(vec![
            ("message", Some(json::object(vec![("content", c)]))),
            ("finish_reason", r),
        ])
    });
    let loose = (text(), text(), reason()).prop_map(|(t, c, r)| {
        json::object(vec![("text", t), ("content", c), ("finish_reason", r)])
    });
    let list = |item: BoxedStrategy<Value>| {
        json::slot(
            prop::collection::vec(item, 0..3)
                .prop_map(Value::Array)
                .boxed(),
        )
    };
    (
        text(),
        json::slot(details.clone().boxed()),
        json::slot(details.boxed()),
        json::slot(generation.boxed()),
        list(choice.boxed()),
        list(loose.boxed()),
        json::slot(parameters.boxed()),
        json::slot(usage.boxed()),
    )
        .prop_map(|(id, d, ds, g, c, gs, p, u)| {
            json::object(vec![
                ("id", id),
                ("generationDetails", d),
                ("generation_details", ds),
                ("generation", g),
                ("choices", c),
                ("generations", gs),
                ("parameters", p),
                ("usage", u),
            ])
        })
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_bodies_agree_with_the_reference(
        value in prop_oneof![1 => json::value(), 3 => loose_response()]
    ) {
        agrees_with_reference(&value);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in json::bytes()) {
        extract_any(&bytes);
    }

    #[test]
    fn generated_bodies_give_their_text_back(body in response()) {
        check_generated(&body);
    }
}

/// The shapes of the spec's table, in its order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    ChatGenerations,
    GeneratedText,
    GenerationText,
    SnakeCase,
    OpenAiChoices,
    GenerationsText,
    GenerationsContent,
}

/// Where the usage is put.
#[derive(Debug, Clone, Copy)]
enum Place {
    DetailsUsage,
    DetailsDirect,
    TopParametersUsage,
    TopParametersDirect,
    TopUsage,
}

/// How a count is written.
#[derive(Debug, Clone, Copy)]
enum Written {
    Int,
    Float,
    Text,
    PaddedText,
}

#[derive(Debug, Clone)]
struct UsageGen {
    camel: bool,
    prompt: Option<(u64, Written)>,
    completion: Option<(u64, Written)>,
    total: Option<(u64, Written)>,
    place: Place,
}

#[derive(Debug, Clone)]
struct ResponseGen {
    shape: Shape,
    chat: bool,
    text: String,
    reason: Option<(usize, String)>,
    usage: Option<UsageGen>,
    id: Option<String>,
    /// Later entries of the shape's array, which must never be read.
    others: Vec<String>,
}

fn count() -> impl Strategy<Value = (u64, Written)> {
    let written = select(vec![
        Written::Int,
        Written::Float,
        Written::Text,
        Written::PaddedText,
    ]);
    prop_oneof![
        3 => (0u64..100_000, written),
        1 => (any::<u64>(), Just(Written::Int)),
        1 => (any::<u64>(), Just(Written::Text)),
    ]
}

fn usage_gen() -> impl Strategy<Value = UsageGen> {
    let place = select(vec![
        Place::DetailsUsage,
        Place::DetailsDirect,
        Place::TopParametersUsage,
        Place::TopParametersDirect,
        Place::TopUsage,
    ]);
    (
        any::<bool>(),
        proptest::option::weighted(0.9, count()),
        proptest::option::weighted(0.9, count()),
        proptest::option::of(count()),
        place,
    )
        .prop_map(|(camel, prompt, completion, total, place)| UsageGen {
            camel,
            prompt,
            completion,
            total,
            place,
        })
}

fn response() -> impl Strategy<Value = ResponseGen> {
    let shape = select(vec![
        Shape::ChatGenerations,
        Shape::GeneratedText,
        Shape::GenerationText,
        Shape::SnakeCase,
        Shape::OpenAiChoices,
        Shape::GenerationsText,
        Shape::GenerationsContent,
    ]);
    let text = prop_oneof![4 => json::string(), 1 => Just(String::new()), 1 => "\\PC{200,600}"];
    (
        shape,
        any::<bool>(),
        text,
        proptest::option::of((0usize..3, raw_reason())),
        proptest::option::of(usage_gen()),
        proptest::option::of(json::string()),
        prop::collection::vec(json::string(), 0..3),
    )
        .prop_map(
            |(shape, chat, text, reason, usage, id, others)| ResponseGen {
                shape,
                chat,
                text,
                reason,
                usage,
                id,
                others,
            },
        )
}

fn count_json((count, written): (u64, Written)) -> Value {
    match written {
        // Only counts a float holds exactly are written as floats.
        Written::Float if count < 1 << 53 => Value::from(count as f64),
        Written::Text => Value::from(count.to_string()),
        Written::PaddedText => Value::from(format!(" {count}\t")),
        Written::Int | Written::Float => Value::from(count),
    }
}

impl ResponseGen {
    fn json(&self) -> Value {
        let reason_key = |key: usize| ["finish_reason", "stop_reason", "finishReason"][key];
        let generation_parameters = self
            .reason
            .as_ref()
            .map(|(key, reason)| json!({ reason_key(*key): reason, "index": 0 }));
        let flat_reason = self.reason.as_ref().map(|(_, reason)| json!(reason));
        let text = json!(self.text);
        let entries = |first: Value, other: &dyn Fn(&str) -> Value| {
            let mut entries = vec![first];
            entries.extend(self.others.iter().map(|o| other(o)));
            Value::Array(entries)
        };
        let chat_generations = || {
            entries(
                json::object(vec![
                    ("role", Some(json!("assistant"))),
                    ("content", Some(text.clone())),
                    ("parameters", generation_parameters.clone()),
                ]),
                &|o| json!({"content": o}),
            )
        };
        let mut body = match self.shape {
            Shape::ChatGenerations => {
                json!({"generationDetails": {"generations": chat_generations()}})
            }
            Shape::SnakeCase => json!({"generation_details": {"generations": chat_generations()}}),
            Shape::GeneratedText | Shape::GenerationText => {
                let key = match self.shape {
                    Shape::GeneratedText => "generatedText",
                    _ => "text",
                };
                json!({"generation": json::object(vec![
                    (key, Some(text)),
                    ("id", Some(json!("g-1"))),
                    ("parameters", generation_parameters),
                ])})
            }
            Shape::OpenAiChoices => json!({"choices": entries(
                json::object(vec![
                    ("index", Some(json!(0))),
                    ("message", Some(json!({"role": "assistant", "content": text}))),
                    ("finish_reason", flat_reason),
                ]),
                &|o| json!({"message": {"content": o}}),
            )}),
            Shape::GenerationsText | Shape::GenerationsContent => {
                let key = match self.shape {
                    Shape::GenerationsText => "text",
                    _ => "content",
                };
                json!({"generations": entries(
                    json::object(vec![(key, Some(text)), ("finish_reason", flat_reason)]),
                    &|o| json!({"text": o}),
                )})
            }
        };
        let object = body.as_object_mut().expect("an object");
        if let Some(id) = &self.id {
            object.insert("id".into(), json!(id));
        }
        object.insert("moreGenerations".into(), Value::Null);
        if let Some(usage) = &self.usage {
            usage.place_into(object);
        }
        body
    }

    fn expected_path(&self) -> &'static str {
        match (self.shape, self.chat) {
            (Shape::ChatGenerations, true) | (Shape::GeneratedText, false) => "primary",
            (Shape::ChatGenerations, false) => "chat_generations",
            (Shape::GeneratedText, true) => "generated_text",
            (Shape::GenerationText, _) => "generation_text",
            (Shape::SnakeCase, _) => "snake_case",
            (Shape::OpenAiChoices, _) => "openai_choices",
            (Shape::GenerationsText | Shape::GenerationsContent, _) => "generations_array",
        }
    }
}

impl UsageGen {
    fn counts(&self) -> Value {
        let keys = if self.camel {
            ["inputTokenCount", "outputTokenCount", "totalTokenCount"]
        } else {
            ["prompt_tokens", "completion_tokens", "total_tokens"]
        };
        let mut counts = json!({"cacheReadInputTokenCount": 0});
        let map = counts.as_object_mut().expect("an object");
        for (key, count) in keys
            .into_iter()
            .zip([self.prompt, self.completion, self.total])
        {
            if let Some(count) = count {
                map.insert(key.into(), count_json(count));
            }
        }
        counts
    }

    fn place_into(&self, body: &mut serde_json::Map<String, Value>) {
        let counts = self.counts();
        let (parent, parameters) = match self.place {
            Place::DetailsUsage => ("generationDetails", json!({"usage": counts})),
            Place::DetailsDirect => ("generationDetails", counts),
            Place::TopParametersUsage => ("parameters", json!({"usage": counts, "model": "x"})),
            Place::TopParametersDirect => ("parameters", counts),
            Place::TopUsage => {
                body.insert("usage".into(), counts);
                return;
            }
        };
        if parent == "parameters" {
            body.insert("parameters".into(), parameters);
            return;
        }
        let details = body.entry("generationDetails").or_insert_with(|| json!({}));
        if let Some(details) = details.as_object_mut() {
            details.insert("parameters".into(), parameters);
        }
    }

    /// OpenAI's usage: total as given, or the sum.
    fn expected(&self) -> Option<[u64; 3]> {
        if self.prompt.is_none() && self.completion.is_none() {
            return None;
        }
        let prompt = self.prompt.map_or(0, |(n, _)| n);
        let completion = self.completion.map_or(0, |(n, _)| n);
        let total = self
            .total
            .map_or(prompt.saturating_add(completion), |(n, _)| n);
        Some([prompt, completion, total])
    }
}

fn check_generated(generated: &ResponseGen) {
    let value = generated.json();
    let body = serde_json::to_vec(&value).unwrap();
    let response = einstein::parse(&body).unwrap_or_else(|e| panic!("{e}: {value}"));
    let operation = if generated.chat {
        Operation::Chat
    } else {
        Operation::Text
    };
    let finish_reason =
        reference::finish_reason(generated.reason.as_ref().map(|(_, r)| r.as_str()));
    let answered =
        !generated.text.is_empty() || matches!(finish_reason, "content_filter" | "length");
    let answer = match einstein::extract(&response, operation) {
        Ok(answer) => answer,
        Err(ExtractError::NoText) if !answered => return,
        Err(error) => panic!("{error}: {value}"),
    };
    assert!(answered, "an empty text was taken as the answer: {value}");
    assert_eq!(answer.text, generated.text);
    assert_eq!(answer.finish.as_str(), finish_reason);
    assert_eq!(answer.path.as_str(), generated.expected_path());
    assert_eq!(
        answer.id,
        generated.id.as_deref().filter(|id| !id.is_empty())
    );
    let usage = answer
        .usage
        .map(|u| [u.input_tokens, u.output_tokens, u.total_tokens]);
    assert_eq!(usage, generated.usage.as_ref().and_then(UsageGen::expected));
    check_rendered(&answer);
}
