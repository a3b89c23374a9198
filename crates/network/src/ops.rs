//! Kernel link operations behind a narrow trait, and their iproute2 implementation.
//!
//! iproute2 (`ip -batch -`) keeps one process per side (host, container namespace) for a whole
//! attachment; rtnetlink would save those spawns at the cost of an async netlink stack.

use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// [`LinkOps`] through the `ip` binary.
pub struct IpCommand;

fn run_batch(prefix: &[&str], script: &str, what: &str) -> Result<()> {
    let (prog, args) = prefix.split_first().expect("a command");
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(crate::io_err(format!("running {prog}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(crate::io_err(format!("writing to {prog}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(crate::io_err(format!("running {prog}")))?;
    if !out.status.success() {
        return Err(Error::Command {
            what: what.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `f` on a throwaway thread that has joined the network namespace at `path`: processes
/// it spawns start in that namespace (a child inherits the namespaces of the thread that
/// forked it), and no other work of the caller ever runs there.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path)
            .map_err(crate::io_err(format!("opening {}", path.display())))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Io {
            what: format!("joining {}", path.display()),
            source: e.into(),
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
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(crate::io_err(format!("writing {path}")))
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

/// The host-side `ip -batch` script of an attachment.
pub fn host_script(a: &Attachment) -> String {
    format!(
        "link add {host} type veth peer name {ifname} address {mac} netns {ns}\nlink set {host} master {br} up\n",
        host = a.host_ifname,
        ifname = a.ifname,
        mac = a.mac,
        ns = a.netns.display(),
        br = a.bridge,
    )
}

/// The in-namespace `ip -batch` script of an attachment.
pub fn netns_script(a: &Attachment) -> String {
    let mut s = format!(
        "link set lo up\naddr add {}/{} dev {ifname}\nlink set {ifname} up\n",
        a.address,
        a.prefix,
        ifname = a.ifname
    );
    if let Some(gw) = a.gateway {
        s.push_str(&format!("route add default via {gw} dev {}\n", a.ifname));
    }
    if let Some((addr, prefix)) = a.address6 {
        // No duplicate address detection (as libnetwork adds it): IPAM already guarantees
        // the address is unique, and DAD would leave it "tentative", unusable, for a second
        // or two after the container starts.
        s.push_str(&format!(
            "addr add {addr}/{prefix} dev {} nodad\n",
            a.ifname
        ));
        if let Some(gw) = a.gateway6 {
            s.push_str(&format!("route add ::/0 via {gw} dev {}\n", a.ifname));
        }
    }
    s
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

impl LinkOps for IpCommand {
    fn ensure_bridge(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        valid_ifname(name)?;
        let mut script = String::new();
        if !self.link_exists(name) {
            script.push_str(&format!("link add name {name} type bridge\n"));
        }
        // A bridge whose address was never set takes the lowest MAC of its ports, so it
        // changes whenever a container's veth with a lower (random) MAC joins; the containers
        // already there keep the old one in their neighbour cache and their packets to the
        // gateway (DNS, routed traffic) go nowhere until that entry goes stale, seconds
        // later. A MAC set explicitly never changes (Docker sets one too).
        let mac = crate::ipam::mac_for(addr);
        script.push_str(&format!(
            "link set {name} address {mac}\naddr replace {addr}/{prefix} dev {name}\nlink set {name} up\n"
        ));
        run_batch(
            &["ip", "-batch", "-"],
            &script,
            &format!("setting up bridge {name}"),
        )?;
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
        run_batch(
            &["ip", "-batch", "-"],
            &format!("addr replace {addr}/{prefix} dev {name} nodad\n"),
            &format!("setting the IPv6 address of bridge {name}"),
        )?;
        let all = "/proc/sys/net/ipv6/conf/all/forwarding";
        if forwarding && std::fs::read_to_string(all).is_ok_and(|v| v.trim() != "1") {
            keep_accepting_router_advertisements();
            write_sysctl(all, "1")?;
        }
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        valid_ifname(name)?;
        if !self.link_exists(name) {
            return Ok(());
        }
        run_batch(
            &["ip", "-batch", "-"],
            &format!("link del {name}\n"),
            &format!("deleting {name}"),
        )
    }

    fn link_exists(&self, name: &str) -> bool {
        !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
    }

    fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn attach(&self, a: &Attachment) -> Result<()> {
        valid_ifname(&a.host_ifname)?;
        valid_ifname(&a.bridge)?;
        run_batch(
            &["ip", "-batch", "-"],
            &host_script(a),
            &format!("creating veth {}", a.host_ifname),
        )?;
        let res = in_netns(&a.netns, {
            let script = netns_script(a);
            let sysctls = if a.address6.is_some() {
                netns_ipv6_sysctls(&a.ifname)
            } else {
                Vec::new()
            };
            move || {
                // /proc/sys/net shows the namespace of the thread that opens it: this one.
                for path in &sysctls {
                    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() != "0") {
                        write_sysctl(path, "0")?;
                    } else if !Path::new(path).exists() {
                        return Err(Error::Command {
                            what: "enabling IPv6 in the container".into(),
                            detail: format!("{path} is missing: IPv6 is disabled in the kernel"),
                        });
                    }
                }
                run_batch(
                    &["ip", "-batch", "-"],
                    &script,
                    "configuring the container's interface",
                )
            }
        });
        if res.is_err() {
            let _ = self.delete_link(&a.host_ifname);
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
        }
    }

    #[test]
    fn scripts() {
        assert_eq!(
            host_script(&att()),
            "link add vb1234567890ab type veth peer name eth0 address 02:42:ac:1e:00:02 netns /run/berth/netns/abc\nlink set vb1234567890ab master berth0 up\n"
        );
        assert_eq!(
            netns_script(&att()),
            "link set lo up\naddr add 172.30.0.2/16 dev eth0\nlink set eth0 up\nroute add default via 172.30.0.1 dev eth0\n"
        );
        let mut internal = att();
        internal.gateway = None;
        assert!(!netns_script(&internal).contains("route"));
        let mut v6 = att();
        v6.address6 = Some(("fd00:db8:1::2".parse().unwrap(), 64));
        v6.gateway6 = Some("fd00:db8:1::1".parse().unwrap());
        assert!(netns_script(&v6).ends_with(
            "route add default via 172.30.0.1 dev eth0\naddr add fd00:db8:1::2/64 dev eth0 nodad\nroute add ::/0 via fd00:db8:1::1 dev eth0\n"
        ));
        v6.gateway6 = None;
        assert!(!netns_script(&v6).contains("::/0"));
        assert_eq!(
            netns_ipv6_sysctls("eth1")[3],
            "/proc/sys/net/ipv6/conf/eth1/disable_ipv6"
        );
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
