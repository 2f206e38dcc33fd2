//! The caller's request body: read under the size limit, a total deadline and the budget all
//! requests share, and what is left of one answered before it was read.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError};
use tokio::sync::Semaphore;

use super::error::BridgeError;
use crate::upstream::RequestBody;

/// How long a request body left unread by an answer is still read and discarded. Closing a
/// connection with unread data makes the kernel send a reset, which can destroy the answer before
/// the client reads it (nginx's "lingering close" exists for the same reason).
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// The bytes of request bodies that all requests together may hold while they are read: many
/// slow uploads at once then cost at most this much memory, and the one that would pass it gets a
/// 503 at once instead of waiting.
#[derive(Debug, Clone)]
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub(crate) fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget's size in bytes.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// An empty hold on this budget.
    fn hold(&self) -> BodyHold {
        BodyHold {
            budget: self.bytes.clone(),
            held: 0,
        }
    }
}

/// Bytes taken from the [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct BodyHold {
    budget: Arc<Semaphore>,
    held: usize,
}

impl BodyHold {
    /// Takes `bytes` more, or fails at once when the budget has not that many left.
    fn take(&mut self, bytes: usize, total: usize) -> Result<(), BridgeError> {
        let taken = u32::try_from(bytes)
            .ok()
            .and_then(|bytes| self.budget.try_acquire_many(bytes).ok());
        let Some(permit) = taken else {
            return Err(BridgeError::BodyBudget(total));
        };
        permit.forget();
        self.held += bytes;
        Ok(())
    }
}

impl Drop for BodyHold {
    fn drop(&mut self) {
        self.budget.add_permits(self.held);
    }
}

/// Reads the whole body: at most `limit` bytes, all of it within `deadline`, each byte taken from
/// `budget` while it is held (the hold comes back with the body). A body cut off at the limit is
/// drained for [`LINGER`] in the background, so the caller gets its 413.
pub(super) async fn read<B: RequestBody>(
    body: B,
    limit: usize,
    deadline: Duration,
    budget: &BodyBudget,
) -> Result<(Bytes, BodyHold), BridgeError> {
    let mut body = Box::pin(body);
    let mut hold = budget.hold();
    let collected = collect(&mut body, limit, &mut hold, budget.total);
    match tokio::time::timeout(deadline, collected).await {
        Err(_) => Err(BridgeError::BodyTimeout(deadline)),
        Ok(Err(BridgeError::PayloadTooLarge(limit))) => {
            linger(body);
            Err(BridgeError::PayloadTooLarge(limit))
        }
        Ok(result) => result.map(|body| (body, hold)),
    }
}

/// Sets aside the body of a request answered before it was read, and says whether its connection
/// must close. A client that waits for `100 Continue` never got one and sends no body: waiting for
/// it would hold the connection for nothing, and on a reused connection its next request could be
/// read as this one's body, so the connection closes (`true`). Any other body is drained for
/// [`LINGER`], so the answer is not lost to a reset.
pub(super) fn set_aside<B: RequestBody>(request: http::Request<B>) -> bool {
    let waits = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !waits {
        linger(request.into_body());
    }
    waits
}

