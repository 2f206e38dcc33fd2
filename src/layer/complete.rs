//! The completion flow: read and translate the request, call the Models API (token, retries,
//! one resend after a 401), and answer as JSON or as an event stream.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use tokio::time::Instant;
use tracing::Instrument;

use super::body::{BridgeBody, PendingAnswer};
use super::error::{BridgeError, Failure};
use super::finish::{Finisher, UpstreamTime};
use super::request_body;
use super::service::{error_response, json_response, set_upstream_request_id, REQUEST_ID};
use super::{RouteTarget, Shared};
use crate::metrics::Metrics;
use crate::openai::depth;
use crate::openai::{ChatCompletionRequest, CompletionRequest, StreamOptions};
use crate::salesforce::{self, Extracted, Operation, UpstreamFailure};
use crate::stream::{SseEvents, StreamKind, StreamedAnswer};
use crate::translate::{self, ResponseCtx};
use crate::upstream::{AttemptObserver, AttemptOutcome, RequestBody, UpstreamService};

/// Lists the request parameters that were accepted but not forwarded.
pub(crate) const IGNORED_PARAMS: &str = "x-sfbridge-ignored-params";

/// A request read, routed and translated, ready for the upstream.
struct Prepared {
    route: Arc<RouteTarget>,
    operation: Operation,
    upstream_body: Bytes,
    stream: Option<StreamOptions>,
    ignored: Option<HeaderValue>,
}

/// A success answer of the Models API.
struct Success {
    body: Bytes,
    request_id: Option<HeaderValue>,
}

pub(crate) async fn complete<S, B>(
    shared: Arc<Shared>,
    inner: S,
    request: Request<B>,
    operation: Operation,
    mut finisher: Finisher,
    request_id: HeaderValue,
) -> Response<BridgeBody>
where
    S: UpstreamService,
    B: RequestBody,
{
    let prepared = match prepare(&shared, request, operation).await {
        Ok(prepared) => prepared,
        Err(error) => {
            if let BridgeError::ModelNotFound { model, .. } = &error {
                // Logged as asked; the metrics fold unconfigured names into `unknown`.
                finisher.set_model(model.as_str().into());
            }
            return error_response(finisher, error, &request_id);
        }
    };
    finisher.set_model(prepared.route.model.clone());
    let upstream_time = finisher.upstream_time();
    let ctx = AnswerCtx {
        fallback_id: fallback_id(operation, &request_id),
        created: unix_now(),
    };

    let Some(options) = prepared.stream else {
        let result = exchange(&shared, &inner, &prepared, &upstream_time).await;
        let rendered = result.and_then(|success| {
            match render_json(&shared.metrics, &success.body, &prepared, &ctx) {
                Ok(json) => Ok((json, success.request_id)),
                Err(error) => Err(error.after_upstream(success.request_id)),
            }
        });
        return match rendered {
            Ok((json, upstream_id)) => {
                let mut response = json_response(StatusCode::OK, json, &request_id);
                add_headers(&mut response, prepared.ignored, upstream_id);
                finisher.finish(StatusCode::OK);
                response
            }
            Err(error) => error_response(finisher, error, &request_id),
        };
    };

    let shared_for_work = shared.clone();
    let keepalive = shared.keepalive;
    let ignored = prepared.ignored.clone();
    let mut work: PendingAnswer = Box::pin(
        async move {
            let success = exchange(&shared_for_work, &inner, &prepared, &upstream_time).await?;
            streamed_answer(
                &shared_for_work.metrics,
                &success.body,
                &prepared,
                ctx,
                options,
            )
            .map_err(|error| error.after_upstream(success.request_id))
        }
        .instrument(finisher.span().clone()),
    );
    // Most answers come within seconds: waiting one keep-alive period first lets their errors
    // keep their real status (a 429 stays a 429) instead of becoming an event in a 200 stream.
    let body = match tokio::time::timeout(keepalive, &mut work).await {
        Ok(Ok(answer)) => {
            finisher.finish(StatusCode::OK);
            BridgeBody::events(SseEvents::new(answer))
        }
        Ok(Err(error)) => return error_response(finisher, error, &request_id),
        Err(_) => BridgeBody::waiting(work, keepalive, finisher),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-like proxies in front not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(REQUEST_ID, request_id);
    add_headers(&mut response, ignored, None);
    response
}

fn add_headers(
    response: &mut Response<BridgeBody>,
    ignored: Option<HeaderValue>,
    upstream_id: Option<HeaderValue>,
) {
    if let Some(ignored) = ignored {
        response.headers_mut().insert(IGNORED_PARAMS, ignored);
    }
    set_upstream_request_id(response, upstream_id);
}

/// Reads the body under the size limit and deadline, parses it, routes the model and
/// translates the request.
async fn prepare<B>(
    shared: &Shared,
    request: Request<B>,
    operation: Operation,
) -> Result<Prepared, BridgeError>
where
    B: RequestBody,
{
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > shared.max_request_bytes as u64) {
        request_body::linger(request.into_body());
        return Err(BridgeError::PayloadTooLarge(shared.max_request_bytes));
    }
    let body = request_body::read(
        request.into_body(),
        shared.max_request_bytes,
        shared.body_timeout,
    )
    .await?;
    // Before parsing: serde_json skips unread values without its depth limit.
    if let Some(at) = depth::too_deep(&body, depth::MAX_DEPTH) {
        return Err(BridgeError::TooDeep(at));
    }

    let (route, upstream_body, stream, ignored) = match operation {
        Operation::Chat => translate_as::<ChatCompletionRequest<'_>>(shared, &body)?,
        Operation::Text => translate_as::<CompletionRequest<'_>>(shared, &body)?,
    };
    Ok(Prepared {
        route,
        operation,
        upstream_body: Bytes::from(upstream_body),
        stream,
        ignored,
    })
}

