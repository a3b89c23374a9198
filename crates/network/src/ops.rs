//! Kernel link operations behind a narrow trait, and their rtnetlink implementation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::netlink::{self, Conn, NlError, Veth};
use crate::{Error, Result};

/// A container's interface on a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub bridge: String,
    /// The host end of the veth pair (≤ 15 bytes).
    pub host_ifname: String,
    /// The namespace (bind-mounted file) the other end moves into.
    pub netns: PathBuf,
    /// Its name in there (`eth0`).
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Default route; `None` for internal networks.
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    /// The IPv6 address and prefix length on networks with IPv6 enabled.
    pub address6: Option<(Ipv6Addr, u8)>,
    /// Default IPv6 route; `None` for internal networks or networks without IPv6.
    pub gateway6: Option<Ipv6Addr>,
    /// Sysctls of the interface (`DriverOpts` `com.docker.network.endpoint.sysctls`, see
    /// [`endpoint_sysctls`]): `/proc/sys` paths and values, written inside the namespace
    /// before the addresses go on.
    pub sysctls: Vec<(String, String)>,
}

/// The `DriverOpts` key of per-interface sysctls (API 1.46).
pub const ENDPOINT_SYSCTLS: &str = "com.docker.network.endpoint.sysctls";

/// Docker's per-interface sysctls: `net.X.Y.IFNAME.Z=V[,...]`, `X` one of `ipv4`, `ipv6`,
/// `mpls` (`ifname` is accepted too, as the docker CLI lowercases it). Each becomes the
/// `/proc/sys` path of interface `ifname` and its value; anything else is refused with
/// dockerd's message.
pub fn endpoint_sysctls(spec: &str, ifname: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in spec.split(',') {
        let bad = || Error::EndpointSysctl(item.to_string());
        let (key, value) = item.split_once('=').ok_or_else(bad)?;
        let parts: Vec<&str> = key.splitn(5, '.').collect();
        let ok = parts.len() == 5
            && parts[0] == "net"
            && matches!(parts[1], "ipv4" | "ipv6" | "mpls")
            && matches!(parts[3], "IFNAME" | "ifname")
            && !parts[4].is_empty()
            && !parts.iter().any(|p| p.contains('/') || *p == "..");
        if !ok {
            return Err(bad());
        }
        let path = format!(
            "/proc/sys/net/{}/{}/{ifname}/{}",
            parts[1],
            parts[2],
            parts[4].replace('.', "/")
        );
        out.push((path, value.to_string()));
    }
    Ok(out)
}

/// What the network service needs from the kernel.
pub trait LinkOps: Send + Sync {
    /// Creates the bridge if missing, gives it `addr/prefix`, brings it up, and enables
    /// forwarding and localnet routing on it (and on nothing else).
    fn ensure_bridge(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()>;
    /// Deletes a link; a missing one is fine.
    fn delete_link(&self, name: &str) -> Result<()>;
    fn link_exists(&self, name: &str) -> bool;
    /// The interfaces enslaved to `bridge`.
    fn bridge_ports(&self, bridge: &str) -> Vec<String>;
    /// Creates the veth pair, moves one end into the namespace and configures both ends.
    fn attach(&self, a: &Attachment) -> Result<()>;
    /// Points the default routes of the namespace `netns` at `v4` and `v6` (an interface in
    /// there and its gateway), replacing whatever default routes it had; `None` leaves that
    /// family without one. Moves a running container's default route when the endpoint that
    /// provides its gateway changes.
    fn set_default_routes(
        &self,
        netns: &Path,
        v4: Option<(&str, Ipv4Addr)>,
        v6: Option<(&str, Ipv6Addr)>,
    ) -> Result<()>;
    /// Gives an existing bridge the IPv6 address `addr/prefix` (IPv6 turned on for it), and
    /// with `forwarding` makes the host route IPv6 (`net.ipv6.conf.all.forwarding`, which
    /// IPv6 has only host-wide, as Docker sets it).
    fn ensure_bridge_v6(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix: u8,
        forwarding: bool,
    ) -> Result<()>;
}

/// [`LinkOps`] over rtnetlink ([`crate::netlink`]): no process is spawned; an attachment is
/// two requests in the host namespace and five in the container's (two more with IPv6).
pub struct Rtnetlink;

fn nl_err(what: impl Into<String>) -> impl FnOnce(NlError) -> Error {
    let what = what.into();
    move |e| Error::Io {
        what,
        source: e.into_io(),
    }
}

fn open() -> Result<Conn> {
    Conn::open().map_err(nl_err("opening a netlink socket"))
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(crate::io_err(format!("writing {path}")))
}

/// Runs `f` on a throwaway thread that has joined the network namespace `netns` (an open
/// `nsfs` file): `/proc/sys/net` and netlink sockets opened there belong to that namespace,
/// and no other work of the caller ever runs inside.
pub fn in_netns<T: Send>(
    netns: &std::fs::File,
    what: &str,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                Error::Io {
                    what: what.to_string(),
                    source: e.into(),
                }
            })?;
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Command {
                what: "network namespace thread".into(),
                detail: "panicked".into(),
            })
        })
    })
}

