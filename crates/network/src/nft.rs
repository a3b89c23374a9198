//! nftables rules for berth's bridges and published ports.
//!
//! All of a daemon's rules live in one table of its own (`ip <table>`), regenerated as a whole
//! from the daemon's state and replaced in one atomic `nft -f` transaction: the script first
//! declares the table (so deleting it cannot fail), deletes it, then declares it again with
//! every chain. Other tables are never named, so the host's own rules (and other daemons')
//! stay untouched. Starting with a fresh table also drops stale rules left by a crash.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
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
    /// No traffic in or out of the bridge except between its members.
    pub internal: bool,
}

/// A published port: traffic to `host_ip:host_port` (any local address when `None`) goes to
/// `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRule {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    pub table: String,
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
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
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain ports {\n");
        for p in &self.ports {
            let daddr = p
                .host_ip
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {daddr}{} dport {} dnat to {}:{}",
                p.proto.as_str(),
                p.host_port,
                p.container_ip,
                p.container_port
            );
        }
        s.push_str("  }\n");
        s.push_str(
            "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
        );
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
                // Networks are isolated from each other.
                let _ = writeln!(s, "    iifname {br} oifname {} drop", quote(&other.bridge));
            }
        }
        s.push_str("  }\n}\n");
        s
    }
}

/// The script that removes the table (nothing else), whether or not it exists.
pub fn delete_script(table: &str) -> String {
    format!("table ip {table}\ndelete table ip {table}\n")
}

/// Runs an nft script as one transaction.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(crate::io_err("running nft"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(crate::io_err("writing to nft"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(crate::io_err("running nft"))?;
    if !out.status.success() {
        return Err(Error::Command {
            what: "applying nftables rules".to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
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
                    internal: false,
                },
                BridgeRules {
                    bridge: "br-abc".into(),
                    subnet: "10.5.0.0/24".parse().unwrap(),
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
        assert_eq!(
            tables,
            [
                "table ip berth_berth0",
                "delete table ip berth_berth0",
                "table ip berth_berth0 {"
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
            "table ip berth_x\ndelete table ip berth_x\n"
        );
    }
}
