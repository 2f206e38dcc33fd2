//! The OpenAI Responses API passed through to the `responses` surface: the caller's body with the
//! Salesforce model name, the answer and every stream event with the caller's model name, nothing
//! else changed, so fields and event types the bridge does not know keep working.

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::read::usage;
use super::response::ResponsesUsage;
use crate::core::{Failure, Usage};
use crate::surface::einstein::ExtractError;
use crate::surface::native::{rewrite_members, Edit};
use crate::surface::stream::invalid_stream;
use crate::surface::stream::{Flow, Relay, Unframe, UpstreamEvent};

/// The caller's body with `model` set to the Salesforce model.
pub(crate) fn call_body(body: &[u8], salesforce_model: &str) -> Result<Vec<u8>, serde_json::Error> {
    rewrite_members(body, &[("model", Edit::SetString(salesforce_model))])
}

/// A whole answer with the caller's `model` in it, and its token counts.
pub(crate) fn answer(body: &[u8], model: &str) -> Result<(Vec<u8>, Option<Usage>), ExtractError> {
    let usage = serde_json::from_slice::<WithUsage>(body)
        .map_err(|error| ExtractError::invalid(&error))?
        .usage
        .as_ref()
        .and_then(usage);
    let json = rewrite_members(body, &[("model", Edit::SetString(model))])
        .map_err(|error| ExtractError::invalid(&error))?;
    Ok((json, usage))
}

/// The stream events that end a response.
const TERMINAL: [&str; 4] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
];

/// Relays a Responses stream event by event, with the caller's model name in each response
/// object it carries.
#[derive(Debug)]
pub(crate) struct ResponsesRelay {
    unframe: Box<dyn Unframe>,
    model: String,
    usage: Option<Usage>,
    finished: bool,
}

impl ResponsesRelay {
    pub(crate) fn new(unframe: Box<dyn Unframe>, model: &str) -> Self {
        Self {
            unframe,
            model: model.to_owned(),
            usage: None,
            finished: false,
        }
    }

    fn relay(&mut self, event: &UpstreamEvent, out: &mut BytesMut) -> Result<Flow, Failure> {
        let head: EventHead<'_> = serde_json::from_slice(&event.data).map_err(|_| broken())?;
        let kind = head.kind.as_deref().unwrap_or("message");
        let data = match head.response {
            Some(response) => {
                // A completed response with nothing in it is no answer: never an empty success.
                if kind == "response.completed"
                    && serde_json::from_str::<WithOutput>(response.get())
                        .is_ok_and(|response| response.output.is_empty())
                {
                    return Err(invalid_stream("the upstream stream held no answer"));
                }
                if let Some(seen) = serde_json::from_str::<WithUsage>(response.get())
                    .ok()
                    .and_then(|response| response.usage.as_ref().and_then(usage))
                {
                    self.usage = Some(seen);
                }
                let response = rewrite_members(
                    response.get().as_bytes(),
                    &[("model", Edit::SetString(&self.model))],
                )
                .map_err(|_| broken())?;
                let response =
                    RawValue::from_string(String::from_utf8(response).map_err(|_| broken())?)
                        .map_err(|_| broken())?;
                rewrite_members(&event.data, &[("response", Edit::SetJson(&response))])
                    .map_err(|_| broken())?
            }
            None => event.data.to_vec(),
        };
        // The event's name is its type, as the API sends it; a type that could break the
        // framing is not passed on as a name.
        let name = if kind.bytes().all(|b| b.is_ascii_graphic()) {
            kind
        } else {
            "message"
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\n\n");
        Ok(if TERMINAL.contains(&kind) {
            Flow::Finished
        } else {
            Flow::Continue
        })
    }
}

impl Relay for ResponsesRelay {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<Flow, Failure> {
        self.unframe.push(bytes)?;
        while let Some(event) = self.unframe.next_event()? {
            if self.relay(&event, out)? == Flow::Finished {
                self.finished = true;
                return Ok(Flow::Finished);
            }
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self, _out: &mut BytesMut) -> Result<(), Failure> {
        if self.finished {
            return Ok(());
        }
        self.unframe.finish()?;
        Err(invalid_stream(
            "the upstream stream ended before the response was complete",
        ))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

fn broken() -> Failure {
    invalid_stream("the upstream stream sent an event that is not a JSON object")
}

/// What the relay reads of an event: its type and the response object it carries.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
}

/// A response object's output items, unread.
#[derive(Deserialize)]
struct WithOutput {
    #[serde(default)]
    output: Vec<serde::de::IgnoredAny>,
}

/// A response object's usage, the rest unread.
#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}
