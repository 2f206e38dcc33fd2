//! A status and bytes → `UpstreamFailure`: never panics, always an error status, and the
//! message stays bounded whatever the body holds.
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use sf_models_bridge::salesforce::UpstreamFailure;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the status (400..=599), the rest is the body.
    let (status, body) = match data {
        [high, low, body @ ..] => (400 + u16::from_be_bytes([*high, *low]) % 200, body),
        _ => (500, data),
    };
    let status = StatusCode::from_u16(status).expect("400..=599 is a status");
    let failure = UpstreamFailure::from_response(status, body, "sfdc_ai__DefaultGPT4OmniMini");
    assert!(failure.status.is_client_error() || failure.status.is_server_error());
    assert!(failure.body.error.message.chars().count() < 500);
    serde_json::from_slice::<serde_json::Value>(&failure.body.to_json()).expect("valid JSON");
});
