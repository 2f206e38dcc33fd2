//! The request of `POST /v1/responses`, parsed in one pass, strings borrowed from the body.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::openai::request::{report_ignored, set_once, CowStr, CowStrVisitor, RawJson};

/// `POST /v1/responses`, parsed leniently: parameters the bridge does not act on are accepted and
/// listed in [`ignored`](Self::ignored). A parameter sent as `null` counts as not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest<'a> {
    /// The model name the caller asked for.
    pub model: Cow<'a, str>,
    /// `input`: the conversation.
    pub input: Input<'a>,
    /// `instructions`: a system message put before the input.
    pub instructions: Option<Cow<'a, str>>,
    /// `tools`, as sent.
    pub tools: Vec<ResponsesTool<'a>>,
    /// `tool_choice`.
    pub tool_choice: Option<ToolChoiceDef<'a>>,
    /// `parallel_tool_calls`.
    pub parallel_tool_calls: Option<bool>,
    /// `max_output_tokens`.
    pub max_output_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// `reasoning`.
    pub reasoning: Option<ReasoningDef<'a>>,
    /// `text`.
    pub text: Option<TextDef<'a>>,
    /// `stream`: answer as server-sent events.
    pub stream: bool,
    /// The first parameter sent that refers to state OpenAI keeps between requests
    /// (`previous_response_id`, `conversation`, a stored `prompt`, `background: true`).
    pub server_state: Option<&'static str>,
    /// The names of parameters that were accepted but are not acted on (nested ones as
    /// `reasoning.summary`).
    pub ignored: Vec<Cow<'a, str>>,
}

/// `input`.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// One user message's text.
    Text(Cow<'a, str>),
    /// Items, oldest first.
    Items(Vec<InputItem<'a>>),
}

/// One item of `input`, parsed leniently whatever its `type`: the fields of the types the bridge
/// reads (`message`, `function_call`, `function_call_output`), the front says what is missing or
/// not supported.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct InputItem<'a> {
    /// `message`, `function_call`, `function_call_output`, `reasoning`, ...; a message may leave
    /// it out.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// A message's author: `user`, `assistant`, `system` or `developer`.
    #[serde(borrow, default)]
    pub role: Option<Cow<'a, str>>,
    /// A message's content.
    #[serde(borrow, default)]
    pub content: Option<ItemContent<'a>>,
    /// A function call's id, which its output names.
    #[serde(borrow, default)]
    pub call_id: Option<Cow<'a, str>>,
    /// The function called.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// A function call's arguments, as JSON text.
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
    /// A function call output's content.
    #[serde(borrow, default)]
    pub output: Option<ItemContent<'a>>,
}

/// A message's `content` or a function call output's `output`: a string, or a list of parts.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemContent<'a> {
    /// Plain text.
    Text(Cow<'a, str>),
    /// Typed parts such as `{"type": "input_text", "text": "..."}`.
    Parts(Vec<ContentPartDef<'a>>),
    /// Anything else (an object, a number): the shape of an item type the bridge does not read.
    Other,
}

/// One content part, parsed leniently.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ContentPartDef<'a> {
    /// `input_text`, `output_text`, `input_image`, `input_file`, `refusal`, ...
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The text of a text part.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// The image of an `input_image` part: an `https:` or `data:` URL.
    #[serde(borrow, default)]
    pub image_url: Option<Cow<'a, str>>,
    /// A file uploaded to OpenAI.
    #[serde(borrow, default)]
    pub file_id: Option<Cow<'a, str>>,
    /// The text of a `refusal` part.
    #[serde(borrow, default)]
    pub refusal: Option<Cow<'a, str>>,
}

/// One entry of `tools`: a function is `{"type": "function", "name", "description",
/// "parameters", "strict"}` (flat, unlike Chat Completions); other types are tools the provider
/// runs.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ResponsesTool<'a> {
    /// `function`, `web_search`, `file_search`, ...
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The function's name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// What it does.
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema of its arguments, kept as the caller wrote it.
    #[serde(borrow, default)]
    pub parameters: Option<RawJson<'a>>,
    /// Whether arguments must follow the schema exactly.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`: a mode, or an object naming a tool.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoiceDef<'a> {
    /// `auto`, `none`, `required`, ...
    Mode(Cow<'a, str>),
    /// `{"type": ..., "name": ...}`; other fields are not read.
    Object {
        /// `function`, `allowed_tools`, `web_search`, ...
        kind: Option<Cow<'a, str>>,
        /// The function's name.
        name: Option<Cow<'a, str>>,
    },
}

