//! [`SessionBody`]: a Pingora session's request body, read from the socket only once the service
//! asks for it, and the [`Pump`] that reads it.
//!
//! The filter cannot hand the service the session itself (it writes the answer on it afterwards),
//! so the two meet through a channel, the way hyper hands a service its `Incoming` body: the
//! body's first poll is the demand; only then does the pump answer `Expect: 100-continue` and read,
//! one chunk ahead of the service at most.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pingora::proxy::Session;
use pingora::{Error, ErrorType};
use tokio::sync::{mpsc, oneshot};

use super::body::{declared_length, expects_continue};

/// The request body the Pingora mount hands the bridge's service: a stream of `Bytes` read from the
/// client's connection on demand.
///
/// Nothing is read, and no `100 Continue` is sent to a client that waits for one, until the body is
/// first polled; at most one chunk is read ahead of the reader. A service that answers from the
/// request head alone (a wrong method, a missing key, a declared length over its limit) therefore
/// never makes the gateway receive the body. Limits are the service's: the body has no size limit
/// and no deadline of its own.
///
/// Errors are [`std::io::Error`]s: a client that went quiet longer than Pingora's downstream read
/// timeout is [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut), a connection closed mid-body is
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof), broken framing is
/// [`InvalidData`](io::ErrorKind::InvalidData). Once the service's response is ready the mount stops
/// reading: a body still polled after that (a service answering before it read the body, and
/// draining it in the background) ends with an error of kind `Other`.
#[derive(Debug)]
pub struct SessionBody {
    /// Sent on the first poll: the service wants the body.
    demand: Option<oneshot::Sender<()>>,
    /// What the pump read; `None` once the body has ended (or had nothing to send).
    chunks: Option<mpsc::Receiver<Chunk>>,
    /// How much of a declared `Content-Length` has not arrived yet; `None` for a chunked body.
    remaining: Option<u64>,
}

/// One message from the pump.
#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    End,
    Failed(io::Error),
}

impl SessionBody {
    fn ended(&mut self) {
        self.demand = None;
        self.chunks = None;
    }
}

impl Body for SessionBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(chunks) = this.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(demand) = this.demand.take() {
            // The pump is gone when the answer was given first; the channel says so just below.
            demand.send(()).ok();
        }
        let chunk = ready!(chunks.poll_recv(cx));
        Poll::Ready(match chunk {
            Some(Chunk::Data(data)) => {
                let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                this.remaining = this.remaining.map(|left| left.saturating_sub(len));
                Some(Ok(Frame::data(data)))
            }
            Some(Chunk::End) => {
                this.ended();
                None
            }
            Some(Chunk::Failed(error)) => {
                this.ended();
                Some(Err(error))
            }
            None => {
                this.ended();
                Some(Err(io::Error::other(
                    "the request body is no longer read: the answer was given",
                )))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.chunks, self.remaining) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Some(left)) => SizeHint::with_exact(left),
            (Some(_), None) => SizeHint::default(),
        }
    }
}

/// Reads the session's request body into a [`SessionBody`] once it is polled; driven by the filter
/// alongside the service's response future, and dropped when that completes.
#[derive(Debug)]
pub(super) struct Pump {
    demand: Option<oneshot::Receiver<()>>,
    chunks: mpsc::Sender<Chunk>,
    expects_continue: bool,
    /// `100 Continue` was written.
    continued: bool,
    /// A read failed (a stalled client, a broken connection, bad framing).
    failed: bool,
}

/// The body for `session`'s request, and the pump that fills it.
pub(super) fn channel(session: &mut Session) -> (SessionBody, Pump) {
    let (demand_tx, demand_rx) = oneshot::channel();
    // One chunk buffered ahead of the service: backpressure, as with hyper's body.
    let (chunks_tx, chunks_rx) = mpsc::channel(1);
    let empty = session.is_body_empty();
    let body = SessionBody {
        demand: Some(demand_tx),
        chunks: (!empty).then_some(chunks_rx),
        remaining: declared_length(session.req_header()),
    };
    let pump = Pump {
        demand: (!empty).then_some(demand_rx),
        chunks: chunks_tx,
        expects_continue: expects_continue(session.req_header()),
        continued: false,
        failed: false,
    };
    (body, pump)
}

