//! The events of a `/responses` stream → neutral stream events. Pure: fed one event at a time.

use http::StatusCode;

use super::read::{failure_words, incomplete_finish, output_text, tool_call, usage};
use super::response::{OutputItem, ResponseObject, StreamEventWire};
use crate::core::{Failure, FailureClass, Finish, StreamEvent, Usage};
use crate::surface::einstein::parse_as;
use crate::surface::stream::{invalid_stream, Flow, ReadEvents, UpstreamEvent};
use crate::text::sanitize;

/// The most tool calls one streamed answer may make: each is remembered until the end, to find
/// the call a piece of arguments belongs to.
pub const MAX_TOOL_CALLS: usize = 256;

/// The longest upstream error code passed on as a failure's `code`.
const MAX_CODE_CHARS: usize = 64;

/// What the stream says after the data of its last event, on some servers.
const DONE: &[u8] = b"[DONE]";

/// A tool call started in the stream.
#[derive(Debug, Clone, Copy)]
struct StartedCall {
    /// The output item that holds it.
    output_index: Option<u64>,
    /// Whether a piece of its arguments was passed on.
    arguments_sent: bool,
}

/// Reads the events of one `/responses` stream: text and tool-call pieces as they come, then
/// the finish and usage of `response.completed` or `response.incomplete`.
///
/// ```
/// use sf_models_bridge::core::{Finish, StreamEvent};
/// use sf_models_bridge::surface::responses::ResponsesEvents;
/// use sf_models_bridge::surface::stream::{Flow, ReadEvents, UpstreamEvent};
///
/// let mut events = ResponsesEvents::new();
/// let mut seen = Vec::new();
/// for data in [
///     r#"{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"#,
///     r#"{"type":"response.output_text.delta","output_index":0,"delta":"Hi"}"#,
///     r#"{"type":"response.completed","response":{"status":"completed","output":[]}}"#,
/// ] {
///     let event = UpstreamEvent { name: None, data: data.as_bytes().to_vec().into() };
///     let flow = events.read(&event, &mut |e| seen.push(format!("{e:?}"))).unwrap();
///     assert_eq!(flow == Flow::Finished, data.contains("completed"));
/// }
/// events.finish(&mut |e| seen.push(format!("{e:?}"))).unwrap();
/// assert_eq!(seen, ["Start", "TextDelta(\"Hi\")", "Finish(Stop)", "Usage(None)", "Done"]);
/// ```
#[derive(Debug, Default)]
pub struct ResponsesEvents {
    started: bool,
    text_sent: bool,
    calls: Vec<StartedCall>,
    outcome: Option<(Finish, Option<Usage>)>,
}

