//! The Responses API's stream, rendered from neutral events.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::{item_id, outcome, response_object, IN_PROGRESS};
use crate::core::{Finish, StreamEvent, Usage};
use crate::front::{AnswerCtx, RenderEvents};
use crate::openai::responses::{
    ArgumentsEvent, ItemEvent, LifecycleEvent, OutputContent, OutputItem, OutputText, PartEvent,
    TextEvent,
};

/// Renders neutral events as the Responses API's server-sent events, each `event: <type>` and
/// `data: <json>` with its `sequence_number`:
///
/// - `response.created` and `response.in_progress` first;
/// - text as a `message` item: `response.output_item.added`, `response.content_part.added`,
///   `response.output_text.delta`s, then `response.output_text.done`,
///   `response.content_part.done` and `response.output_item.done` once the text ends;
/// - each tool call as a `function_call` item: `response.output_item.added`,
///   `response.function_call_arguments.delta`s, `response.function_call_arguments.done`,
///   `response.output_item.done`;
/// - `response.completed`, or `response.incomplete` when the output limit or a filter cut the
///   answer, carrying the whole response. The API has no `[DONE]`.
///
/// An item ends when the next one starts or the answer finishes. The whole response is
/// accumulated for the last event, which carries it: as large as the answer, so the reader of a
/// stream must bound the answer's total size as the whole-answer read does.
/// Arguments for a call other than the one being streamed are not rendered: every surface sends
/// a call's arguments before the next call starts, as the Responses and Messages streams do.
#[derive(Debug)]
pub struct ResponsesEvents {
    id: String,
    created_at: u64,
    model: String,
    sequence: u64,
    stage: Stage,
    items: Vec<Item>,
    /// Whether the last item is still being streamed.
    open: bool,
    finish: Finish,
    usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing sent yet.
    Fresh,
    /// Items are being streamed.
    Streaming,
    /// Every item is done; the response is not.
    Finished,
    /// The last event is sent.
    Ended,
}

#[derive(Debug)]
struct Item {
    id: String,
    status: &'static str,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Message {
        text: String,
    },
    Call {
        index: usize,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl Item {
    fn output(&self) -> OutputItem<'_> {
        match &self.body {
            Body::Message { text } => OutputItem::Message {
                id: &self.id,
                status: self.status,
                role: "assistant",
                content: OutputContent(Some(text)),
            },
            Body::Call {
                call_id,
                name,
                arguments,
                ..
            } => OutputItem::FunctionCall {
                id: &self.id,
                call_id,
                name,
                arguments,
                status: self.status,
            },
        }
    }
}

/// About how many bytes an event takes besides its text and ids.
const EVENT_OVERHEAD: usize = 192;

impl ResponsesEvents {
    /// The events of a response with id `id`.
    pub fn new(id: &str, ctx: &AnswerCtx<'_>) -> Self {
        Self {
            id: id.to_owned(),
            created_at: ctx.created,
            model: ctx.model.to_owned(),
            sequence: 0,
            stage: Stage::Fresh,
            items: Vec::new(),
            open: false,
            finish: Finish::Stop,
            usage: None,
        }
    }

    /// About how many bytes each event takes besides its text, to size buffers.
    pub fn event_overhead(&self) -> usize {
        EVENT_OVERHEAD
            .saturating_add(self.id.len().saturating_mul(2))
            .saturating_add(self.model.len())
    }

    fn next_sequence(&mut self) -> u64 {
        let number = self.sequence;
        self.sequence += 1;
        number
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.stage != Stage::Fresh {
            return;
        }
        self.stage = Stage::Streaming;
        for kind in ["response.created", "response.in_progress"] {
            let sequence_number = self.next_sequence();
            let response = response_object(
                &self.id,
                self.created_at,
                &self.model,
                IN_PROGRESS,
                &[],
                None,
            );
            write_event(
                out,
                kind,
                &LifecycleEvent {
                    kind,
                    sequence_number,
                    response: &response,
                },
            );
        }
    }

