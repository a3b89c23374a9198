//! The streaming HTTP server: `/exec/<token>`, `/attach/<token>`, `/portforward/<token>` on
//! loopback. A request consumes its token, negotiates SPDY/3.1 (`Upgrade: SPDY/3.1` with
//! `X-Stream-Protocol-Version`) or WebSocket (`Sec-WebSocket-Protocol`), answers 101 and hands
//! the upgraded connection to the protocol.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::runtime::StreamRuntime;
use super::spdy::conn::Session;
use super::websocket::{Channels, V4_CHANNEL, V5_CHANNEL};
use super::{portforward, remotecommand, StreamRequest, StreamUrls, TokenCache};

/// The remotecommand protocol over SPDY.
pub const SPDY_REMOTECOMMAND: &str = "v4.channel.k8s.io";

/// The running streaming server.
pub struct StreamingServer {
    addr: SocketAddr,
    urls: StreamUrls,
    task: tokio::task::JoinHandle<()>,
}

impl StreamingServer {
    /// Listens on `addr` (e.g. `127.0.0.1:0` for a random port) and serves with `rt`.
    pub async fn start(rt: Arc<dyn StreamRuntime>, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let cache = Arc::new(TokenCache::default());
        let urls = StreamUrls::new(format!("http://{addr}"), cache.clone());
        let task = tokio::spawn(accept_loop(listener, rt, cache));
        Ok(StreamingServer { addr, urls, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL issuer the gRPC layer needs ([`crate::grpc::CriServer::new`]).
    pub fn urls(&self) -> StreamUrls {
        self.urls.clone()
    }

    /// Stops accepting connections (streams in progress run on).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for StreamingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, rt: Arc<dyn StreamRuntime>, cache: Arc<TokenCache>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (rt, cache) = (rt.clone(), cache.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (rt, cache) = (rt.clone(), cache.clone());
                async move { Ok::<_, Infallible>(handle(req, rt, cache)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("streaming connection: {e}");
            }
        });
    }
}

fn reply(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg.into())));
    *r.status_mut() = status;
    r
}

