//! Server-sent events in OpenAI's exact streaming format (`chat.completion.chunk`, or
//! `text_completion` for the legacy endpoint), rendered from the neutral [`StreamEvent`]s.
//!
//! Today every surface answers whole, so a stream is emulated from the complete answer
//! ([`RenderedAnswer`]): a role chunk, content chunks, tool calls, a finish chunk, an optional
//! usage chunk and `data: [DONE]`. Events are encoded as the body is polled, either one at a time
//! ([`Iterator`]) or several into one buffer up to a size ([`SseEvents::fill`], which the bridge
//! uses so that a short answer leaves in one write): the answer is held once, never a second
//! encoded copy of all of it.
//!
//! ```
//! use sf_models_bridge::core::{Delivery, Finish, Generation};
//! use sf_models_bridge::front::sse::{SseEvents, StreamKind};
//! use sf_models_bridge::front::AnswerCtx;
//!
//! let answer = Generation { id: None, text: "Hello", tool_calls: vec![], finish: Finish::Stop, usage: None };
//! let ctx = AnswerCtx { fallback_id: "chatcmpl-1", created: 1, model: "gpt-4o-mini", delivery: Delivery::WHOLE };
//! let events: Vec<_> = SseEvents::new(StreamKind::Chat, &ctx, &answer, false).collect();
//! assert_eq!(events.len(), 4); // role, content, finish, [DONE]
//! assert_eq!(&events[3][..], b"data: [DONE]\n\n");
//! assert!(events[1].starts_with(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\""));
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::emulated::RenderedAnswer;
use super::{usable_id, AnswerCtx, EventSource, RenderEvents};
use crate::core::{Generation, StreamEvent, TEXT_PIECE_BYTES};
use crate::openai::{
    finish_reason, ChatChunkChoice, ChatCompletionChunk, ChunkDelta, ChunkFunction, ChunkToolCall,
    Completion, CompletionChoice, ErrorBody,
};

/// The most bytes of answer text in one content event.
pub const CONTENT_CHUNK_BYTES: usize = TEXT_PIECE_BYTES;

/// A comment line that keeps proxies and clients from timing out while the upstream works;
/// SSE parsers ignore it.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The last event of a successful stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Which OpenAI object the events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `chat.completion.chunk`.
    Chat,
    /// `text_completion` (legacy completions).
    Text,
}

/// Renders neutral events as OpenAI chunks of one stream: every chunk repeats its id, creation
/// time and model.
#[derive(Debug, Clone)]
pub struct OpenAiChunks {
    kind: StreamKind,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl OpenAiChunks {
    /// The chunks of a stream with answer id `id`. `include_usage` is the caller's
    /// `stream_options.include_usage`.
    pub fn new(kind: StreamKind, id: &str, ctx: &AnswerCtx<'_>, include_usage: bool) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            created: ctx.created,
            model: ctx.model.to_owned(),
            include_usage,
        }
    }

    /// Appends the chunk for `event`; `false` when it has none in this format.
    pub fn render_event(&self, buf: &mut BytesMut, event: StreamEvent<'_>) -> bool {
        Head {
            kind: self.kind,
            id: &self.id,
            created: self.created,
            model: &self.model,
            include_usage: self.include_usage,
        }
        .render(buf, event)
    }

    /// The bytes every event takes besides its content.
    fn event_overhead(&self) -> usize {
        EVENT_OVERHEAD
            .saturating_add(self.id.len())
            .saturating_add(self.model.len())
    }
}

impl RenderEvents for OpenAiChunks {
    fn render(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        self.render_event(out, event);
    }
}

/// The events of one answer in OpenAI's format, encoded lazily.
#[derive(Debug)]
pub struct SseEvents(RenderedAnswer<OpenAiChunks>);

impl SseEvents {
    /// The events of `answer`, which is copied once. `include_usage` is the caller's
    /// `stream_options.include_usage`.
    pub fn new(
        kind: StreamKind,
        ctx: &AnswerCtx<'_>,
        answer: &Generation<'_>,
        include_usage: bool,
    ) -> Self {
        let id = usable_id(answer.id).unwrap_or(ctx.fallback_id);
        let chunks = OpenAiChunks::new(kind, id, ctx, include_usage);
        let overhead = chunks.event_overhead();
        Self(RenderedAnswer::new(answer, chunks, overhead))
    }

    /// Appends the next event to `buf`; `false` once every event has been written.
    pub fn next_into(&mut self, buf: &mut BytesMut) -> bool {
        self.0.next_into(buf)
    }

