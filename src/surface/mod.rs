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
pub mod stream;

use http::StatusCode;
use serde::Deserialize;

use crate::config::SalesforceConfig;
use crate::core::{Answer, Failure, Task, TranslateError};
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

/// One upstream call, ready to send to [`RouteSurface::target`].
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) body: Vec<u8>,
    pub(crate) reading: Reading,
    /// The caller's settings this surface does not forward, by their Chat Completions names, to
    /// be reported back (`x-sfbridge-ignored-params`) rather than dropped silently.
    pub(crate) dropped: Vec<&'static str>,
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

    /// The upstream call for `task`, asking for an upstream stream when `stream` is set and the
    /// surface has one; `size_hint` sizes the body's buffer.
    pub(crate) fn call(
        &self,
        task: &Task<'_>,
        stream: bool,
        size_hint: usize,
    ) -> Result<Call, TranslateError> {
        match self {
            RouteSurface::Einstein(urls) => {
                // Answers whole: a stream is emulated from the whole answer.
                let _ = stream;
                urls.call(task, size_hint)
            }
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

    /// Reads an error answer. `model` is the Salesforce model that was called.
    pub(crate) fn failure(self, status: StatusCode, body: &[u8], model: &str) -> Failure {
        match self {
            Reading::Einstein(_) => einstein::read_failure(status, body, model),
        }
    }
}
