//! JSON strategies: arbitrary values, and JSON text written by hand where a test needs what a
//! `serde_json::Value` cannot hold (key order, duplicate keys, escapes in keys).

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Number, Value};

/// Field names the core reads, so that random objects often reach real fields.
pub const KNOWN_KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "text",
    "type",
    "tools",
    "functions",
    "n",
    "stream",
    "stream_options",
    "include_usage",
    "tool_calls",
    "function_call",
    "prompt",
    "echo",
    "id",
    "generationDetails",
    "generation_details",
    "generations",
    "generation",
    "generatedText",
    "parameters",
    "finish_reason",
    "stop_reason",
    "finishReason",
    "choices",
    "message",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "inputTokenCount",
    "outputTokenCount",
    "totalTokenCount",
    "errorCode",
    "messageCode",
];

/// String values the core reacts to: roles, part types, finish reasons, numeric strings.
pub const KNOWN_STRINGS: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
    "text",
    "image_url",
    "stop",
    "end_turn",
    "length",
    "max_tokens",
    "MAX_TOKENS",
    "content_filter",
    "SAFETY",
    "tool_use",
    "",
    "12",
    " 7 ",
    "-3",
    "1e3",
];

/// Characters that stress encoders: quotes, escapes, controls, separators, multi-byte text.
const AWKWARD: &[char] = &[
    '"',
    '\\',
    '/',
    '\n',
    '\r',
    '\t',
    '\u{0}',
    '\u{1f}',
    '\u{7f}',
    '\u{85}',
    '\u{2028}',
    '\u{feff}',
    'é',
    '日',
    '🙂',
    '\u{10ffff}',
];

/// Any string: mostly printable text, often awkward characters, sometimes any `char` at all.
pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,16}",
        2 => prop::collection::vec(select(AWKWARD), 0..8).prop_map(String::from_iter),
        1 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// Any number serde_json can hold: small and huge integers, negative ones, fractions, integral
/// floats (which serde_json keeps as floats), and extremes.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..1000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..1_000_000).prop_map(|n| Value::from(f64::from(n))),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec![
            1e300,
            -0.0,
            0.5,
            18446744073709551615.0,
            1.8446744073709552e19
        ])
        .prop_map(Value::from),
    ]
}

/// A key: usually one the core knows.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KNOWN_KEYS).prop_map(String::from),
        1 => string(),
    ]
}

/// A leaf value.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
        select(KNOWN_STRINGS).prop_map(|s| Value::String(s.into())),
    ]
}

/// Any JSON value, nested up to six levels (enough to reach
/// `generationDetails.generations[0].parameters.finish_reason`) and about 64 nodes.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A small value, for parameters nobody reads.
pub fn small_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..3)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A field slot of a loosely shaped object: absent, null, the right type, or (rarely, as one
/// wrong field spoils the whole body) anything at all.
pub fn slot(right: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        12 => right.prop_map(Some),
        1 => value().prop_map(Some),
    ]
    .boxed()
}

/// An object made of the present slots.
pub fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), value?)))
            .collect(),
    )
}

/// Arbitrary bytes: random, or valid JSON cut short or with one byte changed, which reaches
/// deeper into the parsers than noise does.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        (value(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(value, at, byte)| {
            let mut text = serde_json::to_vec(&value).unwrap_or_default();
            if !text.is_empty() {
                let at = at.index(text.len());
                text[at] = byte;
            }
            text
        }),
        (value(), any::<prop::sample::Index>()).prop_map(|(value, at)| {
            let mut text = serde_json::to_vec(&value).unwrap_or_default();
            let at = at.index(text.len() + 1);
            text.truncate(at);
            text
        }),
    ]
}

/// A JSON string literal; with `escape_all`, every character as `\uXXXX` (UTF-16), so that no
/// parser can borrow it from the input.
pub fn string_literal(text: &str, escape_all: bool) -> String {
    if !escape_all {
        return Value::from(text).to_string();
    }
    let mut literal = String::from("\"");
    for unit in text.encode_utf16() {
        literal.push_str(&format!("\\u{unit:04x}"));
    }
    literal.push('"');
    literal
}

/// JSON text for `value`, with every string (keys included) written by [`string_literal`].
pub fn text(value: &Value, escape_all: bool) -> String {
    match value {
        Value::String(s) => string_literal(s, escape_all),
        Value::Array(items) => {
            let items: Vec<_> = items.iter().map(|v| text(v, escape_all)).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => {
            let members: Vec<_> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", string_literal(k, escape_all), text(v, escape_all)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        other => other.to_string(),
    }
}

/// One member of a hand-written object.
#[derive(Debug, Clone)]
pub struct Member {
    /// The key, unescaped.
    pub key: String,
    /// The value.
    pub value: Value,
}

/// An object written member by member in the given order, duplicates kept. Keys flagged in
/// `escape_keys` are written fully escaped; strings in values when `escape_values`.
pub fn object_text(members: &[Member], escape_keys: &[bool], escape_values: bool) -> String {
    let members: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let escape_key = escape_keys.get(i).copied().unwrap_or(false);
            format!(
                "{}:{}",
                string_literal(&member.key, escape_key),
                text(&member.value, escape_values)
            )
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn hand_written_text_reads_back() {
    let value = serde_json::json!({"a\u{1f}": ["é🙂", 1, null, {"b": "\"\\"}]});
    for escape in [false, true] {
        let back: Value = serde_json::from_str(&text(&value, escape)).unwrap();
        assert_eq!(back, value);
    }
}
