//! Checks a model call the way the real API does, and reads out what the answer needs.
//!
//! Pure: headers and bytes in, a [`Call`] or an [`ApiError`] out. Unknown JSON fields are ignored,
//! as the real API ignores them.

use http::{header, HeaderMap};
use serde_json::{Map, Value};

use super::catalog::Operation;
use super::errors::ApiError;

/// A valid model call: what the answer is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Chat(Prompt),
    Generations(Prompt),
    Embeddings {
        inputs: Vec<String>,
        prompt_tokens: u64,
    },
}

/// The text a chat or text answer echoes, and what the prompt "cost".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// The last user message (chat) or the prompt (text).
    pub(crate) echo: String,
    pub(crate) prompt_tokens: u64,
}

/// Headers every call must carry, with their only accepted value.
const REQUIRED_HEADERS: [(&str, &str); 2] = [
    ("x-sfdc-app-context", "EinsteinGPT"),
    ("x-client-feature-id", "ai-platform-models-connected-app"),
];

const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// The bearer token of `Authorization`, if there is one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The two Einstein headers.
pub(crate) fn einstein_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    for (name, expected) in REQUIRED_HEADERS {
        if headers.get(name).is_none_or(|value| value != expected) {
            return Err(ApiError::InvalidHeader { name, expected });
        }
    }
    Ok(())
}

/// The content type and body of a call to `operation`.
pub(crate) fn body(
    operation: Operation,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, ApiError> {
    content_type(headers)?;
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::MalformedJson)?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadArgument(
            "Request body must be a JSON object".to_owned(),
        ));
    };
    localization(&fields)?;
    match operation {
        Operation::Chat => chat(&fields).map(Call::Chat),
        Operation::Generations => generation(&fields).map(Call::Generations),
        Operation::Embeddings => embeddings(&fields),
    }
}

/// A rough, deterministic token count: whitespace-separated words, at least one.
pub(crate) fn token_count(text: &str) -> u64 {
    (text.split_whitespace().count() as u64).max(1)
}

pub(crate) fn content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()));
    let essence = value
        .as_deref()
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            value.unwrap_or_default().into_owned(),
        )),
    }
}

fn chat(fields: &Map<String, Value>) -> Result<Prompt, ApiError> {
    let messages = required(fields, "messages")?;
    let Value::Array(messages) = messages else {
        return Err(wrong_type("java.util.List", Some(messages)));
    };
    if messages.is_empty() {
        return Err(ApiError::BadArgument(
            "messages must not be empty".to_owned(),
        ));
    }
    let mut echo = "";
    let mut prompt_tokens = 0;
    for (index, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(wrong_type("ChatMessage", Some(message)));
        };
        let role = string(message, "role", || format!("messages[{index}].role"))?;
        if !ROLES.contains(&role) {
            return Err(ApiError::BadArgument(format!(
                "Invalid role `{role}` in messages[{index}]: expected one of system, user, assistant"
            )));
        }
        let content = string(message, "content", || format!("messages[{index}].content"))?;
        prompt_tokens += token_count(content);
        if role == "user" {
            echo = content;
        }
    }
    Ok(Prompt {
        echo: echo.to_owned(),
        prompt_tokens,
    })
}

fn generation(fields: &Map<String, Value>) -> Result<Prompt, ApiError> {
    let prompt = string(fields, "prompt", || "prompt".to_owned())?;
    Ok(Prompt {
        echo: prompt.to_owned(),
        prompt_tokens: token_count(prompt),
    })
}

fn embeddings(fields: &Map<String, Value>) -> Result<Call, ApiError> {
    const LIST: &str = "java.util.List<java.lang.String>";
    let input = required(fields, "input")?;
    let Value::Array(input) = input else {
        return Err(wrong_type(LIST, Some(input)));
    };
    if input.is_empty() {
        return Err(ApiError::BadArgument("input must not be empty".to_owned()));
    }
    let inputs = input
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| wrong_type("java.lang.String", Some(item)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let prompt_tokens = inputs.iter().map(|text| token_count(text)).sum();
    Ok(Call::Embeddings {
        inputs,
        prompt_tokens,
    })
}

/// `localization` is optional, but when present it needs `defaultLocale`.
fn localization(fields: &Map<String, Value>) -> Result<(), ApiError> {
    match fields.get("localization") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(localization)) => string(localization, "defaultLocale", || {
            "localization.defaultLocale".to_owned()
        })
        .map(drop),
        Some(other) => Err(wrong_type("Localization", Some(other))),
    }
}

/// A present, non-null top-level field.
fn required<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a Value, ApiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Err(ApiError::RequiredFieldMissing(key.to_owned())),
        Some(value) => Ok(value),
    }
}

/// A required string field. `path` is only built on failure.
fn string<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<&'a str, ApiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Err(ApiError::RequiredFieldMissing(path())),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(wrong_type("java.lang.String", Some(other))),
    }
}

