//! The fault matrix, through each mount: every row injects one upstream or token-endpoint fault
//! into the mock, sends one request, and asserts the caller's status, the OpenAI error type and
//! code, and how many calls reached the mock (its counters). After each row the same bridge must
//! answer an ordinary request normally.
//!
//! Also here: recovery from a token endpoint outage without a refresh storm, the upstream
//! concurrency limit (`overloaded`), the total deadline bounding retries and token waits, a
//! hanging token endpoint delaying nobody while the cached token is valid, and 1,000 concurrent
//! requests at token expiry causing exactly one token fetch.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use sf_models_bridge::mock::{Fault, TokenFault};
use sf_models_bridge::upstream::MAX_ANSWER_BYTES;

use common::{
    assert_serves, chat, error_kind, get_json, http, post_json, post_json_via, Gateway, Mount,
    Setup, CHAT_MODEL,
};

for_each_mount!(
    model_fault_matrix,
    a_connection_lost_after_send_is_not_retried,
    a_connection_lost_after_send_is_retried_when_the_conf_says_so,
    a_connect_error_is_retried,
    token_endpoint_fault_matrix,
    token_revoked_midway,
    token_outage_recovers_without_a_refresh_storm,
    full_upstream_answers_overloaded_instead_of_queueing,
    the_deadline_bounds_retries,
    the_deadline_bounds_the_wait_for_a_token,
    a_hanging_token_endpoint_delays_nobody_while_the_token_is_valid,
    thousand_concurrent_requests_at_token_expiry_fetch_one_token,
);

/// Every call until cleared.
const ALWAYS: u32 = u32::MAX;

/// What a row expects the caller to get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 200 with the mock's echo.
    Ok,
    /// An OpenAI error envelope.
    Error {
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        /// A piece of the message, so that the reason is shown.
        says: &'static str,
    },
}

/// One row of the matrix.
struct Row {
    fault: &'static str,
    inject: Vec<(Fault, u32)>,
    expect: Expect,
    /// Model calls the mock saw for this request.
    calls: u64,
    /// Bounds on how long the request took, in seconds.
    took: (f64, f64),
}

fn status(status: u16, retry_after_secs: Option<u64>) -> Fault {
    Fault::Status {
        status,
        retry_after_secs,
    }
}

/// The connection to the Models API broke after the request was sent.
const CONNECTION_LOST: Expect = Expect::Error {
    status: 502,
    kind: "api_error",
    code: Some("upstream_unreachable"),
    says: "broke before the answer was complete",
};

/// Quick rows: well under the 2 s that a timeout or an honoured `Retry-After` would take.
const FAST: (f64, f64) = (0.0, 1.9);

/// The conf every model-fault row runs under: 3 attempts, 10 ms base backoff, `Retry-After`
/// honoured up to 1.5 s, 2 s per attempt, 3 s per request.
fn matrix_setup() -> Setup {
    let mut setup = Setup::default().salesforce("timeout_secs = 2\nrequest_deadline_secs = 3");
    setup.retry = "max_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 1500\n".to_owned();
    setup
}

