//! The IPAM side of a network create request, for both families ([`plan_subnet`]), and
//! what only IPv6 has: picking a ULA subnet when IPv6 is enabled without one
//! ([`plan_v6`]) and the userland proxies for `[::1]`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use berth_api_types::network as nt;
use berth_api_types::{ApiError, ErrorKind};
use berth_network::ipam::{ula_subnet, AddrPool, Cidr, Family, Subnet6};

use crate::network_ports::PortError;

/// A new network's subnet of one family, checked, with its pool.
#[derive(Debug, Clone)]
pub(crate) struct Plan<A: Family> {
    pub subnet: Cidr<A>,
    pub gateway: A,
    pub range: Option<Cidr<A>>,
    pub pool: AddrPool<A>,
}

pub(crate) type Plan6 = Plan<Ipv6Addr>;

impl<A: Family> Plan<A> {
    fn new(subnet: Cidr<A>, gateway: A, range: Option<Cidr<A>>) -> crate::Result<Plan<A>> {
        let mut pool =
            AddrPool::new(subnet, gateway).map_err(|e| ApiError::invalid(e.to_string()))?;
        if let Some(r) = range {
            pool = pool
                .with_range(r)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        Ok(Plan {
            subnet,
            gateway,
            range,
            pool,
        })
    }

    /// A subnet picked from the defaults: the gateway on its first host, no ip-range.
    pub(crate) fn with_first_host(subnet: Cidr<A>) -> crate::Result<Plan<A>> {
        Plan::new(subnet, subnet.first_host(), None)
    }
}

/// The address blocks no network may use, by family: a bridge with an address in one of them
/// would capture the host's own loopback or multicast traffic (`local 127.0.0.1` routes on the
/// bridge), or hold an address no host can be reached at.
const RESERVED_V4: [(&str, &str); 4] = [
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
];
const RESERVED_V6: [(&str, &str); 4] = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// A subnet that overlaps a reserved address block (its kind: "loopback", "multicast"...).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{subnet} overlaps the {kind} range {block}, which cannot be used for a network")]
pub struct Reserved {
    subnet: String,
    kind: &'static str,
    block: &'static str,
}

/// Refuses a subnet that overlaps a reserved block, naming the block's kind.
pub(crate) fn refuse_reserved<A: Family>(subnet: &Cidr<A>) -> Result<(), Reserved> {
    let blocks: &[(&'static str, &'static str)] = if A::BITS == 32 {
        &RESERVED_V4
    } else {
        &RESERVED_V6
    };
    match blocks.iter().find(|(block, _)| {
        block
            .parse::<Cidr<A>>()
            .is_ok_and(|block| block.overlaps(subnet))
    }) {
        Some((block, kind)) => Err(Reserved {
            subnet: subnet.to_string(),
            kind,
            block,
        }),
        None => Ok(()),
    }
}

/// The subnet, ip-range and gateway an IPAM config with a subnet asks for, checked against
/// each other, the reserved address blocks and the `existing` subnets of the same family,
/// with Docker's messages where it has them.
pub(crate) fn plan_subnet<A: Family>(
    cfg: &nt::IpamConfig,
    existing: &[Cidr<A>],
) -> crate::Result<Plan<A>> {
    let subnet: Cidr<A> = cfg.subnet.parse().map_err(|_| {
        ApiError::invalid(format!(
            "invalid subnet {} : invalid CIDR address: {}",
            cfg.subnet, cfg.subnet
        ))
    })?;
    refuse_reserved(&subnet)
        .map_err(|e| ApiError::invalid(format!("invalid subnet {}: {e}", cfg.subnet)))?;
    if let Some(other) = existing.iter().find(|s| s.overlaps(&subnet)) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {other})"),
        ));
    }
    let range = if cfg.ip_range.is_empty() {
        None
    } else {
        let range: Cidr<A> = cfg.ip_range.parse().map_err(|_| {
            ApiError::invalid(format!(
                "invalid ip-range {}: invalid CIDR address: {}",
                cfg.ip_range, cfg.ip_range
            ))
        })?;
        if !subnet.contains(range.network()) || range.prefix() < subnet.prefix() {
            return Err(ApiError::invalid(format!(
                "ip-range {range} is not within subnet {subnet}"
            )));
        }
        Some(range)
    };
    let gateway = if cfg.gateway.is_empty() {
        subnet.first_host()
    } else {
        let gw: A = cfg
            .gateway
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid gateway address {}", cfg.gateway)))?;
        if !subnet.contains(gw) {
            return Err(ApiError::invalid(format!(
                "gateway {gw} is not in subnet {subnet}"
            )));
        }
        gw
    };
    Plan::new(subnet, gateway, range)
}

