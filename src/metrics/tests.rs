use std::time::Duration;

use prometheus::proto::MetricFamily;
use serde_json::{json, Value};

use super::*;

const MODELS: [&str; 2] = ["gpt-4o-mini", "claude"];

fn metrics() -> Metrics {
    Metrics::new(MODELS)
}

/// The families of `metrics`' registry, decoded.
fn families(metrics: &Metrics) -> Vec<MetricFamily> {
    metrics.registry().gather()
}

/// The value of the series `name{labels}`: a counter's or gauge's value, a histogram's count.
/// A `caller` label left out of `labels` must be `anonymous`.
fn value(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let families = families(metrics);
    let family = families.iter().find(|family| family.name() == name)?;
    let metric = family.get_metric().iter().find(|metric| {
        metric.get_label().iter().all(|pair| {
            labels.iter().any(|&(name, _)| name == pair.name())
                || (pair.name() == "caller" && pair.value() == ANONYMOUS_CALLER)
        }) && labels
            .iter()
            .all(|&(name, value)| handles::label(metric, name) == value)
    })?;
    Some(match family.get_field_type() {
        prometheus::proto::MetricType::COUNTER => metric.get_counter().get_value(),
        prometheus::proto::MetricType::GAUGE => metric.get_gauge().get_value(),
        prometheus::proto::MetricType::HISTOGRAM => {
            metric.get_histogram().get_sample_count() as f64
        }
        other => panic!("unexpected metric type {other:?}"),
    })
}

/// How many series the registry exports.
fn series_count(metrics: &Metrics) -> usize {
    families(metrics)
        .iter()
        .map(|family| family.get_metric().len())
        .sum()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Asserts that every line of `expected` is a whole line of `metrics`' text exposition.
fn assert_rendered(metrics: &Metrics, expected: &[&str]) {
    let text = metrics.render();
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
}

/// Asserts that a percentile is within the summary's promised 1 % of `expected`.
fn assert_close(value: Option<f64>, expected: f64) {
    let value = value.unwrap_or(f64::NAN);
    assert!(
        (value - expected).abs() <= expected * 0.01,
        "{value} vs {expected}"
    );
}

#[test]
fn metrics_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Metrics>();
    fn assert_send<T: Send + 'static>() {}
    assert_send::<InFlight>();
}