fn model_rows() -> Vec<Row> {
    let rate_limited = Expect::Error {
        status: 429,
        kind: "rate_limit_error",
        code: Some("rate_limit_exceeded"),
        says: "Salesforce answered 429",
    };
    vec![
        Row {
            fault: "429 storm, no Retry-After",
            inject: vec![(status(429, None), ALWAYS)],
            expect: rate_limited,
            calls: 3,
            took: FAST,
        },
        Row {
            fault: "429 once, no Retry-After",
            inject: vec![(status(429, None), 1)],
            expect: Expect::Ok,
            calls: 2,
            took: FAST,
        },
        Row {
            fault: "429 storm, Retry-After: 1 (within max_delay): honoured",
            inject: vec![(status(429, Some(1)), ALWAYS)],
            expect: rate_limited,
            calls: 3,
            took: (2.0, 2.9),
        },
        Row {
            fault: "429 storm, Retry-After: 2 (beyond max_delay): no pointless retry",
            inject: vec![(status(429, Some(2)), ALWAYS)],
            expect: rate_limited,
            calls: 1,
            took: FAST,
        },
        Row {
            fault: "423 once",
            inject: vec![(status(423, None), 1)],
            expect: Expect::Ok,
            calls: 2,
            took: FAST,
        },
        Row {
            fault: "423 always",
            inject: vec![(status(423, None), ALWAYS)],
            expect: Expect::Error {
                status: 429,
                kind: "rate_limit_error",
                code: Some("rate_limit_exceeded"),
                says: "Salesforce answered 423",
            },
            calls: 3,
            took: FAST,
        },
        Row {
            fault: "500 once",
            inject: vec![(status(500, None), 1)],
            expect: Expect::Ok,
            calls: 2,
            took: FAST,
        },
        Row {
            fault: "500 always",
            inject: vec![(status(500, None), ALWAYS)],
            expect: Expect::Error {
                status: 502,
                kind: "api_error",
                code: Some("INTERNAL_ERROR"),
                says: "Salesforce answered 500",
            },
            calls: 3,
            took: FAST,
        },
        Row {
            fault: "503 once",
            inject: vec![(status(503, None), 1)],
            expect: Expect::Ok,
            calls: 2,
            took: FAST,
        },
        Row {
            fault: "503 always",
            inject: vec![(status(503, None), ALWAYS)],
            expect: Expect::Error {
                status: 503,
                kind: "api_error",
                code: Some("SERVICE_UNAVAILABLE"),
                says: "Salesforce answered 503",
            },
            calls: 3,
            took: FAST,
        },
        Row {
            fault:
                "connection closed after the request was read, once: not retried (it may have run)",
            inject: vec![(Fault::ConnectionReset, 1)],
            expect: CONNECTION_LOST,
            calls: 1,
            took: FAST,
        },
        Row {
            fault: "connection closed after the request was read, always",
            inject: vec![(Fault::ConnectionReset, ALWAYS)],
            expect: CONNECTION_LOST,
            calls: 1,
            took: FAST,
        },
        Row {
            fault: "upstream slower than one attempt's timeout (3 s > timeout_secs 2): not retried",
            inject: vec![(Fault::Slow(Duration::from_secs(3)), 1)],
            expect: Expect::Error {
                status: 504,
                kind: "api_error",
                code: Some("upstream_timeout"),
                says: "did not answer in time",
            },
            calls: 1,
            took: (1.9, 2.6),
        },
        Row {
            fault: "upstream slower than the deadline (503 + Retry-After: 1, then 3 s)",
            inject: vec![
                (status(503, Some(1)), 1),
                (Fault::Slow(Duration::from_secs(3)), 1),
            ],
            expect: Expect::Error {
                status: 504,
                kind: "api_error",
                code: Some("upstream_timeout"),
                says: "deadline of 3s",
            },
            calls: 2,
            took: (2.9, 3.6),
        },
        Row {
            fault: "truncated JSON",
            inject: vec![(Fault::TruncatedJson, 1)],
            expect: Expect::Error {
                status: 502,
                kind: "api_error",
                code: Some("upstream_invalid_response"),
                says: "",
            },
            calls: 1,
            took: FAST,
        },
        Row {
            fault: "answer larger than the bridge reads: 502, not retried",
            inject: vec![(Fault::Oversized(MAX_ANSWER_BYTES + 1), 1)],
            expect: Expect::Error {
                status: 502,
                kind: "api_error",
                code: Some("upstream_invalid_response"),
                says: "exceeds the limit",
            },
            calls: 1,
            took: FAST,
        },
        Row {
            fault: "malformed JSON (an HTML page)",
            inject: vec![(Fault::MalformedJson, 1)],
            expect: Expect::Error {
                status: 502,
                kind: "api_error",
                code: Some("upstream_invalid_response"),
                says: "",
            },
            calls: 1,
            took: FAST,
        },
    ]
}

/// Checks an answer against a row's expectation.
fn check(fault: &str, expect: Expect, status: u16, body: &Value) {
    match expect {
        Expect::Ok => {
            assert_eq!(status, 200, "{fault}: {body}");
            assert!(
                body["choices"][0]["message"]["content"]
                    .as_str()
                    .is_some_and(|text| text.starts_with("Echo: ")),
                "{fault}: {body}"
            );
        }
        Expect::Error {
            status: want,
            kind,
            code,
            says,
        } => {
            assert_eq!(status, want, "{fault}: {body}");
            assert_eq!(error_kind(body), (kind, code), "{fault}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty() && message.contains(says),
                "{fault}: message {message:?} should say {says:?}"
            );
        }
    }
}

