//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), sans I/O: the binary
//! frames in which Salesforce's Bedrock path answers `invoke-with-response-stream`.
//!
//! A frame is a 12-byte prelude (total length, headers length, CRC-32 of those 8 bytes), typed
//! headers, a payload and a CRC-32 of everything before it. [`Decoder`] takes bytes as they
//! are read, split anywhere, and hands back whole [`Frame`]s; [`encode_frame`] writes one (the
//! mock Salesforce's side). A Bedrock event frame's payload is `{"bytes": "<base64>"}`, whose
//! decoded bytes are one Anthropic stream event: [`chunk_bytes`] reads it, [`chunk_payload`] and
//! [`chunk_frame`] write it.
//!
//! ```
//! use sf_models_bridge::eventstream::{chunk_bytes, chunk_frame, Decoder, Limits, EVENT_TYPE};
//!
//! let mut wire = chunk_frame(br#"{"type":"ping"}"#);
//! wire.extend(chunk_frame(br#"{"type":"message_stop"}"#));
//!
//! let mut decoder = Decoder::new(Limits::default());
//! let mut events = Vec::new();
//! // Network reads split frames anywhere, the prelude included.
//! for read in wire.chunks(7) {
//!     decoder.push(read);
//!     while let Some(frame) = decoder.next_frame()? {
//!         assert_eq!(frame.string_header(EVENT_TYPE), Some("chunk"));
//!         events.push(chunk_bytes(&frame.payload)?);
//!     }
//! }
//! decoder.finish()?; // the stream ended on a frame boundary
//! assert_eq!(events, [&br#"{"type":"ping"}"#[..], br#"{"type":"message_stop"}"#]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why not the AWS SDK's decoder
//!
//! `aws-smithy-eventstream` decodes into the smithy runtime's own types
//! (`aws_smithy_types::event_stream::Message`, with `StrBytes` strings, smithy `DateTime`
//! timestamps and non-exhaustive enums), so it brings `aws-smithy-types` and its dependencies
//! into a crate that otherwise has no AWS code, and its `MessageFrameDecoder` works on a `Buf`
//! the caller owns and refills, a second buffer model beside the bridge's `Bytes` bodies. It is
//! also a 0.x crate versioned with the SDK's releases. The format itself is a 12-byte prelude and
//! ten header types, and the mock needs an encoder of the same frames anyway; the one part worth
//! borrowing is a fast CRC-32, which `crc32fast` (SIMD where the CPU has it) provides.
//!
//! # Limits
//!
//! A frame's lengths are checked as soon as its 12-byte prelude is buffered, before any more of
//! it is kept, so an absurd length is an error at once rather than a buffer that grows until
//! the frame would be complete. [`Limits::default`] allows 1 MiB frames and 16 KiB of headers;
//! the protocol's own maxima ([`Limits::PROTOCOL`]) are 16 MiB and 128 KiB.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;

/// The prelude: total length, headers length, and the CRC-32 of those two.
const PRELUDE_LEN: usize = 12;
/// The message CRC that ends every frame.
const CRC_LEN: usize = 4;
/// A frame with no headers and no payload.
const MIN_FRAME_LEN: usize = PRELUDE_LEN + CRC_LEN;

/// The header that says whether a frame is an `event`, an `exception` or an `error`.
pub const MESSAGE_TYPE: &str = ":message-type";
/// The header naming an event frame's event (`chunk` on Bedrock's stream).
pub const EVENT_TYPE: &str = ":event-type";
/// The header naming an exception frame's exception (`throttlingException`, ...).
pub const EXCEPTION_TYPE: &str = ":exception-type";
/// The header giving the payload's media type (`application/json` on Bedrock's stream).
pub const CONTENT_TYPE: &str = ":content-type";

/// A header's typed value, one variant per wire type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderValue {
    /// Types 0 (`true`) and 1 (`false`): the type is the value, nothing follows.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: a big-endian `i16`.
    Short(i16),
    /// Type 4: a big-endian `i32`.
    Int(i32),
    /// Type 5: a big-endian `i64`.
    Long(i64),
    /// Type 6: up to 65,535 bytes, after a 2-byte big-endian length.
    Bytes(Bytes),
    /// Type 7: up to 65,535 bytes of UTF-8, after a 2-byte big-endian length.
    String(String),
    /// Type 8: milliseconds since the Unix epoch, a big-endian `i64`.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The value's wire type.
    fn wire_type(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Short(_) => 3,
            HeaderValue::Int(_) => 4,
            HeaderValue::Long(_) => 5,
            HeaderValue::Bytes(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }

    /// The bytes the value takes after its type byte.
    fn wire_len(&self) -> usize {
        match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Short(_) => 2,
            HeaderValue::Int(_) => 4,
            HeaderValue::Long(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::Bytes(bytes) => 2 + bytes.len(),
            HeaderValue::String(text) => 2 + text.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }

    /// The value as text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(text) => Some(text),
            _ => None,
        }
    }
}

/// One header of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Its name: up to 255 bytes of UTF-8.
    pub name: String,
    /// Its value.
    pub value: HeaderValue,
}

impl Header {
    /// A header of any type.
    pub fn new(name: impl Into<String>, value: HeaderValue) -> Self {
        Header {
            name: name.into(),
            value,
        }
    }

    /// A string header, the only type Bedrock's stream uses.
    pub fn string(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header::new(name, HeaderValue::String(value.into()))
    }
}

/// One decoded frame: its headers in wire order and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The headers, in the order they were sent, duplicates kept.
    pub headers: Vec<Header>,
    /// The payload, shared with the decoder's buffer rather than copied.
    pub payload: Bytes,
}

impl Frame {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|header| header.name == name)
            .map(|header| &header.value)
    }

    /// The value of the first header called `name`, when it is a string.
    pub fn string_header(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }
}