/// What the flow needs of an OpenAI request, whatever its endpoint.
trait FrontRequest<'de>: serde::Deserialize<'de> {
    fn model(&self) -> &str;
    fn stream(&self) -> Option<StreamOptions>;
    fn ignored(&self) -> &[std::borrow::Cow<'de, str>];
    /// The translated Models API body; `size_hint` sizes its buffer.
    fn upstream_body(&self, size_hint: usize) -> Result<Vec<u8>, BridgeError>;
}

impl<'de> FrontRequest<'de> for ChatCompletionRequest<'de> {
    fn model(&self) -> &str {
        &self.model
    }
    fn stream(&self) -> Option<StreamOptions> {
        self.stream.then_some(self.stream_options)
    }
    fn ignored(&self) -> &[std::borrow::Cow<'de, str>] {
        &self.ignored
    }
    fn upstream_body(&self, size_hint: usize) -> Result<Vec<u8>, BridgeError> {
        encode(&translate::chat_request(self)?, size_hint)
    }
}

impl<'de> FrontRequest<'de> for CompletionRequest<'de> {
    fn model(&self) -> &str {
        &self.model
    }
    fn stream(&self) -> Option<StreamOptions> {
        self.stream.then_some(self.stream_options)
    }
    fn ignored(&self) -> &[std::borrow::Cow<'de, str>] {
        &self.ignored
    }
    fn upstream_body(&self, size_hint: usize) -> Result<Vec<u8>, BridgeError> {
        encode(&translate::completion_request(self)?, size_hint)
    }
}

type Translated = (
    Arc<RouteTarget>,
    Vec<u8>,
    Option<StreamOptions>,
    Option<HeaderValue>,
);

/// Parses `body` as an `R` (once, borrowing its strings), routes its model and translates it.
fn translate_as<'de, R: FrontRequest<'de>>(
    shared: &Shared,
    body: &'de [u8],
) -> Result<Translated, BridgeError> {
    let request: R =
        serde_json::from_slice(body).map_err(|error| BridgeError::invalid_json(&error))?;
    let route = shared.route(request.model())?;
    // The caller's body is a close upper bound for the translated one.
    let upstream_body = request.upstream_body(body.len())?;
    Ok((
        route,
        upstream_body,
        request.stream(),
        ignored_header(request.ignored()),
    ))
}

/// Serializes the Models API request into a buffer the size of the caller's body, which it
/// rarely exceeds, instead of growing one from empty.
fn encode(request: &impl serde::Serialize, size_hint: usize) -> Result<Vec<u8>, BridgeError> {
    let mut upstream_body = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut upstream_body, request).map_err(BridgeError::Encode)?;
    Ok(upstream_body)
}

fn ignored_header(ignored: &[std::borrow::Cow<'_, str>]) -> Option<HeaderValue> {
    if ignored.is_empty() {
        return None;
    }
    HeaderValue::from_str(&ignored.join(", ")).ok()
}

/// Records each attempt in the metrics and the request's log.
struct Attempts<'a>(&'a Metrics);

impl AttemptObserver for Attempts<'_> {
    fn attempt(&self, outcome: AttemptOutcome, elapsed: Duration) {
        self.0.upstream_attempt(outcome.as_str());
        self.0.upstream_duration(elapsed);
        tracing::debug!(
            outcome = outcome.as_str(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "upstream attempt"
        );
    }

    fn retry(&self, outcome: AttemptOutcome) {
        self.0.upstream_retry(outcome.as_str());
    }
}