async fn model_fault_matrix(mount: Mount) {
    let gateway = Gateway::start_with(mount, matrix_setup()).await;
    assert_serves(&gateway).await;
    for row in model_rows() {
        run_row(&gateway, row).await;
    }
    gateway.stop().await;
}

/// Injects a row's faults, sends its request and checks the answer, the calls the mock saw and
/// the time taken; then the bridge must serve an ordinary request.
async fn run_row(gateway: &Gateway, row: Row) {
    for (fault, times) in &row.inject {
        gateway.upstream().inject(fault.clone(), *times);
    }
    let before = gateway.counters();
    let started = Instant::now();
    let (status, body) = post_json(
        gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, row.fault),
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    gateway.upstream().clear_faults();
    let after = gateway.counters();

    check(row.fault, row.expect, status, &body);
    assert_eq!(
        after.chat_requests - before.chat_requests,
        row.calls,
        "{}: upstream calls",
        row.fault
    );
    assert_eq!(
        after.token_requests, before.token_requests,
        "{}: no token fetch",
        row.fault
    );
    assert!(
        (row.took.0..row.took.1).contains(&took),
        "{}: took {took:.2} s, expected {:?}",
        row.fault,
        row.took
    );
    assert_serves(gateway).await;
}

/// The value of one series (`name{label="value"}`) in a scrape; 0 when it is absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const LOST_ATTEMPTS: &str =
    r#"sfbridge_upstream_attempts_total{outcome="connection_lost_after_send"}"#;
const LOST_RETRIES: &str =
    r#"sfbridge_upstream_retries_total{reason="connection_lost_after_send"}"#;

async fn a_connection_lost_after_send_is_not_retried(mount: Mount) {
    let gateway = Gateway::start_with(mount, matrix_setup()).await;
    assert_serves(&gateway).await;
    run_row(
        &gateway,
        Row {
            fault: "connection closed after the request was read: one call, 502",
            inject: vec![(Fault::ConnectionReset, ALWAYS)],
            expect: CONNECTION_LOST,
            calls: 1,
            took: FAST,
        },
    )
    .await;
    let scrape = gateway.scrape().await;
    assert_eq!(sample(&scrape, LOST_ATTEMPTS), 1.0, "{scrape}");
    assert!(scrape.contains(LOST_RETRIES), "pre-registered: {scrape}");
    assert_eq!(sample(&scrape, LOST_RETRIES), 0.0, "{scrape}");
    gateway.stop().await;
}

async fn a_connection_lost_after_send_is_retried_when_the_conf_says_so(mount: Mount) {
    let mut setup = matrix_setup();
    setup.retry.push_str("connection_lost_after_send = true\n");
    let gateway = Gateway::start_with(mount, setup).await;
    assert_serves(&gateway).await;
    let rows = [
        Row {
            fault: "connection closed after the request was read, once, resending allowed",
            inject: vec![(Fault::ConnectionReset, 1)],
            expect: Expect::Ok,
            calls: 2,
            took: FAST,
        },
        Row {
            fault: "connection closed after the request was read, always, resending allowed",
            inject: vec![(Fault::ConnectionReset, ALWAYS)],
            expect: CONNECTION_LOST,
            calls: 3,
            took: FAST,
        },
    ];
    for row in rows {
        run_row(&gateway, row).await;
    }
    let scrape = gateway.scrape().await;
    assert_eq!(sample(&scrape, LOST_ATTEMPTS), 4.0, "1 + 3: {scrape}");
    assert_eq!(sample(&scrape, LOST_RETRIES), 3.0, "1 + 2: {scrape}");
    gateway.stop().await;
}

async fn a_connect_error_is_retried(mount: Mount) {
    // A port nothing listens on: the connection is refused, so no request reached anyone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let mut setup = matrix_setup();
    setup.api_base = Some(format!("http://{dead}/einstein/platform/v1"));
    let gateway = Gateway::start_with(mount, setup).await;
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, "nobody there"),
    )
    .await;
    check(
        "nothing listening",
        Expect::Error {
            status: 502,
            kind: "api_error",
            code: Some("upstream_unreachable"),
            says: "cannot connect",
        },
        status,
        &body,
    );
    let scrape = gateway.scrape().await;
    let attempts = r#"sfbridge_upstream_attempts_total{outcome="connect_error"}"#;
    let retries = r#"sfbridge_upstream_retries_total{reason="connect_error"}"#;
    assert_eq!(sample(&scrape, attempts), 3.0, "{scrape}");
    assert_eq!(sample(&scrape, retries), 2.0, "{scrape}");
    assert_eq!(gateway.counters().token_requests, 1);
    assert_eq!(gateway.counters().chat_requests, 0);
    gateway.stop().await;
}

