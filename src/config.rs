//! The TOML conf file: `${NAME}` interpolation, validation, and typed settings.
//!
//! Everything fallible about configuration happens here, once, at start-up: after
//! [`Config::from_path`] succeeds, nothing on the request path fails because of configuration.
//!
//! ```
//! use sf_models_bridge::Config;
//!
//! let toml = r#"
//!     [salesforce]
//!     api_base      = "https://api.salesforce.com/einstein/platform/v1"
//!     token_url     = "https://${MY_DOMAIN}.my.salesforce.com/services/oauth2/token"
//!     client_id     = "id"
//!     client_secret = "${SECRET}"
//!
//!     [[routes]]
//!     model            = "gpt-4o-mini"
//!     salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
//! "#;
//! let env = |name: &str| match name {
//!     "MY_DOMAIN" => Some("acme".to_owned()),
//!     "SECRET" => Some("s3cr3t".to_owned()),
//!     _ => None,
//! };
//! let config = Config::from_toml_with_env(toml, env)?;
//! assert_eq!(config.salesforce.token_url, "https://acme.my.salesforce.com/services/oauth2/token");
//! assert_eq!(format!("{:?}", config.salesforce.client_secret), "Secret(***)");
//! assert_eq!(config.route("gpt-4o-mini").unwrap().salesforce_model, "sfdc_ai__DefaultOpenAIGPT4OmniMini");
//! # Ok::<(), sf_models_bridge::config::ConfigError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::RouteKind;
use crate::surface::SurfaceKind;

/// A conf file that could not be loaded. Every variant names the key, variable or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read conf file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a key is unknown, missing or of the wrong type.
    #[error("invalid conf: {0}")]
    Parse(#[from] toml::de::Error),
    /// A `${NAME}` names an environment variable that is not set.
    #[error("{key}: environment variable {variable} is not set")]
    MissingVariable {
        /// The key whose value holds the reference.
        key: String,
        /// The variable's name.
        variable: String,
    },
    /// A `${` without its closing `}`.
    #[error("{key}: unterminated `${{` in value")]
    UnterminatedVariable {
        /// The key whose value is malformed.
        key: String,
    },
    /// A value that parses but cannot be used.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key at fault, as `section.key`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A secret string (client secret, API key) whose `Debug` output is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call this only where the value must go on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// The whole conf file, parsed and validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: the examples' listener and client-facing timeouts.
    pub server: ServerConfig,
    /// `[salesforce]`: where and how to reach the Models API.
    pub salesforce: SalesforceConfig,
    /// `[retry]`: how failed upstream calls are retried.
    pub retry: RetryConfig,
    /// `[auth]`: the keys callers must present.
    pub auth: AuthConfig,
    /// `[pingora]`: read by the Pingora gateway only.
    pub pingora: PingoraConfig,
    /// `[[routes]]`: OpenAI model name → Salesforce model API name.
    pub routes: Vec<Route>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`: the address the examples bind.
    pub listen: SocketAddr,
    /// `header_read_timeout_secs`: how long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// `body_read_timeout_secs`: how long a client may take to send its whole request body.
    pub body_read_timeout: Duration,
    /// `shutdown_grace_secs`: how long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// `body_budget_bytes`: the request-body bytes all requests together may hold while they are
    /// read; past it, 503 at once.
    pub body_budget_bytes: usize,
    /// `write_timeout_secs`: how long one blocked write to a client may wait for it to read
    /// (the idle time of a write, not the whole response's).
    pub write_timeout: Duration,
}

/// `[salesforce]`.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// `api_base`: the Models API base URL, without a trailing slash.
    pub api_base: String,
    /// `gpt_api_base`: the base of the native surfaces (`/ai/gpt/v1`), without a trailing slash.
    pub gpt_api_base: String,
    /// `token_url`: the org's OAuth token endpoint.
    pub token_url: String,
    /// `client_id`: the connected app's consumer key.
    pub client_id: String,
    /// `client_secret`: the connected app's consumer secret.
    pub client_secret: Secret,
    /// `token_refresh_skew_secs`: how long before `exp` a token is refreshed.
    pub token_refresh_skew: Duration,
    /// `token_ttl_secs`: the lifetime assumed for a token with no readable `exp`.
    pub token_ttl: Duration,
    /// `connect_timeout_secs`: TCP and TLS connect timeout.
    pub connect_timeout: Duration,
    /// `timeout_secs`: the limit on one upstream attempt.
    pub timeout: Duration,
    /// `request_deadline_secs`: the limit on one caller request, from its arrival: reading its
    /// body, waiting for tokens and all retries.
    pub request_deadline: Duration,
    /// `max_request_bytes`: larger request bodies get 413.
    pub max_request_bytes: usize,
    /// `max_concurrent_requests`: upstream calls in flight at once.
    pub max_concurrent_requests: usize,
    /// `queue_timeout_ms`: how long a request may wait for an upstream slot before a 503.
    pub queue_timeout: Duration,
    /// `stream_keepalive_secs`: how often a waiting event stream gets a keep-alive comment, and
    /// how long a streamed request waits for the upstream before its response starts.
    pub stream_keepalive: Duration,
}

/// `[retry]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// `max_attempts`: attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// `base_delay_ms`: the first backoff; each later one doubles, with jitter.
    pub base_delay: Duration,
    /// `max_delay_ms`: the cap on one backoff, and on what `Retry-After` may ask for.
    pub max_delay: Duration,
    /// `connection_lost_after_send`: whether a connection lost after the request was sent is
    /// retried too. Off by default: the Models API may have run (and billed) the generation, so
    /// a retry can run it twice.
    pub connection_lost_after_send: bool,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `api_keys`: keys without a name (labelled `unnamed`). When this and `keys` are both
    /// empty, the bridge is open and its callers are `anonymous`.
    pub api_keys: Vec<Secret>,
    /// `[[auth.keys]]`: named callers, each with its own key and optional limits.
    pub keys: Vec<CallerKey>,
}

