//! Bytes → `ModelsResponse` → the answer for both operations → both OpenAI bodies: never
//! panics, and the rendered bodies carry the extracted text unaltered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::core::Delivery;
use sf_models_bridge::front::{self, AnswerCtx};
use sf_models_bridge::surface::einstein::{self, Operation};

const CTX: AnswerCtx<'static> = AnswerCtx {
    fallback_id: "chatcmpl-fuzz",
    created: 0,
    model: "gpt-4o-mini",
    delivery: Delivery::WHOLE,
};

fuzz_target!(|data: &[u8]| {
    let Ok(response) = einstein::parse(data) else {
        return;
    };
    for operation in [Operation::Chat, Operation::Text] {
        let Ok(answer) = einstein::extract(&response, operation) else {
            continue;
        };
        let generation = einstein::generation(answer.clone());
        let chat = front::chat::completion_json(&generation, &CTX).expect("renders");
        let chat: serde_json::Value = serde_json::from_slice(&chat).expect("valid JSON");
        assert_eq!(chat["choices"][0]["message"]["content"], answer.text);
        let text = front::completions::completion_json(&generation, &CTX).expect("renders");
        let text: serde_json::Value = serde_json::from_slice(&text).expect("valid JSON");
        assert_eq!(text["choices"][0]["text"], answer.text);
    }
});