/// One token-endpoint row: a fresh bridge (nothing cached) whose first fetch meets `fault`.
struct TokenRow {
    fault: &'static str,
    inject: TokenFault,
    /// `None`: the request succeeds. `Some(text)`: a 503 whose message (and `/ready` reason)
    /// contains `text`.
    error: Option<&'static str>,
    took: (f64, f64),
}

fn token_rows() -> Vec<TokenRow> {
    vec![
        TokenRow {
            fault: "token endpoint 400",
            inject: TokenFault::Status(400),
            error: Some(
                "rejected the client credentials (400 invalid_client: invalid client credentials)",
            ),
            took: FAST,
        },
        TokenRow {
            fault: "token endpoint 500",
            inject: TokenFault::Status(500),
            error: Some("token endpoint failed (500 server_error: internal server error)"),
            took: FAST,
        },
        TokenRow {
            fault: "token endpoint down (closes the connection)",
            inject: TokenFault::Down,
            error: Some("Salesforce token request failed"),
            took: FAST,
        },
        TokenRow {
            fault: "token endpoint slower than its timeout (3 s > 2 s)",
            inject: TokenFault::Slow(Duration::from_secs(3)),
            error: Some("Salesforce token endpoint timed out"),
            took: (1.9, 2.6),
        },
        TokenRow {
            fault: "token endpoint slow but within its timeout (300 ms)",
            inject: TokenFault::Slow(Duration::from_millis(300)),
            error: None,
            took: (0.3, 1.5),
        },
        TokenRow {
            fault: "token response without access_token",
            inject: TokenFault::NoAccessToken,
            error: Some("Salesforce token response had no access_token"),
            took: FAST,
        },
    ]
}

async fn token_row(mount: Mount, row: TokenRow) {
    let gateway = Gateway::start_with(mount, matrix_setup()).await;
    gateway.upstream().inject_token_fault(row.inject, 1);
    let started = Instant::now();
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, row.fault),
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    let counters = gateway.counters();
    assert_eq!(counters.token_requests, 1, "{}: one fetch", row.fault);
    assert!(
        (row.took.0..row.took.1).contains(&took),
        "{}: took {took:.2} s, expected {:?}",
        row.fault,
        row.took
    );
    let Some(reason) = row.error else {
        check(row.fault, Expect::Ok, status, &body);
        assert_eq!(counters.chat_requests, 1, "{}", row.fault);
        return gateway.stop().await;
    };
    check(
        row.fault,
        Expect::Error {
            status: 503,
            kind: "service_unavailable",
            code: Some("upstream_auth_unavailable"),
            says: reason,
        },
        status,
        &body,
    );
    assert_eq!(counters.chat_requests, 0, "{}: no model call", row.fault);
    assert!(!body.to_string().contains("mock-client-secret"));

    // `/ready` reports the same reason, without fetching again during the cooldown. The rows run
    // at once: on a loaded machine the cooldown may be over before `/ready` is asked, and then it
    // rightly fetches again, so this is checked only when the question came well within it.
    let answered = started + Duration::from_secs_f64(took);
    let asked = Instant::now();
    let (status, ready) = get_json(&gateway, "/ready").await;
    if asked.duration_since(answered) < Duration::from_millis(800) {
        assert_eq!(status, 503, "{}: {ready}", row.fault);
        assert_eq!(ready["status"], "not_ready");
        assert!(
            ready["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(reason),
            "{}: {ready}",
            row.fault
        );
        assert_eq!(gateway.counters().token_requests, 1);
    }

    // The endpoint is back (the fault was for one request): after the 1 s cooldown the next
    // request fetches once and is served, with no restart.
    // The cooldown started when the failed fetch ended, about when the 503 came back.
    let cooled = answered + Duration::from_millis(1100);
    let wait = cooled.saturating_duration_since(Instant::now());
    tokio::time::sleep(wait).await;
    assert_serves(&gateway).await;
    assert_eq!(gateway.counters().token_requests, 2, "{}", row.fault);
    let (status, ready) = get_json(&gateway, "/ready").await;
    assert_eq!((status, &ready["status"]), (200, &Value::from("ready")));
    gateway.stop().await;
}