/// Turns on IPv4 forwarding for the host (`net.ipv4.ip_forward`), as dockerd does at start
/// unless `--ip-forward=false`: replies to containers' outbound connections arrive on the
/// host's uplink and are forwarded to a bridge only when the host forwards. Returns whether
/// it was off before.
pub fn enable_ipv4_forwarding() -> Result<bool> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(false);
    }
    write_sysctl(path, "1")?;
    Ok(true)
}

/// A host that forwards IPv6 ignores router advertisements on interfaces with `accept_ra`
/// 1, and would lose its SLAAC addresses and default route when they expire. Interfaces that
/// accept them now are switched to 2 ("even when forwarding") before forwarding is enabled,
/// so the host's own IPv6 keeps working as before.
fn keep_accepting_router_advertisements() {
    let Ok(dir) = std::fs::read_dir("/proc/sys/net/ipv6/conf") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if matches!(name.as_str(), "all" | "default" | "lo") {
            continue;
        }
        let path = e.path().join("accept_ra");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            if let Err(e) = std::fs::write(&path, "2") {
                tracing::warn!("setting {}: {e}", path.display());
            }
        }
    }
}

/// The IPv6 sysctls to turn on inside a container's namespace before its addresses are
/// configured: some hosts create new namespaces (or interfaces) with IPv6 disabled, and
/// then `::1` on `lo` and the address on `ifname` could not be added.
pub fn netns_ipv6_sysctls(ifname: &str) -> Vec<String> {
    ["all", "default", "lo", ifname]
        .iter()
        .map(|i| format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"))
        .collect()
}

/// Writes 0 to each of `paths` that is not 0 already; a missing one means the kernel has no
/// IPv6. Must run on a thread inside the container's namespace ([`in_netns`]).
fn enable_ipv6(paths: &[String]) -> Result<()> {
    for path in paths {
        if std::fs::read_to_string(path).is_ok_and(|v| v.trim() != "0") {
            write_sysctl(path, "0")?;
        } else if !Path::new(path).exists() {
            return Err(Error::Command {
                what: "enabling IPv6 in the container".into(),
                detail: format!("{path} is missing: IPv6 is disabled in the kernel"),
            });
        }
    }
    Ok(())
}

fn valid_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Error::InvalidAddress(format!(
            "invalid interface name {name:?}"
        )));
    }
    Ok(())
}

