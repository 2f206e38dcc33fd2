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
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::prelude::*;
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
    // Pingora logs the whole header it sends upstream on proxied paths, callers' keys included:
    // `pingora_proxy` at DEBUG, `pingora_core` at TRACE. Those two targets stay below those
    // levels whatever RUST_LOG says. A second filter that must also pass caps them without ever
    // raising them (a directive added to RUST_LOG's filter would turn `warn` into `info` there).
    let no_header_dumps = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("pingora_proxy", LevelFilter::INFO)
        .with_target("pingora_core", LevelFilter::DEBUG);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_filter(filter.and(no_header_dumps)),
        )
        .init();
    let args = Args::parse();
    let config = Config::from_path(&args.config)?;

    let layer = SalesforceLayer::new(&config)?;
    let bridge = layer.layer(Upstream::new(&config.salesforce)?);
    watch_conf(layer, args.config.clone());
    let mut server = build_server(&config, Some(args.pingora))?;
    server.bootstrap();
    add_gateway(&mut server, &config, bridge)?;
    tracing::info!(listen = %config.server.listen, upstream = ?config.pingora.upstream, "serving");
    server.run_forever()
}

/// Reloads the conf on SIGHUP and whenever the file changes, on a small runtime of its own:
/// Pingora's `run_forever` keeps the main thread.
fn watch_conf(layer: SalesforceLayer, path: std::path::PathBuf) {
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => return tracing::error!(%error, "no conf reloads: no runtime"),
        };
        runtime.block_on(async {
            match layer.watch(path) {
                Ok(_watcher) => std::future::pending::<()>().await,
                Err(error) => tracing::error!(%error, "no conf reloads"),
            }
        });
    });
}
