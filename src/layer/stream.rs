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

use super::body::EVENTS_FRAME_BYTES;
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
    /// The failure that ends the stream, held back while the output before it is handed over.
    failed: Option<BridgeError>,
    /// Output rendered but not yet handed over, while the upstream's connection gets a turn.
    held: BytesMut,
    /// Whether output was handed over: the first leaves without waiting for a turn.
    started: bool,
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
            failed: None,
            held: BytesMut::new(),
            started: false,
        }
    }

    /// The first bytes for the caller (empty if the stream ended without any), or the failure
    /// that came before them. No keep-alive is produced meanwhile: the response has not started.
    /// A failure behind some output follows it as the stream's error event, however soon it
    /// came: the upstream had started answering, so it is a failure in the middle of a stream,
    /// which a caller's SDK must not retry as if nothing had been generated.
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
            // Output held for a moment is no silence.
            Poll::Pending if !self.held.is_empty() => Poll::Pending,
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

    /// The relay's next output, without keep-alives: what every upstream frame already at hand
    /// gives, in one piece of at most about [`EVENTS_FRAME_BYTES`], so that the events one
    /// upstream read brought leave in one write rather than one write each. A failure met after
    /// some output waits for the next poll, behind that output.
    ///
    /// After a poll that brought output, the stream yields once, holding that output, and goes
    /// on reading; it hands the output over when a turn brings nothing new. Events the upstream
    /// wrote a moment apart then leave together, and so do the chunks of one socket read from a
    /// body that hands over one chunk per poll (hyper's pooled client decodes the next in its
    /// connection task; [`Upstream`](crate::upstream::Upstream)'s body hands over all of them
    /// within one poll). An upstream that is really quiet costs one extra poll per write. The
    /// first output does not wait, neither for a turn nor for the frames that came with it: it
    /// is the caller's time to first byte.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BridgeError>>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        let mut out = std::mem::take(&mut self.held);
        let mut gained = false;
        loop {
            if self.done || out.len() >= EVENTS_FRAME_BYTES {
                break;
            }
            let frame = match Pin::new(&mut self.upstream).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending if out.is_empty() => return self.poll_waits(cx),
                Poll::Pending if gained && self.started => {
                    self.held = out;
                    // A deferred wake (Tokio's `yield_now`): the task runs again once its
                    // thread has run what else is ready and polled for I/O. A plain self-wake
                    // also wakes a parked worker of a multi-thread runtime, and measured slower
                    // on both mounts (BENCHMARKS.md).
                    let turn = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                    debug_assert!(turn.is_pending());
                    return Poll::Pending;
                }
                Poll::Pending => break,
            };
            gained = true;
            let ended = match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    self.idle.as_mut().reset(Instant::now() + self.waits.idle);
                    match self.relay.feed(&data, &mut out) {
                        Ok(Flow::Continue) => false,
                        Ok(Flow::Finished) => true,
                        Err(failure) => return self.fail(stream_failed(failure), out),
                    }
                }
                Some(Err(error)) => {
                    let error = BridgeError::Exchange(ExchangeError::Upstream(error));
                    return self.fail(error, out);
                }
                None => true,
            };
            if ended {
                self.done = true;
                let finished = self.relay.finish(&mut out);
                self.record_usage();
                if let Err(failure) = finished {
                    return self.fail(stream_failed(failure), out);
                }
            }
            if !self.started && !out.is_empty() {
                // The first output leaves at once, without the frames read with it.
                break;
            }
        }
        if out.is_empty() {
            // Only once the stream is over: a frame that rendered nothing is read past above.
            return Poll::Ready(None);
        }
        self.started = true;
        Poll::Ready(Some(Ok(out.freeze())))
    }

    /// Fails the stream when the upstream has been quiet too long or the deadline has passed.
    fn poll_waits(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BridgeError>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            let error = UpstreamError::DeadlineExceeded(self.waits.deadline_limit);
            return self.fail(
                BridgeError::Exchange(ExchangeError::Upstream(error)),
                BytesMut::new(),
            );
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
            return self.fail(stream_failed(failure), BytesMut::new());
        }
        Poll::Pending
    }

    /// Ends the stream with `error`, after `out`, the output rendered before it, if any.
    fn fail(
        &mut self,
        error: BridgeError,
        out: BytesMut,
    ) -> Poll<Option<Result<Bytes, BridgeError>>> {
        self.done = true;
        self.record_usage();
        if out.is_empty() {
            return Poll::Ready(Some(Err(error)));
        }
        self.failed = Some(error);
        self.started = true;
        Poll::Ready(Some(Ok(out.freeze())))
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use futures_util::stream;
    use http_body::Frame;
    use http_body_util::StreamBody;

    use super::*;
    use crate::config::AuthConfig;
    use crate::layer::auth::Callers;
    use crate::metrics::Metrics;
    use crate::surface::stream::invalid_stream;

    /// Passes bytes on as they are; `fail` fails the stream.
    #[derive(Debug)]
    struct Echo;

    impl Relay for Echo {
        fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<Flow, Failure> {
            if bytes == b"fail" {
                return Err(invalid_stream("broken"));
            }
            out.extend_from_slice(bytes);
            Ok(Flow::Continue)
        }

        fn finish(&mut self, _out: &mut BytesMut) -> Result<(), Failure> {
            Ok(())
        }

        fn usage(&self) -> Option<Usage> {
            None
        }
    }

    fn data(frames: &[&'static str]) -> VecDeque<Frame<Bytes>> {
        frames
            .iter()
            .map(|frame| Frame::data(Bytes::from_static(frame.as_bytes())))
            .collect()
    }

    /// A live stream over an upstream whose `frames` are all at hand at once.
    fn live(frames: &[&'static str]) -> Live {
        let frames = data(frames).into_iter().map(Ok::<_, Infallible>);
        live_over(UpstreamBody::new(StreamBody::new(stream::iter(frames))))
    }

    /// Hands over one frame per poll, as hyper's client body does: the poll after a frame is
    /// pending, and wakes the task at once (the connection task decodes the next frame).
    struct OneAtATime {
        frames: VecDeque<Frame<Bytes>>,
        turn: bool,
        /// After the frames: pending forever (an upstream gone quiet) instead of ending.
        quiet_after: bool,
    }

    impl Body for OneAtATime {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.frames.is_empty() && self.quiet_after {
                return Poll::Pending;
            }
            self.turn = !self.turn;
            if self.turn {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(self.frames.pop_front().map(Ok))
        }
    }

    fn one_at_a_time(frames: &[&'static str], quiet_after: bool) -> Live {
        live_over(UpstreamBody::new(OneAtATime {
            frames: data(frames),
            turn: false,
            quiet_after,
        }))
    }

    fn live_over(upstream: UpstreamBody) -> Live {
        let waits = Waits {
            idle: Duration::from_secs(5),
            deadline: Instant::now() + Duration::from_secs(5),
            keepalive: Duration::from_secs(5),
            deadline_limit: Duration::from_secs(5),
        };
        let metrics = Metrics::new(["m"]);
        let callers = Callers::new(&AuthConfig::default(), None);
        let usage_to = UsageTo::new(&metrics, "m".into(), callers.anonymous().clone());
        Live::new(upstream, Box::new(Echo), waits, usage_to)
    }

    async fn next(live: &mut Live) -> Option<Result<Bytes, BridgeError>> {
        std::future::poll_fn(|cx| live.poll_next(cx)).await
    }

    #[tokio::test]
    async fn frames_at_hand_leave_in_one_piece_after_the_first() {
        // One socket read brought the whole answer: the first event still leaves at once.
        let mut live = live(&["one ", "two ", "three"]);
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "one ");
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "two three");
        assert!(next(&mut live).await.is_none());
    }

    #[tokio::test]
    async fn frames_handed_over_one_per_poll_leave_in_one_piece_after_the_first() {
        let mut live = one_at_a_time(&["one ", "two ", "three"], false);
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "one ");
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "two three");
        assert!(next(&mut live).await.is_none());
    }

    #[tokio::test]
    async fn output_leaves_as_soon_as_the_upstream_goes_quiet() {
        let mut live = one_at_a_time(&["one ", "two ", "three "], true);
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "one ");
        let rest = tokio::time::timeout(Duration::from_secs(1), next(&mut live)).await;
        assert_eq!(rest.unwrap().unwrap().unwrap(), "two three ");
    }

    #[tokio::test]
    async fn a_failure_comes_after_the_output_before_it() {
        let mut live = live(&["one ", "fail", "never"]);
        assert_eq!(next(&mut live).await.unwrap().unwrap(), "one ");
        let error = next(&mut live).await.unwrap().unwrap_err();
        assert!(error.to_string().contains("broken"), "{error}");
        assert!(next(&mut live).await.is_none());
    }

    #[tokio::test]
    async fn a_failure_behind_the_first_output_follows_it() {
        let mut live = live(&["one ", "fail"]);
        assert_eq!(live.first_bytes().await.unwrap(), "one ");
        let error = next(&mut live).await.unwrap().unwrap_err();
        assert!(error.to_string().contains("broken"), "{error}");
        assert!(next(&mut live).await.is_none());
    }

    #[tokio::test]
    async fn a_failure_before_any_output_is_answered_alone() {
        let mut live = live(&["fail", "never"]);
        let error = live.first_bytes().await.unwrap_err();
        assert!(error.to_string().contains("broken"), "{error}");
        assert!(next(&mut live).await.is_none());
    }
}
