//! [`SalesforceLayer`] → [`Salesforce<S>`]: the bridge as a Tower layer over an upstream client.
//!
//! The layer holds what is built once at start-up (routes, token cache, metrics, retry policy);
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
pub(crate) mod request_body;
mod routes;
pub(crate) mod service;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tower::Layer;

pub use body::BridgeBody;
pub use routes::{RoutesFuture, SalesforceRoutes, SalesforceRoutesLayer};
pub use service::{ResponseFuture, Salesforce};

use self::auth::ApiKeys;
pub(crate) use self::error::BridgeError;
use crate::config::Config;
use crate::core::RouteKind;
use crate::metrics::Metrics;
use crate::openai::{Model, ModelList};
use crate::surface::RouteSurface;
use crate::text::sanitize;
use crate::token::{ClientCredentials, TokenCache, TokenSource};
use crate::upstream::{Dispatcher, RetryPolicy, Upstream, UpstreamError};

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

/// What every request shares: built once at start-up.
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
    keys: ApiKeys,
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

/// Makes [`Salesforce`] services over an upstream client. Cheap to clone: everything lives in
/// one shared, immutable state (plus the token cache and metrics, which are shared on purpose).
#[derive(Clone)]
pub struct SalesforceLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SalesforceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceLayer")
            .field("models", &self.shared.configured)
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
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.shared.tokens
    }
}

impl<S> Layer<S> for SalesforceLayer {
    type Service = Salesforce<S>;

    fn layer(&self, inner: S) -> Salesforce<S> {
        Salesforce::new(inner, self.shared.clone())
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

        let source: Box<dyn TokenSource> = match self.token_source {
            Some(source) => source,
            None => {
                let upstream = Upstream::new(sf).map_err(BuildError::Client)?;
                Box::new(ClientCredentials::new(upstream.client().clone(), sf))
            }
        };
        let observed = metrics.clone();
        let tokens = TokenCache::new(source, sf.token_refresh_skew)
            .with_observer(move |event| observed.token_event(event.as_str()));

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

        let dispatcher = Dispatcher::new(
            RetryPolicy::new(&config.retry),
            sf.max_concurrent_requests,
            sf.queue_timeout,
            sf.timeout,
            sf.request_deadline,
        );
        Ok(SalesforceLayer {
            shared: Arc::new(Shared {
                routes,
                configured: names.join(", "),
                models_body,
                anthropic_models_body,
                tokens,
                metrics,
                dispatcher,
                keys: ApiKeys::new(&config.auth.api_keys),
                max_request_bytes: sf.max_request_bytes,
                body_timeout: config.server.body_read_timeout,
                body_budget: request_body::BodyBudget::new(config.server.body_budget_bytes),
                keepalive: sf.stream_keepalive.max(MIN_KEEPALIVE),
            }),
        })
    }
}
