//! OpenAI's Responses API (`POST /v1/responses`): the request, the response object and the
//! events of its stream.
//!
//! The request is parsed in one pass like the Chat Completions one: strings without escapes
//! point into the body, and parameters the bridge does not act on are listed by name, nested ones
//! under their object's name (`reasoning.summary`).
//!
//! ```
//! use sf_models_bridge::openai::responses::{Input, ResponsesRequest};
//!
//! let body = br#"{"model": "gpt-5", "input": "Hi", "store": false,
//!                 "reasoning": {"effort": "low", "summary": "auto"}}"#;
//! let request: ResponsesRequest<'_> = serde_json::from_slice(body)?;
//! assert_eq!(request.input, Input::Text("Hi".into()));
//! assert_eq!(request.reasoning.unwrap().effort.as_deref(), Some("low"));
//! assert_eq!(request.ignored, ["store", "reasoning.summary"]); // in the body's order
//! # Ok::<(), serde_json::Error>(())
//! ```

mod object;
mod request;

pub use object::{
    ArgumentsEvent, ErrorEvent, IncompleteDetails, InputTokensDetails, ItemEvent, LifecycleEvent,
    OutputContent, OutputItem, OutputText, OutputTokensDetails, PartEvent, ResponseObject,
    ResponseUsage, TextEvent,
};
pub use request::{
    ContentPartDef, FormatDef, Input, InputItem, ItemContent, ReasoningDef, ResponsesRequest,
    ResponsesTool, TextDef, ToolChoiceDef,
};
