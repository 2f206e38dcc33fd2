//! The few answers the mount gives itself (413, 408, 400, the gateway's 404), in the OpenAI error
//! format (the core's one envelope type) so that OpenAI SDKs raise their usual exceptions.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::StatusCode;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::layer::{request_id, REQUEST_ID};
use crate::openai::{ErrorBody, ErrorType};

/// One error answer: status, OpenAI `code`, and a message that holds nothing the client did not
/// send itself.
#[derive(Debug)]
pub(super) struct ErrorAnswer {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ErrorAnswer {
    /// `{"error":{"message","type","param","code"}}`; every answer of ours is the caller's doing.
    fn body(&self) -> Bytes {
        ErrorBody::new(ErrorType::InvalidRequestError, self.message.as_str())
            .code(self.code)
            .to_json()
            .into()
    }

    /// Writes the answer as a complete response, with the request's `x-request-id` (the caller's,
    /// or a new one) like every answer of the bridge.
    pub(super) async fn write(&self, session: &mut Session) -> pingora::Result<()> {
        let body = self.body();
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
    fn body_is_an_openai_error_envelope() {
        let answer = ErrorAnswer {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "request_too_large",
            message: "say \"why\"".to_owned(),
        };
        let value: serde_json::Value = serde_json::from_slice(&answer.body()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {
                "message": "say \"why\"",
                "type": "invalid_request_error",
                "param": null,
                "code": "request_too_large",
            }})
        );
    }
}
