//! Micro-benchmarks of the bridge's own work, on realistic bodies: request translation (1 KB and
//! 100 KB prompts), the extractor plus normalisation (2 KB and 50 KB answers), event-stream
//! encoding, AWS event-stream decoding (a Bedrock stream read in 1,500-byte pieces), and one
//! whole request through the Tower service over an in-memory upstream (no
//! sockets), which is everything the bridge adds to a call except the network; and one call
//! through the real upstream client to a loopback server (`upstream/`), the client's own cost.
//!
//! Run with `cargo bench --bench core` (part of `make bench`); each benchmark warms up for 1 s
//! and measures for 2 s. Pass a filter to run some: `cargo bench --bench core -- response/`.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use sf_models_bridge::core::{Delivery, Finish, Generation, Task};
use sf_models_bridge::eventstream::{self, Decoder, Limits};
use sf_models_bridge::front::sse::{SseEvents, StreamKind};
use sf_models_bridge::front::{self, AnswerCtx};
use sf_models_bridge::openai::ChatCompletionRequest;
use sf_models_bridge::surface::einstein::{self, Operation};
use sf_models_bridge::token::{AccessToken, FetchedToken, TokenError, TokenSource};
use sf_models_bridge::upstream::{Upstream, UpstreamBody, UpstreamError, MAX_ANSWER_BYTES};
use sf_models_bridge::{Config, SalesforceLayer};
use tower::{Layer, ServiceExt};

const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
                      tempor incididunt ut labore et dolore magna aliqua. \"Quoted\"\tand\ttabbed. ";

/// `len` bytes of prose with a few characters JSON must escape.
fn text(len: usize) -> String {
    FILLER.chars().cycle().take(len).collect()
}

/// An OpenAI chat request whose messages total about `prompt_bytes`: a system prompt, two
/// earlier turns, and a user message holding the rest, plus parameters the bridge ignores.
fn chat_body(prompt_bytes: usize, stream: bool) -> Vec<u8> {
    let last = prompt_bytes.saturating_sub(600).max(64);
    serde_json::to_vec(&json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": text(300)},
            {"role": "user", "content": text(100)},
            {"role": "assistant", "content": text(200)},
            {"role": "user", "content": [{"type": "text", "text": text(last)}]},
        ],
        "temperature": 0.2,
        "max_tokens": 512,
        "user": "bench",
        "stream": stream,
    }))
    .unwrap()
}

/// A `chat-generations` answer in the documented shape (as in the spec's fixture), its content
/// `answer_bytes` long.
fn models_answer(answer_bytes: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "chatcmpl-9AMuFltdq7M5ntZVvQcAkgyWhfoas",
        "generationDetails": {
            "generations": [{
                "id": "3f7c0b1e-0000-4000-8000-000000000001",
                "role": "assistant",
                "content": text(answer_bytes),
                "timestamp": 1712258359,
                "parameters": {"finish_reason": "stop", "refusal": null, "index": 0, "logprobs": null},
                "contentQuality": {"scanToxicity": {"isDetected": false,
                    "categories": [{"categoryName": "toxicity", "score": 0.0}]}}
            }],
            "parameters": {
                "provider": "OpenAI", "created": 1712258359, "model": "gpt-4o-mini-2024-07-18",
                "object": "chat.completion", "system_fingerprint": null,
                "usage": {"prompt_tokens": 39, "completion_tokens": 607, "total_tokens": 646,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}}
            }
        }
    }))
    .unwrap()
}

const SIZES_IN: [(&str, usize); 2] = [("1KB", 1024), ("100KB", 100 * 1024)];
const SIZES_OUT: [(&str, usize); 2] = [("2KB", 2048), ("50KB", 50 * 1024)];

fn quick<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    group
}

