//! Stream events, and the events of an answer that arrived whole.

use super::answer::{Finish, Generation, Usage};
use super::request::ToolCall;

/// One event of a streamed answer, as every front renders it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamEvent<'a> {
    /// The answer begins.
    Start,
    /// A piece of text.
    TextDelta(&'a str),
    /// The model starts a tool call.
    ToolCallStart {
        /// The call's position among the answer's calls.
        index: usize,
        /// The call's id.
        id: &'a str,
        /// The tool's name.
        name: &'a str,
    },
    /// A piece of a tool call's arguments (JSON text, cut anywhere).
    ToolCallDelta {
        /// The call's position among the answer's calls.
        index: usize,
        /// The piece.
        arguments: &'a str,
    },
    /// Why the answer ended.
    Finish(Finish),
    /// Token counts, when known.
    Usage(Option<Usage>),
    /// The stream is complete.
    Done,
}

/// The most bytes of text in one emulated text event.
pub const TEXT_PIECE_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Text,
    ToolCalls { index: usize, started: bool },
    Finish,
    Usage,
    Done,
    End,
}

/// The events of an answer that arrived whole: start, text in pieces of at most
/// [`TEXT_PIECE_BYTES`] (cut on character boundaries), each tool call, finish, usage, done.
/// Events borrow from the answer, which is held once.
///
/// ```
/// use sf_models_bridge::core::{AnswerEvents, Finish, Generation, StreamEvent};
///
/// let answer = Generation { id: None, text: "Hello", tool_calls: vec![], finish: Finish::Stop, usage: None };
/// let mut events = AnswerEvents::new(&answer);
/// assert_eq!(events.next_event(), Some(StreamEvent::Start));
/// assert_eq!(events.next_event(), Some(StreamEvent::TextDelta("Hello")));
/// assert_eq!(events.next_event(), Some(StreamEvent::Finish(Finish::Stop)));
/// assert_eq!(events.next_event(), Some(StreamEvent::Usage(None)));
/// assert_eq!(events.next_event(), Some(StreamEvent::Done));
/// assert_eq!(events.next_event(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerEvents {
    text: String,
    tool_calls: Vec<ToolCall<'static>>,
    finish: Finish,
    usage: Option<Usage>,
    stage: Stage,
    offset: usize,
}

impl AnswerEvents {
    /// The events of `answer`, which is copied once.
    pub fn new(answer: &Generation<'_>) -> Self {
        Self {
            text: answer.text.to_owned(),
            tool_calls: answer
                .tool_calls
                .iter()
                .map(|call| ToolCall {
                    id: call.id.clone().into_owned().into(),
                    name: call.name.clone().into_owned().into(),
                    arguments: call.arguments.clone().into_owned().into(),
                })
                .collect(),
            finish: answer.finish,
            usage: answer.usage,
            stage: Stage::Start,
            offset: 0,
        }
    }

    /// The next event, or `None` after [`StreamEvent::Done`].
    pub fn next_event(&mut self) -> Option<StreamEvent<'_>> {
        loop {
            match self.stage {
                Stage::Start => {
                    self.stage = Stage::Text;
                    return Some(StreamEvent::Start);
                }
                Stage::Text => {
                    let Some(rest) = self.text.get(self.offset..).filter(|r| !r.is_empty()) else {
                        self.stage = Stage::ToolCalls {
                            index: 0,
                            started: false,
                        };
                        continue;
                    };
                    let mut end = rest.len().min(TEXT_PIECE_BYTES);
                    while !rest.is_char_boundary(end) {
                        end -= 1;
                    }
                    let start = self.offset;
                    self.offset += end;
                    return self
                        .text
                        .get(start..self.offset)
                        .map(StreamEvent::TextDelta);
                }
                Stage::ToolCalls { index, started } => {
                    let Some(call) = self.tool_calls.get(index) else {
                        self.stage = Stage::Finish;
                        continue;
                    };
                    if started {
                        self.stage = Stage::ToolCalls {
                            index: index + 1,
                            started: false,
                        };
                        return Some(StreamEvent::ToolCallDelta {
                            index,
                            arguments: &call.arguments,
                        });
                    }
                    self.stage = Stage::ToolCalls {
                        index,
                        started: true,
                    };
                    return Some(StreamEvent::ToolCallStart {
                        index,
                        id: &call.id,
                        name: &call.name,
                    });
                }
                Stage::Finish => {
                    self.stage = Stage::Usage;
                    return Some(StreamEvent::Finish(self.finish));
                }
                Stage::Usage => {
                    self.stage = Stage::Done;
                    return Some(StreamEvent::Usage(self.usage));
                }
                Stage::Done => {
                    self.stage = Stage::End;
                    return Some(StreamEvent::Done);
                }
                Stage::End => return None,
            }
        }
    }

    /// Whether every event has been taken.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::End
    }

    /// How many bytes of text are still to come, and in how many events, to size buffers.
    pub fn remaining(&self) -> (usize, usize) {
        let text = self.text.len().saturating_sub(self.offset);
        let arguments: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
        let events = text
            .div_ceil(TEXT_PIECE_BYTES)
            .saturating_add(self.tool_calls.len() * 2)
            .saturating_add(4);
        (text.saturating_add(arguments), events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn all(answer: &Generation<'_>) -> Vec<String> {
        let mut events = AnswerEvents::new(answer);
        let mut out = Vec::new();
        while let Some(event) = events.next_event() {
            out.push(format!("{event:?}"));
        }
        assert!(events.is_done());
        out
    }

    #[test]
    fn long_text_is_cut_on_character_boundaries() {
        let text = "é".repeat(200); // 400 bytes, two bytes a character
        let answer = Generation {
            id: None,
            text: &text,
            tool_calls: vec![],
            finish: Finish::Length,
            usage: None,
        };
        let mut events = AnswerEvents::new(&answer);
        let mut joined = String::new();
        while let Some(event) = events.next_event() {
            if let StreamEvent::TextDelta(piece) = event {
                assert!(piece.len() <= TEXT_PIECE_BYTES);
                joined.push_str(piece);
            }
        }
        assert_eq!(joined, text);
    }

    #[test]
    fn tool_calls_follow_the_text() {
        let answer = Generation {
            id: None,
            text: "",
            tool_calls: vec![ToolCall {
                id: Cow::Borrowed("call_1"),
                name: Cow::Borrowed("f"),
                arguments: Cow::Borrowed("{}"),
            }],
            finish: Finish::ToolCalls,
            usage: None,
        };
        assert_eq!(
            all(&answer),
            [
                "Start",
                r#"ToolCallStart { index: 0, id: "call_1", name: "f" }"#,
                r#"ToolCallDelta { index: 0, arguments: "{}" }"#,
                "Finish(ToolCalls)",
                "Usage(None)",
                "Done"
            ]
        );
    }
}
