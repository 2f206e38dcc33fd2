//! The native pair: an Anthropic Messages caller on a Bedrock route. Pure.
//!
//! The caller's body and the upstream's answer are not rebuilt from parsed types: only the
//! top-level members that must change are rewritten ([`rewrite_members`]), so fields the bridge
//! has never heard of pass through byte for byte.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::events::{ended_early, malformed, no_answer, stream_error};
use super::unframe::EventStreamFrames;
use super::wire::{ErrorObject, StartMessage, WireUsage};
use super::{refused, ThinkingSwitches, ANTHROPIC_VERSION};
use crate::core::{Failure, TranslateError, Usage};
use crate::openai::request::CowStr;
use crate::surface::einstein::ExtractError;
use crate::surface::native::{rewrite_members, Edit};
use crate::surface::stream::{Flow, Relay, Unframe};

/// The most beta flags sent in `anthropic_beta`, the body's and the header's together.
const MAX_BETA_FLAGS: usize = 32;
/// The longest beta flag (Anthropic's are names and dates, under 40 bytes).
const MAX_BETA_FLAG_BYTES: usize = 128;
/// The longest event type written on an `event:` line.
const MAX_EVENT_TYPE_BYTES: usize = 64;
/// What the beta flags must be, for the caller to read.
const BETA_FLAGS_PROBLEM: &str =
    "at most 32 flags, each at most 128 letters, digits, `-`, `_` or `.`";

/// The thinking newer Claude models take instead of `enabled`.
const ADAPTIVE_THINKING: &str = r#"{"type":"adaptive"}"#;

/// The Bedrock body for a caller's Anthropic Messages body: `model` and `stream` removed (the
/// URL says both), `anthropic_version` set, the `anthropic-beta` header's flags (comma separated)
/// merged into the body's `anthropic_beta` array (Bedrock reads flags from the body only), and
/// the route's thinking `switches` applied. Every other member keeps its bytes and its order.
pub(crate) fn native_body(
    caller_body: &[u8],
    beta_header: Option<&str>,
    switches: ThinkingSwitches,
) -> Result<Vec<u8>, TranslateError> {
    // serde would read a list as a struct too.
    if caller_body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_an_object());
    }
    let header_flags = header_flags(beta_header)?;
    let mut beta = None;
    let mut thinking = None;
    let mut messages = None;
    // Most bodies need no member read: the common case stays one pass.
    if !header_flags.is_empty() || switches.enabled_to_adaptive || switches.strip_history {
        let head: BodyHead<'_> =
            serde_json::from_slice(caller_body).map_err(|_| not_an_object())?;
        if !header_flags.is_empty() {
            beta = Some(merged_flags(head.anthropic_beta, header_flags)?);
        }
        if switches.enabled_to_adaptive && head.thinking.is_some_and(is_enabled_thinking) {
            thinking = serde_json::from_str::<&RawValue>(ADAPTIVE_THINKING).ok();
        }
        if switches.strip_history {
            messages = head.messages.and_then(without_thinking);
        }
    }
    let mut edits = vec![
        ("model", Edit::Remove),
        ("stream", Edit::Remove),
        ("anthropic_version", Edit::SetString(ANTHROPIC_VERSION)),
    ];
    if let Some(beta) = &beta {
        edits.push(("anthropic_beta", Edit::SetJson(beta)));
    }
    if let Some(thinking) = thinking {
        edits.push(("thinking", Edit::SetJson(thinking)));
    }
    if let Some(messages) = &messages {
        edits.push(("messages", Edit::SetJson(messages)));
    }
    rewrite_members(caller_body, &edits).map_err(|_| not_an_object())
}

fn beta_flags() -> TranslateError {
    refused("anthropic-beta", BETA_FLAGS_PROBLEM)
}

fn not_an_object() -> TranslateError {
    refused("body", "must be a JSON object")
}

/// The members of a caller's body that the switches and the beta header may change.
#[derive(Deserialize)]
struct BodyHead<'a> {
    #[serde(borrow, default)]
    anthropic_beta: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
}

