//! [`BridgeGateway`]: a complete Pingora proxy that serves the bridge's paths and proxies the rest
//! to one fixed upstream (or answers them 404 when there is none).

use super::BridgeService;
use std::net::{SocketAddr, ToSocketAddrs};

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::{Error, ErrorType};

use super::envelope::ErrorAnswer;
use super::filter::BridgeFilter;
use crate::config::PingoraConfig;

/// A gateway that could not be built or started. Every variant is a start-up error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// `[pingora] upstream` is not `host:port`.
    #[error("pingora.upstream: `{upstream}` must be host:port")]
    UpstreamSyntax {
        /// The configured value.
        upstream: String,
    },
    /// `[pingora] upstream` could not be resolved.
    #[error("pingora.upstream: cannot resolve `{upstream}`: {source}")]
    Resolve {
        /// The configured value.
        upstream: String,
        /// Why resolution failed.
        #[source]
        source: std::io::Error,
    },
    /// `[pingora] upstream` resolved to no address at all.
    #[error("pingora.upstream: `{upstream}` resolves to no address")]
    NoAddress {
        /// The configured value.
        upstream: String,
    },
    /// Pingora's server conf (`[pingora] server_conf`, or `--conf`) could not be loaded.
    #[error("pingora.server_conf: {0}")]
    ServerConf(#[source] Box<Error>),
    /// The gateway did not start (thread, listener, or readiness failure).
    #[error("the Pingora gateway did not start: {0}")]
    Start(String),
}

/// The upstream for paths that are not the bridge's, resolved once at start-up.
#[derive(Debug, Clone)]
struct Upstream {
    addr: SocketAddr,
    tls: bool,
    sni: String,
}

impl Upstream {
    /// Resolves `config.upstream`. This blocks on DNS: call it at start-up, never on a request.
    fn resolve(config: &PingoraConfig) -> Result<Option<Self>, GatewayError> {
        let Some(upstream) = config.upstream.as_deref() else {
            return Ok(None);
        };
        let host = host_of(upstream).ok_or_else(|| GatewayError::UpstreamSyntax {
            upstream: upstream.to_owned(),
        })?;
        let addr = upstream
            .to_socket_addrs()
            .map_err(|source| GatewayError::Resolve {
                upstream: upstream.to_owned(),
                source,
            })?
            .next()
            .ok_or_else(|| GatewayError::NoAddress {
                upstream: upstream.to_owned(),
            })?;
        // Pingora skips certificate checks when the SNI is empty: never let that happen by default.
        let sni = match (config.upstream_tls, config.upstream_sni.is_empty()) {
            (true, true) => host.to_owned(),
            _ => config.upstream_sni.clone(),
        };
        Ok(Some(Self {
            addr,
            tls: config.upstream_tls,
            sni,
        }))
    }
}

/// The host part of `host:port` or `[v6]:port`, without brackets.
fn host_of(upstream: &str) -> Option<&str> {
    let (host, port) = upstream.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// A ready-made Pingora gateway: the bridge's paths are served by a [`BridgeFilter`], other paths
/// go to `[pingora] upstream`, or get an OpenAI-style 404 when none is configured. The caller's
/// `Authorization`, `api-key` and `x-api-key` are removed from what goes upstream unless
/// `[pingora] strip_caller_credentials = false`.
#[derive(Debug, Clone)]
pub struct BridgeGateway<S> {
    filter: BridgeFilter<S>,
    upstream: Option<Upstream>,
    strip_caller_credentials: bool,
}

/// The headers that carry a caller's key to the bridge: `Authorization` (OpenAI SDKs), `api-key`
/// (Azure OpenAI SDKs) and `x-api-key` (Anthropic SDKs).
const CALLER_CREDENTIALS: [&str; 3] = ["authorization", "api-key", "x-api-key"];

impl<S> BridgeGateway<S> {
    /// Builds the gateway, resolving `config.upstream` once. This blocks on DNS: call it at
    /// start-up, not from async code that serves requests.
    pub fn new(filter: BridgeFilter<S>, config: &PingoraConfig) -> Result<Self, GatewayError> {
        Ok(Self {
            filter,
            upstream: Upstream::resolve(config)?,
            strip_caller_credentials: config.strip_caller_credentials,
        })
    }

    /// The address other paths are proxied to, if any.
    pub fn upstream_addr(&self) -> Option<SocketAddr> {
        self.upstream.as_ref().map(|upstream| upstream.addr)
    }
}

#[async_trait]
impl<S> ProxyHttp for BridgeGateway<S>
where
    S: BridgeService,
{
    type CTX = ();

    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> pingora::Result<bool> {
        if self.filter.try_serve(session).await? {
            return Ok(true);
        }
        if self.upstream.is_some() {
            return Ok(false);
        }
        let header = session.req_header();
        let answer = ErrorAnswer::not_found(&header.method, header.uri.path());
        answer.write(session).await?;
        Ok(true)
    }

    /// Keeps the caller's key to itself when `[pingora] strip_caller_credentials` says so: the key
    /// is the bridge's, and neither the upstream nor Pingora's own DEBUG log of the header it sends
    /// (written after this filter) needs to see it.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut (),
    ) -> pingora::Result<()> {
        if self.strip_caller_credentials {
            for name in CALLER_CREDENTIALS {
                upstream_request.remove_header(name);
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        // request_filter answers every request itself when there is no upstream.
        let upstream = self
            .upstream
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream configured"))?;
        // A SocketAddr, never a name: HttpPeer::new would resolve it with a blocking call.
        // TCP_NODELAY needs no option: Pingora sets it on every connection it opens.
        Ok(Box::new(HttpPeer::new(
            upstream.addr,
            upstream.tls,
            upstream.sni.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(upstream: &str, tls: bool, sni: &str) -> PingoraConfig {
        PingoraConfig {
            upstream: Some(upstream.to_owned()),
            upstream_tls: tls,
            upstream_sni: sni.to_owned(),
            server_conf: None,
            strip_caller_credentials: true,
        }
    }

    #[test]
    fn host_part_of_upstream() {
        assert_eq!(host_of("example.com:443"), Some("example.com"));
        assert_eq!(host_of("[::1]:8080"), Some("::1"));
        assert_eq!(host_of("example.com"), None);
        assert_eq!(host_of(":80"), None);
        assert_eq!(host_of("example.com:http"), None);
    }

    #[test]
    fn tls_without_sni_verifies_against_the_host() {
        let upstream = Upstream::resolve(&config("127.0.0.1:8443", true, ""))
            .unwrap()
            .unwrap();
        assert_eq!(upstream.sni, "127.0.0.1");
        assert_eq!(upstream.addr, "127.0.0.1:8443".parse().unwrap());
        let upstream = Upstream::resolve(&config("127.0.0.1:8443", true, "api.example")).unwrap();
        assert_eq!(upstream.unwrap().sni, "api.example");
        let plain = Upstream::resolve(&config("127.0.0.1:80", false, ""))
            .unwrap()
            .unwrap();
        assert_eq!(plain.sni, "");
    }

    #[test]
    fn no_upstream_is_not_an_error() {
        assert!(Upstream::resolve(&PingoraConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_upstream_is_a_start_up_error() {
        let err = Upstream::resolve(&config("no-port", false, "")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pingora.upstream: `no-port` must be host:port"
        );
        let err = Upstream::resolve(&config("host.invalid:80", false, "")).unwrap_err();
        assert!(matches!(err, GatewayError::Resolve { .. }), "{err}");
    }
}
