//! The streaming benchmark (`make bench`, after the load benchmark): real upstream streams through
//! the bridge, against a pass-through of the same event stream, everything on 127.0.0.1.
//!
//! It starts the mock Salesforce in fast mode, the Pingora pass-through proxy in front of it
//! (examples/passthrough_proxy.rs), and both mounts of the bridge (examples/axum_app.rs,
//! examples/pingora_gateway.rs) on a conf it writes itself: one route, `gpt-5` on the `responses`
//! surface (`sfdc_ai__DefaultGPT5`, served by the mock's `/ai/gpt/v1/responses`). Each streamed
//! answer is the same 20 server-sent events upstream (12 text deltas). The targets:
//!
//! - the mock's `/ai/gpt/v1/responses` straight (`direct`), and through the baselines, which
//!   forward the same bytes untouched: the pass-through, and a plain nginx `proxy_pass` with
//!   `proxy_buffering off` (skipped, saying so, where nginx is not installed);
//! - each mount's `POST /v1/responses` (the native pair: events re-framed with the caller's model
//!   name) and `POST /v1/chat/completions` (the translated path: Responses events decoded into the
//!   core and rendered as chat chunks), both with `"stream": true`.
//!
//! Its own HTTP/1.1 client (hyper's connection API, one keep-alive connection per worker, on one
//! thread) measures, at concurrency 1 and 16, in interleaved rounds of short runs:
//!
//! - the time to the first body byte (TTFB) and to the end of the stream, p50 and p99, each the
//!   least over the rounds; a target's added TTFB is its figure minus the direct one;
//! - the CPU time of the target's server process (`/proc/<pid>/stat` utime + stime over the run;
//!   nginx: its master and workers together) per stream and per upstream event, the least over
//!   the rounds.
//!
//! Then, with the mock pacing its events 1 s apart, it starts a fresh server process per target,
//! opens 1,000 streams (in waves of 100), waits until every one has its first byte, and reads the server's
//! resident memory (`/proc/<pid>/status` VmRSS), then closes them; twice.
//!
//! It prints a table and writes it into BENCHMARKS.md between the `streams:begin` and
//! `streams:end` markers. The binaries must be built first (`make bench` does it):
//!
//! ```text
//! cargo build --release --features pingora --example mock_salesforce --example axum_app \
//!     --example pingora_gateway --example passthrough_proxy
//! cargo bench --features pingora --bench streams
//! ```
//!
//! Knobs (environment): `BENCH_STREAM_SECS` (seconds per run, default 1), `BENCH_STREAM_ROUNDS`
//! (default 5), `BENCH_STREAM_PORT_BASE` (default 18190; six ports from there), and, as for the
//! load benchmark, `BENCH_OUT`, `BENCH_NOTE` and `BENCH_BINARIES`. 1,000 open streams need about
//! 3,000 file descriptors in the bridge's process: `make bench` raises `ulimit -n`.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use support::{
    bench_note, bench_out, clock_ticks_per_sec, crate_root, ensure_free, env_number, examples_dir,
    loadavg, machine, memory, mock_counter, total_cpu_ticks, verdict, wait_for_port, write_into,
    Error, Memory, Nginx, Servers,
};

/// The user's text: the mock answers `Echo: ` and these 11 words, one text delta per word, in 20
/// events (created, in progress, item added, part added, 12 deltas, text done, part done, item
/// done, completed).
const INPUT: &str = "one two three four five six seven eight nine ten eleven";
const SALESFORCE_MODEL: &str = "sfdc_ai__DefaultGPT5";
const MODEL: &str = "gpt-5";
/// The Claude route (claude-native): Bedrock's event stream upstream, Anthropic's SSE out.
const CLAUDE_SALESFORCE_MODEL: &str = "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet";
const CLAUDE_MODEL: &str = "claude-sonnet-4-6";
const MAX_TOKENS: u32 = 256;
const API_KEY: &str = "bench-key";
const CONCURRENCIES: [usize; 2] = [1, 16];
const OPEN_STREAMS: usize = 1000;
/// The mock's pace during the open-streams probe: a stream lasts about 20 s, longer than the
/// probe needs to open them all and look.
const OPEN_PACE_MS: u64 = 1000;
/// Streams opened at once: 1,000 connections in one burst overflowed the mock's accept queue
/// behind the pass-through now and then (a 502), which says nothing about the proxies.
const OPEN_WAVE: usize = 100;

/// The issues' goals.
const GOAL_RATIO: f64 = 1.5;
const GOAL_OPEN_MB: f64 = 150.0;

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        // `cargo bench -- --list` and test harness probes: nothing to list.
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => Err(error.into()),
    };
    if let Err(error) = result {
        eprintln!("streams benchmark failed: {error}");
        std::process::exit(1);
    }
}