impl Pump {
    /// Whether the client may still be sending body bytes the service did not read: not when it
    /// waits on a `100 Continue` it never got, nor after a read failed (the client stalled, or
    /// the connection or its framing broke), when the rest is not worth waiting for.
    pub(super) fn client_may_be_sending(&self) -> bool {
        !self.failed && (self.continued || !self.expects_continue)
    }

    /// Waits until the body is first polled, answers `Expect: 100-continue`, then forwards the
    /// body chunk by chunk until it ends, a read fails, or the body is dropped.
    pub(super) async fn run(&mut self, session: &mut Session) {
        let Some(demand) = self.demand.take() else {
            return; // no body to read
        };
        if demand.await.is_err() {
            return; // the body was dropped unread
        }
        if self.expects_continue {
            if let Err(e) = session.write_continue_response().await {
                self.failed = true;
                self.chunks.send(Chunk::Failed(to_io(e))).await.ok();
                return;
            }
            self.continued = true;
        }
        loop {
            // A free slot first, then a read: at most one chunk is ever read ahead of the service.
            let Ok(slot) = self.chunks.reserve().await else {
                return; // the body was dropped: stop reading
            };
            let read = tokio::select! {
                biased;
                () = self.chunks.closed() => return,
                read = session.read_request_body() => read,
            };
            let chunk = match read {
                Ok(Some(data)) => Chunk::Data(data),
                Ok(None) => Chunk::End,
                Err(e) => {
                    tracing::debug!(error = %e, "request body unreadable");
                    self.failed = true;
                    Chunk::Failed(to_io(e))
                }
            };
            let more = matches!(chunk, Chunk::Data(_));
            slot.send(chunk);
            if !more {
                return;
            }
        }
    }
}

/// A Pingora read error as the `io::Error` the service classifies by kind: the per-read timeout
/// becomes `TimedOut`, which the bridge answers 408. The Pingora error stays inside it.
fn to_io(error: Box<Error>) -> io::Error {
    let kind = match error.etype() {
        ErrorType::ReadTimedout => io::ErrorKind::TimedOut,
        ErrorType::ConnectionClosed => io::ErrorKind::UnexpectedEof,
        // A socket error: its own kind when Pingora kept it.
        ErrorType::ReadError | ErrorType::WriteError => error
            .root_cause()
            .downcast_ref::<io::Error>()
            .map_or(io::ErrorKind::BrokenPipe, io::Error::kind),
        // Bad chunk framing and the like.
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_keep_their_kind() {
        let kind = |error: Box<Error>| to_io(error).kind();
        let timed_out = Error::explain(ErrorType::ReadTimedout, "reading body, timeout: 60s");
        assert_eq!(kind(timed_out), io::ErrorKind::TimedOut);
        let closed = Error::explain(ErrorType::ConnectionClosed, "closed");
        assert_eq!(kind(closed), io::ErrorKind::UnexpectedEof);
        let reset = Error::because(
            ErrorType::ReadError,
            "when reading body",
            io::Error::from(io::ErrorKind::ConnectionReset),
        );
        assert_eq!(kind(reset), io::ErrorKind::ConnectionReset);
        let framing = Error::explain(ErrorType::InvalidHTTPHeader, "invalid chunk");
        assert_eq!(kind(framing), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_pingora_error_stays_inside() {
        let error = to_io(Error::explain(ErrorType::ReadTimedout, "reading body"));
        let inner = error.get_ref().map(ToString::to_string).unwrap_or_default();
        assert!(inner.contains("reading body"), "{inner}");
    }
}
