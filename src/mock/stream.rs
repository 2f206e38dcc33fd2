//! Streamed answers of the native surfaces: the stream faults, the order of events, the network writes.
//!
//! A surface describes its answer as a [`Script`] of JSON events (`head`, one event per delta, `tail`);
//! [`Script::arrange`] applies a stream fault to it, the surface encodes each [`Ev`] into bytes (SSE
//! text or event-stream frames), [`event_writes`] or [`frame_writes`] cut those bytes into network
//! writes, and [`body`] plays the writes with their pauses. All but [`body`] are plain iterators.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::faults::Fault;
use super::state::Answering;

/// How long [`Fault::EndlessStream`] waits between deltas when no stream pace is set, so that an
/// endless stream does not flood the caller's buffers.
pub(crate) const ENDLESS_PACE: Duration = Duration::from_millis(10);

/// The faults that change a stream's content (rather than its status or its connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamFault {
    /// [`Fault::StreamFailure`].
    Failure,
    /// [`Fault::StreamStall`].
    Stall(Duration),
    /// [`Fault::MalformedEvent`].
    Malformed,
    /// [`Fault::EmptyStream`].
    Empty,
    /// [`Fault::EndlessStream`].
    Endless,
    /// [`Fault::OversizedEvent`].
    Oversized(usize),
}

impl StreamFault {
    /// The stream fault in `fault`, if it is one.
    pub(crate) fn of(fault: &Fault) -> Option<Self> {
        match fault {
            Fault::StreamFailure => Some(Self::Failure),
            Fault::StreamStall(delay) => Some(Self::Stall(*delay)),
            Fault::MalformedEvent => Some(Self::Malformed),
            Fault::EmptyStream => Some(Self::Empty),
            Fault::EndlessStream => Some(Self::Endless),
            Fault::OversizedEvent(bytes) => Some(Self::Oversized(*bytes)),
            Fault::Status { .. }
            | Fault::Unauthorized
            | Fault::Slow(_)
            | Fault::MalformedJson
            | Fault::TruncatedJson
            | Fault::ConnectionReset
            | Fault::Oversized(_)
            | Fault::NotAStream => None,
        }
    }
}

/// One step of an arranged stream, before it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    /// An event of the surface's protocol.
    Event(Value),
    /// The surface's mid-stream failure ([`Fault::StreamFailure`]).
    Failure,
    /// The surface's broken event ([`Fault::MalformedEvent`]).
    Malformed,
    /// Nothing is sent for this long ([`Fault::StreamStall`]).
    Pause(Duration),
}

/// A streamed answer as events: what comes before the deltas, the deltas, what follows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Script {
    pub(crate) head: Vec<Value>,
    pub(crate) deltas: Vec<Value>,
    pub(crate) tail: Vec<Value>,
}

/// Events in the order they go out; endless under [`StreamFault::Endless`].
pub(crate) type Events = Box<dyn Iterator<Item = Ev> + Send>;

impl Script {
    /// The events with `fault` applied. [`StreamFault::Empty`] and [`StreamFault::Oversized`] are the
    /// surface's to build (they change the answer, not the order), so here they change nothing.
    pub(crate) fn arrange(self, fault: Option<StreamFault>) -> Events {
        let Self { head, deltas, tail } = self;
        let event = |events: Vec<Value>| events.into_iter().map(Ev::Event);
        match fault {
            None | Some(StreamFault::Empty | StreamFault::Oversized(_)) => {
                Box::new(event(head).chain(event(deltas)).chain(event(tail)))
            }
            Some(StreamFault::Failure) => {
                // Two deltas reach the caller first: a failure after some output, the hard case.
                let sent = deltas.into_iter().take(2);
                Box::new(event(head).chain(sent.map(Ev::Event)).chain([Ev::Failure]))
            }
            Some(StreamFault::Stall(delay)) => {
                Box::new(after_first_delta(head, deltas, tail, Ev::Pause(delay)))
            }
            Some(StreamFault::Malformed) => {
                Box::new(after_first_delta(head, deltas, tail, Ev::Malformed))
            }
            Some(StreamFault::Endless) => {
                let last = deltas.last().cloned();
                let forever = std::iter::repeat_with(move || last.clone())
                    .map_while(|delta| delta.map(Ev::Event));
                Box::new(event(head).chain(event(deltas)).chain(forever))
            }
        }
    }
}

