//! The bridge end to end, through each mount, against the mock Salesforce over loopback. The
//! OpenAI side is driven by `async-openai` where it can be, so compatibility is checked by code
//! we did not write.

mod common;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, CreateChatCompletionRequestArgs,
};
use async_openai::types::completions::CreateCompletionRequestArgs;
use futures_util::StreamExt;
use serde_json::json;
use sf_models_bridge::mock::Fault;

use common::{
    chat, http, post_json, Gateway, Mount, BEDROCK_MODEL, CALLER_KEY, CHAT_MODEL, ROUTED_MODELS,
};

for_each_mount!(
    chat_completion_with_an_openai_client,
    chat_stream_with_an_openai_client,
    completion_with_an_openai_client,
    completion_stream_is_text_completion_events,
    models_are_the_configured_routes,
    camel_case_usage_is_normalised,
    unsupported_requests_are_refused_with_400,
    unknown_model_is_404_naming_the_configured_models,
    a_401_causes_exactly_one_refresh_and_one_resend,
    concurrent_requests_at_token_expiry_fetch_one_token,
    caller_credentials_never_reach_salesforce,
    the_salesforce_token_never_reaches_the_caller,
    other_paths_are_not_the_bridges,
);

fn messages() -> Vec<ChatCompletionRequestMessage> {
    vec![
        ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from("Be terse.")),
        ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(
            "Cherry pie recipe?",
        )),
    ]
}

async fn chat_completion_with_an_openai_client(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model(CHAT_MODEL)
        .messages(messages())
        .temperature(0.2)
        .build()
        .unwrap();
    let response = gateway.openai().chat().create(request).await.unwrap();
    assert_eq!(response.model, CHAT_MODEL);
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.choices.len(), 1);
    let choice = &response.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Echo: Cherry pie recipe?")
    );
    assert_eq!(
        choice.finish_reason,
        Some(async_openai::types::chat::FinishReason::Stop)
    );
    let usage = response.usage.expect("usage");
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    let sent = gateway.upstream().last_model_request().unwrap();
    assert_eq!(
        sent.path,
        "/einstein/platform/v1/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations"
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{"role": "system", "content": "Be terse."},
                            {"role": "user", "content": "Cherry pie recipe?"}]})
    );
    gateway.stop().await;
}