impl ResponsesEvents {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Emits [`StreamEvent::Start`] once, before anything else.
    fn start(&mut self, emit: &mut dyn FnMut(StreamEvent<'_>)) {
        if !self.started {
            self.started = true;
            emit(StreamEvent::Start);
        }
    }

    fn text(&mut self, text: &str, emit: &mut dyn FnMut(StreamEvent<'_>)) {
        self.start(emit);
        if !text.is_empty() {
            self.text_sent = true;
            emit(StreamEvent::TextDelta(text));
        }
    }

    /// The position among the answer's calls of the call in output item `output_index`.
    fn call_at(&self, output_index: Option<u64>) -> Option<usize> {
        output_index?;
        self.calls
            .iter()
            .position(|call| call.output_index == output_index)
    }

    /// Starts the call of a `function_call` item, and passes its arguments on when the item
    /// already holds them (`response.output_item.done` of a call no delta carried).
    fn call(
        &mut self,
        output_index: Option<u64>,
        item: &OutputItem<'_>,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<(), Failure> {
        let index = match self.call_at(output_index) {
            Some(index) => index,
            None => {
                if self.calls.len() >= MAX_TOOL_CALLS {
                    return Err(invalid_stream(format!(
                        "Salesforce's stream made more than {MAX_TOOL_CALLS} tool calls"
                    )));
                }
                let call = tool_call(item).map_err(|error| invalid_stream(error.to_string()))?;
                self.start(emit);
                let index = self.calls.len();
                self.calls.push(StartedCall {
                    output_index,
                    arguments_sent: false,
                });
                emit(StreamEvent::ToolCallStart {
                    index,
                    id: &call.id,
                    name: &call.name,
                });
                index
            }
        };
        let arguments = item.arguments.as_deref().unwrap_or("");
        if let Some(call) = self.calls.get_mut(index) {
            if !call.arguments_sent && !arguments.is_empty() {
                call.arguments_sent = true;
                emit(StreamEvent::ToolCallDelta { index, arguments });
            }
        }
        Ok(())
    }

    fn arguments(
        &mut self,
        output_index: Option<u64>,
        piece: &str,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<(), Failure> {
        let index = self.call_at(output_index).ok_or_else(|| {
            invalid_stream("Salesforce's stream sent arguments for a tool call it never started")
        })?;
        if let Some(call) = self.calls.get_mut(index) {
            call.arguments_sent = true;
        }
        if !piece.is_empty() {
            emit(StreamEvent::ToolCallDelta {
                index,
                arguments: piece,
            });
        }
        Ok(())
    }

    /// The end of the answer: `finish` if it was cut short, else decided by the calls made.
    /// A proxy that sends only the final object still gets its answer through: when nothing was
    /// streamed, the object's text and calls are.
    fn end(
        &mut self,
        response: Option<&ResponseObject<'_>>,
        cut: Option<Finish>,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<Flow, Failure> {
        self.start(emit);
        if let Some(response) = response.filter(|_| !self.text_sent && self.calls.is_empty()) {
            self.text(&output_text(&response.output), emit);
            for (position, item) in response.output.iter().enumerate() {
                if item.is("function_call") {
                    self.call(Some(position as u64), item, emit)?;
                }
            }
        }
        let finish = match cut {
            Some(finish) => finish,
            None if !self.calls.is_empty() => Finish::ToolCalls,
            None if self.text_sent => Finish::Stop,
            None => {
                return Err(invalid_stream(
                    "Salesforce's stream completed with no text and no tool call",
                ))
            }
        };
        let usage = response
            .and_then(|response| response.usage.as_ref())
            .and_then(usage);
        self.outcome = Some((finish, usage));
        Ok(Flow::Finished)
    }
}

impl ReadEvents for ResponsesEvents {
    fn read(
        &mut self,
        event: &UpstreamEvent,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<Flow, Failure> {
        if event.data.trim_ascii() == DONE {
            return Ok(Flow::Continue);
        }
        let wire: StreamEventWire<'_> =
            parse_as(&event.data).map_err(|error| invalid_stream(error.to_string()))?;
        let name = event
            .name
            .as_deref()
            .and_then(|name| std::str::from_utf8(name).ok());
        let response = wire.response.as_ref();
        match wire.kind.as_deref().or(name).unwrap_or("") {
            "response.created" => self.start(emit),
            "response.output_text.delta" | "response.refusal.delta" => {
                self.text(wire.delta.as_deref().unwrap_or(""), emit);
            }
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = wire.item.as_ref().filter(|item| item.is("function_call")) {
                    self.call(wire.output_index, item, emit)?;
                }
            }
            "response.function_call_arguments.delta" => {
                self.arguments(wire.output_index, wire.delta.as_deref().unwrap_or(""), emit)?;
            }
            "response.completed" => return self.end(response, None, emit),
            "response.incomplete" => {
                let details = response.and_then(|r| r.incomplete_details.as_ref());
                return self.end(response, Some(incomplete_finish(details)), emit);
            }
            "response.failed" => {
                let error = response.and_then(|r| r.error.as_ref());
                let code = error.and_then(|error| error.code.as_deref());
                let message = error.and_then(|error| error.message.as_deref());
                return Err(upstream_failure(code, message));
            }
            "error" => {
                return Err(upstream_failure(
                    wire.code.as_deref(),
                    wire.message.as_deref(),
                ))
            }
            // Reasoning summaries, content parts, `*.done` echoes of what was streamed.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, emit: &mut dyn FnMut(StreamEvent<'_>)) -> Result<(), Failure> {
        let Some((finish, usage)) = self.outcome.take() else {
            return Err(invalid_stream(
                "Salesforce's stream ended before the answer was complete",
            ));
        };
        emit(StreamEvent::Finish(finish));
        emit(StreamEvent::Usage(usage));
        emit(StreamEvent::Done);
        Ok(())
    }
}

/// A failure the upstream reported in its stream, in its words, with its code when short.
fn upstream_failure(code: Option<&str>, message: Option<&str>) -> Failure {
    let words = failure_words(None, code, message);
    let message = if words.is_empty() {
        "Salesforce's stream failed".to_owned()
    } else {
        format!("Salesforce's stream failed: {words}")
    };
    let failure = Failure::new(StatusCode::BAD_GATEWAY, FailureClass::Upstream, message);
    match code.map(|code| sanitize(code, MAX_CODE_CHARS + 1)) {
        Some(code) if !code.is_empty() && code.chars().count() <= MAX_CODE_CHARS => {
            failure.code(code)
        }
        _ => failure,
    }
}
