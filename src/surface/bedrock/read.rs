//! Whole answers and error bodies of the Bedrock path.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode};

use super::wire::{finish, MessageBody, WireUsage};
use crate::core::{Answer, Failure, FailureClass, Generation, ToolCall, MAX_MESSAGE_CHARS};
use crate::surface::einstein::{failure_from, parse_as, ErrorResponse, ExtractError};

/// The media type of `invoke-with-response-stream`'s answer.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Reads an Anthropic message, the answer of `invoke`, and hands it to `render`: text blocks
/// joined, `tool_use` blocks as tool calls (their `input` as the arguments, as sent), thinking
/// skipped. A message without a single content block is no answer, as a stream without one is.
///
/// ```
/// use sf_models_bridge::core::{Answer, Finish};
/// use sf_models_bridge::surface::bedrock::read_answer;
///
/// let body = br#"{"id": "msg_1", "content": [{"type": "text", "text": "Hi!"}],
///     "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}}"#;
/// let text = read_answer(body, |answer| match answer {
///     Answer::Generation(g) => (g.text.to_owned(), g.finish),
///     Answer::Embeddings(_) => unreachable!(),
/// })?;
/// assert_eq!(text, ("Hi!".to_owned(), Finish::Stop));
/// # Ok::<(), sf_models_bridge::surface::einstein::ExtractError>(())
/// ```
pub fn read_answer<R>(
    body: &[u8],
    render: impl FnOnce(Answer<'_>) -> R,
) -> Result<R, ExtractError> {
    let message: MessageBody<'_> = parse_as(body)?;
    let blocks = message.content.unwrap_or_default();
    if blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    let mut tool_calls = Vec::new();
    for block in &blocks {
        match (block.kind.as_ref(), &block.text) {
            ("text", Some(piece)) if text.is_empty() => text = Cow::Borrowed(piece),
            ("text", Some(piece)) => text.to_mut().push_str(piece),
            ("tool_use", _) => tool_calls.push(ToolCall {
                id: Cow::Borrowed(block.id.as_deref().unwrap_or_default()),
                name: Cow::Borrowed(block.name.as_deref().unwrap_or_default()),
                arguments: Cow::Borrowed(block.input.map_or("{}", |input| input.get())),
            }),
            // Thinking, redacted thinking, server tools' blocks: not part of a neutral answer.
            _ => {}
        }
    }
    Ok(render(Answer::Generation(Generation {
        id: message.id.as_deref(),
        text: &text,
        tool_calls,
        finish: finish(message.stop_reason.as_deref()),
        usage: message.usage.and_then(WireUsage::to_core),
    })))
}

/// Maps a final error answer of the Bedrock path: Bedrock's `{"message"}`, Salesforce's
/// `{"errorCode", "message"}`, a provider's `{"error": {...}}`, or plain text (observed: 502s
/// with a text body), read by the Models API's one mapping. `model` is the model called.
pub fn read_failure(status: StatusCode, body: &[u8], model: &str) -> Failure {
    failure_from(status, &error_body(body), model, "salesforce.gpt_api_base")
}

/// Whether a response's `content-type` says it is an event stream. Under load a 200 on the
/// stream path was observed to carry a JSON or text error instead.
pub fn is_event_stream(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(EVENT_STREAM))
}

/// The failure a 200 of the stream path whose body is not an event stream
/// ([`is_event_stream`]) stands for, with what its body says.
pub fn read_non_stream(body: &[u8]) -> Failure {
    let detail = error_body(body).summary();
    let mut message =
        String::from("Salesforce answered the stream request without an event stream");
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&detail);
    }
    Failure::new(StatusCode::BAD_GATEWAY, FailureClass::Upstream, message)
        .code("upstream_invalid_response")
}

/// An error body in any known shape, or its text when it is short plain text.
fn error_body(body: &[u8]) -> ErrorResponse<'_> {
    let error = ErrorResponse::parse(body);
    let said_nothing = error.error_code.is_none()
        && error.message_code.is_none()
        && error.message.is_none()
        && error.error.is_none();
    match plain_text(body) {
        Some(text) if said_nothing => ErrorResponse {
            message: Some(Cow::Borrowed(text)),
            ..error
        },
        _ => error,
    }
}

