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

use berth_api_types::ApiError;
use berth_network::ipam::{mac_for, Pool, Pool6, Subnet, Subnet6};
use berth_network::nft::{self, BridgeRules, PortRule, PortRule6, Proto, Ruleset};
use berth_network::ops::{Attachment, LinkOps, Rtnetlink};
use serde::{Deserialize, Serialize};

mod gateway;

use crate::model::Container;
use crate::network_ports::{take_port, wanted_ports, Held, WantedPort};
use crate::{internal, lock, DaemonConfig};

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
    /// `GwPriority` of the membership (see [`gateway`]).
    #[serde(default)]
    pub gw_priority: i64,
}

fn default_ifname() -> String {
    "eth0".to_string()
}

/// A container's configured membership of one network: Docker's
/// `NetworkSettings.Networks[name]` of a container, running or not (stored in SQLite). A
/// container joins the networks of its memberships at start, in their order; create records
/// them (from `NetworkingConfig`, else `NetworkMode`), `network connect`/`disconnect` add and
/// remove them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Membership {
    pub container_id: String,
    /// Empty for a network that did not exist when it was named: as with Docker, it is
    /// looked up by name at start (and the start fails when there is none).
    pub network_id: String,
    /// The network's name when recorded: names a missing network, and finds the default
    /// bridge again after `--bridge` gave it another id.
    #[serde(default)]
    pub network_name: String,
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
    /// `EndpointSettings.Links` (`name:alias`): on a user-defined network, names only this
    /// container resolves.
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// `GwPriority` (API 1.48): which endpoint gives the default gateway.
    #[serde(default)]
    pub gw_priority: i64,
}

impl Membership {
    /// The key of its row in the database.
    pub(crate) fn key(&self) -> String {
        if self.network_id.is_empty() {
            format!("name:{}", self.network_name)
        } else {
            self.network_id.clone()
        }
    }

