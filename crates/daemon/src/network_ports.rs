//! Published ports: the ports a container asks for (`PortBindings`, `-P`) and the host
//! sockets that hold them while it runs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use berth_api_types::{ApiError, ErrorKind};

use crate::errors::{into_api_error, Classified};
use crate::model::Container;
use crate::network_model::{Endpoint, PublishedPort};

/// A port the container asks to publish, before a host port is picked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WantedPort {
    pub proto: String,
    pub host_ip: IpAddr,
    /// Inclusive range; `(0, 0)` means any free port.
    pub host_ports: (u16, u16),
    pub container_port: u16,
}

/// `80/tcp` → (80, "tcp").
pub(crate) fn parse_port_key(key: &str) -> crate::Result<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp") {
        return Err(ApiError::invalid(format!("invalid proto: {proto}")));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, proto))
}

pub(crate) fn parse_host_ports(s: &str) -> crate::Result<(u16, u16)> {
    if s.is_empty() {
        return Ok((0, 0));
    }
    let bad = || ApiError::invalid(format!("invalid hostPort: {s}"));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A port binding's `HostIp`: empty means all addresses (`0.0.0.0`, which covers IPv6 too).
pub(crate) fn parse_host_ip(s: &str) -> crate::Result<IpAddr> {
    if s.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED.into());
    }
    match s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_some() => Err(ApiError::invalid(format!(
            "invalid IP address: {s}: use the IPv4 address itself"
        ))),
        Ok(ip) => Ok(ip),
        Err(_) => Err(ApiError::invalid(format!("invalid IP address: {s}"))),
    }
}

/// The ports a container publishes: `PortBindings`, plus every `ExposedPorts` entry on an
/// ephemeral host port with `PublishAllPorts` (`-P`).
pub(crate) fn wanted_ports(c: &Container) -> crate::Result<Vec<WantedPort>> {
    let mut out = Vec::new();
    let bindings = c.host_config.port_bindings.clone().unwrap_or_default();
    for (key, list) in &bindings {
        let (container_port, proto) = parse_port_key(key)?;
        let list = list.clone().unwrap_or_default();
        let mut all_v4 = Vec::new();
        for b in &list {
            if parse_host_ip(&b.host_ip)? == IpAddr::from(Ipv4Addr::UNSPECIFIED) {
                all_v4.push(b.host_port.as_str());
            }
        }
        for b in &list {
            let host_ip = parse_host_ip(&b.host_ip)?;
            // The IPv6 wildcard `::` next to `0.0.0.0` for the same host port (as clients
            // send "all addresses") adds nothing: the IPv4 binding covers IPv6 too (see
            // `Ruleset`). Alone it publishes on IPv6 only.
            if host_ip == IpAddr::from(Ipv6Addr::UNSPECIFIED)
                && all_v4.contains(&b.host_port.as_str())
            {
                continue;
            }
            out.push(WantedPort {
                proto: proto.clone(),
                host_ip,
                host_ports: parse_host_ports(&b.host_port)?,
                container_port,
            });
        }
    }
    if c.host_config.publish_all_ports {
        if let Some(exposed) = &c.config.exposed_ports {
            for key in exposed.keys() {
                if bindings.contains_key(key) {
                    continue;
                }
                let (container_port, proto) = parse_port_key(key)?;
                out.push(WantedPort {
                    proto,
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_ports: (0, 0),
                    container_port,
                });
            }
        }
    }
    Ok(out)
}

