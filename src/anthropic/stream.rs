//! Stream events: each is sent as `event: <type>` and `data: <this JSON>`.

use serde::Serialize;

use super::response::{ContentBlock, Message, StopReason};

/// One event of a streamed message.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageStreamEvent<'a> {
    /// The message begins, with no content yet.
    MessageStart {
        /// The message so far.
        message: Message<'a>,
    },
    /// A content block begins: an empty text block, or a tool call with `input: {}`.
    ContentBlockStart {
        /// The block's position in the content.
        index: usize,
        /// The block as it starts.
        content_block: ContentBlock<'a>,
    },
    /// A piece of a block.
    ContentBlockDelta {
        /// The block's position in the content.
        index: usize,
        /// The piece.
        delta: Delta<'a>,
    },
    /// A block is complete.
    ContentBlockStop {
        /// The block's position in the content.
        index: usize,
    },
    /// The message's end: why it stopped, and the token counts.
    MessageDelta {
        /// Why it stopped.
        delta: MessageEnd,
        /// Token counts, cumulative: clients overwrite what `message_start` said.
        usage: DeltaUsage,
    },
    /// The stream is complete.
    MessageStop,
}

impl MessageStreamEvent<'_> {
    /// The event's `type`, which is also its SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            MessageStreamEvent::MessageStart { .. } => "message_start",
            MessageStreamEvent::ContentBlockStart { .. } => "content_block_start",
            MessageStreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            MessageStreamEvent::ContentBlockStop { .. } => "content_block_stop",
            MessageStreamEvent::MessageDelta { .. } => "message_delta",
            MessageStreamEvent::MessageStop => "message_stop",
        }
    }
}

/// A piece of a content block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta<'a> {
    /// More text.
    TextDelta {
        /// The piece.
        text: &'a str,
    },
    /// More of a tool call's input: JSON text, cut anywhere.
    InputJsonDelta {
        /// The piece.
        partial_json: &'a str,
    },
}

/// `message_delta.delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageEnd {
    /// Why the model stopped.
    pub stop_reason: StopReason,
    /// The stop sequence met (never known here).
    pub stop_sequence: Option<&'static str>,
}

/// `message_delta.usage`: the output count, and the input counts when they are known only at
/// the end (as they are when the bridge streams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeltaUsage {
    /// Output tokens so far.
    pub output_tokens: u64,
    /// Input tokens neither read from nor written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}
