//! A container's networks as Docker keeps them (`NetworkSettings.Networks`): recorded at
//! create from `NetworkingConfig` (else `NetworkMode`), changed by `network connect` and
//! `network disconnect` whether the container runs or not, joined in that order at start.
//!
//! `HostConfig.NetworkMode` is never changed by any of this (as with Docker): a container
//! created on network `a` and then disconnected from it starts on the networks it has, or on
//! none. compose v1, Ansible's community.docker and docker-py rely on that: they create a
//! container on its network, then disconnect and reconnect it with aliases, addresses and
//! links before they start it.
//!
//! What dockerd (20.10, checked; 28 per its source) answers, and berth too:
//! - connect to a network the container is on: running, 403 "endpoint with name C already
//!   exists in network N"; not running, 200 and nothing changes;
//! - disconnect from a network it is not on: 500 "container ID is not connected to network
//!   N" (running) or "... to the network N" (not running);
//! - a running container's default route, published ports, `/etc/hosts` and resolv.conf
//!   follow (see `network/gateway.rs` and `etcfiles.rs`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use berth_api_types::container as ct;
use berth_api_types::network as nt;
use berth_api_types::{ApiError, ErrorKind};

use crate::model::{Container, Status};
use crate::network::{Membership, Network, DEFAULT_NETWORK};
use crate::{Daemon, Result};

fn parse_ip<T: std::str::FromStr>(
    cfg: Option<&ct::EndpointSettings>,
    key: &str,
    family: &str,
) -> Result<Option<T>> {
    cfg.and_then(|c| c.ipam_config.as_ref())
        .and_then(|v| v.get(key))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| ApiError::invalid(format!("invalid {family} address: {s}")))
        })
        .transpose()
}

/// The endpoint settings of a create or connect request as a membership of `net` (`None`:
/// a network that does not exist, recorded under `name`), checked as Docker checks them.
pub(crate) fn membership_from(
    container_id: &str,
    net: Option<&Network>,
    name: &str,
    cfg: Option<&ct::EndpointSettings>,
) -> Result<Membership> {
    let aliases = cfg.and_then(|c| c.aliases.clone()).unwrap_or_default();
    let ipv4: Option<Ipv4Addr> = parse_ip(cfg, "IPv4Address", "IPv4")?;
    let ipv6: Option<Ipv6Addr> = parse_ip(cfg, "IPv6Address", "IPv6")?;
    if let Some(n) = net {
        if let Some(ip) = ipv4.filter(|ip| !n.subnet.contains(*ip)) {
            return Err(ApiError::invalid(format!(
                "invalid endpoint settings: no configured subnet contains IP address {ip}"
            )));
        }
        if let Some(ip) = ipv6.filter(|ip| !n.subnet6.is_some_and(|s| s.contains(*ip))) {
            return Err(ApiError::invalid(format!(
                "invalid endpoint settings: no configured subnet contains IP address {ip}"
            )));
        }
    }
    let on_default = net.map_or(matches!(name, DEFAULT_NETWORK | "default"), |n| {
        n.name == DEFAULT_NETWORK
    });
    if on_default && (!aliases.is_empty() || ipv4.is_some() || ipv6.is_some()) {
        return Err(ApiError::invalid(
            "network-scoped aliases and user specified IP addresses are only supported for user defined networks",
        ));
    }
    let driver_opts = cfg.and_then(|c| c.driver_opts.clone()).unwrap_or_default();
    if let Some(spec) = driver_opts.get(berth_network::ops::ENDPOINT_SYSCTLS) {
        berth_network::ops::endpoint_sysctls(spec, "eth0")
            .map_err(|e| ApiError::invalid(format!("invalid endpoint settings:\n{e}")))?;
    }
    let mac = cfg
        .map(|c| c.mac_address.as_str())
        .filter(|m| !m.is_empty())
        .map(crate::network_refs::parse_mac)
        .transpose()?;
    Ok(Membership {
        container_id: container_id.to_string(),
        network_id: net.map(|n| n.id.clone()).unwrap_or_default(),
        network_name: net.map_or_else(
            || {
                if name == "default" {
                    DEFAULT_NETWORK.to_string()
                } else {
                    name.to_string()
                }
            },
            |n| n.name.clone(),
        ),
        aliases,
        ipv4,
        ipv6,
        mac,
        links: cfg.and_then(|c| c.links.clone()).unwrap_or_default(),
        driver_opts,
        gw_priority: cfg.map_or(0, |c| c.gw_priority),
    })
}