/// `reasoning`; its other keys (`summary`, ...) are reported as ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReasoningDef<'a> {
    /// `effort`: `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, ...
    pub effort: Option<Cow<'a, str>>,
}

/// `text`; its other keys (`verbosity`, ...) are reported as ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextDef<'a> {
    /// `format`.
    pub format: Option<FormatDef<'a>>,
}

/// `text.format`: `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema",
/// "name", "schema", "description", "strict"}` (flat, unlike Chat Completions).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct FormatDef<'a> {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The schema's name.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// What the schema is for.
    #[serde(borrow, default)]
    pub description: Option<Cow<'a, str>>,
    /// The JSON schema, kept as the caller wrote it.
    #[serde(borrow, default)]
    pub schema: Option<RawJson<'a>>,
    /// Whether the answer must follow the schema exactly.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// The longest key of a nested object reported as ignored (the report drops longer names
/// anyway; this only spares formatting them).
const MAX_NESTED_KEY: usize = 48;

impl<'de: 'a, 'a> Deserialize<'de> for ResponsesRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequestVisitor;

        impl<'de> Visitor<'de> for RequestVisitor {
            type Value = ResponsesRequest<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a responses request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut model = None;
                let mut input = None;
                let mut instructions: Option<Option<CowStr<'de>>> = None;
                let mut tools: Option<Option<Vec<ResponsesTool<'de>>>> = None;
                let mut tool_choice = None;
                let mut parallel_tool_calls = None;
                let mut max_output_tokens = None;
                let mut temperature = None;
                let mut top_p = None;
                let mut reasoning = None;
                let mut text = None;
                let mut stream = None;
                let mut server_state = None;
                let mut ignored = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => set_once(&mut model, map.next_value::<CowStr>()?.0, "model")?,
                        "input" => set_once(&mut input, map.next_value()?, "input")?,
                        "instructions" => {
                            set_once(&mut instructions, map.next_value()?, "instructions")?
                        }
                        "tools" => set_once(&mut tools, map.next_value()?, "tools")?,
                        "tool_choice" => {
                            set_once(&mut tool_choice, map.next_value()?, "tool_choice")?
                        }
                        "parallel_tool_calls" => set_once(
                            &mut parallel_tool_calls,
                            map.next_value()?,
                            "parallel_tool_calls",
                        )?,
                        "max_output_tokens" => set_once(
                            &mut max_output_tokens,
                            map.next_value()?,
                            "max_output_tokens",
                        )?,
                        "temperature" => {
                            set_once(&mut temperature, map.next_value()?, "temperature")?
                        }
                        "top_p" => set_once(&mut top_p, map.next_value()?, "top_p")?,
                        "reasoning" => {
                            let value =
                                map.next_value_seed(Settings::new("reasoning", &mut ignored))?;
                            set_once(&mut reasoning, value, "reasoning")?
                        }
                        "text" => {
                            let value = map.next_value_seed(Settings::new("text", &mut ignored))?;
                            set_once(&mut text, value, "text")?
                        }
                        "stream" => set_once(&mut stream, map.next_value()?, "stream")?,
                        "previous_response_id" => {
                            note_state(&mut server_state, &mut map, "previous_response_id")?
                        }
                        "conversation" => note_state(&mut server_state, &mut map, "conversation")?,
                        "prompt" => note_state(&mut server_state, &mut map, "prompt")?,
                        "background" => {
                            if map.next_value::<Option<bool>>()? == Some(true) {
                                server_state.get_or_insert("background");
                            }
                        }
                        _ => {
                            if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                                report_ignored(&mut ignored, key);
                            }
                        }
                    }
                }
                Ok(ResponsesRequest {
                    model: model.ok_or_else(|| de::Error::missing_field("model"))?,
                    input: input.ok_or_else(|| de::Error::missing_field("input"))?,
                    instructions: instructions.flatten().map(|text| text.0),
                    tools: tools.flatten().unwrap_or_default(),
                    tool_choice: tool_choice.flatten(),
                    parallel_tool_calls: parallel_tool_calls.flatten(),
                    max_output_tokens: max_output_tokens.flatten(),
                    temperature: temperature.flatten(),
                    top_p: top_p.flatten(),
                    reasoning: reasoning.flatten(),
                    text: text.flatten(),
                    stream: stream.flatten().unwrap_or(false),
                    server_state,
                    ignored,
                })
            }
        }

        deserializer.deserialize_map(RequestVisitor)
    }
}

