//! Building the metric families, registering them, and the resolved handles the recorders use.

use std::sync::Mutex;
use std::time::Instant;

use arc_swap::ArcSwap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::handles::{
    endpoint_index, CounterCells, ModelLabels, PerEndpoint, StaticLabelCounter,
    StaticLabelStatusCounter, ERROR_STATUSES,
};
use super::latency::LatencyHistogram;
use super::tables::{CallerLabels, TableVecs, Tables};
use crate::endpoint::Endpoint;
use crate::surface::einstein::ExtractPath;
use crate::token::TokenEvent;
use crate::upstream::AttemptOutcome;

/// Buckets (seconds) for whole requests, upstream attempts and times to first byte: from 50 µs (a
/// `/health` answer) to 10 minutes (a long generation that hits `salesforce.timeout_secs`). A first
/// byte can come as late as an attempt's timeout after retries, so it needs the whole range, and
/// sharing the bounds lets a dashboard set it beside the request duration bucket by bucket.
const DURATION_BUCKETS: [f64; 22] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets (seconds) for the bridge's own cost: finer at the low end, where translating a request
/// should sit, up to 30 s for a slow token fetch or long retry back-off.
const OVERHEAD_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// Surfaces pre-created: every `surface` a route can name in the conf. The names are the conf's
/// (`SurfaceKind::as_str`); a surface missing here still counts, through the locked lookup.
const SURFACES: &[&str] = &["einstein", "responses", "bedrock"];

/// Upstream outcomes pre-created so dashboards see zeros: every outcome there is.
fn outcomes() -> Vec<&'static str> {
    AttemptOutcome::ALL.iter().map(|o| o.as_str()).collect()
}
/// Retry reasons pre-created: the outcomes the retry policy may retry.
fn retry_reasons() -> Vec<&'static str> {
    AttemptOutcome::RETRIED.iter().map(|o| o.as_str()).collect()
}
/// Token cache events, all pre-created.
fn token_events() -> Vec<&'static str> {
    TokenEvent::ALL.iter().map(|e| e.as_str()).collect()
}
/// Extractor paths pre-created: the primary one, each known fallback, and "none".
fn extractor_path_names() -> Vec<&'static str> {
    let paths = ExtractPath::ALL.iter().map(|p| p.as_str());
    paths.chain(["none"]).collect()
}

/// The registry, the resolved handles and the summary histograms.
pub(super) struct Inner {
    pub(super) registry: Registry,
    pub(super) started: Instant,
    /// The counters by model and caller, swapped whole when a reload adds label values.
    pub(super) tables: ArcSwap<Tables>,
    /// Held while a larger table is built, so two reloads do not lose each other's values.
    pub(super) extending: Mutex<()>,
    pub(super) errors: CounterCells,
    pub(super) request_duration: PerEndpoint<Histogram>,
    pub(super) overhead: PerEndpoint<Histogram>,
    pub(super) first_byte: HistogramVec,
    /// Resolved for the endpoints that can stream (the client APIs); `None` for the others.
    pub(super) first_byte_by_endpoint: PerEndpoint<Option<Histogram>>,
    pub(super) in_flight: IntGaugeVec,
    pub(super) in_flight_by_endpoint: PerEndpoint<IntGauge>,
    pub(super) upstream_duration: Histogram,
    pub(super) upstream_attempts: StaticLabelCounter,
    pub(super) upstream_retries: StaticLabelCounter,
    pub(super) token_cache: StaticLabelCounter,
    pub(super) extractor_paths: StaticLabelCounter,
    pub(super) surface_requests: StaticLabelStatusCounter,
    pub(super) config_reloads: StaticLabelCounter,
    pub(super) latency_total: LatencyHistogram,
    pub(super) latency_upstream: LatencyHistogram,
    pub(super) latency_overhead: LatencyHistogram,
    pub(super) latency_first_byte: LatencyHistogram,
}

