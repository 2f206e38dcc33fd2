//! The mock's shared state: settings, counters, queued faults, issued tokens, the last request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::answer::Canned;
use super::catalog::Operation;
use super::faults::{Fault, FaultQueue, ResponseShape, TokenFault};
use super::MockOptions;

/// A handle on a running mock's state: inject faults, read counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    counters: AtomicCounters,
    faults: FaultQueue<Fault>,
    token_faults: FaultQueue<TokenFault>,
    control: Mutex<Control>,
    /// Present in fast mode only.
    canned: Option<Canned>,
    /// [`MockState::set_stream_pace`], in nanoseconds: read by every stream, so kept out of the lock.
    stream_pace: AtomicU64,
    /// Tool calls answered so far, for their ids (`call_<n>`, `toolu_<n>`).
    tool_calls: AtomicU64,
}

/// What [`MockOptions`] fixed at start-up, plus the bound address.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) addr: SocketAddr,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) token_lifetime: Duration,
    pub(crate) latency: Duration,
}

#[derive(Debug, Default)]
struct Control {
    shape: ResponseShape,
    last_request: Option<RecordedRequest>,
    /// Issued, unrevoked tokens and when each stops being accepted.
    tokens: HashMap<String, Instant>,
}

/// How many requests the mock has seen. Each is counted when it arrives, whatever the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Requests to the token endpoint.
    pub token_requests: u64,
    /// Tokens handed out (JWT or, under [`TokenFault::NotJwt`], opaque).
    pub tokens_issued: u64,
    /// `POST …/chat-generations` requests.
    pub chat_requests: u64,
    /// `POST …/generations` requests.
    pub generation_requests: u64,
    /// `POST …/embeddings` requests.
    pub embedding_requests: u64,
    /// Model calls whose connection closed (the caller gave up) before the mock answered, or before
    /// the end of a streamed answer.
    #[serde(default)]
    pub abandoned_model_calls: u64,
    /// `POST /ai/gpt/v1/responses` requests.
    #[serde(default)]
    pub responses_requests: u64,
    /// `POST /ai/gpt/v1/model/{model}/invoke` and `…/invoke-with-response-stream` requests.
    #[serde(default)]
    pub bedrock_requests: u64,
}

impl Counters {
    /// Every model call: chat, text, embeddings and the native surfaces.
    pub fn model_requests(&self) -> u64 {
        self.chat_requests
            + self.generation_requests
            + self.embedding_requests
            + self.responses_requests
            + self.bedrock_requests
    }
}

/// A model request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request path, without the query.
    pub path: String,
    /// Every request header, `Authorization` included.
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    chat_requests: AtomicU64,
    generation_requests: AtomicU64,
    embedding_requests: AtomicU64,
    abandoned_model_calls: AtomicU64,
    responses_requests: AtomicU64,
    bedrock_requests: AtomicU64,
}

impl AtomicCounters {
    fn all(&self) -> [&AtomicU64; 8] {
        [
            &self.token_requests,
            &self.tokens_issued,
            &self.chat_requests,
            &self.generation_requests,
            &self.embedding_requests,
            &self.abandoned_model_calls,
            &self.responses_requests,
            &self.bedrock_requests,
        ]
    }
}

/// Longer lifetimes are cut to this, so that adding one to a clock cannot overflow.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Past this many live tokens, issuing one first forgets the expired ones.
const TOKEN_PRUNE_THRESHOLD: usize = 1024;

