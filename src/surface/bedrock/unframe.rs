//! AWS event-stream frames → Anthropic stream events, sans I/O.

use http::StatusCode;

use super::read::read_non_stream;
use crate::core::{Failure, FailureClass, MAX_MESSAGE_CHARS};
use crate::eventstream::{
    chunk_bytes, Decoder, Frame, Limits, EVENT_TYPE, EXCEPTION_TYPE, MESSAGE_TYPE,
};
use crate::surface::stream::{Unframe, UpstreamEvent};
use crate::text::sanitize;

/// The longest exception type named in a failure's message and code.
const MAX_EXCEPTION_CHARS: usize = 64;

/// Cuts `invoke-with-response-stream`'s body into the Anthropic stream events its `chunk` frames
/// carry. An exception frame is the failure it names, with a fitting status; a frame that
/// cannot be read (a bad CRC, an absurd length, a payload that is not `{"bytes": ...}`) means
/// the stream is broken. Frames are bounded by the codec's default [`Limits`] (1 MiB).
///
/// Under load a 200 of the stream path was observed to carry a JSON or text error instead of
/// an event stream: when the body's first bytes are text rather than a frame, the failure says
/// what that text says, once the body ends (or its first 4 KiB are in).
///
/// ```
/// use sf_models_bridge::eventstream::chunk_frame;
/// use sf_models_bridge::surface::bedrock::EventStreamFrames;
/// use sf_models_bridge::surface::stream::Unframe;
///
/// let wire = chunk_frame(br#"{"type":"ping"}"#);
/// let mut frames = EventStreamFrames::default();
/// let (head, tail) = wire.split_at(5);
/// frames.push(head)?;
/// assert_eq!(frames.next_event()?, None);
/// frames.push(tail)?;
/// assert_eq!(&frames.next_event()?.unwrap().data[..], br#"{"type":"ping"}"#);
/// frames.finish()?;
///
/// let mut frames = EventStreamFrames::default();
/// frames.push(br#"{"message": "Too many requests"}"#)?;
/// assert_eq!(frames.next_event()?, None);
/// let failure = frames.finish().unwrap_err();
/// assert_eq!(
///     failure.message,
///     "Salesforce answered the stream request without an event stream: Too many requests"
/// );
/// # Ok::<(), sf_models_bridge::core::Failure>(())
/// ```
#[derive(Debug)]
pub struct EventStreamFrames {
    decoder: Decoder,
    /// The body's first bytes, kept until a frame has been read, to report a body that is not
    /// an event stream with what it says.
    head: Option<Vec<u8>>,
    /// The body turned out not to be an event stream: only `head` is still read.
    not_a_stream: bool,
}

/// How much of a body that is not an event stream is read for its message.
const NON_STREAM_HEAD_BYTES: usize = 4096;

impl Default for EventStreamFrames {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl EventStreamFrames {
    /// A reader whose frames may be as large as `limits` allow.
    pub fn new(limits: Limits) -> Self {
        Self {
            decoder: Decoder::new(limits),
            head: Some(Vec::new()),
            not_a_stream: false,
        }
    }

    /// The failure a body that is not an event stream stands for: what its text says, or a
    /// broken stream when it is not text either (a first frame with a bad CRC).
    fn non_stream(&mut self) -> Failure {
        let head = self.head.take().unwrap_or_default();
        let text = std::str::from_utf8(&head)
            .is_ok_and(|text| !text.chars().any(|c| c.is_control() && !c.is_whitespace()));
        if text {
            read_non_stream(&head)
        } else {
            broken()
        }
    }
}

impl Unframe for EventStreamFrames {
    fn push(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if let Some(head) = &mut self.head {
            let room = NON_STREAM_HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        }
        // The decoder checks a frame's length as soon as its prelude is in, so a frame over the
        // bound fails at the next `next_event` without being buffered whole.
        self.decoder.push(bytes);
        Ok(())
    }

