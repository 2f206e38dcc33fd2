//! The Grafana dashboard, `dashboards/sfbridge.json`, proven against a real Prometheus: the
//! `prometheus` binary (Debian's package; `make prometheus-setup` installs it) scrapes a real
//! bridge every second while a short load touches every series the panels show (streams, errors,
//! retries, a failed token fetch, a request held in flight, ...); then every panel's PromQL, with
//! Grafana's variables filled in, goes through Prometheus' HTTP API and must give a plausible
//! answer: not empty, finite, never negative, within the panel's bounds, and above zero for each
//! series the load fed. Each template variable's `label_values` must list values too, and no
//! secret may show in any label, bridge log line or the dashboard itself.
//!
//! Without Prometheus the test is skipped with a message, except in CI (`CI` set), where it
//! fails. `PROMETHEUS` names the binary when it is not `prometheus` on the `PATH`.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sf_models_bridge::mock::{Fault, TokenFault};

use common::{chat, http, Gateway, Mount, Setup, BEDROCK_MODEL, CALLER_KEY, CHAT_MODEL};

/// How often Prometheus scrapes the bridge.
const SCRAPE_INTERVAL_SECS: u64 = 1;
/// What `$__rate_interval` becomes: Grafana's is at least four scrape intervals, and one minute
/// covers the whole test.
const RATE_INTERVAL: &str = "1m";
/// The highest latency the load can plausibly produce, in seconds.
const MAX_LATENCY_SECS: f64 = 30.0;
/// How long the held request stays in flight: long enough for two scrapes to see it.
const HELD_FOR: Duration = Duration::from_millis(2_500);

/// What one panel target must show once the load has run.
struct Expect {
    panel: &'static str,
    ref_id: &'static str,
    /// Series that must be there with a value above zero, each named by labels it carries.
    positive: &'static [&'static [(&'static str, &'static str)]],
    /// The highest plausible value.
    max: f64,
}

const fn expect(
    panel: &'static str,
    ref_id: &'static str,
    positive: &'static [&'static [(&'static str, &'static str)]],
    max: f64,
) -> Expect {
    Expect {
        panel,
        ref_id,
        positive,
        max,
    }
}

/// A plausible ceiling for rates and counts under this load.
const MANY: f64 = 1e6;

