//! Salesforce error bodies, and their mapping to neutral failures, per the spec's error table.
//! The native surfaces' error bodies are read here too: which shape a Salesforce gateway, OpenAI
//! or Bedrock answers with is uncertain, so every surface reads whichever is there.

use std::borrow::Cow;

use http::StatusCode;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::core::{Failure, FailureClass, MAX_MESSAGE_CHARS};
use crate::text::sanitize;

/// The longest `errorCode` passed on as the envelope's `code`: anything longer is prose rather
/// than a code, and reaches the caller only inside the bounded message.
const MAX_CODE_CHARS: usize = 64;

/// An error body: the documented `{"errorCode", "messageCode", "message", ...}` (Bedrock's
/// `{"message"}` is its last field alone), or OpenAI's `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorResponse<'a> {
    /// For example `BAD_ARGUMENT`, `INVALID_AUTH`, `LIMIT_EXCEEDED`.
    #[serde(rename = "errorCode", borrow, default)]
    pub error_code: Option<Cow<'a, str>>,
    /// For example `E30020`.
    #[serde(rename = "messageCode", borrow, default)]
    pub message_code: Option<Cow<'a, str>>,
    /// A sentence.
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    /// OpenAI's error object, from the `responses` surface.
    #[serde(borrow, default)]
    pub error: Option<NestedError<'a>>,
}

/// `error` of an error body: OpenAI's object, or anything else (an OAuth-style code string),
/// which is skipped rather than failing the whole body.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NestedError<'a> {
    /// `{"message", "type", "code", "param"}`.
    #[serde(borrow)]
    OpenAi(OpenAiError<'a>),
    /// Any other value.
    Other(IgnoredAny),
}

/// OpenAI's error object.
#[derive(Debug, Default, Deserialize)]
pub struct OpenAiError<'a> {
    /// A sentence.
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    /// For example `invalid_request_error`.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// For example `invalid_value`.
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
}

