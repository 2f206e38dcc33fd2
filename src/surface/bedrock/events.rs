//! Anthropic stream events → neutral stream events, sans I/O.

use http::StatusCode;

use super::wire::{finish, ErrorObject, StreamEventBody, WireUsage};
use crate::core::{Failure, FailureClass, Finish, StreamEvent, MAX_MESSAGE_CHARS};
use crate::surface::stream::{Flow, ReadEvents, UpstreamEvent};
use crate::text::sanitize;

/// The longest error type passed on as a failure's code.
const MAX_CODE_CHARS: usize = 64;

/// Reads the Anthropic stream events of one answer (`message_start`, `content_block_*`,
/// `message_delta`, `message_stop`, `ping`, `error`) as neutral events: text and tool-call
/// arguments as they arrive, thinking skipped, and at the end the finish, the usage (cache reads
/// and writes counted as input) and done. A stream that ends before `message_stop`, or that
/// held no content block at all, fails instead: the caller never gets an empty success.
///
/// ```
/// use sf_models_bridge::core::StreamEvent;
/// use sf_models_bridge::surface::bedrock::AnthropicEvents;
/// use sf_models_bridge::surface::stream::{ReadEvents, UpstreamEvent};
///
/// let mut reader = AnthropicEvents::default();
/// let mut seen = Vec::new();
/// for json in [
///     r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}"#,
///     r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
///     r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
///     r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
///     r#"{"type":"message_stop"}"#,
/// ] {
///     let event = UpstreamEvent { name: None, data: json.into() };
///     reader.read(&event, &mut |e| seen.push(format!("{e:?}")))?;
/// }
/// reader.finish(&mut |e| seen.push(format!("{e:?}")))?;
/// assert_eq!(seen[..2], ["Start", r#"TextDelta("Hi")"#]);
/// assert_eq!(seen[2..], ["Finish(Stop)", "Usage(Some(Usage { input_tokens: 5, output_tokens: 2, total_tokens: 7, cached_tokens: None, cache_write_tokens: None, reasoning_tokens: None }))", "Done"]);
/// # Ok::<(), sf_models_bridge::core::Failure>(())
/// ```
#[derive(Debug, Default)]
pub struct AnthropicEvents {
    started: bool,
    /// Content blocks opened, of any type.
    blocks: usize,
    /// Tool calls started, which numbers the next one.
    tool_calls: usize,
    /// The open `tool_use` block: its index in the message, its call's index, and whether any
    /// of its arguments arrived.
    open_tool: Option<OpenTool>,
    finish: Option<Finish>,
    usage: WireUsage,
    stopped: bool,
}

#[derive(Debug, Clone, Copy)]
struct OpenTool {
    block: u64,
    call: usize,
    has_arguments: bool,
}

