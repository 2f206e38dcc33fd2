//! Fronts: the client APIs the bridge speaks, one module each.
//!
//! A front parses and validates its request into the neutral [`core`](crate::core) request, and
//! renders the neutral answer, stream and failures in its own format. It knows nothing of
//! Salesforce: the route's [`surface`](crate::surface) does the rest. A new client API is one new
//! module here and one row in the [endpoint table](crate::endpoint).
//!
//! | module | endpoint | format |
//! |---|---|---|
//! | [`chat`] | `POST /v1/chat/completions` | OpenAI Chat Completions |
//! | [`completions`] | `POST /v1/completions` | OpenAI legacy Completions |
//! | [`embeddings`] | `POST /v1/embeddings` | OpenAI Embeddings |
//! | [`messages`] | `POST /v1/messages` | Anthropic Messages |
//! | [`responses`] | `POST /v1/responses` | OpenAI Responses, through the core |

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod emulated;
pub mod messages;
pub mod responses;
pub mod sse;

use bytes::{Bytes, BytesMut};

use crate::core::{Answer, Delivery, Failure, Generation, Request, StreamEvent, TranslateError};
use crate::layer::BridgeError;
use crate::openai::ErrorBody;
use crate::surface::native::NativeApi;

/// One client API, as the bridge's endpoints drive it.
pub(crate) trait Front: Send + Sync + 'static {
    /// The prefix of an answer id made up when the upstream sent no usable one (`chatcmpl-`).
    fn id_prefix(&self) -> &'static str;

    /// Parses and validates the caller's body, borrowing its strings.
    fn parse<'b>(&self, body: &'b [u8]) -> Result<Request<'b>, BridgeError>;

    /// The body of a complete answer.
    fn answer_json(&self, answer: &Answer<'_>, ctx: &AnswerCtx<'_>)
        -> Result<Vec<u8>, BridgeError>;

    /// The events of a complete answer, for a caller that asked for a stream.
    fn answer_events(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Box<dyn EventSource>, BridgeError>;

    /// Renders the neutral events of a stream that arrives as it is produced.
    fn event_renderer(&self, ctx: &AnswerCtx<'_>) -> Result<Box<dyn RenderEvents>, BridgeError>;

    /// How this front words its errors.
    fn errors(&self) -> &'static dyn ErrorFormat;

    /// The provider API this front speaks, for routes whose surface speaks it too: their
    /// requests pass through nearly untouched instead of through the core.
    fn native(&self) -> Option<NativeApi> {
        None
    }
}

/// Renders neutral stream events in a front's wire format, one at a time, as they arrive.
pub trait RenderEvents: Send + std::fmt::Debug {
    /// Appends what `event` becomes for the caller to `out` (possibly nothing).
    fn render(&mut self, event: StreamEvent<'_>, out: &mut BytesMut);
}

/// How a client API words failures: as a whole error body, and as the event that ends a stream
/// that failed after its response had started.
pub(crate) trait ErrorFormat: Send + Sync + 'static {
    /// The error body of a failure.
    fn error_json(&self, failure: &Failure) -> Vec<u8>;

    /// The event that ends a stream with a failure.
    fn error_event(&self, failure: &Failure) -> Bytes;
}

/// OpenAI's error envelope, `{"error": {"message", "type", "param", "code"}}`: the format of the
/// OpenAI fronts, and of every answer given before a front is known (404s, the probes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenAiErrors;

impl ErrorFormat for OpenAiErrors {
    fn error_json(&self, failure: &Failure) -> Vec<u8> {
        ErrorBody::from_failure(failure).to_json()
    }

    fn error_event(&self, failure: &Failure) -> Bytes {
        sse::error_event(&ErrorBody::from_failure(failure))
    }
}

/// What an OpenAI generation front (Chat Completions, legacy Completions) is made of; the
/// [`Front`] itself is the same for both.
pub(crate) trait OpenAiGeneration: Send + Sync + 'static {
    /// The prefix of a made-up answer id (`chatcmpl-`, `cmpl-`).
    const ID_PREFIX: &'static str;
    /// Which chunks a stream carries.
    const STREAM: sse::StreamKind;
    /// The request's wire type.
    type Wire<'b>: serde::Deserialize<'b>;
    /// The wire request as the neutral request.
    fn to_core<'b>(wire: Self::Wire<'b>) -> Result<Request<'b>, TranslateError>;
    /// The JSON body of a complete answer.
    fn json(answer: &Generation<'_>, ctx: &AnswerCtx<'_>) -> Result<Vec<u8>, serde_json::Error>;
}

