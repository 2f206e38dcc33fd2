//! A status and bytes → the einstein surface's failure: never panics, always an error status, and the
//! message stays bounded whatever the body holds.
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use sf_models_bridge::openai::ErrorBody;
use sf_models_bridge::surface::einstein;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the status (400..=599), the rest is the body.
    let (status, body) = match data {
        [high, low, body @ ..] => (400 + u16::from_be_bytes([*high, *low]) % 200, body),
        _ => (500, data),
    };
    let status = StatusCode::from_u16(status).expect("400..=599 is a status");
    let failure = einstein::read_failure(status, body, "sfdc_ai__DefaultGPT4OmniMini");
    assert!(failure.status.is_client_error() || failure.status.is_server_error());
    assert!(failure.message.chars().count() < 500);
    let envelope = ErrorBody::from_failure(&failure).to_json();
    serde_json::from_slice::<serde_json::Value>(&envelope).expect("valid JSON");
});