impl AuthConfig {
    /// Whether callers must present a key.
    pub fn required(&self) -> bool {
        !self.api_keys.is_empty() || !self.keys.is_empty()
    }
}

/// `[[auth.keys]]`: one named caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerKey {
    /// `name`: labels the caller's log lines and metrics; never the key.
    pub name: String,
    /// `key`: what the caller presents, usually `"${ENV_VAR}"`.
    pub key: Secret,
    /// `requests_per_minute`: the most requests a minute (a burst of as many, then evenly).
    pub requests_per_minute: Option<NonZeroU32>,
    /// `tokens_per_minute`: the most prompt plus completion tokens a minute.
    pub tokens_per_minute: Option<NonZeroU32>,
}

/// The most characters of a caller's name: it is a metric label value.
pub const MAX_CALLER_NAME_CHARS: usize = 64;

/// The caller label values the bridge itself uses, which no `[[auth.keys]]` name may take.
pub const RESERVED_CALLER_NAMES: [&str; 2] = ["anonymous", "unnamed"];

/// `[pingora]`: read by the Pingora gateway only.
#[derive(Debug, Clone)]
pub struct PingoraConfig {
    /// `upstream`: `host:port` where paths that are not the bridge's are proxied; none: 404.
    pub upstream: Option<String>,
    /// `upstream_tls`: whether that upstream speaks TLS.
    pub upstream_tls: bool,
    /// `upstream_sni`: the TLS server name for that upstream.
    pub upstream_sni: String,
    /// `server_conf`: Pingora's own YAML server conf (threads, grace period).
    pub server_conf: Option<PathBuf>,
    /// `strip_caller_credentials`: whether the caller's `Authorization`, `api-key` and
    /// `x-api-key` are removed from requests proxied to `upstream` (default: yes; they are the
    /// bridge's keys, not the upstream's).
    pub strip_caller_credentials: bool,
}

impl Default for PingoraConfig {
    fn default() -> Self {
        Self {
            upstream: None,
            upstream_tls: false,
            upstream_sni: String::new(),
            server_conf: None,
            strip_caller_credentials: true,
        }
    }
}

/// `[[routes]]`: one OpenAI model name and the Salesforce model it is served by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The `model` that OpenAI clients send.
    pub model: String,
    /// The Models API name, as it goes in the URL path.
    pub salesforce_model: String,
    /// `surface`: how Salesforce serves the model (`einstein`, the default, or `responses`).
    #[serde(default)]
    pub surface: SurfaceKind,
    /// `kind`: `chat` (the default) or `embeddings`, for an embeddings model.
    #[serde(default)]
    pub kind: RouteKind,
    /// `default_max_tokens`, `surface = "bedrock"` only: the `max_tokens` sent when the caller
    /// names none, which Anthropic's API requires
    /// ([`bedrock::DEFAULT_MAX_TOKENS`](crate::surface::bedrock::DEFAULT_MAX_TOKENS) when
    /// absent).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// `thinking_enabled_to_adaptive`, `surface = "bedrock"` only (off by default): rewrite
    /// `thinking: {"type": "enabled", ...}` to `{"type": "adaptive"}`, which newer Claude
    /// models on real orgs were observed to require.
    #[serde(default)]
    pub thinking_enabled_to_adaptive: bool,
    /// `strip_thinking_history`, `surface = "bedrock"` only (off by default): remove `thinking`
    /// and `redacted_thinking` blocks from the conversation sent, which were observed to make
    /// some orgs answer 502 "No user context has been created".
    #[serde(default)]
    pub strip_thinking_history: bool,
}

