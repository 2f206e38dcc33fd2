//! [`SalesforceRoutesLayer`]: mounts the bridge in front of an application's own service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Either;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::body::BridgeBody;
use super::service::{ResponseFuture, Salesforce};
use crate::endpoint::{Claimed, Endpoint};

/// Answers the bridge's paths with a [`Salesforce`] service and hands every other request to
/// the wrapped application unchanged, so an app gains `/v1/chat/completions` and the rest
/// without declaring them:
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use sf_models_bridge::{Config, SalesforceLayer, SalesforceRoutesLayer, Upstream};
/// use tower::Layer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::from_path("conf/gateway.toml")?;
/// let bridge = SalesforceLayer::new(&config)?.layer(Upstream::new(&config.salesforce)?);
/// let app = Router::new()
///     .route("/", get(|| async { "my own app" }))
///     .layer(SalesforceRoutesLayer::new(bridge));
/// # let _: Router = app;
/// # Ok(())
/// # }
/// ```
///
/// The bridge answers all of its paths ([`Endpoint::ALL`]), `/health`, `/ready` and `/metrics`
/// included; an application that serves some of these itself keeps them with
/// [`except`](Self::except).
#[derive(Clone, Debug)]
pub struct SalesforceRoutesLayer<S> {
    bridge: Salesforce<S>,
    claimed: Claimed,
}

impl<S> SalesforceRoutesLayer<S> {
    /// Mounts `bridge` in front of the services this layer wraps.
    pub fn new(bridge: Salesforce<S>) -> Self {
        Self {
            bridge,
            claimed: Claimed::ALL,
        }
    }

    /// Leaves `endpoints` to the application: requests for their paths reach it unchanged.
    ///
    /// ```no_run
    /// # use sf_models_bridge::{Endpoint, Salesforce, SalesforceRoutesLayer, Upstream};
    /// # fn mount(bridge: Salesforce<Upstream>) {
    /// // The app has its own health check and scrape endpoint (add the bridge's registry to it).
    /// let layer = SalesforceRoutesLayer::new(bridge).except([Endpoint::Health, Endpoint::Metrics]);
    /// # }
    /// ```
    pub fn except(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.claimed = self.claimed.except(endpoints);
        self
    }
}

impl<S: Clone, A> Layer<A> for SalesforceRoutesLayer<S> {
    type Service = SalesforceRoutes<S, A>;

    fn layer(&self, app: A) -> Self::Service {
        SalesforceRoutes {
            bridge: self.bridge.clone(),
            claimed: self.claimed,
            app,
        }
    }
}

/// The service made by [`SalesforceRoutesLayer`].
#[derive(Clone, Debug)]
pub struct SalesforceRoutes<S, A> {
    bridge: Salesforce<S>,
    claimed: Claimed,
    app: A,
}

impl<S, A> SalesforceRoutes<S, A> {
    /// The wrapped application.
    pub fn get_ref(&self) -> &A {
        &self.app
    }

    /// The wrapped application, mutably.
    pub fn get_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The wrapped application, consuming the mount.
    pub fn into_inner(self) -> A {
        self.app
    }
}

impl<S, A, B, AB> Service<Request<B>> for SalesforceRoutes<S, A>
where
    Salesforce<S>: Service<
        Request<B>,
        Response = Response<BridgeBody>,
        Error = Infallible,
        Future = ResponseFuture,
    >,
    A: Service<Request<B>, Response = Response<AB>>,
    AB: http_body::Body<Data = Bytes>,
{
    type Response = Response<Either<BridgeBody, AB>>;
    type Error = A::Error;
    type Future = RoutesFuture<A::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The bridge is always ready; the application decides.
        self.app.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.claimed.at(request.uri().path()).is_some() {
            RoutesFuture {
                kind: RoutesKind::Bridge {
                    future: self.bridge.call(request),
                },
            }
        } else {
            RoutesFuture {
                kind: RoutesKind::App {
                    future: self.app.call(request),
                },
            }
        }
    }
}

pin_project! {
    /// The future of [`SalesforceRoutes`]: the bridge's answer or the application's.
    pub struct RoutesFuture<F> {
        #[pin]
        kind: RoutesKind<F>,
    }
}

pin_project! {
    #[project = RoutesKindProj]
    enum RoutesKind<F> {
        Bridge { future: ResponseFuture },
        App { #[pin] future: F },
    }
}

impl<F> std::fmt::Debug for RoutesFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutesFuture").finish_non_exhaustive()
    }
}

impl<F, AB, E> Future for RoutesFuture<F>
where
    F: Future<Output = Result<Response<AB>, E>>,
{
    type Output = Result<Response<Either<BridgeBody, AB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            RoutesKindProj::Bridge { future } => Pin::new(future).poll(cx).map(|result| {
                let Ok(response) = result;
                Ok(response.map(Either::Left))
            }),
            RoutesKindProj::App { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(Either::Right))),
        }
    }
}
