//! The native pair: an Anthropic Messages caller on a Bedrock route. Pure.
//!
//! The caller's body and the upstream's answer are not rebuilt from parsed types: only their
//! top-level members are cut out (as raw JSON, in order) and the few that change are rewritten,
//! so fields the bridge has never heard of pass through byte for byte.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ThinkingSwitches, ANTHROPIC_VERSION};
use crate::core::TranslateError;
use crate::surface::einstein::{parse_as, ExtractError};

/// The most beta flags sent in `anthropic_beta`, the body's and the header's together.
pub const MAX_BETA_FLAGS: usize = 32;
/// The longest beta flag (Anthropic's are names and dates, under 40 bytes).
const MAX_BETA_FLAG_BYTES: usize = 128;
/// The longest event type written on an `event:` line.
const MAX_EVENT_TYPE_BYTES: usize = 64;

/// The Bedrock body for a caller's Anthropic Messages body: `model` and `stream` removed (the
/// URL says both), `anthropic_version` added, the `anthropic-beta` header's flags (comma
/// separated) merged into the body's `anthropic_beta` array (Bedrock reads flags from the body
/// only), and the route's thinking `switches` applied. Every other member is copied as the
/// caller wrote it, in order.
///
/// ```
/// use sf_models_bridge::surface::bedrock::{native_body, ThinkingSwitches};
///
/// let caller = br#"{"model":"m","thinking":{"type":"enabled","budget_tokens":2048},"max_tokens":4096}"#;
/// let switches = ThinkingSwitches { enabled_to_adaptive: true, strip_history: false };
/// let body = native_body(caller, None, switches)?;
/// assert_eq!(
///     body,
///     br#"{"anthropic_version":"bedrock-2023-05-31","thinking":{"type":"adaptive"},"max_tokens":4096}"#
/// );
/// # Ok::<(), sf_models_bridge::core::TranslateError>(())
/// ```
pub fn native_body(
    caller_body: &[u8],
    beta_header: Option<&str>,
    switches: ThinkingSwitches,
) -> Result<Vec<u8>, TranslateError> {
    let Entries(entries) =
        serde_json::from_slice(caller_body).map_err(|_| TranslateError::NativeBody)?;
    let header_flags = header_flags(beta_header)?;
    // Without header flags, the body's own, if any, pass untouched.
    let merged = match header_flags.is_empty() {
        true => None,
        false => Some(merged_flags(&entries, header_flags)?),
    };
    let mut merged_written = false;
    let mut out = Vec::with_capacity(caller_body.len() + 64);
    out.push(b'{');
    write_member(&mut out, "anthropic_version", |out| {
        write_json(out, ANTHROPIC_VERSION)
    });
    for (key, value) in &entries {
        match key.as_ref() {
            "model" | "stream" | "anthropic_version" => {}
            "anthropic_beta" => match &merged {
                None => write_member(&mut out, key, |out| out.extend(value.get().as_bytes())),
                // The merged flags take the place of the body's first `anthropic_beta`.
                Some(flags) if !merged_written => {
                    write_member(&mut out, key, |out| write_json(out, flags));
                    merged_written = true;
                }
                Some(_) => {}
            },
            "thinking" if switches.enabled_to_adaptive && is_enabled_thinking(value) => {
                write_member(&mut out, key, |out| {
                    out.extend_from_slice(br#"{"type":"adaptive"}"#)
                });
            }
            "messages" if switches.strip_history => {
                let stripped = without_thinking(value);
                write_member(&mut out, key, |out| match &stripped {
                    Some(messages) => out.extend_from_slice(messages),
                    None => out.extend_from_slice(value.get().as_bytes()),
                });
            }
            _ => write_member(&mut out, key, |out| out.extend(value.get().as_bytes())),
        }
    }
    if let Some(flags) = merged.filter(|_| !merged_written) {
        write_member(&mut out, "anthropic_beta", |out| write_json(out, &flags));
    }
    out.push(b'}');
    Ok(out)
}

/// An Anthropic message (the answer of `invoke`) with its top-level `model` set to `model`, the
/// name the caller used; everything else byte for byte.
///
/// ```
/// use sf_models_bridge::surface::bedrock::message_with_model;
///
/// let answer = br#"{"id":"msg_1","model":"claude-sonnet-4-6","content":[]}"#;
/// let renamed = message_with_model(answer, "claude")?;
/// assert_eq!(renamed, br#"{"id":"msg_1","model":"claude","content":[]}"#);
/// # Ok::<(), sf_models_bridge::surface::einstein::ExtractError>(())
/// ```
pub fn message_with_model(answer_json: &[u8], model: &str) -> Result<Vec<u8>, ExtractError> {
    let Entries(entries) = parse_as(answer_json)?;
    let mut out = Vec::with_capacity(answer_json.len() + model.len());
    write_with_model(&entries, model, &mut out);
    Ok(out)
}

/// Writes one Anthropic stream event (decoded from a Bedrock frame) as the server-sent event
/// Anthropic's API sends, `event: <type>` then `data: <json>`, with `message.model` set to
/// `model` in `message_start`; every other event's JSON passes byte for byte.
///
/// ```
/// use bytes::BytesMut;
/// use sf_models_bridge::surface::bedrock::sse_event;
///
/// let mut out = BytesMut::new();
/// sse_event(br#"{"type":"message_start","message":{"model":"claude-sonnet-4-6"}}"#, "claude", &mut out)?;
/// sse_event(br#"{"type":"ping"}"#, "claude", &mut out)?;
/// assert_eq!(
///     &out[..],
///     b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\"}}\n\n\
///       event: ping\ndata: {\"type\":\"ping\"}\n\n"
/// );
/// # Ok::<(), sf_models_bridge::surface::einstein::ExtractError>(())
/// ```
pub fn sse_event(event_json: &[u8], model: &str, out: &mut BytesMut) -> Result<(), ExtractError> {
    let Entries(entries) = parse_as(event_json)?;
    let kind = entries
        .iter()
        .find(|(key, _)| key == "type")
        .and_then(|(_, value)| serde_json::from_str::<Cow<'_, str>>(value.get()).ok())
        .filter(|kind| is_event_type(kind))
        .ok_or(ExtractError::EventType)?;
    let renamed;
    let data = if kind == "message_start" {
        let mut rewritten = Vec::with_capacity(event_json.len() + model.len());
        rewritten.push(b'{');
        for (key, value) in &entries {
            if key == "message" {
                let message = message_with_model(value.get().as_bytes(), model)?;
                write_member(&mut rewritten, key, |out| out.extend_from_slice(&message));
            } else {
                write_member(&mut rewritten, key, |out| {
                    out.extend_from_slice(value.get().as_bytes())
                });
            }
        }
        rewritten.push(b'}');
        renamed = rewritten;
        &renamed[..]
    } else {
        event_json
    };
    out.reserve(kind.len() + data.len() + 24);
    out.put_slice(b"event: ");
    out.put_slice(kind.as_bytes());
    out.put_u8(b'\n');
    // JSON has line breaks only between tokens, and SSE would end the line at each: each line
    // gets its own `data:`, which a reader joins back.
    for line in data
        .split(|b| matches!(b, b'\n' | b'\r'))
        .filter(|line| !line.is_empty())
    {
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    Ok(())
}

/// A JSON object's members as raw values, in order, duplicates kept.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// A member's name, borrowed unless it holds escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// Writes `"key":` then the value `write_value` writes, after a comma unless first.
fn write_member(out: &mut Vec<u8>, key: &str, write_value: impl FnOnce(&mut Vec<u8>)) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    write_json(out, key);
    out.push(b':');
    write_value(out);
}

/// Strings and lists of strings cannot fail to encode into a `Vec`.
fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let _ = serde_json::to_writer(out, value);
}

fn write_with_model(entries: &[(Cow<'_, str>, &RawValue)], model: &str, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut named = false;
    for (key, value) in entries {
        if key == "model" {
            if !named {
                write_member(out, key, |out| write_json(out, model));
                named = true;
            }
        } else {
            write_member(out, key, |out| out.extend_from_slice(value.get().as_bytes()));
        }
    }
    if !named {
        write_member(out, "model", |out| write_json(out, model));
    }
    out.push(b'}');
}

/// The `anthropic-beta` header's flags: comma separated, trimmed, duplicates dropped.
fn header_flags(header: Option<&str>) -> Result<Vec<&str>, TranslateError> {
    let mut flags: Vec<&str> = Vec::new();
    for flag in header.unwrap_or_default().split(',').map(str::trim) {
        if flag.is_empty() || flags.contains(&flag) {
            continue;
        }
        let usable = flag.len() <= MAX_BETA_FLAG_BYTES
            && flag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !usable || flags.len() == MAX_BETA_FLAGS {
            return Err(TranslateError::BetaFlags);
        }
        flags.push(flag);
    }
    Ok(flags)
}

/// The body's `anthropic_beta` flags, then the header's that it lacks.
fn merged_flags<'a>(
    entries: &[(Cow<'a, str>, &'a RawValue)],
    header: Vec<&'a str>,
) -> Result<Vec<Cow<'a, str>>, TranslateError> {
    let mut flags: Vec<Cow<'a, str>> = match entries.iter().find(|(key, _)| key == "anthropic_beta")
    {
        Some((_, value)) => {
            serde_json::from_str(value.get()).map_err(|_| TranslateError::BetaFlags)?
        }
        None => Vec::new(),
    };
    for flag in header {
        if !flags.iter().any(|known| known == flag) {
            flags.push(Cow::Borrowed(flag));
        }
    }
    if flags.len() > MAX_BETA_FLAGS {
        return Err(TranslateError::BetaFlags);
    }
    Ok(flags)
}

/// A block's or a setting's `type`, and nothing else of it.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

fn type_of(value: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Typed<'_>>(value.get())
        .ok()
        .and_then(|typed| typed.kind)
}

/// `thinking: {"type": "enabled", "budget_tokens": N}`, the form newer models refuse.
fn is_enabled_thinking(value: &RawValue) -> bool {
    type_of(value).as_deref() == Some("enabled")
}

fn is_thinking_block(block: &RawValue) -> bool {
    matches!(
        type_of(block).as_deref(),
        Some("thinking" | "redacted_thinking")
    )
}

/// `messages` without thinking blocks; a message left with no content goes too (Anthropic
/// merges the turns around it). `None` when nothing was removed, or the list is not the shape
/// Anthropic documents (the upstream will say what is wrong with it).
fn without_thinking(messages: &RawValue) -> Option<Vec<u8>> {
    let list: Vec<&RawValue> = serde_json::from_str(messages.get()).ok()?;
    let mut changed = false;
    let mut out = Vec::with_capacity(messages.get().len());
    out.push(b'[');
    for message in list {
        let stripped = strip_message(message);
        changed |= stripped.is_some();
        let bytes = match &stripped {
            Some(Some(rebuilt)) => &rebuilt[..],
            Some(None) => continue,
            None => message.get().as_bytes(),
        };
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(bytes);
    }
    out.push(b']');
    changed.then_some(out)
}

/// One message without its thinking blocks: `None` when it has none, `Some(None)` when nothing
/// else was left.
fn strip_message(message: &RawValue) -> Option<Option<Vec<u8>>> {
    let Entries(entries) = serde_json::from_str(message.get()).ok()?;
    let (_, content) = entries.iter().find(|(key, _)| key == "content")?;
    let blocks: Vec<&RawValue> = serde_json::from_str(content.get()).ok()?;
    let kept: Vec<&RawValue> = blocks
        .iter()
        .copied()
        .filter(|block| !is_thinking_block(block))
        .collect();
    if kept.len() == blocks.len() {
        return None;
    }
    if kept.is_empty() {
        return Some(None);
    }
    let mut out = Vec::with_capacity(message.get().len());
    out.push(b'{');
    for (key, value) in &entries {
        if key == "content" {
            write_member(&mut out, key, |out| {
                out.push(b'[');
                for (index, block) in kept.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(block.get().as_bytes());
                }
                out.push(b']');
            });
        } else {
            write_member(&mut out, key, |out| out.extend_from_slice(value.get().as_bytes()));
        }
    }
    out.push(b'}');
    Some(Some(out))
}

