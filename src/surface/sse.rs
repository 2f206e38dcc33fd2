//! Server-sent events cut out of an upstream body as its bytes arrive: an [`Unframe`] for the
//! surfaces that stream SSE (`responses`).
//!
//! It follows the WHATWG event-stream rules the upstreams rely on: lines end in `\n`, `\r\n` or a
//! lone `\r`; a blank line ends an event; `event:` names it; `data:` lines are joined with `\n`;
//! one space after the colon is dropped; lines starting with `:` are comments (keep-alives);
//! `id:`, `retry:` and unknown fields are skipped; an event without `data` is not one; a leading
//! byte-order mark is skipped. A line or an event may be split across reads at any byte.
//!
//! ```
//! use sf_models_bridge::surface::sse::SseUnframe;
//! use sf_models_bridge::surface::stream::Unframe;
//!
//! let mut sse = SseUnframe::new();
//! sse.push(b": keep-alive\n\nevent: response.created\nda").unwrap();
//! assert_eq!(sse.next_event().unwrap(), None);
//! sse.push(b"ta: {\"a\":1}\r\n\r\n").unwrap();
//! let event = sse.next_event().unwrap().unwrap();
//! assert_eq!(event.name.as_deref(), Some(&b"response.created"[..]));
//! assert_eq!(&event.data[..], b"{\"a\":1}");
//! sse.finish().unwrap();
//! ```

// The stream traits fail with a whole `Failure`, the one error every front renders; a stream
// fails at most once, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::stream::{invalid_stream, Unframe, UpstreamEvent};
use crate::core::Failure;

/// The most bytes one event may take, its unfinished last line included. A Responses event
/// carries at most one delta, or at its end the whole response object (the answer's text and
/// tool calls once more), so 1 MiB holds the longest answers the bridge passes (a few hundred
/// KB) with room to spare, while a stream that never ends an event cannot grow the buffer
/// without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The UTF-8 byte-order mark, skipped at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The data lines of the event being read: most events have one, which is kept without a copy.
#[derive(Debug, Default)]
enum Data {
    #[default]
    None,
    One(Bytes),
    Many(BytesMut),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::None => 0,
            Data::One(line) => line.len(),
            Data::Many(lines) => lines.len(),
        }
    }

    fn push(&mut self, line: Bytes) {
        *self = match std::mem::take(self) {
            Data::None => Data::One(line),
            Data::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + 1 + line.len());
                joined.put_slice(&first);
                joined.put_u8(b'\n');
                joined.put_slice(&line);
                Data::Many(joined)
            }
            Data::Many(mut joined) => {
                joined.put_u8(b'\n');
                joined.put_slice(&line);
                Data::Many(joined)
            }
        };
    }
}

/// Cuts server-sent events out of a body, holding at most one unfinished event of at most
/// [`MAX_EVENT_BYTES`].
#[derive(Debug, Default)]
pub struct SseUnframe {
    /// Bytes not yet read as lines: at most one unfinished line.
    buffer: BytesMut,
    /// Whether the stream's first bytes were checked for a byte-order mark.
    started: bool,
    /// The name of the event being read.
    name: Option<Bytes>,
    /// Its data.
    data: Data,
    /// Whole events not yet taken.
    ready: VecDeque<UpstreamEvent>,
}

impl SseUnframe {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads every whole line in the buffer. A `\r` last in the buffer waits for the next read,
    /// which may start with the `\n` of the same line end, unless the body has ended.
    fn read_lines(&mut self, ended: bool) -> Result<(), Failure> {
        loop {
            let Some(end) = memchr::memchr2(b'\n', b'\r', &self.buffer) else {
                return Ok(());
            };
            let ending = match self.buffer.get(end..end + 2) {
                Some(b"\r\n") => 2,
                Some(_) => 1,
                None if self.buffer.get(end) == Some(&b'\r') && !ended => return Ok(()),
                None => 1,
            };
            let mut line = self.buffer.split_to(end + ending).freeze();
            line.truncate(end);
            self.read_line(line);
            // An event may end within the read that made it too large.
            if self.event_bytes() > MAX_EVENT_BYTES {
                return Err(too_large());
            }
        }
    }

    fn read_line(&mut self, line: Bytes) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            // A comment, such as a keep-alive.
            Some(0) => return,
            Some(colon) => {
                let mut value = line.slice(colon + 1..);
                if value.first() == Some(&b' ') {
                    value.advance(1);
                }
                (line.slice(..colon), value)
            }
            None => (line, Bytes::new()),
        };
        match &field[..] {
            b"event" => self.name = Some(value),
            b"data" => self.data.push(value),
            // `id`, `retry` and unknown fields: nothing the bridge uses.
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let name = self.name.take();
        let data = match std::mem::take(&mut self.data) {
            // Lines without data (a lone `event:`) make no event.
            Data::None => return,
            Data::One(line) => line,
            Data::Many(lines) => lines.freeze(),
        };
        self.ready.push_back(UpstreamEvent { name, data });
    }

    /// The bytes of the event being read, in its whole lines.
    fn event_bytes(&self) -> usize {
        self.name.as_ref().map_or(0, Bytes::len) + self.data.len()
    }

    /// The bytes of the event being read, its unfinished line included: once every whole line
    /// is read, the buffer holds at most that line.
    fn pending(&self) -> usize {
        self.buffer.len() + self.event_bytes()
    }
}

