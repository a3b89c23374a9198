//! nftables rules for berth's bridges and published ports.
//!
//! All of a daemon's rules live in one table of its own (`ip <table>`), regenerated as a whole
//! from the daemon's state and replaced in one atomic `nft -f` transaction: the script first
//! declares the table (so deleting it cannot fail), deletes it, then declares it again with
//! every chain. Other tables are never named, so the host's own rules (and other daemons')
//! stay untouched. Starting with a fresh table also drops stale rules left by a crash.
//!
//! IPv6 rules (masquerade, isolation, published ports of networks with an IPv6 subnet) live
//! in a second table of the same name in the `ip6` family, replaced in the same transaction;
//! when no network has IPv6 the script only makes sure that table is gone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Command, Stdio};

use crate::ipam::{Subnet, Subnet6};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One bridge a daemon owns.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// The bridge's IPv6 subnet, for networks with IPv6 enabled.
    pub subnet6: Option<Subnet6>,
    /// No traffic in or out of the bridge except between its members.
    pub internal: bool,
}

/// A published port: traffic to `host_ip:host_port` (any local address when `None`) goes to
/// `container_ip:container_port`; `A` is the address family's type.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRule<A = Ipv4Addr> {
    pub proto: Proto,
    pub host_ip: Option<A>,
    pub host_port: u16,
    pub container_ip: A,
    pub container_port: u16,
}

/// A published port over IPv6.
pub type PortRule6 = PortRule<Ipv6Addr>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    pub table: String,
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
    pub ports6: Vec<PortRule6>,
}

/// A table name nft accepts unquoted, derived from something like a bridge name.
pub fn table_name(seed: &str) -> String {
    let clean: String = seed
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("berth_{clean}")
}

fn quote(name: &str) -> String {
    // Interface names cannot contain quotes or whitespace (the kernel refuses them), but be
    // strict anyway: anything else becomes an underscore and can only fail to match.
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("\"{clean}\"")
}

/// Destination NAT for published ports from outside, in both tables: only packets addressed
/// to a local address qualify.
const PREROUTING: &str = "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n";

/// The head of the source NAT chain, in both tables.
const POSTROUTING: &str =
    "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";

/// The `ports` chain of one family's table: a DNAT rule per published port.
fn ports_chain<A: Copy + Into<IpAddr>>(s: &mut String, ports: &[PortRule<A>]) {
    s.push_str("  chain ports {\n");
    for p in ports {
        let daddr = match p.host_ip.map(Into::into) {
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            Some(IpAddr::V6(ip)) if !ip.is_unspecified() => format!("ip6 daddr {ip} "),
            _ => String::new(),
        };
        let to = SocketAddr::new(p.container_ip.into(), p.container_port);
        let _ = writeln!(
            s,
            "    {daddr}{} dport {} dnat to {to}",
            p.proto.as_str(),
            p.host_port
        );
    }
    s.push_str("  }\n");
}

impl Ruleset {
    /// The `nft -f` script that replaces the table with these rules.
    pub fn script(&self) -> String {
        let t = &self.table;
        let mut s = String::new();
        let _ = writeln!(s, "table ip {t}");
        let _ = writeln!(s, "delete table ip {t}");
        let _ = writeln!(s, "table ip {t} {{");
        // Destination NAT for published ports, for traffic from outside (prerouting) and
        // from the host itself (output). Only packets addressed to a local address qualify.
        s.push_str(PREROUTING);
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
        ports_chain(&mut s, &self.ports);
        s.push_str(POSTROUTING);
        for b in &self.bridges {
            let br = quote(&b.bridge);
            if !b.internal {
                // Outbound traffic leaves with the host's address.
                let _ = writeln!(s, "    ip saddr {} oifname != {br} masquerade", b.subnet);
            }
            // Connections the host made to 127.0.0.1:<published> reach the container with a
            // loopback source it could not answer; give them the bridge's address instead.
            let _ = writeln!(s, "    ip saddr 127.0.0.0/8 oifname {br} masquerade");
            // Hairpin: a container reaching a published port through a host address lands on
            // a peer of the same bridge, which would answer it directly (and be ignored);
            // routed through the host's address the replies come back the way they went.
            let _ = writeln!(s, "    iifname {br} oifname {br} ct status dnat masquerade");
        }
        s.push_str("  }\n");
        self.forward_chain(&mut s);
        self.script6(&mut s);
        s
    }