#[test]
fn exact_counts_after_a_known_sequence() {
    let metrics = metrics();
    let chat = Endpoint::ChatCompletions;
    metrics.request_finished(chat, Some("gpt-4o-mini"), None, 200, ms(100), ms(90));
    metrics.request_finished(chat, Some("gpt-4o-mini"), None, 200, ms(200), ms(180));
    metrics.request_finished(
        chat,
        Some("not-configured"),
        None,
        404,
        ms(1),
        Duration::ZERO,
    );
    metrics.request_finished(chat, None, None, 401, ms(1), Duration::ZERO);
    metrics.request_finished(
        Endpoint::Completions,
        Some("claude"),
        None,
        502,
        ms(30),
        ms(29),
    );
    metrics.request_finished(Endpoint::Health, None, None, 200, ms(0), Duration::ZERO);
    for outcome in ["ok", "ok", "rate_limited", "server_error"] {
        metrics.upstream_attempt(outcome);
        metrics.upstream_duration(ms(10));
    }
    metrics.upstream_retry("rate_limited");
    for event in ["miss", "refresh", "hit", "hit", "hit"] {
        metrics.token_event(event);
    }
    metrics.extractor_path("primary");
    metrics.extractor_path("generation_text");
    metrics.usage("gpt-4o-mini", None, 12, 30);
    metrics.usage("gpt-4o-mini", None, 8, 10);
    metrics.usage("someone-else", None, 1, 2);

    let requests = |endpoint, model, class| {
        value(
            &metrics,
            "sfbridge_requests_total",
            &[
                ("endpoint", endpoint),
                ("model", model),
                ("status_class", class),
            ],
        )
    };
    assert_eq!(
        requests("chat_completions", "gpt-4o-mini", "2xx"),
        Some(2.0)
    );
    assert_eq!(requests("chat_completions", "unknown", "4xx"), Some(1.0));
    assert_eq!(requests("chat_completions", "none", "4xx"), Some(1.0));
    assert_eq!(requests("completions", "claude", "5xx"), Some(1.0));
    assert_eq!(requests("health", "none", "2xx"), Some(1.0));
    assert_eq!(
        requests("chat_completions", "claude", "2xx"),
        Some(0.0),
        "pre-created"
    );
    let errors = |endpoint, status| {
        value(
            &metrics,
            "sfbridge_errors_total",
            &[("endpoint", endpoint), ("status", status)],
        )
    };
    assert_eq!(errors("chat_completions", "404"), Some(1.0));
    assert_eq!(errors("chat_completions", "401"), Some(1.0));
    assert_eq!(errors("completions", "502"), Some(1.0));
    assert_eq!(
        errors("health", "other"),
        None,
        "errors are created on first use"
    );
    let by_endpoint = |name, endpoint| value(&metrics, name, &[("endpoint", endpoint)]);
    assert_eq!(
        by_endpoint("sfbridge_request_duration_seconds", "chat_completions"),
        Some(4.0)
    );
    assert_eq!(
        by_endpoint("sfbridge_overhead_seconds", "completions"),
        Some(1.0)
    );
    assert_eq!(
        by_endpoint("sfbridge_request_duration_seconds", "metrics"),
        Some(0.0)
    );
    assert_eq!(
        value(&metrics, "sfbridge_upstream_duration_seconds", &[]),
        Some(4.0)
    );
    let one = |name, label, value_| value(&metrics, name, &[(label, value_)]);
    assert_eq!(
        one("sfbridge_upstream_attempts_total", "outcome", "ok"),
        Some(2.0)
    );
    assert_eq!(
        one(
            "sfbridge_upstream_attempts_total",
            "outcome",
            "rate_limited"
        ),
        Some(1.0)
    );
    assert_eq!(
        one("sfbridge_upstream_attempts_total", "outcome", "timeout"),
        Some(0.0)
    );
    assert_eq!(
        one("sfbridge_upstream_retries_total", "reason", "rate_limited"),
        Some(1.0)
    );
    assert_eq!(one("sfbridge_token_cache_total", "event", "hit"), Some(3.0));
    assert_eq!(
        one("sfbridge_token_cache_total", "event", "refresh_failure"),
        Some(0.0)
    );
    assert_eq!(
        one("sfbridge_extractor_paths_total", "path", "generation_text"),
        Some(1.0)
    );
    assert_eq!(
        one("sfbridge_prompt_tokens_total", "model", "gpt-4o-mini"),
        Some(20.0)
    );
    assert_eq!(
        one("sfbridge_completion_tokens_total", "model", "gpt-4o-mini"),
        Some(40.0)
    );
    assert_eq!(
        one("sfbridge_completion_tokens_total", "model", "unknown"),
        Some(2.0)
    );
    assert_eq!(
        one("sfbridge_prompt_tokens_total", "model", "claude"),
        Some(0.0)
    );

    // The same numbers, as the text exposition shows them.
    assert_rendered(
        &metrics,
        &[
            "# TYPE sfbridge_requests_total counter",
            r#"sfbridge_requests_total{caller="anonymous",endpoint="chat_completions",model="gpt-4o-mini",status_class="2xx"} 2"#,
            r#"sfbridge_requests_total{caller="anonymous",endpoint="health",model="none",status_class="2xx"} 1"#,
            r#"sfbridge_errors_total{endpoint="completions",status="502"} 1"#,
            "# TYPE sfbridge_request_duration_seconds histogram",
            r#"sfbridge_request_duration_seconds_bucket{endpoint="chat_completions",le="0.25"} 4"#,
            r#"sfbridge_request_duration_seconds_count{endpoint="chat_completions"} 4"#,
            r#"sfbridge_overhead_seconds_bucket{endpoint="chat_completions",le="0.00001"} 0"#,
            "sfbridge_upstream_duration_seconds_count 4",
            r#"sfbridge_upstream_attempts_total{outcome="ok"} 2"#,
            r#"sfbridge_token_cache_total{event="hit"} 3"#,
            r#"sfbridge_extractor_paths_total{path="primary"} 1"#,
            r#"sfbridge_prompt_tokens_total{caller="anonymous",model="gpt-4o-mini"} 20"#,
            r#"sfbridge_in_flight_requests{endpoint="chat_completions"} 0"#,
        ],
    );
    // Every metric family carries help text and follows the naming rules.
    for family in families(&metrics) {
        let name = family.name();
        assert!(name.starts_with("sfbridge_"), "{name}");
        assert!(!family.help().is_empty(), "{name}");
        match family.get_field_type() {
            prometheus::proto::MetricType::COUNTER => assert!(name.ends_with("_total"), "{name}"),
            prometheus::proto::MetricType::HISTOGRAM => {
                assert!(name.ends_with("_seconds"), "{name}")
            }
            _ => {}
        }
    }
}