/// Every panel target of the dashboard, and what the load must make it show. A target missing
/// here, or listed here and missing from the dashboard, fails the test.
const EXPECTED: &[Expect] = &[
    expect(
        "Requests by endpoint",
        "A",
        &[
            &[("endpoint", "chat_completions")],
            &[("endpoint", "completions")],
            &[("endpoint", "messages")],
            &[("endpoint", "models")],
        ],
        MANY,
    ),
    expect(
        "Requests by model",
        "A",
        &[
            &[("model", CHAT_MODEL)],
            &[("model", BEDROCK_MODEL)],
            &[("model", "gpt-4o")],
            &[("model", "unknown")],
        ],
        MANY,
    ),
    expect(
        "Requests by caller",
        "A",
        &[
            &[("caller", "alice")],
            &[("caller", "bob")],
            &[("caller", "unnamed")],
        ],
        MANY,
    ),
    expect("Error ratio", "A", &[&[]], 1.0),
    expect("Error ratio", "B", &[&[]], 1.0),
    expect(
        "Errors by endpoint and status",
        "A",
        &[
            &[("endpoint", "chat_completions"), ("status", "400")],
            &[("endpoint", "chat_completions"), ("status", "404")],
            &[("endpoint", "chat_completions"), ("status", "429")],
            &[("endpoint", "chat_completions"), ("status", "502")],
        ],
        MANY,
    ),
    expect(
        "Errors by model and caller",
        "A",
        &[
            &[("model", "unknown"), ("status_class", "4xx")],
            &[("model", CHAT_MODEL), ("status_class", "5xx")],
        ],
        MANY,
    ),
    expect(
        "Errors by model and caller",
        "B",
        &[
            &[("caller", "alice"), ("status_class", "4xx")],
            &[("caller", "unnamed"), ("status_class", "5xx")],
        ],
        MANY,
    ),
    expect(
        "Request latency (p50, p99)",
        "A",
        &[&[("endpoint", "chat_completions")]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Request latency (p50, p99)",
        "B",
        &[&[("endpoint", "chat_completions")]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Bridge overhead (p50, p99)",
        "A",
        &[&[("endpoint", "chat_completions")]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Bridge overhead (p50, p99)",
        "B",
        &[&[("endpoint", "chat_completions")]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Time to first byte, streams (p50, p99)",
        "A",
        &[
            &[("endpoint", "chat_completions")],
            &[("endpoint", "messages")],
        ],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Time to first byte, streams (p50, p99)",
        "B",
        &[
            &[("endpoint", "chat_completions")],
            &[("endpoint", "messages")],
        ],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Models API attempt latency (p50, p99)",
        "A",
        &[&[]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Models API attempt latency (p50, p99)",
        "B",
        &[&[]],
        MAX_LATENCY_SECS,
    ),
    expect(
        "Upstream attempts by outcome",
        "A",
        &[
            &[("outcome", "ok")],
            &[("outcome", "rate_limited")],
            &[("outcome", "server_error")],
        ],
        MANY,
    ),
    expect(
        "Retries by reason",
        "A",
        &[&[("reason", "rate_limited")], &[("reason", "server_error")]],
        MANY,
    ),
    expect(
        "Requests by surface",
        "A",
        &[
            &[("surface", "einstein"), ("status_class", "2xx")],
            &[("surface", "einstein"), ("status_class", "5xx")],
        ],
        MANY,
    ),
    expect("Extractor paths", "A", &[&[("path", "primary")]], MANY),
    expect("Token cache hit rate", "A", &[&[]], 1.0),
    expect(
        "Token refreshes and failures",
        "A",
        &[&[("event", "refresh")], &[("event", "refresh_failure")]],
        MANY,
    ),
    expect(
        "Tokens by model",
        "A",
        &[&[("model", CHAT_MODEL)], &[("model", BEDROCK_MODEL)]],
        MANY,
    ),
    expect(
        "Tokens by model",
        "B",
        &[&[("model", CHAT_MODEL)], &[("model", BEDROCK_MODEL)]],
        MANY,
    ),
    expect(
        "Tokens by caller",
        "A",
        &[
            &[("caller", "alice")],
            &[("caller", "bob")],
            &[("caller", "unnamed")],
        ],
        MANY,
    ),
    expect(
        "Tokens by caller",
        "B",
        &[
            &[("caller", "alice")],
            &[("caller", "bob")],
            &[("caller", "unnamed")],
        ],
        MANY,
    ),
    expect(
        "In-flight requests (peak)",
        "A",
        &[&[("endpoint", "chat_completions")]],
        MANY,
    ),
    expect("Rate-limited callers", "A", &[&[("caller", "alice")]], MANY),
    expect(
        "Config reloads",
        "A",
        &[&[("result", "ok")], &[("result", "refused")]],
        MANY,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_answers_under_load() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Prometheus is required in CI: install it with `make prometheus-setup` \
             (Debian's `prometheus` package) or name it in PROMETHEUS"
        );
        // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED tests/dashboard.rs: it needs Prometheus (`make prometheus-setup`, or set \
             PROMETHEUS to its binary)"
        );
        return;
    };
    let started = Instant::now();
    let logs = capture_logs();
    let dashboard = load_dashboard();
    let targets = panel_targets(&dashboard);
    check_expectations_cover(&targets);

    let gateway = Gateway::start_with(Mount::Axum, callers()).await;
    let prometheus = Prometheus::start(&binary, &gateway.url("")).await;
    // Every series is in Prometheus before the load, so rates count all of it.
    prometheus.wait_for_scrapes(2).await;
    let secrets = run_load(&gateway).await;
    prometheus.wait_for_scrape_after(now_secs()).await;

    let mut failures = Vec::new();
    for target in &targets {
        let expect = EXPECTED
            .iter()
            .find(|e| e.panel == target.panel && e.ref_id == target.ref_id)
            .expect("checked above");
        let query = substitute(&target.expr);
        let result = prometheus.query(&query).await;
        if let Err(problem) = check_result(expect, &query, &result) {
            failures.push(format!("{} / {}: {problem}", target.panel, target.ref_id));
        }
    }
    for (name, selector, label) in template_variables(&dashboard) {
        let query = format!("count by ({label}) ({})", substitute(&selector));
        let values = prometheus.query(&query).await;
        let listed: Vec<&str> = values
            .iter()
            .filter_map(|sample| sample.labels.get(&label).map(String::as_str))
            .filter(|value| !value.is_empty())
            .collect();
        if listed.is_empty() {
            failures.push(format!("variable ${name}: `{query}` lists no value"));
        }
    }
    let exported = prometheus.query(r#"{__name__=~"sfbridge_.+"}"#).await;
    let dashboard_text = dashboard.to_string();
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for secret in &secrets {
        for sample in &exported {
            if sample.labels.values().any(|value| value.contains(secret)) {
                failures.push(format!("a secret in the labels of {:?}", sample.labels));
            }
        }
        if dashboard_text.contains(secret) {
            failures.push("a secret in the dashboard".to_owned());
        }
        if logs.contains(secret) {
            failures.push("a secret in the bridge's log".to_owned());
        }
    }
    drop(prometheus);
    gateway.stop().await;
    eprintln!(
        "dashboard: {} targets and the template variables checked in {:.1} s",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} dashboard checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------------

/// The named callers' keys; `CALLER_KEY` is a key without a name (caller `unnamed`).
const ALICE_KEY: &str = "sk-dashboard-alice-never-shown";
const BOB_KEY: &str = "sk-dashboard-bob-never-shown";
/// Alice's `requests_per_minute`.
const ALICE_PER_MINUTE: u32 = 3;

/// Three callers: alice (rate-limited), bob, and an unnamed key.
fn callers() -> Setup {
    Setup::default().sections(&format!(
        "[auth]\napi_keys = [\"{CALLER_KEY}\"]\n\
         [[auth.keys]]\nname = \"alice\"\nkey = \"{ALICE_KEY}\"\n\
         requests_per_minute = {ALICE_PER_MINUTE}\n\
         [[auth.keys]]\nname = \"bob\"\nkey = \"{BOB_KEY}\"\n"
    ))
}

/// Drives traffic that feeds every series the dashboard shows, and returns the secrets it used
/// (the caller keys, the client secret, the access token), none of which may show anywhere.
async fn run_load(gateway: &Gateway) -> Vec<String> {
    let client = http();
    let upstream = gateway.upstream();
    let post = |key: &'static str, path: &'static str, body: Value| {
        let request = client.post(gateway.url(path)).bearer_auth(key).json(&body);
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            // Read to the end: a stream's first byte and its end are what is measured.
            let text = response.text().await.expect("body");
            (status, text)
        }
    };

    // The first token fetch fails: a refresh failure, answered 503. The cool-down after it lasts
    // a second.
    upstream.inject_token_fault(TokenFault::Status(500), 1);
    let (status, text) = post(
        CALLER_KEY,
        "/v1/chat/completions",
        chat(CHAT_MODEL, "no token"),
    )
    .await;
    assert_eq!(status, 503, "{text}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Retries: one 429 that the retry recovers from, and a 500 that outlasts them all.
    upstream.inject(
        Fault::Status {
            status: 429,
            retry_after_secs: None,
        },
        1,
    );
    let (status, text) = post(
        CALLER_KEY,
        "/v1/chat/completions",
        chat(CHAT_MODEL, "retried"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    upstream.inject(
        Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        3,
    );
    let (status, text) = post(
        CALLER_KEY,
        "/v1/chat/completions",
        chat(CHAT_MODEL, "failed"),
    )
    .await;
    assert_eq!(status, 502, "{text}");

    // The caller's own errors: a model not configured, a body that is not JSON.
    let (status, text) = post(
        CALLER_KEY,
        "/v1/chat/completions",
        chat("no-such-model", "hi"),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    let response = client
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(CALLER_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);

    // A caller over its limit: alice may send ALICE_PER_MINUTE requests a minute, and sends two
    // more.
    for n in 0..ALICE_PER_MINUTE + 2 {
        let (status, text) = post(ALICE_KEY, "/v1/chat/completions", chat(CHAT_MODEL, "hi")).await;
        let expected = if n < ALICE_PER_MINUTE { 200 } else { 429 };
        assert_eq!(status, expected, "alice's request {n}: {text}");
    }

    // One request held in flight over two scrapes, while ordinary traffic runs beside it.
    upstream.inject(Fault::Slow(HELD_FOR), 1);
    let held = tokio::spawn(post(
        BOB_KEY,
        "/v1/chat/completions",
        chat(CHAT_MODEL, "held"),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut traffic = Vec::new();
    for round in 0..5 {
        // Bob and the unnamed key share the ordinary traffic.
        let key = if round % 2 == 0 { BOB_KEY } else { CALLER_KEY };
        for model in [CHAT_MODEL, BEDROCK_MODEL, "gpt-4o"] {
            let content = format!("round {round} for {model}");
            traffic.push(post(key, "/v1/chat/completions", chat(model, &content)));
            let mut streamed = chat(model, &content);
            streamed["stream"] = json!(true);
            traffic.push(post(key, "/v1/chat/completions", streamed));
        }
        let prompt = json!({"model": "gpt-4o", "prompt": format!("round {round}")});
        traffic.push(post(key, "/v1/completions", prompt));
        let message = json!({"model": BEDROCK_MODEL, "max_tokens": 64,
            "messages": [{"role": "user", "content": format!("round {round}")}]});
        traffic.push(post(key, "/v1/messages", message.clone()));
        let mut streamed = message;
        streamed["stream"] = json!(true);
        traffic.push(post(key, "/v1/messages", streamed));
    }
    for (status, text) in futures_util::future::join_all(traffic).await {
        assert_eq!(status, 200, "{text}");
    }
    let models = client
        .get(gateway.url("/v1/models"))
        .bearer_auth(BOB_KEY)
        .send()
        .await
        .expect("request");
    assert_eq!(models.status().as_u16(), 200);
    let (status, text) = held.await.expect("held request");
    assert_eq!(status, 200, "{text}");

    // Two conf reloads: the running conf again, and a file that is not there.
    gateway
        .layer
        .reload(gateway.config.clone())
        .expect("the running conf reloads");
    let missing = std::env::temp_dir().join("sfbridge-dashboard-no-such-conf.toml");
    assert!(gateway.layer.reload_from_path(missing).is_err());

    let token = upstream
        .last_model_request()
        .and_then(|sent| {
            let value = sent.headers.get("authorization")?.to_str().ok()?;
            value.strip_prefix("Bearer ").map(str::to_owned)
        })
        .expect("the bridge sent a token");
    vec![
        CALLER_KEY.to_owned(),
        ALICE_KEY.to_owned(),
        BOB_KEY.to_owned(),
        gateway.config.salesforce.client_secret.expose().to_owned(),
        token,
    ]
}

// ---------------------------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------------------------

/// One query of one panel.
struct Target {
    panel: String,
    ref_id: String,
    expr: String,
}

fn load_dashboard() -> Value {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let path = root.join("dashboards/sfbridge.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every target of every panel, rows' nested panels included.
fn panel_targets(dashboard: &Value) -> Vec<Target> {
    fn walk(panels: &[Value], out: &mut Vec<Target>) {
        for panel in panels {
            let title = panel["title"].as_str().expect("every panel has a title");
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(Target {
                    panel: title.to_owned(),
                    ref_id: target["refId"].as_str().expect("refId").to_owned(),
                    expr: target["expr"].as_str().expect("expr").to_owned(),
                });
            }
            walk(panel["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut targets = Vec::new();
    walk(
        dashboard["panels"].as_array().expect("panels"),
        &mut targets,
    );
    targets
}

/// Every panel target has its expectation, and every expectation its target.
fn check_expectations_cover(targets: &[Target]) {
    for target in targets {
        assert!(
            EXPECTED
                .iter()
                .any(|e| e.panel == target.panel && e.ref_id == target.ref_id),
            "no expectation for panel {:?} target {}: add one to EXPECTED",
            target.panel,
            target.ref_id
        );
    }
    for expect in EXPECTED {
        assert!(
            targets
                .iter()
                .any(|t| t.panel == expect.panel && t.ref_id == expect.ref_id),
            "EXPECTED names panel {:?} target {}, which the dashboard lacks",
            expect.panel,
            expect.ref_id
        );
    }
}

/// The template variables: name, the series selector and the label of their `label_values`.
fn template_variables(dashboard: &Value) -> Vec<(String, String, String)> {
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    variables
        .iter()
        .map(|variable| {
            let name = variable["name"].as_str().expect("name").to_owned();
            let definition = variable["definition"].as_str().expect("definition");
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("${name}: not label_values(...): {definition}"));
            let (selector, label) = inner
                .rsplit_once(',')
                .unwrap_or_else(|| panic!("${name}: label_values without a label"));
            (name, selector.trim().to_owned(), label.trim().to_owned())
        })
        .collect()
}

/// The query Grafana would send with every variable at "All".
fn substitute(expr: &str) -> String {
    let all = ".*";
    expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$endpoint", all)
        .replace("$model", all)
        .replace("$caller", all)
}

/// Whether `result` is what `expect` asks for.
fn check_result(expect: &Expect, query: &str, result: &[Sample]) -> Result<(), String> {
    if result.is_empty() {
        return Err(format!("empty result for `{query}`"));
    }
    // An endpoint with no traffic in the window has no quantile: Prometheus answers NaN for it,
    // which Grafana leaves out. Anywhere else NaN means a broken query.
    let quantile = query.contains("histogram_quantile");
    for sample in result {
        let value = sample.value;
        let plausible = if value.is_nan() {
            quantile
        } else {
            value.is_finite() && (0.0..=expect.max).contains(&value)
        };
        if !plausible {
            return Err(format!(
                "{:?} = {value} is not plausible (0 to {}) for `{query}`",
                sample.labels, expect.max
            ));
        }
    }
    for wanted in expect.positive {
        let found = result.iter().any(|sample| {
            sample.value > 0.0
                && wanted
                    .iter()
                    .all(|(label, value)| sample.labels.get(*label).is_some_and(|v| v == value))
        });
        if !found {
            let seen: Vec<_> = result
                .iter()
                .map(|s| format!("{:?}={}", s.labels, s.value))
                .collect();
            return Err(format!(
                "no series {wanted:?} above zero for `{query}`; got {}",
                seen.join(", ")
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

/// `$PROMETHEUS`, or `prometheus` on the `PATH`.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROMETHEUS") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// One instant-vector sample.
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A Prometheus server of our own, scraping the bridge; stopped and its data removed on drop.
struct Prometheus {
    api: String,
    dir: PathBuf,
    client: reqwest::Client,
    _child: tokio::process::Child,
}

impl Prometheus {
    async fn start(binary: &Path, bridge: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("sfbridge-dashboard-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = bridge.trim_start_matches("http://").trim_end_matches('/');
        let config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_SECS}s\n  evaluation_interval: \
             {SCRAPE_INTERVAL_SECS}s\nscrape_configs:\n  - job_name: sfbridge\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        // A free port: Prometheus cannot report one it picked itself.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let prometheus = Self {
            api: format!("http://127.0.0.1:{port}"),
            dir,
            client: http(),
            _child: child,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .client
                .get(format!("{}/-/ready", self.api))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Prometheus has scraped the bridge successfully `count` times.
    async fn wait_for_scrapes(&self, count: u32) {
        let query = r#"sum_over_time(up{job="sfbridge"}[1m])"#;
        self.wait_until(&format!("{count} scrapes"), query, |value| {
            value >= f64::from(count)
        })
        .await;
    }

    /// Waits for a scrape that started after `after` (Unix seconds).
    async fn wait_for_scrape_after(&self, after: f64) {
        let query = r#"timestamp(up{job="sfbridge"})"#;
        self.wait_until("a scrape after the load", query, |value| value > after)
            .await;
    }

    async fn wait_until(&self, what: &str, query: &str, done: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let result = self.query(query).await;
            if result.iter().any(|sample| done(sample.value)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus: no {what} in 15 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An instant query through `/api/v1/query`; panics unless Prometheus accepts it.
    async fn query(&self, query: &str) -> Vec<Sample> {
        let response = self
            .client
            .post(format!("{}/api/v1/query", self.api))
            .form(&[("query", query)])
            .send()
            .await
            .expect("Prometheus answers");
        let status = response.status();
        let body: Value = response.json().await.expect("Prometheus answers JSON");
        assert!(
            status.is_success() && body["status"] == "success",
            "Prometheus refused `{query}`: {body}"
        );
        let data = &body["data"];
        assert_eq!(data["resultType"], "vector", "`{query}`: {data}");
        data["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|sample| Sample {
                labels: serde_json::from_value(sample["metric"].clone()).expect("labels"),
                value: sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .expect("a number"),
            })
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // The child is killed on drop, after this; its data is only ever ours.
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// The bridge's log
// ---------------------------------------------------------------------------------------------

/// Everything the bridge logs from now on, at every level, for the secret check.
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    tracing_subscriber::fmt()
        .with_env_filter("sf_models_bridge=trace,info")
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .try_init()
        .expect("the only subscriber of this test binary");
    buffer
}
