//! Bytes → `ChatCompletionRequest` → the neutral request → `chat-generations` body: never
//! panics, and a translated request always serialises to a body the Models API accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::core::Task;
use sf_models_bridge::front;
use sf_models_bridge::openai::ChatCompletionRequest;
use sf_models_bridge::surface::einstein;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ChatCompletionRequest<'_>>(data) else {
        return;
    };
    let translated = front::chat::to_core(request).and_then(|request| {
        let Task::Chat(chat) = &request.task else {
            unreachable!("the chat front makes chat tasks")
        };
        einstein::chat_body(chat).map(|body| serde_json::to_vec(&body).expect("serialises"))
    });
    match translated {
        Ok(body) => {
            let body: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            let messages = body["messages"].as_array().expect("messages");
            assert!(!messages.is_empty());
            for message in messages {
                assert!(matches!(
                    message["role"].as_str(),
                    Some("system" | "user" | "assistant")
                ));
            }
        }
        Err(error) => {
            // Both feed the caller's error envelope.
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
});
