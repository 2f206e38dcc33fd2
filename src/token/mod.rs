//! Bearer tokens for the Models API: fetched with OAuth client credentials, cached until shortly
//! before the JWT's `exp`, refreshed by one fetch however many requests wait, and dropped after a 401.
//!
//! [`TokenCache`] is what the layer holds; [`ClientCredentials`] is the production
//! [`TokenSource`]. Any other source (a test fake, another OAuth flow) plugs in the same way:
//!
//! ```
//! use std::{future::Future, pin::Pin, time::Duration};
//! use sf_models_bridge::token::{
//!     AccessToken, FetchedToken, Readiness, TokenCache, TokenError, TokenEvent, TokenSource,
//! };
//!
//! struct Fixed;
//!
//! impl TokenSource for Fixed {
//!     fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
//!         Box::pin(async {
//!             Ok(FetchedToken { token: AccessToken::new("t0k3n"), lifetime: Duration::from_secs(1800) })
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), TokenError> {
//! let cache = TokenCache::new(Fixed, Duration::from_secs(60))
//!     .with_observer(|event: TokenEvent| println!("token cache: {}", event.as_str()));
//! assert!(matches!(cache.readiness(), Readiness::NotReady { .. }));
//!
//! let token = cache.get().await?; // miss: fetches
//! assert_eq!(token.expose(), "t0k3n");
//! assert_eq!(format!("{token:?}"), "AccessToken(***)");
//! assert_eq!(cache.get().await?, token); // hit: no fetch
//! assert_eq!(cache.readiness(), Readiness::Ready);
//!
//! cache.invalidate(&token); // the Models API answered 401 with it
//! assert_eq!(cache.get().await?.expose(), "t0k3n"); // fetched again
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

mod cache;
mod client_credentials;
mod jwt;

pub use cache::{Readiness, TokenCache, TokenEvent};
pub use client_credentials::ClientCredentials;
pub use jwt::token_lifetime;

/// A bearer token. Cheap to clone; `Debug` prints `AccessToken(***)` and there is no `Display`,
/// so it cannot end up in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: Arc<str>,
    /// `Bearer {token}`, built once per token rather than once per request; `None` when the
    /// token holds bytes a header cannot carry.
    bearer: Option<http::HeaderValue>,
}

impl AccessToken {
    /// Wraps a token value.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        let token = token.into();
        let bearer = http::HeaderValue::try_from(format!("Bearer {token}"))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Self { token, bearer }
    }

    /// The token itself. Call this only where it goes on the wire (`Authorization: Bearer …`).
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// The `Authorization` value, marked sensitive; `None` if the token cannot be a header.
    pub(crate) fn bearer_header(&self) -> Option<&http::HeaderValue> {
        self.bearer.as_ref()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

/// What a [`TokenSource`] returns: the token and how long it lives from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedToken {
    /// The bearer token.
    pub token: AccessToken,
    /// How long the token stays valid, counted from the moment the source returns it.
    pub lifetime: Duration,
}

/// Where a [`TokenCache`] gets its tokens from.
///
/// The cache calls `fetch` from a spawned Tokio task, one call at a time, and only when it has no
/// fresh token and is not cooling down after a failure; a source needs no caching or locking of its
/// own.
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>>;
}

