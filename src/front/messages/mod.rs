//! The Anthropic Messages front: `POST /v1/messages`, through the neutral core, so that every
//! surface can serve it.
//!
//! [`to_core`] reads the request (what it keeps, drops and refuses is listed there),
//! [`message_json`] writes a whole answer, [`MessageEvents`] a stream, and failures take
//! Anthropic's envelope, `{"type": "error", "error": {"type", "message"}}`, with its error type
//! for the status ([`ErrorType::of`](crate::anthropic::ErrorType::of)); a stream that fails
//! after it started ends with an `error` event holding the same envelope, as Anthropic's do.

mod answer;
mod events;
mod request;

use bytes::{Bytes, BytesMut};

pub use answer::message_json;
pub use events::{AnswerStream, MessageEvents};
pub use request::to_core;

use super::{generation, parse_json, AnswerCtx, ErrorFormat, EventSource, Front, RenderEvents};
use crate::anthropic::ErrorBody;
use crate::core::{Answer, Failure, Request};
use crate::layer::BridgeError;
use crate::surface::native::NativeApi;

/// `POST /v1/messages`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessagesFront;

impl Front for MessagesFront {
    fn id_prefix(&self) -> &'static str {
        "msg_"
    }

    fn parse<'b>(&self, body: &'b [u8]) -> Result<Request<'b>, BridgeError> {
        parse_json(body, to_core)
    }

    fn answer_json(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Vec<u8>, BridgeError> {
        let answer = generation(answer)?;
        message_json(answer, ctx).map_err(BridgeError::Encode)
    }

    fn answer_events(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Box<dyn EventSource>, BridgeError> {
        let answer = generation(answer)?;
        Ok(Box::new(AnswerStream::new(answer, ctx)))
    }

    fn event_renderer(&self, ctx: &AnswerCtx<'_>) -> Result<Box<dyn RenderEvents>, BridgeError> {
        Ok(Box::new(MessageEvents::new(ctx.fallback_id, ctx.model)))
    }

    fn errors(&self) -> &'static dyn ErrorFormat {
        &AnthropicErrors
    }

    fn native(&self) -> Option<NativeApi> {
        Some(NativeApi::AnthropicMessages)
    }
}

/// Anthropic's error envelope, `{"type": "error", "error": {"type", "message"}}`, whole or as
/// the `error` event that ends a stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnthropicErrors;

impl ErrorFormat for AnthropicErrors {
    fn error_json(&self, failure: &Failure) -> Vec<u8> {
        ErrorBody::from_failure(failure).to_json()
    }

    fn error_event(&self, failure: &Failure) -> Bytes {
        let mut out = BytesMut::with_capacity(failure.message.len() + 96);
        events::write_sse(&mut out, "error", &ErrorBody::from_failure(failure));
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Delivery, FailureClass, Finish, Generation};
    use http::StatusCode;
    use serde_json::{json, Value};

    fn failure(body: &[u8]) -> Failure {
        MessagesFront.parse(body).unwrap_err().failure()
    }

    #[test]
    fn refusals_are_anthropic_errors() {
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"model": "claude", "messages": [{"role": "user", "content": "Hi"}]}"#,
                "max_tokens: Field required",
            ),
            (
                br#"{"model": "claude", "max_tokens": 5, "messages": []}"#,
                "`messages` must hold at least one message",
            ),
            (
                br#"{"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}]}]}"#,
                "messages.0.content.0.type: `document` blocks cannot be carried to this model",
            ),
            (
                br#"{"model": "claude", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}"#,
                "invalid request body: unknown variant `system`, expected `user` or `assistant`",
            ),
        ];
        for (body, message) in cases {
            let failure = failure(body);
            assert_eq!(failure.status, StatusCode::BAD_REQUEST);
            let json: Value =
                serde_json::from_slice(&AnthropicErrors.error_json(&failure)).unwrap();
            assert_eq!(json["type"], "error");
            assert_eq!(json["error"]["type"], "invalid_request_error");
            let got = json["error"]["message"].as_str().unwrap();
            assert!(got.starts_with(message), "{got}");
        }
    }

    #[test]
    fn a_failed_stream_ends_with_an_error_event() {
        let failure = Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            FailureClass::Unavailable,
            "Overloaded",
        );
        assert_eq!(
            &AnthropicErrors.error_event(&failure)[..],
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
    }

    #[test]
    fn answers_render_through_the_front() {
        let ctx = AnswerCtx {
            fallback_id: "msg_local",
            created: 1,
            model: "claude",
            delivery: Delivery::WHOLE,
        };
        let answer = Answer::Generation(Generation {
            id: None,
            text: "Hi",
            tool_calls: vec![],
            finish: Finish::Stop,
            usage: None,
        });
        let body: Value =
            serde_json::from_slice(&MessagesFront.answer_json(&answer, &ctx).unwrap()).unwrap();
        assert_eq!(body["id"], "msg_local");
        assert_eq!(body["content"], json!([{"type": "text", "text": "Hi"}]));
        let mut events = MessagesFront.answer_events(&answer, &ctx).unwrap();
        let mut buf = BytesMut::new();
        assert!(!events.fill(&mut buf, 1 << 20));
        assert!(buf.starts_with(b"event: message_start\n"));
        assert!(buf.ends_with(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        let embeddings = Answer::Embeddings(crate::core::Embeddings {
            vectors: vec![],
            usage: None,
        });
        assert!(matches!(
            MessagesFront.answer_json(&embeddings, &ctx),
            Err(BridgeError::AnswerMismatch)
        ));
        assert_eq!(MessagesFront.id_prefix(), "msg_");
        assert!(MessagesFront.event_renderer(&ctx).is_ok());
    }
}
