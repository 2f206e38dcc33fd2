//! The one answer the mount gives itself, the gateway's 404 for a path neither the bridge nor an
//! upstream serves, in the OpenAI error format (the core's one envelope type) so that OpenAI SDKs
//! raise their usual exceptions.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::layer::service::{request_id, MAX_PATH_CHARS, REQUEST_ID};
use crate::openai::{ErrorBody, ErrorType};
use crate::text::sanitize;

/// One error answer: a status and its OpenAI envelope.
#[derive(Debug)]
pub(super) struct ErrorAnswer {
    pub(super) status: StatusCode,
    pub(super) body: ErrorBody,
}

impl ErrorAnswer {
    /// A 404 for a path neither the bridge nor an upstream serves, worded as OpenAI's own.
    pub(super) fn not_found(method: &http::Method, path: &str) -> Self {
        ErrorAnswer {
            status: StatusCode::NOT_FOUND,
            body: ErrorBody::new(
                ErrorType::InvalidRequestError,
                // Cut and cleaned as the service's own 404 is: the path is the caller's.
                format!("Invalid URL ({method} {})", sanitize(path, MAX_PATH_CHARS)),
            )
            .code("not_found"),
        }
    }

    /// Writes the answer as a complete response, with the request's `x-request-id` (the caller's,
    /// or a new one) like every answer of the bridge.
    pub(super) async fn write(&self, session: &mut Session) -> pingora::Result<()> {
        let body = Bytes::from(self.body.to_json());
        let request_id = request_id(&session.req_header().headers);
        let mut header = ResponseHeader::build(self.status, Some(3))?;
        header.insert_header(CONTENT_TYPE, "application/json")?;
        header.insert_header(CONTENT_LENGTH, body.len())?;
        header.insert_header(REQUEST_ID, request_id)?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(body), true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_an_openai_error_envelope() {
        let answer = ErrorAnswer::not_found(&http::Method::GET, "/v2/\"x\"");
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        let value: serde_json::Value = serde_json::from_slice(&answer.body.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {
                "message": "Invalid URL (GET /v2/\"x\")",
                "type": "invalid_request_error",
                "param": null,
                "code": "not_found",
            }})
        );
    }

    #[test]
    fn not_found_quotes_a_long_path_cut_short() {
        let path = format!("/{}", "p".repeat(10 * 1024));
        let answer = ErrorAnswer::not_found(&http::Method::GET, &path);
        let value: serde_json::Value = serde_json::from_slice(&answer.body.to_json()).unwrap();
        let message = value["error"]["message"].as_str().unwrap();
        let quoted = message
            .strip_prefix("Invalid URL (GET ")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap();
        assert_eq!(quoted.chars().count(), MAX_PATH_CHARS);
        assert!(quoted.ends_with('…'), "{quoted}");
    }
}