    /// Appends whole events to `buf` until it holds at least `target` bytes or the events run
    /// out; `false` once every event has been written. An event is never split.
    pub fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        self.0.fill(buf, target)
    }

    /// About how many bytes the events not yet written take, to size a buffer.
    pub fn remaining_hint(&self) -> usize {
        self.0.remaining_hint()
    }
}

impl EventSource for SseEvents {
    fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        SseEvents::fill(self, buf, target)
    }

    fn remaining_hint(&self) -> usize {
        SseEvents::remaining_hint(self)
    }
}

/// What every event of one stream repeats.
struct Head<'a> {
    kind: StreamKind,
    id: &'a str,
    created: u64,
    model: &'a str,
    include_usage: bool,
}

impl Head<'_> {
    /// Appends the OpenAI event for `event`; `false` when it has none in this format.
    fn render(&self, buf: &mut BytesMut, event: StreamEvent<'_>) -> bool {
        match (self.kind, event) {
            (StreamKind::Chat, StreamEvent::Start) => self.chat_delta(
                buf,
                ChunkDelta {
                    role: Some("assistant"),
                    content: Some(""),
                    ..ChunkDelta::default()
                },
                None,
            ),
            (StreamKind::Chat, StreamEvent::TextDelta(piece)) => self.chat_delta(
                buf,
                ChunkDelta {
                    content: Some(piece),
                    ..ChunkDelta::default()
                },
                None,
            ),
            (StreamKind::Chat, StreamEvent::ToolCallStart { index, id, name }) => {
                let calls = [ChunkToolCall {
                    index,
                    id: Some(id),
                    kind: Some("function"),
                    function: ChunkFunction {
                        name: Some(name),
                        arguments: "",
                    },
                }];
                self.chat_delta(
                    buf,
                    ChunkDelta {
                        tool_calls: &calls,
                        ..ChunkDelta::default()
                    },
                    None,
                );
            }
            (StreamKind::Chat, StreamEvent::ToolCallDelta { index, arguments }) => {
                let calls = [ChunkToolCall {
                    index,
                    id: None,
                    kind: None,
                    function: ChunkFunction {
                        name: None,
                        arguments,
                    },
                }];
                self.chat_delta(
                    buf,
                    ChunkDelta {
                        tool_calls: &calls,
                        ..ChunkDelta::default()
                    },
                    None,
                );
            }
            (StreamKind::Chat, StreamEvent::Finish(finish)) => {
                self.chat_delta(buf, ChunkDelta::default(), Some(finish_reason(finish)))
            }
            (StreamKind::Text, StreamEvent::TextDelta(piece)) => self.text_event(buf, piece, None),
            (StreamKind::Text, StreamEvent::Finish(finish)) => {
                self.text_event(buf, "", Some(finish_reason(finish)))
            }
            (_, StreamEvent::Usage(usage)) => {
                if !self.include_usage {
                    return false;
                }
                // OpenAI sends usage on a last chunk with no choices; counts unknown to the
                // upstream are reported as zeros rather than leaving clients without a chunk.
                let usage = Some(crate::openai::Usage::from(usage.unwrap_or_default()));
                match self.kind {
                    StreamKind::Chat => self.chat_chunk(buf, &[], usage),
                    StreamKind::Text => self.text_chunk(buf, &[], usage),
                }
            }
            (_, StreamEvent::Done) => buf.extend_from_slice(DONE),
            // The legacy text format has no role and no tool calls.
            (
                StreamKind::Text,
                StreamEvent::Start
                | StreamEvent::ToolCallStart { .. }
                | StreamEvent::ToolCallDelta { .. },
            ) => return false,
        }
        true
    }

    fn chat_delta(
        &self,
        buf: &mut BytesMut,
        delta: ChunkDelta<'_>,
        finish_reason: Option<&'static str>,
    ) {
        let choices = [ChatChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        self.chat_chunk(buf, &choices, None);
    }

    fn chat_chunk(
        &self,
        buf: &mut BytesMut,
        choices: &[ChatChunkChoice<'_>],
        usage: Option<crate::openai::Usage>,
    ) {
        write_event(
            buf,
            &ChatCompletionChunk {
                id: self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model,
                choices,
                usage: self.include_usage.then_some(usage),
            },
        );
    }

    fn text_event(&self, buf: &mut BytesMut, text: &str, finish_reason: Option<&'static str>) {
        let choices = [CompletionChoice {
            text,
            index: 0,
            logprobs: None,
            finish_reason,
        }];
        self.text_chunk(buf, &choices, None);
    }

    fn text_chunk(
        &self,
        buf: &mut BytesMut,
        choices: &[CompletionChoice<'_>],
        usage: Option<crate::openai::Usage>,
    ) {
        write_event(
            buf,
            &Completion {
                id: self.id,
                object: "text_completion",
                created: self.created,
                model: self.model,
                choices,
                usage,
            },
        );
    }
}

/// The JSON around one event's content: object name, created, choice and `data: ` framing.
const EVENT_OVERHEAD: usize = 160;

impl Iterator for SseEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut buf = BytesMut::with_capacity(CONTENT_CHUNK_BYTES.saturating_add(EVENT_OVERHEAD));
        self.next_into(&mut buf).then(|| buf.freeze())
    }
}