/// An Anthropic message (the answer of `invoke`) with its top-level `model` set to `model`, the
/// name the caller used, and its token counts; everything else byte for byte. A body without
/// `content` is no message (an error under a 200), never passed on as a success.
pub(crate) fn native_answer(
    answer_json: &[u8],
    model: &str,
) -> Result<(Vec<u8>, Option<Usage>), ExtractError> {
    #[derive(Deserialize)]
    struct MessageHead<'a> {
        #[serde(borrow, default)]
        content: Option<&'a RawValue>,
        #[serde(default)]
        usage: Option<WireUsage>,
    }
    let head = serde_json::from_slice::<MessageHead<'_>>(answer_json)
        .map_err(|error| ExtractError::invalid(&error))?;
    if head.content.is_none() {
        return Err(ExtractError::NoText);
    }
    let usage = head.usage.and_then(WireUsage::to_core);
    let json = rewrite_members(answer_json, &[("model", Edit::SetString(model))])
        .map_err(|error| ExtractError::invalid(&error))?;
    Ok((json, usage))
}

/// Relays `invoke-with-response-stream` to an Anthropic Messages caller: each Anthropic event of
/// the frames as the server-sent event Anthropic's API sends (`event: <type>`, `data: <json>`),
/// with the caller's model name in `message_start` and every other event byte for byte. An
/// exception frame or an `error` event is a failure the layer ends the stream with; so is a
/// message that stops without a single content block, before its end reaches the caller.
#[derive(Debug)]
pub(crate) struct MessagesRelay {
    frames: EventStreamFrames,
    model: String,
    usage: WireUsage,
    blocks: usize,
    finished: bool,
}

impl MessagesRelay {
    pub(crate) fn new(model: &str) -> Self {
        Self {
            frames: EventStreamFrames::default(),
            model: model.to_owned(),
            usage: WireUsage::default(),
            blocks: 0,
            finished: false,
        }
    }

    fn relay(&mut self, event: &[u8], out: &mut BytesMut) -> Result<Flow, Failure> {
        let head: EventHead<'_> = serde_json::from_slice(event).map_err(|_| malformed())?;
        let kind = head.kind.as_ref();
        if !is_event_type(kind) {
            return Err(malformed());
        }
        let mut flow = Flow::Continue;
        let renamed;
        let data = match kind {
            "message_start" => {
                let message = head.message.ok_or_else(malformed)?;
                if let Ok(StartMessage { usage: Some(usage) }) = serde_json::from_str(message.get())
                {
                    self.usage.update(usage);
                }
                renamed = with_message_model(event, message, &self.model)?;
                &renamed[..]
            }
            "content_block_start" => {
                self.blocks += 1;
                event
            }
            "message_delta" | "message_stop" if self.blocks == 0 => return Err(no_answer()),
            "message_delta" => {
                if let Some(usage) = head.usage {
                    self.usage.update(usage);
                }
                event
            }
            "message_stop" => {
                flow = Flow::Finished;
                event
            }
            "error" => return Err(stream_error(head.error)),
            _ => event,
        };
        write_sse(kind, data, out);
        Ok(flow)
    }
}

impl Relay for MessagesRelay {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<Flow, Failure> {
        self.frames.push(bytes)?;
        while let Some(event) = self.frames.next_event()? {
            if self.relay(&event.data, out)? == Flow::Finished {
                self.finished = true;
                return Ok(Flow::Finished);
            }
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, _out: &mut BytesMut) -> Result<(), Failure> {
        if self.finished {
            return Ok(());
        }
        self.frames.finish()?;
        Err(if self.blocks == 0 {
            no_answer()
        } else {
            ended_early()
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.to_core()
    }
}

/// What the relay reads of an event.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<ErrorObject<'a>>,
}

/// A `message_start` event with the caller's model name in its message.
fn with_message_model(event: &[u8], message: &RawValue, model: &str) -> Result<Vec<u8>, Failure> {
    let message = rewrite_members(
        message.get().as_bytes(),
        &[("model", Edit::SetString(model))],
    )
    .map_err(|_| malformed())?;
    let message = raw(message).ok_or_else(malformed)?;
    rewrite_members(event, &[("message", Edit::SetJson(&message))]).map_err(|_| malformed())
}

/// `event: <type>` and the event's JSON as `data:`, then the blank line that ends the event.
fn write_sse(kind: &str, data: &[u8], out: &mut BytesMut) {
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
}

/// An event type fit for an `event:` line.
fn is_event_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_EVENT_TYPE_BYTES
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// JSON the bridge wrote, as a raw value to set.
fn raw(json: Vec<u8>) -> Option<Box<RawValue>> {
    RawValue::from_string(String::from_utf8(json).ok()?).ok()
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
            return Err(beta_flags());
        }
        flags.push(flag);
    }
    Ok(flags)
}

