//! The end-to-end load benchmark (`make bench`): everything on 127.0.0.1, bounded in time.
//!
//! It starts the mock Salesforce in fast mode (a canned 2 KB answer, no checks), two proxies in
//! front of it that forward without translating, the baselines: a plain Pingora pass-through
//! (examples/passthrough_proxy.rs) and a plain nginx `proxy_pass` (a master and one worker per
//! CPU, keep-alive upstream connections; skipped, saying so, where nginx is not installed), and
//! both mounts of the bridge (examples/axum_app.rs and examples/pingora_gateway.rs on
//! benches/bench.toml), then drives them with `wrk`:
//!
//! - latency at concurrency 1 (1 KB prompt, 2 KB answer), p50 and p99, for each target; the
//!   added latency of a mount is its figure minus the same request shape sent straight to the
//!   mock's `chat-generations`; each target is measured in several interleaved rounds and the
//!   round with the lowest p99 is kept;
//! - throughput at concurrency 32 and 128, and the CPU time (`/proc/<pid>/stat` utime + stime)
//!   each server spent per completed request (nginx: its master and workers together), as a
//!   ratio to each baseline's;
//! - resident memory (`/proc/<pid>/status`; nginx: its processes added up): idle, after warm-up,
//!   with 1,000 open keep-alive connections, and after the load stops;
//! - the token endpoint calls the mock counted over the whole run.
//!
//! It prints a table and writes it into BENCHMARKS.md, between the `load:begin` and `load:end`
//! markers (the rest of the file is left alone), with the machine it ran on and the micro-benchmark
//! means criterion left in `target/criterion`.
//!
//! The binaries must be built first (`make bench` does it):
//!
//! ```text
//! cargo build --release --features pingora --example mock_salesforce --example axum_app \
//!     --example pingora_gateway --example passthrough_proxy
//! cargo bench --features pingora --bench load
//! ```
//!
//! Knobs (environment): `BENCH_SECS` (seconds per throughput run, default 2), `BENCH_ROUNDS`
//! (concurrency-1 rounds of 1 s runs, default 8), `BENCH_PORT_BASE` (default 18180; five ports from there),
//! `BENCH_OUT` (default BENCHMARKS.md in the crate root; `-` to skip writing), `BENCH_NOTE` (a
//! line added under the table, e.g. what else the machine was doing), `BENCH_BINARIES` (where the
//! example binaries are, default `target/release/examples`: to compare two builds).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::{
    bench_note, bench_out, clock_ticks_per_sec, crate_root, ensure_free, env_number, examples_dir,
    first_line_of, loadavg, machine, mock_counter, total_cpu_ticks, total_memory, verdict,
    wait_for_port, write_into, Error, Memory, Nginx, Servers,
};

const MODEL_PATH: &str =
    "/einstein/platform/v1/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations";
const ANSWER_BYTES: usize = 2048;
const PROMPT_BYTES: usize = 1024;
const IDLE_CONNECTIONS: usize = 1000;
/// Seconds per concurrency-1 run: short runs, many rounds, so some fall in a quiet moment.
const C1_SECS: u64 = 1;
/// Rounds of the concurrency-32 and -128 runs.
const LOAD_ROUNDS: usize = 3;
/// Rounds of the concurrency-1 runs with every process on one CPU.
const PINNED_ROUNDS: usize = 6;

/// The issues' goals.
const GOAL_P50_US: f64 = 60.0;
/// Against nginx (performance-2): added p50 and p99 at concurrency 1, and CPU per request.
const GOAL_NGINX_P50: f64 = 1.5;
const GOAL_NGINX_P99: f64 = 2.0;
const GOAL_NGINX_CPU: f64 = 1.5;
const GOAL_P99_US: f64 = 100.0;
const GOAL_CPU_RATIO: f64 = 1.5;
const GOAL_IDLE_MB: f64 = 30.0;
const GOAL_CONNS_MB: f64 = 150.0;
/// resilience-2: unauthenticated uploads must not make the gateway buffer.
const GOAL_UPLOADS_OVER_IDLE_MB: f64 = 50.0;
const GOAL_SETTLE: f64 = 0.10;
/// A direct p99 above this means other work on the machine set every p99 of the run, so p99
/// differences say nothing about the proxies (a quiet run here measures 30–110 µs).
const QUIET_DIRECT_P99_US: f64 = 250.0;

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        // `cargo bench -- --list` and test harness probes: nothing to list.
        return;
    }
    if let Err(error) = run() {
        eprintln!("load benchmark failed: {error}");
        std::process::exit(1);
    }
}

struct Settings {
    secs: u64,
    rounds: usize,
    port_base: u16,
    out: Option<PathBuf>,
    note: Option<String>,
}

