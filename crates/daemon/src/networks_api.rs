//! The `/networks` API: user-defined bridge networks (create, list, inspect, connect,
//! disconnect, remove, prune), stored in the metadata database.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

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
            // At most 32.
            let prefix = u8::try_from(u32::from_be(mask).leading_ones()).unwrap_or(32);
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
            options: {
                // Records of earlier berth versions stored the bridge name berth chose.
                let mut o = n.options.clone();
                let auto = format!("br-{}", n.id.get(..12).unwrap_or(&n.id));
                if o.get("com.docker.network.bridge.name") == Some(&auto) {
                    o.remove("com.docker.network.bridge.name");
                }
                o
            },
            labels: n.labels.clone(),
        }
    }

    pub(crate) fn resolve_network(&self, key: &str) -> Result<Network> {
        self.net.find(key).ok_or_else(|| no_such_network(key))
    }

    /// With `members`, each network lists its containers (API < 1.28 clients get that).
    pub async fn network_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
        members: bool,
    ) -> Result<Vec<nt::Network>> {
        for (k, vals) in &filters {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "type" | "label" | "scope" | "dangling"
            ) {
                return Err(ApiError::invalid(format!("invalid filter '{k}'")));
            }
            // dockerd's checks of the values (daemon/network/filter.go), its status and words.
            if k == "type" {
                if let Some(v) = vals
                    .iter()
                    .find(|v| !matches!(v.as_str(), "builtin" | "custom"))
                {
                    return Err(ApiError::internal(format!("invalid filter: 'type'='{v}'")));
                }
            }
            if k == "dangling" {
                if vals.len() > 1 {
                    return Err(ApiError::invalid(
                        "got more than one value for filter key \"dangling\"",
                    ));
                }
                if vals
                    .iter()
                    .any(|v| !matches!(v.as_str(), "0" | "1" | "true" | "false"))
                {
                    return Err(ApiError::invalid(
                        "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
                    ));
                }
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
                // dockerd's PredefinedNetworkError, trailing space included.
                format!("operation is not permitted on predefined {name} network "),
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
        let options = req.options.clone().unwrap_or_default();
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
        // The interface name stays the network's own (`bridge`): like dockerd, `Options` shows
        // only what the request gave (compose compares them to its file's `driver_opts`).
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
        self.store.put_network(&id, &name, &net)?;
        if let Err(e) = self.net.add_network(net, pool, pool6) {
            let _ = self.store.delete_network(&id);
            self.net.remove_network(&id);
            return Err(internal(e));
        }
        self.net.refresh_host_firewall();
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
            // libnetwork's ActiveEndpointsError is a "forbidden" error: dockerd answers 403.
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                ),
            ));
        }
        // Stopped containers on it keep it by name, as with Docker (their start fails until
        // a network of that name exists again, or they are disconnected from it).
        let kept: Vec<Membership> = self
            .net
            .all_memberships()
            .into_iter()
            .filter(|m| m.network_id == n.id)
            .map(|mut m| {
                m.network_id.clear();
                m.network_name = n.name.clone();
                m
            })
            .collect();
        self.store.delete_network(&n.id)?;
        self.net.remove_network(&n.id);
        for m in &kept {
            if let Err(e) = self.store.put_attachment(&m.container_id, &m.key(), m) {
                tracing::warn!(container = %m.container_id, "keeping network {}: {e}", n.name);
            }
        }
        self.emit_network(
            &n.id,
            "destroy",
            &[("name", n.name.clone()), ("type", "bridge".to_string())],
        );
        Ok(())
    }

    pub async fn network_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<nt::PruneResponse> {
        // dockerd takes `until`, `label` and `label!` here and refuses other filters.
        let f = crate::housekeeping::PruneFilters::parse(&filters, false)?;
        let mut deleted = Vec::new();
        for n in self.net.all_networks() {
            let created = chrono::DateTime::parse_from_rfc3339(&n.created)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            if n.name == DEFAULT_NETWORK
                || !self.net.members(&n.id).is_empty()
                || self.network_referenced(&n)
                || !f.matches(created, &n.labels)
            {
                continue;
            }
            self.store.delete_network(&n.id)?;
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
    pub(crate) fn load_networks(&self) -> std::result::Result<(), crate::network::NetError> {
        let nets: Vec<Network> = self.store.networks()?;
        for n in nets {
            let mut pool = Pool::new(n.subnet, n.gateway)?;
            if let Some(r) = n.ip_range {
                pool = pool.with_range(r)?;
            }
            let pool6 = match n.subnet6.zip(n.gateway6) {
                Some((s6, gw6)) => {
                    let p = Pool6::new(s6, gw6)?;
                    Some(match n.ip_range6 {
                        Some(r) => p.with_range(r)?,
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
        let members: Vec<Membership> = self.store.attachments()?;
        for m in members {
            self.net.add_membership(m);
        }
        self.migrate_memberships()
    }
}
