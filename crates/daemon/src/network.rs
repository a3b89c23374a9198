//! The network service: the default bridge, container endpoints (veth, address, routes) and
//! published ports, on top of `berth_network`.
//!
//! A container on a bridge network gets a network namespace prepared here and bind-mounted at
//! `<exec-root>/netns/<id>`; the OCI spec makes the container join it. Endpoints are recorded
//! as JSON under `<exec-root>/network/endpoints/` (they live exactly as long as the running
//! containers, which do not survive a reboot either), so a restarted daemon re-marks their
//! addresses and host ports as taken and rebuilds its nftables table from them.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_api_types::container as ct;
use berth_api_types::ApiError;
use berth_network::ipam::{mac_for, Pool, Pool6, Subnet, Subnet6};
use berth_network::nft::{self, BridgeRules, PortRule, PortRule6, Proto, Ruleset};
use berth_network::ops::{Attachment, LinkOps, Rtnetlink};
use serde::{Deserialize, Serialize};

use crate::model::Container;
use crate::{internal, lock, Daemon, DaemonConfig};

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
}

fn default_ifname() -> String {
    "eth0".to_string()
}

/// A container's configured membership of a user-defined network (stored in SQLite).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Membership {
    pub container_id: String,
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`: a fixed IPv6 address on this network.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address` for this network's interface.
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    networks: BTreeMap<String, Network>,
    /// Container id → user-defined networks it belongs to (besides its `NetworkMode`'s).
    memberships: HashMap<String, Vec<Membership>>,
    pools: HashMap<String, Pool>,
    /// IPv6 pools of the networks with IPv6 enabled.
    pools6: HashMap<String, Pool6>,
    /// Container id → its endpoints.
    endpoints: HashMap<String, Vec<Endpoint>>,
    /// Sockets bound (not listening) on published host ports, so no one else can take them
    /// while the container runs; the traffic itself is redirected by DNAT before it could
    /// reach them.
    reservations: HashMap<String, Vec<OwnedFd>>,
    /// Container id → its userland proxies for published ports on [::1].
    proxies6: HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
}

pub(crate) struct NetService {
    ops: std::sync::Arc<dyn LinkOps>,
    table: String,
    exec_root: PathBuf,
    default_id: Option<String>,
    state: std::sync::Arc<Mutex<State>>,
    /// Serializes nft table replacements so an older ruleset never lands after a newer one.
    apply_lock: Mutex<()>,
    /// The embedded DNS servers of user-defined networks (their own thread and runtime).
    dns: berth_network::dns::DnsServers,
    /// Where the DNS servers send names that are no container.
    dns_upstreams: berth_network::dns::Upstreams,
}

/// What a started container's spec and /etc files need from its network setup.
pub(crate) struct Attached {
    pub netns: PathBuf,
    pub ip: Ipv4Addr,
    /// The IPv6 address on the first network, when it has IPv6 enabled.
    pub ip6: Option<Ipv6Addr>,
    /// The embedded DNS server's address, for containers whose first network is user-defined.
    pub dns: Option<Ipv4Addr>,
}

/// The default bridge's IPv6 subnet and pool with `--ipv6`: `--fixed-cidr-v6`, else a ULA
/// /64 derived from the bridge's name, so it is the same after a restart.
fn default_bridge_v6(
    cfg: &crate::DaemonConfig,
) -> std::result::Result<Option<(Subnet6, Pool6)>, String> {
    if !cfg.ipv6 {
        return match &cfg.fixed_cidr_v6 {
            Some(c) => Err(format!("--fixed-cidr-v6 {c} needs --ipv6")),
            None => Ok(None),
        };
    }
    let subnet: Subnet6 = match &cfg.fixed_cidr_v6 {
        Some(c) => c
            .parse()
            .map_err(|_| format!("invalid --fixed-cidr-v6 {c:?}: not an IPv6 CIDR"))?,
        None => {
            let digest = stable_id(&format!("berth-default-bridge-v6:{}", cfg.bridge));
            let seed = u64::from_str_radix(&digest[..16], 16).unwrap_or_default();
            berth_network::ipam::ula_subnet(seed)
        }
    };
    let pool = Pool6::new(subnet, subnet.first_host())
        .map_err(|e| format!("--fixed-cidr-v6 {subnet}: {e}"))?;
    Ok(Some((subnet, pool)))
}

