//! Observability end to end, through each mount: exact counters in `/metrics` and figures in
//! `/metrics/performance` after a known sequence of requests, the exposition checked by a parser,
//! bounded series under random model names, `/ready` following the token endpoint,
//! `x-request-id` on every answer, and `x-salesforce-request-id` on every answer given after the
//! mock's.
//!
//! Each test starts its own gateway, so every value asserted is absolute.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http::Method;
use prometheus_parse::{LineInfo, Scrape, Value as Sample};
use serde_json::{json, Value};
use sf_models_bridge::metrics::PerformanceSummary;
use sf_models_bridge::mock::{Fault, ResponseShape, TokenFault, MOCK_CLIENT_SECRET};

use common::{
    chat, http, Gateway, Mount, Setup, BEDROCK_MODEL, CALLER_KEY, CHAT_MODEL, ROUTED_MODELS,
};

for_each_mount!(
    a_known_sequence_gives_exact_counters,
    random_unknown_models_add_no_series,
    ready_follows_the_token_endpoint,
    every_answer_carries_a_request_id,
    every_answer_after_salesforce_carries_its_request_id,
);

/// The counter families whose every series the sequence test checks.
const COUNTERS: [&str; 7] = [
    "sfbridge_requests_total",
    "sfbridge_errors_total",
    "sfbridge_upstream_attempts_total",
    "sfbridge_upstream_retries_total",
    "sfbridge_token_cache_total",
    "sfbridge_extractor_paths_total",
    "sfbridge_in_flight_requests",
];

/// A series: metric name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// One answer, read whole.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, self.text))
    }

    fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {}: {}", self.status, self.text))
            .to_str()
            .expect("printable x-request-id")
    }
}

/// Sends one request. `id`, when given, is sent as `x-request-id` and must come back unchanged;
/// otherwise the answer must carry a generated one (32 hex digits).
async fn call(
    gateway: &Gateway,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
    id: Option<&str>,
) -> Reply {
    let mut request = http().request(method, gateway.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.expect("request");
    let reply = Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    };
    match id {
        Some(id) => assert_eq!(reply.request_id(), id, "{path}: the caller's id comes back"),
        None => assert_generated(reply.request_id()),
    }
    reply
}

fn assert_generated(id: &str) {
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "generated id {id:?}"
    );
}

async fn get(gateway: &Gateway, path: &str, id: Option<&str>) -> Reply {
    call(gateway, Method::GET, path, None, None, id).await
}

/// A POST without a key or an id.
async fn post_bare(gateway: &Gateway, path: &str, body: &Value) -> Reply {
    call(gateway, Method::POST, path, Some(body), None, None).await
}

/// A POST with the caller's key and our own request id.
async fn post(gateway: &Gateway, path: &str, body: &Value, id: &str) -> Reply {
    call(
        gateway,
        Method::POST,
        path,
        Some(body),
        Some(CALLER_KEY),
        Some(id),
    )
    .await
}

/// A gateway that demands `CALLER_KEY`, so the key is really in play.
fn keyed() -> Setup {
    Setup::default().sections(&format!("[auth]\napi_keys = [\"{CALLER_KEY}\"]"))
}

// ---------------------------------------------------------------------------------------------
// The exposition: checked line by line against the text format, then parsed.
// ---------------------------------------------------------------------------------------------

/// A parsed, validated `/metrics` body.
struct Exposition {
    /// Counter, gauge and histogram `_count` values, by series.
    values: BTreeMap<Series, f64>,
    /// Every series the scrape exports (a histogram is one series per label set).
    series: BTreeSet<Series>,
}

