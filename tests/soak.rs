//! The soak test: 100,000 requests through each mount, 1% of them meeting an injected fault, with
//! every answer checked and the process's resident memory compared before and after.
//!
//! Ignored by default; run it with
//!
//! ```text
//! cargo test --release --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! Bounded: each mount stops after `SOAK_REQUESTS` requests (default 100,000) or `SOAK_MAX_SECS`
//! seconds (default 600), whichever comes first; `SOAK_CONCURRENCY` (default 32) requests are in
//! flight at once, `SOAK_SEED` fixes the random sequence. Before the measured run, a warm-up of
//! `SOAK_WARMUP` requests (default 20,000, same mix) lets pools and allocator arenas reach their
//! working size (resident memory settles after 20,000 to 30,000 requests); resident memory
//! (`VmRSS`) after the run must be within 10% of its level after the warm-up. It is sampled every
//! 10,000 requests and printed, so a slow leak shows as a rising series, not only as a failure.
//!
//! The mock's fault queue is global, so a faulted request runs alone: the ordinary requests before
//! it are drained, its fault is injected, it is sent, and its answer and upstream call count are
//! checked exactly; then the ordinary traffic resumes.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use sf_models_bridge::mock::Fault;

use common::{chat, error_kind, Gateway, Mount, Setup, CHAT_MODEL};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Requests drawn, run and sampled at a time.
const CHUNK: u64 = 10_000;

/// An ordinary request.
#[derive(Debug, Clone, Copy)]
enum Plain {
    Chat,
    Text,
    StreamedChat,
}

/// An injected fault and what the caller and the mock must see.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// `None`: revoke every issued token instead of injecting a model fault.
    fault: Option<(FaultKind, u32)>,
    /// 200, or the error's status and type.
    status: u16,
    kind: &'static str,
    /// Model calls for this request.
    calls: u64,
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    Status(u16),
    Unauthorized,
    Slow,
    Truncated,
    Malformed,
    Reset,
}

impl FaultKind {
    fn fault(self) -> Fault {
        match self {
            FaultKind::Status(status) => Fault::Status {
                status,
                retry_after_secs: None,
            },
            FaultKind::Unauthorized => Fault::Unauthorized,
            FaultKind::Slow => Fault::Slow(Duration::from_millis(50)),
            FaultKind::Truncated => Fault::TruncatedJson,
            FaultKind::Malformed => Fault::MalformedJson,
            FaultKind::Reset => Fault::ConnectionReset,
        }
    }
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "429 storm",
        fault: Some((FaultKind::Status(429), 3)),
        status: 429,
        kind: "rate_limit_error",
        calls: 3,
    },
    Scenario {
        name: "429 once",
        fault: Some((FaultKind::Status(429), 1)),
        status: 200,
        kind: "",
        calls: 2,
    },
    Scenario {
        name: "423 once",
        fault: Some((FaultKind::Status(423), 1)),
        status: 200,
        kind: "",
        calls: 2,
    },
    Scenario {
        name: "500 always",
        fault: Some((FaultKind::Status(500), 3)),
        status: 502,
        kind: "api_error",
        calls: 3,
    },
    Scenario {
        name: "503 once",
        fault: Some((FaultKind::Status(503), 1)),
        status: 200,
        kind: "",
        calls: 2,
    },
    Scenario {
        name: "503 always",
        fault: Some((FaultKind::Status(503), 3)),
        status: 503,
        kind: "api_error",
        calls: 3,
    },
    Scenario {
        name: "400",
        fault: Some((FaultKind::Status(400), 1)),
        status: 400,
        kind: "invalid_request_error",
        calls: 1,
    },
    Scenario {
        // Closed after the request was read: the generation may have run, so no resend.
        name: "connection lost after send",
        fault: Some((FaultKind::Reset, 1)),
        status: 502,
        kind: "api_error",
        calls: 1,
    },
    Scenario {
        name: "truncated JSON",
        fault: Some((FaultKind::Truncated, 1)),
        status: 502,
        kind: "api_error",
        calls: 1,
    },
    Scenario {
        name: "malformed JSON",
        fault: Some((FaultKind::Malformed, 1)),
        status: 502,
        kind: "api_error",
        calls: 1,
    },
    Scenario {
        name: "401 once",
        fault: Some((FaultKind::Unauthorized, 1)),
        status: 200,
        kind: "",
        calls: 2,
    },
    Scenario {
        name: "tokens revoked",
        fault: None,
        status: 200,
        kind: "",
        calls: 2,
    },
    Scenario {
        name: "slow 50 ms",
        fault: Some((FaultKind::Slow, 1)),
        status: 200,
        kind: "",
        calls: 1,
    },
];

