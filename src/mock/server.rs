//! The routes, and a hand-rolled accept loop that can close a connection without answering.

use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::errors::ApiError;
use super::state::MockState;
use super::{admin, bedrock, models, responses, token};

/// Bodies up to this size are read; the real API's own caps are lower, so nothing faithful is cut.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub(crate) fn router(state: MockState) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token::issue))
        .route(
            "/einstein/platform/v1/models/{model}/{operation}",
            any(models::call),
        )
        .route("/einstein/platform/v1/feedback", post(models::feedback))
        .route("/ai/gpt/v1/responses", any(responses::call))
        .route("/ai/gpt/v1/model/{model}/{action}", any(bedrock::call))
        .route("/__mock/counters", get(admin::counters))
        .route("/__mock/faults", post(admin::inject).delete(admin::clear))
        .route("/__mock/token_faults", post(admin::inject_token))
        .route("/__mock/shape", post(admin::shape))
        .route("/__mock/stream_pace", post(admin::stream_pace))
        .route("/__mock/revoke", post(admin::revoke))
        .route("/__mock/reset", post(admin::reset))
        .fallback(|| async { ApiError::NotFound.into_response() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
struct CloseConnection;

/// What the connection's service returns for a [`CloseConnection`] response. Hyper drops a connection
/// whose service fails, without writing anything: exactly a server that died mid-request.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without a response, as injected")]
struct ConnectionClosed;

/// A response that closes the connection instead of being sent.
pub(crate) fn close_connection() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(CloseConnection);
    response
}

/// Serves `router` on `listener` until the task is aborted; aborting it also drops every connection.
pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: wait for some to be freed rather than spin.
                    tracing::warn!(%error, "mock: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow for the life of the server.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    // Without it, small answers wait on Nagle's algorithm: a ~40 ms floor under keep-alive.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "mock: cannot set TCP_NODELAY");
    }
    let service = service_fn(move |request: http::Request<Incoming>| {
        let router = router.clone();
        async move {
            let Ok(response) = router.oneshot(request).await;
            if response.extensions().get::<CloseConnection>().is_some() {
                Err(ConnectionClosed)
            } else {
                Ok(response)
            }
        }
    });
    if let Err(error) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "mock: connection ended");
    }
}