async fn token_endpoint_fault_matrix(mount: Mount) {
    // Rows are independent (a bridge each), so they run at once.
    join_all(token_rows().into_iter().map(|row| token_row(mount, row))).await;
}

async fn token_revoked_midway(mount: Mount) {
    let gateway = Gateway::start_with(mount, matrix_setup()).await;
    assert_serves(&gateway).await;

    // Revoked: the 401 drops the token, one fetch, one resend.
    gateway.upstream().revoke_tokens();
    let before = gateway.counters();
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, "revoked"),
    )
    .await;
    let after = gateway.counters();
    check("token revoked", Expect::Ok, status, &body);
    assert_eq!(after.chat_requests - before.chat_requests, 2);
    assert_eq!(after.token_requests - before.token_requests, 1);
    assert_serves(&gateway).await;

    // Refused again with the fresh token: 502 naming the likely cause, no loop.
    let refused_too = Expect::Error {
        status: 502,
        kind: "api_error",
        code: Some("upstream_unauthorized"),
        says: "a freshly fetched token was refused too",
    };
    let (status, body, calls) = under_persistent_401(&gateway, "401 twice").await;
    check("401 with the fresh token too", refused_too, status, &body);
    assert_eq!(calls, (2, 1), "(chat calls, token fetches)");
    assert_serves(&gateway).await;

    // Still refused, within the cooldown that refusal started: no token fetch, no resend.
    let (status, body, calls) = under_persistent_401(&gateway, "401 in the cooldown").await;
    check(
        "401 during the refusal cooldown",
        refused_too,
        status,
        &body,
    );
    assert_eq!(calls, (1, 0), "(chat calls, token fetches)");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Revoked while the token endpoint fails: 503 with the reason; served after the cooldown.
    gateway.upstream().revoke_tokens();
    gateway
        .upstream()
        .inject_token_fault(TokenFault::Status(500), 1);
    let before = gateway.counters();
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, "no token"),
    )
    .await;
    let after = gateway.counters();
    check(
        "token revoked, token endpoint 500",
        Expect::Error {
            status: 503,
            kind: "service_unavailable",
            code: Some("upstream_auth_unavailable"),
            says: "token endpoint failed (500",
        },
        status,
        &body,
    );
    assert_eq!(after.chat_requests - before.chat_requests, 1);
    assert_eq!(after.token_requests - before.token_requests, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_serves(&gateway).await;
    gateway.stop().await;
}

/// A chat request while the mock answers every model call 401: the status, the body, and the
/// (chat calls, token fetches) the mock counted for it.
async fn under_persistent_401(gateway: &Gateway, content: &str) -> (u16, Value, (u64, u64)) {
    gateway.upstream().inject(Fault::Unauthorized, ALWAYS);
    let before = gateway.counters();
    let (status, body) =
        post_json(gateway, "/v1/chat/completions", &chat(CHAT_MODEL, content)).await;
    gateway.upstream().clear_faults();
    let after = gateway.counters();
    let calls = (
        after.chat_requests - before.chat_requests,
        after.token_requests - before.token_requests,
    );
    (status, body, calls)
}

async fn token_outage_recovers_without_a_refresh_storm(mount: Mount) {
    let gateway = Arc::new(Gateway::start_with(mount, matrix_setup()).await);
    gateway
        .upstream()
        .inject_token_fault(TokenFault::Status(500), ALWAYS);

    let (status, body) =
        post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "first")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(gateway.counters().token_requests, 1);

    // 50 requests during the cooldown: each gets the reason at once, none fetches.
    let started = Instant::now();
    let client = http();
    let answers = join_all((0..50).map(|i| {
        let gateway = gateway.clone();
        let client = client.clone();
        async move {
            post_json_via(
                &client,
                &gateway,
                "/v1/chat/completions",
                &chat(CHAT_MODEL, &format!("caller {i}")),
            )
            .await
        }
    }))
    .await;
    assert!(started.elapsed() < Duration::from_millis(900), "fail fast");
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(
            error_kind(body),
            ("service_unavailable", Some("upstream_auth_unavailable"))
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("token endpoint failed (500"), "{message}");
        assert!(!message.contains("mock-client-secret"), "{message}");
    }
    let (status, ready) = get_json(&gateway, "/ready").await;
    assert_eq!(status, 503);
    assert!(ready["reason"]
        .as_str()
        .unwrap()
        .contains("token endpoint failed (500"));
    assert_eq!(
        gateway.counters().token_requests,
        1,
        "no fetch during the cooldown"
    );
    assert_eq!(gateway.counters().chat_requests, 0);

    // The endpoint comes back: recovery without a restart, one more fetch.
    gateway.upstream().clear_faults();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_serves(&gateway).await;
    let (status, _) = get_json(&gateway, "/ready").await;
    assert_eq!(status, 200);
    assert_eq!(gateway.counters().token_requests, 2);
    if let Ok(gateway) = Arc::try_unwrap(gateway) {
        gateway.stop().await;
    }
}

