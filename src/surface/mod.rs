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
//! | [`responses`] | `surface = "responses"` | `{gpt_api_base}/responses` (GPT models) |
//! | [`bedrock`] | `surface = "bedrock"` | `{gpt_api_base}/model/{model}/invoke`, `invoke-with-response-stream` (Claude models) |

pub mod bedrock;
pub mod einstein;
pub(crate) mod native;
pub mod responses;
pub mod sse;
pub mod stream;

use http::StatusCode;
use serde::Deserialize;

use crate::config::{Route, SalesforceConfig};
use crate::core::{Answer, Failure, RouteKind, Task, TranslateError, Usage};
use crate::upstream::Target;
use stream::{ReadEvents, Unframe};

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
    /// The native `/ai/gpt/v1/responses` API of GPT models: tools, streaming, settings.
    Responses,
    /// Claude models in Amazon Bedrock's invoke shape under `gpt_api_base`: tools, images,
    /// streaming, settings.
    Bedrock,
}

impl SurfaceKind {
    /// The conf's name for this surface.
    pub fn as_str(self) -> &'static str {
        match self {
            SurfaceKind::Einstein => "einstein",
            SurfaceKind::Responses => "responses",
            SurfaceKind::Bedrock => "bedrock",
        }
    }

    /// Whether this surface can serve routes of `kind`.
    pub fn serves(self, kind: RouteKind) -> bool {
        match self {
            SurfaceKind::Einstein => true,
            SurfaceKind::Responses | SurfaceKind::Bedrock => kind == RouteKind::Chat,
        }
    }
}

/// A route's surface, with its upstream URLs built once at start-up.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per route, built once: boxing would only add a pointer chase per request"
)]
pub(crate) enum RouteSurface {
    Einstein(einstein::Urls),
    Responses(responses::Endpoint),
    Bedrock(bedrock::Route),
}

/// How to read the answer of one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Einstein(einstein::Operation),
    /// A `/responses` call, which asked for a stream or not.
    Responses {
        stream: bool,
    },
    /// An Anthropic message, or with `stream` an event stream of its events; `native` for a
    /// pass-through, whose answer goes back to an Anthropic Messages caller nearly as it came.
    Bedrock {
        stream: bool,
        native: bool,
    },
}

/// A pass-through's whole answer, as the caller gets it, and its token counts.
pub(crate) type NativeAnswer = (Vec<u8>, Option<Usage>);

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
    /// The caller's settings this surface does not forward, by their Chat Completions names, to
    /// be reported back (`x-sfbridge-ignored-params`) rather than dropped silently.
    pub(crate) dropped: Vec<&'static str>,
}

impl RouteSurface {
    /// The surface of `route`; `None` when its URLs are invalid.
    pub(crate) fn new(route: &Route, config: &SalesforceConfig) -> Option<Self> {
        let model = &route.salesforce_model;
        match route.surface {
            SurfaceKind::Einstein => {
                einstein::Urls::new(&config.api_base, model).map(Self::Einstein)
            }
            SurfaceKind::Responses => {
                responses::Endpoint::new(&config.gpt_api_base, model).map(Self::Responses)
            }
            SurfaceKind::Bedrock => {
                bedrock::Route::new(&config.gpt_api_base, route).map(Self::Bedrock)
            }
        }
    }