impl Config {
    /// Reads, interpolates and validates a conf file, taking `${NAME}` from the process environment.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_with_env(&text, |name| std::env::var(name).ok())
    }

    /// Parses conf text, taking `${NAME}` from `env`.
    pub fn from_toml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: RawConfig = toml::from_str(text)?;
        raw.interpolate(&env)?;
        raw.validate()
    }

    /// The route for an OpenAI model name, if one is configured.
    pub fn route(&self, model: &str) -> Option<&Route> {
        self.routes.iter().find(|route| route.model == model)
    }
}

/// Replaces every `${NAME}` in `value`; `key` names the setting in errors.
fn interpolate(
    key: &str,
    value: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if !value.contains("${") {
        return Ok(());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ConfigError::UnterminatedVariable {
                key: key.to_owned(),
            })?;
        let name = &after[..end];
        let replacement = env(name).ok_or_else(|| ConfigError::MissingVariable {
            key: key.to_owned(),
            variable: name.to_owned(),
        })?;
        out.push_str(&replacement);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    *value = out;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    salesforce: RawSalesforce,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    pingora: RawPingora,
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    header_read_timeout_secs: u64,
    body_read_timeout_secs: u64,
    shutdown_grace_secs: u64,
    body_budget_bytes: usize,
    write_timeout_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            shutdown_grace_secs: 10,
            body_budget_bytes: 64 * 1024 * 1024,
            write_timeout_secs: 30,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSalesforce {
    api_base: String,
    #[serde(default = "defaults::gpt_api_base")]
    gpt_api_base: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    #[serde(default = "defaults::token_refresh_skew_secs")]
    token_refresh_skew_secs: u64,
    #[serde(default = "defaults::token_ttl_secs")]
    token_ttl_secs: u64,
    #[serde(default = "defaults::connect_timeout_secs")]
    connect_timeout_secs: u64,
    #[serde(default = "defaults::timeout_secs")]
    timeout_secs: u64,
    #[serde(default)]
    request_deadline_secs: Option<u64>,
    #[serde(default = "defaults::max_request_bytes")]
    max_request_bytes: usize,
    #[serde(default = "defaults::max_concurrent_requests")]
    max_concurrent_requests: usize,
    #[serde(default = "defaults::queue_timeout_ms")]
    queue_timeout_ms: u64,
    #[serde(default = "defaults::stream_keepalive_secs")]
    stream_keepalive_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    max_attempts: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
    connection_lost_after_send: bool,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay_ms: 200,
            max_delay_ms: 5_000,
            connection_lost_after_send: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    api_keys: Vec<String>,
    keys: Vec<RawCallerKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallerKey {
    name: String,
    key: String,
    #[serde(default)]
    requests_per_minute: Option<u32>,
    #[serde(default)]
    tokens_per_minute: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPingora {
    upstream: Option<String>,
    upstream_tls: bool,
    upstream_sni: String,
    server_conf: Option<String>,
    strip_caller_credentials: bool,
}

impl Default for RawPingora {
    fn default() -> Self {
        Self {
            upstream: None,
            upstream_tls: false,
            upstream_sni: String::new(),
            server_conf: None,
            strip_caller_credentials: true,
        }
    }
}

mod defaults {
    pub(super) fn gpt_api_base() -> String {
        "https://api.salesforce.com/ai/gpt/v1".to_owned()
    }
    pub(super) fn token_refresh_skew_secs() -> u64 {
        300
    }
    pub(super) fn token_ttl_secs() -> u64 {
        1_500
    }
    pub(super) fn connect_timeout_secs() -> u64 {
        5
    }
    pub(super) fn timeout_secs() -> u64 {
        300
    }
    pub(super) fn max_request_bytes() -> usize {
        1_048_576
    }
    pub(super) fn max_concurrent_requests() -> usize {
        256
    }
    pub(super) fn queue_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn stream_keepalive_secs() -> u64 {
        10
    }
}

impl RawConfig {
    fn interpolate(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        interpolate("server.listen", &mut self.server.listen, env)?;
        let sf = &mut self.salesforce;
        interpolate("salesforce.api_base", &mut sf.api_base, env)?;
        interpolate("salesforce.gpt_api_base", &mut sf.gpt_api_base, env)?;
        interpolate("salesforce.token_url", &mut sf.token_url, env)?;
        interpolate("salesforce.client_id", &mut sf.client_id, env)?;
        interpolate("salesforce.client_secret", &mut sf.client_secret, env)?;
        for key in &mut self.auth.api_keys {
            interpolate("auth.api_keys", key, env)?;
        }
        for (index, caller) in self.auth.keys.iter_mut().enumerate() {
            interpolate(&format!("auth.keys[{index}].key"), &mut caller.key, env)?;
        }
        if let Some(upstream) = &mut self.pingora.upstream {
            interpolate("pingora.upstream", upstream, env)?;
        }
        interpolate("pingora.upstream_sni", &mut self.pingora.upstream_sni, env)?;
        if let Some(path) = &mut self.pingora.server_conf {
            interpolate("pingora.server_conf", path, env)?;
        }
        for (index, route) in self.routes.iter_mut().enumerate() {
            interpolate(&format!("routes[{index}].model"), &mut route.model, env)?;
            interpolate(
                &format!("routes[{index}].salesforce_model"),
                &mut route.salesforce_model,
                env,
            )?;
        }
        Ok(())
    }

    fn validate(self) -> Result<Config, ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(invalid(key, "must be greater than 0"))
            } else {
                Ok(value)
            }
        };

        let listen =
            self.server.listen.parse().map_err(|_| {
                invalid("server.listen", "must be an address such as 127.0.0.1:8080")
            })?;
        let header_read_timeout = seconds(
            "server.header_read_timeout_secs",
            positive(
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            )?,
        )?;
        let body_read_timeout = seconds(
            "server.body_read_timeout_secs",
            positive(
                "server.body_read_timeout_secs",
                self.server.body_read_timeout_secs,
            )?,
        )?;
        let shutdown_grace = seconds(
            "server.shutdown_grace_secs",
            self.server.shutdown_grace_secs,
        )?;
        let write_timeout = seconds(
            "server.write_timeout_secs",
            positive("server.write_timeout_secs", self.server.write_timeout_secs)?,
        )?;

        let sf = self.salesforce;
        let api_base = http_url("salesforce.api_base", &sf.api_base)?
            .trim_end_matches('/')
            .to_owned();
        let gpt_api_base = http_url("salesforce.gpt_api_base", &sf.gpt_api_base)?
            .trim_end_matches('/')
            .to_owned();
        let token_url = http_url("salesforce.token_url", &sf.token_url)?.to_owned();
        if sf.client_id.is_empty() {
            return Err(invalid("salesforce.client_id", "must not be empty"));
        }
        if sf.client_secret.is_empty() {
            return Err(invalid("salesforce.client_secret", "must not be empty"));
        }
        let timeout = seconds(
            "salesforce.timeout_secs",
            positive("salesforce.timeout_secs", sf.timeout_secs)?,
        )?;
        let request_deadline = match sf.request_deadline_secs {
            Some(secs) => seconds(
                "salesforce.request_deadline_secs",
                positive("salesforce.request_deadline_secs", secs)?,
            )?,
            None => timeout.saturating_mul(2),
        };
        if sf.max_request_bytes == 0 {
            return Err(invalid(
                "salesforce.max_request_bytes",
                "must be greater than 0",
            ));
        }
        if self.server.body_budget_bytes < sf.max_request_bytes {
            return Err(invalid(
                "server.body_budget_bytes",
                "must be at least salesforce.max_request_bytes, or no body of the largest size could be read",
            ));
        }
        if sf.max_concurrent_requests == 0 {
            return Err(invalid(
                "salesforce.max_concurrent_requests",
                "must be greater than 0",
            ));
        }
        let token_ttl = seconds(
            "salesforce.token_ttl_secs",
            positive("salesforce.token_ttl_secs", sf.token_ttl_secs)?,
        )?;
        let token_refresh_skew = seconds(
            "salesforce.token_refresh_skew_secs",
            sf.token_refresh_skew_secs,
        )?;
        let salesforce = SalesforceConfig {
            api_base,
            gpt_api_base,
            token_url,
            client_id: sf.client_id,
            client_secret: Secret(sf.client_secret),
            token_refresh_skew,
            token_ttl,
            connect_timeout: seconds(
                "salesforce.connect_timeout_secs",
                positive("salesforce.connect_timeout_secs", sf.connect_timeout_secs)?,
            )?,
            timeout,
            request_deadline,
            max_request_bytes: sf.max_request_bytes,
            max_concurrent_requests: sf.max_concurrent_requests,
            queue_timeout: millis("salesforce.queue_timeout_ms", sf.queue_timeout_ms)?,
            stream_keepalive: seconds(
                "salesforce.stream_keepalive_secs",
                positive("salesforce.stream_keepalive_secs", sf.stream_keepalive_secs)?,
            )?,
        };

        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "must be at least 1"));
        }
        if self.retry.base_delay_ms > self.retry.max_delay_ms {
            return Err(invalid(
                "retry.base_delay_ms",
                "must not exceed retry.max_delay_ms",
            ));
        }
        let retry = RetryConfig {
            max_attempts: self.retry.max_attempts,
            base_delay: millis("retry.base_delay_ms", self.retry.base_delay_ms)?,
            max_delay: millis("retry.max_delay_ms", self.retry.max_delay_ms)?,
            connection_lost_after_send: self.retry.connection_lost_after_send,
        };

        let auth = validate_auth(self.auth)?;

        let pingora = PingoraConfig {
            upstream: self
                .pingora
                .upstream
                .filter(|upstream| !upstream.is_empty()),
            upstream_tls: self.pingora.upstream_tls,
            upstream_sni: self.pingora.upstream_sni,
            server_conf: self.pingora.server_conf.map(PathBuf::from),
            strip_caller_credentials: self.pingora.strip_caller_credentials,
        };

        if self.routes.is_empty() {
            return Err(invalid(
                "routes",
                "at least one [[routes]] entry is required",
            ));
        }
        for (index, route) in self.routes.iter().enumerate() {
            if route.model.is_empty() {
                return Err(invalid(
                    &format!("routes[{index}].model"),
                    "must not be empty",
                ));
            }
            if !is_path_segment(&route.salesforce_model) {
                return Err(invalid(
                    &format!("routes[{index}].salesforce_model"),
                    "must be a Models API name: letters, digits, `_`, `-` and `.` only",
                ));
            }
            if !route.surface.serves(route.kind) {
                return Err(invalid(
                    &format!("routes[{index}].kind"),
                    &format!(
                        "the `{}` surface has no `{}` models",
                        route.surface.as_str(),
                        route.kind.as_str()
                    ),
                ));
            }
            validate_surface_settings(index, route)?;
            if self.routes[..index]
                .iter()
                .any(|earlier| earlier.model == route.model)
            {
                return Err(invalid(
                    &format!("routes[{index}].model"),
                    &format!("`{}` is routed twice", route.model),
                ));
            }
        }

        Ok(Config {
            server: ServerConfig {
                listen,
                header_read_timeout,
                body_read_timeout,
                shutdown_grace,
                body_budget_bytes: self.server.body_budget_bytes,
                write_timeout,
            },
            salesforce,
            retry,
            auth,
            pingora,
            routes: self.routes,
        })
    }
}