/// Binds a socket on `ip:port`, so the port counts as taken. Without `listen` it stays just
/// bound (DNAT serves the port); with it, it is the listening socket of a userland proxy,
/// made with `SO_REUSEADDR` so that the proxy's own finished connections (in TIME_WAIT) do
/// not keep the port from a container's next run.
pub(crate) fn reserve_port(
    proto: &str,
    ip: IpAddr,
    port: u16,
    listen: bool,
) -> std::io::Result<(OwnedFd, u16)> {
    use nix::sys::socket::{
        bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrStorage,
    };
    use std::os::fd::AsRawFd;
    let ty = if proto == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    if ip.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    if listen {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let addr = SockaddrStorage::from(std::net::SocketAddr::new(ip, port));
    bind(fd.as_raw_fd(), &addr)?;
    if listen {
        // Listening is what makes a second reservation of the same address fail (two
        // sockets with SO_REUSEADDR may both be bound as long as neither listens).
        let backlog =
            nix::sys::socket::Backlog::new(1024).unwrap_or(nix::sys::socket::Backlog::MAXCONN);
        nix::sys::socket::listen(&fd, backlog)?;
    }
    let bound: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    let port = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(port);
    Ok((fd, port))
}

/// `ip:port`, with IPv6 addresses in brackets, as Docker writes host bindings.
pub(crate) fn host_port_text(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// Why a published port could not be taken (a 500, as dockerd answers).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PortError {
    /// `at` is `ip:port` (or `ip:lo-hi`), as Docker shows host bindings.
    #[error("Bind for {at} failed: port is already allocated")]
    Allocated { at: String },
    #[error("Bind for {at} failed: {source}")]
    Bind { at: String, source: std::io::Error },
    #[error("no host port in {0}")]
    NoPort(String),
    #[error(
        "publishing {container_port}/udp on [{host_ip}] is not supported: berth's userland proxy, which serves [::1], [::] alone and containers without IPv6, speaks TCP only; publish UDP on all addresses, on an IPv4 address, or on another IPv6 address of a container with IPv6"
    )]
    UdpProxy {
        container_port: u16,
        host_ip: Ipv6Addr,
    },
    #[error(
        "publishing {container_port}/{proto} is not supported by rootless berth: its port driver carries TCP and UDP"
    )]
    RootlessProto { container_port: u16, proto: String },
    /// The rootless port driver could not open the port on the host.
    #[error(transparent)]
    Driver(crate::rootless::PortDriverError),
    #[error("proxy to {target}: {source}")]
    Proxy {
        target: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl Classified for PortError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

into_api_error!(PortError);

pub(crate) fn reserve_any(
    w: &WantedPort,
    listen: bool,
) -> std::result::Result<(OwnedFd, u16), PortError> {
    let (lo, hi) = w.host_ports;
    let mut last = None;
    for port in lo..=hi {
        match reserve_port(&w.proto, w.host_ip, port, listen) {
            Ok(r) => return Ok(r),
            // The proxy of a container's previous run (on one IPv6 address) is stopped
            // asynchronously and may hold its port a moment longer.
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse && w.host_ip.is_ipv6() && lo == hi =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
                match reserve_port(&w.proto, w.host_ip, port, listen) {
                    Ok(r) => return Ok(r),
                    Err(e) => last = Some(e),
                }
            }
            Err(e) => last = Some(e),
        }
    }
    let shown = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    let at = host_port_text(w.host_ip, &shown);
    match last {
        Some(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortError::Allocated { at }),
        Some(source) => Err(PortError::Bind { at, source }),
        None => Err(PortError::NoPort(shown)),
    }
}

/// What keeps a published port taken while its container runs: the reserving socket (the
/// port is served by DNAT) or the userland proxy listening on it, and for a rootless daemon
/// the port driver's lease on the same port on the host.
pub(crate) struct Held {
    pub fds: Vec<OwnedFd>,
    pub proxy: Option<tokio::task::JoinHandle<()>>,
}

