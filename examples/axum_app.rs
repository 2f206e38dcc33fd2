//! An existing-looking axum application with routes of its own, and the bridge mounted in front
//! of it: `/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/health`, `/ready`,
//! `/metrics` and `/metrics/performance` are the bridge's; everything else is the app's.
//!
//! Run with
//!
//! ```text
//! cargo run --release --example mock_salesforce -- --listen 127.0.0.1:9090 &
//! cargo run --release --example axum_app -- --config conf/demo.toml
//!
//! curl -s localhost:8080/                      # the app's own route
//! curl -s localhost:8080/v1/models             # the bridge
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
//! ```
//!
//! Logs go to stdout; set the level with `RUST_LOG` (default `info`). Ctrl-C or SIGTERM stops
//! accepting, lets in-flight requests finish within `[server] shutdown_grace_secs`, and exits.

use std::path::PathBuf;

use axum::{routing::get, Json, Router};
use clap::Parser;
use sf_models_bridge::{server, Config, SalesforceLayer, SalesforceRoutesLayer, Upstream};
use tower::Layer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(about = "An axum app with the Salesforce Models bridge mounted")]
struct Args {
    /// The conf file (TOML).
    #[arg(long)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let config = Config::from_path(&args.config)?;

    let layer = SalesforceLayer::new(&config)?;
    // Reloads the conf on SIGHUP and whenever the file changes, while the watcher lives.
    let _watcher = layer.watch(&args.config)?;
    let bridge = layer.layer(Upstream::new(&config.salesforce)?);
    let app = Router::new()
        .route("/", get(|| async { "Hello from the app's own routes.\n" }))
        .route(
            "/api/items",
            get(|| async { Json(serde_json::json!(["apple", "pear"])) }),
        )
        // The app's own routes get a body deadline too; the bridge enforces its own.
        .layer(RequestBodyTimeoutLayer::new(
            config.server.body_read_timeout,
        ))
        .layer(SalesforceRoutesLayer::new(bridge));

    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "serving");
    server::serve(listener, app, &config.server, server::shutdown_signal()).await;
    Ok(())
}
