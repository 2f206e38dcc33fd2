//! Pass-through: a caller that speaks a surface's own API (OpenAI's Responses API to the
//! `responses` surface, Anthropic's Messages API to `bedrock`) has its request forwarded nearly as
//! it came, so fields the bridge does not know keep working. Only what routing needs is read, and
//! only the members that must change are rewritten; every other member keeps its bytes and order.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;

use crate::openai::request::{set_once, CowStr};

/// A provider API that some surface speaks natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NativeApi {
    /// OpenAI's Responses API (`POST /v1/responses`).
    OpenAiResponses,
    /// Anthropic's Messages API (`POST /v1/messages`).
    AnthropicMessages,
}

/// What a pass-through reads of the caller's request: the model to route, and whether it wants a
/// stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NativeHead<'a> {
    pub(crate) model: Cow<'a, str>,
    pub(crate) stream: bool,
}

/// Reads the model and the stream flag of a request body, skipping every other member unread.
pub(crate) fn peek(body: &[u8]) -> Result<NativeHead<'_>, serde_json::Error> {
    struct HeadVisitor;

    impl<'de> Visitor<'de> for HeadVisitor {
        type Value = NativeHead<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a request object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut model = None;
            let mut stream = None;
            while let Some(CowStr(key)) = map.next_key()? {
                match key.as_ref() {
                    "model" => set_once(&mut model, map.next_value::<CowStr>()?.0, "model")?,
                    "stream" => stream = map.next_value::<Option<bool>>()?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(NativeHead {
                model: model.ok_or_else(|| de::Error::missing_field("model"))?,
                stream: stream.unwrap_or(false),
            })
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let head = (&mut deserializer).deserialize_map(HeadVisitor)?;
    deserializer.end()?;
    Ok(head)
}

/// A change to one top-level member of a JSON object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Edit<'a> {
    /// The member's value becomes this string (the member is added if absent).
    SetString(&'a str),
    /// The member's value becomes this JSON (the member is added if absent).
    SetJson(&'a RawValue),
    /// The member goes.
    Remove,
}

/// `object` with `edits` applied to its top-level members; the others keep their bytes and their
/// order. A member given twice keeps its last value, as JSON readers do.
pub(crate) fn rewrite_members(
    object: &[u8],
    edits: &[(&str, Edit<'_>)],
) -> Result<Vec<u8>, serde_json::Error> {
    let members: Members<'_> = serde_json::from_slice(object)?;
    let mut out = Vec::with_capacity(object.len() + 64);
    out.push(b'{');
    let mut first = true;
    let mut separator = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let mut applied = vec![false; edits.len()];
    for (index, (key, value)) in members.0.iter().enumerate() {
        // A repeated key: only its last occurrence is written.
        if members.0[index + 1..].iter().any(|(later, _)| later == key) {
            continue;
        }
        let edit = edits.iter().position(|(name, _)| name == key);
        let value = match edit {
            Some(at) => {
                applied[at] = true;
                match edits[at].1 {
                    Edit::Remove => continue,
                    edit => Value::Edited(edit),
                }
            }
            None => Value::Raw(value),
        };
        separator(&mut out);
        write_member(&mut out, key, value)?;
    }
    for ((key, edit), done) in edits.iter().zip(applied) {
        if !done && !matches!(edit, Edit::Remove) {
            separator(&mut out);
            write_member(&mut out, key, Value::Edited(*edit))?;
        }
    }
    out.push(b'}');
    Ok(out)
}

enum Value<'a> {
    Raw(&'a RawValue),
    Edited(Edit<'a>),
}

fn write_member(out: &mut Vec<u8>, key: &str, value: Value<'_>) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, key)?;
    out.push(b':');
    match value {
        Value::Raw(raw) | Value::Edited(Edit::SetJson(raw)) => {
            out.extend_from_slice(raw.get().as_bytes())
        }
        Value::Edited(Edit::SetString(text)) => serde_json::to_writer(&mut *out, text)?,
        Value::Edited(Edit::Remove) => {}
    }
    Ok(())
}

/// A JSON object's top-level members, in order, values unparsed.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(CowStr(key)) = map.next_key()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn peek_reads_only_model_and_stream() {
        let head =
            peek(br#"{"input":[{"deep":[1,2]}],"model":"gpt-5","stream":true,"x":null}"#).unwrap();
        assert_eq!(head.model, "gpt-5");
        assert!(head.stream);
        assert!(!peek(br#"{"model":"m"}"#).unwrap().stream);
        assert!(peek(br#"{"stream":true}"#).is_err());
        assert!(peek(br#"{"model":"a","model":"b"}"#).is_err());
        assert!(peek(br#"{"model":"a"} trailing"#).is_err());
        assert!(peek(br#"["model"]"#).is_err());
    }

    #[test]
    fn rewrites_keep_other_members_byte_for_byte() {
        let body = br#"{"model":"gpt-5", "input" : [ {"a":"\u00e9"} ],"stream":true,"n":1.50}"#;
        let version = raw(r#""bedrock-2023-05-31""#);
        let out = rewrite_members(
            body,
            &[
                ("model", Edit::Remove),
                ("stream", Edit::Remove),
                ("anthropic_version", Edit::SetJson(&version)),
            ],
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"input":[ {"a":"\u00e9"} ],"n":1.50,"anthropic_version":"bedrock-2023-05-31"}"#
        );
        let out = rewrite_members(body, &[("model", Edit::SetString("sfdc \"x\""))]).unwrap();
        assert!(out.starts_with(br#"{"model":"sfdc \"x\"","input""#));
    }

    #[test]
    fn a_repeated_member_keeps_its_last_value() {
        let out = rewrite_members(br#"{"a":1,"b":2,"a":3}"#, &[]).unwrap();
        assert_eq!(out, br#"{"b":2,"a":3}"#);
    }

    #[test]
    fn not_an_object_is_an_error() {
        for body in [&b"[1]"[..], b"\"s\"", b"{", b""] {
            assert!(rewrite_members(body, &[]).is_err());
        }
    }
}
