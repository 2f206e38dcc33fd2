//! The token cache: freshness, refresh ahead of expiry, single flight, failure cooldown,
//! invalidation and readiness.
//!
//! All state sits behind one `std::sync::Mutex` that is only ever held for a few synchronous
//! lines, never across an `.await` and never while the observer runs or a task is spawned. A fetch
//! runs in a spawned task and answers every waiter through one oneshot channel behind a `Shared`
//! future, so dropping any waiter, the one that started the fetch included, neither cancels the
//! fetch nor strands the others.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{AccessToken, FetchedToken, TokenError, TokenSource};

/// The first cooldown after a failed fetch; it doubles with each consecutive failure.
const FIRST_COOLDOWN: Duration = Duration::from_secs(1);
/// The longest cooldown, so recovery after a long outage is noticed within this.
const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// A refusal streak ends when no token has been refused for this long.
const REFUSAL_MEMORY: Duration = Duration::from_secs(60);
/// The shortest time a token is cached, so an already-expired `exp` cannot cause a fetch per request.
const MIN_FRESH: Duration = Duration::from_secs(1);
/// The shortest time a token is served before it counts as expired, whatever its `exp` says. A
/// local clock running ahead of Salesforce's makes every token look expired on arrival; without
/// this floor each one would be refetched, with callers waiting, every [`MIN_FRESH`]. A token
/// Salesforce really has expired is answered 401, which drops it and resends with a new one.
const MIN_LIFETIME: Duration = Duration::from_secs(5);
/// No refresh ahead of expiry starts sooner than this after the previous fetch ended, success or
/// failure, so a short lifetime or a skewed clock cannot turn refresh-ahead into a fetch per
/// request. Kept well under [`MIN_LIFETIME`] so that a refresh ahead still has time to land
/// before the token it replaces expires.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Lifetimes above this are not believed: refetching once a day costs nothing, and it keeps a
/// far-future `exp` from overflowing `Instant`.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// What happened on a [`TokenCache`] call, for metrics (see [`TokenCache::with_observer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenEvent {
    /// A request got a cached, unexpired token without waiting (in the refresh window too).
    Hit,
    /// A request had no unexpired token: it waited for a fetch, or got the last fetch error
    /// during the cooldown.
    Miss,
    /// A request found the token in its refresh window and started a fetch in the background; it
    /// got the cached token without waiting, and is counted as a [`Hit`](Self::Hit) too.
    RefreshAhead,
    /// A fetch succeeded, whether callers waited for it or it ran ahead in the background.
    Refresh,
    /// A fetch failed, whether callers waited for it or it ran ahead in the background.
    RefreshFailure,
}

impl TokenEvent {
    /// Every event.
    pub const ALL: [TokenEvent; 5] = [
        TokenEvent::Hit,
        TokenEvent::Miss,
        TokenEvent::RefreshAhead,
        TokenEvent::Refresh,
        TokenEvent::RefreshFailure,
    ];

    /// A fixed label value: `hit`, `miss`, `refresh_ahead`, `refresh` or `refresh_failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEvent::Hit => "hit",
            TokenEvent::Miss => "miss",
            TokenEvent::RefreshAhead => "refresh_ahead",
            TokenEvent::Refresh => "refresh",
            TokenEvent::RefreshFailure => "refresh_failure",
        }
    }
}

/// Whether the cache can serve requests, for `GET /ready`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A token is cached, or the last fetch succeeded and the next request will fetch again.
    Ready,
    /// No token can be served now.
    NotReady {
        /// Why, safe to show: `no token fetched yet`, or the last fetch error's message.
        reason: String,
    },
}

/// Caches the token from a [`TokenSource`]. Cheap to clone: clones share one cache.
///
/// - A token is *fresh* until `lifetime − refresh_skew` after it was fetched, but never for less
///   than half its lifetime nor less than one second, so a short-lived token cannot cause a
///   fetch per request. It *expires* after its lifetime, but never less than 5 s after it was
///   fetched (a clock running ahead of Salesforce's must not make every token expire on
///   arrival). Lifetimes are capped at one day.
/// - Between the two (the `refresh_skew` window) requests get the cached token at once, and one
///   of them starts a fetch in the background. Such a refresh ahead starts no sooner than 2 s
///   after the previous fetch ended, nor during a failure cooldown.
/// - Only a request with no unexpired token waits for a fetch. At most one fetch runs at a
///   time, and every waiting request shares it.
/// - After a failed fetch, requests without an unexpired token get that error at once, without
///   fetching, for a cooldown of 1 s that doubles with each consecutive failure up to 30 s; the
///   first request after the cooldown fetches again.
///
/// Fetches run in spawned tasks, so [`get`](Self::get) must be called within a Tokio runtime.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<dyn TokenSource>,
    refresh_skew: Duration,
    state: Mutex<State>,
}