    /// Which surface this is.
    pub(crate) fn kind(&self) -> SurfaceKind {
        match self {
            RouteSurface::Einstein(_) => SurfaceKind::Einstein,
            RouteSurface::Responses(_) => SurfaceKind::Responses,
            RouteSurface::Bedrock(_) => SurfaceKind::Bedrock,
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
            // Answers whole: a stream is emulated from the whole answer.
            RouteSurface::Einstein(urls) => urls.call(task, size_hint),
            RouteSurface::Responses(endpoint) => endpoint.call(task, stream, size_hint),
            RouteSurface::Bedrock(route) => route.call(task, stream, size_hint),
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
        match (self, api) {
            (RouteSurface::Responses(endpoint), native::NativeApi::OpenAiResponses) => {
                Some(endpoint.native_call(body, head.stream))
            }
            (RouteSurface::Bedrock(route), native::NativeApi::AnthropicMessages) => {
                Some(route.native_call(body, head.stream, anthropic_beta))
            }
            _ => None,
        }
    }

    /// Where the call that `reading` reads goes.
    pub(crate) fn target(&self, reading: Reading) -> &Target {
        match (self, reading) {
            (RouteSurface::Einstein(urls), Reading::Einstein(operation)) => urls.target(operation),
            // A reading is only ever made by its own route's surface: this pair never meets.
            (RouteSurface::Einstein(urls), Reading::Responses { .. } | Reading::Bedrock { .. }) => {
                urls.target(einstein::Operation::Chat)
            }
            (RouteSurface::Responses(endpoint), _) => endpoint.target(),
            (RouteSurface::Bedrock(route), Reading::Bedrock { stream, .. }) => route.target(stream),
            (RouteSurface::Bedrock(route), Reading::Einstein(_) | Reading::Responses { .. }) => {
                route.target(false)
            }
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
            // Whole, even when a stream was asked for: an upstream under load may answer a
            // stream request with one JSON body.
            Reading::Responses { .. } => responses::read_answer(body, render)
                .map(|rendered| (rendered, responses::PARSE_PATH)),
            Reading::Bedrock { .. } => {
                bedrock::read_answer(body, render).map(|rendered| (rendered, bedrock::PARSE_PATH))
            }
        }
    }

    /// A pass-through's whole answer with the caller's `model` named in it, and its token
    /// counts; `None` for a reading that is not a pass-through's.
    pub(crate) fn native_answer(
        self,
        body: &[u8],
        model: &str,
    ) -> Option<Result<NativeAnswer, einstein::ExtractError>> {
        match self {
            Reading::Einstein(_) | Reading::Bedrock { native: false, .. } => None,
            Reading::Responses { .. } => Some(responses::native::answer(body, model)),
            Reading::Bedrock { native: true, .. } => Some(bedrock::native_answer(body, model)),
        }
    }

    /// The relay of a pass-through's stream, naming the caller's `model`; `None` for a reading
    /// that is not a pass-through's.
    pub(crate) fn native_relay(self, model: &str) -> Option<Box<dyn stream::Relay>> {
        match self {
            Reading::Einstein(_)
            | Reading::Responses { stream: false }
            | Reading::Bedrock { stream: false, .. }
            | Reading::Bedrock { native: false, .. } => None,
            Reading::Responses { stream: true } => Some(Box::new(
                responses::native::ResponsesRelay::new(Box::new(sse::SseUnframe::new()), model),
            )),
            Reading::Bedrock {
                stream: true,
                native: true,
            } => Some(Box::new(bedrock::MessagesRelay::new(model))),
        }
    }

    /// Reads an error answer. `model` is the Salesforce model that was called.
    pub(crate) fn failure(self, status: StatusCode, body: &[u8], model: &str) -> Failure {
        match self {
            Reading::Einstein(_) => einstein::read_failure(status, body, model),
            Reading::Responses { .. } => responses::read_failure(status, body, model),
            Reading::Bedrock { .. } => bedrock::read_failure(status, body, model),
        }
    }

    /// The decoders of the upstream stream this call asked for: how its body is cut into events,
    /// and how those are read as neutral events. `None` when the call asked for a whole answer.
    pub(crate) fn stream(self) -> Option<(Box<dyn Unframe>, Box<dyn ReadEvents>)> {
        match self {
            Reading::Einstein(_)
            | Reading::Responses { stream: false }
            | Reading::Bedrock { stream: false, .. }
            | Reading::Bedrock { native: true, .. } => None,
            Reading::Responses { stream: true } => Some((
                Box::new(sse::SseUnframe::new()),
                Box::new(responses::ResponsesEvents::new()),
            )),
            Reading::Bedrock {
                stream: true,
                native: false,
            } => Some((
                Box::new(bedrock::EventStreamFrames::default()),
                Box::new(bedrock::AnthropicEvents::default()),
            )),
        }
    }
}

/// Refuses more than one answer: every surface answers exactly one.
pub(crate) fn one_choice(n: Option<u64>) -> Result<(), TranslateError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(TranslateError::Choices(n)),
    }
}

/// Serializes a request body into a buffer the size of the caller's body, which it rarely
/// exceeds, instead of growing one from empty. Structs of strings, numbers and raw JSON cannot
/// fail to encode.
fn encode(body: &impl serde::Serialize, size_hint: usize) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(size_hint);
    // Writing borrowed strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut encoded, body);
    encoded
}
