//! Prometheus metrics for `GET /metrics` and a JSON summary for `GET /metrics/performance`.
//!
//! ```
//! use std::time::Duration;
//! use sf_models_bridge::{endpoint::Endpoint, metrics::Metrics};
//!
//! let metrics = Metrics::new(["gpt-4o-mini"]);
//! let in_flight = metrics.request_started(Endpoint::ChatCompletions);
//! metrics.upstream_attempt("ok");
//! metrics.request_finished(
//!     Endpoint::ChatCompletions,
//!     Some("gpt-4o-mini"),
//!     None,                          // no caller key: "anonymous"
//!     200,
//!     Duration::from_millis(812),    // the whole request
//!     Duration::from_millis(810),    // of which the Models API
//! );
//! drop(in_flight);
//!
//! let text = metrics.render();
//! assert!(text.contains(
//!     r#"sfbridge_requests_total{caller="anonymous",endpoint="chat_completions",model="gpt-4o-mini",status_class="2xx"} 1"#
//! ));
//! let summary = metrics.performance();
//! assert_eq!((summary.requests.total, summary.upstream.attempts), (1, 1));
//! assert!(summary.latency_ms.overhead.p50.is_some_and(|ms| (ms - 2.0).abs() < 0.05));
//! ```
//!
//! # The metrics
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `sfbridge_requests_total` | `endpoint`, `model`, `caller`, `status_class` | requests answered |
//! | `sfbridge_errors_total` | `endpoint`, `status` | requests answered with a status ≥ 400, by code |
//! | `sfbridge_request_duration_seconds` | `endpoint` | histogram: arrival to response |
//! | `sfbridge_overhead_seconds` | `endpoint` | histogram: request time not spent waiting on the Models API |
//! | `sfbridge_time_to_first_byte_seconds` | `endpoint` | histogram: a streamed request's arrival to the first byte of its answer's content |
//! | `sfbridge_in_flight_requests` | `endpoint` | gauge: requests started and not finished |
//! | `sfbridge_upstream_duration_seconds` | | histogram: one Models API attempt |
//! | `sfbridge_upstream_attempts_total` | `outcome` | Models API attempts, by outcome |
//! | `sfbridge_upstream_retries_total` | `reason` | attempts that retried an earlier one, by why |
//! | `sfbridge_token_cache_total` | `event` | token cache `hit`, `miss`, `refresh_ahead` (a background refresh started), `refresh`, `refresh_failure` |
//! | `sfbridge_extractor_paths_total` | `path` | responses by extractor path (`primary`, a fallback, `none`) |
//! | `sfbridge_surface_requests_total` | `surface`, `status_class` | requests answered through each surface (`einstein`, `responses`, `bedrock`) |
//! | `sfbridge_prompt_tokens_total` | `model`, `caller` | prompt tokens Salesforce reported |
//! | `sfbridge_completion_tokens_total` | `model`, `caller` | completion tokens Salesforce reported |
//! | `sfbridge_cached_tokens_total` | `model` | prompt tokens served from the provider's prompt cache |
//! | `sfbridge_reasoning_tokens_total` | `model` | completion tokens spent on reasoning |
//! | `sfbridge_rate_limited_total` | `caller` | requests refused (429) because their caller was over a limit |
//! | `sfbridge_config_reloads_total` | `result` | conf reloads, `ok` or `refused` |
//!
//! # Label values
//!
//! Every label comes from a bounded set, so no caller can make the series count grow:
//!
//! - `endpoint`: [`Endpoint::as_str`].
//! - `model`: a configured model name; `"unknown"` for any other name; `"none"` when no model
//!   applies (endpoints without a body, or a request rejected before its model was read).
//! - `caller`: a name of `[[auth.keys]]`; `"unnamed"` for a key of `[auth] api_keys`;
//!   `"anonymous"` when no key identified the caller (keys off, open endpoints, refused keys).
//!   Never a key.
//! - `status_class`: `"1xx"` to `"5xx"`; a code outside 100–599 counts as `"5xx"`.
//! - `status`: the common error codes (`"400"`, `"401"`, `"404"`, `"413"`, `"429"`, `"502"`, ...)
//!   or `"other"`.
//! - `outcome`, `reason`, `event`, `path`, `surface`: `&'static str`s chosen by the bridge's own
//!   code.
//!
//! The series dashboards need are created at start-up and read 0 until used: every endpoint with
//! the classes 2xx, 4xx and 5xx (the OpenAI endpoints with each model, `"unknown"` and `"none"`;
//! the others with `"none"`; each with every caller), each surface with the same three classes, the time to first byte of
//! every endpoint that can stream, the token counters per model and `"unknown"` (and caller), the
//! rate-limit refusals per caller, both reload results, and the usual
//! outcomes, retry reasons, token events and extractor paths.
//!
//! # Cost
//!
//! Models and callers a conf reload adds get their series through [`Metrics::add_labels`], which
//! builds larger tables and swaps them in: recording only loads the current table (atomics).
//! Values are never removed before a restart, so a name that a reload drops keeps its series.
//!
//! No globals: each [`Metrics`] owns (or shares) one registry, so two bridges in one process never
//! collide. Recording resolves each series once (the pre-created ones at start-up) and from then
//! on only adds to atomics: no lock, no allocation. The one exception is an `outcome`, `reason`,
//! `event`, `path` or `surface` value outside the pre-created lists (or a first byte timed on an
//! endpoint that cannot stream), which goes through Prometheus' own (locked) lookup each time.
//! The latency percentiles in the summary come from fixed-size log-linear histograms (about
//! 14 KiB each), not from the coarse Prometheus buckets.