/// Why a frame could not be encoded: a length that does not fit its wire field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A header name longer than its 1-byte length field allows.
    #[error("header name of {len} bytes is longer than 255")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A bytes or string value longer than its 2-byte length field allows.
    #[error("value of header {name:?} is {len} bytes, longer than 65535")]
    ValueTooLong {
        /// The header's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
    },
    /// A frame longer than its 4-byte length field allows.
    #[error("frame of {len} bytes is longer than 4 GiB")]
    FrameTooLarge {
        /// The frame's length in bytes (saturated).
        len: usize,
    },
}

/// Encodes one frame: prelude, prelude CRC, headers in the given order, payload, message CRC.
///
/// For frames the caller builds itself (the mock Salesforce's answers, tests); see
/// [`try_encode_frame`] for headers that may not fit the wire's length fields.
///
/// # Panics
///
/// When a header name is over 255 bytes, a bytes or string value over 65,535 bytes, or the
/// frame over 4 GiB: a bug in the caller, since no frame the [`Decoder`] hands back can be any of
/// these.
pub fn encode_frame(headers: &[Header], payload: &[u8]) -> Vec<u8> {
    match try_encode_frame(headers, payload) {
        Ok(frame) => frame,
        Err(error) => panic!("encode_frame: {error}"),
    }
}

/// Encodes one frame as [`encode_frame`] does, or says which length does not fit.
pub fn try_encode_frame(headers: &[Header], payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut headers_len = 0usize;
    for header in headers {
        let name_len = header.name.len();
        if name_len > usize::from(u8::MAX) {
            return Err(EncodeError::NameTooLong { len: name_len });
        }
        let value_len = match &header.value {
            HeaderValue::Bytes(bytes) => bytes.len(),
            HeaderValue::String(text) => text.len(),
            // Fixed-size values: nothing to check.
            HeaderValue::Bool(_)
            | HeaderValue::Byte(_)
            | HeaderValue::Short(_)
            | HeaderValue::Int(_)
            | HeaderValue::Long(_)
            | HeaderValue::Timestamp(_)
            | HeaderValue::Uuid(_) => 0,
        };
        if value_len > usize::from(u16::MAX) {
            return Err(EncodeError::ValueTooLong {
                name: header.name.clone(),
                len: value_len,
            });
        }
        headers_len = headers_len
            .saturating_add(2 + name_len)
            .saturating_add(header.value.wire_len());
    }
    let total = MIN_FRAME_LEN
        .saturating_add(headers_len)
        .saturating_add(payload.len());
    let (Ok(total_field), Ok(headers_field)) = (u32::try_from(total), u32::try_from(headers_len))
    else {
        return Err(EncodeError::FrameTooLarge { len: total });
    };

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&total_field.to_be_bytes());
    out.extend_from_slice(&headers_field.to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for header in headers {
        // Both lengths were checked above.
        out.push(u8::try_from(header.name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(header.name.as_bytes());
        out.push(header.value.wire_type());
        match &header.value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Short(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Int(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Long(value) | HeaderValue::Timestamp(value) => {
                out.extend_from_slice(&value.to_be_bytes())
            }
            HeaderValue::Bytes(bytes) => put_prefixed(&mut out, bytes),
            HeaderValue::String(text) => put_prefixed(&mut out, text.as_bytes()),
            HeaderValue::Uuid(uuid) => out.extend_from_slice(uuid),
        }
    }
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(out)
}

/// Writes a value after its 2-byte length, which the caller has checked.
fn put_prefixed(out: &mut Vec<u8>, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// How large a frame the [`Decoder`] accepts, and so how much it buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame, prelude and CRCs included. The decoder never holds more than this of
    /// one frame, so it bounds the memory a stream can make the bridge keep.
    pub max_frame_bytes: usize,
    /// The largest headers block.
    pub max_headers_bytes: usize,
}

impl Limits {
    /// The protocol's own maxima (16 MiB frames, 128 KiB of headers), as AWS's SDKs enforce
    /// them.
    pub const PROTOCOL: Limits = Limits {
        max_frame_bytes: 16 * 1024 * 1024,
        max_headers_bytes: 128 * 1024,
    };
}

impl Default for Limits {
    /// 1 MiB frames and 16 KiB of headers. A Bedrock frame carries one Anthropic stream event,
    /// base64-encoded: a text or JSON delta of a few hundred bytes, a thinking signature of a few
    /// KiB, at most a server tool's result block of tens of KiB, so 1 MiB is ten times the
    /// largest event seen, while 16 MiB per stream would let a few hundred broken streams pin
    /// gigabytes. Bedrock's three string headers take about 80 bytes.
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1024 * 1024,
            max_headers_bytes: 16 * 1024,
        }
    }
}

/// Why the bytes are not a valid event stream. Any of these means the stream is broken: the
/// decoder cannot find the next frame boundary after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The prelude's CRC does not match its lengths, so neither can be trusted.
    #[error("event-stream prelude CRC mismatch: sent {sent:#010x}, computed {computed:#010x}")]
    PreludeCrc {
        /// The CRC in the prelude.
        sent: u32,
        /// The CRC of the prelude's 8 length bytes.
        computed: u32,
    },
    /// The frame's final CRC does not match its bytes.
    #[error("event-stream message CRC mismatch: sent {sent:#010x}, computed {computed:#010x}")]
    MessageCrc {
        /// The CRC at the end of the frame.
        sent: u32,
        /// The CRC of the frame's other bytes.
        computed: u32,
    },
    /// A total length too small to hold the prelude and the message CRC.
    #[error("event-stream frame length {total_len} is below the minimum of 16")]
    FrameTooShort {
        /// The total length in the prelude.
        total_len: u32,
    },
    /// A total length over [`Limits::max_frame_bytes`].
    #[error("event-stream frame length {total_len} is over the limit of {max} bytes")]
    FrameTooLarge {
        /// The total length in the prelude.
        total_len: u32,
        /// The limit.
        max: usize,
    },
    /// A headers length over [`Limits::max_headers_bytes`].
    #[error("event-stream headers length {headers_len} is over the limit of {max} bytes")]
    HeadersTooLarge {
        /// The headers length in the prelude.
        headers_len: u32,
        /// The limit.
        max: usize,
    },
    /// A headers length that does not fit in the frame beside the prelude and the CRC.
    #[error(
        "event-stream headers length {headers_len} does not fit in a frame of {total_len} bytes"
    )]
    HeadersBeyondFrame {
        /// The headers length in the prelude.
        headers_len: u32,
        /// The total length in the prelude.
        total_len: u32,
    },
    /// A header that cannot be read, in a frame whose CRCs matched.
    #[error("event-stream header at byte {offset} of the headers block: {fault}")]
    BadHeader {
        /// Where the header starts, from the start of the headers block.
        offset: usize,
        /// What is wrong with it.
        fault: HeaderFault,
    },
    /// The input ended inside a frame.
    #[error("event stream ended inside a frame: {buffered} bytes of it were read")]
    Truncated {
        /// The bytes of the unfinished frame that arrived.
        buffered: usize,
        /// The frame's total length, when its prelude arrived.
        total_len: Option<usize>,
    },
}

