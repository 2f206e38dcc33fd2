//! Neutral stream events as Anthropic's server-sent events, and the events of a whole answer.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::answer::{empty_object, tool_input};
use crate::anthropic::{
    ContentBlock, Delta, DeltaUsage, Message, MessageEnd, MessageStreamEvent, StopReason, Usage,
};
use crate::core::{self, AnswerEvents, Finish, Generation, StreamEvent};
use crate::front::{usable_id, AnswerCtx, EventSource, RenderEvents};

/// Renders neutral events as the events of one Anthropic message stream: `message_start`;
/// for each run of text and each tool call a `content_block_start`, its deltas and a
/// `content_block_stop` (one block open at a time, indexes in order); then `message_delta`
/// with the stop reason and the token counts, and `message_stop`.
///
/// Tool call arguments pass through as they come: a stream cannot take back a piece already
/// sent, so arguments that end up malformed reach the caller as they are (an answer that
/// arrived whole is mended first, see [`message_json`](super::message_json)).
///
/// ```
/// use bytes::BytesMut;
/// use sf_models_bridge::core::{Finish, StreamEvent};
/// use sf_models_bridge::front::messages::MessageEvents;
/// use sf_models_bridge::front::RenderEvents;
///
/// let mut events = MessageEvents::new("msg_1", "claude");
/// let mut out = BytesMut::new();
/// for event in [StreamEvent::Start, StreamEvent::TextDelta("Hi"), StreamEvent::Finish(Finish::Stop),
///               StreamEvent::Usage(None), StreamEvent::Done] {
///     events.render(event, &mut out);
/// }
/// let text = std::str::from_utf8(&out).unwrap();
/// let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
/// assert_eq!(names, ["message_start", "content_block_start", "content_block_delta",
///                    "content_block_stop", "message_delta", "message_stop"]);
/// ```
#[derive(Debug, Clone)]
pub struct MessageEvents {
    id: String,
    model: String,
    started: bool,
    ended: bool,
    /// The block open now, if any.
    open: Option<Open>,
    /// How many blocks were opened: the index of the next.
    blocks: usize,
    /// Which block each tool call went to: (call index, block index).
    calls: Vec<(usize, usize)>,
    finish: Option<Finish>,
    usage: Option<core::Usage>,
}

/// An open content block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text { block: usize },
    Tool { call: usize, block: usize },
}

impl Open {
    fn block(self) -> usize {
        match self {
            Open::Text { block } | Open::Tool { block, .. } => block,
        }
    }
}