struct Settings {
    secs: u64,
    rounds: usize,
    port_base: u16,
}

impl Settings {
    fn from_env() -> Result<Self, Error> {
        Ok(Self {
            secs: env_number("BENCH_STREAM_SECS", 1)?.max(1),
            rounds: env_number("BENCH_STREAM_ROUNDS", 5)?.max(1) as usize,
            port_base: u16::try_from(env_number("BENCH_STREAM_PORT_BASE", 18190)?)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Server {
    Mock,
    Passthrough,
    Nginx,
    Axum,
    Pingora,
}

/// Which upstream stream a target carries: GPT's server-sent events or Claude's AWS event stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Gpt,
    Claude,
}

impl Family {
    /// The mock measured directly, and through the pass-through: each bridge target's baselines.
    fn baselines(self) -> (Target, Target) {
        match self {
            Family::Gpt => (Target::Direct, Target::Passthrough),
            Family::Claude => (Target::BedrockDirect, Target::BedrockPassthrough),
        }
    }

    /// The mock through nginx: the other baseline.
    fn nginx(self) -> Target {
        match self {
            Family::Gpt => Target::Nginx,
            Family::Claude => Target::BedrockNginx,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Target {
    Direct,
    Passthrough,
    Nginx,
    AxumResponses,
    AxumChat,
    PingoraResponses,
    PingoraChat,
    BedrockDirect,
    BedrockPassthrough,
    BedrockNginx,
    AxumMessages,
    PingoraMessages,
}

impl Target {
    const ALL: [Target; 12] = [
        Target::Direct,
        Target::Passthrough,
        Target::Nginx,
        Target::AxumResponses,
        Target::AxumChat,
        Target::PingoraResponses,
        Target::PingoraChat,
        Target::BedrockDirect,
        Target::BedrockPassthrough,
        Target::BedrockNginx,
        Target::AxumMessages,
        Target::PingoraMessages,
    ];

    /// The targets of the open-streams probe (gpt-native's goal).
    const OPEN: [Target; 5] = [
        Target::Passthrough,
        Target::AxumResponses,
        Target::AxumChat,
        Target::PingoraResponses,
        Target::PingoraChat,
    ];

    fn server(self) -> Server {
        match self {
            Target::Direct | Target::BedrockDirect => Server::Mock,
            Target::Passthrough | Target::BedrockPassthrough => Server::Passthrough,
            Target::Nginx | Target::BedrockNginx => Server::Nginx,
            Target::AxumResponses | Target::AxumChat | Target::AxumMessages => Server::Axum,
            Target::PingoraResponses | Target::PingoraChat | Target::PingoraMessages => {
                Server::Pingora
            }
        }
    }

    fn family(self) -> Family {
        match self {
            Target::BedrockDirect
            | Target::BedrockPassthrough
            | Target::BedrockNginx
            | Target::AxumMessages
            | Target::PingoraMessages => Family::Claude,
            _ => Family::Gpt,
        }
    }

    fn is_baseline(self) -> bool {
        let (direct, pass) = self.family().baselines();
        self == direct || self == pass || self == self.family().nginx()
    }

    fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct to the mock (`/ai/gpt/v1/responses`)",
            Target::Passthrough => "Pingora pass-through (same stream)",
            Target::Nginx => "nginx `proxy_pass`, unbuffered (same stream)",
            Target::AxumResponses => "axum mount, `/v1/responses` (native)",
            Target::AxumChat => "axum mount, `/v1/chat/completions`",
            Target::PingoraResponses => "Pingora mount, `/v1/responses` (native)",
            Target::PingoraChat => "Pingora mount, `/v1/chat/completions`",
            Target::BedrockDirect => "direct to the mock (Bedrock `invoke-with-response-stream`)",
            Target::BedrockPassthrough => "Pingora pass-through (same Bedrock stream)",
            Target::BedrockNginx => "nginx `proxy_pass`, unbuffered (same Bedrock stream)",
            Target::AxumMessages => "axum mount, `/v1/messages` (native)",
            Target::PingoraMessages => "Pingora mount, `/v1/messages` (native)",
        }
    }

    fn call(self, addr: SocketAddr) -> Call {
        let messages = serde_json::json!([{"role": "user", "content": INPUT}]);
        // What ends a complete stream, and what starts each event: SSE `data:` lines, or the
        // header every AWS event-stream frame carries.
        const SSE: &[u8] = b"data:";
        const FRAME: &[u8] = b":event-type";
        let (path, body, end, event) = match self {
            Target::Direct | Target::Passthrough | Target::Nginx => (
                "/ai/gpt/v1/responses".to_owned(),
                serde_json::json!({"model": SALESFORCE_MODEL, "input": INPUT, "stream": true}),
                &b"response.completed"[..],
                SSE,
            ),
            Target::AxumResponses | Target::PingoraResponses => (
                "/v1/responses".to_owned(),
                serde_json::json!({"model": MODEL, "input": INPUT, "stream": true}),
                &b"response.completed"[..],
                SSE,
            ),
            Target::AxumChat | Target::PingoraChat => (
                "/v1/chat/completions".to_owned(),
                serde_json::json!({"model": MODEL, "stream": true, "messages": messages}),
                &b"data: [DONE]"[..],
                SSE,
            ),
            Target::BedrockDirect | Target::BedrockPassthrough | Target::BedrockNginx => (
                format!("/ai/gpt/v1/model/{CLAUDE_SALESFORCE_MODEL}/invoke-with-response-stream"),
                serde_json::json!({"anthropic_version": "bedrock-2023-05-31",
                                   "max_tokens": MAX_TOKENS, "messages": messages}),
                // The frames' payloads are base64: only their headers can be read.
                FRAME,
                FRAME,
            ),
            Target::AxumMessages | Target::PingoraMessages => (
                "/v1/messages".to_owned(),
                serde_json::json!({"model": CLAUDE_MODEL, "max_tokens": MAX_TOKENS,
                                   "stream": true, "messages": messages}),
                &b"message_stop"[..],
                SSE,
            ),
        };
        Call {
            addr,
            path: path.into(),
            body: Bytes::from(body.to_string()),
            end,
            event,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client

type Sender = http1::SendRequest<Full<Bytes>>;

/// One streamed request: where, what marks its complete end, and what starts each event.
#[derive(Clone)]
struct Call {
    addr: SocketAddr,
    path: std::sync::Arc<str>,
    body: Bytes,
    end: &'static [u8],
    event: &'static [u8],
}

/// A keep-alive connection: the request half, and the task that drives it.
struct Connection {
    sender: Sender,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn connect(addr: SocketAddr) -> Result<Connection, Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection { sender, driver })
}

fn post(call: &Call) -> Result<http::Request<Full<Bytes>>, Error> {
    Ok(http::Request::post(&*call.path)
        .header(http::header::HOST, call.addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .body(Full::new(call.body.clone()))?)
}

/// Sends `call` once the connection is ready for it, and returns when it was sent and its answer,
/// once the head is in; anything but a 200 is an error.
async fn start(
    connection: &mut Connection,
    call: &Call,
) -> Result<(Instant, http::Response<hyper::body::Incoming>), Error> {
    let request = post(call)?;
    // Not timed: the previous answer's end still being processed on the connection.
    connection.sender.ready().await?;
    let sent = Instant::now();
    let response = connection.sender.send_request(request).await?;
    if response.status() != http::StatusCode::OK {
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        return Err(format!("{}: {status} {}", call.path, String::from_utf8_lossy(&body)).into());
    }
    Ok((sent, response))
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Time to the response head.
    head: Duration,
    ttfb: Duration,
    total: Duration,
    events: usize,
}

/// One whole stream: the time to its first body byte, to its end, and the events it held.
async fn stream_once(connection: &mut Connection, call: &Call) -> Result<Sample, Error> {
    let (started, response) = start(connection, call).await?;
    let head = started.elapsed();
    let mut body = response.into_body();
    let mut ttfb = None;
    let mut received = Vec::with_capacity(16 * 1024);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if ttfb.is_none() && !data.is_empty() {
                ttfb = Some(started.elapsed());
            }
            received.extend_from_slice(&data);
        }
    }
    let total = started.elapsed();
    if memchr::memmem::find(&received, call.end).is_none() {
        return Err(format!(
            "{}: the stream ended without {}:\n{}",
            call.path,
            String::from_utf8_lossy(call.end),
            String::from_utf8_lossy(&received)
        )
        .into());
    }
    Ok(Sample {
        head,
        ttfb: ttfb.ok_or("a stream without a body")?,
        total,
        events: memchr::memmem::find_iter(&received, call.event).count(),
    })
}

/// `concurrency` workers, each on its own connection, stream `call` one after another for `secs`.
/// Returns the samples, and how many times a worker found its idle connection closed by the
/// server and opened another.
async fn run_streams(
    call: &Call,
    concurrency: usize,
    secs: u64,
) -> Result<(Vec<Sample>, usize), Error> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut connection = connect(call.addr).await?;
                let mut samples = Vec::new();
                let mut reconnects = 0;
                while Instant::now() < deadline {
                    if connection.sender.is_closed() {
                        connection = connect(call.addr).await?;
                        reconnects += 1;
                    }
                    let sample = stream_once(&mut connection, &call).await.map_err(|e| {
                        format!(
                            "{}{} after {} streams: {e}",
                            call.addr,
                            call.path,
                            samples.len()
                        )
                    })?;
                    samples.push(sample);
                }
                Ok::<_, Error>((samples, reconnects))
            })
        })
        .collect();
    let (mut samples, mut reconnects) = (Vec::new(), 0);
    for worker in workers {
        let (worker_samples, worker_reconnects) = worker.await??;
        samples.extend(worker_samples);
        reconnects += worker_reconnects;
    }
    Ok((samples, reconnects))
}

