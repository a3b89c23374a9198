//! The records of the network service: networks and container endpoints as stored (endpoints
//! as JSON under `<exec-root>/network/endpoints/`), and published ports. Plain data, shared by
//! the network service and its port, IPv6 and link helpers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_network::ipam::{Subnet, Subnet6};
use serde::{Deserialize, Serialize};

/// Docker's name for the default network.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";

/// One bridge network the daemon manages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Network {
    pub id: String,
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// IPv6 (`EnableIPv6`): the network's IPv6 subnet, gateway and `--ip-range`.
    #[serde(default)]
    pub subnet6: Option<Subnet6>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    #[serde(default)]
    pub ip_range6: Option<Subnet6>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created: String,
}

/// A host port published for a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PublishedPort {
    pub proto: String,
    /// `0.0.0.0` for all addresses (IPv6 ones included), else one IPv4 or IPv6 address.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// A container's attachment to one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_ifname: String,
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// Names the embedded DNS answers with this address (user-defined networks only).
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// The IPv6 address on networks with IPv6 enabled, its prefix length and gateway.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// Legacy `--link`s on a user-defined network: `(alias, linked container's name)`, names
    /// only this container resolves.
    #[serde(default)]
    pub links: Vec<(String, String)>,
    /// `--dns` servers of the container: the embedded DNS forwards its questions there.
    #[serde(default)]
    pub upstreams: Vec<std::net::SocketAddr>,
    /// `GwPriority` of the membership (see `network::gateway`).
    #[serde(default)]
    pub gw_priority: i64,
}

fn default_ifname() -> String {
    "eth0".to_string()
}
