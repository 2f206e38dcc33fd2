//! The OpenAI error envelope: `{"error": {"message", "type", "param", "code"}}`.

use std::borrow::Cow;

use serde::Serialize;

use crate::core::{Failure, FailureClass};

/// The `type` of an OpenAI error. The official SDKs pick their exception class from the HTTP
/// status, and show this next to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request is malformed or asks for something this upstream cannot do.
    InvalidRequestError,
    /// The caller presented no key or a wrong one.
    AuthenticationError,
    /// The org or app lacks access.
    PermissionError,
    /// Too many requests: back off and retry.
    RateLimitError,
    /// The upstream failed or answered something unusable.
    ApiError,
    /// The bridge or the upstream is overloaded or not ready.
    ServiceUnavailable,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong, in OpenAI's field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// A sentence for people.
    pub message: String,
    /// The error class.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// The request parameter at fault, such as `messages[1].content`.
    pub param: Option<Cow<'static, str>>,
    /// A stable machine-readable code, such as `model_not_found`.
    pub code: Option<Cow<'static, str>>,
}

impl ErrorBody {
    /// An error with a message, a type and no `param` or `code`.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind,
                param: None,
                code: None,
            },
        }
    }

    /// Sets `code`.
    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.error.code = Some(code.into());
        self
    }

    /// Sets `param`.
    pub fn param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.error.param = Some(param.into());
        self
    }

    /// The envelope of a failure: its class becomes OpenAI's error `type`, so the SDKs raise
    /// their usual exception for the status and show the type beside the message.
    pub fn from_failure(failure: &Failure) -> Self {
        let kind = match failure.class {
            FailureClass::InvalidRequest => ErrorType::InvalidRequestError,
            FailureClass::Authentication => ErrorType::AuthenticationError,
            FailureClass::Permission => ErrorType::PermissionError,
            FailureClass::RateLimited => ErrorType::RateLimitError,
            FailureClass::Upstream => ErrorType::ApiError,
            FailureClass::Unavailable => ErrorType::ServiceUnavailable,
        };
        Self {
            error: ErrorDetail {
                message: failure.message.clone(),
                kind,
                param: failure.param.clone(),
                code: failure.code.clone(),
            },
        }
    }

    /// The JSON text of this envelope.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and enums into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_openai_field_names() {
        let body = ErrorBody::new(ErrorType::InvalidRequestError, "nope")
            .code("model_not_found")
            .param("model");
        let value: serde_json::Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {"message": "nope", "type": "invalid_request_error",
                                         "param": "model", "code": "model_not_found"}})
        );
    }
}
