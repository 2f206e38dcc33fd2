//! [`Salesforce`]: the bridge as a Tower service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;
use tower::Service;
use tracing::Instrument;

use super::body::BridgeBody;
use super::error::{BridgeError, Failed};
use super::finish::Finisher;
use super::generate;
use super::reload::Live;
use super::request_body;
use super::Shared;
use crate::endpoint::{Access, Endpoint, Handler, Row};
use crate::front::messages::AnthropicErrors;
use crate::front::{ErrorFormat, OpenAiErrors};
use crate::token::Readiness;
use crate::upstream::{RequestBody, UpstreamService};

/// How much of an unknown path a 404 quotes: enough to spot a typo, never a flood.
pub(crate) const MAX_PATH_CHARS: usize = 200;

/// The header carrying the request id, taken from the caller or generated, and returned.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// Sent by Anthropic's clients: `GET /v1/models` then answers in Anthropic's shape.
const ANTHROPIC_VERSION: &str = "anthropic-version";
/// Carries the Models API's own `x-request-id`, for support cases.
const UPSTREAM_REQUEST_ID: &str = "x-salesforce-request-id";

/// The bridge: answers the OpenAI endpoints (and health, readiness and metrics) by calling the
/// Models API through the upstream client `S`. Built by [`SalesforceLayer`](super::SalesforceLayer).
///
/// Every failure becomes an OpenAI error response, so `Error = Infallible`.
pub struct Salesforce<S> {
    inner: S,
    live: Arc<Live>,
}

impl<S: Clone> Clone for Salesforce<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            live: self.live.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Salesforce<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Salesforce").finish_non_exhaustive()
    }
}

impl<S> Salesforce<S> {
    pub(crate) fn new(inner: S, live: Arc<Live>) -> Self {
        Self { inner, live }
    }

    /// Applies `config` to this service, its clones and the layer that made it: see
    /// [`SalesforceLayer::reload`](super::SalesforceLayer::reload). For mounts that hold only
    /// the service, such as the Pingora gateway.
    pub fn reload(
        &self,
        config: crate::Config,
    ) -> Result<super::ReloadOutcome, super::ReloadError> {
        self.live.reload(config)
    }

    /// Whether `path` is one of the bridge's endpoints (an application routes these here).
    pub fn handles(path: &str) -> bool {
        Endpoint::from_path(path).is_some()
    }

    /// The upstream client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The upstream client, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The upstream client, consuming the bridge.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The future of a [`Salesforce`] response: answered at once (health, models, refusals) or after
/// awaiting the body and the upstream.
pub struct ResponseFuture {
    state: State,
}

// The ready variant holds a whole response inline: boxing it would allocate on every
// `/health` and refusal to save a move of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
enum State {
    Ready(Option<Response<BridgeBody>>),
    Waiting(Pin<Box<dyn Future<Output = Response<BridgeBody>> + Send + 'static>>),
}

impl ResponseFuture {
    fn ready(response: Response<BridgeBody>) -> Self {
        Self {
            state: State::Ready(Some(response)),
        }
    }

    fn waiting(future: impl Future<Output = Response<BridgeBody>> + Send + 'static) -> Self {
        Self {
            state: State::Waiting(Box::pin(future)),
        }
    }
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BridgeBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(response) => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                // Polled again after completion: a caller bug, answered rather than panicking.
                plain_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "application/json",
                    Bytes::new(),
                )
            }))),
            State::Waiting(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl<S, B> Service<Request<B>> for Salesforce<S>
where
    S: UpstreamService,
    B: RequestBody,
{
    type Response = Response<BridgeBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The upstream is called after awaiting the body and a token, on a clone driven with
        // `oneshot` (which polls its readiness then), so there is nothing to reserve here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let request_id = request_id(request.headers());
        let Some(endpoint) = Endpoint::from_path(request.uri().path()) else {
            let path: String = request.uri().path().chars().take(MAX_PATH_CHARS).collect();
            let failure = BridgeError::NotFound(path).failure();
            let body = OpenAiErrors.error_json(&failure);
            return ResponseFuture::ready(json_response(failure.status, body, &request_id));
        };
        self.serve(endpoint, endpoint.row(), request, started, request_id)
    }
}

