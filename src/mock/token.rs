//! `POST /services/oauth2/token`: the client-credentials flow, answering JWT access tokens.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::{header, StatusCode};
use serde_json::{json, Value};

use super::errors::JSON;
use super::faults::TokenFault;
use super::server::close_connection;
use super::state::MockState;

/// The form fields of a token request; all optional so that a missing one gets an OAuth error.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Why the token endpoint refused, in OAuth's `{"error", "error_description"}` shape.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthError {
    /// Also the answer to a body that is not a form: Salesforce cannot find `grant_type` in it.
    #[error("grant type not supported")]
    UnsupportedGrantType,
    #[error("invalid client credentials")]
    InvalidClient,
    /// A [`TokenFault::Status`] answer.
    #[error("{}", injected_description(*.0))]
    Injected(StatusCode),
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidClient => "invalid_client",
            Self::Injected(status) => match status.as_u16() {
                400 | 401 => "invalid_client",
                _ if status.is_server_error() => "server_error",
                _ => "invalid_request",
            },
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::UnsupportedGrantType | Self::InvalidClient => StatusCode::BAD_REQUEST,
            Self::Injected(status) => status,
        };
        let body = json!({"error": self.code(), "error_description": self.to_string()});
        (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
    }
}

fn injected_description(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid client credentials",
        401 => "client authentication failed",
        _ if status.is_server_error() => "internal server error",
        _ => "invalid request",
    }
}

/// The axum handler for the token endpoint.
pub(crate) async fn issue(
    State(state): State<MockState>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    state.count_token_request();
    let fault = state.take_token_fault();
    if let Some(TokenFault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    match fault {
        None | Some(TokenFault::Slow(_)) => {
            grant(&state, form).map_or_else(IntoResponse::into_response, success)
        }
        Some(TokenFault::Status(status)) => {
            // Not a valid status code: the closest honest thing is a server error.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            OAuthError::Injected(status).into_response()
        }
        Some(TokenFault::Down) => close_connection(),
        Some(TokenFault::NoAccessToken) => {
            let mut body = token_response(&state, String::new());
            body.as_object_mut()
                .map(|fields| fields.remove("access_token"));
            success(body)
        }
        Some(TokenFault::NotJwt) => {
            // The shape of Salesforce's opaque session ids: org id, '!', then random characters.
            let token = format!(
                "00DXX0000000001!AQ{}",
                URL_SAFE_NO_PAD.encode(random_bytes::<48>())
            );
            state.issue_token(token.clone(), Instant::now());
            let mut body = token_response(&state, token);
            body.as_object_mut()
                .map(|fields| fields.remove("token_format"));
            success(body)
        }
    }
}

/// Checks the form and issues a JWT.
fn grant(
    state: &MockState,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Value, OAuthError> {
    let Ok(Form(form)) = form else {
        return Err(OAuthError::UnsupportedGrantType);
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(OAuthError::UnsupportedGrantType);
    }
    let settings = state.settings();
    if form.client_id.as_deref() != Some(&settings.client_id)
        || form.client_secret.as_deref() != Some(&settings.client_secret)
    {
        return Err(OAuthError::InvalidClient);
    }
    let token = jwt(state, SystemTime::now());
    state.issue_token(token.clone(), Instant::now());
    Ok(token_response(state, token))
}

fn success(body: Value) -> Response {
    ([(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// The documented token response: no `expires_in`, `issued_at` in milliseconds as a string.
fn token_response(state: &MockState, access_token: String) -> Value {
    let base = format!("http://{}", state.settings().addr);
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    json!({
        "access_token": access_token,
        "signature": STANDARD.encode(random_bytes::<32>()),
        "token_format": "jwt",
        "scope": "sfap_api api",
        "instance_url": base,
        "api_instance_url": base,
        "id": format!("{base}/id/00DXX0000000001EAA/005XX0000000001AAA"),
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
    })
}

/// A JWT shaped like Salesforce's: readable claims, fake signature. `jti` makes every token unique.
fn jwt(state: &MockState, now: SystemTime) -> String {
    let settings = state.settings();
    let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let exp = (iat + settings.token_lifetime).as_secs();
    let header = json!({"tnk": "core/prod/00DXX0000000001EAA", "ver": "1.0", "kid": "mock", "typ": "JWT", "alg": "RS256"});
    let claims = json!({
        "scp": "sfap_api api",
        "aud": ["https://api.salesforce.com"],
        "sub": "uid:005XX0000000001AAA",
        "nbf": iat.as_secs(),
        "iss": format!("http://{}", settings.addr),
        "exp": exp,
        "iat": iat.as_secs(),
        "client_id": settings.client_id,
        "jti": format!("{:032x}", fastrand::u128(..)),
    });
    let encode = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        encode(header),
        encode(claims),
        URL_SAFE_NO_PAD.encode(random_bytes::<256>())
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    fastrand::fill(&mut bytes);
    bytes
}
