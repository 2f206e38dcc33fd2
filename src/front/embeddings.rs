//! The Embeddings front: `POST /v1/embeddings`.
//!
//! `input` is a string or an array of strings (token-id arrays are refused: no surface takes
//! them); vectors come back in the inputs' order, as lists of floats or, with
//! `encoding_format: "base64"`, as base64 of little-endian 32-bit floats. Both official OpenAI
//! SDKs ask for base64 when the caller names no format, and decode it themselves.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{parse_json, AnswerCtx, ErrorFormat, EventSource, Front, OpenAiErrors, RenderEvents};
use crate::core::{
    Answer, Delivery, Embed, Embeddings, Request, Task, TranslateError, VectorEncoding,
};
use crate::layer::BridgeError;
use crate::openai::request::{report_ignored, set_once, CowStr, CowStrVisitor};

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmbeddingsFront;

impl Front for EmbeddingsFront {
    fn id_prefix(&self) -> &'static str {
        "embd-"
    }

    fn parse<'b>(&self, body: &'b [u8]) -> Result<Request<'b>, BridgeError> {
        parse_json(body, to_core)
    }

    fn answer_json(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Vec<u8>, BridgeError> {
        let Answer::Embeddings(answer) = answer else {
            return Err(BridgeError::AnswerMismatch);
        };
        Ok(list_json(answer, ctx))
    }

    fn answer_events(
        &self,
        _answer: &Answer<'_>,
        _ctx: &AnswerCtx<'_>,
    ) -> Result<Box<dyn EventSource>, BridgeError> {
        // `to_core` never asks for a stream: the Embeddings API has none.
        Err(BridgeError::AnswerMismatch)
    }

    fn event_renderer(&self, _ctx: &AnswerCtx<'_>) -> Result<Box<dyn RenderEvents>, BridgeError> {
        Err(BridgeError::AnswerMismatch)
    }

    fn errors(&self) -> &'static dyn ErrorFormat {
        &OpenAiErrors
    }
}

/// `POST /v1/embeddings`, parsed leniently: parameters the bridge does not act on (`user`, ...)
/// are accepted and listed in `ignored`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest<'a> {
    /// The model name the caller asked for.
    pub model: Cow<'a, str>,
    /// What to embed.
    pub input: Input<'a>,
    /// `encoding_format`: `float` or `base64`; absent means `float`.
    pub encoding_format: Option<Cow<'a, str>>,
    /// `dimensions`: the vector length the caller wants.
    pub dimensions: Option<u64>,
    /// The names of top-level parameters that were accepted but are not forwarded.
    pub ignored: Vec<Cow<'a, str>>,
}

/// `input`.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// One string or an array of strings, in order.
    Texts(Vec<Cow<'a, str>>),
    /// Token ids (an array of integers, or of arrays of integers).
    Tokens,
}

/// An Embeddings request as the neutral request.
///
/// ```
/// use sf_models_bridge::core::{Task, VectorEncoding};
/// use sf_models_bridge::front::embeddings::to_core;
///
/// let body = br#"{"model": "text-embedding-ada-002", "input": ["a", "b"], "encoding_format": "base64"}"#;
/// let request = to_core(serde_json::from_slice(body)?).unwrap();
/// assert_eq!(request.delivery.vectors, VectorEncoding::Base64);
/// let Task::Embed(embed) = request.task else { unreachable!() };
/// assert_eq!(embed.inputs, ["a", "b"]);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_core(request: EmbeddingsRequest<'_>) -> Result<Request<'_>, TranslateError> {
    let inputs = match request.input {
        Input::Texts(inputs) if inputs.is_empty() => return Err(TranslateError::NoInput),
        Input::Texts(inputs) => inputs,
        Input::Tokens => return Err(TranslateError::InputTokens),
    };
    let encoding = match request.encoding_format.as_deref() {
        None | Some("float") => VectorEncoding::Float,
        Some("base64") => VectorEncoding::Base64,
        Some(_) => return Err(TranslateError::Setting("encoding_format")),
    };
    Ok(Request {
        model: request.model,
        task: Task::Embed(Embed {
            inputs,
            dimensions: request.dimensions,
        }),
        delivery: Delivery {
            vectors: encoding,
            ..Delivery::WHOLE
        },
        ignored: request.ignored,
    })
}

/// The JSON body of an embeddings `list`, vectors in the inputs' order.
pub fn list_json(answer: &Embeddings, ctx: &AnswerCtx<'_>) -> Vec<u8> {
    let data: Vec<EmbeddingOut<'_>> = answer
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingOut {
            object: "embedding",
            index,
            embedding: match ctx.delivery.vectors {
                VectorEncoding::Float => Vector::Float(vector),
                VectorEncoding::Base64 => Vector::Base64(base64_le(vector)),
            },
        })
        .collect();
    let usage = answer.usage.unwrap_or_default();
    let list = EmbeddingList {
        object: "list",
        data,
        model: ctx.model,
        usage: EmbeddingUsage {
            prompt_tokens: usage.input_tokens,
            total_tokens: usage.total_tokens,
        },
    };
    // Plain structs of numbers and strings cannot fail to encode.
    serde_json::to_vec(&list).unwrap_or_default()
}

