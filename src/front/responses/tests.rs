use std::borrow::Cow;

use bytes::BytesMut;
use http::StatusCode;
use serde_json::{json, Value};

use super::*;
use crate::core::{Delivery, FailureClass, StreamEvent, ToolCall};

const CTX: AnswerCtx<'static> = AnswerCtx {
    fallback_id: "resp_local",
    created: 1796300000,
    model: "gpt-5",
    delivery: Delivery::WHOLE,
};

fn usage() -> Usage {
    Usage {
        input_tokens: 12,
        output_tokens: 2,
        total_tokens: 14,
        cached_tokens: Some(4),
        cache_write_tokens: None,
        reasoning_tokens: None,
    }
}

fn generation<'a>(text: &'a str, calls: &[(&'a str, &'a str, &'a str)]) -> Generation<'a> {
    Generation {
        id: None,
        text,
        tool_calls: calls
            .iter()
            .map(|&(id, name, arguments)| ToolCall {
                id: Cow::Borrowed(id),
                name: Cow::Borrowed(name),
                arguments: Cow::Borrowed(arguments),
            })
            .collect(),
        finish: if calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        },
        usage: Some(usage()),
    }
}

/// The fields every response object has, around `extra`.
fn response(id: &str, status: &str, output: Value, usage: Value) -> Value {
    json!({"id": id, "object": "response", "created_at": 1796300000, "status": status,
           "error": null, "incomplete_details": null, "instructions": null, "model": "gpt-5",
           "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
           "usage": usage})
}

fn usage_json() -> Value {
    json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
           "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": 14})
}

fn whole(answer: &Generation<'_>) -> Value {
    serde_json::from_slice(&response_json(answer, &CTX).unwrap()).unwrap()
}

#[test]
fn a_text_answer_is_a_completed_response_with_one_message() {
    let mut answer = generation("Hello there", &[]);
    answer.id = Some("resp_up1");
    assert_eq!(
        whole(&answer),
        response(
            "resp_up1",
            "completed",
            json!([{"type": "message", "id": "msg_up1_0", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello there", "annotations": []}]}]),
            usage_json()
        )
    );
}

/// Whether `ours` holds everything `theirs` does: the same values under the same keys, arrays
/// of the same length; `ours` may have more keys.
fn covers(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Object(ours), Value::Object(theirs)) => theirs
            .iter()
            .all(|(key, value)| ours.get(key).is_some_and(|mine| covers(mine, value))),
        (Value::Array(ours), Value::Array(theirs)) => {
            ours.len() == theirs.len() && ours.iter().zip(theirs).all(|(a, b)| covers(a, b))
        }
        _ => ours == theirs,
    }
}

/// A spec fixture with the ids the bridge derives for the same items.
fn fixture(name: &str, ids: &[(&str, &str)]) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(path).unwrap();
    for (theirs, ours) in ids {
        text = text.replace(&format!("\"{theirs}\""), &format!("\"{ours}\""));
    }
    text
}

