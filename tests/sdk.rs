//! The official OpenAI SDKs, Python's (`openai` on PyPI) and Node's (`openai` on npm), against the
//! bridge through each mount and the mock Salesforce. Each scenario runs as a subprocess,
//! `tests/sdk/python/openai_client.py` or `tests/sdk/node/openai_client.mjs`, which drives the SDK
//! and prints one JSON line of what it observed; every assertion is here.
//!
//! `make sdk-setup` installs the SDKs at their pinned versions (`target/sdk-venv`,
//! `tests/sdk/node/node_modules`); without them these tests fail and say so. The SDKs' own retries
//! are off, so the retries seen are the bridge's. Every gateway here requires a caller key, so
//! every answer also shows that the SDK presents its key in a way the bridge accepts.

mod common;

use serde_json::{json, Value};
use sf_models_bridge::mock::Fault;

use common::sdk::{answer, observe, Script, Sdk, OPENAI_NODE, OPENAI_PY};
use common::{
    Gateway, Mount, Setup, CALLER_KEY, CHAT_MODEL, EMBEDDINGS_MODEL, EMBEDDINGS_ROUTE,
    ROUTED_MODELS,
};

for_each_mount!(
    chat_completion,
    chat_stream,
    chat_stream_with_usage,
    legacy_completion,
    models_list,
    unknown_model_is_not_found,
    wrong_key_is_an_authentication_error,
    a_429_is_retried_by_the_bridge,
    embeddings_default_to_base64,
);

/// The OpenAI SDKs' scripts.
const CLIENTS: [Script; 2] = [OPENAI_PY, OPENAI_NODE];

// What the scripts send (the same in both). The mock answers "Echo: " and the last user message,
// and counts tokens as whitespace-separated words.
const USER: &str = "Cherry pie recipe?";
const PROMPT: &str = "Invent 3 fun names for donuts";
const COMPLETION_MODEL: &str = "gpt-4o";
/// "Be terse." (2) + "Cherry pie recipe?" (3); "Echo: Cherry pie recipe?" (4).
const CHAT_USAGE: (u64, u64) = (5, 4);
/// "Invent 3 fun names for donuts" (6); "Echo: Invent 3 fun names for donuts" (7).
const COMPLETION_USAGE: (u64, u64) = (6, 7);

/// A gateway that requires [`CALLER_KEY`].
async fn start(mount: Mount) -> Gateway {
    let setup = Setup::default().sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"));
    Gateway::start_with(mount, setup).await
}

fn usage((prompt, completion): (u64, u64)) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": 0,
    })
}

/// The body the bridge sent to the mock for the last model call.
fn upstream_body(gateway: &Gateway) -> Value {
    let sent = gateway
        .upstream()
        .last_model_request()
        .expect("a model call reached the mock");
    serde_json::from_slice(&sent.body).expect("the bridge sent JSON")
}

fn chat_upstream_body() -> Value {
    json!({"messages": [{"role": "system", "content": "Be terse."},
                        {"role": "user", "content": USER}]})
}

async fn chat_completion(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        gateway.upstream().reset();
        let seen = answer(sdk, &gateway, &["chat"]).await;
        assert_eq!(seen["object"], "chat.completion", "{sdk}: {seen}");
        assert_eq!(seen["model"], CHAT_MODEL, "{sdk}: {seen}");
        assert_eq!(seen["choices"], 1, "{sdk}: {seen}");
        assert_eq!(seen["role"], "assistant", "{sdk}: {seen}");
        assert_eq!(seen["text"], format!("Echo: {USER}"), "{sdk}: {seen}");
        assert_eq!(seen["finish_reason"], "stop", "{sdk}: {seen}");
        assert_eq!(seen["usage"], usage(CHAT_USAGE), "{sdk}: {seen}");
        assert_eq!(seen["ignored_params"], "temperature", "{sdk}: {seen}");
        assert!(
            seen["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{sdk}: the SDK reads the bridge's x-request-id: {seen}"
        );
        // What the SDK sent reached Salesforce translated, and nothing more.
        assert_eq!(upstream_body(&gateway), chat_upstream_body(), "{sdk}");
        assert_eq!(gateway.counters().chat_requests, 1, "{sdk}");
    }
    gateway.stop().await;
}