#[test]
fn unknown_model_names_never_create_series() {
    let metrics = metrics();
    let before = series_count(&metrics);
    let mut rng = fastrand::Rng::with_seed(42);
    let mut names = Vec::new();
    for _ in 0..1_000 {
        let name: String = (0..rng.usize(1..40)).map(|_| rng.char(..)).collect();
        let status = [200, 400, 404, 429, 500, 503][rng.usize(..6)];
        let endpoint = if rng.bool() {
            Endpoint::ChatCompletions
        } else {
            Endpoint::Completions
        };
        metrics.request_finished(endpoint, Some(&name), None, status, ms(5), ms(4));
        metrics.usage(&name, None, 1, 1);
        metrics.usage_details(&name, 1, 1);
        names.push(name);
    }
    // Error series by code are created on first use, from the bounded set of codes; discount them.
    let error_series = families(&metrics)
        .iter()
        .find(|family| family.name() == "sfbridge_errors_total")
        .map_or(0, |family| family.get_metric().len());
    assert!(error_series <= 2 * 5);
    assert_eq!(series_count(&metrics) - error_series, before);
    let text = metrics.render();
    assert!(names
        .iter()
        .filter(|name| name.len() > 3)
        .all(|name| !text.contains(&format!("model=\"{name}\""))));
    assert_eq!(
        value(
            &metrics,
            "sfbridge_prompt_tokens_total",
            &[("model", "unknown")]
        ),
        Some(1000.0)
    );
}

#[test]
fn with_registry_shares_the_applications_registry() {
    let registry = Registry::new();
    let app_requests =
        prometheus::IntCounter::new("myapp_requests_total", "The app's own.").unwrap();
    registry.register(Box::new(app_requests.clone())).unwrap();
    app_requests.inc();

    let metrics = Metrics::with_registry(registry.clone(), MODELS).unwrap();
    metrics.token_event("hit");
    let text = metrics.render();
    assert!(
        text.lines().any(|l| l == "myapp_requests_total 1"),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l == r#"sfbridge_token_cache_total{event="hit"} 1"#));
    // The application's own scrape sees ours.
    assert!(registry
        .gather()
        .iter()
        .any(|family| family.name() == "sfbridge_token_cache_total"));
}

#[test]
fn a_second_bridge_in_one_registry_is_an_error() {
    let registry = Registry::new();
    let _first = Metrics::with_registry(registry.clone(), MODELS).unwrap();
    let second = Metrics::with_registry(registry, MODELS);
    assert!(
        matches!(second, Err(prometheus::Error::AlreadyReg)),
        "{second:?}"
    );
}

#[test]
fn a_failed_with_registry_leaves_the_registry_as_it_was() {
    let registry = Registry::new();
    // An application metric that happens to take one of our later names.
    let taken = prometheus::IntCounterVec::new(
        prometheus::Opts::new("sfbridge_token_cache_total", "Not ours."),
        &["event"],
    )
    .unwrap();
    registry.register(Box::new(taken.clone())).unwrap();
    taken.with_label_values(&["x"]).inc();
    assert!(Metrics::with_registry(registry.clone(), MODELS).is_err());
    // `sfbridge_upstream_duration_seconds` (a plain histogram, exported even when empty) is
    // registered before the colliding name, so it would show here without the rollback.
    let names: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, ["sfbridge_token_cache_total"]);
    // Our families registered before the collision were removed, so the application's own
    // metrics are registered and scraped exactly as before.
    assert_eq!(registry.gather()[0].get_metric().len(), 1);
}

