//! [`BridgeBody`]: the one response body type of the bridge.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::error::{BridgeError, Failed};
use super::finish::Finisher;
use super::stream::Live;
use crate::front::sse::KEEP_ALIVE;
use crate::front::{ErrorFormat, EventSource};

/// How many bytes of events one body frame carries at most (give or take one event): a short
/// answer leaves in one write, a long one in a few, never all of it encoded at once.
pub(super) const EVENTS_FRAME_BYTES: usize = 16 * 1024;

/// The upstream work a waiting event stream owns: it resolves to the stream, started, or the
/// failure.
pub(crate) type PendingAnswer =
    Pin<Box<dyn Future<Output = Result<Started, Failed>> + Send + 'static>>;

/// A stream ready to be written.
#[derive(Debug)]
pub(crate) enum Started {
    /// The events of an answer that arrived whole.
    Events(Box<dyn EventSource>),
    /// An upstream stream being relayed, and its first bytes for the caller.
    Live(Box<Live>, Bytes),
}

/// A response body: complete JSON, or a stream of server-sent events produced as it is polled.
pub struct BridgeBody {
    kind: Kind,
    /// How a stream's request ends once its last frame is taken; recorded when the body is
    /// dropped then (the writer has the last frame), so that the in-flight gauge counts the
    /// stream while it is written. A stream dropped before that drops its [`Finisher`]
    /// unfinished: its caller left mid-stream, a 499.
    ending: Option<Ending>,
}

/// The outcome of a stream, recorded when the stream has been handed over whole.
enum Ending {
    Answered(Finisher),
    Failed {
        finisher: Finisher,
        status: http::StatusCode,
        error: BridgeError,
    },
}

impl Ending {
    fn record(self) {
        match self {
            Ending::Answered(finisher) => finisher.finish(http::StatusCode::OK),
            Ending::Failed {
                finisher,
                status,
                error,
            } => finisher.fail(status, &error),
        }
    }
}

enum Kind {
    Full(Option<Bytes>),
    /// The upstream is still working: keep-alive comments until it answers.
    Waiting {
        answer: PendingAnswer,
        keepalive: Interval,
        finisher: Option<Finisher>,
        errors: &'static dyn ErrorFormat,
    },
    /// The last frame is an error event.
    FailedEvent(Bytes),
    Events(Box<dyn EventSource>),
    /// An upstream stream, relayed as it arrives; `first` is written before anything else.
    Live {
        live: Box<Live>,
        first: Option<Bytes>,
        finisher: Option<Finisher>,
        errors: &'static dyn ErrorFormat,
    },
    Done,
}

impl BridgeBody {
    /// A complete body.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Full(Some(bytes.into())),
            ending: None,
        }
    }

    /// A started stream; `finisher` is told the outcome once the last frame is taken, and
    /// failures are worded by `errors`.
    pub(crate) fn started(
        started: Started,
        finisher: Finisher,
        errors: &'static dyn ErrorFormat,
    ) -> Self {
        let mut body = Self {
            kind: Kind::Done,
            ending: None,
        };
        body.start(started, finisher, errors);
        body
    }

    fn start(&mut self, started: Started, finisher: Finisher, errors: &'static dyn ErrorFormat) {
        finisher.first_byte();
        match started {
            Started::Events(events) => {
                self.ending = Some(Ending::Answered(finisher));
                self.kind = Kind::Events(events);
            }
            Started::Live(live, first) => {
                self.kind = Kind::Live {
                    live,
                    first: Some(first),
                    finisher: Some(finisher),
                    errors,
                };
            }
        }
    }

    /// An event stream that sends a keep-alive comment every `period` until `answer` resolves,
    /// then its events, or an error event in the words of `errors` if it fails. `finisher` is
    /// told the outcome once the last frame is taken.
    pub(crate) fn waiting(
        answer: PendingAnswer,
        period: Duration,
        finisher: Finisher,
        errors: &'static dyn ErrorFormat,
    ) -> Self {
        let mut keepalive = tokio::time::interval_at(Instant::now() + period, period);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            kind: Kind::Waiting {
                answer,
                keepalive,
                finisher: Some(finisher),
                errors,
            },
            ending: None,
        }
    }
}

impl Drop for BridgeBody {
    fn drop(&mut self) {
        if let (Kind::Done, Some(ending)) = (&self.kind, self.ending.take()) {
            ending.record();
        }
        // Otherwise the stream was cut short: the finisher, dropped unfinished, records a 499.
    }
}

impl fmt::Debug for BridgeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full(_) => "Full",
            Kind::Waiting { .. } => "Waiting",
            Kind::Events(_) => "Events",
            Kind::Live { .. } => "Live",
            Kind::FailedEvent(_) => "FailedEvent",
            Kind::Done => "Done",
        };
        f.debug_struct("BridgeBody").field("kind", &kind).finish()
    }
}

impl Body for BridgeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match &mut this.kind {
                Kind::Full(bytes) => {
                    let bytes = bytes.take();
                    this.kind = Kind::Done;
                    return Poll::Ready(bytes.map(|b| Ok(Frame::data(b))));
                }
                Kind::Waiting {
                    answer,
                    keepalive,
                    finisher,
                    errors,
                } => match answer.as_mut().poll(cx) {
                    Poll::Ready(Ok(started)) => {
                        let errors = *errors;
                        if let Some(finisher) = finisher.take() {
                            this.start(started, finisher, errors);
                        }
                    }
                    // The headers have left: the upstream's id is only in the request's span.
                    Poll::Ready(Err(Failed { error, .. })) => {
                        let failure = error.failure();
                        let event = errors.error_event(&failure);
                        this.ending = finisher.take().map(|finisher| Ending::Failed {
                            finisher,
                            status: failure.status,
                            error,
                        });
                        this.kind = Kind::FailedEvent(event);
                    }
                    Poll::Pending => {
                        ready!(keepalive.poll_tick(cx));
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
                    }
                },
                Kind::Events(events) => {
                    let mut frame =
                        BytesMut::with_capacity(events.remaining_hint().min(EVENTS_FRAME_BYTES));
                    let more = events.fill(&mut frame, EVENTS_FRAME_BYTES);
                    if !more {
                        this.kind = Kind::Done;
                    }
                    if !frame.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(frame.freeze()))));
                    }
                }
                Kind::Live {
                    live,
                    first,
                    finisher,
                    errors,
                } => {
                    if let Some(first) = first.take().filter(|first| !first.is_empty()) {
                        return Poll::Ready(Some(Ok(Frame::data(first))));
                    }
                    match ready!(live.poll_next(cx)) {
                        Some(Ok(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                        Some(Err(error)) => {
                            let failure = error.failure();
                            let event = errors.error_event(&failure);
                            this.ending = finisher.take().map(|finisher| Ending::Failed {
                                finisher,
                                status: failure.status,
                                error,
                            });
                            this.kind = Kind::FailedEvent(event);
                        }
                        None => {
                            this.ending = finisher.take().map(Ending::Answered);
                            this.kind = Kind::Done;
                        }
                    }
                }
                Kind::FailedEvent(event) => {
                    let event = std::mem::take(event);
                    this.kind = Kind::Done;
                    return Poll::Ready(Some(Ok(Frame::data(event))));
                }
                Kind::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Done => true,
            Kind::Waiting { .. } | Kind::Events(_) | Kind::Live { .. } | Kind::FailedEvent(_) => {
                false
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) | Kind::Done => SizeHint::with_exact(0),
            Kind::Waiting { .. } | Kind::Events(_) | Kind::Live { .. } | Kind::FailedEvent(_) => {
                SizeHint::default()
            }
        }
    }
}
