//! The events of a `/responses` stream → neutral stream events. Pure: fed one event at a time.

// The stream traits fail with a whole `Failure`, the one error every front renders; a stream
// fails at most once, so its size costs nothing.
#![allow(clippy::result_large_err)]

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
                let nested = wire.error.as_ref();
                let code = wire.code.as_deref();
                let message = wire.message.as_deref();
                return Err(upstream_failure(
                    code.or(nested.and_then(|error| error.code.as_deref())),
                    message.or(nested.and_then(|error| error.message.as_deref())),
                ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::sse::{SseUnframe, MAX_EVENT_BYTES};
    use crate::surface::stream::Unframe;
    use serde_json::{json, Value};

    /// The neutral events of an SSE body fed in pieces of `size` bytes, as text, or the
    /// failure that ended it.
    fn stream(body: &[u8], size: usize) -> (Vec<String>, Option<Failure>) {
        let mut sse = SseUnframe::new();
        let mut reader = ResponsesEvents::new();
        let mut seen = Vec::new();
        let mut emit = |event: StreamEvent<'_>| seen.push(format!("{event:?}"));
        let mut run = || -> Result<(), Failure> {
            for piece in body.chunks(size.max(1)) {
                sse.push(piece)?;
                while let Some(event) = sse.next_event()? {
                    if reader.read(&event, &mut emit)? == Flow::Finished {
                        return reader.finish(&mut emit);
                    }
                }
            }
            sse.finish()?;
            reader.finish(&mut emit)
        };
        let failure = run().err();
        (seen, failure)
    }

    fn sse(events: &[Value]) -> Vec<u8> {
        let mut body = Vec::new();
        for event in events {
            let name = event["type"].as_str().unwrap_or("message");
            body.extend_from_slice(format!("event: {name}\ndata: {event}\n\n").as_bytes());
        }
        body
    }

    fn fixture() -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/native.responses.stream.sse",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    const USAGE: &str = "Usage(Some(Usage { input_tokens: 12, output_tokens: 2, total_tokens: 14, cached_tokens: Some(0), cache_write_tokens: None, reasoning_tokens: Some(0) }))";

    #[test]
    fn the_spec_fixture_split_at_every_byte_gives_the_same_events() {
        let body = fixture();
        let (whole, failure) = stream(&body, body.len());
        assert_eq!(failure, None);
        assert_eq!(
            whole,
            [
                "Start",
                "TextDelta(\"Hello\")",
                "TextDelta(\" there\")",
                "Finish(Stop)",
                USAGE,
                "Done"
            ]
        );
        for size in 1..body.len() {
            assert_eq!(stream(&body, size), (whole.clone(), None), "{size}");
        }
    }

    #[test]
    fn tool_calls_stream_with_their_arguments() {
        let body = sse(&[
            json!({"type": "response.created", "response": {"id": "r", "status": "in_progress", "output": []}}),
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "summary": []}}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "thinking"}),
            json!({"type": "response.output_item.added", "output_index": 1,
                   "item": {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{\"x\":"}),
            json!({"type": "response.output_item.added", "output_index": 2,
                   "item": {"type": "function_call", "call_id": "call_b", "name": "g", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "1}"}),
            json!({"type": "response.function_call_arguments.done", "output_index": 1, "arguments": "{\"x\":1}"}),
            json!({"type": "response.output_item.done", "output_index": 1,
                   "item": {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{\"x\":1}"}}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": [],
                   "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}}),
        ]);
        let (seen, failure) = stream(&body, 7);
        assert_eq!(failure, None);
        assert_eq!(
            seen,
            [
                "Start",
                "ToolCallStart { index: 0, id: \"call_a\", name: \"f\" }",
                "ToolCallDelta { index: 0, arguments: \"{\\\"x\\\":\" }",
                "ToolCallStart { index: 1, id: \"call_b\", name: \"g\" }",
                "ToolCallDelta { index: 1, arguments: \"{}\" }",
                "ToolCallDelta { index: 0, arguments: \"1}\" }",
                "Finish(ToolCalls)",
                "Usage(Some(Usage { input_tokens: 3, output_tokens: 4, total_tokens: 7, cached_tokens: None, cache_write_tokens: None, reasoning_tokens: None }))",
                "Done"
            ]
        );
    }

    #[test]
    fn calls_and_text_only_in_the_final_object_still_arrive() {
        // A call whose arguments came whole in `output_item.done`, no delta.
        let body = sse(&[
            json!({"type": "response.output_item.done", "output_index": 0,
                   "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": []}}),
        ]);
        let (seen, failure) = stream(&body, 5);
        assert_eq!(failure, None);
        assert_eq!(
            seen[..3],
            [
                "Start",
                "ToolCallStart { index: 0, id: \"c\", name: \"f\" }",
                "ToolCallDelta { index: 0, arguments: \"{}\" }"
            ]
        );
        assert_eq!(seen[3], "Finish(ToolCalls)");
        // Nothing streamed at all: the completed object's answer is passed on.
        let body = sse(&[
            json!({"type": "response.completed", "response": {"status": "completed",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]}}),
        ]);
        let (seen, failure) = stream(&body, 5);
        assert_eq!(failure, None);
        assert_eq!(
            seen,
            [
                "Start",
                "TextDelta(\"Hi\")",
                "Finish(Stop)",
                "Usage(None)",
                "Done"
            ]
        );
    }

    #[test]
    fn incomplete_answers_finish_by_their_reason() {
        for (reason, finish) in [
            ("max_output_tokens", "Finish(Length)"),
            ("content_filter", "Finish(ContentFilter)"),
        ] {
            let body = sse(&[
                json!({"type": "response.output_text.delta", "output_index": 0, "delta": "par"}),
                json!({"type": "response.incomplete", "response": {"status": "incomplete",
                       "incomplete_details": {"reason": reason}, "output": []}}),
            ]);
            let (seen, failure) = stream(&body, 9);
            assert_eq!(failure, None);
            assert_eq!(
                seen,
                ["Start", "TextDelta(\"par\")", finish, "Usage(None)", "Done"]
            );
        }
    }

    #[test]
    fn failed_and_error_events_fail_with_the_upstreams_words() {
        let body = sse(&[
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": "a"}),
            json!({"type": "response.failed", "response": {"status": "failed",
                   "error": {"code": "server_error", "message": "The model\r\nbroke\u{1b}[2J"}}}),
        ]);
        let (seen, failure) = stream(&body, 4);
        assert_eq!(seen, ["Start", "TextDelta(\"a\")"]);
        let failure = failure.unwrap();
        assert_eq!(
            (failure.status, failure.class),
            (StatusCode::BAD_GATEWAY, FailureClass::Upstream)
        );
        assert_eq!(
            failure.message,
            "Salesforce's stream failed: server_error: The model  broke [2J"
        );
        assert_eq!(failure.code.as_deref(), Some("server_error"));

        let body = sse(&[
            json!({"type": "error", "error": {"type": "invalid_request_error",
                                 "code": "context_length_exceeded", "message": "too long"}}),
        ]);
        let failure = stream(&body, 100).1.unwrap();
        assert_eq!(
            failure.message,
            "Salesforce's stream failed: context_length_exceeded: too long"
        );

        let long = "x".repeat(10_000);
        let body = sse(&[json!({"type": "error", "code": "C".repeat(100), "message": long})]);
        let failure = stream(&body, 100).1.unwrap();
        assert!(failure.message.chars().count() < 400);
        assert_eq!(failure.code, None, "a long code is not passed on");
    }

    #[test]
    fn a_truncated_stream_fails() {
        let body = fixture();
        let completed = body
            .windows(25)
            .position(|w| w == b"event: response.completed")
            .unwrap();
        for end in [0, 10, completed, body.len() - 3] {
            let (_, failure) = stream(&body[..end], 64);
            let failure = failure.unwrap_or_else(|| panic!("{end}: no failure"));
            assert_eq!(failure.status, StatusCode::BAD_GATEWAY, "{end}");
        }
        let (_, failure) = stream(&body[..completed], 64);
        assert_eq!(
            failure.unwrap().message,
            "Salesforce's stream ended before the answer was complete"
        );
        // `[DONE]` is not an answer either.
        let (_, failure) = stream(b"data: [DONE]\n\n", 64);
        assert!(failure.is_some());
    }

    #[test]
    fn an_empty_completed_answer_fails() {
        let body = sse(&[
            json!({"type": "response.created", "response": {}}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": []}}),
        ]);
        let (seen, failure) = stream(&body, 64);
        assert_eq!(seen, ["Start"]);
        assert!(failure
            .unwrap()
            .message
            .contains("no text and no tool call"));
    }

    #[test]
    fn malformed_and_oversized_events_fail() {
        for body in [
            &b"data: {\"type\": \"response.output_text.delta\", \"delta\": \n\n"[..],
            b"data: not json\n\n",
            b"data: {\"type\": \"response.output_text.delta\", \"delta\": 5}\n\n",
        ] {
            let (_, failure) = stream(body, 3);
            let failure = failure.unwrap();
            assert_eq!(failure.status, StatusCode::BAD_GATEWAY);
            assert_eq!(failure.code.as_deref(), Some("upstream_invalid_response"));
            assert!(failure.message.len() < 200, "{}", failure.message);
        }
        let huge = format!(
            "data: {{\"type\": \"response.output_text.delta\", \"delta\": \"{}\"}}\n\n",
            "x".repeat(MAX_EVENT_BYTES)
        );
        let (seen, failure) = stream(huge.as_bytes(), 64 * 1024);
        assert!(seen.is_empty());
        assert!(failure.unwrap().message.contains("larger than"));
    }

    #[test]
    fn arguments_for_an_unknown_call_and_too_many_calls_fail() {
        let body = sse(&[
            json!({"type": "response.function_call_arguments.delta", "output_index": 3, "delta": "{}"}),
        ]);
        assert!(stream(&body, 64)
            .1
            .unwrap()
            .message
            .contains("never started"));
        let calls: Vec<Value> = (0..=MAX_TOOL_CALLS)
            .map(|i| json!({"type": "response.output_item.added", "output_index": i,
                            "item": {"type": "function_call", "call_id": format!("c{i}"), "name": "f"}}))
            .collect();
        let failure = stream(&sse(&calls), 4096).1.unwrap();
        assert!(
            failure.message.contains("more than 256 tool calls"),
            "{}",
            failure.message
        );
    }
}