    fn next_event(&mut self) -> Result<Option<UpstreamEvent>, Failure> {
        loop {
            if self.not_a_stream {
                let full = self
                    .head
                    .as_ref()
                    .is_none_or(|head| head.len() >= NON_STREAM_HEAD_BYTES);
                return if full {
                    Err(self.non_stream())
                } else {
                    Ok(None)
                };
            }
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                // Nothing was an event stream yet: the body may be an error in plain words.
                Err(_) if self.head.is_some() => {
                    self.not_a_stream = true;
                    continue;
                }
                Err(_) => return Err(broken()),
            };
            self.head = None;
            match frame.string_header(MESSAGE_TYPE) {
                Some("event") if frame.string_header(EVENT_TYPE) == Some("chunk") => {
                    let data = chunk_bytes(&frame.payload).map_err(|_| broken())?;
                    return Ok(Some(UpstreamEvent {
                        name: None,
                        data: data.into(),
                    }));
                }
                Some("exception") => return Err(exception(&frame)),
                // AWS's generic error frames: `:error-code` and `:error-message` headers.
                Some("error") => return Err(aws_error(&frame)),
                // Other event types, added later, carry nothing this reader knows.
                _ => {}
            }
        }
    }

    fn finish(&mut self) -> Result<(), Failure> {
        if self.not_a_stream {
            return Err(self.non_stream());
        }
        match self.decoder.finish() {
            Ok(()) => Ok(()),
            // A body too short for one frame's prelude.
            Err(_) if self.head.as_ref().is_some_and(|head| !head.is_empty()) => {
                Err(self.non_stream())
            }
            Err(_) => Err(broken()),
        }
    }
}

fn broken() -> Failure {
    Failure::new(
        StatusCode::BAD_GATEWAY,
        FailureClass::Upstream,
        "the upstream stream is broken",
    )
    .code("upstream_invalid_response")
}

/// An exception frame: `:exception-type` names it, its payload is `{"message": ...}`.
fn exception(frame: &Frame) -> Failure {
    #[derive(serde::Deserialize)]
    struct Payload<'a> {
        #[serde(borrow, default)]
        message: Option<std::borrow::Cow<'a, str>>,
    }
    let kind = frame.string_header(EXCEPTION_TYPE).unwrap_or("exception");
    let message = serde_json::from_slice::<Payload<'_>>(&frame.payload)
        .ok()
        .and_then(|payload| payload.message);
    let (status, class) = match kind {
        "throttlingException" => (StatusCode::TOO_MANY_REQUESTS, FailureClass::RateLimited),
        "serviceUnavailableException" => {
            (StatusCode::SERVICE_UNAVAILABLE, FailureClass::Unavailable)
        }
        "modelTimeoutException" => (StatusCode::GATEWAY_TIMEOUT, FailureClass::Upstream),
        "validationException" => (StatusCode::BAD_REQUEST, FailureClass::InvalidRequest),
        // `modelStreamErrorException`, `internalServerException`, and any other.
        _ => (StatusCode::BAD_GATEWAY, FailureClass::Upstream),
    };
    failure(status, class, kind, message.as_deref())
}

/// A generic error frame: `:error-code` and `:error-message` headers.
fn aws_error(frame: &Frame) -> Failure {
    let code = frame.string_header(":error-code").unwrap_or("error");
    let message = frame.string_header(":error-message");
    failure(
        StatusCode::BAD_GATEWAY,
        FailureClass::Upstream,
        code,
        message,
    )
}