/// Notes `name` as sent when its value is not `null`: a reference to state kept by OpenAI.
fn note_state<'de, A: MapAccess<'de>>(
    state: &mut Option<&'static str>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if map.next_value::<Option<IgnoredAny>>()?.is_some() {
        state.get_or_insert(name);
    }
    Ok(())
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;

        impl<'de> Visitor<'de> for InputVisitor {
            type Value = Input<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of input items")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(Input::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(Input::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(Input::Text)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Input::Items(items))
            }
        }

        deserializer.deserialize_any(InputVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ItemContent<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = ItemContent<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(ItemContent::Text)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(ItemContent::Text)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(ItemContent::Text)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(ItemContent::Parts(parts))
            }

            // Item types the bridge does not read carry other shapes under these names (a
            // computer call's screenshot object): the front names the item type instead of
            // serde failing on the shape.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ItemContent::Other)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ItemContent::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ItemContent::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ItemContent::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ItemContent::Other)
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ToolChoiceDef<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Named<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            name: Option<Cow<'a, str>>,
        }

        struct ChoiceVisitor;

        impl<'de> Visitor<'de> for ChoiceVisitor {
            type Value = ToolChoiceDef<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a tool choice object")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_borrowed_str(v).map(ToolChoiceDef::Mode)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                CowStrVisitor.visit_str(v).map(ToolChoiceDef::Mode)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                CowStrVisitor.visit_string(v).map(ToolChoiceDef::Mode)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let named = Named::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ToolChoiceDef::Object {
                    kind: named.kind,
                    name: named.name,
                })
            }
        }

        deserializer.deserialize_any(ChoiceVisitor)
    }
}

/// An object of settings of which the bridge reads some keys; the others are reported as
/// ignored under the object's name (`reasoning.summary`).
trait SettingsObject<'de>: Default {
    /// Reads the value of `key` if it is one this object knows; `false` leaves it unread.
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

