use serde_json::json;

use super::*;
use crate::mock::{MockOptions, ResponseShape};

/// Every key of `fixture`, at every depth, is in `actual` (arrays: their first element).
pub(super) fn assert_same_shape(actual: &Value, fixture: &Value, path: &str) {
    match (actual, fixture) {
        (Value::Object(actual), Value::Object(fixture)) => {
            for (key, expected) in fixture {
                let found = actual
                    .get(key)
                    .unwrap_or_else(|| panic!("missing {path}.{key}"));
                assert_same_shape(found, expected, &format!("{path}.{key}"));
            }
        }
        (Value::Array(actual), Value::Array(fixture)) => {
            if let (Some(actual), Some(fixture)) = (actual.first(), fixture.first()) {
                assert_same_shape(actual, fixture, &format!("{path}[0]"));
            }
        }
        (Value::Number(_), Value::Number(_)) => {}
        (actual, fixture) => assert_eq!(
            std::mem::discriminant(actual),
            std::mem::discriminant(fixture),
            "{path}: {actual} vs {fixture}"
        ),
    }
}

#[tokio::test]
async fn chat_answers_in_the_documented_shape() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let request = fixture("chat-generations.request.json");
    let reply = call(&mock, CHAT_MODEL, "chat-generations", &token, &request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(
        &reply.json(),
        &fixture("chat-generations.response.openai.json"),
        "",
    );
    assert_eq!(
        reply.chat_content(),
        "Echo: Can you give me a recipe for cherry pie?"
    );
    let usage = &reply.json()["generationDetails"]["parameters"]["usage"];
    assert_eq!(usage["prompt_tokens"], 12);
    assert_eq!(usage["completion_tokens"], 10);
    assert_eq!(usage["total_tokens"], 22);

    let first_id = reply.headers["x-request-id"].clone();
    let second = chat(&mock, &token, "again").await;
    assert_ne!(second.headers["x-request-id"], first_id);
    assert_eq!(second.chat_content(), "Echo: again");
}

#[tokio::test]
async fn bedrock_models_answer_in_bedrock_style() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let request = fixture("chat-generations.request.json");
    let reply = call(&mock, BEDROCK_MODEL, "chat-generations", &token, &request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(
        &reply.json(),
        &fixture("chat-generations.response.bedrock.json"),
        "",
    );
    assert!(reply
        .json()
        .pointer("/generationDetails/parameters/usage/prompt_tokens")
        .is_none());
}

