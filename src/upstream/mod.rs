//! The HTTP client side: one pooled `reqwest` client as a [`tower::Service`], and the one retry
//! loop of the crate.
//!
//! [`Upstream`] sends one attempt and hands back the answer's head with an [`UpstreamBody`] that
//! is read as it arrives; it knows nothing of request semantics. Retrying (429, 423, 500, 503 and
//! requests that never reached Salesforce, with exponential backoff, jitter and `Retry-After`,
//! within a deadline) is decided by the pure [`RetryPolicy`] and carried out in one place only,
//! the exchange, beside the token and the resend after a 401, so an embedding gateway that
//! retries too knows exactly what it multiplies.
//!
//! ```no_run
//! use sf_models_bridge::{upstream::Upstream, Config};
//!
//! let config = Config::from_path("conf/gateway.toml")?;
//! let upstream = Upstream::new(&config.salesforce)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod body;
mod exchange;
mod retry;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use tower::Service;

use crate::config::SalesforceConfig;

pub(crate) use body::collect_capped;
pub use body::UpstreamBody;
pub(crate) use exchange::{
    AttemptObserver, Dispatcher, ExchangeError, Exchanged, Outgoing, Receive,
};
pub use retry::{parse_retry_after, AttemptOutcome, RetryPolicy, Verdict};

/// How long connections stay pooled while idle.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The largest Models API answer read into memory. The longest real answers (tens of thousands
/// of output tokens, a few hundred KiB even with every character JSON-escaped) stay far below it,
/// while `max_concurrent_requests` answers at this size still fit in memory.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// One upstream attempt failed without an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("cannot connect to Salesforce")]
    Connect(#[source] reqwest::Error),
    /// The attempt took longer than its timeout.
    #[error("Salesforce did not answer in time")]
    Timeout,
    /// The connection closed before the request was written on it: the HTTP client handed the
    /// request back unsent, so Salesforce never saw it. (When that connection came from the
    /// pool, hyper-util has already resent the request once on another by itself.)
    #[error("the connection to Salesforce closed before the request was sent")]
    NotSent(#[source] reqwest::Error),
    /// The connection broke after the request was written, or may have been: before the
    /// answer came, or while its body was read. Salesforce may have run (and billed) the
    /// generation, so it is retried only if the conf says so.
    #[error("the connection to Salesforce broke before the answer was complete")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request could not be built, such as an invalid URL.
    #[error("invalid upstream request")]
    InvalidRequest(#[source] reqwest::Error),
    /// No upstream slot came free within the queue timeout.
    #[error("too many concurrent requests to Salesforce; try again shortly")]
    Overloaded,
    /// The request's total deadline passed, retries included.
    #[error("the request did not complete within its deadline of {0:?}, retries included")]
    DeadlineExceeded(Duration),
    /// The answer's body was larger than the limit; it was not read to the end.
    #[error("the Salesforce answer exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The HTTP client could not be built (start-up only).
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl UpstreamError {
    /// Classifies a reqwest error by type, never by its message. Whether the request reached
    /// Salesforce decides whether it may be sent again, and only two kinds say it did not:
    /// `is_connect` (hyper-util's connector failed: DNS, TCP or TLS, before any byte of the
    /// request) and a request error whose cause is hyper's `Canceled`, which hyper reports only
    /// together with the request it hands back unwritten (see `handed_back_unsent`).
    /// Everything else, "connection closed before message completed" included, is treated as
    /// sent: on a reused connection it may mean the server dropped the request unread, but
    /// nothing tells the bridge so.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        // URLs can carry credentials in other deployments; never keep one in an error.
        let err = err.without_url();
        if err.is_timeout() {
            UpstreamError::Timeout
        } else if err.is_connect() {
            UpstreamError::Connect(err)
        } else if err.is_builder() {
            UpstreamError::InvalidRequest(err)
        } else if err.is_request() && handed_back_unsent(&err) {
            UpstreamError::NotSent(err)
        } else {
            UpstreamError::Transport(Box::new(err))
        }
    }

    /// How this failure is classified for retries and metrics.
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            UpstreamError::Connect(_) => AttemptOutcome::ConnectError,
            UpstreamError::Timeout | UpstreamError::DeadlineExceeded(_) => AttemptOutcome::Timeout,
            UpstreamError::NotSent(_) => AttemptOutcome::ConnectionReset,
            UpstreamError::Transport(_) => AttemptOutcome::ConnectionLostAfterSend,
            UpstreamError::TooLarge(_) => AttemptOutcome::TooLarge,
            UpstreamError::InvalidRequest(_)
            | UpstreamError::Overloaded
            | UpstreamError::Build(_) => AttemptOutcome::Failed,
        }
    }
}

