//! Bytes → `CompletionRequest` → `generations` body: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::core::Task;
use sf_models_bridge::front;
use sf_models_bridge::openai::CompletionRequest;
use sf_models_bridge::surface::einstein;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<CompletionRequest<'_>>(data) else {
        return;
    };
    let translated = front::completions::to_core(request).and_then(|request| {
        let Task::Text(text) = &request.task else {
            unreachable!("the completions front makes text tasks")
        };
        einstein::text_body(text).map(|body| serde_json::to_vec(&body).expect("serialises"))
    });
    match translated {
        Ok(body) => {
            serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
});
