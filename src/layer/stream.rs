//! Real streams: an upstream answer passed on to the caller event by event, as it arrives.
//!
//! A relay turns the upstream's bytes into the caller's (sans I/O): either through the
//! neutral core ([`Translated`]: the surface's [`Unframe`] and [`ReadEvents`], the front's
//! [`RenderEvents`]) or as a near pass-through where the caller speaks the surface's own API. A
//! [`Live`] stream drives a relay from the upstream body with the waiting rules: an upstream
//! that sends nothing for the idle limit, or outlives the request's deadline, ends the stream
//! with an error; the caller gets keep-alive comments meanwhile.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::error::BridgeError;
use super::finish::UsageTo;
use crate::core::{Failure, FailureClass, StreamEvent, Usage};
use crate::front::sse::KEEP_ALIVE;
use crate::front::RenderEvents;
use crate::surface::stream::{Flow, ReadEvents, Relay, Unframe};
use crate::upstream::{ExchangeError, UpstreamBody, UpstreamError};

/// A relay through the neutral core: the surface reads its events, the front renders them.
#[derive(Debug)]
pub(crate) struct Translated {
    unframe: Box<dyn Unframe>,
    reader: Box<dyn ReadEvents>,
    renderer: Box<dyn RenderEvents>,
    usage: Option<Usage>,
    finished: bool,
}

impl Translated {
    pub(crate) fn new(
        unframe: Box<dyn Unframe>,
        reader: Box<dyn ReadEvents>,
        renderer: Box<dyn RenderEvents>,
    ) -> Self {
        Self {
            unframe,
            reader,
            renderer,
            usage: None,
            finished: false,
        }
    }
}

impl Relay for Translated {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<Flow, Failure> {
        let Self {
            unframe,
            reader,
            renderer,
            usage,
            finished,
        } = self;
        unframe.push(bytes)?;
        while let Some(event) = unframe.next_event()? {
            let flow = reader.read(&event, &mut |event| {
                render(renderer.as_mut(), usage, event, out)
            })?;
            if flow == Flow::Finished {
                *finished = true;
                return Ok(Flow::Finished);
            }
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), Failure> {
        let Self {
            unframe,
            reader,
            renderer,
            usage,
            finished,
        } = self;
        // After the upstream said it was complete, whatever follows is not read.
        if !*finished {
            unframe.finish()?;
        }
        reader.finish(&mut |event| render(renderer.as_mut(), usage, event, out))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

fn render(
    renderer: &mut dyn RenderEvents,
    usage: &mut Option<Usage>,
    event: StreamEvent<'_>,
    out: &mut BytesMut,
) {
    if let StreamEvent::Usage(Some(seen)) = event {
        *usage = Some(seen);
    }
    renderer.render(event, out);
}

/// How long a live stream may wait on its upstream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waits {
    /// The longest silence of the upstream between two reads.
    pub(crate) idle: Duration,
    /// When the caller's request must be over.
    pub(crate) deadline: Instant,
    /// How often a waiting caller gets a keep-alive comment.
    pub(crate) keepalive: Duration,
    /// The request's deadline as configured, for the error that names it.
    pub(crate) deadline_limit: Duration,
}

/// An upstream stream being relayed to the caller.
pub(crate) struct Live {
    upstream: UpstreamBody,
    relay: Box<dyn Relay>,
    waits: Waits,
    idle: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    keepalive: Interval,
    /// Where the stream's token counts are recorded once it ends.
    usage_to: Option<UsageTo>,
    done: bool,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("relay", &self.relay)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Live {
    pub(crate) fn new(
        upstream: UpstreamBody,
        relay: Box<dyn Relay>,
        waits: Waits,
        usage_to: UsageTo,
    ) -> Self {
        let mut keepalive =
            tokio::time::interval_at(Instant::now() + waits.keepalive, waits.keepalive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            upstream,
            relay,
            idle: Box::pin(tokio::time::sleep(waits.idle)),
            deadline: Box::pin(tokio::time::sleep_until(waits.deadline)),
            waits,
            keepalive,
            usage_to: Some(usage_to),
            done: false,
        }
    }

    /// The first bytes for the caller (empty if the stream ended without any), or the failure
    /// that came before them. No keep-alive is produced meanwhile: the response has not started.
    pub(crate) fn first_bytes(&mut self) -> impl Future<Output = Result<Bytes, BridgeError>> + '_ {
        std::future::poll_fn(|cx| match self.poll_output(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            Poll::Ready(None) => Poll::Ready(Ok(Bytes::new())),
            Poll::Pending => Poll::Pending,
        })
    }

    /// The next bytes for the caller: the relay's output, a keep-alive comment while the
    /// upstream is quiet, or the failure that ends the stream; `None` once it has ended.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BridgeError>>> {
        match self.poll_output(cx) {
            Poll::Pending => {
                if self.keepalive.poll_tick(cx).is_ready() {
                    return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
                }
                Poll::Pending
            }
            ready => {
                self.keepalive.reset();
                ready
            }
        }
    }

    /// The relay's next output, without keep-alives.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BridgeError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut self.upstream).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => return self.poll_waits(cx),
            };
            let mut out = BytesMut::new();
            let ended = match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    self.idle.as_mut().reset(Instant::now() + self.waits.idle);
                    match self.relay.feed(&data, &mut out) {
                        Ok(Flow::Continue) => false,
                        Ok(Flow::Finished) => true,
                        Err(failure) => return self.fail(stream_failed(failure)),
                    }
                }
                Some(Err(error)) => {
                    return self.fail(BridgeError::Exchange(ExchangeError::Upstream(error)))
                }
                None => true,
            };
            if ended {
                self.done = true;
                let finished = self.relay.finish(&mut out);
                self.record_usage();
                if let Err(failure) = finished {
                    return self.fail(stream_failed(failure));
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out.freeze())));
            }
        }
    }

    /// Fails the stream when the upstream has been quiet too long or the deadline has passed.
    fn poll_waits(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BridgeError>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            let error = UpstreamError::DeadlineExceeded(self.waits.deadline_limit);
            return self.fail(BridgeError::Exchange(ExchangeError::Upstream(error)));
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            let failure = Failure::new(
                http::StatusCode::GATEWAY_TIMEOUT,
                FailureClass::Upstream,
                format!(
                    "the upstream stream sent nothing for {} s",
                    self.waits.idle.as_secs()
                ),
            )
            .code("upstream_timeout");
            return self.fail(stream_failed(failure));
        }
        Poll::Pending
    }

    fn fail(&mut self, error: BridgeError) -> Poll<Option<Result<Bytes, BridgeError>>> {
        self.done = true;
        self.record_usage();
        Poll::Ready(Some(Err(error)))
    }

    /// Counts the tokens the upstream reported, once.
    fn record_usage(&mut self) {
        if let (Some(usage_to), Some(usage)) = (self.usage_to.take(), self.relay.usage()) {
            usage_to.record(&usage);
        }
    }
}

/// A failure the upstream's stream reported, or that reading it met.
fn stream_failed(failure: Failure) -> BridgeError {
    BridgeError::UpstreamStatus(Box::new(failure))
}