impl<S> Salesforce<S>
where
    S: UpstreamService,
{
    /// Answers `request` as `row` of the endpoint table says, recorded as `endpoint`: the
    /// method, then the key unless the row is open, then the row's handler.
    pub(crate) fn serve<B: RequestBody>(
        &self,
        endpoint: Endpoint,
        row: Row,
        request: Request<B>,
        started: Instant,
        request_id: HeaderValue,
    ) -> ResponseFuture {
        let span = tracing::info_span!(
            "sfbridge.request",
            request_id = ?request_id,
            endpoint = row.label,
            model = tracing::field::Empty,
            caller = tracing::field::Empty,
            surface = tracing::field::Empty,
            upstream_request_id = tracing::field::Empty,
            status = tracing::field::Empty,
            total_ms = tracing::field::Empty,
            upstream_ms = tracing::field::Empty,
        );
        // The conf this request is served with, to its end, whatever reloads come meanwhile.
        let shared = &self.live.snapshot();
        let mut finisher = Finisher::new(&shared.metrics, endpoint, started, span);
        let anthropic = request.headers().contains_key(ANTHROPIC_VERSION);
        let errors: &'static dyn ErrorFormat = match row.handler {
            Handler::Front(front) => front.errors(),
            Handler::CountTokens => &AnthropicErrors,
            Handler::Models if anthropic => &AnthropicErrors,
            Handler::Models
            | Handler::Health
            | Handler::Ready
            | Handler::Metrics
            | Handler::Performance => &OpenAiErrors,
        };

        if request.method() != row.method {
            let allowed = HeaderValue::from_str(row.method.as_str())
                .unwrap_or(HeaderValue::from_static("GET"));
            let mut response = error_response(
                finisher,
                BridgeError::MethodNotAllowed(endpoint),
                &request_id,
                errors,
            );
            response.headers_mut().insert(ALLOW, allowed);
            return ResponseFuture::ready(unread(request, response));
        }
        if row.access == Access::Key {
            let Some(caller) = shared.callers.identify(request.headers()) else {
                let response =
                    error_response(finisher, BridgeError::Unauthorized, &request_id, errors);
                return ResponseFuture::ready(unread(request, response));
            };
            finisher.set_caller(caller.clone());
            // Before the body is read: a caller over its limit costs no more than its head.
            if let Err(over) = caller.limits().admit_request() {
                let caller = caller.name().into();
                let error = BridgeError::RateLimited { caller, over };
                let response = error_response(finisher, error, &request_id, errors);
                return ResponseFuture::ready(unread(request, response));
            }
        }

        match row.handler {
            Handler::Front(front) => {
                let span = finisher.span().clone();
                let future = generate::generate(
                    shared.clone(),
                    self.inner.clone(),
                    request,
                    front,
                    finisher,
                    request_id,
                );
                ResponseFuture::waiting(future.instrument(span))
            }
            Handler::Ready => {
                let shared = shared.clone();
                let span = finisher.span().clone();
                ResponseFuture::waiting(readiness(shared, finisher, request_id).instrument(span))
            }
            Handler::Health => {
                let response = json_response(StatusCode::OK, HEALTHY, &request_id);
                ResponseFuture::ready(finished(finisher, response))
            }
            Handler::Models => {
                let body = if anthropic {
                    shared.anthropic_models_body.clone()
                } else {
                    shared.models_body.clone()
                };
                let response = json_response(StatusCode::OK, body, &request_id);
                ResponseFuture::ready(finished(finisher, response))
            }
            Handler::CountTokens => {
                let error = BridgeError::TokenCountingUnavailable;
                let response = error_response(finisher, error, &request_id, errors);
                ResponseFuture::ready(unread(request, response))
            }
            Handler::Metrics => {
                let mut response = plain_response(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    shared.metrics.render(),
                );
                set_request_id(&mut response, &request_id);
                ResponseFuture::ready(finished(finisher, response))
            }
            Handler::Performance => {
                let response = match serde_json::to_vec(&shared.metrics.performance()) {
                    Ok(body) => {
                        finished(finisher, json_response(StatusCode::OK, body, &request_id))
                    }
                    Err(err) => {
                        error_response(finisher, BridgeError::Encode(err), &request_id, errors)
                    }
                };
                ResponseFuture::ready(response)
            }
        }
    }
}