impl MockState {
    pub(crate) fn new(options: &MockOptions, addr: SocketAddr) -> Self {
        let settings = Settings {
            addr,
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
            token_lifetime: options.token_lifetime.min(MAX_TOKEN_LIFETIME),
            latency: options.latency,
        };
        let inner = Inner {
            settings,
            counters: AtomicCounters::default(),
            faults: FaultQueue::new(),
            token_faults: FaultQueue::new(),
            control: Mutex::new(Control::default()),
            canned: options.fast.then(|| Canned::new(options.answer_bytes)),
            stream_pace: AtomicU64::new(0),
            tool_calls: AtomicU64::new(0),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The next `times` model calls get `fault` ([`u32::MAX`]: every call until cleared).
    /// Queued faults apply in the order they were injected; `times == 0` does nothing.
    pub fn inject(&self, fault: Fault, times: u32) {
        self.inner.faults.push(fault, times);
    }

    /// The next `times` token requests get `fault` ([`u32::MAX`]: every request until cleared).
    pub fn inject_token_fault(&self, fault: TokenFault, times: u32) {
        self.inner.token_faults.push(fault, times);
    }

    /// Forgets every queued fault, model and token alike.
    pub fn clear_faults(&self) {
        self.inner.faults.clear();
        self.inner.token_faults.clear();
    }

    /// Every token issued so far is now rejected with 401 `INVALID_AUTH`; later ones work.
    pub fn revoke_tokens(&self) {
        self.control().tokens.clear();
    }

    /// The shape of successful chat and text answers from now on.
    pub fn set_shape(&self, shape: ResponseShape) {
        self.control().shape = shape;
    }

    /// The pause between the events of a streamed answer from now on (default none), so that a test
    /// can show a stream reaching its caller event by event.
    pub fn set_stream_pace(&self, pace: Duration) {
        let nanos = u64::try_from(pace.as_nanos()).unwrap_or(u64::MAX);
        self.inner.stream_pace.store(nanos, Ordering::SeqCst);
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        let [token_requests, tokens_issued, chat_requests, generation_requests, embedding_requests, abandoned_model_calls, responses_requests, bedrock_requests] =
            self.inner
                .counters
                .all()
                .map(|counter| counter.load(Ordering::SeqCst));
        Counters {
            token_requests,
            tokens_issued,
            chat_requests,
            generation_requests,
            embedding_requests,
            abandoned_model_calls,
            responses_requests,
            bedrock_requests,
        }
    }

    /// The last model request received (not recorded in fast mode, to keep that path lean).
    pub fn last_model_request(&self) -> Option<RecordedRequest> {
        self.control().last_request.clone()
    }

    /// Back to a fresh start: counters zero, no faults, the documented shape, no recorded request,
    /// no stream pace, tool call ids from 1 again.
    /// Issued tokens stay valid; use [`revoke_tokens`](Self::revoke_tokens) for those.
    pub fn reset(&self) {
        for counter in self.inner.counters.all() {
            counter.store(0, Ordering::SeqCst);
        }
        self.inner.stream_pace.store(0, Ordering::SeqCst);
        self.inner.tool_calls.store(0, Ordering::SeqCst);
        self.clear_faults();
        let mut control = self.control();
        control.shape = ResponseShape::default();
        control.last_request = None;
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn canned(&self) -> Option<&Canned> {
        self.inner.canned.as_ref()
    }

    pub(crate) fn count(&self, operation: Operation) {
        let counters = &self.inner.counters;
        let counter = match operation {
            Operation::Chat => &counters.chat_requests,
            Operation::Generations => &counters.generation_requests,
            Operation::Embeddings => &counters.embedding_requests,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_responses(&self) {
        let counters = &self.inner.counters;
        counters.responses_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_bedrock(&self) {
        let counters = &self.inner.counters;
        counters.bedrock_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn stream_pace(&self) -> Duration {
        Duration::from_nanos(self.inner.stream_pace.load(Ordering::SeqCst))
    }

    /// The number of the next tool call answered, from 1.
    pub(crate) fn next_tool_call(&self) -> u64 {
        self.inner.tool_calls.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts a model call as abandoned when the returned guard is dropped before it is
    /// [`disarm`](Answering::disarm)ed: hyper drops the handler's future when the caller's
    /// connection closes, and that drop is the only trace the caller's leaving leaves here.
    pub(crate) fn answering(&self) -> Answering {
        Answering(Some(self.clone()))
    }

    pub(crate) fn count_token_request(&self) {
        self.inner
            .counters
            .token_requests
            .fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.control().last_request = Some(request);
    }

    pub(crate) fn take_fault(&self) -> Option<Fault> {
        self.inner.faults.take()
    }

    pub(crate) fn take_token_fault(&self) -> Option<TokenFault> {
        self.inner.token_faults.take()
    }

    pub(crate) fn shape(&self) -> ResponseShape {
        self.control().shape
    }

    /// Accepts `token` until the configured lifetime has passed, and counts it.
    pub(crate) fn issue_token(&self, token: String, now: Instant) {
        let expires = now + self.inner.settings.token_lifetime;
        let mut control = self.control();
        if control.tokens.len() >= TOKEN_PRUNE_THRESHOLD {
            control.tokens.retain(|_, expires| *expires > now);
        }
        control.tokens.insert(token, expires);
        self.inner
            .counters
            .tokens_issued
            .fetch_add(1, Ordering::SeqCst);
    }

    /// Whether `token` was issued, is not revoked and has not expired.
    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.control()
            .tokens
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    // Nothing panics while holding this lock, but poisoned state is still usable state.
    fn control(&self) -> MutexGuard<'_, Control> {
        self.inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// See [`MockState::answering`].
#[derive(Debug)]
pub(crate) struct Answering(Option<MockState>);

impl Answering {
    /// The answer is ready: the call was not abandoned.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state
                .inner
                .counters
                .abandoned_model_calls
                .fetch_add(1, Ordering::SeqCst);
        }
    }
}
