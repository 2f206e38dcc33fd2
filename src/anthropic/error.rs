//! Anthropic's error envelope: `{"type": "error", "error": {"type", "message"}}`.

use serde::Serialize;

use crate::core::{Failure, FailureClass};

/// The `type` of an Anthropic error. The official SDKs pick their exception class from the
/// HTTP status (Python also from `error.details.error_code`, which the bridge never sends), and
/// show this beside the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 400, and other 4xx statuses without a type of their own.
    InvalidRequestError,
    /// 401: no key, or a wrong one.
    AuthenticationError,
    /// 403: the key may not use the resource.
    PermissionError,
    /// 404: no such resource (or model).
    NotFoundError,
    /// 413: the request body is too large.
    RequestTooLarge,
    /// 429: too many requests.
    RateLimitError,
    /// 500, 502 and other 5xx: something failed on the way.
    ApiError,
    /// 504: the answer took too long.
    TimeoutError,
    /// 529 (Anthropic's own) and 503: overloaded, try again later.
    OverloadedError,
}

impl ErrorType {
    /// The type for a failure: by status where Anthropic documents one, by class otherwise.
    pub fn of(failure: &Failure) -> Self {
        match failure.status.as_u16() {
            400 => ErrorType::InvalidRequestError,
            401 => ErrorType::AuthenticationError,
            403 => ErrorType::PermissionError,
            404 => ErrorType::NotFoundError,
            413 => ErrorType::RequestTooLarge,
            429 => ErrorType::RateLimitError,
            500 | 502 => ErrorType::ApiError,
            503 | 529 => ErrorType::OverloadedError,
            504 => ErrorType::TimeoutError,
            _ => match failure.class {
                FailureClass::InvalidRequest => ErrorType::InvalidRequestError,
                FailureClass::Authentication => ErrorType::AuthenticationError,
                FailureClass::Permission => ErrorType::PermissionError,
                FailureClass::RateLimited => ErrorType::RateLimitError,
                FailureClass::Upstream => ErrorType::ApiError,
                FailureClass::Unavailable => ErrorType::OverloadedError,
            },
        }
    }
}

/// The body of an error answer, and the data of a stream's `error` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody<'a> {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What went wrong.
    pub error: ErrorDetail<'a>,
}

/// `error`: its type and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail<'a> {
    /// The error's type.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// A sentence for people.
    pub message: &'a str,
}

impl<'a> ErrorBody<'a> {
    /// The envelope of a failure. Its code and parameter have no field here: Anthropic's
    /// messages name the parameter themselves, as the bridge's do.
    pub fn from_failure(failure: &'a Failure) -> Self {
        Self {
            kind: "error",
            error: ErrorDetail {
                kind: ErrorType::of(failure),
                message: &failure.message,
            },
        }
    }

    /// The JSON text of this envelope.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a string and an enum into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use serde_json::{json, Value};

    fn body(status: u16, class: FailureClass) -> Value {
        let failure = Failure::new(StatusCode::from_u16(status).unwrap(), class, "boom");
        serde_json::from_slice(&ErrorBody::from_failure(&failure).to_json()).unwrap()
    }

    #[test]
    fn every_status_gets_anthropics_type() {
        use FailureClass::*;
        let cases = [
            (400, InvalidRequest, "invalid_request_error"),
            (401, Authentication, "authentication_error"),
            (403, Permission, "permission_error"),
            (404, InvalidRequest, "not_found_error"),
            (405, InvalidRequest, "invalid_request_error"),
            (408, InvalidRequest, "invalid_request_error"),
            (413, InvalidRequest, "request_too_large"),
            (423, RateLimited, "rate_limit_error"),
            (429, RateLimited, "rate_limit_error"),
            (500, Upstream, "api_error"),
            (502, Upstream, "api_error"),
            (503, Unavailable, "overloaded_error"),
            (504, Upstream, "timeout_error"),
            (529, Unavailable, "overloaded_error"),
            (507, Unavailable, "overloaded_error"),
            (501, Upstream, "api_error"),
        ];
        for (status, class, kind) in cases {
            assert_eq!(
                body(status, class),
                json!({"type": "error", "error": {"type": kind, "message": "boom"}}),
                "{status}"
            );
        }
    }
}