/// The body's `anthropic_beta` flags, then the header's that it lacks, as a JSON array.
fn merged_flags(
    body: Option<&RawValue>,
    header: Vec<&str>,
) -> Result<Box<RawValue>, TranslateError> {
    let mut flags: Vec<Cow<'_, str>> = match body {
        Some(value) => serde_json::from_str::<Vec<CowStr<'_>>>(value.get())
            .map_err(|_| beta_flags())?
            .into_iter()
            .map(|CowStr(flag)| flag)
            .collect(),
        None => Vec::new(),
    };
    for flag in header {
        if !flags.iter().any(|known| known == flag) {
            flags.push(Cow::Borrowed(flag));
        }
    }
    if flags.len() > MAX_BETA_FLAGS {
        return Err(beta_flags());
    }
    serde_json::value::to_raw_value(&flags).map_err(|_| beta_flags())
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

/// `thinking: {"type": "enabled", "budget_tokens": N}`, the form newer models refuse. Its budget
/// goes with it; `output_config.effort`, if the caller set one, stays as sent.
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
fn without_thinking(messages: &RawValue) -> Option<Box<RawValue>> {
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
    if changed {
        raw(out)
    } else {
        None
    }
}

/// One message without its thinking blocks: `None` when it has none (or is not an object with
/// a list of blocks), `Some(None)` when nothing else was left.
fn strip_message(message: &RawValue) -> Option<Option<Vec<u8>>> {
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow, default)]
        content: Option<&'a RawValue>,
    }
    let content = serde_json::from_str::<Content<'_>>(message.get())
        .ok()?
        .content?;
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
    let kept = serde_json::value::to_raw_value(&kept).ok()?;
    rewrite_members(
        message.get().as_bytes(),
        &[("content", Edit::SetJson(&kept))],
    )
    .ok()
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::{chunk_frame, encode_frame, Header, EXCEPTION_TYPE, MESSAGE_TYPE};
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

    fn body(caller: &[u8], header: Option<&str>, switches: ThinkingSwitches) -> String {
        text(&native_body(caller, header, switches).unwrap()).to_owned()
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
            "stream": false, "context_management": {"edits": []}, "messages": [] }"#;
        for switches in [OFF, ON] {
            assert_eq!(
                body(caller, None, switches),
                r#"{"z_new":{"deep": [1, 2.50, "\u00e9"]},"max_tokens":10,"context_management":{"edits": []},"messages":[],"anthropic_version":"bedrock-2023-05-31"}"#
            );
        }
        // The caller's own `anthropic_version` gives way to Bedrock's.
        assert_eq!(
            body(
                br#"{"anthropic_version": "2023-06-01", "max_tokens": 1}"#,
                None,
                OFF
            ),
            r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":1}"#
        );
    }

    #[test]
    fn beta_flags_merge_into_the_body() {
        assert_eq!(
            body(
                br#"{"anthropic_beta": ["a-1"], "max_tokens": 1}"#,
                Some(" b-2 , a-1,,b-2,c.3"),
                OFF
            ),
            r#"{"anthropic_beta":["a-1","b-2","c.3"],"max_tokens":1,"anthropic_version":"bedrock-2023-05-31"}"#
        );
        assert_eq!(
            body(br#"{"max_tokens": 1}"#, Some("x"), OFF),
            r#"{"max_tokens":1,"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["x"]}"#
        );
        // Without header flags the body's own pass as written, even odd ones.
        assert_eq!(
            body(br#"{"anthropic_beta": [ "x y" ]}"#, Some(" , "), OFF),
            r#"{"anthropic_beta":[ "x y" ],"anthropic_version":"bedrock-2023-05-31"}"#
        );

        let many: Vec<String> = (0..=MAX_BETA_FLAGS).map(|i| format!("f{i}")).collect();
        let refused = [
            (&br#"{}"#[..], many.join(",")),
            (br#"{}"#, "ok, bad flag".to_owned()),
            (br#"{}"#, "x".repeat(MAX_BETA_FLAG_BYTES + 1)),
            (br#"{"anthropic_beta": "a"}"#, "b".to_owned()),
        ];
        for (caller, header) in refused {
            assert_eq!(
                native_body(caller, Some(&header), OFF),
                Err(beta_flags()),
                "{header}"
            );
        }
        // A body naming a member twice is no body to merge into.
        let twice = br#"{"anthropic_beta": ["a"], "anthropic_beta": ["b"]}"#;
        assert_eq!(native_body(twice, Some("c"), OFF), Err(not_an_object()));
        for caller in [&b"[1]"[..], b"{\"a\":"] {
            for header in [None, Some("x")] {
                assert_eq!(native_body(caller, header, OFF), Err(not_an_object()));
            }
        }
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

        assert_eq!(
            body(caller, None, ON),
            r#"{"thinking":{"type":"adaptive"},"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Yo"}]},{"role":"user","content":[{"type":"text","text":"More"}]}],"anthropic_version":"bedrock-2023-05-31"}"#
        );
        let one_switch = ThinkingSwitches {
            enabled_to_adaptive: true,
            strip_history: false,
        };
        let rewritten: Value = serde_json::from_str(&body(caller, None, one_switch)).unwrap();
        assert_eq!(rewritten["thinking"], json!({"type": "adaptive"}));
        assert_eq!(rewritten["messages"], expected["messages"]);

        // Adaptive thinking, and a history without thinking, stay as written.
        let adaptive =
            br#"{"thinking": {"type": "adaptive"}, "messages": [{"role": "user", "content": "x"}]}"#;
        assert_eq!(
            body(adaptive, None, ON),
            r#"{"thinking":{"type": "adaptive"},"messages":[{"role": "user", "content": "x"}],"anthropic_version":"bedrock-2023-05-31"}"#
        );
        // A history of another shape is left for the upstream to judge.
        assert_eq!(
            body(br#"{"messages": {"role": "user"}}"#, None, ON),
            r#"{"messages":{"role": "user"},"anthropic_version":"bedrock-2023-05-31"}"#
        );
    }

    #[test]
    fn answers_get_the_callers_model_and_count_tokens() {
        let answer = fixture("native.bedrock.invoke.response.json");
        let (renamed, usage) = native_answer(&answer, "claude \"quoted\"").unwrap();
        let mut expected: Value = serde_json::from_slice(&answer).unwrap();
        expected["model"] = json!("claude \"quoted\"");
        assert_eq!(serde_json::from_slice::<Value>(&renamed).unwrap(), expected);
        let usage = usage.unwrap();
        assert_eq!((usage.input_tokens, usage.cached_tokens), (668, Some(256)));
        let (renamed, usage) = native_answer(br#"{"id":"x","content":[]}"#, "m").unwrap();
        assert_eq!(
            (text(&renamed), usage),
            (r#"{"id":"x","content":[],"model":"m"}"#, None)
        );
        assert!(matches!(
            native_answer(br#"{"message":"Too many requests"}"#, "m"),
            Err(ExtractError::NoText)
        ));
        for body in [&b"nope"[..], b"{"] {
            assert!(matches!(
                native_answer(body, "m"),
                Err(ExtractError::Malformed { .. })
            ));
        }
    }

    /// The fixture's events, one per line.
    fn fixture_events() -> Vec<Vec<u8>> {
        fixture("native.bedrock.stream.events.jsonl")
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Relays `wire` in reads of `step` bytes: what the caller got, and how it ended.
    fn relay(wire: &[u8], step: usize) -> (String, Result<Option<Usage>, Failure>) {
        let mut relay = MessagesRelay::new("claude");
        let mut out = BytesMut::new();
        for read in wire.chunks(step) {
            match relay.feed(read, &mut out) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Finished) => break,
                Err(failure) => return (text(&out).to_owned(), Err(failure)),
            }
        }
        let end = relay.finish(&mut out).map(|()| relay.usage());
        (text(&out).to_owned(), end)
    }

    #[test]
    fn the_spec_stream_is_relayed_as_anthropic_sse() {
        let events = fixture_events();
        let wire: Vec<u8> = events.iter().flat_map(|event| chunk_frame(event)).collect();
        for step in [1, 7, wire.len()] {
            let (sse, end) = relay(&wire, step);
            let usage = end.unwrap().unwrap();
            assert_eq!((usage.input_tokens, usage.output_tokens), (20, 18));
            let sent: Vec<&str> = sse.split("\n\n").filter(|e| !e.is_empty()).collect();
            assert_eq!(sent.len(), 7);
            let start = sent[0]
                .strip_prefix("event: message_start\ndata: ")
                .unwrap();
            let start: Value = serde_json::from_str(start).unwrap();
            let mut expected: Value = serde_json::from_slice(&events[0]).unwrap();
            expected["message"]["model"] = json!("claude");
            assert_eq!(start, expected);
            for (sent, event) in sent.iter().zip(&events).skip(1) {
                let kind = serde_json::from_slice::<Value>(event).unwrap()["type"].clone();
                assert_eq!(
                    *sent,
                    format!("event: {}\ndata: {}", kind.as_str().unwrap(), text(event))
                );
            }
        }
    }

    #[test]
    fn failures_end_the_relay() {
        let start: &[u8] =
            br#"{"type":"message_start","message":{"model":"x","usage":{"input_tokens":3}}}"#;
        let block: &[u8] =
            br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        let stop: &[u8] = br#"{"type":"message_stop"}"#;
        let frames = |events: &[&[u8]]| -> Vec<u8> {
            events.iter().flat_map(|event| chunk_frame(event)).collect()
        };
        let message = |end: Result<Option<Usage>, Failure>| end.unwrap_err().message;

        let (sse, end) = relay(&frames(&[start, stop]), 5);
        assert!(!sse.contains("message_stop"), "{sse}");
        assert_eq!(message(end), "the upstream stream held no answer");
        let (_, end) = relay(&frames(&[start, block]), 5);
        assert_eq!(
            message(end),
            "the upstream stream ended before the answer was complete"
        );
        let (_, end) = relay(&[], 5);
        assert_eq!(message(end), "the upstream stream held no answer");
        let error: &[u8] =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let (_, end) = relay(&frames(&[start, block, error]), 5);
        let failure = end.unwrap_err();
        assert_eq!(failure.status.as_u16(), 503);
        let mut wire = frames(&[start, block]);
        wire.extend(encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "exception"),
                Header::string(EXCEPTION_TYPE, "throttlingException"),
            ],
            br#"{"message":"Too many tokens"}"#,
        ));
        let (sse, end) = relay(&wire, 9);
        assert!(sse.contains("content_block_start"));
        assert_eq!(end.unwrap_err().status.as_u16(), 429);
        for bad in [&br#"{"x":1}"#[..], br#"{"type":"a\nb"}"#, br#"{"type":7}"#] {
            let (_, end) = relay(&frames(&[bad]), 64);
            assert_eq!(end.unwrap_err().status.as_u16(), 502);
        }
    }

    #[test]
    fn multi_line_json_keeps_its_lines_as_data_lines() {
        let mut out = BytesMut::new();
        write_sse("ping", b"{\"type\":\"ping\",\r\n \"x\": 1}", &mut out);
        assert_eq!(
            text(&out),
            "event: ping\ndata: {\"type\":\"ping\",\ndata:  \"x\": 1}\n\n"
        );
    }
}