#[tokio::test]
async fn text_and_embeddings_answer_in_the_documented_shapes() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let reply = call(
        &mock,
        CHAT_MODEL,
        "generations",
        &token,
        &fixture("generations.request.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.json(), &fixture("generations.response.json"), "");
    assert_eq!(
        reply.json()["generation"]["generatedText"],
        "Echo: Invent 3 fun names for donuts"
    );

    let reply = call(
        &mock,
        EMBEDDING_MODEL,
        "embeddings",
        &token,
        &fixture("embeddings.request.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.json(), &fixture("embeddings.response.json"), "");
    assert_eq!(reply.json()["parameters"]["usage"]["prompt_tokens"], 9);
}

#[tokio::test]
async fn content_arrays_are_refused_like_the_real_api() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let body = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
    let reply = call(&mock, CHAT_MODEL, "chat-generations", &token, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json(), fixture("error.400.json"));
    assert!(reply.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn requests_are_checked_like_the_real_api() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let send =
        |model: &'static str, headers: &'static [(&'static str, &'static str)], body: String| {
            let (mock, token) = (&mock, &token);
            async move {
                call_with(mock, model, "chat-generations", token, headers, body)
                    .await
                    .unwrap()
            }
        };

    let reply = send(CHAT_MODEL, &[("x-sfdc-app-context", "")], body.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errorCode"], "BAD_ARGUMENT");
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("x-sfdc-app-context"));
    let reply = send(
        CHAT_MODEL,
        &[("x-client-feature-id", "other")],
        body.clone(),
    )
    .await;
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("x-client-feature-id"));

    let reply = send(CHAT_MODEL, &[("authorization", "")], body.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), fixture("error.401.json"));

    let reply = send("sfdc_ai__DefaultNoSuchModel", &[], body.clone()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), fixture("error.404.json"));
    assert_eq!(
        send("custom_my_model", &[], body.clone()).await.status,
        StatusCode::OK
    );

    let reply = send(
        CHAT_MODEL,
        &[("content-type", "multipart/form-data; boundary=x")],
        body.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        send(
            CHAT_MODEL,
            &[("content-type", "application/json")],
            body.clone()
        )
        .await
        .status,
        StatusCode::OK
    );

    let reply = send(CHAT_MODEL, &[], "{not json".to_owned()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = send(CHAT_MODEL, &[], json!({"message": []}).to_string()).await;
    assert_eq!(reply.json()["errorCode"], "REQUIRED_FIELD_MISSING");

    // Every call above reached a model endpoint and is counted, whatever its answer.
    assert_eq!(mock.state().counters().chat_requests, 9);
}

#[tokio::test]
async fn feedback_is_accepted_from_authorized_callers() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    let url = format!("{}/feedback", mock.api_base());
    let send = |token: &str, body: &'static str| {
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("x-sfdc-app-context", "EinsteinGPT")
            .header("x-client-feature-id", "ai-platform-models-connected-app")
            .body(body)
            .send()
    };
    let accepted = send(&token, r#"{"id":"gen-1","feedback":"GOOD"}"#)
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(accepted.headers().contains_key("x-request-id"));
    let refused = send("not-a-token", "{}").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let malformed = send(&token, "[1,").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_error_bodies() {
    let mock = MockSalesforce::start().await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/models/{CHAT_MODEL}/feedback", mock.api_base());
    let reply = reply(client.post(url).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), fixture("error.404.json"));
    let url = format!("http://{}/nowhere", mock.addr());
    assert_eq!(
        super::reply(client.get(url).send().await.unwrap())
            .await
            .json(),
        fixture("error.404.json")
    );
    let url = format!("{}/models/{CHAT_MODEL}/chat-generations", mock.api_base());
    let reply = super::reply(client.get(url).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(mock.state().counters().model_requests(), 0);
}

#[tokio::test]
async fn the_last_request_is_recorded() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    assert!(mock.state().last_model_request().is_none());
    chat(&mock, &token, "remember me").await;
    let recorded = mock.state().last_model_request().unwrap();
    assert_eq!(recorded.method, http::Method::POST);
    assert_eq!(
        recorded.path,
        format!("/einstein/platform/v1/models/{CHAT_MODEL}/chat-generations")
    );
    assert_eq!(recorded.headers["x-sfdc-app-context"], "EinsteinGPT");
    let body: Value = serde_json::from_slice(&recorded.body).unwrap();
    assert_eq!(body["messages"][0]["content"], "remember me");
}

#[tokio::test]
async fn shapes_change_successful_answers() {
    let mock = MockSalesforce::start().await.unwrap();
    let token = token(&mock).await;
    mock.state().set_shape(ResponseShape::OpenAiChoices);
    let reply = chat(&mock, &token, "hi").await;
    assert_eq!(
        reply.json().pointer("/choices/0/message/content"),
        Some(&json!("Echo: hi"))
    );
    mock.state().set_shape(ResponseShape::NoText);
    let reply = chat(&mock, &token, "hi").await;
    assert!(reply
        .json()
        .pointer("/generationDetails/generations/0/content")
        .is_none());
    mock.state().reset();
    assert_eq!(chat(&mock, &token, "hi").await.chat_content(), "Echo: hi");
}

#[tokio::test]
async fn fast_mode_skips_checks_and_answers_canned_bodies() {
    let options = MockOptions {
        fast: true,
        answer_bytes: 512,
        ..MockOptions::default()
    };
    let mock = MockSalesforce::start_with(options).await.unwrap();
    let reply = call_with(
        &mock,
        "anything",
        "chat-generations",
        "no-token",
        &[("x-sfdc-app-context", "")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.chat_content().len(), 512);
    assert!(reply.headers.contains_key("x-request-id"));
    let reply = call_with(&mock, "anything", "generations", "", &[], "")
        .await
        .unwrap();
    assert_eq!(
        reply.json()["generation"]["generatedText"]
            .as_str()
            .map(str::len),
        Some(512)
    );
    assert_eq!(mock.state().counters().model_requests(), 2);
    assert!(mock.state().last_model_request().is_none());
}