/// Opens `n` streams of `call`, each on its own connection, in waves of [`OPEN_WAVE`], and returns
/// once every one has its first body byte; they read on until dropped.
async fn open_streams(call: &Call, n: usize) -> Result<OpenStreams, Error> {
    let mut open = OpenStreams { tasks: Vec::new() };
    let deadline = Instant::now() + Duration::from_secs(30);
    while open.tasks.len() < n {
        let wave = OPEN_WAVE.min(n - open.tasks.len());
        open_wave(call, wave, deadline, &mut open).await?;
    }
    Ok(open)
}

/// Opens `n` streams of `call` at once into `open`, and returns once each has its first byte.
async fn open_wave(
    call: &Call,
    n: usize,
    deadline: Instant,
    open: &mut OpenStreams,
) -> Result<(), Error> {
    let (opened, mut arrivals) = mpsc::channel::<Result<(), String>>(n);
    open.tasks.extend((0..n).map(|_| {
        let (call, opened) = (call.clone(), opened.clone());
        tokio::spawn(async move {
            let first = async {
                let mut connection = connect(call.addr).await?;
                let mut body = start(&mut connection, &call).await?.1.into_body();
                while body
                    .frame()
                    .await
                    .transpose()?
                    .is_some_and(|f| !f.is_data())
                {}
                Ok::<_, Error>((connection, body))
            };
            match first.await {
                Ok((_connection, mut body)) => {
                    let _ = opened.send(Ok(())).await;
                    while let Some(Ok(_)) = body.frame().await {}
                }
                Err(error) => {
                    let _ = opened.send(Err(error.to_string())).await;
                }
            }
        })
    }));
    for _ in 0..n {
        match tokio::time::timeout_at(deadline.into(), arrivals.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(error))) => return Err(format!("an open stream failed: {error}").into()),
            Ok(None) | Err(_) => return Err("the streams did not all start within 30 s".into()),
        }
    }
    Ok(())
}