/// The streamed chunks every SDK must assemble: one id, one model, the role, the text.
fn assert_stream(sdk: Script, seen: &Value) {
    assert_eq!(seen["text"], format!("Echo: {USER}"), "{sdk}: {seen}");
    assert_eq!(
        seen["objects"],
        json!(["chat.completion.chunk"]),
        "{sdk}: {seen}"
    );
    assert_eq!(seen["models"], json!([CHAT_MODEL]), "{sdk}: {seen}");
    assert_eq!(seen["ids"], 1, "{sdk}: one id for all chunks: {seen}");
    assert_eq!(seen["role"], "assistant", "{sdk}: {seen}");
    assert_eq!(seen["finish_reason"], "stop", "{sdk}: {seen}");
}

async fn chat_stream(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        gateway.upstream().reset();
        let seen = answer(sdk, &gateway, &["chat_stream"]).await;
        assert_stream(sdk, &seen);
        assert_eq!(seen["chunks"], 3, "{sdk}: role, content, finish: {seen}");
        assert_eq!(seen["last_chunk_choices"], 1, "{sdk}: {seen}");
        assert_eq!(seen["chunks_with_usage"], 0, "{sdk}: not asked for: {seen}");
        assert_eq!(upstream_body(&gateway), chat_upstream_body(), "{sdk}");
        assert_eq!(gateway.counters().chat_requests, 1, "{sdk}");
    }
    gateway.stop().await;
}

async fn chat_stream_with_usage(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        gateway.upstream().reset();
        let seen = answer(sdk, &gateway, &["chat_stream_usage"]).await;
        assert_stream(sdk, &seen);
        assert_eq!(
            seen["chunks"], 4,
            "{sdk}: role, content, finish, usage: {seen}"
        );
        // OpenAI's shape: the usage comes alone, in a last chunk with no choices.
        assert_eq!(seen["last_chunk_choices"], 0, "{sdk}: {seen}");
        assert_eq!(seen["last_chunk_usage"], usage(CHAT_USAGE), "{sdk}: {seen}");
        assert_eq!(seen["chunks_with_usage"], 1, "{sdk}: {seen}");
        assert_eq!(upstream_body(&gateway), chat_upstream_body(), "{sdk}");
    }
    gateway.stop().await;
}

async fn legacy_completion(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        gateway.upstream().reset();
        let seen = answer(sdk, &gateway, &["completion"]).await;
        assert_eq!(seen["object"], "text_completion", "{sdk}: {seen}");
        assert_eq!(seen["model"], COMPLETION_MODEL, "{sdk}: {seen}");
        assert_eq!(seen["choices"], 1, "{sdk}: {seen}");
        assert_eq!(seen["text"], format!("Echo: {PROMPT}"), "{sdk}: {seen}");
        assert_eq!(seen["finish_reason"], "stop", "{sdk}: {seen}");
        assert_eq!(seen["usage"], usage(COMPLETION_USAGE), "{sdk}: {seen}");
        let sent = gateway.upstream().last_model_request().expect("a call");
        assert!(
            sent.path
                .ends_with("/models/sfdc_ai__DefaultGPT4Omni/generations"),
            "{sdk}: {}",
            sent.path
        );
        assert_eq!(upstream_body(&gateway), json!({"prompt": PROMPT}), "{sdk}");
        assert_eq!(gateway.counters().generation_requests, 1, "{sdk}");
    }
    gateway.stop().await;
}