    /// The `ip6` half of [`script`](Self::script): the same shape as the IPv4 table, for the
    /// bridges that have an IPv6 subnet.
    fn script6(&self, s: &mut String) {
        let t = &self.table;
        let _ = writeln!(s, "table ip6 {t}");
        let _ = writeln!(s, "delete table ip6 {t}");
        let v6: Vec<&BridgeRules> = self
            .bridges
            .iter()
            .filter(|b| b.subnet6.is_some())
            .collect();
        if v6.is_empty() {
            return;
        }
        let _ = writeln!(s, "table ip6 {t} {{");
        s.push_str(PREROUTING);
        // IPv6 has no `route_localnet`: a reply to a DNATed [::1] connection would arrive on
        // the bridge addressed to ::1 and be dropped as a martian. [::1] is left to the
        // daemon's userland proxy instead, as Docker's docker-proxy does.
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    ip6 daddr ::1 return\n    fib daddr type local jump ports\n  }\n");
        ports_chain(s, &self.ports6);
        s.push_str(POSTROUTING);
        for b in &v6 {
            let br = quote(&b.bridge);
            if let (Some(subnet6), false) = (b.subnet6, b.internal) {
                // As Docker 28 does by default (ip6tables on, gateway mode "nat"): outbound
                // traffic of a ULA or other subnet leaves with the host's address.
                let _ = writeln!(s, "    ip6 saddr {subnet6} oifname != {br} masquerade");
            }
            let _ = writeln!(s, "    iifname {br} oifname {br} ct status dnat masquerade");
        }
        s.push_str("  }\n");
        self.forward_chain(s);
    }

    /// The filter chain both tables share (it matches interfaces, not addresses) and the
    /// table's closing brace: internal bridges are fenced in, and networks are isolated from
    /// each other.
    fn forward_chain(&self, s: &mut String) {
        s.push_str(
            "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
        );
        for b in &self.bridges {
            let br = quote(&b.bridge);
            if b.internal {
                let _ = writeln!(s, "    iifname {br} oifname != {br} drop");
                let _ = writeln!(s, "    oifname {br} iifname != {br} drop");
            }
            for other in self.bridges.iter().filter(|o| o.bridge != b.bridge) {
                let _ = writeln!(s, "    iifname {br} oifname {} drop", quote(&other.bridge));
            }
        }
        s.push_str("  }\n}\n");
    }
}

/// The script that removes the tables (nothing else), whether or not they exist.
pub fn delete_script(table: &str) -> String {
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip6 {table}\ndelete table ip6 {table}\n"
    )
}