impl AnthropicEvents {
    fn start(&mut self, emit: &mut dyn FnMut(StreamEvent<'_>)) {
        if !self.started {
            self.started = true;
            emit(StreamEvent::Start);
        }
    }

    /// The open tool call that a delta or stop of block `index` belongs to.
    fn tool_block(&self, index: Option<u64>) -> Option<OpenTool> {
        self.open_tool.filter(|tool| Some(tool.block) == index)
    }
}

impl ReadEvents for AnthropicEvents {
    fn read(
        &mut self,
        event: &UpstreamEvent,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<Flow, Failure> {
        let body: StreamEventBody<'_> =
            serde_json::from_slice(&event.data).map_err(|_| malformed())?;
        match body.kind.as_ref() {
            "message_start" => {
                if let Some(usage) = body.message.and_then(|message| message.usage) {
                    self.usage.update(usage);
                }
                self.start(emit);
            }
            "content_block_start" => {
                self.start(emit);
                self.blocks += 1;
                let Some(block) = body.content_block else {
                    return Err(malformed());
                };
                match block.kind.as_ref() {
                    "text" => {
                        if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                            emit(StreamEvent::TextDelta(text));
                        }
                    }
                    "tool_use" => {
                        let (Some(block_index), Some(id), Some(name)) =
                            (body.index, block.id.as_deref(), block.name.as_deref())
                        else {
                            return Err(malformed());
                        };
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        self.open_tool = Some(OpenTool {
                            block: block_index,
                            call,
                            has_arguments: false,
                        });
                        emit(StreamEvent::ToolCallStart {
                            index: call,
                            id,
                            name,
                        });
                    }
                    // Thinking, redacted thinking, server tools' blocks.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(delta) = body.delta else {
                    return Err(malformed());
                };
                match delta.kind.as_deref() {
                    Some("text_delta") => {
                        if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                            emit(StreamEvent::TextDelta(text));
                        }
                    }
                    Some("input_json_delta") => {
                        let Some(tool) = self.tool_block(body.index) else {
                            return Err(malformed());
                        };
                        if let Some(piece) = delta.partial_json.as_deref().filter(|p| !p.is_empty())
                        {
                            self.open_tool = Some(OpenTool {
                                has_arguments: true,
                                ..tool
                            });
                            emit(StreamEvent::ToolCallDelta {
                                index: tool.call,
                                arguments: piece,
                            });
                        }
                    }
                    // Thinking, signatures, citations.
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(tool) = self.tool_block(body.index) {
                    self.open_tool = None;
                    // A call without arguments still needs its `{}` for the caller to parse.
                    if !tool.has_arguments {
                        emit(StreamEvent::ToolCallDelta {
                            index: tool.call,
                            arguments: "{}",
                        });
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = body.delta.and_then(|delta| delta.stop_reason) {
                    self.finish = Some(finish(Some(&reason)));
                }
                if let Some(usage) = body.usage {
                    self.usage.update(usage);
                }
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(Flow::Finished);
            }
            "error" => return Err(stream_error(body.error)),
            // `ping`, and events added later.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, emit: &mut dyn FnMut(StreamEvent<'_>)) -> Result<(), Failure> {
        if self.blocks == 0 {
            return Err(no_answer());
        }
        if !self.stopped {
            return Err(ended_early());
        }
        emit(StreamEvent::Finish(self.finish.unwrap_or(Finish::Stop)));
        emit(StreamEvent::Usage(self.usage.to_core()));
        emit(StreamEvent::Done);
        Ok(())
    }
}

/// A stream that ended, or said it was complete, without a single content block.
pub(super) fn no_answer() -> Failure {
    Failure::new(
        StatusCode::BAD_GATEWAY,
        FailureClass::Upstream,
        "the upstream stream held no answer",
    )
    .code("upstream_invalid_response")
}

/// A stream that ended before `message_stop`.
pub(super) fn ended_early() -> Failure {
    Failure::new(
        StatusCode::BAD_GATEWAY,
        FailureClass::Upstream,
        "the upstream stream ended before the answer was complete",
    )
    .code("upstream_invalid_response")
}

/// An event that is not an Anthropic stream event the reader can follow.
pub(super) fn malformed() -> Failure {
    Failure::new(
        StatusCode::BAD_GATEWAY,
        FailureClass::Upstream,
        "the upstream stream held an event that is not a valid Anthropic stream event",
    )
    .code("upstream_invalid_response")
}

/// An `error` event (`overloaded_error`, `rate_limit_error`, `api_error`, ...) as a failure.
pub(super) fn stream_error(error: Option<ErrorObject<'_>>) -> Failure {
    let kind = error.as_ref().and_then(|error| error.kind.as_deref());
    let detail = error
        .as_ref()
        .and_then(|error| error.message.as_deref())
        .map(|message| sanitize(message, MAX_MESSAGE_CHARS))
        .unwrap_or_default();
    let (status, class) = match kind {
        Some("rate_limit_error") => (StatusCode::TOO_MANY_REQUESTS, FailureClass::RateLimited),
        Some("overloaded_error") => (StatusCode::SERVICE_UNAVAILABLE, FailureClass::Unavailable),
        Some("invalid_request_error") => (StatusCode::BAD_REQUEST, FailureClass::InvalidRequest),
        Some("timeout_error") => (StatusCode::GATEWAY_TIMEOUT, FailureClass::Upstream),
        _ => (StatusCode::BAD_GATEWAY, FailureClass::Upstream),
    };
    let mut message = String::from("the upstream stream failed");
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&detail);
    }
    let failure = Failure::new(status, class, message);
    match kind.map(|kind| sanitize(kind, MAX_CODE_CHARS)) {
        Some(code) if !code.is_empty() => failure.code(code),
        _ => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::bedrock::test_fixtures::fixture;

    /// Reads JSON events in order, then the end, as `Debug` lines; a failure ends the list.
    fn run(events: &[&[u8]]) -> Vec<String> {
        let mut reader = AnthropicEvents::default();
        let mut out = Vec::new();
        for json in events {
            let event = UpstreamEvent {
                name: None,
                data: bytes::Bytes::copy_from_slice(json),
            };
            match reader.read(&event, &mut |e| out.push(format!("{e:?}"))) {
                Ok(_) => {}
                Err(failure) => {
                    out.push(format!(
                        "Err({}, {})",
                        failure.status.as_u16(),
                        failure.message
                    ));
                    return out;
                }
            }
        }
        if let Err(failure) = reader.finish(&mut |e| out.push(format!("{e:?}"))) {
            out.push(format!(
                "Err({}, {})",
                failure.status.as_u16(),
                failure.message
            ));
        }
        out
    }

    #[test]
    fn the_spec_fixture_streams_a_tool_call() {
        let jsonl = fixture("native.bedrock.stream.events.jsonl");
        let events: Vec<&[u8]> = jsonl
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            run(&events),
            [
                "Start",
                r#"ToolCallStart { index: 0, id: "toolu_02B", name: "get_weather" }"#,
                r#"ToolCallDelta { index: 0, arguments: "{\"ci" }"#,
                r#"ToolCallDelta { index: 0, arguments: "ty\":\"Paris\"}" }"#,
                "Finish(ToolCalls)",
                "Usage(Some(Usage { input_tokens: 20, output_tokens: 18, total_tokens: 38, cached_tokens: Some(0), cache_write_tokens: Some(0), reasoning_tokens: None }))",
                "Done",
            ]
        );
    }

    #[test]
    fn text_thinking_and_several_tools() {
        let out = run(&[
            br#"{"type":"message_start","message":{"usage":{"input_tokens":3,"cache_read_input_tokens":100,"cache_creation_input_tokens":10,"output_tokens":1}}}"#,
            br#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#,
            br#"{"type":"content_block_stop","index":0}"#,
            br#"{"type":"ping"}"#,
            br#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            br#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"caf\u00e9"}}"#,
            br#"{"type":"content_block_stop","index":1}"#,
            br#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"now","input":{}}}"#,
            br#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            br#"{"type":"content_block_stop","index":2}"#,
            br#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"t2","name":"f","input":{}}}"#,
            br#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            br#"{"type":"content_block_stop","index":3}"#,
            br#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}"#,
            br#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}"#,
        ]);
        assert_eq!(
            out,
            [
                "Start",
                r#"TextDelta("café")"#,
                r#"ToolCallStart { index: 0, id: "t1", name: "now" }"#,
                r#"ToolCallDelta { index: 0, arguments: "{}" }"#,
                r#"ToolCallStart { index: 1, id: "t2", name: "f" }"#,
                r#"ToolCallDelta { index: 1, arguments: "{}" }"#,
                "Finish(Length)",
                "Usage(Some(Usage { input_tokens: 113, output_tokens: 9, total_tokens: 122, cached_tokens: Some(100), cache_write_tokens: Some(10), reasoning_tokens: None }))",
                "Done",
            ]
        );
    }

    #[test]
    fn streams_without_an_answer_fail() {
        let start: &[u8] = br#"{"type":"message_start","message":{"usage":{"input_tokens":3}}}"#;
        let stop: &[u8] = br#"{"type":"message_stop"}"#;
        assert_eq!(
            run(&[
                start,
                br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
                stop
            ]),
            ["Start", "Err(502, the upstream stream held no answer)"]
        );
        assert_eq!(run(&[]), ["Err(502, the upstream stream held no answer)"]);
        let block: &[u8] =
            br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        let text: &[u8] =
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(
            run(&[start, block, text]),
            [
                "Start",
                r#"TextDelta("Hi")"#,
                "Err(502, the upstream stream ended before the answer was complete)"
            ]
        );
    }

    #[test]
    fn error_events_and_broken_events_fail() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "Err(503, the upstream stream failed: Overloaded)",
            ),
            (
                br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow\ndown"}}"#,
                "Err(429, the upstream stream failed: slow down)",
            ),
            (br#"{"type":"error"}"#, "Err(502, the upstream stream failed)"),
            (b"not json", "Err(502, the upstream stream held an event that is not a valid Anthropic stream event)"),
            (
                br#"{"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
                "Err(502, the upstream stream held an event that is not a valid Anthropic stream event)",
            ),
            (
                br#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use"}}"#,
                "Err(502, the upstream stream held an event that is not a valid Anthropic stream event)",
            ),
        ];
        for (event, expected) in cases {
            let out = run(&[event]);
            assert_eq!(out.last().map(String::as_str), Some(expected), "{out:?}");
        }
        let mut reader = AnthropicEvents::default();
        let event = UpstreamEvent {
            name: None,
            data: br#"{"type":"error","error":{"type":"rate_limit_error","message":"m"}}"#[..]
                .into(),
        };
        let failure = reader.read(&event, &mut |_| {}).unwrap_err();
        assert_eq!(
            (failure.class, failure.code.as_deref()),
            (FailureClass::RateLimited, Some("rate_limit_error"))
        );
    }
}
