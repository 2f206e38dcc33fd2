//! The Responses API front: `POST /v1/responses` through the neutral core, for routes whose
//! surface does not speak the Responses API itself.
//!
//! The request becomes a neutral conversation ([`to_core`]); what cannot be carried that way is
//! refused with a 400 naming it (the provider's own tools, stored responses and conversations,
//! file ids). The answer is a Responses object ([`response_json`]) or the API's stream of
//! events ([`ResponsesEvents`]); failures are OpenAI's error envelope, or an `error` event once
//! a stream has started.
//!
//! ```
//! use sf_models_bridge::core::{Delivery, Finish, Generation};
//! use sf_models_bridge::front::responses::response_json;
//! use sf_models_bridge::front::AnswerCtx;
//!
//! let answer = Generation { id: None, text: "Hi", tool_calls: vec![], finish: Finish::Stop, usage: None };
//! let ctx = AnswerCtx { fallback_id: "resp_1", created: 1, model: "gpt-5", delivery: Delivery::WHOLE };
//! let body: serde_json::Value = serde_json::from_slice(&response_json(&answer, &ctx)?)?;
//! assert_eq!(body["status"], "completed");
//! assert_eq!(body["output"][0]["content"][0]["text"], "Hi");
//! # Ok::<(), serde_json::Error>(())
//! ```

mod convert;
mod events;

pub use convert::to_core;
pub use events::ResponsesEvents;

use bytes::{Bytes, BytesMut};

use super::emulated::RenderedAnswer;
use super::{
    generation, json_with_capacity, parse_json, usable_id, AnswerCtx, ErrorFormat, EventSource,
    Front, OpenAiErrors, RenderEvents,
};
use crate::core::{Answer, Failure, Finish, Generation, Request, ToolCall, Usage};
use crate::layer::BridgeError;
use crate::openai::responses::{
    ErrorEvent, IncompleteDetails, OutputContent, OutputItem, ResponseObject, ResponseUsage,
};
use crate::surface::native::NativeApi;

/// `POST /v1/responses`, through the neutral core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponsesFront;

impl Front for ResponsesFront {
    fn id_prefix(&self) -> &'static str {
        "resp_"
    }

    fn parse<'b>(&self, body: &'b [u8]) -> Result<Request<'b>, BridgeError> {
        parse_json(body, to_core)
    }

    fn answer_json(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Vec<u8>, BridgeError> {
        let answer = generation(answer)?;
        response_json(answer, ctx).map_err(BridgeError::Encode)
    }

    fn answer_events(
        &self,
        answer: &Answer<'_>,
        ctx: &AnswerCtx<'_>,
    ) -> Result<Box<dyn EventSource>, BridgeError> {
        let answer = generation(answer)?;
        let events = ResponsesEvents::new(usable_id(answer.id).unwrap_or(ctx.fallback_id), ctx);
        let overhead = events.event_overhead();
        Ok(Box::new(RenderedAnswer::new(answer, events, overhead)))
    }

    fn event_renderer(&self, ctx: &AnswerCtx<'_>) -> Result<Box<dyn RenderEvents>, BridgeError> {
        Ok(Box::new(ResponsesEvents::new(ctx.fallback_id, ctx)))
    }

    fn errors(&self) -> &'static dyn ErrorFormat {
        &ResponsesErrors
    }

    fn native(&self) -> Option<NativeApi> {
        Some(NativeApi::OpenAiResponses)
    }
}

/// OpenAI's error envelope for a whole answer; the Responses stream's `error` event for a
/// stream that failed after it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponsesErrors;

impl ErrorFormat for ResponsesErrors {
    fn error_json(&self, failure: &Failure) -> Vec<u8> {
        OpenAiErrors.error_json(failure)
    }

    /// `{"type": "error", "code", "message", "param", "sequence_number"}`. The SDKs require a
    /// sequence number, which the failure, met outside the renderer, cannot know: 0 (clients
    /// read it for ordering only, and this is the last event).
    fn error_event(&self, failure: &Failure) -> Bytes {
        let mut buf = BytesMut::with_capacity(256 + failure.message.len());
        events::write_event(
            &mut buf,
            "error",
            &ErrorEvent {
                kind: "error",
                code: failure.code.as_deref(),
                message: &failure.message,
                param: failure.param.as_deref(),
                sequence_number: 0,
            },
        );
        buf.freeze()
    }
}

/// The JSON body of a Responses object: a `message` item when there is text (or nothing else),
/// then a `function_call` item per tool call. The last item is `incomplete` when the response
/// is.
pub fn response_json(
    answer: &Generation<'_>,
    ctx: &AnswerCtx<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let id = usable_id(answer.id).unwrap_or(ctx.fallback_id);
    let (status, incomplete_details) = outcome(answer.finish);
    // The message first (`None`), then the calls, each with its item id.
    let with_message = !answer.text.is_empty() || answer.tool_calls.is_empty();
    let items: Vec<(String, Option<&ToolCall<'_>>)> = with_message
        .then_some(None)
        .into_iter()
        .chain(answer.tool_calls.iter().map(Some))
        .enumerate()
        .map(|(index, call)| {
            let prefix = if call.is_some() { "fc" } else { "msg" };
            (item_id(prefix, id, index), call)
        })
        .collect();
    let output: Vec<OutputItem<'_>> = items
        .iter()
        .enumerate()
        .map(|(index, (item_id, call))| {
            let status = if index + 1 == items.len() {
                status
            } else {
                "completed"
            };
            match call {
                None => OutputItem::Message {
                    id: item_id,
                    status,
                    role: "assistant",
                    content: OutputContent(Some(answer.text)),
                },
                Some(call) => OutputItem::FunctionCall {
                    id: item_id,
                    call_id: &call.id,
                    name: &call.name,
                    arguments: &call.arguments,
                    status,
                },
            }
        })
        .collect();
    let mut response = response_object(id, ctx.created, ctx.model, status, &output, answer.usage);
    response.incomplete_details = incomplete_details;
    let arguments: usize = answer.tool_calls.iter().map(|c| c.arguments.len()).sum();
    json_with_capacity(&response, answer.text.len().saturating_add(arguments))
}

/// The status of a response or an item being streamed.
const IN_PROGRESS: &str = "in_progress";

/// A response's status for how its answer ended, with why it is incomplete.
fn outcome(finish: Finish) -> (&'static str, Option<IncompleteDetails>) {
    let reason = match finish {
        Finish::Stop | Finish::ToolCalls => return ("completed", None),
        Finish::Length => "max_output_tokens",
        Finish::ContentFilter => "content_filter",
    };
    ("incomplete", Some(IncompleteDetails { reason }))
}

/// The id of a response's output item at `index`: `msg_…` or `fc_…` and the response's id,
/// so ids are unique across responses and the same in a stream and in the whole answer.
fn item_id(prefix: &str, response_id: &str, index: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{index}")
}

/// A response object with `output` and `usage`, complete but for `incomplete_details`.
fn response_object<'a>(
    id: &'a str,
    created_at: u64,
    model: &'a str,
    status: &'static str,
    output: &'a [OutputItem<'a>],
    usage: Option<Usage>,
) -> ResponseObject<'a> {
    ResponseObject {
        id,
        object: "response",
        created_at,
        status,
        error: None,
        incomplete_details: None,
        instructions: None,
        model,
        output,
        parallel_tool_calls: true,
        tool_choice: "auto",
        tools: [],
        usage: usage.map(ResponseUsage::from),
    }
}

#[cfg(test)]
mod tests;