#[test]
fn separate_instances_share_nothing() {
    let (a, b) = (metrics(), metrics());
    a.token_event("hit");
    assert_eq!(
        value(&a, "sfbridge_token_cache_total", &[("event", "hit")]),
        Some(1.0)
    );
    assert_eq!(
        value(&b, "sfbridge_token_cache_total", &[("event", "hit")]),
        Some(0.0)
    );
    // Clones share.
    a.clone().token_event("hit");
    assert_eq!(a.performance().token_cache.hits, 2);
}

#[test]
fn in_flight_guard_counts_until_dropped() {
    let metrics = metrics();
    let gauge = |endpoint| {
        value(
            &metrics,
            "sfbridge_in_flight_requests",
            &[("endpoint", endpoint)],
        )
    };
    let first = metrics.request_started(Endpoint::ChatCompletions);
    let second = metrics.request_started(Endpoint::ChatCompletions);
    let health = metrics.request_started(Endpoint::Health);
    assert_eq!(gauge("chat_completions"), Some(2.0));
    assert_eq!(gauge("health"), Some(1.0));
    assert_eq!(metrics.performance().requests.in_flight, 3);
    drop(first);
    // The guard can travel to another thread with the response.
    std::thread::spawn(move || drop(second)).join().unwrap();
    drop(health);
    assert_eq!(gauge("chat_completions"), Some(0.0));
    assert_eq!(metrics.performance().requests.in_flight, 0);
}

#[test]
fn overhead_never_goes_negative() {
    let metrics = metrics();
    metrics.request_finished(
        Endpoint::ChatCompletions,
        Some("claude"),
        None,
        200,
        ms(10),
        ms(12),
    );
    let summary = metrics.performance();
    assert_eq!(summary.latency_ms.overhead.p50, Some(0.0));
    assert!(metrics.render().contains(
        r#"sfbridge_overhead_seconds_bucket{endpoint="chat_completions",le="0.00001"} 1"#
    ));
}

#[test]
fn unexpected_static_labels_still_count() {
    let metrics = metrics();
    metrics.upstream_attempt("brand_new_outcome");
    metrics.extractor_path("some_new_fallback");
    assert_eq!(
        value(
            &metrics,
            "sfbridge_upstream_attempts_total",
            &[("outcome", "brand_new_outcome")]
        ),
        Some(1.0)
    );
    let summary = metrics.performance();
    assert_eq!(summary.upstream.attempts, 1);
    assert_eq!(
        summary.extractor.fallbacks.get("some_new_fallback"),
        Some(&1)
    );
}