/// The container side of an attachment, on a socket in its namespace: `lo` up, the
/// address on `ifname`, `ifname` up, the default route; then the IPv6 address (without
/// duplicate address detection) and IPv6 default route when there are any.
fn configure_inside(nl: &mut Conn, a: &Attachment) -> Result<()> {
    let what = format!("configuring {} in the container", a.ifname);
    nl.set_up("lo").map_err(nl_err(format!("{what}: lo up")))?;
    let index = nl
        .link_index(&a.ifname)
        .map_err(nl_err(what.clone()))?
        .ok_or_else(|| Error::Command {
            what: what.clone(),
            detail: "the interface did not arrive in the namespace".into(),
        })?;
    nl.add_address(index, IpAddr::V4(a.address), a.prefix, false)
        .map_err(nl_err(format!(
            "{what}: adding address {}/{}",
            a.address, a.prefix
        )))?;
    nl.set_up_index(index)
        .map_err(nl_err(format!("{what}: bringing it up")))?;
    if let Some(gw) = a.gateway {
        nl.add_default_route(index, IpAddr::V4(gw))
            .map_err(nl_err(format!("{what}: default route via {gw}")))?;
    }
    if let Some((addr6, prefix6)) = a.address6 {
        // No duplicate address detection (as libnetwork adds it): IPAM already guarantees
        // the address is unique, and DAD would leave it "tentative", unusable, for a second
        // or two after the container starts.
        nl.add_address_nodad(index, IpAddr::V6(addr6), prefix6, false)
            .map_err(nl_err(format!("{what}: adding address {addr6}/{prefix6}")))?;
        if let Some(gw6) = a.gateway6 {
            nl.add_default_route(index, IpAddr::V6(gw6))
                .map_err(nl_err(format!("{what}: IPv6 default route via {gw6}")))?;
        }
    }
    Ok(())
}

