//! The bridge's own endpoints: which paths it answers, and their fixed metric label names.

use http::Method;

/// One of the paths the bridge answers. Every other path belongs to the embedding application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions`.
    Completions,
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

impl Endpoint {
    /// Every endpoint, in a fixed order.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Models,
        Endpoint::Health,
        Endpoint::Ready,
        Endpoint::Metrics,
        Endpoint::Performance,
    ];

    /// The endpoint served at `path`, whatever the method, or `None` for a path that is not the
    /// bridge's. A trailing slash is not the same path, as in axum.
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/v1/chat/completions" => Endpoint::ChatCompletions,
            "/v1/completions" => Endpoint::Completions,
            "/v1/models" => Endpoint::Models,
            "/health" => Endpoint::Health,
            "/ready" => Endpoint::Ready,
            "/metrics" => Endpoint::Metrics,
            "/metrics/performance" => Endpoint::Performance,
            _ => return None,
        })
    }

    /// The path this endpoint is served at.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Models => "/v1/models",
            Endpoint::Health => "/health",
            Endpoint::Ready => "/ready",
            Endpoint::Metrics => "/metrics",
            Endpoint::Performance => "/metrics/performance",
        }
    }

    /// The one method this endpoint answers; others get 405.
    pub fn method(self) -> Method {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions => Method::POST,
            _ => Method::GET,
        }
    }

    /// A short fixed name, used as a metric label value and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Models => "models",
            Endpoint::Health => "health",
            Endpoint::Ready => "ready",
            Endpoint::Metrics => "metrics",
            Endpoint::Performance => "performance",
        }
    }

    /// Whether this endpoint calls the Models API (and so needs a token and an upstream slot).
    pub fn calls_upstream(self) -> bool {
        matches!(self, Endpoint::ChatCompletions | Endpoint::Completions)
    }
}

/// The endpoints a mount answers; the others' paths are left to the application behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimed(u8);

impl Claimed {
    /// Every endpoint.
    pub(crate) const ALL: Claimed = Claimed((1 << Endpoint::ALL.len()) - 1);

    /// This set less `endpoints`.
    pub(crate) fn except(self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let removed = endpoints
            .into_iter()
            .fold(0, |bits, endpoint| bits | bit(endpoint));
        Claimed(self.0 & !removed)
    }

    /// The claimed endpoint served at `path`, if any.
    pub(crate) fn at(self, path: &str) -> Option<Endpoint> {
        Endpoint::from_path(path).filter(|&endpoint| self.0 & bit(endpoint) != 0)
    }
}

fn bit(endpoint: Endpoint) -> u8 {
    1 << endpoint as u8
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "/v1/embeddings",
            "/healthz",
            "/metrics/x",
        ] {
            assert_eq!(Endpoint::from_path(path), None, "{path}");
        }
    }
}