impl Exposition {
    /// Validates `text` and parses it. Panics on anything a Prometheus server would reject.
    fn parse(text: &str) -> Self {
        check_text_format(text);
        check_with_promtool(text);
        let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("parses");
        let mut values = BTreeMap::new();
        let mut series = BTreeSet::new();
        for sample in &scrape.samples {
            let labels: BTreeMap<String, String> = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let key = (sample.metric.clone(), labels);
            match &sample.value {
                Sample::Counter(v) | Sample::Gauge(v) => {
                    assert!(values.insert(key.clone(), *v).is_none(), "{key:?} twice");
                    series.insert(key);
                }
                Sample::Histogram(buckets) => {
                    // Cumulative: never decreasing, ending with +Inf.
                    assert!(buckets
                        .windows(2)
                        .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count));
                    let last = buckets.last().expect("buckets");
                    assert!(last.less_than.is_infinite(), "{key:?} has no +Inf bucket");
                    series.insert(key);
                }
                // `_sum` and `_count` of histograms: the parser leaves them untyped.
                Sample::Untyped(v) => {
                    let name = &sample.metric;
                    assert!(
                        name.ends_with("_sum") || name.ends_with("_count"),
                        "untyped sample {name}"
                    );
                    values.insert(key, *v);
                }
                Sample::Summary(_) => panic!("no summaries are exported: {key:?}"),
            }
        }
        // Each histogram's +Inf bucket equals its `_count`.
        for sample in &scrape.samples {
            if let Sample::Histogram(buckets) = &sample.value {
                let labels = sample.labels.iter().map(|(k, v)| (k.clone(), v.clone()));
                let count = (format!("{}_count", sample.metric), labels.collect());
                let inf = buckets.last().map(|b| b.count);
                assert_eq!(inf, values.get(&count).copied(), "{count:?}");
            }
        }
        Self { values, series }
    }

    /// The value of the series with exactly these labels; panics if it is not exported.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series(name, labels);
        *self
            .values
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is not exported"))
    }

    /// The value of `series`; panics if it is not exported.
    fn get_series(&self, series: &Series) -> f64 {
        *self
            .values
            .get(series)
            .unwrap_or_else(|| panic!("{series:?} is not exported"))
    }

    /// Every series of the counter (or gauge) family `name`.
    fn family(&self, name: &str) -> impl Iterator<Item = (&Series, f64)> + '_ {
        let name = name.to_owned();
        self.values
            .iter()
            .filter(move |((metric, _), _)| *metric == name)
            .map(|(series, value)| (series, *value))
    }

    /// Asserts that the families in [`COUNTERS`] hold exactly `expected`, every other series 0.
    fn assert_counters(&self, expected: &[(Series, f64)]) {
        let expected: BTreeMap<&Series, f64> = expected.iter().map(|(k, v)| (k, *v)).collect();
        for key in expected.keys() {
            assert!(self.values.contains_key(*key), "{key:?} is not exported");
        }
        let mut wrong = Vec::new();
        for family in COUNTERS {
            for (key, value) in self.family(family) {
                let want = expected.get(key).copied().unwrap_or(0.0);
                if value != want {
                    wrong.push(format!("{key:?}: {value}, expected {want}"));
                }
            }
        }
        assert!(wrong.is_empty(), "counters differ:\n{}", wrong.join("\n"));
    }
}

/// `sfbridge_requests_total{endpoint, model, caller, status_class}` of a request that presented
/// no key (the open endpoints, gateways without keys, refused keys): its caller is anonymous.
fn requests(endpoint: &str, model: &str, class: &str) -> Series {
    requests_of("anonymous", endpoint, model, class)
}

/// The same, for a request with a key of `[auth] api_keys`: its caller is unnamed.
fn keyed_requests(endpoint: &str, model: &str, class: &str) -> Series {
    requests_of("unnamed", endpoint, model, class)
}

fn requests_of(caller: &str, endpoint: &str, model: &str, class: &str) -> Series {
    let labels = [
        ("caller", caller),
        ("endpoint", endpoint),
        ("model", model),
        ("status_class", class),
    ];
    series("sfbridge_requests_total", &labels)
}

/// `sfbridge_errors_total{endpoint, status}`.
fn errors(endpoint: &str, status: &str) -> Series {
    series(
        "sfbridge_errors_total",
        &[("endpoint", endpoint), ("status", status)],
    )
}

/// A series of a family with one label, such as `sfbridge_token_cache_total{event="hit"}`.
fn one(name: &str, label: &str, value: &str) -> Series {
    series(name, &[(label, value)])
}

const ATTEMPTS: &str = "sfbridge_upstream_attempts_total";
const RETRIES: &str = "sfbridge_upstream_retries_total";
const TOKENS: &str = "sfbridge_token_cache_total";
const PATHS: &str = "sfbridge_extractor_paths_total";
const IN_FLIGHT: &str = "sfbridge_in_flight_requests";

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    (name.to_owned(), labels)
}

