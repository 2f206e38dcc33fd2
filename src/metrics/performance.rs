//! The JSON summary served at `GET /metrics/performance`.
//!
//! Everything is counted since the [`Metrics`](super::Metrics) was created. Counts come from the
//! same Prometheus series that `/metrics` exports, so the two never disagree; percentiles come from
//! the log-linear histograms in `latency`, which are exact to within 1 %.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::handles::{counts_by, family, label, ENDPOINTS};
use super::latency::LatencyHistogram;
use super::Inner;
use crate::endpoint::Endpoint;

/// The body of `GET /metrics/performance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceSummary {
    /// Whole seconds since the metrics were created (in practice, since the bridge started).
    pub uptime_secs: u64,
    /// What callers asked for and how it went.
    pub requests: RequestSummary,
    /// How often the Salesforce access token was served from cache.
    pub token_cache: TokenCacheSummary,
    /// Which path the response extractor took to find the generated text.
    pub extractor: ExtractorSummary,
    /// Calls made to the Models API.
    pub upstream: UpstreamSummary,
    /// Latency percentiles of the client API endpoints (`chat_completions`, `completions`, ...).
    pub latency_ms: LatencySummary,
}

/// Request counts, over every endpoint the bridge serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// Requests finished.
    pub total: u64,
    /// Requests finished with a status of 400 or more.
    pub errors: u64,
    /// Requests started and not yet finished.
    pub in_flight: i64,
    /// Requests finished, by endpoint label (`chat_completions`, `completions`, `models`, `health`,
    /// `ready`, `metrics`, `performance`); every endpoint is present, zeros included.
    pub by_endpoint: BTreeMap<String, u64>,
}

/// Token cache lookups and refreshes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenCacheSummary {
    /// Lookups answered by a cached, unexpired token without waiting.
    pub hits: u64,
    /// Lookups that had to wait for a token.
    pub misses: u64,
    /// Token fetches that succeeded.
    pub refreshes: u64,
    /// Token fetches that failed.
    pub refresh_failures: u64,
    /// `hits / (hits + misses)`, from 0 to 1; `null` before the first lookup.
    pub hit_rate: Option<f64>,
}

/// Response extractor paths. The primary path reads the documented response shape; a fallback
/// means Salesforce answered in another shape the bridge still understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractorSummary {
    /// Responses read by the primary path.
    pub primary: u64,
    /// Responses read by a fallback, by fallback name (e.g. `generation_text`, `snake_case`).
    pub fallbacks: BTreeMap<String, u64>,
    /// Responses in which no path found any text.
    pub none: u64,
    /// Share of all extractions (primary + fallbacks + none) taken by the primary path, from 0 to
    /// 100; `null` before the first extraction.
    pub primary_pct: Option<f64>,
    /// Share of all extractions taken by any fallback, from 0 to 100; `null` before the first.
    pub fallback_pct: Option<f64>,
}

/// Models API calls. One request may take several attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamSummary {
    /// Attempts made, whatever their outcome.
    pub attempts: u64,
    /// Attempts that were retries of an earlier one.
    pub retries: u64,
    /// Attempts by outcome (`ok`, `rate_limited`, `busy`, `server_error`, `client_error`,
    /// `unauthorized`, `timeout`, `connect_error`, ...); pre-created outcomes appear with zeros.
    pub by_outcome: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds, for the client API endpoints' requests (health checks and
/// scrapes left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// From the request's arrival to its response.
    pub total: Percentiles,
    /// Waiting on the Models API, over all of the request's attempts.
    pub upstream: Percentiles,
    /// `total − upstream`: the bridge's own cost (parsing, translation, token wait, back-off).
    pub overhead: Percentiles,
    /// Streamed requests only: from the request's arrival to the first byte of the answer's
    /// content, what a streaming client waits before text starts to appear.
    pub time_to_first_byte: Percentiles,
}