type Flight = Shared<BoxFuture<'static, Result<AccessToken, TokenError>>>;
type Observer = Arc<dyn Fn(TokenEvent) + Send + Sync>;

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    flight: Option<Flight>,
    failure: Option<Failure>,
    succeeded_once: bool,
    /// When the last fetch ended, to space out refreshes ahead of expiry.
    last_fetch: Option<Instant>,
    refusal: Option<Refusal>,
    observer: Option<Observer>,
}

struct Cached {
    token: AccessToken,
    fresh_until: Instant,
    expires_at: Instant,
}

/// The Models API refused a token fetched after a 401: until `until`, 401s drop no token.
struct Refusal {
    token: AccessToken,
    consecutive: u32,
    until: Instant,
}

struct Failure {
    error: TokenError,
    consecutive: u32,
    retry_at: Instant,
}

/// What a [`TokenCache::get`] call does, decided under the lock and carried out after it.
enum Step {
    Hit(AccessToken),
    Cooldown(TokenError),
    Wait(Flight),
    /// Wait for a fetch this caller registered and must now spawn, outside the lock.
    Start(Flight, FetchGuard),
    /// Use the cached token now, and spawn (outside the lock) the fetch this caller registered
    /// to replace it; nobody waits for that fetch unless the token expires or is dropped first.
    Ahead(AccessToken, FetchGuard),
}