async fn chat_stream_with_an_openai_client(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model(CHAT_MODEL)
        .messages(messages())
        .stream(true)
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()
        .unwrap();
    let mut stream = gateway
        .openai()
        .chat()
        .create_stream(request)
        .await
        .unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    let mut finish = None;
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        assert_eq!(chunk.model, CHAT_MODEL);
        for choice in &chunk.choices {
            if let Some(content) = &choice.delta.content {
                text.push_str(content);
            }
            if choice.finish_reason.is_some() {
                finish = choice.finish_reason;
            }
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    assert_eq!(text, "Echo: Cherry pie recipe?");
    assert_eq!(finish, Some(async_openai::types::chat::FinishReason::Stop));
    assert!(usage.is_some(), "the usage chunk arrives last");
    assert_eq!(chunks, 4, "role, content, finish and usage chunks");
    gateway.stop().await;
}

async fn completion_with_an_openai_client(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let request = CreateCompletionRequestArgs::default()
        .model("gpt-4o")
        .prompt("Invent 3 fun names for donuts")
        .max_tokens(50_u32)
        .build()
        .unwrap();
    let response = gateway
        .openai()
        .completions()
        .create(request)
        .await
        .unwrap();
    assert_eq!(response.model, "gpt-4o");
    assert_eq!(
        response.choices[0].text,
        "Echo: Invent 3 fun names for donuts"
    );
    let sent = gateway.upstream().last_model_request().unwrap();
    assert!(sent
        .path
        .ends_with("/models/sfdc_ai__DefaultGPT4Omni/generations"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(),
        json!({"prompt": "Invent 3 fun names for donuts"})
    );
    gateway.stop().await;
}

async fn completion_stream_is_text_completion_events(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let response = http()
        .post(gateway.url("/v1/completions"))
        .json(&json!({"model": "gpt-4o", "prompt": "Hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str::<serde_json::Value>(event).unwrap())
        .inspect(|event| assert_eq!(event["object"], "text_completion"))
        .filter_map(|event| event["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Echo: Hi");
    gateway.stop().await;
}

async fn models_are_the_configured_routes(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let list = gateway.openai().models().list().await.unwrap();
    let ids: Vec<&str> = list.data.iter().map(|model| model.id.as_str()).collect();
    assert_eq!(ids, ROUTED_MODELS);
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn camel_case_usage_is_normalised(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(BEDROCK_MODEL, "one two three"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{body}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    assert_eq!(
        usage["prompt_tokens_details"],
        json!({"cached_tokens": 0}),
        "cacheReadInputTokenCount is OpenAI's cached_tokens: {body}"
    );
    assert_eq!(
        body["choices"][0]["finish_reason"], "stop",
        "end_turn maps to stop"
    );
    gateway.stop().await;
}

async fn unsupported_requests_are_refused_with_400(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let user = json!({"role": "user", "content": "x"});
    let cases = [
        (
            json!({"model": CHAT_MODEL, "messages": [user], "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tools",
        ),
        (
            json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            "messages[0].content",
        ),
        (
            json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
            "messages[0].content",
        ),
        (
            json!({"model": CHAT_MODEL, "messages": [user, {"role": "tool", "content": "42", "tool_call_id": "c1"}]}),
            "messages[1].role",
        ),
        (
            json!({"model": CHAT_MODEL, "messages": [user], "n": 2}),
            "n",
        ),
        (json!({"model": CHAT_MODEL, "messages": []}), "messages"),
    ];
    for (body, param) in cases {
        let (status, error) = post_json(&gateway, "/v1/chat/completions", &body).await;
        assert_eq!(status, 400, "{body} → {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["param"], param, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not supported")
                || param == "messages"
        );
    }
    // The OpenAI client raises its usual error for them.
    let request = CreateChatCompletionRequestArgs::default()
        .model(CHAT_MODEL)
        .messages(messages())
        .n(3)
        .build()
        .unwrap();
    match gateway.openai().chat().create(request).await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code, 400);
            assert_eq!(error.api_error.param.as_deref(), Some("n"));
        }
        other => panic!("expected a 400 ApiError, got {other:?}"),
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn unknown_model_is_404_naming_the_configured_models(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-5-turbo-ultra")
        .messages(messages())
        .build()
        .unwrap();
    match gateway.openai().chat().create(request).await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code, 404);
            assert_eq!(error.api_error.code.as_deref(), Some("model_not_found"));
            let message = &error.api_error.message;
            for model in ROUTED_MODELS {
                assert!(message.contains(model), "{message}");
            }
        }
        other => panic!("expected a 404 ApiError, got {other:?}"),
    }
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn a_401_causes_exactly_one_refresh_and_one_resend(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let (status, _) = post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "warm")).await;
    assert_eq!(status, 200);
    let before = gateway.counters();
    gateway.upstream().inject(Fault::Unauthorized, 1);
    let (status, body) =
        post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "again")).await;
    assert_eq!(status, 200, "{body}");
    let after = gateway.counters();
    assert_eq!(
        after.token_requests - before.token_requests,
        1,
        "one refresh"
    );
    assert_eq!(
        after.chat_requests - before.chat_requests,
        2,
        "the 401'd call and one resend"
    );
    gateway.stop().await;
}

async fn concurrent_requests_at_token_expiry_fetch_one_token(mount: Mount) {
    common::callers_at_token_expiry_fetch_one_token(mount, 200).await;
}

async fn caller_credentials_never_reach_salesforce(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let response = http()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(CALLER_KEY)
        .header("x-api-key", CALLER_KEY)
        .header("cookie", "session=caller")
        .json(&chat(CHAT_MODEL, "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = gateway.upstream().last_model_request().unwrap();
    let authorization = sent.headers["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with("Bearer ey"),
        "the Salesforce JWT, not the caller's key"
    );
    for (name, value) in &sent.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !value.contains(CALLER_KEY),
            "{name} carried the caller's key"
        );
        assert_ne!(name, "cookie");
    }
    gateway.stop().await;
}

async fn the_salesforce_token_never_reaches_the_caller(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let mut seen = Vec::new();
    for body in [
        json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": CHAT_MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    ] {
        let response = http()
            .post(gateway.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        seen.push(format!("{:?}", response.headers()));
        seen.push(response.text().await.unwrap());
    }
    for path in ["/ready", "/metrics", "/metrics/performance"] {
        let response = http().get(gateway.url(path)).send().await.unwrap();
        seen.push(format!("{:?}", response.headers()));
        seen.push(response.text().await.unwrap());
    }
    let sent = gateway.upstream().last_model_request().unwrap();
    let token = sent.headers["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert!(token.len() > 20);
    for text in &seen {
        assert!(!text.contains(&token), "the token leaked: {text}");
        assert!(
            !text.contains("mock-client-secret"),
            "the secret leaked: {text}"
        );
    }
    gateway.stop().await;
}

async fn other_paths_are_not_the_bridges(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let response = http().get(gateway.url("/app")).send().await.unwrap();
    match mount {
        // The axum app's own route is reached through the pass-through layer.
        Mount::Axum => {
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "the app's own route");
        }
        // The Pingora gateway has no upstream configured: an OpenAI-format 404.
        Mount::Pingora => {
            assert_eq!(response.status(), 404);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "invalid_request_error");
        }
    }
    let response = http().get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    gateway.stop().await;
}