/// Percentiles of one latency, in milliseconds, exact to within 1 %.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many requests were measured.
    pub samples: u64,
    /// The median; `null` without samples.
    pub p50: Option<f64>,
    /// The 95th percentile; `null` without samples.
    pub p95: Option<f64>,
    /// The 99th percentile; `null` without samples.
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(histogram: &LatencyHistogram) -> Self {
        let snapshot = histogram.snapshot();
        let ms = |q| snapshot.quantile_micros(q).map(|micros| micros / 1000.0);
        Self {
            samples: snapshot.count(),
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
        }
    }
}

/// `part / whole` scaled to `scale`, or `None` when `whole` is 0.
fn ratio(part: u64, whole: u64, scale: f64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64 * scale)
}

pub(super) fn summarize(inner: &Inner) -> PerformanceSummary {
    PerformanceSummary {
        uptime_secs: inner.started.elapsed().as_secs(),
        requests: requests(inner),
        token_cache: token_cache(inner),
        extractor: extractor(inner),
        upstream: upstream(inner),
        latency_ms: LatencySummary {
            total: Percentiles::of(&inner.latency_total),
            upstream: Percentiles::of(&inner.latency_upstream),
            overhead: Percentiles::of(&inner.latency_overhead),
            time_to_first_byte: Percentiles::of(&inner.latency_first_byte),
        },
    }
}

fn requests(inner: &Inner) -> RequestSummary {
    let mut by_endpoint: BTreeMap<String, u64> = Endpoint::ALL
        .iter()
        .map(|endpoint| (endpoint.as_str().to_owned(), 0))
        .collect();
    let (mut total, mut errors) = (0, 0);
    let requests = family(inner.tables.load().requests.vec());
    for metric in requests.get_metric() {
        let count = metric.get_counter().get_value() as u64;
        total += count;
        if matches!(label(metric, "status_class"), "4xx" | "5xx") {
            errors += count;
        }
        *by_endpoint
            .entry(label(metric, "endpoint").to_owned())
            .or_default() += count;
    }
    debug_assert_eq!(by_endpoint.len(), ENDPOINTS);
    let in_flight = family(&inner.in_flight)
        .get_metric()
        .iter()
        .map(|m| m.get_gauge().get_value() as i64)
        .sum();
    RequestSummary {
        total,
        errors,
        in_flight,
        by_endpoint,
    }
}

fn token_cache(inner: &Inner) -> TokenCacheSummary {
    let events = family(inner.token_cache.vec());
    let count = |event: &str| {
        counts_by(&events, "event")
            .filter(|(name, _)| *name == event)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let (hits, misses) = (count("hit"), count("miss"));
    TokenCacheSummary {
        hits,
        misses,
        refreshes: count("refresh"),
        refresh_failures: count("refresh_failure"),
        hit_rate: ratio(hits, hits + misses, 1.0),
    }
}

fn extractor(inner: &Inner) -> ExtractorSummary {
    let paths = family(inner.extractor_paths.vec());
    let (mut primary, mut none, mut fallbacks) = (0, 0, BTreeMap::new());
    for (path, count) in counts_by(&paths, "path") {
        match path {
            "primary" => primary += count,
            "none" => none += count,
            fallback => *fallbacks.entry(fallback.to_owned()).or_default() += count,
        }
    }
    let fallback_total: u64 = fallbacks.values().sum();
    let all = primary + fallback_total + none;
    ExtractorSummary {
        primary,
        fallbacks,
        none,
        primary_pct: ratio(primary, all, 100.0),
        fallback_pct: ratio(fallback_total, all, 100.0),
    }
}

fn upstream(inner: &Inner) -> UpstreamSummary {
    let outcomes = family(inner.upstream_attempts.vec());
    let by_outcome: BTreeMap<String, u64> = counts_by(&outcomes, "outcome")
        .map(|(outcome, n)| (outcome.to_owned(), n))
        .collect();
    let retries = family(inner.upstream_retries.vec());
    UpstreamSummary {
        attempts: by_outcome.values().sum(),
        retries: counts_by(&retries, "reason").map(|(_, n)| n).sum(),
        by_outcome,
    }
}