impl<G: OpenAiGeneration> Front for G {
    fn id_prefix(&self) -> &'static str {
        G::ID_PREFIX
    }

    fn parse<'b>(&self, body: &'b [u8]) -> Result<Request<'b>, BridgeError> {
        parse_json(body, G::to_core)
    }

    fn answer_json(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Vec<u8>, BridgeError> {
        let answer = generation(answer)?;
        G::json(answer, ctx).map_err(BridgeError::Encode)
    }

    fn answer_events(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Box<dyn EventSource>, BridgeError> {
        let answer = generation(answer)?;
        let include_usage = ctx.delivery.stream.unwrap_or_default().include_usage;
        Ok(Box::new(sse::SseEvents::new(
            G::STREAM,
            ctx,
            answer,
            include_usage,
        )))
    }

    fn event_renderer(&self, ctx: &AnswerCtx<'_>) -> Result<Box<dyn RenderEvents>, BridgeError> {
        let include_usage = ctx.delivery.stream.unwrap_or_default().include_usage;
        Ok(Box::new(sse::OpenAiChunks::new(
            G::STREAM,
            ctx.fallback_id,
            ctx,
            include_usage,
        )))
    }

    fn errors(&self) -> &'static dyn ErrorFormat {
        &OpenAiErrors
    }
}

/// The generation of a generative front's answer; any other kind of answer is a mismatch.
fn generation<'r, 'a>(answer: &'r Answer<'a>) -> Result<&'r Generation<'a>, BridgeError> {
    match answer {
        Answer::Generation(generation) => Ok(generation),
        Answer::Embeddings(_) => Err(BridgeError::AnswerMismatch),
    }
}

/// Parses a JSON body into a front's wire type, then into the neutral request.
fn parse_json<'b, W: serde::Deserialize<'b>>(
    body: &'b [u8],
    to_core: impl FnOnce(W) -> Result<Request<'b>, TranslateError>,
) -> Result<Request<'b>, BridgeError> {
    let wire: W =
        serde_json::from_slice(body).map_err(|error| BridgeError::invalid_json(&error))?;
    Ok(to_core(wire)?)
}

/// Encoded events, produced as a response body is polled.
pub(crate) trait EventSource: Send + std::fmt::Debug {
    /// Appends whole events to `buf` until it holds at least `target` bytes or the events run
    /// out; `false` once every event has been written.
    fn fill(&mut self, buf: &mut BytesMut, target: usize) -> bool;

    /// About how many bytes the events not yet written take, to size a buffer.
    fn remaining_hint(&self) -> usize;
}

/// What an answer needs besides the upstream's: chosen by the caller, never read from a clock
/// here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCtx<'a> {
    /// The id to use when the upstream sent no usable one.
    pub fallback_id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The model name the caller used.
    pub model: &'a str,
    /// How the caller wants the answer delivered.
    pub delivery: Delivery,
}

/// The longest upstream answer id passed on.
const MAX_ID_BYTES: usize = 128;

/// The upstream's answer id, when it is at most 128 bytes of ASCII letters, digits, `-`, `_`,
/// `.` and `:`; `None` otherwise, for the caller's fallback to stand in. Every event of a stream
/// repeats the id, so an unbounded one would multiply the answer's size, and clients put ids in
/// logs and URLs.
pub fn usable_id(id: Option<&str>) -> Option<&str> {
    id.filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_ID_BYTES
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    })
}

/// Serializes an answer into a buffer sized for its text up front: growing a `Vec` from empty
/// to a few kilobytes would reallocate and copy it a dozen times.
fn json_with_capacity(
    value: &impl serde::Serialize,
    text_len: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    // The envelope is a few hundred bytes; escapes make the text a little longer.
    let mut json = Vec::with_capacity(text_len + text_len / 16 + 512);
    serde_json::to_writer(&mut json, value)?;
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_passed_on() {
        let longest = "a".repeat(MAX_ID_BYTES);
        for id in ["up-1", "chatcmpl-A1b2.c3:d_4", longest.as_str()] {
            assert_eq!(usable_id(Some(id)), Some(id));
        }
        let too_long = "a".repeat(MAX_ID_BYTES + 1);
        for id in ["", "a b", "id\n", "a/b", "<script>", "é", too_long.as_str()] {
            assert_eq!(usable_id(Some(id)), None, "{id:?}");
        }
        assert_eq!(usable_id(None), None);
    }
}
