//! The official SDKs as subprocesses: a scenario script under `tests/sdk/{python,node}` drives an
//! SDK against a gateway and prints ONE JSON line of what it observed; the assertions stay in Rust.
//!
//! `make sdk-setup` installs the SDKs at their pinned versions (`target/sdk-venv`,
//! `tests/sdk/node/node_modules`); without them the tests that use them fail and say so. Each
//! observation names the package it drove (`sdk`) and that package's version (`sdk_version`), which
//! must be the pinned one.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::{Gateway, CALLER_KEY};

/// How long one scenario may take, interpreter start included.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(45);

/// The runtime a scenario script runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// CPython in `target/sdk-venv`.
    Python,
    /// Node with `tests/sdk/node/node_modules`.
    Node,
}

/// A scenario script and the runtime it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    /// Its runtime.
    pub sdk: Sdk,
    /// Its file name under `tests/sdk/python` or `tests/sdk/node`.
    pub file: &'static str,
}

/// `tests/sdk/python/openai_client.py`: the OpenAI SDK on the OpenAI endpoints.
pub const OPENAI_PY: Script = Script {
    sdk: Sdk::Python,
    file: "openai_client.py",
};
/// `tests/sdk/node/openai_client.mjs`: the same scenarios with the Node OpenAI SDK.
pub const OPENAI_NODE: Script = Script {
    sdk: Sdk::Node,
    file: "openai_client.mjs",
};
/// `tests/sdk/python/native_client.py`: the OpenAI and Anthropic SDKs on the native surfaces.
pub const NATIVE_PY: Script = Script {
    sdk: Sdk::Python,
    file: "native_client.py",
};
/// `tests/sdk/node/anthropic_client.mjs`: the Node Anthropic SDK.
pub const ANTHROPIC_NODE: Script = Script {
    sdk: Sdk::Node,
    file: "anthropic_client.mjs",
};

/// The checkout: cargo's `CARGO_MANIFEST_DIR` at run time, which stays right when two checkouts
/// share one target folder (the compiled-in one may name the other checkout).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

impl Sdk {
    /// The interpreter, the scripts' folder, and a path whose absence means the SDKs are not
    /// installed.
    fn paths(self) -> (PathBuf, PathBuf, PathBuf) {
        let root = root();
        match self {
            Sdk::Python => {
                let python = if cfg!(windows) {
                    root.join("target/sdk-venv/Scripts/python.exe")
                } else {
                    root.join("target/sdk-venv/bin/python")
                };
                (python.clone(), root.join("tests/sdk/python"), python)
            }
            Sdk::Node => (
                PathBuf::from("node"),
                root.join("tests/sdk/node"),
                root.join("tests/sdk/node/node_modules"),
            ),
        }
    }

    /// The version of `package` that this runtime's pin file names.
    pub fn pinned_version(self, package: &str) -> String {
        let root = root();
        match self {
            Sdk::Python => {
                let path = root.join("tests/sdk/python/requirements.txt");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let prefix = format!("{package}==");
                text.lines()
                    .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
                    .unwrap_or_else(|| panic!("{} pins no {package}", path.display()))
                    .to_owned()
            }
            Sdk::Node => {
                let path = root.join("tests/sdk/node/package.json");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let pins: Value = serde_json::from_str(&text).expect("package.json is JSON");
                pins["dependencies"][package]
                    .as_str()
                    .unwrap_or_else(|| panic!("{} pins no {package}", path.display()))
                    .to_owned()
            }
        }
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file)
    }
}

/// Runs `script` with `args` (the scenario first) against `gateway` (its `/v1` base), presenting
/// `key`, and returns what the SDK saw.
pub async fn observe(script: Script, gateway: &Gateway, key: &str, args: &[&str]) -> Value {
    let (interpreter, folder, installed) = script.sdk.paths();
    assert!(
        installed.exists(),
        "the SDKs for {script} are not installed ({} is missing): run `make sdk-setup` first",
        installed.display()
    );
    let mut command = Command::new(&interpreter);
    command
        .arg(folder.join(script.file))
        .arg(gateway.url("/v1"))
        .arg(key)
        .args(args)
        .current_dir(&folder)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Nothing from the developer's environment may steer an SDK elsewhere or make it log.
    for name in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_LOG",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_LOG",
        "DEBUG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "NODE_OPTIONS",
        "PYTHONPATH",
    ] {
        command.env_remove(name);
    }
    command.env("NO_PROXY", "*").env("no_proxy", "*");
    let child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "{script}: cannot start {} ({e}): run `make sdk-setup` first",
            interpreter.display()
        )
    });
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} {args:?}: no answer within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{script} {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{stderr}{stdout}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().filter(|line| !line.is_empty()).collect();
    let [line] = lines[..] else {
        panic!("{script} {args:?}: expected one JSON line, got:\n{stdout}{stderr}");
    };
    let seen: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script} {args:?}: not JSON ({e}): {line}"));
    let package = seen["sdk"]
        .as_str()
        .unwrap_or_else(|| panic!("{script} {args:?}: names no sdk: {seen}"));
    assert_eq!(
        seen["sdk_version"],
        script.sdk.pinned_version(package),
        "{script}: the installed {package} is not the pinned one: run `make sdk-setup`"
    );
    seen
}

/// [`observe`] with the key the test gateways accept, asserting that the SDK raised nothing.
pub async fn answer(script: Script, gateway: &Gateway, args: &[&str]) -> Value {
    let seen = observe(script, gateway, CALLER_KEY, args).await;
    assert!(
        seen.get("error").is_none(),
        "{script} {args:?} raised: {seen}"
    );
    seen
}
