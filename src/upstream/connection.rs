//! Upstream connections without a task of their own: each is driven by the request that holds
//! it, and kept between requests in a pool per Tokio runtime.
//!
//! hyper's pooled client gives every connection a task, and hands an answer's body over through a
//! channel of one chunk: each upstream chunk then costs a wake-up of that task, a wake-up of the
//! request's, and on a multi-thread runtime often a parked worker woken to steal one of them. Here
//! the request's own task reads the socket: everything that arrived in one read is decoded and
//! handed over within one poll, and the events it carries leave to the caller in one write.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{BoxError, UpstreamError};

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The most of an unfinished body read on to its end so that its connection can be kept.
const FINISH_LIMIT: usize = 64 * 1024;

/// What a request is sent with.
pub(super) type Outbound = Request<Full<Bytes>>;

/// Where a connection goes: the scheme and authority of the URIs sent on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Origin {
    /// The origin of `uri`; `None` unless it is absolute.
    pub(super) fn of(uri: &Uri) -> Option<Self> {
        Some(Self {
            scheme: uri.scheme()?.clone(),
            authority: uri.authority()?.clone(),
        })
    }
}

/// One HTTP/1.1 connection. hyper's `Connection` future does its reading and writing; nothing
/// spawns it: [`send`](Self::send) and the answer's body poll it.
pub(super) struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended. Boxed once, so that a connection moves cheaply
    /// between the pool and the answers read from it.
    driver: Option<Box<http1::Connection<Io, Full<Bytes>>>>,
    wakes: PollGuard,
}

/// Why a request got no answer on a connection.
pub(super) enum SendError {
    /// The connection gave the request back unwritten: it was closed, or closing.
    Unsent(Box<Outbound>, hyper::Error),
    /// The request was written, or may have been, and the connection broke.
    Lost(BoxError),
}

impl Connection {
    /// A connection over `io`, just opened.
    pub(super) async fn handshake(io: Io) -> Result<Self, UpstreamError> {
        let (sender, driver) = http1::handshake(io)
            .await
            .map_err(|error| UpstreamError::Connect(Box::new(error)))?;
        Ok(Self {
            sender,
            driver: Some(Box::new(driver)),
            wakes: PollGuard::new(),
        })
    }

    /// Sends `request` and drives the connection until the answer's head has arrived.
    pub(super) async fn send(
        &mut self,
        request: Outbound,
    ) -> Result<Response<Incoming>, SendError> {
        let mut head = std::pin::pin!(self.sender.try_send_request(request));
        let answer = poll_fn(|cx| {
            self.guarded(cx, |connection, cx| {
                let ended = connection.poll_drive(cx).is_ready();
                match head.as_mut().poll(cx) {
                    Poll::Pending if ended => Poll::Ready(None),
                    polled => polled.map(Some),
                }
            })
        })
        .await;
        match answer {
            Some(Ok(response)) => Ok(response),
            Some(Err(mut error)) => match error.take_message() {
                Some(request) => Err(SendError::Unsent(Box::new(request), error.into_error())),
                None => Err(SendError::Lost(Box::new(error.into_error()))),
            },
            // hyper answers every request before its connection ends; this is in case it did not.
            None => Err(SendError::Lost(
                "the connection ended without an answer".into(),
            )),
        }
    }

    /// Polls the connection, then `body`: one chunk of the answer, read from the socket within
    /// this poll if it is there.
    pub(super) fn poll_body(
        &mut self,
        body: &mut Incoming,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        self.guarded(cx, |connection, cx| {
            // Whether it ended or not, the body holds what it delivered and then says how it
            // ended.
            let _ = connection.poll_drive(cx);
            http_body::Body::poll_frame(Pin::new(body), cx)
        })
    }

    /// Whether another request can be sent: open, idle, and its peer has not closed it.
    pub(super) fn is_reusable(&mut self, cx: &mut Context<'_>) -> bool {
        self.poll_drive(cx).is_pending() && self.sender.is_ready()
    }

    /// Drives the connection; `Ready` once it has ended.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(driver) = self.driver.as_mut() else {
            return Poll::Ready(());
        };
        match Pin::new(driver.as_mut()).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(ended) => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "upstream connection ended");
                }
                self.driver = None;
                Poll::Ready(())
            }
        }
    }

    /// Runs `poll` with a waker that, while it runs, notes wake-ups instead of passing them on.
    /// Handing over a chunk of the body wakes the connection, and the connection wakes the
    /// body: both are this very task, which polls them again right away. A wake-up of a task
    /// while it runs would make Tokio run it again, and on a multi-thread runtime wake a parked
    /// worker. A wake-up from elsewhere while `poll` runs (the socket became readable on
    /// another thread) is passed on if `poll` ends pending.
    fn guarded<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let waker = self.wakes.enter(cx.waker());
        let polled = poll(self, &mut Context::from_waker(&waker));
        if self.wakes.leave() && polled.is_pending() {
            cx.waker().wake_by_ref();
        }
        polled
    }
}

/// The waker of [`Connection::guarded`].
struct PollGuard {
    state: Arc<GuardState>,
    waker: Waker,
}

#[derive(Default)]
struct GuardState {
    polling: AtomicBool,
    woken: AtomicBool,
    /// The waker of the task that polls.
    task: AtomicWaker,
}

