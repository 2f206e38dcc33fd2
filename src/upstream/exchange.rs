//! The exchange: the one road to Salesforce. A reader follows a call here from the token to the
//! final answer: a cached token, attempts under a concurrency limit and a deadline, retries as
//! the [`RetryPolicy`] decides, and after a 401 one resend with a freshly fetched token. The
//! deadline counts from the caller's request's arrival and bounds all of it, token waits included.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

use super::retry::{parse_retry_after, AttemptOutcome, RetryPolicy, Verdict};
use super::{
    AttemptTimeout, Target, UpstreamBody, UpstreamError, UpstreamService, MAX_ANSWER_BYTES,
};
use crate::surface::{APP_CONTEXT, APP_CONTEXT_HEADER, CLIENT_FEATURE, CLIENT_FEATURE_HEADER};
use crate::token::{AccessToken, TokenCache, TokenError};

/// Told about every attempt, retry and wait, for metrics and logs.
pub(crate) trait AttemptObserver {
    /// An attempt ended with `outcome` after `elapsed`.
    fn attempt(&self, outcome: AttemptOutcome, elapsed: Duration);
    /// An attempt that ended with `outcome` is about to be retried.
    fn retry(&self, outcome: AttemptOutcome);
    /// Time spent waiting on Salesforce: for a token, or for attempts and their backoffs.
    fn waited(&self, elapsed: Duration);
}

/// A call to make: where, and the body. The headers are the same for every surface.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub(crate) target: &'a Target,
    pub(crate) body: Bytes,
}

/// How a success answer's body is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receive {
    /// Read whole (bounded) within the attempt, so a connection that breaks mid-body is one
    /// failed attempt (retried only under `retry.connection_lost_after_send`: the answer had
    /// started, so the generation ran).
    Whole,
    /// Handed over as it arrives, for a streaming surface: no retry once it is handed over.
    Streamed,
}

/// The final answer of an exchange, whatever its status: mapping it is the caller's job. Error
/// answers are always read whole.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: UpstreamBody,
}

/// An exchange that ended without an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No token could be had.
    #[error("no Salesforce access token: {0}")]
    Token(#[source] TokenError),
    /// The token cannot be sent in a header.
    #[error("the Salesforce token endpoint returned a token that cannot be sent in a header")]
    UnusableToken,
    /// Every attempt failed without an answer, or the deadline passed (waiting for a token too).
    #[error("{0}")]
    Upstream(#[source] UpstreamError),
}

/// Sends requests with the policy, a limit on concurrent upstream calls with a bounded wait, and
/// a total deadline per caller request.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    policy: RetryPolicy,
    limiter: Arc<Semaphore>,
    queue_timeout: Duration,
    attempt_timeout: Duration,
    deadline: Duration,
}

impl Dispatcher {
    pub(crate) fn new(
        policy: RetryPolicy,
        max_concurrent: usize,
        queue_timeout: Duration,
        attempt_timeout: Duration,
        deadline: Duration,
    ) -> Self {
        Self {
            policy,
            limiter: Arc::new(Semaphore::new(max_concurrent)),
            queue_timeout,
            attempt_timeout,
            deadline,
        }
    }

    /// A dispatcher with new retry settings and limits, sharing this one's upstream slots (their
    /// number is fixed at start-up): a conf reload's.
    pub(crate) fn reconfigured(
        &self,
        retry: &crate::config::RetryConfig,
        queue_timeout: Duration,
        attempt_timeout: Duration,
        deadline: Duration,
    ) -> Self {
        Self {
            policy: RetryPolicy::new(retry),
            limiter: self.limiter.clone(),
            queue_timeout,
            attempt_timeout,
            deadline,
        }
    }