async fn full_upstream_answers_overloaded_instead_of_queueing(mount: Mount) {
    let setup = matrix_setup().salesforce("max_concurrent_requests = 1\nqueue_timeout_ms = 100");
    let gateway = Arc::new(Gateway::start_with(mount, setup).await);
    assert_serves(&gateway).await;
    let before = gateway.counters();

    gateway
        .upstream()
        .inject(Fault::Slow(Duration::from_secs(1)), 1);
    let holder = tokio::spawn({
        let gateway = gateway.clone();
        async move { post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "slow")).await }
    });
    // The slow request now holds the only upstream slot.
    let deadline = Instant::now() + Duration::from_secs(5);
    while gateway.counters().chat_requests == before.chat_requests {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, "queued"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        error_kind(&body),
        ("service_unavailable", Some("overloaded"))
    );
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(900),
        "waited the queue timeout, not the slow call: {took:?}"
    );

    let (status, body) = holder.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        gateway.counters().chat_requests - before.chat_requests,
        1,
        "the refused request never reached Salesforce"
    );
    assert_serves(&gateway).await;
    if let Ok(gateway) = Arc::try_unwrap(gateway) {
        gateway.stop().await;
    }
}

async fn the_deadline_bounds_retries(mount: Mount) {
    // Ten attempts allowed, each 429 asks for 1 s: only the deadline (3 s) stops the retries.
    let mut setup = matrix_setup();
    setup.retry = "max_attempts = 10\nbase_delay_ms = 10\nmax_delay_ms = 1500\n".to_owned();
    let gateway = Gateway::start_with(mount, setup).await;
    assert_serves(&gateway).await;
    gateway.upstream().inject(status(429, Some(1)), ALWAYS);
    let before = gateway.counters();
    let started = Instant::now();
    let (status, body) =
        post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "storm")).await;
    let took = started.elapsed();
    gateway.upstream().clear_faults();
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        error_kind(&body),
        ("rate_limit_error", Some("rate_limit_exceeded"))
    );
    assert_eq!(
        gateway.counters().chat_requests - before.chat_requests,
        3,
        "attempts at 0, 1 and 2 s; a fourth would start after the deadline"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    assert_serves(&gateway).await;
    gateway.stop().await;
}

async fn the_deadline_bounds_the_wait_for_a_token(mount: Mount) {
    // The deadline counts from the request's arrival, so a token endpoint slower than it cannot
    // stretch a request past it: 504 after 2 s, not an answer after 5.
    let timed_out = Expect::Error {
        status: 504,
        kind: "api_error",
        code: Some("upstream_timeout"),
        says: "deadline of 2s",
    };
    let setup = Setup::default().salesforce("request_deadline_secs = 2");
    let gateway = Gateway::start_with(mount, setup).await;
    gateway
        .upstream()
        .inject_token_fault(TokenFault::Slow(Duration::from_secs(5)), 1);
    let started = Instant::now();
    let (status, body) =
        post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "first")).await;
    let took = started.elapsed();
    check("token endpoint answers after 5 s", timed_out, status, &body);
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "first token: {took:?}"
    );
    println!("{mount:?}: 504 after {took:?} waiting for a first token");
    assert_eq!(gateway.counters().chat_requests, 0);

    // The fetch was not abandoned with the request: its token lands and is used, no second fetch.
    tokio::time::sleep(Duration::from_millis(5300).saturating_sub(started.elapsed())).await;
    assert_serves(&gateway).await;
    assert_eq!(gateway.counters().token_requests, 1);

    // After a 401 the resend waits for a new token: the same deadline bounds that wait.
    gateway.upstream().revoke_tokens();
    gateway
        .upstream()
        .inject_token_fault(TokenFault::Slow(Duration::from_secs(5)), 1);
    let started = Instant::now();
    let (status, body) = post_json(
        &gateway,
        "/v1/chat/completions",
        &chat(CHAT_MODEL, "revoked"),
    )
    .await;
    let took = started.elapsed();
    check("401, then a token after 5 s", timed_out, status, &body);
    assert!(took < Duration::from_millis(3500), "after a 401: {took:?}");
    assert_eq!(gateway.counters().token_requests, 2);
    println!("{mount:?}: 504 after {took:?} waiting for a token after a 401");
    gateway.stop().await;
}