/// One request of the sequence.
#[derive(Debug, Clone, Copy)]
enum Step {
    Plain(Plain),
    Faulted(&'static Scenario),
}

fn sequence(rng: &mut fastrand::Rng, n: u64) -> Vec<Step> {
    (0..n)
        .map(|_| {
            if rng.u32(0..100) == 0 {
                Step::Faulted(&SCENARIOS[rng.usize(0..SCENARIOS.len())])
            } else {
                Step::Plain(match rng.u32(0..100) {
                    0..80 => Plain::Chat,
                    80..95 => Plain::Text,
                    _ => Plain::StreamedChat,
                })
            }
        })
        .collect()
}

/// Outcomes by class, and what went wrong.
#[derive(Default)]
struct Tally {
    classes: BTreeMap<String, u64>,
    unexpected: Vec<String>,
    sent: u64,
}

impl Tally {
    fn count(&mut self, class: String) {
        *self.classes.entry(class).or_default() += 1;
        self.sent += 1;
    }

    fn wrong(&mut self, what: String) {
        if self.unexpected.len() < 20 {
            self.unexpected.push(what);
        }
        self.count("UNEXPECTED".to_owned());
    }
}

/// Sends one ordinary request; `Ok(class)` when it was answered as it should be.
async fn plain(
    client: &reqwest::Client,
    gateway: &Gateway,
    plain: Plain,
    i: u64,
) -> Result<String, String> {
    let content = format!("soak {i}");
    let (path, body) = match plain {
        Plain::Chat => ("/v1/chat/completions", chat(CHAT_MODEL, &content)),
        Plain::Text => (
            "/v1/completions",
            json!({"model": CHAT_MODEL, "prompt": content}),
        ),
        Plain::StreamedChat => (
            "/v1/chat/completions",
            json!({"model": CHAT_MODEL, "stream": true,
                   "messages": [{"role": "user", "content": content}]}),
        ),
    };
    let response = client
        .post(gateway.url(path))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{plain:?} #{i}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{plain:?} #{i}: body: {e}"))?;
    let expected = format!("Echo: {content}");
    let ok = status == 200
        && match plain {
            Plain::Chat => serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v["choices"][0]["message"]["content"] == expected.as_str()),
            Plain::Text => serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v["choices"][0]["text"] == expected.as_str()),
            Plain::StreamedChat => text.contains(&content) && text.ends_with("data: [DONE]\n\n"),
        };
    if ok {
        Ok(format!("200 {plain:?}"))
    } else {
        Err(format!(
            "{plain:?} #{i}: {status} {}",
            text.chars().take(300).collect::<String>()
        ))
    }
}

/// Sends one request alone, after injecting its fault; checks status, type and upstream calls.
async fn faulted(
    client: &reqwest::Client,
    gateway: &Gateway,
    scenario: &Scenario,
    i: u64,
) -> Result<String, String> {
    match scenario.fault {
        Some((kind, times)) => gateway.upstream().inject(kind.fault(), times),
        None => gateway.upstream().revoke_tokens(),
    }
    let before = gateway.counters();
    let response = client
        .post(gateway.url("/v1/chat/completions"))
        .json(&chat(CHAT_MODEL, &format!("faulted {i}")))
        .send()
        .await
        .map_err(|e| format!("{} #{i}: {e}", scenario.name))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let calls = gateway.counters().chat_requests - before.chat_requests;
    gateway.upstream().clear_faults();
    let kind_ok = if scenario.status == 200 {
        body["choices"][0]["message"]["content"] == format!("Echo: faulted {i}").as_str()
    } else {
        error_kind(&body).0 == scenario.kind
    };
    if status == scenario.status && kind_ok && calls == scenario.calls {
        Ok(format!("{} {} ({})", scenario.status, scenario.kind, scenario.name).replace("  ", " "))
    } else {
        Err(format!(
            "{} #{i}: got {status} after {calls} calls, want {} {} after {}: {body}",
            scenario.name, scenario.status, scenario.kind, scenario.calls
        ))
    }
}

