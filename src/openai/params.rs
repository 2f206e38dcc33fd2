//! Chat Completions' generation settings: sampling, output limits, tool choice, reasoning effort
//! and the answer's format, parsed strictly. A wrong type fails the request (a 400) with the
//! parameter's name in the message rather than being reported as ignored: a caller who sent
//! `"temperature": "hot"` made a mistake worth hearing about.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::request::{set_once, CowStr, CowStrVisitor, RawJson};

/// `tool_choice`: whether and which tools the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoiceDef<'a> {
    /// `"auto"`: the model decides.
    Auto,
    /// `"none"`: no tool.
    None,
    /// `"required"`: some tool.
    Required,
    /// `{"type": "function", "function": {"name": ...}}`: this tool.
    Function(Cow<'a, str>),
}

/// `response_format`: the form the answer's text must take.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormatDef<'a> {
    /// `{"type": "text"}`.
    Text,
    /// `{"type": "json_object"}`.
    JsonObject,
    /// `{"type": "json_schema", "json_schema": {...}}`.
    JsonSchema(JsonSchemaDef<'a>),
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JsonSchemaDef<'a> {
    /// The schema's name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// What the schema is for.
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema, kept as the caller wrote it.
    #[serde(borrow, default)]
    pub schema: Option<RawJson<'a>>,
    /// Whether the answer must follow the schema exactly.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `stop`: a string or an array of strings, as a list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Stop<'a>(pub(crate) Vec<Cow<'a, str>>);

/// A JSON type a scalar parameter can have.
pub(crate) trait ScalarKind: Sized {
    /// What the parameter must be, for the error message.
    const EXPECTING: &'static str;

    /// The value, when a boolean is one.
    fn from_bool(_: bool) -> Option<Self> {
        None
    }

    /// The value, when an unsigned integer is one.
    fn from_u64(_: u64) -> Option<Self> {
        None
    }

    /// The value, when a negative integer is one.
    fn from_i64(_: i64) -> Option<Self> {
        None
    }

    /// The value, when a float is one.
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
}

impl ScalarKind for f64 {
    const EXPECTING: &'static str = "a number";

    fn from_u64(n: u64) -> Option<Self> {
        Some(n as f64)
    }

    fn from_i64(n: i64) -> Option<Self> {
        Some(n as f64)
    }

    fn from_f64(n: f64) -> Option<Self> {
        Some(n)
    }
}

impl ScalarKind for u64 {
    const EXPECTING: &'static str = "a non-negative integer";

    fn from_u64(n: u64) -> Option<Self> {
        Some(n)
    }
}

impl ScalarKind for bool {
    const EXPECTING: &'static str = "a boolean";

    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

/// Reads the value of the top-level parameter `name` as a `T` or `null`, naming `name` in the
/// error: serde's own primitives say only "expected f64", which leaves the caller guessing which
/// of a dozen numbers was wrong.
pub(crate) struct Scalar<T> {
    name: &'static str,
    kind: PhantomData<T>,
}

impl<T> Scalar<T> {
    /// The parameter `name`.
    pub(crate) fn named(name: &'static str) -> Self {
        Self {
            name,
            kind: PhantomData,
        }
    }
}

impl<'de, T: ScalarKind> DeserializeSeed<'de> for Scalar<T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: ScalarKind> Visitor<'de> for Scalar<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for `{}`", T::EXPECTING, self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        T::from_bool(v)
            .map(Some)
            .ok_or_else(|| E::invalid_type(de::Unexpected::Bool(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::from_u64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_type(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_type(de::Unexpected::Float(v), &self))
    }
}

/// Reads the value of the top-level string parameter `name`, or `null`, naming it in the error.
pub(crate) struct Text {
    name: &'static str,
}

impl Text {
    /// The parameter `name`.
    pub(crate) fn named(name: &'static str) -> Self {
        Self { name }
    }
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string for `{}`", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        CowStrVisitor.visit_borrowed_str(v).map(Some)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        CowStrVisitor.visit_str(v).map(Some)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        CowStrVisitor.visit_string(v).map(Some)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Stop<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StopVisitor;

        impl<'de> Visitor<'de> for StopVisitor {
            type Value = Stop<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings for `stop`")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Stop::default())
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Stop(vec![CowStrVisitor.visit_borrowed_str(v)?]))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Stop(vec![CowStrVisitor.visit_str(v)?]))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Stop(vec![CowStrVisitor.visit_string(v)?]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut stop = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(4));
                while let Some(CowStr(text)) = seq.next_element()? {
                    stop.push(text);
                }
                Ok(Stop(stop))
            }
        }

        deserializer.deserialize_any(StopVisitor)
    }
}

