//! The integration harness: the mock Salesforce on a real loopback socket, and the bridge behind
//! either mount, axum or Pingora. Each suite is written once and run against both with
//! [`for_each_mount!`].
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod sdk;

use std::net::SocketAddr;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use axum::routing::get;
use axum::Router;
use sf_models_bridge::mock::{Counters, MockOptions, MockSalesforce, MockState};
use sf_models_bridge::{server, Config, SalesforceLayer, SalesforceRoutesLayer, Upstream};
use tokio::sync::oneshot;
use tower::Layer;

/// Which mount serves the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// An axum app with the pass-through layer, served by `sf_models_bridge::server::serve`.
    Axum,
    /// The ready-made Pingora gateway, in-process.
    Pingora,
}

/// Generates one `#[tokio::test]` per mount for each listed `async fn name(mount: Mount)`.
#[macro_export]
macro_rules! for_each_mount {
    ($($name:ident),* $(,)?) => {
        mod axum_mount {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Mount::Axum).await;
                }
            )*
        }
        #[cfg(feature = "pingora")]
        mod pingora_mount {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Mount::Pingora).await;
                }
            )*
        }
    };
}

/// The routes every test gateway has.
pub const CHAT_MODEL: &str = "gpt-4o-mini";
/// Routed to an Anthropic-on-Bedrock model: the mock answers with camelCase usage.
pub const BEDROCK_MODEL: &str = "claude-sonnet-4";

/// A GPT model on the native Responses surface (`{gpt_api_base}/responses`).
pub const GPT_NATIVE_MODEL: &str = "gpt-5";
/// A Claude model on the native Bedrock surface (`{gpt_api_base}/model/{m}/invoke`).
pub const CLAUDE_NATIVE_MODEL: &str = "claude-sonnet-4-6";
/// The Salesforce model behind [`GPT_NATIVE_MODEL`].
pub const GPT_NATIVE_SALESFORCE_MODEL: &str = "sfdc_ai__DefaultGPT5";
/// The Salesforce model behind [`CLAUDE_NATIVE_MODEL`].
pub const CLAUDE_NATIVE_SALESFORCE_MODEL: &str = "sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet";

/// Every test gateway's routes, in the conf's order (what `/v1/models` lists).
pub const ROUTED_MODELS: [&str; 5] = [
    CHAT_MODEL,
    BEDROCK_MODEL,
    "gpt-4o",
    GPT_NATIVE_MODEL,
    CLAUDE_NATIVE_MODEL,
];

/// An embeddings route, for [`Setup::sections`]: served on `/v1/embeddings` only.
pub const EMBEDDINGS_ROUTE: &str = r#"
[[routes]]
model = "text-embedding-ada-002"
salesforce_model = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
kind = "embeddings"
"#;

/// The model name of [`EMBEDDINGS_ROUTE`].
pub const EMBEDDINGS_MODEL: &str = "text-embedding-ada-002";

/// How to build a test gateway.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The mock's options.
    pub mock: MockOptions,
    /// Extra `[server]` keys, one per line.
    pub server: String,
    /// Extra `[salesforce]` keys, one per line.
    pub salesforce: String,
    /// The `[retry]` section's keys.
    pub retry: String,
    /// Extra sections (`[auth]`, ...), appended before the routes.
    pub sections: String,
    /// Where model calls go instead of the mock (the token endpoint stays the mock's).
    pub api_base: Option<String>,
    /// Where native-surface calls go instead of the mock's `/ai/gpt/v1`.
    pub gpt_api_base: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            mock: MockOptions::default(),
            server: String::new(),
            salesforce: String::new(),
            retry: "max_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 100\n".to_owned(),
            sections: String::new(),
            api_base: None,
            gpt_api_base: None,
        }
    }
}

impl Setup {
    /// Adds `[server]` keys.
    pub fn server(mut self, keys: &str) -> Self {
        self.server.push_str(keys);
        self.server.push('\n');
        self
    }

    /// Adds `[salesforce]` keys.
    pub fn salesforce(mut self, keys: &str) -> Self {
        self.salesforce.push_str(keys);
        self.salesforce.push('\n');
        self
    }

    /// Appends sections such as `[auth]`.
    pub fn sections(mut self, text: &str) -> Self {
        self.sections.push_str(text);
        self.sections.push('\n');
        self
    }

