//! The `/networks` API: user-defined bridge networks (create, list, inspect, connect,
//! disconnect, remove, prune), stored in the metadata database.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use berth_api_types::container as ct;
use berth_api_types::network as nt;
use berth_api_types::ApiError;
use berth_network::ipam::{Pool, Pool6, Subnet};

use crate::network::{Membership, Network, DEFAULT_NETWORK};
use crate::{internal, lock, Daemon, Result};

/// Docker's predefined network names, which cannot be created or removed.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

fn no_such_network(key: &str) -> ApiError {
    ApiError::not_found(format!("network {key} not found"))
}

/// Subnets tried in order when a create request names none (Docker's default pools,
/// 172.18-31.0.0/16 then 192.168.0.0/20 blocks, minus 172.17.0.0/16: a Docker daemon on the
/// same host gives that one to docker0, possibly after berth has looked at the routes).
fn candidate_subnets() -> impl Iterator<Item = Subnet> {
    let a = (18..=31u8).filter_map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let b = (0..16u8).filter_map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    a.chain(b)
}

/// Destinations of the host's IPv4 routes (so a new network never shadows one).
fn host_routes() -> Vec<Subnet> {
    let raw = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    raw.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // /proc/net/route prints addresses in host (little-endian) byte order.
            let dest = Ipv4Addr::from(u32::from_be(dest));
            let prefix = u32::from_be(mask).leading_ones() as u8;
            (prefix > 0)
                .then(|| Subnet::new(dest, prefix).ok())
                .flatten()
        })
        .collect()
}

impl Daemon {
    fn network_view(&self, n: &Network, verbose_members: bool) -> nt::Network {
        let mut containers = BTreeMap::new();
        if verbose_members {
            for (cid, ep) in self.net.members(&n.id) {
                let name = self.get(&cid).map(|c| c.name).unwrap_or_default();
                containers.insert(
                    cid,
                    nt::EndpointResource {
                        name,
                        endpoint_id: ep.endpoint_id.clone(),
                        mac_address: ep.mac.clone(),
                        ipv4_address: format!("{}/{}", ep.ip, ep.prefix),
                        ipv6_address: ep
                            .ipv6
                            .map(|ip| format!("{ip}/{}", ep.prefix6))
                            .unwrap_or_default(),
                    },
                );
            }
        }
        nt::Network {
            name: n.name.clone(),
            id: n.id.clone(),
            created: n.created.clone(),
            scope: "local".to_string(),
            driver: "bridge".to_string(),
            enable_ipv4: true,
            enable_ipv6: n.subnet6.is_some(),
            ipam: nt::Ipam {
                driver: "default".to_string(),
                options: None,
                config: Some(
                    std::iter::once(nt::IpamConfig {
                        subnet: n.subnet.to_string(),
                        gateway: n.gateway.to_string(),
                        ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                        ..Default::default()
                    })
                    .chain(n.subnet6.map(|s6| nt::IpamConfig {
                        subnet: s6.to_string(),
                        gateway: n.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                        ip_range: n.ip_range6.map(|r| r.to_string()).unwrap_or_default(),
                        ..Default::default()
                    }))
                    .collect(),
                ),
            },
            internal: n.internal,
            attachable: false,
            ingress: false,
            config_from: nt::ConfigReference::default(),
            config_only: false,
            containers,
            options: n.options.clone(),
            labels: n.labels.clone(),
        }
    }

    fn resolve_network(&self, key: &str) -> Result<Network> {
        self.net.find(key).ok_or_else(|| no_such_network(key))
    }

