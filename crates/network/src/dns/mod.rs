//! The embedded DNS server of user-defined networks, on hickory-server.
//!
//! Every network gets a [`ServerFuture`] on its gateway address(es), port 53, UDP and TCP.
//! What a name means comes from a [`Directory`] the daemon implements over its live
//! container state, through the pure rules in [`resolve`]: container names, network aliases
//! and short ids (also as `<name>.<network>`) answer `A`/`AAAA` (an empty answer for a type the container has no address
//! of), `PTR` questions for their addresses (`in-addr.arpa`, `ip6.arpa`) answer
//! `<container>.<network>`, other single-label names get NXDOMAIN, everything else is
//! forwarded to the upstream resolvers with a timeout (SERVFAIL when none answers). Only
//! members of the network get answers.
//!
//! All servers run on one dedicated thread with its own single-threaded tokio runtime
//! ([`DnsServers`]): nothing the daemon's own runtime does (blocking calls on its workers,
//! a busy API) can starve them, and stopping one network's server cancels exactly its tasks,
//! which own (and so close) its sockets.

pub mod resolve;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::ServerFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub use resolve::{
    arpa_addr, candidates, is_member, parse_upstreams, resolve, reverse, upstream_resolvers,
    upstreams_for, DnsEndpoint,
};

/// TTL of the records for containers (Docker's embedded resolver uses 600 s).
const TTL: u32 = 600;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(5);

/// The daemon's live container state, as the DNS server needs it.
pub trait Directory: Send + Sync + 'static {
    /// A snapshot of the endpoints of every running container on every network.
    fn endpoints(&self) -> Vec<DnsEndpoint>;
}

/// Where names that are no container go.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub servers: Vec<SocketAddr>,
    /// The host's search domains, stripped from queried names before the container lookup.
    pub search: Vec<String>,
    /// How long one upstream server gets to answer.
    pub timeout: Duration,
}

/// What one network's server needs to know.
pub struct NetworkDns {
    pub network_id: String,
    /// Addresses to serve on (UDP and TCP), normally the gateway's, port 53.
    pub listen: Vec<SocketAddr>,
    pub directory: Arc<dyn Directory>,
    pub upstreams: Upstreams,
}

struct Running {
    cancel: CancellationToken,
    done: std::sync::mpsc::Receiver<()>,
}

/// The DNS servers of all networks, on their own thread and runtime.
pub struct DnsServers {
    rt: tokio::runtime::Handle,
    running: Mutex<HashMap<String, Running>>,
}

impl DnsServers {
    /// Starts the DNS thread (named `berth-dns`); it lives as long as the process.
    pub fn new() -> std::io::Result<DnsServers> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("berth-dns".to_string())
            .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        Ok(DnsServers {
            rt: handle,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Binds `net.listen` (UDP and TCP) and serves it; replaces a server this network
    /// already had. Bind errors are returned, nothing is left half-started.
    /// Returns the addresses bound (a port 0 in `listen` picks a free one).
    pub fn start(&self, net: NetworkDns) -> std::io::Result<Vec<SocketAddr>> {
        self.stop(&net.network_id);
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut bound = Vec::new();
        {
            // The sockets register with the DNS runtime's reactor, not the caller's.
            let _rt = self.rt.enter();
            for addr in &net.listen {
                let (u, t) = bind_pair(*addr)?;
                bound.push(u.local_addr()?);
                u.set_nonblocking(true)?;
                udp.push(tokio::net::UdpSocket::from_std(u)?);
                t.set_nonblocking(true)?;
                tcp.push(tokio::net::TcpListener::from_std(t)?);
            }
        }
        let cancel = CancellationToken::new();
        let (done_tx, done) = std::sync::mpsc::channel();
        let handler = Handler {
            network_id: net.network_id.clone(),
            directory: net.directory,
            upstreams: Arc::new(net.upstreams),
        };
        let token = cancel.clone();
        let id = net.network_id.clone();
        self.rt.spawn(async move {
            let mut server = ServerFuture::new(handler);
            for s in udp {
                server.register_socket(s);
            }
            for l in tcp {
                server.register_listener(l, TCP_IDLE);
            }
            tokio::select! {
                _ = token.cancelled() => {
                    let _ = server.shutdown_gracefully().await;
                }
                res = server.block_until_done() => {
                    // Only an unrecoverable socket error ends a server on its own.
                    tracing::error!(network = %id, "embedded DNS server stopped: {res:?}");
                }
            }
            // Dropping the server drops its tasks and with them the sockets.
            drop(server);
            let _ = done_tx.send(());
        });
        lock(&self.running).insert(net.network_id, Running { cancel, done });
        Ok(bound)
    }

    /// Stops one network's server and waits (briefly) until its sockets are closed.
    pub fn stop(&self, network_id: &str) {
        let Some(r) = lock(&self.running).remove(network_id) else {
            return;
        };
        r.cancel.cancel();
        if r.done.recv_timeout(Duration::from_secs(2)).is_err() {
            tracing::warn!(network = network_id, "embedded DNS server slow to stop");
        }
    }

    /// Networks with a server.
    pub fn serving(&self) -> Vec<String> {
        lock(&self.running).keys().cloned().collect()
    }
}

/// Binds UDP and TCP on one address. A server stopped a moment ago may still hold the port:
/// its aborted tasks drop their sockets when the runtime gets to them, so "in use" is retried
/// for a while. With port 0 the UDP socket picks the port and TCP may find it taken by someone
/// else: then another port is tried.
fn bind_pair(addr: SocketAddr) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let res = std::net::UdpSocket::bind(addr).and_then(|u| {
            let at = u.local_addr()?;
            // std sets SO_REUSEADDR, so a network re-created right after removal can bind
            // again while old connections sit in TIME_WAIT.
            std::net::TcpListener::bind(at).map(|t| (u, t))
        });
        match res {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(if addr.port() == 0 { 1 } else { 20 }));
            }
            other => return other,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Handler {
    network_id: String,
    directory: Arc<dyn Directory>,
    upstreams: Arc<Upstreams>,
}

/// What the server does with one question.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// Answer authoritatively with these records' addresses (possibly none: NOERROR, empty).
    Local(Vec<IpAddr>),
    /// Answer authoritatively with one PTR record: this name (no final dot).
    Ptr(String),
    NxDomain,
    Forward,
    Refused,
}