/// The start of the body as text, unless it is markup or JSON (whose text is no message):
/// enough of it for the bounded message, cut where a character starts.
fn plain_text(body: &[u8]) -> Option<&str> {
    // A character takes at most 4 bytes.
    let head = body.get(..body.len().min(MAX_MESSAGE_CHARS * 4))?;
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Only the cut split a character: keep what precedes it.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(head.get(..error.valid_up_to())?).ok()?
        }
        Err(_) => return None,
    };
    let trimmed = text.trim();
    (!trimmed.is_empty() && !trimmed.starts_with(['<', '{', '['])).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Finish, Usage};
    use crate::surface::bedrock::test_fixtures::fixture;

    /// A tool call's id, name and arguments, owned.
    type Call = (String, String, String);
    /// An answer's text, calls, finish, usage and id, owned.
    type Read = (String, Vec<Call>, Finish, Option<Usage>, Option<String>);

    /// The answer's parts, owned.
    fn read(body: &[u8]) -> Result<Read, ExtractError> {
        read_answer(body, |answer| {
            let Answer::Generation(g) = answer else {
                panic!("not a generation")
            };
            let calls = g
                .tool_calls
                .iter()
                .map(|c| {
                    (
                        c.id.to_string(),
                        c.name.to_string(),
                        c.arguments.to_string(),
                    )
                })
                .collect();
            (
                g.text.to_owned(),
                calls,
                g.finish,
                g.usage,
                g.id.map(str::to_owned),
            )
        })
    }

    #[test]
    fn the_spec_fixture_is_read() {
        let (text, calls, finish, usage, id) =
            read(&fixture("native.bedrock.invoke.response.json")).unwrap();
        assert_eq!(text, "18 °C and clear in Paris.");
        assert!(calls.is_empty());
        assert_eq!(finish, Finish::Stop);
        assert_eq!(id.as_deref(), Some("msg_bdrk_01XyZ"));
        assert_eq!(
            usage,
            Some(Usage {
                input_tokens: 668,
                output_tokens: 12,
                total_tokens: 680,
                cached_tokens: Some(256),
                cache_write_tokens: Some(0),
                reasoning_tokens: None,
            })
        );
    }

    #[test]
    fn text_is_joined_tools_are_called_and_thinking_is_skipped() {
        let body = br#"{"content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me check. "},
            {"type": "text", "text": "One \u00e9 moment."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "now"}],
            "stop_reason": "tool_use"}"#;
        let (text, calls, finish, usage, id) = read(body).unwrap();
        assert_eq!(text, "Let me check. One é moment.");
        assert_eq!(
            calls,
            [
                (
                    "toolu_1".into(),
                    "get_weather".into(),
                    r#"{"city": "Paris"}"#.into()
                ),
                ("toolu_2".into(), "now".into(), "{}".into())
            ]
        );
        assert_eq!((finish, usage, id), (Finish::ToolCalls, None, None));

        let (text, _, finish, _, _) = read(
            br#"{"content": [{"type": "redacted_thinking", "data": "x"}], "stop_reason": "max_tokens"}"#,
        )
        .unwrap();
        assert_eq!((text.as_str(), finish), ("", Finish::Length));
    }

    #[test]
    fn no_content_is_no_answer() {
        for body in [&br#"{"content": []}"#[..], br#"{"id": "m"}"#] {
            assert!(matches!(read(body), Err(ExtractError::NoText)));
        }
        assert!(matches!(
            read(b"not json"),
            Err(ExtractError::Malformed { .. })
        ));
        assert!(matches!(
            read(br#"{"content": "text"}"#),
            Err(ExtractError::Malformed { .. })
        ));
    }

    #[test]
    fn error_bodies_of_every_shape_are_read() {
        let cases: [(u16, &[u8], u16, &str); 6] = [
            (
                400,
                br#"{"message": "messages.0: bad"}"#,
                400,
                "Salesforce answered 400: messages.0: bad",
            ),
            (
                429,
                br#"{"errorCode": "LIMIT_EXCEEDED", "message": "slow down"}"#,
                429,
                "Salesforce answered 429: LIMIT_EXCEEDED: slow down",
            ),
            (
                500,
                br#"{"error": {"type": "api_error", "message": "boom"}}"#,
                502,
                "Salesforce answered 500: api_error: boom",
            ),
            (
                502,
                b"No user context has been created\n",
                502,
                "Salesforce answered 502: No user context has been created",
            ),
            (
                502,
                b"<html><body>Bad Gateway</body></html>",
                502,
                "Salesforce answered 502",
            ),
            (503, b"", 503, "Salesforce answered 503"),
        ];
        for (status, body, expected, message) in cases {
            let failure = read_failure(StatusCode::from_u16(status).unwrap(), body, "m");
            assert_eq!(
                (failure.status.as_u16(), failure.message.as_str()),
                (expected, message)
            );
        }
        let long = "é".repeat(100_000);
        let failure = read_failure(StatusCode::BAD_GATEWAY, long.as_bytes(), "m");
        assert!(failure.message.starts_with("Salesforce answered 502: éé"));
        assert!(failure.message.chars().count() < 400, "{}", failure.message);
        let binary = read_failure(StatusCode::BAD_GATEWAY, &[0xff, 0xfe, b'x'], "m");
        assert_eq!(binary.message, "Salesforce answered 502");
        let forged = read_failure(StatusCode::BAD_GATEWAY, b"a\nINFO forged\x1b[2J", "m");
        assert_eq!(forged.message, "Salesforce answered 502: a INFO forged [2J");
    }

    #[test]
    fn a_200_without_an_event_stream_is_a_failure() {
        let stream = HeaderValue::from_static("application/vnd.amazon.eventstream");
        assert!(is_event_stream(Some(&stream)));
        let with_params = HeaderValue::from_static("Application/VND.Amazon.EventStream; x=1");
        assert!(is_event_stream(Some(&with_params)));
        let json = HeaderValue::from_static("application/json");
        assert!(!is_event_stream(Some(&json)));
        assert!(!is_event_stream(None));

        let failure = read_non_stream(br#"{"message": "Too many requests"}"#);
        assert_eq!(failure.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            failure.message,
            "Salesforce answered the stream request without an event stream: Too many requests"
        );
        assert_eq!(
            read_non_stream(b"").message,
            "Salesforce answered the stream request without an event stream"
        );
    }
}