fn after_first_delta(
    head: Vec<Value>,
    deltas: Vec<Value>,
    tail: Vec<Value>,
    inserted: Ev,
) -> impl Iterator<Item = Ev> + Send {
    let mut deltas = deltas.into_iter();
    let first = deltas.next();
    head.into_iter()
        .chain(first)
        .map(Ev::Event)
        .chain([inserted])
        .chain(deltas.chain(tail).map(Ev::Event))
}

/// An encoded event, or a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Bytes(Bytes),
    Pause(Duration),
}

/// What the body does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// One network write.
    Write(Bytes),
    /// Wait this long; zero still ends the current write (the body yields), so that the writes on
    /// either side reach the socket apart.
    Pause(Duration),
}

/// The steps of a streamed body.
pub(crate) type Steps = Box<dyn Iterator<Item = Step> + Send>;

/// Text events (SSE): each event is its own write, `pace` apart, and every third one is cut in two
/// writes at an odd offset, so that a caller's decoder meets an event split across reads.
pub(crate) fn event_writes(
    pieces: impl Iterator<Item = Piece> + Send + 'static,
    pace: Duration,
) -> Steps {
    let steps = pieces.enumerate().flat_map(move |(index, piece)| {
        let mut steps = Vec::with_capacity(4);
        match piece {
            Piece::Bytes(bytes) => {
                if index > 0 {
                    steps.push(Step::Pause(pace));
                }
                if index % 3 == 2 && bytes.len() > 2 {
                    let at = odd_offset(bytes.len(), 2);
                    steps.push(Step::Write(bytes.slice(..at)));
                    steps.push(Step::Pause(Duration::ZERO));
                    steps.push(Step::Write(bytes.slice(at..)));
                } else {
                    steps.push(Step::Write(bytes));
                }
            }
            Piece::Pause(delay) => steps.push(Step::Pause(delay)),
        }
        steps
    });
    Box::new(steps)
}

/// Binary frames: every write ends inside a frame and holds the start of the next, `pace` apart, so
/// that a caller's decoder never gets a frame whole from one read. A [`Piece::Pause`] first sends
/// what is held, so the pause follows a complete frame.
pub(crate) fn frame_writes(
    pieces: impl Iterator<Item = Piece> + Send + 'static,
    pace: Duration,
) -> Steps {
    Box::new(Crossing {
        pieces,
        pace,
        held: Bytes::new(),
        queue: VecDeque::new(),
        frames: 0,
    })
}

struct Crossing<I> {
    pieces: I,
    pace: Duration,
    /// The end of the last frame, sent with the start of the next.
    held: Bytes,
    queue: VecDeque<Step>,
    frames: usize,
}

impl<I: Iterator<Item = Piece>> Iterator for Crossing<I> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return Some(step);
            }
            match self.pieces.next() {
                Some(Piece::Bytes(frame)) => {
                    let at = odd_offset(frame.len(), self.frames % 3 + 1);
                    let mut write = BytesMut::with_capacity(self.held.len() + at);
                    write.extend_from_slice(&self.held);
                    write.extend_from_slice(&frame[..at]);
                    self.held = frame.slice(at..);
                    if self.frames > 0 {
                        self.queue.push_back(Step::Pause(self.pace));
                    }
                    self.queue.push_back(Step::Write(write.freeze()));
                    self.frames += 1;
                }
                Some(Piece::Pause(delay)) => {
                    if !self.held.is_empty() {
                        self.queue
                            .push_back(Step::Write(std::mem::take(&mut self.held)));
                    }
                    self.queue.push_back(Step::Pause(delay));
                }
                None if self.held.is_empty() => return None,
                None => {
                    self.queue.push_back(Step::Pause(self.pace));
                    self.queue
                        .push_back(Step::Write(std::mem::take(&mut self.held)));
                }
            }
        }
    }
}

/// An odd offset strictly inside `len` bytes (`len` > 2), about `quarters`/4 of the way in.
fn odd_offset(len: usize, quarters: usize) -> usize {
    let at = (len * quarters.clamp(1, 3) / 4) | 1;
    // `len > 2`, so 1 is inside; a large odd guess can land on the last byte or past it.
    if at < len {
        at
    } else {
        1
    }
}

