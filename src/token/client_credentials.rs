//! The OAuth 2.0 client-credentials flow against the org's token endpoint.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{token_lifetime, AccessToken, FetchedToken, OAuthFailure, TokenError, TokenSource};
use crate::config::{SalesforceConfig, Secret};
use crate::text::sanitize;
use crate::upstream::collect_capped;

/// The longest one token request may take, whatever `timeout_secs` says: requests wait on it.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// A token response is about 2 KiB; anything far larger is not one, and is not read into memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// `error_description` is shown to clients; Salesforce's are short generic texts.
const MAX_DESCRIPTION_CHARS: usize = 200;
const MAX_ERROR_CODE_CHARS: usize = 64;

/// Fetches tokens with the OAuth 2.0 client-credentials grant: a form POST of `grant_type`,
/// `client_id` and `client_secret` to `token_url`.
///
/// The token's lifetime comes from its JWT `exp` ([`token_lifetime`]), or `token_ttl` when it has
/// none. Each request is limited to `timeout` (at most 30 s); the connect timeout is the
/// `reqwest::Client`'s own.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    fallback_lifetime: Duration,
    timeout: Duration,
}

impl ClientCredentials {
    /// The client [`new`](Self::new) expects, configured from `[salesforce]`: rustls,
    /// `TCP_NODELAY`, `connect_timeout_secs`, and no redirects (a client that follows them
    /// re-sends the client secret wherever a 307 or 308 points).
    pub fn http_client(config: &SalesforceConfig) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("sf-models-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    /// A source for the credentials and token endpoint in `config`, sending with `http`, which
    /// should follow no redirects (as [`http_client`](Self::http_client)'s does): one that
    /// follows them re-sends the client secret wherever a 307 or 308 points.
    pub fn new(http: reqwest::Client, config: &SalesforceConfig) -> Self {
        Self {
            http,
            token_url: config.token_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            fallback_lifetime: config.token_ttl,
            timeout: config.timeout.min(MAX_TIMEOUT),
        }
    }

    async fn fetch_token(&self) -> Result<FetchedToken, TokenError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        let response = self
            .http
            .post(&self.token_url)
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(TokenError::from_reqwest)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(TokenError::Redirected(status));
        }
        let body = collect_capped(
            http::Response::from(response).into_body(),
            MAX_RESPONSE_BYTES,
        )
        .await
        .map_err(TokenError::from_reqwest)?;
        if !status.is_success() {
            let failure = oauth_failure(status, body.as_deref());
            return Err(if status.is_client_error() {
                TokenError::Rejected(failure)
            } else {
                TokenError::EndpointFailed(failure)
            });
        }
        let body = body.ok_or(TokenError::InvalidResponse("larger than 64 KiB"))?;
        let token = access_token(&body)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let lifetime = token_lifetime(&token, now, self.fallback_lifetime);
        Ok(FetchedToken {
            token: AccessToken::new(token),
            lifetime,
        })
    }
}

impl TokenSource for ClientCredentials {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
        Box::pin(self.fetch_token())
    }
}

/// The `access_token` of a success body. It must be a non-empty string that can go in an
/// `Authorization` header as is.
fn access_token(body: &[u8]) -> Result<String, TokenError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| TokenError::InvalidResponse("not JSON"))?;
    match json.get("access_token").and_then(Value::as_str) {
        Some(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(token.to_owned())
        }
        _ => Err(TokenError::NoAccessToken),
    }
}