/// Decides how to answer `name`/`qtype` asked by `client` on `network_id`.
pub(crate) fn decide(
    eps: &[DnsEndpoint],
    network_id: &str,
    client: IpAddr,
    name: &str,
    qtype: RecordType,
    up: &Upstreams,
) -> Decision {
    if !is_member(eps, network_id, client) {
        return Decision::Refused;
    }
    if qtype == RecordType::PTR {
        // A container's address on a network the asker is on; any other address (a host's,
        // the internet's) is the upstream servers' business.
        if let Some(ptr) = arpa_addr(name).and_then(|ip| reverse(eps, network_id, client, ip)) {
            return Decision::Ptr(ptr);
        }
    }
    if let Some(addrs) = resolve(eps, network_id, client, name, &up.search) {
        let want: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|ip| match qtype {
                RecordType::A => ip.is_ipv4(),
                RecordType::AAAA => ip.is_ipv6(),
                RecordType::ANY => true,
                _ => false,
            })
            .collect();
        return Decision::Local(want);
    }
    let single_label = !name.trim_end_matches('.').contains('.');
    if single_label || up.servers.is_empty() {
        // A single-label name that is no container here: nothing upstream knows it either.
        return Decision::NxDomain;
    }
    Decision::Forward
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = || MessageResponseBuilder::from_message_request(request);
        let send_error = |code: ResponseCode| builder().error_msg(request.header(), code);
        if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
            return sent(
                response
                    .send_response(send_error(ResponseCode::NotImp))
                    .await,
            );
        }
        let Ok(info) = request.request_info() else {
            return sent(
                response
                    .send_response(send_error(ResponseCode::FormErr))
                    .await,
            );
        };
        let query = info.query.original().clone();
        let eps = self.directory.endpoints();
        let own = upstreams_for(&eps, &self.network_id, request.src().ip());
        let upstreams = match own {
            Some(servers) => std::borrow::Cow::Owned(Upstreams {
                servers,
                ..(*self.upstreams).clone()
            }),
            None => std::borrow::Cow::Borrowed(&*self.upstreams),
        };
        let decision = if query.query_class() == DNSClass::IN {
            decide(
                &eps,
                &self.network_id,
                request.src().ip(),
                &query.name().to_ascii(),
                query.query_type(),
                &upstreams,
            )
        } else if is_member(&eps, &self.network_id, request.src().ip()) {
            Decision::Forward
        } else {
            Decision::Refused
        };
        drop(eps);
        match decision {
            Decision::Refused => sent(
                response
                    .send_response(send_error(ResponseCode::Refused))
                    .await,
            ),
            Decision::NxDomain => {
                let mut h = Header::response_from_request(request.header());
                h.set_authoritative(true);
                h.set_recursion_available(true);
                h.set_response_code(ResponseCode::NXDomain);
                sent(response.send_response(builder().build_no_records(h)).await)
            }
            Decision::Local(addrs) => {
                let records: Vec<Record> = addrs
                    .into_iter()
                    .map(|ip| {
                        let rdata = match ip {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(query.name().clone(), TTL, rdata)
                    })
                    .collect();
                let mut h = Header::response_from_request(request.header());
                h.set_authoritative(true);
                h.set_recursion_available(true);
                let resp = builder().build(h, records.iter(), [], [], []);
                sent(response.send_response(resp).await)
            }
            Decision::Ptr(target) => {
                let mut h = Header::response_from_request(request.header());
                h.set_authoritative(true);
                h.set_recursion_available(true);
                // Container and network names are valid labels; should one not be, the
                // name exists with no record of this type.
                let records: Vec<Record> = Name::from_ascii(format!("{target}."))
                    .map(|n| Record::from_rdata(query.name().clone(), TTL, RData::PTR(PTR(n))))
                    .into_iter()
                    .collect();
                let resp = builder().build(h, records.iter(), [], [], []);
                sent(response.send_response(resp).await)
            }
            Decision::Forward => {
                let tcp = request.protocol().is_stream();
                match forward(&query, &upstreams, tcp).await {
                    Some(up) => {
                        let mut h = Header::response_from_request(request.header());
                        h.set_recursion_available(true);
                        h.set_response_code(up.response_code());
                        h.set_authentic_data(up.authentic_data());
                        let mut builder = builder();
                        if request.edns().is_some() {
                            let mut e = Edns::new();
                            e.set_max_payload(1232);
                            builder.edns(e);
                        }
                        let resp = builder.build(
                            h,
                            up.answers().iter(),
                            up.name_servers().iter(),
                            [],
                            up.additionals().iter(),
                        );
                        sent(response.send_response(resp).await)
                    }
                    None => sent(
                        response
                            .send_response(send_error(ResponseCode::ServFail))
                            .await,
                    ),
                }
            }
        }
    }
}