/// Whether `err`'s causes include hyper's `Canceled`. hyper creates that kind only where it
/// gives the request back unwritten (`TrySendError` with the message: the dispatcher had not
/// started it when the connection closed, or the connection was not ready), and hyper-util
/// wraps that as its own `Canceled` kind, after resending by itself on a reused connection. A
/// request that was written and then lost is reported as `IncompleteMessage` or an I/O error
/// instead, without the request. (hyper-util's own `is_canceled` is private, hence the walk.)
fn handed_back_unsent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = err.source();
    while let Some(error) = cause {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// What the bridge needs of its upstream client: [`Upstream`], or any service of the same shape
/// (a test double, or the client wrapped in layers of your own).
pub trait UpstreamService:
    Service<Request<Bytes>, Response = Response<UpstreamBody>, Error = UpstreamError, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> UpstreamService for S where
    S: Service<
            Request<Bytes>,
            Response = Response<UpstreamBody>,
            Error = UpstreamError,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// What the bridge accepts as a request body: axum's, hyper's, or the one the Pingora filter
/// builds.
pub trait RequestBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// A request extension: the timeout of this one attempt, overriding the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimeout(pub Duration);

/// A request extension: the request's URI already parsed into reqwest's `Url`, at start-up, so
/// that [`Upstream`] need not print the URI and parse it again on every call (reqwest's own
/// conversion from `http::Request` does both). Used only when the request still carries the very
/// URI it was made from; otherwise the URI is converted as before.
#[derive(Debug, Clone)]
pub(crate) struct ParsedUrl {
    uri: Uri,
    url: reqwest::Url,
}

impl ParsedUrl {
    /// `None` when reqwest could not parse `uri` either: the request then fails as it would have.
    pub(crate) fn new(uri: &Uri) -> Option<Self> {
        let url = reqwest::Url::parse(&uri.to_string()).ok()?;
        Some(Self {
            uri: uri.clone(),
            url,
        })
    }
}

/// Where an upstream call goes: a URI, built once at start-up with the client's own parse of it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    uri: Uri,
    parsed: Option<ParsedUrl>,
}

impl Target {
    /// The target at `url`; `None` when it is not a valid URI.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        Some(Self {
            parsed: ParsedUrl::new(&uri),
            uri,
        })
    }

    /// The URI.
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The URI as the client parsed it, when it could.
    pub(crate) fn parsed(&self) -> Option<&ParsedUrl> {
        self.parsed.as_ref()
    }
}

/// The reqwest request for `request`, with its attempt timeout.
fn to_reqwest(request: Request<Bytes>) -> Result<reqwest::Request, UpstreamError> {
    let (mut parts, body) = request.into_parts();
    let timeout = parts.extensions.get::<AttemptTimeout>().copied();
    let mut request = match parts.extensions.remove::<ParsedUrl>() {
        Some(parsed) if parsed.uri == parts.uri => {
            // What `reqwest::Request::try_from` builds, minus the second parse. Our extensions
            // stay behind: reqwest reads only its own.
            let mut request = reqwest::Request::new(parts.method, parsed.url);
            *request.headers_mut() = parts.headers;
            *request.version_mut() = parts.version;
            *request.body_mut() = Some(body.into());
            request
        }
        _ => reqwest::Request::try_from(Request::from_parts(parts, body))
            .map_err(UpstreamError::from_reqwest)?,
    };
    if let Some(AttemptTimeout(timeout)) = timeout {
        *request.timeout_mut() = Some(timeout);
    }
    Ok(request)
}

