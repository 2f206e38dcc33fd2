//! Emulated streaming: any answer becomes well-framed events whose deltas reassemble it exactly.

use proptest::prelude::*;
use serde_json::Value;
use sf_models_bridge::core::{Delivery, Finish, Generation, Usage};
use sf_models_bridge::front::sse::{SseEvents, StreamKind, CONTENT_CHUNK_BYTES};
use sf_models_bridge::front::AnswerCtx;
use sf_models_bridge::openai;

use crate::json;

/// A complete answer and how to stream it.
#[derive(Debug, Clone)]
struct StreamedAnswer {
    kind: StreamKind,
    id: String,
    created: u64,
    model: String,
    text: String,
    finish: Finish,
    usage: Option<Usage>,
    include_usage: bool,
}

impl StreamedAnswer {
    /// Its events; the id stands in as the fallback so that any string is kept as it is.
    fn events(&self) -> SseEvents {
        let ctx = AnswerCtx {
            fallback_id: &self.id,
            created: self.created,
            model: &self.model,
            delivery: Delivery::WHOLE,
        };
        let generation = Generation {
            id: None,
            text: &self.text,
            tool_calls: vec![],
            finish: self.finish,
            usage: self.usage,
        };
        SseEvents::new(self.kind, &ctx, &generation, self.include_usage)
    }
}

fn answer() -> impl Strategy<Value = StreamedAnswer> {
    let text = prop_oneof![
        3 => json::string(),
        2 => "\\PC{0,1200}",
        1 => prop::collection::vec(any::<char>(), 0..700).prop_map(String::from_iter),
    ];
    let usage = proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(input_tokens, output_tokens, total_tokens)| Usage {
            input_tokens,
            output_tokens,
            total_tokens,
            cached_tokens: None,
            cache_write_tokens: None,
            reasoning_tokens: None,
        },
    ));
    (
        any::<bool>(),
        json::string(),
        json::string(),
        text,
        prop::sample::select(vec![
            Finish::Stop,
            Finish::Length,
            Finish::ToolCalls,
            Finish::ContentFilter,
        ]),
        usage,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(chat, id, model, text, finish, usage, include_usage, created)| StreamedAnswer {
                kind: if chat {
                    StreamKind::Chat
                } else {
                    StreamKind::Text
                },
                id,
                created,
                model,
                text,
                finish,
                usage,
                include_usage,
            },
        )
}

/// The JSON of one `data:` event; the data must be a single line.
fn data(event: &[u8]) -> Value {
    let event = std::str::from_utf8(event).expect("UTF-8");
    let data = event
        .strip_prefix("data: ")
        .and_then(|e| e.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not a data event: {event:?}"));
    assert!(!data.contains(['\n', '\r']), "{data:?}");
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data:?}"))
}

fn check(answer: StreamedAnswer) {
    let events: Vec<_> = answer.events().collect();
    let (done, events) = events.split_last().expect("at least [DONE]");
    assert_eq!(&done[..], b"data: [DONE]\n\n");
    let mut values: Vec<Value> = events.iter().map(|event| data(event)).collect();

    let usage_event = answer
        .include_usage
        .then(|| values.pop().expect("a usage event"));
    if let Some(usage_event) = usage_event {
        assert_eq!(usage_event["choices"], Value::Array(vec![]));
        let usage = openai::Usage::from(answer.usage.unwrap_or_default());
        assert_eq!(usage_event["usage"], serde_json::to_value(usage).unwrap());
    }
    let finish = values.pop().expect("a finish event");
    assert_eq!(
        finish["choices"][0]["finish_reason"],
        openai::finish_reason(answer.finish)
    );

    let (object, field) = match answer.kind {
        StreamKind::Chat => {
            let role = values.remove(0);
            assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
            ("chat.completion.chunk", "/choices/0/delta/content")
        }
        StreamKind::Text => ("text_completion", "/choices/0/text"),
    };
    let mut text = String::new();
    for value in &values {
        let piece = value
            .pointer(field)
            .and_then(Value::as_str)
            .expect("a piece");
        assert!(!piece.is_empty() && piece.len() <= CONTENT_CHUNK_BYTES);
        assert!(value["choices"][0]["finish_reason"].is_null());
        text.push_str(piece);
    }
    assert_eq!(text, answer.text);
    for value in values.iter().chain([&finish]) {
        assert_eq!(value["object"], object);
        assert_eq!(value["id"], answer.id.as_str());
        assert_eq!(value["model"], answer.model.as_str());
        assert_eq!(value["created"], answer.created);
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn any_answer_streams_and_reassembles(answer in answer()) {
        check(answer);
    }
}
