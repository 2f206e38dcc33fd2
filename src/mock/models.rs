//! `POST /einstein/platform/v1/models/{model}/{operation}`: count, apply faults, check, answer.

use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::answer::{self, Ids};
use super::catalog::{self, Operation};
use super::errors::{ApiError, JSON};
use super::faults::Fault;
use super::server::close_connection;
use super::state::{MockState, RecordedRequest};
use super::validate;

/// The axum handler for every model operation.
pub(crate) async fn call(
    State(state): State<MockState>,
    method: Method,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    with_request_id(handle(state, method, uri, path, headers, body).await)
}

async fn handle(
    state: MockState,
    method: Method,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path((model, segment))) = path else {
        return ApiError::NotFound.into_response();
    };
    let Some(operation) = Operation::from_segment(&segment) else {
        return ApiError::NotFound.into_response();
    };
    if method != Method::POST {
        return ApiError::MethodNotAllowed.into_response();
    }
    state.count(operation);
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(_) => return ApiError::MalformedJson.into_response(),
    };
    if state.canned().is_none() {
        let recorded = RecordedRequest {
            method,
            path: uri.path().to_owned(),
            headers: headers.clone(),
            body: body.clone(),
        };
        state.record(recorded);
    }
    respond(&state, operation, &model, &headers, &body).await
}

/// `POST /einstein/platform/v1/feedback`: 202 to an authorized call with a JSON object, as the
/// real API answers. The bridge never calls it; it is here so the mock serves every operation.
pub(crate) async fn feedback(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let accepted = (|| {
        if !validate::bearer(&headers).is_some_and(|token| state.token_is_valid(token)) {
            return Err(ApiError::InvalidAuth);
        }
        validate::einstein_headers(&headers)?;
        let body = body.map_err(|_| ApiError::MalformedJson)?;
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
            .map_err(|_| ApiError::MalformedJson)?;
        Ok(StatusCode::ACCEPTED)
    })();
    with_request_id(accepted.into_response())
}

/// Applies latency and any queued fault, then answers.
async fn respond(
    state: &MockState,
    operation: Operation,
    model: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let answering = state.answering();
    let response = respond_now(state, operation, model, headers, body).await;
    answering.disarm();
    response
}

async fn respond_now(
    state: &MockState,
    operation: Operation,
    model: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let latency = state.settings().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = state.take_fault();
    if let Some(Fault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    match fault {
        // Stream faults shape streams; these endpoints never stream.
        None
        | Some(
            Fault::Slow(_)
            | Fault::StreamFailure
            | Fault::StreamStall(_)
            | Fault::MalformedEvent
            | Fault::NotAStream
            | Fault::EmptyStream
            | Fault::EndlessStream
            | Fault::OversizedEvent(_),
        ) => answer(state, operation, model, headers, body)
            .map_or_else(IntoResponse::into_response, ok),
        Some(Fault::Status {
            status,
            retry_after_secs,
        }) => {
            // Not a valid status code: the closest honest thing is a server error.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::Injected {
                status,
                retry_after_secs,
            }
            .into_response()
        }
        Some(Fault::Unauthorized) => ApiError::InvalidAuth.into_response(),
        Some(Fault::MalformedJson) => ok(Bytes::from_static(
            b"<html><body>Upstream error</body></html>",
        )),
        Some(Fault::TruncatedJson) => match answer(state, operation, model, headers, body) {
            Ok(full) => ok(full.slice(..full.len() / 2)),
            Err(error) => error.into_response(),
        },
        Some(Fault::ConnectionReset) => close_connection(),
        Some(Fault::Oversized(bytes)) => match answer(state, operation, model, headers, body) {
            Ok(whole) => padded(&whole, bytes),
            Err(error) => error.into_response(),
        },
    }
}

/// A 200 of `whole` and trailing spaces up to `bytes`, streamed in chunks.
pub(crate) fn padded(whole: &[u8], bytes: usize) -> Response {
    const CHUNK: usize = 64 * 1024;
    let mut body = Vec::with_capacity(bytes.max(whole.len()));
    body.extend_from_slice(whole);
    body.resize(bytes.max(whole.len()), b' ');
    let body = Bytes::from(body);
    let chunks = (0..body.len()).step_by(CHUNK).map(move |at| {
        Ok::<_, std::convert::Infallible>(body.slice(at..(at + CHUNK).min(body.len())))
    });
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// The serialized answer to a call, or why the real API would refuse it. Fast mode skips every check.
fn answer(
    state: &MockState,
    operation: Operation,
    model: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Bytes, ApiError> {
    if let Some(canned) = state.canned() {
        return Ok(canned.get(operation));
    }
    if !validate::bearer(headers).is_some_and(|token| state.token_is_valid(token)) {
        return Err(ApiError::InvalidAuth);
    }
    validate::einstein_headers(headers)?;
    if !catalog::is_known(model) {
        return Err(ApiError::NotFound);
    }
    let call = validate::body(operation, headers, body)?;
    let answer = answer::body(&call, model, state.shape(), &Ids::fresh());
    Ok(Bytes::from(answer.to_string()))
}

/// A 200 with a JSON content type, whatever the bytes are (faults send broken ones on purpose).
pub(crate) fn ok(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// Every answer carries a fresh `x-request-id`, as the real API's do.
pub(crate) fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&answer::uuid()) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