/// What is wrong with a header, in [`DecodeError::BadHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFault {
    /// The headers block ends inside the header.
    #[error("it runs past the end of the headers block")]
    Truncated,
    /// A name that is not UTF-8.
    #[error("its name is not UTF-8")]
    NameNotUtf8,
    /// A type byte outside 0..=9.
    #[error("unknown value type {0}")]
    UnknownType(u8),
    /// A string value (type 7) that is not UTF-8.
    #[error("its string value is not UTF-8")]
    StringNotUtf8,
}

/// A checked prelude: the frame's lengths, both within the limits and consistent.
#[derive(Debug, Clone, Copy)]
struct Prelude {
    total_len: usize,
    headers_len: usize,
}

/// An incremental event-stream decoder: [`push`](Decoder::push) bytes as they are read, then
/// call [`next_frame`](Decoder::next_frame) until it answers `Ok(None)`; at the end of the input,
/// [`finish`](Decoder::finish) says whether the stream stopped inside a frame.
///
/// Bytes are appended to one buffer and a frame is split off its front once complete, so a
/// frame is parsed once, each CRC runs over its bytes once, and its payload is not copied again. Drained after every push, the buffer holds
/// at most the start of one frame, at most [`Limits::max_frame_bytes`]. After an error the
/// decoder stays failed: it drops its buffer, ignores further bytes, and answers the same error.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    buffer: BytesMut,
    /// The prelude of the frame at the front of the buffer, once checked.
    prelude: Option<Prelude>,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    /// A decoder with the default [`Limits`].
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with these limits and nothing buffered.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            buffer: BytesMut::new(),
            prelude: None,
            failed: None,
        }
    }

    /// Appends bytes read from the stream; a frame may be split at any byte.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next whole frame, `Ok(None)` until one is buffered, or why the stream is broken.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.decode().inspect_err(|error| {
            self.failed = Some(error.clone());
            self.buffer = BytesMut::new();
            self.prelude = None;
        })
    }

    /// The bytes received and not yet handed back in a frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// At the end of the input, after [`next_frame`](Decoder::next_frame) answered `Ok(None)`:
    /// `Ok` when the stream ended on a frame boundary, the decoder's error if it failed, and
    /// [`DecodeError::Truncated`] when part of a frame remains.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        Err(DecodeError::Truncated {
            buffered: self.buffer.len(),
            total_len: self.prelude.map(|prelude| prelude.total_len),
        })
    }

    fn decode(&mut self) -> Result<Option<Frame>, DecodeError> {
        let prelude = match self.prelude {
            Some(prelude) => prelude,
            None => {
                let Some(bytes) = self
                    .buffer
                    .get(..PRELUDE_LEN)
                    .and_then(|bytes| <&[u8; PRELUDE_LEN]>::try_from(bytes).ok())
                else {
                    return Ok(None);
                };
                let prelude = read_prelude(bytes, &self.limits)?;
                self.prelude = Some(prelude);
                // The length is within the limit: make room for the whole frame at once rather
                // than growing the buffer read by read.
                self.buffer
                    .reserve(prelude.total_len.saturating_sub(self.buffer.len()));
                prelude
            }
        };
        if self.buffer.len() < prelude.total_len {
            return Ok(None);
        }
        self.prelude = None;
        let frame = self.buffer.split_to(prelude.total_len).freeze();
        read_frame(frame, prelude).map(Some)
    }
}

/// Checks a prelude's CRC, then its lengths against the minimum, each other and the limits.
fn read_prelude(bytes: &[u8; PRELUDE_LEN], limits: &Limits) -> Result<Prelude, DecodeError> {
    let [t0, t1, t2, t3, h0, h1, h2, h3, c0, c1, c2, c3] = *bytes;
    let sent = u32::from_be_bytes([c0, c1, c2, c3]);
    let computed = crc32fast::hash(&[t0, t1, t2, t3, h0, h1, h2, h3]);
    if sent != computed {
        return Err(DecodeError::PreludeCrc { sent, computed });
    }
    let total_len = u32::from_be_bytes([t0, t1, t2, t3]);
    let headers_len = u32::from_be_bytes([h0, h1, h2, h3]);
    let total = usize::try_from(total_len).unwrap_or(usize::MAX);
    let headers = usize::try_from(headers_len).unwrap_or(usize::MAX);
    if total < MIN_FRAME_LEN {
        return Err(DecodeError::FrameTooShort { total_len });
    }
    if total > limits.max_frame_bytes {
        return Err(DecodeError::FrameTooLarge {
            total_len,
            max: limits.max_frame_bytes,
        });
    }
    if headers > total - MIN_FRAME_LEN {
        return Err(DecodeError::HeadersBeyondFrame {
            headers_len,
            total_len,
        });
    }
    if headers > limits.max_headers_bytes {
        return Err(DecodeError::HeadersTooLarge {
            headers_len,
            max: limits.max_headers_bytes,
        });
    }
    Ok(Prelude {
        total_len: total,
        headers_len: headers,
    })
}

