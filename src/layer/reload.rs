//! Reloading the conf while serving: [`SalesforceLayer::reload`](super::SalesforceLayer::reload).
//!
//! Routes, caller keys and limits, retry settings and the per-request limits are one immutable
//! snapshot ([`Shared`]) behind an `ArcSwap`. Each request loads the snapshot once, when it
//! arrives, and keeps it to its end (a stream included): a reload swaps in a new one for the
//! requests that come after, and nothing in flight is dropped or changed under its feet.
//!
//! The token cache, the metrics, the body budget and the limit on concurrent upstream calls are
//! carried from one snapshot to the next. The token cache is replaced only when the token
//! settings change.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::{BuildError, Parts, Shared};
use crate::config::{Config, ConfigError, SalesforceConfig};
use crate::token::{ClientCredentials, TokenCache};

/// A conf that was refused: the previous one keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read, parsed or validated; the message names the key at fault.
    #[error("conf refused: {0}")]
    Config(#[from] ConfigError),
    /// The conf is valid but the bridge could not be built from it.
    #[error("conf refused: {0}")]
    Build(#[from] BuildError),
}

/// What a reload applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOutcome {
    /// The routes now served.
    pub routes: usize,
    /// Whether the token cache (and its token) was kept: the token settings did not change.
    pub token_cache_kept: bool,
    /// Settings that changed but take effect only after a restart (such as `server.listen`):
    /// they are not applied, and are logged as such.
    pub needs_restart: Vec<&'static str>,
}

/// The snapshot in force and what a reload needs to build the next one.
pub(crate) struct Live {
    current: ArcSwap<Shared>,
    /// The conf in force. Held for the whole of a reload, so reloads happen one at a time.
    applied: Mutex<Config>,
    /// The client of the token endpoint, to fetch with new credentials; `None` when the
    /// embedder supplied the token source, which is kept whatever the conf says.
    token_client: Option<reqwest::Client>,
}

impl Live {
    pub(crate) fn new(
        shared: Shared,
        config: &Config,
        token_client: Option<reqwest::Client>,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(shared),
            applied: Mutex::new(config.clone()),
            token_client,
        }
    }

    /// The snapshot a request keeps to its end: one atomic load and reference count.
    pub(crate) fn snapshot(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    pub(crate) fn reload_from_path(&self, path: &Path) -> Result<ReloadOutcome, ReloadError> {
        match Config::from_path(path) {
            Ok(config) => self.reload(config),
            Err(error) => Err(self.refused(error.into())),
        }
    }

    pub(crate) fn reload(&self, config: Config) -> Result<ReloadOutcome, ReloadError> {
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.snapshot();
        // The budget in force stays until a restart: a body limit above it could never be read.
        if config.salesforce.max_request_bytes > current.body_budget.total() {
            return Err(self.refused(ReloadError::Config(ConfigError::Invalid {
                key: "salesforce.max_request_bytes".to_owned(),
                reason: format!(
                    "must not exceed the server.body_budget_bytes in force ({}); a new budget needs a restart",
                    current.body_budget.total()
                ),
            })));
        }
        let keep_tokens = self.token_client.is_none()
            || same_token_settings(&applied.salesforce, &config.salesforce);
        let tokens = match (&self.token_client, keep_tokens) {
            (Some(client), false) => {
                let source = ClientCredentials::new(client.clone(), &config.salesforce);
                let observed = current.metrics.clone();
                TokenCache::new(source, config.salesforce.token_refresh_skew)
                    .with_observer(move |event| observed.token_event(event.as_str()))
            }
            _ => current.tokens.clone(),
        };
        let sf = &config.salesforce;
        let parts = Parts {
            metrics: current.metrics.clone(),
            tokens,
            dispatcher: current.dispatcher.reconfigured(
                &config.retry,
                sf.queue_timeout,
                sf.timeout,
                sf.request_deadline,
            ),
            body_budget: current.body_budget.clone(),
            previous_callers: Some(&current.callers),
        };
        let shared = match Shared::build(&config, parts) {
            Ok(shared) => shared,
            Err(error) => return Err(self.refused(error.into())),
        };
        let needs_restart = needs_restart(&applied, &config);
        self.current.store(Arc::new(shared));
        current.metrics.config_reload("ok");
        let outcome = ReloadOutcome {
            routes: config.routes.len(),
            token_cache_kept: keep_tokens,
            needs_restart,
        };
        tracing::info!(
            routes = outcome.routes,
            callers = config.auth.keys.len(),
            token_cache_kept = outcome.token_cache_kept,
            "conf reloaded"
        );
        if !outcome.needs_restart.is_empty() {
            tracing::warn!(
                settings = outcome.needs_restart.join(", "),
                "conf reloaded, but these changed settings need a restart and still have their old values"
            );
        }
        *applied = config;
        Ok(outcome)
    }

    /// Counts and logs a refused conf; the error names the key at fault. A TOML syntax error is
    /// logged without the excerpt of the file the parser quotes, which may hold a literal key.
    fn refused(&self, error: ReloadError) -> ReloadError {
        self.snapshot().metrics.config_reload("refused");
        let why = match &error {
            ReloadError::Config(ConfigError::Parse(parse)) => {
                format!("invalid conf: {}", parse.message().trim_end())
            }
            other => other.to_string(),
        };
        tracing::error!(error = %why, "conf reload refused: the previous conf keeps serving");
        error
    }
}