    /// Makes the call: a cached token, the retry loop, and after a 401 one resend with a freshly
    /// fetched token. The deadline counts from `started`, when the caller's request arrived, so
    /// reading its body and waiting for tokens (twice after a 401) count against it.
    pub(crate) async fn exchange<S: UpstreamService>(
        &self,
        service: &S,
        tokens: &TokenCache,
        outgoing: &Outgoing<'_>,
        delivery: Receive,
        started: Instant,
        observer: &(dyn AttemptObserver + Send + Sync),
    ) -> Result<Exchanged, ExchangeError> {
        let mut refreshed = false;
        loop {
            let waited = Instant::now();
            let token = self.token_within_deadline(tokens, started).await;
            observer.waited(waited.elapsed());
            let token = token?;
            let bearer = token
                .bearer_header()
                .cloned()
                .ok_or(ExchangeError::UnusableToken)?;
            let make_request = || {
                let mut request = outgoing.target.request(outgoing.body.clone());
                *request.method_mut() = Method::POST;
                let headers = request.headers_mut();
                headers.insert(AUTHORIZATION, bearer.clone());
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(APP_CONTEXT_HEADER, HeaderValue::from_static(APP_CONTEXT));
                headers.insert(
                    CLIENT_FEATURE_HEADER,
                    HeaderValue::from_static(CLIENT_FEATURE),
                );
                request
            };
            let sent = Instant::now();
            let result = self
                .send(service, &make_request, delivery, started, observer)
                .await;
            observer.waited(sent.elapsed());
            let exchanged = result.map_err(ExchangeError::Upstream)?;
            if exchanged.status == StatusCode::UNAUTHORIZED {
                if refreshed {
                    tokens.refused(&token);
                } else if tokens.invalidate(&token) {
                    // Expired or revoked: resend once with a new token. The resend retries the
                    // 401'd attempt, so it is counted as a retry like the ones of the retry loop.
                    observer.retry(AttemptOutcome::Unauthorized);
                    refreshed = true;
                    continue;
                }
            }
            return Ok(exchanged);
        }
    }

    /// A token, waited for no longer than the deadline (counted from `started`) leaves. Running
    /// out of it is the deadline's error, a 504 like any other request that outlived its
    /// deadline, not a token failure (503): the token endpoint may be slow, not broken. The fetch
    /// cut short goes on in the background, and its token is cached for the next request.
    async fn token_within_deadline(
        &self,
        tokens: &TokenCache,
        started: Instant,
    ) -> Result<AccessToken, ExchangeError> {
        // `timeout` polls `get` first, so a cached token is used even with no time left; the
        // retry loop then answers the deadline.
        match tokio::time::timeout(self.remaining(started), tokens.get()).await {
            Ok(token) => token.map_err(ExchangeError::Token),
            Err(_) => {
                tracing::debug!("no Salesforce token within the request's deadline");
                Err(ExchangeError::Upstream(UpstreamError::DeadlineExceeded(
                    self.deadline,
                )))
            }
        }
    }

    /// The limit on one attempt; for a streamed answer, on its head and on each silence of its
    /// body.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The limit on a caller's request, from its arrival.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// What is left of the deadline counted from `started`; `Duration::MAX` for a deadline too
    /// far off to represent.
    fn remaining(&self, started: Instant) -> Duration {
        // `Instant + Duration` panics on overflow; a deadline too far off to represent is none.
        started
            .checked_add(self.deadline)
            .map_or(Duration::MAX, |at| {
                at.saturating_duration_since(Instant::now())
            })
    }