impl MessageEvents {
    /// The events of a message with this id, answered for the caller's `model` name.
    pub fn new(id: &str, model: &str) -> Self {
        Self {
            id: id.to_owned(),
            model: model.to_owned(),
            started: false,
            ended: false,
            open: None,
            blocks: 0,
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// Appends what `event` becomes to `out`.
    fn render_event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if !self.started {
            // Every stream opens with the message, even one whose first event is not `Start`.
            self.started = true;
            write_event(
                out,
                &MessageStreamEvent::MessageStart {
                    // Token counts are known only at the end: `message_delta` carries them.
                    message: Message::new(&self.id, &self.model, Vec::new()),
                },
            );
        }
        match event {
            StreamEvent::Start => {}
            StreamEvent::TextDelta(text) => {
                if text.is_empty() {
                    return;
                }
                let block = match self.open {
                    Some(Open::Text { block }) => block,
                    _ => {
                        let block = self.blocks;
                        self.open_block(out, Open::Text { block }, ContentBlock::Text { text: "" });
                        block
                    }
                };
                write_delta(out, block, Delta::TextDelta { text });
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let block = self.blocks;
                self.open_block(
                    out,
                    Open::Tool { call: index, block },
                    ContentBlock::ToolUse {
                        id,
                        name,
                        input: empty_object(),
                    },
                );
                self.calls.push((index, block));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if arguments.is_empty() {
                    return;
                }
                let block = match self.open {
                    Some(Open::Tool { call, block }) if call == index => Some(block),
                    // A piece for a call whose block was closed (calls interleaved upstream):
                    // clients add pieces by block index, so it still reaches its call.
                    _ => self
                        .calls
                        .iter()
                        .rev()
                        .find(|(call, _)| *call == index)
                        .map(|&(_, block)| block),
                };
                // A piece of a call that never started has no block to go to: a surface bug.
                if let Some(block) = block {
                    write_delta(
                        out,
                        block,
                        Delta::InputJsonDelta {
                            partial_json: arguments,
                        },
                    );
                }
            }
            StreamEvent::Finish(finish) => {
                self.close_block(out);
                self.finish = Some(finish);
            }
            StreamEvent::Usage(usage) => self.usage = usage,
            StreamEvent::Done => {
                self.close_block(out);
                self.ended = true;
                let usage = self.usage.map(Usage::from);
                write_event(
                    out,
                    &MessageStreamEvent::MessageDelta {
                        delta: MessageEnd {
                            stop_reason: self.finish.map_or(StopReason::EndTurn, StopReason::from),
                            stop_sequence: None,
                        },
                        usage: DeltaUsage {
                            output_tokens: usage.map_or(0, |usage| usage.output_tokens),
                            input_tokens: usage.map(|usage| usage.input_tokens),
                            cache_creation_input_tokens: usage
                                .map(|usage| usage.cache_creation_input_tokens),
                            cache_read_input_tokens: usage
                                .map(|usage| usage.cache_read_input_tokens),
                        },
                    },
                );
                write_event(out, &MessageStreamEvent::MessageStop);
            }
        }
    }

    /// Closes the open block, if any, and opens `open` with `start`.
    fn open_block(&mut self, out: &mut BytesMut, open: Open, start: ContentBlock<'_>) {
        self.close_block(out);
        write_event(
            out,
            &MessageStreamEvent::ContentBlockStart {
                index: open.block(),
                content_block: start,
            },
        );
        self.open = Some(open);
        self.blocks += 1;
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some(open) = self.open.take() {
            write_event(
                out,
                &MessageStreamEvent::ContentBlockStop {
                    index: open.block(),
                },
            );
        }
    }
}

impl RenderEvents for MessageEvents {
    fn render(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        self.render_event(event, out);
    }
}

fn write_delta(out: &mut BytesMut, index: usize, delta: Delta<'_>) {
    write_event(out, &MessageStreamEvent::ContentBlockDelta { index, delta });
}

fn write_event(out: &mut BytesMut, event: &MessageStreamEvent<'_>) {
    write_sse(out, event.name(), event);
}

/// Appends `event: {name}\ndata: {json}\n\n` to `out`.
pub(super) fn write_sse(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let mut writer = out.writer();
    // Writing our own plain structs into memory cannot fail; an empty event would be skipped
    // by clients rather than corrupt the stream.
    let _ = serde_json::to_writer(&mut writer, data);
    writer.into_inner().extend_from_slice(b"\n\n");
}

/// The bytes an event takes besides its content: names, indexes, framing.
const EVENT_OVERHEAD: usize = 96;

/// The events of an answer that arrived whole, rendered as the body is polled: the answer is
/// held once, never a second encoded copy of all of it.
///
/// ```
/// use sf_models_bridge::core::{Delivery, Finish, Generation};
/// use sf_models_bridge::front::messages::AnswerStream;
/// use sf_models_bridge::front::AnswerCtx;
///
/// let answer = Generation { id: None, text: "Hi", tool_calls: vec![], finish: Finish::Stop, usage: None };
/// let ctx = AnswerCtx { fallback_id: "msg_1", created: 1, model: "claude", delivery: Delivery::WHOLE };
/// let events: Vec<_> = AnswerStream::new(&answer, &ctx).collect();
/// assert!(events[0].starts_with(b"event: message_start\ndata: {\"type\":\"message_start\""));
/// // `Done` becomes `message_delta` and `message_stop`.
/// assert!(events[events.len() - 1].ends_with(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
/// ```
#[derive(Debug)]
pub struct AnswerStream {
    renderer: MessageEvents,
    events: AnswerEvents,
}

impl AnswerStream {
    /// The events of `answer`, its tool call arguments mended as a whole answer's are.
    pub fn new(answer: &Generation<'_>, ctx: &AnswerCtx<'_>) -> Self {
        let id = usable_id(answer.id).unwrap_or(ctx.fallback_id);
        let mut mended = answer.clone();
        for call in &mut mended.tool_calls {
            let input = tool_input(&call.arguments).get().to_owned();
            call.arguments = Cow::Owned(input);
        }
        Self {
            renderer: MessageEvents::new(id, ctx.model),
            events: AnswerEvents::new(&mended),
        }
    }
}

impl Iterator for AnswerStream {
    type Item = Bytes;