/// The text format, strictly: only `# HELP` and `# TYPE` comments, one of each per family before
/// its samples, samples of a family together, valid names, properly quoted and escaped label
/// values, float values, no duplicate series, and our naming rules (`sfbridge_` prefix, counters
/// ending in `_total`, histograms in `_seconds`).
fn check_text_format(text: &str) {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        // The parsing crate's own classification: nothing may be skipped as unreadable.
        let info = LineInfo::parse(line);
        assert!(
            !matches!(info, LineInfo::Ignored | LineInfo::Empty),
            "unreadable line {line:?}"
        );
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.trim().is_empty(), "{line}");
            assert!(helps.insert(name.to_owned()), "second HELP for {name}");
            assert!(
                !finished.contains(name) && !types.contains_key(name),
                "{line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "{line}");
            assert!(name.starts_with("sfbridge_"), "{name} lacks the prefix");
            match kind {
                "counter" => assert!(name.ends_with("_total"), "counter {name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "histogram {name}"),
                "gauge" => {}
                other => panic!("unexpected type {other} for {name}"),
            }
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
            if let Some(previous) = current.replace(name.to_owned()) {
                finished.insert(previous);
            }
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line:?}");
        let (name, labels, value) = split_sample(line);
        let family = current.as_deref().expect("a sample before any TYPE");
        let kind = &types[family];
        let own = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(family)),
            _ => name == family,
        };
        assert!(own, "{name} inside the {family} family");
        assert!(helps.contains(family), "{family} has no HELP");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value {v:?} in {line}")),
        };
        assert!(value.is_finite() && value >= 0.0, "{line}");
        if kind == "counter" || name.ends_with("_count") || name.ends_with("_bucket") {
            assert_eq!(value.fract(), 0.0, "a count is whole: {line}");
        }
        let labels = parse_labels(labels, line);
        assert!(
            seen.insert(format!("{name}{labels:?}")),
            "duplicate series {line}"
        );
    }
    assert_eq!(helps.len(), types.len(), "HELP and TYPE pair up");
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{labels} value` → (name, labels without braces, value). No timestamps are expected.
fn split_sample(line: &str) -> (&str, &str, &str) {
    let (head, value) = line.rsplit_once(' ').expect("sample value");
    match head.split_once('{') {
        Some((name, rest)) => {
            let labels = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
            assert!(valid_name(name), "{line}");
            (name, labels, value)
        }
        None => {
            assert!(valid_name(head), "{line}");
            (head, "", value)
        }
    }
}

/// `a="x",b="y\"z"` → sorted pairs, unescaped; panics on bad syntax or a repeated label name.
fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
        assert!(
            valid_name(name) && !name.starts_with("__"),
            "label {name} in {line}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => panic!("raw newline in {line}"),
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        assert!(labels.insert(name.to_owned(), value).is_none(), "{line}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Prometheus' own checker and linter, where it is installed (Debian: `apt-get install
/// prometheus`); the checks above run everywhere.
fn check_with_promtool(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn scrape(gateway: &Gateway) -> (String, Exposition) {
    let reply = get(gateway, "/metrics", None).await;
    assert_eq!(reply.status, 200);
    let content_type = reply.headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let parsed = Exposition::parse(&reply.text);
    (reply.text, parsed)
}

async fn performance(gateway: &Gateway) -> (String, PerformanceSummary) {
    let reply = get(gateway, "/metrics/performance", None).await;
    assert_eq!(reply.status, 200);
    let summary = serde_json::from_str(&reply.text).expect("the summary's schema");
    (reply.text, summary)
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// Usage counts the bridge returned, to add up per model.
fn usage(body: &Value) -> (f64, f64) {
    let usage = &body["usage"];
    let count = |field: &str| usage[field].as_u64().expect("usage count") as f64;
    (count("prompt_tokens"), count("completion_tokens"))
}

/// The last usage object of an event stream.
fn stream_usage(text: &str) -> (f64, f64) {
    let last = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<Value>(data).expect("event JSON"))
        .filter(|event| event["usage"].is_object())
        .last()
        .expect("a usage chunk");
    usage(&last)
}

/// The sequence, and what it must leave in the metrics:
///
/// | step | answer | upstream attempts | token cache |
/// |---|---|---|---|
/// | `/health` | 200 | | |
/// | `/ready`, no token yet | 200 | | miss, refresh |
/// | chat | 200 | ok | hit |
/// | chat after one 429 | 200 | rate_limited (retried), ok | hit |
/// | chat after the tokens were revoked | 200 | unauthorized (resent), ok | hit, miss, refresh |
/// | chat, unknown model | 404 | | |
/// | chat, `snake_case` answer | 200 | ok | hit |
/// | completion, `generation.text` answer | 200 | ok | hit |
/// | chat, streamed | 200 | ok | hit |
/// | chat without a key | 401 | | |
/// | `/v1/models` | 200 | | |
async fn a_known_sequence_gives_exact_counters(mount: Mount) {
    let gateway = Gateway::start_with(mount, keyed()).await;
    let upstream = gateway.upstream();
    let chat_path = "/v1/chat/completions";
    let mut tokens: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut add = |model, (prompt, completion): (f64, f64)| {
        let entry = tokens.entry(model).or_insert((0.0, 0.0));
        entry.0 += prompt;
        entry.1 += completion;
    };

    // /health, then /ready, which fetches the first token (miss, refresh).
    let health = get(&gateway, "/health", Some("seq-health")).await;
    assert_eq!(health.status, 200);
    let ready = get(&gateway, "/ready", Some("seq-ready")).await;
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({"status": "ready"}))
    );

    // Three successes on the cached token (hits): plain, after one 429, after a 401.
    let ok = post(&gateway, chat_path, &chat(CHAT_MODEL, "one"), "seq-1").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    add(CHAT_MODEL, usage(&ok.json()));
    let limited = Fault::Status {
        status: 429,
        retry_after_secs: None,
    };
    upstream.inject(limited, 1);
    let retried = post(&gateway, chat_path, &chat(CHAT_MODEL, "two"), "seq-2").await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    add(CHAT_MODEL, usage(&retried.json()));
    upstream.revoke_tokens();
    let refreshed = post(&gateway, chat_path, &chat(CHAT_MODEL, "three"), "seq-3").await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    add(CHAT_MODEL, usage(&refreshed.json()));

    // An unknown model: 404, no token wanted, nothing sent.
    let unknown = post(&gateway, chat_path, &chat("gpt-obs-unknown", "x"), "seq-4").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.json()["error"]["code"], "model_not_found");

    // Two fallback shapes: a chat answer in snake_case, a text answer as `generation.text`.
    upstream.set_shape(ResponseShape::SnakeCase);
    let snake = post(&gateway, chat_path, &chat(BEDROCK_MODEL, "four"), "seq-5").await;
    assert_eq!(snake.status, 200, "{}", snake.text);
    assert_eq!(
        snake.json()["choices"][0]["message"]["content"],
        "Echo: four"
    );
    add(BEDROCK_MODEL, usage(&snake.json()));
    upstream.set_shape(ResponseShape::GenerationText);
    let text = json!({"model": "gpt-4o", "prompt": "five"});
    let legacy = post(&gateway, "/v1/completions", &text, "seq-6").await;
    assert_eq!(legacy.status, 200, "{}", legacy.text);
    assert_eq!(legacy.json()["choices"][0]["text"], "Echo: five");
    add("gpt-4o", usage(&legacy.json()));

    // A streamed success in the documented shape.
    upstream.set_shape(ResponseShape::Documented);
    let mut streamed = chat(CHAT_MODEL, "six");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let stream = post(&gateway, chat_path, &streamed, "seq-7").await;
    assert_eq!(stream.status, 200, "{}", stream.text);
    add(CHAT_MODEL, stream_usage(&stream.text));

    // No key: refused before the body is read. Then the model list.
    let bare = post_bare(&gateway, chat_path, &chat(CHAT_MODEL, "x")).await;
    assert_eq!(bare.status, 401, "{}", bare.text);
    let models = call(
        &gateway,
        Method::GET,
        "/v1/models",
        None,
        Some(CALLER_KEY),
        None,
    )
    .await;
    assert_eq!(models.status, 200);

    // What Salesforce saw: 2 token fetches (the first, the one after the 401) and 7 chat calls
    // (1, 2 for the 429, 2 for the 401, snake_case, stream), 1 text call.
    let seen = gateway.counters();
    let calls = (
        seen.token_requests,
        seen.chat_requests,
        seen.generation_requests,
    );
    assert_eq!(calls, (2, 7, 1));

    let (text, metrics) = scrape(&gateway).await;
    let chat_ep = "chat_completions";
    metrics.assert_counters(&[
        (requests("health", "none", "2xx"), 1.0),
        (requests("ready", "none", "2xx"), 1.0),
        (keyed_requests(chat_ep, CHAT_MODEL, "2xx"), 4.0),
        (keyed_requests(chat_ep, "unknown", "4xx"), 1.0),
        (keyed_requests(chat_ep, BEDROCK_MODEL, "2xx"), 1.0),
        (keyed_requests("completions", "gpt-4o", "2xx"), 1.0),
        (requests(chat_ep, "none", "4xx"), 1.0),
        (keyed_requests("models", "none", "2xx"), 1.0),
        (errors(chat_ep, "404"), 1.0),
        (errors(chat_ep, "401"), 1.0),
        (one(ATTEMPTS, "outcome", "ok"), 6.0),
        (one(ATTEMPTS, "outcome", "rate_limited"), 1.0),
        (one(ATTEMPTS, "outcome", "unauthorized"), 1.0),
        (one(RETRIES, "reason", "rate_limited"), 1.0),
        (one(RETRIES, "reason", "unauthorized"), 1.0),
        (one(TOKENS, "event", "hit"), 6.0),
        (one(TOKENS, "event", "miss"), 2.0),
        (one(TOKENS, "event", "refresh"), 2.0),
        (one(PATHS, "path", "primary"), 4.0),
        (one(PATHS, "path", "snake_case"), 1.0),
        (one(PATHS, "path", "generation_text"), 1.0),
        // The scrape itself is in flight while it renders; nothing else is.
        (one(IN_FLIGHT, "endpoint", "metrics"), 1.0),
    ]);
    // Token usage: what the bridge answered, added up per model; nothing for the others.
    assert!(tokens
        .values()
        .all(|(prompt, completion)| *prompt > 0.0 && *completion > 0.0));
    for model in ROUTED_MODELS.into_iter().chain(["unknown"]) {
        let (prompt, completion) = tokens.get(model).copied().unwrap_or_default();
        let model = [("caller", "unnamed"), ("model", model)];
        assert_eq!(metrics.get("sfbridge_prompt_tokens_total", &model), prompt);
        assert_eq!(
            metrics.get("sfbridge_completion_tokens_total", &model),
            completion
        );
    }
    // Durations: one observation per request answered, one per upstream attempt.
    let count = |name: &str, endpoint| metrics.get(name, &[("endpoint", endpoint)]);
    let endpoints = [
        "chat_completions",
        "completions",
        "models",
        "health",
        "ready",
        "metrics",
    ];
    let durations = endpoints.map(|e| count("sfbridge_request_duration_seconds_count", e));
    assert_eq!(durations, [7.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    let overheads = endpoints.map(|e| count("sfbridge_overhead_seconds_count", e));
    assert_eq!(overheads, durations);
    let attempts = metrics.get("sfbridge_upstream_duration_seconds_count", &[]);
    assert_eq!(attempts, 8.0);

    let (summary_text, summary) = performance(&gateway).await;
    let totals = &summary.requests;
    assert_eq!(
        (totals.total, totals.errors, totals.in_flight),
        (12, 2, 1),
        "11 requests and the scrape; the 404 and the 401; the summary request itself"
    );
    let by_endpoint: Vec<(&str, u64)> = totals
        .by_endpoint
        .iter()
        .map(|(e, n)| (e.as_str(), *n))
        .collect();
    assert_eq!(
        by_endpoint,
        [
            ("chat_completions", 7),
            ("completions", 1),
            ("count_tokens", 0),
            ("embeddings", 0),
            ("health", 1),
            ("messages", 0),
            ("metrics", 1),
            ("models", 1),
            ("performance", 0),
            ("ready", 1),
            ("responses", 0),
        ]
    );
    let cache = &summary.token_cache;
    let events = (
        cache.hits,
        cache.misses,
        cache.refreshes,
        cache.refresh_failures,
    );
    assert_eq!((events, cache.hit_rate), ((6, 2, 2, 0), Some(0.75)));
    let extractor = &summary.extractor;
    assert_eq!((extractor.primary, extractor.none), (4, 0));
    let fallbacks: Vec<(&str, u64)> = extractor
        .fallbacks
        .iter()
        .map(|(p, n)| (p.as_str(), *n))
        .collect();
    let expected_fallbacks = [
        ("chat_generations", 0),
        ("generated_text", 0),
        ("generation_text", 1),
        ("generations_array", 0),
        ("openai_choices", 0),
        ("snake_case", 1),
    ];
    assert_eq!(fallbacks, expected_fallbacks);
    assert_eq!(extractor.primary_pct, Some(4.0 / 6.0 * 100.0));
    assert_eq!(extractor.fallback_pct, Some(2.0 / 6.0 * 100.0));
    let up = &summary.upstream;
    assert_eq!(
        (up.attempts, up.retries),
        (8, 2),
        "8 attempts for 6 answers: 2 retries"
    );
    let outcomes: Vec<(&str, u64)> = up
        .by_outcome
        .iter()
        .map(|(o, n)| (o.as_str(), *n))
        .collect();
    let expected_outcomes = [
        ("busy", 0),
        ("client_error", 0),
        ("connect_error", 0),
        ("connection_lost_after_send", 0),
        ("connection_reset", 0),
        ("failed", 0),
        ("ok", 6),
        ("rate_limited", 1),
        ("server_error", 0),
        ("timeout", 0),
        ("too_large", 0),
        ("unauthorized", 1),
        ("unavailable", 0),
    ];
    assert_eq!(outcomes, expected_outcomes);
    // Percentiles cover the 8 OpenAI-endpoint requests, the 404 and the 401 included.
    let latency = &summary.latency_ms;
    for p in [&latency.total, &latency.upstream, &latency.overhead] {
        assert_eq!(p.samples, 8, "{p:?}");
        let (p50, p95, p99) = (p.p50.unwrap(), p.p95.unwrap(), p.p99.unwrap());
        assert!(0.0 <= p50 && p50 <= p95 && p95 <= p99, "{p:?}");
    }
    let (total_p99, upstream_p99) = (latency.total.p99.unwrap(), latency.upstream.p99.unwrap());
    assert!(
        upstream_p99 <= total_p99 * 1.01 && total_p99 < 10_000.0,
        "{latency:?}"
    );
    assert!(summary.uptime_secs < 60);

    // The second scrape counts the first and the summary, once each; nothing else moved.
    let (second_text, second) = scrape(&gateway).await;
    let scrapes = second.get_series(&requests("metrics", "none", "2xx"));
    let summaries = second.get_series(&requests("performance", "none", "2xx"));
    assert_eq!((scrapes, summaries), (1.0, 1.0));
    for family in &COUNTERS[1..] {
        let before: Vec<_> = metrics.family(family).collect();
        let after: Vec<_> = second.family(family).collect();
        assert_eq!(before, after, "{family} moved without a request");
    }

    // No secret in any scrape or summary: the caller's key, the Salesforce token, the client
    // secret; nor the unknown model's name.
    let sent = upstream.last_model_request().expect("a model request");
    let bearer = sent.headers["authorization"].to_str().unwrap();
    let token = bearer.trim_start_matches("Bearer ");
    assert!(token.len() > 20);
    for body in [&text, &summary_text, &second_text] {
        for secret in [CALLER_KEY, token, MOCK_CLIENT_SECRET, "gpt-obs-unknown"] {
            assert!(!body.contains(secret), "{secret} leaked into {body}");
        }
    }
    gateway.stop().await;
}

/// A request to `path` for model `name`, valid for either OpenAI endpoint but for the model.
fn any_endpoint(name: &str) -> Value {
    json!({"model": name, "prompt": "x", "messages": [{"role": "user", "content": "x"}]})
}

async fn random_unknown_models_add_no_series(mount: Mount) {
    const REQUESTS: usize = 1000;
    let paths = ["/v1/chat/completions", "/v1/completions"];
    let gateway = Gateway::start(mount).await;
    let (_, fresh) = scrape(&gateway).await;

    // One unknown model per endpoint: the 404 error series were there from the start.
    for path in paths {
        let reply = post_bare(&gateway, path, &any_endpoint("first-unknown")).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
    }
    let (_, baseline) = scrape(&gateway).await;
    let added: Vec<_> = baseline.series.difference(&fresh.series).collect();
    assert!(added.is_empty(), "no model name adds one: {added:?}");
    for endpoint in ["chat_completions", "completions"] {
        assert_eq!(baseline.get_series(&errors(endpoint, "404")), 1.0);
    }

    // 1,000 random names, quotes, braces, backslashes and newlines included.
    let mut rng = fastrand::Rng::with_seed(42);
    let alphabet: Vec<char> = "abcXYZ019-_.:/ \"{}=,\\\n\u{e9}\u{1f600}".chars().collect();
    let names: Vec<String> = (0..REQUESTS)
        .map(|i| {
            let len = rng.usize(1..40);
            let noise: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            format!("m{i}-{noise}")
        })
        .collect();
    let client = http();
    let statuses: Vec<u16> = futures_util::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let request = client
                .post(gateway.url(paths[i % 2]))
                .json(&any_endpoint(name));
            async move { request.send().await.expect("request").status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 404), "{statuses:?}");

    let (text, after) = scrape(&gateway).await;
    let added: Vec<_> = after.series.difference(&baseline.series).collect();
    assert!(added.is_empty(), "new series: {added:?}");
    assert_eq!(after.series.len(), baseline.series.len());
    let per_endpoint = (REQUESTS / 2 + 1) as f64;
    for endpoint in ["chat_completions", "completions"] {
        let unknown = after.get_series(&requests(endpoint, "unknown", "4xx"));
        let not_found = after.get_series(&errors(endpoint, "404"));
        assert_eq!((unknown, not_found), (per_endpoint, per_endpoint));
    }
    // Model labels stay within the configured names and the two sentinels.
    let models: BTreeSet<&str> = after
        .series
        .iter()
        .filter_map(|(_, labels)| labels.get("model").map(String::as_str))
        .collect();
    let allowed: BTreeSet<&str> = ROUTED_MODELS
        .into_iter()
        .chain(["unknown", "none"])
        .collect();
    assert_eq!(models, allowed);
    assert!(names.iter().all(|name| !text.contains(name.as_str())));
    assert_eq!(gateway.counters().model_requests(), 0);
    gateway.stop().await;
}

