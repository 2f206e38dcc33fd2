//! The mock over real loopback, driven by reqwest as the bridge will drive it.

mod admin;
mod bedrock;
mod faults;
mod models;
mod responses;
mod streams;
mod token;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::{MockSalesforce, MOCK_CLIENT_ID, MOCK_CLIENT_SECRET};

const CHAT_MODEL: &str = "sfdc_ai__DefaultGPT4OmniMini";
const BEDROCK_MODEL: &str = "sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet";
const EMBEDDING_MODEL: &str = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002";
const GPT_MODEL: &str = "sfdc_ai__DefaultGPT54";
const CLAUDE_MODEL: &str = "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A finished exchange.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The answer text of a documented chat body.
    fn chat_content(&self) -> String {
        let json = self.json();
        json.pointer("/generationDetails/generations/0/content")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

async fn token_request(
    mock: &MockSalesforce,
    form: &[(&str, &str)],
) -> Result<Reply, reqwest::Error> {
    let response = reqwest::Client::new()
        .post(mock.token_url())
        .form(form)
        .send()
        .await?;
    Ok(reply(response).await)
}

async fn fetch_token(mock: &MockSalesforce) -> Reply {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", MOCK_CLIENT_ID),
        ("client_secret", MOCK_CLIENT_SECRET),
    ];
    token_request(mock, &form).await.unwrap()
}

async fn token(mock: &MockSalesforce) -> String {
    let reply = fetch_token(mock).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The claims of a JWT.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A model call with every header the real API wants; `headers` replace or remove (empty value) them.
async fn call_with(
    mock: &MockSalesforce,
    model: &str,
    operation: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Result<Reply, reqwest::Error> {
    let url = format!("{}/models/{model}/{operation}", mock.api_base());
    Ok(reply(request_with(url, token, headers).body(body).send().await?).await)
}

/// A POST to `url` with every header the real API wants; `headers` replace or remove (empty value) them.
fn request_with(url: String, token: &str, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let mut all = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json;charset=utf-8".to_owned()),
        ("x-sfdc-app-context", "EinsteinGPT".to_owned()),
        (
            "x-client-feature-id",
            "ai-platform-models-connected-app".to_owned(),
        ),
    ];
    for (name, value) in headers {
        all.retain(|(existing, _)| existing != name);
        if !value.is_empty() {
            all.push((name, (*value).to_owned()));
        }
    }
    let mut request = reqwest::Client::new().post(url);
    for (name, value) in all {
        request = request.header(name, value);
    }
    request
}

/// A call to a native surface: `path` is under `/ai/gpt/v1`.
fn native_request(
    mock: &MockSalesforce,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::RequestBuilder {
    let url = format!("{}{path}", mock.gpt_api_base());
    request_with(url, token, headers).body(body.to_string())
}

async fn native(mock: &MockSalesforce, path: &str, token: &str, body: &Value) -> Reply {
    let request = native_request(mock, path, token, &[], body);
    reply(request.send().await.unwrap()).await
}

/// A streamed answer as the network delivered it.
struct Chunks {
    status: StatusCode,
    headers: HeaderMap,
    /// Each piece of the body as it was read, with when it arrived after the headers.
    chunks: Vec<(Duration, Bytes)>,
}

impl Chunks {
    fn body(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, chunk)| chunk.to_vec())
            .collect()
    }
}

/// Reads `response` to its end, piece by piece.
async fn chunks(mut response: reqwest::Response) -> Chunks {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    let started = Instant::now();
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push((started.elapsed(), chunk));
    }
    Chunks {
        status,
        headers,
        chunks,
    }
}

/// Waits until the mock has counted `expected` abandoned model calls.
async fn abandoned(mock: &MockSalesforce, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.state().counters().abandoned_model_calls < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mock.state().counters().abandoned_model_calls, expected);
}

async fn call(
    mock: &MockSalesforce,
    model: &str,
    operation: &str,
    token: &str,
    body: &Value,
) -> Reply {
    call_with(mock, model, operation, token, &[], body.to_string())
        .await
        .unwrap()
}

async fn chat(mock: &MockSalesforce, token: &str, text: &str) -> Reply {
    let body = serde_json::json!({"messages": [{"role": "user", "content": text}]});
    call(mock, CHAT_MODEL, "chat-generations", token, &body).await
}