async fn models_list(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        let seen = answer(sdk, &gateway, &["models"]).await;
        assert_eq!(seen["ids"], json!(ROUTED_MODELS), "{sdk}: {seen}");
        assert_eq!(seen["objects"], json!(["model"]), "{sdk}: {seen}");
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn unknown_model_is_not_found(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        let seen = observe(sdk, &gateway, CALLER_KEY, &["unknown_model"]).await;
        assert_eq!(seen["error"], "NotFoundError", "{sdk}: {seen}");
        assert_eq!(seen["status"], 404, "{sdk}: {seen}");
        assert_eq!(seen["type"], "invalid_request_error", "{sdk}: {seen}");
        assert_eq!(seen["code"], "model_not_found", "{sdk}: {seen}");
        assert_eq!(seen["param"], "model", "{sdk}: {seen}");
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn wrong_key_is_an_authentication_error(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        let seen = observe(sdk, &gateway, "sk-wrong-key", &["chat"]).await;
        assert_eq!(seen["error"], "AuthenticationError", "{sdk}: {seen}");
        assert_eq!(seen["status"], 401, "{sdk}: {seen}");
        assert_eq!(seen["type"], "authentication_error", "{sdk}: {seen}");
        assert_eq!(seen["code"], "invalid_api_key", "{sdk}: {seen}");
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn a_429_is_retried_by_the_bridge(mount: Mount) {
    let gateway = start(mount).await;
    for sdk in CLIENTS {
        gateway.upstream().reset();
        gateway.upstream().inject(
            Fault::Status {
                status: 429,
                retry_after_secs: None,
            },
            1,
        );
        let seen = answer(sdk, &gateway, &["chat"]).await;
        assert_eq!(seen["text"], format!("Echo: {USER}"), "{sdk}: {seen}");
        assert_eq!(seen["finish_reason"], "stop", "{sdk}: {seen}");
        assert_eq!(
            gateway.counters().chat_requests,
            2,
            "{sdk}: the 429, then the answer"
        );
    }
    gateway.stop().await;
}

/// Both SDKs ask for base64 when the caller names no encoding, and decode it themselves: the
/// default call must work, and give the vectors the float call gives.
async fn embeddings_default_to_base64(mount: Mount) {
    let setup = Setup::default()
        .sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"))
        .sections(EMBEDDINGS_ROUTE);
    let gateway = Gateway::start_with(mount, setup).await;
    for sdk in CLIENTS {
        let default = answer(sdk, &gateway, &["embeddings"]).await;
        let float = answer(sdk, &gateway, &["embeddings_float"]).await;
        for seen in [&default, &float] {
            assert_eq!(seen["object"], "list", "{sdk}: {seen}");
            assert_eq!(seen["model"], EMBEDDINGS_MODEL, "{sdk}: {seen}");
            assert_eq!(seen["indexes"], json!([0, 1]), "{sdk}: {seen}");
            assert_eq!(seen["dimensions"], json!([1536, 1536]), "{sdk}: {seen}");
            let prompt_tokens = seen["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
            assert!(prompt_tokens > 0, "{sdk}: {seen}");
            assert_eq!(
                seen["usage"]["total_tokens"], prompt_tokens,
                "{sdk}: {seen}"
            );
        }
        if sdk.sdk == Sdk::Python {
            assert_eq!(default["wire_encoding"], "base64", "{default}");
            assert_eq!(float["wire_encoding"], "float", "{float}");
        }
        // The same vectors either way (to f32 precision: the float call's JSON numbers are the
        // shortest decimal of each f32, the base64 call's are the f32s themselves).
        let heads = |seen: &Value| -> Vec<f64> {
            seen["heads"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|head| head.as_array().into_iter().flatten())
                .filter_map(Value::as_f64)
                .collect()
        };
        let (decoded, floats) = (heads(&default), heads(&float));
        assert_eq!(decoded.len(), 16, "{sdk}: {default}");
        assert_eq!(floats.len(), 16, "{sdk}: {float}");
        for (a, b) in decoded.iter().zip(&floats) {
            assert!(
                (a - b).abs() <= 1e-7 * a.abs().max(1e-3),
                "{sdk}: {a} vs {b}"
            );
        }
        // The two inputs got different vectors, in their order.
        assert_ne!(decoded[..8], decoded[8..], "{sdk}: {default}");
    }
    assert_eq!(gateway.counters().embedding_requests, 4);
    gateway.stop().await;
}
