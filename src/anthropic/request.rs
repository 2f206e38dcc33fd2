//! `POST /v1/messages`: the request, parsed leniently in one pass.
//!
//! Every field the Messages API requires is optional here, so that the front can answer a
//! missing one in Anthropic's own words (`max_tokens: Field required`) rather than serde's.
//! Blocks are flat structs that accept every block type: which fields a type needs, and which
//! types the bridge can carry, is the front's business.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::openai::request::{report_ignored, set_once, CowStr, CowStrVisitor};
use crate::openai::RawJson;

/// `POST /v1/messages`. Parameters the bridge does not act on are accepted and listed in
/// [`ignored`](Self::ignored).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessagesRequest<'a> {
    /// `model` (required by the API).
    pub model: Option<Cow<'a, str>>,
    /// `max_tokens` (required by the API).
    pub max_tokens: Option<u64>,
    /// `messages` (required by the API).
    pub messages: Option<Vec<InputMessage<'a>>>,
    /// `system`: a string or text blocks.
    pub system: Option<Content<'a>>,
    /// `tools`, as sent.
    pub tools: Vec<ToolDef<'a>>,
    /// `tool_choice`.
    pub tool_choice: Option<ToolChoiceDef<'a>>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// `top_k`.
    pub top_k: Option<u64>,
    /// `stop_sequences`.
    pub stop_sequences: Vec<Cow<'a, str>>,
    /// `stream`: answer as server-sent events.
    pub stream: bool,
    /// `thinking`: extended thinking.
    pub thinking: Option<ThinkingDef<'a>>,
    /// `output_config`: effort and output format.
    pub output_config: Option<OutputConfig<'a>>,
    /// The names of top-level parameters that were accepted but are not forwarded.
    pub ignored: Vec<Cow<'a, str>>,
}

/// Who wrote a message: the Messages API has no `system` role (it is a top-level field) and
/// no `tool` role (results are blocks of a user message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person, and tool results.
    User,
    /// The model.
    Assistant,
}

/// One message of `messages`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InputMessage<'a> {
    /// Who wrote it.
    pub role: Role,
    /// What it holds.
    #[serde(borrow)]
    pub content: Content<'a>,
}

/// Content: a string (one text block), or blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'a> {
    /// Shorthand for one `text` block.
    Text(Cow<'a, str>),
    /// Blocks, in order.
    Blocks(Vec<Block<'a>>),
}

/// One content block, of any type, with the fields of the types the bridge reads: `text`,
/// `image`, `tool_use`, `tool_result`, `thinking`, `redacted_thinking`, `document`, ... Other
/// fields (`cache_control`, `citations`, `signature`, ...) are skipped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Block<'a> {
    /// The block's type.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `text`: the text.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// `image` (and `document`): where its bytes are. Kept raw, as its shape depends on the
    /// block type (a `search_result`'s `source` is a string).
    #[serde(borrow, default)]
    pub source: Option<RawJson<'a>>,
    /// `tool_use`: the call's id.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// `tool_use`: the tool's name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// `tool_use`: the arguments, a JSON object kept as the caller wrote it.
    #[serde(borrow, default)]
    pub input: Option<RawJson<'a>>,
    /// `tool_result`: the id of the call it answers.
    #[serde(borrow, default)]
    pub tool_use_id: Option<Cow<'a, str>>,
    /// `tool_result`: a string or blocks ([`Content`]). Kept raw, as other block types have
    /// a `content` of other shapes.
    #[serde(borrow, default)]
    pub content: Option<RawJson<'a>>,
    /// `tool_result`: whether the tool failed.
    #[serde(default)]
    pub is_error: Option<bool>,
}

/// An image block's `source`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImageSource<'a> {
    /// `base64`, `url` or `file`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `base64`: the media type, such as `image/png`.
    #[serde(borrow, default)]
    pub media_type: Option<Cow<'a, str>>,
    /// `base64`: the bytes, in base64.
    #[serde(borrow, default)]
    pub data: Option<Cow<'a, str>>,
    /// `url`: the image's URL.
    #[serde(borrow, default)]
    pub url: Option<Cow<'a, str>>,
}

/// One entry of `tools`: a client tool (`name`, `description`, `input_schema`), or a server
/// tool (`type` such as `web_search_20250305`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ToolDef<'a> {
    /// `custom` or absent for a client tool; a server tool's versioned type otherwise.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// Its name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// What it does.
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema of its input, kept as the caller wrote it.
    #[serde(borrow, default)]
    pub input_schema: Option<RawJson<'a>>,
    /// Whether its input must follow the schema exactly.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`: `{"type": "auto" | "any" | "tool" | "none", "name", "disable_parallel_tool_use"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ToolChoiceDef<'a> {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `tool`: which tool.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// At most one tool call per turn.
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

/// `thinking`: `{"type": "enabled", "budget_tokens"}`, `{"type": "adaptive"}` or
/// `{"type": "disabled"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ThinkingDef<'a> {
    /// `enabled`, `adaptive` or `disabled`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `enabled`: how many tokens the model may think for.
    #[serde(default)]
    pub budget_tokens: Option<u64>,
}

