//! The bridge's endpoints: one table that names, for each, its path, method, whether a key is
//! needed, its metric label and its handler.
//!
//! A row needs a caller key unless it says it is open: a new endpoint fails closed.
//!
//! ```
//! use sf_models_bridge::Endpoint;
//!
//! let endpoint = Endpoint::from_path("/v1/chat/completions").unwrap();
//! assert_eq!(endpoint, Endpoint::ChatCompletions);
//! assert_eq!(endpoint.method(), http::Method::POST);
//! assert_eq!(endpoint.as_str(), "chat_completions");
//! assert!(endpoint.needs_key());
//! assert!(!Endpoint::Health.needs_key());
//! assert_eq!(Endpoint::from_path("/elsewhere"), None);
//! ```

use http::Method;

use crate::front::{self, Front};

/// One of the paths the bridge answers. Every other path belongs to the embedding application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/responses` (OpenAI's Responses API).
    Responses,
    /// `POST /v1/messages` (Anthropic's Messages API).
    Messages,
    /// `POST /v1/messages/count_tokens` (Anthropic's token counting).
    CountTokens,
    /// `GET /v1/models`.
    Models,
    /// `GET /health`.
    Health,
    /// `GET /ready`.
    Ready,
    /// `GET /metrics`.
    Metrics,
    /// `GET /metrics/performance`.
    Performance,
}

/// Whether callers must present a key (`[auth]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A key is needed: the default of every row.
    Key,
    /// Anyone may call: probes and scrapes.
    Open,
}

/// What answers an endpoint.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// A client API: parse, route, call the surface, answer in the front's format.
    Front(&'static dyn Front),
    /// The configured models, in OpenAI's list shape or, for a caller that sends
    /// `anthropic-version`, Anthropic's.
    Models,
    /// Anthropic's token counting, which no Salesforce surface offers: a clear error, never a
    /// made-up figure.
    CountTokens,
    /// Liveness.
    Health,
    /// Readiness: whether a token can be had.
    Ready,
    /// Prometheus text.
    Metrics,
    /// The JSON performance summary.
    Performance,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handler::Front(_) => "Front",
            Handler::Models => "Models",
            Handler::CountTokens => "CountTokens",
            Handler::Health => "Health",
            Handler::Ready => "Ready",
            Handler::Metrics => "Metrics",
            Handler::Performance => "Performance",
        })
    }
}

/// One row of the endpoint table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) path: &'static str,
    pub(crate) method: Method,
    pub(crate) access: Access,
    pub(crate) label: &'static str,
    pub(crate) handler: Handler,
}

impl Row {
    /// A `POST` row that needs a key.
    pub(crate) fn post(path: &'static str, label: &'static str, handler: Handler) -> Self {
        Self::new(path, Method::POST, label, handler)
    }

    /// A `GET` row that needs a key.
    pub(crate) fn get(path: &'static str, label: &'static str, handler: Handler) -> Self {
        Self::new(path, Method::GET, label, handler)
    }

    fn new(path: &'static str, method: Method, label: &'static str, handler: Handler) -> Self {
        Self {
            path,
            method,
            access: Access::Key,
            label,
            handler,
        }
    }

    /// The same row, open to callers without a key.
    pub(crate) fn open(mut self) -> Self {
        self.access = Access::Open;
        self
    }
}