async fn ready_follows_the_token_endpoint(mount: Mount) {
    let gateway = Gateway::start(mount).await;
    let upstream = gateway.upstream();
    upstream.inject_token_fault(TokenFault::Status(400), u32::MAX);
    let chat_path = "/v1/chat/completions";
    let chat_ep = "chat_completions";

    // The endpoint rejects the credentials: not ready, with the reason; alive all the same.
    let outage = Instant::now();
    assert_eq!(get(&gateway, "/health", None).await.status, 200);
    let ready = get(&gateway, "/ready", None).await;
    // The failed fetch is over, so its cooldown ends within 1 s from now.
    let failed = Instant::now();
    assert_eq!(ready.status, 503, "{}", ready.text);
    let body = ready.json();
    assert_eq!(body["status"], "not_ready");
    let reason = body["reason"].as_str().expect("a reason");
    assert!(reason.contains("400 invalid_client"), "{reason}");
    // Within the 1 s cooldown: the same answer without asking the endpoint again.
    let again = get(&gateway, "/ready", None).await;
    assert_eq!((again.status, again.json()), (503, body.clone()));
    let refused = post_bare(&gateway, chat_path, &chat(CHAT_MODEL, "x")).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "upstream_auth_unavailable");
    assert_eq!(get(&gateway, "/health", None).await.status, 200);
    assert!(
        outage.elapsed() < Duration::from_millis(900),
        "still in the cooldown"
    );
    let seen = gateway.counters();
    assert_eq!((seen.token_requests, seen.model_requests()), (1, 0));

    let (down_text, down) = scrape(&gateway).await;
    down.assert_counters(&[
        (requests("health", "none", "2xx"), 2.0),
        (requests("ready", "none", "5xx"), 2.0),
        (requests(chat_ep, CHAT_MODEL, "5xx"), 1.0),
        (errors("ready", "503"), 2.0),
        (errors(chat_ep, "503"), 1.0),
        (one(TOKENS, "event", "miss"), 3.0),
        (one(TOKENS, "event", "refresh_failure"), 1.0),
        (one(IN_FLIGHT, "endpoint", "metrics"), 1.0),
    ]);
    assert!(!down_text.contains(MOCK_CLIENT_SECRET));

    // The endpoint recovers; once the cooldown is over, the next /ready fetches and is 200.
    upstream.clear_faults();
    tokio::time::sleep(Duration::from_millis(1050).saturating_sub(failed.elapsed())).await;
    let ready = get(&gateway, "/ready", None).await;
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({"status": "ready"}))
    );
    assert_eq!(get(&gateway, "/health", None).await.status, 200);
    let ok = post_bare(&gateway, chat_path, &chat(CHAT_MODEL, "x")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(get(&gateway, "/ready", None).await.status, 200);
    assert_eq!(gateway.counters().token_requests, 2);

    let (_, up) = scrape(&gateway).await;
    up.assert_counters(&[
        (requests("health", "none", "2xx"), 3.0),
        (requests("ready", "none", "5xx"), 2.0),
        (requests("ready", "none", "2xx"), 2.0),
        (requests("metrics", "none", "2xx"), 1.0),
        (requests(chat_ep, CHAT_MODEL, "5xx"), 1.0),
        (requests(chat_ep, CHAT_MODEL, "2xx"), 1.0),
        (errors("ready", "503"), 2.0),
        (errors(chat_ep, "503"), 1.0),
        (one(TOKENS, "event", "miss"), 4.0),
        (one(TOKENS, "event", "refresh_failure"), 1.0),
        (one(TOKENS, "event", "refresh"), 1.0),
        (one(TOKENS, "event", "hit"), 1.0),
        (one(ATTEMPTS, "outcome", "ok"), 1.0),
        (one(PATHS, "path", "primary"), 1.0),
        (one(IN_FLIGHT, "endpoint", "metrics"), 1.0),
    ]);
    let (_, summary) = performance(&gateway).await;
    assert_eq!(summary.token_cache.hit_rate, Some(0.2));
    assert_eq!((summary.requests.total, summary.requests.errors), (11, 3));
    gateway.stop().await;
}