fn not_connected(c: &Container, network: &str, running: bool) -> ApiError {
    // dockerd's wording differs by whether the container runs; it is a plain error (500).
    let the = if running { "" } else { "the " };
    ApiError::internal(format!(
        "container {} is not connected to {the}network {network}",
        c.id
    ))
}

fn is_running(c: &Container) -> bool {
    matches!(c.state.status, Status::Running | Status::Paused) && c.state.pid > 0
}

impl Daemon {
    /// Records the networks of a new container: the entries of `NetworkingConfig` (several
    /// from API 1.44), else the network of its `NetworkMode`. Networks that do not exist
    /// are kept by name; the start fails on them, as with Docker.
    pub(crate) fn record_create_networks(
        &self,
        id: &str,
        mode: &str,
        nc: Option<&ct::NetworkingConfig>,
    ) -> Result<()> {
        if matches!(mode, "none" | "host") || mode.starts_with("container:") {
            return Ok(());
        }
        let mode_name = match mode {
            "" | "default" => DEFAULT_NETWORK,
            m => m,
        };
        let configured: BTreeMap<String, ct::EndpointSettings> = nc
            .and_then(|nc| nc.endpoints_config.clone())
            .unwrap_or_default();
        let entries: Vec<(String, Option<ct::EndpointSettings>)> = if configured.is_empty() {
            vec![(mode_name.to_string(), None)]
        } else {
            // The `NetworkMode` network first, so it is eth0.
            let mut e: Vec<_> = configured.into_iter().map(|(k, v)| (k, Some(v))).collect();
            e.sort_by_key(|(k, _)| k != mode_name && k != mode);
            e
        };
        let c = self.get(id);
        let mut members: Vec<Membership> = Vec::new();
        for (key, cfg) in &entries {
            if matches!(key.as_str(), "none" | "host") {
                continue;
            }
            // `default` is the default bridge's other name in `NetworkMode`.
            let net = self.net.find(if key == "default" {
                DEFAULT_NETWORK
            } else {
                key
            });
            let mut m = membership_from(id, net.as_ref(), key, cfg.as_ref())?;
            if members.iter().any(|x| x.key() == m.key()) {
                continue;
            }
            let is_mode =
                key == mode_name || key == mode || net.as_ref().is_some_and(|n| n.id == mode);
            if is_mode {
                // The deprecated `Config.MacAddress` is the mode network's (API < 1.44).
                m.mac = m.mac.or(self.legacy_mac(id)?);
                // `--link` on a user-defined network: the docker CLI copies `HostConfig.Links`
                // into the endpoint; other clients leave them in `HostConfig` only.
                if m.links.is_empty() && m.network_name != DEFAULT_NETWORK {
                    m.links = c
                        .as_ref()
                        .and_then(|c| c.host_config.links.clone())
                        .unwrap_or_default();
                }
            }
            members.push(m);
        }
        for m in &members {
            self.store.put_attachment(id, &m.key(), m)?;
        }
        self.net.set_memberships(id, members);
        Ok(())
    }

