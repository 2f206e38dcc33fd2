//! [`BridgeFilter`]: one call, made from any gateway's `request_filter`, that serves the bridge's
//! paths with the Tower service and leaves every other path alone.

use super::BridgeService;
use std::time::Duration;

use pingora::proxy::Session;
use tower::ServiceExt;

use super::body::{self, Refusal};
use super::envelope::ErrorAnswer;
use crate::endpoint::Claimed;
use crate::layer::LINGER;
use crate::{Config, Endpoint};

/// Serves the bridge's routes inside a Pingora `request_filter` by driving the bridge's Tower
/// service; see the [module docs](super) for the `Ok(true)` / `Ok(false)` contract.
///
/// Cloning is cheap when the service is (the bridge's is: its state is behind an `Arc`).
#[derive(Debug, Clone)]
pub struct BridgeFilter<S> {
    service: S,
    claimed: Claimed,
    max_request_bytes: usize,
    body_read_timeout: Duration,
}

impl<S> BridgeFilter<S> {
    /// A filter around `service`, with a 1 MiB body limit and a 30 s body deadline.
    pub fn new(service: S) -> Self {
        Self {
            service,
            claimed: Claimed::ALL,
            max_request_bytes: 1024 * 1024,
            body_read_timeout: Duration::from_secs(30),
        }
    }

    /// A filter around `service` with the limits of our conf: `salesforce.max_request_bytes` and
    /// `server.body_read_timeout_secs`.
    pub fn from_config(service: S, config: &Config) -> Self {
        Self::new(service)
            .max_request_bytes(config.salesforce.max_request_bytes)
            .body_read_timeout(config.server.body_read_timeout)
    }