impl<'de: 'a, 'a> SettingsObject<'de> for ReasoningDef<'a> {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "effort" => {
                if let Some(CowStr(effort)) = map.next_value()? {
                    set_once(&mut self.effort, effort, "effort")?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl<'de: 'a, 'a> SettingsObject<'de> for TextDef<'a> {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "format" => {
                if let Some(format) = map.next_value()? {
                    set_once(&mut self.format, format, "format")?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Reads a nullable [`SettingsObject`], reporting its unread keys into the request's list.
struct Settings<'r, 'de, T> {
    name: &'static str,
    ignored: &'r mut Vec<Cow<'de, str>>,
    object: PhantomData<T>,
}

impl<'r, 'de, T> Settings<'r, 'de, T> {
    fn new(name: &'static str, ignored: &'r mut Vec<Cow<'de, str>>) -> Self {
        Self {
            name,
            ignored,
            object: PhantomData,
        }
    }
}

impl<'de, T: SettingsObject<'de>> DeserializeSeed<'de> for Settings<'_, 'de, T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, T: SettingsObject<'de>> Visitor<'de> for Settings<'_, 'de, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a `{}` object", self.name)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = T::default();
        while let Some(CowStr(key)) = map.next_key()? {
            if object.read(&key, &mut map)? {
                continue;
            }
            let sent = map.next_value::<Option<IgnoredAny>>()?.is_some();
            if sent && key.len() <= MAX_NESTED_KEY {
                report_ignored(self.ignored, Cow::Owned(format!("{}.{key}", self.name)));
            }
        }
        Ok(Some(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ResponsesRequest<'_>, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn every_parameter_read_is_read() {
        let request = parse(
            r#"{"model": "gpt-5", "input": "Hi", "instructions": "Be terse.",
                "tools": [{"type": "function", "name": "f", "description": "d",
                           "parameters": {"type": "object"}, "strict": true}],
                "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
                "max_output_tokens": 100, "temperature": 0.5, "top_p": 0.9,
                "reasoning": {"effort": "low", "summary": "auto"},
                "text": {"format": {"type": "json_schema", "name": "s", "schema": {}, "strict": true},
                         "verbosity": "low"},
                "stream": true, "store": false, "metadata": {"a": "b"}, "user": null}"#,
        )
        .unwrap();
        assert_eq!(request.model, "gpt-5");
        assert_eq!(request.input, Input::Text("Hi".into()));
        assert_eq!(request.instructions.as_deref(), Some("Be terse."));
        assert_eq!(request.tools[0].name.as_deref(), Some("f"));
        assert_eq!(
            request.tools[0].parameters.map(RawJson::get),
            Some(r#"{"type": "object"}"#)
        );
        assert_eq!(
            request.tool_choice,
            Some(ToolChoiceDef::Object {
                kind: Some("function".into()),
                name: Some("f".into())
            })
        );
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(request.max_output_tokens, Some(100));
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.top_p, Some(0.9));
        assert_eq!(request.reasoning.unwrap().effort.as_deref(), Some("low"));
        let format = request.text.unwrap().format.unwrap();
        assert_eq!(format.kind.as_deref(), Some("json_schema"));
        assert_eq!(format.schema.map(RawJson::get), Some("{}"));
        assert!(request.stream);
        assert_eq!(request.server_state, None);
        // Nested keys under their object's name; `null` is not sent.
        assert_eq!(
            request.ignored,
            ["reasoning.summary", "text.verbosity", "store", "metadata"]
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let request =
            parse(r#"{"model": "m", "input": [{"role": "user", "content": "plain"}]}"#).unwrap();
        let Input::Items(items) = &request.input else {
            panic!("not items")
        };
        assert!(matches!(
            &items[0].content,
            Some(ItemContent::Text(Cow::Borrowed("plain")))
        ));
        assert!(matches!(request.model, Cow::Borrowed("m")));
    }

    #[test]
    fn stateful_parameters_are_noted_not_ignored() {
        for (extra, state) in [
            (
                r#""previous_response_id": "resp_1""#,
                Some("previous_response_id"),
            ),
            (r#""conversation": {"id": "conv_1"}"#, Some("conversation")),
            (r#""prompt": {"id": "pmpt_1"}"#, Some("prompt")),
            (r#""background": true"#, Some("background")),
            (r#""background": false"#, None),
            (r#""previous_response_id": null"#, None),
        ] {
            let body = format!(r#"{{"model": "m", "input": "x", {extra}}}"#);
            let request = parse(&body).unwrap();
            assert_eq!(request.server_state, state, "{extra}");
            assert!(request.ignored.is_empty(), "{extra}");
        }
    }

    #[test]
    fn other_item_shapes_do_not_fail_the_parse() {
        let request = parse(
            r#"{"model": "m", "input": [
                {"type": "computer_call_output", "call_id": "c", "output": {"type": "computer_screenshot"}},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}],
                 "encrypted_content": "xyz"},
                {"type": "function_call_output", "call_id": "c", "output": 5}]}"#,
        )
        .unwrap();
        let Input::Items(items) = request.input else {
            panic!("not items")
        };
        assert_eq!(items[0].output, Some(ItemContent::Other));
        assert_eq!(items[1].kind.as_deref(), Some("reasoning"));
        assert_eq!(items[2].output, Some(ItemContent::Other));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            r#"{"input": "x"}"#,
            r#"{"model": "m"}"#,
            r#"{"model": "m", "input": 5}"#,
            r#"{"model": "m", "model": "n", "input": "x"}"#,
            r#"{"model": "m", "input": "x", "input": "y"}"#,
            r#"{"model": "m", "input": "x", "reasoning": {"effort": "low", "effort": "high"}}"#,
            r#"{"model": "m", "input": "x", "reasoning": "high"}"#,
            r#"{"model": "m", "input": "x", "tools": {}}"#,
            r#"{"model": "m", "input": "x", "tool_choice": 1}"#,
            r#"{"model": "m", "input": "x", "max_output_tokens": -1}"#,
            r#"{"model": "m", "input": [{"role": "user", "content": "a", "content": "b"}]}"#,
            r#"[1]"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }
}
