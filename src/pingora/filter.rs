//! [`BridgeFilter`]: one call, made from any gateway's `request_filter`, that serves the bridge's
//! paths with the Tower service and leaves every other path alone.

use std::future::Future;
use std::pin::{pin, Pin};
use std::time::Duration;

use http::StatusCode;
use pingora::proxy::Session;
use pingora::ErrorType;
use tower::ServiceExt;

use super::body;
use super::linger::hand_off;
use super::session_body;
use super::BridgeService;
use crate::endpoint::Claimed;
use crate::layer::request_body::LINGER;
use crate::Endpoint;

/// Serves the bridge's routes inside a Pingora `request_filter` by driving the bridge's Tower
/// service; see the [module docs](super) for the `Ok(true)` / `Ok(false)` contract.
///
/// The filter has no limits of its own: the service gets the request head at once and reads the
/// body, under its own size limit and deadline, only if it wants it.
///
/// Cloning is cheap when the service is (the bridge's is: its state is behind an `Arc`).
#[derive(Debug, Clone)]
pub struct BridgeFilter<S> {
    service: S,
    claimed: Claimed,
    write_timeout: Duration,
}

/// [`BridgeFilter::write_timeout`]'s default, that of `server.write_timeout_secs`.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

impl<S> BridgeFilter<S> {
    /// A filter around `service`, taking every path of the bridge's.
    pub fn new(service: S) -> Self {
        Self {
            service,
            claimed: Claimed::ALL,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// How long one write of an answer may wait for the client to read it (default 30 s, as
    /// `server.write_timeout_secs`): a client that stops reading is then disconnected, instead
    /// of holding its connection and its answer forever. It bounds the idle time of each write,
    /// not the whole answer, so a slow reader that keeps reading is never cut. The ready-made
    /// gateway sets it from `server.write_timeout_secs`.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Leaves `endpoints` to the gateway: [`try_serve`](Self::try_serve) returns `Ok(false)` for
    /// their paths, as for any path that is not the bridge's. For a gateway that answers `/health`
    /// or `/metrics` itself, for example.
    pub fn except(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.claimed = self.claimed.except(endpoints);
        self
    }

    /// Whether `path` is one of the bridge's, i.e. whether [`try_serve`](Self::try_serve) would
    /// take a request for it.
    pub fn handles(&self, path: &str) -> bool {
        self.claimed.at(path).is_some()
    }

    /// The service this filter drives.
    pub fn get_ref(&self) -> &S {
        &self.service
    }
}

impl<S> BridgeFilter<S>
where
    S: BridgeService,
{
    /// Serves the request if its path is the bridge's: calls the service at once with the request
    /// head and a [`SessionBody`](super::SessionBody), writes its response and returns `Ok(true)`.
    /// Returns `Ok(false)`, having touched nothing, for any other path.
    ///
    /// The body is read from the client only while the service reads it, and only until the
    /// service's response is ready; `100 Continue` is sent when the service first asks for the
    /// body. A request whose body was not read to its end (an answer given from the head, such as
    /// a 401 or a 413) gets `Connection: close`, and what the client still sends is read and
    /// discarded for a moment after the answer, so that closing does not reset the connection
    /// before the client reads it.
    ///
    /// While the service works on a request whose body it has read, the client's connection is
    /// watched: a client that closes it (or resets it) makes `try_serve` drop the service's
    /// response future at once, which cancels the work (for the bridge: the upstream call, its
    /// retries and its slot; the request is recorded as a 499), and return an `Err`.
    ///
    /// An `Err` means the client is gone or could not be written to; return it from
    /// `request_filter` and Pingora closes the connection without an answer.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http_body_util::{BodyExt, Full};
    /// # use pingora::proxy::Session;
    /// # use sf_models_bridge::pingora::{BridgeFilter, SessionBody};
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Echoes the request body, which it reads when it wants to.
    /// let bridge = tower::service_fn(|request: http::Request<SessionBody>| async move {
    ///     let body = match request.into_body().collect().await {
    ///         Ok(body) => body.to_bytes(),
    ///         Err(_) => Bytes::from_static(b"unreadable"),
    ///     };
    ///     Ok::<_, Infallible>(http::Response::new(Full::new(body)))
    /// });
    /// let filter = BridgeFilter::new(bridge);
    ///
    /// // A session on an in-memory connection, as Pingora hands one to `request_filter`.
    /// let (mut client, server) = tokio::io::duplex(4096);
    /// client.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]").await?;
    /// let mut session = Session::new_h1(Box::new(server));
    /// session.read_request().await?;
    ///
    /// assert!(filter.try_serve(&mut session).await?); // the bridge's path: answered
    /// drop(session);
    /// let mut response = String::new();
    /// client.read_to_string(&mut response).await?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(response.ends_with("\r\n\r\n[]"));
    /// # Ok(()) }
    /// ```
    pub async fn try_serve(&self, session: &mut Session) -> pingora::Result<bool> {
        if !self.handles(session.req_header().uri.path()) {
            return Ok(false);
        }
        let (body, mut pump) = session_body::channel(session);
        let request = body::to_http_request(session.req_header(), body);
        let answered = {
            let mut answer = pin!(self.service.clone().oneshot(request));
            let early = {
                let mut pumping = pin!(pump.run(session));
                // The answer first: one ready without the body never lets the pump read a byte.
                // The pump ends early when the body is read to its end or dropped; it is
                // dropped, and stops reading, once the answer is ready.
                tokio::select! {
                    biased;
                    answered = &mut answer => Some(answered),
                    () = &mut pumping => None,
                }
            };
            match early {
                Some(answered) => answered,
                None => unless_the_client_leaves(session, answer).await?,
            }
        };
        let Ok(response) = answered;
        let read_to_end = session.is_body_done();
        if !read_to_end {
            // The rest of the body is still on its way, or never will be: this connection cannot
            // carry another request.
            session.set_keepalive(None);
        }
        let status = response.status();
        body::write_response(session, response, self.write_timeout).await?;
        if !read_to_end && pump.client_may_be_sending() {
            // After a 408 the client was too slow already: a short linger lets one still
            // uploading read its answer instead of a reset, without holding it long.
            let limit = if status == StatusCode::REQUEST_TIMEOUT {
                LINGER_AFTER_TIMEOUT
            } else {
                LINGER
            };
            linger(session, limit).await;
        }
        Ok(true)
    }
}

/// Awaits `answer` while watching the client's connection, as pingora-proxy does while it waits
/// on an upstream: a client that leaves gets an `Err` at once, and `answer` is dropped with it,
/// which cancels the service's work (the upstream call, its retries, its slot) instead of letting
/// it run to its deadline for nobody.
///
/// Only a request whose body was read to its end is watched: reading the connection then can
/// only find its end, or the start of a pipelined request. A body the service dropped unread
/// stays unread (and the answer will close the connection anyway).
pub(super) async fn unless_the_client_leaves<F: Future>(
    session: &mut Session,
    mut answer: Pin<&mut F>,
) -> pingora::Result<F::Output> {
    if !session.is_body_done() {
        return Ok(answer.await);
    }
    tokio::select! {
        biased;
        answered = &mut answer => return Ok(answered),
        watched = session.read_body_or_idle(true) => match watched {
            // Bytes after the request: the client is still there, pipelining. One byte of its
            // next request was consumed, so this connection cannot carry it.
            Err(e) if e.etype() == &ErrorType::ConnectError => session.set_keepalive(None),
            // EOF, a reset, or a closed HTTP/2 stream: nobody waits for the answer.
            Err(e) => {
                tracing::debug!(error = %e, "client left before the answer; cancelling");
                return Err(e.into_down());
            }
            // Not returned once the body is done; if it were, there is nothing to watch.
            Ok(_) => {}
        },
    }
    Ok(answer.await)
}

/// How long the rest of a body is drained after a 408.
const LINGER_AFTER_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads and discards what the client still sends, for `limit` at most: closing a connection
/// with unread data makes the kernel send a reset, which can destroy the answer before the client
/// reads it (nginx's "lingering close" exists for the same reason). On a plain socket this
/// happens off the connection's task, which then ends and frees the connection's state.
async fn linger(session: &mut Session, limit: Duration) {
    if hand_off(session, limit) {
        return;
    }
    session.set_total_drain_timeout(Some(limit));
    if let Err(e) = session.drain_request_body().await {
        tracing::debug!(error = %e, "unread request body not drained; closing anyway");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingora::SessionBody;
    use crate::{Config, Salesforce, SalesforceLayer, Upstream};
    use bytes::Bytes;
    use http_body::Body;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tower::Layer;

    type Echo = tower::util::BoxCloneSyncService<
        http::Request<SessionBody>,
        http::Response<Full<Bytes>>,
        Infallible,
    >;

    /// Echoes the request body; no `Content-Length`, so the filter must add it. A body that
    /// cannot be read is a 400 naming the error's kind.
    fn echo() -> Echo {
        Echo::new(tower::service_fn(
            |request: http::Request<SessionBody>| async move {
                let response = match request.into_body().collect().await {
                    Ok(body) => http::Response::new(Full::new(body.to_bytes())),
                    Err(error) => http::Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(Full::new(Bytes::from(error.kind().to_string())))
                        .unwrap(),
                };
                Ok::<_, Infallible>(response)
            },
        ))
    }

    /// The key the real bridge of these tests wants.
    const KEY: &str = "sk-filter-test";

    /// The real bridge, with a body limit and a body deadline. No request of these tests reaches
    /// its upstream or token endpoint.
    fn bridge(max_request_bytes: usize, body_deadline: Duration) -> Salesforce<Upstream> {
        let text = format!(
            r#"
            [salesforce]
            api_base = "http://127.0.0.1:1/v1"
            token_url = "http://127.0.0.1:1/token"
            client_id = "id"
            client_secret = "secret"
            max_request_bytes = {max_request_bytes}
            [auth]
            api_keys = ["{KEY}"]
            [[routes]]
            model = "m"
            salesforce_model = "m"
            "#
        );
        let mut config = Config::from_toml_with_env(&text, |_| None).unwrap();
        config.server.body_read_timeout = body_deadline;
        let layer = SalesforceLayer::new(&config).unwrap();
        layer.layer(Upstream::new(&config.salesforce).unwrap())
    }

    /// A session whose request header has been read from `head`; the client end is returned.
    async fn session(head: &str) -> (Session, DuplexStream) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(head.as_bytes()).await.unwrap();
        let mut session = Session::new_h1(Box::new(server));
        assert!(session.read_request().await.unwrap());
        (session, client)
    }

    /// `try_serve` in the background, so the test can play the client meanwhile.
    fn spawn_serve<S: BridgeService>(
        filter: BridgeFilter<S>,
        mut session: Session,
    ) -> tokio::task::JoinHandle<Session> {
        tokio::spawn(async move {
            assert!(filter.try_serve(&mut session).await.unwrap());
            session
        })
    }

    /// `try_serve`, which must answer within 5 s: a filter that waits for a body the client
    /// will not send fails here rather than hanging.
    async fn serve<S: BridgeService>(filter: &BridgeFilter<S>, session: &mut Session) -> bool {
        tokio::time::timeout(Duration::from_secs(5), filter.try_serve(session))
            .await
            .expect("answered within 5 s")
            .unwrap()
    }

    /// Everything the filter wrote, once the session is gone.
    async fn written(session: Session, mut client: DuplexStream) -> String {
        drop(session);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        out
    }

    /// Reads `100 Continue` and the blank line after it.
    async fn read_continue(client: &mut DuplexStream) {
        let mut continue_line = [0u8; 25];
        tokio::time::timeout(
            Duration::from_secs(2),
            client.read_exact(&mut continue_line),
        )
        .await
        .expect("100 Continue within 2 s")
        .unwrap();
        assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[tokio::test]
    async fn other_paths_are_left_alone() {
        let (mut session, client) =
            session("POST /v2/other HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await;
        assert!(!BridgeFilter::new(echo())
            .try_serve(&mut session)
            .await
            .unwrap());
        assert!(session.response_written().is_none());
        assert_eq!(session.read_request_body().await.unwrap().unwrap(), "abc");
        assert_eq!(written(session, client).await, "");
    }

    #[tokio::test]
    async fn excepted_paths_are_left_alone() {
        let filter = BridgeFilter::new(echo()).except([Endpoint::Health]);
        assert!(!filter.handles("/health"));
        assert!(filter.handles("/ready"));
        let (mut session, client) = session("GET /health HTTP/1.1\r\n\r\n").await;
        assert!(!filter.try_serve(&mut session).await.unwrap());
        assert!(session.response_written().is_none());
        assert_eq!(written(session, client).await, "");
    }

    #[tokio::test]
    async fn bridge_path_is_served_with_a_length() {
        let (mut session, client) =
            session("POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").await;
        assert!(serve(&BridgeFilter::new(echo()), &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("content-length: 5\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
    }

    /// A declared length over the service's limit, with a valid key: the service's 413, from the
    /// head alone, and no `100 Continue`. The filter has no limit of its own that could differ.
    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_unread() {
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 11\r\nExpect: 100-continue\r\n\r\n"
        );
        let (mut session, client) = session(&head).await;
        let filter = BridgeFilter::new(bridge(10, Duration::from_secs(30)));
        assert!(serve(&filter, &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(!out.contains("100 Continue"), "{out}");
        assert!(out.contains(r#""code":"request_too_large""#), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

    /// Refusals carry `x-request-id` like the bridge's other answers: the caller's when usable,
    /// a new one otherwise.
    #[tokio::test]
    async fn refusals_carry_a_request_id() {
        let filter = BridgeFilter::new(bridge(10, Duration::from_secs(30)));
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 11\r\n\
             Expect: 100-continue\r\nx-request-id: caller-7\r\n\r\n"
        );
        let (mut refused, client) = session(&head).await;
        assert!(serve(&filter, &mut refused).await);
        let out = written(refused, client).await.to_ascii_lowercase();
        assert!(out.starts_with("http/1.1 413 "), "{out}");
        assert!(out.contains("\r\nx-request-id: caller-7\r\n"), "{out}");

        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 11\r\n\
             Expect: 100-continue\r\n\r\n"
        );
        let (mut refused, client) = session(&head).await;
        assert!(serve(&filter, &mut refused).await);
        let out = written(refused, client).await.to_ascii_lowercase();
        let id = out
            .split("\r\n")
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id: {out}"));
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }

    #[tokio::test]
    async fn chunked_body_growing_past_the_limit_is_refused() {
        // The client is still sending: the body has no last chunk yet.
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n"
        );
        let (mut session, mut client) = session(&head).await;
        // ... until the answer, after which it stops: lingering ends at once.
        client.shutdown().await.unwrap();
        let filter = BridgeFilter::new(bridge(10, Duration::from_secs(30)));
        assert!(serve(&filter, &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(out.contains(r#""code":"request_too_large""#), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

    /// The service's own body deadline, not one of the filter's: a body that stops mid-way is a
    /// 408 when the service's deadline passes.
    #[tokio::test]
    async fn slow_body_is_cut_off_by_the_deadline() {
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 10\r\n\r\nabc"
        );
        let (mut session, client) = session(&head).await;
        let filter = BridgeFilter::new(bridge(1024, Duration::from_millis(200)));
        let started = tokio::time::Instant::now();
        assert!(serve(&filter, &mut session).await);
        assert!(started.elapsed() < Duration::from_secs(2), "no lingering");
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(out.contains(r#""type":"invalid_request_error""#), "{out}");
        assert!(out.contains("did not arrive within 200ms"), "{out}");
    }

    /// A client still uploading after its 408 has what it sends drained for a moment, so the
    /// answer is not destroyed by a reset before it reads it, but not for the full linger.
    #[tokio::test]
    async fn a_408_drains_a_client_still_uploading_briefly() {
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 100000\r\n\r\nabc"
        );
        let (session, client) = session(&head).await;
        let (mut reader, mut writer) = tokio::io::split(client);
        let filter = BridgeFilter::new(bridge(1 << 20, Duration::from_millis(200)));
        let started = tokio::time::Instant::now();
        let serving = spawn_serve(filter, session);
        let uploading = tokio::spawn(async move {
            let mut sent = 0;
            while writer.write_all(b"x").await.is_ok() && sent < 60 {
                sent += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent
        });
        let session = serving.await.unwrap();
        let served = started.elapsed();
        assert!(
            served >= LINGER_AFTER_TIMEOUT && served < LINGER,
            "drained for {served:?}"
        );
        drop(session);
        let mut out = String::new();
        reader.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(
            uploading.await.unwrap() > 20,
            "the upload went on during the drain"
        );
    }

    /// A client quiet for longer than Pingora's per-read timeout: the read fails as a timed-out
    /// `io::Error`, which the service answers 408 long before its own deadline.
    #[tokio::test]
    async fn a_stalled_read_is_the_services_408() {
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 10\r\n\r\nabc"
        );
        let (mut session, client) = session(&head).await;
        session.set_read_timeout(Some(Duration::from_millis(200)));
        let filter = BridgeFilter::new(bridge(1024, Duration::from_secs(30)));
        assert!(serve(&filter, &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(out.contains(r#""code":"request_timeout""#), "{out}");
        assert!(
            out.contains("the client stopped sending the request body"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn expect_continue_is_answered_before_the_body_is_read() {
        let head =
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        let (session, mut client) = session(head).await;
        let serving = spawn_serve(BridgeFilter::new(echo()), session);
        read_continue(&mut client).await;
        client.write_all(b"ok").await.unwrap();
        let out = written(serving.await.unwrap(), client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nok"), "{out}");
    }

    /// An authorised request that expects `100 Continue` gets it from the real bridge, sends its
    /// body, and gets the answer to that body.
    #[tokio::test]
    async fn an_authorised_request_gets_100_continue_then_its_answer() {
        let body = r#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#;
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        let (session, mut client) = session(&head).await;
        let filter = BridgeFilter::new(bridge(1024, Duration::from_secs(30)));
        let serving = spawn_serve(filter, session);
        read_continue(&mut client).await;
        client.write_all(body.as_bytes()).await.unwrap();
        let out = written(serving.await.unwrap(), client).await;
        assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
        assert!(out.contains(r#""code":"model_not_found""#), "{out}");
        assert!(out.contains("gpt-9"), "the body was read: {out}");
    }

    /// A caller without a key that declares a large body and waits for `100 Continue` gets its
    /// 401 from the head, and never the invitation to upload.
    #[tokio::test]
    async fn no_key_and_expect_continue_gets_401_without_100_continue() {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 1000000\r\n\
                    Expect: 100-continue\r\n\r\n";
        let (mut session, client) = session(head).await;
        let filter = BridgeFilter::new(bridge(1024 * 1024, Duration::from_secs(30)));
        assert!(serve(&filter, &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 401 "), "{out}");
        assert!(!out.contains("100 Continue"), "{out}");
        assert!(out.contains(r#""code":"invalid_api_key""#), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

    /// A caller without a key that sends a body is answered while most of it is still unsent:
    /// the filter waited for no body byte. What it sends afterwards is drained, then the
    /// connection closes.
    #[tokio::test]
    async fn no_key_is_answered_before_the_body_arrives() {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"model\":";
        let (session, mut client) = session(head).await;
        let filter = BridgeFilter::new(bridge(1024 * 1024, Duration::from_secs(30)));
        let serving = spawn_serve(filter, session);
        let mut status = [0u8; 13];
        tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut status))
            .await
            .expect("answered before the rest of the body was sent")
            .unwrap();
        assert_eq!(&status, b"HTTP/1.1 401 ");
        client.write_all(&[b' '; 1000 - 9]).await.unwrap();
        let session = tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("lingering ends with the body")
            .unwrap();
        assert_eq!(session.body_bytes_read(), 1000, "the rest was drained");
        let out = written(session, client).await.to_ascii_lowercase();
        assert!(out.contains("connection: close"), "{out}");
        assert!(out.contains(r#""code":"invalid_api_key""#), "{out}");
    }

    /// Nothing is read, and no `100 Continue` sent, until the service polls the body; the body
    /// knows its declared length, and that a request without one has none.
    #[tokio::test]
    async fn nothing_is_read_until_the_service_polls_the_body() {
        let late_reader = tower::service_fn(|request: http::Request<SessionBody>| async move {
            let hint = request.body().size_hint().exact();
            let ended = request.body().is_end_stream();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let response = http::Response::builder()
                .header("x-hint", format!("{hint:?}"))
                .header("x-ended", ended.to_string())
                .body(Full::new(body))
                .unwrap();
            Ok::<_, Infallible>(response)
        });
        let filter = BridgeFilter::new(late_reader);

        let head =
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        let (posted, mut client) = session(head).await;
        let serving = spawn_serve(filter.clone(), posted);
        let mut early = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(150), client.read(&mut early)).await;
        assert!(read.is_err(), "written before the body was polled");
        read_continue(&mut client).await;
        client.write_all(b"hello").await.unwrap();
        let out = written(serving.await.unwrap(), client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("x-hint: Some(5)\r\n"), "{out}");
        assert!(out.contains("x-ended: false\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");

        let (mut session, client) = session("GET /v1/models HTTP/1.1\r\n\r\n").await;
        assert!(serve(&filter, &mut session).await);
        let out = written(session, client).await;
        assert!(out.contains("x-hint: Some(0)\r\n"), "{out}");
        assert!(out.contains("x-ended: true\r\n"), "{out}");
        assert!(
            !out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

    /// A client that leaves while the service works makes `try_serve` drop the service's future
    /// (cancelling its work) and return an `Err`, at once rather than when the work ends.
    #[tokio::test]
    async fn a_client_that_leaves_cancels_the_service() {
        struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = dropped.clone();
        let slow = tower::service_fn(move |_: http::Request<SessionBody>| {
            let guard = Dropped(flag.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(guard);
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
            }
        });
        let (mut session, client) = session("GET /v1/models HTTP/1.1\r\n\r\n").await;
        drop(client);
        let served = tokio::time::timeout(
            Duration::from_secs(1),
            BridgeFilter::new(slow).try_serve(&mut session),
        )
        .await
        .expect("given up within 1 s");
        assert!(served.is_err());
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        assert!(session.response_written().is_none());
    }

    /// A body that breaks mid-way reaches the service as an `io::Error` of a kind other than
    /// `TimedOut`.
    #[tokio::test]
    async fn a_connection_closed_mid_body_is_an_unexpected_eof() {
        let (mut session, mut client) =
            session("POST /v1/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await;
        client.shutdown().await.unwrap();
        assert!(serve(&BridgeFilter::new(echo()), &mut session).await);
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(out.ends_with("\r\n\r\nunexpected end of file"), "{out}");
    }
}
