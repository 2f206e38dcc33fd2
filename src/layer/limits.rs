//! Per-caller limits (`requests_per_minute`, `tokens_per_minute` of `[[auth.keys]]`), enforced
//! with governor's GCRA: a caller may spend its whole minute's allowance at once, and it then
//! refills evenly.
//!
//! Limits live in this process: behind a load balancer each instance enforces them on its own.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::CallerKey;

/// Which of a caller's limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    /// `requests_per_minute`.
    Requests,
    /// `tokens_per_minute`.
    Tokens,
}

/// A caller over one of its limits, and when it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverLimit {
    pub(crate) kind: LimitKind,
    pub(crate) per_minute: NonZeroU32,
    /// Whole seconds, rounded up and at least 1: a caller that waits this long is admitted
    /// (unless others of its requests spend the allowance first).
    pub(crate) retry_after_secs: u64,
}

/// One caller's limiters. Settings that did not change keep their state across a reload.
#[derive(Debug, Default)]
pub(crate) struct CallerLimits {
    requests: Option<Limiter>,
    tokens: Option<Limiter>,
}

impl CallerLimits {
    pub(crate) fn new(caller: &CallerKey) -> Self {
        Self {
            requests: caller.requests_per_minute.map(Limiter::new),
            tokens: caller.tokens_per_minute.map(Limiter::new),
        }
    }

    /// Whether these limiters enforce what `caller` asks, so a reload may keep them.
    pub(crate) fn same_settings(&self, caller: &CallerKey) -> bool {
        self.requests.as_ref().map(|l| l.per_minute) == caller.requests_per_minute
            && self.tokens.as_ref().map(|l| l.per_minute) == caller.tokens_per_minute
    }

    /// Admits one request (checked with the key, before the body is read).
    pub(crate) fn admit_request(&self) -> Result<(), OverLimit> {
        match &self.requests {
            Some(limiter) => limiter.take(LimitKind::Requests),
            None => Ok(()),
        }
    }

    /// Admits one call upstream while the caller has tokens left this minute. It reserves one
    /// token, which [`charge`](Self::charge) counts toward the answer's usage.
    pub(crate) fn admit_tokens(&self) -> Result<(), OverLimit> {
        match &self.tokens {
            Some(limiter) => limiter.take(LimitKind::Tokens),
            None => Ok(()),
        }
    }

    /// Charges an answer's tokens, less the one reserved by [`admit_tokens`](Self::admit_tokens).
    /// What is left of the allowance is spent when the answer used more; the excess is not
    /// carried over (GCRA keeps no debt), but the caller's next call waits for the refill.
    pub(crate) fn charge(&self, tokens: u64) {
        let Some(limiter) = &self.tokens else {
            return;
        };
        let tokens = u32::try_from(tokens.saturating_sub(1)).unwrap_or(u32::MAX);
        limiter.spend_up_to(tokens);
    }
}

/// One GCRA limiter and its setting.
#[derive(Debug)]
struct Limiter {
    per_minute: NonZeroU32,
    gcra: DefaultDirectRateLimiter,
}

impl Limiter {
    fn new(per_minute: NonZeroU32) -> Self {
        Self {
            per_minute,
            gcra: RateLimiter::direct(Quota::per_minute(per_minute)),
        }
    }

    fn take(&self, kind: LimitKind) -> Result<(), OverLimit> {
        self.gcra.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            OverLimit {
                kind,
                per_minute: self.per_minute,
                retry_after_secs: whole_seconds(wait),
            }
        })
    }

    /// Spends `n` cells, or as many as are left when fewer are: all-or-nothing checks (each one
    /// lock-free) of halving sizes. More than a minute's allowance is never left to spend.
    fn spend_up_to(&self, n: u32) {
        let mut left = n.min(self.per_minute.get());
        let mut chunk = left;
        while let Some(cells) = NonZeroU32::new(chunk) {
            match self.gcra.check_n(cells) {
                Ok(Ok(_)) => {
                    left -= cells.get();
                    chunk = chunk.min(left);
                }
                // Too many for what is left: try half as many.
                Ok(Err(_)) | Err(_) => chunk = cells.get() / 2,
            }
        }
    }
}

/// `wait` as a `Retry-After`: whole seconds rounded up, at least 1 (0 would invite a retry that
/// the limiter refuses again).
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn caller(requests: Option<u32>, tokens: Option<u32>) -> CallerKey {
        CallerKey {
            name: "c".into(),
            key: Secret::new("k"),
            requests_per_minute: requests.and_then(NonZeroU32::new),
            tokens_per_minute: tokens.and_then(NonZeroU32::new),
        }
    }

    #[test]
    fn requests_over_the_minute_are_refused_with_an_honest_wait() {
        let limits = CallerLimits::new(&caller(Some(2), None));
        assert_eq!(limits.admit_request(), Ok(()));
        assert_eq!(limits.admit_request(), Ok(()));
        let over = limits.admit_request().unwrap_err();
        assert_eq!(over.kind, LimitKind::Requests);
        // Two a minute: the next cell is due in about 30 s.
        assert!((29..=30).contains(&over.retry_after_secs), "{over:?}");
        assert_eq!(limits.admit_tokens(), Ok(()), "no token limit");
    }

    #[test]
    fn tokens_are_charged_after_the_answer() {
        let limits = CallerLimits::new(&caller(None, Some(100)));
        assert_eq!(limits.admit_tokens(), Ok(()));
        limits.charge(60);
        assert_eq!(limits.admit_tokens(), Ok(()));
        // More than is left: the rest is spent, and the next call waits.
        limits.charge(1_000);
        let over = limits.admit_tokens().unwrap_err();
        assert_eq!(over.kind, LimitKind::Tokens);
        assert_eq!(over.per_minute.get(), 100);
        assert!(over.retry_after_secs >= 1);
        assert_eq!(limits.admit_request(), Ok(()), "no request limit");
    }

    #[test]
    fn settings_are_compared_for_reloads() {
        let limits = CallerLimits::new(&caller(Some(5), None));
        assert!(limits.same_settings(&caller(Some(5), None)));
        assert!(!limits.same_settings(&caller(Some(6), None)));
        assert!(!limits.same_settings(&caller(Some(5), Some(1))));
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
    }
}