/// Checks a whole frame's CRC, then reads its headers and slices its payload.
fn read_frame(mut frame: Bytes, prelude: Prelude) -> Result<Frame, DecodeError> {
    let body_len = prelude.total_len.saturating_sub(CRC_LEN);
    let (Some(body), Some(crc)) = (
        frame.get(..body_len),
        frame
            .get(body_len..)
            .and_then(|crc| <[u8; CRC_LEN]>::try_from(crc).ok()),
    ) else {
        // The prelude was checked and the frame split at its length: this cannot happen.
        return Err(DecodeError::FrameTooShort {
            total_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
        });
    };
    let sent = u32::from_be_bytes(crc);
    let computed = crc32fast::hash(body);
    if sent != computed {
        return Err(DecodeError::MessageCrc { sent, computed });
    }
    frame.truncate(body_len);
    let truncated_block = || DecodeError::BadHeader {
        offset: 0,
        fault: HeaderFault::Truncated,
    };
    take(&mut frame, PRELUDE_LEN).ok_or_else(truncated_block)?;
    let block = take(&mut frame, prelude.headers_len).ok_or_else(truncated_block)?;
    Ok(Frame {
        headers: read_headers(block)?,
        payload: frame,
    })
}

/// Reads a headers block whole.
fn read_headers(mut block: Bytes) -> Result<Vec<Header>, DecodeError> {
    let block_len = block.len();
    let mut headers = Vec::new();
    while !block.is_empty() {
        let offset = block_len - block.len();
        let header =
            read_header(&mut block).map_err(|fault| DecodeError::BadHeader { offset, fault })?;
        headers.push(header);
    }
    Ok(headers)
}

/// Reads one header off the front of `block`.
fn read_header(block: &mut Bytes) -> Result<Header, HeaderFault> {
    let [name_len] = take_array(block)?;
    let name = take(block, usize::from(name_len)).ok_or(HeaderFault::Truncated)?;
    let name = std::str::from_utf8(&name)
        .map_err(|_| HeaderFault::NameNotUtf8)?
        .to_owned();
    let [wire_type] = take_array(block)?;
    let value = match wire_type {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(i8::from_be_bytes(take_array(block)?)),
        3 => HeaderValue::Short(i16::from_be_bytes(take_array(block)?)),
        4 => HeaderValue::Int(i32::from_be_bytes(take_array(block)?)),
        5 => HeaderValue::Long(i64::from_be_bytes(take_array(block)?)),
        6 => HeaderValue::Bytes(take_prefixed(block)?),
        7 => {
            let text = take_prefixed(block)?;
            let text = std::str::from_utf8(&text).map_err(|_| HeaderFault::StringNotUtf8)?;
            HeaderValue::String(text.to_owned())
        }
        8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(block)?)),
        9 => HeaderValue::Uuid(take_array(block)?),
        unknown => return Err(HeaderFault::UnknownType(unknown)),
    };
    Ok(Header { name, value })
}

/// The first `len` bytes of `bytes`, split off, when there are that many.
fn take(bytes: &mut Bytes, len: usize) -> Option<Bytes> {
    (bytes.len() >= len).then(|| bytes.split_to(len))
}

/// The first `N` bytes of `block`, split off.
fn take_array<const N: usize>(block: &mut Bytes) -> Result<[u8; N], HeaderFault> {
    take(block, N)
        .and_then(|bytes| <[u8; N]>::try_from(bytes.as_ref()).ok())
        .ok_or(HeaderFault::Truncated)
}

/// A value after its 2-byte big-endian length, split off `block`.
fn take_prefixed(block: &mut Bytes) -> Result<Bytes, HeaderFault> {
    let len = u16::from_be_bytes(take_array(block)?);
    take(block, usize::from(len)).ok_or(HeaderFault::Truncated)
}

/// Why a Bedrock event payload is not `{"bytes": "<base64>"}`.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// Not JSON, not an object, or no string `bytes`. Only where and what kind of problem is
    /// kept: serde_json's own message quotes the payload, which is upstream content.
    #[error("Bedrock event payload is not {{\"bytes\": \"<base64>\"}}: {problem} at line {line} column {column}")]
    Malformed {
        /// What kind of problem, in a few fixed words.
        problem: &'static str,
        /// Where it was found, counted from 1.
        line: usize,
        /// Where in the line, counted from 1.
        column: usize,
    },
    /// `bytes` is not base64.
    #[error("Bedrock event payload's bytes are not base64")]
    Base64(#[source] base64::DecodeError),
}

/// Bedrock's event payload. Other fields (the padding `p` that hides the event's length) are
/// skipped.
#[derive(Deserialize)]
struct Chunk<'a> {
    /// Borrowed unless JSON escapes it (a `\/` for a `/` is legal JSON).
    #[serde(borrow)]
    bytes: Cow<'a, str>,
}

/// Standard base64 with or without its `=` padding: the padding carries no information, and
/// refusing a stream over it would help no caller.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The Anthropic stream event (JSON bytes) in a Bedrock event frame's payload,
/// `{"bytes": "<base64>"}`, possibly with a padding field `p`.
pub fn chunk_bytes(payload: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let chunk: Chunk<'_> = serde_json::from_slice(payload).map_err(|error| {
        use serde_json::error::Category;
        ChunkError::Malformed {
            problem: match error.classify() {
                Category::Syntax => "invalid JSON syntax",
                Category::Data => "no string field bytes",
                Category::Eof => "the payload ends early",
                Category::Io => "the payload could not be read",
            },
            line: error.line(),
            column: error.column(),
        }
    })?;
    LENIENT_BASE64
        .decode(chunk.bytes.as_bytes())
        .map_err(ChunkError::Base64)
}

