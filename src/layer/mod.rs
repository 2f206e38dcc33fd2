//! [`SalesforceLayer`] → [`Salesforce<S>`]: the bridge as a Tower layer over an upstream client.
//!
//! The layer holds one snapshot of the conf (routes, callers, retry policy; with the token cache
//! and metrics carried across), which [`SalesforceLayer::reload`] replaces while serving;
//! the service it makes answers every row of the [endpoint table](crate::endpoint): the client
//! APIs (`POST /v1/chat/completions`, `POST /v1/completions`), `GET /v1/models`, `GET /health`,
//! `GET /ready`, `GET /metrics` and `GET /metrics/performance`.
//! [`SalesforceRoutesLayer`] mounts it in front of an existing application: the bridge's paths
//! are answered, every other request reaches the application unchanged.
//!
//! ```no_run
//! use axum::Router;
//! use sf_models_bridge::{server, Config, SalesforceLayer, Upstream};
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_path("conf/gateway.toml")?; // parsed, interpolated, validated
//! let bridge = ServiceBuilder::new()
//!     .layer(SalesforceLayer::new(&config)?)
//!     .service(Upstream::new(&config.salesforce)?);
//! let app: Router = Router::new()
//!     .route_service("/v1/chat/completions", bridge.clone())
//!     .route_service("/v1/completions", bridge.clone())
//!     .route_service("/v1/models", bridge);
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! // Not `axum::serve`: it installs no timer, so a client trickling its headers is never cut off.
//! server::serve(listener, app, &config.server, server::shutdown_signal()).await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod body;
mod error;
mod finish;
mod generate;
mod limits;
mod reload;
pub(crate) mod request_body;
mod routes;
pub(crate) mod service;
mod stream;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tower::Layer;

pub use body::BridgeBody;
pub use reload::{ReloadError, ReloadOutcome};
pub use routes::{RoutesFuture, SalesforceRoutes, SalesforceRoutesLayer};
pub use service::{ResponseFuture, Salesforce};
pub use watch::{ConfWatcher, WatchError};

use self::auth::Callers;
pub(crate) use self::error::BridgeError;
use self::reload::Live;
use crate::config::Config;
use crate::core::RouteKind;
use crate::metrics::Metrics;
use crate::openai::{Model, ModelList};
use crate::surface::RouteSurface;
use crate::text::sanitize;
use crate::token::{ClientCredentials, TokenCache, TokenSource};
use crate::upstream::{Dispatcher, RetryPolicy, UpstreamError};

/// The bridge could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The metrics could not be registered, for example because names collide in a shared
    /// registry.
    #[error("cannot register metrics")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP client for the token endpoint could not be built.
    #[error("cannot build the token endpoint client")]
    Client(#[source] UpstreamError),
    /// A route's upstream URL is invalid.
    #[error("routes: `{model}` gives an invalid upstream URL")]
    Url {
        /// The route's OpenAI model name.
        model: String,
    },
}

/// A configured route, with its upstream URLs built once.
#[derive(Debug)]
pub(crate) struct RouteTarget {
    /// The OpenAI model name, as callers send it.
    pub(crate) model: Arc<str>,
    /// The Models API name.
    pub(crate) salesforce_model: Arc<str>,
    /// Which tasks it serves.
    pub(crate) kind: RouteKind,
    /// How Salesforce serves it.
    pub(crate) surface: RouteSurface,
}

/// The most characters of an unknown model name repeated in the 404 and the log.
const MAX_MODEL_CHARS: usize = 100;

/// The shortest keep-alive period, the conf file's own minimum: a `SalesforceConfig` built in
/// code may hold less, even zero, on which Tokio's interval panics.
const MIN_KEEPALIVE: Duration = Duration::from_secs(1);