/// "the upstream stream failed: `kind`: `message`", bounded, with `kind` as the code.
fn failure(status: StatusCode, class: FailureClass, kind: &str, message: Option<&str>) -> Failure {
    let kind = sanitize(kind, MAX_EXCEPTION_CHARS);
    let mut text = format!("the upstream stream failed: {kind}");
    if let Some(message) = message.map(|m| sanitize(m, MAX_MESSAGE_CHARS)) {
        if !message.is_empty() {
            text.push_str(": ");
            text.push_str(&message);
        }
    }
    let failure = Failure::new(status, class, text);
    if kind.is_empty() {
        failure
    } else {
        failure.code(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::{chunk_frame, encode_frame, Header};
    use crate::surface::bedrock::test_fixtures::fixture;

    fn exception_frame(kind: &str, payload: &[u8]) -> Vec<u8> {
        encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "exception"),
                Header::string(EXCEPTION_TYPE, kind),
                Header::string(":content-type", "application/json"),
            ],
            payload,
        )
    }

    /// Feeds `wire` in reads of `step` bytes, collecting events until a failure.
    fn read_all(wire: &[u8], step: usize) -> Result<Vec<Vec<u8>>, Failure> {
        let mut frames = EventStreamFrames::default();
        let mut events = Vec::new();
        for read in wire.chunks(step) {
            frames.push(read)?;
            while let Some(event) = frames.next_event()? {
                assert_eq!(event.name, None);
                events.push(event.data.to_vec());
            }
        }
        frames.finish()?;
        Ok(events)
    }

    #[test]
    fn the_spec_stream_survives_a_split_at_every_byte() {
        let jsonl = fixture("native.bedrock.stream.events.jsonl");
        let expected: Vec<Vec<u8>> = jsonl
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let wire: Vec<u8> = expected
            .iter()
            .flat_map(|event| chunk_frame(event))
            .collect();
        for step in 1..=wire.len() {
            assert_eq!(read_all(&wire, step).unwrap(), expected, "reads of {step}");
        }
        // Two reads, split at every byte.
        for cut in 0..=wire.len() {
            let mut frames = EventStreamFrames::default();
            let mut events = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                frames.push(part).unwrap();
                while let Some(event) = frames.next_event().unwrap() {
                    events.push(event.data.to_vec());
                }
            }
            frames.finish().unwrap();
            assert_eq!(events, expected, "cut at {cut}");
        }
    }

    #[test]
    fn exception_frames_fail_with_a_fitting_status() {
        let cases = [
            ("throttlingException", 429, FailureClass::RateLimited),
            (
                "serviceUnavailableException",
                503,
                FailureClass::Unavailable,
            ),
            ("modelTimeoutException", 504, FailureClass::Upstream),
            ("validationException", 400, FailureClass::InvalidRequest),
            ("modelStreamErrorException", 502, FailureClass::Upstream),
            ("internalServerException", 502, FailureClass::Upstream),
        ];
        for (kind, status, class) in cases {
            let mut wire = chunk_frame(br#"{"type":"ping"}"#);
            wire.extend(exception_frame(kind, br#"{"message":"Too\nmany"}"#));
            let failure = read_all(&wire, 3).unwrap_err();
            assert_eq!(
                (failure.status.as_u16(), failure.class),
                (status, class),
                "{kind}"
            );
            assert_eq!(
                failure.message,
                format!("the upstream stream failed: {kind}: Too many")
            );
            assert_eq!(failure.code.as_deref(), Some(kind));
        }
        let huge = "x".repeat(10_000);
        let failure = read_all(&exception_frame(&huge, b"not json"), 64).unwrap_err();
        assert!(failure.message.chars().count() < 100, "{}", failure.message);
        let error = encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "error"),
                Header::string(":error-code", "InternalFailure"),
                Header::string(":error-message", "oops"),
            ],
            b"",
        );
        let failure = read_all(&error, 7).unwrap_err();
        assert_eq!(
            (failure.status.as_u16(), failure.message.as_str()),
            (502, "the upstream stream failed: InternalFailure: oops")
        );
    }

    #[test]
    fn broken_frames_and_cut_streams_fail() {
        let broken = "the upstream stream is broken";
        let mut bad_crc = chunk_frame(br#"{"type":"ping"}"#);
        if let Some(last) = bad_crc.last_mut() {
            *last ^= 0xff;
        }
        let mut absurd = 0x7fff_ffff_u32.to_be_bytes().to_vec();
        absurd.extend(0_u32.to_be_bytes());
        absurd.extend(crc32(&absurd).to_be_bytes());
        let not_bytes = encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "event"),
                Header::string(EVENT_TYPE, "chunk"),
            ],
            br#"{"nope": 1}"#,
        );
        let whole = chunk_frame(br#"{"type":"ping"}"#);
        let cut = &whole[..whole.len() - 1];
        for wire in [&bad_crc[..], &absurd, &not_bytes, cut] {
            let failure = read_all(wire, 5).unwrap_err();
            assert_eq!(
                (failure.status.as_u16(), failure.message.as_str()),
                (502, broken)
            );
        }
        // Other event types are skipped.
        let other = encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "event"),
                Header::string(EVENT_TYPE, "metadata"),
            ],
            b"{}",
        );
        assert_eq!(read_all(&other, 4).unwrap(), Vec::<Vec<u8>>::new());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(bytes);
        hasher.finalize()
    }
}