/// Runs `steps`: ordinary ones `concurrency` at a time, each faulted one alone.
async fn run(
    client: &reqwest::Client,
    gateway: &Gateway,
    steps: &[Step],
    first: u64,
    concurrency: usize,
    until: Instant,
    tally: &mut Tally,
) {
    let mut i = first;
    let mut rest = steps;
    while !rest.is_empty() && Instant::now() < until {
        let plain_run = rest
            .iter()
            .take_while(|step| matches!(step, Step::Plain(_)))
            .count();
        let (batch, after) = rest.split_at(plain_run);
        let results: Vec<_> =
            futures_util::stream::iter(batch.iter().enumerate().map(|(k, step)| {
                let Step::Plain(kind) = *step else {
                    unreachable!()
                };
                plain(client, gateway, kind, i + k as u64)
            }))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for result in results {
            match result {
                Ok(class) => tally.count(class),
                Err(what) => tally.wrong(what),
            }
        }
        i += plain_run as u64;
        rest = after;
        if let Some((Step::Faulted(scenario), after)) = rest.split_first() {
            match faulted(client, gateway, scenario, i).await {
                Ok(class) => tally.count(class),
                Err(what) => tally.wrong(what),
            }
            i += 1;
            rest = after;
        }
    }
}

async fn soak_mount(mount: Mount) {
    let total = env_or("SOAK_REQUESTS", 100_000);
    let warmup = env_or("SOAK_WARMUP", 20_000);
    let cap = Duration::from_secs(env_or("SOAK_MAX_SECS", 600));
    let concurrency = env_or("SOAK_CONCURRENCY", 32) as usize;
    let seed = env_or("SOAK_SEED", 20_260_101);
    let mut rng = fastrand::Rng::with_seed(seed);

    let setup = Setup::default().salesforce("max_concurrent_requests = 256");
    let gateway = Gateway::start_with(mount, setup).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let until = started + cap;

    // Steps are drawn `CHUNK` at a time, so the test's own bookkeeping stays the same size
    // throughout and is not counted as the bridge's growth.
    let mut warm_tally = Tally::default();
    for first in (0..warmup).step_by(CHUNK as usize) {
        let steps = sequence(&mut rng, CHUNK.min(warmup - first));
        run(
            &client,
            &gateway,
            &steps,
            first,
            concurrency,
            until,
            &mut warm_tally,
        )
        .await;
    }
    let rss_warm = vm_rss_kib();
    println!(
        "[{mount:?}] warm-up: {} requests in {:.1} s, VmRSS {} KiB",
        warm_tally.sent,
        started.elapsed().as_secs_f64(),
        rss_warm
    );

    let mut tally = Tally::default();
    let measured = Instant::now();
    let mut rss_samples = Vec::with_capacity((total / CHUNK + 1) as usize);
    for first in (0..total).step_by(CHUNK as usize) {
        let steps = sequence(&mut rng, CHUNK.min(total - first));
        run(
            &client,
            &gateway,
            &steps,
            warmup + first,
            concurrency,
            until,
            &mut tally,
        )
        .await;
        rss_samples.push(vm_rss_kib());
    }
    let elapsed = measured.elapsed().as_secs_f64();
    let rss_end = vm_rss_kib();
    let growth = (rss_end as f64 - rss_warm as f64) / rss_warm as f64 * 100.0;

    println!(
        "[{mount:?}] {} requests in {elapsed:.1} s: {:.0} req/s, concurrency {concurrency}, seed {seed}",
        tally.sent,
        tally.sent as f64 / elapsed
    );
    println!("[{mount:?}] VmRSS after warm-up {rss_warm} KiB, after the run {rss_end} KiB ({growth:+.1}%); every 10k requests (KiB): {rss_samples:?}");
    println!("[{mount:?}] mock counters: {:?}", gateway.counters());
    for (class, count) in &tally.classes {
        println!("[{mount:?}]   {count:>7}  {class}");
    }
    for what in &tally.unexpected {
        println!("[{mount:?}] UNEXPECTED: {what}");
    }
    let (status, health) = common::get_json(&gateway, "/health").await;
    assert_eq!(status, 200, "{health}");
    gateway.stop().await;

    assert!(
        tally.unexpected.is_empty() && warm_tally.unexpected.is_empty(),
        "[{mount:?}] unexpected outcomes: {:?} {:?}",
        warm_tally.unexpected,
        tally.unexpected
    );
    if tally.sent < total {
        println!(
            "[{mount:?}] stopped at the {} s time cap after {} of {total} requests",
            cap.as_secs(),
            tally.sent
        );
    }
    assert!(
        growth <= 10.0,
        "[{mount:?}] VmRSS grew {growth:.1}% ({rss_warm} → {rss_end} KiB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak: cargo test --release --all-features --test soak -- --ignored --nocapture"]
async fn soak_each_mount() {
    // One after the other, in one test, so each mount's memory is measured alone.
    soak_mount(Mount::Axum).await;
    #[cfg(feature = "pingora")]
    soak_mount(Mount::Pingora).await;
}
