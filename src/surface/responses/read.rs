//! Responses objects → neutral answers. Pure.

use std::borrow::Cow;

use super::response::{IncompleteDetails, OutputItem, ResponseObject, ResponsesUsage};
use crate::core::{Answer, Finish, Generation, ToolCall, Usage, MAX_MESSAGE_CHARS};
use crate::surface::einstein::{parse_as, ExtractError};
use crate::text::sanitize;

/// Reads a whole `/responses` answer and hands it to `render`: the answer borrows from a parse
/// that lives only here. An answer with no text and no tool call is an error unless the model
/// was cut off or filtered, never an empty success.
pub(crate) fn read_answer<R>(
    body: &[u8],
    render: impl FnOnce(Answer<'_>) -> R,
) -> Result<R, ExtractError> {
    let response: ResponseObject<'_> = parse_as(body)?;
    let cut = match response.status.as_deref() {
        // Absent: an answer from a proxy that leaves the status out is read as complete.
        None | Some("completed") => None,
        Some("incomplete") => Some(incomplete_finish(response.incomplete_details.as_ref())),
        Some(status) => {
            let error = response.error.as_ref();
            return Err(ExtractError::Failed(failure_words(
                Some(status),
                error.and_then(|error| error.code.as_deref()),
                error.and_then(|error| error.message.as_deref()),
            )));
        }
    };
    let text = output_text(&response.output);
    let tool_calls = tool_calls(&response.output)?;
    if cut.is_none() && text.is_empty() && tool_calls.is_empty() {
        return Err(ExtractError::NoText);
    }
    let finish = cut.unwrap_or(if tool_calls.is_empty() {
        Finish::Stop
    } else {
        Finish::ToolCalls
    });
    Ok(render(Answer::Generation(Generation {
        id: response.id.as_deref().filter(|id| !id.is_empty()),
        text: &text,
        tool_calls,
        finish,
        usage: response.usage.as_ref().and_then(usage),
    })))
}

/// The text of the output's messages, in order; borrowed when one part holds it all.
pub(super) fn output_text<'r>(output: &'r [OutputItem<'_>]) -> Cow<'r, str> {
    let mut pieces = output
        .iter()
        .filter(|item| item.is("message"))
        .flat_map(|item| item.content.iter().flatten())
        .filter_map(|part| part.shown_text());
    let Some(first) = pieces.next() else {
        return Cow::Borrowed("");
    };
    let mut text = Cow::Borrowed(first);
    for piece in pieces {
        text.to_mut().push_str(piece);
    }
    text
}

/// The output's function calls, in order.
pub(super) fn tool_calls<'r>(
    output: &'r [OutputItem<'_>],
) -> Result<Vec<ToolCall<'r>>, ExtractError> {
    output
        .iter()
        .filter(|item| item.is("function_call"))
        .map(tool_call)
        .collect()
}

/// One function call item as a tool call; one the caller could not answer (no id or no name)
/// fails the answer rather than being dropped.
pub(super) fn tool_call<'r>(item: &'r OutputItem<'_>) -> Result<ToolCall<'r>, ExtractError> {
    let (Some(id), Some(name)) = (item.call_id.as_deref(), item.name.as_deref()) else {
        return Err(ExtractError::Failed(
            "a function call without a `call_id` or a `name`".to_owned(),
        ));
    };
    Ok(ToolCall {
        id: Cow::Borrowed(id),
        name: Cow::Borrowed(name),
        arguments: Cow::Borrowed(item.arguments.as_deref().unwrap_or("")),
    })
}

/// Why an `incomplete` answer stopped. An unknown reason is read as a cut-off, the only other
/// way an answer ends unfinished.
pub(super) fn incomplete_finish(details: Option<&IncompleteDetails<'_>>) -> Finish {
    match details.and_then(|details| details.reason.as_deref()) {
        Some("content_filter") => Finish::ContentFilter,
        _ => Finish::Length,
    }
}

/// The token counts, when the upstream sent any.
pub(super) fn usage(raw: &ResponsesUsage) -> Option<Usage> {
    if raw.input_tokens.is_none() && raw.output_tokens.is_none() {
        return None;
    }
    let input_tokens = raw.input_tokens.unwrap_or(0);
    let output_tokens = raw.output_tokens.unwrap_or(0);
    Some(Usage {
        input_tokens,
        output_tokens,
        total_tokens: raw
            .total_tokens
            .unwrap_or(input_tokens.saturating_add(output_tokens)),
        cached_tokens: raw.input_tokens_details.and_then(|d| d.cached_tokens),
        cache_write_tokens: None,
        reasoning_tokens: raw.output_tokens_details.and_then(|d| d.reasoning_tokens),
    })
}

