//! [`Finisher`]: records a request's end once (metrics and the log line), whenever it comes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;
use tracing::Span;

use super::auth::Caller;
use super::error::BridgeError;
use crate::core::Usage;
use crate::endpoint::Endpoint;
use crate::metrics::{InFlight, Metrics};

/// Status recorded for a request whose caller went away before it finished (nginx's 499).
const CLIENT_CLOSED: u16 = 499;

/// Time spent waiting on Salesforce (token endpoint, attempts and backoffs), shared with the
/// upstream work, which may outlive the response head when a stream is waiting.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpstreamTime(Arc<AtomicU64>);

impl UpstreamTime {
    pub(crate) fn add(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Where an answer's token counts go: the metrics, by route and caller, and the caller's token
/// allowance.
#[derive(Debug, Clone)]
pub(crate) struct UsageTo {
    metrics: Metrics,
    model: Arc<str>,
    caller: Caller,
}

impl UsageTo {
    pub(crate) fn new(metrics: &Metrics, model: Arc<str>, caller: Caller) -> Self {
        Self {
            metrics: metrics.clone(),
            model,
            caller,
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts the tokens an answer used and charges them to its caller.
    pub(crate) fn record(&self, usage: &Usage) {
        let (model, caller) = (&*self.model, self.caller.name());
        self.metrics
            .usage(model, Some(caller), usage.input_tokens, usage.output_tokens);
        self.metrics.usage_details(
            model,
            usage.cached_tokens.unwrap_or(0),
            usage.reasoning_tokens.unwrap_or(0),
        );
        self.caller
            .limits()
            .charge(usage.input_tokens.saturating_add(usage.output_tokens));
    }
}

/// Everything needed to record one request's end. Dropping it unfinished records the request
/// as abandoned by its caller.
pub(crate) struct Finisher {
    metrics: Metrics,
    endpoint: Endpoint,
    model: Option<Arc<str>>,
    /// Whose key the request carries, once checked.
    caller: Option<Caller>,
    /// The surface of the request's route, once routed.
    surface: Option<&'static str>,
    started: Instant,
    upstream: UpstreamTime,
    span: Span,
    _in_flight: InFlight,
    done: bool,
}

impl Finisher {
    pub(crate) fn new(metrics: &Metrics, endpoint: Endpoint, started: Instant, span: Span) -> Self {
        Self {
            _in_flight: metrics.request_started(endpoint),
            metrics: metrics.clone(),
            endpoint,
            model: None,
            caller: None,
            surface: None,
            started,
            upstream: UpstreamTime::default(),
            span,
            done: false,
        }
    }

    /// The configured model this request was routed to.
    pub(crate) fn set_model(&mut self, model: Arc<str>) {
        self.span.record("model", &*model);
        self.model = Some(model);
    }

    /// Who sent the request: its name labels the log line and the metrics.
    pub(crate) fn set_caller(&mut self, caller: Caller) {
        self.span.record("caller", caller.name());
        self.caller = Some(caller);
    }

    /// Who sent the request (set once its key was checked).
    pub(crate) fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// The surface of the route serving this request.
    pub(crate) fn set_surface(&mut self, surface: &'static str) {
        self.span.record("surface", surface);
        self.surface = Some(surface);
    }

    /// The answer's content is ready to be written: the time to first byte of a stream.
    pub(crate) fn first_byte(&self) {
        self.metrics
            .first_byte(self.endpoint, self.started.elapsed());
    }

    /// When the request arrived: its deadline counts from here.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    pub(crate) fn upstream_time(&self) -> UpstreamTime {
        self.upstream.clone()
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    fn record(&mut self, status: u16) -> (Duration, Duration) {
        self.done = true;
        let total = self.started.elapsed();
        let upstream = self.upstream.get().min(total);
        self.metrics.request_finished(
            self.endpoint,
            self.model.as_deref(),
            self.caller.as_ref().map(Caller::name),
            status,
            total,
            upstream,
        );
        if let Some(surface) = self.surface {
            self.metrics.surface_request(surface, status);
        }
        self.span.record("status", status);
        self.span.record("total_ms", total.as_secs_f64() * 1e3);
        self.span
            .record("upstream_ms", upstream.as_secs_f64() * 1e3);
        (total, upstream)
    }

    /// The request succeeded (or answered a plain, expected status).
    pub(crate) fn finish(mut self, status: StatusCode) {
        self.record(status.as_u16());
        tracing::info!(parent: &self.span, "request finished");
    }

    /// The request failed with `error`, answered with `status`.
    pub(crate) fn fail(mut self, status: StatusCode, error: &BridgeError) {
        if let BridgeError::RateLimited { caller, .. } = error {
            self.metrics.rate_limited(caller);
        }
        self.record(status.as_u16());
        if status.is_server_error() {
            tracing::warn!(parent: &self.span, error = %error, "request failed");
        } else {
            tracing::info!(parent: &self.span, error = %error, "request refused");
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if !self.done {
            self.record(CLIENT_CLOSED);
            tracing::info!(parent: &self.span, "caller went away before the answer");
        }
    }
}