/// `[auth]`: no empty key, no key twice, and caller names that make bounded, distinct labels.
fn validate_auth(raw: RawAuth) -> Result<AuthConfig, ConfigError> {
    let invalid = |key: String, reason: &str| ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    };
    if raw.api_keys.iter().any(String::is_empty) {
        return Err(invalid(
            "auth.api_keys".to_owned(),
            "a key must not be empty",
        ));
    }
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (index, caller) in raw.keys.into_iter().enumerate() {
        let at = |field: &str| format!("auth.keys[{index}].{field}");
        if !is_label_value(&caller.name) {
            return Err(invalid(
                at("name"),
                &format!("must be 1 to {MAX_CALLER_NAME_CHARS} letters, digits, `_`, `-` or `.`"),
            ));
        }
        if RESERVED_CALLER_NAMES.contains(&caller.name.as_str()) {
            return Err(invalid(at("name"), "is reserved by the bridge"));
        }
        if keys
            .iter()
            .any(|earlier: &CallerKey| earlier.name == caller.name)
        {
            return Err(invalid(
                at("name"),
                &format!("`{}` is named twice", caller.name),
            ));
        }
        if caller.key.is_empty() {
            return Err(invalid(at("key"), "must not be empty"));
        }
        let limit = |field: &str, value: Option<u32>| match value {
            Some(0) => Err(invalid(
                at(field),
                "must be greater than 0 (leave it out for no limit)",
            )),
            other => Ok(other.and_then(NonZeroU32::new)),
        };
        keys.push(CallerKey {
            requests_per_minute: limit("requests_per_minute", caller.requests_per_minute)?,
            tokens_per_minute: limit("tokens_per_minute", caller.tokens_per_minute)?,
            name: caller.name,
            key: Secret(caller.key),
        });
    }
    // A key given twice would make the caller ambiguous. The error names the second place, never
    // the key.
    let all: Vec<(String, &str)> = raw
        .api_keys
        .iter()
        .map(|key| ("auth.api_keys".to_owned(), key.as_str()))
        .chain(
            keys.iter()
                .enumerate()
                .map(|(index, caller)| (format!("auth.keys[{index}].key"), caller.key.expose())),
        )
        .collect();
    for (position, (place, key)) in all.iter().enumerate() {
        if all[..position].iter().any(|(_, earlier)| earlier == key) {
            return Err(invalid(
                place.clone(),
                "this key is already given to a caller",
            ));
        }
    }
    Ok(AuthConfig {
        api_keys: raw.api_keys.into_iter().map(Secret).collect(),
        keys,
    })
}