/// Whether the token cache may be kept: same endpoint, same credentials, same lifetimes.
fn same_token_settings(old: &SalesforceConfig, new: &SalesforceConfig) -> bool {
    old.token_url == new.token_url
        && old.client_id == new.client_id
        && old.client_secret == new.client_secret
        && old.token_refresh_skew == new.token_refresh_skew
        && old.token_ttl == new.token_ttl
}

/// The settings that differ between `old` and `new` but are read only at start-up: by the
/// listener and server loop, the HTTP clients, the Pingora gateway, or shared limits.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let (os, ns) = (&old.server, &new.server);
    let (of, nf) = (&old.salesforce, &new.salesforce);
    let (op, np) = (&old.pingora, &new.pingora);
    [
        ("server.listen", os.listen != ns.listen),
        (
            "server.header_read_timeout_secs",
            os.header_read_timeout != ns.header_read_timeout,
        ),
        (
            "server.shutdown_grace_secs",
            os.shutdown_grace != ns.shutdown_grace,
        ),
        (
            "server.write_timeout_secs",
            os.write_timeout != ns.write_timeout,
        ),
        (
            "server.body_budget_bytes",
            os.body_budget_bytes != ns.body_budget_bytes,
        ),
        (
            "salesforce.max_concurrent_requests",
            of.max_concurrent_requests != nf.max_concurrent_requests,
        ),
        (
            "salesforce.connect_timeout_secs",
            of.connect_timeout != nf.connect_timeout,
        ),
        // The HTTP client's own limit on a request; the bridge's per-attempt limit follows
        // the new value at once.
        ("salesforce.timeout_secs", of.timeout != nf.timeout),
        ("pingora.upstream", op.upstream != np.upstream),
        ("pingora.upstream_tls", op.upstream_tls != np.upstream_tls),
        ("pingora.upstream_sni", op.upstream_sni != np.upstream_sni),
        ("pingora.server_conf", op.server_conf != np.server_conf),
        (
            "pingora.strip_caller_credentials",
            op.strip_caller_credentials != np.strip_caller_credentials,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
        [salesforce]
        api_base = "http://127.0.0.1:1/einstein/platform/v1"
        token_url = "http://127.0.0.1:1/services/oauth2/token"
        client_id = "id"
        client_secret = "secret"

        [[routes]]
        model = "gpt-4o-mini"
        salesforce_model = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
    "#;

    fn conf(extra: &str) -> Config {
        Config::from_toml_with_env(&format!("{extra}\n{CONF}"), |_| None).unwrap()
    }

    #[test]
    fn settings_read_at_start_up_are_reported() {
        let old = conf("");
        assert!(needs_restart(&old, &old).is_empty());
        let new = conf("[server]\nlisten = \"127.0.0.1:9999\"\n[pingora]\nupstream = \"x:1\"");
        assert_eq!(
            needs_restart(&old, &new),
            ["server.listen", "pingora.upstream"]
        );
    }

    #[test]
    fn the_token_cache_follows_the_credentials() {
        let old = conf("");
        assert!(same_token_settings(&old.salesforce, &old.salesforce));
        let rotated =
            Config::from_toml_with_env(&CONF.replace("\"secret\"", "\"rotated\""), |_| None)
                .unwrap();
        assert!(!same_token_settings(&old.salesforce, &rotated.salesforce));
    }
}
