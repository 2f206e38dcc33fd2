//! `POST /v1/embeddings` end to end, through each mount, against the mock Salesforce over
//! loopback, driven by `async-openai`: single and batch inputs, floats and base64, refusals,
//! and a 429 the bridge retries.

mod common;

use async_openai::error::OpenAIError;
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EmbeddingInput, EncodingFormat};
use serde_json::json;
use sf_models_bridge::mock::Fault;

use common::{
    chat, post_json, Gateway, Mount, Setup, CHAT_MODEL, EMBEDDINGS_MODEL, EMBEDDINGS_ROUTE,
};

for_each_mount!(
    one_string_is_one_vector,
    a_batch_keeps_its_order,
    base64_holds_the_same_vectors,
    refusals_are_openai_errors,
    a_429_is_retried,
);

/// The dimensions of `text-embedding-ada-002`, which the mock keeps.
const ADA_DIMENSIONS: usize = 1536;

async fn gateway(mount: Mount) -> Gateway {
    Gateway::start_with(mount, Setup::default().sections(EMBEDDINGS_ROUTE)).await
}

fn request(
    input: impl Into<EmbeddingInput>,
) -> async_openai::types::embeddings::CreateEmbeddingRequest {
    CreateEmbeddingRequestArgs::default()
        .model(EMBEDDINGS_MODEL)
        .input(input)
        .build()
        .unwrap()
}

async fn one_string_is_one_vector(mount: Mount) {
    let gateway = gateway(mount).await;
    let response = gateway
        .openai()
        .embeddings()
        .create(request("Every day, once a day, give yourself a present"))
        .await
        .unwrap();
    assert_eq!(response.object, "list");
    assert_eq!(response.model, EMBEDDINGS_MODEL);
    assert_eq!(response.data.len(), 1);
    assert_eq!(response.data[0].index, 0);
    assert_eq!(response.data[0].embedding.len(), ADA_DIMENSIONS);
    assert!(response.usage.prompt_tokens > 0);
    assert_eq!(response.usage.total_tokens, response.usage.prompt_tokens);
    assert_eq!(gateway.counters().embedding_requests, 1);
    let scrape = gateway.scrape().await;
    assert!(
        scrape.contains(&format!(
            r#"sfbridge_requests_total{{caller="anonymous",endpoint="embeddings",model="{EMBEDDINGS_MODEL}",status_class="2xx"}} 1"#
        )),
        "{scrape}"
    );
}

async fn a_batch_keeps_its_order(mount: Mount) {
    let gateway = gateway(mount).await;
    let client = gateway.openai();
    let texts = ["cherry", "apple", "banana"];
    let batch = client
        .embeddings()
        .create(request(texts.map(str::to_owned).to_vec()))
        .await
        .unwrap();
    assert_eq!(batch.data.len(), 3);
    for (position, (item, text)) in batch.data.iter().zip(texts).enumerate() {
        assert_eq!(item.index as usize, position);
        // The mock's vectors are a function of the text: each must be its own input's.
        let single = client.embeddings().create(request(text)).await.unwrap();
        assert_eq!(item.embedding, single.data[0].embedding, "{text}");
    }
}

async fn base64_holds_the_same_vectors(mount: Mount) {
    let gateway = gateway(mount).await;
    let client = gateway.openai();
    let floats = client
        .embeddings()
        .create(request(vec!["a".to_owned(), "b".to_owned()]))
        .await
        .unwrap();
    let mut base64 = request(vec!["a".to_owned(), "b".to_owned()]);
    base64.encoding_format = Some(EncodingFormat::Base64);
    let encoded = client.embeddings().create_base64(base64).await.unwrap();
    assert_eq!(encoded.data.len(), 2);
    for (base64, float) in encoded.data.iter().zip(&floats.data) {
        let decoded: Vec<f32> = base64.embedding.clone().into();
        assert_eq!(decoded, float.embedding);
    }
}

async fn refusals_are_openai_errors(mount: Mount) {
    let gateway = gateway(mount).await;
    let client = gateway.openai();
    let api_error = |error: OpenAIError| match error {
        OpenAIError::ApiError(error) => {
            assert_eq!(error.status_code, 400);
            error.api_error
        }
        other => panic!("not an API error: {other}"),
    };

    let tokens = client
        .embeddings()
        .create(request(vec![1u32, 2, 3]))
        .await
        .unwrap_err();
    let tokens = api_error(tokens);
    assert_eq!(tokens.param.as_deref(), Some("input"));
    assert!(tokens.message.contains("token ids"), "{}", tokens.message);

    let mut with_dimensions = request("x");
    with_dimensions.dimensions = Some(256);
    let dimensions = api_error(
        client
            .embeddings()
            .create(with_dimensions)
            .await
            .unwrap_err(),
    );
    assert_eq!(dimensions.param.as_deref(), Some("dimensions"));
    assert!(
        dimensions
            .message
            .starts_with("route `text-embedding-ada-002` (surface `einstein`)"),
        "{}",
        dimensions.message
    );

    // A chat route on /v1/embeddings, and an embeddings route on chat: 400s naming the route.
    let (status, body) = post_json(
        &gateway,
        "/v1/embeddings",
        &json!({"model": CHAT_MODEL, "input": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "model_not_supported");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("route `gpt-4o-mini` is a model of kind `chat`"),
        "{message}"
    );
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(EMBEDDINGS_MODEL, "x"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("of kind `embeddings`"), "{message}");

    let (status, body) = post_json(
        &gateway,
        "/v1/embeddings",
        &json!({"model": "text-embedding-9", "input": "x"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");

    // None of these reached Salesforce.
    assert_eq!(gateway.counters().embedding_requests, 0);
    assert_eq!(gateway.counters().chat_requests, 0);
}

async fn a_429_is_retried(mount: Mount) {
    let gateway = gateway(mount).await;
    gateway.upstream().inject(
        Fault::Status {
            status: 429,
            retry_after_secs: None,
        },
        1,
    );
    let response = gateway
        .openai()
        .embeddings()
        .create(request("retry me"))
        .await
        .unwrap();
    assert_eq!(response.data.len(), 1);
    assert_eq!(gateway.counters().embedding_requests, 2);
    let scrape = gateway.scrape().await;
    assert!(
        scrape.contains(r#"sfbridge_upstream_retries_total{reason="rate_limited"} 1"#),
        "{scrape}"
    );
}