impl PollGuard {
    fn new() -> Self {
        let state = Arc::new(GuardState::default());
        Self {
            waker: Waker::from(state.clone()),
            state,
        }
    }

    /// Starts a guarded poll of the task of `task`; the waker to poll with.
    fn enter(&self, task: &Waker) -> Waker {
        self.state.task.register(task);
        self.state.polling.store(true, Ordering::SeqCst);
        // A wake-up before this point is seen by the polls that follow.
        self.state.woken.store(false, Ordering::SeqCst);
        self.waker.clone()
    }

    /// Ends a guarded poll: whether something woke it meanwhile.
    fn leave(&self) -> bool {
        self.state.polling.store(false, Ordering::SeqCst);
        self.state.woken.swap(false, Ordering::SeqCst)
    }
}

impl Wake for GuardState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted first, so that a poll ending at this moment sees it in `leave`.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

/// The idle connections of one runtime, by origin, the most recently used first out.
pub(super) struct Pool {
    idle: Mutex<Vec<(Origin, VecDeque<Idle>)>>,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle connections per origin, for at most
    /// `idle_timeout` each; a task on the current runtime closes the expired ones.
    pub(super) fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Self> {
        let pool = Arc::new(Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        });
        tokio::spawn(reap(Arc::downgrade(&pool)));
        pool
    }

    /// An idle connection to `origin` that can take a request, if there is one.
    pub(super) async fn checkout(&self, origin: &Origin) -> Option<Connection> {
        poll_fn(|cx| Poll::Ready(self.take(origin, cx))).await
    }

    fn take(&self, origin: &Origin, cx: &mut Context<'_>) -> Option<Connection> {
        let mut idle = self.lock();
        let (_, connections) = idle.iter_mut().find(|(to, _)| to == origin)?;
        while let Some(Idle {
            mut connection,
            since,
        }) = connections.pop_back()
        {
            if since.elapsed() < self.idle_timeout && connection.is_reusable(cx) {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection`, whose last answer has been read to the end, for the next request to
    /// `origin`; closes it if it cannot take one or the pool is full.
    pub(super) fn checkin(&self, origin: &Origin, mut connection: Connection) {
        // The last answer's end has been read; this poll makes the connection ready for the next.
        if !connection.is_reusable(&mut Context::from_waker(Waker::noop())) {
            return;
        }
        let mut idle = self.lock();
        let at = idle
            .iter()
            .position(|(to, _)| to == origin)
            .unwrap_or_else(|| {
                idle.push((origin.clone(), VecDeque::new()));
                idle.len() - 1
            });
        let Some((_, connections)) = idle.get_mut(at) else {
            return;
        };
        while connections
            .front()
            .is_some_and(|oldest| oldest.since.elapsed() >= self.idle_timeout)
        {
            connections.pop_front();
        }
        if connections.len() < self.max_idle {
            connections.push_back(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// The idle connections; a panic elsewhere while they were held leaves them usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Origin, VecDeque<Idle>)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the connections idle too long, and those their peers closed.
    fn prune(&self) {
        let mut noop = Context::from_waker(Waker::noop());
        let mut idle = self.lock();
        for (_, connections) in idle.iter_mut() {
            connections.retain_mut(|Idle { connection, since }| {
                since.elapsed() < self.idle_timeout && connection.is_reusable(&mut noop)
            });
        }
        idle.retain(|(_, connections)| !connections.is_empty());
    }

    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        let idle = self.lock();
        idle.iter().map(|(_, connections)| connections.len()).sum()
    }
}

/// Prunes `pool` every so often, until it is gone.
async fn reap(pool: Weak<Pool>) {
    let period = match pool.upgrade() {
        Some(pool) => (pool.idle_timeout / 2).max(Duration::from_millis(100)),
        None => return,
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    loop {
        ticks.tick().await;
        match pool.upgrade() {
            Some(pool) => pool.prune(),
            None => return,
        }
    }
}

/// A connection lent to one answer: its body polls it, and gives it back to the pool once the
/// body has been read to the end. Dropped before that, it closes.
pub(super) struct Lent {
    connection: Connection,
    pool: Arc<Pool>,
    origin: Origin,
}

impl Lent {
    pub(super) fn new(connection: Connection, pool: Arc<Pool>, origin: Origin) -> Self {
        Self {
            connection,
            pool,
            origin,
        }
    }

    /// One chunk of `body`, driving the connection.
    pub(super) fn poll_body(
        &mut self,
        body: &mut Incoming,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        self.connection.poll_body(body, cx)
    }

    /// Whether `body` ends with what has arrived already: reads it on, without waiting and
    /// dropping what it reads, for at most [`FINISH_LIMIT`] bytes.
    pub(super) fn finish(&mut self, body: &mut Incoming) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut left = FINISH_LIMIT;
        loop {
            match self.poll_body(body, &mut cx) {
                Poll::Ready(None) => return true,
                Poll::Ready(Some(Ok(frame))) => {
                    let length = frame.data_ref().map_or(0, Bytes::len);
                    match left.checked_sub(length) {
                        Some(rest) => left = rest,
                        None => return false,
                    }
                }
                Poll::Ready(Some(Err(_))) | Poll::Pending => return false,
            }
        }
    }

    /// Gives the connection back: `body` has been read to its end.
    pub(super) fn give_back(self) {
        self.pool.checkin(&self.origin, self.connection);
    }
}