/// Takes a host port for `w` on `ep`: reserved for DNAT, or served by a userland proxy
/// when DNAT cannot serve it ([`crate::network_v6::proxy_target`]); with a port `driver`
/// (rootless), also opened on the host and carried to the container.
pub(crate) fn take_port(
    ep: &Endpoint,
    w: &WantedPort,
    driver: Option<&dyn crate::rootless::PortDriver>,
) -> std::result::Result<(Held, PublishedPort), PortError> {
    let mut p = PublishedPort {
        proto: w.proto.clone(),
        host_ip: w.host_ip,
        host_port: 0,
        container_port: w.container_port,
    };
    if driver.is_some() && !matches!(w.proto.as_str(), "tcp" | "udp") {
        return Err(PortError::RootlessProto {
            container_port: w.container_port,
            proto: w.proto.clone(),
        });
    }
    let target = crate::network_v6::proxy_target(ep, &p)?;
    let (fd, port) = reserve_any(w, target.is_some())?;
    p.host_port = port;
    let mut held = Held {
        fds: Vec::new(),
        proxy: None,
    };
    match target {
        Some(t) => held.proxy = Some(crate::network_v6::proxy_on(fd, t)?),
        None => held.fds.push(fd),
    }
    if let Some(driver) = driver {
        let to = match (w.host_ip, ep.ipv6) {
            (IpAddr::V6(_), Some(ip6)) => IpAddr::V6(ip6),
            _ => IpAddr::V4(ep.ip),
        };
        match driver.expose(
            &w.proto,
            w.host_ip,
            port,
            std::net::SocketAddr::new(to, w.container_port),
        ) {
            Ok(lease) => held.fds.push(lease),
            Err(e) => {
                if let Some(t) = held.proxy {
                    t.abort();
                }
                return Err(PortError::Driver(e));
            }
        }
    }
    Ok((held, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::container as ct;
    use std::collections::BTreeMap;

    fn container(bindings: &[(&str, &str, &str)], exposed: &[&str], all: bool) -> Container {
        let mut hc = ct::HostConfig::default();
        let mut map: ct::PortMap = BTreeMap::new();
        for (k, ip, port) in bindings {
            map.entry(k.to_string())
                .or_insert(Some(Vec::new()))
                .as_mut()
                .unwrap()
                .push(ct::PortBinding {
                    host_ip: ip.to_string(),
                    host_port: port.to_string(),
                });
        }
        hc.port_bindings = Some(map);
        hc.publish_all_ports = all;
        let cfg = ct::Config {
            exposed_ports: Some(
                exposed
                    .iter()
                    .map(|e| (e.to_string(), serde_json::json!({})))
                    .collect(),
            ),
            ..Default::default()
        };
        Container {
            id: "a".repeat(64),
            name: "x".into(),
            created: String::new(),
            path: String::new(),
            args: Vec::new(),
            config: cfg,
            host_config: hc,
            image_id: String::new(),
            top_layer: None,
            state: Default::default(),
            restart_count: 0,
            exec_ids: Vec::new(),
            mounts: Vec::new(),
            manually_stopped: false,
            health: None,
            ..Default::default()
        }
    }

    #[test]
    fn host_ips_of_port_bindings() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_host_ip("").unwrap(), ip("0.0.0.0"));
        assert_eq!(parse_host_ip("127.0.0.1").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host_ip("::").unwrap(), ip("::"));
        assert_eq!(parse_host_ip("::1").unwrap(), ip("::1"));
        assert_eq!(parse_host_ip("[fd00::5]").unwrap(), ip("fd00::5"));
        assert!(parse_host_ip("::ffff:10.0.0.1")
            .unwrap_err()
            .message
            .contains("use the IPv4 address itself"));
        assert_eq!(
            parse_host_ip("nope").unwrap_err().message,
            "invalid IP address: nope"
        );
    }

    #[test]
    fn port_keys() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert_eq!(parse_port_key("80").unwrap(), (80, "tcp".into()));
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("x/tcp").is_err());
    }

    #[test]
    fn wanted_ports_from_bindings_and_publish_all() {
        let c = container(
            &[
                ("80/tcp", "", "18080"),
                ("53/udp", "127.0.0.1", ""),
                ("81/tcp", "::", "9000"),
                ("82/tcp", "0.0.0.0", "9001"),
                ("82/tcp", "::", "9001"),
            ],
            &["80/tcp", "443/tcp"],
            true,
        );
        let w = wanted_ports(&c).unwrap();
        assert_eq!(
            w,
            vec![
                WantedPort {
                    proto: "udp".into(),
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_ports: (0, 0),
                    container_port: 53
                },
                WantedPort {
                    proto: "tcp".into(),
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_ports: (18080, 18080),
                    container_port: 80
                },
                // `::` alone: IPv6 only.
                WantedPort {
                    proto: "tcp".into(),
                    host_ip: "::".parse().unwrap(),
                    host_ports: (9000, 9000),
                    container_port: 81
                },
                // `::` next to `0.0.0.0`: the IPv4 binding covers both.
                WantedPort {
                    proto: "tcp".into(),
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_ports: (9001, 9001),
                    container_port: 82
                },
                WantedPort {
                    proto: "tcp".into(),
                    host_ip: Ipv4Addr::UNSPECIFIED.into(),
                    host_ports: (0, 0),
                    container_port: 443
                },
            ]
        );
        let bad = container(&[("80/tcp", "nope", "1")], &[], false);
        assert!(wanted_ports(&bad).is_err());
        let bad = container(&[("80/tcp", "", "9-1")], &[], false);
        assert!(wanted_ports(&bad).is_err());
        assert_eq!(parse_host_ports("8000-8002").unwrap(), (8000, 8002));
    }

    #[test]
    fn a_reserved_port_cannot_be_taken_twice() {
        // A proxy's listening socket (SO_REUSEADDR) conflicts with another one just the same.
        for (host, listen) in [("127.0.0.1", false), ("::1", false), ("::1", true)] {
            let host_ip: IpAddr = host.parse().unwrap();
            let (fd, port) = reserve_port("tcp", host_ip, 0, listen).unwrap();
            assert_ne!(port, 0);
            let w = WantedPort {
                proto: "tcp".into(),
                host_ip,
                host_ports: (port, port),
                container_port: 80,
            };
            let err = reserve_any(&w, listen).unwrap_err().to_string();
            assert!(err.contains("port is already allocated"), "{err}");
            if host_ip.is_ipv6() {
                assert!(err.contains(&format!("[::1]:{port}")), "{err}");
            }
            drop(fd);
            assert!(reserve_any(&w, listen).is_ok());
        }
    }
}
