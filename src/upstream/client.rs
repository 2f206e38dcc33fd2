//! [`Upstream`]: the Models API client, pooled HTTP/1.1 connections as a [`tower::Service`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::{self, Handle};
use tower::Service;

use super::connection::{Connection, Lent, Origin, Outbound, Pool, SendError};
use super::{AttemptTimeout, BoxError, UpstreamBody, UpstreamError};
use crate::config::SalesforceConfig;

/// How long connections stay pooled while idle.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// TCP keep-alive probes on upstream connections, so a peer that vanished is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The pools kept at most, one per runtime. A process has a fixed few runtimes (one, or one per
/// Pingora thread); past this many, runtimes come and go (as in tests) and the pools of the
/// ones gone are dropped with the rest.
const MAX_POOLS: usize = 64;

/// Where a deadline too far off to represent is put instead (as tokio's `timeout` does).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

const DEFAULT_USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("sf-models-bridge/", env!("CARGO_PKG_VERSION")));

/// Opens connections, TLS handshake included, within the connect timeout: a connection that
/// cannot be had in time is a connect error, the request certainly unsent.
#[derive(Clone)]
struct TimedConnector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

/// The connect timeout passed.
#[derive(Debug, thiserror::Error)]
#[error("no connection within the connect timeout of {0:?}")]
struct ConnectTimedOut(Duration);

impl Service<Uri> for TimedConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            tokio::time::timeout(timeout, connecting)
                .await
                .unwrap_or(Err(Box::new(ConnectTimedOut(timeout))))
        })
    }
}

/// The Models API client: pooled HTTP/1.1 over TCP (`TCP_NODELAY`) or rustls, with a connect
/// timeout and a timeout per attempt (answer head and body). It sends one request and hands
/// back the answer's head as soon as it arrives, with a body read as it comes. It follows no
/// redirects: on a 307 or 308 a client that did would send the request again, credentials
/// included, to whatever host the `Location` names; a redirect is an answer like any other.
///
/// A connection has no task of its own: the request that holds it reads and writes it, so the
/// answer's chunks reach the bridge within the poll that read them from the socket, without a
/// wake-up of another task (or of another thread's). Connections are pooled per Tokio runtime,
/// whose I/O driver watches their sockets, so a request served on one of several
/// single-threaded runtimes (Pingora's, without work stealing) never uses a socket another
/// thread watches. Clones share the pools.
///
/// ```no_run
/// use std::time::Duration;
/// use sf_models_bridge::upstream::Upstream;
///
/// let upstream = Upstream::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(60))
///     .build()?;
/// # Ok::<(), sf_models_bridge::upstream::UpstreamError>(())
/// ```
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
}

struct Shared {
    connector: TimedConnector,
    /// The timeout of an attempt that carries no [`AttemptTimeout`].
    timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle: usize,
    /// Read on every request, written once per runtime.
    pools: ArcSwap<Vec<(runtime::Id, Arc<Pool>)>>,
}

impl Upstream {
    /// A client configured from `[salesforce]`: `connect_timeout_secs`, `timeout_secs`, and at
    /// most `max_concurrent_requests` idle connections per runtime.
    pub fn new(config: &SalesforceConfig) -> Result<Self, UpstreamError> {
        Self::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_max_idle(config.max_concurrent_requests)
            .build()
    }

    /// A builder, for a client configured by hand.
    pub fn builder() -> UpstreamBuilder {
        UpstreamBuilder::default()
    }

    /// The pool of the runtime this runs on, made on first use; an error outside a runtime.
    fn pool(&self) -> Result<Arc<Pool>, UpstreamError> {
        let runtime = Handle::try_current()
            .map_err(|error| UpstreamError::Build(Box::new(error)))?
            .id();
        let find = |pools: &[(runtime::Id, Arc<Pool>)]| {
            pools
                .iter()
                .find(|(id, _)| *id == runtime)
                .map(|(_, pool)| pool.clone())
        };
        if let Some(pool) = find(&self.shared.pools.load()) {
            return Ok(pool);
        }
        let pool = Pool::new(self.shared.pool_max_idle, self.shared.pool_idle_timeout);
        self.shared.pools.rcu(|pools| {
            let mut pools = if pools.len() < MAX_POOLS {
                pools.to_vec()
            } else {
                Vec::new()
            };
            if find(&pools).is_none() {
                pools.push((runtime, pool.clone()));
            }
            pools
        });
        // Another request on this runtime may have added its pool first: use that one.
        Ok(find(&self.shared.pools.load()).unwrap_or(pool))
    }

