//! Bytes → `CompletionRequest` → `generations` body: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::openai::CompletionRequest;
use sf_models_bridge::translate;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<CompletionRequest<'_>>(data) else {
        return;
    };
    match translate::completion_request(&request) {
        Ok(upstream) => {
            let body = serde_json::to_vec(&upstream).expect("a request serialises");
            serde_json::from_slice::<serde_json::Value>(&body).expect("valid JSON");
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
});
