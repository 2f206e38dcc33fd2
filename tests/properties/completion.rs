//! `POST /v1/completions` → `generations`: arbitrary input never panics and never yields a body
//! other than `{"prompt": "..."}`; generated requests translate exactly as specified.

use proptest::prelude::*;
use serde_json::{json, Value};
use sf_models_bridge::core::{Task, TranslateError};
use sf_models_bridge::front;
use sf_models_bridge::openai::{CompletionRequest, Prompt};
use sf_models_bridge::surface::einstein;

use crate::json;

/// Through the Completions front and the einstein surface: the `generations` body.
fn einstein_body(request: &CompletionRequest<'_>) -> Result<Value, TranslateError> {
    let request = front::completions::to_core(request.clone())?;
    let Task::Text(text) = &request.task else {
        unreachable!("a prompt")
    };
    einstein::text_body(text).map(|body| serde_json::to_value(body).unwrap())
}

fn check_any(body: &[u8]) {
    let Ok(request) = serde_json::from_slice::<CompletionRequest<'_>>(body) else {
        return;
    };
    match einstein_body(&request) {
        Ok(body) => {
            let object = body.as_object().expect("an object");
            assert_eq!(object.len(), 1, "{body}");
            assert!(object["prompt"].is_string());
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(!error.param().is_empty());
        }
    }
}

/// One element of a prompt array.
#[derive(Debug, Clone)]
enum Element {
    Text(String),
    Token(i64),
    Tokens(Vec<u32>),
}

#[derive(Debug, Clone)]
enum PromptGen {
    Text(String),
    List(Vec<Element>),
}

#[derive(Debug, Clone)]
struct Request {
    prompt: PromptGen,
    /// Absent, null or a flag.
    echo: Option<Option<bool>>,
    n: Option<u64>,
    temperature: Option<Value>,
}

fn element() -> impl Strategy<Value = Element> {
    prop_oneof![
        6 => json::string().prop_map(Element::Text),
        1 => (0i64..50_000).prop_map(Element::Token),
        1 => prop::collection::vec(any::<u32>(), 0..4).prop_map(Element::Tokens),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let prompt = prop_oneof![
        2 => json::string().prop_map(PromptGen::Text),
        1 => prop::collection::vec(element(), 0..4).prop_map(PromptGen::List),
    ];
    let echo = prop_oneof![
        3 => Just(None),
        1 => Just(Some(None)),
        2 => Just(Some(Some(false))),
        1 => Just(Some(Some(true))),
    ];
    let n = prop_oneof![3 => Just(None), 2 => Just(Some(1)), 1 => (0u64..4).prop_map(Some)];
    (prompt, echo, n, proptest::option::of(json::small_value())).prop_map(
        |(prompt, echo, n, temperature)| Request {
            prompt,
            echo,
            n,
            temperature,
        },
    )
}

impl Request {
    fn json(&self) -> Value {
        let prompt = match &self.prompt {
            PromptGen::Text(text) => json!(text),
            PromptGen::List(elements) => elements
                .iter()
                .map(|element| match element {
                    Element::Text(text) => json!(text),
                    Element::Token(token) => json!(token),
                    Element::Tokens(tokens) => json!(tokens),
                })
                .collect(),
        };
        json::object(vec![
            ("model", Some(json!("m"))),
            ("prompt", Some(prompt)),
            ("echo", self.echo.map(|echo| json!(echo))),
            ("n", self.n.map(Value::from)),
            ("temperature", self.temperature.clone()),
        ])
    }

    /// The prompt the parser must see.
    fn expected_prompt(&self) -> Prompt<'_> {
        let elements = match &self.prompt {
            PromptGen::Text(text) => return Prompt::Text(text.as_str().into()),
            PromptGen::List(elements) => elements,
        };
        if elements.iter().any(|e| !matches!(e, Element::Text(_))) {
            return Prompt::Tokens;
        }
        match elements.as_slice() {
            [Element::Text(text)] => Prompt::Text(text.as_str().into()),
            _ => Prompt::Batch(elements.len()),
        }
    }

    fn violations(&self) -> Vec<TranslateError> {
        let mut found = Vec::new();
        if let Some(n) = self.n.filter(|n| *n != 1) {
            found.push(TranslateError::Choices(n));
        }
        if self.echo == Some(Some(true)) {
            found.push(TranslateError::Echo);
        }
        match self.expected_prompt() {
            Prompt::Text(_) => {}
            Prompt::Batch(count) => found.push(TranslateError::PromptBatch(count)),
            Prompt::Tokens => found.push(TranslateError::PromptTokens),
        }
        found
    }
}

fn check_generated(request: &Request) {
    let body = serde_json::to_vec(&request.json()).unwrap();
    let parsed: CompletionRequest<'_> = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.prompt, request.expected_prompt());
    assert_eq!(parsed.echo, request.echo.flatten().unwrap_or(false));
    let expected_ignored: &[&str] = match request.temperature {
        Some(_) => &["temperature"],
        None => &[],
    };
    assert_eq!(parsed.ignored, expected_ignored);
    let violations = request.violations();
    match einstein_body(&parsed) {
        Ok(upstream) => {
            assert!(violations.is_empty(), "accepted despite {violations:?}");
            let Prompt::Text(text) = request.expected_prompt() else {
                unreachable!("refused");
            };
            assert_eq!(upstream, json!({"prompt": text}));
        }
        Err(error) => assert!(
            violations.contains(&error),
            "{error:?} not in {violations:?}"
        ),
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_json_never_panics(value in json::value()) {
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