#[test]
fn performance_summary_when_nothing_happened() {
    let summary = serde_json::to_value(metrics().performance()).unwrap();
    let zero_endpoints: Value = Endpoint::ALL
        .iter()
        .map(|e| (e.as_str().to_owned(), json!(0)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let no_latency = json!({"samples": 0, "p50": null, "p95": null, "p99": null});
    let uptime = summary["uptime_secs"].clone();
    assert!(uptime.is_u64());
    assert_eq!(
        summary,
        json!({
            "uptime_secs": uptime,
            "requests": {"total": 0, "errors": 0, "in_flight": 0, "by_endpoint": zero_endpoints},
            "token_cache": {"hits": 0, "misses": 0, "refreshes": 0, "refresh_failures": 0, "hit_rate": null},
            "extractor": {
                "primary": 0,
                "fallbacks": {
                    "chat_generations": 0, "generated_text": 0, "generation_text": 0,
                    "generations_array": 0, "openai_choices": 0, "snake_case": 0
                },
                "none": 0,
                "primary_pct": null,
                "fallback_pct": null
            },
            "upstream": {
                "attempts": 0,
                "retries": 0,
                "by_outcome": {
                    "busy": 0, "client_error": 0, "connect_error": 0, "connection_lost_after_send": 0,
                    "connection_reset": 0,
                    "failed": 0, "ok": 0, "rate_limited": 0, "server_error": 0, "timeout": 0,
                    "too_large": 0, "unauthorized": 0, "unavailable": 0
                }
            },
            "latency_ms": {
                "total": no_latency,
                "upstream": no_latency,
                "overhead": no_latency,
                "time_to_first_byte": no_latency
            }
        })
    );
}

#[test]
fn performance_summary_after_traffic() {
    let metrics = metrics();
    for i in 1..=100u64 {
        // Total i*10 ms, of which upstream i*10 ms − 1 ms: overhead is always 1 ms.
        metrics.request_finished(
            Endpoint::ChatCompletions,
            Some("claude"),
            None,
            200,
            ms(i * 10),
            ms(i * 10 - 1),
        );
    }
    metrics.request_finished(
        Endpoint::Completions,
        Some("claude"),
        None,
        503,
        ms(5),
        ms(4),
    );
    metrics.request_finished(
        Endpoint::Completions,
        None,
        None,
        400,
        ms(1),
        Duration::ZERO,
    );
    // Not in the latency percentiles: not an OpenAI endpoint.
    metrics.request_finished(
        Endpoint::Health,
        None,
        None,
        200,
        Duration::from_secs(100),
        Duration::ZERO,
    );
    for event in ["miss", "refresh", "hit", "hit", "hit", "refresh_failure"] {
        metrics.token_event(event);
    }
    for path in ["primary", "primary", "primary", "snake_case", "none"] {
        metrics.extractor_path(path);
    }
    metrics.upstream_attempt("ok");
    metrics.upstream_attempt("busy");
    metrics.upstream_retry("busy");

    let summary = serde_json::to_value(metrics.performance()).unwrap();
    assert_eq!(summary["requests"]["total"], 103);
    assert_eq!(summary["requests"]["errors"], 2);
    assert_eq!(summary["requests"]["by_endpoint"]["chat_completions"], 100);
    assert_eq!(summary["requests"]["by_endpoint"]["completions"], 2);
    assert_eq!(summary["requests"]["by_endpoint"]["health"], 1);
    assert_eq!(summary["requests"]["by_endpoint"]["models"], 0);
    assert_eq!(
        summary["token_cache"],
        json!({"hits": 3, "misses": 1, "refreshes": 1, "refresh_failures": 1, "hit_rate": 0.75})
    );
    assert_eq!(summary["extractor"]["primary"], 3);
    assert_eq!(summary["extractor"]["none"], 1);
    assert_eq!(summary["extractor"]["fallbacks"]["snake_case"], 1);
    assert_eq!(summary["extractor"]["primary_pct"], 60.0);
    assert_eq!(summary["extractor"]["fallback_pct"], 20.0);
    assert_eq!(summary["upstream"]["attempts"], 2);
    assert_eq!(summary["upstream"]["retries"], 1);
    assert_eq!(summary["upstream"]["by_outcome"]["busy"], 1);

    let latency = &summary["latency_ms"];
    assert_eq!(latency["total"]["samples"], 102);
    let close = |value: &Value, expected| assert_close(value.as_f64(), expected);
    // 102 samples: 1, 5, 10, 20, ..., 1000 ms. Nearest rank 51 is 490 ms, 97 is 950, 101 is 990.
    close(&latency["total"]["p50"], 490.0);
    close(&latency["total"]["p95"], 950.0);
    close(&latency["total"]["p99"], 990.0);
    close(&latency["overhead"]["p50"], 1.0);
    close(&latency["overhead"]["p99"], 1.0);
    close(&latency["upstream"]["p50"], 489.0);

    // The typed value round-trips, for clients that read the endpoint with this crate.
    let typed: PerformanceSummary = serde_json::from_value(summary).unwrap();
    assert_eq!(typed.requests.total, 103);
}

#[test]
fn time_to_first_byte_per_streaming_endpoint() {
    let metrics = metrics();
    // Pre-created for the endpoints that can stream, and only those.
    let count = |endpoint| {
        value(
            &metrics,
            "sfbridge_time_to_first_byte_seconds",
            &[("endpoint", endpoint)],
        )
    };
    assert_eq!(count("chat_completions"), Some(0.0));
    assert_eq!(count("completions"), Some(0.0));
    assert_eq!(count("health"), None);

    for millis in [3, 40, 40, 900] {
        metrics.first_byte(Endpoint::ChatCompletions, ms(millis));
    }
    metrics.first_byte(Endpoint::Completions, Duration::from_secs(45));
    assert_rendered(
        &metrics,
        &[
            "# TYPE sfbridge_time_to_first_byte_seconds histogram",
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="chat_completions",le="0.001"} 0"#,
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="chat_completions",le="0.005"} 1"#,
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="chat_completions",le="0.05"} 3"#,
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="chat_completions",le="1"} 4"#,
            r#"sfbridge_time_to_first_byte_seconds_count{endpoint="chat_completions"} 4"#,
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="completions",le="30"} 0"#,
            r#"sfbridge_time_to_first_byte_seconds_bucket{endpoint="completions",le="60"} 1"#,
        ],
    );

    // An endpoint that cannot stream still counts in /metrics, but stays out of the summary.
    metrics.first_byte(Endpoint::Health, ms(1));
    assert_eq!(count("health"), Some(1.0));
    let first_byte = metrics.performance().latency_ms.time_to_first_byte;
    assert_eq!(first_byte.samples, 5);
    // 5 samples: 3, 40, 40, 900, 45 000 ms. Nearest rank 3 is 40 ms, 5 is 45 s.
    assert_close(first_byte.p50, 40.0);
    assert_close(first_byte.p99, 45_000.0);
    // The other latencies measure finished requests, which a first byte is not.
    assert_eq!(metrics.performance().latency_ms.total.samples, 0);
}