impl Inner {
    pub(super) fn build(registry: Registry, models: ModelLabels) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "sfbridge_requests_total",
                "Requests answered by the bridge.",
            ),
            &["endpoint", "model", "caller", "status_class"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "sfbridge_errors_total",
                "Requests answered with a status of 400 or more.",
            ),
            &["endpoint", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sfbridge_request_duration_seconds",
                "Time from a request's arrival to its response.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let overhead = HistogramVec::new(
            HistogramOpts::new(
                "sfbridge_overhead_seconds",
                "Request time not spent waiting on the Models API: the bridge's own cost.",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let first_byte = HistogramVec::new(
            HistogramOpts::new(
                "sfbridge_time_to_first_byte_seconds",
                "Time from a streamed request's arrival to the first byte of its answer's content.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "sfbridge_in_flight_requests",
                "Requests started and not yet finished.",
            ),
            &["endpoint"],
        )?;
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "sfbridge_upstream_duration_seconds",
                "Duration of one Models API attempt.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let counter = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
        };
        let upstream_attempts = counter(
            "sfbridge_upstream_attempts_total",
            "Models API attempts, by outcome.",
            "outcome",
        )?;
        let upstream_retries = counter(
            "sfbridge_upstream_retries_total",
            "Models API attempts that retried an earlier one, by reason.",
            "reason",
        )?;
        let token_cache = counter(
            "sfbridge_token_cache_total",
            "Salesforce token cache events: hit, miss, refresh_ahead, refresh, refresh_failure.",
            "event",
        )?;
        let extractor_paths = counter(
            "sfbridge_extractor_paths_total",
            "Responses by the extractor path that found the text.",
            "path",
        )?;
        let surface_requests = IntCounterVec::new(
            Opts::new(
                "sfbridge_surface_requests_total",
                "Requests answered through each Salesforce surface, by status class.",
            ),
            &["surface", "status_class"],
        )?;
        let prompt_tokens = IntCounterVec::new(
            Opts::new(
                "sfbridge_prompt_tokens_total",
                "Prompt tokens reported by Salesforce.",
            ),
            &["model", "caller"],
        )?;
        let completion_tokens = IntCounterVec::new(
            Opts::new(
                "sfbridge_completion_tokens_total",
                "Completion tokens reported by Salesforce.",
            ),
            &["model", "caller"],
        )?;
        let rate_limited = counter(
            "sfbridge_rate_limited_total",
            "Requests refused because their caller was over one of its limits.",
            "caller",
        )?;
        let config_reloads = counter(
            "sfbridge_config_reloads_total",
            "Conf reloads: ok (applied) or refused (the previous conf keeps serving).",
            "result",
        )?;
        let cached_tokens = counter(
            "sfbridge_cached_tokens_total",
            "Prompt tokens served from the provider's prompt cache, as reported.",
            "model",
        )?;
        let reasoning_tokens = counter(
            "sfbridge_reasoning_tokens_total",
            "Completion tokens spent on reasoning, as reported.",
            "model",
        )?;

        register_all(
            &registry,
            vec![
                Box::new(requests.clone()),
                Box::new(errors.clone()),
                Box::new(request_duration.clone()),
                Box::new(overhead.clone()),
                Box::new(first_byte.clone()),
                Box::new(in_flight.clone()),
                Box::new(upstream_duration.clone()),
                Box::new(upstream_attempts.clone()),
                Box::new(upstream_retries.clone()),
                Box::new(token_cache.clone()),
                Box::new(extractor_paths.clone()),
                Box::new(surface_requests.clone()),
                Box::new(prompt_tokens.clone()),
                Box::new(completion_tokens.clone()),
                Box::new(cached_tokens.clone()),
                Box::new(reasoning_tokens.clone()),
                Box::new(rate_limited.clone()),
                Box::new(config_reloads.clone()),
            ],
        )?;

        let tables = Tables::build(
            TableVecs {
                requests: &requests,
                prompt_tokens: &prompt_tokens,
                completion_tokens: &completion_tokens,
                cached_tokens: &cached_tokens,
                reasoning_tokens: &reasoning_tokens,
                rate_limited: &rate_limited,
            },
            models,
            CallerLabels::new([]),
        )?;
        Ok(Self {
            registry,
            started: Instant::now(),
            tables: ArcSwap::from_pointee(tables),
            extending: Mutex::new(()),
            errors: CounterCells::new(errors, Endpoint::ALL.len() * (ERROR_STATUSES.len() + 1)),
            request_duration: PerEndpoint::try_new(|endpoint| {
                request_duration.get_metric_with_label_values(&[endpoint.as_str()])
            })?,
            overhead: PerEndpoint::try_new(|endpoint| {
                overhead.get_metric_with_label_values(&[endpoint.as_str()])
            })?,
            first_byte_by_endpoint: PerEndpoint::try_new(|endpoint| {
                endpoint
                    .calls_upstream()
                    .then(|| first_byte.get_metric_with_label_values(&[endpoint.as_str()]))
                    .transpose()
            })?,
            first_byte,
            in_flight_by_endpoint: PerEndpoint::try_new(|endpoint| {
                in_flight.get_metric_with_label_values(&[endpoint.as_str()])
            })?,
            in_flight,
            upstream_duration,
            upstream_attempts: StaticLabelCounter::new(upstream_attempts, &outcomes())?,
            upstream_retries: StaticLabelCounter::new(upstream_retries, &retry_reasons())?,
            token_cache: StaticLabelCounter::new(token_cache, &token_events())?,
            extractor_paths: StaticLabelCounter::new(extractor_paths, &extractor_path_names())?,
            surface_requests: StaticLabelStatusCounter::new(surface_requests, SURFACES)?,
            config_reloads: StaticLabelCounter::new(config_reloads, &["ok", "refused"])?,
            latency_total: LatencyHistogram::new(),
            latency_upstream: LatencyHistogram::new(),
            latency_overhead: LatencyHistogram::new(),
            latency_first_byte: LatencyHistogram::new(),
        })
    }

    /// Adds model and caller label values, keeping those there are: builds the larger tables
    /// and swaps them in. Recording never waits for this.
    pub(super) fn extend(
        &self,
        models: impl IntoIterator<Item = String>,
        callers: impl IntoIterator<Item = String>,
    ) -> prometheus::Result<()> {
        let _one_at_a_time = self
            .extending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.tables.load();
        let models = ModelLabels::new(
            current
                .models
                .configured()
                .iter()
                .map(|name| name.to_string())
                .chain(models),
        );
        let callers = CallerLabels::new(
            current
                .callers
                .configured()
                .iter()
                .map(|name| name.to_string())
                .chain(callers),
        );
        if models.len() == current.models.len() && callers.len() == current.callers.len() {
            return Ok(());
        }
        let tables = Tables::build(
            TableVecs {
                requests: current.requests.vec(),
                prompt_tokens: current.prompt_tokens.vec(),
                completion_tokens: current.completion_tokens.vec(),
                cached_tokens: current.cached_tokens.vec(),
                reasoning_tokens: current.reasoning_tokens.vec(),
                rate_limited: current.rate_limited.vec(),
            },
            models,
            callers,
        )?;
        self.tables.store(std::sync::Arc::new(tables));
        Ok(())
    }

    /// The slot of `errors` for this endpoint and error status index.
    pub(super) fn error_cell(&self, endpoint: Endpoint, status: usize) -> usize {
        endpoint_index(endpoint) * (ERROR_STATUSES.len() + 1) + status
    }
}

/// Registers every collector, or none: on a collision the ones already registered are removed
/// again, so a failed [`Metrics::with_registry`](super::Metrics::with_registry) leaves the
/// application's registry as it was.
fn register_all(
    registry: &Registry,
    collectors: Vec<Box<dyn Collector>>,
) -> prometheus::Result<()> {
    let mut registered: Vec<Box<dyn Collector>> = Vec::with_capacity(collectors.len());
    for collector in collectors {
        // `register` consumes its box, so keep a second handle to unregister with.
        let handle = clone_collector(&*collector);
        match registry.register(collector) {
            Ok(()) => registered.push(handle),
            Err(error) => {
                for collector in registered {
                    let _ = registry.unregister(collector);
                }
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Stands in for a registered collector when unregistering it: the registry identifies a
/// collector by its descriptors alone, and `register` keeps the original.
struct Descriptors(Vec<Desc>);

impl Collector for Descriptors {
    fn desc(&self) -> Vec<&Desc> {
        self.0.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

fn clone_collector(collector: &dyn Collector) -> Box<dyn Collector> {
    Box::new(Descriptors(collector.desc().into_iter().cloned().collect()))
}
