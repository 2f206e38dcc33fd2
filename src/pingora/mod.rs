//! The Pingora mount: serve the bridge's routes from any Pingora [`ProxyHttp`] by driving the
//! same Tower service the axum mount uses, and pass every other path on.
//!
//! Two ways in:
//!
//! - **Your own gateway.** Keep a [`BridgeFilter`] in your proxy and make it the first thing your
//!   `request_filter` does. [`BridgeFilter::try_serve`] returns `Ok(true)` when the path is the
//!   bridge's (see [`Endpoint::from_path`](crate::Endpoint::from_path)) and the response has been
//!   written, so `request_filter` returns `Ok(true)` as well; it returns `Ok(false)`, having
//!   touched nothing, for every other path, which your gateway then handles or proxies as usual.
//! - **The ready-made gateway.** [`BridgeGateway`] is that proxy, plus a fixed upstream for the
//!   other paths (or an OpenAI-style 404 when `[pingora] upstream` is unset). [`build_server`] and
//!   [`add_gateway`] wire it into a Pingora [`Server`](pingora::server::Server) from our conf;
//!   [`spawn_gateway`] runs one in the background (tests, embedding) and returns a
//!   [`RunningGateway`] handle that stops it.
//!
//! ```no_run
//! use async_trait::async_trait;
//! use pingora::prelude::HttpPeer;
//! use pingora::proxy::{ProxyHttp, Session};
//! use sf_models_bridge::pingora::{BridgeFilter, SessionBody};
//! # use std::convert::Infallible;
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # type Bridge = tower::util::BoxCloneSyncService<http::Request<SessionBody>, http::Response<Full<Bytes>>, Infallible>;
//!
//! struct MyGateway {
//!     bridge: BridgeFilter<Bridge>,
//!     app: std::net::SocketAddr, // resolved once, at start-up
//! }
//!
//! #[async_trait]
//! impl ProxyHttp for MyGateway {
//!     type CTX = ();
//!     fn new_ctx(&self) {}
//!
//!     async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> pingora::Result<bool> {
//!         if self.bridge.try_serve(session).await? {
//!             return Ok(true); // the bridge answered
//!         }
//!         Ok(false) // not ours: your own checks, then proxy as usual
//!     }
//!
//!     async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> pingora::Result<Box<HttpPeer>> {
//!         Ok(Box::new(HttpPeer::new(self.app, false, String::new())))
//!     }
//! }
//! ```
//!
//! # Why the bridge answers inside `request_filter`
//!
//! The Models API path carries the model name, which lives in the JSON body, and a translated body
//! has a new length; Pingora's body filters run after the upstream request header is sent. So the
//! bridge's requests never reach Pingora's proxying: the filter calls the service and writes its
//! response itself, header first, then each body frame as the body yields it, so an event stream
//! leaves chunk by chunk with backpressure. A response without `Content-Length` gets
//! `Transfer-Encoding: chunked` on HTTP/1.1, or it would be close-delimited and kill keep-alive.
//!
//! # The request body: read when the service asks, under the service's limits
//!
//! The filter has no limits and gives no answers of its own on the bridge's paths. It calls the
//! service at once with an `http::Request<`[`SessionBody`]`>`: the request head, and a body that
//! reads the client's connection only when polled, at most one chunk ahead of the service, the way
//! hyper's body does. So the service gives its verdict on the head first (path, method, API key,
//! declared `Content-Length`) and a caller without a key, or with a body declared too large, is
//! answered before the gateway reads a byte of its body (what it still sends afterwards is only
//! discarded, see below). `Expect: 100-continue` is answered when the service first polls the
//! body, and never if it answers without it.
//!
//! The bridge reads the body under its own limits, the same in both mounts:
//! `salesforce.max_request_bytes` (413) and a *total* deadline, `server.body_read_timeout_secs`
//! (408). Pingora's own downstream `read_timeout` bounds each single read, so a client trickling a
//! byte a second is never cut off by it, but one that goes quiet longer than it is: the body then
//! fails with an [`std::io::Error`] of kind `TimedOut`, which the bridge answers 408 too. A service
//! other than the bridge's must enforce its own limits: the body has none.
//!
//! When the answer is ready the filter stops reading. If the body was not read to its end, the
//! answer carries `Connection: close` and, unless the client still waits for a `100 Continue` it
//! never got (or its body could not be read, or the answer is a 408), what it keeps sending is
//! read and discarded for two seconds after the answer: closing with unread data would reset the
//! connection and could destroy the answer before the client reads it.
//!
//! Pingora has no hook before the request header is parsed, so a client trickling its *header* is
//! the embedding gateway's limit, not this filter's.
//!
//! # Pingora facts this module relies on (0.9)
//!
//! - `HttpPeer::new` resolves names with a blocking call and panics on failure: the gateway
//!   resolves `[pingora] upstream` once, at start-up, and keeps a `SocketAddr`.
//! - An empty SNI makes Pingora skip certificate checks: with TLS and no `upstream_sni`, the host
//!   part of `upstream` is used.
//! - Pingora sets `TCP_NODELAY` itself on every accepted and every connected TCP stream; neither
//!   `TcpSocketOptions` nor `PeerOptions` has a knob for it, so there is nothing to set.
//! - Writing `100 Continue` before the request body has been read turns keep-alive off
//!   (`close_on_response_before_downstream_finish`, on by default), so a request that expected
//!   one is the last on its connection, as it was when the filter read bodies itself.
//! - A graceful shutdown stops accepting, closes idle keep-alive connections, lets in-flight
//!   requests run for `grace_period_seconds` (a fixed sleep, 300 s by default), then drops what is
//!   left. [`build_server`] defaults it to 5 s.
//!
//! [`ProxyHttp`]: pingora::proxy::ProxyHttp

mod body;
mod envelope;
mod filter;
mod gateway;
mod linger;
mod server;
mod session_body;

pub use filter::BridgeFilter;
pub use session_body::SessionBody;

use std::convert::Infallible;

use bytes::Bytes;
use tower::Service;

/// What the filter drives: a Tower service that answers every bridge request itself, such as
/// [`Salesforce`](crate::Salesforce), and is cheap to clone per request. It gets the request
/// head at once and reads the [`SessionBody`] if and when it wants to, under its own limits.
pub trait BridgeService:
    Service<
        http::Request<SessionBody>,
        Response = http::Response<Self::Body>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The body of the service's responses.
    type Body: ResponseBody;
}

impl<S, B> BridgeService for S
where
    S: Service<
            http::Request<SessionBody>,
            Response = http::Response<B>,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static,
    B: ResponseBody,
{
    type Body = B;
}

/// What the filter writes back: a body of `Bytes` frames (JSON, or an event stream).
pub trait ResponseBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ResponseBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}
pub use gateway::{BridgeGateway, GatewayError};
pub use server::{add_gateway, build_server, spawn_gateway, RunningGateway};
