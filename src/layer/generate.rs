//! The generation flow of every client API: read the body, let the front parse it, route the
//! model, let the route's surface build the call, make the exchange (token, retries, the 401
//! resend), let the surface read the answer and the front render it, as JSON or as an event
//! stream.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

use super::body::{BridgeBody, PendingAnswer, Started};
use super::error::{BridgeError, Failed};
use super::finish::{Finisher, UpstreamTime, UsageTo};
use super::request_body;
use super::service::{error_response, json_response, set_upstream_request_id, unread, REQUEST_ID};
use super::stream::{Live, Translated, Waits};
use super::{RouteTarget, Shared};
use crate::core::{Answer, Delivery, Streaming};
use crate::front::{AnswerCtx, Front};
use crate::metrics::Metrics;
use crate::openai::depth;
use crate::openai::request::report_ignored;
use crate::surface::einstein::ExtractError;
use crate::surface::native::{self, NativeApi};
use crate::surface::stream::Relay;
use crate::surface::Reading;
use crate::upstream::{
    AttemptObserver, AttemptOutcome, ExchangeError, Exchanged, Outgoing, Receive, RequestBody,
    UpstreamBody, UpstreamService, MAX_ANSWER_BYTES,
};

/// The most bytes one upstream stream may deliver: a stream that never ends is cut here, or at
/// the request's deadline, whichever comes first.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// The caller's Anthropic beta flags, which a Bedrock pass-through moves into the body.
const ANTHROPIC_BETA: &str = "anthropic-beta";

/// Lists the request parameters that were accepted but not forwarded.
pub(crate) const IGNORED_PARAMS: &str = "x-sfbridge-ignored-params";

/// A request read, parsed, routed and translated, ready for the upstream.
struct Prepared {
    route: Arc<RouteTarget>,
    body: Bytes,
    reading: Reading,
    delivery: Delivery,
    ignored: Option<HeaderValue>,
    /// A pass-through: the answer is the surface's own, with the caller's model name in it.
    native: bool,
}

impl Prepared {
    /// What the answer needs besides the upstream's.
    fn answer_ctx<'a>(&'a self, fallback_id: &'a str, created: u64) -> AnswerCtx<'a> {
        AnswerCtx {
            fallback_id,
            created,
            model: &self.route.model,
            delivery: self.delivery,
        }
    }
}

