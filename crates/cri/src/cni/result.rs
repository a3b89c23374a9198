//! CNI results (spec 1.0, also the 0.3/0.4 shape): the interfaces, IPs, routes and DNS a plugin
//! chain reports after ADD. The raw JSON is kept too: it is the `prevResult` of the next plugin
//! and of DEL and CHECK.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    /// The netns path for interfaces inside the pod; empty for host-side ones.
    #[serde(default)]
    pub sandbox: String,
}

/// An address with its prefix length, as `10.1.0.5/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} has no prefix length"))?;
        let addr: IpAddr = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = p.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s:?}: prefix length over {max}"));
        }
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// A parsed result with its raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireIp {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct WireRoute {
    dst: String,
    #[serde(default)]
    gw: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default, rename = "cniVersion")]
    cni_version: String,
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<WireIp>,
    #[serde(default)]
    routes: Vec<WireRoute>,
    #[serde(default)]
    dns: Option<Dns>,
}

fn opt_ip(s: Option<String>) -> Result<Option<IpAddr>, String> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e| format!("{s:?}: {e}")),
    }
}

impl CniResult {
    pub fn parse(raw: Value) -> Result<Self, String> {
        let w: Wire = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let ips = w
            .ips
            .into_iter()
            .map(|ip| {
                Ok(IpConfig {
                    address: ip.address.parse()?,
                    gateway: opt_ip(ip.gateway)?,
                    interface: ip.interface,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let routes = w
            .routes
            .into_iter()
            .map(|r| {
                Ok(Route {
                    dst: r.dst.parse()?,
                    gw: opt_ip(r.gw)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(CniResult {
            cni_version: w.cni_version,
            interfaces: w.interfaces,
            ips,
            routes,
            dns: w.dns.unwrap_or_default(),
            raw,
        })
    }

    /// The pod's IPs: those of the interface `ifname` inside the sandbox (IPv4 first, as the
    /// kubelet takes the first as the pod's primary IP); when no IP names its interface, all.
    pub fn pod_ips(&self, ifname: &str) -> Vec<IpAddr> {
        let in_sandbox = |i: &IpConfig| {
            i.interface
                .and_then(|n| self.interfaces.get(n))
                .is_some_and(|itf| itf.name == ifname && !itf.sandbox.is_empty())
        };
        let mut ips: Vec<IpAddr> = self
            .ips
            .iter()
            .filter(|i| in_sandbox(i))
            .map(|i| i.address.addr)
            .collect();
        if ips.is_empty() {
            ips = self
                .ips
                .iter()
                .filter(|i| i.interface.is_none())
                .map(|i| i.address.addr)
                .collect();
        }
        ips.sort_by_key(|ip| !ip.is_ipv4());
        ips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_1_0_result() {
        let raw = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                {"name": "veth1", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/netns/p"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
                {"address": "10.99.0.1/16", "interface": 0}
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}, {"dst": "fd00::/8"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
        });
        let r = CniResult::parse(raw.clone()).unwrap();
        assert_eq!(r.cni_version, "1.0.0");
        assert_eq!(r.interfaces[2].sandbox, "/run/netns/p");
        assert_eq!(r.ips[1].gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(r.ips[1].address.to_string(), "10.88.0.5/16");
        assert_eq!(r.routes[0].dst.prefix, 0);
        assert_eq!(r.routes[1].gw, None);
        assert_eq!(r.dns.nameservers, ["10.96.0.10"]);
        let ips: Vec<String> = r.pod_ips("eth0").iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.88.0.5", "fd00::5"]);
        assert_eq!(r.raw, raw);
    }

    #[test]
    fn ips_without_interfaces_and_errors() {
        let r = CniResult::parse(serde_json::json!({
            "cniVersion": "0.3.1",
            "ips": [{"version": "4", "address": "10.1.2.3/24"}]
        }))
        .unwrap();
        assert_eq!(
            r.pod_ips("eth0"),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert!(CniResult::parse(serde_json::json!({"ips": [{"address": "10.1.2.3"}]})).is_err());
        assert!(
            CniResult::parse(serde_json::json!({"ips": [{"address": "10.1.2.3/33"}]})).is_err()
        );
    }
}