/// Reads and discards what is left of `body` for [`LINGER`], in the background, and then drops it.
/// Call it when answering before the body was read, so the answer is not lost to a reset.
fn linger<B: RequestBody>(body: B) {
    if body.is_end_stream() {
        return;
    }
    // Outside a runtime there is nothing to drain with: dropping the body is all that is left.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut body = Box::pin(body);
        let drain = async { while let Some(Ok(_)) = body.frame().await {} };
        // Timing out is the point: the client had its chance to finish sending.
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// Collects the data frames; a single-frame body (the Pingora mount's, a small upload) is kept
/// without a copy.
async fn collect<B: RequestBody>(
    body: &mut Pin<Box<B>>,
    limit: usize,
    hold: &mut BodyHold,
    budget: usize,
) -> Result<Bytes, BridgeError> {
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| body_error(&*error.into(), limit))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.len() > limit.saturating_sub(total) {
            return Err(BridgeError::PayloadTooLarge(limit));
        }
        hold.take(data.len(), budget)?;
        total += data.len();
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            held => {
                if let Some(held) = held {
                    rest.reserve(total);
                    rest.extend_from_slice(&held);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// A limit error can arrive nested inside other body errors (axum's, or tower-http's
/// `RequestBodyLimit` in front of us), so the whole `source()` chain is searched. So is a read
/// that timed out (the Pingora mount's body reports its per-read timeout as one): the client
/// stopped sending.
fn body_error(error: &(dyn StdError + Send + Sync + 'static), limit: usize) -> BridgeError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<LengthLimitError>() {
            return BridgeError::PayloadTooLarge(limit);
        }
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|error| error.kind() == std::io::ErrorKind::TimedOut)
        {
            return BridgeError::BodyStalled;
        }
        current = error.source();
    }
    BridgeError::BodyUnreadable
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    type Chunks =
        StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>>;

    fn chunked(chunks: &[&'static str]) -> Chunks {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = chunks
            .iter()
            .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
            .collect();
        StreamBody::new(stream::iter(frames))
    }

    const DEADLINE: Duration = Duration::from_secs(1);

    /// Reads under `DEADLINE` and a budget that never runs out.
    async fn read_within<B: RequestBody>(body: B, limit: usize) -> Result<Bytes, BridgeError> {
        let budget = BodyBudget::new(1 << 30);
        read(body, limit, DEADLINE, &budget)
            .await
            .map(|(body, _)| body)
    }

    #[tokio::test]
    async fn bodies_share_one_budget_and_give_it_back() {
        let budget = BodyBudget::new(10);
        let (first, hold) = read(chunked(&["abcdef"]), 100, DEADLINE, &budget)
            .await
            .unwrap();
        assert_eq!(first, "abcdef");
        // 6 of 10 bytes are held: a second body of 6 is refused at once, not queued.
        assert!(matches!(
            read(chunked(&["abc", "def"]), 100, DEADLINE, &budget).await,
            Err(BridgeError::BodyBudget(10))
        ));
        // The refused body gave back what it had taken; the first body's hold ends with it.
        drop(hold);
        let (second, _hold) = read(chunked(&["abcd", "efghij"]), 100, DEADLINE, &budget)
            .await
            .unwrap();
        assert_eq!(second, "abcdefghij");
    }

    #[tokio::test]
    async fn frames_are_joined_up_to_the_limit() {
        let body = read_within(chunked(&["ab", "cd", "e"]), 5).await.unwrap();
        assert_eq!(body, "abcde");
        let body = read_within(chunked(&[]), 5).await.unwrap();
        assert_eq!(body, "");
        assert!(matches!(
            read_within(chunked(&["abc", "def"]), 5).await,
            Err(BridgeError::PayloadTooLarge(5))
        ));
    }

    #[tokio::test]
    async fn a_single_frame_is_kept_without_a_copy() {
        let data = Bytes::from(vec![7u8; 1000]);
        let body = read_within(Full::new(data.clone()), 1000).await.unwrap();
        assert_eq!(body.as_ptr(), data.as_ptr());
    }

    #[tokio::test]
    async fn limit_errors_nested_in_other_errors_are_413s() {
        let limited = http_body_util::Limited::new(Full::new(Bytes::from_static(b"abcdef")), 3);
        assert!(matches!(
            read_within(limited, 100).await,
            Err(BridgeError::PayloadTooLarge(100))
        ));
        let broken: Chunks =
            StreamBody::new(stream::iter(vec![Err(std::io::Error::other("reset"))]));
        assert!(matches!(
            read_within(broken, 100).await,
            Err(BridgeError::BodyUnreadable)
        ));
    }

    #[tokio::test]
    async fn a_read_that_timed_out_is_a_stall() {
        let stalled: Chunks = StreamBody::new(stream::iter(vec![Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "reading body, timeout: 60s",
        ))]));
        assert!(matches!(
            read_within(stalled, 100).await,
            Err(BridgeError::BodyStalled)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_times_out() {
        let pending = StreamBody::new(stream::pending::<Result<Frame<Bytes>, std::io::Error>>());
        assert!(matches!(
            read_within(pending, 100).await,
            Err(BridgeError::BodyTimeout(DEADLINE))
        ));
    }
}