    /// Sends `make_request()` until the policy stops or the deadline (counted from `started`)
    /// would pass. The last answer is returned whatever its status.
    pub(crate) async fn send<S: UpstreamService>(
        &self,
        service: &S,
        make_request: &(dyn Fn() -> Request<Bytes> + Send + Sync),
        delivery: Receive,
        started: Instant,
        observer: &(dyn AttemptObserver + Send + Sync),
    ) -> Result<Exchanged, UpstreamError> {
        let remaining = || self.remaining(started);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let remaining_now = remaining();
            if remaining_now.is_zero() {
                return Err(UpstreamError::DeadlineExceeded(self.deadline));
            }
            let wait = self.queue_timeout.min(remaining_now);
            // A free slot is taken at once: no timer to arm and disarm on every request. (A
            // permit is free only when nobody is queued, so this never jumps the queue.)
            let permit = match self.limiter.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    let Ok(Ok(permit)) = tokio::time::timeout(wait, self.limiter.acquire()).await
                    else {
                        return Err(if wait < self.queue_timeout {
                            UpstreamError::DeadlineExceeded(self.deadline)
                        } else {
                            UpstreamError::Overloaded
                        });
                    };
                    permit
                }
            };
            let remaining_now = remaining();
            let cut_by_deadline = remaining_now < self.attempt_timeout;
            let head_timeout = self.attempt_timeout.min(remaining_now);
            let mut request = make_request();
            // A streamed answer may flow until the deadline: the client's timeout covers the
            // body too, so only the head is held to the attempt's timeout, here.
            let client_timeout = match delivery {
                Receive::Whole => head_timeout,
                Receive::Streamed => remaining_now,
            };
            request
                .extensions_mut()
                .insert(AttemptTimeout(client_timeout));
            let sent = Instant::now();
            let result = match delivery {
                Receive::Whole => attempt_once(service, request, delivery).await,
                Receive::Streamed => {
                    tokio::time::timeout(head_timeout, attempt_once(service, request, delivery))
                        .await
                        .unwrap_or(Err(UpstreamError::Timeout))
                }
            };
            drop(permit);

            let (outcome, status, retry_after) = match &result {
                Ok(answer) => (
                    AttemptOutcome::from_status(answer.status),
                    Some(answer.status),
                    answer
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(|value| parse_retry_after(value, SystemTime::now())),
                ),
                Err(err) => (err.outcome(), None, None),
            };
            observer.attempt(outcome, sent.elapsed());
            let verdict =
                self.policy
                    .decide(attempt, outcome, status, retry_after, fastrand::f64());
            match verdict {
                Verdict::RetryAfter(delay) if delay < remaining() => {
                    observer.retry(outcome);
                    tracing::debug!(
                        attempt,
                        outcome = outcome.as_str(),
                        ?delay,
                        "retrying upstream call"
                    );
                    tokio::time::sleep(delay).await;
                }
                Verdict::RetryAfter(_) | Verdict::Stop => {
                    return match result {
                        Err(UpstreamError::Timeout) if cut_by_deadline => {
                            Err(UpstreamError::DeadlineExceeded(self.deadline))
                        }
                        result => result,
                    }
                }
            }
        }
    }
}

