//! `/__mock/…`: control of a running mock from another process (demo, soak and load tests).
//!
//! The JSON formats are documented in the [module docs](super).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::errors::JSON;
use super::faults::{Fault, ResponseShape, TokenFault};
use super::state::{Counters, MockState};

/// A fault and how many calls it applies to.
#[derive(Debug, Deserialize)]
struct Injection<F> {
    #[serde(flatten)]
    fault: F,
    /// Defaults to 1; 4294967295 (`u32::MAX`) means every call until cleared.
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
enum FaultJson {
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    Unauthorized,
    Slow {
        millis: u64,
    },
    MalformedJson,
    TruncatedJson,
    ConnectionReset,
    Oversized {
        bytes: usize,
    },
    StreamFailure,
    StreamStall {
        millis: u64,
    },
    MalformedEvent,
    NotAStream,
    EmptyStream,
    EndlessStream,
    OversizedEvent {
        bytes: usize,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
enum TokenFaultJson {
    Status { status: u16 },
    Slow { millis: u64 },
    Down,
    NoAccessToken,
    NotJwt,
}

#[derive(Debug, Deserialize)]
struct ShapeJson {
    shape: ResponseShape,
}

#[derive(Debug, Deserialize)]
struct PaceJson {
    millis: u64,
}

/// Why an admin request was refused: `400 {"error": "..."}`.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("status must be between 400 and 599, got {0}")]
    Status(u16),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.to_string()});
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, JSON)],
            body.to_string(),
        )
            .into_response()
    }
}

/// `GET /__mock/counters`.
pub(crate) async fn counters(State(state): State<MockState>) -> Json<Counters> {
    Json(state.counters())
}

/// `POST /__mock/faults`.
pub(crate) async fn inject(State(state): State<MockState>, body: Bytes) -> Response {
    let result = parse::<Injection<FaultJson>>(&body).and_then(|Injection { fault, times }| {
        let fault = match fault {
            FaultJson::Status {
                status,
                retry_after_secs,
            } => Fault::Status {
                status: error_status(status)?,
                retry_after_secs,
            },
            FaultJson::Unauthorized => Fault::Unauthorized,
            FaultJson::Slow { millis } => Fault::Slow(Duration::from_millis(millis)),
            FaultJson::MalformedJson => Fault::MalformedJson,
            FaultJson::TruncatedJson => Fault::TruncatedJson,
            FaultJson::ConnectionReset => Fault::ConnectionReset,
            FaultJson::Oversized { bytes } => Fault::Oversized(bytes),
            FaultJson::StreamFailure => Fault::StreamFailure,
            FaultJson::StreamStall { millis } => Fault::StreamStall(Duration::from_millis(millis)),
            FaultJson::MalformedEvent => Fault::MalformedEvent,
            FaultJson::NotAStream => Fault::NotAStream,
            FaultJson::EmptyStream => Fault::EmptyStream,
            FaultJson::EndlessStream => Fault::EndlessStream,
            FaultJson::OversizedEvent { bytes } => Fault::OversizedEvent(bytes),
        };
        state.inject(fault, times);
        Ok(())
    });
    done(result)
}

/// `POST /__mock/token_faults`.
pub(crate) async fn inject_token(State(state): State<MockState>, body: Bytes) -> Response {
    let result =
        parse::<Injection<TokenFaultJson>>(&body).and_then(|Injection { fault, times }| {
            let fault = match fault {
                TokenFaultJson::Status { status } => TokenFault::Status(error_status(status)?),
                TokenFaultJson::Slow { millis } => TokenFault::Slow(Duration::from_millis(millis)),
                TokenFaultJson::Down => TokenFault::Down,
                TokenFaultJson::NoAccessToken => TokenFault::NoAccessToken,
                TokenFaultJson::NotJwt => TokenFault::NotJwt,
            };
            state.inject_token_fault(fault, times);
            Ok(())
        });
    done(result)
}

/// `DELETE /__mock/faults`.
pub(crate) async fn clear(State(state): State<MockState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

/// `POST /__mock/shape`.
pub(crate) async fn shape(State(state): State<MockState>, body: Bytes) -> Response {
    done(parse::<ShapeJson>(&body).map(|ShapeJson { shape }| state.set_shape(shape)))
}

/// `POST /__mock/stream_pace`.
pub(crate) async fn stream_pace(State(state): State<MockState>, body: Bytes) -> Response {
    done(
        parse::<PaceJson>(&body)
            .map(|PaceJson { millis }| state.set_stream_pace(Duration::from_millis(millis))),
    )
}

/// `POST /__mock/revoke`.
pub(crate) async fn revoke(State(state): State<MockState>) -> StatusCode {
    state.revoke_tokens();
    StatusCode::NO_CONTENT
}

/// `POST /__mock/reset`.
pub(crate) async fn reset(State(state): State<MockState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    Ok(serde_json::from_slice(body)?)
}

/// Only error statuses make sense as an injected failure.
fn error_status(status: u16) -> Result<u16, AdminError> {
    if (400..=599).contains(&status) {
        Ok(status)
    } else {
        Err(AdminError::Status(status))
    }
}

fn done(result: Result<(), AdminError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}
