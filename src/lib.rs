#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    unreachable_pub,
    clippy::await_holding_lock,
    clippy::dbg_macro,
    clippy::todo
)]
#![deny(unsafe_code)]
// A `Failure` (status, class, message, code, param and two header values) is returned at most
// once per request or stream; boxing it would cost an allocation to save a few bytes of moves.
#![allow(clippy::result_large_err)]

pub mod anthropic;
pub mod config;
pub mod core;
pub mod endpoint;
pub mod eventstream;
pub mod front;
pub mod layer;
pub mod metrics;
pub mod openai;
pub mod server;
pub mod surface;
mod text;
pub mod token;
pub mod upstream;

#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;

#[cfg(feature = "pingora")]
#[cfg_attr(docsrs, doc(cfg(feature = "pingora")))]
pub mod pingora;

pub use config::Config;
pub use endpoint::Endpoint;
pub use layer::{BridgeBody, Salesforce, SalesforceLayer, SalesforceRoutesLayer};
pub use metrics::Metrics;
pub use upstream::Upstream;