    /// Sends `request` to `origin` (at `uri`) on an idle connection of `pool`, or a new one;
    /// the answer's head, and the connection its body is to be read from.
    async fn exchange(
        &self,
        pool: &Pool,
        origin: &Origin,
        uri: Uri,
        mut request: Outbound,
    ) -> Result<(Response<Incoming>, Connection), UpstreamError> {
        if let Some(mut connection) = pool.checkout(origin).await {
            match connection.send(request).await {
                Ok(response) => return Ok((response, connection)),
                // The idle connection closed as the request was given to it, unwritten: once
                // more on a new one, as hyper's pooled client does.
                Err(SendError::Unsent(unsent, _)) => request = *unsent,
                Err(SendError::Lost(error)) => return Err(UpstreamError::Transport(error)),
            }
        }
        let io = self
            .shared
            .connector
            .clone()
            .call(uri)
            .await
            .map_err(UpstreamError::Connect)?;
        let mut connection = Connection::handshake(io).await?;
        match connection.send(request).await {
            Ok(response) => Ok((response, connection)),
            Err(SendError::Unsent(_, error)) => Err(UpstreamError::NotSent(Box::new(error))),
            Err(SendError::Lost(error)) => Err(UpstreamError::Transport(error)),
        }
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for an [`Upstream`]; from [`Upstream::builder`].
#[derive(Debug, Clone)]
pub struct UpstreamBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle: usize,
    tls: Option<rustls::ClientConfig>,
}

impl Default for UpstreamBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            pool_max_idle: 256,
            tls: None,
        }
    }
}

impl UpstreamBuilder {
    /// The limit on opening a connection, TLS handshake included (default 5 s, as
    /// `[salesforce]`'s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The limit on an attempt, from sending to the end of the answer's body (default 300 s,
    /// as `[salesforce]`'s).
    /// A request's [`AttemptTimeout`] extension overrides it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a connection stays pooled while idle (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// The most idle connections kept per host and runtime (default 256); more are closed when
    /// they come free.
    pub fn pool_max_idle(mut self, connections: usize) -> Self {
        self.pool_max_idle = connections;
        self
    }

    /// The TLS settings of `https` connections, such as a private root of trust. By default the
    /// platform's verifier checks certificates, as browsers do.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The client.
    pub fn build(self) -> Result<Upstream, UpstreamError> {
        let tls = match self.tls {
            Some(tls) => tls,
            None => platform_tls().map_err(|error| UpstreamError::Build(Box::new(error)))?,
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = TimedConnector {
            inner: connector,
            timeout: self.connect_timeout,
        };
        Ok(Upstream {
            shared: Arc::new(Shared {
                connector,
                timeout: self.timeout,
                pool_idle_timeout: self.pool_idle_timeout,
                pool_max_idle: self.pool_max_idle,
                pools: ArcSwap::default(),
            }),
        })
    }
}

/// TLS checked by the platform's verifier with the process's default crypto provider, or
/// aws-lc-rs when none is installed: what reqwest does, for the token endpoint's client too.
fn platform_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Why a request cannot be sent at all.
#[derive(Debug, thiserror::Error)]
#[error("the upstream URI must be absolute, http or https")]
struct NotAbsolute;

/// Where an upstream call goes: a URI and its `Host` header, both made once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    uri: Uri,
    host: Option<HeaderValue>,
}

