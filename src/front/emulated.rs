//! A stream emulated from an answer that arrived whole: the answer's neutral events
//! ([`AnswerEvents`]) rendered by a front's [`RenderEvents`] as the response body is polled.
//!
//! The answer is held once and encoded lazily, either one event at a time
//! ([`RenderedAnswer::next_into`]) or several into one buffer up to a size
//! ([`RenderedAnswer::fill`], which the bridge uses so that a short answer leaves in one write),
//! never as a second encoded copy of all of it. Any front's renderer fits: OpenAI's chunks, the
//! Responses API's events, ...

use bytes::BytesMut;

use super::{EventSource, RenderEvents};
use crate::core::{AnswerEvents, Generation};

/// The events of one answer in a front's format, encoded as they are asked for.
#[derive(Debug)]
pub struct RenderedAnswer<R> {
    renderer: R,
    events: AnswerEvents,
    event_overhead: usize,
}

impl<R: RenderEvents> RenderedAnswer<R> {
    /// The events of `answer` (copied once) as `renderer` writes them. `event_overhead` is about
    /// how many bytes each event takes besides its text, to size buffers.
    pub fn new(answer: &Generation<'_>, renderer: R, event_overhead: usize) -> Self {
        Self {
            renderer,
            events: AnswerEvents::new(answer),
            event_overhead,
        }
    }

    /// Appends what the next event that renders to anything becomes; `false` once every event
    /// has been rendered.
    pub fn next_into(&mut self, buf: &mut BytesMut) -> bool {
        while let Some(event) = self.events.next_event() {
            let before = buf.len();
            self.renderer.render(event, buf);
            if buf.len() > before {
                return true;
            }
        }
        false
    }

    /// Appends whole events to `buf` until it holds at least `target` bytes or the events run
    /// out; `false` once every event has been written. An event is never split.
    pub fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        while buf.len() < target {
            if !self.next_into(buf) {
                return false;
            }
        }
        !self.events.is_done()
    }

    /// About how many bytes the events not yet written take, to size a buffer.
    pub fn remaining_hint(&self) -> usize {
        let (text, events) = self.events.remaining();
        text.saturating_add(text / 8)
            .saturating_add(events.saturating_mul(self.event_overhead))
    }
}

impl<R: RenderEvents> EventSource for RenderedAnswer<R> {
    fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool {
        RenderedAnswer::fill(self, buf, target)
    }

    fn remaining_hint(&self) -> usize {
        RenderedAnswer::remaining_hint(self)
    }
}
