//! The load benchmark's baseline: a minimal Pingora proxy that forwards every request, unchanged,
//! to one upstream. No translation, no parsing, no token: what any Pingora gateway costs, so the
//! bridge's own cost can be read as a ratio to it.
//!
//! Run with
//!
//! ```text
//! cargo run --release --example mock_salesforce -- --listen 127.0.0.1:9090 --fast &
//! cargo run --release --features pingora --example passthrough_proxy -- \
//!     --listen 127.0.0.1:8090 --upstream 127.0.0.1:9090
//!
//! curl -s localhost:8090/einstein/platform/v1/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations \
//!   -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"Hello"}]}'
//! ```

use std::net::SocketAddr;

use async_trait::async_trait;
use clap::Parser;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

#[derive(Parser)]
#[command(about = "A Pingora proxy that forwards everything to one upstream, unchanged")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Where to forward, as an IP address and port (nothing is resolved).
    #[arg(long)]
    upstream: SocketAddr,
    /// Worker threads, as `threads` in a Pingora conf.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// One single-threaded runtime per thread, as `work_stealing: false` in a Pingora conf.
    #[arg(long)]
    no_work_stealing: bool,
}

struct Passthrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args = Args::parse();
    let conf = ServerConf {
        version: 1,
        threads: args.threads,
        work_stealing: !args.no_work_stealing,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(
        &server.configuration,
        Passthrough {
            upstream: args.upstream,
        },
    );
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    server.run_forever()
}
