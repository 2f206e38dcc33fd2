//! Bytes → `ChatCompletionRequest` → the neutral request → the `responses` and `bedrock` bodies:
//! never panics, a translated request is JSON of the surface's shape, and a refusal names its
//! parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::core::Task;
use sf_models_bridge::front;
use sf_models_bridge::openai::ChatCompletionRequest;
use sf_models_bridge::surface::{bedrock, responses};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ChatCompletionRequest<'_>>(data) else {
        return;
    };
    let request = match front::chat::to_core(request) {
        Ok(request) => request,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let Task::Chat(chat) = &request.task else {
        unreachable!("the chat front makes chat tasks")
    };
    match responses::chat_body("sfdc_ai__DefaultGPT5", chat, true)
        .map(|body| serde_json::to_vec(&body).expect("serialises"))
    {
        Ok(body) => {
            let body: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(body["model"], "sfdc_ai__DefaultGPT5");
            assert!(body["input"].is_array());
            for tool in body["tools"].as_array().into_iter().flatten() {
                assert_eq!(tool["type"], "function");
                assert!(tool.get("function").is_none(), "tools are flattened");
            }
        }
        Err(error) => assert!(!error.param().is_empty()),
    }
    match bedrock::chat_body_json(chat, 4096) {
        Ok(body) => {
            let body: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
            assert!(body.get("model").is_none() && body.get("stream").is_none());
            assert!(body["max_tokens"].as_u64().is_some_and(|n| n > 0));
            let messages = body["messages"].as_array().expect("messages");
            // Anthropic needs alternating turns.
            for pair in messages.windows(2) {
                assert_ne!(pair[0]["role"], pair[1]["role"]);
            }
        }
        Err(error) => assert!(!error.param().is_empty()),
    }
});