pub(crate) fn stable_id(seed: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl NetService {
    pub(crate) fn new(cfg: &DaemonConfig) -> std::result::Result<NetService, String> {
        let mut state = State::default();
        let mut default_id = None;
        let table = if cfg.bridge == "none" {
            nft::table_name(&format!(
                "none_{}",
                &stable_id(&cfg.exec_root.display().to_string())[..8]
            ))
        } else {
            nft::table_name(&cfg.bridge)
        };
        if cfg.bridge != "none" {
            let (subnet, gateway) = Subnet::parse_with_addr(&cfg.bip)
                .map_err(|e| format!("invalid --bip {:?}: {e}", cfg.bip))?;
            let pool = Pool::new(subnet, gateway).map_err(|e| format!("--bip: {e}"))?;
            let id = stable_id(&format!("berth-default-bridge:{}", cfg.bridge));
            let v6 = default_bridge_v6(cfg)?;
            let mut options = BTreeMap::new();
            options.insert(
                "com.docker.network.bridge.default_bridge".to_string(),
                "true".to_string(),
            );
            options.insert(
                "com.docker.network.bridge.name".to_string(),
                cfg.bridge.clone(),
            );
            state.networks.insert(
                id.clone(),
                Network {
                    id: id.clone(),
                    name: DEFAULT_NETWORK.to_string(),
                    bridge: cfg.bridge.clone(),
                    subnet,
                    gateway,
                    internal: false,
                    ip_range: None,
                    subnet6: v6.as_ref().map(|(s, _)| *s),
                    gateway6: v6.as_ref().map(|(_, p)| p.gateway()),
                    ip_range6: None,
                    labels: BTreeMap::new(),
                    options,
                    created: crate::model::now_rfc3339(),
                },
            );
            state.pools.insert(id.clone(), pool);
            if let Some((_, pool6)) = v6 {
                state.pools6.insert(id.clone(), pool6);
            }
            default_id = Some(id);
        }
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (host_servers, search) = berth_network::dns::upstream_resolvers(&host_resolv);
        let servers = if cfg.dns.is_empty() {
            host_servers
        } else {
            berth_network::dns::parse_upstreams(&cfg.dns).map_err(|e| format!("--dns: {e}"))?
        };
        Ok(NetService {
            dns: berth_network::dns::DnsServers::new()
                .map_err(|e| format!("starting the DNS thread: {e}"))?,
            dns_upstreams: berth_network::dns::Upstreams {
                servers,
                search,
                timeout: std::time::Duration::from_secs(3),
            },
            ops: std::sync::Arc::new(Rtnetlink),
            table,
            exec_root: cfg.exec_root.clone(),
            default_id,
            state: std::sync::Arc::new(Mutex::new(state)),
            apply_lock: Mutex::new(()),
        })
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.exec_root.join("netns").join(id)
    }
    fn endpoints_dir(&self) -> PathBuf {
        self.exec_root.join("network").join("endpoints")
    }
    fn endpoint_file(&self, id: &str) -> PathBuf {
        self.endpoints_dir().join(format!("{id}.json"))
    }

    /// Replaces berth's nftables table with one built from the current state.
    fn apply_rules(&self) -> std::result::Result<(), String> {
        let _g = lock(&self.apply_lock);
        let script = {
            let st = lock(&self.state);
            let bridges = st
                .networks
                .values()
                .map(|n| BridgeRules {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet,
                    subnet6: n.subnet6,
                    internal: n.internal,
                })
                .collect();
            let mut ports = Vec::new();
            let mut ports6 = Vec::new();
            for eps in st.endpoints.values() {
                for ep in eps {
                    for p in &ep.ports {
                        let proto = if p.proto == "udp" {
                            Proto::Udp
                        } else {
                            Proto::Tcp
                        };
                        match (p.host_ip, ep.ipv6) {
                            (IpAddr::V4(host_ip), ipv6) => {
                                // As with Docker, a port published on all addresses is
                                // reachable over IPv6 too when the container has an IPv6
                                // address.
                                if let (Some(ip6), true) = (ipv6, host_ip.is_unspecified()) {
                                    ports6.push(PortRule6 {
                                        proto,
                                        host_ip: None,
                                        host_port: p.host_port,
                                        container_ip: ip6,
                                        container_port: p.container_port,
                                    });
                                }
                                ports.push(PortRule {
                                    proto,
                                    host_ip: Some(host_ip),
                                    host_port: p.host_port,
                                    container_ip: ep.ip,
                                    container_port: p.container_port,
                                });
                            }
                            // One IPv6 host address: DNAT when the container has an IPv6
                            // address and the host address is not [::1] or [::]; else the
                            // userland proxy serves it (`network_v6::proxy_target`).
                            (IpAddr::V6(host_ip), Some(ip6))
                                if !host_ip.is_loopback() && !host_ip.is_unspecified() =>
                            {
                                ports6.push(PortRule6 {
                                    proto,
                                    host_ip: Some(host_ip),
                                    host_port: p.host_port,
                                    container_ip: ip6,
                                    container_port: p.container_port,
                                });
                            }
                            (IpAddr::V6(_), _) => {}
                        }
                    }
                }
            }
            Ruleset {
                table: self.table.clone(),
                bridges,
                ports,
                ports6,
            }
            .script()
        };
        nft::apply(&script).map_err(|e| e.to_string())
    }

    fn ensure_bridge(&self, n: &Network) -> std::result::Result<(), String> {
        // On the start path: a bridge that is there was set up at daemon start or network
        // create, and checking costs no process.
        if self.ops.link_exists(&n.bridge) {
            return Ok(());
        }
        self.bring_up_bridge(n)
    }

    fn bring_up_bridge(&self, n: &Network) -> std::result::Result<(), String> {
        self.ops
            .ensure_bridge(&n.bridge, n.gateway, n.subnet.prefix())
            .map_err(|e| e.to_string())?;
        if let (Some(subnet6), Some(gw6)) = (n.subnet6, n.gateway6) {
            self.ops
                .ensure_bridge_v6(&n.bridge, gw6, subnet6.prefix(), !n.internal)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Daemon start: brings up the bridges, re-marks the addresses and ports of containers
    /// still running (`running`), removes what a crash left behind, and installs the rules.
    pub(crate) fn restore(&self, running: &[String]) -> std::result::Result<(), String> {
        let networks: Vec<Network> = lock(&self.state).networks.values().cloned().collect();
        for n in &networks {
            self.bring_up_bridge(n)?;
        }
        let mut keep = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.endpoints_dir()) {
            for e in dir.flatten() {
                let path = e.path();
                let Some(id) = path.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                    continue;
                };
                let eps: Option<Vec<Endpoint>> = std::fs::read(&path)
                    .ok()
                    .and_then(|raw| serde_json::from_slice(&raw).ok());
                match eps {
                    Some(eps) if running.contains(&id) => {
                        let mut st = lock(&self.state);
                        let mut fds = Vec::new();
                        let mut proxies = crate::network_v6::loopback_proxies(&id, &eps);
                        for ep in &eps {
                            if let Some(pool) = st.pools.get_mut(&ep.network_id) {
                                if let Err(e) = pool.reserve(ep.ip) {
                                    tracing::warn!(container = %id, "re-marking {}: {e}", ep.ip);
                                }
                            }
                            if let (Some(ip6), Some(pool)) =
                                (ep.ipv6, st.pools6.get_mut(&ep.network_id))
                            {
                                if let Err(e) = pool.reserve(ip6) {
                                    tracing::warn!(container = %id, "re-marking {ip6}: {e}");
                                }
                            }
                            for p in &ep.ports {
                                let w = WantedPort {
                                    proto: p.proto.clone(),
                                    host_ip: p.host_ip,
                                    host_ports: (p.host_port, p.host_port),
                                    container_port: p.container_port,
                                };
                                match take_port(ep, &w) {
                                    Ok((Held::Fd(fd), _)) => fds.push(fd),
                                    Ok((Held::Proxy(task), _)) => proxies.push(task),
                                    Err(e) => {
                                        tracing::warn!(container = %id, "re-publishing port {}: {e}", p.host_port)
                                    }
                                }
                            }
                            keep.push(ep.host_ifname.clone());
                        }
                        st.reservations.insert(id.clone(), fds);
                        st.proxies6.insert(id.clone(), proxies);
                        st.endpoints.insert(id, eps);
                    }
                    other => {
                        for ep in other.unwrap_or_default() {
                            let _ = self.ops.delete_link(&ep.host_ifname);
                        }
                        let _ = berth_network::netns::remove(&self.netns_path(&id));
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        // Interfaces on our bridges that no running container owns are leftovers.
        for n in &networks {
            for port in self.ops.bridge_ports(&n.bridge) {
                if !keep.contains(&port) {
                    tracing::info!(interface = %port, "removing a stale interface");
                    let _ = self.ops.delete_link(&port);
                }
            }
        }
        // Namespaces of containers that are gone.
        if let Ok(dir) = std::fs::read_dir(self.exec_root.join("netns")) {
            for e in dir.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                if !running.contains(&id) {
                    let _ = berth_network::netns::remove(&e.path());
                }
            }
        }
        self.apply_rules()
    }

    fn persist(&self, id: &str) -> std::result::Result<(), String> {
        let eps = lock(&self.state).endpoints.get(id).cloned();
        let path = self.endpoint_file(id);
        match eps {
            Some(eps) => {
                std::fs::create_dir_all(self.endpoints_dir()).map_err(|e| e.to_string())?;
                let tmp = path.with_extension("tmp");
                let body = serde_json::to_vec(&eps).map_err(|e| e.to_string())?;
                std::fs::write(&tmp, body).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
            }
            None => {
                let _ = std::fs::remove_file(&path);
                Ok(())
            }
        }
    }

    /// Finds a network by full id, name, or unique id prefix (Docker's lookup order).
    pub(crate) fn find(&self, key: &str) -> Option<Network> {
        let st = lock(&self.state);
        if let Some(n) = st.networks.get(key) {
            return Some(n.clone());
        }
        if let Some(n) = st.networks.values().find(|n| n.name == key) {
            return Some(n.clone());
        }
        let mut by_prefix = st.networks.values().filter(|n| n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) if !key.is_empty() => Some(n.clone()),
            _ => None,
        }
    }

    /// The network a container's `NetworkMode` names, if it is a bridge network berth runs.
    fn network_for(&self, mode: &str) -> Option<Network> {
        match mode {
            "" | "default" | "bridge" => {
                let st = lock(&self.state);
                self.default_id
                    .as_ref()
                    .and_then(|id| st.networks.get(id).cloned())
            }
            "none" | "host" => None,
            m if m.starts_with("container:") => None,
            m => self.find(m),
        }
    }

    /// The networks a container joins at start, first one first (it gets the default route).
    fn plan(&self, c: &Container) -> crate::Result<Vec<(Network, Membership)>> {
        let mut out = Vec::new();
        let mode = c.host_config.network_mode.as_str();
        let members = lock(&self.state)
            .memberships
            .get(&c.id)
            .cloned()
            .unwrap_or_default();
        let plain = |n: &Network| Membership {
            container_id: c.id.clone(),
            network_id: n.id.clone(),
            aliases: Vec::new(),
            ipv4: None,
            ipv6: None,
            mac: None,
        };
        if !matches!(mode, "none" | "host") && !mode.starts_with("container:") {
            match self.network_for(mode) {
                Some(n) => {
                    let m = members
                        .iter()
                        .find(|m| m.network_id == n.id)
                        .cloned()
                        .unwrap_or_else(|| plain(&n));
                    out.push((n, m));
                }
                None if matches!(mode, "" | "default" | "bridge") => {}
                None => return Err(ApiError::not_found(format!("network {mode} not found"))),
            }
        }
        for m in members {
            if out.iter().any(|(n, _)| n.id == m.network_id) {
                continue;
            }
            if let Some(n) = self.network(&m.network_id) {
                out.push((n, m));
            }
        }
        Ok(out)
    }

    /// Prepares the namespace of a container about to start, or `None` when the container
    /// needs no bridge (host, none, or the default bridge disabled).
    pub(crate) fn setup(&self, c: &Container) -> crate::Result<Option<Attached>> {
        if matches!(c.host_config.network_mode.as_str(), "none" | "host") {
            return Ok(None);
        }
        let plan = self.plan(c)?;
        if plan.is_empty() {
            return Ok(None);
        }
        let t0 = std::time::Instant::now();
        // A previous run may have left its endpoint behind (e.g. a start that failed late).
        self.release(&c.id);
        let ports = wanted_ports(c)?;
        let res = self.setup_inner(c, &plan, &ports);
        if res.is_err() {
            self.release(&c.id);
        }
        tracing::debug!(container = %c.id, elapsed = ?t0.elapsed(), ok = res.is_ok(), "network set up");
        res.map(Some)
    }

    fn setup_inner(
        &self,
        c: &Container,
        plan: &[(Network, Membership)],
        ports: &[WantedPort],
    ) -> crate::Result<Attached> {
        let ns = self.netns_path(&c.id);
        berth_network::netns::create(&ns)
            .map_err(|e| internal(format!("network namespace: {e}")))?;
        for (i, (net, m)) in plan.iter().enumerate() {
            let ep = self.attach_one(c, net, m, &format!("eth{i}"), i == 0)?;
            if i == 0 {
                let mut ep = ep;
                self.publish(c, &mut ep, ports)?;
                let mut st = lock(&self.state);
                if let Some(eps) = st.endpoints.get_mut(&c.id) {
                    eps[0] = ep;
                }
            }
        }
        self.persist(&c.id).map_err(internal)?;
        if !ports.is_empty() {
            self.apply_rules()
                .map_err(|e| internal(format!("publishing ports: {e}")))?;
        }
        let first = &plan[0].0;
        let ep0 = &self.endpoints(&c.id)[0];
        Ok(Attached {
            netns: ns,
            ip: ep0.ip,
            ip6: ep0.ipv6,
            dns: (first.name != DEFAULT_NETWORK).then_some(first.gateway),
        })
    }

    /// Adds one interface for `net` to the container's (existing) namespace and registers the
    /// endpoint, so that `release` undoes it whatever fails later.
    fn attach_one(
        &self,
        c: &Container,
        net: &Network,
        m: &Membership,
        ifname: &str,
        default_route: bool,
    ) -> crate::Result<Endpoint> {
        let (ip, ipv6) = {
            let mut st = lock(&self.state);
            let pool = st
                .pools
                .get_mut(&net.id)
                .ok_or_else(|| internal("network has no address pool"))?;
            let ip = match m.ipv4 {
                Some(ip) => {
                    pool.reserve(ip).map_err(|e| {
                        ApiError::invalid(format!(
                            "invalid IPv4 address {ip} for network {}: {e}",
                            net.name
                        ))
                    })?;
                    ip
                }
                None => pool.allocate().map_err(internal)?,
            };
            match allocate_v6(&mut st, net, m) {
                Ok(ipv6) => (ip, ipv6),
                Err(e) => {
                    // Not registered yet: `release` would not give this one back.
                    if let Some(pool) = st.pools.get_mut(&net.id) {
                        pool.release(ip);
                    }
                    return Err(e);
                }
            }
        };
        let mut dns_names = Vec::new();
        let mut links = Vec::new();
        let mut upstreams = Vec::new();
        if net.name != DEFAULT_NETWORK {
            dns_names.push(c.name.clone());
            dns_names.extend(m.aliases.iter().cloned());
            dns_names.push(c.id[..12].to_string());
            links = crate::links::dns_links(c);
            // As in Docker, a container on a user-defined network keeps the embedded DNS in
            // its resolv.conf; its `--dns` servers become that server's upstreams for it
            // (loopback ones would mean the container's own loopback: not reachable).
            upstreams = c
                .host_config
                .dns
                .iter()
                .flatten()
                .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
                .filter(|ip| !ip.is_loopback())
                .map(|ip| std::net::SocketAddr::new(ip, 53))
                .collect();
        }
        let ep = Endpoint {
            container_id: c.id.clone(),
            network_id: net.id.clone(),
            endpoint_id: random_id(),
            ip,
            prefix: net.subnet.prefix(),
            gateway: net.gateway,
            mac: m.mac.clone().unwrap_or_else(|| mac_for(ip)),
            // Random, not derived from the ids: a restarted container must not collide with its
            // previous veth, which may still be on its way out (see `release`).
            host_ifname: format!("vb{}", &random_id()[..12]),
            ifname: ifname.to_string(),
            dns_names,
            aliases: m.aliases.clone(),
            ports: Vec::new(),
            ipv6,
            prefix6: net.subnet6.map_or(0, |s| s.prefix()),
            gateway6: ipv6.and(net.gateway6),
            links,
            upstreams,
        };
        lock(&self.state)
            .endpoints
            .entry(c.id.clone())
            .or_default()
            .push(ep.clone());
        self.ensure_bridge(net).map_err(internal)?;
        self.ops
            .attach(&Attachment {
                bridge: net.bridge.clone(),
                host_ifname: ep.host_ifname.clone(),
                netns: self.netns_path(&c.id),
                ifname: ifname.to_string(),
                address: ep.ip,
                prefix: ep.prefix,
                gateway: (!net.internal && default_route).then_some(net.gateway),
                mac: ep.mac.clone(),
                address6: ep.ipv6.map(|ip| (ip, ep.prefix6)),
                gateway6: ep.gateway6.filter(|_| !net.internal && default_route),
            })
            .map_err(|e| internal(format!("attaching to network {}: {e}", net.name)))?;
        Ok(ep)
    }

    fn publish(&self, c: &Container, ep: &mut Endpoint, ports: &[WantedPort]) -> crate::Result<()> {
        let mut fds = Vec::new();
        let mut proxies = Vec::new();
        for w in ports {
            match take_port(ep, w) {
                Ok((Held::Fd(fd), p)) => {
                    fds.push(fd);
                    ep.ports.push(p);
                }
                Ok((Held::Proxy(task), p)) => {
                    proxies.push(task);
                    ep.ports.push(p);
                }
                Err(msg) => {
                    for t in proxies {
                        t.abort();
                    }
                    return Err(ApiError::internal(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {msg}",
                        c.name, ep.endpoint_id
                    )));
                }
            }
        }
        proxies.extend(crate::network_v6::loopback_proxies(
            &c.id,
            std::slice::from_ref(ep),
        ));
        let mut st = lock(&self.state);
        st.reservations.insert(c.id.clone(), fds);
        st.proxies6.insert(c.id.clone(), proxies);
        Ok(())
    }

    /// Connects a running container to one more network (a new `ethN` in its namespace).
    pub(crate) fn hot_attach(
        &self,
        c: &Container,
        net: &Network,
        m: &Membership,
    ) -> crate::Result<()> {
        let eps = self.endpoints(&c.id);
        if eps.is_empty() && !berth_network::netns::is_mounted(&self.netns_path(&c.id)) {
            return Err(ApiError::conflict(format!(
                "container {} has no network namespace berth manages (network mode {:?})",
                c.name, c.host_config.network_mode
            )));
        }
        let mut n = 0;
        while eps.iter().any(|e| e.ifname == format!("eth{n}")) {
            n += 1;
        }
        let res = self.attach_one(c, net, m, &format!("eth{n}"), eps.is_empty());
        if let Err(e) = res {
            self.detach_one(&c.id, &net.id);
            return Err(e);
        }
        self.persist(&c.id).map_err(internal)
    }

    /// Removes one network's interface from a running container.
    pub(crate) fn detach_one(&self, id: &str, network_id: &str) {
        let ep = {
            let mut st = lock(&self.state);
            let Some(eps) = st.endpoints.get_mut(id) else {
                return;
            };
            let Some(pos) = eps.iter().position(|e| e.network_id == network_id) else {
                return;
            };
            let ep = eps.remove(pos);
            if let Some(pool) = st.pools.get_mut(network_id) {
                pool.release(ep.ip);
            }
            if let (Some(ip6), Some(pool)) = (ep.ipv6, st.pools6.get_mut(network_id)) {
                pool.release(ip6);
            }
            ep
        };
        if let Err(e) = self.ops.delete_link(&ep.host_ifname) {
            tracing::warn!(container = id, "removing {}: {e}", ep.host_ifname);
        }
        let _ = self.persist(id);
    }

    /// Undoes [`setup`](Self::setup): interfaces, address, ports, rules, namespace. Idempotent.
    pub(crate) fn release(&self, id: &str) {
        let (eps, had_ports) = {
            let mut st = lock(&self.state);
            st.reservations.remove(id);
            for p in st.proxies6.remove(id).unwrap_or_default() {
                p.abort();
            }
            let eps = st.endpoints.remove(id).unwrap_or_default();
            for ep in &eps {
                if let Some(pool) = st.pools.get_mut(&ep.network_id) {
                    pool.release(ep.ip);
                }
                if let (Some(ip6), Some(pool)) = (ep.ipv6, st.pools6.get_mut(&ep.network_id)) {
                    pool.release(ip6);
                }
            }
            let had_ports = eps.iter().any(|e| !e.ports.is_empty());
            (eps, had_ports)
        };
        // Unmounting the namespace lets the kernel destroy it (and the veth peers in it) once
        // the container's processes are gone; deleting the host ends explicitly makes that
        // certain but costs a netlink round trip with an RCU grace period, so it happens off
        // the exit path.
        let names: Vec<String> = eps.iter().map(|e| e.host_ifname.clone()).collect();
        if !names.is_empty() {
            let ops = self.ops.clone();
            std::thread::spawn(move || {
                for n in names {
                    if let Err(e) = ops.delete_link(&n) {
                        tracing::debug!("removing {n}: {e}");
                    }
                }
            });
        }
        if had_ports {
            if let Err(e) = self.apply_rules() {
                tracing::warn!(container = id, "removing port rules: {e}");
            }
        }
        if let Err(e) = berth_network::netns::remove(&self.netns_path(id)) {
            tracing::warn!(container = id, "removing network namespace: {e}");
        }
        let _ = std::fs::remove_file(self.endpoint_file(id));
    }

    pub(crate) fn all_networks(&self) -> Vec<Network> {
        lock(&self.state).networks.values().cloned().collect()
    }

    /// Running containers on a network and their endpoints there.
    pub(crate) fn members(&self, network_id: &str) -> Vec<(String, Endpoint)> {
        let st = lock(&self.state);
        let mut out = Vec::new();
        for (cid, eps) in &st.endpoints {
            for ep in eps.iter().filter(|e| e.network_id == network_id) {
                out.push((cid.clone(), ep.clone()));
            }
        }
        out
    }

    pub(crate) fn has_memberships(&self, network_id: &str) -> bool {
        lock(&self.state)
            .memberships
            .values()
            .any(|ms| ms.iter().any(|m| m.network_id == network_id))
    }

    pub(crate) fn memberships(&self, id: &str) -> Vec<Membership> {
        lock(&self.state)
            .memberships
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn set_memberships(&self, id: &str, ms: Vec<Membership>) {
        let mut st = lock(&self.state);
        if ms.is_empty() {
            st.memberships.remove(id);
        } else {
            st.memberships.insert(id.to_string(), ms);
        }
    }

    pub(crate) fn add_membership(&self, m: Membership) {
        let mut st = lock(&self.state);
        let list = st.memberships.entry(m.container_id.clone()).or_default();
        list.retain(|x| x.network_id != m.network_id);
        list.push(m);
    }

    pub(crate) fn remove_membership(&self, id: &str, network_id: &str) {
        let mut st = lock(&self.state);
        if let Some(list) = st.memberships.get_mut(id) {
            list.retain(|x| x.network_id != network_id);
        }
    }

    fn bridges_dir(&self) -> PathBuf {
        self.exec_root.join("network").join("bridges")
    }

    /// Brings up a user-defined network: its bridge, its DNS server and its rules.
    pub(crate) fn add_network(
        &self,
        n: Network,
        pool: Pool,
        pool6: Option<Pool6>,
    ) -> std::result::Result<(), String> {
        // Recorded before the bridge exists, so whoever cleans up after a crash finds it.
        let _ = std::fs::create_dir_all(self.bridges_dir());
        let _ = std::fs::write(self.bridges_dir().join(&n.bridge), &n.id);
        self.ensure_bridge(&n)?;
        {
            let mut st = lock(&self.state);
            st.pools.insert(n.id.clone(), pool);
            if let Some(p) = pool6 {
                st.pools6.insert(n.id.clone(), p);
            }
            st.networks.insert(n.id.clone(), n.clone());
        }
        if let Err(e) = self.start_dns(&n) {
            tracing::error!(network = %n.name, "embedded DNS not started: {e}");
        }
        self.apply_rules()
    }

    /// Removes a user-defined network's bridge, DNS server and rules.
    pub(crate) fn remove_network(&self, id: &str) {
        // First, so the sockets are closed before the gateway address goes away.
        self.dns.stop(id);
        let net = {
            let mut st = lock(&self.state);
            st.pools.remove(id);
            st.pools6.remove(id);
            for ms in st.memberships.values_mut() {
                ms.retain(|m| m.network_id != id);
            }
            st.networks.remove(id)
        };
        if let Some(n) = net {
            for port in self.ops.bridge_ports(&n.bridge) {
                let _ = self.ops.delete_link(&port);
            }
            if let Err(e) = self.ops.delete_link(&n.bridge) {
                tracing::warn!(network = %n.name, "deleting bridge: {e}");
            }
            let _ = std::fs::remove_file(self.bridges_dir().join(&n.bridge));
        }
        if let Err(e) = self.apply_rules() {
            tracing::warn!("updating rules: {e}");
        }
    }

    /// Serves DNS for a user-defined network on its gateway address (port 53).
    fn start_dns(&self, n: &Network) -> std::io::Result<()> {
        self.dns
            .start(berth_network::dns::NetworkDns {
                network_id: n.id.clone(),
                listen: vec![std::net::SocketAddr::from((n.gateway, 53))],
                directory: std::sync::Arc::new(StateDirectory(self.state.clone())),
                upstreams: self.dns_upstreams.clone(),
            })
            .map(|_| ())
    }

    pub(crate) fn endpoints(&self, id: &str) -> Vec<Endpoint> {
        lock(&self.state)
            .endpoints
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn network(&self, id: &str) -> Option<Network> {
        lock(&self.state).networks.get(id).cloned()
    }
}

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

fn parse_host_ports(s: &str) -> crate::Result<(u16, u16)> {
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
fn parse_host_ip(s: &str) -> crate::Result<IpAddr> {
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
fn reserve_port(
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
fn host_port_text(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

fn reserve_any(w: &WantedPort, listen: bool) -> std::result::Result<(OwnedFd, u16), String> {
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
        Some(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(format!("Bind for {at} failed: port is already allocated"))
        }
        Some(e) => Err(format!("Bind for {at} failed: {e}")),
        None => Err(format!("no host port in {shown}")),
    }
}

/// What keeps a published port taken while its container runs.
pub(crate) enum Held {
    /// The reserving socket (the port is served by DNAT).
    Fd(OwnedFd),
    /// The userland proxy that listens on the reserved socket.
    Proxy(tokio::task::JoinHandle<()>),
}

/// Takes a host port for `w` on `ep`: reserved for DNAT, or served by a userland proxy
/// when DNAT cannot serve it ([`crate::network_v6::proxy_target`]).
fn take_port(ep: &Endpoint, w: &WantedPort) -> std::result::Result<(Held, PublishedPort), String> {
    let mut p = PublishedPort {
        proto: w.proto.clone(),
        host_ip: w.host_ip,
        host_port: 0,
        container_port: w.container_port,
    };
    let target = crate::network_v6::proxy_target(ep, &p)?;
    let (fd, port) = reserve_any(w, target.is_some())?;
    p.host_port = port;
    let held = match target {
        Some(t) => Held::Proxy(crate::network_v6::proxy_on(fd, t)?),
        None => Held::Fd(fd),
    };
    Ok((held, p))
}

impl Daemon {
    /// Fills `NetworkSettings` from the container's endpoints (and the legacy top-level
    /// fields from the default network, which API ≤ 1.51 clients still read).
    pub(crate) fn with_network(
        &self,
        c: &Container,
        mut ns: ct::NetworkSettings,
    ) -> ct::NetworkSettings {
        let eps = self.net.endpoints(&c.id);
        // Exposed ports appear with `null` when not published, as in Docker.
        let mut ports: ct::PortMap = BTreeMap::new();
        if let Some(exposed) = &c.config.exposed_ports {
            for key in exposed.keys() {
                let key = if key.contains('/') {
                    key.clone()
                } else {
                    format!("{key}/tcp")
                };
                ports.insert(key, None);
            }
        }
        for ep in &eps {
            let Some(net) = self.net.network(&ep.network_id) else {
                continue;
            };
            let fixed = self
                .net
                .memberships(&c.id)
                .into_iter()
                .find(|m| m.network_id == net.id)
                .filter(|m| m.ipv4.is_some() || m.ipv6.is_some())
                .map(|m| {
                    let mut cfg = serde_json::Map::new();
                    if let Some(ip) = m.ipv4 {
                        cfg.insert("IPv4Address".into(), ip.to_string().into());
                    }
                    if let Some(ip) = m.ipv6 {
                        cfg.insert("IPv6Address".into(), ip.to_string().into());
                    }
                    serde_json::Value::Object(cfg)
                });
            let base = ns.networks.get(&net.name).cloned().unwrap_or_default();
            let settings = ct::EndpointSettings {
                ipam_config: fixed.or(base.ipam_config.clone()),
                global_ipv6_address: ep.ipv6.map(|ip| ip.to_string()).unwrap_or_default(),
                global_ipv6_prefix_len: if ep.ipv6.is_some() {
                    i64::from(ep.prefix6)
                } else {
                    0
                },
                ipv6_gateway: ep.gateway6.map(|ip| ip.to_string()).unwrap_or_default(),
                mac_address: ep.mac.clone(),
                network_id: net.id.clone(),
                endpoint_id: ep.endpoint_id.clone(),
                gateway: ep.gateway.to_string(),
                ip_address: ep.ip.to_string(),
                ip_prefix_len: i64::from(ep.prefix),
                aliases: (!ep.aliases.is_empty()).then(|| ep.aliases.clone()),
                dns_names: (!ep.dns_names.is_empty()).then(|| ep.dns_names.clone()),
                ..base
            };
            if net.name == DEFAULT_NETWORK {
                ns.bridge = net.bridge.clone();
                ns.endpoint_id = ep.endpoint_id.clone();
                ns.gateway = settings.gateway.clone();
                ns.ip_address = settings.ip_address.clone();
                ns.ip_prefix_len = settings.ip_prefix_len;
                ns.mac_address = settings.mac_address.clone();
                ns.global_ipv6_address = settings.global_ipv6_address.clone();
                ns.global_ipv6_prefix_len = settings.global_ipv6_prefix_len;
                ns.ipv6_gateway = settings.ipv6_gateway.clone();
            }
            ns.networks.insert(net.name.clone(), settings);
            for p in &ep.ports {
                let list = ports
                    .entry(format!("{}/{}", p.container_port, p.proto))
                    .or_insert(None)
                    .get_or_insert_with(Vec::new);
                list.push(ct::PortBinding {
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port.to_string(),
                });
                if crate::network_v6::also_on_v6(ep, p) {
                    list.push(ct::PortBinding {
                        host_ip: "::".to_string(),
                        host_port: p.host_port.to_string(),
                    });
                }
            }
        }
        if !eps.is_empty() {
            ns.sandbox_key = self.net.netns_path(&c.id).display().to_string();
            ns.sandbox_id = stable_id(&format!("sandbox:{}", c.id));
        }
        if c.state.status.is_active() {
            ns.ports = ports;
        }
        ns
    }

    /// `ps`'s port list.
    pub(crate) fn summary_ports(&self, c: &Container) -> Vec<ct::Port> {
        let mut out = Vec::new();
        for ep in self.net.endpoints(&c.id) {
            for p in &ep.ports {
                out.push(ct::Port {
                    ip: p.host_ip.to_string(),
                    private_port: p.container_port,
                    public_port: Some(p.host_port),
                    kind: p.proto.clone(),
                });
                if crate::network_v6::also_on_v6(&ep, p) {
                    out.push(ct::Port {
                        ip: "::".to_string(),
                        private_port: p.container_port,
                        public_port: Some(p.host_port),
                        kind: p.proto.clone(),
                    });
                }
            }
        }
        out
    }

    /// Create-time checks of `HostConfig.NetworkMode` and the port bindings.
    pub(crate) fn check_network_mode(
        &self,
        hc: &ct::HostConfig,
        warnings: &mut Vec<String>,
    ) -> crate::Result<()> {
        match hc.network_mode.as_str() {
            "" | "default" | "bridge" => {
                if self.net.default_id.is_none() {
                    warnings.push("the default bridge is disabled (--bridge none): the container gets only a loopback interface".to_string());
                } else {
                    warnings.extend(forwarding_warning(ipv4_forwarding()));
                }
            }
            "none" | "host" => {}
            m if m.starts_with("container:") => {}
            m => {
                if self.net.network_for(m).is_none() {
                    // 400, not 404: the CLI answers any 404 from a create by pulling the image.
                    return Err(ApiError::invalid(format!("network {m} not found")));
                }
                warnings.extend(forwarding_warning(ipv4_forwarding()));
            }
        }
        for (key, list) in hc.port_bindings.iter().flatten() {
            parse_port_key(key)?;
            for b in list.iter().flatten() {
                parse_host_ip(&b.host_ip)?;
            }
        }
        Ok(())
    }

    /// Re-attaches what survived a daemon restart; called before containers are restored.
    pub(crate) fn restore_network(&self) -> std::result::Result<(), String> {
        self.load_networks()?;
        let records: Vec<Container> = self.store.containers().map_err(|e| e.to_string())?;
        let running: Vec<String> = records
            .iter()
            .filter(|c| c.state.status.is_active())
            .map(|c| c.id.clone())
            .collect();
        self.net.restore(&running)
    }
}

/// The container whose network namespace a `container:<id>` container joins.
pub(crate) struct Joined {
    pub id: String,
    pub netns: PathBuf,
    pub hostname: String,
    pub domainname: String,
}

/// Docker's check of a `--mac-address`: six colon- or dash-separated hex octets.
pub(crate) fn parse_mac(s: &str) -> crate::Result<String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(ApiError::invalid(format!("invalid MAC address {s}")));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

fn conflict_opt(what: &str) -> ApiError {
    ApiError::invalid(format!("conflicting options: {what}"))
}

impl Daemon {
    /// Create-time resolution of the containers a new container's network settings name:
    /// `container:<name>` becomes `container:<id>` (with Docker's conflicting-option checks)
    /// and every `--link` target must exist.
    pub(crate) fn resolve_network_refs(
        &self,
        config: &ct::Config,
        hc: &mut ct::HostConfig,
    ) -> crate::Result<()> {
        if let Some(key) = hc.network_mode.strip_prefix("container:") {
            // As in Docker a missing target fails the start, not the create (a 404 here
            // would make the CLI try to pull the image).
            let target = self.resolve_container(key).ok();
            if hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
                return Err(conflict_opt(
                    "container type network can't be used with links. This would result in undefined behavior",
                ));
            }
            if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports {
                return Err(conflict_opt(
                    "port publishing and the container type network mode",
                ));
            }
            if hc.dns.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(conflict_opt("dns and the network mode"));
            }
            if hc.extra_hosts.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(conflict_opt(
                    "custom host-to-IP mapping and the network mode",
                ));
            }
            if config.mac_address.as_ref().is_some_and(|m| !m.is_empty()) {
                return Err(conflict_opt("mac-address and the network mode"));
            }
            if let Some(t) = target {
                hc.network_mode = format!("container:{}", t.id);
            }
        }
        if let Some(mac) = config.mac_address.as_ref().filter(|m| !m.is_empty()) {
            parse_mac(mac)?;
        }
        for link in hc.links.iter().flatten() {
            let name = link.split_once(':').map_or(link.as_str(), |(n, _)| n);
            let name = name.trim_start_matches('/');
            if let Err(e) = self.resolve_container(name) {
                return Err(ApiError::invalid(format!(
                    "could not get container for {name}: {}",
                    e.message
                )));
            }
        }
        Ok(())
    }

    /// `--link name[:alias]` as Docker records it in `HostConfig.Links`: `/child:/parent/alias`.
    pub(crate) fn normalize_links(&self, hc: &mut ct::HostConfig, parent: &str) {
        for link in hc.links.iter_mut().flatten() {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let name = name.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            let child = self
                .resolve_container(name)
                .map_or_else(|_| name.to_string(), |c| c.name);
            *link = format!("/{child}:/{parent}/{alias}");
        }
    }

    /// For a `container:<id>` container about to start: the running target whose namespace,
    /// hostname and /etc files it shares.
    pub(crate) fn join_target(&self, c: &Container) -> crate::Result<Option<Joined>> {
        let Some(key) = c.host_config.network_mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let t = self.resolve_container(key)?;
        if t.id == c.id {
            return Err(ApiError::invalid("cannot join own network"));
        }
        if t.state.status == crate::model::Status::Restarting {
            return Err(ApiError::conflict(format!(
                "Container {} is restarting, wait until the container is running",
                t.id
            )));
        }
        if !t.state.status.is_active() || t.state.pid <= 0 {
            return Err(ApiError::conflict(format!(
                "cannot join network namespace of a non running container: container {} is {}",
                t.name,
                t.state.status.as_str()
            )));
        }
        let mounted = self.net.netns_path(&t.id);
        let netns = if berth_network::netns::is_mounted(&mounted) {
            mounted
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", t.state.pid))
        };
        Ok(Some(Joined {
            id: t.id.clone(),
            netns,
            hostname: t.config.hostname.clone(),
            domainname: t.config.domainname.clone(),
        }))
    }

    /// `/etc/hosts` entries (`names=ip`) for a default-bridge container's legacy `--link`s:
    /// the alias, the linked container's hostname and its name, as Docker writes them.
    pub(crate) fn link_hosts(&self, c: &Container) -> crate::Result<Vec<String>> {
        let mut out = Vec::new();
        let links = c.host_config.links.clone().unwrap_or_default();
        if links.is_empty()
            || self
                .net
                .network_for(&c.host_config.network_mode)
                .is_none_or(|n| n.name != DEFAULT_NETWORK)
        {
            return Ok(out);
        }
        for link in &links {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let name = name.trim_start_matches('/');
            // `/parent/alias` as Docker stores it, or a plain alias.
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            let child = self.resolve_container(name).map_err(|e| {
                ApiError::invalid(format!("could not get container for {name}: {}", e.message))
            })?;
            let ip = self
                .net
                .endpoints(&child.id)
                .into_iter()
                .find(|ep| {
                    self.net
                        .network(&ep.network_id)
                        .is_some_and(|n| n.name == DEFAULT_NETWORK)
                })
                .map(|ep| ep.ip);
            if !child.state.status.is_active() {
                return Err(ApiError::invalid(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    child.name, c.name
                )));
            }
            // Like Docker, no entry for a linked container without a default-bridge address.
            let Some(ip) = ip else {
                continue;
            };
            let mut names = format!("{alias} {}", child.config.hostname);
            if alias != child.name {
                names.push(' ');
                names.push_str(&child.name);
            }
            out.push(format!("{names}={ip}"));
        }
        Ok(out)
    }
}

/// The daemon's `--dns` servers that can go into a container's resolv.conf (which has no
/// ports: `ip:port` entries only serve the embedded DNS).
pub(crate) fn daemon_nameservers(dns: &[String]) -> Vec<String> {
    dns.iter()
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        .cloned()
        .collect()
}

/// The daemon's live endpoints, as the embedded DNS servers see them.
struct StateDirectory(std::sync::Arc<Mutex<State>>);

impl berth_network::dns::Directory for StateDirectory {
    fn endpoints(&self) -> Vec<berth_network::dns::DnsEndpoint> {
        dns_endpoints(&lock(&self.0))
    }
}

fn dns_endpoints(st: &State) -> Vec<berth_network::dns::DnsEndpoint> {
    st.endpoints
        .values()
        .flatten()
        .map(|ep| berth_network::dns::DnsEndpoint {
            container_id: ep.container_id.clone(),
            network_id: ep.network_id.clone(),
            addrs: std::iter::once(std::net::IpAddr::V4(ep.ip))
                .chain(ep.ipv6.map(std::net::IpAddr::V6))
                .collect(),
            names: ep.dns_names.clone(),
            links: ep.links.clone(),
            upstreams: ep.upstreams.clone(),
            // Reverse lookups answer `<container>.<network>` (the first DNS name is the
            // container's); default-bridge endpoints have none.
            ptr_name: ep.dns_names.first().and_then(|name| {
                let net = st.networks.get(&ep.network_id)?;
                Some(format!("{name}.{}", net.name))
            }),
            network_name: st
                .networks
                .get(&ep.network_id)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// The IPv6 address an endpoint gets on `net`: `--ip6` when given, else the next free one;
/// `None` on networks without IPv6.
fn allocate_v6(st: &mut State, net: &Network, m: &Membership) -> crate::Result<Option<Ipv6Addr>> {
    let Some(pool) = st.pools6.get_mut(&net.id) else {
        return match m.ipv6 {
            Some(ip) => Err(ApiError::invalid(format!(
                "invalid endpoint settings: no configured subnet contains IP address {ip}"
            ))),
            None => Ok(None),
        };
    };
    match m.ipv6 {
        Some(ip) => {
            pool.reserve(ip).map_err(|e| {
                ApiError::invalid(format!(
                    "invalid IPv6 address {ip} for network {}: {e}",
                    net.name
                ))
            })?;
            Ok(Some(ip))
        }
        None => pool.allocate().map(Some).map_err(internal),
    }
}

/// Whether the host forwards IPv4 (`net.ipv4.ip_forward`). berth turns forwarding on for its
/// own bridges only; replies to containers' outbound connections arrive on the host's uplink,
/// which forwards them only when the host does. Docker's nftables backend, too, leaves this
/// switch to the administrator.
pub(crate) fn ipv4_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1")
}

/// Docker's create warning for a container on a bridge network of a host that does not forward.
fn forwarding_warning(forwarding: bool) -> Option<String> {
    (!forwarding).then(|| "IPv4 forwarding is disabled. Networking will not work.".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bridge_ipv6_comes_from_the_flags() {
        let mut cfg = crate::DaemonConfig {
            bridge: "berth0".into(),
            ..Default::default()
        };
        assert!(default_bridge_v6(&cfg).unwrap().is_none());
        cfg.fixed_cidr_v6 = Some("fd00:1:2:3::/64".into());
        assert_eq!(
            default_bridge_v6(&cfg).unwrap_err(),
            "--fixed-cidr-v6 fd00:1:2:3::/64 needs --ipv6"
        );
        cfg.ipv6 = true;
        let (subnet, pool) = default_bridge_v6(&cfg).unwrap().unwrap();
        assert_eq!(subnet.to_string(), "fd00:1:2:3::/64");
        assert_eq!(pool.gateway().to_string(), "fd00:1:2:3::1");
        cfg.fixed_cidr_v6 = Some("10.0.0.0/8".into());
        assert!(default_bridge_v6(&cfg)
            .unwrap_err()
            .contains("not an IPv6 CIDR"));
        // Without a subnet: a ULA /64 that depends only on the bridge's name.
        cfg.fixed_cidr_v6 = None;
        let a = default_bridge_v6(&cfg).unwrap().unwrap().0;
        assert_eq!(a, default_bridge_v6(&cfg).unwrap().unwrap().0);
        assert!(a.to_string().starts_with("fd") && a.prefix() == 64, "{a}");
        cfg.bridge = "berth1".into();
        assert_ne!(a, default_bridge_v6(&cfg).unwrap().unwrap().0);
    }

    #[test]
    fn hosts_that_do_not_forward_get_dockers_warning() {
        assert_eq!(
            forwarding_warning(false).as_deref(),
            Some("IPv4 forwarding is disabled. Networking will not work.")
        );
        assert_eq!(forwarding_warning(true), None);
    }

    #[test]
    fn mac_addresses_parse_like_docker() {
        assert_eq!(parse_mac("02:42:AC:11:00:99").unwrap(), "02:42:ac:11:00:99");
        assert_eq!(parse_mac("02-42-ac-11-00-99").unwrap(), "02:42:ac:11:00:99");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:99:aa",
            "02:42:zz:11:00:99",
            "2:42:ac:11:00:99",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert_eq!(e.message, format!("invalid MAC address {bad}"));
        }
    }

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
            let err = reserve_any(&w, listen).unwrap_err();
            assert!(err.contains("port is already allocated"), "{err}");
            if host_ip.is_ipv6() {
                assert!(err.contains(&format!("[::1]:{port}")), "{err}");
            }
            drop(fd);
            assert!(reserve_any(&w, listen).is_ok());
        }
    }

    #[test]
    fn ipv6_host_addresses_are_proxied_unless_dnat_can_serve_them() {
        let mut e = ep("c", "n", "10.0.0.2", &[]);
        let port = |host: &str, proto: &str| PublishedPort {
            proto: proto.into(),
            host_ip: host.parse().unwrap(),
            host_port: 8080,
            container_port: 80,
        };
        let target = |e: &Endpoint, host: &str| {
            crate::network_v6::proxy_target(e, &port(host, "tcp"))
                .unwrap()
                .map(|t| t.to_string())
        };
        // IPv4 bindings are always DNAT's.
        assert_eq!(target(&e, "0.0.0.0"), None);
        assert_eq!(target(&e, "127.0.0.1"), None);
        // A container without IPv6: the proxy forwards to its IPv4 address.
        assert_eq!(target(&e, "::1").as_deref(), Some("10.0.0.2:80"));
        assert_eq!(target(&e, "fd00::9").as_deref(), Some("10.0.0.2:80"));
        assert_eq!(target(&e, "::").as_deref(), Some("10.0.0.2:80"));
        assert!(crate::network_v6::proxy_target(&e, &port("::1", "udp")).is_err());
        // With IPv6: DNAT, except for [::1].
        e.ipv6 = Some("fd00:1::2".parse().unwrap());
        assert_eq!(target(&e, "fd00::9"), None);
        assert_eq!(target(&e, "::1").as_deref(), Some("[fd00:1::2]:80"));
        assert_eq!(target(&e, "::").as_deref(), Some("[fd00:1::2]:80"));
        assert!(crate::network_v6::proxy_target(&e, &port("fd00::9", "udp"))
            .unwrap()
            .is_none());
    }

    fn ep(cid: &str, net: &str, ip: &str, names: &[&str]) -> Endpoint {
        Endpoint {
            container_id: cid.into(),
            network_id: net.into(),
            endpoint_id: String::new(),
            ip: ip.parse().unwrap(),
            prefix: 24,
            gateway: "10.0.0.1".parse().unwrap(),
            mac: String::new(),
            host_ifname: String::new(),
            ifname: "eth0".into(),
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            aliases: Vec::new(),
            ports: Vec::new(),
            ipv6: None,
            prefix6: 0,
            gateway6: None,
            links: Vec::new(),
            upstreams: Vec::new(),
        }
    }

    #[test]
    fn dns_sees_every_running_endpoint() {
        let mut st = State::default();
        let mut a = ep("a", "n1", "10.0.0.2", &["a"]);
        a.links.push(("db".into(), "b".into()));
        st.endpoints.insert("a".into(), vec![a]);
        st.endpoints.insert(
            "b".into(),
            vec![
                ep("b", "n1", "10.0.0.3", &["b", "web"]),
                ep("b", "n2", "10.0.1.3", &["b"]),
            ],
        );
        let mut eps = dns_endpoints(&st);
        eps.sort_by(|x, y| x.addrs.cmp(&y.addrs));
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0].links, vec![("db".to_string(), "b".to_string())]);
        assert_eq!(eps[1].names, vec!["b", "web"]);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            berth_network::dns::resolve(&eps, "n1", ip("10.0.0.2"), "db", &[]),
            Some(vec![ip("10.0.0.3")])
        );
    }

    #[test]
    fn dns_lookup_returns_both_families() {
        let mut st = State::default();
        let mut b = ep("b", "n1", "10.0.0.3", &["b"]);
        b.ipv6 = Some("fd00:db8:1::3".parse().unwrap());
        st.endpoints.insert("b".into(), vec![b]);
        st.endpoints
            .insert("c".into(), vec![ep("c", "n1", "10.0.0.4", &["c"])]);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let eps = dns_endpoints(&st);
        let lookup =
            |name: &str| berth_network::dns::resolve(&eps, "n1", ip("10.0.0.2"), name, &[]);
        assert_eq!(lookup("b"), Some(vec![ip("10.0.0.3"), ip("fd00:db8:1::3")]));
        // An IPv4-only member still exists (AAAA gets an empty answer, not NXDOMAIN).
        assert_eq!(lookup("c"), Some(vec![ip("10.0.0.4")]));
    }
}