/// Streams held open; closed (their connections dropped) when this is dropped.
struct OpenStreams {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for OpenStreams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `POST /__mock/stream_pace`.
async fn set_stream_pace(mock: SocketAddr, millis: u64) -> Result<(), Error> {
    let mut connection = connect(mock).await?;
    connection.sender.ready().await?;
    let request = http::Request::post("/__mock/stream_pace")
        .header(http::header::HOST, mock.to_string())
        .body(Full::new(Bytes::from(format!("{{\"millis\": {millis}}}"))))?;
    let response = connection.sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!("stream_pace: {}", response.status()).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures

/// The least of each figure over the rounds of one (concurrency, target): other work on the
/// machine only ever adds to them.
#[derive(Debug, Clone, Copy)]
struct Best {
    head_p50: Duration,
    ttfb_p50: Duration,
    ttfb_p99: Duration,
    total_p50: Duration,
    /// CPU time of the target's server per stream, µs.
    cpu_per_stream_us: f64,
    /// Events the caller received per stream.
    events: usize,
    streams: usize,
    reconnects: usize,
}

impl Best {
    fn keep(&mut self, other: Best) {
        self.head_p50 = self.head_p50.min(other.head_p50);
        self.ttfb_p50 = self.ttfb_p50.min(other.ttfb_p50);
        self.ttfb_p99 = self.ttfb_p99.min(other.ttfb_p99);
        self.total_p50 = self.total_p50.min(other.total_p50);
        self.cpu_per_stream_us = self.cpu_per_stream_us.min(other.cpu_per_stream_us);
        self.streams += other.streams;
        self.reconnects += other.reconnects;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(at).copied().unwrap_or_default()
}

fn summarize(samples: &[Sample], reconnects: usize, cpu_us: f64) -> Result<Best, Error> {
    if samples.is_empty() {
        return Err("no stream completed".into());
    }
    let sorted = |f: fn(&Sample) -> Duration| {
        let mut values: Vec<Duration> = samples.iter().map(f).collect();
        values.sort_unstable();
        values
    };
    let head = sorted(|s| s.head);
    let ttfb = sorted(|s| s.ttfb);
    let total = sorted(|s| s.total);
    Ok(Best {
        head_p50: percentile(&head, 0.50),
        ttfb_p50: percentile(&ttfb, 0.50),
        ttfb_p99: percentile(&ttfb, 0.99),
        total_p50: percentile(&total, 0.50),
        cpu_per_stream_us: cpu_us / samples.len() as f64,
        events: samples.iter().map(|s| s.events).max().unwrap_or(0),
        streams: samples.len(),
        reconnects,
    })
}

/// Resident memory of a fresh server process: idle, with [`OPEN_STREAMS`] streams open, 2 s
/// after they close, and the same for a second burst (whether the first burst's memory is reused).
#[derive(Debug, Clone, Copy, Default)]
struct OpenProbe {
    idle: Memory,
    bursts: [(Memory, Memory); 2],
    /// Open file descriptors with the first burst open, and 2 s after it closed.
    fds: (usize, usize),
}

/// How many file descriptors `pid` has open.
fn open_fds(pid: u32) -> Result<usize, Error> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[derive(Default)]
struct Figures {
    /// By (concurrency, target).
    runs: BTreeMap<(usize, Target), Best>,
    /// The open-streams probe of each target, on a fresh server process.
    open: BTreeMap<Target, OpenProbe>,
    mock_streams: u64,
    abandoned: u64,
    elapsed: Duration,
    /// nginx's version, or `None` when it is not installed (no nginx figures).
    nginx: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The run

async fn run() -> Result<(), Error> {
    let started = Instant::now();
    let settings = Settings::from_env()?;
    let examples = examples_dir()?;
    let work = std::env::temp_dir().join(format!("sfbridge-streams-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let load_before = loadavg();

    let port = |offset: u16| SocketAddr::from(([127, 0, 0, 1], settings.port_base + offset));
    let (mock_addr, pass_addr, axum_addr, pingora_addr) = (port(0), port(1), port(2), port(3));
    let nginx_addr = port(5);
    for addr in [mock_addr, pass_addr, axum_addr, pingora_addr, nginx_addr] {
        ensure_free(addr)?;
    }
    let nginx = Nginx::find();
    let conf = work.join("streams.toml");
    fs::write(&conf, bridge_conf(mock_addr))?;
    let conf = conf.to_string_lossy().into_owned();

    let mut servers = Servers::default();
    // Starts `server` on `addr` and waits until it listens; returns its processes' pids.
    let start_server = |servers: &mut Servers, server: Server, addr: SocketAddr| {
        let (listen, mock) = (addr.to_string(), mock_addr.to_string());
        let (bin, args): (&str, Vec<&str>) = match server {
            Server::Mock => ("mock_salesforce", vec!["--listen", &listen, "--fast"]),
            Server::Passthrough => (
                "passthrough_proxy",
                vec![
                    "--listen",
                    &listen,
                    "--upstream",
                    &mock,
                    "--threads",
                    "2",
                    "--no-work-stealing",
                ],
            ),
            Server::Nginx => {
                let nginx = nginx.as_ref().ok_or("nginx is not installed")?;
                let dir = work.join(format!("nginx-{}", addr.port()));
                // Unbuffered, so that each event goes on as it comes.
                return servers.spawn_nginx(nginx, &dir, addr, mock_addr, false);
            }
            Server::Axum => ("axum_app", vec!["--config", &conf]),
            Server::Pingora => ("pingora_gateway", vec!["--config", &conf]),
        };
        let name = format!("{server:?}");
        let log = work.join(format!("{name}-{}.log", addr.port()));
        let pid = servers.spawn(
            &name,
            &examples.join(bin),
            &args,
            &[("BENCH_LISTEN", listen.clone())],
            &log,
        )?;
        wait_for_port(addr, servers)?;
        Ok::<_, Error>(vec![pid])
    };
    let mut pids = BTreeMap::new();
    for (server, addr) in [
        (Server::Mock, mock_addr),
        (Server::Passthrough, pass_addr),
        (Server::Nginx, nginx_addr),
        (Server::Axum, axum_addr),
        (Server::Pingora, pingora_addr),
    ] {
        if server == Server::Nginx && nginx.is_none() {
            continue;
        }
        pids.insert(server, start_server(&mut servers, server, addr)?);
    }
    let addr = |target: Target| match target.server() {
        Server::Mock => mock_addr,
        Server::Passthrough => pass_addr,
        Server::Nginx => nginx_addr,
        Server::Axum => axum_addr,
        Server::Pingora => pingora_addr,
    };
    // Every target whose server runs.
    let targets: Vec<Target> = Target::ALL
        .into_iter()
        .filter(|target| pids.contains_key(&target.server()))
        .collect();

    let mut figures = Figures {
        nginx: nginx.as_ref().map(Nginx::version),
        ..Figures::default()
    };

    eprintln!("warming up...");
    for concurrency in CONCURRENCIES {
        for &target in &targets {
            run_streams(&target.call(addr(target)), concurrency, 1).await?;
        }
    }

    let ticks = clock_ticks_per_sec();
    eprintln!(
        "streams at concurrency {CONCURRENCIES:?}: {} interleaved rounds of {} s runs...",
        settings.rounds, settings.secs
    );
    for round in 1..=settings.rounds {
        for concurrency in CONCURRENCIES {
            let mut line = format!("  round {round}, c={concurrency}: TTFB p50 µs");
            for &target in &targets {
                let server_pids = &pids[&target.server()];
                let before = total_cpu_ticks(server_pids)?;
                let (samples, reconnects) =
                    run_streams(&target.call(addr(target)), concurrency, settings.secs).await?;
                let cpu_us = (total_cpu_ticks(server_pids)? - before) as f64 / ticks * 1e6;
                let result = summarize(&samples, reconnects, cpu_us)?;
                let _ = write!(line, "  {target:?} {}", result.ttfb_p50.as_micros());
                figures
                    .runs
                    .entry((concurrency, target))
                    .and_modify(|best| best.keep(result))
                    .or_insert(result);
            }
            eprintln!("{line}");
        }
    }

    eprintln!("{OPEN_STREAMS} open streams, {OPEN_PACE_MS} ms between events, fresh servers...");
    set_stream_pace(mock_addr, OPEN_PACE_MS).await?;
    let probe_addr = port(4);
    for target in Target::OPEN {
        // A fresh process each: what a previous probe left in the allocator is not counted.
        ensure_free(probe_addr)?;
        // A bridge or the pass-through: one process.
        let pid = start_server(&mut servers, target.server(), probe_addr)?
            .first()
            .copied()
            .ok_or("no process")?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut probe = OpenProbe {
            idle: memory(pid)?,
            ..OpenProbe::default()
        };
        for (index, burst) in probe.bursts.iter_mut().enumerate() {
            let open = open_streams(&target.call(probe_addr), OPEN_STREAMS).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            burst.0 = memory(pid)?;
            let fds_open = open_fds(pid)?;
            drop(open);
            tokio::time::sleep(Duration::from_secs(2)).await;
            burst.1 = memory(pid)?;
            if index == 0 {
                probe.fds = (fds_open, open_fds(pid)?);
            }
        }
        eprintln!(
            "  {target:?}: idle {:.1} MB, open {:.1} / {:.1} MB",
            probe.idle.rss_mb, probe.bursts[0].0.rss_mb, probe.bursts[1].0.rss_mb
        );
        figures.open.insert(target, probe);
        servers.stop(pid)?;
    }
    set_stream_pace(mock_addr, 0).await?;
    servers.check_alive()?;

    figures.mock_streams = mock_counter(mock_addr, "responses_requests").unwrap_or(0);
    figures.abandoned = mock_counter(mock_addr, "abandoned_model_calls").unwrap_or(0);
    figures.elapsed = started.elapsed();
    drop(servers);

    let report = report(&figures, &settings, &load_before, &loadavg());
    println!("{report}");
    if let Some(out) = bench_out() {
        write_into(&out, "streams", &report)?;
        eprintln!("written into {}", out.display());
    }
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// The bridge's conf: a GPT route on the `responses` surface and a Claude route on `bedrock`,
/// limits above the 1,000 streams.
fn bridge_conf(mock: SocketAddr) -> String {
    let pingora_yaml = crate_root().join("benches/pingora.yaml");
    format!(
        r#"# Written by benches/streams.rs.
[server]
listen = "${{BENCH_LISTEN}}"
header_read_timeout_secs = 60

[salesforce]
api_base      = "http://{mock}/einstein/platform/v1"
gpt_api_base  = "http://{mock}/ai/gpt/v1"
token_url     = "http://{mock}/services/oauth2/token"
client_id     = "mock-client-id"
client_secret = "mock-client-secret"
timeout_secs  = 30
request_deadline_secs = 120
max_concurrent_requests = 4096
stream_keepalive_secs = 10

[auth]
api_keys = ["{API_KEY}"]

[pingora]
server_conf = "{}"

[[routes]]
model            = "{MODEL}"
salesforce_model = "{SALESFORCE_MODEL}"
surface          = "responses"

[[routes]]
model            = "{CLAUDE_MODEL}"
salesforce_model = "{CLAUDE_SALESFORCE_MODEL}"
surface          = "bedrock"
"#,
        pingora_yaml.display()
    )
}

// ---------------------------------------------------------------------------------------------
// The report

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// A target's added TTFB against a baseline's, and the goal's verdict; none where the baseline
/// added nothing: then the client's own queueing (16 streams on one thread, on a busy machine)
/// outweighed the hop, and no ratio says anything about the proxies.
fn added_ratio(added: f64, baseline: f64) -> String {
    if baseline <= 0.0 {
        return format!("{added:.0} µs vs {baseline:.0} µs: n/a, the baseline added nothing");
    }
    let ratio = added / baseline;
    format!(
        "{added:.0} µs vs {baseline:.0} µs: {ratio:.2}× ({})",
        verdict(ratio <= GOAL_RATIO)
    )
}

fn report(figures: &Figures, settings: &Settings, load_before: &str, load_after: &str) -> String {
    let mut s = String::new();
    // Upstream events per stream: what the mock sends, counted where it is measured directly.
    let events = |c: usize, family: Family| {
        figures
            .runs
            .get(&(c, family.baselines().0))
            .map_or(0, |best| best.events)
    };
    let _ = writeln!(s, "### Streams benchmark\n");
    let _ = writeln!(
        s,
        "`gpt-5` on the `responses` surface (gpt-native): every answer is the same {} server-sent \
         events from the mock (fast mode, no pace). `claude-sonnet-4-6` on the `bedrock` surface \
         (claude-native, `/v1/messages` only): the same {} AWS event-stream frames each time, \
         against the pass-through of that stream. Concurrency {CONCURRENCIES:?}: {} interleaved rounds of {} s runs per \
         target, sequential streams on keep-alive connections, one client thread. TTFB is the time from \
         sending the request to the first body byte (head: to the response head); p50 and p99 are each the least over the rounds. \
         Added TTFB: the figure minus the direct one. CPU: utime + stime of the target's server process \
         over a run (nginx: its master and workers together), per stream and per upstream event, the \
         least over the rounds. Ratios are against the baselines in the same run, which forward the \
         same stream untouched: nginx (`proxy_buffering off`) and the Pingora pass-through.\n",
        events(1, Family::Gpt),
        events(1, Family::Claude),
        settings.rounds,
        settings.secs
    );
    for c in CONCURRENCIES {
        let get = |target: Target| figures.runs.get(&(c, target));
        // Added TTFB of `best` over the direct figure of `target`'s stream.
        let added = |target: Target, best: &Best| {
            get(target.family().baselines().0)
                .map(|direct| micros(best.ttfb_p50) - micros(direct.ttfb_p50))
        };
        let _ = writeln!(s, "Concurrency {c}:\n");
        let _ = writeln!(
            s,
            "| target | streams | events out | head p50 µs | TTFB p50 µs | TTFB p99 µs | added TTFB p50 µs | added vs nginx | added vs pass-through | stream p50 µs | CPU µs/stream | CPU µs/event | CPU vs nginx | CPU vs pass-through |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for target in Target::ALL {
            let Some(best) = get(target) else { continue };
            let (direct, pass) = target.family().baselines();
            // `best`'s added TTFB and CPU over `baseline`'s, unless `target` is that baseline.
            let ratios = |baseline: Target| match get(baseline) {
                Some(base) if target != baseline && target != direct => (
                    match (added(target, best), added(target, base)) {
                        (Some(b), Some(p)) if p > 0.0 => format!("{:.2}×", b / p),
                        (Some(_), Some(_)) => "n/a".into(),
                        _ => "–".into(),
                    },
                    format!("{:.2}×", best.cpu_per_stream_us / base.cpu_per_stream_us),
                ),
                _ => ("–".to_owned(), "–".to_owned()),
            };
            let (added_vs_pass, cpu_vs_pass) = ratios(pass);
            let (added_vs_nginx, cpu_vs_nginx) = ratios(target.family().nginx());
            let added_cell = match added(target, best) {
                Some(v) if target != direct => format!("{v:.0}"),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {added_cell} | {added_vs_nginx} | {added_vs_pass} | {:.0} | {:.1} | {:.2} | {cpu_vs_nginx} | {cpu_vs_pass} |",
                target.label(),
                best.streams,
                best.events,
                micros(best.head_p50),
                micros(best.ttfb_p50),
                micros(best.ttfb_p99),
                micros(best.total_p50),
                best.cpu_per_stream_us,
                best.cpu_per_stream_us / events(c, target.family()).max(1) as f64,
            );
        }
        let _ = writeln!(s);
    }
    let reconnects: usize = figures.runs.values().map(|best| best.reconnects).sum();
    let _ = writeln!(
        s,
        "Keep-alive connections found closed by the server between two streams (and replaced): {reconnects}.\n"
    );

    let _ = writeln!(
        s,
        "{OPEN_STREAMS} streams open at once, each on its own connection (opened {OPEN_WAVE} at a time), the mock pacing events \
         {OPEN_PACE_MS} ms apart, on a fresh server process per target; resident memory (VmRSS, MB): \
         idle, 2 s after every stream had its first byte, 2 s after they closed, then the same for a \
         second burst of {OPEN_STREAMS}, and the peak (VmHWM); and the process's open file descriptors \
         with the first burst open and after it closed.\n"
    );
    let _ = writeln!(
        s,
        "| target | idle | {OPEN_STREAMS} open | closed | {OPEN_STREAMS} open again | closed | peak | fds open / closed |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (target, probe) in &figures.open {
        let [(first, first_closed), (second, second_closed)] = probe.bursts;
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} / {} |",
            target.label(),
            probe.idle.rss_mb,
            first.rss_mb,
            first_closed.rss_mb,
            second.rss_mb,
            second_closed.rss_mb,
            second_closed.hwm_mb,
            probe.fds.0,
            probe.fds.1,
        );
    }
    let _ = writeln!(
        s,
        "\nThe mock served {} streams in all; {} were dropped before their end (the probe closes its \
         streams early).",
        figures.mock_streams, figures.abandoned
    );

    let _ = writeln!(s, "\n#### Goals\n");
    let _ = writeln!(s, "| goal | target | figure |");
    let _ = writeln!(s, "|---|---|---|");
    for target in Target::ALL.into_iter().filter(|t| !t.is_baseline()) {
        let (direct, pass) = target.family().baselines();
        for c in CONCURRENCIES {
            let run = |target: Target| figures.runs.get(&(c, target));
            if let (Some(best), Some(nginx), Some(direct)) =
                (run(target), run(target.family().nginx()), run(direct))
            {
                let _ = writeln!(
                    s,
                    "| added TTFB p50 ≤ 1.5× nginx's (c={c}) | {} | {} |",
                    target.label(),
                    added_ratio(
                        micros(best.ttfb_p50) - micros(direct.ttfb_p50),
                        micros(nginx.ttfb_p50) - micros(direct.ttfb_p50)
                    )
                );
                let ratio = best.cpu_per_stream_us / nginx.cpu_per_stream_us;
                let _ = writeln!(
                    s,
                    "| CPU per event ≤ 1.5× nginx's (c={c}) | {} | {ratio:.2}× ({}) |",
                    target.label(),
                    verdict(ratio <= GOAL_RATIO)
                );
            }
            let (Some(best), Some(pass), Some(direct)) = (run(target), run(pass), run(direct))
            else {
                continue;
            };
            let _ = writeln!(
                s,
                "| added TTFB p50 ≤ 1.5× the pass-through's (c={c}) | {} | {} |",
                target.label(),
                added_ratio(
                    micros(best.ttfb_p50) - micros(direct.ttfb_p50),
                    micros(pass.ttfb_p50) - micros(direct.ttfb_p50)
                )
            );
            let ratio = best.cpu_per_stream_us / pass.cpu_per_stream_us;
            let _ = writeln!(
                s,
                "| CPU per event ≤ 1.5× the pass-through's (c={c}) | {} | {ratio:.2}× ({}) |",
                target.label(),
                verdict(ratio <= GOAL_RATIO)
            );
        }
        if let Some(open) = figures.open.get(&target).map(|probe| probe.bursts[0].0) {
            let _ = writeln!(
                s,
                "| {OPEN_STREAMS} open streams ≤ 150 MB RSS | {} | {:.1} MB ({}) |",
                target.label(),
                open.rss_mb,
                verdict(open.rss_mb <= GOAL_OPEN_MB)
            );
        }
    }

    if figures.nginx.is_none() {
        let _ = writeln!(
            s,
            "\nnginx is not installed here: no nginx figures, and the goals against nginx are not \
             measured (`make bench-setup` installs it)."
        );
    }

    let _ = writeln!(s, "\n#### Machine\n");
    let nginx: Vec<String> = figures.nginx.iter().cloned().collect();
    let _ = writeln!(s, "{}", machine(load_before, load_after, &nginx));
    if let Some(note) = bench_note() {
        let _ = writeln!(s, "\nNote: {note}");
    }
    let _ = writeln!(
        s,
        "\nRun took {:.0} s. Command: `make bench` (its last step), or alone: `cargo bench --features \
         pingora --bench streams` after building the examples.",
        figures.elapsed.as_secs_f64()
    );
    s
}