/// A metric label value the conf chooses: short, and plain enough for any query language.
fn is_label_value(name: &str) -> bool {
    (1..=MAX_CALLER_NAME_CHARS).contains(&name.chars().count())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The largest `default_max_tokens`: above any Claude model's output limit, so a larger value
/// is a typo.
const MAX_DEFAULT_MAX_TOKENS: u64 = 1_000_000;

/// Settings that only one surface reads are refused on routes of another, rather than ignored.
fn validate_surface_settings(index: usize, route: &Route) -> Result<(), ConfigError> {
    let invalid = |name: &str, reason: String| ConfigError::Invalid {
        key: format!("routes[{index}].{name}"),
        reason,
    };
    if route.surface == SurfaceKind::Bedrock {
        return match route.default_max_tokens {
            Some(max) if max == 0 || max > MAX_DEFAULT_MAX_TOKENS => Err(invalid(
                "default_max_tokens",
                format!("must be between 1 and {MAX_DEFAULT_MAX_TOKENS}"),
            )),
            _ => Ok(()),
        };
    }
    let bedrock_only = [
        ("default_max_tokens", route.default_max_tokens.is_some()),
        (
            "thinking_enabled_to_adaptive",
            route.thinking_enabled_to_adaptive,
        ),
        ("strip_thinking_history", route.strip_thinking_history),
    ];
    match bedrock_only.into_iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(invalid(
            name,
            "applies to routes with surface = \"bedrock\" only".to_owned(),
        )),
        None => Ok(()),
    }
}