#[test]
fn surface_requests_by_status_class() {
    let metrics = metrics();
    let count = |surface, class| {
        value(
            &metrics,
            "sfbridge_surface_requests_total",
            &[("surface", surface), ("status_class", class)],
        )
    };
    for surface in ["einstein", "responses", "bedrock"] {
        for class in ["2xx", "4xx", "5xx"] {
            assert_eq!(count(surface, class), Some(0.0), "{surface} {class}");
        }
        assert_eq!(count(surface, "3xx"), None, "created on first use");
    }

    metrics.surface_request("einstein", 200);
    metrics.surface_request("einstein", 201);
    metrics.surface_request("bedrock", 429);
    metrics.surface_request("responses", 502);
    metrics.surface_request("responses", 304);
    // A surface this module does not know yet counts all the same.
    metrics.surface_request("vertex", 200);
    assert_rendered(
        &metrics,
        &[
            "# TYPE sfbridge_surface_requests_total counter",
            r#"sfbridge_surface_requests_total{status_class="2xx",surface="einstein"} 2"#,
            r#"sfbridge_surface_requests_total{status_class="4xx",surface="einstein"} 0"#,
            r#"sfbridge_surface_requests_total{status_class="4xx",surface="bedrock"} 1"#,
            r#"sfbridge_surface_requests_total{status_class="5xx",surface="responses"} 1"#,
            r#"sfbridge_surface_requests_total{status_class="3xx",surface="responses"} 1"#,
            r#"sfbridge_surface_requests_total{status_class="2xx",surface="vertex"} 1"#,
        ],
    );
    assert_eq!(count("vertex", "4xx"), None, "only the class that happened");
}

