//! `POST /v1/chat/completions` → `chat-generations`: arbitrary input never panics and never
//! yields a body the Models API would refuse; generated requests translate exactly as specified.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};
use sf_models_bridge::core::{Task, TranslateError};
use sf_models_bridge::front;
use sf_models_bridge::openai::ChatCompletionRequest;
use sf_models_bridge::surface::einstein;

use crate::json::{self, Member};

/// The top-level keys the chat parser acts on; every other key is reported as ignored.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "n",
    "tools",
    "functions",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "reasoning_effort",
    "response_format",
];

/// Through the Chat Completions front and the einstein surface: the `chat-generations` body.
fn einstein_body(request: &ChatCompletionRequest<'_>) -> Result<Value, TranslateError> {
    let request = front::chat::to_core(request.clone())?;
    let Task::Chat(chat) = &request.task else {
        unreachable!("a chat request")
    };
    einstein::chat_body(chat).map(|body| serde_json::to_value(body).unwrap())
}

/// Parses and translates; whatever comes out must be an error or a valid Models API body.
fn check_any(body: &[u8]) {
    let Ok(request) = serde_json::from_slice::<ChatCompletionRequest<'_>>(body) else {
        return;
    };
    match einstein_body(&request) {
        Ok(upstream) => assert_valid_chat_body(&upstream),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
}

/// `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}`, non-empty.
pub fn assert_valid_chat_body(body: &Value) {
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 1, "{body}");
    let messages = object["messages"].as_array().expect("messages is an array");
    assert!(!messages.is_empty());
    for message in messages {
        let message = message.as_object().expect("a message object");
        assert_eq!(message.len(), 2, "{message:?}");
        assert!(matches!(
            message["role"].as_str(),
            Some("system" | "user" | "assistant")
        ));
        assert!(message["content"].is_string());
    }
}

