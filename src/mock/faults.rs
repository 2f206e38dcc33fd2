//! What can go wrong on purpose: model faults, token faults, answer shapes, and the queue that holds them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A failure the mock imitates on the next model calls (see [`MockState::inject`](super::MockState::inject)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error status with the spec's error body: 429 `LIMIT_EXCEEDED`, 423 `SERVER_BUSY`,
    /// 500 `INTERNAL_ERROR`, 503 `SERVICE_UNAVAILABLE`, 400 `BAD_ARGUMENT`, 403 `FORBIDDEN`,
    /// 404 `NOT_FOUND` (other 4xx: `BAD_ARGUMENT`, other 5xx: `INTERNAL_ERROR`).
    Status {
        /// The HTTP status; a value that is not a valid status answers 500.
        status: u16,
        /// Sent as a `Retry-After` header (seconds) when set.
        retry_after_secs: Option<u64>,
    },
    /// 401 `INVALID_AUTH`, as when a token has expired or been revoked.
    Unauthorized,
    /// Answer normally, after this delay.
    Slow(Duration),
    /// 200 whose body is not JSON.
    MalformedJson,
    /// 200 with the valid answer cut in half (an invalid request still gets its error, whole).
    TruncatedJson,
    /// Close the connection without sending any response, after reading the whole request
    /// (it is counted and recorded): a client sees a connection lost after sending, as when a
    /// load balancer closes a long generation.
    ConnectionReset,
    /// 200 with the valid answer padded with trailing spaces (still valid JSON) to this many
    /// bytes, sent in chunks without a `Content-Length` so its size shows only while reading.
    /// Whole answers only: a stream is sent normally.
    Oversized(usize),
    /// A stream fails after its first two deltas: `/responses` sends a `response.failed` event (with
    /// an `error` object) and ends; Bedrock sends an exception frame (`:message-type` `exception`,
    /// `:exception-type` `modelStreamErrorException`, payload `{"message": "..."}`) and ends.
    /// Like every stream fault below, it is used up without effect by a call that does not stream.
    StreamFailure,
    /// A stream stops for this long after its first delta, then goes on to its normal end.
    StreamStall(Duration),
    /// A broken event follows the first delta, then the stream goes on: on `/responses` a `data:`
    /// line that is not JSON, on Bedrock a frame with a bad CRC.
    MalformedEvent,
    /// 200 `{"message":"Too many requests"}` with content type `application/json` where the stream
    /// should be, as observed under load.
    NotAStream,
    /// A stream without content: `/responses` sends `response.created` then `response.completed`
    /// with an empty `output`; Bedrock sends `message_start`, `message_delta` and `message_stop`,
    /// no content block.
    EmptyStream,
    /// Text deltas forever (a text answer, whatever the call asked for), paced by the stream pace,
    /// or 10 ms when none is set, until the caller goes away.
    EndlessStream,
    /// The first delta is this many bytes long: `x`s before the text of a text answer, spaces before
    /// the arguments of a tool call (which stay valid JSON).
    OversizedEvent(usize),
}

/// A failure the mock imitates on the next token requests
/// (see [`MockState::inject_token_fault`](super::MockState::inject_token_fault)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFault {
    /// An OAuth error: 400 `invalid_client`, 401 `invalid_client`, 5xx `server_error`, other 4xx `invalid_request`.
    Status(u16),
    /// Answer normally, after this delay.
    Slow(Duration),
    /// Close the connection without sending any response.
    Down,
    /// 200 with the documented token response, minus `access_token`.
    NoAccessToken,
    /// 200 whose `access_token` is an opaque string, not a JWT. The token is still accepted by the model
    /// endpoints, so the bridge's fallback lifetime can be tested end to end.
    NotJwt,
}

/// The shape of successful chat and text answers (embeddings always keep their documented shape).
///
/// Each variant is one of the extractor's paths in `salesforce-models-api.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseShape {
    /// `generationDetails.generations[0].content` (chat), `generation.generatedText` (text).
    #[default]
    Documented,
    /// `generation.text`, the older text shape named in the spec's `required` list.
    GenerationText,
    /// `generation_details.generations[0].content`, the newer `/ai/gpt/v1` surface.
    SnakeCase,
    /// `choices[0].message.content`, as custom OpenAI-compatible models answer.
    #[serde(rename = "openai_choices")]
    OpenAiChoices,
    /// Top-level `generations[0].text`, seen only in third-party fixtures.
    GenerationsArray,
    /// The documented envelope with its content field left out.
    NoText,
}

/// `times` value meaning "every call from now on".
pub(crate) const ALWAYS: u32 = u32::MAX;

/// Queued faults, applied in order. `pending` lets the request path skip the lock when nothing is
/// queued, which is every request of a benchmark.
#[derive(Debug)]
pub(crate) struct FaultQueue<T> {
    pending: AtomicBool,
    queue: Mutex<VecDeque<(T, u32)>>,
}

impl<T: Clone> FaultQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            pending: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Queues `fault` for the next `times` calls ([`ALWAYS`]: for good); 0 queues nothing.
    pub(crate) fn push(&self, fault: T, times: u32) {
        if times == 0 {
            return;
        }
        let mut queue = self.lock();
        queue.push_back((fault, times));
        self.pending.store(true, Ordering::SeqCst);
    }

    /// The fault for this call, if any.
    pub(crate) fn take(&self) -> Option<T> {
        if !self.pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut queue = self.lock();
        let (fault, remaining) = queue.front_mut()?;
        let fault = fault.clone();
        if *remaining != ALWAYS {
            *remaining -= 1;
            if *remaining == 0 {
                queue.pop_front();
            }
        }
        self.pending.store(!queue.is_empty(), Ordering::SeqCst);
        Some(fault)
    }

    pub(crate) fn clear(&self) {
        let mut queue = self.lock();
        queue.clear();
        self.pending.store(false, Ordering::SeqCst);
    }

    // Nothing panics while holding this lock, but a poisoned queue is still a usable queue.
    fn lock(&self) -> MutexGuard<'_, VecDeque<(T, u32)>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_and_run_out() {
        let queue = FaultQueue::new();
        queue.push(Fault::Unauthorized, 2);
        queue.push(Fault::MalformedJson, 1);
        queue.push(Fault::TruncatedJson, 0);
        assert_eq!(queue.take(), Some(Fault::Unauthorized));
        assert_eq!(queue.take(), Some(Fault::Unauthorized));
        assert_eq!(queue.take(), Some(Fault::MalformedJson));
        assert_eq!(queue.take(), None);
    }

    #[test]
    fn always_never_runs_out_until_cleared() {
        let queue = FaultQueue::new();
        queue.push(TokenFault::Down, ALWAYS);
        for _ in 0..5 {
            assert_eq!(queue.take(), Some(TokenFault::Down));
        }
        queue.clear();
        assert_eq!(queue.take(), None);
    }

    #[test]
    fn shapes_have_snake_case_names() {
        let shape: ResponseShape = serde_json::from_str("\"openai_choices\"").unwrap();
        assert_eq!(shape, ResponseShape::OpenAiChoices);
        let shape: ResponseShape = serde_json::from_str("\"generations_array\"").unwrap();
        assert_eq!(shape, ResponseShape::GenerationsArray);
    }
}