#[test]
fn text_and_calls_cover_the_upstream_fixture() {
    let mut answer = generation(
        "I'll look that up.",
        &[("call_8d2b7c41", "get_weather", r#"{"city":"Paris"}"#)],
    );
    answer.id = Some("resp_0c7f3a9e5b1d4e2f");
    answer.usage = Some(Usage {
        input_tokens: 82,
        output_tokens: 41,
        total_tokens: 123,
        cached_tokens: Some(0),
        cache_write_tokens: None,
        reasoning_tokens: Some(18),
    });
    let ctx = AnswerCtx {
        model: "sfdc_ai__DefaultGPT54",
        ..CTX
    };
    let ours: Value = serde_json::from_slice(&response_json(&answer, &ctx).unwrap()).unwrap();
    let ids = [
        ("msg_01", "msg_0c7f3a9e5b1d4e2f_0"),
        ("fc_01", "fc_0c7f3a9e5b1d4e2f_1"),
    ];
    let mut theirs: Value =
        serde_json::from_str(&fixture("native.responses.response.json", &ids)).unwrap();
    // The reasoning item carries nothing the neutral answer keeps.
    theirs["output"].as_array_mut().unwrap().remove(0);
    assert!(covers(&ours, &theirs), "{ours:#}");
}

#[test]
fn calls_alone_have_no_message_and_an_empty_answer_has_an_empty_one() {
    let answer = generation("", &[("c1", "f", "{}"), ("c2", "g", "{}")]);
    let body = whole(&answer);
    let types: Vec<&str> = body["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["function_call", "function_call"]);
    assert_eq!(body["output"][1]["id"], "fc_local_1");

    let body = whole(&generation("", &[]));
    assert_eq!(body["output"][0]["content"][0]["text"], "");
}

#[test]
fn a_cut_answer_is_incomplete_and_so_is_its_last_item() {
    for (finish, reason) in [
        (Finish::Length, "max_output_tokens"),
        (Finish::ContentFilter, "content_filter"),
    ] {
        let mut answer = generation("Once upon", &[("c1", "f", "{\"a\":")]);
        answer.finish = finish;
        answer.usage = None;
        let body = whole(&answer);
        assert_eq!(body["status"], "incomplete");
        assert_eq!(body["incomplete_details"], json!({"reason": reason}));
        assert_eq!(body["output"][0]["status"], "completed");
        assert_eq!(body["output"][1]["status"], "incomplete");
        assert_eq!(body["usage"], Value::Null);
    }
}

#[test]
fn an_unusable_upstream_id_gives_way_to_the_fallback() {
    let mut answer = generation("x", &[]);
    answer.id = Some("not an id");
    assert_eq!(whole(&answer)["id"], "resp_local");
    answer.id = Some("chatcmpl-9");
    let body = whole(&answer);
    assert_eq!(body["id"], "chatcmpl-9");
    assert_eq!(body["output"][0]["id"], "msg_chatcmpl-9_0");
}

/// Splits a stream into (event name, data) pairs, checking the framing and that every event's
/// name is its `type` and sequence numbers count up from 0.
fn parse_stream(stream: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(stream).unwrap();
    assert!(text.ends_with("\n\n"), "{text}");
    let events: Vec<(String, Value)> = text
        .strip_suffix("\n\n")
        .unwrap()
        .split("\n\n")
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect();
    for (number, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], number, "{data}");
    }
    events
}

/// The whole stream of `answer`, emulated, in frames of at most `target` bytes.
fn emulated(answer: &Generation<'_>, target: usize) -> Vec<u8> {
    let mut source = ResponsesFront
        .answer_events(&Answer::Generation(answer.clone()), &CTX)
        .unwrap();
    let mut stream = Vec::new();
    loop {
        let mut frame = BytesMut::with_capacity(source.remaining_hint().min(target));
        let more = source.fill(&mut frame, target);
        stream.extend_from_slice(&frame);
        if !more {
            break;
        }
    }
    stream
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[test]
fn a_text_stream_has_every_event_in_full() {
    let mut renderer = ResponsesEvents::new("resp_1", &CTX);
    let mut out = BytesMut::new();
    for event in [
        StreamEvent::Start,
        StreamEvent::TextDelta("Hello"),
        StreamEvent::TextDelta(" there"),
        StreamEvent::Finish(Finish::Stop),
        StreamEvent::Usage(Some(usage())),
        StreamEvent::Done,
    ] {
        renderer.render(event, &mut out);
    }
    let events = parse_stream(&out);
    let in_progress = response("resp_1", "in_progress", json!([]), Value::Null);
    let item = |status: &str, content: Value| json!({"type": "message", "id": "msg_1_0", "status": status, "role": "assistant", "content": content});
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
    let at = |location: Value, extra: Value| {
        let mut value = json!({"item_id": "msg_1_0", "output_index": 0, "content_index": 0});
        value
            .as_object_mut()
            .unwrap()
            .extend(location.as_object().unwrap().clone());
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        value
    };
    let expected = [
        ("response.created", json!({"response": in_progress})),
        ("response.in_progress", json!({"response": in_progress})),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": item("in_progress", json!([]))}),
        ),
        (
            "response.content_part.added",
            at(json!({}), json!({"part": part("")})),
        ),
        (
            "response.output_text.delta",
            at(json!({}), json!({"delta": "Hello", "logprobs": []})),
        ),
        (
            "response.output_text.delta",
            at(json!({}), json!({"delta": " there", "logprobs": []})),
        ),
        (
            "response.output_text.done",
            at(json!({}), json!({"text": "Hello there", "logprobs": []})),
        ),
        (
            "response.content_part.done",
            at(json!({}), json!({"part": part("Hello there")})),
        ),
        (
            "response.output_item.done",
            json!({"output_index": 0, "item": item("completed", json!([part("Hello there")]))}),
        ),
        (
            "response.completed",
            json!({"response": response("resp_1", "completed",
            json!([item("completed", json!([part("Hello there")]))]), usage_json())}),
        ),
    ];
    assert_eq!(events.len(), expected.len());
    for (number, ((name, data), (want_name, want))) in events.iter().zip(expected).enumerate() {
        assert_eq!(name, want_name);
        let mut want = want;
        want["type"] = json!(want_name);
        want["sequence_number"] = json!(number);
        assert_eq!(data, &want, "{name}");
    }
}

#[test]
fn a_text_stream_covers_the_upstream_fixture() {
    let ctx = AnswerCtx {
        model: "sfdc_ai__DefaultGPT54",
        ..CTX
    };
    let mut renderer = ResponsesEvents::new("resp_1", &ctx);
    let mut out = BytesMut::new();
    for event in [
        StreamEvent::Start,
        StreamEvent::TextDelta("Hello"),
        StreamEvent::TextDelta(" there"),
        StreamEvent::Finish(Finish::Stop),
        StreamEvent::Usage(Some(Usage {
            cached_tokens: Some(0),
            ..usage()
        })),
        StreamEvent::Done,
    ] {
        renderer.render(event, &mut out);
    }
    let mut ours = parse_stream(&out);
    // The fixture leaves out `response.in_progress` (the API sends it) and so its numbers.
    assert_eq!(ours.remove(1).0, "response.in_progress");
    let theirs =
        parse_stream(fixture("native.responses.stream.sse", &[("msg_1", "msg_1_0")]).as_bytes());
    assert_eq!(names(&ours), names(&theirs));
    for ((name, ours), (_, theirs)) in ours.iter().zip(&theirs) {
        let mut ours = ours.clone();
        ours["sequence_number"] = theirs["sequence_number"].clone();
        assert!(covers(&ours, theirs), "{name}: {ours:#}");
    }
}

#[test]
fn a_tool_call_stream_has_one_function_call_item() {
    let stream = emulated(&generation("", &[("call_1", "f", r#"{"a":1}"#)]), 1 << 20);
    let events = parse_stream(&stream);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let call = json!({"type": "function_call", "id": "fc_local_0", "call_id": "call_1", "name": "f",
                      "arguments": "", "status": "in_progress"});
    assert_eq!(events[2].1["item"], call);
    assert_eq!(events[3].1["delta"], r#"{"a":1}"#);
    assert_eq!(events[3].1["item_id"], "fc_local_0");
    assert_eq!(events[4].1["arguments"], r#"{"a":1}"#);
    let mut done = call;
    done["arguments"] = json!(r#"{"a":1}"#);
    done["status"] = json!("completed");
    assert_eq!(events[5].1["item"], done);
    assert_eq!(events[6].1["response"]["output"], json!([done]));
}

#[test]
fn text_then_calls_close_each_item_before_the_next() {
    let answer = generation(
        "Let me see.",
        &[("c1", "f", "{}"), ("c2", "g", "{\"x\":2}")],
    );
    let events = parse_stream(&emulated(&answer, 300));
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let indexes: Vec<u64> = events
        .iter()
        .filter_map(|(_, data)| data["output_index"].as_u64())
        .collect();
    assert_eq!(indexes, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // The stream's items are the whole answer's.
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed, &whole(&answer));
}

#[test]
fn a_cut_stream_ends_incomplete() {
    let mut answer = generation("Once upon a", &[]);
    answer.finish = Finish::Length;
    let events = parse_stream(&emulated(&answer, 1));
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    let item_done = &events[events.len() - 2].1;
    assert_eq!(item_done["item"]["status"], "incomplete");
    assert_eq!(last["response"], whole(&answer));
}

#[test]
fn long_text_streams_in_pieces_and_frames_keep_whole_events() {
    let text = "é\"\n日".repeat(500);
    let answer = generation(&text, &[]);
    let one_frame = emulated(&answer, 1 << 24);
    for target in [1, 500, 4096] {
        assert_eq!(emulated(&answer, target), one_frame, "{target}");
    }
    let events = parse_stream(&one_frame);
    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, text);
    let source = ResponsesFront
        .answer_events(&Answer::Generation(answer.clone()), &CTX)
        .unwrap();
    let hint = source.remaining_hint();
    assert!(
        hint >= one_frame.len() / 8 && hint <= one_frame.len() * 2,
        "{hint}"
    );
}

#[test]
fn a_stream_without_text_or_calls_still_has_a_message() {
    let mut renderer = ResponsesEvents::new("resp_1", &CTX);
    let mut out = BytesMut::new();
    for event in [
        StreamEvent::Finish(Finish::Stop),
        StreamEvent::Done,
        StreamEvent::Done,
    ] {
        renderer.render(event, &mut out);
    }
    let events = parse_stream(&out);
    assert_eq!(events.len(), 8);
    assert_eq!(events[0].0, "response.created");
    assert_eq!(
        events[7].1["response"]["output"][0]["content"][0]["text"],
        ""
    );
    assert_eq!(events[7].1["response"]["usage"], Value::Null);
}

#[test]
fn arguments_for_a_call_not_being_streamed_are_not_rendered() {
    let mut renderer = ResponsesEvents::new("resp_1", &CTX);
    let mut out = BytesMut::new();
    for event in [
        StreamEvent::ToolCallStart {
            index: 0,
            id: "c0",
            name: "f",
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{}",
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "c1",
            name: "g",
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "late",
        },
        StreamEvent::ToolCallDelta {
            index: 7,
            arguments: "unknown",
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            arguments: "[]",
        },
        StreamEvent::Done,
    ] {
        renderer.render(event, &mut out);
    }
    let events = parse_stream(&out);
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["output"][0]["arguments"], "{}");
    assert_eq!(completed["output"][1]["arguments"], "[]");
    assert!(!String::from_utf8(out.to_vec()).unwrap().contains("late"));
}

#[test]
fn errors_are_openai_envelopes_or_an_error_event() {
    let failure = Failure::new(
        StatusCode::GATEWAY_TIMEOUT,
        FailureClass::Upstream,
        "the upstream did not answer",
    )
    .code("upstream_timeout");
    let body: Value = serde_json::from_slice(&ResponsesErrors.error_json(&failure)).unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let event = ResponsesErrors.error_event(&failure);
    assert_eq!(
        parse_stream(&event),
        [(
            "error".to_owned(),
            json!({"type": "error", "code": "upstream_timeout",
                   "message": "the upstream did not answer", "param": null, "sequence_number": 0})
        )]
    );
}

#[test]
fn the_front_parses_and_refuses_in_its_place() {
    let request = ResponsesFront
        .parse(br#"{"model": "gpt-5", "input": "Hi", "stream": true}"#)
        .unwrap();
    assert!(request.delivery.stream.is_some());
    assert_eq!(ResponsesFront.id_prefix(), "resp_");
    let error = ResponsesFront
        .parse(br#"{"model": "gpt-5", "input": "Hi", "previous_response_id": "resp_0"}"#)
        .unwrap_err();
    let failure = error.failure();
    assert_eq!(failure.status, StatusCode::BAD_REQUEST);
    assert_eq!(failure.param.as_deref(), Some("previous_response_id"));
    let failure = ResponsesFront
        .parse(br#"{"model": "gpt-5"}"#)
        .unwrap_err()
        .failure();
    assert_eq!(failure.status, StatusCode::BAD_REQUEST);
    assert!(
        failure.message.contains("missing field `input`"),
        "{}",
        failure.message
    );
}