#[test]
fn usage_details_by_model() {
    let metrics = metrics();
    for name in [
        "sfbridge_cached_tokens_total",
        "sfbridge_reasoning_tokens_total",
    ] {
        for model in ["gpt-4o-mini", "claude", "unknown"] {
            assert_eq!(
                value(&metrics, name, &[("model", model)]),
                Some(0.0),
                "{name} {model}"
            );
        }
        // Like the prompt tokens: "none" is for requests without a model, which report no usage.
        assert_eq!(value(&metrics, name, &[("model", "none")]), None, "{name}");
    }

    metrics.usage_details("gpt-4o-mini", 1024, 0);
    metrics.usage_details("gpt-4o-mini", 512, 7);
    metrics.usage_details("claude", 0, 300);
    metrics.usage_details("not-configured", 5, 6);
    assert_rendered(
        &metrics,
        &[
            "# TYPE sfbridge_cached_tokens_total counter",
            r#"sfbridge_cached_tokens_total{model="gpt-4o-mini"} 1536"#,
            r#"sfbridge_cached_tokens_total{model="claude"} 0"#,
            r#"sfbridge_cached_tokens_total{model="unknown"} 5"#,
            "# TYPE sfbridge_reasoning_tokens_total counter",
            r#"sfbridge_reasoning_tokens_total{model="gpt-4o-mini"} 7"#,
            r#"sfbridge_reasoning_tokens_total{model="claude"} 300"#,
            r#"sfbridge_reasoning_tokens_total{model="unknown"} 6"#,
        ],
    );
    assert!(!metrics.render().contains("not-configured"));
}

#[test]
fn debug_names_the_models() {
    assert!(format!("{:?}", metrics()).contains("gpt-4o-mini"));
}

#[test]
fn callers_and_models_added_later_get_their_series() {
    let metrics = metrics();
    metrics.request_finished(
        Endpoint::ChatCompletions,
        Some("gpt-4o-mini"),
        Some("alice"),
        200,
        ms(5),
        ms(4),
    );
    // Not yet a caller: counted as anonymous, with no series of its own.
    assert!(!metrics.render().contains(r#"caller="alice""#));
    metrics.add_labels(["gpt-5"], ["alice", "bob"]).unwrap();
    metrics.request_finished(
        Endpoint::ChatCompletions,
        Some("gpt-5"),
        Some("alice"),
        200,
        ms(5),
        ms(4),
    );
    metrics.request_finished(
        Endpoint::ChatCompletions,
        Some("gpt-4o-mini"),
        Some("unnamed"),
        200,
        ms(5),
        ms(4),
    );
    metrics.usage("gpt-5", Some("alice"), 3, 4);
    metrics.rate_limited("bob");
    metrics.config_reload("ok");
    assert_rendered(
        &metrics,
        &[
            r#"sfbridge_requests_total{caller="alice",endpoint="chat_completions",model="gpt-5",status_class="2xx"} 1"#,
            r#"sfbridge_requests_total{caller="anonymous",endpoint="chat_completions",model="gpt-4o-mini",status_class="2xx"} 1"#,
            r#"sfbridge_requests_total{caller="unnamed",endpoint="chat_completions",model="gpt-4o-mini",status_class="2xx"} 1"#,
            r#"sfbridge_requests_total{caller="bob",endpoint="messages",model="gpt-5",status_class="4xx"} 0"#,
            r#"sfbridge_prompt_tokens_total{caller="alice",model="gpt-5"} 3"#,
            r#"sfbridge_completion_tokens_total{caller="alice",model="gpt-5"} 4"#,
            r#"sfbridge_rate_limited_total{caller="bob"} 1"#,
            r#"sfbridge_rate_limited_total{caller="alice"} 0"#,
            r#"sfbridge_config_reloads_total{result="ok"} 1"#,
            r#"sfbridge_config_reloads_total{result="refused"} 0"#,
        ],
    );
    // Adding what is there changes nothing; the earlier counts stay.
    metrics.add_labels(["gpt-5"], ["alice"]).unwrap();
    metrics.add_labels(["o3"], Vec::<String>::new()).unwrap();
    assert_rendered(
        &metrics,
        &[
            r#"sfbridge_requests_total{caller="alice",endpoint="chat_completions",model="gpt-5",status_class="2xx"} 1"#,
        ],
    );
}
