//! Running the gateway: a Pingora [`Server`] built from our conf, the gateway service added to it,
//! and [`spawn_gateway`], which runs both in the background and hands back a stop handle.

use super::BridgeService;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::ServiceHandle;
use tokio::sync::{oneshot, watch};

use super::filter::BridgeFilter;
use super::gateway::{BridgeGateway, GatewayError};
use crate::Config;

/// Pingora's own default grace period is 300 s, far too long for a gateway whose longest request
/// is one model generation; both steps of a graceful shutdown default to this instead.
const DEFAULT_GRACE_SECS: u64 = 5;

/// The downstream write buffer: Pingora's default (1460 bytes) sends a response's header and its
/// body in two writes, and the client wakes twice; the bridge's answers are complete, so one
/// buffer that holds a typical answer sends both in one.
const RESPONSE_WRITE_BUFFER: usize = 16 * 1024;

/// How long [`spawn_gateway`] waits for the listener to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a Pingora [`Server`] from our conf.
///
/// Pingora's `ServerConf` is read from the YAML named by `[pingora] server_conf`, else from the
/// one named by `opt`'s `--conf`, else Pingora's defaults are used; in all three cases an unset
/// `grace_period_seconds` or `graceful_shutdown_timeout_seconds` becomes 5 s instead of Pingora's
/// 300 s and 5 s. Reading the YAML is blocking file I/O: call this at start-up.
///
/// The server is not bootstrapped: call `server.bootstrap()` before `run_forever()` as usual
/// (it takes over the listeners of an old process on `--upgrade`).
pub fn build_server(config: &Config, mut opt: Option<Opt>) -> Result<Server, GatewayError> {
    let yaml = config
        .pingora
        .server_conf
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned())
        // Taken out of `opt` so that Pingora does not warn that it ignores it: it is used here.
        .or_else(|| opt.as_mut().and_then(|opt| opt.conf.take()));
    let mut conf = match yaml {
        Some(path) => ServerConf::load_from_yaml(path).map_err(GatewayError::ServerConf)?,
        None => ServerConf {
            version: 1,
            ..ServerConf::default()
        },
    };
    conf.grace_period_seconds.get_or_insert(DEFAULT_GRACE_SECS);
    conf.graceful_shutdown_timeout_seconds
        .get_or_insert(DEFAULT_GRACE_SECS);
    Ok(Server::new_with_opt_and_conf(opt, conf))
}

/// Adds a [`BridgeGateway`] around `bridge` to `server`, listening on `config.server.listen`,
/// with the upstream of `[pingora]`. The filter has no limits of its own: `bridge` enforces the
/// body limits (the bridge's are those of `config`). Resolving the upstream blocks on DNS: call
/// this at start-up.
///
/// `TCP_NODELAY` is set by Pingora itself on every accepted connection.
pub fn add_gateway<S>(
    server: &mut Server,
    config: &Config,
    bridge: S,
) -> Result<ServiceHandle, GatewayError>
where
    S: BridgeService,
{
    let filter = BridgeFilter::new(bridge).write_timeout(config.server.write_timeout);
    let gateway = BridgeGateway::new(filter, &config.pingora)?;
    let mut service =
        http_proxy_service_with_name(&server.configuration, gateway, "sf-models-bridge gateway");
    service.add_listener(
        ListenerConfig::tcp(config.server.listen.to_string())
            .l4_buffer(L4BufferSettings::default().write(RESPONSE_WRITE_BUFFER)),
    );
    Ok(server.add_service(service))
}

/// Starts a [`BridgeGateway`] around `bridge` on a free loopback port, in the background, and
/// returns once it accepts connections.
///
/// `config` is used as by [`build_server`] and [`add_gateway`], except that `server.listen` is
/// replaced by `127.0.0.1:<free port>` (see [`RunningGateway::local_addr`]). The server runs on its
/// own thread with its own runtimes, exactly as `run_forever` would run it, so it can be started
/// from any async test. Dropping the handle stops it at once; [`RunningGateway::shutdown`] stops it
/// gracefully.
///
/// ```no_run
/// # async fn demo(config: sf_models_bridge::Config, bridge: tower::util::BoxCloneSyncService<http::Request<sf_models_bridge::pingora::SessionBody>, http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>) -> Result<(), Box<dyn std::error::Error>> {
/// let gateway = sf_models_bridge::pingora::spawn_gateway(&config, bridge).await?;
/// let url = format!("http://{}/v1/models", gateway.local_addr());
/// // ... send requests to `url` ...
/// gateway.shutdown().await; // in-flight requests finish, then it exits
/// # Ok(()) }
/// ```
pub async fn spawn_gateway<S>(config: &Config, bridge: S) -> Result<RunningGateway, GatewayError>
where
    S: BridgeService,
{
    let addr = free_loopback_addr().await?;
    let mut config = config.clone();
    config.server.listen = addr;
    let (stop, stop_rx) = watch::channel(Stop::Running);
    let (started, started_rx) = oneshot::channel();
    let (exited, exited_rx) = oneshot::channel::<()>();
    // Building the server reads files and resolves names, and `run` blocks until shutdown:
    // all of it happens on this thread, never on the caller's runtime.
    std::thread::Builder::new()
        .name("sfbridge-pingora".to_owned())
        .spawn(move || {
            let server = build_server(&config, None).and_then(|mut server| {
                add_gateway(&mut server, &config, bridge)?;
                Ok(server)
            });
            match server {
                Ok(server) => {
                    started.send(Ok(())).ok();
                    server.run(RunArgs {
                        shutdown_signal: Box::new(StopSignal(stop_rx)),
                    });
                }
                Err(e) => {
                    started.send(Err(e)).ok();
                }
            }
            exited.send(()).ok();
        })
        .map_err(|e| GatewayError::Start(format!("cannot spawn the server thread: {e}")))?;
    started_rx
        .await
        .map_err(|_| GatewayError::Start("the server thread ended early".to_owned()))??;
    wait_until_listening(addr).await?;
    Ok(RunningGateway {
        addr,
        stop,
        exited: exited_rx,
    })
}

