//! Bytes → `ChatCompletionRequest` → `chat-generations` body: never panics, and a translated
//! request always serialises to a body the Models API accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::openai::ChatCompletionRequest;
use sf_models_bridge::translate;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ChatCompletionRequest<'_>>(data) else {
        return;
    };
    match translate::chat_request(&request) {
        Ok(upstream) => {
            assert!(!upstream.messages.is_empty());
            for message in &upstream.messages {
                assert!(matches!(message.role, "system" | "user" | "assistant"));
            }
            let body = serde_json::to_vec(&upstream).expect("a request serialises");
            serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
        }
        Err(error) => {
            // Both feed the caller's error envelope.
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
});