impl Settings {
    fn from_env() -> Result<Self, Error> {
        Ok(Self {
            secs: env_number("BENCH_SECS", 2)?.max(1),
            rounds: env_number("BENCH_ROUNDS", 8)?.max(1) as usize,
            port_base: u16::try_from(env_number("BENCH_PORT_BASE", 18180)?)?,
            out: bench_out(),
            note: bench_note(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// wrk

const WRK_SCRIPT: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(s, lat, req)
  io.write(string.format("RESULT %d %d %d %d %d %d\n", s.requests, s.duration, s.errors.status,
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout,
    lat:percentile(50), lat:percentile(99)))
end
"#;

#[derive(Debug, Clone, Copy)]
struct WrkResult {
    requests: u64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

struct Wrk {
    script: PathBuf,
    secs: u64,
    /// Run wrk on this CPU only (the pinned concurrency-1 rounds).
    cpu: Option<usize>,
}

impl Wrk {
    fn run(
        &self,
        url: &str,
        body: &Path,
        connections: usize,
        secs: u64,
    ) -> Result<WrkResult, Error> {
        let threads = connections.clamp(1, 2).to_string();
        let mut command = match self.cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", &cpu.to_string(), "wrk"]);
                command
            }
            None => Command::new("wrk"),
        };
        let out = command
            .args(["-t", &threads, "-c", &connections.to_string()])
            .args(["-d", &format!("{secs}s"), "--timeout", "5s", "-s"])
            .arg(&self.script)
            .arg(url)
            .env("BENCH_BODY", body)
            .output()
            .map_err(|e| format!("cannot run wrk ({e}); install it (`make bench` does)"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("RESULT "))
            .ok_or_else(|| format!("wrk printed no result for {url}:\n{text}"))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [requests, duration_us, status_errors, socket_errors, p50, p99] = n[..] else {
            return Err(format!("unexpected wrk result: {line}").into());
        };
        if status_errors > 0 || socket_errors > 0 || requests == 0 {
            return Err(format!(
                "{url}: {requests} requests, {status_errors} non-2xx answers, {socket_errors} socket errors"
            )
            .into());
        }
        Ok(WrkResult {
            requests,
            rps: requests as f64 / (duration_us as f64 / 1e6),
            p50_us: p50 as f64,
            p99_us: p99 as f64,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Idle connections

/// Opens `n` connections that each start an upload without a key: a head declaring a 1 MiB body,
/// then a few bytes of it, never the rest. The bridge should refuse each on its head and hold
/// none of their bodies.
fn open_keyless_uploads(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>, Error> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n\
              Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"model\": ",
        )?;
        streams.push(stream);
    }
    Ok(streams)
}

/// Opens `n` keep-alive connections to `addr`, each after one complete `GET /health`, and keeps
/// them open (idle) until the vector is dropped.
fn open_idle_connections(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>, Error> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")?;
        read_response(&mut stream)?;
        streams.push(stream);
    }
    Ok(streams)
}

/// Reads one response with a `Content-Length` body.
fn read_response(stream: &mut TcpStream) -> Result<(), Error> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err("connection closed before the response ended".into());
        }
        buf.extend_from_slice(&chunk[..read]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .ok_or("response without content-length")?;
        if buf.len() >= end + 4 + length {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

fn text(len: usize) -> String {
    const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
                          tempor incididunt ut labore et dolore magna aliqua. ";
    FILLER.chars().cycle().take(len).collect()
}

/// The conversation of every request: about 1 KB of message text.
fn messages() -> serde_json::Value {
    serde_json::json!([
        {"role": "system", "content": text(300)},
        {"role": "user", "content": text(100)},
        {"role": "assistant", "content": text(200)},
        {"role": "user", "content": text(PROMPT_BYTES - 600)},
    ])
}

// ---------------------------------------------------------------------------------------------
// The run

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Target {
    Direct,
    Passthrough,
    Nginx,
    Axum,
    Pingora,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct to the mock",
            Target::Passthrough => "Pingora pass-through",
            Target::Nginx => "nginx `proxy_pass`",
            Target::Axum => "bridge, axum mount",
            Target::Pingora => "bridge, Pingora mount",
        }
    }

    fn is_bridge(self) -> bool {
        matches!(self, Target::Axum | Target::Pingora)
    }
}

struct Endpoint {
    addr: SocketAddr,
    /// The server's processes: one, or nginx's master and workers.
    pids: Vec<u32>,
}

/// The least p50 and the least p99 of a target over the concurrency-1 rounds: other work on the
/// machine only ever adds to them.
#[derive(Debug, Clone, Copy)]
struct Best {
    p50_us: f64,
    p99_us: f64,
}

impl Best {
    fn keep(best: &mut BTreeMap<Target, Best>, target: Target, result: WrkResult) {
        let entry = best.entry(target).or_insert(Best {
            p50_us: f64::INFINITY,
            p99_us: f64::INFINITY,
        });
        entry.p50_us = entry.p50_us.min(result.p50_us);
        entry.p99_us = entry.p99_us.min(result.p99_us);
    }
}

#[derive(Default)]
struct Figures {
    /// Concurrency 1, plain requests.
    c1: BTreeMap<Target, Best>,
    /// Concurrency 1, `stream: true` (bridge mounts only).
    c1_stream: BTreeMap<Target, Best>,
    /// Concurrency 1, every process on one CPU.
    c1_pinned: BTreeMap<Target, Best>,
    /// (throughput, CPU µs per request) by concurrency.
    load: BTreeMap<(usize, Target), (WrkResult, f64)>,
    idle: BTreeMap<Target, Memory>,
    warm_light: BTreeMap<Target, Memory>,
    warm: BTreeMap<Target, Memory>,
    after_load: BTreeMap<Target, Memory>,
    conns: BTreeMap<Target, Memory>,
    after: BTreeMap<Target, Memory>,
    /// With `IDLE_CONNECTIONS` keyless uploads that declare a large body (bridge mounts only).
    uploads: BTreeMap<Target, Memory>,
    token_requests: Option<u64>,
    /// Model calls the mock answered, all targets together.
    model_calls: u64,
    /// nginx's version, or `None` when it is not installed (no nginx figures).
    nginx: Option<String>,
    elapsed: Duration,
}

fn run() -> Result<(), Error> {
    let started = Instant::now();
    let settings = Settings::from_env()?;
    let examples = examples_dir()?;
    let work = std::env::temp_dir().join(format!("sfbridge-load-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let load_before = loadavg();

    // Bodies and the wrk script.
    let openai = work.join("openai.json");
    let openai_stream = work.join("openai-stream.json");
    let models_api = work.join("models-api.json");
    let request = |stream: bool| {
        serde_json::json!({"model": "gpt-4o-mini", "messages": messages(), "temperature": 0.2,
                           "max_tokens": 512, "stream": stream})
    };
    fs::write(&openai, serde_json::to_vec(&request(false))?)?;
    fs::write(&openai_stream, serde_json::to_vec(&request(true))?)?;
    fs::write(
        &models_api,
        serde_json::to_vec(&serde_json::json!({"messages": messages()}))?,
    )?;
    let mut wrk = Wrk {
        script: work.join("post.lua"),
        secs: settings.secs,
        cpu: None,
    };
    fs::write(&wrk.script, WRK_SCRIPT)?;

    // The servers.
    let port = |offset: u16| SocketAddr::from(([127, 0, 0, 1], settings.port_base + offset));
    let (mock_addr, pass_addr, axum_addr, pingora_addr) = (port(0), port(1), port(2), port(3));
    let nginx_addr = port(4);
    for addr in [mock_addr, pass_addr, axum_addr, pingora_addr, nginx_addr] {
        ensure_free(addr)?;
    }
    let nginx = Nginx::find();
    let mut servers = Servers::default();
    let mock_pid = servers.spawn(
        "mock_salesforce",
        &examples.join("mock_salesforce"),
        &[
            "--listen",
            &mock_addr.to_string(),
            "--fast",
            "--answer-bytes",
            &ANSWER_BYTES.to_string(),
        ],
        &[],
        &work.join("mock.log"),
    )?;
    wait_for_port(mock_addr, &mut servers)?;
    let pass_pid = servers.spawn(
        "passthrough_proxy",
        &examples.join("passthrough_proxy"),
        &[
            "--listen",
            &pass_addr.to_string(),
            "--upstream",
            &mock_addr.to_string(),
            "--threads",
            "2",
            "--no-work-stealing",
        ],
        &[],
        &work.join("passthrough.log"),
    )?;
    let conf = crate_root().join("benches/bench.toml");
    let conf = conf.to_string_lossy().into_owned();
    let bridge_env = |listen: SocketAddr| {
        vec![
            ("BENCH_LISTEN", listen.to_string()),
            ("BENCH_MOCK", mock_addr.to_string()),
        ]
    };
    let axum_pid = servers.spawn(
        "axum_app",
        &examples.join("axum_app"),
        &["--config", &conf],
        &bridge_env(axum_addr),
        &work.join("axum.log"),
    )?;
    let pingora_pid = servers.spawn(
        "pingora_gateway",
        &examples.join("pingora_gateway"),
        &["--config", &conf],
        &bridge_env(pingora_addr),
        &work.join("pingora.log"),
    )?;
    for addr in [pass_addr, axum_addr, pingora_addr] {
        wait_for_port(addr, &mut servers)?;
    }
    let mut endpoints: BTreeMap<Target, Endpoint> = [
        (Target::Direct, mock_addr, mock_pid),
        (Target::Passthrough, pass_addr, pass_pid),
        (Target::Axum, axum_addr, axum_pid),
        (Target::Pingora, pingora_addr, pingora_pid),
    ]
    .into_iter()
    .map(|(target, addr, pid)| {
        (
            target,
            Endpoint {
                addr,
                pids: vec![pid],
            },
        )
    })
    .collect();
    if let Some(nginx) = &nginx {
        let pids = servers.spawn_nginx(nginx, &work.join("nginx"), nginx_addr, mock_addr, true)?;
        endpoints.insert(
            Target::Nginx,
            Endpoint {
                addr: nginx_addr,
                pids,
            },
        );
    }
    // Every target of the run, in the tables' order.
    let targets: Vec<Target> = endpoints.keys().copied().collect();
    let proxies: Vec<Target> = targets
        .iter()
        .copied()
        .filter(|&target| target != Target::Direct)
        .collect();
    let url = |target: Target| {
        let addr = endpoints[&target].addr;
        if target.is_bridge() {
            format!("http://{addr}/v1/chat/completions")
        } else {
            format!("http://{addr}{MODEL_PATH}")
        }
    };
    let body = |target: Target| {
        if target.is_bridge() {
            &openai
        } else {
            &models_api
        }
    };

    let mut figures = Figures {
        nginx: nginx.as_ref().map(Nginx::version),
        ..Figures::default()
    };
    let memory = |target: Target| total_memory(&endpoints[&target].pids);
    sleep(Duration::from_secs(1));
    for &target in &proxies {
        figures.idle.insert(target, memory(target)?);
    }

    // Warm-up: a light run, then one pass of the load itself (concurrency 128 and 32), so that
    // connection pools and allocator arenas are as large as the load makes them. Memory after the
    // load is compared with this level; the light level is shown too.
    eprintln!("warming up...");
    for &target in &targets {
        wrk.run(&url(target), body(target), 8, 1)?;
    }
    for &target in &proxies {
        figures.warm_light.insert(target, memory(target)?);
    }
    for connections in [128, 32] {
        for &target in &targets {
            wrk.run(&url(target), body(target), connections, 1)?;
        }
    }
    sleep(Duration::from_secs(1));
    for &target in &proxies {
        figures.warm.insert(target, memory(target)?);
    }

    eprintln!(
        "latency at concurrency 1: {} rounds of {} s per target...",
        settings.rounds, C1_SECS
    );
    for round in 1..=settings.rounds {
        // Interleaved, so that a busy moment on the machine hits every target alike.
        let mut line = format!("  round {round}: p50/p99 µs");
        for &target in &targets {
            let result = wrk.run(&url(target), body(target), 1, C1_SECS)?;
            Best::keep(&mut figures.c1, target, result);
            let _ = write!(
                line,
                "  {:?} {:.0}/{:.0}",
                target, result.p50_us, result.p99_us
            );
        }
        for target in [Target::Axum, Target::Pingora] {
            let result = wrk.run(&url(target), &openai_stream, 1, C1_SECS)?;
            Best::keep(&mut figures.c1_stream, target, result);
            let _ = write!(
                line,
                "  {target:?}+stream {:.0}/{:.0}",
                result.p50_us, result.p99_us
            );
        }
        eprintln!("{line}");
    }

    // The same, with every process (servers and wrk) on one CPU. On a VM, waking a thread on
    // another vCPU costs tens of microseconds, and each proxy hop adds two such wake-ups; on one
    // CPU a hop costs a context switch instead, so these figures show what the proxies themselves
    // add. Skipped where `taskset` is missing.
    // Rounds alternate between the CPUs, so that a build hogging one of them spoils only half.
    let pids: Vec<u32> = endpoints.values().flat_map(|e| e.pids.clone()).collect();
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    eprintln!("latency at concurrency 1, everything on one CPU: {PINNED_ROUNDS} rounds...");
    for round in 0..PINNED_ROUNDS {
        let cpu = round % cpus;
        let Some(masks) = pin_all(&pids, cpu) else {
            break;
        };
        wrk.cpu = Some(cpu);
        let pinned = (|| -> Result<(), Error> {
            for &target in &targets {
                let result = wrk.run(&url(target), body(target), 1, C1_SECS)?;
                Best::keep(&mut figures.c1_pinned, target, result);
            }
            Ok(())
        })();
        wrk.cpu = None;
        unpin_all(&pids, &masks);
        pinned?;
    }

    let ticks = clock_ticks_per_sec();
    for connections in [32, 128] {
        eprintln!("throughput and CPU at concurrency {connections}...");
        for _ in 0..LOAD_ROUNDS {
            for &target in &targets {
                let pids = &endpoints[&target].pids;
                let before = total_cpu_ticks(pids)?;
                let result = wrk.run(&url(target), body(target), connections, wrk.secs)?;
                let cpu_us = (total_cpu_ticks(pids)? - before) as f64 / ticks * 1e6;
                let per_request = cpu_us / result.requests as f64;
                // Best throughput and least CPU per request, each over the rounds: other work
                // on the machine only ever lowers the one and raises the other.
                let best = figures
                    .load
                    .entry((connections, target))
                    .or_insert((result, per_request));
                if result.rps > best.0.rps {
                    best.0 = result;
                }
                best.1 = best.1.min(per_request);
            }
        }
    }
    // The load has stopped: what the processes hold now, before the connection probe.
    sleep(Duration::from_secs(1));
    for &target in &proxies {
        figures.after_load.insert(target, memory(target)?);
    }

    // The uploads first: the allocator keeps what the idle connections touched, which would hide
    // what the uploads cost.
    eprintln!("memory with {IDLE_CONNECTIONS} keyless uploads...");
    for target in [Target::Axum, Target::Pingora] {
        let open = open_keyless_uploads(endpoints[&target].addr, IDLE_CONNECTIONS)?;
        sleep(Duration::from_millis(500));
        figures.uploads.insert(target, memory(target)?);
        drop(open);
    }
    eprintln!("memory with {IDLE_CONNECTIONS} open connections...");
    for &target in &proxies {
        let open = open_idle_connections(endpoints[&target].addr, IDLE_CONNECTIONS)?;
        sleep(Duration::from_millis(500));
        figures.conns.insert(target, memory(target)?);
        drop(open);
    }
    // Let the servers notice the closed connections and free what they held.
    sleep(Duration::from_secs(2));
    for &target in &proxies {
        figures.after.insert(target, memory(target)?);
    }
    servers.check_alive()?;

    figures.token_requests = mock_counter(mock_addr, "token_requests").ok();
    figures.model_calls = mock_counter(mock_addr, "chat_requests").unwrap_or(0);
    figures.elapsed = started.elapsed();
    drop(servers);

    let load_after = loadavg();
    let report = report(&figures, &settings, &load_before, &load_after);
    println!("{report}");
    if let Some(out) = &settings.out {
        write_into(out, "load", &report)?;
        eprintln!("written into {}", out.display());
    }
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// `added_p99 / nginx_p99` as a table cell, or `n/a` when the direct p99 shows that other work on
/// the machine set every p99 of the run.
fn p99_ratio(direct_p99: Option<f64>, added_p99: f64, nginx_p99: f64) -> String {
    match direct_p99 {
        Some(direct) if direct <= QUIET_DIRECT_P99_US => format!("{:.2}×", added_p99 / nginx_p99),
        _ => "n/a".to_owned(),
    }
}

/// Moves every thread of `pids` to `cpu`; returns their former affinity masks, or `None` (and
/// changes nothing) when `taskset` is unavailable or fails.
fn pin_all(pids: &[u32], cpu: usize) -> Option<Vec<String>> {
    let mut masks = Vec::new();
    for pid in pids {
        let out = Command::new("taskset")
            .args(["-p", &pid.to_string()])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        masks.push(text.rsplit(' ').next()?.trim().to_owned());
    }
    for (done, pid) in pids.iter().enumerate() {
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !ok {
            unpin_all(&pids[..done], &masks);
            return None;
        }
    }
    Some(masks)
}

fn unpin_all(pids: &[u32], masks: &[String]) {
    for (pid, mask) in pids.iter().zip(masks) {
        let _ = Command::new("taskset")
            .args(["-a", "-p", mask, &pid.to_string()])
            .stdout(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn report(figures: &Figures, settings: &Settings, load_before: &str, load_after: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Load benchmark\n");
    let _ = writeln!(
        s,
        "1 KB prompt, {ANSWER_BYTES} B answer, `wrk`. Concurrency 1: {} interleaved rounds of {C1_SECS} s \
         runs per target; p50 and p99 are each the least over the rounds, and a target's added latency is \
         its figure minus the same figure of the mock measured directly. Concurrency 32 and 128: {} rounds \
         of {} s runs; best throughput, least CPU per request (utime + stime of the server's processes \
         over the run, nginx's master and workers together, divided by the requests it completed). \
         Ratios: a target's added latency or CPU per request over the baseline's, nginx's and the \
         Pingora pass-through's, in the same run.\n",
        settings.rounds,
        LOAD_ROUNDS,
        settings.secs
    );
    let _ = writeln!(
        s,
        "| target | c=1 p50 µs | c=1 p99 µs | added p50 µs | added p99 µs | added p50 / p99 vs nginx | c=32 req/s | c=128 req/s | CPU µs/req c=32 | CPU µs/req c=128 | CPU vs nginx c=32 / c=128 | CPU vs pass-through c=32 / c=128 |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let direct = figures.c1.get(&Target::Direct).copied();
    let added = |best: &Best| direct.map(|d| (best.p50_us - d.p50_us, best.p99_us - d.p99_us));
    let nginx_added = figures.c1.get(&Target::Nginx).and_then(added);
    let cpu_per_request = |c: usize, target: Target| figures.load.get(&(c, target)).map(|x| x.1);
    for (&target, c1) in &figures.c1 {
        let (added_p50, added_p99) = match (target, added(c1)) {
            (Target::Direct, _) | (_, None) => ("–".to_owned(), "–".to_owned()),
            (_, Some((p50, p99))) => (format!("{p50:.0}"), format!("{p99:.0}")),
        };
        let added_vs_nginx = match (target, added(c1), nginx_added) {
            (Target::Direct | Target::Nginx, _, _) | (_, None, _) | (_, _, None) => "–".to_owned(),
            (_, Some((p50, p99)), Some((n50, n99))) => format!(
                "{:.2}× / {}",
                p50 / n50,
                p99_ratio(direct.map(|d| d.p99_us), p99, n99)
            ),
        };
        let load = |c: usize| figures.load.get(&(c, target));
        let rps = |c: usize| load(c).map_or("–".into(), |x| format!("{:.0}", x.0.rps));
        let cpu = |c: usize| load(c).map_or("–".into(), |x| format!("{:.1}", x.1));
        let ratio = |c: usize, baseline: Target| match (load(c), cpu_per_request(c, baseline)) {
            (Some(x), Some(b)) if target != Target::Direct && target != baseline => {
                format!("{:.2}×", x.1 / b)
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {added_p50} | {added_p99} | {added_vs_nginx} | {} | {} | {} | {} | {} / {} | {} / {} |",
            target.label(),
            c1.p50_us,
            c1.p99_us,
            rps(32),
            rps(128),
            cpu(32),
            cpu(128),
            ratio(32, Target::Nginx),
            ratio(128, Target::Nginx),
            ratio(32, Target::Passthrough),
            ratio(128, Target::Passthrough),
        );
    }
    for target in [Target::Axum, Target::Pingora] {
        if let Some((stream, (p50, p99))) = figures
            .c1_stream
            .get(&target)
            .and_then(|best| Some((best, added(best)?)))
        {
            let _ = writeln!(
                s,
                "| {}, `stream: true` | {:.0} | {:.0} | {p50:.0} | {p99:.0} | | | | | | | |",
                target.label(),
                stream.p50_us,
                stream.p99_us,
            );
        }
    }

    if let Some(direct) = figures.c1_pinned.get(&Target::Direct).copied() {
        let _ = writeln!(
            s,
            "\nConcurrency 1 with every process, wrk included, on one CPU ({PINNED_ROUNDS} rounds, \
             alternating between CPUs; a hop costs a context switch instead of a cross-vCPU wake-up):\n"
        );
        let _ = writeln!(
            s,
            "| target | p50 µs | p99 µs | added p50 µs | added p99 µs | added p50 / p99 vs nginx |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        let added = |best: &Best| (best.p50_us - direct.p50_us, best.p99_us - direct.p99_us);
        let nginx = figures.c1_pinned.get(&Target::Nginx).map(added);
        let direct_p99 = Some(direct.p99_us);
        for (&target, best) in &figures.c1_pinned {
            let (p50, p99) = added(best);
            let (p50_cell, p99_cell, vs_nginx) = match (target, nginx) {
                (Target::Direct, _) => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
                (Target::Nginx, _) | (_, None) => {
                    (format!("{p50:.0}"), format!("{p99:.0}"), "–".to_owned())
                }
                (_, Some((n50, n99))) => (
                    format!("{p50:.0}"),
                    format!("{p99:.0}"),
                    format!("{:.2}× / {}", p50 / n50, p99_ratio(direct_p99, p99, n99)),
                ),
            };
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {p50_cell} | {p99_cell} | {vs_nginx} |",
                target.label(),
                best.p50_us,
                best.p99_us
            );
        }
    }

    let _ = writeln!(
        s,
        "\nResident memory (VmRSS, MB): idle; after a light warm-up (c=8); after the warm-up pass \
         (1 s at c=128, then c=32: the reference, as the upstream pool now holds as many connections as \
         the load uses); 1 s after the load; with {IDLE_CONNECTIONS} uploads without a key, each declaring a 1 MiB body and sending a few bytes of it (bridge mounts; \
         taken before the next probe); with {IDLE_CONNECTIONS} idle keep-alive connections open (each after one `GET /health`); \
         2 s after they close; and the peak (VmHWM). nginx: its master and workers added up, an upper \
         bound (the pages they share are counted once per process).\n"
    );
    let _ = writeln!(
        s,
        "| process | idle | warm c=8 | after warm-up | after the load | after load vs warm-up | {IDLE_CONNECTIONS} connections | {IDLE_CONNECTIONS} keyless uploads | after they close | peak |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &target in figures.idle.keys() {
        let get = |m: &BTreeMap<Target, Memory>| m.get(&target).copied().unwrap_or_default();
        let (idle, light, warm, load, conns, after) = (
            get(&figures.idle),
            get(&figures.warm_light),
            get(&figures.warm),
            get(&figures.after_load),
            get(&figures.conns),
            get(&figures.after),
        );
        let uploads = figures
            .uploads
            .get(&target)
            .map_or("n/a".to_owned(), |m| format!("{:.1}", m.rss_mb));
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:+.0}% | {:.1} | {} | {:.1} | {:.1} |",
            target.label(),
            idle.rss_mb,
            light.rss_mb,
            warm.rss_mb,
            load.rss_mb,
            (load.rss_mb / warm.rss_mb - 1.0) * 100.0,
            conns.rss_mb,
            uploads,
            after.rss_mb,
            after.hwm_mb,
        );
    }
    let _ = writeln!(
        s,
        "\nToken endpoint calls over the whole run (two bridge processes; the mock answered {} model calls in all): {}.",
        figures.model_calls,
        figures
            .token_requests
            .map_or("unknown".to_owned(), |n| n.to_string())
    );

    // Goals.
    let _ = writeln!(s, "\n#### Goals\n");
    let _ = writeln!(s, "| goal | axum mount | Pingora mount |");
    let _ = writeln!(s, "|---|---|---|");
    let cell = |target: Target, f: &dyn Fn(Target) -> Option<(f64, bool, String)>| {
        f(target).map_or("–".to_owned(), |(_, ok, text)| {
            if text.starts_with("n/a") {
                text
            } else {
                format!("{text} ({})", verdict(ok))
            }
        })
    };
    type Check<'a> = (
        &'a str,
        Box<dyn Fn(Target) -> Option<(f64, bool, String)> + 'a>,
    );
    let nginx_added = |pinned: bool, t: Target| {
        let c1 = if pinned {
            &figures.c1_pinned
        } else {
            &figures.c1
        };
        let direct = c1.get(&Target::Direct)?;
        let added = |best: &Best| (best.p50_us - direct.p50_us, best.p99_us - direct.p99_us);
        Some((
            direct.p99_us,
            added(c1.get(&t)?),
            added(c1.get(&Target::Nginx)?),
        ))
    };
    // The p99 goal against nginx, unless other work on the machine set every p99 of the run.
    let nginx_p99 = |pinned: bool, t: Target| {
        let (direct, (_, p99), (_, nginx)) = nginx_added(pinned, t)?;
        if direct > QUIET_DIRECT_P99_US {
            return Some((
                f64::NAN,
                false,
                format!("n/a: machine busy, direct p99 {direct:.0} µs"),
            ));
        }
        let v = p99 / nginx;
        Some((
            v,
            v <= GOAL_NGINX_P99,
            format!("{p99:.0} vs {nginx:.0} µs: {v:.2}×"),
        ))
    };
    let checks: Vec<Check<'_>> = vec![
        (
            "CPU per request ≤ 1.5× nginx's (c=32)",
            Box::new(|t| {
                let v = cpu_per_request(32, t)? / cpu_per_request(32, Target::Nginx)?;
                Some((v, v <= GOAL_NGINX_CPU, format!("{v:.2}×")))
            }),
        ),
        (
            "added p50 at c=1 ≤ 1.5× nginx's",
            Box::new(|t| {
                let (_, (p50, _), (nginx, _)) = nginx_added(false, t)?;
                let v = p50 / nginx;
                Some((
                    v,
                    v <= GOAL_NGINX_P50,
                    format!("{p50:.0} vs {nginx:.0} µs: {v:.2}×"),
                ))
            }),
        ),
        (
            "added p99 at c=1 ≤ 2× nginx's",
            Box::new(|t| nginx_p99(false, t)),
        ),
        (
            "added p50 at c=1 ≤ 1.5× nginx's, every process on one CPU",
            Box::new(|t| {
                let (_, (p50, _), (nginx, _)) = nginx_added(true, t)?;
                let v = p50 / nginx;
                Some((
                    v,
                    v <= GOAL_NGINX_P50,
                    format!("{p50:.0} vs {nginx:.0} µs: {v:.2}×"),
                ))
            }),
        ),
        (
            "added p99 at c=1 ≤ 2× nginx's, every process on one CPU",
            Box::new(|t| nginx_p99(true, t)),
        ),
        (
            "added p50 at c=1 ≤ 60 µs",
            Box::new(|t| {
                let v = figures.c1.get(&t)?.p50_us - figures.c1.get(&Target::Direct)?.p50_us;
                Some((v, v <= GOAL_P50_US, format!("{v:.0} µs")))
            }),
        ),
        (
            "added p99 at c=1 ≤ 100 µs",
            Box::new(|t| {
                let direct = figures.c1.get(&Target::Direct)?.p99_us;
                let v = figures.c1.get(&t)?.p99_us - direct;
                if direct > QUIET_DIRECT_P99_US {
                    return Some((
                        v,
                        false,
                        format!("n/a: machine busy, direct p99 {direct:.0} µs"),
                    ));
                }
                Some((v, v <= GOAL_P99_US, format!("{v:.0} µs")))
            }),
        ),
        (
            "added p50 at c=1 ≤ 60 µs, every process on one CPU",
            Box::new(|t| {
                let v = figures.c1_pinned.get(&t)?.p50_us
                    - figures.c1_pinned.get(&Target::Direct)?.p50_us;
                Some((v, v <= GOAL_P50_US, format!("{v:.0} µs")))
            }),
        ),
        (
            "added p99 at c=1 ≤ 100 µs, every process on one CPU",
            Box::new(|t| {
                let direct = figures.c1_pinned.get(&Target::Direct)?.p99_us;
                let v = figures.c1_pinned.get(&t)?.p99_us - direct;
                if direct > QUIET_DIRECT_P99_US {
                    return Some((
                        v,
                        false,
                        format!("n/a: machine busy, direct p99 {direct:.0} µs"),
                    ));
                }
                Some((v, v <= GOAL_P99_US, format!("{v:.0} µs")))
            }),
        ),
        (
            "CPU per request ≤ 1.5× pass-through (c=32)",
            Box::new(|t| {
                let v = cpu_per_request(32, t)? / cpu_per_request(32, Target::Passthrough)?;
                Some((v, v <= GOAL_CPU_RATIO, format!("{v:.3}×")))
            }),
        ),
        (
            "CPU per request ≤ 1.5× pass-through (c=128)",
            Box::new(|t| {
                let v = cpu_per_request(128, t)? / cpu_per_request(128, Target::Passthrough)?;
                Some((v, v <= GOAL_CPU_RATIO, format!("{v:.3}×")))
            }),
        ),
        (
            "RSS idle ≤ 30 MB",
            Box::new(|t| {
                let v = figures.idle.get(&t)?.rss_mb;
                Some((v, v <= GOAL_IDLE_MB, format!("{v:.1} MB")))
            }),
        ),
        (
            "RSS with 1,000 connections ≤ 150 MB",
            Box::new(|t| {
                let v = figures.conns.get(&t)?.rss_mb;
                Some((v, v <= GOAL_CONNS_MB, format!("{v:.1} MB")))
            }),
        ),
        (
            "RSS with 1,000 keyless uploads within 50 MB of idle",
            Box::new(|t| {
                let v = figures.uploads.get(&t)?.rss_mb - figures.idle.get(&t)?.rss_mb;
                Some((v, v <= GOAL_UPLOADS_OVER_IDLE_MB, format!("{v:+.1} MB")))
            }),
        ),
        (
            "RSS after the load within 10% of post-warm-up",
            Box::new(|t| {
                let v = figures.after_load.get(&t)?.rss_mb / figures.warm.get(&t)?.rss_mb - 1.0;
                Some((v, v <= GOAL_SETTLE, format!("{:+.0}%", v * 100.0)))
            }),
        ),
    ];
    for (name, check) in &checks {
        let _ = writeln!(
            s,
            "| {name} | {} | {} |",
            cell(Target::Axum, check.as_ref()),
            cell(Target::Pingora, check.as_ref())
        );
    }
    let tokens_ok = figures.token_requests == Some(2);
    let _ = writeln!(
        s,
        "| one token call per token lifetime per process | {} | |",
        match figures.token_requests {
            Some(n) => format!("{n} calls for 2 processes ({})", verdict(tokens_ok)),
            None => "unknown".to_owned(),
        }
    );
    if figures.nginx.is_none() {
        let _ = writeln!(
            s,
            "\nnginx is not installed here: no nginx figures, and the goals against nginx are not \
             measured (`make bench-setup` installs it)."
        );
    }

    if let Some(micro) = micro_benchmarks() {
        let _ = writeln!(s, "\n### Micro-benchmarks (criterion, mean)\n");
        let _ = writeln!(s, "{micro}");
    }

    let _ = writeln!(s, "\n### Machine\n");
    let _ = writeln!(
        s,
        "{}",
        machine(
            load_before,
            load_after,
            &[first_line_of("wrk", &["-v"])]
                .into_iter()
                .chain(figures.nginx.clone())
                .collect::<Vec<_>>()
        )
    );
    if let Some(note) = &settings.note {
        let _ = writeln!(s, "\nNote: {note}");
    }
    let _ = writeln!(
        s,
        "\nLoad run took {:.0} s. Command: `make bench` (builds the examples, then runs \
         `cargo bench --features pingora --bench core` and `cargo bench --features pingora --bench load`).",
        figures.elapsed.as_secs_f64()
    );
    s
}

/// Means from `target/criterion/*/*/new/estimates.json`, when `cargo bench --bench core` ran.
fn micro_benchmarks() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let criterion = exe.parent()?.parent()?.parent()?.join("criterion");
    let mut rows = Vec::new();
    for group in ["request", "response", "stream", "service"] {
        let Ok(entries) = fs::read_dir(criterion.join(group)) else {
            continue;
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let path = criterion.join(group).join(&name).join("new/estimates.json");
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(ns) = value["mean"]["point_estimate"].as_f64() {
                rows.push(format!(
                    "| {group}/{} | {:.2} |",
                    name.to_string_lossy(),
                    ns / 1000.0
                ));
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "| benchmark | µs |\n|---|---:|\n{}",
        rows.join("\n")
    ))
}