/// OpenAI request → Models API request: lenient parse, translate, serialize.
fn request_translation(c: &mut Criterion) {
    let mut group = quick(c, "request");
    for (label, size) in SIZES_IN {
        let body = chat_body(size, false);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("chat_{label}"), |b| {
            b.iter(|| {
                let request: ChatCompletionRequest<'_> =
                    serde_json::from_slice(black_box(&body)).unwrap();
                let request = front::chat::to_core(request).unwrap();
                let Task::Chat(chat) = &request.task else {
                    unreachable!()
                };
                let upstream = einstein::chat_body(chat).unwrap();
                serde_json::to_vec(&upstream).unwrap()
            })
        });
    }
    group.finish();
}

/// Models API answer → OpenAI `chat.completion`: one borrowed parse, the extractor, the JSON.
fn response_normalisation(c: &mut Criterion) {
    let mut group = quick(c, "response");
    let ctx = AnswerCtx {
        fallback_id: "chatcmpl-bench",
        created: 1_700_000_000,
        model: "gpt-4o-mini",
        delivery: Delivery::WHOLE,
    };
    for (label, size) in SIZES_OUT {
        let body = models_answer(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("chat_{label}"), |b| {
            b.iter(|| {
                let response = einstein::parse(black_box(&body)).unwrap();
                let answer = einstein::extract(&response, Operation::Chat).unwrap();
                front::chat::completion_json(&einstein::generation(answer), &ctx).unwrap()
            })
        });
    }
    group.finish();
}

/// A complete answer → OpenAI's server-sent events, every event encoded.
fn stream_encoding(c: &mut Criterion) {
    let mut group = quick(c, "stream");
    for (label, size) in SIZES_OUT {
        let text = text(size);
        let answer = Generation {
            id: None,
            text: &text,
            tool_calls: vec![],
            finish: Finish::Stop,
            usage: None,
        };
        let ctx = AnswerCtx {
            fallback_id: "chatcmpl-9AMuFltdq7M5ntZVvQcAkgyWhfoas",
            created: 1_700_000_000,
            model: "gpt-4o-mini",
            delivery: Delivery::WHOLE,
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("chat_{label}"), |b| {
            b.iter_batched(
                || SseEvents::new(StreamKind::Chat, &ctx, &answer, true),
                |events| events.map(|event| event.len()).sum::<usize>(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A Bedrock `invoke-with-response-stream` answer as it arrives: `chunk` frames carrying a
/// message start, a text block of 200 deltas of a few words each, and the closing events.
fn bedrock_stream() -> Vec<u8> {
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_bdrk_01", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4-6", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 412, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
    ];
    let words: Vec<&str> = FILLER.split(' ').collect();
    for delta in 0..200 {
        let text = words
            .iter()
            .cycle()
            .skip(delta)
            .take(4)
            .copied()
            .collect::<Vec<_>>();
        events.push(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("{} ", text.join(" "))}}));
    }
    events.extend([
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 800}}),
        json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 412,
            "outputTokenCount": 800, "invocationLatency": 9120, "firstByteLatency": 410}}),
    ]);
    events
        .iter()
        .flat_map(|event| eventstream::chunk_frame(&serde_json::to_vec(event).unwrap()))
        .collect()
}

/// A Bedrock stream → frames, and → the Anthropic events' JSON bytes (CRCs, headers, then the
/// base64 in each payload), fed in 1,500-byte reads as from a TCP socket.
fn eventstream_decoding(c: &mut Criterion) {
    let mut group = quick(c, "eventstream");
    let wire = bedrock_stream();
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("frames_200_deltas", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(Limits::default());
            let mut frames = 0;
            for read in black_box(&wire).chunks(1500) {
                decoder.push(read);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    frames += frame.payload.len().min(1);
                }
            }
            decoder.finish().unwrap();
            frames
        })
    });
    group.bench_function("events_200_deltas", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(Limits::default());
            let mut bytes = 0;
            for read in black_box(&wire).chunks(1500) {
                decoder.push(read);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    bytes += eventstream::chunk_bytes(&frame.payload).unwrap().len();
                }
            }
            decoder.finish().unwrap();
            bytes
        })
    });
    group.finish();
}

/// A token that never expires: the token cache is hit on every request, as in production.
struct FixedToken;