    fn text(&mut self, piece: &str, out: &mut BytesMut) {
        self.start(out);
        if self.stage != Stage::Streaming || piece.is_empty() {
            return;
        }
        let in_message = self.open
            && matches!(
                self.items.last(),
                Some(Item {
                    body: Body::Message { .. },
                    ..
                })
            );
        if !in_message {
            self.close(out, "completed");
            self.open_message(out);
        }
        let sequence_number = self.next_sequence();
        let output_index = self.items.len().saturating_sub(1);
        let Some(item) = self.items.last_mut() else {
            return;
        };
        if let Body::Message { text } = &mut item.body {
            text.push_str(piece);
        }
        write_event(
            out,
            "response.output_text.delta",
            &TextEvent {
                kind: "response.output_text.delta",
                sequence_number,
                item_id: &item.id,
                output_index,
                content_index: 0,
                delta: Some(piece),
                text: None,
                logprobs: [],
            },
        );
    }

    fn open_message(&mut self, out: &mut BytesMut) {
        let output_index = self.items.len();
        self.items.push(Item {
            id: item_id("msg", &self.id, output_index),
            status: IN_PROGRESS,
            body: Body::Message {
                text: String::new(),
            },
        });
        self.open = true;
        let (added, part_added) = (self.next_sequence(), self.next_sequence());
        let Some(item) = self.items.last() else {
            return;
        };
        write_event(
            out,
            "response.output_item.added",
            &ItemEvent {
                kind: "response.output_item.added",
                sequence_number: added,
                output_index,
                item: OutputItem::Message {
                    id: &item.id,
                    status: IN_PROGRESS,
                    role: "assistant",
                    content: OutputContent(None),
                },
            },
        );
        write_event(
            out,
            "response.content_part.added",
            &PartEvent {
                kind: "response.content_part.added",
                sequence_number: part_added,
                item_id: &item.id,
                output_index,
                content_index: 0,
                part: OutputText::new(""),
            },
        );
    }

    fn call_start(&mut self, index: usize, call_id: &str, name: &str, out: &mut BytesMut) {
        self.start(out);
        if self.stage != Stage::Streaming {
            return;
        }
        self.close(out, "completed");
        let output_index = self.items.len();
        self.items.push(Item {
            id: item_id("fc", &self.id, output_index),
            status: IN_PROGRESS,
            body: Body::Call {
                index,
                call_id: call_id.to_owned(),
                name: name.to_owned(),
                arguments: String::new(),
            },
        });
        self.open = true;
        let sequence_number = self.next_sequence();
        if let Some(item) = self.items.last() {
            write_event(
                out,
                "response.output_item.added",
                &ItemEvent {
                    kind: "response.output_item.added",
                    sequence_number,
                    output_index,
                    item: item.output(),
                },
            );
        }
    }

    fn call_delta(&mut self, index: usize, piece: &str, out: &mut BytesMut) {
        if self.stage != Stage::Streaming || !self.open || piece.is_empty() {
            return;
        }
        let output_index = self.items.len().saturating_sub(1);
        let sequence_number = self.sequence;
        let Some(Item {
            id,
            body:
                Body::Call {
                    index: open_index,
                    arguments,
                    ..
                },
            ..
        }) = self.items.last_mut()
        else {
            return;
        };
        if *open_index != index {
            return;
        }
        arguments.push_str(piece);
        write_event(
            out,
            "response.function_call_arguments.delta",
            &ArgumentsEvent {
                kind: "response.function_call_arguments.delta",
                sequence_number,
                item_id: id,
                output_index,
                delta: Some(piece),
                arguments: None,
            },
        );
        self.sequence += 1;
    }