    /// With `members`, each network lists its containers (API < 1.28 clients get that).
    pub async fn network_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
        members: bool,
    ) -> Result<Vec<nt::Network>> {
        for (k, _) in &filters {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "type" | "label" | "scope" | "dangling"
            ) {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
        }
        let mut out = Vec::new();
        for n in self.net.all_networks() {
            let builtin = n.name == DEFAULT_NETWORK;
            let ok = filters.iter().all(|(k, vals)| {
                vals.iter().any(|v| match k.as_str() {
                    "name" => n.name.contains(v.as_str()),
                    "id" => n.id.starts_with(v.as_str()),
                    "driver" => v == "bridge",
                    "scope" => v == "local",
                    "type" => {
                        (v == "builtin") == builtin && matches!(v.as_str(), "builtin" | "custom")
                    }
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                        None => n.labels.contains_key(v),
                    },
                    "dangling" => {
                        let unused =
                            self.net.members(&n.id).is_empty() && !self.network_referenced(&n);
                        (v == "true" || v == "1") == (unused && !builtin)
                    }
                    _ => false,
                })
            });
            if ok {
                out.push(self.network_view(&n, members));
            }
        }
        for (name, driver) in crate::predefined_networks::NETWORKS {
            let id = crate::predefined_networks::id_of(name);
            let ok = filters.iter().all(|(k, vals)| {
                vals.iter().any(|v| match k.as_str() {
                    "name" => name.contains(v.as_str()),
                    "id" => id.starts_with(v.as_str()),
                    "driver" => v == driver,
                    "scope" => v == "local",
                    "type" => v == "builtin",
                    "dangling" => v == "false" || v == "0",
                    _ => false,
                })
            });
            if ok {
                out.push(self.predefined_view(name, driver, members));
            }
        }
        Ok(out)
    }

    pub async fn network_inspect(&self, key: &str) -> Result<nt::Network> {
        match self.resolve_network(key) {
            Ok(n) => Ok(self.network_view(&n, true)),
            Err(e) => match crate::predefined_networks::find(key) {
                Some((name, driver)) => Ok(self.predefined_view(name, driver, true)),
                None => Err(e),
            },
        }
    }

    pub async fn network_create(&self, req: nt::CreateRequest) -> Result<nt::CreateResponse> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(ApiError::invalid("network name cannot be empty"));
        }
        if PREDEFINED.contains(&name.as_str()) {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!("{name} is a pre-defined network and cannot be created"),
            ));
        }
        if self.net.all_networks().iter().any(|n| n.name == name) {
            return Err(ApiError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            d => return Err(ApiError::not_found(format!("plugin \"{d}\" not found"))),
        }
        let all_configs = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        // IPv6 configs are told apart by their subnet (or, without one, their gateway/range).
        let (v6_configs, configs): (Vec<nt::IpamConfig>, Vec<nt::IpamConfig>) =
            all_configs.into_iter().partition(|c| {
                let key = [&c.subnet, &c.gateway, &c.ip_range]
                    .into_iter()
                    .find(|s| !s.is_empty());
                key.is_some_and(|s| s.contains(':'))
            });
        if configs.len() > 1 || v6_configs.len() > 1 {
            return Err(ApiError::invalid(
                "berth supports one IPv4 and one IPv6 subnet per network",
            ));
        }
        let v6 = crate::network_v6::plan_v6(
            req.enable_ipv6 == Some(true),
            v6_configs.first(),
            &self
                .net
                .all_networks()
                .iter()
                .filter_map(|n| n.subnet6)
                .collect::<Vec<_>>(),
        )?;
        let existing: Vec<Subnet> = self.net.all_networks().iter().map(|n| n.subnet).collect();
        let v4 = match configs.first().filter(|c| !c.subnet.is_empty()) {
            Some(cfg) => crate::network_v6::plan_subnet(cfg, &existing)?,
            None => {
                let routes = host_routes();
                let subnet = candidate_subnets()
                    .find(|c| {
                        !existing.iter().any(|s| s.overlaps(c))
                            && !routes.iter().any(|r| r.overlaps(c))
                    })
                    .ok_or_else(|| {
                        ApiError::invalid("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
                    })?;
                crate::network_v6::Plan::with_first_host(subnet)?
            }
        };
        let id = {
            let bytes: [u8; 32] = rand::random();
            hex::encode(bytes)
        };
        let mut options = req.options.clone().unwrap_or_default();
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.len() > 15 || bridge.is_empty() || bridge.contains('/') || bridge.contains(' ') {
            return Err(ApiError::invalid(format!("invalid bridge name {bridge:?}")));
        }
        if self.net.all_networks().iter().any(|n| n.bridge == bridge)
            || std::path::Path::new("/sys/class/net")
                .join(&bridge)
                .exists()
        {
            return Err(ApiError::conflict(format!(
                "bridge {bridge} is already in use"
            )));
        }
        options.insert("com.docker.network.bridge.name".to_string(), bridge.clone());
        let pool6 = v6.as_ref().map(|p| p.pool.clone());
        let crate::network_v6::Plan {
            subnet,
            gateway,
            range: ip_range,
            pool,
        } = v4;
        let net = Network {
            id: id.clone(),
            name: name.clone(),
            bridge,
            subnet,
            gateway,
            internal: req.internal,
            ip_range,
            subnet6: v6.as_ref().map(|p| p.subnet),
            gateway6: v6.as_ref().map(|p| p.gateway),
            ip_range6: v6.as_ref().and_then(|p| p.range),
            labels: req.labels.clone().unwrap_or_default(),
            options,
            created: crate::model::now_rfc3339(),
        };
        self.store.put_network(&id, &name, &net).map_err(internal)?;
        if let Err(e) = self.net.add_network(net, pool, pool6) {
            let _ = self.store.delete_network(&id);
            self.net.remove_network(&id);
            return Err(internal(e));
        }
        self.emit_network(
            &id,
            "create",
            &[("name", name.clone()), ("type", "bridge".to_string())],
        );
        Ok(nt::CreateResponse {
            id,
            warning: String::new(),
        })
    }

    /// Whether any container (running or not) names the network as its `NetworkMode`.
    fn network_referenced(&self, n: &Network) -> bool {
        lock(&self.containers)
            .values()
            .any(|c| c.host_config.network_mode == n.name || c.host_config.network_mode == n.id)
            || self.net.has_memberships(&n.id)
    }

    pub async fn network_remove(&self, key: &str) -> Result<()> {
        let n = match self.resolve_network(key) {
            Ok(n) => n,
            Err(e) => {
                return Err(match crate::predefined_networks::find(key) {
                    Some((name, _)) => ApiError::new(
                        berth_api_types::ErrorKind::Forbidden,
                        format!("{name} is a pre-defined network and cannot be removed"),
                    ),
                    None => e,
                })
            }
        };
        if n.name == DEFAULT_NETWORK {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!("{} is a pre-defined network and cannot be removed", n.name),
            ));
        }
        if !self.net.members(&n.id).is_empty() {
            return Err(ApiError::conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.store.delete_network(&n.id).map_err(internal)?;
        self.net.remove_network(&n.id);
        self.emit_network(
            &n.id,
            "destroy",
            &[("name", n.name.clone()), ("type", "bridge".to_string())],
        );
        Ok(())
    }

    pub async fn network_prune(
        &self,
        _filters: Vec<(String, Vec<String>)>,
    ) -> Result<nt::PruneResponse> {
        let mut deleted = Vec::new();
        for n in self.net.all_networks() {
            if n.name == DEFAULT_NETWORK
                || !self.net.members(&n.id).is_empty()
                || self.network_referenced(&n)
            {
                continue;
            }
            self.store.delete_network(&n.id).map_err(internal)?;
            self.net.remove_network(&n.id);
            self.emit_network(
                &n.id,
                "destroy",
                &[("name", n.name.clone()), ("type", "bridge".to_string())],
            );
            deleted.push(n.name.clone());
        }
        Ok(nt::PruneResponse {
            networks_deleted: (!deleted.is_empty()).then_some(deleted),
        })
    }

    fn membership_from(
        &self,
        container_id: &str,
        n: &Network,
        cfg: Option<&ct::EndpointSettings>,
    ) -> Result<Membership> {
        let aliases = cfg.and_then(|c| c.aliases.clone()).unwrap_or_default();
        let ipv4 = cfg
            .and_then(|c| c.ipam_config.as_ref())
            .and_then(|v| v.get("IPv4Address"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| ApiError::invalid(format!("invalid IPv4 address: {s}")))
            })
            .transpose()?;
        if let Some(ip) = ipv4 {
            if !n.subnet.contains(ip) {
                return Err(ApiError::invalid(format!(
                    "invalid endpoint settings: no configured subnet contains IP address {ip}"
                )));
            }
        }
        let ipv6 = cfg
            .and_then(|c| c.ipam_config.as_ref())
            .and_then(|v| v.get("IPv6Address"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv6Addr>()
                    .map_err(|_| ApiError::invalid(format!("invalid IPv6 address: {s}")))
            })
            .transpose()?;
        if let Some(ip) = ipv6 {
            if !n.subnet6.is_some_and(|s| s.contains(ip)) {
                return Err(ApiError::invalid(format!(
                    "invalid endpoint settings: no configured subnet contains IP address {ip}"
                )));
            }
        }
        if n.name == DEFAULT_NETWORK && (!aliases.is_empty() || ipv4.is_some() || ipv6.is_some()) {
            return Err(ApiError::invalid(
                "network-scoped aliases and user specified IP addresses are only supported for user defined networks",
            ));
        }
        let mac = cfg
            .map(|c| c.mac_address.as_str())
            .filter(|m| !m.is_empty())
            .map(crate::network::parse_mac)
            .transpose()?;
        Ok(Membership {
            container_id: container_id.to_string(),
            network_id: n.id.clone(),
            aliases,
            ipv4,
            ipv6,
            mac,
        })
    }

    /// Records the `NetworkingConfig` of a create request (aliases, fixed addresses) for the
    /// container's user-defined networks.
    pub(crate) fn record_create_networks(
        &self,
        id: &str,
        mode: &str,
        nc: Option<&ct::NetworkingConfig>,
    ) -> Result<()> {
        let mut members = Vec::new();
        if let Some(n) = self.net.find(mode).filter(|n| n.name != DEFAULT_NETWORK) {
            let cfg = nc
                .and_then(|nc| nc.endpoints_config.as_ref())
                .and_then(|e| e.get(mode).or_else(|| e.get(&n.name)));
            let mut m = self.membership_from(id, &n, cfg)?;
            m.mac = m.mac.or(self.legacy_mac(id)?);
            members.push(m);
        } else if matches!(mode, "" | "default" | DEFAULT_NETWORK) {
            // The default bridge keeps a membership only to carry a `--mac-address`.
            if let Some(n) = self.net.find(DEFAULT_NETWORK) {
                let cfg = nc
                    .and_then(|nc| nc.endpoints_config.as_ref())
                    .and_then(|e| e.get(mode).or_else(|| e.get(DEFAULT_NETWORK)));
                let mut m = self.membership_from(id, &n, cfg)?;
                m.mac = m.mac.or(self.legacy_mac(id)?);
                if m.mac.is_some() {
                    members.push(m);
                }
            }
        }
        for m in &members {
            self.store
                .put_attachment(id, &m.network_id, m)
                .map_err(internal)?;
        }
        self.net.set_memberships(id, members);
        Ok(())
    }

    /// The deprecated `Config.MacAddress` of a just-created container.
    fn legacy_mac(&self, id: &str) -> Result<Option<String>> {
        self.get(id)
            .and_then(|c| c.config.mac_address.clone())
            .filter(|m| !m.is_empty())
            .map(|m| crate::network::parse_mac(&m))
            .transpose()
    }

    /// Forgets a removed container's networks.
    pub(crate) fn network_container_removed(&self, id: &str) {
        self.net.release(id);
        self.net.set_memberships(id, Vec::new());
        if let Err(e) = self.store.delete_attachment(id, None) {
            tracing::warn!(container = id, "forgetting network memberships: {e}");
        }
    }

    pub async fn network_connect(
        self: &Arc<Self>,
        key: &str,
        req: nt::ConnectRequest,
    ) -> Result<()> {
        let n = self.resolve_network(key).map_err(|e| {
            crate::predefined_networks::find(key).map_or(e, |(name, _)| {
                crate::predefined_networks::not_connectable(name)
            })
        })?;
        let c = self.resolve_container(&req.container)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let already = self
            .net
            .memberships(&c.id)
            .iter()
            .any(|m| m.network_id == n.id)
            || self
                .net
                .find(&c.host_config.network_mode)
                .is_some_and(|m| m.id == n.id)
            || (n.name == DEFAULT_NETWORK
                && matches!(c.host_config.network_mode.as_str(), "" | "default"));
        if already {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!(
                    "endpoint with name {} already exists in network {}",
                    c.name, n.name
                ),
            ));
        }
        if c.host_config.network_mode.starts_with("container:") {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if matches!(c.host_config.network_mode.as_str(), "host" | "none") {
            return Err(ApiError::invalid(format!(
                "container cannot be disconnected from host network or connected to host network (network mode {})",
                c.host_config.network_mode
            )));
        }
        let m = self.membership_from(&c.id, &n, req.endpoint_config.as_ref())?;
        if c.state.status.is_active() {
            self.net.hot_attach(&c, &n, &m)?;
        }
        self.store
            .put_attachment(&c.id, &n.id, &m)
            .map_err(internal)?;
        self.net.add_membership(m);
        self.emit_network(
            &n.id,
            "connect",
            &[
                ("container", c.id.clone()),
                ("name", n.name.clone()),
                ("type", "bridge".to_string()),
            ],
        );
        Ok(())
    }

    pub async fn network_disconnect(&self, key: &str, req: nt::DisconnectRequest) -> Result<()> {
        let n = self.resolve_network(key).map_err(|e| {
            crate::predefined_networks::find(key).map_or(e, |(name, _)| {
                crate::predefined_networks::not_connectable(name)
            })
        })?;
        let c = self.resolve_container(&req.container)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let member = self
            .net
            .memberships(&c.id)
            .iter()
            .any(|m| m.network_id == n.id);
        if !member {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!("container {} is not connected to network {}", c.id, n.name),
            ));
        }
        if c.host_config.network_mode == n.name || c.host_config.network_mode == n.id {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!(
                    "berth cannot disconnect container {} from its primary network {}",
                    c.name, n.name
                ),
            ));
        }
        self.net.detach_one(&c.id, &n.id);
        self.store
            .delete_attachment(&c.id, Some(&n.id))
            .map_err(internal)?;
        self.net.remove_membership(&c.id, &n.id);
        self.emit_network(
            &n.id,
            "disconnect",
            &[
                ("container", c.id.clone()),
                ("name", n.name.clone()),
                ("type", "bridge".to_string()),
            ],
        );
        Ok(())
    }

    /// `--add-host name:host-gateway` means the default bridge's address, as in Docker.
    pub(crate) fn substitute_host_gateway(&self, hc: &mut ct::HostConfig) -> Result<()> {
        let Some(hosts) = hc.extra_hosts.as_mut() else {
            return Ok(());
        };
        for entry in hosts.iter_mut() {
            let Some((name, value)) = entry.split_once(':').or_else(|| entry.split_once('='))
            else {
                continue;
            };
            if value == "host-gateway" {
                let gw = self
                    .net
                    .find(DEFAULT_NETWORK)
                    .map(|n| n.gateway)
                    .ok_or_else(|| {
                        ApiError::invalid("unable to derive the IP value for host-gateway: the default bridge is disabled")
                    })?;
                *entry = format!("{name}:{gw}");
            }
        }
        Ok(())
    }

    /// Loads user-defined networks and memberships from the database (daemon start).
    pub(crate) fn load_networks(&self) -> std::result::Result<(), String> {
        let nets: Vec<Network> = self.store.networks().map_err(|e| e.to_string())?;
        for n in nets {
            let mut pool = Pool::new(n.subnet, n.gateway).map_err(|e| e.to_string())?;
            if let Some(r) = n.ip_range {
                pool = pool.with_range(r).map_err(|e| e.to_string())?;
            }
            let pool6 = match n.subnet6.zip(n.gateway6) {
                Some((s6, gw6)) => {
                    let p = Pool6::new(s6, gw6).map_err(|e| e.to_string())?;
                    Some(match n.ip_range6 {
                        Some(r) => p.with_range(r).map_err(|e| e.to_string())?,
                        None => p,
                    })
                }
                None => None,
            };
            let name = n.name.clone();
            if let Err(e) = self.net.add_network(n, pool, pool6) {
                tracing::warn!(network = %name, "restoring network: {e}");
            }
        }
        let members: Vec<Membership> = self.store.attachments().map_err(|e| e.to_string())?;
        for m in members {
            self.net.add_membership(m);
        }
        Ok(())
    }
}