/// A request to try: method, path, body, key, and the status it gets.
type Case<'a> = (Method, &'a str, Option<&'a Value>, Option<&'a str>, u16);

async fn every_answer_carries_a_request_id(mount: Mount) {
    let setup = keyed().salesforce("max_request_bytes = 4096");
    let gateway = Gateway::start_with(mount, setup).await;
    let chat_path = "/v1/chat/completions";
    let body = chat(CHAT_MODEL, "hi");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let unknown = chat("nope", "hi");
    let not_an_object = json!("not an object");
    // Refused by the Pingora mount itself before the service sees it; by the service on axum.
    let too_large = chat(CHAT_MODEL, &"x".repeat(5000));
    let key = Some(CALLER_KEY);
    let cases: [Case<'_>; 12] = [
        (Method::GET, "/health", None, None, 200),
        (Method::GET, "/ready", None, None, 200),
        (Method::GET, "/metrics", None, None, 200),
        (Method::GET, "/metrics/performance", None, None, 200),
        (Method::GET, "/v1/models", None, key, 200),
        (Method::POST, chat_path, Some(&body), key, 200),
        (Method::POST, chat_path, Some(&streamed), key, 200),
        (Method::POST, chat_path, Some(&unknown), key, 404),
        (Method::POST, chat_path, Some(&body), None, 401),
        (Method::POST, chat_path, Some(&not_an_object), key, 400),
        (Method::GET, chat_path, None, key, 405),
        (Method::POST, chat_path, Some(&too_large), key, 413),
    ];
    let mut generated = BTreeSet::new();
    for (i, (method, path, body, key, status)) in cases.into_iter().enumerate() {
        let own = format!("caller-id-{i}");
        let reply = call(&gateway, method.clone(), path, body, key, Some(&own)).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
        let reply = call(&gateway, method.clone(), path, body, key, None).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
        assert!(
            generated.insert(reply.request_id().to_owned()),
            "ids are unique"
        );
    }
    // An id that is too long or not printable is replaced, not echoed.
    for bad in ["x".repeat(129), "has space".to_owned()] {
        let response = http()
            .get(gateway.url("/health"))
            .header("x-request-id", &bad)
            .send()
            .await
            .expect("request");
        assert_generated(response.headers()["x-request-id"].to_str().unwrap());
    }
    gateway.stop().await;
}

