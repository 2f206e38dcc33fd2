//! The HTTP client side: one pooled hyper HTTP/1.1 client as a [`tower::Service`], and the one
//! retry loop of the crate.
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
mod client;
mod exchange;
mod retry;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

pub(crate) use body::collect_capped;
pub use body::UpstreamBody;
pub(crate) use client::Target;
pub use client::{ResponseFuture, Upstream, UpstreamBuilder};
pub(crate) use exchange::{
    AttemptObserver, Dispatcher, ExchangeError, Exchanged, Outgoing, Receive,
};
pub use retry::{parse_retry_after, AttemptOutcome, RetryPolicy, Verdict};

/// The largest Models API answer read into memory. The longest real answers (tens of thousands
/// of output tokens, a few hundred KiB even with every character JSON-escaped) stay far below it,
/// while `max_concurrent_requests` answers at this size still fit in memory.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// One upstream attempt failed without an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("cannot connect to Salesforce")]
    Connect(#[source] BoxError),
    /// The attempt took longer than its timeout.
    #[error("Salesforce did not answer in time")]
    Timeout,
    /// The connection closed before the request was written on it: the HTTP client handed the
    /// request back unsent, so Salesforce never saw it. (When that connection came from the
    /// pool, hyper-util has already resent the request once on another by itself.)
    #[error("the connection to Salesforce closed before the request was sent")]
    NotSent(#[source] BoxError),
    /// The connection broke after the request was written, or may have been: before the
    /// answer came, or while its body was read. Salesforce may have run (and billed) the
    /// generation, so it is retried only if the conf says so.
    #[error("the connection to Salesforce broke before the answer was complete")]
    Transport(#[source] BoxError),
    /// The request could not be sent as it is, such as to a URI that is not absolute.
    #[error("invalid upstream request")]
    InvalidRequest(#[source] BoxError),
    /// No upstream slot came free within the queue timeout.
    #[error("too many concurrent requests to Salesforce; try again shortly")]
    Overloaded,
    /// The request's total deadline passed, retries included.
    #[error("the request did not complete within its deadline of {0:?}, retries included")]
    DeadlineExceeded(Duration),
    /// The answer's body was larger than the limit; it was not read to the end.
    #[error("the Salesforce answer exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The HTTP client could not be built (at start-up), or was called outside a Tokio runtime.
    #[error("cannot build the HTTP client")]
    Build(#[source] BoxError),
}

/// The cause of an [`UpstreamError`]: hyper's, an I/O error, or TLS's.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl UpstreamError {
    /// Classifies an error of the HTTP client by type, never by its message. Whether the request
    /// reached Salesforce decides whether it may be sent again, and only two kinds say it did
    /// not: a connect error (DNS, TCP or TLS failed, or took longer than the connect timeout,
    /// before any byte of the request) and a cause that is hyper's `Canceled`, which hyper
    /// reports only together with the request it hands back unwritten (see
    /// `handed_back_unsent`). Everything else, "connection closed before message completed"
    /// included, is treated as sent: on a reused connection it may mean the server dropped the
    /// request unread, but nothing tells the bridge so.
    pub(crate) fn from_client(err: hyper_util::client::legacy::Error) -> Self {
        if err.is_connect() {
            UpstreamError::Connect(Box::new(err))
        } else if handed_back_unsent(&err) {
            UpstreamError::NotSent(Box::new(err))
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

/// Whether `err` or its causes include hyper's `Canceled`. hyper creates that kind only where it
/// gives the request back unwritten (`TrySendError` with the message: the dispatcher had not
/// started it when the connection closed, or the connection was not ready), and hyper-util
/// wraps that as its own `Canceled` kind, after resending by itself on a reused connection. A
/// request that was written and then lost is reported as `IncompleteMessage` or an I/O error
/// instead, without the request. (hyper-util's own `is_canceled` is private, hence the walk.)
fn handed_back_unsent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
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

/// A request extension: the timeout of this one attempt (answer head and body), overriding the
/// client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimeout(pub Duration);

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of causes, as hyper-util wraps hyper's errors.
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
}