/// What every request shares: one snapshot of the conf, kept by each request to its end (see
/// `reload`). The token cache, metrics, body budget and upstream slots are carried over from one
/// snapshot to the next.
pub(crate) struct Shared {
    routes: HashMap<Arc<str>, Arc<RouteTarget>>,
    /// The configured model names, for the 404 that lists them.
    configured: String,
    models_body: Bytes,
    /// The same list in Anthropic's shape.
    anthropic_models_body: Bytes,
    pub(crate) tokens: TokenCache,
    pub(crate) metrics: Metrics,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) callers: Callers,
    pub(crate) max_request_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) body_budget: request_body::BodyBudget,
    pub(crate) keepalive: Duration,
}

impl Shared {
    pub(crate) fn route(&self, model: &str) -> Result<Arc<RouteTarget>, BridgeError> {
        self.routes
            .get(model)
            .cloned()
            .ok_or_else(|| BridgeError::ModelNotFound {
                model: sanitize(model, MAX_MODEL_CHARS),
                configured: self.configured.clone(),
            })
    }
}

/// What a snapshot carries over from the previous one (or gets new at start-up).
pub(crate) struct Parts<'a> {
    metrics: Metrics,
    tokens: TokenCache,
    dispatcher: Dispatcher,
    body_budget: request_body::BodyBudget,
    /// The callers whose limiters are kept when their limits did not change.
    previous_callers: Option<&'a Callers>,
}

impl Shared {
    /// The snapshot for `config`: routes with their URLs, model lists, callers, and the
    /// per-request settings; new model and caller names get their metric series.
    fn build(config: &Config, parts: Parts<'_>) -> Result<Self, BuildError> {
        let sf = &config.salesforce;
        let mut routes = HashMap::with_capacity(config.routes.len());
        for route in &config.routes {
            let surface = RouteSurface::new(route, sf).ok_or_else(|| BuildError::Url {
                model: route.model.clone(),
            })?;
            let target = RouteTarget {
                model: route.model.as_str().into(),
                salesforce_model: route.salesforce_model.as_str().into(),
                kind: route.kind,
                surface,
            };
            routes.insert(target.model.clone(), Arc::new(target));
        }
        let names: Vec<&str> = config.routes.iter().map(|r| r.model.as_str()).collect();
        let list = ModelList {
            object: "list",
            data: names
                .iter()
                .map(|id| Model {
                    id,
                    object: "model",
                    created: 0,
                    owned_by: "salesforce",
                })
                .collect(),
        };
        let models_body =
            serde_json::to_vec(&list)
                .map(Bytes::from)
                .map_err(|_| BuildError::Url {
                    model: names.join(", "),
                })?;
        let anthropic_models_body = serde_json::to_vec(&crate::anthropic::ModelList::new(&names))
            .map(Bytes::from)
            .map_err(|_| BuildError::Url {
                model: names.join(", "),
            })?;

        let callers = Callers::new(&config.auth, parts.previous_callers);
        parts
            .metrics
            .add_labels(names.iter().copied(), callers.names())?;
        Ok(Shared {
            routes,
            configured: names.join(", "),
            models_body,
            anthropic_models_body,
            tokens: parts.tokens,
            metrics: parts.metrics,
            dispatcher: parts.dispatcher,
            callers,
            max_request_bytes: sf.max_request_bytes,
            body_timeout: config.server.body_read_timeout,
            body_budget: parts.body_budget,
            keepalive: sf.stream_keepalive.max(MIN_KEEPALIVE),
        })
    }
}

/// Makes [`Salesforce`] services over an upstream client. Cheap to clone: every clone, and every
/// service it made, shares one state, which [`reload`](Self::reload) replaces as a whole.
#[derive(Clone)]
pub struct SalesforceLayer {
    live: Arc<Live>,
}

impl std::fmt::Debug for SalesforceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceLayer")
            .field("models", &self.live.snapshot().configured)
            .finish_non_exhaustive()
    }
}

