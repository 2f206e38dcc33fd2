//! Serving a Tower service (an axum `Router`, with or without the bridge) to clients, with the
//! timeouts a client-facing server needs and a graceful shutdown.
//!
//! `axum::serve` installs no hyper timer, so hyper's header read timeout is inert there and a
//! client that trickles its headers holds a connection forever. [`serve`] uses hyper's HTTP/1
//! connection builder with a Tokio timer and `[server] header_read_timeout_secs`, sets
//! `TCP_NODELAY`, closes a connection whose client stops reading once one write has waited
//! `[server] write_timeout_secs` (hyper has no write timeout), and on shutdown stops accepting,
//! lets in-flight requests finish for up to
//! `[server] shutdown_grace_secs`, then closes the connections still open and returns. Request *bodies* are bounded by the bridge itself
//! (`body_read_timeout_secs`); wrap the application's own routes in tower-http's
//! `RequestBodyTimeoutLayer` for theirs.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use sf_models_bridge::{server, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_path("conf/demo.toml")?;
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! server::serve(listener, app, &config.server, server::shutdown_signal()).await;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::config::ServerConfig;

/// How long to pause accepting after an accept error (such as running out of file descriptors),
/// so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight requests for at
/// most `config.shutdown_grace`, then closes the connections still open (cancelling their
/// requests) and returns.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    // Every connection's task, so that those still open after the grace period can be closed:
    // a task merely spawned would outlive `serve`, and keep its request running.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow for the life of the server.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let connection = builder.serve_connection(
            TokioIo::new(WriteTimeout::new(stream, config.write_timeout)),
            TowerToHyperService::new(service.clone()),
        );
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: draining in-flight requests");
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "grace period over: closing the remaining connections"
        );
    }
    // Aborting a task drops its connection (the socket closes) and its request's future (the
    // upstream call is cancelled and the request recorded as abandoned).
    connections.shutdown().await;
}

/// A connection whose writes fail with [`io::ErrorKind::TimedOut`] once one has waited
/// `limit` for the client to read: hyper has no write timeout of its own, so a client that stops
/// reading would otherwise hold its connection, and its finished answer, forever. The limit is the
/// idle time of one blocked write, so a slow reader that keeps reading is never cut.
struct WriteTimeout<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first finds the socket full; disarmed by any write that progresses.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            blocked: None,
        }
    }

    /// What a pending write becomes: still pending, or `TimedOut` once it has waited too long.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let blocked = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match blocked.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the answer within server.write_timeout_secs",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `polled` as a write's result: progress disarms the timer, waiting arms it.
    fn outcome<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.blocked = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.outcome(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.outcome(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.outcome(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.outcome(cx, polled)
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
