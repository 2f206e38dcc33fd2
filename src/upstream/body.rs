//! [`UpstreamBody`]: an upstream answer's body, read as it arrives.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::connection::Lent;
use super::UpstreamError;

/// The body of an upstream answer: whole already, or read from the connection as it arrives, so
/// a streaming surface can pass each event on at once. Reading it whole is bounded
/// ([`read_capped`](Self::read_capped)); read as it arrives, it can be bounded in total
/// ([`limit`](Self::limit)), and a surface's decoder bounds each event it buffers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use http_body_util::BodyExt;
/// use sf_models_bridge::upstream::{UpstreamBody, UpstreamError};
///
/// let events = futures_util::stream::iter(["data: 1\n\n", "data: 2\n\n"].map(|event| {
///     Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from_static(event.as_bytes())))
/// }));
/// let mut body = UpstreamBody::new(http_body_util::StreamBody::new(events)).limit(12);
/// let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
/// assert_eq!(first, "data: 1\n\n"); // each piece as it arrives
/// assert!(matches!(body.frame().await, Some(Err(UpstreamError::TooLarge(12)))));
/// # }
/// ```
pub struct UpstreamBody {
    kind: Kind,
    /// The most bytes this body may deliver in all, and how many it has.
    limit: Option<usize>,
    delivered: usize,
}

enum Kind {
    Whole(Option<Bytes>),
    /// Read from the connection, which this body drives, until the attempt's timeout fires.
    Incoming {
        body: Incoming,
        connection: Lent,
        expiry: Pin<Box<Sleep>>,
    },
    Other(UnsyncBoxBody<Bytes, UpstreamError>),
}

impl UpstreamBody {
    /// A body that is all there.
    pub fn whole(bytes: impl Into<Bytes>) -> Self {
        Self::of(Kind::Whole(Some(bytes.into())))
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind,
            limit: None,
            delivered: 0,
        }
    }

    /// The same body, which fails with [`UpstreamError::TooLarge`] once it has delivered more
    /// than `total` bytes: an upstream stream that never ends cannot hold a caller forever.
    pub fn limit(mut self, total: usize) -> Self {
        self.limit = Some(total);
        self
    }

    /// Any other body, for upstream clients other than [`Upstream`](super::Upstream): its errors
    /// count as a broken connection.
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Self::of(Kind::Other(
            body.map_err(|error| UpstreamError::Transport(error.into()))
                .boxed_unsync(),
        ))
    }

    /// The body of an answer on `connection`, which fails with [`UpstreamError::Timeout`] if
    /// it has not ended when `expiry` fires. Read to its end, it gives the connection back to
    /// its pool.
    pub(super) fn incoming(body: Incoming, connection: Lent, expiry: Pin<Box<Sleep>>) -> Self {
        Self::of(Kind::Incoming {
            body,
            connection,
            expiry,
        })
    }

    /// Gives the connection of a body read to its end back to its pool.
    fn give_back(&mut self) {
        if let Kind::Incoming { connection, .. } =
            std::mem::replace(&mut self.kind, Kind::Whole(None))
        {
            connection.give_back();
        }
    }

    /// The whole body, or [`UpstreamError::TooLarge`] as soon as it is known to exceed `limit`
    /// bytes: from the declared length, or else while reading, so that no more than `limit`
    /// bytes are ever held.
    pub async fn read_capped(self, limit: usize) -> Result<Bytes, UpstreamError> {
        // A body read whole already (as every one the exchange reads within its attempt) is
        // handed over as it is, without polling or a buffer.
        if let (Kind::Whole(Some(bytes)), None) = (&self.kind, self.limit) {
            return if bytes.len() > limit {
                Err(UpstreamError::TooLarge(limit))
            } else {
                Ok(bytes.clone())
            };
        }
        collect_capped(self, limit)
            .await?
            .ok_or(UpstreamError::TooLarge(limit))
    }
}

/// The whole of `body`, or `None` as soon as it is known to exceed `limit` bytes: from the
/// declared length, or else while reading, so that no more than `limit` bytes are ever held.
pub(crate) async fn collect_capped<B: Body<Data = Bytes>>(
    body: B,
    limit: usize,
) -> Result<Option<Bytes>, B::Error> {
    if body.size_hint().lower() > limit as u64 {
        return Ok(None);
    }
    let mut body = std::pin::pin!(body);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue; // trailers
        };
        length = length.saturating_add(chunk.len());
        if length > limit {
            return Ok(None);
        }
        chunks.push(chunk);
    }
    // Most answers arrive in one chunk, which is kept as it is rather than copied.
    Ok(Some(match chunks.pop() {
        Some(only) if chunks.is_empty() => only,
        last => {
            chunks.extend(last);
            Bytes::from(chunks.concat())
        }
    }))
}

impl From<Bytes> for UpstreamBody {
    fn from(bytes: Bytes) -> Self {
        Self::whole(bytes)
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Whole(_) => "Whole",
            Kind::Incoming { .. } => "Incoming",
            Kind::Other(_) => "Other",
        };
        f.debug_struct("UpstreamBody").field("kind", &kind).finish()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A reader often stops at the answer's last event, before the end of the body right
        // behind it: when that end has arrived already, the connection can serve another
        // request. Any other unfinished body closes it.
        if let Kind::Incoming {
            body, connection, ..
        } = &mut self.kind
        {
            if connection.finish(body) {
                self.give_back();
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming {
                body,
                connection,
                expiry,
            } => match connection.poll_body(body, cx) {
                Poll::Ready(None) => {
                    this.give_back();
                    Poll::Ready(None)
                }
                // Whatever breaks the body breaks after the request was sent.
                Poll::Ready(Some(frame)) => Poll::Ready(Some(
                    frame.map_err(|error| UpstreamError::Transport(Box::new(error))),
                )),
                Poll::Pending => match expiry.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.kind = Kind::Whole(None);
                        return Poll::Ready(Some(Err(UpstreamError::Timeout)));
                    }
                    Poll::Pending => Poll::Pending,
                },
            },
            Kind::Other(body) => Pin::new(body).poll_frame(cx),
        };
        let (Some(limit), Poll::Ready(Some(Ok(frame)))) = (this.limit, &polled) else {
            return polled;
        };
        let length = frame.data_ref().map_or(0, Bytes::len);
        this.delivered = this.delivered.saturating_add(length);
        if this.delivered > limit {
            // Nothing more is read: the rest of the answer is abandoned with the connection.
            this.kind = Kind::Whole(None);
            return Poll::Ready(Some(Err(UpstreamError::TooLarge(limit))));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole(bytes) => bytes.is_none(),
            Kind::Incoming { body, .. } => body.is_end_stream(),
            Kind::Other(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Incoming { body, .. } => body.size_hint(),
            Kind::Other(body) => body.size_hint(),
        }
    }
}