/// Calls the Models API: a cached token, the retry loop, and after a 401 one resend with a
/// freshly fetched token.
async fn exchange<S>(
    shared: &Shared,
    inner: &S,
    prepared: &Prepared,
    upstream_time: &UpstreamTime,
) -> Result<Success, Failure>
where
    S: UpstreamService,
{
    let started = Instant::now();
    let url = prepared.route.url(prepared.operation).clone();
    let parsed_url = prepared.route.parsed_url(prepared.operation);
    let observer = Attempts(&shared.metrics);
    let mut refreshed = false;
    let exchange = loop {
        let waited = Instant::now();
        let token = shared.tokens.get().await;
        upstream_time.add(waited.elapsed());
        let token = token.map_err(BridgeError::Token)?;
        let bearer = token
            .bearer_header()
            .cloned()
            .ok_or(BridgeError::UnusableToken)?;
        let body = prepared.upstream_body.clone();
        let make_request = || {
            let mut request = Request::new(body.clone());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = url.clone();
            let headers = request.headers_mut();
            headers.insert(AUTHORIZATION, bearer.clone());
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(
                salesforce::APP_CONTEXT_HEADER,
                HeaderValue::from_static(salesforce::APP_CONTEXT),
            );
            headers.insert(
                salesforce::CLIENT_FEATURE_HEADER,
                HeaderValue::from_static(salesforce::CLIENT_FEATURE),
            );
            if let Some(parsed) = parsed_url {
                request.extensions_mut().insert(parsed.clone());
            }
            request
        };
        let sent = Instant::now();
        let result = shared
            .dispatcher
            .send(inner, &make_request, started, &observer)
            .await;
        upstream_time.add(sent.elapsed());
        let exchange = result.map_err(BridgeError::Upstream)?;
        if exchange.response.status() == StatusCode::UNAUTHORIZED {
            if refreshed {
                shared.tokens.refused(&token);
            } else if shared.tokens.invalidate(&token) {
                // Expired or revoked: resend once with a new token. The resend retries the
                // 401'd attempt, so it is counted as a retry like the ones of the retry loop.
                observer.retry(AttemptOutcome::Unauthorized);
                refreshed = true;
                continue;
            }
        }
        break exchange;
    };

    let (parts, body) = exchange.response.into_parts();
    let request_id = parts.headers.get(REQUEST_ID).cloned();
    if let Some(id) = request_id.as_ref().and_then(|id| id.to_str().ok()) {
        tracing::Span::current().record("upstream_request_id", id);
    }
    if !parts.status.is_success() {
        let error = BridgeError::UpstreamStatus {
            failure: Box::new(UpstreamFailure::from_response(
                parts.status,
                &body,
                &prepared.route.salesforce_model,
            )),
            retry_after: parts.headers.get(http::header::RETRY_AFTER).cloned(),
        };
        return Err(error.after_upstream(request_id));
    }
    Ok(Success { body, request_id })
}

/// What every answer needs besides the upstream's: chosen here, on the I/O side.
#[derive(Clone)]
struct AnswerCtx {
    fallback_id: String,
    created: u64,
}

fn fallback_id(operation: Operation, request_id: &HeaderValue) -> String {
    let prefix = match operation {
        Operation::Chat => "chatcmpl-",
        Operation::Text => "cmpl-",
    };
    format!("{prefix}{}", String::from_utf8_lossy(request_id.as_bytes()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Parses and extracts once, counting the path that served and the tokens used.
fn extract_counted<'r>(
    metrics: &Metrics,
    response: &'r salesforce::ModelsResponse<'_>,
    prepared: &Prepared,
) -> Result<Extracted<'r>, BridgeError> {
    match salesforce::extract(response, prepared.operation) {
        Ok(answer) => {
            metrics.extractor_path(answer.path.as_str());
            if let Some(usage) = answer.usage {
                metrics.usage(
                    &prepared.route.model,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                );
            }
            Ok(answer)
        }
        Err(error) => {
            metrics.extractor_path("none");
            Err(error.into())
        }
    }
}

fn render_json(
    metrics: &Metrics,
    body: &[u8],
    prepared: &Prepared,
    ctx: &AnswerCtx,
) -> Result<Vec<u8>, BridgeError> {
    let response = salesforce::parse(body)?;
    let answer = extract_counted(metrics, &response, prepared)?;
    let ctx = ResponseCtx {
        fallback_id: &ctx.fallback_id,
        created: ctx.created,
        model: &prepared.route.model,
    };
    match prepared.operation {
        Operation::Chat => translate::chat_completion_json(&answer, &ctx),
        Operation::Text => translate::text_completion_json(&answer, &ctx),
    }
    .map_err(BridgeError::Encode)
}

fn streamed_answer(
    metrics: &Metrics,
    body: &[u8],
    prepared: &Prepared,
    ctx: AnswerCtx,
    options: StreamOptions,
) -> Result<StreamedAnswer, BridgeError> {
    let response = salesforce::parse(body)?;
    let answer = extract_counted(metrics, &response, prepared)?;
    Ok(StreamedAnswer {
        kind: match prepared.operation {
            Operation::Chat => StreamKind::Chat,
            Operation::Text => StreamKind::Text,
        },
        id: translate::usable_id(answer.id).map_or(ctx.fallback_id, str::to_owned),
        created: ctx.created,
        model: prepared.route.model.to_string(),
        text: answer.text.to_owned(),
        finish_reason: answer.finish_reason,
        usage: answer.usage,
        include_usage: options.include_usage,
    })
}