impl Endpoint {
    /// Every endpoint, in the table's order.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Messages,
        Endpoint::CountTokens,
        Endpoint::Models,
        Endpoint::Health,
        Endpoint::Ready,
        Endpoint::Metrics,
        Endpoint::Performance,
    ];

    /// The endpoint table.
    pub(crate) fn row(self) -> Row {
        match self {
            Endpoint::ChatCompletions => Row::post(
                "/v1/chat/completions",
                "chat_completions",
                Handler::Front(&front::chat::ChatCompletions),
            ),
            Endpoint::Completions => Row::post(
                "/v1/completions",
                "completions",
                Handler::Front(&front::completions::Completions),
            ),
            Endpoint::Embeddings => Row::post(
                "/v1/embeddings",
                "embeddings",
                Handler::Front(&front::embeddings::EmbeddingsFront),
            ),
            Endpoint::Responses => Row::post(
                "/v1/responses",
                "responses",
                Handler::Front(&front::responses::ResponsesFront),
            ),
            Endpoint::Messages => Row::post(
                "/v1/messages",
                "messages",
                Handler::Front(&front::messages::MessagesFront),
            ),
            Endpoint::CountTokens => Row::post(
                "/v1/messages/count_tokens",
                "count_tokens",
                Handler::CountTokens,
            ),
            Endpoint::Models => Row::get("/v1/models", "models", Handler::Models),
            Endpoint::Health => Row::get("/health", "health", Handler::Health).open(),
            Endpoint::Ready => Row::get("/ready", "ready", Handler::Ready).open(),
            Endpoint::Metrics => Row::get("/metrics", "metrics", Handler::Metrics).open(),
            Endpoint::Performance => {
                Row::get("/metrics/performance", "performance", Handler::Performance).open()
            }
        }
    }

    /// The endpoint served at `path`, whatever the method, or `None` for a path that is not the
    /// bridge's. A trailing slash is not the same path, as in axum.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|endpoint| endpoint.row().path == path)
    }

    /// The path this endpoint is served at.
    pub fn path(self) -> &'static str {
        self.row().path
    }

    /// The one method this endpoint answers; others get 405.
    pub fn method(self) -> Method {
        self.row().method
    }

    /// A short fixed name, used as a metric label value and in logs.
    pub fn as_str(self) -> &'static str {
        self.row().label
    }

    /// Whether callers must present a key when `[auth]` configures keys.
    pub fn needs_key(self) -> bool {
        self.row().access == Access::Key
    }

    /// Whether this endpoint calls the Models API (and so needs a token and an upstream slot).
    pub fn calls_upstream(self) -> bool {
        matches!(self.row().handler, Handler::Front(_))
    }

    /// This endpoint's position in [`Endpoint::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// The endpoints a mount answers; the others' paths are left to the application behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimed([bool; Endpoint::ALL.len()]);

impl Claimed {
    /// Every endpoint.
    pub(crate) const ALL: Claimed = Claimed([true; Endpoint::ALL.len()]);

    /// This set less `endpoints`.
    pub(crate) fn except(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        for endpoint in endpoints {
            if let Some(claimed) = self.0.get_mut(endpoint.index()) {
                *claimed = false;
            }
        }
        self
    }

    /// The claimed endpoint served at `path`, if any.
    pub(crate) fn at(self, path: &str) -> Option<Endpoint> {
        Endpoint::from_path(path).filter(|endpoint| self.0.get(endpoint.index()) == Some(&true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_endpoint_at_its_index() {
        for (position, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint.index(), position, "{endpoint:?}");
        }
    }

    #[test]
    fn rows_need_a_key_unless_they_say_open() {
        let row = Row::post("/v1/new", "new", Handler::Health);
        assert_eq!(row.access, Access::Key);
        assert_eq!(Row::get("/x", "x", Handler::Health).access, Access::Key);
        assert_eq!(row.open().access, Access::Open);
        // Only probes and scrapes are open.
        let open: Vec<Endpoint> = Endpoint::ALL
            .into_iter()
            .filter(|endpoint| !endpoint.needs_key())
            .collect();
        assert_eq!(
            open,
            [
                Endpoint::Health,
                Endpoint::Ready,
                Endpoint::Metrics,
                Endpoint::Performance
            ]
        );
    }

    #[test]
    fn paths_and_labels_are_unique() {
        for (i, a) in Endpoint::ALL.into_iter().enumerate() {
            for b in Endpoint::ALL.into_iter().skip(i + 1) {
                assert_ne!(a.path(), b.path());
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }

    #[test]
    fn claimed_sets_leave_out_what_they_except() {
        for endpoint in Endpoint::ALL {
            assert_eq!(Claimed::ALL.at(endpoint.path()), Some(endpoint));
        }
        let claimed = Claimed::ALL.except([Endpoint::Health, Endpoint::Metrics]);
        assert_eq!(claimed.at("/health"), None);
        assert_eq!(claimed.at("/metrics"), None);
        assert_eq!(
            claimed.at("/metrics/performance"),
            Some(Endpoint::Performance)
        );
        assert_eq!(
            claimed.at("/v1/chat/completions"),
            Some(Endpoint::ChatCompletions)
        );
        assert_eq!(claimed.at("/elsewhere"), None);
        assert_eq!(Claimed::ALL.except(Endpoint::ALL).at("/v1/models"), None);
    }

    #[test]
    fn paths_round_trip() {
        for endpoint in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(endpoint.path()), Some(endpoint));
        }
    }

    #[test]
    fn other_paths_are_not_ours() {
        for path in [
            "/",
            "/v1/chat/completions/",
            "/v1/embeddings/",
            "/healthz",
            "/metrics/x",
        ] {
            assert_eq!(Endpoint::from_path(path), None, "{path}");
        }
    }
}