/// `response`, given before `request`'s body was read: the body is set aside, and the connection
/// closes when the client still waits for `100 Continue` (see `request_body::set_aside`).
pub(crate) fn unread<B: RequestBody>(
    request: Request<B>,
    mut response: Response<BridgeBody>,
) -> Response<BridgeBody> {
    if request_body::set_aside(request) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The caller's `x-request-id` when it is short and printable, else a new one. Also used by the
/// Pingora mount for the answers it gives itself, so that every answer carries one.
pub(crate) fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|id| {
            let id = id.as_bytes();
            !id.is_empty() && id.len() <= 128 && id.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let id = format!("{:032x}", fastrand::u128(..));
            HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"))
        })
}

/// The body of `GET /health`.
const HEALTHY: &[u8] = br#"{"status":"ok"}"#;

/// Records a response that needs no error handling.
fn finished(finisher: Finisher, response: Response<BridgeBody>) -> Response<BridgeBody> {
    finisher.finish(response.status());
    response
}

/// `GET /ready`: whether a token can be had, and why not.
async fn readiness(
    shared: Arc<Shared>,
    finisher: Finisher,
    request_id: HeaderValue,
) -> Response<BridgeBody> {
    let reason = match shared.tokens.readiness() {
        Readiness::Ready => None,
        Readiness::NotReady { .. } => shared.tokens.get().await.err().map(|err| err.to_string()),
    };
    let (status, body) = match reason {
        None => (StatusCode::OK, serde_json::json!({"status": "ready"})),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not_ready", "reason": reason}),
        ),
    };
    finisher.finish(status);
    json_response(status, body.to_string(), &request_id)
}

fn set_request_id(response: &mut Response<BridgeBody>, request_id: &HeaderValue) {
    response
        .headers_mut()
        .insert(REQUEST_ID, request_id.clone());
}

/// A complete body with its type and length.
pub(crate) fn plain_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<BridgeBody> {
    let body = body.into();
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(BridgeBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, length);
    response
}

/// A JSON response carrying the request id.
pub(crate) fn json_response(
    status: StatusCode,
    body: impl Into<Bytes>,
    request_id: &HeaderValue,
) -> Response<BridgeBody> {
    let mut response = plain_response(status, "application/json", body);
    set_request_id(&mut response, request_id);
    response
}

/// The error response for `failed` in the words of `errors`, recorded and logged once.
pub(crate) fn error_response(
    finisher: Finisher,
    failed: impl Into<Failed>,
    request_id: &HeaderValue,
    errors: &dyn ErrorFormat,
) -> Response<BridgeBody> {
    let Failed { error, upstream_id } = failed.into();
    let failure = error.failure();
    finisher.fail(failure.status, &error);
    let mut response = json_response(failure.status, errors.error_json(&failure), request_id);
    if let Some(retry_after) = failure.retry_after {
        response.headers_mut().insert(RETRY_AFTER, retry_after);
    }
    set_upstream_request_id(&mut response, upstream_id);
    response
}

/// Passes the Models API's `x-request-id` on, when it sent one.
pub(crate) fn set_upstream_request_id(
    response: &mut Response<BridgeBody>,
    upstream_id: Option<HeaderValue>,
) {
    if let Some(upstream_id) = upstream_id {
        response
            .headers_mut()
            .insert(UPSTREAM_REQUEST_ID, upstream_id);
    }
}
