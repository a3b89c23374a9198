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
use berth_network::ops::{Attachment, LinkOps};
use serde::{Deserialize, Serialize};

mod dns;
mod error;
mod gateway;
mod memberships;
mod netns_pool;
mod restore;
mod rules;

use crate::model::Container;
use crate::network_ports::{take_port, wanted_ports, WantedPort};
use crate::{internal, lock, DaemonConfig};

pub(crate) use error::NetError;

pub(crate) use crate::network_model::{Endpoint, Network, DEFAULT_NETWORK};

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
    /// Pinned network namespaces (see [`crate::host::Netns`]).
    pub(crate) netns: std::sync::Arc<dyn crate::host::Netns>,
    /// berth's nftables table and host iptables chain (see [`crate::host::Firewall`]).
    firewall: std::sync::Arc<dyn crate::host::Firewall>,
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
    /// A rootless daemon's port driver: published ports also open on the host.
    pub(crate) port_driver: Option<std::sync::Arc<dyn crate::rootless::PortDriver>>,
    /// Namespaces made ahead of need (`--netns-pool`).
    netns_pool: netns_pool::NetnsPool,
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
) -> std::result::Result<Option<(Subnet6, Pool6)>, NetError> {
    if !cfg.ipv6 {
        return match &cfg.fixed_cidr_v6 {
            Some(c) => Err(NetError::V6WithoutIpv6(c.clone())),
            None => Ok(None),
        };
    }
    let subnet: Subnet6 = match &cfg.fixed_cidr_v6 {
        Some(c) => c.parse().map_err(|_| NetError::V6NotCidr(c.clone()))?,
        None => {
            let digest = stable_id(&format!("berth-default-bridge-v6:{}", cfg.bridge));
            let seed = u64::from_str_radix(&digest[..16], 16).unwrap_or_default();
            berth_network::ipam::ula_subnet(seed)
        }
    };
    crate::network_v6::refuse_reserved(&subnet).map_err(|cause| NetError::V6Reserved {
        subnet: subnet.to_string(),
        cause,
    })?;
    let pool = Pool6::new(subnet, subnet.first_host()).map_err(|source| NetError::V6Pool {
        subnet: subnet.to_string(),
        source,
    })?;
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
    pub(crate) fn new(
        cfg: &DaemonConfig,
        links: std::sync::Arc<dyn LinkOps>,
        netns: std::sync::Arc<dyn crate::host::Netns>,
        firewall: std::sync::Arc<dyn crate::host::Firewall>,
    ) -> std::result::Result<NetService, NetError> {
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
            let (subnet, gateway) =
                Subnet::parse_with_addr(&cfg.bip).map_err(|source| NetError::Bip {
                    bip: cfg.bip.clone(),
                    source,
                })?;
            crate::network_v6::refuse_reserved(&subnet).map_err(|cause| NetError::BipReserved {
                bip: cfg.bip.clone(),
                cause,
            })?;
            let pool = Pool::new(subnet, gateway).map_err(NetError::BipPool)?;
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
            // The driver options dockerd shows for its default bridge, with berth's values:
            // containers on it reach each other, outbound traffic is masqueraded, ports are
            // published on every address, the MTU is Ethernet's.
            for (k, v) in [
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.driver.mtu", "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
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
            berth_network::dns::parse_upstreams(&cfg.dns).map_err(NetError::Dns)?
        };
        Ok(NetService {
            dns: berth_network::dns::DnsServers::new().map_err(NetError::DnsThread)?,
            dns_upstreams: berth_network::dns::Upstreams {
                servers,
                search,
                timeout: std::time::Duration::from_secs(3),
            },
            ops: links,
            netns_pool: netns_pool::NetnsPool::new(&cfg.exec_root, netns.clone(), cfg.netns_pool),
            netns,
            firewall,
            table,
            exec_root: cfg.exec_root.clone(),
            default_id,
            state: std::sync::Arc::new(Mutex::new(state)),
            apply_lock: Mutex::new(()),
            fw_lock: Mutex::new(()),
            ip_forward: cfg.ip_forward,
            port_driver: cfg.rootless.as_ref().map(|r| r.port_driver.clone()),
        })
    }

    /// A ready namespace pinned at the container's usual path, for a container with nothing
    /// to plumb (`--network none`); `None` when the pool had none.
    pub(crate) fn pin_spare(&self, id: &str) -> Option<PathBuf> {
        let ns = self.netns_path(id);
        self.netns_pool.take_into(&ns).then_some(ns)
    }

    /// Lets go of the namespaces made ahead of need (graceful shutdown).
    pub(crate) fn drain_pools(&self) {
        self.netns_pool.drain();
    }

    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.exec_root.join("netns").join(id)
    }

    fn ensure_bridge(&self, n: &Network) -> std::result::Result<(), NetError> {
        // On the start path: a bridge that is there was set up at daemon start or network
        // create, and checking costs no process.
        if self.ops.link_exists(&n.bridge) {
            return Ok(());
        }
        self.bring_up_bridge(n)
    }

    fn bring_up_bridge(&self, n: &Network) -> std::result::Result<(), NetError> {
        self.ops
            .ensure_bridge(&n.bridge, n.gateway, n.subnet.prefix())?;
        if let (Some(subnet6), Some(gw6)) = (n.subnet6, n.gateway6) {
            self.ops.ensure_bridge_v6(
                &n.bridge,
                gw6,
                subnet6.prefix(),
                !n.internal && self.ip_forward,
            )?;
        }
        Ok(())
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
        self.setup_with(c, None)
    }

    /// [`setup`](Self::setup) for a created container whose runtime made its network
    /// namespace (in the container's own user namespace, `--userns-remap`): `init_pid`'s
    /// namespace is pinned at the usual path and plumbed before the container starts.
    pub(crate) fn setup_created(
        &self,
        c: &Container,
        init_pid: u32,
    ) -> crate::Result<Option<Attached>> {
        self.setup_with(c, Some(PathBuf::from(format!("/proc/{init_pid}/ns/net"))))
    }

    fn setup_with(
        &self,
        c: &Container,
        existing: Option<PathBuf>,
    ) -> crate::Result<Option<Attached>> {
        let mode = c.host_config.network_mode.as_str();
        if matches!(mode, "none" | "host") || mode.starts_with("container:") {
            return Ok(None);
        }
        let plan = self.plan(c)?;
        let t0 = std::time::Instant::now();
        // A previous run may have left its endpoint behind (e.g. a start that failed late).
        self.release(&c.id);
        let ports = wanted_ports(c)?;
        let res = self.setup_inner(c, &plan, &ports, existing.as_deref());
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
        existing: Option<&std::path::Path>,
    ) -> crate::Result<Attached> {
        let ns = self.netns_path(&c.id);
        match existing {
            Some(from) => self.netns.pin(from, &ns),
            None if self.netns_pool.take_into(&ns) => Ok(()),
            None => self.netns.create(&ns),
        }
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
        self.persist(&c.id)?;
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
        self.ensure_bridge(net)?;
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
            match take_port(ep, w, self.port_driver.as_deref()) {
                Ok((held, p)) => {
                    fds.extend(held.fds);
                    proxies.extend(held.proxy);
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
        if eps.is_empty() && !self.netns.is_mounted(&self.netns_path(&c.id)) {
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
        if let Err(e) = self.netns.remove(&self.netns_path(id)) {
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

    fn bridges_dir(&self) -> PathBuf {
        self.exec_root.join("network").join("bridges")
    }

    /// Brings up a user-defined network: its bridge, its DNS server and its rules.
    pub(crate) fn add_network(
        &self,
        n: Network,
        pool: Pool,
        pool6: Option<Pool6>,
    ) -> std::result::Result<(), NetError> {
        // Recorded before the bridge exists, so whoever cleans up after a crash finds it.
        let _ = std::fs::create_dir_all(self.bridges_dir());
        let _ = std::fs::write(self.bridges_dir().join(&n.bridge), &n.id);
        let existed = self.ops.link_exists(&n.bridge);
        if let Err(e) = self.ensure_bridge(&n) {
            // A bridge made here whose address could not be set must not stay behind.
            if !existed {
                let _ = self.ops.delete_link(&n.bridge);
                let _ = std::fs::remove_file(self.bridges_dir().join(&n.bridge));
            }
            return Err(e);
        }
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

/// An endpoint for unit tests.
#[cfg(test)]
pub(crate) fn test_endpoint(cid: &str, net: &str, ip: &str, names: &[&str]) -> Endpoint {
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

#[cfg(test)]
mod tests {
    use super::test_endpoint as ep;
    use super::*;
    use crate::network_model::PublishedPort;

    #[test]
    fn default_bridge_ipv6_comes_from_the_flags() {
        let mut cfg = crate::DaemonConfig {
            bridge: "berth0".into(),
            ..Default::default()
        };
        assert!(default_bridge_v6(&cfg).unwrap().is_none());
        cfg.fixed_cidr_v6 = Some("fd00:1:2:3::/64".into());
        assert_eq!(
            default_bridge_v6(&cfg).unwrap_err().to_string(),
            "--fixed-cidr-v6 fd00:1:2:3::/64 needs --ipv6"
        );
        cfg.ipv6 = true;
        let (subnet, pool) = default_bridge_v6(&cfg).unwrap().unwrap();
        assert_eq!(subnet.to_string(), "fd00:1:2:3::/64");
        assert_eq!(pool.gateway().to_string(), "fd00:1:2:3::1");
        cfg.fixed_cidr_v6 = Some("10.0.0.0/8".into());
        assert!(default_bridge_v6(&cfg)
            .unwrap_err()
            .to_string()
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
}