/// One attempt: the answer's head, and its body read whole unless a success is to be streamed.
async fn attempt_once<S: UpstreamService>(
    service: &S,
    request: Request<Bytes>,
    delivery: Receive,
) -> Result<Exchanged, UpstreamError> {
    let response: Response<UpstreamBody> = service.clone().oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let body = if parts.status.is_success() && delivery == Receive::Streamed {
        body
    } else {
        UpstreamBody::whole(body.read_capped(MAX_ANSWER_BYTES).await?)
    };
    Ok(Exchanged {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetryConfig;
    use crate::upstream::retry::tests::policy;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl AttemptObserver for Recorder {
        fn attempt(&self, outcome: AttemptOutcome, _: Duration) {
            self.0
                .lock()
                .unwrap()
                .push(format!("attempt:{}", outcome.as_str()));
        }
        fn retry(&self, outcome: AttemptOutcome) {
            self.0
                .lock()
                .unwrap()
                .push(format!("retry:{}", outcome.as_str()));
        }
        fn waited(&self, _: Duration) {}
    }

    fn scripted(statuses: &'static [u16]) -> (impl UpstreamService, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let service = tower::service_fn(move |_req: Request<Bytes>| {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let status = statuses.get(n).copied().unwrap_or(200);
            async move {
                let mut response = Response::new(UpstreamBody::whole(Bytes::new()));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                Ok::<_, UpstreamError>(response)
            }
        });
        (service, calls)
    }

    impl Dispatcher {
        /// Sends empty requests to `service`, the deadline counted from now.
        async fn send_empty<S: UpstreamService>(
            &self,
            service: &S,
            recorder: &Recorder,
        ) -> Result<Exchanged, UpstreamError> {
            self.send(
                service,
                &|| Request::new(Bytes::new()),
                Receive::Whole,
                Instant::now(),
                recorder,
            )
            .await
        }
    }

    fn dispatcher(deadline: Duration) -> Dispatcher {
        Dispatcher::new(
            policy(),
            4,
            Duration::from_secs(1),
            Duration::from_secs(300),
            deadline,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_and_reports_each_attempt() {
        let (service, calls) = scripted(&[429, 503, 200]);
        let recorder = Recorder::default();
        let exchange = dispatcher(Duration::from_secs(60))
            .send_empty(&service, &recorder)
            .await
            .unwrap();
        assert_eq!(exchange.status, 200);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [
                "attempt:rate_limited",
                "retry:rate_limited",
                "attempt:unavailable",
                "retry:unavailable",
                "attempt:ok"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn last_answer_is_returned_when_attempts_run_out() {
        let (service, calls) = scripted(&[500, 500, 500, 500]);
        let exchange = dispatcher(Duration::from_secs(60))
            .send_empty(&service, &Recorder::default())
            .await
            .unwrap();
        assert_eq!(exchange.status, 500);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_never_sleep_past_the_deadline() {
        let (service, calls) = scripted(&[429, 429, 429]);
        // The first backoff is at least 100 ms: a 50 ms deadline leaves no room for it.
        let exchange = dispatcher(Duration::from_millis(50))
            .send_empty(&service, &Recorder::default())
            .await
            .unwrap();
        assert_eq!(exchange.status, 429);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn durations_too_long_to_add_to_an_instant_do_not_panic() {
        // A deadline of Duration::MAX overflowed `started + deadline`.
        let (service, calls) = scripted(&[429, 200]);
        let exchange = dispatcher(Duration::MAX)
            .send_empty(&service, &Recorder::default())
            .await
            .unwrap();
        assert_eq!(exchange.status, 200);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // With no cap on delays, a huge Retry-After overflowed `now + delay`: it is beyond the
        // deadline, so the answer is final.
        let unbounded = RetryPolicy::new(&RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::MAX,
            connection_lost_after_send: false,
        });
        let dispatcher = Dispatcher::new(
            unbounded,
            4,
            Duration::from_secs(1),
            Duration::from_secs(300),
            Duration::from_secs(60),
        );
        let service = tower::service_fn(|_req: Request<Bytes>| async {
            let mut response = Response::new(UpstreamBody::whole(Bytes::new()));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let forever = HeaderValue::from(u64::MAX);
            response.headers_mut().insert(RETRY_AFTER, forever);
            Ok::<_, UpstreamError>(response)
        });
        let exchange = dispatcher
            .send_empty(&service, &Recorder::default())
            .await
            .unwrap();
        assert_eq!(exchange.status, 429);
    }

    /// A token source that answers after `0`.
    struct SlowSource(Duration);

    impl crate::token::TokenSource for SlowSource {
        fn fetch(
            &self,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<crate::token::FetchedToken, TokenError>>
                    + Send
                    + '_,
            >,
        > {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                Ok(crate::token::FetchedToken {
                    token: AccessToken::new("t0k3n"),
                    lifetime: Duration::from_secs(1800),
                })
            })
        }
    }

    fn outgoing_to(target: &Target) -> Outgoing<'_> {
        Outgoing {
            target,
            body: Bytes::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_token_counts_against_the_deadline() {
        let tokens = TokenCache::new(SlowSource(Duration::from_secs(5)), Duration::ZERO);
        let (service, calls) = scripted(&[]);
        let target = Target::parse("http://127.0.0.1:9/models/m/chat-generations").unwrap();
        let started = Instant::now();
        let result = dispatcher(Duration::from_secs(2))
            .exchange(
                &service,
                &tokens,
                &outgoing_to(&target),
                Receive::Whole,
                started,
                &Recorder::default(),
            )
            .await;
        assert!(
            matches!(result, Err(ExchangeError::Upstream(UpstreamError::DeadlineExceeded(d))) if d == Duration::from_secs(2)),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        // The fetch went on: its token is there for the next request, at once.
        tokio::time::advance(Duration::from_secs(3)).await;
        tokio::task::yield_now().await;
        let started = Instant::now();
        let exchanged = dispatcher(Duration::from_secs(2))
            .exchange(
                &service,
                &tokens,
                &outgoing_to(&target),
                Receive::Whole,
                started,
                &Recorder::default(),
            )
            .await
            .unwrap();
        assert_eq!(exchanged.status, 200);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_before_the_exchange_counts_against_the_deadline() {
        let tokens = TokenCache::new(SlowSource(Duration::ZERO), Duration::ZERO);
        let (service, calls) = scripted(&[]);
        let target = Target::parse("http://127.0.0.1:9/models/m/chat-generations").unwrap();
        // The caller's body took the whole deadline to arrive.
        let started = Instant::now();
        tokio::time::advance(Duration::from_secs(2)).await;
        let result = dispatcher(Duration::from_secs(2))
            .exchange(
                &service,
                &tokens,
                &outgoing_to(&target),
                Receive::Whole,
                started,
                &Recorder::default(),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(ExchangeError::Upstream(UpstreamError::DeadlineExceeded(_)))
            ),
            "{result:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_upstream_gives_overloaded_after_the_queue_timeout() {
        let dispatcher = Dispatcher::new(
            policy(),
            1,
            Duration::from_millis(100),
            Duration::from_secs(300),
            Duration::from_secs(60),
        );
        let _held = dispatcher.limiter.clone().acquire_owned().await.unwrap();
        let (service, calls) = scripted(&[]);
        let err = dispatcher
            .send_empty(&service, &Recorder::default())
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Overloaded), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// The streaming contract: an error answer before the stream is retried like any other; a
    /// success is handed over as soon as its head arrives, its body read as it comes.
    #[tokio::test(start_paused = true)]
    async fn a_streamed_success_is_handed_over_before_its_body_ends() {
        use http_body_util::BodyExt;
        let (events, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let service = tower::service_fn(move |_req: Request<Bytes>| {
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            let receiver = if first {
                None
            } else {
                receiver.lock().unwrap().take()
            };
            async move {
                let mut response = match (first, receiver) {
                    (false, Some(receiver)) => {
                        let stream = futures_util::stream::unfold(receiver, |mut r| async move {
                            let event = r.recv().await?;
                            Some((Ok::<_, std::io::Error>(http_body::Frame::data(event)), r))
                        });
                        Response::new(UpstreamBody::new(http_body_util::StreamBody::new(stream)))
                    }
                    _ => Response::new(UpstreamBody::whole(Bytes::from_static(b"{}"))),
                };
                if first {
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                }
                Ok::<_, UpstreamError>(response)
            }
        });
        let recorder = Recorder::default();
        let exchanged = dispatcher(Duration::from_secs(60))
            .send(
                &service,
                &|| Request::new(Bytes::new()),
                Receive::Streamed,
                Instant::now(),
                &recorder,
            )
            .await
            .unwrap();
        assert_eq!(exchanged.status, 200);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the 429 before the stream is retried"
        );
        let mut body = exchanged.body;
        // Nothing of the body existed when the answer was handed over.
        events.send(Bytes::from_static(b"event 1")).await.unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "event 1");
        events.send(Bytes::from_static(b"event 2")).await.unwrap();
        drop(events);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "event 2");
        assert!(body.frame().await.is_none());
    }
}
