//! Property tests of the sans-I/O core, through its public API only: request translation,
//! the response extractor, upstream error mapping and SSE encoding.
//!
//! Each property runs 256 cases by default so the whole file stays within a few seconds;
//! `PROPTEST_CASES=10000 cargo test --all-features --test properties` soaks it longer.
//! Failures are not persisted to `proptest-regressions/`: a failure found here becomes a named
//! regression unit test next to the code it fixes.

use proptest::test_runner::{Config, FileFailurePersistence};

#[path = "properties/json.rs"]
mod json;

#[path = "properties/chat.rs"]
mod chat;

#[path = "properties/completion.rs"]
mod completion;

#[path = "properties/reference.rs"]
mod reference;

#[path = "properties/extract.rs"]
mod extract;

#[path = "properties/upstream_error.rs"]
mod upstream_error;

#[path = "properties/sse.rs"]
mod sse;

/// The proptest configuration shared by every property.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}