/// The Models API client: a pooled `reqwest` client (rustls, `TCP_NODELAY`, connect and
/// per-attempt timeouts) that sends one request and hands back the answer's head as soon as it
/// arrives, with a body read as it comes.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    /// A client configured from `[salesforce]`: `connect_timeout_secs`, `timeout_secs`. It
    /// follows no redirects: on a 307 or 308 it would send the request again, the token
    /// request's client secret included, to whatever host the `Location` names. A redirect is
    /// answered as an error instead.
    pub fn new(config: &SalesforceConfig) -> Result<Self, UpstreamError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("sf-models-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(Self::from_client)
            .map_err(UpstreamError::Build)
    }

    /// Wraps an existing client, so an application can share its own pool. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, as [`Upstream::new`] does: a client that
    /// follows redirects sends credentials wherever a redirect points.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// The client, for other calls to Salesforce (the token endpoint) to share its pool.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// The future of one [`Upstream`] attempt.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + 'static>>;

impl Service<Request<Bytes>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = UpstreamError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest's pool has no readiness of its own to wait for.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let request = to_reqwest(request)?;
            let response = client
                .execute(request)
                .await
                .map_err(UpstreamError::from_reqwest)?;
            Ok(http::Response::from(response).map(UpstreamBody::from_reqwest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn request(uri: &str, parsed_from: Option<&str>) -> Request<Bytes> {
        let mut request = Request::post(uri)
            .header("authorization", "Bearer t")
            .header("x-a", "1")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        request
            .extensions_mut()
            .insert(AttemptTimeout(Duration::from_secs(7)));
        if let Some(from) = parsed_from {
            let parsed = ParsedUrl::new(&from.parse().unwrap()).unwrap();
            request.extensions_mut().insert(parsed);
        }
        request
    }

    /// Answers one connection with `response` as is, and gives its URL.
    async fn serve_raw(response: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0; 4096];
            let _ = socket.read(&mut head).await.unwrap();
            socket.write_all(response.as_bytes()).await.unwrap();
        });
        url
    }

    async fn read_limited(response: String, limit: usize) -> Option<Bytes> {
        let url = serve_raw(response).await;
        let response = reqwest::get(url).await.unwrap();
        let body = UpstreamBody::from_reqwest(http::Response::from(response).into_body());
        match body.read_capped(limit).await {
            Ok(body) => Some(body),
            Err(UpstreamError::TooLarge(_)) => None,
            Err(error) => panic!("{error}"),
        }
    }

    fn with_length(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn chunked(chunks: &[&str]) -> String {
        let mut response =
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_owned();
        for chunk in chunks {
            response.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        response.push_str("0\r\n\r\n");
        response
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_read_whole() {
        let body = read_limited(with_length("0123456789"), 10).await;
        assert_eq!(body.as_deref(), Some(&b"0123456789"[..]));
        let body = read_limited(chunked(&["01234", "56789"]), 10).await;
        assert_eq!(body.as_deref(), Some(&b"0123456789"[..]));
        let body = read_limited(with_length(""), 10).await;
        assert_eq!(body.as_deref(), Some(&b""[..]));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_not() {
        assert_eq!(read_limited(with_length("0123456789x"), 10).await, None);
        assert_eq!(
            read_limited(chunked(&["01234", "56789", "x"]), 10).await,
            None
        );
    }

    /// A conf with every optional key at its default.
    fn default_config() -> crate::Config {
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
        crate::Config::from_toml_with_env(toml, |_| None).unwrap()
    }

    /// The retry policy of the default `[retry]` section.
    fn default_policy() -> RetryPolicy {
        RetryPolicy::new(&default_config().retry)
    }

    /// Whether the default policy retries `error` after a first attempt.
    fn retried(error: &UpstreamError) -> bool {
        let verdict = default_policy().decide(1, error.outcome(), None, None, 0.0);
        matches!(verdict, Verdict::RetryAfter(_))
    }

    /// The error of one call through [`Upstream`] to a server that reads the whole request,
    /// then writes `answer` (maybe nothing) and closes the connection; the body, if a head came
    /// back, is read whole as the exchange does.
    async fn error_after_reading_request(answer: &'static str) -> UpstreamError {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // The request ends with its 2-byte body, "{}", after the blank line.
            let mut request = Vec::new();
            let mut buf = [0; 4096];
            while !request.ends_with(b"\r\n\r\n{}") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed first");
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        let upstream = Upstream::new(&default_config().salesforce).unwrap();
        let request = Request::post(url).body(Bytes::from_static(b"{}")).unwrap();
        let result = upstream.clone().oneshot(request).await;
        server.await.unwrap();
        match result {
            Ok(response) => response
                .into_body()
                .read_capped(MAX_ANSWER_BYTES)
                .await
                .expect_err("the body breaks"),
            Err(error) => error,
        }
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_was_read_is_not_retried() {
        // A load balancer closing a long generation: the upstream may have done (and billed)
        // the work, so the call must not be made again.
        let error = error_after_reading_request("").await;
        assert!(
            matches!(error, UpstreamError::Transport(_)),
            "closed with no answer: {error:?}"
        );
        assert!(!retried(&error), "closed with no answer: {error:?}");

        let error = error_after_reading_request(
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"generation\"",
        )
        .await;
        assert!(
            matches!(error, UpstreamError::Transport(_)),
            "closed mid-body: {error:?}"
        );
        assert!(!retried(&error), "closed mid-body: {error:?}");
    }

    /// A chain of causes, as reqwest and hyper-util wrap hyper's errors.
    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] Box<dyn std::error::Error + Send + Sync>);

    fn wrapped_twice(error: hyper::Error) -> Wrapped {
        Wrapped(Box::new(Wrapped(Box::new(error))))
    }

    /// hyper's own error for `request` sent on an HTTP/1 connection whose peer runs `peer`.
    async fn hyper_error<F>(
        serve: bool,
        peer: impl FnOnce(tokio::io::DuplexStream) -> F,
    ) -> hyper::Error
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (client, server) = tokio::io::duplex(4096);
        let (mut sender, connection) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Empty<Bytes>,
        >(hyper_util::rt::TokioIo::new(client))
        .await
        .unwrap();
        if serve {
            tokio::spawn(connection);
        } else {
            drop(connection);
        }
        tokio::spawn(peer(server));
        let request = Request::get("/")
            .body(http_body_util::Empty::new())
            .unwrap();
        sender.send_request(request).await.unwrap_err()
    }

    #[tokio::test]
    async fn only_a_request_handed_back_unwritten_counts_as_unsent() {
        // The connection's task is gone before the request is given to it: hyper hands it back.
        let canceled = hyper_error(false, |_peer| async {}).await;
        assert!(canceled.is_canceled(), "{canceled:?}");
        assert!(handed_back_unsent(&wrapped_twice(canceled)));

        // The peer reads the whole request, then closes: "connection closed before message
        // completed", which is what a load balancer closing a long generation looks like.
        let incomplete = hyper_error(true, |mut peer| async move {
            use tokio::io::AsyncReadExt;
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match peer.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(incomplete.is_incomplete_message(), "{incomplete:?}");
        assert!(!handed_back_unsent(&wrapped_twice(incomplete)));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_retried_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let upstream = Upstream::new(&default_config().salesforce).unwrap();
        let request = Request::post(url).body(Bytes::from_static(b"{}")).unwrap();
        let error = upstream.clone().oneshot(request).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
        assert!(retried(&error), "{error:?}");
    }

    #[test]
    fn a_parsed_url_stands_in_for_its_own_uri_only() {
        let base = "http://127.0.0.1:9/einstein/platform/v1/models/m/chat-generations";
        let other = "http://127.0.0.1:9/einstein/platform/v1/models/other/chat-generations?x=1";
        for (uri, parsed_from) in [(base, None), (base, Some(base)), (other, Some(base))] {
            let converted = to_reqwest(request(uri, parsed_from)).unwrap();
            let expected = reqwest::Request::try_from(request(uri, None)).unwrap();
            assert_eq!(
                converted.url(),
                expected.url(),
                "{uri} from {parsed_from:?}"
            );
            assert_eq!(converted.url().as_str(), uri);
            assert_eq!(converted.method(), http::Method::POST);
            assert_eq!(converted.headers(), expected.headers());
            assert_eq!(converted.version(), expected.version());
            assert_eq!(converted.timeout(), Some(&Duration::from_secs(7)));
            let body = converted.body().and_then(reqwest::Body::as_bytes);
            assert_eq!(body, Some(&b"{}"[..]));
        }
    }
}