/// What the upstream said about an answer that is none: its status, code and message,
/// sanitised and bounded.
pub(super) fn failure_words(
    status: Option<&str>,
    code: Option<&str>,
    message: Option<&str>,
) -> String {
    let mut words = String::new();
    if let Some(status) = status {
        words.push_str("status ");
        words.push_str(status);
    }
    for (separator, said) in [(", ", code), (": ", message)] {
        if let Some(said) = said {
            if !words.is_empty() {
                words.push_str(separator);
            }
            words.push_str(said);
        }
    }
    sanitize(&words, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The answer as owned parts: (id, text, calls as (id, name, arguments), finish, usage).
    type Read = (
        Option<String>,
        String,
        Vec<(String, String, String)>,
        Finish,
        Option<Usage>,
    );

    fn read(body: &[u8]) -> Result<Read, ExtractError> {
        read_answer(body, |answer| {
            let Answer::Generation(answer) = answer else {
                panic!("not a generation")
            };
            (
                answer.id.map(str::to_owned),
                answer.text.to_owned(),
                answer
                    .tool_calls
                    .iter()
                    .map(|c| {
                        (
                            c.id.to_string(),
                            c.name.to_string(),
                            c.arguments.to_string(),
                        )
                    })
                    .collect(),
                answer.finish,
                answer.usage,
            )
        })
    }

    fn read_json(value: Value) -> Result<Read, ExtractError> {
        read(&serde_json::to_vec(&value).unwrap())
    }

    fn message(text: &str) -> Value {
        json!({"type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": []}]})
    }

    #[test]
    fn the_spec_fixture_reads_text_calls_and_usage() {
        let (id, text, calls, finish, usage) =
            read(&fixture("native.responses.response.json")).unwrap();
        assert_eq!(id.as_deref(), Some("resp_0c7f3a9e5b1d4e2f"));
        assert_eq!(text, "I'll look that up.");
        assert_eq!(
            calls,
            [(
                "call_8d2b7c41".to_owned(),
                "get_weather".to_owned(),
                r#"{"city":"Paris"}"#.to_owned()
            )]
        );
        assert_eq!(finish, Finish::ToolCalls);
        assert_eq!(
            usage,
            Some(Usage {
                input_tokens: 82,
                output_tokens: 41,
                total_tokens: 123,
                cached_tokens: Some(0),
                cache_write_tokens: None,
                reasoning_tokens: Some(18),
            })
        );
    }

    #[test]
    fn texts_join_across_parts_and_messages_and_refusals_show() {
        let (_, text, calls, finish, usage) = read_json(json!({"status": "completed", "output": [
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}]},
            message("a"),
            {"type": "message", "content": [{"type": "output_text", "text": "b"},
                                            {"type": "refusal", "refusal": "c"}]}]}))
        .unwrap();
        assert_eq!(
            (text.as_str(), calls.len(), finish),
            ("abc", 0, Finish::Stop)
        );
        assert_eq!(usage, None);
    }

    #[test]
    fn incomplete_answers_finish_by_their_reason_even_when_empty() {
        for (reason, finish) in [
            (json!("max_output_tokens"), Finish::Length),
            (json!("content_filter"), Finish::ContentFilter),
            (json!("something_new"), Finish::Length),
            (Value::Null, Finish::Length),
        ] {
            let (_, text, _, got, _) = read_json(json!({"status": "incomplete",
                "incomplete_details": {"reason": reason}, "output": [],
                "usage": {"input_tokens": 5, "output_tokens": 9}}))
            .unwrap();
            assert_eq!((text.as_str(), got), ("", finish), "{reason}");
        }
        let (.., finish, usage) = read_json(json!({"status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "output": [message("par")],
            "usage": {"input_tokens": 5, "output_tokens": 9}}))
        .unwrap();
        assert_eq!(finish, Finish::Length);
        assert_eq!(usage.unwrap().total_tokens, 14, "the sum, when not given");
    }

    #[test]
    fn an_empty_answer_is_an_error_not_an_empty_success() {
        for body in [
            json!({"status": "completed", "output": []}),
            json!({"status": "completed", "output": [{"type": "reasoning", "summary": []}]}),
            json!({"output": [message("")]}),
            json!({}),
        ] {
            assert!(
                matches!(read_json(body.clone()), Err(ExtractError::NoText)),
                "{body}"
            );
        }
    }

    #[test]
    fn failed_and_unfinished_answers_are_errors_with_the_upstreams_words() {
        let error = read_json(json!({"status": "failed", "output": [],
            "error": {"code": "server_error", "message": "The model\nfailed"}}))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Salesforce returned a response that is not an answer: status failed, server_error: The model failed"
        );
        for status in ["cancelled", "queued", "in_progress"] {
            let error = read_json(json!({"status": status, "output": [message("x")]})).unwrap_err();
            assert!(matches!(error, ExtractError::Failed(_)), "{status}");
        }
        let long = json!({"status": "failed", "error": {"message": "x".repeat(10_000)}});
        let ExtractError::Failed(words) = read_json(long).unwrap_err() else {
            panic!("not failed")
        };
        assert!(words.chars().count() <= MAX_MESSAGE_CHARS);
    }

    #[test]
    fn malformed_answers_and_calls_are_errors() {
        assert!(matches!(
            read(b"{\"output\": ["),
            Err(ExtractError::Malformed { .. })
        ));
        assert!(matches!(
            read_json(json!({"output": "text"})),
            Err(ExtractError::Malformed { .. })
        ));
        let error =
            read_json(json!({"output": [{"type": "function_call", "name": "f"}]})).unwrap_err();
        assert!(matches!(error, ExtractError::Failed(_)));
    }

    #[test]
    fn odd_counts_are_read_leniently() {
        let (.., usage) = read_json(json!({"output": [message("x")], "usage": {
            "input_tokens": "3", "output_tokens": 2.0, "total_tokens": null,
            "output_tokens_details": {"reasoning_tokens": "many"}}}))
        .unwrap();
        let usage = usage.unwrap();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.total_tokens),
            (3, 2, 5)
        );
        assert_eq!(usage.reasoning_tokens, None);
    }
}