/// The IPv6 side of a network create request: `None` without `EnableIPv6`, else the subnet
/// from `cfg` (or a fresh ULA /64 when there is none) checked against `existing` subnets.
pub(crate) fn plan_v6(
    enable: bool,
    cfg: Option<&nt::IpamConfig>,
    existing: &[Subnet6],
) -> crate::Result<Option<Plan6>> {
    let given = cfg.filter(|c| !c.subnet.is_empty());
    if !enable {
        return match given.or(cfg) {
            Some(c) => {
                Err(ApiError::invalid(format!(
                "invalid network config: IPv6 subnet {} provided but IPv6 is not enabled (--ipv6)",
                if c.subnet.is_empty() { &c.gateway } else { &c.subnet }
            )))
            }
            None => Ok(None),
        };
    }
    if let Some(cfg) = given {
        return plan_subnet(cfg, existing).map(Some);
    }
    if cfg.is_some_and(|c| !c.gateway.is_empty() || !c.ip_range.is_empty()) {
        return Err(ApiError::invalid(
            "invalid network config: an IPv6 gateway or ip-range needs an IPv6 subnet",
        ));
    }
    // Docker 28 gives an IPv6 network without a subnet a ULA /64 of its own.
    let subnet = (0..16)
        .map(|_| ula_subnet(rand::random()))
        .find(|s| !existing.iter().any(|e| e.overlaps(s)))
        .ok_or_else(|| {
            ApiError::invalid("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network")
        })?;
    Plan::with_first_host(subnet).map(Some)
}

/// Whether a published port of `ep` is also published over IPv6 (on `::`): ports on all
/// addresses of a container with an IPv6 address, as Docker lists them.
pub(crate) fn also_on_v6(
    ep: &crate::network_model::Endpoint,
    p: &crate::network_model::PublishedPort,
) -> bool {
    ep.ipv6.is_some() && all_v4(p)
}

/// Whether `p` is published on all addresses (`0.0.0.0`).
fn all_v4(p: &crate::network_model::PublishedPort) -> bool {
    p.host_ip == IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)
}

/// Where a userland proxy must forward a port published on one IPv6 host address (or on
/// `[::]`, all of them), `None` when DNAT serves it: IPv6 has no `route_localnet`, so DNAT
/// cannot serve `[::1]` (nor, then, all of `[::]`), and a container without an IPv6 address
/// cannot be reached by IPv6 DNAT at all; then, as Docker's docker-proxy does, a proxy
/// forwards to the container's IPv6 address, or to its IPv4 one. The proxy speaks TCP only.
pub(crate) fn proxy_target(
    ep: &crate::network_model::Endpoint,
    p: &crate::network_model::PublishedPort,
) -> Result<Option<SocketAddr>, PortError> {
    let IpAddr::V6(host_ip) = p.host_ip else {
        return Ok(None);
    };
    if ep.ipv6.is_some() && !host_ip.is_loopback() && !host_ip.is_unspecified() {
        return Ok(None);
    }
    if p.proto != "tcp" {
        return Err(PortError::UdpProxy {
            container_port: p.container_port,
            host_ip,
        });
    }
    let ip = ep.ipv6.map_or(IpAddr::V4(ep.ip), IpAddr::V6);
    Ok(Some(SocketAddr::new(ip, p.container_port)))
}