/// A chat request where every known field is absent, null, right or anything.
fn loose_request() -> impl Strategy<Value = Value> {
    let part = (
        json::slot(
            prop_oneof![
                Just(json!("text")),
                Just(json!("image_url")),
                json::string().prop_map(Value::from)
            ]
            .boxed(),
        ),
        json::slot(json::string().prop_map(Value::from).boxed()),
    )
        .prop_map(|(kind, text)| json::object(vec![("type", kind), ("text", text)]));
    let content = prop_oneof![
        json::string().prop_map(Value::from),
        prop::collection::vec(part, 0..3).prop_map(Value::Array),
    ];
    let message = (
        json::slot(select(json::KNOWN_STRINGS).prop_map(Value::from).boxed()),
        json::slot(content.boxed()),
        json::slot(Just(json!([])).boxed()),
    )
        .prop_map(|(role, content, tool_calls)| {
            json::object(vec![
                ("role", role),
                ("content", content),
                ("tool_calls", tool_calls),
            ])
        });
    (
        json::slot(json::string().prop_map(Value::from).boxed()),
        json::slot(
            prop::collection::vec(message, 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        json::slot((0u64..3).prop_map(Value::from).boxed()),
        json::slot(Just(json!([])).boxed()),
        json::slot(any::<bool>().prop_map(Value::from).boxed()),
        json::slot(json::small_value().boxed()),
    )
        .prop_map(|(model, messages, n, tools, stream, temperature)| {
            json::object(vec![
                ("model", model),
                ("messages", messages),
                ("n", n),
                ("tools", tools),
                ("stream", stream),
                ("temperature", temperature),
            ])
        })
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_json_never_panics(value in prop_oneof![json::value(), loose_request()]) {
        check_any(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in json::bytes()) {
        check_any(&bytes);
    }

    #[test]
    fn generated_requests_translate_exactly(request in request()) {
        check_generated(&request);
    }
}

/// `tools`, `functions` and `tool_calls`: absent, null, or an array of this many entries.
#[derive(Debug, Clone, Copy)]
enum List {
    Absent,
    Null,
    Len(usize),
}

impl List {
    fn strategy() -> impl Strategy<Value = List> {
        prop_oneof![
            8 => Just(List::Absent),
            3 => Just(List::Null),
            3 => Just(List::Len(0)),
            1 => (1usize..3).prop_map(List::Len),
        ]
    }

    fn len(self) -> usize {
        match self {
            List::Len(len) => len,
            List::Absent | List::Null => 0,
        }
    }

    fn json(self, entry: &Value) -> Option<Value> {
        match self {
            List::Absent => None,
            List::Null => Some(Value::Null),
            List::Len(len) => Some(Value::Array(vec![entry.clone(); len])),
        }
    }
}

#[derive(Debug, Clone)]
struct Part {
    kind: String,
    /// Absent, null, or a string.
    text: Option<Option<String>>,
}

#[derive(Debug, Clone)]
enum Content {
    Absent,
    Null,
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone)]
struct Message {
    role: &'static str,
    content: Content,
    tool_calls: List,
    /// Absent, null, or a call.
    function_call: Option<bool>,
    name: Option<String>,
}

#[derive(Debug, Clone)]
struct Request {
    model: String,
    messages: Vec<Message>,
    /// Absent, null, or a value.
    n: Option<Option<u64>>,
    tools: List,
    functions: List,
    stream: Option<bool>,
    include_usage: Option<bool>,
    /// The whole request in the order it is written, unknown parameters included.
    members: Vec<Member>,
    escape_keys: Vec<bool>,
    escape_values: bool,
}

fn part() -> impl Strategy<Value = Part> {
    let kind = prop_oneof![
        40 => Just("text".to_owned()),
        1 => select(vec!["image_url", "input_audio", "file", "refusal", "Text", "text "])
            .prop_map(String::from),
        1 => json::string(),
    ];
    let text = prop_oneof![
        60 => json::string().prop_map(|text| Some(Some(text))),
        1 => Just(Some(None)),
        1 => Just(None),
    ];
    (kind, text).prop_map(|(kind, text)| Part { kind, text })
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        20 => json::string().prop_map(Content::Text),
        16 => prop::collection::vec(part(), 1..4).prop_map(Content::Parts),
        1 => Just(Content::Parts(Vec::new())),
        1 => Just(Content::Absent),
        1 => Just(Content::Null),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let role = prop_oneof![
        30 => select(vec!["system", "developer", "user", "assistant"]),
        1 => select(vec!["tool", "function"]),
    ];
    let function_call = prop_oneof![
        16 => Just(None),
        8 => Just(Some(false)),
        1 => Just(Some(true)),
    ];
    (
        role,
        content(),
        List::strategy(),
        function_call,
        proptest::option::of(json::string()),
    )
        .prop_map(|(role, content, tool_calls, function_call, name)| Message {
            role,
            content,
            tool_calls,
            function_call,
            name,
        })
}

/// A parameter the bridge does not act on: a real one, a long or header-safe name, or any text.
fn unknown_member() -> impl Strategy<Value = Member> {
    let key = prop_oneof![
        4 => select(vec![
            "frequency_penalty", "presence_penalty", "logprobs", "user", "seed", "metadata",
            "logit_bias", "top_logprobs", "prediction", "audio", "modalities", "store",
        ])
        .prop_map(String::from),
        2 => "[A-Za-z0-9_.-]{1,70}",
        1 => json::string(),
    ]
    .prop_filter("a known key", |key| !KNOWN.contains(&key.as_str()));
    (key, json::small_value()).prop_map(|(key, value)| Member { key, value })
}

fn request() -> impl Strategy<Value = Request> {
    let n = prop_oneof![
        6 => Just(None),
        2 => Just(Some(None)),
        4 => Just(Some(Some(1))),
        1 => prop_oneof![Just(0u64), Just(2), any::<u64>()].prop_map(|n| Some(Some(n))),
    ];
    (
        json::string(),
        prop::collection::vec(message(), 0..5),
        n,
        (List::strategy(), List::strategy()),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        prop_oneof![3 => prop::collection::vec(unknown_member(), 0..6), 1 => prop::collection::vec(unknown_member(), 20..45)],
    )
        .prop_flat_map(
            |(model, messages, n, (tools, functions), (stream, include_usage), unknown)| {
                let mut members = known_members(
                    &model,
                    &messages,
                    n,
                    tools,
                    functions,
                    stream,
                    include_usage,
                );
                members.extend(unknown);
                let count = members.len();
                (
                    Just(Request {
                        model,
                        messages,
                        n,
                        tools,
                        functions,
                        stream,
                        include_usage,
                        members: Vec::new(),
                        escape_keys: Vec::new(),
                        escape_values: false,
                    }),
                    Just(members).prop_shuffle(),
                    prop::collection::vec(prop::bool::weighted(0.2), count),
                    any::<bool>(),
                )
            },
        )
        .prop_map(|(mut request, members, escape_keys, escape_values)| {
            request.members = members;
            request.escape_keys = escape_keys;
            request.escape_values = escape_values;
            request
        })
}

fn known_members(
    model: &str,
    messages: &[Message],
    n: Option<Option<u64>>,
    tools: List,
    functions: List,
    stream: Option<bool>,
    include_usage: Option<bool>,
) -> Vec<Member> {
    let member = |key: &str, value: Value| Member {
        key: key.to_owned(),
        value,
    };
    let mut members = vec![
        member("model", Value::from(model)),
        member(
            "messages",
            Value::Array(messages.iter().map(message_json).collect()),
        ),
    ];
    if let Some(n) = n {
        members.push(member("n", json!(n)));
    }
    let tool = json!({"type": "function", "function": {"name": "f"}});
    if let Some(value) = tools.json(&tool) {
        members.push(member("tools", value));
    }
    if let Some(value) = functions.json(&json!({"name": "f"})) {
        members.push(member("functions", value));
    }
    if let Some(stream) = stream {
        members.push(member("stream", Value::from(stream)));
    }
    if let Some(include_usage) = include_usage {
        members.push(member(
            "stream_options",
            json!({"include_usage": include_usage}),
        ));
    }
    members
}

fn message_json(message: &Message) -> Value {
    let content = match &message.content {
        Content::Absent => None,
        Content::Null => Some(Value::Null),
        Content::Text(text) => Some(Value::from(text.as_str())),
        Content::Parts(parts) => Some(Value::Array(
            parts
                .iter()
                .map(|part| {
                    let text = part.text.as_ref().map(|text| json!(text));
                    let image =
                        (part.kind == "image_url").then(|| json!({"url": "https://x/y.png"}));
                    json::object(vec![
                        ("type", Some(Value::from(part.kind.as_str()))),
                        ("text", text),
                        ("image_url", image),
                    ])
                })
                .collect(),
        )),
    };
    let call =
        json!({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    let function_call = message.function_call.map(|called| {
        if called {
            json!({"name": "f", "arguments": "{}"})
        } else {
            Value::Null
        }
    });
    json::object(vec![
        ("role", Some(Value::from(message.role))),
        ("content", content),
        ("tool_calls", message.tool_calls.json(&call)),
        ("function_call", function_call),
        ("name", message.name.as_deref().map(Value::from)),
    ])
}

/// How outside text appears in an error message: one line (control characters and Unicode line
/// separators as spaces, none at either end), at most `max` characters, `…` marking a cut.
fn as_shown(text: &str, max: usize) -> String {
    let breaks = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    let one_line: String = text
        .chars()
        .map(|c| if breaks(c) { ' ' } else { c })
        .collect();
    let chars: Vec<char> = one_line.trim().chars().collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let mut cut: String = chars[..max - 1].iter().collect();
    cut.push('…');
    cut
}

/// Every reason the request cannot be honoured; the translator must report one of them.
fn violations(request: &Request) -> Vec<TranslateError> {
    let mut found = Vec::new();
    if request.tools.len() + request.functions.len() > 0 {
        found.push(TranslateError::Tools);
    }
    if let Some(Some(n)) = request.n {
        if n != 1 {
            found.push(TranslateError::Choices(n));
        }
    }
    if request.messages.is_empty() {
        found.push(TranslateError::NoMessages);
    }
    for (index, message) in request.messages.iter().enumerate() {
        if let role @ ("tool" | "function") = message.role {
            found.push(TranslateError::ToolMessage { index, role });
        }
        if message.tool_calls.len() > 0 || message.function_call == Some(true) {
            found.push(TranslateError::ToolCalls { index });
        }
        match &message.content {
            Content::Absent | Content::Null => found.push(TranslateError::MissingContent { index }),
            Content::Text(_) => {}
            Content::Parts(parts) if parts.is_empty() => {
                found.push(TranslateError::MissingContent { index })
            }
            Content::Parts(parts) => {
                for part in parts {
                    if part.kind != "text" {
                        found.push(TranslateError::UnsupportedPart {
                            index,
                            kind: as_shown(&part.kind, 40),
                        });
                    } else if !matches!(part.text, Some(Some(_))) {
                        found.push(TranslateError::EmptyTextPart { index });
                    }
                }
            }
        }
    }
    found
}

/// The names the parser must report: unknown keys in order, once each, header-safe, at most 32.
fn expected_ignored(members: &[Member]) -> Vec<&str> {
    let mut ignored: Vec<&str> = Vec::new();
    for member in members {
        let key = member.key.as_str();
        let safe = key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !KNOWN.contains(&key) && safe && !ignored.contains(&key) && ignored.len() < 32 {
            ignored.push(key);
        }
    }
    ignored
}

fn check_generated(request: &Request) {
    let body = json::object_text(
        &request.members,
        &request.escape_keys,
        request.escape_values,
    );
    let parsed: ChatCompletionRequest<'_> =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(parsed.model, request.model);
    assert_eq!(parsed.messages.len(), request.messages.len());
    assert_eq!(parsed.stream, request.stream.unwrap_or(false));
    assert_eq!(
        parsed.stream_options.include_usage,
        request.include_usage.unwrap_or(false)
    );
    assert_eq!(parsed.n, request.n.flatten());
    assert_eq!(
        parsed.tools.len(),
        request.tools.len() + request.functions.len()
    );
    assert_eq!(parsed.ignored, expected_ignored(&request.members));

    let violations = violations(request);
    match einstein_body(&parsed) {
        Ok(got) => {
            assert!(violations.is_empty(), "accepted despite {violations:?}");
            assert_valid_chat_body(&got);
            let expected: Vec<Value> = request.messages.iter().map(expected_message).collect();
            assert_eq!(got, json!({ "messages": expected }));
        }
        Err(error) => assert!(
            violations.contains(&error),
            "{error:?} is not among {violations:?}"
        ),
    }
}

fn expected_message(message: &Message) -> Value {
    let role = match message.role {
        "developer" => "system",
        role => role,
    };
    let content: String = match &message.content {
        Content::Text(text) => text.clone(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|part| part.text.clone().flatten())
            .collect(),
        Content::Absent | Content::Null => unreachable!("refused"),
    };
    json!({"role": role, "content": content})
}