/// A fault to inject, whether the request streams, and the status the caller gets.
type UpstreamCase = (&'static str, Option<Fault>, bool, u16);

async fn every_answer_after_salesforce_carries_its_request_id(mount: Mount) {
    // Only successful JSON answers carried it: support cases need it for errors most of all.
    let gateway = Gateway::start(mount).await;
    let status = |status, retry_after_secs| Fault::Status {
        status,
        retry_after_secs,
    };
    let cases: [UpstreamCase; 7] = [
        ("success", None, false, 200),
        ("400", Some(status(400, None)), false, 400),
        // Beyond `max_delay`: given up at once, passed on with its Retry-After.
        ("429", Some(status(429, Some(60))), false, 429),
        ("not JSON", Some(Fault::MalformedJson), false, 502),
        ("truncated JSON", Some(Fault::TruncatedJson), false, 502),
        // Answered within the first keep-alive period, so with its own status and headers.
        ("streamed 400", Some(status(400, None)), true, 400),
        ("streamed not JSON", Some(Fault::MalformedJson), true, 502),
    ];
    for (case, fault, stream, want) in cases {
        if let Some(fault) = fault {
            gateway.upstream().inject(fault, 1);
        }
        let mut body = chat(CHAT_MODEL, case);
        body["stream"] = json!(stream);
        let reply = post_bare(&gateway, "/v1/chat/completions", &body).await;
        assert_eq!(reply.status, want, "{case}: {}", reply.text);
        let id = reply
            .headers
            .get("x-salesforce-request-id")
            .unwrap_or_else(|| panic!("{case}: no x-salesforce-request-id: {}", reply.text));
        let id = id.to_str().expect("printable");
        assert!(
            id.len() == 36 && id.split('-').count() == 5,
            "{case}: the mock's UUID, passed on: {id:?}"
        );
    }
    let unrouted = post_bare(&gateway, "/v1/chat/completions", &chat("nope", "hi")).await;
    assert_eq!(unrouted.status, 404);
    assert!(
        !unrouted.headers.contains_key("x-salesforce-request-id"),
        "refused before any upstream call"
    );
    gateway.stop().await;
}