/// The longest any timeout, deadline or delay may be. Longer is surely a mistake, and a bound
/// keeps `Instant` arithmetic on them far from overflowing.
const MAX_DURATION_SECS: u64 = 24 * 60 * 60;

/// A `_secs` key's value, at most a day.
fn seconds(key: &str, value: u64) -> Result<Duration, ConfigError> {
    at_most(key, value, MAX_DURATION_SECS).map(Duration::from_secs)
}

/// A `_ms` key's value, at most a day.
fn millis(key: &str, value: u64) -> Result<Duration, ConfigError> {
    at_most(key, value, MAX_DURATION_SECS * 1000).map(Duration::from_millis)
}

fn at_most(key: &str, value: u64, max: u64) -> Result<u64, ConfigError> {
    if value > max {
        return Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("must be at most {max} (one day)"),
        });
    }
    Ok(value)
}

fn http_url<'a>(key: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && value.parse::<http::Uri>().is_ok() =>
        {
            Ok(value)
        }
        _ => Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("must be an http:// or https:// URL, got `{value}`"),
        }),
    }
}

/// The model name goes into the upstream URL path unescaped, so it must not be able to alter it.
fn is_path_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [salesforce]
        api_base = "http://127.0.0.1:1/einstein/platform/v1/"
        token_url = "http://127.0.0.1:1/services/oauth2/token"
        client_id = "${ID}"
        client_secret = "${SECRET}"

        [[routes]]
        model = "gpt-4o-mini"
        salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
    "#;

    fn env(name: &str) -> Option<String> {
        match name {
            "ID" => Some("client".to_owned()),
            "SECRET" => Some("hunter2".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn minimal_conf_gets_defaults() {
        let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
        assert_eq!(
            config.salesforce.api_base,
            "http://127.0.0.1:1/einstein/platform/v1"
        );
        assert_eq!(config.salesforce.client_id, "client");
        assert_eq!(config.salesforce.client_secret.expose(), "hunter2");
        assert_eq!(
            config.salesforce.token_refresh_skew,
            Duration::from_secs(300)
        );
        assert_eq!(config.salesforce.max_request_bytes, 1_048_576);
        assert_eq!(config.retry.max_attempts, 3);
        assert!(!config.retry.connection_lost_after_send);
        assert!(config.auth.api_keys.is_empty());
        assert!(config.pingora.upstream.is_none());
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn missing_variable_names_key_and_variable() {
        let err = Config::from_toml_with_env(MINIMAL, |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "salesforce.client_id: environment variable ID is not set"
        );
    }

    #[test]
    fn unknown_key_is_rejected() {
        let text = MINIMAL.replace("[salesforce]", "[salesforce]\ntimeout_sec = 3");
        let err = Config::from_toml_with_env(&text, env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `timeout_sec`"), "{err}");
    }

    #[test]
    fn unterminated_variable_is_rejected() {
        let text = MINIMAL.replace("${SECRET}", "${SECRET");
        let err = Config::from_toml_with_env(&text, env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "salesforce.client_secret: unterminated `${` in value"
        );
    }

    #[test]
    fn interpolation_keeps_surrounding_text() {
        let mut value = "a-${ID}-b-${SECRET}".to_owned();
        interpolate("k", &mut value, &env).unwrap();
        assert_eq!(value, "a-client-b-hunter2");
    }

    #[test]
    fn zero_timeout_names_the_key() {
        let text = MINIMAL.replace("[salesforce]", "[salesforce]\ntimeout_secs = 0");
        let err = Config::from_toml_with_env(&text, env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "salesforce.timeout_secs: must be greater than 0"
        );
    }

    #[test]
    fn zero_write_timeout_names_the_key() {
        let text = format!("[server]\nwrite_timeout_secs = 0\n{MINIMAL}");
        let err = Config::from_toml_with_env(&text, env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server.write_timeout_secs: must be greater than 0"
        );
        let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
        assert_eq!(config.server.write_timeout, Duration::from_secs(30));
    }

    #[test]
    fn durations_longer_than_a_day_name_the_key() {
        let cases = [
            ("[server]", "header_read_timeout_secs", "86401"),
            ("[server]", "body_read_timeout_secs", "86401"),
            ("[server]", "shutdown_grace_secs", "86401"),
            ("[server]", "write_timeout_secs", "86401"),
            ("[salesforce]", "token_refresh_skew_secs", "86401"),
            ("[salesforce]", "token_ttl_secs", "86401"),
            ("[salesforce]", "connect_timeout_secs", "86401"),
            ("[salesforce]", "timeout_secs", "18446744073709551615"),
            (
                "[salesforce]",
                "request_deadline_secs",
                "18446744073709551615",
            ),
            ("[salesforce]", "queue_timeout_ms", "86400001"),
            ("[salesforce]", "stream_keepalive_secs", "86401"),
            ("[retry]", "max_delay_ms", "86400001"),
        ];
        for (section, key, value) in cases {
            // MINIMAL has a [salesforce] table already; the others go before it.
            let text = if section == "[salesforce]" {
                MINIMAL.replace("[salesforce]", &format!("[salesforce]\n{key} = {value}"))
            } else {
                format!("{section}\n{key} = {value}\n{MINIMAL}")
            };
            let err = Config::from_toml_with_env(&text, env)
                .unwrap_err()
                .to_string();
            let table = section.trim_matches(['[', ']']);
            let max = if key.ends_with("_ms") {
                "86400000"
            } else {
                "86400"
            };
            assert_eq!(
                err,
                format!("{table}.{key}: must be at most {max} (one day)"),
                "{key}"
            );
        }
        // base_delay_ms is checked against max_delay_ms first, and a day is still accepted.
        let text = MINIMAL.replace(
            "[salesforce]",
            "[retry]\nbase_delay_ms = 86400000\nmax_delay_ms = 86400000\n\n[salesforce]\ntimeout_secs = 86400",
        );
        let config = Config::from_toml_with_env(&text, env).unwrap();
        assert_eq!(config.retry.base_delay, Duration::from_secs(86_400));
        assert_eq!(
            config.salesforce.request_deadline,
            Duration::from_secs(2 * 86_400)
        );
    }

    #[test]
    fn model_name_that_could_escape_the_path_is_rejected() {
        let text = MINIMAL.replace("sfdc_ai__DefaultOpenAIGPT4OmniMini", "../feedback");
        let err = Config::from_toml_with_env(&text, env)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("routes[0].salesforce_model"), "{err}");
    }

    #[test]
    fn duplicate_route_is_rejected() {
        let text = format!(
            "{MINIMAL}\n[[routes]]\nmodel = \"gpt-4o-mini\"\nsalesforce_model = \"other\"\n"
        );
        let err = Config::from_toml_with_env(&text, env)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "routes[1].model: `gpt-4o-mini` is routed twice");
    }

    #[test]
    fn bedrock_settings_are_read_and_checked() {
        let bedrock = |extra: &str| {
            MINIMAL.replace(
                "salesforce_model = \"sfdc_ai__DefaultOpenAIGPT4OmniMini\"",
                &format!("salesforce_model = \"sfdc_ai__DefaultBedrockAnthropicClaude46Sonnet\"\nsurface = \"bedrock\"\n{extra}"),
            )
        };
        let config = Config::from_toml_with_env(&bedrock(""), env).unwrap();
        let route = &config.routes[0];
        assert_eq!(route.surface, SurfaceKind::Bedrock);
        assert_eq!(route.default_max_tokens, None);
        assert!(!route.thinking_enabled_to_adaptive && !route.strip_thinking_history);

        let text = bedrock("default_max_tokens = 8192\nthinking_enabled_to_adaptive = true\nstrip_thinking_history = true");
        let route = &Config::from_toml_with_env(&text, env).unwrap().routes[0];
        assert_eq!(route.default_max_tokens, Some(8192));
        assert!(route.thinking_enabled_to_adaptive && route.strip_thinking_history);

        let err = |text: &str| {
            Config::from_toml_with_env(text, env)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&bedrock("default_max_tokens = 0")),
            "routes[0].default_max_tokens: must be between 1 and 1000000"
        );
        assert_eq!(
            err(&bedrock("kind = \"embeddings\"")),
            "routes[0].kind: the `bedrock` surface has no `embeddings` models"
        );
        let einstein = format!("{MINIMAL}strip_thinking_history = true\n");
        assert_eq!(
            err(&einstein),
            "routes[0].strip_thinking_history: applies to routes with surface = \"bedrock\" only"
        );
    }

    #[test]
    fn a_route_names_its_surface() {
        let text = format!(
            "{MINIMAL}\n[[routes]]\nmodel = \"gpt-5\"\nsalesforce_model = \"sfdc_ai__DefaultGPT5\"\nsurface = \"responses\"\n"
        );
        let config = Config::from_toml_with_env(&text, env).unwrap();
        assert_eq!(config.routes[1].surface, SurfaceKind::Responses);
        assert_eq!(
            config.salesforce.gpt_api_base,
            "https://api.salesforce.com/ai/gpt/v1"
        );
        let err = Config::from_toml_with_env(&format!("{text}kind = \"embeddings\"\n"), env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "routes[1].kind: the `responses` surface has no `embeddings` models"
        );
        let err = Config::from_toml_with_env(&text.replace("\"responses\"", "\"bedrockish\""), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bedrockish"), "{err}");
    }

    #[test]
    fn bad_url_is_rejected() {
        let text = MINIMAL.replace("http://127.0.0.1:1/services", "ftp://x/services");
        let err = Config::from_toml_with_env(&text, env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("salesforce.token_url: must be an http"),
            "{err}"
        );
    }

    #[test]
    fn named_callers_take_their_keys_from_the_environment() {
        let text = format!(
            "[auth]\napi_keys = [\"plain\"]\n[[auth.keys]]\nname = \"alice\"\nkey = \"${{SECRET}}\"\nrequests_per_minute = 60\n[[auth.keys]]\nname = \"bob.batch\"\nkey = \"k-bob\"\ntokens_per_minute = 1000\n{MINIMAL}"
        );
        let config = Config::from_toml_with_env(&text, env).unwrap();
        let keys = &config.auth.keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[0].name.as_str(), keys[0].key.expose()),
            ("alice", "hunter2")
        );
        assert_eq!(keys[0].requests_per_minute, NonZeroU32::new(60));
        assert_eq!(keys[0].tokens_per_minute, None);
        assert_eq!(keys[1].tokens_per_minute, NonZeroU32::new(1000));
        assert!(config.auth.required());
        assert!(!format!("{config:?}").contains("k-bob"));
        assert!(!Config::from_toml_with_env(MINIMAL, env)
            .unwrap()
            .auth
            .required());
    }

    #[test]
    fn bad_callers_name_the_key_and_never_the_secret() {
        let caller = |body: &str| {
            let text = format!("[auth]\napi_keys = [\"k-one\"]\n[[auth.keys]]\n{body}\n{MINIMAL}");
            Config::from_toml_with_env(&text, env)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            caller("name = \"a b\"\nkey = \"k\""),
            "auth.keys[0].name: must be 1 to 64 letters, digits, `_`, `-` or `.`"
        );
        assert_eq!(
            caller("name = \"anonymous\"\nkey = \"k\""),
            "auth.keys[0].name: is reserved by the bridge"
        );
        assert_eq!(
            caller("name = \"a\"\nkey = \"\""),
            "auth.keys[0].key: must not be empty"
        );
        assert_eq!(
            caller("name = \"a\"\nkey = \"k\"\nrequests_per_minute = 0"),
            "auth.keys[0].requests_per_minute: must be greater than 0 (leave it out for no limit)"
        );
        let reused = caller("name = \"a\"\nkey = \"k-one\"");
        assert_eq!(
            reused,
            "auth.keys[0].key: this key is already given to a caller"
        );
        assert!(!reused.contains("k-one"));
        let twice = caller("name = \"a\"\nkey = \"k2\"\n[[auth.keys]]\nname = \"a\"\nkey = \"k3\"");
        assert_eq!(twice, "auth.keys[1].name: `a` is named twice");
        assert!(caller("name = \"a\"\nkey = \"k\"\nburst = 3").contains("unknown field `burst`"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn the_body_budget_holds_at_least_one_largest_body() {
        let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
        assert_eq!(config.server.body_budget_bytes, 64 * 1024 * 1024);
        let small = format!("[server]\nbody_budget_bytes = 1000\n{MINIMAL}");
        let err = Config::from_toml_with_env(&small, env)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("server.body_budget_bytes"), "{err}");
    }
}