impl<'a> ErrorResponse<'a> {
    /// Reads an error body: the documented object, or the array of them that other Salesforce
    /// REST APIs send. Anything else yields an empty error.
    pub fn parse(body: &'a [u8]) -> Self {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany<'a> {
            #[serde(borrow)]
            One(ErrorResponse<'a>),
            #[serde(borrow)]
            Many(Vec<ErrorResponse<'a>>),
        }
        match serde_json::from_slice(body) {
            Ok(OneOrMany::One(error)) => error,
            Ok(OneOrMany::Many(errors)) => errors.into_iter().next().unwrap_or_default(),
            Err(_) => ErrorResponse::default(),
        }
    }

    fn openai(&self) -> Option<&OpenAiError<'a>> {
        match &self.error {
            Some(NestedError::OpenAi(error)) => Some(error),
            Some(NestedError::Other(_)) | None => None,
        }
    }

    /// The machine-readable code, from whichever shape has one.
    fn code(&self) -> Option<&str> {
        let openai = self.openai().and_then(|error| error.code.as_deref());
        self.error_code.as_deref().or(openai)
    }

    /// `errorCode messageCode: message` (or OpenAI's `code: message`, its `type` standing in for
    /// a missing code), bounded, for a caller to read.
    pub(crate) fn summary(&self) -> String {
        let openai = self.openai();
        let openai_code = openai.and_then(|error| error.code.as_deref().or(error.kind.as_deref()));
        let codes = [self.error_code.as_deref(), self.message_code.as_deref()];
        let codes = match codes {
            [None, None] => [openai_code, None],
            codes => codes,
        };
        let message = self
            .message
            .as_deref()
            .or(openai.and_then(|error| error.message.as_deref()));
        let mut pieces: Vec<&str> = Vec::with_capacity(5);
        for code in codes.into_iter().flatten() {
            if !pieces.is_empty() {
                pieces.push(" ");
            }
            pieces.push(code);
        }
        if let Some(message) = message {
            if !pieces.is_empty() {
                pieces.push(": ");
            }
            pieces.push(message);
        }
        // The codes are upstream text as much as the message is, so the bound covers all of it.
        sanitize(&pieces.concat(), MAX_MESSAGE_CHARS)
    }
}

/// Maps a final (not retried, or retried in vain) error response of the Models API, per the
/// spec's error table. `model` is the Salesforce model that was called.
pub fn read_failure(status: StatusCode, body: &[u8], model: &str) -> Failure {
    read_failure_at(status, body, model, "salesforce.api_base")
}

/// [`read_failure`] for a surface under the base URL set by the conf key `base_key`, which a
/// redirect's message names.
pub(crate) fn read_failure_at(
    status: StatusCode,
    body: &[u8],
    model: &str,
    base_key: &str,
) -> Failure {
    failure_from(status, &ErrorResponse::parse(body), model, base_key)
}

/// [`read_failure_at`] for a body already read as `error`.
pub(crate) fn failure_from(
    status: StatusCode,
    error: &ErrorResponse<'_>,
    model: &str,
    base_key: &str,
) -> Failure {
    use FailureClass::*;
    let detail = error.summary();
    let said = if detail.is_empty() {
        format!("Salesforce answered {}", status.as_u16())
    } else {
        format!("Salesforce answered {}: {detail}", status.as_u16())
    };
    let failure = match status.as_u16() {
        300..=399 => Failure::new(
            StatusCode::BAD_GATEWAY,
            Upstream,
            format!("{said} (a redirect, which the bridge does not follow: check {base_key})"),
        )
        .code("upstream_invalid_response"),
        400 | 413 | 415 | 422 => Failure::new(StatusCode::BAD_REQUEST, InvalidRequest, said),
        401 => Failure::new(
            StatusCode::BAD_GATEWAY,
            Upstream,
            format!("{said} (a freshly fetched token was refused too: check the connected app's scopes, e.g. sfap_api)"),
        )
        .code("upstream_unauthorized"),
        403 => Failure::new(StatusCode::FORBIDDEN, Permission, said),
        404 => Failure::new(
            StatusCode::NOT_FOUND,
            InvalidRequest,
            format!("{said} (the org may not have model `{model}` enabled, or the access token is not a JWT)"),
        )
        .code("model_not_found"),
        423 | 429 => Failure::new(StatusCode::TOO_MANY_REQUESTS, RateLimited, said)
            .code("rate_limit_exceeded"),
        503 => Failure::new(StatusCode::SERVICE_UNAVAILABLE, Upstream, said),
        _ => Failure::new(StatusCode::BAD_GATEWAY, Upstream, said),
    };
    match error.code() {
        Some(code) if failure.code.is_none() && code.chars().count() <= MAX_CODE_CHARS => {
            failure.code(code.to_owned())
        }
        _ => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The failure as OpenAI callers see it.
    fn map(status: u16, body: &[u8]) -> (u16, serde_json::Value) {
        let failure = read_failure(StatusCode::from_u16(status).unwrap(), body, "m");
        let envelope = crate::openai::ErrorBody::from_failure(&failure);
        (
            failure.status.as_u16(),
            serde_json::from_slice(&envelope.to_json()).unwrap(),
        )
    }

    #[test]
    fn fixtures_map_per_the_spec_table() {
        let (status, body) = map(400, &fixture("error.400.json"));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "BAD_ARGUMENT");
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 400: BAD_ARGUMENT E30020: Cannot deserialize value of type `java.lang.String` from Array value"
        );

        let (status, body) = map(429, &fixture("error.429.json"));
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (429, Some("rate_limit_error"))
        );
        let (status, body) = map(404, &fixture("error.404.json"));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("model_not_found"))
        );
        let (status, body) = map(500, &fixture("error.500.json"));
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (502, Some("api_error"))
        );
        let (status, _) = map(503, b"");
        assert_eq!(status, 503);
        let (status, _) = map(423, b"{}");
        assert_eq!(status, 429);
        let (status, body) = map(401, &fixture("error.401.json"));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (502, Some("upstream_unauthorized"))
        );
        let (status, body) = map(403, b"[{\"errorCode\":\"FORBIDDEN\",\"message\":\"no\"}]");
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (403, Some("permission_error"))
        );
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 403: FORBIDDEN: no"
        );
    }

    #[test]
    fn redirects_are_502s_that_say_so() {
        for code in [301, 302, 307, 308] {
            let (status, body) = map(code, b"<html>moved</html>");
            assert_eq!(status, 502);
            assert_eq!(body["error"]["type"], "api_error");
            assert_eq!(body["error"]["code"], "upstream_invalid_response");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("a redirect, which the bridge does not follow"),
                "{message}"
            );
        }
    }

    #[test]
    fn long_or_odd_bodies_are_bounded() {
        let long = format!("{{\"message\": \"{}\"}}", "x".repeat(10_000));
        let (_, body) = map(500, long.as_bytes());
        assert!(body["error"]["message"].as_str().unwrap().len() < 400);
        let (_, body) = map(500, b"<html>oops</html>");
        assert_eq!(body["error"]["message"], "Salesforce answered 500");
    }

    #[test]
    fn upstream_text_is_made_one_line() {
        // Unlike the token endpoint's, these texts went to the caller and the `request failed`
        // log with their line breaks and escapes intact.
        let body = serde_json::json!({"errorCode": "BAD\r\nARGUMENT",
                                      "message": "no\n2026-01-01 INFO forged\u{1b}[31m"});
        let (_, body) = map(500, &serde_json::to_vec(&body).unwrap());
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 500: BAD  ARGUMENT: no 2026-01-01 INFO forged [31m"
        );
    }

    #[test]
    fn long_codes_are_bounded_too() {
        // Found by the property tests: only `message` was cut, so a proxy answering with a huge
        // `errorCode` put all of it into the caller's message and `code`.
        let huge = serde_json::json!({"errorCode": "C".repeat(5000),
                                      "messageCode": "M".repeat(5000), "message": "m"});
        let huge = serde_json::to_vec(&huge).unwrap();
        let model = "sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet";
        for status in [400, 401, 404, 429, 500] {
            let failure = read_failure(StatusCode::from_u16(status).unwrap(), &huge, model);
            let message = &failure.message;
            assert!(message.chars().count() < 500, "{status}: {message}");
            assert!(!failure.code.as_deref().unwrap_or("").contains("CCC"));
        }
        let (_, body) = map(500, br#"{"errorCode": "BAD_ARGUMENT", "message": "m"}"#);
        assert_eq!(body["error"]["code"], "BAD_ARGUMENT");
    }

    #[test]
    fn openai_and_bedrock_bodies_are_read_too() {
        let openai =
            br#"{"error": {"message": "Unexpected value 'max'", "type": "invalid_request_error",
                          "param": "reasoning.effort", "code": "invalid_value"}}"#;
        let (status, body) = map(400, openai);
        assert_eq!(status, 400);
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 400: invalid_value: Unexpected value 'max'"
        );
        assert_eq!(body["error"]["code"], "invalid_value");
        let (_, body) = map(
            500,
            br#"{"error": {"message": "boom", "type": "server_error", "code": null}}"#,
        );
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 500: server_error: boom"
        );
        let (status, body) = map(502, br#"{"message": "No user context has been created"}"#);
        assert_eq!(status, 502);
        assert_eq!(
            body["error"]["message"],
            "Salesforce answered 502: No user context has been created"
        );
        // An OAuth-style string `error` is skipped, not the whole body.
        let (_, body) = map(400, br#"{"error": "invalid_grant", "message": "m"}"#);
        assert_eq!(body["error"]["message"], "Salesforce answered 400: m");
        let huge =
            serde_json::json!({"error": {"message": "x".repeat(10_000), "code": "C".repeat(500)}});
        let failure = read_failure(
            StatusCode::BAD_REQUEST,
            &serde_json::to_vec(&huge).unwrap(),
            "m",
        );
        assert!(failure.message.chars().count() < 400);
        assert_eq!(failure.code, None);
    }

    #[test]
    fn redirects_name_the_surfaces_base() {
        let failure = read_failure_at(StatusCode::FOUND, b"", "m", "salesforce.gpt_api_base");
        assert!(
            failure.message.ends_with("check salesforce.gpt_api_base)"),
            "{}",
            failure.message
        );
    }
}