impl Unframe for SseUnframe {
    fn push(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.buffer.extend_from_slice(bytes);
        if !self.started {
            // The mark may itself arrive split: decide once three bytes (or a mismatch) are in.
            let prefix = self.buffer.len().min(BOM.len());
            if self.buffer.get(..prefix) == BOM.get(..prefix) && prefix < BOM.len() {
                return Ok(());
            }
            if self.buffer.starts_with(BOM) {
                self.buffer.advance(BOM.len());
            }
            self.started = true;
        }
        self.read_lines(false)?;
        if self.pending() > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        Ok(())
    }

    fn next_event(&mut self) -> Result<Option<UpstreamEvent>, Failure> {
        Ok(self.ready.pop_front())
    }

    fn finish(&mut self) -> Result<(), Failure> {
        self.read_lines(true)?;
        let partial =
            !self.buffer.is_empty() || self.name.is_some() || !matches!(self.data, Data::None);
        if partial {
            return Err(invalid_stream(
                "Salesforce's stream ended in the middle of an event",
            ));
        }
        Ok(())
    }
}

fn too_large() -> Failure {
    invalid_stream(format!(
        "Salesforce sent a stream event larger than {MAX_EVENT_BYTES} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `body` pushed in pieces of `size` bytes, then the end.
    fn events_in_pieces(
        body: &[u8],
        size: usize,
    ) -> Result<Vec<(Option<String>, String)>, Failure> {
        let mut sse = SseUnframe::new();
        let mut events = Vec::new();
        let mut take = |sse: &mut SseUnframe| {
            while let Some(event) = sse.next_event().unwrap() {
                let name = event
                    .name
                    .map(|name| String::from_utf8(name.to_vec()).unwrap());
                events.push((name, String::from_utf8(event.data.to_vec()).unwrap()));
            }
        };
        for piece in body.chunks(size.max(1)) {
            sse.push(piece)?;
            take(&mut sse);
        }
        sse.finish()?;
        take(&mut sse);
        Ok(events)
    }

    fn events(body: &[u8]) -> Vec<(Option<String>, String)> {
        events_in_pieces(body, body.len()).unwrap()
    }

    fn event(name: Option<&str>, data: &str) -> (Option<String>, String) {
        (name.map(str::to_owned), data.to_owned())
    }

    #[test]
    fn the_spec_fixture_gives_the_same_events_however_it_is_split() {
        let body = std::fs::read(format!(
            "{}/tests/fixtures/native.responses.stream.sse",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let whole = events(&body);
        assert_eq!(whole.len(), 9);
        for (name, data) in &whole {
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(name.as_deref(), data["type"].as_str());
        }
        for size in 1..=body.len() {
            assert_eq!(events_in_pieces(&body, size).unwrap(), whole, "{size}");
        }
        // And split at every single byte, once, in two.
        for cut in 0..=body.len() {
            let mut sse = SseUnframe::new();
            sse.push(&body[..cut]).unwrap();
            sse.push(&body[cut..]).unwrap();
            let mut count = 0;
            while sse.next_event().unwrap().is_some() {
                count += 1;
            }
            sse.finish().unwrap();
            assert_eq!(count, whole.len(), "{cut}");
        }
    }

    #[test]
    fn line_ends_comments_and_fields() {
        let body = b"\xEF\xBB\xBF: hi\r\nevent:a\rdata:x\r\rdata: y\ndata:  z\nid: 7\nretry: 5\nfoo: bar\nbare\n\nevent: lonely\n\ndata\n\ndata:\n\n";
        assert_eq!(
            events(body),
            [
                event(Some("a"), "x"),
                event(None, "y\n z"),
                event(None, ""),
                event(None, "")
            ]
        );
        // CRLF split between the reads, and a BOM split too.
        for size in 1..body.len() {
            assert_eq!(
                events_in_pieces(body, size).unwrap(),
                events(body),
                "{size}"
            );
        }
    }

    #[test]
    fn a_body_that_ends_inside_an_event_is_broken() {
        for body in [&b"data: {}\n"[..], b"data: {}", b"event: x\n", b": partial"] {
            let error = events_in_pieces(body, 3).unwrap_err();
            assert_eq!(error.status, 502, "{body:?}");
            assert!(error.message.contains("middle of an event"), "{error:?}");
        }
        // A lone `\r` last is a whole line end once the body has ended.
        assert_eq!(events(b"data: x\r\r"), [event(None, "x")]);
        assert!(events(b"").is_empty());
    }

    #[test]
    fn an_oversized_event_fails_however_it_arrives() {
        let line = vec![b'x'; MAX_EVENT_BYTES];
        let mut sse = SseUnframe::new();
        sse.push(b"data: ").unwrap();
        let error = sse.push(&line).unwrap_err();
        assert_eq!(error.status, 502);
        assert!(error.message.contains("larger than"), "{error:?}");

        // Many short data lines of one event count together.
        let mut sse = SseUnframe::new();
        let short = [b"data: ".as_slice(), &[b'x'; 1000], b"\n"].concat();
        let mut failed = None;
        for _ in 0..(MAX_EVENT_BYTES / 1000 + 2) {
            if let Err(error) = sse.push(&short) {
                failed = Some(error);
                break;
            }
        }
        assert!(failed.is_some());

        // An event that ends in the read that makes it too large fails too.
        let mut sse = SseUnframe::new();
        sse.push(b"data: ").unwrap();
        let whole = [&line[..], b"x\n\n"].concat();
        assert!(sse.push(&whole).is_err());
        assert_eq!(sse.next_event().unwrap(), None);

        // Many whole events in one read are fine.
        let many: Vec<u8> = b"data: 0123456789\n\n".repeat(MAX_EVENT_BYTES / 8);
        let mut sse = SseUnframe::new();
        sse.push(&many).unwrap();
        assert!(sse.next_event().unwrap().is_some());
    }
}
