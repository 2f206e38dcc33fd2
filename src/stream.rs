//! Server-sent events in OpenAI's exact streaming format, emulated from a complete answer.
//!
//! The Models API does not stream, so the bridge sends the whole answer as a role chunk, content
//! chunks, a finish chunk, an optional usage chunk and `data: [DONE]`. Events are encoded one at a
//! time as the body is polled: the answer is held once, never a second encoded copy of it.
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

    fn chat_event(&self, delta: ChunkDelta<'_>, finish_reason: Option<&'static str>) -> Bytes {
        let choices = [ChatChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        self.chat_chunk(&choices, None)
    }

    fn chat_chunk(&self, choices: &[ChatChunkChoice<'_>], usage: Option<Usage>) -> Bytes {
        let answer = &self.answer;
        data_event(&ChatCompletionChunk {
            id: &answer.id,
            object: "chat.completion.chunk",
            created: answer.created,
            model: &answer.model,
            choices,
            usage: answer.include_usage.then_some(usage),
        })
    }

    fn text_event(&self, text: &str, finish_reason: Option<&'static str>) -> Bytes {
        let choices = [CompletionChoice {
            text,
            index: 0,
            logprobs: None,
            finish_reason,
        }];
        self.text_chunk(&choices, None)
    }

    fn text_chunk(&self, choices: &[CompletionChoice<'_>], usage: Option<Usage>) -> Bytes {
        let answer = &self.answer;
        data_event(&Completion {
            id: &answer.id,
            object: "text_completion",
            created: answer.created,
            model: &answer.model,
            choices,
            usage,
        })
    }
}

impl Iterator for SseEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.stage {
                Stage::Role => {
                    self.stage = Stage::Content;
                    let delta = ChunkDelta {
                        role: Some("assistant"),
                        content: Some(""),
                    };
                    return Some(self.chat_event(delta, None));
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
                    return Some(match self.answer.kind {
                        StreamKind::Chat => self.chat_event(
                            ChunkDelta {
                                role: None,
                                content: Some(piece),
                            },
                            None,
                        ),
                        StreamKind::Text => self.text_event(piece, None),
                    });
                }
                Stage::Finish => {
                    self.stage = Stage::Usage;
                    let finish = Some(self.answer.finish_reason);
                    return Some(match self.answer.kind {
                        StreamKind::Chat => self.chat_event(ChunkDelta::default(), finish),
                        StreamKind::Text => self.text_event("", finish),
                    });
                }
                Stage::Usage => {
                    self.stage = Stage::Done;
                    if !self.answer.include_usage {
                        continue;
                    }
                    // OpenAI sends usage on a last chunk with no choices; counts unknown to the
                    // upstream are reported as zeros rather than leaving clients without a chunk.
                    let usage = Some(self.answer.usage.unwrap_or_default());
                    return Some(match self.answer.kind {
                        StreamKind::Chat => self.chat_chunk(&[], usage),
                        StreamKind::Text => self.text_chunk(&[], usage),
                    });
                }
                Stage::Done => {
                    self.stage = Stage::End;
                    return Some(Bytes::from_static(DONE));
                }
                Stage::End => return None,
            }
        }
    }
}

/// `data: {json}\n\n`.
fn data_event(value: &impl Serialize) -> Bytes {
    let mut buf = BytesMut::with_capacity(CONTENT_CHUNK_BYTES + 256).writer();
    // Writing our own plain structs into memory cannot fail; an empty event would be skipped
    // by clients rather than corrupt the stream.
    let _ = std::io::Write::write_all(&mut buf, b"data: ");
    let _ = serde_json::to_writer(&mut buf, value);
    let _ = std::io::Write::write_all(&mut buf, b"\n\n");
    buf.into_inner().freeze()
}

/// The event that ends a stream whose upstream failed after the response had started: clients
/// raise it as an API error instead of seeing a silently truncated answer.
pub fn error_event(error: &ErrorBody) -> Bytes {
    data_event(error)
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
