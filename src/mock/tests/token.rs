use std::time::{Duration, Instant};

use super::*;
use crate::mock::{MockOptions, TokenFault};

#[tokio::test]
async fn issues_documented_jwt_tokens() {
    let mock = MockSalesforce::start().await.unwrap();
    let reply = fetch_token(&mock).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    let fixture = fixture("token.response.json");
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&body), keys(&fixture));
    assert!(body.get("expires_in").is_none());
    assert_eq!(body["token_type"], "Bearer");
    let issued_at: u128 = body["issued_at"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(issued_at <= now && now - issued_at < 60_000);

    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(access_token.split('.').count(), 3);
    let claims = claims(access_token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1800
    );
    assert_eq!(claims["client_id"], MOCK_CLIENT_ID);
    assert_ne!(token(&mock).await, access_token, "every token is unique");
    assert_eq!(mock.state().counters().tokens_issued, 2);
}

#[tokio::test]
async fn the_lifetime_is_configurable_and_enforced() {
    let options = MockOptions {
        token_lifetime: Duration::from_millis(300),
        ..MockOptions::default()
    };
    let mock = MockSalesforce::start_with(options).await.unwrap();
    let token = token(&mock).await;
    assert_eq!(chat(&mock, &token, "hi").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = chat(&mock, &token, "hi").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json(), fixture("error.401.json"));
}

#[tokio::test]
async fn bad_credentials_and_grants_are_refused() {
    let mock = MockSalesforce::start().await.unwrap();
    let wrong_secret = [
        ("grant_type", "client_credentials"),
        ("client_id", MOCK_CLIENT_ID),
        ("client_secret", "nope"),
    ];
    let reply = token_request(&mock, &wrong_secret).await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json(), fixture("token.error.json"));

    let password = [
        ("grant_type", "password"),
        ("client_id", MOCK_CLIENT_ID),
        ("client_secret", MOCK_CLIENT_SECRET),
    ];
    let reply = token_request(&mock, &password).await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "unsupported_grant_type");

    // A JSON body is not a form: Salesforce finds no grant_type in it.
    let json = reqwest::Client::new()
        .post(mock.token_url())
        .body("{}")
        .header("content-type", "application/json");
    let reply = super::reply(json.send().await.unwrap()).await;
    assert_eq!(reply.json()["error"], "unsupported_grant_type");

    let counters = mock.state().counters();
    assert_eq!((counters.token_requests, counters.tokens_issued), (3, 0));
}

#[tokio::test]
async fn token_faults() {
    let mock = MockSalesforce::start().await.unwrap();
    let state = mock.state();

    for (status, error) in [
        (400, "invalid_client"),
        (401, "invalid_client"),
        (500, "server_error"),
    ] {
        state.inject_token_fault(TokenFault::Status(status), 1);
        let reply = fetch_token(&mock).await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.json()["error"], error);
    }

    state.inject_token_fault(TokenFault::Slow(Duration::from_millis(200)), 1);
    let started = Instant::now();
    assert_eq!(fetch_token(&mock).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));

    state.inject_token_fault(TokenFault::Down, 1);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", MOCK_CLIENT_ID),
        ("client_secret", MOCK_CLIENT_SECRET),
    ];
    assert!(token_request(&mock, &form).await.is_err());

    state.inject_token_fault(TokenFault::NoAccessToken, 1);
    let reply = fetch_token(&mock).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json().get("access_token").is_none());
    assert_eq!(reply.json()["token_type"], "Bearer");

    state.inject_token_fault(TokenFault::NotJwt, 1);
    let reply = fetch_token(&mock).await;
    assert!(reply.json().get("token_format").is_none());
    let opaque = reply_token(reply);
    assert!(!opaque.contains('.'), "not a JWT: {opaque}");
    assert_eq!(
        chat(&mock, &opaque, "hi").await.status,
        StatusCode::OK,
        "opaque tokens still work"
    );

    let counters = state.counters();
    assert_eq!(counters.token_requests, 7);
    // The slow one and the opaque one.
    assert_eq!(counters.tokens_issued, 2);
}

fn reply_token(reply: Reply) -> String {
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn revoked_tokens_get_401_and_new_ones_work() {
    let mock = MockSalesforce::start().await.unwrap();
    let old = token(&mock).await;
    assert_eq!(chat(&mock, &old, "hi").await.status, StatusCode::OK);
    mock.state().revoke_tokens();
    let refused = chat(&mock, &old, "hi").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json(), fixture("error.401.json"));
    let new = token(&mock).await;
    assert_eq!(chat(&mock, &new, "hi").await.status, StatusCode::OK);
    assert_eq!(
        chat(&mock, "made-up", "hi").await.status,
        StatusCode::UNAUTHORIZED
    );
}