    /// The conf text for a mock listening at `mock`.
    pub fn conf(&self, mock: &MockSalesforce) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
header_read_timeout_secs = 2
body_read_timeout_secs = 2
shutdown_grace_secs = 2
{server}

[salesforce]
api_base = "{api_base}"
gpt_api_base = "{gpt_api_base}"
token_url = "{token_url}"
client_id = "{id}"
client_secret = "{secret}"
stream_keepalive_secs = 1
{salesforce}

[retry]
{retry}

{sections}

[[routes]]
model = "{CHAT_MODEL}"
salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"

[[routes]]
model = "{BEDROCK_MODEL}"
salesforce_model = "sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet"

[[routes]]
model = "gpt-4o"
salesforce_model = "sfdc_ai__DefaultGPT4Omni"

[[routes]]
model = "{GPT_NATIVE_MODEL}"
salesforce_model = "{GPT_NATIVE_SALESFORCE_MODEL}"
surface = "responses"

[[routes]]
model = "{CLAUDE_NATIVE_MODEL}"
salesforce_model = "{CLAUDE_NATIVE_SALESFORCE_MODEL}"
surface = "bedrock"
"#,
            api_base = self.api_base.clone().unwrap_or_else(|| mock.api_base()),
            gpt_api_base = self
                .gpt_api_base
                .clone()
                .unwrap_or_else(|| format!("http://{}/ai/gpt/v1", mock.addr())),
            token_url = mock.token_url(),
            id = self.mock.client_id,
            secret = self.mock.client_secret,
            server = self.server,
            salesforce = self.salesforce,
            retry = self.retry,
            sections = self.sections,
        )
    }
}

enum Running {
    Axum {
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    },
    #[cfg(feature = "pingora")]
    Pingora(sf_models_bridge::pingora::RunningGateway),
}

/// A running bridge in front of a running mock.
pub struct Gateway {
    /// Which mount this is.
    pub mount: Mount,
    /// The gateway's address.
    pub addr: SocketAddr,
    /// The mock behind it.
    pub mock: MockSalesforce,
    /// The layer that built the bridge (metrics, token cache).
    pub layer: SalesforceLayer,
    /// The parsed conf.
    pub config: Config,
    running: Running,
}

impl Gateway {
    /// A gateway with the default setup.
    pub async fn start(mount: Mount) -> Self {
        Self::start_with(mount, Setup::default()).await
    }

    /// A gateway with `setup`.
    pub async fn start_with(mount: Mount, setup: Setup) -> Self {
        let mock = MockSalesforce::start_with(setup.mock.clone())
            .await
            .expect("mock starts");
        let config =
            Config::from_toml_with_env(&setup.conf(&mock), |_| None).expect("test conf is valid");
        let layer = SalesforceLayer::new(&config).expect("layer builds");
        let bridge = layer.layer(Upstream::new(&config.salesforce).expect("client builds"));
        let (addr, running) = match mount {
            Mount::Axum => {
                let app = Router::new()
                    .route("/app", get(|| async { "the app's own route" }))
                    .layer(SalesforceRoutesLayer::new(bridge));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                let (stop, stopped) = oneshot::channel::<()>();
                let server_config = config.server.clone();
                let task = tokio::spawn(async move {
                    server::serve(listener, app, &server_config, async {
                        stopped.await.ok();
                    })
                    .await;
                });
                (
                    addr,
                    Running::Axum {
                        stop: Some(stop),
                        task,
                    },
                )
            }
            Mount::Pingora => Self::start_pingora(&config, bridge).await,
        };
        Gateway {
            mount,
            addr,
            mock,
            layer,
            config,
            running,
        }
    }

    #[cfg(feature = "pingora")]
    async fn start_pingora(
        config: &Config,
        bridge: sf_models_bridge::Salesforce<Upstream>,
    ) -> (SocketAddr, Running) {
        let gateway = sf_models_bridge::pingora::spawn_gateway(config, bridge)
            .await
            .expect("pingora gateway starts");
        (gateway.local_addr(), Running::Pingora(gateway))
    }

    #[cfg(not(feature = "pingora"))]
    async fn start_pingora(
        _: &Config,
        _: sf_models_bridge::Salesforce<Upstream>,
    ) -> (SocketAddr, Running) {
        panic!("the Pingora mount needs the `pingora` feature")
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The mock's state: faults, counters, recorded requests.
    pub fn upstream(&self) -> &MockState {
        self.mock.state()
    }

    /// The mock's counters.
    pub fn counters(&self) -> Counters {
        self.mock.state().counters()
    }

    /// An official-style OpenAI client pointed at the gateway.
    pub fn openai(&self) -> async_openai::Client<OpenAIConfig> {
        async_openai::Client::with_config(
            OpenAIConfig::new()
                .with_api_base(self.url("/v1"))
                .with_api_key(CALLER_KEY),
        )
    }

    /// `GET /metrics`.
    pub async fn scrape(&self) -> String {
        http()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape body")
    }

    /// Stops the gateway gracefully and waits for it.
    pub async fn stop(self) {
        match self.running {
            Running::Axum { mut stop, task } => {
                if let Some(stop) = stop.take() {
                    stop.send(()).ok();
                }
                task.await.ok();
            }
            #[cfg(feature = "pingora")]
            Running::Pingora(gateway) => gateway.stop().await,
        }
    }
}

/// The key test callers present; the bridge must never forward it.
pub const CALLER_KEY: &str = "sk-caller-key-never-upstream";

/// A plain HTTP client with a timeout, for what the OpenAI client cannot send.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A minimal valid chat request body.
pub fn chat(model: &str, content: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// POSTs `body` as JSON and returns the status and the parsed body.
pub async fn post_json(
    gateway: &Gateway,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    post_json_via(&http(), gateway, path, body).await
}

/// The status and the parsed JSON body of `request` once sent.
pub async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, value)
}

