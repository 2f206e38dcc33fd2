//! Error statuses from the Models API: any status and body map to a client or server error with
//! a bounded message, per the spec's table.

use http::StatusCode;
use proptest::prelude::*;
use serde_json::{json, Value};
use sf_models_bridge::openai::ErrorBody;
use sf_models_bridge::surface::einstein;

use crate::json;

/// A realistic long model name: it is ours (from the conf), and part of the 404 message.
const MODEL: &str = "sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet";

/// The status the spec's table gives the caller.
fn expected_status(upstream: u16) -> u16 {
    match upstream {
        400 | 413 | 415 | 422 => 400,
        401 => 502,
        403 => 403,
        404 => 404,
        423 | 429 => 429,
        503 => 503,
        _ => 502,
    }
}

/// A long text: Salesforce messages are sentences, but nothing bounds what a proxy sends.
fn long_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => json::string(),
        1 => "\\PC{280,2000}",
        1 => (json::string(), 1usize..400).prop_map(|(s, n)| s.repeat(n)),
    ]
}

/// Error-shaped bodies (an object or an array of them, fields of any type), or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = || {
        json::slot(prop_oneof![3 => long_text().prop_map(Value::from), 1 => json::value()].boxed())
    };
    let error = (field(), field(), field()).prop_map(|(code, message_code, message)| {
        let mut error = json::object(vec![
            ("errorCode", code),
            ("messageCode", message_code),
            ("message", message),
        ]);
        if let Some(map) = error.as_object_mut() {
            map.insert("targets".into(), json!([]));
        }
        error
    });
    prop_oneof![
        3 => error.clone().prop_map(|e| serde_json::to_vec(&e).unwrap()),
        1 => prop::collection::vec(error, 0..3).prop_map(|e| serde_json::to_vec(&e).unwrap()),
        1 => json::bytes(),
        1 => json::value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn any_failure_maps_to_a_bounded_error(status in 400u16..600, body in body()) {
        let upstream = StatusCode::from_u16(status).unwrap();
        let failure = einstein::read_failure(upstream, &body, MODEL);
        assert_eq!(failure.status.as_u16(), expected_status(status));
        assert!(failure.status.is_client_error() || failure.status.is_server_error());
        let message = &failure.message;
        assert!(message.starts_with(&format!("Salesforce answered {status}")), "{message}");
        assert!(message.chars().count() < 500, "{} chars", message.chars().count());
        if let Some(code) = &failure.code {
            assert!(code.chars().count() <= 64, "code of {} chars", code.chars().count());
        }
        let envelope: Value =
            serde_json::from_slice(&ErrorBody::from_failure(&failure).to_json()).unwrap();
        assert_eq!(envelope["error"]["message"], json!(message));
    }
}