/// Jackson's wording: "Cannot deserialize value of type `X` from Array value".
fn wrong_type(expected: &'static str, found: Option<&Value>) -> ApiError {
    let found = match found {
        None | Some(Value::Null) => "Null",
        Some(Value::Bool(_)) => "Boolean",
        Some(Value::Number(_)) => "Number",
        Some(Value::String(_)) => "String",
        Some(Value::Array(_)) => "Array",
        Some(Value::Object(_)) => "Object",
    };
    ApiError::WrongType { expected, found }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    fn check(operation: Operation, body: Value) -> Result<Call, ApiError> {
        super::body(operation, &json_headers(), body.to_string().as_bytes())
    }

    fn message(result: Result<Call, ApiError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn the_spec_chat_request_echoes_its_last_user_message() {
        let fixture = include_str!("../../tests/fixtures/chat-generations.request.json");
        let call = super::body(Operation::Chat, &json_headers(), fixture.as_bytes()).unwrap();
        let echo = "Can you give me a recipe for cherry pie?".to_owned();
        assert_eq!(
            call,
            Call::Chat(Prompt {
                echo,
                prompt_tokens: 3 + 9
            })
        );
    }

    #[test]
    fn content_arrays_get_jacksons_error() {
        let body =
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
        let error = check(Operation::Chat, body).unwrap_err();
        assert!(matches!(error, ApiError::WrongType { found: "Array", .. }));
        assert_eq!(
            error.to_string(),
            "Cannot deserialize value of type `java.lang.String` from Array value"
        );
    }

    #[test]
    fn chat_requires_messages_roles_and_content() {
        assert_eq!(
            message(check(Operation::Chat, json!({}))),
            "Missing required field: messages"
        );
        assert_eq!(
            message(check(Operation::Chat, json!({"messages": []}))),
            "messages must not be empty"
        );
        let no_role = json!({"messages": [{"content": "hi"}]});
        assert_eq!(
            message(check(Operation::Chat, no_role)),
            "Missing required field: messages[0].role"
        );
        let developer = json!({"messages": [{"role": "developer", "content": "hi"}]});
        assert!(message(check(Operation::Chat, developer)).starts_with("Invalid role `developer`"));
        let no_content = json!({"messages": [{"role": "user"}]});
        assert_eq!(
            message(check(Operation::Chat, no_content)),
            "Missing required field: messages[0].content"
        );
        let not_a_list = json!({"messages": "hi"});
        assert!(matches!(
            check(Operation::Chat, not_a_list),
            Err(ApiError::WrongType {
                found: "String",
                ..
            })
        ));
    }

    #[test]
    fn localization_needs_a_default_locale() {
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "localization": {"expectedLocales": []}});
        assert_eq!(
            message(check(Operation::Chat, body)),
            "Missing required field: localization.defaultLocale"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = json!({"prompt": "Invent 3 fun names", "temperature": 0.2, "max_tokens": 9});
        let call = check(Operation::Generations, body).unwrap();
        assert_eq!(
            call,
            Call::Generations(Prompt {
                echo: "Invent 3 fun names".to_owned(),
                prompt_tokens: 4
            })
        );
    }

    #[test]
    fn embeddings_need_a_list_of_strings() {
        let call = check(Operation::Embeddings, json!({"input": ["a b", "c"]})).unwrap();
        assert_eq!(
            call,
            Call::Embeddings {
                inputs: vec!["a b".to_owned(), "c".to_owned()],
                prompt_tokens: 3
            }
        );
        assert_eq!(
            message(check(Operation::Embeddings, json!({}))),
            "Missing required field: input"
        );
        assert!(matches!(
            check(Operation::Embeddings, json!({"input": "a"})),
            Err(ApiError::WrongType { .. })
        ));
        assert!(matches!(
            check(Operation::Embeddings, json!({"input": [1]})),
            Err(ApiError::WrongType { .. })
        ));
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = json_headers();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        assert!(super::body(Operation::Generations, &headers, br#"{"prompt":"x"}"#).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        let error = super::body(Operation::Generations, &headers, b"--x").unwrap_err();
        assert_eq!(error.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.remove(header::CONTENT_TYPE);
        assert!(matches!(
            super::body(Operation::Generations, &headers, b"{}"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn bad_json_is_a_bad_argument() {
        for body in [&b"{"[..], b"", b"\xff", b"[1]", b"null"] {
            let error = super::body(Operation::Chat, &json_headers(), body).unwrap_err();
            assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn headers_and_bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        let error = einstein_headers(&headers).unwrap_err();
        assert!(error.to_string().contains("x-sfdc-app-context"));
        headers.insert(
            "x-sfdc-app-context",
            HeaderValue::from_static("EinsteinGPT"),
        );
        assert!(einstein_headers(&headers)
            .unwrap_err()
            .to_string()
            .contains("x-client-feature-id"));
        headers.insert(
            "x-client-feature-id",
            HeaderValue::from_static("ai-platform-models-connected-app"),
        );
        assert!(einstein_headers(&headers).is_ok());
    }

    #[test]
    fn token_counts_are_words_at_least_one() {
        assert_eq!(token_count(""), 1);
        assert_eq!(token_count("one two  three"), 3);
    }
}