/// A Bedrock event frame's payload carrying `event_json`: `{"bytes":"<base64>"}`, no padding
/// field.
pub fn chunk_payload(event_json: &[u8]) -> Vec<u8> {
    // Base64's alphabet needs no JSON escaping.
    let encoded = STANDARD.encode(event_json);
    let mut payload = Vec::with_capacity(encoded.len() + 12);
    payload.extend_from_slice(br#"{"bytes":""#);
    payload.extend_from_slice(encoded.as_bytes());
    payload.extend_from_slice(br#""}"#);
    payload
}

/// A whole Bedrock event frame carrying `event_json`, as `invoke-with-response-stream` sends
/// it: headers `:message-type` = `event`, `:event-type` = `chunk`, `:content-type` =
/// `application/json`, and the payload of [`chunk_payload`].
///
/// # Panics
///
/// When the frame would be over 4 GiB, as [`encode_frame`] does.
pub fn chunk_frame(event_json: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            Header::string(MESSAGE_TYPE, "event"),
            Header::string(EVENT_TYPE, "chunk"),
            Header::string(CONTENT_TYPE, "application/json"),
        ],
        &chunk_payload(event_json),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    use super::*;

    /// One header of every wire type, both booleans and empty values included.
    fn every_type() -> Vec<Header> {
        vec![
            Header::new("true", HeaderValue::Bool(true)),
            Header::new("false", HeaderValue::Bool(false)),
            Header::new("byte", HeaderValue::Byte(i8::MIN)),
            Header::new("short", HeaderValue::Short(-2)),
            Header::new("int", HeaderValue::Int(i32::MAX)),
            Header::new("long", HeaderValue::Long(i64::MIN + 1)),
            Header::new(
                "bytes",
                HeaderValue::Bytes(Bytes::from_static(b"\0\xff\x10")),
            ),
            Header::new("no bytes", HeaderValue::Bytes(Bytes::new())),
            Header::string("string", "caf\u{e9} \u{1f980}"),
            Header::string("", ""),
            Header::new("timestamp", HeaderValue::Timestamp(1_712_258_359_123)),
            Header::new("uuid", HeaderValue::Uuid(*b"0123456789abcdef")),
        ]
    }

    /// A frame around a raw headers block, with both CRCs right, for headers the encoder would
    /// never write.
    fn raw_frame(headers_block: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = u32::try_from(MIN_FRAME_LEN + headers_block.len() + payload.len()).unwrap();
        let headers_len = u32::try_from(headers_block.len()).unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(headers_block);
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    /// A prelude with a right CRC and whatever lengths.
    fn prelude(total_len: u32, headers_len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    /// Every frame in `reads`, pushed one after the other, and then whether the input ended on
    /// a frame boundary.
    fn decode_reads<'a>(
        reads: impl IntoIterator<Item = &'a [u8]>,
        limits: Limits,
    ) -> (Vec<Frame>, Result<(), DecodeError>) {
        let mut decoder = Decoder::new(limits);
        let mut frames = Vec::new();
        for read in reads {
            decoder.push(read);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(error) => return (frames, Err(error)),
                }
            }
        }
        let end = decoder.finish();
        (frames, end)
    }

    fn decode_all(wire: &[u8]) -> Result<Vec<Frame>, DecodeError> {
        let (frames, end) = decode_reads([wire], Limits::default());
        end.map(|()| frames)
    }

    fn frame(headers: Vec<Header>, payload: &'static [u8]) -> Frame {
        Frame {
            headers,
            payload: Bytes::from_static(payload),
        }
    }

    /// aws-c-event-stream's test messages: an empty one, a payload only, and a string header
    /// with a payload. They pin the layout and both CRCs to what AWS's own code writes.
    #[test]
    fn aws_test_vectors_decode_and_encode_byte_for_byte() {
        let empty = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2\x48\xeb\x7d\x98\xc8\xff";
        let payload_only =
            b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfd\x52\x8c\x5a{'foo':'bar'}\xc3\x65\x39\x36";
        let with_header = b"\x00\x00\x00\x3d\x00\x00\x00\x20\x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10application/json{'foo':'bar'}\x8d\x9c\x08\xb1";
        let expected = [
            frame(vec![], b""),
            frame(vec![], b"{'foo':'bar'}"),
            frame(
                vec![Header::string("content-type", "application/json")],
                b"{'foo':'bar'}",
            ),
        ];
        let wire = [&empty[..], payload_only, with_header].concat();
        assert_eq!(decode_all(&wire).unwrap(), expected);
        for (frame, bytes) in expected.iter().zip([&empty[..], payload_only, with_header]) {
            assert_eq!(encode_frame(&frame.headers, &frame.payload), bytes);
        }
    }

    #[test]
    fn every_header_type_round_trips() {
        let wire = encode_frame(&every_type(), b"payload");
        let frames = decode_all(&wire).unwrap();
        assert_eq!(frames, [frame(every_type(), b"payload")]);
        let only = frames.first().unwrap();
        assert_eq!(
            only.header("timestamp"),
            Some(&HeaderValue::Timestamp(1_712_258_359_123))
        );
        assert_eq!(only.string_header("string"), Some("caf\u{e9} \u{1f980}"));
        assert_eq!(only.string_header("int"), None);
        assert_eq!(only.header("missing"), None);
    }

    #[test]
    fn the_first_of_duplicate_headers_is_the_one_looked_up() {
        let headers = vec![Header::string("a", "first"), Header::string("a", "second")];
        let frames = decode_all(&encode_frame(&headers, b"")).unwrap();
        assert_eq!(frames.first().unwrap().string_header("a"), Some("first"));
        assert_eq!(frames.first().unwrap().headers, headers);
    }

    #[test]
    fn a_frame_split_at_every_offset_decodes() {
        let wire = encode_frame(&every_type(), b"{\"type\":\"ping\"}");
        let expected = frame(every_type(), b"{\"type\":\"ping\"}");
        for at in 0..=wire.len() {
            let (head, tail) = wire.split_at(at);
            let (frames, end) = decode_reads([head, tail], Limits::default());
            assert_eq!(frames, std::slice::from_ref(&expected), "split at {at}");
            assert_eq!(end, Ok(()), "split at {at}");
        }
    }

    #[test]
    fn a_frame_fed_one_byte_at_a_time_decodes_once_whole() {
        let wire = encode_frame(&every_type(), b"payload");
        let mut decoder = Decoder::default();
        let (last, rest) = wire.split_last().unwrap();
        for byte in rest {
            decoder.push(std::slice::from_ref(byte));
            assert_eq!(decoder.next_frame(), Ok(None));
        }
        assert_eq!(decoder.buffered(), wire.len() - 1);
        decoder.push(&[*last]);
        assert_eq!(
            decoder.next_frame(),
            Ok(Some(frame(every_type(), b"payload")))
        );
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn several_frames_in_one_push_come_out_in_order() {
        let mut wire = Vec::new();
        for n in 0..5u8 {
            wire.extend(encode_frame(
                &[Header::new("n", HeaderValue::Byte(n as i8))],
                &[n; 3],
            ));
        }
        // And the start of a sixth, which stays buffered.
        let sixth = encode_frame(&[], b"sixth");
        wire.extend_from_slice(&sixth[..10]);
        let mut decoder = Decoder::default();
        decoder.push(&wire);
        for n in 0..5u8 {
            let frame = decoder.next_frame().unwrap().unwrap();
            assert_eq!(frame.header("n"), Some(&HeaderValue::Byte(n as i8)));
            assert_eq!(frame.payload, [n; 3][..]);
        }
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered(), 10);
        decoder.push(&sixth[10..]);
        assert_eq!(decoder.next_frame(), Ok(Some(frame(vec![], b"sixth"))));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn a_bad_prelude_crc_is_an_error() {
        let mut wire = encode_frame(&every_type(), b"payload");
        wire[9] ^= 0x01;
        // Twelve bytes are enough to know.
        let (frames, end) = decode_reads([&wire[..12]], Limits::default());
        assert!(frames.is_empty());
        assert!(
            matches!(end, Err(DecodeError::PreludeCrc { .. })),
            "{end:?}"
        );
        // A length flipped by the network is caught by the same check.
        let mut wire = encode_frame(&[], b"payload");
        wire[3] ^= 0x40;
        assert!(matches!(
            decode_all(&wire),
            Err(DecodeError::PreludeCrc { .. })
        ));
    }

    #[test]
    fn a_bad_message_crc_is_an_error() {
        for at in [12, 20, 40] {
            let mut wire = encode_frame(&every_type(), b"payload");
            wire[at] ^= 0x80;
            assert!(
                matches!(decode_all(&wire), Err(DecodeError::MessageCrc { .. })),
                "flipped byte {at}"
            );
        }
        let mut wire = encode_frame(&[], b"payload");
        *wire.last_mut().unwrap() ^= 1;
        let error = decode_all(&wire).unwrap_err();
        assert!(matches!(error, DecodeError::MessageCrc { .. }));
        assert!(
            error.to_string().contains("message CRC mismatch"),
            "{error}"
        );
    }

    #[test]
    fn an_absurd_length_fails_at_the_prelude_without_buffering() {
        let mut decoder = Decoder::default();
        decoder.push(&prelude(u32::MAX, 0));
        assert_eq!(
            decoder.next_frame(),
            Err(DecodeError::FrameTooLarge {
                total_len: u32::MAX,
                max: 1024 * 1024
            })
        );
        // The decoder stays failed, keeps nothing and reads nothing more.
        decoder.push(&encode_frame(&[], b"later"));
        assert_eq!(decoder.buffered(), 0);
        assert!(matches!(
            decoder.next_frame(),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            decoder.finish(),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn the_frame_limit_is_inclusive() {
        let wire = encode_frame(&[], &[7; 100]);
        let exact = Limits {
            max_frame_bytes: wire.len(),
            ..Limits::default()
        };
        let (frames, end) = decode_reads([&wire[..]], exact);
        assert_eq!((frames.len(), end), (1, Ok(())));
        let under = Limits {
            max_frame_bytes: wire.len() - 1,
            ..Limits::default()
        };
        let (_, end) = decode_reads([&wire[..]], under);
        assert!(matches!(end, Err(DecodeError::FrameTooLarge { .. })));
    }

    #[test]
    fn a_frame_shorter_than_its_prelude_and_crc_is_an_error() {
        for total in [0, 1, 12, 15] {
            let (_, end) = decode_reads([&prelude(total, 0)[..]], Limits::default());
            assert_eq!(end, Err(DecodeError::FrameTooShort { total_len: total }));
        }
    }

    #[test]
    fn a_headers_length_beyond_the_frame_is_an_error() {
        // 16 bytes leave no room for headers; 17 leaves room for one byte.
        for (total, headers) in [(16, 1), (17, 2), (100, 85), (100, u32::MAX)] {
            let (_, end) = decode_reads([&prelude(total, headers)[..]], Limits::default());
            assert_eq!(
                end,
                Err(DecodeError::HeadersBeyondFrame {
                    headers_len: headers,
                    total_len: total
                })
            );
        }
        let (_, end) = decode_reads([&prelude(100, 84)[..]], Limits::default());
        assert!(matches!(end, Err(DecodeError::Truncated { .. })), "{end:?}");
    }

    #[test]
    fn headers_over_their_limit_are_an_error() {
        let headers = [Header::string("name", "x".repeat(100))];
        let wire = encode_frame(&headers, b"");
        let limits = Limits {
            max_headers_bytes: 50,
            ..Limits::default()
        };
        let (_, end) = decode_reads([&wire[..12]], limits);
        assert_eq!(
            end,
            Err(DecodeError::HeadersTooLarge {
                headers_len: 108,
                max: 50
            })
        );
    }

    #[test]
    fn unreadable_headers_are_errors_at_their_offset() {
        let string_ok = b"\x01a\x07\x00\x02ok";
        let then_unknown = [&string_ok[..], b"\x01b\x0c"].concat();
        for (block, offset, fault) in [
            (&b"\x01a\x0a"[..], 0, HeaderFault::UnknownType(10)),
            (b"\x01a\xff", 0, HeaderFault::UnknownType(255)),
            (b"\x01a\x04\x00\x00", 0, HeaderFault::Truncated),
            (b"\x05ab", 0, HeaderFault::Truncated),
            (b"\x01a", 0, HeaderFault::Truncated),
            (b"\x01a\x07\x00\x09short", 0, HeaderFault::Truncated),
            (b"\x01a\x06\x00", 0, HeaderFault::Truncated),
            (b"\x01a\x09012345678", 0, HeaderFault::Truncated),
            (b"\x02\xc3\x28\x00", 0, HeaderFault::NameNotUtf8),
            (b"\x01a\x07\x00\x02\xc3\x28", 0, HeaderFault::StringNotUtf8),
            (&then_unknown[..], 7, HeaderFault::UnknownType(12)),
        ] {
            let wire = raw_frame(block, b"payload");
            assert_eq!(
                decode_all(&wire),
                Err(DecodeError::BadHeader { offset, fault }),
                "{block:?}"
            );
        }
        // The same block with a type that exists reads.
        let frames = decode_all(&raw_frame(string_ok, b"")).unwrap();
        assert_eq!(frames.first().unwrap().string_header("a"), Some("ok"));
    }

    #[test]
    fn input_that_ends_inside_a_frame_is_truncated() {
        let wire = encode_frame(&every_type(), b"payload");
        let (frames, end) = decode_reads([&wire[..5]], Limits::default());
        assert!(frames.is_empty());
        assert_eq!(
            end,
            Err(DecodeError::Truncated {
                buffered: 5,
                total_len: None
            })
        );
        let (_, end) = decode_reads([&wire[..wire.len() - 1]], Limits::default());
        assert_eq!(
            end,
            Err(DecodeError::Truncated {
                buffered: wire.len() - 1,
                total_len: Some(wire.len())
            })
        );
        // A whole frame and then half of one: the whole one still comes out.
        let mut two = wire.clone();
        two.extend_from_slice(&wire[..20]);
        let (frames, end) = decode_reads([&two[..]], Limits::default());
        assert_eq!(frames.len(), 1);
        assert!(matches!(
            end,
            Err(DecodeError::Truncated { buffered: 20, .. })
        ));
        // No input at all is an empty stream, not a truncated one.
        assert_eq!(Decoder::default().finish(), Ok(()));
    }

    #[test]
    fn encoding_refuses_lengths_that_do_not_fit() {
        let long_name = [Header::string("n".repeat(256), "v")];
        assert_eq!(
            try_encode_frame(&long_name, b""),
            Err(EncodeError::NameTooLong { len: 256 })
        );
        let long_value = [Header::string("v", "x".repeat(65_536))];
        assert!(matches!(
            try_encode_frame(&long_value, b""),
            Err(EncodeError::ValueTooLong { len: 65_536, .. })
        ));
        let long_bytes = [Header::new(
            "b",
            HeaderValue::Bytes(Bytes::from(vec![0; 65_536])),
        )];
        assert!(try_encode_frame(&long_bytes, b"").is_err());
        // The largest lengths that fit round trip.
        let largest = vec![
            Header::string("n".repeat(255), "x".repeat(65_535)),
            Header::new("b", HeaderValue::Bytes(Bytes::from(vec![1; 65_535]))),
        ];
        let wire = try_encode_frame(&largest, b"").unwrap();
        let roomy = Limits {
            max_frame_bytes: wire.len(),
            max_headers_bytes: wire.len(),
        };
        let (frames, end) = decode_reads([&wire[..]], roomy);
        // Not assert_eq: a failure would print 128 KiB.
        assert!(frames == [frame(largest, b"")] && end.is_ok());
    }

    #[test]
    fn chunk_payloads_round_trip() {
        let event = br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        let payload = chunk_payload(event);
        assert!(payload.starts_with(br#"{"bytes":""#));
        assert_eq!(chunk_bytes(&payload).unwrap(), event);
        for empty in [&b""[..], b"x", b"xy", b"xyz"] {
            assert_eq!(chunk_bytes(&chunk_payload(empty)).unwrap(), empty);
        }
    }

    #[test]
    fn chunk_bytes_reads_what_bedrock_sends() {
        let event = br#"{"type":"message_stop"}"#;
        let encoded = STANDARD.encode(event);
        // The padding field Bedrock adds to hide lengths, before or after.
        let padded = format!(r#"{{"bytes":"{encoded}","p":"abcdefghijklmnopqrstuvwxyzABCDEF"}}"#);
        assert_eq!(chunk_bytes(padded.as_bytes()).unwrap(), event);
        let first = format!(r#"{{ "p": "abc", "bytes": "{encoded}" }}"#);
        assert_eq!(chunk_bytes(first.as_bytes()).unwrap(), event);
        // `/` escaped as JSON allows, and the `=` padding left off.
        let slashes = [0xff_u8, 0xff, 0xff];
        assert_eq!(STANDARD.encode(slashes), "////");
        assert_eq!(chunk_bytes(br#"{"bytes":"\/\/\/\/"}"#).unwrap(), slashes);
        let unpadded = encoded.trim_end_matches('=');
        assert_ne!(unpadded, encoded);
        let unpadded = format!(r#"{{"bytes":"{unpadded}"}}"#);
        assert_eq!(chunk_bytes(unpadded.as_bytes()).unwrap(), event);
    }

    #[test]
    fn chunk_bytes_errors_do_not_quote_the_payload() {
        for payload in [
            &br#"{"message":"secret upstream text"}"#[..],
            br#"{"bytes":"secret upstream text""#,
            br#"{"bytes":42}"#,
            br#"{"bytes":["secret upstream text"]}"#,
            b"secret upstream text",
            b"",
        ] {
            let error = chunk_bytes(payload).unwrap_err();
            assert!(matches!(error, ChunkError::Malformed { .. }), "{error:?}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        let error = chunk_bytes(br#"{"bytes":"secret upstream text"}"#).unwrap_err();
        assert!(matches!(error, ChunkError::Base64(_)), "{error:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    /// The spec's Bedrock stream: each Anthropic event in a `chunk` frame as Bedrock sends it,
    /// read back through 1,500-byte reads.
    #[test]
    fn the_bedrock_fixture_round_trips() {
        let events: Vec<&str> =
            include_str!("../tests/fixtures/native.bedrock.stream.events.jsonl")
                .lines()
                .filter(|line| !line.trim().is_empty())
                .collect();
        assert_eq!(events.len(), 7);
        let wire: Vec<u8> = events
            .iter()
            .flat_map(|event| chunk_frame(event.as_bytes()))
            .collect();
        for read in [1500, 1, 13, wire.len()] {
            let (frames, end) = decode_reads(wire.chunks(read), Limits::default());
            assert_eq!(end, Ok(()));
            assert_eq!(frames.len(), events.len());
            for (frame, event) in frames.iter().zip(&events) {
                assert_eq!(frame.string_header(MESSAGE_TYPE), Some("event"));
                assert_eq!(frame.string_header(EVENT_TYPE), Some("chunk"));
                assert_eq!(frame.string_header(CONTENT_TYPE), Some("application/json"));
                let decoded: serde_json::Value =
                    serde_json::from_slice(&chunk_bytes(&frame.payload).unwrap()).unwrap();
                let expected: serde_json::Value = serde_json::from_str(event).unwrap();
                assert_eq!(decoded, expected);
            }
        }
    }

    #[test]
    fn an_exception_frame_reads_like_any_other() {
        let wire = encode_frame(
            &[
                Header::string(MESSAGE_TYPE, "exception"),
                Header::string(EXCEPTION_TYPE, "throttlingException"),
                Header::string(CONTENT_TYPE, "application/json"),
            ],
            br#"{"message":"Too many requests"}"#,
        );
        let frames = decode_all(&wire).unwrap();
        let frame = frames.first().unwrap();
        assert_eq!(frame.string_header(MESSAGE_TYPE), Some("exception"));
        assert_eq!(
            frame.string_header(EXCEPTION_TYPE),
            Some("throttlingException")
        );
        assert!(chunk_bytes(&frame.payload).is_err());
    }

    fn header_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            any::<bool>().prop_map(HeaderValue::Bool),
            any::<i8>().prop_map(HeaderValue::Byte),
            any::<i16>().prop_map(HeaderValue::Short),
            any::<i32>().prop_map(HeaderValue::Int),
            any::<i64>().prop_map(HeaderValue::Long),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|bytes| HeaderValue::Bytes(Bytes::from(bytes))),
            ".{0,40}".prop_map(HeaderValue::String),
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
        ]
    }

    fn header() -> impl Strategy<Value = Header> {
        // At most 60 characters of at most 4 bytes: within the 255-byte name limit.
        (".{0,60}", header_value()).prop_map(|(name, value)| Header { name, value })
    }

    fn no_persistence() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(no_persistence())]

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            split in any::<prop::sample::Index>(),
        ) {
            let (head, tail) = bytes.split_at(split.index(bytes.len() + 1));
            let (frames, end) = decode_reads([head, tail], Limits::default());
            // Random bytes almost never pass the prelude CRC; when they do, what came out
            // re-encodes to the bytes it came from.
            let again: Vec<u8> = frames
                .iter()
                .flat_map(|frame| encode_frame(&frame.headers, &frame.payload))
                .collect();
            prop_assert!(bytes.starts_with(&again));
            if end.is_ok() {
                prop_assert_eq!(again.len(), bytes.len());
            }
        }

        /// Random headers blocks and payloads inside right CRCs reach the header reader.
        #[test]
        fn random_headers_blocks_never_panic(
            block in proptest::collection::vec(any::<u8>(), 0..256),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let wire = raw_frame(&block, &payload);
            match decode_all(&wire) {
                Ok(frames) => {
                    prop_assert_eq!(frames.len(), 1);
                    let frame = frames.first().unwrap();
                    prop_assert_eq!(encode_frame(&frame.headers, &frame.payload), wire);
                }
                Err(error) => {
                    let is_bad_header = matches!(error, DecodeError::BadHeader { .. });
                    prop_assert!(is_bad_header, "{:?}", error);
                }
            }
        }

        #[test]
        fn encode_then_decode_round_trips(
            frames in proptest::collection::vec(
                (
                    proptest::collection::vec(header(), 0..8),
                    proptest::collection::vec(any::<u8>(), 0..256),
                ),
                1..4,
            ),
            read in 1..64usize,
        ) {
            let wire: Vec<u8> = frames
                .iter()
                .flat_map(|(headers, payload)| encode_frame(headers, payload))
                .collect();
            let (decoded, end) = decode_reads(wire.chunks(read), Limits::default());
            prop_assert_eq!(end, Ok(()));
            let decoded: Vec<(Vec<Header>, Vec<u8>)> = decoded
                .into_iter()
                .map(|frame| (frame.headers, frame.payload.to_vec()))
                .collect();
            prop_assert_eq!(decoded, frames);
        }
    }
}
