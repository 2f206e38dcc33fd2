//! A standalone Pingora gateway: the bridge's routes are served by the same Tower service the axum
//! mount uses; every other path is proxied to `[pingora] upstream` (or answered 404 when unset).
//!
//! Run with
//!
//! ```text
//! cargo run --release --example mock_salesforce -- --listen 127.0.0.1:9090 &
//! cargo run --release --features pingora --example pingora_gateway -- --config conf/demo.toml
//!
//! curl -s localhost:8080/v1/models
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
//! curl -sN localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
//! ```
//!
//! Pingora's own flags keep working: `-d` (daemonize), `-t` (test the conf), `-u` (take over a
//! running gateway's sockets) and `-c FILE` (Pingora's YAML server conf, when `[pingora]
//! server_conf` is not set). SIGTERM drains in-flight requests within the grace period of
//! `conf/pingora.yaml` and exits; SIGINT exits at once. Logs go to stdout, level from `RUST_LOG`.

use std::path::PathBuf;

use clap::Parser;
use pingora::server::configuration::Opt;
use sf_models_bridge::pingora::{add_gateway, build_server};
use sf_models_bridge::{Config, SalesforceLayer, Upstream};
use tower::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(about = "A Pingora gateway serving the OpenAI API over the Salesforce Models API")]
struct Args {
    /// The bridge's conf file (TOML).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    pingora: Opt,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Pingora logs whole request headers, callers' keys included, at TRACE: cap it at DEBUG, but
    // only when TRACE is on, as the directive would otherwise raise it (a DEBUG line per request
    // under RUST_LOG=warn).
    let filter = if filter.max_level_hint() == Some(LevelFilter::TRACE) {
        filter.add_directive("pingora_proxy=debug".parse()?)
    } else {
        filter
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let config = Config::from_path(&args.config)?;

    let bridge = SalesforceLayer::new(&config)?.layer(Upstream::new(&config.salesforce)?);
    let mut server = build_server(&config, Some(args.pingora))?;
    server.bootstrap();
    add_gateway(&mut server, &config, bridge)?;
    tracing::info!(listen = %config.server.listen, upstream = ?config.pingora.upstream, "serving");
    server.run_forever()
}