/// Serves one request of a client API.
pub(crate) async fn generate<S, B>(
    shared: Arc<Shared>,
    inner: S,
    request: Request<B>,
    front: &'static dyn Front,
    mut finisher: Finisher,
    request_id: HeaderValue,
) -> Response<BridgeBody>
where
    S: UpstreamService,
    B: RequestBody,
{
    let errors = front.errors();
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > shared.max_request_bytes as u64) {
        let error = BridgeError::PayloadTooLarge(shared.max_request_bytes);
        return unread(
            request,
            error_response(finisher, error, &request_id, errors),
        );
    }
    let prepared = match prepare(&shared, request, front).await {
        Ok(prepared) => prepared,
        Err(error) => {
            if let BridgeError::ModelNotFound { model, .. } = &error {
                // Logged as asked; the metrics fold unconfigured names into `unknown`.
                finisher.set_model(model.as_str().into());
            }
            return error_response(finisher, error, &request_id, errors);
        }
    };
    finisher.set_model(prepared.route.model.clone());
    finisher.set_surface(prepared.route.surface.kind().as_str());
    let caller = finisher
        .caller()
        .cloned()
        .unwrap_or_else(|| shared.callers.anonymous().clone());
    // Checked before the upstream call, so a caller out of tokens costs Salesforce nothing.
    if let Err(over) = caller.limits().admit_tokens() {
        let error = BridgeError::RateLimited {
            caller: caller.name().into(),
            over,
        };
        return error_response(finisher, error, &request_id, errors);
    }
    let usage_to = UsageTo::new(&shared.metrics, prepared.route.model.clone(), caller);
    let upstream_time = finisher.upstream_time();
    // The deadline counts from the request's arrival: reading its body already spent some of it.
    let started = finisher.started();
    let fallback_id = format!(
        "{}{}",
        front.id_prefix(),
        String::from_utf8_lossy(request_id.as_bytes())
    );
    let created = unix_now();

    if prepared.delivery.stream.is_none() {
        let rendered = async {
            let answer = exchange(&shared, &inner, &prepared, &upstream_time, started).await?;
            let json = if prepared.native {
                native_render(&usage_to, &prepared, &answer)
            } else {
                let ctx = prepared.answer_ctx(&fallback_id, created);
                render(&usage_to, &prepared, &answer, |answer| {
                    front.answer_json(&answer, &ctx)
                })
            };
            json.map(|json| (json, answer.upstream_id))
        }
        .await;
        return match rendered {
            Ok((json, upstream_id)) => {
                let mut response = json_response(StatusCode::OK, json, &request_id);
                add_headers(&mut response, prepared.ignored, upstream_id);
                finisher.finish(StatusCode::OK);
                response
            }
            Err(failed) => error_response(finisher, failed, &request_id, errors),
        };
    }

    let shared_for_work = shared.clone();
    let keepalive = shared.keepalive;
    let ignored = prepared.ignored.clone();
    let relay = match live_relay(front, &prepared, &fallback_id, created) {
        Ok(relay) => relay,
        Err(error) => return error_response(finisher, error, &request_id, errors),
    };
    let work = async move {
        let shared = shared_for_work;
        let Some(relay) = relay else {
            let answer = exchange(&shared, &inner, &prepared, &upstream_time, started).await?;
            let ctx = prepared.answer_ctx(&fallback_id, created);
            return render(&usage_to, &prepared, &answer, |answer| {
                front.answer_events(&answer, &ctx)
            })
            .map(Started::Events);
        };
        let (body, upstream_id) = exchange_head(
            &shared,
            &inner,
            &prepared,
            &upstream_time,
            started,
            Receive::Streamed,
        )
        .await?;
        let dispatcher = &shared.dispatcher;
        let waits = Waits {
            idle: dispatcher.attempt_timeout(),
            deadline: started
                .checked_add(dispatcher.deadline())
                .unwrap_or_else(far_future),
            keepalive,
            deadline_limit: dispatcher.deadline(),
        };
        let mut live = Live::new(body.limit(MAX_STREAM_BYTES), relay, waits, usage_to);
        let first = live
            .first_bytes()
            .await
            .map_err(|error| error.after_upstream(upstream_id))?;
        Ok(Started::Live(Box::new(live), first))
    };
    let mut work: PendingAnswer = Box::pin(work.instrument(finisher.span().clone()));
    // Most answers come within seconds: waiting one keep-alive period first lets their errors
    // keep their real status (a 429 stays a 429) instead of becoming an event in a 200 stream.
    let body = match tokio::time::timeout(keepalive, &mut work).await {
        Ok(Ok(started)) => BridgeBody::started(started, finisher, errors),
        Ok(Err(failed)) => return error_response(finisher, failed, &request_id, errors),
        Err(_) => BridgeBody::waiting(work, keepalive, finisher, errors),
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

/// Reads the body under the size limit, deadline and budget, lets the front parse it, routes the
/// model and lets the route's surface translate the request. (A declared length over the limit
/// was answered before.)
async fn prepare<B: RequestBody>(
    shared: &Shared,
    request: Request<B>,
    front: &dyn Front,
) -> Result<Prepared, BridgeError> {
    // The hold on the body budget ends with this function, when the caller's body is dropped.
    let anthropic_beta = request.headers().get(ANTHROPIC_BETA).cloned();
    let (body, _hold) = request_body::read(
        request.into_body(),
        shared.max_request_bytes,
        shared.body_timeout,
        &shared.body_budget,
    )
    .await?;
    // Before parsing: serde_json skips unread values without its depth limit.
    if let Some(at) = depth::too_deep(&body, depth::MAX_DEPTH) {
        return Err(BridgeError::TooDeep(at));
    }
    if let Some(api) = front.native() {
        let beta = anthropic_beta
            .as_ref()
            .and_then(|value| value.to_str().ok());
        if let Some(prepared) = prepare_native(shared, api, &body, beta)? {
            return Ok(prepared);
        }
    }
    let request = front.parse(&body)?;
    let route = shared.route(&request.model)?;
    if request.task.kind() != route.kind {
        return Err(BridgeError::WrongKind {
            route: route.model.clone(),
            kind: route.kind,
            wanted: request.task.kind(),
        });
    }
    // The caller's body is a close upper bound for the translated one.
    let call = route
        .surface
        .call(&request.task, request.delivery.stream.is_some(), body.len())
        .map_err(|error| BridgeError::Unsupported {
            route: route.model.clone(),
            surface: route.surface.kind().as_str(),
            error,
        })?;
    let mut ignored = request.ignored;
    for name in call.dropped {
        report_ignored(&mut ignored, name.into());
    }
    Ok(Prepared {
        body: Bytes::from(call.body),
        reading: call.reading,
        delivery: request.delivery,
        ignored: ignored_header(&ignored),
        route,
        native: false,
    })
}

/// The pass-through of a caller speaking `api`, when its route's surface speaks it too; `None`
/// when the request must go through the core instead.
fn prepare_native(
    shared: &Shared,
    api: NativeApi,
    body: &Bytes,
    anthropic_beta: Option<&str>,
) -> Result<Option<Prepared>, BridgeError> {
    let head = native::peek(body).map_err(|error| BridgeError::invalid_json(&error))?;
    let route = shared.route(&head.model)?;
    let Some(call) = route.surface.native_call(api, body, &head, anthropic_beta) else {
        return Ok(None);
    };
    let call = call.map_err(|error| BridgeError::Unsupported {
        route: route.model.clone(),
        surface: route.surface.kind().as_str(),
        error,
    })?;
    Ok(Some(Prepared {
        body: Bytes::from(call.body),
        reading: call.reading,
        delivery: Delivery {
            stream: head.stream.then_some(Streaming::default()),
            ..Delivery::WHOLE
        },
        ignored: None,
        route,
        native: true,
    }))
}

fn ignored_header(ignored: &[std::borrow::Cow<'_, str>]) -> Option<HeaderValue> {
    if ignored.is_empty() {
        return None;
    }
    HeaderValue::from_str(&ignored.join(", ")).ok()
}

/// Records each attempt in the metrics and the request's log, and the time spent on Salesforce.
struct Attempts<'a> {
    metrics: &'a Metrics,
    upstream_time: &'a UpstreamTime,
}

impl AttemptObserver for Attempts<'_> {
    fn attempt(&self, outcome: AttemptOutcome, elapsed: Duration) {
        self.metrics.upstream_attempt(outcome.as_str());
        self.metrics.upstream_duration(elapsed);
        tracing::debug!(
            outcome = outcome.as_str(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "upstream attempt"
        );
    }

    fn retry(&self, outcome: AttemptOutcome) {
        self.metrics.upstream_retry(outcome.as_str());
    }

    fn waited(&self, elapsed: Duration) {
        self.upstream_time.add(elapsed);
    }
}

/// The relay of a stream the route's surface streams for real, rendered by `front`; `None` when
/// the surface answers whole.
fn live_relay(
    front: &dyn Front,
    prepared: &Prepared,
    fallback_id: &str,
    created: u64,
) -> Result<Option<Box<dyn Relay>>, BridgeError> {
    if prepared.native {
        return prepared
            .reading
            .native_relay(&prepared.route.model)
            .map(Some)
            .ok_or(BridgeError::AnswerMismatch);
    }
    let Some((unframe, reader)) = prepared.reading.stream() else {
        return Ok(None);
    };
    let renderer = front.event_renderer(&prepared.answer_ctx(fallback_id, created))?;
    Ok(Some(Box::new(Translated::new(unframe, reader, renderer))))
}

/// An instant no deadline reaches, for a deadline too far off to represent.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// A success answer of the Models API, read whole.
struct Success {
    body: Bytes,
    upstream_id: Option<HeaderValue>,
}

/// Calls the Models API and reads its final answer whole: a success, or the failure its error
/// answer says, read by the route's surface. The deadline counts from `started`, the request's
/// arrival.
async fn exchange<S: UpstreamService>(
    shared: &Shared,
    inner: &S,
    prepared: &Prepared,
    upstream_time: &UpstreamTime,
    started: Instant,
) -> Result<Success, Failed> {
    let (body, upstream_id) = exchange_head(
        shared,
        inner,
        prepared,
        upstream_time,
        started,
        Receive::Whole,
    )
    .await?;
    // Read whole within the attempt already: this only unwraps it.
    let body = body.read_capped(MAX_ANSWER_BYTES).await.map_err(|error| {
        BridgeError::from(ExchangeError::Upstream(error)).after_upstream(upstream_id.clone())
    })?;
    Ok(Success { body, upstream_id })
}

/// Calls the Models API and hands over a success answer's body as `receive` says, or the
/// failure its error answer says, read by the route's surface.
async fn exchange_head<S: UpstreamService>(
    shared: &Shared,
    inner: &S,
    prepared: &Prepared,
    upstream_time: &UpstreamTime,
    started: Instant,
    receive: Receive,
) -> Result<(UpstreamBody, Option<HeaderValue>), Failed> {
    let outgoing = Outgoing {
        target: prepared.route.surface.target(prepared.reading),
        body: prepared.body.clone(),
    };
    let observer = Attempts {
        metrics: &shared.metrics,
        upstream_time,
    };
    let Exchanged {
        status,
        headers,
        body,
    } = shared
        .dispatcher
        .exchange(
            inner,
            &shared.tokens,
            &outgoing,
            receive,
            started,
            &observer,
        )
        .await
        .map_err(BridgeError::from)?;
    let upstream_id = headers.get(REQUEST_ID).cloned();
    if let Some(id) = upstream_id.as_ref().and_then(|id| id.to_str().ok()) {
        tracing::Span::current().record("upstream_request_id", id);
    }
    if !status.is_success() {
        // Error answers are read whole within the attempt: this only unwraps it.
        let body = body.read_capped(MAX_ANSWER_BYTES).await.map_err(|error| {
            BridgeError::from(ExchangeError::Upstream(error)).after_upstream(upstream_id.clone())
        })?;
        let mut failure = prepared
            .reading
            .failure(status, &body, &prepared.route.salesforce_model);
        failure.retry_after = headers.get(RETRY_AFTER).cloned();
        return Err(BridgeError::UpstreamStatus(Box::new(failure)).after_upstream(upstream_id));
    }
    Ok((body, upstream_id))
}

/// Lets the surface read the answer and `render` it, counting the parse path that served and
/// the tokens used.
fn render<R>(
    usage_to: &UsageTo,
    prepared: &Prepared,
    success: &Success,
    to_body: impl FnOnce(Answer<'_>) -> Result<R, BridgeError>,
) -> Result<R, Failed> {
    let metrics = usage_to.metrics();
    let read = prepared.reading.answer(&success.body, |answer| {
        let usage = match &answer {
            Answer::Generation(generation) => generation.usage,
            Answer::Embeddings(embeddings) => embeddings.usage,
        };
        if let Some(usage) = usage {
            usage_to.record(&usage);
        }
        to_body(answer)
    });
    let rendered = match read {
        Ok((rendered, path)) => {
            metrics.extractor_path(path);
            rendered
        }
        Err(error) => {
            metrics.extractor_path("none");
            Err(error.into())
        }
    };
    rendered.map_err(|error| error.after_upstream(success.upstream_id.clone()))
}

/// A pass-through's whole answer, with the caller's model name in it.
fn native_render(
    usage_to: &UsageTo,
    prepared: &Prepared,
    success: &Success,
) -> Result<Vec<u8>, Failed> {
    let metrics = usage_to.metrics();
    let model = &prepared.route.model;
    let answer = prepared
        .reading
        .native_answer(&success.body, model)
        .unwrap_or(Err(ExtractError::NoText));
    match answer {
        Ok((json, usage)) => {
            metrics.extractor_path("native");
            if let Some(usage) = usage {
                usage_to.record(&usage);
            }
            Ok(json)
        }
        Err(error) => {
            metrics.extractor_path("none");
            Err(BridgeError::from(error).after_upstream(success.upstream_id.clone()))
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