impl SalesforceLayer {
    /// The layer for `config`, with its own metrics registry and the client-credentials token
    /// source of `[salesforce]`.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Self::builder(config).build()
    }

    /// A builder, to share a Prometheus registry or to supply a token source.
    pub fn builder(config: &Config) -> SalesforceLayerBuilder<'_> {
        SalesforceLayerBuilder {
            config,
            registry: None,
            token_source: None,
        }
    }

    /// The bridge's metrics.
    pub fn metrics(&self) -> Metrics {
        self.live.snapshot().metrics.clone()
    }

    /// The token cache in force (a reload that changes the token settings replaces it).
    pub fn tokens(&self) -> TokenCache {
        self.live.snapshot().tokens.clone()
    }

    /// Applies `config` to this layer and every service it made, while they serve: routes,
    /// caller keys and limits, retry settings and per-request limits change for the requests
    /// that arrive from now on; requests in flight finish with the conf they started with.
    /// The token cache is kept unless the token settings changed. Settings read only at
    /// start-up are listed in the outcome (and logged) as needing a restart.
    ///
    /// A conf the bridge cannot be built from is refused, and the previous one keeps serving.
    /// Each call is counted in `sfbridge_config_reloads_total{result}`.
    pub fn reload(&self, config: Config) -> Result<ReloadOutcome, ReloadError> {
        self.live.reload(config)
    }

    /// Reads, validates and applies the conf file at `path`, as [`reload`](Self::reload) does;
    /// a file that does not read, parse or validate is refused with a log line naming the key.
    pub fn reload_from_path(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<ReloadOutcome, ReloadError> {
        self.live.reload_from_path(path.as_ref())
    }

    /// Reloads the conf file at `path` on SIGHUP and whenever it changes on disk (several
    /// writes in a row, as editors make, count as one), until the returned watcher is dropped.
    /// Must be called within a Tokio runtime.
    pub fn watch(&self, path: impl Into<std::path::PathBuf>) -> Result<ConfWatcher, WatchError> {
        ConfWatcher::start(self.clone(), path.into())
    }
}

impl<S> Layer<S> for SalesforceLayer {
    type Service = Salesforce<S>;

    fn layer(&self, inner: S) -> Salesforce<S> {
        Salesforce::new(inner, self.live.clone())
    }
}

/// Builds a [`SalesforceLayer`]; see [`SalesforceLayer::builder`].
pub struct SalesforceLayerBuilder<'c> {
    config: &'c Config,
    registry: Option<prometheus::Registry>,
    token_source: Option<Box<dyn TokenSource>>,
}

impl std::fmt::Debug for SalesforceLayerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceLayerBuilder")
            .finish_non_exhaustive()
    }
}

impl SalesforceLayerBuilder<'_> {
    /// Registers the bridge's metrics in `registry`, so an application that already exposes
    /// Prometheus metrics serves ours in the same scrape.
    pub fn registry(mut self, registry: prometheus::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Takes tokens from `source` instead of the client-credentials flow of `[salesforce]`.
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.token_source = Some(Box::new(source));
        self
    }

    /// Builds the layer.
    pub fn build(self) -> Result<SalesforceLayer, BuildError> {
        let config = self.config;
        let sf = &config.salesforce;
        let models = config.routes.iter().map(|route| route.model.clone());
        let metrics = match self.registry {
            Some(registry) => Metrics::with_registry(registry, models)?,
            None => Metrics::new(models),
        };

        let (source, token_client): (Box<dyn TokenSource>, _) = match self.token_source {
            Some(source) => (source, None),
            None => {
                let client = ClientCredentials::http_client(sf)
                    .map_err(|error| BuildError::Client(UpstreamError::Build(Box::new(error))))?;
                (
                    Box::new(ClientCredentials::new(client.clone(), sf)),
                    Some(client),
                )
            }
        };
        let observed = metrics.clone();
        let tokens = TokenCache::new(source, sf.token_refresh_skew)
            .with_observer(move |event| observed.token_event(event.as_str()));
        let parts = Parts {
            metrics,
            tokens,
            dispatcher: Dispatcher::new(
                RetryPolicy::new(&config.retry),
                sf.max_concurrent_requests,
                sf.queue_timeout,
                sf.timeout,
                sf.request_deadline,
            ),
            body_budget: request_body::BodyBudget::new(config.server.body_budget_bytes),
            previous_callers: None,
        };
        let shared = Shared::build(config, parts)?;
        Ok(SalesforceLayer {
            live: Arc::new(Live::new(shared, config, token_client)),
        })
    }
}