/// A gateway started by [`spawn_gateway`]. Dropping it stops the gateway at once, without waiting.
#[derive(Debug)]
pub struct RunningGateway {
    addr: SocketAddr,
    stop: watch::Sender<Stop>,
    exited: oneshot::Receiver<()>,
}

impl RunningGateway {
    /// The loopback address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops gracefully and waits until the server has exited: it stops accepting connections,
    /// closes idle keep-alive connections, lets in-flight requests run for the grace period
    /// (`grace_period_seconds`, always waited in full), then drops what is left.
    pub async fn shutdown(self) {
        self.finish(Stop::Graceful).await;
    }

    /// Stops at once, dropping in-flight requests, and waits until the server has exited.
    pub async fn stop(self) {
        self.finish(Stop::Fast).await;
    }

    async fn finish(self, how: Stop) {
        self.stop.send_replace(how);
        // An error means the server thread is gone already, which is what is waited for.
        self.exited.await.ok();
    }
}

/// What the handle asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Graceful,
    Fast,
}

/// Pingora's shutdown hook, fed by the handle instead of Unix signals.
struct StopSignal(watch::Receiver<Stop>);

#[async_trait]
impl ShutdownSignalWatch for StopSignal {
    async fn recv(&self) -> ShutdownSignal {
        let mut stop = self.0.clone();
        let how = match stop.wait_for(|how| *how != Stop::Running).await {
            Ok(how) => *how,
            // The handle was dropped.
            Err(_) => Stop::Fast,
        };
        match how {
            Stop::Graceful => ShutdownSignal::GracefulTerminate,
            Stop::Running | Stop::Fast => ShutdownSignal::FastShutdown,
        }
    }
}

/// Pingora cannot report the port it bound, so one is picked here and released for it to bind.
async fn free_loopback_addr() -> Result<SocketAddr, GatewayError> {
    let start = |e: std::io::Error| GatewayError::Start(format!("no free loopback port: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(start)?;
    listener.local_addr().map_err(start)
}

async fn wait_until_listening(addr: SocketAddr) -> Result<(), GatewayError> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() >= deadline {
            return Err(GatewayError::Start(format!(
                "nothing listens on {addr} after {READY_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
        [salesforce]
        api_base = "http://127.0.0.1:1/v1"
        token_url = "http://127.0.0.1:1/token"
        client_id = "id"
        client_secret = "secret"
        [[routes]]
        model = "m"
        salesforce_model = "m"
    "#;

    #[test]
    fn default_conf_has_a_short_grace_period() {
        let config = Config::from_toml_with_env(CONF, |_| None).unwrap();
        let server = build_server(&config, None).unwrap();
        assert_eq!(server.configuration.grace_period_seconds, Some(5));
        assert_eq!(
            server.configuration.graceful_shutdown_timeout_seconds,
            Some(5)
        );
    }

    #[test]
    fn shipped_yaml_conf_is_read() {
        let text = format!(
            "{CONF}\n[pingora]\nserver_conf = \"{}/conf/pingora.yaml\"\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = Config::from_toml_with_env(&text, |_| None).unwrap();
        let server = build_server(&config, None).unwrap();
        assert_eq!(server.configuration.threads, 2);
        assert_eq!(server.configuration.grace_period_seconds, Some(3));
        assert_eq!(
            server.configuration.graceful_shutdown_timeout_seconds,
            Some(5)
        );
    }

    #[test]
    fn missing_yaml_conf_is_a_start_up_error() {
        let text = format!("{CONF}\n[pingora]\nserver_conf = \"/nonexistent/pingora.yaml\"\n");
        let config = Config::from_toml_with_env(&text, |_| None).unwrap();
        let err = build_server(&config, None).err().unwrap();
        assert!(
            err.to_string().starts_with("pingora.server_conf: "),
            "{err}"
        );
    }
}