// ---------------------------------------------------------------------------------------------
// Helpers for the resilience suites (faults, hostile input, auth, soak)
// ---------------------------------------------------------------------------------------------

/// The `error.type` and `error.code` of an OpenAI error envelope (`""` and `None` when absent).
pub fn error_kind(body: &serde_json::Value) -> (&str, Option<&str>) {
    let error = &body["error"];
    (error["type"].as_str().unwrap_or(""), error["code"].as_str())
}

/// Sends one ordinary chat request and asserts it is answered normally: the bridge is still
/// serving after whatever the test did before.
pub async fn assert_serves(gateway: &Gateway) {
    let content = "still serving?";
    let (status, body) =
        post_json(gateway, "/v1/chat/completions", &chat(CHAT_MODEL, content)).await;
    assert_eq!(status, 200, "the bridge no longer serves normally: {body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("Echo: {content}"),
        "{body}"
    );
}

/// `GET path`: the status and the parsed JSON body.
pub async fn get_json(gateway: &Gateway, path: &str) -> (u16, serde_json::Value) {
    let response = http().get(gateway.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, value)
}

/// Panics outside test threads since the process started: in connection tasks, Tokio workers,
/// Pingora's threads. The first call installs a recording hook in front of the default one; each
/// call marks the calling thread as a test thread, whose own failed assertions are not counted.
/// A bridge that keeps serving may still have lost a connection to a panic; this catches that.
pub fn panics() -> Vec<String> {
    use std::collections::HashSet;
    use std::sync::{Mutex, Once};
    static SEEN: Mutex<Vec<(Option<String>, String)>> = Mutex::new(Vec::new());
    static TEST_THREADS: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().map(str::to_owned);
            if let Ok(mut seen) = SEEN.lock() {
                seen.push((thread, info.to_string()));
            }
            default(info);
        }));
    });
    let mut tests = TEST_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let tests = tests.get_or_insert_with(HashSet::new);
    if let Some(name) = std::thread::current().name() {
        tests.insert(name.to_owned());
    }
    let seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.iter()
        .filter(|(thread, _)| thread.as_ref().is_none_or(|name| !tests.contains(name)))
        .map(|(thread, message)| format!("{}: {message}", thread.as_deref().unwrap_or("?")))
        .collect()
}

/// [`post_json`] through `client`, for tests that send many requests at once (building a client
/// per request costs more than the request).
pub async fn post_json_via(
    client: &reqwest::Client,
    gateway: &Gateway,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    status_and_json(client.post(gateway.url(path)).json(body)).await
}

/// `callers` concurrent requests arrive just after the cached token expired: all succeed, and the
/// token endpoint is called exactly once for them.
pub async fn callers_at_token_expiry_fetch_one_token(mount: Mount, callers: usize) {
    // The first token is opaque, so the bridge gives it `token_ttl_secs` (5 s, the shortest
    // lifetime the cache believes) while the mock keeps accepting it: expiry is the bridge's
    // alone, and no caller can meet a 401. With no refresh skew nothing is refreshed ahead, so
    // every caller after expiry waits for the one fetch. The refresh answers a JWT that lives 30
    // minutes, after 500 ms, like a real token endpoint.
    let setup = Setup::default().salesforce(
        "token_ttl_secs = 5\ntoken_refresh_skew_secs = 0\nmax_concurrent_requests = 1024",
    );
    let gateway = std::sync::Arc::new(Gateway::start_with(mount, setup).await);
    gateway
        .upstream()
        .inject_token_fault(sf_models_bridge::mock::TokenFault::NotJwt, 1);
    gateway.upstream().inject_token_fault(
        sf_models_bridge::mock::TokenFault::Slow(Duration::from_millis(500)),
        1,
    );
    let (status, body) =
        post_json(&gateway, "/v1/chat/completions", &chat(CHAT_MODEL, "first")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gateway.counters().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(5100)).await; // the token has now expired

    // One pooled client: with no idle connection to reuse, each caller opens its own, so all
    // callers are in flight at once.
    let client = http();
    let requests = (0..callers).map(|i| {
        let client = client.clone();
        let url = gateway.url("/v1/chat/completions");
        tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&chat(CHAT_MODEL, &format!("caller {i}")))
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
    });
    let statuses = futures_util::future::join_all(requests).await;
    let ok = statuses
        .iter()
        .filter(|status| matches!(status, Ok(Ok((200, _)))))
        .count();
    let failed: Vec<_> = statuses
        .iter()
        .filter(|status| !matches!(status, Ok(Ok((200, _)))))
        .take(5)
        .collect();
    assert_eq!(ok, callers, "first failures: {failed:?}");
    let counters = gateway.counters();
    assert_eq!(counters.token_requests, 2, "exactly one fetch at expiry");
    assert_eq!(counters.chat_requests, 1 + callers as u64);
    let sent = gateway.upstream().last_model_request().unwrap();
    assert!(
        sent.headers["authorization"]
            .as_bytes()
            .starts_with(b"Bearer ey"),
        "the refreshed token (a JWT) was used"
    );
    if let Ok(gateway) = std::sync::Arc::try_unwrap(gateway) {
        gateway.stop().await;
    }
}
