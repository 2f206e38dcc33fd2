//! Every failure of a bridge request, and the one place it becomes a neutral [`Failure`] that the
//! caller's front words in its own envelope.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

use super::limits::{LimitKind, OverLimit};
use crate::core::{Failure, FailureClass, RouteKind, TranslateError};
use crate::endpoint::Endpoint;
use crate::openai::depth::TooDeep;
use crate::surface::einstein::ExtractError;
use crate::text::sanitize;
use crate::upstream::{ExchangeError, UpstreamError};

/// Why a request to the bridge failed. Only [`BridgeError::failure`] turns it into what the
/// caller sees; messages never hold a token, a key or an unbounded upstream body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BridgeError {
    #[error("a valid API key is required: send it as `Authorization: Bearer <key>`, `api-key` or `x-api-key`")]
    Unauthorized,
    #[error("no such path: {0}")]
    NotFound(String),
    #[error("{} takes {}", .0.path(), .0.method())]
    MethodNotAllowed(Endpoint),
    #[error("the request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    #[error("the client stopped sending the request body")]
    BodyStalled,
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// Request bodies being read already hold the whole budget (`server.body_budget_bytes`).
    #[error(
        "too many request bodies are being read at once (more than {0} bytes); try again shortly"
    )]
    BodyBudget(usize),
    /// serde_json's message, bounded and made one line by [`BridgeError::invalid_json`].
    #[error("invalid request body: {0}")]
    InvalidJson(String),
    #[error(
        "invalid request body: arrays and objects nested deeper than {} levels at line {} column {}",
        crate::openai::depth::MAX_DEPTH, .0.line, .0.column
    )]
    TooDeep(TooDeep),
    #[error("{0}")]
    Translate(#[from] TranslateError),
    /// What the route's surface cannot do, named with the route and the surface.
    #[error("route `{route}` (surface `{surface}`): {error}")]
    Unsupported {
        route: Arc<str>,
        surface: &'static str,
        error: TranslateError,
    },
    /// A route of one kind asked for the other's work.
    #[error(
        "route `{route}` is a model of kind `{kind}`: this endpoint needs a route of kind `{wanted}`",
        kind = .kind.as_str(),
        wanted = .wanted.as_str()
    )]
    WrongKind {
        route: Arc<str>,
        kind: RouteKind,
        wanted: RouteKind,
    },
    #[error("The model `{model}` does not exist or is not routed by this gateway. Configured models: {configured}")]
    ModelNotFound { model: String, configured: String },
    /// The exchange with Salesforce ended without an answer.
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// An error answer of the Models API, read by the route's surface.
    #[error("{}", .0.message)]
    UpstreamStatus(Box<Failure>),
    #[error("{0}")]
    Extract(#[from] ExtractError),
    #[error("the surface answered a kind of answer this endpoint cannot render")]
    AnswerMismatch,
    #[error("token counting is not available: no Salesforce Models API surface offers it, and the bridge does not make up figures")]
    TokenCountingUnavailable,
    #[error("the response could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// The caller is over one of its `[[auth.keys]]` limits; nothing was sent upstream.
    #[error(
        "caller `{caller}` is over its limit of {per_minute} {what} per minute; retry after {secs} s",
        per_minute = .over.per_minute,
        what = match .over.kind { LimitKind::Requests => "requests", LimitKind::Tokens => "tokens" },
        secs = .over.retry_after_secs
    )]
    RateLimited { caller: Arc<str>, over: OverLimit },
}

/// A [`BridgeError`] with the Models API's `x-request-id` when the failure followed one of its
/// answers: support cases need that id, for error answers most of all.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: BridgeError,
    pub(crate) upstream_id: Option<HeaderValue>,
}

impl From<BridgeError> for Failed {
    fn from(error: BridgeError) -> Self {
        Failed {
            error,
            upstream_id: None,
        }
    }
}

/// The most characters of serde_json's description of a bad request body that are kept.
const MAX_JSON_ERROR_CHARS: usize = 200;

impl BridgeError {
    /// This error, met after the Models API answered with `upstream_id`.
    pub(crate) fn after_upstream(self, upstream_id: Option<HeaderValue>) -> Failed {
        Failed {
            error: self,
            upstream_id,
        }
    }