/// Appends `data: {json}\n\n` to `buf`.
fn write_event(buf: &mut BytesMut, value: &impl Serialize) {
    buf.extend_from_slice(b"data: ");
    let mut writer = buf.writer();
    // Writing our own plain structs into memory cannot fail; an empty event would be skipped
    // by clients rather than corrupt the stream.
    let _ = serde_json::to_writer(&mut writer, value);
    writer.into_inner().extend_from_slice(b"\n\n");
}

/// The event that ends a stream whose upstream failed after the response had started: clients
/// raise it as an API error instead of seeing a silently truncated answer.
pub fn error_event(error: &ErrorBody) -> Bytes {
    let mut buf = BytesMut::with_capacity(256);
    write_event(&mut buf, error);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Delivery, Usage};
    use crate::openai::ErrorType;
    use serde_json::{json, Value};

    fn answer(kind: StreamKind, text: &str, include_usage: bool) -> SseEvents {
        let ctx = AnswerCtx {
            fallback_id: "id-1",
            created: 7,
            model: "m",
            delivery: Delivery::WHOLE,
        };
        let generation = Generation {
            id: None,
            text,
            tool_calls: vec![],
            finish: crate::core::Finish::Stop,
            usage: Some(Usage {
                input_tokens: 1,
                output_tokens: 2,
                total_tokens: 3,
                cached_tokens: None,
                cache_write_tokens: None,
                reasoning_tokens: None,
            }),
        };
        SseEvents::new(kind, &ctx, &generation, include_usage)
    }

    fn events(answer: SseEvents) -> Vec<Value> {
        answer
            .map(|event| {
                let text = std::str::from_utf8(&event).unwrap();
                let data = text
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn chat_stream_matches_openai() {
        let got = events(answer(StreamKind::Chat, "Hi", true));
        let base =
            json!({"id": "id-1", "object": "chat.completion.chunk", "created": 7, "model": "m"});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            got,
            vec![
                with(
                    json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}], "usage": null})
                ),
                with(
                    json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": null, "finish_reason": null}], "usage": null})
                ),
                with(
                    json!({"choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}], "usage": null})
                ),
                with(
                    json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
                ),
                json!("[DONE]"),
            ]
        );
    }

    #[test]
    fn text_stream_matches_openai() {
        let got = events(answer(StreamKind::Text, "Hi", false));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["object"], "text_completion");
        assert_eq!(got[0]["choices"][0]["text"], "Hi");
        assert_eq!(got[1]["choices"][0]["finish_reason"], "stop");
        assert!(got[0].get("usage").is_none());
        assert_eq!(got[2], "[DONE]");
    }

    #[test]
    fn long_text_is_split_on_char_boundaries_and_reassembles() {
        let text: String = "é日a🙂".repeat(300);
        let got = events(answer(StreamKind::Chat, &text, false));
        let pieces: Vec<&str> = got[1..got.len() - 2]
            .iter()
            .map(|e| e["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert!(pieces.len() > 3);
        assert!(pieces.iter().all(|p| p.len() <= CONTENT_CHUNK_BYTES));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn filled_frames_hold_whole_events_and_the_same_bytes() {
        let text: String = "a\"é\n".repeat(700);
        let one_by_one: Vec<u8> = answer(StreamKind::Chat, &text, true)
            .flat_map(|event| event.to_vec())
            .collect();
        for target in [1, 300, 4096, 1 << 20] {
            let mut events = answer(StreamKind::Chat, &text, true);
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
            if target == 1 << 20 {
                assert_eq!(frames.len(), 1);
            }
        }
        let events = answer(StreamKind::Chat, &text, true);
        let hint = events.remaining_hint();
        assert!(
            hint >= one_by_one.len() / 2 && hint <= one_by_one.len() * 2,
            "{hint}"
        );
    }

    #[test]
    fn empty_answer_has_no_content_event() {
        let got = events(answer(StreamKind::Chat, "", false));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn error_event_is_an_openai_envelope() {
        let event = error_event(&ErrorBody::new(ErrorType::ApiError, "boom"));
        assert_eq!(
            &event[..],
            b"data: {\"error\":{\"message\":\"boom\",\"type\":\"api_error\",\"param\":null,\"code\":null}}\n\n"
        );
    }
}