    /// The deprecated `Config.MacAddress` of a just-created container.
    fn legacy_mac(&self, id: &str) -> Result<Option<String>> {
        self.get(id)
            .and_then(|c| c.config.mac_address.clone())
            .filter(|m| !m.is_empty())
            .map(|m| crate::network_refs::parse_mac(&m))
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

    fn check_connectable(&self, c: &Container) -> Result<()> {
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "Container {} is marked for removal and cannot be connected or disconnected to the network",
                c.id
            )));
        }
        if c.host_config.network_mode.starts_with("container:") {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if matches!(c.host_config.network_mode.as_str(), "host" | "none") {
            return Err(ApiError::invalid(format!(
                "container cannot be disconnected from host network or connected to host network (network mode {})",
                c.host_config.network_mode
            )));
        }
        Ok(())
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
        let c = self
            .get(&c.id)
            .ok_or_else(|| crate::model::no_such_container(&req.container))?;
        self.check_connectable(&c)?;
        let running = is_running(&c);
        if self.net.memberships(&c.id).iter().any(|m| m.is_of(&n)) {
            if !running {
                // dockerd keeps the settings it has and answers 200.
                return Ok(());
            }
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "endpoint with name {} already exists in network {}",
                    c.name, n.name
                ),
            ));
        }
        let m = membership_from(&c.id, Some(&n), &n.name, req.endpoint_config.as_ref())?;
        if running {
            let dns_before = self.net.dns_address_of(&c.id);
            self.net.hot_attach(&c, &n, &m)?;
            let joined = self
                .net
                .endpoints(&c.id)
                .into_iter()
                .find(|e| e.network_id == n.id)
                .map(|e| {
                    std::iter::once(std::net::IpAddr::V4(e.ip))
                        .chain(e.ipv6.map(std::net::IpAddr::V6))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if let Err(e) = self.etc_files_follow(&c, &joined, &[], dns_before) {
                tracing::warn!(container = %c.id, "{}", e.message);
            }
        }
        self.store.put_attachment(&c.id, &m.key(), &m)?;
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
        let found = self.resolve_network(key);
        let c = match self.resolve_container(&req.container) {
            Ok(c) => c,
            // dockerd's ForceEndpointDelete: a forced disconnect of a container it does not know
            // looks for a stale endpoint of that name in the network. berth keeps none.
            Err(_) if req.force => {
                found?;
                return Err(ApiError::not_found(format!(
                    "endpoint {} not found",
                    req.container
                )));
            }
            Err(e) => return Err(e),
        };
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let c = self
            .get(&c.id)
            .ok_or_else(|| crate::model::no_such_container(&req.container))?;
        let running = is_running(&c);
        let n = match found {
            Ok(n) => Some(n),
            // A stopped container can leave a network that is gone, by the name it knew.
            Err(_) if !running && crate::predefined_networks::find(key).is_none() => None,
            Err(e) => {
                return Err(
                    crate::predefined_networks::find(key).map_or(e, |(name, _)| {
                        crate::predefined_networks::not_connectable(name)
                    }),
                )
            }
        };
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            self.check_connectable(&c)?;
        }
        let name = n.as_ref().map_or(key, |n| n.name.as_str()).to_string();
        let m = self.net.memberships(&c.id).into_iter().find(|m| match &n {
            Some(n) => m.is_of(n),
            None => m.network_id.is_empty() && m.network_name == key,
        });
        let Some(m) = m else {
            return Err(not_connected(&c, &name, running));
        };
        if let (true, Some(n)) = (running, &n) {
            let dns_before = self.net.dns_address_of(&c.id);
            let left = self
                .net
                .endpoints(&c.id)
                .into_iter()
                .find(|e| e.network_id == n.id)
                .map(|e| {
                    std::iter::once(std::net::IpAddr::V4(e.ip))
                        .chain(e.ipv6.map(std::net::IpAddr::V6))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            self.net.detach_one(&c.id, &n.id);
            if let Err(e) = self.net.follow_gateway(&c) {
                tracing::warn!(container = %c.id, "{}", e.message);
            }
            if let Err(e) = self.etc_files_follow(&c, &[], &left, dns_before) {
                tracing::warn!(container = %c.id, "{}", e.message);
            }
        }
        self.store.delete_attachment(&c.id, Some(&m.key()))?;
        self.net.remove_membership(&c.id, &m.key());
        if let Some(n) = &n {
            self.emit_network(
                &n.id,
                "disconnect",
                &[
                    ("container", c.id.clone()),
                    ("name", n.name.clone()),
                    ("type", "bridge".to_string()),
                ],
            );
        }
        Ok(())
    }

    /// Daemon start, records of berth versions that kept a container's `NetworkMode`
    /// network implicit (only its other networks, and a user-defined mode network, had
    /// memberships): gives every such container the membership it implied. Runs once: the
    /// store's version says it did.
    pub(crate) fn migrate_memberships(&self) -> std::result::Result<(), crate::network::NetError> {
        if self.store.user_version()? >= 1 {
            return Ok(());
        }
        let records: Vec<Container> = self.store.containers()?;
        for c in records {
            let mode = c.host_config.network_mode.as_str();
            if matches!(mode, "none" | "host") || mode.starts_with("container:") {
                continue;
            }
            let mode_name = if matches!(mode, "" | "default") {
                DEFAULT_NETWORK
            } else {
                mode
            };
            let net = self.net.find(mode_name);
            let members = self.net.memberships(&c.id);
            let mut m = match members.iter().find(|m| {
                net.as_ref()
                    .map_or(m.network_name == mode_name, |n| m.is_of(n))
            }) {
                Some(m) => m.clone(),
                None => Membership {
                    container_id: c.id.clone(),
                    network_id: net.as_ref().map(|n| n.id.clone()).unwrap_or_default(),
                    network_name: net
                        .as_ref()
                        .map_or_else(|| mode_name.to_string(), |n| n.name.clone()),
                    ..Default::default()
                },
            };
            // Older records derived every user-defined endpoint's links from `HostConfig`.
            if m.links.is_empty() && m.network_name != DEFAULT_NETWORK {
                m.links = c.host_config.links.clone().unwrap_or_default();
            }
            if m.network_name.is_empty() {
                m.network_name = net.map(|n| n.name).unwrap_or_default();
            }
            // First in the list: it used to be joined first.
            let mut list = vec![m.clone()];
            list.extend(members.into_iter().filter(|x| x.key() != m.key()));
            self.store.delete_attachment(&c.id, None)?;
            for x in &list {
                self.store.put_attachment(&c.id, &x.key(), x)?;
            }
            self.net.set_memberships(&c.id, list);
        }
        Ok(self.store.set_user_version(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str) -> Network {
        Network {
            id: format!("{name}-id"),
            name: name.to_string(),
            bridge: format!("br-{name}"),
            subnet: "10.7.0.0/24".parse().unwrap(),
            gateway: "10.7.0.1".parse().unwrap(),
            internal: false,
            ip_range: None,
            subnet6: None,
            gateway6: None,
            ip_range6: None,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: String::new(),
        }
    }

    fn settings(json: &str) -> ct::EndpointSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn endpoint_settings_become_a_membership() {
        let n = net("app");
        let cfg = settings(
            r#"{"Aliases":["web"],"IPAMConfig":{"IPv4Address":"10.7.0.9"},"Links":["db:d"],
                "MacAddress":"02-42-0A-07-00-09","DriverOpts":{"k":"v"},"GwPriority":3}"#,
        );
        let m = membership_from("c", Some(&n), "app", Some(&cfg)).unwrap();
        assert_eq!(m.network_id, "app-id");
        assert_eq!(m.network_name, "app");
        assert_eq!(m.aliases, vec!["web"]);
        assert_eq!(m.ipv4, Some("10.7.0.9".parse().unwrap()));
        assert_eq!(m.mac.as_deref(), Some("02:42:0a:07:00:09"));
        assert_eq!(m.links, vec!["db:d"]);
        assert_eq!(m.driver_opts.get("k").map(String::as_str), Some("v"));
        assert_eq!(m.gw_priority, 3);
        assert_eq!(m.key(), "app-id");
        assert!(m.is_of(&n));
    }

    #[test]
    fn settings_docker_refuses() {
        let n = net("app");
        let e = membership_from(
            "c",
            Some(&n),
            "app",
            Some(&settings(r#"{"IPAMConfig":{"IPv4Address":"10.9.9.9"}}"#)),
        )
        .unwrap_err();
        assert!(e
            .message
            .contains("no configured subnet contains IP address 10.9.9.9"));
        let e = membership_from(
            "c",
            Some(&n),
            "app",
            Some(&settings(r#"{"IPAMConfig":{"IPv4Address":"nope"}}"#)),
        )
        .unwrap_err();
        assert_eq!(e.message, "invalid IPv4 address: nope");
        let e = membership_from(
            "c",
            Some(&n),
            "app",
            Some(&settings(r#"{"MacAddress":"zz"}"#)),
        )
        .unwrap_err();
        assert_eq!(e.message, "invalid MAC address zz");
        let e = membership_from(
            "c",
            Some(&n),
            "app",
            Some(&settings(
                r#"{"DriverOpts":{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.eth0.x=1"}}"#,
            )),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("invalid endpoint settings:\nunrecognised network interface sysctl 'net.ipv4.conf.eth0.x=1'"),
            "{}",
            e.message
        );
        let bridge = net(DEFAULT_NETWORK);
        let alias = settings(r#"{"Aliases":["x"]}"#);
        for (n, name) in [(Some(&bridge), "bridge"), (None, "default")] {
            let e = membership_from("c", n, name, Some(&alias)).unwrap_err();
            assert!(e
                .message
                .contains("only supported for user defined networks"));
        }
    }

    #[test]
    fn a_missing_network_is_kept_by_name() {
        let m = membership_from("c", None, "later", None).unwrap();
        assert_eq!(
            (m.network_id.as_str(), m.network_name.as_str()),
            ("", "later")
        );
        assert_eq!(m.key(), "name:later");
        assert!(m.is_of(&net("later")) && !m.is_of(&net("other")));
        let m = membership_from("c", None, "default", None).unwrap();
        assert_eq!(m.network_name, DEFAULT_NETWORK);
    }
}