/// The status and OAuth error fields of a failure body. Only `error` and `error_description` are
/// kept, trimmed and cut short: a body that is not the usual JSON may echo anything.
fn oauth_failure(status: http::StatusCode, body: Option<&[u8]>) -> OAuthFailure {
    let json: Option<Value> = body.and_then(|body| serde_json::from_slice(body).ok());
    let field = |name: &str, max_chars: usize| {
        json.as_ref()
            .and_then(|json| json.get(name))
            .and_then(Value::as_str)
            .map(|text| sanitize(text, max_chars))
            .filter(|text| !text.is_empty())
    };
    OAuthFailure {
        status,
        error: field("error", MAX_ERROR_CODE_CHARS),
        error_description: field("error_description", MAX_DESCRIPTION_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use super::*;
    use crate::config::Config;

    const SECRET: &str = "s3cr3t&=+";

    fn config(token_url: &str, timeout: Duration) -> SalesforceConfig {
        let toml = r#"
            [salesforce]
            api_base      = "https://api.salesforce.com/einstein/platform/v1"
            token_url     = "https://acme.my.salesforce.com/services/oauth2/token"
            client_id     = "3MVG9example"
            client_secret = "placeholder"

            [[routes]]
            model            = "gpt-4o-mini"
            salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
        "#;
        let mut config = Config::from_toml_with_env(toml, |_| None)
            .unwrap()
            .salesforce;
        config.token_url = token_url.to_owned();
        config.client_secret = Secret::new(SECRET);
        config.token_ttl = Duration::from_secs(900);
        config.timeout = timeout;
        config
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    /// Serves one HTTP/1.1 request with `status` and `body`, and hands back the raw request.
    async fn serve_once(status: &'static str, body: String) -> (String, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/oauth2/token",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                assert!(n > 0, "client closed before sending the whole request");
            }
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            let _ = tx.send(String::from_utf8(request).unwrap());
        });
        (url, rx)
    }

    fn assert_is_token_request(request: &str) {
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("POST /services/oauth2/token HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head
            .to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded"));
        let fields: Vec<&str> = body.split('&').collect();
        assert!(fields.contains(&"grant_type=client_credentials"), "{body}");
        assert!(fields.contains(&"client_id=3MVG9example"), "{body}");
        assert!(fields.contains(&"client_secret=s3cr3t%26%3D%2B"), "{body}");
    }

    #[tokio::test]
    async fn success_reads_the_token_and_its_lifetime() {
        let fixture = include_str!("../../tests/fixtures/token.response.json");
        let (url, request) = serve_once("200 OK", fixture.to_owned()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));

        let fetched = source.fetch().await.unwrap();
        let expected: Value = serde_json::from_str(fixture).unwrap();
        assert_eq!(
            fetched.token.expose(),
            expected["access_token"].as_str().unwrap()
        );
        // The fixture's exp (January 2025) is long past: expired, not the fallback.
        assert_eq!(fetched.lifetime, Duration::ZERO);
        assert_is_token_request(&request.await.unwrap());
    }

    #[tokio::test]
    async fn opaque_token_gets_the_configured_lifetime() {
        let body = r#"{"access_token":"00Dxx!opaque","token_type":"Bearer"}"#;
        let (url, _request) = serve_once("200 OK", body.to_owned()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
        let fetched = source.fetch().await.unwrap();
        assert_eq!(fetched.token.expose(), "00Dxx!opaque");
        assert_eq!(fetched.lifetime, Duration::from_secs(900));
    }

    #[tokio::test]
    async fn invalid_client_is_rejected_with_status_and_code() {
        let fixture = include_str!("../../tests/fixtures/token.error.json");
        let (url, request) = serve_once("400 Bad Request", fixture.to_owned()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));

        let error = source.fetch().await.unwrap_err();
        let TokenError::Rejected(failure) = &error else {
            panic!("expected Rejected, got {error:?}");
        };
        assert_eq!(failure.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(failure.error.as_deref(), Some("invalid_client"));
        assert_eq!(
            error.to_string(),
            "Salesforce token endpoint rejected the client credentials \
             (400 invalid_client: invalid client credentials)"
        );
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
        assert_is_token_request(&request.await.unwrap());
    }

    #[tokio::test]
    async fn server_error_keeps_only_a_short_description() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let body = serde_json::json!({ "error": "server_error", "error_description": long });
        let (url, _request) = serve_once("503 Service Unavailable", body.to_string()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));

        let error = source.fetch().await.unwrap_err();
        let TokenError::EndpointFailed(failure) = &error else {
            panic!("expected EndpointFailed, got {error:?}");
        };
        let description = failure.error_description.as_deref().unwrap();
        assert_eq!(description.chars().count(), 200);
        assert!(description.starts_with("line one line two xxx"));
        assert!(error
            .to_string()
            .starts_with("Salesforce token endpoint failed (503 server_error: "));
    }

    #[tokio::test]
    async fn non_json_failure_keeps_the_status_only() {
        let (url, _request) = serve_once("502 Bad Gateway", "<html>oops</html>".into()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
        let error = source.fetch().await.unwrap_err();
        assert_eq!(error.to_string(), "Salesforce token endpoint failed (502)");
    }

    #[tokio::test]
    async fn success_without_access_token_says_so() {
        for body in [
            r#"{"token_type":"Bearer"}"#,
            r#"{"access_token":""}"#,
            r#"{"access_token":42}"#,
            r#"{"access_token":"has space"}"#,
        ] {
            let (url, _request) = serve_once("200 OK", body.to_owned()).await;
            let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
            let error = source.fetch().await.unwrap_err();
            assert!(
                matches!(error, TokenError::NoAccessToken),
                "{body}: {error:?}"
            );
            assert_eq!(
                error.to_string(),
                "Salesforce token response had no access_token"
            );
        }
        let (url, _request) = serve_once("200 OK", "not json".into()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
        assert!(matches!(
            source.fetch().await,
            Err(TokenError::InvalidResponse("not JSON"))
        ));
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        drop(listener);
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
        let error = source.fetch().await.unwrap_err();
        assert!(matches!(error, TokenError::Unreachable(_)), "{error:?}");
        assert_eq!(error.to_string(), "Salesforce token endpoint unreachable");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[tokio::test]
    async fn silent_endpoint_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        // Accepts and reads, never answers.
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            let _ = socket.read_to_end(&mut sink).await;
        });
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_millis(200)));
        let error = source.fetch().await.unwrap_err();
        assert!(matches!(error, TokenError::Timeout(_)), "{error:?}");
        assert_eq!(error.to_string(), "Salesforce token endpoint timed out");
        server.abort();
    }

    #[tokio::test]
    async fn timeout_is_capped_at_thirty_seconds() {
        let source = ClientCredentials::new(
            client(),
            &config("http://127.0.0.1:9/token", Duration::from_secs(120)),
        );
        assert_eq!(source.timeout, MAX_TIMEOUT);
        assert!(!format!("{source:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn works_behind_a_token_cache() {
        let body = r#"{"access_token":"opaque"}"#;
        let (url, _request) = serve_once("200 OK", body.to_owned()).await;
        let source = ClientCredentials::new(client(), &config(&url, Duration::from_secs(5)));
        let cache = crate::token::TokenCache::new(source, Duration::from_secs(60));
        let token = cache.get().await.unwrap();
        // The one-shot server is gone: a second fetch would fail.
        assert_eq!(cache.get().await.unwrap(), token);
    }
}
