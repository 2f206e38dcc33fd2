//! Reading a JWT's lifetime from its claims, without verifying it: the cache only needs to know
//! when to refresh, and Salesforce verifies the token on every call anyway.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// How long `access_token` lives from `now_unix_secs`, read from its JWT `exp` claim; `fallback`
/// when the token is not a readable JWT or has no numeric `exp`.
///
/// The payload may be base64url with or without `=` padding. An `exp` already past gives
/// [`Duration::ZERO`]. When the token also has a numeric `iat`, the lifetime is at most
/// `exp − iat`, so a local clock running behind Salesforce's cannot keep an expired token.
///
/// ```
/// use std::time::Duration;
/// use sf_models_bridge::token::token_lifetime;
///
/// let fallback = Duration::from_secs(600);
/// assert_eq!(token_lifetime("opaque-token", 0, fallback), fallback);
/// // {"exp":1000}
/// assert_eq!(token_lifetime("e30.eyJleHAiOjEwMDB9.sig", 400, fallback), Duration::from_secs(600));
/// assert_eq!(token_lifetime("e30.eyJleHAiOjEwMDB9.sig", 990, fallback), Duration::from_secs(10));
/// ```
pub fn token_lifetime(access_token: &str, now_unix_secs: u64, fallback: Duration) -> Duration {
    let Some(claims) = claims(access_token) else {
        return fallback;
    };
    let Some(exp) = claims.get("exp").and_then(seconds) else {
        return fallback;
    };
    let remaining = exp.saturating_sub(now_unix_secs);
    let issued_for = claims
        .get("iat")
        .and_then(seconds)
        .map_or(u64::MAX, |iat| exp.saturating_sub(iat));
    Duration::from_secs(remaining.min(issued_for))
}

/// The decoded payload of a three-segment JWT, if it is a JSON object.
fn claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut segments = token.split('.');
    let (_header, payload, _signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// A NumericDate claim as whole seconds. RFC 7519 allows fractions; negative or non-finite values
/// are not dates.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let secs = value.as_f64()?;
        // The range check makes the cast exact up to truncating the fraction.
        (secs.is_finite() && secs >= 0.0 && secs < u64::MAX as f64).then_some(secs as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALLBACK: Duration = Duration::from_secs(600);

    fn jwt(payload: &str, padded: bool) -> String {
        let mut encoded = URL_SAFE_NO_PAD.encode(payload);
        while padded && encoded.len() % 4 != 0 {
            encoded.push('=');
        }
        format!("eyJhbGciOiJSUzI1NiJ9.{encoded}.c2ln")
    }

    #[test]
    fn fixture_token_lives_1800_seconds_from_iat() {
        let response: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/token.response.json")).unwrap();
        let token = response["access_token"].as_str().unwrap();
        assert_eq!(
            token_lifetime(token, 1_737_590_384, FALLBACK),
            Duration::from_secs(1800)
        );
        assert_eq!(
            token_lifetime(token, 1_737_592_000, FALLBACK),
            Duration::from_secs(184)
        );
        assert_eq!(
            token_lifetime(token, 1_737_592_184, FALLBACK),
            Duration::ZERO
        );
        assert_eq!(
            token_lifetime(token, 1_800_000_000, FALLBACK),
            Duration::ZERO
        );
    }

    #[test]
    fn padded_and_unpadded_payloads_both_read() {
        // 13 bytes of JSON: base64 needs padding.
        let payload = r#"{"exp":1100} "#;
        assert_eq!(payload.len() % 3, 1);
        let unpadded = jwt(payload, false);
        let padded = jwt(payload, true);
        assert!(padded.contains("=."));
        assert_eq!(
            token_lifetime(&unpadded, 1000, FALLBACK),
            Duration::from_secs(100)
        );
        assert_eq!(
            token_lifetime(&padded, 1000, FALLBACK),
            Duration::from_secs(100)
        );
    }

    #[test]
    fn lifetime_is_capped_by_exp_minus_iat() {
        let token = jwt(r#"{"iat":1000,"exp":1300}"#, false);
        // Local clock 100 s behind the issuer's.
        assert_eq!(
            token_lifetime(&token, 900, FALLBACK),
            Duration::from_secs(300)
        );
        // Local clock ahead: what is left by our clock.
        assert_eq!(
            token_lifetime(&token, 1100, FALLBACK),
            Duration::from_secs(200)
        );
    }

    #[test]
    fn fractional_exp_is_truncated() {
        let token = jwt(r#"{"exp":1100.9}"#, false);
        assert_eq!(
            token_lifetime(&token, 1000, FALLBACK),
            Duration::from_secs(100)
        );
    }

    #[test]
    fn unreadable_tokens_fall_back() {
        let cases = [
            "".to_owned(),
            "opaque-access-token".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "eyJhbGciOiJSUzI1NiJ9.!!!not-base64!!!.c2ln".to_owned(),
            jwt("not json", false),
            jwt("[1,2,3]", false),
            jwt(r#"{"iat":1000}"#, false),
            jwt(r#"{"exp":"1100"}"#, false),
            jwt(r#"{"exp":null}"#, false),
            jwt(r#"{"exp":-5}"#, false),
            jwt(r#"{"exp":1e300}"#, false),
            jwt(r#"{"exp":true}"#, false),
        ];
        for token in &cases {
            assert_eq!(token_lifetime(token, 1000, FALLBACK), FALLBACK, "{token}");
        }
    }
}