/// Userland proxies from `[::1]:<host port>` to the container's IPv6 address, for the TCP
/// ports an endpoint publishes on all addresses (what Docker's docker-proxy does for [::1]:
/// IPv6 has no `route_localnet`, so DNAT cannot serve the loopback address). Ports whose
/// [::1] is taken by someone else are skipped with a warning.
pub(crate) fn loopback_proxies(
    container: &str,
    eps: &[crate::network_model::Endpoint],
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for ep in eps {
        let Some(ip6) = ep.ipv6 else { continue };
        for p in ep.ports.iter().filter(|p| p.proto == "tcp" && all_v4(p)) {
            let target = SocketAddr::from((ip6, p.container_port));
            match loopback_listener(p.host_port).and_then(|l| serve(l, target)) {
                Ok(task) => out.push(task),
                Err(e) => {
                    tracing::warn!(container, "no [::1]:{} proxy to {target}: {e}", p.host_port)
                }
            }
        }
    }
    out
}

fn loopback_listener(port: u16) -> std::io::Result<std::net::TcpListener> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn6,
    };
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    // The proxy of a container's previous run is aborted asynchronously and may hold the
    // port for a moment longer: SO_REUSEPORT lets the new one bind meanwhile.
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    let backlog =
        nix::sys::socket::Backlog::new(1024).unwrap_or(nix::sys::socket::Backlog::MAXCONN);
    nix::sys::socket::listen(&fd, backlog)?;
    Ok(std::net::TcpListener::from(fd))
}

/// A proxy on `fd`, the listening socket of a published port.
pub(crate) fn proxy_on(
    fd: std::os::fd::OwnedFd,
    target: SocketAddr,
) -> Result<tokio::task::JoinHandle<()>, PortError> {
    serve(std::net::TcpListener::from(fd), target)
        .map_err(|source| PortError::Proxy { target, source })
}

