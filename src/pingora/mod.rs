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
//! use sf_models_bridge::pingora::BridgeFilter;
//! # use std::convert::Infallible;
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # type Bridge = tower::util::BoxCloneSyncService<http::Request<Full<Bytes>>, http::Response<Full<Bytes>>, Infallible>;
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
//! # Why the body is read in `request_filter`
//!
//! The Models API path carries the model name, which lives in the JSON body, and a translated body
//! has a new length; Pingora's body filters run after the upstream request header is sent. So the
//! filter reads the whole body in `request_filter` (answering `Expect: 100-continue` first, or
//! clients stall for a second), calls the service with an `http::Request<Full<Bytes>>`, and writes
//! the service's response itself: header, then each body frame as the body yields it, so an event
//! stream leaves chunk by chunk with backpressure. A response without `Content-Length` gets
//! `Transfer-Encoding: chunked` on HTTP/1.1, or it would be close-delimited and kill keep-alive.
//!
//! # Limits, and the one this filter cannot enforce
//!
//! The body is read under [`BridgeFilter::max_request_bytes`] (a `Content-Length` over it is
//! answered 413 before a byte of body is read; a chunked body is cut at the limit) and under a
//! *total* deadline, [`BridgeFilter::body_read_timeout`] (408): Pingora's own downstream
//! `read_timeout` bounds each single read, so a client trickling a byte a second would never be cut
//! off by it. Pingora has no hook before the request header is parsed, so a client trickling its
//! *header* is the embedding gateway's limit, not this filter's.
//!
//! These refusals (413, 408, and 400 for a body that cannot be read) are answered by the service,
//! as the axum mount's are: the filter calls it with the request header, no body, and the refusal
//! attached, and the bridge answers after its method and API-key checks, in the OpenAI error
//! format, counted in its metrics and logged in the request's span. A service that is not the
//! bridge's gets that bodiless request too; the filter then answers the refusal itself, in the
//! bridge's words.
//!
//! # Pingora facts this module relies on (0.9)
//!
//! - `HttpPeer::new` resolves names with a blocking call and panics on failure: the gateway
//!   resolves `[pingora] upstream` once, at start-up, and keeps a `SocketAddr`.
//! - An empty SNI makes Pingora skip certificate checks: with TLS and no `upstream_sni`, the host
//!   part of `upstream` is used.
//! - Pingora sets `TCP_NODELAY` itself on every accepted and every connected TCP stream; neither
//!   `TcpSocketOptions` nor `PeerOptions` has a knob for it, so there is nothing to set.
//! - A graceful shutdown stops accepting, closes idle keep-alive connections, lets in-flight
//!   requests run for `grace_period_seconds` (a fixed sleep, 300 s by default), then drops what is
//!   left. [`build_server`] defaults it to 5 s.
//!
//! [`ProxyHttp`]: pingora::proxy::ProxyHttp

mod body;
mod envelope;
mod filter;
mod gateway;
mod server;

pub use filter::BridgeFilter;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use tower::Service;

/// What the filter drives: a Tower service that answers every bridge request itself, such as
/// [`Salesforce`](crate::Salesforce), and is cheap to clone per request.
pub trait BridgeService:
    Service<
        http::Request<Full<Bytes>>,
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
            http::Request<Full<Bytes>>,
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