    /// A request body serde_json refused. Its message quotes the value at fault, which may be a
    /// whole prompt, and goes to a log as well as to the caller: the quote is bounded and made
    /// one line, and the position, which is ours and short, is kept whole after it.
    pub(crate) fn invalid_json(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        BridgeError::InvalidJson(match message.strip_suffix(&position) {
            Some(what) => format!("{}{position}", sanitize(what, MAX_JSON_ERROR_CHARS)),
            None => sanitize(&message, MAX_JSON_ERROR_CHARS),
        })
    }

    /// The status, class, message, code and parameter the caller gets, in whichever format.
    pub(crate) fn failure(&self) -> Failure {
        use FailureClass::*;
        let (status, class, code, param): (
            StatusCode,
            FailureClass,
            Option<&'static str>,
            Option<Cow<'static, str>>,
        ) = match self {
            BridgeError::UpstreamStatus(failure) => return (**failure).clone(),
            BridgeError::RateLimited { over, .. } => {
                let mut failure =
                    Failure::new(StatusCode::TOO_MANY_REQUESTS, RateLimited, self.to_string())
                        .code("rate_limit_exceeded");
                failure.retry_after = Some(HeaderValue::from(over.retry_after_secs));
                return failure;
            }
            BridgeError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Authentication,
                Some("invalid_api_key"),
                None,
            ),
            BridgeError::TokenCountingUnavailable => (
                StatusCode::NOT_FOUND,
                InvalidRequest,
                Some("not_supported"),
                None,
            ),
            BridgeError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                InvalidRequest,
                Some("not_found"),
                None,
            ),
            BridgeError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                InvalidRequest,
                Some("method_not_allowed"),
                None,
            ),
            BridgeError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                InvalidRequest,
                Some("request_too_large"),
                None,
            ),
            BridgeError::BodyTimeout(_) | BridgeError::BodyStalled => (
                StatusCode::REQUEST_TIMEOUT,
                InvalidRequest,
                Some("request_timeout"),
                None,
            ),
            BridgeError::BodyBudget(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Unavailable,
                Some("overloaded"),
                None,
            ),
            BridgeError::BodyUnreadable => (
                StatusCode::BAD_REQUEST,
                InvalidRequest,
                Some("invalid_request_body"),
                None,
            ),
            BridgeError::InvalidJson(_) | BridgeError::TooDeep(_) => (
                StatusCode::BAD_REQUEST,
                InvalidRequest,
                Some("invalid_json"),
                None,
            ),
            BridgeError::Translate(err) | BridgeError::Unsupported { error: err, .. } => (
                StatusCode::BAD_REQUEST,
                InvalidRequest,
                Some("unsupported_parameter"),
                Some(err.param()),
            ),
            BridgeError::WrongKind { .. } => (
                StatusCode::BAD_REQUEST,
                InvalidRequest,
                Some("model_not_supported"),
                Some("model".into()),
            ),
            BridgeError::ModelNotFound { .. } => (
                StatusCode::NOT_FOUND,
                InvalidRequest,
                Some("model_not_found"),
                Some("model".into()),
            ),
            BridgeError::Exchange(ExchangeError::Token(_) | ExchangeError::UnusableToken) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Unavailable,
                Some("upstream_auth_unavailable"),
                None,
            ),
            BridgeError::Exchange(ExchangeError::Upstream(err)) => match err {
                UpstreamError::Overloaded => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Unavailable,
                    Some("overloaded"),
                    None,
                ),
                UpstreamError::Timeout | UpstreamError::DeadlineExceeded(_) => (
                    StatusCode::GATEWAY_TIMEOUT,
                    Upstream,
                    Some("upstream_timeout"),
                    None,
                ),
                UpstreamError::Connect(_)
                | UpstreamError::NotSent(_)
                | UpstreamError::Transport(_) => (
                    StatusCode::BAD_GATEWAY,
                    Upstream,
                    Some("upstream_unreachable"),
                    None,
                ),
                UpstreamError::TooLarge(_) => (
                    StatusCode::BAD_GATEWAY,
                    Upstream,
                    Some("upstream_invalid_response"),
                    None,
                ),
                UpstreamError::InvalidRequest(_) | UpstreamError::Build(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, Upstream, None, None)
                }
            },
            BridgeError::Extract(_) => (
                StatusCode::BAD_GATEWAY,
                Upstream,
                Some("upstream_invalid_response"),
                None,
            ),
            BridgeError::AnswerMismatch | BridgeError::Encode(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Upstream, None, None)
            }
        };
        let mut failure = Failure::new(status, class, self.to_string());
        failure.code = code.map(Cow::Borrowed);
        failure.param = param;
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ErrorBody;

    #[test]
    fn statuses_and_types() {
        let cases = [
            (BridgeError::Unauthorized, 401, "authentication_error"),
            (
                BridgeError::PayloadTooLarge(10),
                413,
                "invalid_request_error",
            ),
            (
                BridgeError::BodyTimeout(Duration::from_secs(1)),
                408,
                "invalid_request_error",
            ),
            (
                BridgeError::TooDeep(TooDeep {
                    line: 1,
                    column: 129,
                }),
                400,
                "invalid_request_error",
            ),
            (
                BridgeError::Translate(TranslateError::Tools),
                400,
                "invalid_request_error",
            ),
            (
                BridgeError::ModelNotFound {
                    model: "x".into(),
                    configured: "a, b".into(),
                },
                404,
                "invalid_request_error",
            ),
            (
                BridgeError::Exchange(ExchangeError::Upstream(UpstreamError::Overloaded)),
                503,
                "service_unavailable",
            ),
            (
                BridgeError::Exchange(ExchangeError::Upstream(UpstreamError::Timeout)),
                504,
                "api_error",
            ),
            (BridgeError::Extract(ExtractError::NoText), 502, "api_error"),
            (
                BridgeError::RateLimited {
                    caller: "alice".into(),
                    over: OverLimit {
                        kind: LimitKind::Tokens,
                        per_minute: std::num::NonZeroU32::MIN,
                        retry_after_secs: 7,
                    },
                },
                429,
                "rate_limit_error",
            ),
        ];
        for (error, status, kind) in cases {
            let failure = error.failure();
            let body = ErrorBody::from_failure(&failure);
            assert_eq!(failure.status.as_u16(), status, "{error}");
            assert_eq!(
                serde_json::to_value(&body).unwrap()["error"]["type"],
                kind,
                "{error}"
            );
        }
    }

    #[test]
    fn rate_limits_say_who_which_limit_and_when() {
        let failure = BridgeError::RateLimited {
            caller: "alice".into(),
            over: OverLimit {
                kind: LimitKind::Requests,
                per_minute: std::num::NonZeroU32::new(60).unwrap(),
                retry_after_secs: 2,
            },
        }
        .failure();
        assert_eq!(
            failure.message,
            "caller `alice` is over its limit of 60 requests per minute; retry after 2 s"
        );
        assert_eq!(failure.retry_after, Some(HeaderValue::from_static("2")));
        assert_eq!(failure.code.as_deref(), Some("rate_limit_exceeded"));
    }

    #[test]
    fn invalid_json_messages_are_bounded_and_one_line() {
        // serde_json quotes the value at fault: here a whole prompt, which went unbounded into
        // the caller's message and the `request refused` log.
        let prompt = serde_json::to_string(&"p".repeat(1 << 20)).unwrap();
        let body = format!(r#"{{"model":"m","messages":{prompt}}}"#);
        let error = serde_json::from_str::<crate::openai::ChatCompletionRequest<'_>>(&body)
            .map(|_| ())
            .unwrap_err();
        let error = BridgeError::invalid_json(&error);
        let message = error.to_string();
        assert!(message.chars().count() < 300, "{message}");
        assert!(message.contains("ppp…"), "{message}");
        let column = body.len() - 1;
        assert!(
            message.ends_with(&format!(" at line 1 column {column}")),
            "{message}"
        );
        assert_eq!(error.failure().message, message);

        // Short messages are kept whole. serde escapes the strings it quotes as values, but not
        // an unknown variant's name, whose line break forged a log line.
        let body = r#"{"model":"m","messages":[{"role":"us\ner","content":"hi"}]}"#;
        let error = serde_json::from_str::<crate::openai::ChatCompletionRequest<'_>>(body)
            .map(|_| ())
            .unwrap_err();
        let message = BridgeError::invalid_json(&error).to_string();
        assert!(
            message.starts_with("invalid request body: unknown variant `us er`"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn model_not_found_names_the_configured_models() {
        let failure = BridgeError::ModelNotFound {
            model: "gpt-9".into(),
            configured: "gpt-4o, claude".into(),
        }
        .failure();
        assert_eq!(
            failure.message,
            "The model `gpt-9` does not exist or is not routed by this gateway. Configured models: gpt-4o, claude"
        );
        assert_eq!(failure.param.as_deref(), Some("model"));
        assert_eq!(failure.code.as_deref(), Some("model_not_found"));
    }
}
