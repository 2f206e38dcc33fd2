//! The path every call to a native surface (`/ai/gpt/v1`) takes: counted, recorded, the gateway's
//! checks, queued faults, then the surface's own checks and answer.
//!
//! The gateway's checks (token, the Einstein headers, content type, known model) answer in
//! Salesforce's error shape, as on the Einstein endpoints: they happen before the provider sees the
//! call. The provider's own checks and injected statuses answer in the provider's shape.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::errors::{ApiError, JSON};
use super::faults::Fault;
use super::models::{ok, padded, with_request_id};
use super::server::close_connection;
use super::state::{Answering, MockState, RecordedRequest};
use super::stream::{self, Steps, StreamFault, ENDLESS_PACE};
use super::validate;

/// Where a call was sent, as far as the path says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    /// The model, when the path names it.
    pub(crate) model: Option<String>,
    /// Whether the path asks for a stream.
    pub(crate) stream: bool,
}

/// Why a call was refused before any answer.
#[derive(Debug)]
pub(crate) enum Refusal<E> {
    /// By the gateway, in Salesforce's shape.
    Gateway(ApiError),
    /// By the provider, in its own shape.
    Provider(E),
}

impl<E: IntoResponse> IntoResponse for Refusal<E> {
    fn into_response(self) -> Response {
        match self {
            Self::Gateway(error) => error.into_response(),
            Self::Provider(error) => error.into_response(),
        }
    }
}

/// One provider format served under `/ai/gpt/v1`.
pub(crate) trait Surface {
    /// A checked request: what the answer is built from.
    type Call: Send;

    /// The provider's refusal of a request.
    type Error: IntoResponse;

    /// The content type of a streamed answer.
    const STREAM_CONTENT_TYPE: &'static str;

    /// Counts the call.
    fn count(state: &MockState);

    /// A [`Fault::Status`] answer in the provider's error shape.
    fn injected(status: StatusCode, retry_after_secs: Option<u64>) -> Response;

    /// The provider's checks, and the 404 for a model this surface does not serve.
    fn check(route: &Route, body: &[u8]) -> Result<Self::Call, Refusal<Self::Error>>;

    /// Whether the answer is a stream.
    fn streams(call: &Self::Call) -> bool;

    /// The whole answer.
    fn answer(state: &MockState, call: &Self::Call) -> Bytes;

    /// The streamed answer, `fault` applied, writes `pace` apart.
    fn stream(
        state: &MockState,
        call: &Self::Call,
        fault: Option<StreamFault>,
        pace: Duration,
    ) -> Steps;
}

/// The body of a [`Fault::NotAStream`] answer: an error where the stream should be, as observed
/// under load.
const NOT_A_STREAM: &str = r#"{"message":"Too many requests"}"#;

/// The body of a [`Fault::MalformedJson`] answer.
const NOT_JSON: &[u8] = b"<html><body>Upstream error</body></html>";

/// Answers one call to surface `S`.
pub(crate) async fn handle<S: Surface>(
    state: MockState,
    method: Method,
    uri: Uri,
    route: Route,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    with_request_id(handle_now::<S>(state, method, uri, route, headers, body).await)
}

async fn handle_now<S: Surface>(
    state: MockState,
    method: Method,
    uri: Uri,
    route: Route,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if method != Method::POST {
        return ApiError::MethodNotAllowed.into_response();
    }
    S::count(&state);
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(_) => return ApiError::MalformedJson.into_response(),
    };
    if state.canned().is_none() {
        state.record(RecordedRequest {
            method,
            path: uri.path().to_owned(),
            headers: headers.clone(),
            body: body.clone(),
        });
    }
    // Created before any wait, so a caller leaving during latency or a slow fault is counted too.
    let answering = state.answering();
    respond::<S>(&state, &route, &headers, &body, answering).await
}