    /// Ends the item being streamed, if any, with `status`.
    fn close(&mut self, out: &mut BytesMut, status: &'static str) {
        if !self.open {
            return;
        }
        self.open = false;
        let output_index = self.items.len().saturating_sub(1);
        let first = self.sequence;
        let Some(item) = self.items.last_mut() else {
            return;
        };
        item.status = status;
        let item = &*item;
        match &item.body {
            Body::Message { text } => {
                write_event(
                    out,
                    "response.output_text.done",
                    &TextEvent {
                        kind: "response.output_text.done",
                        sequence_number: first,
                        item_id: &item.id,
                        output_index,
                        content_index: 0,
                        delta: None,
                        text: Some(text),
                        logprobs: [],
                    },
                );
                write_event(
                    out,
                    "response.content_part.done",
                    &PartEvent {
                        kind: "response.content_part.done",
                        sequence_number: first + 1,
                        item_id: &item.id,
                        output_index,
                        content_index: 0,
                        part: OutputText::new(text),
                    },
                );
                self.sequence = first + 2;
            }
            Body::Call { arguments, .. } => {
                write_event(
                    out,
                    "response.function_call_arguments.done",
                    &ArgumentsEvent {
                        kind: "response.function_call_arguments.done",
                        sequence_number: first,
                        item_id: &item.id,
                        output_index,
                        delta: None,
                        arguments: Some(arguments),
                    },
                );
                self.sequence = first + 1;
            }
        }
        write_event(
            out,
            "response.output_item.done",
            &ItemEvent {
                kind: "response.output_item.done",
                sequence_number: self.sequence,
                output_index,
                item: item.output(),
            },
        );
        self.sequence += 1;
    }

    fn finish_items(&mut self, finish: Finish, out: &mut BytesMut) {
        self.start(out);
        if self.stage != Stage::Streaming {
            return;
        }
        self.finish = finish;
        // Like a whole answer, an empty one still holds an (empty) message.
        if self.items.is_empty() {
            self.open_message(out);
        }
        let (status, _) = outcome(finish);
        self.close(out, status);
        self.stage = Stage::Finished;
    }

    fn done(&mut self, out: &mut BytesMut) {
        if self.stage == Stage::Ended {
            return;
        }
        // A reader always finishes before it is done; should one not, the answer ended normally.
        self.finish_items(Finish::Stop, out);
        self.stage = Stage::Ended;
        let (status, incomplete_details) = outcome(self.finish);
        let kind = match incomplete_details {
            Some(_) => "response.incomplete",
            None => "response.completed",
        };
        let sequence_number = self.next_sequence();
        let output: Vec<OutputItem<'_>> = self.items.iter().map(Item::output).collect();
        let mut response = response_object(
            &self.id,
            self.created_at,
            &self.model,
            status,
            &output,
            self.usage,
        );
        response.incomplete_details = incomplete_details;
        write_event(
            out,
            kind,
            &LifecycleEvent {
                kind,
                sequence_number,
                response: &response,
            },
        );
    }
}

impl RenderEvents for ResponsesEvents {
    fn render(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        match event {
            StreamEvent::Start => self.start(out),
            StreamEvent::TextDelta(piece) => self.text(piece, out),
            StreamEvent::ToolCallStart { index, id, name } => self.call_start(index, id, name, out),
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.call_delta(index, arguments, out)
            }
            StreamEvent::Finish(finish) => self.finish_items(finish, out),
            StreamEvent::Usage(usage) => self.usage = usage,
            StreamEvent::Done => self.done(out),
        }
    }
}

/// Appends `event: {name}\ndata: {json}\n\n` to `buf`.
pub(super) fn write_event(buf: &mut BytesMut, name: &str, value: &impl Serialize) {
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    let mut writer = buf.writer();
    // Writing our own plain structs into memory cannot fail; an event with empty data would be
    // skipped by clients rather than corrupt the stream.
    let _ = serde_json::to_writer(&mut writer, value);
    writer.into_inner().extend_from_slice(b"\n\n");
}