impl LinkOps for Rtnetlink {
    fn ensure_bridge(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        valid_ifname(name)?;
        let what = format!("setting up bridge {name}");
        let mut nl = open()?;
        match nl.add_bridge(name) {
            Err(e) if e.errno != libc::EEXIST => return Err(nl_err(what)(e)),
            _ => {}
        }
        let index = nl
            .link_index(name)
            .map_err(nl_err(what.clone()))?
            .ok_or_else(|| Error::Command {
                what: what.clone(),
                detail: "the bridge vanished".into(),
            })?;
        // A bridge whose address was never set takes the lowest MAC of its ports, so it
        // changes whenever a container's veth with a lower (random) MAC joins; the containers
        // already there keep the old one in their neighbour cache and their packets to the
        // gateway (DNS, routed traffic) go nowhere until that entry goes stale, seconds
        // later. A MAC set explicitly never changes (Docker sets one too).
        let mac = crate::ipam::mac_for(addr);
        let mac_bytes = netlink::parse_mac(&mac)
            .ok_or_else(|| Error::InvalidAddress(format!("invalid MAC address {mac}")))?;
        nl.set_mac_index(index, mac_bytes)
            .map_err(nl_err(format!("{what}: MAC address {mac}")))?;
        nl.add_address(index, IpAddr::V4(addr), prefix, true)
            .map_err(nl_err(format!("{what}: address {addr}/{prefix}")))?;
        nl.set_up(name).map_err(nl_err(what))?;
        // IPv4 checks `forwarding` of the interface a packet arrives on: turning it on for
        // the bridge lets containers' traffic out without making the host a router elsewhere.
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{name}/forwarding"), "1")?;
        // Lets DNAT send packets from 127.0.0.1 out of the bridge (published ports on localhost).
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        )
    }

    fn ensure_bridge_v6(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix: u8,
        forwarding: bool,
    ) -> Result<()> {
        valid_ifname(name)?;
        let disable = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        if !Path::new(&disable).exists() {
            return Err(Error::Command {
                what: format!("enabling IPv6 on bridge {name}"),
                detail: "IPv6 is disabled in the kernel of this host".into(),
            });
        }
        write_sysctl(&disable, "0")?;
        let what = format!("setting the IPv6 address of bridge {name}");
        let mut nl = open()?;
        let index = nl
            .link_index(name)
            .map_err(nl_err(what.clone()))?
            .ok_or_else(|| Error::Command {
                what: what.clone(),
                detail: format!("bridge {name} does not exist"),
            })?;
        nl.add_address_nodad(index, IpAddr::V6(addr), prefix, true)
            .map_err(nl_err(format!("{what}: address {addr}/{prefix}")))?;
        let all = "/proc/sys/net/ipv6/conf/all/forwarding";
        if forwarding && std::fs::read_to_string(all).is_ok_and(|v| v.trim() != "1") {
            keep_accepting_router_advertisements();
            write_sysctl(all, "1")?;
        }
        Ok(())
    }

    fn set_default_routes(
        &self,
        netns: &Path,
        v4: Option<(&str, Ipv4Addr)>,
        v6: Option<(&str, Ipv6Addr)>,
    ) -> Result<()> {
        for name in v4.map(|r| r.0).into_iter().chain(v6.map(|r| r.0)) {
            valid_ifname(name)?;
        }
        let ns = std::fs::File::open(netns)
            .map_err(crate::io_err(format!("opening {}", netns.display())))?;
        let what = format!("setting the default routes in {}", netns.display());
        let mut nl = Conn::open_in(&ns).map_err(nl_err(what.clone()))?;
        let routes = [
            (false, v4.map(|(i, gw)| (i, IpAddr::V4(gw)))),
            (true, v6.map(|(i, gw)| (i, IpAddr::V6(gw)))),
        ];
        for (v6, route) in routes {
            nl.delete_default_routes(v6)
                .map_err(nl_err(format!("{what}: removing the old one")))?;
            let Some((ifname, gw)) = route else {
                continue;
            };
            let index = nl
                .link_index(ifname)
                .map_err(nl_err(what.clone()))?
                .ok_or_else(|| Error::Command {
                    what: what.clone(),
                    detail: format!("no interface {ifname}"),
                })?;
            nl.add_default_route(index, gw)
                .map_err(nl_err(format!("{what}: via {gw} dev {ifname}")))?;
        }
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        valid_ifname(name)?;
        match open()?.delete_link(name) {
            Err(e) if e.errno != libc::ENODEV => Err(nl_err(format!("deleting {name}"))(e)),
            _ => Ok(()),
        }
    }

    fn link_exists(&self, name: &str) -> bool {
        valid_ifname(name).is_ok()
            && open()
                .ok()
                .and_then(|mut nl| nl.link_index(name).ok())
                .flatten()
                .is_some()
    }

    fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        let Ok(mut nl) = open() else {
            return Vec::new();
        };
        match nl.link_index(bridge) {
            Ok(Some(index)) => nl.ports(index).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn attach(&self, a: &Attachment) -> Result<()> {
        valid_ifname(&a.host_ifname)?;
        valid_ifname(&a.bridge)?;
        valid_ifname(&a.ifname)?;
        let mac = netlink::parse_mac(&a.mac)
            .ok_or_else(|| Error::InvalidAddress(format!("invalid MAC address {}", a.mac)))?;
        let ns = std::fs::File::open(&a.netns)
            .map_err(crate::io_err(format!("opening {}", a.netns.display())))?;
        let mut nl = open()?;
        let what = format!("creating veth {}", a.host_ifname);
        let bridge_index = nl
            .link_index(&a.bridge)
            .map_err(nl_err(what.clone()))?
            .ok_or_else(|| Error::Command {
                what: what.clone(),
                detail: format!("bridge {} does not exist", a.bridge),
            })?;
        nl.add_veth(&Veth {
            host: &a.host_ifname,
            bridge_index,
            peer: &a.ifname,
            peer_mac: mac,
            peer_netns_fd: std::os::fd::AsRawFd::as_raw_fd(&ns),
        })
        .map_err(nl_err(what))?;
        let joining = format!("joining {}", a.netns.display());
        let sysctls = if a.address6.is_some() {
            netns_ipv6_sysctls(&a.ifname)
        } else {
            Vec::new()
        };
        // /proc/sys/net shows the namespace of the thread that opens it: the sysctls are
        // written, and the socket opened, on a thread inside the container's namespace.
        let res = in_netns(&ns, &joining, || {
            enable_ipv6(&sysctls)?;
            for (path, value) in &a.sysctls {
                write_sysctl(path, value)?;
            }
            Conn::open().map_err(nl_err(joining.clone()))
        })
        .and_then(|mut inner| configure_inside(&mut inner, a));
        if res.is_err() {
            // Takes the peer in the namespace along.
            let _ = nl.delete_link(&a.host_ifname);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att() -> Attachment {
        Attachment {
            bridge: "berth0".into(),
            host_ifname: "vb1234567890ab".into(),
            netns: "/run/berth/netns/abc".into(),
            ifname: "eth0".into(),
            address: "172.30.0.2".parse().unwrap(),
            prefix: 16,
            gateway: Some("172.30.0.1".parse().unwrap()),
            mac: "02:42:ac:1e:00:02".into(),
            address6: None,
            gateway6: None,
            sysctls: Vec::new(),
        }
    }

    #[test]
    fn bad_names_and_macs_are_refused_before_touching_the_kernel() {
        let mut a = att();
        a.mac = "02:42:zz:1e:00:02".into();
        assert_eq!(
            Rtnetlink.attach(&a).unwrap_err().to_string(),
            "invalid address: invalid MAC address 02:42:zz:1e:00:02"
        );
        let mut a = att();
        a.host_ifname = "vb/../../x".into();
        assert!(Rtnetlink.attach(&a).is_err());
        assert!(Rtnetlink.delete_link("no such/name").is_err());
        assert!(!Rtnetlink.link_exists("../lo"));
    }

    /// Removes what the kernel test creates, whatever happens to it.
    struct Cleanup {
        links: Vec<String>,
        ns: PathBuf,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for l in &self.links {
                let _ = Rtnetlink.delete_link(l);
            }
            let _ = crate::netns::remove(&self.ns);
            if let Some(dir) = self.ns.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    fn in_ns(ns: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .arg("ip")
            .args(args)
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    #[test]
    #[ignore = "needs root (netns, netlink): the privileged tier runs it"]
    fn attach_configures_the_namespace_and_a_failure_leaves_nothing_behind() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let pid = std::process::id();
        let tag = format!("{:06x}", pid & 0xff_ffff);
        let bridge = format!("bnlt{tag}");
        let dir = std::env::temp_dir().join(format!("berth-netlink-test-{pid}"));
        let ns = dir.join("ns");
        let mut a = att();
        a.bridge = bridge.clone();
        a.host_ifname = format!("vnlt{tag}a");
        a.netns = ns.clone();
        let net = format!("10.251.{}", pid % 256);
        a.address = format!("{net}.2").parse().unwrap();
        a.gateway = Some(format!("{net}.1").parse().unwrap());
        a.prefix = 24;
        a.mac = "02:42:0a:fb:00:02".into();
        let net6 = format!("fd00:b7:{:x}", pid % 0xffff);
        a.address6 = Some((format!("{net6}::2").parse().unwrap(), 64));
        a.gateway6 = Some(format!("{net6}::1").parse().unwrap());
        let _c = Cleanup {
            links: vec![a.host_ifname.clone(), bridge.clone()],
            ns: ns.clone(),
        };
        crate::netns::create(&ns).unwrap();

        let ops = Rtnetlink;
        let gw = a.gateway.unwrap();
        ops.ensure_bridge(&bridge, gw, 24).unwrap();
        // Again: an existing bridge is fine.
        ops.ensure_bridge(&bridge, gw, 24).unwrap();
        assert!(ops.link_exists(&bridge));
        assert!(ops.bridge_ports(&bridge).is_empty());
        // The bridge's MAC is set (NET_ADDR_SET), derived from the gateway, so it cannot
        // change when ports join.
        let sys = |f: &str| {
            std::fs::read_to_string(format!("/sys/class/net/{bridge}/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(sys("addr_assign_type"), "3");
        assert_eq!(sys("address"), crate::ipam::mac_for(gw));
        // IPv6 on the bridge (no host-wide forwarding from a unit test), twice is fine too.
        let gw6 = a.gateway6.unwrap();
        ops.ensure_bridge_v6(&bridge, gw6, 64, false).unwrap();
        ops.ensure_bridge_v6(&bridge, gw6, 64, false).unwrap();
        let out = std::process::Command::new("ip")
            .args(["-o", "-6", "addr", "show", "dev", &bridge])
            .output()
            .unwrap();
        let addr6 = String::from_utf8_lossy(&out.stdout).to_string();
        let line = addr6
            .lines()
            .find(|l| l.contains(&format!("{gw6}/64")))
            .unwrap_or_else(|| panic!("no {gw6}/64 on the bridge: {addr6}"));
        assert!(
            line.contains("nodad") && !line.contains("tentative"),
            "{line}"
        );

        ops.attach(&a).unwrap();
        assert_eq!(ops.bridge_ports(&bridge), vec![a.host_ifname.clone()]);
        let link = in_ns(&ns, &["-o", "link", "show", "eth0"]);
        assert!(link.contains("02:42:0a:fb:00:02"), "{link}");
        assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
        let addr = in_ns(&ns, &["-o", "-4", "addr", "show"]);
        assert!(addr.contains(&format!("{net}.2/24")), "{addr}");
        assert!(addr.contains("lo "), "lo is up: {addr}");
        let route = in_ns(&ns, &["route", "show", "default"]);
        assert!(route.contains(&format!("via {net}.1 dev eth0")), "{route}");
        // IPv6: the address without DAD (never "tentative"), and the default route.
        let addr6 = in_ns(&ns, &["-o", "-6", "addr", "show", "dev", "eth0"]);
        let line = addr6
            .lines()
            .find(|l| l.contains(&format!("{net6}::2/64")))
            .unwrap_or_else(|| panic!("no {net6}::2/64 on eth0: {addr6}"));
        assert!(
            line.contains("nodad") && !line.contains("tentative"),
            "{line}"
        );
        let route6 = in_ns(&ns, &["-6", "route", "show", "default"]);
        assert!(
            route6.contains(&format!("via {net6}::1 dev eth0")),
            "{route6}"
        );
        // After the bridge got a port, its MAC is still the one it was given.
        assert_eq!(sys("address"), crate::ipam::mac_for(gw));

        // The same interface name again: the kernel refuses, and nothing is left over.
        let mut dup = a.clone();
        dup.host_ifname = format!("vnlt{tag}b");
        let err = ops.attach(&dup).unwrap_err().to_string();
        assert!(err.contains("creating veth"), "{err}");
        assert!(!ops.link_exists(&dup.host_ifname));
        // A gateway the new interface cannot reach: the veth is made, the route fails, and
        // the pair is deleted again.
        let mut bad = a.clone();
        bad.host_ifname = format!("vnlt{tag}c");
        bad.ifname = "eth1".into();
        bad.address = format!("{net}.3").parse().unwrap();
        bad.gateway = Some("192.0.2.1".parse().unwrap());
        let err = ops.attach(&bad).unwrap_err().to_string();
        assert!(err.contains("default route via 192.0.2.1"), "{err}");
        assert!(!ops.link_exists(&bad.host_ifname));
        assert_eq!(ops.bridge_ports(&bridge), vec![a.host_ifname.clone()]);
        assert!(!in_ns(&ns, &["-o", "link"]).contains("eth1"));

        ops.delete_link(&a.host_ifname).unwrap();
        ops.delete_link(&a.host_ifname).unwrap();
        assert!(ops.bridge_ports(&bridge).is_empty());
        assert!(!in_ns(&ns, &["-o", "link"]).contains("eth0"));
        ops.delete_link(&bridge).unwrap();
        assert!(!ops.link_exists(&bridge));
    }

    #[test]
    #[ignore = "needs root (netns, netlink): the privileged tier runs it"]
    fn default_routes_move_between_interfaces() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let pid = std::process::id();
        let tag = format!("{:06x}", pid & 0xff_ffff);
        let dir = std::env::temp_dir().join(format!("berth-gw-test-{pid}"));
        let ns = dir.join("ns");
        let (b1, b2) = (format!("bgwa{tag}"), format!("bgwb{tag}"));
        let _c = Cleanup {
            links: vec![
                format!("vgwa{tag}"),
                format!("vgwb{tag}"),
                b1.clone(),
                b2.clone(),
            ],
            ns: ns.clone(),
        };
        crate::netns::create(&ns).unwrap();
        let net = |i: u32| format!("10.{}.{}", 240 + i, pid % 256);
        let net6 = format!("fd00:b8:{:x}", pid % 0xffff);
        let ops = Rtnetlink;
        let mut atts = Vec::new();
        for (i, br) in [&b1, &b2].into_iter().enumerate() {
            let n = u32::try_from(i).unwrap();
            let gw: Ipv4Addr = format!("{}.1", net(n)).parse().unwrap();
            ops.ensure_bridge(br, gw, 24).unwrap();
            let mut a = att();
            a.bridge = br.clone();
            a.host_ifname = format!("vgw{}{tag}", if i == 0 { 'a' } else { 'b' });
            a.netns = ns.clone();
            a.ifname = format!("eth{i}");
            a.address = format!("{}.2", net(n)).parse().unwrap();
            a.prefix = 24;
            a.mac = format!("02:42:0a:f{i}:00:02");
            // Only the first one gets the default routes when it is attached.
            a.gateway = (i == 0).then_some(gw);
            if i == 0 {
                ops.ensure_bridge_v6(br, format!("{net6}::1").parse().unwrap(), 64, false)
                    .unwrap();
                a.address6 = Some((format!("{net6}::2").parse().unwrap(), 64));
                a.gateway6 = Some(format!("{net6}::1").parse().unwrap());
            }
            ops.attach(&a).unwrap();
            atts.push(a);
        }
        let route = || in_ns(&ns, &["route", "show", "default"]);
        let route6 = || in_ns(&ns, &["-6", "route", "show", "default"]);
        assert!(route().contains("dev eth0"), "{}", route());
        // The gateway moves to eth1; IPv6 has no gateway there and loses its default route.
        let gw1: Ipv4Addr = format!("{}.1", net(1)).parse().unwrap();
        ops.set_default_routes(&ns, Some(("eth1", gw1)), None)
            .unwrap();
        let r = route();
        assert!(r.contains(&format!("via {gw1} dev eth1")), "{r}");
        assert_eq!(r.lines().count(), 1, "{r}");
        assert!(route6().trim().is_empty(), "{}", route6());
        // And back, both families; then none at all.
        let gw0 = atts[0].gateway.unwrap();
        let gw6 = atts[0].gateway6.unwrap();
        ops.set_default_routes(&ns, Some(("eth0", gw0)), Some(("eth0", gw6)))
            .unwrap();
        assert!(
            route().contains(&format!("via {gw0} dev eth0")),
            "{}",
            route()
        );
        assert!(
            route6().contains(&format!("via {gw6} dev eth0")),
            "{}",
            route6()
        );
        ops.set_default_routes(&ns, None, None).unwrap();
        assert!(route().trim().is_empty() && route6().trim().is_empty());
        // An interface the namespace does not have is an error that names it.
        let err = ops
            .set_default_routes(&ns, Some(("eth7", gw0)), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no interface eth7"), "{err}");
    }

    #[test]
    fn ipv6_sysctls_of_the_container_namespace() {
        assert_eq!(
            netns_ipv6_sysctls("eth1"),
            vec![
                "/proc/sys/net/ipv6/conf/all/disable_ipv6",
                "/proc/sys/net/ipv6/conf/default/disable_ipv6",
                "/proc/sys/net/ipv6/conf/lo/disable_ipv6",
                "/proc/sys/net/ipv6/conf/eth1/disable_ipv6",
            ]
        );
        assert!(enable_ipv6(&[]).is_ok());
        let err = enable_ipv6(&["/proc/sys/net/ipv6/conf/no-such-if/disable_ipv6".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("IPv6 is disabled in the kernel"), "{err}");
    }

    #[test]
    fn endpoint_sysctls_as_docker_takes_them() {
        assert_eq!(
            endpoint_sysctls(
                "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.ifname.accept_ra=2",
                "eth1"
            )
            .unwrap(),
            vec![
                (
                    "/proc/sys/net/ipv4/conf/eth1/log_martians".to_string(),
                    "1".to_string()
                ),
                (
                    "/proc/sys/net/ipv6/conf/eth1/accept_ra".to_string(),
                    "2".to_string()
                ),
            ]
        );
        for bad in [
            "net.ipv4.conf.eth0.forwarding=1",
            "net.core.somaxconn=5",
            "net.ipv4.conf.IFNAME.forwarding",
            "kernel.x.y.IFNAME.z=1",
            "net.ipv4.conf.IFNAME.../x=1",
        ] {
            let e = endpoint_sysctls(bad, "eth0").unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("unrecognised network interface sysctl '{bad}'")),
                "{e}"
            );
        }
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(valid_ifname("berth0").is_ok());
        assert!(valid_ifname("a-very-long-name-x").is_err());
        assert!(valid_ifname("a b").is_err());
        assert!(valid_ifname("").is_err());
        assert!(valid_ifname("../x").is_err());
    }
}
