//! Surfaces: how Salesforce serves a route's model, one module each.
//!
//! A surface turns a neutral [`Request`](crate::core::Request) into an upstream call (URL and
//! body), reads the upstream's answer back into a neutral [`Answer`], and reads its error bodies
//! into a neutral [`Failure`]. It knows nothing of the caller's API: the
//! [`front`](crate::front) does that. A route names its surface in the conf (`surface`); a new
//! surface is one new module here and one variant of [`SurfaceKind`].
//!
//! | module | conf | upstream |
//! |---|---|---|
//! | [`einstein`] | `surface = "einstein"` (the default) | `{api_base}/models/{model}/chat-generations`, `generations` |

pub mod einstein;
pub(crate) mod native;
mod native_responses;
pub mod stream;

use http::StatusCode;
use serde::Deserialize;

use crate::config::SalesforceConfig;
use crate::core::{Answer, Failure, Task, TranslateError, Usage};
use crate::upstream::Target;

/// `x-sfdc-app-context`, required on every call to every surface.
pub const APP_CONTEXT_HEADER: &str = "x-sfdc-app-context";
/// The value of [`APP_CONTEXT_HEADER`].
pub const APP_CONTEXT: &str = "EinsteinGPT";
/// `x-client-feature-id`, required on every call to every surface.
pub const CLIENT_FEATURE_HEADER: &str = "x-client-feature-id";
/// The value of [`CLIENT_FEATURE_HEADER`].
pub const CLIENT_FEATURE: &str = "ai-platform-models-connected-app";

/// How Salesforce serves a route's model: `surface` in the conf.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurfaceKind {
    /// The documented `einstein/platform/v1` API: no tools, no streaming.
    #[default]
    Einstein,
}

impl SurfaceKind {
    /// The conf's name for this surface.
    pub fn as_str(self) -> &'static str {
        match self {
            SurfaceKind::Einstein => "einstein",
        }
    }
}

/// A route's surface, with its upstream URLs built once at start-up.
#[derive(Debug)]
pub(crate) enum RouteSurface {
    Einstein(einstein::Urls),
}

/// How to read the answer of one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Einstein(einstein::Operation),
}

/// A pass-through call: the caller's body, rewritten only where the surface needs it.
#[derive(Debug)]
pub(crate) struct NativeCall {
    pub(crate) body: Vec<u8>,
    pub(crate) reading: Reading,
}

/// One upstream call, ready to send to [`RouteSurface::target`].
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) body: Vec<u8>,
    pub(crate) reading: Reading,
}

impl RouteSurface {
    /// The surface `kind` for the Models API name `model`; `None` when its URLs are invalid.
    pub(crate) fn new(kind: SurfaceKind, config: &SalesforceConfig, model: &str) -> Option<Self> {
        match kind {
            SurfaceKind::Einstein => {
                einstein::Urls::new(&config.api_base, model).map(Self::Einstein)
            }
        }
    }

    /// Which surface this is.
    pub(crate) fn kind(&self) -> SurfaceKind {
        match self {
            RouteSurface::Einstein(_) => SurfaceKind::Einstein,
        }
    }

    /// The upstream call for `task`; `size_hint` sizes the body's buffer.
    pub(crate) fn call(&self, task: &Task<'_>, size_hint: usize) -> Result<Call, TranslateError> {
        match self {
            RouteSurface::Einstein(urls) => {
                let (operation, body) = urls.call(task, size_hint)?;
                Ok(Call {
                    body,
                    reading: Reading::Einstein(operation),
                })
            }
        }
    }

    /// The pass-through call for a caller speaking `api`, if this surface speaks it natively.
    /// `anthropic_beta` is the caller's `anthropic-beta` header.
    pub(crate) fn native_call(
        &self,
        api: native::NativeApi,
        body: &[u8],
        head: &native::NativeHead<'_>,
        anthropic_beta: Option<&str>,
    ) -> Option<Result<NativeCall, TranslateError>> {
        let _ = (api, body, head, anthropic_beta);
        match self {
            RouteSurface::Einstein(_) => None,
        }
    }

    /// Where the call that `reading` reads goes.
    pub(crate) fn target(&self, reading: Reading) -> &Target {
        match (self, reading) {
            (RouteSurface::Einstein(urls), Reading::Einstein(operation)) => urls.target(operation),
        }
    }
}

impl Reading {
    /// Reads a success body and hands the answer to `render`; also gives the name of the parse
    /// path that served, for the metrics.
    pub(crate) fn answer<R>(
        self,
        body: &[u8],
        render: impl FnOnce(Answer<'_>) -> R,
    ) -> Result<(R, &'static str), einstein::ExtractError> {
        match self {
            Reading::Einstein(operation) => einstein::read_answer(operation, body, render)
                .map(|(rendered, path)| (rendered, path.as_str())),
        }
    }

    /// How to read a streamed answer as it arrives: `None` for a surface that answers whole
    /// (a stream is then emulated from the whole answer).
    pub(crate) fn stream(self) -> Option<(Box<dyn stream::Unframe>, Box<dyn stream::ReadEvents>)> {
        match self {
            Reading::Einstein(_) => None,
        }
    }

    /// A pass-through's whole answer with the caller's `model` named in it, and its token
    /// counts; `None` for a reading that is not a pass-through's.
    pub(crate) fn native_answer(
        self,
        body: &[u8],
        model: &str,
    ) -> Option<Result<(Vec<u8>, Option<Usage>), einstein::ExtractError>> {
        let _ = (body, model);
        match self {
            Reading::Einstein(_) => None,
        }
    }

    /// The relay of a pass-through's stream, naming the caller's `model`; `None` for a reading
    /// that is not a pass-through's.
    pub(crate) fn native_relay(self, model: &str) -> Option<Box<dyn stream::Relay>> {
        let _ = model;
        match self {
            Reading::Einstein(_) => None,
        }
    }

    /// Reads an error answer. `model` is the Salesforce model that was called.
    pub(crate) fn failure(self, status: StatusCode, body: &[u8], model: &str) -> Failure {
        match self {
            Reading::Einstein(_) => einstein::read_failure(status, body, model),
        }
    }
}
