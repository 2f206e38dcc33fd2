//! Retry: the pure policy of what to retry and how long to wait. The exchange applies it.

use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};

use crate::config::RetryConfig;

/// How one attempt ended, as retries and metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Ok,
    /// 429.
    RateLimited,
    /// 423: the server is busy.
    Busy,
    /// 401.
    Unauthorized,
    /// Another 4xx.
    ClientError,
    /// 500, or a 5xx other than 503.
    ServerError,
    /// 503.
    Unavailable,
    /// No answer in time.
    Timeout,
    /// No connection: none could be made, so no request went out.
    ConnectError,
    /// The connection closed before the request was written on it: hyper handed the request
    /// back unsent, so the Models API never saw it.
    ConnectionReset,
    /// The connection broke after the request was written (or may have been): before or
    /// while the answer came. The Models API may have run, and billed, the generation.
    ConnectionLostAfterSend,
    /// The answer was larger than the bridge reads.
    TooLarge,
    /// The attempt could not be made.
    Failed,
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 13] = [
        AttemptOutcome::Ok,
        AttemptOutcome::RateLimited,
        AttemptOutcome::Busy,
        AttemptOutcome::Unauthorized,
        AttemptOutcome::ClientError,
        AttemptOutcome::ServerError,
        AttemptOutcome::Unavailable,
        AttemptOutcome::Timeout,
        AttemptOutcome::ConnectError,
        AttemptOutcome::ConnectionReset,
        AttemptOutcome::ConnectionLostAfterSend,
        AttemptOutcome::TooLarge,
        AttemptOutcome::Failed,
    ];

    /// The outcomes the policy may retry (500 among the server errors, not 502 or 504; a
    /// connection lost after sending only when `retry.connection_lost_after_send` is on).
    pub const RETRIED: [AttemptOutcome; 7] = [
        AttemptOutcome::RateLimited,
        AttemptOutcome::Busy,
        AttemptOutcome::ServerError,
        AttemptOutcome::Unavailable,
        AttemptOutcome::ConnectError,
        AttemptOutcome::ConnectionReset,
        AttemptOutcome::ConnectionLostAfterSend,
    ];

    /// The outcome of an HTTP answer.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            200..=299 => AttemptOutcome::Ok,
            401 => AttemptOutcome::Unauthorized,
            423 => AttemptOutcome::Busy,
            429 => AttemptOutcome::RateLimited,
            503 => AttemptOutcome::Unavailable,
            500..=599 => AttemptOutcome::ServerError,
            _ => AttemptOutcome::ClientError,
        }
    }

    /// A fixed name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::RateLimited => "rate_limited",
            AttemptOutcome::Busy => "busy",
            AttemptOutcome::Unauthorized => "unauthorized",
            AttemptOutcome::ClientError => "client_error",
            AttemptOutcome::ServerError => "server_error",
            AttemptOutcome::Unavailable => "unavailable",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectError => "connect_error",
            AttemptOutcome::ConnectionReset => "connection_reset",
            AttemptOutcome::ConnectionLostAfterSend => "connection_lost_after_send",
            AttemptOutcome::TooLarge => "too_large",
            AttemptOutcome::Failed => "failed",
        }
    }

    /// Whether trying again may work: the statuses the Models API documents as retryable, and
    /// failures that show the request never reached it (a failed connection, or one closed
    /// before the request was written), so a retry cannot run a generation twice. A connection lost after the request was
    /// written may have run (and billed) the generation, so it is retried only when
    /// `lost_after_send` says so (`retry.connection_lost_after_send`). Timeouts are not
    /// retried: a generation that ran out of time would run out again, and was probably billed.
    /// Neither is an oversized answer: the same request would get one again.
    fn is_retryable(self, status: Option<StatusCode>, lost_after_send: bool) -> bool {
        match self {
            AttemptOutcome::RateLimited
            | AttemptOutcome::Busy
            | AttemptOutcome::Unavailable
            | AttemptOutcome::ConnectError
            | AttemptOutcome::ConnectionReset => true,
            AttemptOutcome::ConnectionLostAfterSend => lost_after_send,
            AttemptOutcome::ServerError => status == Some(StatusCode::INTERNAL_SERVER_ERROR),
            AttemptOutcome::Ok
            | AttemptOutcome::Unauthorized
            | AttemptOutcome::ClientError
            | AttemptOutcome::Timeout
            | AttemptOutcome::TooLarge
            | AttemptOutcome::Failed => false,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand this outcome to the caller.
    Stop,
    /// Wait this long, then try again.
    RetryAfter(Duration),
}

/// Which failures are retried and how long to wait: exponential backoff from `base_delay`,
/// capped at `max_delay`, with "equal jitter" (half fixed, half random) so that callers who
/// failed together do not retry together. A `Retry-After` within `max_delay` is honoured
/// exactly; one beyond it ends the retries, as waiting less than asked is pointless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    connection_lost_after_send: bool,
}

