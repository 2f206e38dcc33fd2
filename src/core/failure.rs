//! The neutral failure: what went wrong, in words every front can render in its own envelope.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode};

/// The most characters of a failure's message that come from outside (an upstream's words).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// A request that failed, ready for a front's error envelope. The message is bounded and
/// sanitised: it never holds a token, a key or an unbounded upstream body.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The status the caller gets.
    pub status: StatusCode,
    /// The kind of failure, which fronts map to their error types.
    pub class: FailureClass,
    /// A sentence for people.
    pub message: String,
    /// A stable machine-readable code, such as `model_not_found`.
    pub code: Option<Cow<'static, str>>,
    /// The request parameter at fault, such as `messages[1].content`.
    pub param: Option<Cow<'static, str>>,
    /// How long the caller should wait before trying again, as the upstream said.
    pub retry_after: Option<HeaderValue>,
    /// The Models API's `x-request-id`, when the failure followed one of its answers.
    pub upstream_id: Option<HeaderValue>,
}

impl Failure {
    /// A failure with no code, parameter, wait or upstream id.
    pub fn new(status: StatusCode, class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            status,
            class,
            message: message.into(),
            code: None,
            param: None,
            retry_after: None,
            upstream_id: None,
        }
    }

    /// Sets the code.
    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the parameter at fault.
    pub fn param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }
}

/// The kind of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The request is malformed or asks for what the route cannot do.
    InvalidRequest,
    /// The caller presented no key or a wrong one.
    Authentication,
    /// The org or app lacks access.
    Permission,
    /// Too many requests: back off and retry.
    RateLimited,
    /// The upstream failed or answered something unusable.
    Upstream,
    /// The bridge or the upstream is overloaded or not ready.
    Unavailable,
}