/// Base64 of the vector as little-endian 32-bit floats, as OpenAI sends it.
fn base64_le(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `{"object": "list", "data": [...], "model", "usage"}`.
#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingOut<'a> {
    object: &'static str,
    index: usize,
    embedding: Vector<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector<'a> {
    Float(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

impl<'de: 'a, 'a> Deserialize<'de> for EmbeddingsRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequestVisitor;

        impl<'de> Visitor<'de> for RequestVisitor {
            type Value = EmbeddingsRequest<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an embeddings request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut model = None;
                let mut input = None;
                let mut encoding_format = None;
                let mut dimensions = None;
                let mut ignored = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => set_once(&mut model, map.next_value::<CowStr>()?.0, "model")?,
                        "input" => set_once(&mut input, map.next_value()?, "input")?,
                        "encoding_format" => {
                            encoding_format = map.next_value::<Option<CowStr>>()?.map(|s| s.0)
                        }
                        "dimensions" => dimensions = map.next_value::<Option<u64>>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            report_ignored(&mut ignored, key);
                        }
                    }
                }
                Ok(EmbeddingsRequest {
                    model: model.ok_or_else(|| de::Error::missing_field("model"))?,
                    input: input.ok_or_else(|| de::Error::missing_field("input"))?,
                    encoding_format,
                    dimensions,
                    ignored,
                })
            }
        }

        deserializer.deserialize_map(RequestVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;

        impl<'de> Visitor<'de> for InputVisitor {
            type Value = Input<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an array of strings, or token ids")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Input::Texts(vec![CowStrVisitor.visit_borrowed_str(v)?]))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Input::Texts(vec![CowStrVisitor.visit_str(v)?]))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Input::Texts(vec![CowStrVisitor.visit_string(v)?]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut texts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                let mut tokens = false;
                while let Some(element) = seq.next_element::<Element<'de>>()? {
                    match element {
                        Element::Text(text) => texts.push(text),
                        Element::Tokens => tokens = true,
                    }
                }
                Ok(match (tokens, texts.is_empty()) {
                    (false, _) => Input::Texts(texts),
                    (true, true) => Input::Tokens,
                    (true, false) => {
                        return Err(de::Error::custom("`input` mixes strings and token ids"))
                    }
                })
            }
        }

        deserializer.deserialize_any(InputVisitor)
    }
}

/// One element of an `input` array: a string, or a token id or array of them.
enum Element<'a> {
    Text(Cow<'a, str>),
    Tokens,
}

impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;

        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = Element<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(Element::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(Element::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(Element::Text)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Element::Tokens)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<u64>()?.is_some() {}
                Ok(Element::Tokens)
            }
        }

        deserializer.deserialize_any(ElementVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Usage;
    use serde_json::{json, Value};

    fn core(body: Value) -> Result<Request<'static>, TranslateError> {
        let text: &'static [u8] = serde_json::to_vec(&body).unwrap().leak();
        to_core(serde_json::from_slice(text).unwrap())
    }

    fn embed(request: &Request<'_>) -> Vec<String> {
        let Task::Embed(embed) = &request.task else {
            panic!("not an embedding")
        };
        embed.inputs.iter().map(|input| input.to_string()).collect()
    }

    #[test]
    fn a_string_or_strings_keep_their_order() {
        let one = core(json!({"model": "m", "input": "hello"})).unwrap();
        assert_eq!(embed(&one), ["hello"]);
        assert_eq!(one.delivery.vectors, VectorEncoding::Float);
        let many = core(json!({"model": "m", "input": ["b", "a", "c"], "user": "u"})).unwrap();
        assert_eq!(embed(&many), ["b", "a", "c"]);
        assert_eq!(many.ignored, ["user"]);
    }

    #[test]
    fn token_ids_empty_input_and_unknown_formats_are_refused() {
        for input in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
            let error = core(json!({"model": "m", "input": input})).unwrap_err();
            assert_eq!(error, TranslateError::InputTokens);
            assert_eq!(error.param(), "input");
        }
        assert_eq!(
            core(json!({"model": "m", "input": []})).unwrap_err(),
            TranslateError::NoInput
        );
        let error =
            core(json!({"model": "m", "input": "x", "encoding_format": "hex"})).unwrap_err();
        assert_eq!(error.param(), "encoding_format");
        let mixed =
            serde_json::from_slice::<EmbeddingsRequest<'_>>(br#"{"model":"m","input":["a",[1]]}"#);
        assert!(mixed
            .unwrap_err()
            .to_string()
            .contains("mixes strings and token ids"));
        let missing = serde_json::from_slice::<EmbeddingsRequest<'_>>(br#"{"model":"m"}"#);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("missing field `input`"));
    }

    fn answer() -> Embeddings {
        Embeddings {
            vectors: vec![vec![0.5, -1.0], vec![0.25, 2.0]],
            usage: Some(Usage {
                input_tokens: 7,
                output_tokens: 0,
                total_tokens: 7,
                cached_tokens: None,
                cache_write_tokens: None,
                reasoning_tokens: None,
            }),
        }
    }

    fn rendered(vectors: VectorEncoding) -> Value {
        let ctx = AnswerCtx {
            fallback_id: "embd-1",
            created: 1,
            model: "text-embedding-ada-002",
            delivery: Delivery {
                vectors,
                ..Delivery::WHOLE
            },
        };
        serde_json::from_slice(&list_json(&answer(), &ctx)).unwrap()
    }

    #[test]
    fn floats_are_an_openai_list() {
        assert_eq!(
            rendered(VectorEncoding::Float),
            json!({"object": "list", "model": "text-embedding-ada-002",
                   "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                            {"object": "embedding", "index": 1, "embedding": [0.25, 2.0]}],
                   "usage": {"prompt_tokens": 7, "total_tokens": 7}})
        );
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let body = rendered(VectorEncoding::Base64);
        let encoded = body["data"][1]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(floats, [0.25, 2.0]);
    }
}
