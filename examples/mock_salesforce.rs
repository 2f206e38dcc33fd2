//! A local stand-in for the Salesforce Models API and its OAuth token endpoint.
//!
//! Run with:
//!
//! ```not_rust
//! cargo run --release --example mock_salesforce -- --listen 127.0.0.1:9090
//! ```
//!
//! Then try it:
//!
//! ```not_rust
//! TOKEN=$(curl -s http://127.0.0.1:9090/services/oauth2/token \
//!   -d grant_type=client_credentials -d client_id=mock-client-id -d client_secret=mock-client-secret \
//!   | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
//! curl -s http://127.0.0.1:9090/einstein/platform/v1/models/sfdc_ai__DefaultGPT4OmniMini/chat-generations \
//!   -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
//!   -H 'x-sfdc-app-context: EinsteinGPT' -H 'x-client-feature-id: ai-platform-models-connected-app' \
//!   -d '{"messages":[{"role":"user","content":"Hello"}]}'
//! curl -s -X POST http://127.0.0.1:9090/__mock/faults -d '{"fault":"status","status":429,"times":2}'
//! curl -s http://127.0.0.1:9090/__mock/counters
//! ```
//!
//! The admin API (`/__mock/…`) is described in the `sf_models_bridge::mock` module docs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sf_models_bridge::mock::{MockOptions, MockSalesforce, MOCK_CLIENT_ID};
use tracing_subscriber::EnvFilter;

/// A local stand-in for the Salesforce Models API and its OAuth token endpoint.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Lifetime of issued tokens (their JWT `exp` after `iat`), in seconds.
    #[arg(long, default_value_t = 1800)]
    token_lifetime_secs: u64,
    /// Delay added to every model call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Benchmark mode: no token or request checks, a canned answer serialized once.
    #[arg(long)]
    fast: bool,
    /// Length of the fast-mode answer's content, in bytes.
    #[arg(long, default_value_t = 2048)]
    answer_bytes: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let options = MockOptions {
        listen: args.listen,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        latency: Duration::from_millis(args.latency_ms),
        fast: args.fast,
        answer_bytes: args.answer_bytes,
        ..MockOptions::default()
    };
    let mock = MockSalesforce::start_with(options).await?;
    tracing::info!(
        api_base = %mock.api_base(),
        token_url = %mock.token_url(),
        client_id = MOCK_CLIENT_ID,
        client_secret = "see MOCK_CLIENT_SECRET",
        fast = args.fast,
        "mock Salesforce listening"
    );

    shutdown_signal().await?;
    tracing::info!("shutting down");
    mock.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