/// An event type fit for an `event:` line.
fn is_event_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_EVENT_TYPE_BYTES
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::bedrock::test_fixtures::fixture;
    use serde_json::{json, Value};

    const OFF: ThinkingSwitches = ThinkingSwitches {
        enabled_to_adaptive: false,
        strip_history: false,
    };
    const ON: ThinkingSwitches = ThinkingSwitches {
        enabled_to_adaptive: true,
        strip_history: true,
    };

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_spec_fixture_is_what_a_caller_body_becomes() {
        let expected: Value =
            serde_json::from_slice(&fixture("native.bedrock.invoke.request.json")).unwrap();
        let mut caller = expected.clone();
        let object = caller.as_object_mut().unwrap();
        object.remove("anthropic_version");
        object.remove("anthropic_beta");
        object.insert("model".into(), json!("claude-sonnet-4-6"));
        object.insert("stream".into(), json!(true));
        let caller = serde_json::to_vec(&caller).unwrap();
        let body = native_body(&caller, Some("interleaved-thinking-2025-05-14"), OFF).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), expected);
    }

    #[test]
    fn unknown_members_pass_byte_for_byte_in_order() {
        let caller = br#"{ "z_new" : {"deep": [1, 2.50, "\u00e9"]}, "model":"m", "max_tokens": 10,
            "stream": false, "context_management": {"edits": []}, "m\u0065ssages": [] }"#;
        let body = native_body(caller, None, ON).unwrap();
        assert_eq!(
            text(&body),
            r#"{"anthropic_version":"bedrock-2023-05-31","z_new":{"deep": [1, 2.50, "\u00e9"]},"max_tokens":10,"context_management":{"edits": []},"messages":[]}"#
        );
    }

    #[test]
    fn beta_flags_merge_into_the_body() {
        let body = native_body(
            br#"{"anthropic_beta": ["a-1"], "max_tokens": 1}"#,
            Some(" b-2 , a-1,,b-2,c.3"),
            OFF,
        )
        .unwrap();
        assert_eq!(
            text(&body),
            r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a-1","b-2","c.3"],"max_tokens":1}"#
        );
        // Without a header the body's own flags pass as written, even odd ones.
        let body = native_body(br#"{"anthropic_beta": [ "x y" ]}"#, Some(" , "), OFF).unwrap();
        assert_eq!(
            text(&body),
            r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":[ "x y" ]}"#
        );
        // A body naming `anthropic_beta` twice gets the merged list once.
        let body = native_body(br#"{"anthropic_beta": ["a"], "anthropic_beta": ["b"]}"#, Some("c"), OFF)
            .unwrap();
        assert_eq!(
            text(&body),
            r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a","c"]}"#
        );

        let many: Vec<String> = (0..=MAX_BETA_FLAGS).map(|i| format!("f{i}")).collect();
        let refused = [
            (&br#"{}"#[..], many.join(",")),
            (br#"{}"#, "ok, bad flag".to_owned()),
            (br#"{}"#, "x".repeat(MAX_BETA_FLAG_BYTES + 1)),
            (br#"{"anthropic_beta": "a"}"#, "b".to_owned()),
        ];
        for (body, header) in refused {
            assert_eq!(
                native_body(body, Some(&header), OFF),
                Err(TranslateError::BetaFlags),
                "{header}"
            );
        }
        assert_eq!(
            native_body(b"[1]", None, OFF),
            Err(TranslateError::NativeBody)
        );
        assert_eq!(
            native_body(b"{\"a\":", None, OFF),
            Err(TranslateError::NativeBody)
        );
    }

    #[test]
    fn thinking_switches_rewrite_only_when_on() {
        let caller = br#"{"thinking":{"type":"enabled","budget_tokens":1024},"messages":[
            {"role":"user","content":"Hi"},
            {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"Yo"}]},
            {"role":"assistant","content":[{"type":"redacted_thinking","data":"d"}]},
            {"role":"user","content":[{"type":"text","text":"More"}]}]}"#;
        let off = native_body(caller, None, OFF).unwrap();
        let mut expected: Value = serde_json::from_slice(caller).unwrap();
        expected["anthropic_version"] = json!(ANTHROPIC_VERSION);
        assert_eq!(serde_json::from_slice::<Value>(&off).unwrap(), expected);

        let on = native_body(caller, None, ON).unwrap();
        assert_eq!(
            text(&on),
            r#"{"anthropic_version":"bedrock-2023-05-31","thinking":{"type":"adaptive"},"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Yo"}]},{"role":"user","content":[{"type":"text","text":"More"}]}]}"#
        );

        // Adaptive thinking, and a history without thinking, stay as written.
        let adaptive = br#"{"thinking": {"type": "adaptive"}, "messages": [{"role": "user", "content": "x"}]}"#;
        assert_eq!(
            text(&native_body(adaptive, None, ON).unwrap()),
            r#"{"anthropic_version":"bedrock-2023-05-31","thinking":{"type": "adaptive"},"messages":[{"role": "user", "content": "x"}]}"#
        );
        // A history of another shape is left for the upstream to judge.
        let odd = br#"{"messages": {"role": "user"}}"#;
        assert_eq!(
            text(&native_body(odd, None, ON).unwrap()),
            r#"{"anthropic_version":"bedrock-2023-05-31","messages":{"role": "user"}}"#
        );
    }

    #[test]
    fn answers_get_the_callers_model() {
        let answer = fixture("native.bedrock.invoke.response.json");
        let renamed = message_with_model(&answer, "claude \"quoted\"").unwrap();
        let mut expected: Value = serde_json::from_slice(&answer).unwrap();
        expected["model"] = json!("claude \"quoted\"");
        assert_eq!(serde_json::from_slice::<Value>(&renamed).unwrap(), expected);
        assert_eq!(
            text(&message_with_model(br#"{"id":"x"}"#, "m").unwrap()),
            r#"{"id":"x","model":"m"}"#
        );
        assert!(matches!(
            message_with_model(b"[]", "m"),
            Err(ExtractError::Malformed { .. })
        ));
    }

    #[test]
    fn stream_events_become_anthropic_sse() {
        let jsonl = fixture("native.bedrock.stream.events.jsonl");
        let mut out = BytesMut::new();
        for line in jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            sse_event(line, "claude", &mut out).unwrap();
        }
        let sse = text(&out);
        let events: Vec<&str> = sse.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 7);
        let start = events[0].strip_prefix("event: message_start\ndata: ").unwrap();
        let start: Value = serde_json::from_str(start).unwrap();
        assert_eq!(start["message"]["model"], "claude");
        assert_eq!(start["message"]["id"], "msg_bdrk_02");
        let lines: Vec<&str> = jsonl_lines(&jsonl);
        assert_eq!(
            events[2],
            format!("event: content_block_delta\ndata: {}", lines[2])
        );
        assert_eq!(events[6], format!("event: message_stop\ndata: {}", lines[6]));

        let mut out = BytesMut::new();
        sse_event(b"{\"type\":\"ping\",\r\n \"x\": 1}", "m", &mut out).unwrap();
        assert_eq!(text(&out), "event: ping\ndata: {\"type\":\"ping\",\ndata:  \"x\": 1}\n\n");
        for bad in [&br#"{"x":1}"#[..], br#"{"type":"a\nb"}"#, br#"{"type":7}"#] {
            assert!(matches!(
                sse_event(bad, "m", &mut BytesMut::new()),
                Err(ExtractError::EventType)
            ));
        }
    }

    fn jsonl_lines(jsonl: &[u8]) -> Vec<&str> {
        text(jsonl).lines().filter(|l| !l.is_empty()).collect()
    }
}