impl TokenSource for FixedToken {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
        Box::pin(async {
            Ok(FetchedToken {
                token: AccessToken::new("bench.token.value"),
                lifetime: Duration::from_secs(24 * 3600),
            })
        })
    }
}

const CONF: &str = r#"
[salesforce]
api_base      = "http://127.0.0.1:9/einstein/platform/v1"
token_url     = "http://127.0.0.1:9/services/oauth2/token"
client_id     = "bench"
client_secret = "bench"

[auth]
api_keys = ["bench-key"]

[[routes]]
model            = "gpt-4o-mini"
salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
"#;

/// One request through `Salesforce<S>` over an in-memory upstream that answers at once: routing,
/// auth, body read, translation, token cache, retry loop, extraction, rendering, metrics.
fn service_round_trip(c: &mut Criterion) {
    let mut group = quick(c, "service");
    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let layer = SalesforceLayer::builder(&config)
        .token_source(FixedToken)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (label, prompt, answer) in [
        ("1KB_2KB", 1024, 2048),
        ("100KB_50KB", 100 * 1024, 50 * 1024),
    ] {
        let canned = Bytes::from(models_answer(answer));
        let upstream = tower::service_fn(move |_: http::Request<Bytes>| {
            let canned = canned.clone();
            async move { Ok::<_, UpstreamError>(http::Response::new(UpstreamBody::whole(canned))) }
        });
        let bridge = layer.layer(upstream);
        for stream in [false, true] {
            let body = Bytes::from(chat_body(prompt, stream));
            let name = format!("chat_{label}{}", if stream { "_stream" } else { "" });
            group.bench_function(name, |b| {
                b.iter(|| {
                    let request = http::Request::post("/v1/chat/completions")
                        .header("authorization", "Bearer bench-key")
                        .header("content-type", "application/json")
                        .header("content-length", body.len())
                        .body(Full::new(body.clone()))
                        .unwrap();
                    runtime.block_on(async {
                        let Ok::<_, Infallible>(response) = bridge.clone().oneshot(request).await;
                        assert_eq!(response.status(), 200);
                        let mut body = response.into_body();
                        let mut bytes = 0;
                        while let Some(frame) = body.frame().await {
                            bytes += frame.unwrap().into_data().map_or(0, |d| d.len());
                        }
                        bytes
                    })
                })
            });
        }
    }
    group.finish();
}

/// A loopback HTTP/1.1 server on `runtime` that reads each request whole and answers `canned`,
/// and its address.
fn canned_server(runtime: &tokio::runtime::Runtime, canned: Bytes) -> std::net::SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let canned = canned.clone();
            let answer =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let canned = canned.clone();
                    async move {
                        request.into_body().collect().await?;
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(canned)))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), answer),
            );
        }
    });
    addr
}

/// One call through the real [`Upstream`] client, over a pooled loopback connection, to a server
/// on the same single-threaded runtime that answers at once: the client's cost per request (pool
/// checkout, request write, head parse, body read) plus a constant server share.
fn upstream_round_trip(c: &mut Criterion) {
    let mut group = quick(c, "upstream");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = canned_server(&runtime, Bytes::from(models_answer(2048)));
    let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
    let upstream = runtime.block_on(async { Upstream::new(&config.salesforce).unwrap() });
    let uri: http::Uri = format!("http://{addr}/einstein/platform/v1/models/m/chat-generations")
        .parse()
        .unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    group.bench_function("chat_1KB_2KB", |b| {
        b.iter(|| {
            let request = http::Request::post(uri.clone())
                .header("authorization", "Bearer bench.token.value")
                .header("content-type", "application/json")
                .body(body.clone())
                .unwrap();
            runtime.block_on(async {
                let response = upstream.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let answer = response.into_body().read_capped(MAX_ANSWER_BYTES).await;
                answer.unwrap().len()
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    request_translation,
    response_normalisation,
    stream_encoding,
    eventstream_decoding,
    service_round_trip,
    upstream_round_trip
);
criterion_main!(benches);
