//! Redirects are not followed: a 307 from the token endpoint or the Models API must not re-send
//! the client secret or the bearer token to the host its `Location` names. Plain loopback
//! servers play the redirecting endpoint and the host it points to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use sf_models_bridge::mock::{MockSalesforce, MOCK_CLIENT_ID, MOCK_CLIENT_SECRET};
use sf_models_bridge::{Config, SalesforceLayer, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};

const SECRET: &str = "redirect-test-secret";

/// Reads one whole HTTP/1.1 request (head and `Content-Length` body).
async fn read_request(socket: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let Ok(n) = socket.read(&mut buf).await else {
            return request;
        };
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return request;
            }
        }
        if n == 0 {
            return request;
        }
    }
}

/// Answers every request with a 307 to `location`.
async fn redirector(location: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let response = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}

/// A listener that records whatever reaches it: nothing should.
async fn trap() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let request = read_request(&mut socket).await;
            log.lock().unwrap().extend_from_slice(b"<connection>");
            log.lock().unwrap().extend_from_slice(&request);
        }
    });
    (base, received)
}

fn conf(api_base: &str, token_url: &str, client_id: &str, secret: &str) -> Config {
    let text = format!(
        r#"
        [salesforce]
        api_base = "{api_base}/einstein/platform/v1"
        token_url = "{token_url}"
        client_id = "{client_id}"
        client_secret = "{secret}"
        timeout_secs = 5

        [retry]
        base_delay_ms = 1
        max_delay_ms = 10

        [[routes]]
        model = "gpt-4o-mini"
        salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
        "#
    );
    Config::from_toml_with_env(&text, |_| None).unwrap()
}

/// One chat completion through the bridge as the production client builds it: status and body.
async fn ask(config: &Config) -> (u16, Value) {
    let upstream = Upstream::new(&config.salesforce).unwrap();
    let bridge = SalesforceLayer::new(config).unwrap().layer(upstream);
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = bridge.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Gives a wrongly followed redirect time to arrive before the trap is checked.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_redirecting_token_endpoint_never_gets_the_secret_sent_on() {
    let (trap_base, received) = trap().await;
    let token_url = redirector(format!("{trap_base}/services/oauth2/token")).await;
    let config = conf(
        "http://127.0.0.1:9",
        &format!("{token_url}/services/oauth2/token"),
        "client",
        SECRET,
    );

    let (status, body) = ask(&config).await;
    settle().await;

    assert!(
        received.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "service_unavailable");
    assert_eq!(body["error"]["code"], "upstream_auth_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("answered 307 with a redirect, which is not followed"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}

#[tokio::test]
async fn a_redirecting_models_api_never_gets_the_token_sent_on() {
    let mock = MockSalesforce::start().await.unwrap();
    let (trap_base, received) = trap().await;
    let api_base = redirector(format!(
        "{trap_base}/einstein/platform/v1/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations"
    ))
    .await;
    let config = conf(
        &api_base,
        &mock.token_url(),
        MOCK_CLIENT_ID,
        MOCK_CLIENT_SECRET,
    );

    let (status, body) = ask(&config).await;
    settle().await;

    assert!(
        received.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(body["error"]["code"], "upstream_invalid_response");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Salesforce answered 307 (a redirect, which the bridge does not follow"),
        "{message}"
    );
    assert_eq!(mock.state().counters().chat_requests, 0);
}