    /// What the next neutral event becomes: one event or several (a block's start, delta and
    /// stop), or nothing.
    fn next(&mut self) -> Option<Bytes> {
        let mut out = BytesMut::new();
        let event = self.events.next_event()?;
        self.renderer.render_event(event, &mut out);
        Some(out.freeze())
    }
}

impl EventSource for AnswerStream {
    fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        while buf.len() < target {
            let Some(event) = self.events.next_event() else {
                return false;
            };
            self.renderer.render_event(event, buf);
        }
        !self.events.is_done()
    }

    fn remaining_hint(&self) -> usize {
        let (text, events) = self.events.remaining();
        // Block starts and stops come on top of the neutral events; only the first event
        // repeats the id and the model.
        text.saturating_add(text / 8)
            .saturating_add(events.saturating_mul(2 * EVENT_OVERHEAD))
            .saturating_add(self.renderer.id.len())
            .saturating_add(self.renderer.model.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Delivery, ToolCall};
    use serde_json::{json, Value};

    /// The (name, data) of each event in `out`, checking the framing.
    fn parse(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        assert!(text.ends_with("\n\n"), "{text}");
        text.split_terminator("\n\n")
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name, "the event name is the data's type");
                (name.to_owned(), data)
            })
            .collect()
    }

    fn render(events: &[StreamEvent<'_>]) -> Vec<Value> {
        let mut renderer = MessageEvents::new("msg_1", "claude");
        let mut out = BytesMut::new();
        for event in events {
            renderer.render(*event, &mut out);
        }
        parse(&out).into_iter().map(|(_, data)| data).collect()
    }

    fn start() -> Value {
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 0, "output_tokens": 0,
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
    }

    fn block_start(index: usize, block: Value) -> Value {
        json!({"type": "content_block_start", "index": index, "content_block": block})
    }

    fn text(index: usize, text: &str) -> Value {
        json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
    }

    fn input(index: usize, partial_json: &str) -> Value {
        json!({"type": "content_block_delta", "index": index,
               "delta": {"type": "input_json_delta", "partial_json": partial_json}})
    }

    fn stop(index: usize) -> Value {
        json!({"type": "content_block_stop", "index": index})
    }

    fn tool(id: &str) -> Value {
        json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {}})
    }

    fn end(reason: &str, usage: Value) -> [Value; 2] {
        [
            json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage}),
            json!({"type": "message_stop"}),
        ]
    }

    const USAGE: core::Usage = core::Usage {
        input_tokens: 20,
        output_tokens: 5,
        total_tokens: 25,
        cached_tokens: Some(8),
        cache_write_tokens: None,
        reasoning_tokens: None,
    };

    #[test]
    fn text_stream_matches_anthropic() {
        let got = render(&[
            StreamEvent::Start,
            StreamEvent::TextDelta("Hel"),
            StreamEvent::TextDelta(""),
            StreamEvent::TextDelta("lo"),
            StreamEvent::Finish(Finish::Stop),
            StreamEvent::Usage(Some(USAGE)),
            StreamEvent::Done,
        ]);
        let mut want = vec![
            start(),
            block_start(0, json!({"type": "text", "text": ""})),
            text(0, "Hel"),
            text(0, "lo"),
            stop(0),
        ];
        want.extend(end(
            "end_turn",
            json!({"output_tokens": 5, "input_tokens": 12, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 8}),
        ));
        assert_eq!(got, want);
    }

    #[test]
    fn tool_call_arguments_arrive_in_pieces() {
        let got = render(&[
            StreamEvent::Start,
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_1",
                name: "get_weather",
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "",
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: r#"{"ci"#,
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: r#"ty": "Paris"}"#,
            },
            StreamEvent::Finish(Finish::ToolCalls),
            StreamEvent::Usage(None),
            StreamEvent::Done,
        ]);
        let mut want = vec![
            start(),
            block_start(0, tool("toolu_1")),
            input(0, r#"{"ci"#),
            input(0, r#"ty": "Paris"}"#),
            stop(0),
        ];
        want.extend(end("tool_use", json!({"output_tokens": 0})));
        assert_eq!(got, want);
    }

    #[test]
    fn text_then_tool_calls_take_blocks_in_order() {
        let got = render(&[
            StreamEvent::Start,
            StreamEvent::TextDelta("Checking."),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_1",
                name: "get_weather",
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "toolu_2",
                name: "get_weather",
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{}",
            },
            // Interleaved upstream: the piece still goes to its call's block.
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: r#"{"city":"Oslo"}"#,
            },
            // No such call: nowhere to go.
            StreamEvent::ToolCallDelta {
                index: 7,
                arguments: "{}",
            },
            StreamEvent::TextDelta("More."),
            StreamEvent::Finish(Finish::ToolCalls),
            StreamEvent::Usage(None),
            StreamEvent::Done,
        ]);
        let mut want = vec![
            start(),
            block_start(0, json!({"type": "text", "text": ""})),
            text(0, "Checking."),
            stop(0),
            block_start(1, tool("toolu_1")),
            stop(1),
            block_start(2, tool("toolu_2")),
            input(2, "{}"),
            input(1, r#"{"city":"Oslo"}"#),
            stop(2),
            block_start(3, json!({"type": "text", "text": ""})),
            text(3, "More."),
            stop(3),
        ];
        want.extend(end("tool_use", json!({"output_tokens": 0})));
        assert_eq!(got, want);
    }

    #[test]
    fn the_message_starts_without_start_and_nothing_follows_its_stop() {
        let got = render(&[
            StreamEvent::TextDelta("x"),
            StreamEvent::Done,
            StreamEvent::TextDelta("late"),
            StreamEvent::Done,
        ]);
        let mut want = vec![
            start(),
            block_start(0, json!({"type": "text", "text": ""})),
            text(0, "x"),
            stop(0),
        ];
        want.extend(end("end_turn", json!({"output_tokens": 0})));
        assert_eq!(got, want);
    }

    fn whole_answer(text: &str) -> AnswerStream {
        let ctx = AnswerCtx {
            fallback_id: "msg_local",
            created: 1,
            model: "claude",
            delivery: Delivery::WHOLE,
        };
        let answer = Generation {
            id: Some("msg_up"),
            text,
            tool_calls: vec![ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: r#"{"a": tru"#.into(),
            }],
            finish: Finish::ToolCalls,
            usage: Some(USAGE),
        };
        AnswerStream::new(&answer, &ctx)
    }

    #[test]
    fn a_whole_answer_streams_with_its_arguments_mended() {
        let bytes: Vec<u8> = whole_answer("Hi")
            .flat_map(|event| event.to_vec())
            .collect();
        let events = parse(&bytes);
        assert_eq!(events[0].1["message"]["id"], "msg_up");
        assert_eq!(
            events[4].1,
            block_start(
                1,
                json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}})
            )
        );
        assert_eq!(events[5].1, input(1, r#"{"_raw_arguments":"{\"a\": tru"}"#));
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn filled_frames_hold_whole_events_and_the_same_bytes() {
        let text = "a\"é\n".repeat(700);
        let one_by_one: Vec<u8> = whole_answer(&text)
            .flat_map(|event| event.to_vec())
            .collect();
        for target in [1, 300, 4096, 1 << 20] {
            let mut events = whole_answer(&text);
            let mut frames = Vec::new();
            loop {
                let mut frame = BytesMut::with_capacity(events.remaining_hint().min(target));
                let more = events.fill(&mut frame, target);
                if !frame.is_empty() {
                    frames.push(frame.freeze());
                }
                if !more {
                    break;
                }
            }
            assert!(frames.iter().all(|f| f.ends_with(b"\n\n")), "{target}");
            assert_eq!(frames.concat(), one_by_one, "{target}");
        }
        let hint = whole_answer(&text).remaining_hint();
        assert!(
            hint >= one_by_one.len() / 2 && hint <= one_by_one.len() * 2,
            "{hint} for {}",
            one_by_one.len()
        );
    }
}