impl Target {
    /// The target at `url`; `None` when it is not a valid URI.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        Some(Self {
            host: host_header(&uri),
            uri,
        })
    }

    /// The URI.
    #[cfg(test)]
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// A request to this target: its URI and `Host`, with `body`.
    pub(crate) fn request(&self, body: Bytes) -> Request<Bytes> {
        let mut request = Request::new(body);
        *request.uri_mut() = self.uri.clone();
        if let Some(host) = &self.host {
            request.headers_mut().insert(HOST, host.clone());
        }
        request
    }
}

/// The `Host` header for `uri`: its host, and its port unless the scheme's default.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return None,
    };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => authority.as_str(),
        _ => authority.host(),
    };
    // Credentials before an `@` are no part of a Host header.
    let host = host.rsplit('@').next().unwrap_or(host);
    HeaderValue::from_str(host).ok()
}

/// The future of one [`Upstream`] attempt.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + 'static>>;

impl Service<Request<Bytes>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = UpstreamError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pool opens connections on demand: there is no readiness to wait for.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let upstream = self.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let origin = match parts.uri.scheme_str() {
                Some("http" | "https") => Origin::of(&parts.uri),
                _ => None,
            }
            .ok_or(UpstreamError::InvalidRequest(Box::new(NotAbsolute)))?;
            let timeout = parts
                .extensions
                .remove::<AttemptTimeout>()
                .map_or(upstream.shared.timeout, |AttemptTimeout(timeout)| timeout);
            parts
                .headers
                .entry(USER_AGENT)
                .or_insert(DEFAULT_USER_AGENT);
            if !parts.headers.contains_key(HOST) {
                if let Some(host) = host_header(&parts.uri) {
                    parts.headers.insert(HOST, host);
                }
            }
            // The request line names the path; the connection, the origin.
            let path = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            let uri = std::mem::replace(&mut parts.uri, Uri::from(path));
            let now = tokio::time::Instant::now();
            let deadline = now.checked_add(timeout).unwrap_or_else(|| now + FAR_FUTURE);
            // One timer for the whole attempt: it bounds the head here, then the body.
            let mut expiry = Box::pin(tokio::time::sleep_until(deadline));
            let pool = upstream.pool()?;
            let request = Request::from_parts(parts, Full::new(body));
            let (response, connection) = tokio::select! {
                biased;
                sent = upstream.exchange(&pool, &origin, uri, request) => sent?,
                () = &mut expiry => return Err(UpstreamError::Timeout),
            };
            let connection = Lent::new(connection, pool, origin);
            Ok(response.map(|body| UpstreamBody::incoming(body, connection, expiry)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{AttemptOutcome, RetryPolicy, Verdict, MAX_ANSWER_BYTES};
    use http_body::Body as _;
    use http_body_util::BodyExt as _;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tower::ServiceExt;

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

    fn upstream() -> Upstream {
        Upstream::new(&default_config().salesforce).unwrap()
    }

    /// Whether the default `[retry]` policy retries `error` after a first attempt.
    fn retried(error: &UpstreamError) -> bool {
        let policy = RetryPolicy::new(&default_config().retry);
        let verdict = policy.decide(1, error.outcome(), None, None, 0.0);
        matches!(verdict, Verdict::RetryAfter(_))
    }

    fn post(url: &str) -> Request<Bytes> {
        Request::post(url).body(Bytes::from_static(b"{}")).unwrap()
    }

    /// Reads one request (head and its 2-byte body, "{}") from `socket`; `None` when the client
    /// closed first.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
        let mut request = Vec::new();
        let mut buf = [0; 4096];
        while !request.ends_with(b"\r\n\r\n{}") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return None;
            }
            request.extend_from_slice(&buf[..n]);
        }
        Some(String::from_utf8(request).unwrap())
    }

    /// A server that answers every request on every connection with `answer`, counting the
    /// connections it accepts, and its URL.
    async fn serve_each(answer: String) -> (String, Arc<AtomicUsize>) {
        serve_counted(answer, usize::MAX).await
    }

    /// A server that answers each request with `answer`, at most `per_connection` on each
    /// connection and then closes it, counting the connections it accepts, and its URL.
    async fn serve_counted(answer: String, per_connection: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    for _ in 0..per_connection {
                        if read_request(&mut socket).await.is_none() {
                            break;
                        }
                        socket.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (url, accepted)
    }

    /// A server that reads one whole request, then writes `answer` (maybe nothing) and closes
    /// the connection, and its URL.
    async fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            assert!(
                read_request(&mut socket).await.is_some(),
                "the client closed first"
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        url
    }

    /// The body of the answer to a POST to `url`.
    async fn body_of(upstream: &Upstream, url: &str) -> UpstreamBody {
        upstream
            .clone()
            .oneshot(post(url))
            .await
            .unwrap()
            .into_body()
    }

    /// The answer's body read whole, or the error of the call or of its body.
    async fn call(upstream: &Upstream, request: Request<Bytes>) -> Result<Bytes, UpstreamError> {
        let response = upstream.clone().oneshot(request).await?;
        response.into_body().read_capped(MAX_ANSWER_BYTES).await
    }

    async fn read_limited(answer: &'static str, limit: usize) -> Option<Bytes> {
        let url = serve_once(answer).await;
        let response = upstream().oneshot(post(&url)).await.unwrap();
        match response.into_body().read_capped(limit).await {
            Ok(body) => Some(body),
            Err(UpstreamError::TooLarge(_)) => None,
            Err(error) => panic!("{error}"),
        }
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_read_whole() {
        let body = read_limited(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
            10,
        )
        .await;
        assert_eq!(body.as_deref(), Some(&b"0123456789"[..]));
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                       5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
        let body = read_limited(chunked, 10).await;
        assert_eq!(body.as_deref(), Some(&b"0123456789"[..]));
        let body = read_limited("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 10).await;
        assert_eq!(body.as_deref(), Some(&b""[..]));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_not() {
        let declared = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n0123456789x";
        assert_eq!(read_limited(declared, 10).await, None);
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                       5\r\n01234\r\n5\r\n56789\r\n1\r\nx\r\n0\r\n\r\n";
        assert_eq!(read_limited(chunked, 10).await, None);
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_was_read_is_not_retried() {
        // A load balancer closing a long generation: the upstream may have done (and billed)
        // the work, so the call must not be made again.
        let url = serve_once("").await;
        let error = call(&upstream(), post(&url)).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::Transport(_)),
            "closed with no answer: {error:?}"
        );
        assert!(!retried(&error), "closed with no answer: {error:?}");

        let url = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"generation\"").await;
        let error = call(&upstream(), post(&url)).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::Transport(_)),
            "closed mid-body: {error:?}"
        );
        assert!(!retried(&error), "closed mid-body: {error:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_retried_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = call(&upstream(), post(&url)).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
        assert!(retried(&error), "{error:?}");
    }

    #[tokio::test]
    async fn a_connection_not_made_in_time_is_a_retried_connect_error() {
        // A peer that accepts TCP and never answers the TLS handshake: the connect timeout
        // covers the handshake too.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        });
        let upstream = Upstream::builder()
            .connect_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let error = call(&upstream, post(&url)).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
        assert!(retried(&error), "{error:?}");
    }

    #[tokio::test]
    async fn a_uri_that_is_not_absolute_http_is_invalid() {
        for uri in ["/relative", "ftp://127.0.0.1/x"] {
            let error = call(&upstream(), post(uri)).await.unwrap_err();
            assert!(
                matches!(error, UpstreamError::InvalidRequest(_)),
                "{uri}: {error:?}"
            );
            assert_eq!(error.outcome(), AttemptOutcome::Failed, "{uri}");
        }
    }

    #[tokio::test]
    async fn the_attempt_timeout_bounds_the_head_and_then_the_body() {
        let timed = |url: &str| {
            let mut request = post(url);
            request
                .extensions_mut()
                .insert(AttemptTimeout(Duration::from_millis(200)));
            request
        };
        let (url, _) = serve_each(String::new()).await; // reads, never answers
        let error = upstream().oneshot(timed(&url)).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Timeout), "{error:?}");

        // A head at once, then a body that never ends.
        let (url, _) =
            serve_each("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234".to_owned()).await;
        let response = upstream().oneshot(timed(&url)).await.unwrap();
        let error = response
            .into_body()
            .read_capped(MAX_ANSWER_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(error, UpstreamError::Timeout), "{error:?}");
    }

    #[tokio::test]
    async fn a_pool_reuses_its_connection() {
        let (url, accepted) =
            serve_each("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned()).await;
        let upstream = upstream();
        for _ in 0..3 {
            assert_eq!(call(&upstream, post(&url)).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// The head of the request `request(addr)` sends to a server at `addr` that answers 204,
    /// lowercased, and that address.
    async fn head_sent(request: impl FnOnce(SocketAddr) -> Request<Bytes>) -> (String, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let request = read_request(&mut socket).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            request
        });
        call(&upstream(), request(addr)).await.unwrap();
        (server.await.unwrap().to_ascii_lowercase(), addr)
    }

    #[tokio::test]
    async fn a_target_sends_its_own_host_header() {
        let (head, addr) = head_sent(|addr| {
            let target = Target::parse(&format!("http://{addr}/models/m?x=1")).unwrap();
            let mut request = target.request(Bytes::from_static(b"{}"));
            *request.method_mut() = http::Method::POST;
            request
        })
        .await;
        assert!(
            head.starts_with("post /models/m?x=1 http/1.1\r\n"),
            "{head}"
        );
        assert_eq!(
            head.matches(&format!("host: {addr}\r\n")).count(),
            1,
            "{head}"
        );
        assert!(head.contains("user-agent: sf-models-bridge/"), "{head}");
    }

    #[tokio::test]
    async fn a_request_without_a_host_header_gets_its_origins() {
        let (head, addr) = head_sent(|addr| post(&format!("http://{addr}/x?y=1"))).await;
        assert!(head.starts_with("post /x?y=1 http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{head}");
    }

    #[test]
    fn host_headers_leave_out_default_ports_and_credentials() {
        for (uri, host) in [
            (
                "https://api.salesforce.com/einstein",
                Some("api.salesforce.com"),
            ),
            (
                "https://api.salesforce.com:443/x",
                Some("api.salesforce.com"),
            ),
            ("http://127.0.0.1:8080/x", Some("127.0.0.1:8080")),
            ("http://u:p@127.0.0.1:8080/x", Some("127.0.0.1:8080")),
            ("http://u:p@localhost/x", Some("localhost")),
            ("/relative", None),
        ] {
            let target = Target::parse(uri).unwrap();
            let header = target.request(Bytes::new()).headers().get(HOST).cloned();
            assert_eq!(header.as_ref().map(|h| h.to_str().unwrap()), host, "{uri}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_runtime_has_its_own_pool() {
        let (url, accepted) =
            serve_each("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned()).await;
        let upstream = upstream();
        call(&upstream, post(&url)).await.unwrap();
        // A second runtime on another thread opens its own connection, then reuses it.
        let (other, url_there) = (upstream.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                call(&other, post(&url_there)).await.unwrap();
                call(&other, post(&url_there)).await.unwrap();
            });
        })
        .await
        .unwrap();
        call(&upstream, post(&url)).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(upstream.shared.pools.load().len(), 2);
    }

    /// A chunked answer of `events` server-sent events, the end of the body right behind the last.
    fn chunked(events: usize) -> String {
        let mut answer = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned();
        for n in 0..events {
            let event = format!("data: {n}\n\n");
            answer += &format!("{:x}\r\n{event}\r\n", event.len());
        }
        answer + "0\r\n\r\n"
    }

    /// A server that answers one request on each connection with `answer`, then reads on
    /// until the client closes; the URL, and when each connection closed, in order.
    async fn serve_and_watch(
        answer: &'static str,
    ) -> (
        String,
        tokio::sync::mpsc::UnboundedReceiver<std::time::Instant>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (closed, closes) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let closed = closed.clone();
                tokio::spawn(async move {
                    if read_request(&mut socket).await.is_some() {
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        let mut rest = [0; 64];
                        while !matches!(socket.read(&mut rest).await, Ok(0) | Err(_)) {}
                    }
                    let _ = closed.send(std::time::Instant::now());
                });
            }
        });
        (url, closes)
    }

    #[derive(Default)]
    struct CountedWakes(AtomicUsize);

    impl std::task::Wake for CountedWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_burst_from_the_socket_is_handed_over_within_one_poll_without_waking_the_task() {
        let (url, accepted) = serve_each(chunked(5)).await;
        let upstream = upstream();
        let mut body = body_of(&upstream, &url).await;
        tokio::time::sleep(Duration::from_millis(50)).await; // the whole answer is there
        let wakes = Arc::new(CountedWakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut events = 0;
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(_))) => events += 1,
                Poll::Ready(None) => break,
                other => panic!("event {events}: {other:?}"),
            }
        }
        assert_eq!(events, 5);
        // Handing over a chunk wakes the connection and the connection the body: both are the
        // task that polls, which must not be made to run again for it.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        assert_eq!(upstream.pool().unwrap().idle(), 1);
        call(&upstream, post(&url)).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_left_after_its_last_event_keeps_its_connection_when_its_end_is_there() {
        let (url, accepted) = serve_each(chunked(3)).await;
        let upstream = upstream();
        for _ in 0..3 {
            let mut body = body_of(&upstream, &url).await;
            for _ in 0..3 {
                body.frame().await.unwrap().unwrap();
            }
            drop(body); // before its end was polled
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_left_unfinished_closes_its_connection() {
        let head_and_one_event =
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n";
        let (url, mut closes) = serve_and_watch(head_and_one_event).await;
        let upstream = upstream();
        let mut body = body_of(&upstream, &url).await;
        body.frame().await.unwrap().unwrap();
        drop(body);
        tokio::time::timeout(Duration::from_secs(1), closes.recv())
            .await
            .expect("the connection is closed at once")
            .unwrap();
        assert_eq!(upstream.pool().unwrap().idle(), 0);
    }

    #[tokio::test]
    async fn an_idle_connection_its_peer_closed_is_not_used() {
        // Keep-alive by the head, closed right after the answer.
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (url, accepted) = serve_counted(ok.to_owned(), 1).await;
        let upstream = upstream();
        for _ in 0..2 {
            assert_eq!(call(&upstream, post(&url)).await.unwrap(), "ok");
            tokio::time::sleep(Duration::from_millis(50)).await; // its close arrives
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_given_to_a_connection_its_peer_closed_comes_back_unsent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_request(&mut socket).await.unwrap();
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            socket.write_all(answer).await.unwrap();
        });
        let io = MaybeHttpsStream::Http(TokioIo::new(TcpStream::connect(addr).await.unwrap()));
        let mut connection = Connection::handshake(io).await.unwrap();
        let request = || Request::post("/").body(Full::new(Bytes::from_static(b"{}")));
        let Ok(response) = connection.send(request().unwrap()).await else {
            panic!("no answer");
        };
        let mut body = response.into_body();
        while std::future::poll_fn(|cx| connection.poll_body(&mut body, cx))
            .await
            .is_some()
        {}
        tokio::time::sleep(Duration::from_millis(50)).await; // its close arrives
        let unsent = connection.send(request().unwrap()).await;
        assert!(
            matches!(&unsent, Err(SendError::Unsent(request, _)) if request.uri() == "/"),
            "the request is handed back"
        );
    }

    #[tokio::test]
    async fn connections_idle_past_the_idle_timeout_are_closed() {
        let (url, mut closes) =
            serve_and_watch("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let upstream = Upstream::builder()
            .pool_idle_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let sent = std::time::Instant::now();
        assert_eq!(call(&upstream, post(&url)).await.unwrap(), "ok");
        assert_eq!(upstream.pool().unwrap().idle(), 1);
        let closed = tokio::time::timeout(Duration::from_secs(2), closes.recv())
            .await
            .expect("closed by the pool")
            .unwrap();
        assert!(closed - sent >= Duration::from_millis(200));
        assert_eq!(upstream.pool().unwrap().idle(), 0);
    }
}
