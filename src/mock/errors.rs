//! The Models API's error answers, in the spec's shape: `{"errorCode", "messageCode", "message"}`.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// Every way a model call can fail. The `Display` text is the body's `message`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Missing, unknown, expired or revoked bearer token (`error.401.json`).
    #[error("Access bearer token is missing or invalid")]
    InvalidAuth,
    #[error("Missing or invalid header `{name}`: expected `{expected}`")]
    InvalidHeader {
        name: &'static str,
        expected: &'static str,
    },
    /// Unknown model or path (`error.404.json`).
    #[error("Resource not found")]
    NotFound,
    #[error("Request method not supported")]
    MethodNotAllowed,
    /// Observed for multipart bodies; the mock answers it for anything that is not JSON.
    #[error("Content type `{0}` not supported")]
    UnsupportedMediaType(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("Malformed JSON request body")]
    MalformedJson,
    #[error("Missing required field: {0}")]
    RequiredFieldMissing(String),
    /// Jackson's deserialization error, as observed for a content array (`error.400.json`).
    #[error("Cannot deserialize value of type `{expected}` from {found} value")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("{0}")]
    BadArgument(String),
    /// A [`Fault::Status`](super::Fault::Status) answer.
    #[error("{}", injected_message(*.status))]
    Injected {
        status: StatusCode,
        retry_after_secs: Option<u64>,
    },
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::InvalidAuth => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidHeader { .. }
            | Self::MalformedJson
            | Self::RequiredFieldMissing(_)
            | Self::WrongType { .. }
            | Self::BadArgument(_) => StatusCode::BAD_REQUEST,
            Self::Injected { status, .. } => *status,
        }
    }

    fn error_code(&self) -> &'static str {
        match self {
            Self::RequiredFieldMissing(_) => "REQUIRED_FIELD_MISSING",
            Self::InvalidHeader { .. }
            | Self::MalformedJson
            | Self::WrongType { .. }
            | Self::BadArgument(_) => "BAD_ARGUMENT",
            Self::InvalidAuth
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType(_)
            | Self::PayloadTooLarge
            | Self::Injected { .. } => status_error_code(self.status()),
        }
    }

    fn message_code(&self) -> &'static str {
        match self {
            Self::WrongType { .. } => "E30020",
            // The published samples use this placeholder wherever the real code is unknown.
            _ => "EXXXXX",
        }
    }

    /// The JSON body, serialized.
    pub(crate) fn body(&self) -> String {
        serde_json::json!({
            "errorCode": self.error_code(),
            "messageCode": self.message_code(),
            "message": self.to_string(),
        })
        .to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status(), [(header::CONTENT_TYPE, JSON)], self.body()).into_response();
        if let Self::Injected {
            retry_after_secs: Some(secs),
            ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The content type of every JSON answer.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";

/// The `errorCode` the spec gives each status.
fn status_error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "INVALID_AUTH",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        423 => "SERVER_BUSY",
        429 => "LIMIT_EXCEEDED",
        503 => "SERVICE_UNAVAILABLE",
        _ if status.is_client_error() => "BAD_ARGUMENT",
        _ => "INTERNAL_ERROR",
    }
}

/// The messages of the published error samples, where there is one.
pub(crate) fn injected_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request",
        401 => "Access bearer token is missing or invalid",
        403 => "Forbidden",
        404 => "Resource not found",
        423 => "Server is busy",
        429 => "Too many requests for the server to handle",
        500 => "Internal server error",
        503 => "Service unavailable",
        _ if status.is_client_error() => "Request rejected",
        _ => "Internal server error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn body(error: &ApiError) -> Value {
        serde_json::from_str(&error.body()).unwrap()
    }

    #[test]
    fn bodies_match_the_published_samples() {
        let array = ApiError::WrongType {
            expected: "java.lang.String",
            found: "Array",
        };
        assert_eq!(body(&array), fixture("error.400.json"));
        assert_eq!(body(&ApiError::InvalidAuth), fixture("error.401.json"));
        assert_eq!(body(&ApiError::NotFound), fixture("error.404.json"));
        let injected = |status| ApiError::Injected {
            status,
            retry_after_secs: None,
        };
        assert_eq!(
            body(&injected(StatusCode::TOO_MANY_REQUESTS)),
            fixture("error.429.json")
        );
        assert_eq!(
            body(&injected(StatusCode::INTERNAL_SERVER_ERROR)),
            fixture("error.500.json")
        );
    }

    #[test]
    fn statuses_get_the_spec_error_codes() {
        let code = |status: u16| status_error_code(StatusCode::from_u16(status).unwrap());
        assert_eq!(code(423), "SERVER_BUSY");
        assert_eq!(code(503), "SERVICE_UNAVAILABLE");
        assert_eq!(code(403), "FORBIDDEN");
        assert_eq!(code(418), "BAD_ARGUMENT");
        assert_eq!(code(502), "INTERNAL_ERROR");
    }
}