    /// Whether it is the membership of `n` (by id, or by name for one recorded by name).
    pub(crate) fn is_of(&self, n: &Network) -> bool {
        if self.network_id.is_empty() {
            self.network_name == n.name
        } else {
            self.network_id == n.id
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    networks: BTreeMap<String, Network>,
    /// Container id → the networks it belongs to, in the order it joins them.
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
    pub(crate) default_id: Option<String>,
    state: std::sync::Arc<Mutex<State>>,
    /// Serializes nft table replacements so an older ruleset never lands after a newer one.
    apply_lock: Mutex<()>,
    /// The same for berth's chain in the host's iptables filter table.
    fw_lock: Mutex<()>,
    /// The embedded DNS servers of user-defined networks (their own thread and runtime).
    dns: berth_network::dns::DnsServers,
    /// Where the DNS servers send names that are no container.
    dns_upstreams: berth_network::dns::Upstreams,
    /// Turn on the host's IP forwarding (`--ip-forward`, on by default as with dockerd).
    ip_forward: bool,
}

/// What a started container's spec and /etc files need from its network setup.
pub(crate) struct Attached {
    pub netns: PathBuf,
    /// The addresses of its endpoints, in the order it joined them (IPv4, then IPv6 when the
    /// network has it): each gets an `/etc/hosts` line with the container's hostname.
    pub addrs: Vec<IpAddr>,
    /// The embedded DNS server's address, for containers on a user-defined network.
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
            fw_lock: Mutex::new(()),
            ip_forward: cfg.ip_forward,
        })
    }

    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
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

    /// Keeps berth's bridges working where the host's iptables filter table drops forwarded
    /// traffic (Docker beside berth; see `berth_network::hostfw`).
    pub(crate) fn refresh_host_firewall(&self) {
        let _g = lock(&self.fw_lock);
        let bridges: Vec<String> = lock(&self.state)
            .networks
            .values()
            .map(|n| n.bridge.clone())
            .collect();
        let chain = berth_network::hostfw::chain_name(&self.table);
        match berth_network::hostfw::refresh(&chain, &bridges) {
            Ok(changed) if !changed.is_empty() => tracing::info!(
                ?changed,
                %chain,
                "the host's iptables FORWARD chain drops: berth's bridges are accepted in {chain}"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("the host's iptables filter table: {e}"),
        }
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
                .ensure_bridge_v6(
                    &n.bridge,
                    gw6,
                    subnet6.prefix(),
                    !n.internal && self.ip_forward,
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Daemon start: brings up the bridges, re-marks the addresses and ports of containers
    /// still running (`running`), removes what a crash left behind, and installs the rules.
    pub(crate) fn restore(&self, running: &[String]) -> std::result::Result<(), String> {
        if self.ip_forward {
            // As dockerd does at start (`--ip-forward`, on by default).
            match berth_network::ops::enable_ipv4_forwarding() {
                Ok(true) => tracing::info!("turned on IPv4 forwarding (net.ipv4.ip_forward)"),
                Ok(false) => {}
                Err(e) => tracing::warn!("turning on IPv4 forwarding: {e}"),
            }
        }
        let networks: Vec<Network> = lock(&self.state).networks.values().cloned().collect();
        for n in &networks {
            self.bring_up_bridge(n)?;
        }
        self.refresh_host_firewall();
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

    /// The network a membership names: by id, else (recorded by name, or the default bridge
    /// under another `--bridge`) by name.
    pub(crate) fn network_of(&self, m: &Membership) -> Option<Network> {
        let st = lock(&self.state);
        if let Some(n) = st.networks.get(&m.network_id) {
            return Some(n.clone());
        }
        st.networks
            .values()
            .find(|n| n.name == m.network_name)
            .cloned()
    }

    /// The networks a container joins at start, in the order of its memberships.
    fn plan(&self, c: &Container) -> crate::Result<Vec<(Network, Membership)>> {
        let mut out: Vec<(Network, Membership)> = Vec::new();
        for m in self.memberships(&c.id) {
            match self.network_of(&m) {
                Some(n) if out.iter().any(|(o, _)| o.id == n.id) => {}
                Some(n) => out.push((n, m)),
                // `--bridge none`: the container gets no network, as with dockerd's
                // `--bridge=none`.
                None if m.network_name == DEFAULT_NETWORK => {}
                None => {
                    return Err(ApiError::not_found(format!(
                        "network {} not found",
                        m.network_name
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Prepares the namespace of a container about to start, or `None` when the container
    /// has no namespace berth manages (`host`, `none`, `container:`). A container on no
    /// network gets a namespace with just `lo`, which `network connect` can add to.
    pub(crate) fn setup(&self, c: &Container) -> crate::Result<Option<Attached>> {
        let mode = c.host_config.network_mode.as_str();
        if matches!(mode, "none" | "host") || mode.starts_with("container:") {
            return Ok(None);
        }
        let plan = self.plan(c)?;
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
        let cands: Vec<gateway::Candidate> = plan
            .iter()
            .map(|(n, m)| gateway::Candidate {
                network: &n.name,
                priority: m.gw_priority,
                internal: n.internal,
                ipv6: n.subnet6.is_some() && n.gateway6.is_some(),
            })
            .collect();
        let (g4, g6) = gateway::gateways(&cands);
        let mut eps = Vec::new();
        for (i, (net, m)) in plan.iter().enumerate() {
            eps.push(self.attach_one(
                c,
                net,
                m,
                &format!("eth{i}"),
                g4 == Some(i),
                g6 == Some(i),
            )?);
        }
        // Published ports go to the endpoint that gives the IPv4 gateway; a container on
        // internal networks only publishes nothing, as with Docker.
        if let Some(i) = g4 {
            let mut ep = eps[i].clone();
            self.publish(c, &mut ep, ports)?;
            let mut st = lock(&self.state);
            if let Some(list) = st.endpoints.get_mut(&c.id) {
                list[i] = ep;
            }
        }
        self.persist(&c.id).map_err(internal)?;
        if !ports.is_empty() {
            self.apply_rules()
                .map_err(|e| internal(format!("publishing ports: {e}")))?;
        }
        let gws: Vec<Ipv4Addr> = plan.iter().map(|(n, _)| n.gateway).collect();
        Ok(Attached {
            netns: ns,
            addrs: eps
                .iter()
                .flat_map(|e| std::iter::once(IpAddr::V4(e.ip)).chain(e.ipv6.map(IpAddr::V6)))
                .collect(),
            dns: gateway::dns_address(&cands, &gws),
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
        default_route4: bool,
        default_route6: bool,
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
            links = crate::links::dns_links(&m.links);
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
            gw_priority: m.gw_priority,
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
                gateway: (!net.internal && default_route4).then_some(net.gateway),
                mac: ep.mac.clone(),
                address6: ep.ipv6.map(|ip| (ip, ep.prefix6)),
                gateway6: ep.gateway6.filter(|_| !net.internal && default_route6),
                sysctls: match m.driver_opts.get(berth_network::ops::ENDPOINT_SYSCTLS) {
                    Some(spec) => {
                        berth_network::ops::endpoint_sysctls(spec, ifname).map_err(|e| {
                            ApiError::invalid(format!("invalid endpoint settings:\n{e}"))
                        })?
                    }
                    None => Vec::new(),
                },
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

    /// Gives up a running container's published ports (their host sockets and proxies, and
    /// the records on its endpoints); the caller applies the rules.
    fn unpublish(&self, id: &str) {
        let mut st = lock(&self.state);
        st.reservations.remove(id);
        for p in st.proxies6.remove(id).unwrap_or_default() {
            p.abort();
        }
        for ep in st.endpoints.get_mut(id).into_iter().flatten() {
            ep.ports.clear();
        }
    }

    /// Connects a running container to one more network (a new `ethN` in its namespace);
    /// the default route and published ports follow the gateway endpoint.
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
        let res = self
            .attach_one(c, net, m, &format!("eth{n}"), false, false)
            .and_then(|_| self.follow_gateway(c));
        if let Err(e) = res {
            self.detach_one(&c.id, &net.id);
            if let Err(e) = self.follow_gateway(c) {
                tracing::warn!(container = %c.id, "restoring the gateway: {}", e.message);
            }
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

    /// Every container's memberships.
    pub(crate) fn all_memberships(&self) -> Vec<Membership> {
        lock(&self.state)
            .memberships
            .values()
            .flatten()
            .cloned()
            .collect()
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
        list.retain(|x| x.key() != m.key());
        list.push(m);
    }

    /// Forgets the membership whose key ([`Membership::key`]) is `key`.
    pub(crate) fn remove_membership(&self, id: &str, key: &str) {
        let mut st = lock(&self.state);
        if let Some(list) = st.memberships.get_mut(id) {
            list.retain(|x| x.key() != key);
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
            // Containers that still name it keep it, by name, as Docker keeps it in their
            // `NetworkSettings`: they fail to start until it exists again or they are
            // disconnected from it.
            for ms in st.memberships.values_mut() {
                for m in ms.iter_mut().filter(|m| m.network_id == id) {
                    m.network_id.clear();
                }
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
            self.refresh_host_firewall();
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
            gw_priority: 0,
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
