//! Server-sent events in OpenAI's exact streaming format, emulated from a complete answer.
//!
//! The Models API does not stream, so the bridge sends the whole answer as a role chunk, content
//! chunks, a finish chunk, an optional usage chunk and `data: [DONE]`. Events are encoded as the
//! body is polled, either one at a time ([`Iterator`]) or several into one buffer up to a size
//! ([`SseEvents::fill`], which the bridge uses so that a short answer leaves in one write): the
//! answer is held once, never a second encoded copy of all of it.
//!
//! ```
//! use sf_models_bridge::stream::{SseEvents, StreamKind, StreamedAnswer};
//!
//! let answer = StreamedAnswer {
//!     kind: StreamKind::Chat,
//!     id: "chatcmpl-1".into(),
//!     created: 1,
//!     model: "gpt-4o-mini".into(),
//!     text: "Hello".into(),
//!     finish_reason: "stop",
//!     usage: None,
//!     include_usage: false,
//! };
//! let events: Vec<_> = SseEvents::new(answer).collect();
//! assert_eq!(events.len(), 4); // role, content, finish, [DONE]
//! assert_eq!(&events[3][..], b"data: [DONE]\n\n");
//! assert!(events[1].starts_with(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\""));
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::openai::{
    ChatChunkChoice, ChatCompletionChunk, ChunkDelta, Completion, CompletionChoice, ErrorBody,
    Usage,
};

/// The most bytes of answer text in one content event.
pub const CONTENT_CHUNK_BYTES: usize = 256;

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

/// A complete answer, ready to be sent as events.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedAnswer {
    /// Which objects to send.
    pub kind: StreamKind,
    /// The completion id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: String,
    /// The model's text.
    pub text: String,
    /// The normalised finish reason.
    pub finish_reason: &'static str,
    /// Token counts, when known.
    pub usage: Option<Usage>,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Role,
    Content,
    Finish,
    Usage,
    Done,
    End,
}

/// The events of one answer, encoded lazily.
#[derive(Debug)]
pub struct SseEvents {
    answer: StreamedAnswer,
    stage: Stage,
    offset: usize,
}

impl SseEvents {
    /// The events for `answer`, starting with the role chunk (chat) or the first content chunk.
    pub fn new(answer: StreamedAnswer) -> Self {
        let stage = match answer.kind {
            StreamKind::Chat => Stage::Role,
            StreamKind::Text => Stage::Content,
        };
        Self {
            answer,
            stage,
            offset: 0,
        }
    }

    /// The next piece of text, at most [`CONTENT_CHUNK_BYTES`] long and cut on a char boundary.
    fn next_piece(&mut self) -> Option<&str> {
        let rest = self
            .answer
            .text
            .get(self.offset..)
            .filter(|r| !r.is_empty())?;
        let mut end = rest.len().min(CONTENT_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        self.offset += end;
        rest.get(..end)
    }

    fn chat_event(
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
        usage: Option<Usage>,
    ) {
        let answer = &self.answer;
        write_event(
            buf,
            &ChatCompletionChunk {
                id: &answer.id,
                object: "chat.completion.chunk",
                created: answer.created,
                model: &answer.model,
                choices,
                usage: answer.include_usage.then_some(usage),
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
        usage: Option<Usage>,
    ) {
        let answer = &self.answer;
        write_event(
            buf,
            &Completion {
                id: &answer.id,
                object: "text_completion",
                created: answer.created,
                model: &answer.model,
                choices,
                usage,
            },
        );
    }

    /// Appends the next event to `buf`; `false` once every event has been written.
    pub fn next_into(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            match self.stage {
                Stage::Role => {
                    self.stage = Stage::Content;
                    let delta = ChunkDelta {
                        role: Some("assistant"),
                        content: Some(""),
                    };
                    self.chat_event(buf, delta, None);
                    return true;
                }
                Stage::Content => {
                    let offset = self.offset;
                    if self.next_piece().is_none() {
                        self.stage = Stage::Finish;
                        continue;
                    }
                    let piece = self
                        .answer
                        .text
                        .get(offset..self.offset)
                        .unwrap_or_default();
                    match self.answer.kind {
                        StreamKind::Chat => self.chat_event(
                            buf,
                            ChunkDelta {
                                role: None,
                                content: Some(piece),
                            },
                            None,
                        ),
                        StreamKind::Text => self.text_event(buf, piece, None),
                    }
                    return true;
                }
                Stage::Finish => {
                    self.stage = Stage::Usage;
                    let finish = Some(self.answer.finish_reason);
                    match self.answer.kind {
                        StreamKind::Chat => self.chat_event(buf, ChunkDelta::default(), finish),
                        StreamKind::Text => self.text_event(buf, "", finish),
                    }
                    return true;
                }
                Stage::Usage => {
                    self.stage = Stage::Done;
                    if !self.answer.include_usage {
                        continue;
                    }
                    // OpenAI sends usage on a last chunk with no choices; counts unknown to the
                    // upstream are reported as zeros rather than leaving clients without a chunk.
                    let usage = Some(self.answer.usage.unwrap_or_default());
                    match self.answer.kind {
                        StreamKind::Chat => self.chat_chunk(buf, &[], usage),
                        StreamKind::Text => self.text_chunk(buf, &[], usage),
                    }
                    return true;
                }
                Stage::Done => {
                    self.stage = Stage::End;
                    buf.extend_from_slice(DONE);
                    return true;
                }
                Stage::End => return false,
            }
        }
    }

    /// Appends whole events to `buf` until it holds at least `target` bytes or the events run
    /// out; `false` once every event has been written. An event is never split.
    pub fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        while buf.len() < target {
            if !self.next_into(buf) {
                return false;
            }
        }
        self.stage != Stage::End
    }

    /// About how many bytes the events not yet written take, to size a buffer.
    pub fn remaining_hint(&self) -> usize {
        let text = self.answer.text.len().saturating_sub(self.offset);
        let events = text.div_ceil(CONTENT_CHUNK_BYTES).saturating_add(4);
        text.saturating_add(text / 8)
            .saturating_add(events.saturating_mul(self.event_overhead()))
    }

    /// The bytes every event takes besides its content.
    fn event_overhead(&self) -> usize {
        EVENT_OVERHEAD
            .saturating_add(self.answer.id.len())
            .saturating_add(self.answer.model.len())
    }
}

/// The JSON around one event's content: object name, created, choice and `data: ` framing.
const EVENT_OVERHEAD: usize = 160;

impl Iterator for SseEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut buf =
            BytesMut::with_capacity(CONTENT_CHUNK_BYTES.saturating_add(self.event_overhead()));
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
    use crate::openai::ErrorType;
    use serde_json::{json, Value};

    fn answer(kind: StreamKind, text: &str, include_usage: bool) -> StreamedAnswer {
        StreamedAnswer {
            kind,
            id: "id-1".into(),
            created: 7,
            model: "m".into(),
            text: text.into(),
            finish_reason: "stop",
            usage: Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                prompt_tokens_details: None,
            }),
            include_usage,
        }
    }

    fn events(answer: StreamedAnswer) -> Vec<Value> {
        SseEvents::new(answer)
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
        let one_by_one: Vec<u8> = SseEvents::new(answer(StreamKind::Chat, &text, true))
            .flat_map(|event| event.to_vec())
            .collect();
        for target in [1, 300, 4096, 1 << 20] {
            let mut events = SseEvents::new(answer(StreamKind::Chat, &text, true));
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
        let events = SseEvents::new(answer(StreamKind::Chat, &text, true));
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