    /// Sets the largest request body read; a larger one is answered 413.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Sets how long the whole request body may take to arrive; a slower one is answered 408.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
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
    /// Serves the request if its path is the bridge's: reads the body (under the size limit and the
    /// deadline), calls the service, writes its response and returns `Ok(true)`. Returns
    /// `Ok(false)`, having touched nothing, for any other path.
    ///
    /// An `Err` means the client could not be written to; return it from `request_filter` and
    /// Pingora closes the connection.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use pingora::proxy::Session;
    /// # use sf_models_bridge::pingora::BridgeFilter;
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bridge = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    ///     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"[]"))))
    /// });
    /// let filter = BridgeFilter::new(bridge);
    ///
    /// // A session on an in-memory connection, as Pingora hands one to `request_filter`.
    /// let (mut client, server) = tokio::io::duplex(4096);
    /// client.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").await?;
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
        let Some(endpoint) = self.claimed.at(session.req_header().uri.path()) else {
            return Ok(false);
        };
        let body = match body::read_request(session, self.max_request_bytes, self.body_read_timeout)
            .await
        {
            Ok(body) => body,
            Err(refusal) => {
                self.refuse(session, refusal, endpoint).await?;
                return Ok(true);
            }
        };
        let request = body::to_http_request(session.req_header(), body);
        let Ok(response) = self.service.clone().oneshot(request).await;
        body::write_response(session, response).await?;
        Ok(true)
    }

    /// Answers a refused body through the service, so the refusal is answered, counted and logged
    /// as the axum mount's are: the service gets the request without its body and with the
    /// refusal attached (see `RefusedBody`). A service that is not the bridge's does not answer it,
    /// and the filter answers it with the bridge's words. The connection is closed afterwards:
    /// part of the body may be unread.
    async fn refuse(
        &self,
        session: &mut Session,
        refusal: Refusal,
        endpoint: Endpoint,
    ) -> pingora::Result<()> {
        let linger = matches!(refusal, Refusal::TooLarge { .. })
            && !body::expects_continue(session.req_header());
        let refused = refusal.into_refused()?;
        tracing::debug!(route = endpoint.as_str(), refused = ?refused, "request body refused");
        session.set_keepalive(None);
        ErrorAnswer::from(refused).write(session).await?;
        if linger {
            session.set_total_drain_timeout(Some(LINGER));
            if let Err(e) = session.drain_request_body().await {
                tracing::debug!(error = %e, "oversized body not drained; closing anyway");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    type Echo = tower::util::BoxCloneSyncService<
        http::Request<Full<Bytes>>,
        http::Response<Full<Bytes>>,
        Infallible,
    >;

    /// Echoes the request body; no `Content-Length`, so the filter must add it.
    fn echo() -> Echo {
        Echo::new(tower::service_fn(
            |request: http::Request<Full<Bytes>>| async move {
                let body = request.into_body().collect().await?.to_bytes();
                Ok::<_, Infallible>(http::Response::new(Full::new(body)))
            },
        ))
    }

    /// A session whose request header has been read from `head`; the client end is returned.
    async fn session(head: &str) -> (Session, DuplexStream) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(head.as_bytes()).await.unwrap();
        let mut session = Session::new_h1(Box::new(server));
        assert!(session.read_request().await.unwrap());
        (session, client)
    }

    /// Everything the filter wrote, once the session is gone.
    async fn written(session: Session, mut client: DuplexStream) -> String {
        drop(session);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        out
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
        assert!(BridgeFilter::new(echo())
            .try_serve(&mut session)
            .await
            .unwrap());
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("content-length: 5\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
    }

    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_unread() {
        let head =
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n";
        let (mut session, client) = session(head).await;
        let filter = BridgeFilter::new(echo()).max_request_bytes(10);
        assert!(filter.try_serve(&mut session).await.unwrap());
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(!out.contains("100 Continue"), "{out}");
        assert!(out.contains(r#""code":"request_too_large""#), "{out}");
    }

    /// The mount's own refusals carry `x-request-id` like the bridge's answers: the caller's when
    /// usable, a new one otherwise.
    #[tokio::test]
    async fn refusals_carry_a_request_id() {
        let filter = BridgeFilter::new(echo()).max_request_bytes(10);
        let head = "POST /v1/completions HTTP/1.1\r\nContent-Length: 11\r\n\
                    Expect: 100-continue\r\nx-request-id: caller-7\r\n\r\n";
        let (mut refused, client) = session(head).await;
        assert!(filter.try_serve(&mut refused).await.unwrap());
        let out = written(refused, client).await.to_ascii_lowercase();
        assert!(out.starts_with("http/1.1 413 "), "{out}");
        assert!(out.contains("\r\nx-request-id: caller-7\r\n"), "{out}");

        let head =
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n";
        let (mut refused, client) = session(head).await;
        assert!(filter.try_serve(&mut refused).await.unwrap());
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
        let head = "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
        let (mut session, client) = session(head).await;
        let filter = BridgeFilter::new(echo()).max_request_bytes(10);
        assert!(filter.try_serve(&mut session).await.unwrap());
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn slow_body_is_cut_off_by_the_deadline() {
        let head = "POST /v1/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let (mut session, client) = session(head).await;
        let filter = BridgeFilter::new(echo()).body_read_timeout(Duration::from_millis(200));
        assert!(filter.try_serve(&mut session).await.unwrap());
        let out = written(session, client).await;
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(out.contains(r#""type":"invalid_request_error""#), "{out}");
    }

    #[tokio::test]
    async fn expect_continue_is_answered_before_the_body_is_read() {
        let head =
            "POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        let (mut session, mut client) = session(head).await;
        let serve = tokio::spawn(async move {
            BridgeFilter::new(echo())
                .try_serve(&mut session)
                .await
                .unwrap();
            session
        });
        let mut continue_line = [0u8; 25];
        client.read_exact(&mut continue_line).await.unwrap();
        assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
        client.write_all(b"ok").await.unwrap();
        let out = written(serve.await.unwrap(), client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nok"), "{out}");
    }
}