/// Accepts connections on `listener` and copies each to a new connection to `target`.
fn serve(
    listener: std::net::TcpListener,
    target: SocketAddr,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| std::io::Error::other(format!("no runtime: {e}")))?;
    let _guard = rt.enter();
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(rt.spawn(async move {
        loop {
            let mut inbound = match listener.accept().await {
                Ok((s, _)) => s,
                Err(_) => {
                    // E.g. out of file descriptors: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(subnet: &str, gateway: &str, range: &str) -> nt::IpamConfig {
        nt::IpamConfig {
            subnet: subnet.into(),
            gateway: gateway.into(),
            ip_range: range.into(),
            ..Default::default()
        }
    }

    fn err(enable: bool, c: &nt::IpamConfig, existing: &[Subnet6]) -> (ErrorKind, String) {
        let e = plan_v6(enable, Some(c), existing).unwrap_err();
        (e.kind, e.message)
    }

    #[test]
    fn a_given_subnet_with_defaults_and_explicit_parts() {
        let p = plan_v6(true, Some(&cfg("fd00:db8:1::/64", "", "")), &[])
            .unwrap()
            .unwrap();
        assert_eq!(p.subnet.to_string(), "fd00:db8:1::/64");
        assert_eq!(p.gateway.to_string(), "fd00:db8:1::1");
        assert!(p.range.is_none());
        let mut p = plan_v6(
            true,
            Some(&cfg(
                "fd00:db8:1::/64",
                "fd00:db8:1::fe",
                "fd00:db8:1::100/120",
            )),
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.gateway.to_string(), "fd00:db8:1::fe");
        assert_eq!(p.pool.allocate().unwrap().to_string(), "fd00:db8:1::100");
    }

    #[test]
    fn no_ipv6_without_enable_ipv6() {
        assert!(plan_v6(false, None, &[]).unwrap().is_none());
        let (k, m) = err(false, &cfg("fd00:db8:1::/64", "", ""), &[]);
        assert_eq!(k, ErrorKind::InvalidParameter);
        assert!(m.contains("IPv6 is not enabled"), "{m}");
    }

    #[test]
    fn a_ula_subnet_when_none_is_given() {
        let taken: Subnet6 = "fd00:db8:9::/64".parse().unwrap();
        let p = plan_v6(true, None, &[taken]).unwrap().unwrap();
        assert_eq!(p.subnet.prefix(), 64);
        assert!(p.subnet.network().segments()[0] & 0xff00 == 0xfd00);
        assert!(!p.subnet.overlaps(&taken));
        assert_eq!(p.gateway, p.subnet.first_host());
        let e = plan_v6(true, Some(&cfg("", "fd00::1", "")), &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn bad_input_errors_like_docker() {
        let (k, m) = err(true, &cfg("fd00:zz::/64", "", ""), &[]);
        assert_eq!(k, ErrorKind::InvalidParameter);
        assert_eq!(
            m,
            "invalid subnet fd00:zz::/64 : invalid CIDR address: fd00:zz::/64"
        );
        let existing: Subnet6 = "fd00:db8::/48".parse().unwrap();
        let (k, m) = err(true, &cfg("fd00:db8:0:1::/64", "", ""), &[existing]);
        assert_eq!(k, ErrorKind::Forbidden);
        assert!(m.contains("Pool overlaps"), "{m}");
        let (k, m) = err(true, &cfg("fd00:db8:1::/64", "fd00:db8:2::1", ""), &[]);
        assert_eq!(k, ErrorKind::InvalidParameter);
        assert_eq!(m, "gateway fd00:db8:2::1 is not in subnet fd00:db8:1::/64");
        let (_, m) = err(true, &cfg("fd00:db8:1::/64", "nope", ""), &[]);
        assert_eq!(m, "invalid gateway address nope");
        let (_, m) = err(true, &cfg("fd00:db8:1::/64", "", "fd00:db8:2::/80"), &[]);
        assert!(m.contains("is not within subnet"), "{m}");
        let (_, m) = err(true, &cfg("fd00:db8:1::/127", "", ""), &[]);
        assert!(m.contains("too small"), "{m}");
    }

    #[test]
    fn reserved_ranges_are_refused() {
        for (subnet, kind) in [
            ("::1/128", "loopback"),
            ("::/64", "unspecified"),
            ("fe80::/64", "link-local"),
            ("ff02::/16", "multicast"),
            ("ff00::/8", "multicast"),
        ] {
            let (k, m) = err(true, &cfg(subnet, "", ""), &[]);
            assert_eq!(k, ErrorKind::InvalidParameter, "{subnet}");
            assert!(
                m.starts_with(&format!("invalid subnet {subnet}: ")) && m.contains(kind),
                "{subnet}: {m}"
            );
        }
        for (subnet, kind) in [
            ("127.0.0.0/8", "loopback"),
            ("127.1.0.0/16", "loopback"),
            ("224.0.0.0/4", "multicast"),
            ("239.1.0.0/16", "multicast"),
            ("0.0.0.0/8", "unspecified"),
            ("0.0.0.0/0", "unspecified"),
            ("169.254.0.0/16", "link-local"),
        ] {
            let e = plan_subnet::<std::net::Ipv4Addr>(&cfg(subnet, "", ""), &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameter, "{subnet}");
            assert!(e.message.contains(kind), "{subnet}: {}", e.message);
        }
        assert!(plan_subnet::<std::net::Ipv4Addr>(&cfg("10.77.0.0/16", "", ""), &[]).is_ok());
        assert!(plan_v6(true, Some(&cfg("fd00:1::/64", "", "")), &[]).is_ok());
    }

    #[tokio::test]
    async fn loopback_proxy_relays_to_the_target() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let target = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let free = std::net::TcpListener::bind("[::1]:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let task = loopback_listener(port)
            .and_then(|l| serve(l, target))
            .unwrap();
        let mut c = tokio::net::TcpStream::connect(("::1", port)).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"PING");
        task.abort();
    }
}