fn sent(res: std::io::Result<ResponseInfo>) -> ResponseInfo {
    res.unwrap_or_else(|e| {
        tracing::debug!("sending a DNS response: {e}");
        let mut h = Header::new();
        h.set_response_code(ResponseCode::ServFail);
        h.into()
    })
}

/// Asks the upstream servers in turn; the first usable answer wins. Over UDP unless the
/// client asked over TCP or the UDP answer was truncated.
async fn forward(query: &Query, up: &Upstreams, tcp: bool) -> Option<Message> {
    let id: u16 = rand::random();
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(query.clone());
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let bytes = m.to_vec().ok()?;
    for server in &up.servers {
        let res = if tcp {
            tokio::time::timeout(up.timeout, ask_tcp(&bytes, *server)).await
        } else {
            match tokio::time::timeout(up.timeout, ask_udp(&bytes, id, *server)).await {
                Ok(Ok(r)) if r.truncated() => {
                    tokio::time::timeout(up.timeout, ask_tcp(&bytes, *server)).await
                }
                other => other,
            }
        };
        match res {
            Ok(Ok(r)) if r.id() == id && r.message_type() == MessageType::Response => {
                // SERVFAIL/REFUSED from one server: try the next, as resolvers do.
                if matches!(
                    r.response_code(),
                    ResponseCode::ServFail | ResponseCode::Refused
                ) && up.servers.len() > 1
                {
                    continue;
                }
                return Some(r);
            }
            Ok(Ok(_)) => tracing::debug!(%server, "upstream answered another question"),
            Ok(Err(e)) => tracing::debug!(%server, "upstream DNS: {e}"),
            Err(_) => tracing::debug!(%server, "upstream DNS timed out"),
        }
    }
    None
}

async fn ask_udp(bytes: &[u8], id: u16, server: SocketAddr) -> std::io::Result<Message> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local).await?;
    sock.connect(server).await?;
    sock.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Stray datagrams (a late answer to someone else) are skipped, not trusted.
        if let Ok(m) = Message::from_vec(&buf[..n]) {
            if m.id() == id {
                return Ok(m);
            }
        }
    }
}

async fn ask_tcp(bytes: &[u8], server: SocketAddr) -> std::io::Result<Message> {
    let mut s = tokio::net::TcpStream::connect(server).await?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("query too long"))?
        .to_be_bytes();
    s.write_all(&[&len[..], bytes].concat()).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests;