/// Why no token could be had. `Display` is written to be the message of an OpenAI-format 503: it
/// never contains the token, the client secret or the raw token response.
///
/// `Clone` because every request waiting on one fetch gets a copy of its outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint answered 4xx: bad credentials, a disabled flow, or the wrong host
    /// (Salesforce answers `invalid_grant` on any host other than the org's My Domain).
    #[error("Salesforce token endpoint rejected the client credentials ({0})")]
    Rejected(OAuthFailure),
    /// The token endpoint answered with a status that is neither success nor 4xx (usually 5xx).
    #[error("Salesforce token endpoint failed ({0})")]
    EndpointFailed(OAuthFailure),
    /// The token endpoint answered with a redirect (3xx). It is not followed, since the request
    /// carries the client secret; `token_url` must name the final address.
    #[error("Salesforce token endpoint answered {} with a redirect, which is not followed: set salesforce.token_url to the address it redirects to (the org's My Domain)", .0.as_u16())]
    Redirected(http::StatusCode),
    /// A 2xx whose JSON has no non-empty `access_token` string that can go in a header.
    #[error("Salesforce token response had no access_token")]
    NoAccessToken,
    /// A 2xx whose body could not be read as a token response.
    #[error("Salesforce token response was unreadable ({0})")]
    InvalidResponse(&'static str),
    /// The token endpoint could not be connected to (DNS, TCP or TLS).
    #[error("Salesforce token endpoint unreachable")]
    Unreachable(#[source] Arc<reqwest::Error>),
    /// The token request did not complete within its timeout.
    #[error("Salesforce token endpoint timed out")]
    Timeout(#[source] Arc<reqwest::Error>),
    /// Any other failure of the token request (a malformed `token_url`, a broken connection).
    #[error("Salesforce token request failed")]
    Request(#[source] Arc<reqwest::Error>),
    /// The fetch stopped before producing a result: the source panicked or its runtime shut down.
    #[error("Salesforce token fetch was aborted")]
    Aborted,
}

impl TokenError {
    /// Classifies a reqwest error by type, first dropping the URL it may carry.
    fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout(Arc::new(err))
        } else if err.is_connect() {
            Self::Unreachable(Arc::new(err))
        } else {
            Self::Request(Arc::new(err))
        }
    }
}

/// A non-2xx answer from the token endpoint: its status and the OAuth error fields, if the body
/// had them. Salesforce fills these with generic texts (`invalid_client`, "invalid client
/// credentials") that are safe to show; the description is cut to 200 characters.
///
/// `Display` reads `400 invalid_client: invalid client credentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthFailure {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The OAuth `error` code, such as `invalid_client` or `invalid_grant`.
    pub error: Option<String>,
    /// The OAuth `error_description`, at most 200 characters.
    pub error_description: Option<String>,
}

impl fmt::Display for OAuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status.as_u16())?;
        if let Some(error) = &self.error {
            write!(f, " {error}")?;
        }
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl TokenSource for Box<dyn TokenSource> {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<FetchedToken, TokenError>> + Send + '_>> {
        (**self).fetch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_built_once_and_sensitive() {
        let token = AccessToken::new("eyJhbGciOi.secret.sig");
        let bearer = token.bearer_header().unwrap();
        assert_eq!(bearer, "Bearer eyJhbGciOi.secret.sig");
        assert!(bearer.is_sensitive());
        assert_eq!(AccessToken::new("bad\ntoken").bearer_header(), None);
    }

    #[test]
    fn access_token_debug_is_redacted() {
        let token = AccessToken::new("eyJhbGciOi.secret.sig");
        assert_eq!(format!("{token:?}"), "AccessToken(***)");
        let fetched = FetchedToken {
            token: token.clone(),
            lifetime: Duration::from_secs(1),
        };
        assert!(!format!("{fetched:?}").contains("secret"));
        assert_eq!(token.expose(), "eyJhbGciOi.secret.sig");
        assert_eq!(
            token,
            AccessToken::new(String::from("eyJhbGciOi.secret.sig"))
        );
        assert_ne!(token, AccessToken::new("other"));
    }

    #[test]
    fn error_messages_read_as_a_503_message() {
        let rejected = TokenError::Rejected(OAuthFailure {
            status: http::StatusCode::BAD_REQUEST,
            error: Some("invalid_client".into()),
            error_description: Some("invalid client credentials".into()),
        });
        assert_eq!(
            rejected.to_string(),
            "Salesforce token endpoint rejected the client credentials \
             (400 invalid_client: invalid client credentials)"
        );
        let bare = TokenError::EndpointFailed(OAuthFailure {
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            error: None,
            error_description: None,
        });
        assert_eq!(bare.to_string(), "Salesforce token endpoint failed (503)");
        assert_eq!(
            TokenError::NoAccessToken.to_string(),
            "Salesforce token response had no access_token"
        );
    }
}