/// `{"name": ...}`, the `function` of a named tool choice.
#[derive(Deserialize)]
struct FunctionName<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ToolChoiceDef<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChoiceVisitor;

        const MODES: &[&str] = &["auto", "none", "required"];

        impl<'de> Visitor<'de> for ChoiceVisitor {
            type Value = ToolChoiceDef<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`auto`, `none`, `required` or {\"type\": \"function\", \"function\": {\"name\": ...}} for `tool_choice`",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "auto" => Ok(ToolChoiceDef::Auto),
                    "none" => Ok(ToolChoiceDef::None),
                    "required" => Ok(ToolChoiceDef::Required),
                    other => Err(E::unknown_variant(other, MODES)),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind = None;
                let mut function: Option<FunctionName<'de>> = None;
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "type" => set_once(&mut kind, map.next_value::<CowStr>()?.0, "type")?,
                        "function" => set_once(&mut function, map.next_value()?, "function")?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match (kind.as_deref(), function) {
                    (Some("function"), Some(function)) => {
                        Ok(ToolChoiceDef::Function(function.name))
                    }
                    (Some("function"), None) => Err(de::Error::missing_field("function")),
                    (None, _) => Err(de::Error::missing_field("type")),
                    (Some(other), _) => Err(de::Error::unknown_variant(other, &["function"])),
                }
            }
        }

        deserializer.deserialize_any(ChoiceVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ResponseFormatDef<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FormatVisitor;

        const TYPES: &[&str] = &["text", "json_object", "json_schema"];

        impl<'de> Visitor<'de> for FormatVisitor {
            type Value = ResponseFormatDef<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with a `type` for `response_format`")
            }

            // By hand rather than a tagged enum: serde buffers a tagged enum's fields, and a
            // buffered value cannot be read as the raw schema text.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind = None;
                let mut schema: Option<JsonSchemaDef<'de>> = None;
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "type" => set_once(&mut kind, map.next_value::<CowStr>()?.0, "type")?,
                        "json_schema" => set_once(&mut schema, map.next_value()?, "json_schema")?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match kind.as_deref() {
                    Some("text") => Ok(ResponseFormatDef::Text),
                    Some("json_object") => Ok(ResponseFormatDef::JsonObject),
                    Some("json_schema") => schema
                        .map(ResponseFormatDef::JsonSchema)
                        .ok_or_else(|| de::Error::missing_field("json_schema")),
                    Some(other) => Err(de::Error::unknown_variant(other, TYPES)),
                    None => Err(de::Error::missing_field("type")),
                }
            }
        }

        deserializer.deserialize_map(FormatVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::openai::{ChatCompletionRequest, JsonSchemaDef, ResponseFormatDef, ToolChoiceDef};

    fn chat(settings: &str) -> Result<ChatCompletionRequest<'_>, serde_json::Error> {
        serde_json::from_str(settings)
    }

    fn with(settings: &str) -> String {
        format!(r#"{{"model":"m","messages":[],{settings}}}"#)
    }

    #[test]
    fn settings_are_read() {
        let body = with(
            r#""temperature":0.5,"top_p":1,"max_tokens":10,"max_completion_tokens":20,
               "stop":["a","b"],"tool_choice":"required","parallel_tool_calls":false,
               "reasoning_effort":"high","response_format":{"type":"json_object"}"#,
        );
        let request = chat(&body).unwrap();
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.top_p, Some(1.0));
        assert_eq!(request.max_tokens, Some(10));
        assert_eq!(request.max_completion_tokens, Some(20));
        assert_eq!(request.stop, ["a", "b"]);
        assert_eq!(request.tool_choice, Some(ToolChoiceDef::Required));
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(request.reasoning_effort.as_deref(), Some("high"));
        assert_eq!(request.response_format, Some(ResponseFormatDef::JsonObject));
        assert!(request.ignored.is_empty());
    }

    #[test]
    fn nulls_are_absent_and_one_stop_string_is_a_list() {
        let body = with(
            r#""temperature":null,"top_p":null,"max_tokens":null,"stop":null,"tool_choice":null,
               "parallel_tool_calls":null,"reasoning_effort":null,"response_format":null"#,
        );
        let request = chat(&body).unwrap();
        assert_eq!(
            (request.temperature, request.max_tokens, request.tool_choice),
            (None, None, None)
        );
        assert!(request.stop.is_empty() && request.response_format.is_none());
        let body = with(r#""stop":"END""#);
        assert_eq!(chat(&body).unwrap().stop, ["END"]);
    }

    #[test]
    fn tool_choices() {
        for (text, want) in [
            (r#""auto""#, ToolChoiceDef::Auto),
            (r#""none""#, ToolChoiceDef::None),
            (
                r#"{"type":"function","function":{"name":"f"},"extra":1}"#,
                ToolChoiceDef::Function("f".into()),
            ),
        ] {
            let body = with(&format!(r#""tool_choice":{text}"#));
            assert_eq!(chat(&body).unwrap().tool_choice, Some(want), "{text}");
        }
    }

    #[test]
    fn response_formats_keep_the_schema_text() {
        let body = with(
            r#""response_format":{"type":"json_schema","json_schema":{"name":"n",
               "description":"d","schema":{"type":"object"},"strict":true}}"#,
        );
        let Some(ResponseFormatDef::JsonSchema(JsonSchemaDef {
            name,
            description,
            schema,
            strict,
        })) = chat(&body).unwrap().response_format
        else {
            panic!("not a schema");
        };
        assert_eq!((name.as_ref(), description.as_deref()), ("n", Some("d")));
        assert_eq!(schema.unwrap().get(), r#"{"type":"object"}"#);
        assert_eq!(strict, Some(true));
        let body = with(r#""response_format":{"type":"text"}"#);
        assert_eq!(
            chat(&body).unwrap().response_format,
            Some(ResponseFormatDef::Text)
        );
    }

    #[test]
    fn wrong_types_are_errors_that_name_the_parameter() {
        for (settings, names) in [
            (r#""temperature":"hot""#, "`temperature`"),
            (r#""top_p":true"#, "`top_p`"),
            (r#""max_tokens":1.5"#, "`max_tokens`"),
            (r#""max_tokens":-1"#, "`max_tokens`"),
            (r#""max_completion_tokens":"9""#, "`max_completion_tokens`"),
            (r#""parallel_tool_calls":1"#, "`parallel_tool_calls`"),
            (r#""reasoning_effort":3"#, "`reasoning_effort`"),
            (r#""stop":5"#, "`stop`"),
            (r#""tool_choice":5"#, "`tool_choice`"),
            (r#""tool_choice":"sometimes""#, "`auto`"),
            (r#""tool_choice":{"type":"function"}"#, "`function`"),
            (
                r#""tool_choice":{"type":"custom","function":{"name":"f"}}"#,
                "`custom`",
            ),
            (r#""response_format":"json""#, "`response_format`"),
            (r#""response_format":{"type":"yaml"}"#, "`yaml`"),
            (
                r#""response_format":{"type":"json_schema"}"#,
                "`json_schema`",
            ),
            (
                r#""response_format":{"type":"json_schema","json_schema":{}}"#,
                "`name`",
            ),
        ] {
            let body = with(settings);
            let error = chat(&body).unwrap_err().to_string();
            assert!(error.contains(names), "{settings}: {error}");
        }
    }
}
