//! Named callers and their limits through each mount: `[[auth.keys]]` names label the log line
//! and the metrics (never the key); a caller over `requests_per_minute` or `tokens_per_minute`
//! gets a 429 with an honest `Retry-After` in its front's format, counted per caller, and nothing
//! reaches Salesforce for it; other callers are unaffected.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use common::{chat, http, Gateway, Mount, Setup, CHAT_MODEL};

for_each_mount!(
    names_label_metrics_and_logs_never_keys,
    a_caller_over_its_request_limit_waits_and_others_do_not,
    a_caller_out_of_tokens_is_refused_before_salesforce,
);

const ALICE_KEY: &str = "sk-alice~callers-never-logged";
const BOB_KEY: &str = "sk-bob~callers-never-logged";
const PLAIN_KEY: &str = "sk-plain~callers-never-logged";

fn setup(alice_limits: &str) -> Setup {
    Setup::default().sections(&format!(
        "[auth]\napi_keys = [\"{PLAIN_KEY}\"]\n\
         [[auth.keys]]\nname = \"alice\"\nkey = \"{ALICE_KEY}\"\n{alice_limits}\n\
         [[auth.keys]]\nname = \"bob\"\nkey = \"{BOB_KEY}\"\n"
    ))
}

/// Every log line of this test binary.
fn logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,pingora_proxy=debug",
            ))
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init()
            .expect("the only subscriber of this binary");
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// POSTs `body` to `path` with `key` as `x-api-key`: status, `Retry-After`, JSON body.
async fn post(
    gateway: &Gateway,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let response = http()
        .post(gateway.url(path))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.expect("body");
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The value of the series of `name` whose labels include all of `labels`.
fn series(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| {
            labels
                .iter()
                .all(|(label, value)| line.contains(&format!("{label}=\"{value}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn names_label_metrics_and_logs_never_keys(mount: Mount) {
    logs();
    let gateway = Gateway::start_with(mount, setup("")).await;
    for (key, times) in [(ALICE_KEY, 2), (BOB_KEY, 1), (PLAIN_KEY, 1)] {
        for _ in 0..times {
            let (status, _, body) = post(
                &gateway,
                "/v1/chat/completions",
                key,
                &chat(CHAT_MODEL, "count me"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let scrape = gateway.scrape().await;
    let requests = |caller| {
        series(
            &scrape,
            "sfbridge_requests_total",
            &[
                ("caller", caller),
                ("endpoint", "chat_completions"),
                ("model", CHAT_MODEL),
                ("status_class", "2xx"),
            ],
        )
    };
    assert_eq!(requests("alice"), 2.0);
    assert_eq!(requests("bob"), 1.0);
    assert_eq!(requests("unnamed"), 1.0);
    assert_eq!(requests("anonymous"), 0.0);
    for caller in ["alice", "bob", "unnamed"] {
        assert!(
            series(
                &scrape,
                "sfbridge_prompt_tokens_total",
                &[("caller", caller), ("model", CHAT_MODEL)]
            ) > 0.0,
            "{caller}"
        );
        assert!(
            series(
                &scrape,
                "sfbridge_completion_tokens_total",
                &[("caller", caller), ("model", CHAT_MODEL)]
            ) > 0.0,
            "{caller}"
        );
    }
    // The scrape is open, so it is anonymous.
    let scrape = gateway.scrape().await;
    assert!(
        series(
            &scrape,
            "sfbridge_requests_total",
            &[("caller", "anonymous"), ("endpoint", "metrics")]
        ) >= 1.0
    );
    gateway.stop().await;

    let logs = logs();
    assert!(
        logs.lines()
            .any(|line| line.contains("request finished") && line.contains("caller=\"alice\"")),
        "the log line names the caller"
    );
    for key in [ALICE_KEY, BOB_KEY, PLAIN_KEY] {
        assert!(!logs.contains(key), "a key is in the logs");
        assert!(!scrape.contains(key), "a key is in the metrics");
    }
}

async fn a_caller_over_its_request_limit_waits_and_others_do_not(mount: Mount) {
    logs();
    let gateway = Gateway::start_with(mount, setup("requests_per_minute = 2")).await;
    for _ in 0..2 {
        let (status, _, body) = post(
            &gateway,
            "/v1/chat/completions",
            ALICE_KEY,
            &chat(CHAT_MODEL, "hi"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let before = gateway.counters().model_requests();

    // OpenAI's envelope, with the wait until the next request is allowed (about 30 s).
    let (status, retry_after, body) = post(
        &gateway,
        "/v1/chat/completions",
        ALICE_KEY,
        &chat(CHAT_MODEL, "one more"),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("alice") && message.contains("2 requests per minute"),
        "{message}"
    );

    // Anthropic's envelope on its own endpoint.
    let messages = json!({"model": CHAT_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let (status, retry_after, body) = post(&gateway, "/v1/messages", ALICE_KEY, &messages).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some());
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");

    assert_eq!(
        gateway.counters().model_requests(),
        before,
        "refused before Salesforce"
    );

    // Bob is not alice.
    for _ in 0..3 {
        let (status, _, body) = post(
            &gateway,
            "/v1/chat/completions",
            BOB_KEY,
            &chat(CHAT_MODEL, "me too"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let scrape = gateway.scrape().await;
    assert_eq!(
        series(
            &scrape,
            "sfbridge_rate_limited_total",
            &[("caller", "alice")]
        ),
        2.0
    );
    assert_eq!(
        series(&scrape, "sfbridge_rate_limited_total", &[("caller", "bob")]),
        0.0
    );
    gateway.stop().await;
}

async fn a_caller_out_of_tokens_is_refused_before_salesforce(mount: Mount) {
    logs();
    let gateway = Gateway::start_with(mount, setup("tokens_per_minute = 3")).await;
    let prompt = "a prompt of rather more than three tokens, to spend the minute's allowance";
    let (status, _, body) = post(
        &gateway,
        "/v1/chat/completions",
        ALICE_KEY,
        &chat(CHAT_MODEL, prompt),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = gateway.counters().model_requests();

    // A stream is refused with a real status too: nothing has started.
    let mut streamed = chat(CHAT_MODEL, "again");
    streamed["stream"] = json!(true);
    let (status, retry_after, body) =
        post(&gateway, "/v1/chat/completions", ALICE_KEY, &streamed).await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 tokens per minute"),
        "{body}"
    );
    assert_eq!(
        gateway.counters().model_requests(),
        before,
        "refused before Salesforce"
    );

    let (status, _, body) = post(
        &gateway,
        "/v1/chat/completions",
        BOB_KEY,
        &chat(CHAT_MODEL, prompt),
    )
    .await;
    assert_eq!(status, 200, "bob has no token limit: {body}");
    gateway.stop().await;
}