/// Sends `count` chat requests one after another through `client`: each one's status (0 when it
/// got no answer in the client's timeout) and latency.
async fn latencies(
    client: &reqwest::Client,
    gateway: &Gateway,
    count: usize,
    label: &str,
) -> Vec<(u16, Duration)> {
    let mut measured = Vec::with_capacity(count);
    for i in 0..count {
        let sent = Instant::now();
        let answer = client
            .post(gateway.url("/v1/chat/completions"))
            .json(&chat(CHAT_MODEL, &format!("{label} {i}")))
            .send()
            .await;
        let status = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map_or(0, |_| status)
            }
            Err(_) => 0,
        };
        measured.push((status, sent.elapsed()));
    }
    measured
}

/// The p99 of `measured`: with 20 samples, the slowest.
fn p99(measured: &[(u16, Duration)]) -> Duration {
    let mut times: Vec<Duration> = measured.iter().map(|(_, took)| *took).collect();
    times.sort();
    let rank = (times.len() * 99).div_ceil(100).max(1);
    times.get(rank - 1).copied().unwrap_or_default()
}

async fn a_hanging_token_endpoint_delays_nobody_while_the_token_is_valid(mount: Mount) {
    // The first token is opaque, so the bridge believes `token_ttl_secs`: with this skew it is
    // fresh for 4 s (half its lifetime) and valid for 8 s. Every fetch after it hangs for a
    // minute, longer than the bridge's 30 s token timeout.
    let setup = Setup::default().salesforce("token_ttl_secs = 8\ntoken_refresh_skew_secs = 7");
    let gateway = Gateway::start_with(mount, setup).await;
    gateway.upstream().inject_token_fault(TokenFault::NotJwt, 1);
    gateway
        .upstream()
        .inject_token_fault(TokenFault::Slow(Duration::from_secs(60)), ALWAYS);
    // Short enough that a request stuck behind the hanging fetch fails the test quickly.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_serves(&gateway).await;
    let fetched = Instant::now();
    assert_eq!(gateway.counters().token_requests, 1);
    let baseline = latencies(&client, &gateway, 20, "baseline").await;

    // Into the refresh window, 4 s before the token expires: the first request starts the
    // (hanging) refresh and all of them keep the cached token.
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(fetched.elapsed())).await;
    let window = latencies(&client, &gateway, 20, "window").await;
    // Past 8 s the token has expired and waiting is right: say so if a slow machine got there.
    let ended = format!(
        "the window requests ended {:?} after the token fetch (it expires at 8 s)",
        fetched.elapsed()
    );

    let failed: Vec<_> = window.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "in the refresh window: {failed:?}; {ended}"
    );
    let (normal, refreshing) = (p99(&baseline), p99(&window));
    // Twice normal, with a floor a loaded 2-core machine cannot reach by accident (a request
    // waiting on the hanging fetch would take 10 s).
    let limit = (normal * 2).max(Duration::from_millis(500));
    assert!(
        refreshing <= limit,
        "p99 {refreshing:?} while refreshing vs {normal:?} normally (limit {limit:?}); {ended}"
    );
    assert_eq!(
        gateway.counters().token_requests,
        2,
        "one refresh, in the background, for all the requests"
    );
    let scrape = gateway.scrape().await;
    assert!(
        scrape.contains(r#"sfbridge_token_cache_total{event="refresh_ahead"} 1"#),
        "{scrape}"
    );
    println!("{mount:?}: p99 {normal:?} normally, {refreshing:?} with the token endpoint hanging");
    gateway.stop().await;
}

async fn thousand_concurrent_requests_at_token_expiry_fetch_one_token(mount: Mount) {
    common::callers_at_token_expiry_fetch_one_token(mount, 1000).await;
}
