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
mod connection;
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
    /// pool, the request has already been sent once more on a new one.)
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