/// All values of a header that may repeat or be comma-separated.
fn header_values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The first protocol of ours (in our order of preference) the client offers.
fn negotiate(ours: &[&'static str], theirs: &[String]) -> Option<&'static str> {
    ours.iter().copied().find(|p| theirs.iter().any(|t| t == p))
}

/// `port` query parameters (repeated or comma-separated) of a WebSocket port forward.
fn query_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for pair in query.unwrap_or_default().split('&') {
        if let Some(v) = pair.strip_prefix("port=") {
            for p in v.split(',').filter(|p| !p.is_empty()) {
                match p.parse::<u16>() {
                    Ok(n) if n > 0 => ports.push(n),
                    _ => return Err(format!("invalid port {p:?}")),
                }
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    Ok(ports)
}

fn handle(
    mut req: Request<Incoming>,
    rt: Arc<dyn StreamRuntime>,
    cache: Arc<TokenCache>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_matches('/').to_string();
    let Some((kind, token)) = path.split_once('/') else {
        return reply(StatusCode::NOT_FOUND, "not found");
    };
    let Some(sreq) = cache.consume(token) else {
        return reply(StatusCode::NOT_FOUND, "unknown or expired streaming token");
    };
    if sreq.kind() != kind {
        return reply(StatusCode::NOT_FOUND, "not found");
    }
    let upgrade = header_values(req.headers(), "upgrade");
    let is_ws = upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket"));
    let is_spdy = upgrade.iter().any(|u| u.eq_ignore_ascii_case("SPDY/3.1"));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let headers = req.headers();

    if is_ws {
        let Some(key) = headers.get("sec-websocket-key") else {
            return reply(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
        };
        let offered = header_values(headers, "sec-websocket-protocol");
        let (protocol, channels, close_signal, ports) = match &sreq {
            StreamRequest::PortForward(_) => {
                let ports = match query_ports(req.uri().query()) {
                    Ok(p) => p,
                    Err(e) => return reply(StatusCode::BAD_REQUEST, e),
                };
                // An empty offer is the protocol's binary default.
                let protocol = if offered.is_empty() {
                    ""
                } else {
                    match negotiate(&[V4_CHANNEL], &offered) {
                        Some(p) => p,
                        None => return reply(StatusCode::BAD_REQUEST, format!("unsupported websocket protocols {offered:?}")),
                    }
                };
                let n = u8::try_from(ports.len() * 2).unwrap_or(u8::MAX);
                (protocol, n, false, ports)
            }
            _ => match negotiate(&[V5_CHANNEL, V4_CHANNEL], &offered) {
                Some(p) => (p, 5, p == V5_CHANNEL, Vec::new()),
                None => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        format!("unsupported websocket protocols {offered:?}, supported: {V5_CHANNEL}, {V4_CHANNEL}"),
                    )
                }
            },
        };
        let accept = derive_accept_key(key.as_bytes());
        tokio::spawn(async move {
            let Ok(up) = on_upgrade.await else { return };
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
            let ch = Channels::start(ws, channels, close_signal);
            match sreq {
                StreamRequest::PortForward(p) => {
                    portforward::serve_websocket(rt, p.pod_sandbox_id, ports, ch).await
                }
                other => remotecommand::serve_websocket(rt, other, ch).await,
            }
        });
        let mut r = reply(StatusCode::SWITCHING_PROTOCOLS, "");
        let h = r.headers_mut();
        h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
        h.insert(
            header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        if let Ok(v) = http::HeaderValue::from_str(&accept) {
            h.insert("sec-websocket-accept", v);
        }
        if !protocol.is_empty() {
            h.insert(
                "sec-websocket-protocol",
                http::HeaderValue::from_static(protocol),
            );
        }
        return r;
    }

    if is_spdy {
        let offered = header_values(headers, "x-stream-protocol-version");
        let ours: &[&'static str] = match sreq {
            StreamRequest::PortForward(_) => &[portforward::PROTOCOL_V1],
            _ => &[SPDY_REMOTECOMMAND],
        };
        let Some(protocol) = negotiate(ours, &offered) else {
            return reply(
                StatusCode::FORBIDDEN,
                format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {ours:?}"),
            );
        };
        tokio::spawn(async move {
            let Ok(up) = on_upgrade.await else { return };
            let (session, incoming) = Session::start(TokioIo::new(up), true);
            match sreq {
                StreamRequest::PortForward(p) => {
                    portforward::serve_spdy(rt, p.pod_sandbox_id, session, incoming).await
                }
                other => remotecommand::serve_spdy(rt, other, session, incoming).await,
            }
        });
        let mut r = reply(StatusCode::SWITCHING_PROTOCOLS, "");
        let h = r.headers_mut();
        h.insert(
            header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        h.insert(header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
        h.insert(
            "x-stream-protocol-version",
            http::HeaderValue::from_static(protocol),
        );
        return r;
    }

    reply(
        StatusCode::BAD_REQUEST,
        "unable to upgrade: missing upgrade headers in request",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_ours_in_order() {
        let theirs = vec![
            "v4.channel.k8s.io".to_string(),
            "v5.channel.k8s.io".to_string(),
        ];
        assert_eq!(
            negotiate(&[V5_CHANNEL, V4_CHANNEL], &theirs),
            Some(V5_CHANNEL)
        );
        assert_eq!(
            negotiate(&[SPDY_REMOTECOMMAND], &["v3.channel.k8s.io".into()]),
            None
        );
    }

    #[test]
    fn ports_from_the_query() {
        assert_eq!(query_ports(Some("port=80&port=443")), Ok(vec![80, 443]));
        assert_eq!(query_ports(Some("port=80,8080")), Ok(vec![80, 8080]));
        assert!(query_ports(Some("x=1")).is_err());
        assert!(query_ports(Some("port=0")).is_err());
        assert!(query_ports(None).is_err());
    }
}
