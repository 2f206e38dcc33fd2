//! Streamed answers: how a surface's upstream stream becomes neutral events, sans I/O.
//!
//! Two steps, each a small state machine fed bytes or events by the bridge as they arrive:
//! an [`Unframe`] cuts the upstream body into [`UpstreamEvent`]s (server-sent events for the
//! `responses` surface, AWS event-stream frames for `bedrock`), holding at most one partial
//! event up to a bound; a [`ReadEvents`] reads each event as neutral
//! [`StreamEvent`](crate::core::StreamEvent)s, which the caller's front renders. Neither reads a
//! clock or a socket: the bridge's body does the waiting, the keep-alives and the deadline.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::StatusCode;

use crate::core::{Failure, FailureClass, StreamEvent, Usage};

/// One event of an upstream stream, cut out of its framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamEvent {
    /// The event's name, where the framing has one (SSE `event:`).
    pub name: Option<Bytes>,
    /// Its payload: one JSON document.
    pub data: Bytes,
}

/// Whether an upstream stream goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// More events are to come.
    Continue,
    /// The answer is complete; anything after it is not read.
    Finished,
}

/// Cuts an upstream body into events as its bytes arrive.
pub trait Unframe: Send + fmt::Debug {
    /// Adds bytes read from the upstream. Fails when the partial event they start would pass
    /// the bound on one event.
    fn push(&mut self, bytes: &[u8]) -> Result<(), Failure>;

    /// The next whole event buffered, if any; fails on a broken frame.
    fn next_event(&mut self) -> Result<Option<UpstreamEvent>, Failure>;

    /// The upstream body ended: fails if a partial event is left.
    fn finish(&mut self) -> Result<(), Failure>;
}

/// Reads a surface's events as neutral events.
pub trait ReadEvents: Send + fmt::Debug {
    /// Reads one event, emitting the neutral events it holds (none, one or several). An event
    /// that reports a failure (`response.failed`, an exception frame) is an `Err`.
    fn read(
        &mut self,
        event: &UpstreamEvent,
        emit: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<Flow, Failure>;

    /// The upstream stream ended (after [`Flow::Finished`] or not): emits the closing events
    /// (finish, usage, done), or fails when the stream was incomplete or held no answer.
    fn finish(&mut self, emit: &mut dyn FnMut(StreamEvent<'_>)) -> Result<(), Failure>;
}

/// Turns an upstream stream's bytes into the caller's, as they arrive.
pub trait Relay: Send + fmt::Debug {
    /// Reads bytes of the upstream's stream, appending what they complete for the caller to
    /// `out`; [`Flow::Finished`] once the upstream said the answer is complete.
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<Flow, Failure>;

    /// The upstream's stream ended, or said it was complete: appends the closing events to
    /// `out`, or fails when the answer was incomplete.
    fn finish(&mut self, out: &mut BytesMut) -> Result<(), Failure>;

    /// The token counts seen so far, for the metrics.
    fn usage(&self) -> Option<Usage>;
}

/// The failure of an upstream stream that broke its own format (an event too large, cut short
/// or unreadable): a 502, as for a whole answer that cannot be read.
pub(crate) fn invalid_stream(message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::BAD_GATEWAY, FailureClass::Upstream, message)
        .code("upstream_invalid_response")
}