impl TokenCache {
    /// A cache over `source` that refreshes `refresh_skew` before a token expires. Fetches nothing
    /// until the first [`get`](Self::get).
    pub fn new(source: impl TokenSource, refresh_skew: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                refresh_skew,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Calls `observer` for every [`TokenEvent`], after the cache's lock is released. Replaces any
    /// previous observer, for this cache and all its clones.
    pub fn with_observer(self, observer: impl Fn(TokenEvent) + Send + Sync + 'static) -> Self {
        self.inner.lock().observer = Some(Arc::new(observer));
        self
    }

    /// A token to call the Models API with: the cached one until it expires (starting a fetch in
    /// the background once it is in its refresh window), otherwise the result of the fetch in
    /// flight (starting one if needed). Waits at most for one fetch, and only when no unexpired
    /// token is cached.
    pub async fn get(&self) -> Result<AccessToken, TokenError> {
        let (step, observer) = {
            let mut state = self.inner.lock();
            let step = Inner::step(&self.inner, &mut state, Instant::now());
            (step, state.observer.clone())
        };
        match step {
            Step::Hit(token) => {
                emit(observer.as_ref(), TokenEvent::Hit);
                Ok(token)
            }
            Step::Cooldown(error) => {
                emit(observer.as_ref(), TokenEvent::Miss);
                Err(error)
            }
            Step::Wait(flight) => {
                emit(observer.as_ref(), TokenEvent::Miss);
                flight.await
            }
            Step::Start(flight, guard) => {
                // No `.await` since the flight was registered, so this caller cannot have been
                // cancelled in between; once spawned the fetch no longer depends on it.
                guard.spawn();
                emit(observer.as_ref(), TokenEvent::Miss);
                flight.await
            }
            Step::Ahead(token, guard) => {
                guard.spawn();
                tracing::debug!("refreshing the Salesforce token ahead of its expiry");
                emit(observer.as_ref(), TokenEvent::Hit);
                emit(observer.as_ref(), TokenEvent::RefreshAhead);
                Ok(token)
            }
        }
    }

    /// Call it after the Models API answered 401 to `stale`: drops `stale` if it is still the
    /// cached token, so the next [`get`](Self::get) fetches a new one. Comparing first means that
    /// N requests failing with the same token cause one refresh, and a 401 that arrives after a
    /// refresh does not discard the new token.
    ///
    /// Returns whether a resend would use another token. It is `false` only during a cooldown
    /// after [`refused`](Self::refused): then the token is kept, and the 401 is the answer.
    pub fn invalidate(&self, stale: &AccessToken) -> bool {
        let mut state = self.inner.lock();
        let is_cached = state
            .cached
            .as_ref()
            .is_some_and(|cached| cached.token == *stale);
        if !is_cached {
            return true;
        }
        let now = Instant::now();
        if state.refusal.as_ref().is_some_and(|r| now < r.until) {
            return false;
        }
        state.cached = None;
        true
    }

    /// Call it when the Models API answered 401 to `fresh`, a token fetched for a resend after a 401:
    /// Salesforce issues tokens it does not accept (a missing scope, a revoked app), and a new one
    /// would fare no better. For a cooldown of 1 s, doubling with each consecutive refusal up to
    /// 30 s, [`invalidate`](Self::invalidate) keeps the token, so a persistent 401 costs one token
    /// fetch per cooldown instead of one per request.
    pub fn refused(&self, fresh: &AccessToken) {
        let now = Instant::now();
        let mut state = self.inner.lock();
        let consecutive = match &state.refusal {
            // Concurrent resends refused the same token: one refusal.
            Some(last) if last.token == *fresh => return,
            Some(last) if now < last.until + REFUSAL_MEMORY => last.consecutive.saturating_add(1),
            _ => 1,
        };
        let cooldown = cooldown(consecutive);
        state.refusal = Some(Refusal {
            token: fresh.clone(),
            consecutive,
            until: now + cooldown,
        });
        drop(state);
        tracing::warn!(
            cooldown_secs = cooldown.as_secs(),
            "the Models API refused a freshly fetched token; 401s refresh no token during the cooldown"
        );
    }

    /// [`Readiness::Ready`] while a token is cached and unexpired, and after a successful fetch
    /// whose token has since expired or been invalidated (the next request fetches; readiness must
    /// not depend on traffic). Otherwise [`Readiness::NotReady`] with `no token fetched yet`, or
    /// the last fetch error while fetches fail.
    pub fn readiness(&self) -> Readiness {
        let state = self.inner.lock();
        if state.usable(Instant::now()).is_some() {
            return Readiness::Ready;
        }
        match (&state.failure, state.succeeded_once) {
            (Some(failure), _) => Readiness::NotReady {
                reason: failure.error.to_string(),
            },
            (None, false) => Readiness::NotReady {
                reason: "no token fetched yet".to_owned(),
            },
            (None, true) => Readiness::Ready,
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("refresh_skew", &self.inner.refresh_skew)
            .field("readiness", &self.readiness())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and every write leaves the state consistent, so
        // a poisoned lock is still good to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a request arriving at `now` does. Only a request with no unexpired token waits.
    fn step(this: &Arc<Self>, state: &mut State, now: Instant) -> Step {
        if let Some(cached) = &state.cached {
            if now < cached.fresh_until {
                return Step::Hit(cached.token.clone());
            }
            if now < cached.expires_at {
                // The refresh window: the token still works for a while, so nobody waits for
                // its replacement.
                let token = cached.token.clone();
                if !state.may_refresh_ahead(now) {
                    return Step::Hit(token);
                }
                let (_flight, guard) = Self::register(this, state);
                return Step::Ahead(token, guard);
            }
        }
        if let Some(flight) = &state.flight {
            return Step::Wait(flight.clone());
        }
        if let Some(failure) = &state.failure {
            if now < failure.retry_at {
                return Step::Cooldown(failure.error.clone());
            }
        }
        let (flight, guard) = Self::register(this, state);
        Step::Start(flight, guard)
    }

    /// Registers a fetch as the one in flight; the caller spawns the returned guard.
    fn register(this: &Arc<Self>, state: &mut State) -> (Flight, FetchGuard) {
        let (reply, outcome) = oneshot::channel();
        let flight = async move { outcome.await.unwrap_or(Err(TokenError::Aborted)) }
            .boxed()
            .shared();
        state.flight = Some(flight.clone());
        let guard = FetchGuard {
            inner: Arc::clone(this),
            reply: Some(reply),
        };
        (flight, guard)
    }

    /// Records a fetch's outcome and returns what its waiters get.
    fn complete(
        &self,
        result: Result<FetchedToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.flight = None;
        state.last_fetch = Some(now);
        let observer = state.observer.clone();
        match result {
            Ok(FetchedToken { token, lifetime }) => {
                let lifetime = lifetime.min(MAX_LIFETIME);
                state.cached = Some(Cached {
                    token: token.clone(),
                    fresh_until: now + fresh_for(lifetime, self.refresh_skew),
                    expires_at: now + lifetime.max(MIN_LIFETIME),
                });
                state.failure = None;
                state.succeeded_once = true;
                drop(state);
                tracing::debug!(
                    lifetime_secs = lifetime.as_secs(),
                    "Salesforce token refreshed"
                );
                emit(observer.as_ref(), TokenEvent::Refresh);
                Ok(token)
            }
            Err(error) => {
                let consecutive = state
                    .failure
                    .as_ref()
                    .map_or(1, |failure| failure.consecutive.saturating_add(1));
                let cooldown = cooldown(consecutive);
                state.failure = Some(Failure {
                    error: error.clone(),
                    consecutive,
                    retry_at: now + cooldown,
                });
                // Until it expires, the previous token still works: better than a 503.
                let fallback = state.usable(now);
                drop(state);
                tracing::warn!(
                    error = %error,
                    attempt = consecutive,
                    cooldown_secs = cooldown.as_secs(),
                    serving_previous_token = fallback.is_some(),
                    "Salesforce token refresh failed"
                );
                emit(observer.as_ref(), TokenEvent::RefreshFailure);
                fallback.ok_or(error)
            }
        }
    }
}

impl State {
    /// Whether a refresh ahead of expiry may start at `now`: none is in flight, no failure
    /// cooldown runs, and the last fetch ended at least [`MIN_REFRESH_INTERVAL`] ago.
    fn may_refresh_ahead(&self, now: Instant) -> bool {
        self.flight.is_none()
            && self
                .failure
                .as_ref()
                .is_none_or(|failure| now >= failure.retry_at)
            && self
                .last_fetch
                .is_none_or(|ended| now >= ended + MIN_REFRESH_INTERVAL)
    }

    /// The cached token if it has not expired, fresh or not.
    fn usable(&self, now: Instant) -> Option<AccessToken> {
        self.cached
            .as_ref()
            .filter(|cached| now < cached.expires_at)
            .map(|cached| cached.token.clone())
    }
}

/// One fetch: the cache it reports to and the channel its waiters listen on. Dropped unfinished
/// (a panicking source, a runtime shutting down, `tokio::spawn` outside a runtime) it still records
/// a failure and answers the waiters, so `flight` is always cleared and nobody waits forever.
struct FetchGuard {
    inner: Arc<Inner>,
    reply: Option<oneshot::Sender<Result<AccessToken, TokenError>>>,
}

impl FetchGuard {
    fn spawn(self) {
        tokio::spawn(async move {
            let result = self.inner.source.fetch().await;
            self.finish(result);
        });
    }

    fn finish(mut self, result: Result<FetchedToken, TokenError>) {
        let outcome = self.inner.complete(result);
        if let Some(reply) = self.reply.take() {
            // Every waiter may have gone; the outcome is cached anyway.
            let _ = reply.send(outcome);
        }
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(self.inner.complete(Err(TokenError::Aborted)));
        }
    }
}

fn emit(observer: Option<&Observer>, event: TokenEvent) {
    if let Some(observer) = observer {
        observer(event);
    }
}

/// How long a token of `lifetime` is served from the cache.
fn fresh_for(lifetime: Duration, refresh_skew: Duration) -> Duration {
    lifetime
        .saturating_sub(refresh_skew)
        .max(lifetime / 2)
        .max(MIN_FRESH)
}

/// The wait after the `consecutive`-th failed fetch in a row (counting from 1).
fn cooldown(consecutive: u32) -> Duration {
    let doublings = consecutive.saturating_sub(1).min(5);
    (FIRST_COOLDOWN * (1 << doublings)).min(MAX_COOLDOWN)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use futures_util::future::join_all;

    use super::*;

    const SKEW: Duration = Duration::from_secs(60);
    const LIFETIME: Duration = Duration::from_secs(1800);

    /// A source whose fetches are counted, take `delay`, and fail while `failing` is set. Each
    /// successful fetch returns a new token, `token-N` for the N-th fetch.
    #[derive(Clone)]
    struct Fake {
        calls: Arc<AtomicUsize>,
        failing: Arc<AtomicBool>,
        delay: Duration,
        lifetime: Duration,
    }

    impl Fake {
        fn new(delay: Duration, lifetime: Duration) -> Self {
            Self {
                calls: Arc::default(),
                failing: Arc::default(),
                delay,
                lifetime,
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn fail(&self, failing: bool) {
            self.failing.store(failing, Ordering::SeqCst);
        }
    }

    impl TokenSource for Fake {
        fn fetch(
            &self,
        ) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(TokenError::NoAccessToken);
                }
                Ok(FetchedToken {
                    token: AccessToken::new(format!("token-{n}")),
                    lifetime: self.lifetime,
                })
            })
        }
    }

    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<TokenEvent>>>);

    impl Events {
        fn count(&self, event: TokenEvent) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| **e == event)
                .count()
        }

        /// How many events have this metric label.
        fn count_label(&self, label: &str) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.as_str() == label)
                .count()
        }

        fn take(&self) -> Vec<TokenEvent> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn cache(fake: &Fake) -> (TokenCache, Events) {
        let events = Events::default();
        let sink = events.clone();
        let cache = TokenCache::new(fake.clone(), SKEW)
            .with_observer(move |event| sink.0.lock().unwrap().push(event));
        (cache, events)
    }

    fn token(n: usize) -> AccessToken {
        AccessToken::new(format!("token-{n}"))
    }

    async fn advance_secs(secs: f64) {
        tokio::time::advance(Duration::from_secs_f64(secs)).await;
    }

    /// Lets a fetch spawned in the background with no delay run to its end.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// `cache.get()`, asserting it did not wait: with the clock paused, any wait for a fetch
    /// moves it forward.
    async fn get_at_once(cache: &TokenCache) -> AccessToken {
        let asked = Instant::now();
        let token = cache.get().await.unwrap();
        assert_eq!(asked.elapsed(), Duration::ZERO, "get() waited for a fetch");
        token
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_token_is_a_hit_and_fetches_once() {
        let fake = Fake::new(Duration::from_millis(100), LIFETIME);
        let (cache, events) = cache(&fake);
        assert_eq!(cache.get().await.unwrap(), token(1));
        assert_eq!(events.take(), [TokenEvent::Miss, TokenEvent::Refresh]);
        assert_eq!(cache.get().await.unwrap(), token(1));
        assert_eq!(events.take(), [TokenEvent::Hit]);
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_refresh_skew_before_expiry() {
        let fake = Fake::new(Duration::ZERO, LIFETIME);
        let (cache, events) = cache(&fake);
        cache.get().await.unwrap();
        advance_secs(1739.0).await; // lifetime − skew − 1
        assert_eq!(cache.get().await.unwrap(), token(1));
        assert_eq!(fake.calls(), 1);
        advance_secs(1.5).await;
        // In the refresh window: the cached token at once, its successor fetched in the background.
        assert_eq!(get_at_once(&cache).await, token(1));
        settle().await;
        assert_eq!(fake.calls(), 2);
        assert_eq!(get_at_once(&cache).await, token(2));
        assert_eq!(
            events.take(),
            [
                TokenEvent::Miss,
                TokenEvent::Refresh,
                TokenEvent::Hit,
                TokenEvent::Hit,
                TokenEvent::RefreshAhead,
                TokenEvent::Refresh,
                TokenEvent::Hit,
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn token_shorter_than_skew_is_cached_for_half_its_lifetime() {
        let fake = Fake::new(Duration::ZERO, Duration::from_secs(30));
        let (cache, _) = cache(&fake);
        cache.get().await.unwrap();
        advance_secs(14.0).await;
        cache.get().await.unwrap();
        settle().await;
        assert_eq!(fake.calls(), 1);
        advance_secs(2.0).await;
        assert_eq!(get_at_once(&cache).await, token(1));
        settle().await;
        assert_eq!(fake.calls(), 2);
        assert_eq!(get_at_once(&cache).await, token(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_expired_on_arrival_costs_no_waits_and_no_storm() {
        // A clock running ahead of Salesforce's: every token looks expired on arrival. Each
        // fetch takes 1 s.
        let fake = Fake::new(Duration::from_secs(1), Duration::ZERO);
        let (cache, _) = cache(&fake);
        assert_eq!(cache.get().await.unwrap(), token(1)); // nothing cached: waits once
        for _ in 0..10 {
            assert_eq!(get_at_once(&cache).await, token(1));
        }
        assert_eq!(fake.calls(), 1);

        // A request every 100 ms for a minute: none waits, and a refresh starts with the first
        // request 2 s after the previous fetch ended (it lands 1 s later, well before the 5 s
        // floor runs out): one fetch per 3.1 s, at 3.1, 6.2, ... 58.9 s.
        for _ in 0..600 {
            advance_secs(0.1).await;
            get_at_once(&cache).await;
        }
        settle().await;
        assert_eq!(fake.calls(), 1 + 19);
    }

    #[tokio::test(start_paused = true)]
    async fn in_the_refresh_window_nobody_waits_for_the_refresh() {
        // The token endpoint hangs for 30 s.
        let fake = Fake::new(Duration::from_secs(30), LIFETIME);
        let (cache, events) = cache(&fake);
        assert_eq!(cache.get().await.unwrap(), token(1));
        advance_secs(1750.0).await; // inside the skew window: 50 s before expiry

        for _ in 0..100 {
            assert_eq!(get_at_once(&cache).await, token(1));
        }
        settle().await;
        assert_eq!(
            fake.calls(),
            2,
            "one fetch in the background for all of them"
        );
        assert_eq!(events.count_label("refresh_ahead"), 1);
        assert_eq!(
            events.count_label("miss"),
            1,
            "only the very first get waited"
        );

        // The refresh lands; its token is served from then on.
        advance_secs(30.0).await;
        settle().await;
        assert_eq!(get_at_once(&cache).await, token(2));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_refresh_ahead_backs_off() {
        let fake = Fake::new(Duration::ZERO, LIFETIME);
        let (cache, events) = cache(&fake);
        cache.get().await.unwrap();
        fake.fail(true);
        advance_secs(1741.0).await; // 59 s before expiry

        // A request every 100 ms for 50 s: each gets the old token at once. Attempts start no
        // sooner than 2 s after the last one, nor within its cooldown (1, 2, 4, 8, 16 s): at
        // 0, 2, 4, 8, 16 and 32 s.
        for _ in 0..500 {
            assert_eq!(get_at_once(&cache).await, token(1));
            settle().await;
            advance_secs(0.1).await;
        }
        assert_eq!(fake.calls(), 1 + 6);
        assert_eq!(events.count(TokenEvent::RefreshFailure), 6);
        assert_eq!(events.count_label("refresh_ahead"), 6);
        assert_eq!(cache.readiness(), Readiness::Ready);
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_during_a_refresh_ahead_waits_for_that_refresh() {
        let fake = Fake::new(Duration::from_secs(5), LIFETIME);
        let (cache, _) = cache(&fake);
        let stale = cache.get().await.unwrap();
        advance_secs(1750.0).await;
        assert_eq!(get_at_once(&cache).await, stale);
        settle().await;
        assert_eq!(fake.calls(), 2);

        // The token is refused: the resend waits for the refresh already running.
        assert!(cache.invalidate(&stale));
        assert_eq!(cache.get().await.unwrap(), token(2));
        assert_eq!(fake.calls(), 2);
    }

    #[test]
    fn refresh_ahead_decision_table() {
        let now = Instant::now();
        let secs = Duration::from_secs_f64;
        let failure = |retry_in: f64| Failure {
            error: TokenError::NoAccessToken,
            consecutive: 1,
            retry_at: now + secs(retry_in),
        };
        let flight: Flight = futures_util::future::pending().boxed().shared();
        let cases = [
            (State::default(), true, "first refresh"),
            (
                State {
                    flight: Some(flight),
                    ..State::default()
                },
                false,
                "a fetch is in flight",
            ),
            (
                State {
                    failure: Some(failure(0.5)),
                    ..State::default()
                },
                false,
                "failure cooldown running",
            ),
            (
                State {
                    failure: Some(failure(0.0)),
                    last_fetch: now.checked_sub(secs(2.0)),
                    ..State::default()
                },
                true,
                "cooldown over, 2 s since the last fetch",
            ),
            (
                State {
                    last_fetch: now.checked_sub(secs(1.9)),
                    ..State::default()
                },
                false,
                "the last fetch ended under 2 s ago",
            ),
        ];
        for (state, expected, case) in cases {
            assert_eq!(state.may_refresh_ahead(now), expected, "{case}");
        }
    }

    #[test]
    fn fresh_window_table() {
        let secs = Duration::from_secs;
        assert_eq!(fresh_for(secs(1800), secs(60)), secs(1740));
        assert_eq!(fresh_for(secs(90), secs(60)), secs(45));
        assert_eq!(fresh_for(secs(30), secs(60)), secs(15));
        assert_eq!(fresh_for(secs(1), secs(60)), secs(1));
        assert_eq!(fresh_for(Duration::ZERO, secs(60)), secs(1));
        assert_eq!(fresh_for(secs(100), Duration::ZERO), secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn thousand_concurrent_gets_at_expiry_cause_one_fetch() {
        let fake = Fake::new(Duration::from_millis(250), LIFETIME);
        let (cache, events) = cache(&fake);
        cache.get().await.unwrap();
        advance_secs(1800.0).await;
        events.take();

        let results = join_all((0..1000).map(|_| cache.get())).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap() == &token(2)));
        assert_eq!(fake.calls(), 2);
        assert_eq!(events.count(TokenEvent::Miss), 1000);
        assert_eq!(events.count(TokenEvent::Refresh), 1);
        assert_eq!(events.count(TokenEvent::Hit), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_gets_from_many_tasks_share_one_fetch() {
        let fake = Fake::new(Duration::from_millis(250), LIFETIME);
        let (cache, _) = cache(&fake);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                tokio::spawn({
                    let cache = cache.clone();
                    async move { cache.get().await }
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), token(1));
        }
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_drops_the_token_once() {
        let fake = Fake::new(Duration::from_millis(100), LIFETIME);
        let (cache, _) = cache(&fake);
        let stale = cache.get().await.unwrap();

        // Two requests got 401 with the same token.
        cache.invalidate(&stale);
        cache.invalidate(&stale);
        let (a, b) = tokio::join!(cache.get(), cache.get());
        assert_eq!(a.unwrap(), token(2));
        assert_eq!(b.unwrap(), token(2));
        assert_eq!(fake.calls(), 2);

        // A late 401 for the old token must not discard the new one.
        cache.invalidate(&stale);
        assert_eq!(cache.get().await.unwrap(), token(2));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_fresh_tokens_are_not_refetched_during_the_cooldown() {
        let fake = Fake::new(Duration::ZERO, LIFETIME);
        let (cache, _) = cache(&fake);
        let first = cache.get().await.unwrap();
        assert!(cache.invalidate(&first));
        let fresh = cache.get().await.unwrap();
        assert_eq!(fake.calls(), 2);

        // The fresh token is refused too, by several resends at once: one refusal, 1 s cooldown.
        cache.refused(&fresh);
        cache.refused(&fresh);
        for _ in 0..100 {
            assert!(!cache.invalidate(&fresh));
            assert_eq!(cache.get().await.unwrap(), fresh);
        }
        assert_eq!(fake.calls(), 2);

        // After it, one refresh; its token refused as well: the cooldown doubles.
        advance_secs(1.1).await;
        assert!(cache.invalidate(&fresh));
        let third = cache.get().await.unwrap();
        cache.refused(&third);
        advance_secs(1.5).await;
        assert!(!cache.invalidate(&third));
        advance_secs(0.6).await;
        assert!(cache.invalidate(&third));
        assert_eq!(cache.get().await.unwrap(), token(4));

        // A token refused long after the streak ended starts again at 1 s.
        advance_secs(120.0).await;
        cache.refused(&token(4));
        advance_secs(0.5).await;
        assert!(!cache.invalidate(&token(4)));
        advance_secs(0.6).await;
        assert!(cache.invalidate(&token(4)));
        assert_eq!(fake.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_cools_down_then_recovers() {
        let fake = Fake::new(Duration::ZERO, LIFETIME);
        let (cache, events) = cache(&fake);
        fake.fail(true);

        assert!(matches!(cache.get().await, Err(TokenError::NoAccessToken)));
        assert_eq!(fake.calls(), 1);
        assert_eq!(
            events.take(),
            [TokenEvent::Miss, TokenEvent::RefreshFailure]
        );

        // Within the 1 s cooldown: the same error at once, no fetch.
        advance_secs(0.5).await;
        for _ in 0..100 {
            assert!(matches!(cache.get().await, Err(TokenError::NoAccessToken)));
        }
        assert_eq!(fake.calls(), 1);
        assert_eq!(events.count(TokenEvent::Miss), 100);
        assert_eq!(events.count(TokenEvent::RefreshFailure), 0);

        // After it: one fetch, which fails again; the cooldown is now 2 s.
        advance_secs(0.6).await;
        assert!(cache.get().await.is_err());
        assert_eq!(fake.calls(), 2);
        advance_secs(1.5).await;
        assert!(cache.get().await.is_err());
        assert_eq!(fake.calls(), 2);

        // The endpoint is back: the first request after the cooldown gets a token.
        fake.fail(false);
        advance_secs(0.6).await;
        assert_eq!(cache.get().await.unwrap(), token(3));
        assert_eq!(cache.readiness(), Readiness::Ready);

        // Success reset the count: the next failure cools down for 1 s again.
        fake.fail(true);
        advance_secs(1800.0).await;
        assert!(cache.get().await.is_err());
        assert_eq!(fake.calls(), 4);
        advance_secs(1.0).await;
        assert!(cache.get().await.is_err());
        assert_eq!(fake.calls(), 5);
    }

    #[test]
    fn cooldown_doubles_up_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|n| cooldown(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(cooldown(u32::MAX), MAX_COOLDOWN);
        assert_eq!(cooldown(0), FIRST_COOLDOWN);
    }

    #[tokio::test(start_paused = true)]
    async fn unexpired_token_is_served_while_refresh_fails() {
        let fake = Fake::new(Duration::ZERO, LIFETIME);
        let (cache, events) = cache(&fake);
        cache.get().await.unwrap();
        fake.fail(true);

        // In the skew window: the refresh ahead fails, the old token still works.
        advance_secs(1750.0).await;
        assert_eq!(get_at_once(&cache).await, token(1));
        settle().await;
        assert_eq!(fake.calls(), 2);
        assert_eq!(get_at_once(&cache).await, token(1)); // cooling down: no fetch
        assert_eq!(fake.calls(), 2);
        assert_eq!(cache.readiness(), Readiness::Ready);
        assert_eq!(events.count(TokenEvent::RefreshFailure), 1);

        // Once it expires, the error comes through.
        advance_secs(60.0).await;
        assert!(matches!(cache.get().await, Err(TokenError::NoAccessToken)));
        assert_eq!(fake.calls(), 3);
        assert_eq!(
            cache.readiness(),
            Readiness::NotReady {
                reason: "Salesforce token response had no access_token".into()
            }
        );

        // A 401 on the old token ends its grace too.
        fake.fail(false);
        advance_secs(2.0).await; // second failure in a row: 2 s cooldown
        let fresh = cache.get().await.unwrap();
        fake.fail(true);
        advance_secs(1750.0).await;
        assert_eq!(get_at_once(&cache).await, fresh);
        cache.invalidate(&fresh);
        assert!(cache.get().await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_the_caller_that_started_the_fetch_strands_nobody() {
        let fake = Fake::new(Duration::from_secs(5), LIFETIME);
        let (cache, _) = cache(&fake);
        let driver = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get().await }
        });
        while fake.calls() == 0 {
            tokio::task::yield_now().await;
        }
        let waiter = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get().await }
        });
        tokio::task::yield_now().await;
        driver.abort();
        assert!(driver.await.unwrap_err().is_cancelled());

        assert_eq!(waiter.await.unwrap().unwrap(), token(1));
        assert_eq!(cache.get().await.unwrap(), token(1));
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_every_waiter_still_caches_the_result() {
        let fake = Fake::new(Duration::from_secs(5), LIFETIME);
        let (cache, _) = cache(&fake);
        let timed_out = tokio::time::timeout(Duration::from_secs(1), cache.get()).await;
        assert!(timed_out.is_err());
        advance_secs(5.0).await;
        for _ in 0..10 {
            if cache.readiness() == Readiness::Ready {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.readiness(), Readiness::Ready);
        assert_eq!(cache.get().await.unwrap(), token(1));
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn a_fetch_lost_with_its_runtime_does_not_wedge_the_cache() {
        let fake = Fake::new(Duration::from_secs(3600), LIFETIME);
        let (cache, _) = cache(&fake);
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        first.block_on(async {
            let pending = tokio::time::timeout(Duration::from_millis(10), cache.get()).await;
            assert!(pending.is_err());
        });
        assert_eq!(fake.calls(), 1);
        // Drops the spawned fetch mid-sleep.
        drop(first);

        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        second.block_on(async {
            assert!(matches!(cache.get().await, Err(TokenError::Aborted)));
            advance_secs(2.0).await;
            assert_eq!(cache.get().await.unwrap(), token(2));
        });
    }

    struct Panics(AtomicUsize);

    impl TokenSource for Panics {
        fn fetch(
            &self,
        ) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
            let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                assert!(
                    !first,
                    "source panics on its first fetch (expected in this test)"
                );
                Ok(FetchedToken {
                    token: AccessToken::new("after-panic"),
                    lifetime: LIFETIME,
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_source_does_not_wedge_the_cache() {
        let cache = TokenCache::new(Panics(AtomicUsize::new(0)), SKEW);
        assert!(matches!(cache.get().await, Err(TokenError::Aborted)));
        assert_eq!(
            cache.readiness(),
            Readiness::NotReady {
                reason: "Salesforce token fetch was aborted".into()
            }
        );
        advance_secs(1.0).await;
        assert_eq!(cache.get().await.unwrap().expose(), "after-panic");
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_follows_the_fetches() {
        let fake = Fake::new(Duration::from_millis(100), Duration::from_secs(120));
        let (cache, _) = cache(&fake);
        let not_yet = Readiness::NotReady {
            reason: "no token fetched yet".into(),
        };
        assert_eq!(cache.readiness(), not_yet);

        cache.get().await.unwrap();
        assert_eq!(cache.readiness(), Readiness::Ready);

        // Expired and idle: still ready, the next request fetches.
        advance_secs(600.0).await;
        assert_eq!(cache.readiness(), Readiness::Ready);

        fake.fail(true);
        cache.get().await.unwrap_err();
        assert_eq!(
            cache.readiness(),
            Readiness::NotReady {
                reason: TokenError::NoAccessToken.to_string()
            }
        );
        assert!(format!("{cache:?}").contains("NotReady"));
    }

    #[test]
    fn event_labels() {
        let labels = TokenEvent::ALL.map(TokenEvent::as_str);
        assert_eq!(
            labels,
            ["hit", "miss", "refresh_ahead", "refresh", "refresh_failure"]
        );
    }
}