mod handles;
mod inner;
mod latency;
mod performance;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGauge, Registry, TextEncoder};

pub use performance::{
    ExtractorSummary, LatencySummary, Percentiles, PerformanceSummary, RequestSummary,
    TokenCacheSummary, UpstreamSummary,
};

use crate::endpoint::Endpoint;
use handles::{
    error_status_index, error_status_label, status_class_index, ModelLabels, STATUS_CLASSES,
};
use inner::Inner;
pub use tables::{ANONYMOUS_CALLER, UNNAMED_CALLER};

/// The bridge's metrics: cheap to clone (one `Arc`), shared by every service clone.
///
/// Build it once at start-up with [`Metrics::new`] (its own registry) or
/// [`Metrics::with_registry`] (the embedding application's), then hand clones to the layer.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    /// The media type of [`render`](Self::render)'s output, for the `Content-Type` of `/metrics`.
    pub const CONTENT_TYPE: &'static str = prometheus::TEXT_FORMAT;

    /// Metrics in a registry of their own.
    ///
    /// `models` are the configured OpenAI model names, the only values the `model` label takes
    /// besides `"unknown"` and `"none"`. Duplicates are ignored.
    pub fn new<I, M>(models: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        // Only building a metric or registering it can fail: on a fresh registry nothing can
        // collide, and every name, label name and bucket list here is a constant that each unit
        // test constructs. Model names are label *values*, which Prometheus accepts as any string.
        Self::with_registry(Registry::new(), models)
            .expect("constant metric definitions in a fresh registry are valid")
    }

    /// Metrics registered in `registry`, usually the embedding application's, so that its scrape
    /// includes ours and [`render`](Self::render) includes its metrics.
    ///
    /// Fails if a `sfbridge_*` name is already registered there (for instance by a second bridge:
    /// give each its own registry); nothing is left registered then.
    pub fn with_registry<I, M>(registry: Registry, models: I) -> Result<Self, prometheus::Error>
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        let models = ModelLabels::new(models.into_iter().map(Into::into));
        Ok(Self {
            inner: Arc::new(Inner::build(registry, models)?),
        })
    }

    /// The registry the metrics live in.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The Prometheus text exposition of the whole registry, the embedding application's metrics
    /// included when shared. Serve it with [`Metrics::CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let encoder = TextEncoder::new();
        let mut text = String::new();
        // One family at a time, so a broken collector of the application's (the encoder rejects
        // a family without a name) costs only its own lines, not the whole scrape.
        for family in self.inner.registry.gather() {
            if let Err(error) = encoder.encode_utf8(std::slice::from_ref(&family), &mut text) {
                let family = family.name();
                tracing::warn!(%error, family, "metric family left out of /metrics");
            }
        }
        text
    }

    /// The JSON summary for `GET /metrics/performance`.
    pub fn performance(&self) -> PerformanceSummary {
        performance::summarize(&self.inner)
    }

    /// Adds label values for `models` and `callers` (a reloaded conf's routes and
    /// `[[auth.keys]]` names) and creates their series; the values there are stay. Call it at
    /// start-up or on a reload, not per request: it takes Prometheus' lock for each new series.
    pub fn add_labels<M, C>(&self, models: M, callers: C) -> Result<(), prometheus::Error>
    where
        M: IntoIterator,
        M::Item: Into<String>,
        C: IntoIterator,
        C::Item: Into<String>,
    {
        self.inner.extend(
            models.into_iter().map(Into::into),
            callers.into_iter().map(Into::into),
        )
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn request_started(&self, endpoint: Endpoint) -> InFlight {
        let gauge = self.inner.in_flight_by_endpoint.get(endpoint).clone();
        gauge.inc();
        InFlight { gauge }
    }

    /// Records a finished request: its count, status and durations.
    ///
    /// `model` is the request's model name as the client sent it (`None` when there is none);
    /// names that are not configured are counted as `"unknown"`. `caller` is the caller's name
    /// ([`UNNAMED_CALLER`] for an unnamed key; `None`, or a name not added, counts as
    /// [`ANONYMOUS_CALLER`]). `total` runs from arrival to
    /// response; `upstream` is the time spent waiting on the Models API over all attempts
    /// (zero if none was made). Their difference is recorded as the bridge's overhead.
    pub fn request_finished(
        &self,
        endpoint: Endpoint,
        model: Option<&str>,
        caller: Option<&str>,
        status: u16,
        total: Duration,
        upstream: Duration,
    ) {
        let inner = &*self.inner;
        let tables = inner.tables.load();
        let model = tables.models.lookup(model);
        let caller = tables.callers.lookup(caller);
        let class = status_class_index(status);
        tables.requests.inc_by(
            tables.request_cell(endpoint, model, caller, class),
            &[
                endpoint.as_str(),
                tables.models.name(model),
                tables.callers.name(caller),
                STATUS_CLASSES[class],
            ],
            1,
        );
        if let Some(code) = error_status_index(status) {
            inner.errors.inc_by(
                inner.error_cell(endpoint, code),
                &[endpoint.as_str(), error_status_label(code)],
                1,
            );
        }
        // A clock step or a caller timing upstream over a wider span must not make overhead
        // negative; it is then recorded as zero.
        let overhead = total.saturating_sub(upstream);
        inner
            .request_duration
            .get(endpoint)
            .observe(total.as_secs_f64());
        inner.overhead.get(endpoint).observe(overhead.as_secs_f64());
        // The summary's percentiles describe the OpenAI endpoints only: health checks and
        // scrapes are frequent and instant, and would drown the numbers an operator asks about.
        if endpoint.calls_upstream() {
            inner.latency_total.record(total);
            inner.latency_upstream.record(upstream);
            inner.latency_overhead.record(overhead);
        }
    }

    /// Records how long a streamed request waited for its answer: from its arrival to the first
    /// byte of the answer's content (not a keep-alive or the response head), retries included.
    pub fn first_byte(&self, endpoint: Endpoint, elapsed: Duration) {
        let inner = &*self.inner;
        let seconds = elapsed.as_secs_f64();
        match inner.first_byte_by_endpoint.get(endpoint) {
            Some(histogram) => histogram.observe(seconds),
            // Only the client APIs stream; anything else is a caller's slip, still recorded.
            None => match inner
                .first_byte
                .get_metric_with_label_values(&[endpoint.as_str()])
            {
                Ok(histogram) => histogram.observe(seconds),
                Err(error) => tracing::warn!(%error, "metric sample dropped"),
            },
        }
        // As in `request_finished`: the summary describes the client APIs only.
        if endpoint.calls_upstream() {
            inner.latency_first_byte.record(elapsed);
        }
    }

    /// Records a request answered through a route's surface: the conf's name for it
    /// ([`SurfaceKind::as_str`](crate::surface::SurfaceKind::as_str): `"einstein"`, `"responses"`,
    /// `"bedrock"`) and the status the request was answered with, counted by class.
    pub fn surface_request(&self, surface: &'static str, status: u16) {
        self.inner.surface_requests.inc(surface, status);
    }

    /// Records one Models API attempt's outcome, such as `"ok"`, `"rate_limited"`, `"busy"`,
    /// `"server_error"`, `"client_error"`, `"unauthorized"`, `"timeout"` or `"connect_error"`.
    pub fn upstream_attempt(&self, outcome: &'static str) {
        self.inner.upstream_attempts.inc(outcome);
    }

    /// Records that an attempt is being retried, and why (usually the failed attempt's outcome).
    pub fn upstream_retry(&self, reason: &'static str) {
        self.inner.upstream_retries.inc(reason);
    }

    /// Records how long one Models API attempt took.
    pub fn upstream_duration(&self, duration: Duration) {
        self.inner.upstream_duration.observe(duration.as_secs_f64());
    }

    /// Records a token cache event: `"hit"`, `"miss"`, `"refresh_ahead"`, `"refresh"` or
    /// `"refresh_failure"`.
    pub fn token_event(&self, event: &'static str) {
        self.inner.token_cache.inc(event);
    }

    /// Records which path the response extractor took: `"primary"`, a fallback's name (such as
    /// `"generation_text"`, `"snake_case"`, `"openai_choices"`, `"generations_array"`), or
    /// `"none"` when no path found text.
    pub fn extractor_path(&self, path: &'static str) {
        self.inner.extractor_paths.inc(path);
    }

    /// Records the token usage Salesforce reported for a response, by model and caller (as in
    /// [`request_finished`](Self::request_finished)); names that are not configured are counted
    /// as `"unknown"`.
    pub fn usage(
        &self,
        model: &str,
        caller: Option<&str>,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) {
        let tables = self.inner.tables.load();
        let model = tables.models.lookup(Some(model));
        let caller = tables.callers.lookup(caller);
        let labels = [tables.models.name(model), tables.callers.name(caller)];
        let cell = tables.token_cell(model, caller);
        tables.prompt_tokens.inc_by(cell, &labels, prompt_tokens);
        tables
            .completion_tokens
            .inc_by(cell, &labels, completion_tokens);
    }

    /// Records a request refused because `caller` was over one of its limits.
    pub fn rate_limited(&self, caller: &str) {
        let tables = self.inner.tables.load();
        let caller = tables.callers.lookup(Some(caller));
        tables
            .rate_limited
            .inc_by(caller, &[tables.callers.name(caller)], 1);
    }

    /// Records a conf reload: `"ok"` (applied) or `"refused"` (the previous conf still serves).
    pub fn config_reload(&self, result: &'static str) {
        self.inner.config_reloads.inc(result);
    }

    /// Records the details of a response's token usage: the prompt tokens served from the
    /// provider's prompt cache and the completion tokens spent on reasoning (each already counted
    /// in [`usage`](Self::usage)'s totals). Names that are not configured are counted as
    /// `"unknown"`.
    pub fn usage_details(&self, model: &str, cached_tokens: u64, reasoning_tokens: u64) {
        let tables = self.inner.tables.load();
        let model = tables.models.lookup(Some(model));
        let labels = [tables.models.name(model)];
        tables.cached_tokens.inc_by(model, &labels, cached_tokens);
        tables
            .reasoning_tokens
            .inc_by(model, &labels, reasoning_tokens);
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("models", &self.inner.tables.load().models.configured())
            .finish_non_exhaustive()
    }
}

/// A request in flight: counted in `sfbridge_in_flight_requests` until dropped.
///
/// Keep it alive for the whole response (a streamed one included), for instance in the response
/// future or body.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight as soon as this guard is dropped"]
pub struct InFlight {
    gauge: IntGauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