/// `output_config`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct OutputConfig<'a> {
    /// How hard the model works: `low`, `medium`, `high`, `xhigh`, `max`.
    #[serde(borrow, default)]
    pub effort: Option<Cow<'a, str>>,
    /// The form of the answer: `{"type": "json_schema", "schema"}`.
    #[serde(borrow, default)]
    pub format: Option<OutputFormat<'a>>,
}

/// `output_config.format`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OutputFormat<'a> {
    /// `json_schema`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The JSON schema the answer follows.
    #[serde(borrow, default)]
    pub schema: Option<RawJson<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessagesRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessagesVisitor;

        impl<'de> Visitor<'de> for MessagesVisitor {
            type Value = MessagesRequest<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a messages request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut request = MessagesRequest::default();
                let (mut tools, mut stop_sequences) = (None, None);
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => {
                            set_once(&mut request.model, map.next_value::<CowStr>()?.0, "model")?
                        }
                        "max_tokens" => {
                            set_once(&mut request.max_tokens, map.next_value()?, "max_tokens")?
                        }
                        "messages" => {
                            set_once(&mut request.messages, map.next_value()?, "messages")?
                        }
                        "system" => set_once(&mut request.system, map.next_value()?, "system")?,
                        "tools" => set_once(
                            &mut tools,
                            map.next_value::<Option<Vec<ToolDef<'de>>>>()?,
                            "tools",
                        )?,
                        "tool_choice" => request.tool_choice = map.next_value()?,
                        "temperature" => request.temperature = map.next_value()?,
                        "top_p" => request.top_p = map.next_value()?,
                        "top_k" => request.top_k = map.next_value()?,
                        "stop_sequences" => set_once(
                            &mut stop_sequences,
                            map.next_value::<Option<Vec<CowStr<'de>>>>()?,
                            "stop_sequences",
                        )?,
                        "stream" => {
                            request.stream = map.next_value::<Option<bool>>()?.unwrap_or(false)
                        }
                        "thinking" => request.thinking = map.next_value()?,
                        "output_config" => request.output_config = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            report_ignored(&mut request.ignored, key);
                        }
                    }
                }
                request.tools = tools.flatten().unwrap_or_default();
                request.stop_sequences = stop_sequences
                    .flatten()
                    .into_iter()
                    .flatten()
                    .map(|CowStr(stop)| stop)
                    .collect();
                Ok(request)
            }
        }

        deserializer.deserialize_map(MessagesVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(Content::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(Content::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(Content::Text)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(Content::Blocks(blocks))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<MessagesRequest<'_>, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn fields_are_read_and_the_rest_reported() {
        let request = parse(
            r#"{"model":"claude","max_tokens":1024,"stream":true,"top_k":5,"temperature":0.5,
                "stop_sequences":["END"],"metadata":{"user_id":"u"},"service_tier":"auto",
                "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
                "messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .unwrap();
        assert_eq!(request.model.as_deref(), Some("claude"));
        assert_eq!(request.max_tokens, Some(1024));
        assert!(request.stream);
        assert_eq!(request.top_k, Some(5));
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.stop_sequences, ["END"]);
        assert_eq!(request.ignored, ["metadata", "service_tier"]);
        let Some(Content::Blocks(system)) = &request.system else {
            panic!("system blocks")
        };
        assert_eq!(system[0].text.as_deref(), Some("Be brief."));
        let messages = request.messages.unwrap();
        assert_eq!(messages[0].role, Role::User);
        assert_eq!(messages[0].content, Content::Text("Hi".into()));
    }

    #[test]
    fn required_fields_may_be_missing_here() {
        let request = parse(r#"{"model":"m"}"#).unwrap();
        assert_eq!(request.max_tokens, None);
        assert_eq!(request.messages, None);
    }

    #[test]
    fn blocks_of_every_shape_parse() {
        let request = parse(
            r#"{"messages":[{"role":"assistant","content":[
                {"type":"thinking","thinking":"hm","signature":"sig"},
                {"type":"tool_use","id":"t1","name":"f","input":{"a":[1,2]}},
                {"type":"server_tool_use","id":"s1","name":"web_search","input":{}},
                {"type":"web_search_tool_result","tool_use_id":"s1","content":{"type":"web_search_tool_result_error","error_code":"unavailable"}},
                {"type":"search_result","source":"https://x","title":"t","content":[{"type":"text","text":"x"}]}]}]}"#,
        )
        .unwrap();
        let messages = request.messages.unwrap();
        let Content::Blocks(blocks) = &messages[0].content else {
            panic!("blocks")
        };
        assert_eq!(blocks.len(), 5);
        assert_eq!(blocks[1].input.map(RawJson::get), Some(r#"{"a":[1,2]}"#));
        assert_eq!(blocks[4].source.map(RawJson::get), Some(r#""https://x""#));
    }

    #[test]
    fn wrong_shapes_and_duplicates_are_errors() {
        for body in [
            r#"{"messages":[{"role":"system","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":5}]}"#,
            r#"{"messages":[{"role":"user"}]}"#,
            r#"{"max_tokens":"many"}"#,
            r#"{"model":"a","model":"b"}"#,
            r#"{"tools":[],"tools":[]}"#,
            r#"[1]"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }
}