/// Runs an nft script as one transaction.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Command {
                    what: "applying nftables rules".to_string(),
                    detail: "the nft command was not found: install the nftables package"
                        .to_string(),
                }
            } else {
                crate::io_err("running nft")(e)
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(crate::io_err("writing to nft"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(crate::io_err("running nft"))?;
    if !out.status.success() {
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // What nft says when the kernel has no nf_tables (module missing or not loadable).
        if detail.contains("Operation not supported") || detail.contains("Protocol not supported") {
            detail.push_str(" (does this kernel have nf_tables? berth's networks need it)");
        }
        return Err(Error::Command {
            what: "applying nftables rules".to_string(),
            detail,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Ruleset {
        Ruleset {
            table: table_name("berth0"),
            bridges: vec![
                BridgeRules {
                    bridge: "berth0".into(),
                    subnet: "172.30.0.0/16".parse().unwrap(),
                    subnet6: None,
                    internal: false,
                },
                BridgeRules {
                    bridge: "br-abc".into(),
                    subnet: "10.5.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: true,
                },
            ],
            ports: vec![
                PortRule {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 18080,
                    container_ip: "172.30.0.2".parse().unwrap(),
                    container_port: 80,
                },
                PortRule {
                    proto: Proto::Udp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    container_ip: "172.30.0.3".parse().unwrap(),
                    container_port: 53,
                },
            ],
            ports6: Vec::new(),
        }
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(table_name("berth0"), "berth_berth0");
        assert_eq!(table_name("bt-12.3"), "berth_bt_12_3");
    }

    #[test]
    fn script_replaces_only_its_own_table() {
        let s = rules().script();
        let tables: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("table") || l.starts_with("delete"))
            .collect();
        // Without IPv6 networks the ip6 table is only made sure to be gone.
        assert_eq!(
            tables,
            [
                "table ip berth_berth0",
                "delete table ip berth_berth0",
                "table ip berth_berth0 {",
                "table ip6 berth_berth0",
                "delete table ip6 berth_berth0",
            ]
        );
        assert!(!s.contains("flush"));
    }

    #[test]
    fn script_has_nat_ports_and_isolation() {
        let s = rules().script();
        assert!(s.contains("ip saddr 172.30.0.0/16 oifname != \"berth0\" masquerade"));
        // Internal networks get no masquerade but are fenced in.
        assert!(!s.contains("ip saddr 10.5.0.0/24 oifname"));
        assert!(s.contains("iifname \"br-abc\" oifname != \"br-abc\" drop"));
        assert!(s.contains("    tcp dport 18080 dnat to 172.30.0.2:80\n"));
        assert!(s.contains("    ip daddr 127.0.0.1 udp dport 5353 dnat to 172.30.0.3:53\n"));
        assert!(s.contains("iifname \"berth0\" oifname \"br-abc\" drop"));
        assert!(s.contains("iifname \"br-abc\" oifname \"berth0\" drop"));
        assert!(s.contains("ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade"));
        assert!(s.contains("iifname \"berth0\" oifname \"berth0\" ct status dnat masquerade"));
    }

    #[test]
    fn empty_ruleset_is_still_a_valid_table() {
        let s = Ruleset {
            table: "berth_x".into(),
            ..Default::default()
        }
        .script();
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        assert!(s.contains("chain ports {\n  }"));
    }

    #[test]
    fn quoting_cannot_break_out() {
        assert_eq!(quote("a\"b c"), "\"a_b_c\"");
    }

    #[test]
    fn delete_script_names_one_table() {
        assert_eq!(
            delete_script("berth_x"),
            "table ip berth_x\ndelete table ip berth_x\ntable ip6 berth_x\ndelete table ip6 berth_x\n"
        );
    }

    fn v6_rules() -> Ruleset {
        let mut r = rules();
        r.bridges.push(BridgeRules {
            bridge: "br-v6".into(),
            subnet: "10.6.0.0/24".parse().unwrap(),
            subnet6: Some("fd00:db8:1::/64".parse().unwrap()),
            internal: false,
        });
        r.bridges.push(BridgeRules {
            bridge: "br-v6int".into(),
            subnet: "10.7.0.0/24".parse().unwrap(),
            subnet6: Some("fd00:db8:2::/64".parse().unwrap()),
            internal: true,
        });
        r.ports6.push(PortRule6 {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 18081,
            container_ip: "fd00:db8:1::2".parse().unwrap(),
            container_port: 80,
        });
        r.ports6.push(PortRule6 {
            proto: Proto::Udp,
            host_ip: Some("::1".parse().unwrap()),
            host_port: 5353,
            container_ip: "fd00:db8:1::3".parse().unwrap(),
            container_port: 53,
        });
        r
    }

    #[test]
    fn v6_networks_get_their_own_ip6_table() {
        let s = v6_rules().script();
        let (v4, v6) = s.split_once("table ip6 berth_berth0\n").unwrap();
        // The IPv4 table knows nothing of IPv6 and vice versa.
        assert!(!v4.contains("ip6 ") && !v4.contains("fd00:"), "{v4}");
        assert!(!v6.contains("ip saddr") && !v6.contains("172.30."), "{v6}");
        assert!(v6.starts_with("delete table ip6 berth_berth0\ntable ip6 berth_berth0 {\n"));
        assert_eq!(v6.matches('{').count(), v6.matches('}').count());
        // Masquerade for the non-internal v6 subnet only.
        assert!(v6.contains("    ip6 saddr fd00:db8:1::/64 oifname != \"br-v6\" masquerade\n"));
        assert!(!v6.contains("ip6 saddr fd00:db8:2::/64"));
        // Isolation and the internal fence hold for IPv6 too.
        assert!(v6.contains("iifname \"br-v6\" oifname \"br-v6int\" drop"));
        assert!(v6.contains("iifname \"br-v6int\" oifname \"br-v6\" drop"));
        assert!(v6.contains("iifname \"br-v6int\" oifname != \"br-v6int\" drop"));
        assert!(v6.contains("iifname \"br-v6\" oifname \"berth0\" drop"));
        // Published ports over IPv6.
        assert!(v6.contains("    tcp dport 18081 dnat to [fd00:db8:1::2]:80\n"));
        assert!(v6.contains("    ip6 daddr ::1 udp dport 5353 dnat to [fd00:db8:1::3]:53\n"));
        assert!(v6.contains("    ip6 daddr ::1 return\n    fib daddr type local jump ports\n"));
        assert!(!v4.contains("dnat to ["));
    }
}