/// The first half of a finite stream's bytes ([`Fault::TruncatedJson`] on a stream path): the
/// stream ends mid-event, without its final event.
pub(crate) fn truncated(steps: Steps) -> Steps {
    let steps: Vec<Step> = steps.collect();
    let total: usize = steps
        .iter()
        .map(|step| match step {
            Step::Write(bytes) => bytes.len(),
            Step::Pause(_) => 0,
        })
        .sum();
    let mut left = total / 2;
    let mut kept = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Write(bytes) if bytes.len() >= left => {
                if left > 0 {
                    kept.push(Step::Write(bytes.slice(..left)));
                }
                break;
            }
            Step::Write(bytes) => {
                left -= bytes.len();
                kept.push(Step::Write(bytes));
            }
            Step::Pause(delay) => kept.push(Step::Pause(delay)),
        }
    }
    Box::new(kept.into_iter())
}

/// A body that plays `steps`. The call counts as abandoned (see [`Answering`]) if the body is dropped
/// before its last step: hyper drops it when the caller's connection goes away.
pub(crate) fn body(steps: Steps, answering: Answering) -> Body {
    let stream = futures_util::stream::unfold(
        (steps, Some(answering)),
        |(mut steps, mut answering)| async move {
            loop {
                match steps.next() {
                    Some(Step::Write(bytes)) => {
                        return Some((Ok::<_, Infallible>(bytes), (steps, answering)));
                    }
                    // Hyper writes what it holds when the body is not ready: a yield ends the write.
                    Some(Step::Pause(delay)) if delay.is_zero() => {
                        tokio::task::yield_now().await;
                    }
                    Some(Step::Pause(delay)) => tokio::time::sleep(delay).await,
                    None => {
                        if let Some(answering) = answering.take() {
                            answering.disarm();
                        }
                        return None;
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}

/// Splits `text` into deltas of one word each, a word's leading whitespace going with it, as models
/// stream: `"Echo: hi there"` gives `"Echo:"`, `" hi"`, `" there"`. Concatenated they give `text`
/// back; there are as many as words (one, the whole text, when it has none).
pub(crate) fn word_deltas(text: &str) -> Vec<String> {
    let mut deltas = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (at, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if in_word {
                // A word ended: the next delta starts here, if another word follows.
                if text[at..].trim_start().is_empty() {
                    break;
                }
                deltas.push(text[start..at].to_owned());
                start = at;
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    if !text.is_empty() {
        deltas.push(text[start..].to_owned());
    }
    deltas
}

/// `text` in three pieces cut at arbitrary (character) boundaries, as argument deltas come: not at
/// token or JSON boundaries. Shorter texts give fewer pieces; none is empty.
pub(crate) fn thirds(text: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let cut = |part: usize| {
        chars
            .get(chars.len() * part / 3)
            .map_or(text.len(), |c| c.0)
    };
    let (first, second) = (cut(1), cut(2));
    [&text[..first], &text[first..second], &text[second..]]
        .into_iter()
        .filter(|piece| !piece.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Cuts `deltas` to their first `max` words; whether anything was cut.
pub(crate) fn keep_words(deltas: &mut Vec<String>, max: u64) -> bool {
    let mut seen = 0;
    let mut keep = deltas.len();
    for (at, delta) in deltas.iter().enumerate() {
        seen += words(delta);
        if seen > max {
            keep = at;
            break;
        }
    }
    let cut = keep < deltas.len();
    deltas.truncate(keep);
    cut
}

/// Cuts `deltas` to the first `at` bytes of their concatenation (`at` on a character boundary).
pub(crate) fn keep_bytes(deltas: &mut Vec<String>, at: usize) {
    let mut left = at;
    let mut keep = 0;
    for delta in deltas.iter_mut() {
        if left == 0 {
            break;
        }
        if delta.len() > left {
            delta.truncate(left);
        }
        left -= delta.len();
        keep += 1;
    }
    deltas.truncate(keep);
}

/// Words, for the mock's token counts.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script() -> Script {
        Script {
            head: vec![json!("h")],
            deltas: vec![json!(1), json!(2), json!(3)],
            tail: vec![json!("t")],
        }
    }

    fn values(events: Events) -> Vec<Ev> {
        events.take(20).collect()
    }

    #[test]
    fn faults_rearrange_the_events() {
        let e = |v: Value| Ev::Event(v);
        assert_eq!(
            values(script().arrange(None)),
            [
                e(json!("h")),
                e(json!(1)),
                e(json!(2)),
                e(json!(3)),
                e(json!("t"))
            ]
        );
        assert_eq!(
            values(script().arrange(Some(StreamFault::Failure))),
            [e(json!("h")), e(json!(1)), e(json!(2)), Ev::Failure]
        );
        let stall = Duration::from_secs(1);
        assert_eq!(
            values(script().arrange(Some(StreamFault::Stall(stall)))),
            [
                e(json!("h")),
                e(json!(1)),
                Ev::Pause(stall),
                e(json!(2)),
                e(json!(3)),
                e(json!("t"))
            ]
        );
        assert_eq!(
            values(script().arrange(Some(StreamFault::Malformed)))[2],
            Ev::Malformed
        );
        let endless = values(script().arrange(Some(StreamFault::Endless)));
        assert_eq!(endless.len(), 20);
        assert_eq!(endless[19], e(json!(3)));
    }

    fn written(steps: Steps) -> Vec<Bytes> {
        steps
            .filter_map(|step| match step {
                Step::Write(bytes) => Some(bytes),
                Step::Pause(_) => None,
            })
            .collect()
    }

    fn pieces(frames: &[&'static [u8]]) -> Vec<Piece> {
        frames
            .iter()
            .map(|frame| Piece::Bytes(Bytes::from_static(frame)))
            .collect()
    }

    #[test]
    fn every_third_event_is_split_at_an_odd_offset() {
        let events: [&[u8]; 4] = [b"aaaaaa", b"bbbbbb", b"cccccccc", b"dddd"];
        let writes = written(event_writes(pieces(&events).into_iter(), Duration::ZERO));
        assert_eq!(writes.len(), 5);
        assert_eq!(writes[2].len() % 2, 1);
        assert_eq!([&writes[2][..], &writes[3][..]].concat(), b"cccccccc");
        assert_eq!(writes.concat(), events.concat());
    }

    #[test]
    fn frame_writes_cross_frame_boundaries() {
        let frames: [&[u8]; 3] = [b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"];
        let mut input = pieces(&frames);
        input.insert(1, Piece::Pause(Duration::from_secs(1)));
        let steps: Vec<Step> = frame_writes(input.into_iter(), Duration::ZERO).collect();
        let writes = written(Box::new(steps.clone().into_iter()));
        assert_eq!(writes.concat(), frames.concat());
        // The pause comes once the first frame is whole.
        let pause = steps
            .iter()
            .position(|step| *step == Step::Pause(Duration::from_secs(1)))
            .unwrap();
        let before: usize = steps[..pause]
            .iter()
            .map(|step| match step {
                Step::Write(bytes) => bytes.len(),
                Step::Pause(_) => 0,
            })
            .sum();
        assert_eq!(before, 10);
        // After it, each write ends inside a frame.
        let mut sent = before;
        for write in &writes[2..writes.len() - 1] {
            sent += write.len();
            assert_ne!(sent % 10, 0, "{writes:?}");
        }
    }

    #[test]
    fn truncation_keeps_half_the_bytes() {
        let events: [&[u8]; 3] = [b"aaaa", b"bbbb", b"cccc"];
        let steps = event_writes(pieces(&events).into_iter(), Duration::ZERO);
        assert_eq!(written(truncated(steps)).concat(), b"aaaabb");
    }

    #[test]
    fn deltas_are_words_with_their_leading_space() {
        assert_eq!(word_deltas("Echo: hi  there"), ["Echo:", " hi", "  there"]);
        assert_eq!(word_deltas(" a b "), [" a", " b "]);
        assert_eq!(word_deltas("Echo: "), ["Echo: "]);
        assert_eq!(word_deltas("   "), ["   "]);
        assert!(word_deltas("").is_empty());
        assert_eq!(thirds(r#"{"echo":"é"}"#).concat(), r#"{"echo":"é"}"#);
        assert_eq!(thirds("abcdefghi"), ["abc", "def", "ghi"]);
        assert_eq!(thirds("ab"), ["a", "b"]);
    }

    #[test]
    fn cuts_keep_words_or_bytes() {
        let mut deltas = word_deltas("Echo: a b c");
        assert!(keep_words(&mut deltas, 2));
        assert_eq!(deltas, ["Echo:", " a"]);
        assert!(!keep_words(&mut deltas, 2));
        let mut deltas = vec!["x".repeat(4), "Echo:".to_owned(), " a".to_owned()];
        keep_bytes(&mut deltas, 7);
        assert_eq!(deltas, ["xxxx", "Ech"]);
        keep_bytes(&mut deltas, 0);
        assert!(deltas.is_empty());
    }
}