/// Applies latency and any queued fault, then answers.
async fn respond<S: Surface>(
    state: &MockState,
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
    answering: Answering,
) -> Response {
    let latency = state.settings().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = state.take_fault();
    if let Some(Fault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    let early = match fault {
        Some(Fault::Status {
            status,
            retry_after_secs,
        }) => {
            // Not a valid status code: the closest honest thing is a server error.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            S::injected(status, retry_after_secs)
        }
        Some(Fault::Unauthorized) => ApiError::InvalidAuth.into_response(),
        Some(Fault::ConnectionReset) => close_connection(),
        None
        | Some(
            Fault::Slow(_)
            | Fault::MalformedJson
            | Fault::TruncatedJson
            | Fault::Oversized(_)
            | Fault::StreamFailure
            | Fault::StreamStall(_)
            | Fault::MalformedEvent
            | Fault::NotAStream
            | Fault::EmptyStream
            | Fault::EndlessStream
            | Fault::OversizedEvent(_),
        ) => return answer::<S>(state, route, headers, body, fault, answering),
    };
    answering.disarm();
    early
}

/// The checks, then the answer with any fault that shapes it.
fn answer<S: Surface>(
    state: &MockState,
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
    fault: Option<Fault>,
    answering: Answering,
) -> Response {
    let checked = gateway(state, headers)
        .map_err(Refusal::Gateway)
        .and_then(|()| S::check(route, body));
    let call = match checked {
        Ok(call) => call,
        Err(refusal) => {
            answering.disarm();
            return refusal.into_response();
        }
    };
    if !S::streams(&call) {
        answering.disarm();
        let whole = S::answer(state, &call);
        return match fault {
            Some(Fault::MalformedJson) => ok(Bytes::from_static(NOT_JSON)),
            Some(Fault::TruncatedJson) => ok(whole.slice(..whole.len() / 2)),
            Some(Fault::Oversized(bytes)) => padded(&whole, bytes),
            // Stream faults shape streams only: a whole answer is answered normally.
            None
            | Some(
                Fault::Slow(_)
                | Fault::Status { .. }
                | Fault::Unauthorized
                | Fault::ConnectionReset
                | Fault::StreamFailure
                | Fault::StreamStall(_)
                | Fault::MalformedEvent
                | Fault::NotAStream
                | Fault::EmptyStream
                | Fault::EndlessStream
                | Fault::OversizedEvent(_),
            ) => ok(whole),
        };
    }
    let pace = state.stream_pace();
    let steps = match fault {
        Some(Fault::NotAStream) => {
            answering.disarm();
            return ok(Bytes::from_static(NOT_A_STREAM.as_bytes()));
        }
        Some(Fault::MalformedJson) => {
            answering.disarm();
            return ok(Bytes::from_static(NOT_JSON));
        }
        Some(Fault::TruncatedJson) => stream::truncated(S::stream(state, &call, None, pace)),
        Some(Fault::EndlessStream) => {
            let pace = if pace.is_zero() { ENDLESS_PACE } else { pace };
            S::stream(state, &call, Some(StreamFault::Endless), pace)
        }
        Some(
            ref fault @ (Fault::StreamFailure
            | Fault::StreamStall(_)
            | Fault::MalformedEvent
            | Fault::EmptyStream
            | Fault::OversizedEvent(_)),
        ) => S::stream(state, &call, StreamFault::of(fault), pace),
        // `Oversized` pads a whole answer; a stream has no end to pad, so it streams normally.
        None
        | Some(
            Fault::Slow(_)
            | Fault::Status { .. }
            | Fault::Unauthorized
            | Fault::ConnectionReset
            | Fault::Oversized(_),
        ) => S::stream(state, &call, None, pace),
    };
    let mut response = Response::new(stream::body(steps, answering));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(S::STREAM_CONTENT_TYPE),
    );
    response
}

/// The checks of the Einstein endpoints; fast mode skips them, as it does there.
fn gateway(state: &MockState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.canned().is_some() {
        return Ok(());
    }
    if !validate::bearer(headers).is_some_and(|token| state.token_is_valid(token)) {
        return Err(ApiError::InvalidAuth);
    }
    validate::einstein_headers(headers)?;
    validate::content_type(headers)
}

/// A JSON answer in a provider's shape: `status`, `body`, and `Retry-After` when set.
pub(crate) fn json_error(
    status: StatusCode,
    body: &serde_json::Value,
    retry_after_secs: Option<u64>,
) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