impl RetryPolicy {
    /// The policy of a `[retry]` section.
    pub fn new(config: &RetryConfig) -> Self {
        Self {
            max_attempts: config.max_attempts.max(1),
            base_delay: config.base_delay,
            max_delay: config.max_delay,
            connection_lost_after_send: config.connection_lost_after_send,
        }
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The verdict after attempt number `attempt` (1-based) ended with `outcome`. `jitter` is a
    /// random number in `[0, 1)`, passed in so the policy stays deterministic under test.
    pub fn decide(
        &self,
        attempt: u32,
        outcome: AttemptOutcome,
        status: Option<StatusCode>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Verdict {
        if attempt >= self.max_attempts
            || !outcome.is_retryable(status, self.connection_lost_after_send)
        {
            return Verdict::Stop;
        }
        match retry_after {
            Some(wait) if wait > self.max_delay => Verdict::Stop,
            Some(wait) => Verdict::RetryAfter(wait),
            None => Verdict::RetryAfter(self.backoff(attempt, jitter)),
        }
    }

    /// The backoff after attempt number `attempt`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Reads `Retry-After`: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Three attempts, 200 ms doubling to 5 s.
    pub(in crate::upstream) fn policy() -> RetryPolicy {
        policy_resending(false)
    }

    /// The test policy, with `retry.connection_lost_after_send` set to `resend`.
    fn policy_resending(resend: bool) -> RetryPolicy {
        RetryPolicy::new(&RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            connection_lost_after_send: resend,
        })
    }

    #[test]
    fn what_is_retried() {
        let p = policy();
        let table = [
            (429, true),
            (423, true),
            (500, true),
            (503, true),
            (502, false),
            (504, false),
            (400, false),
            (401, false),
            (404, false),
            (200, false),
        ];
        for (code, retried) in table {
            let status = StatusCode::from_u16(code).unwrap();
            let verdict = p.decide(
                1,
                AttemptOutcome::from_status(status),
                Some(status),
                None,
                0.0,
            );
            assert_eq!(matches!(verdict, Verdict::RetryAfter(_)), retried, "{code}");
        }
    }

    #[test]
    fn failures_without_an_answer_are_retried_only_if_the_request_never_went_out() {
        // (outcome, retried by default, retried with retry.connection_lost_after_send = true)
        let table = [
            // No connection: nothing was sent.
            (AttemptOutcome::ConnectError, true, true),
            // Closed before the request was written (hyper handed it back): nothing was sent.
            (AttemptOutcome::ConnectionReset, true, true),
            // Lost after the request was written: the generation may have run and been billed.
            (AttemptOutcome::ConnectionLostAfterSend, false, true),
            (AttemptOutcome::Timeout, false, false),
            (AttemptOutcome::TooLarge, false, false),
            (AttemptOutcome::Failed, false, false),
        ];
        for (outcome, by_default, resending) in table {
            for (resend, retried) in [(false, by_default), (true, resending)] {
                let verdict = policy_resending(resend).decide(1, outcome, None, None, 0.0);
                assert_eq!(
                    matches!(verdict, Verdict::RetryAfter(_)),
                    retried,
                    "{outcome:?}, connection_lost_after_send = {resend}"
                );
            }
        }
    }

    #[test]
    fn the_switch_changes_nothing_but_connections_lost_after_send() {
        for outcome in AttemptOutcome::ALL {
            for code in [200, 401, 404, 423, 429, 500, 502, 503, 504] {
                let status = Some(StatusCode::from_u16(code).unwrap());
                let decide =
                    |resend| policy_resending(resend).decide(1, outcome, status, None, 0.0);
                if outcome != AttemptOutcome::ConnectionLostAfterSend {
                    assert_eq!(decide(false), decide(true), "{outcome:?} {code}");
                }
            }
        }
    }

    #[test]
    fn retried_lists_exactly_the_outcomes_retryable_under_some_conf() {
        for outcome in AttemptOutcome::ALL {
            let retryable = outcome.is_retryable(Some(StatusCode::INTERNAL_SERVER_ERROR), true);
            assert_eq!(
                AttemptOutcome::RETRIED.contains(&outcome),
                retryable,
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn attempts_are_capped() {
        let p = policy();
        assert!(matches!(
            p.decide(2, AttemptOutcome::RateLimited, None, None, 0.0),
            Verdict::RetryAfter(_)
        ));
        assert_eq!(
            p.decide(3, AttemptOutcome::RateLimited, None, None, 0.0),
            Verdict::Stop
        );
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_and_is_capped() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(600));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_is_honoured_within_max_delay() {
        let p = policy();
        let verdict = p.decide(
            1,
            AttemptOutcome::RateLimited,
            None,
            Some(Duration::from_secs(2)),
            0.9,
        );
        assert_eq!(verdict, Verdict::RetryAfter(Duration::from_secs(2)));
        let verdict = p.decide(
            1,
            AttemptOutcome::RateLimited,
            None,
            Some(Duration::from_secs(60)),
            0.9,
        );
        assert_eq!(verdict, Verdict::Stop);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let parse = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap(), now);
        assert_eq!(parse("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse(&httpdate::fmt_http_date(now + Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse(&httpdate::fmt_http_date(now - Duration::from_secs(7))),
            Some(Duration::ZERO)
        );
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
    }
}
