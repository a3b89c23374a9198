//! What the API shows of a container's networks (inspect, `ps`), create-time checks of its
//! network mode, and the daemon-start restore of the network state.

use std::collections::BTreeMap;

use berth_api_types::container as ct;

use crate::model::Container;
use crate::network::{stable_id, DEFAULT_NETWORK};
use crate::network_ports::{parse_host_ip, parse_port_key};
use crate::Daemon;

/// A membership as Docker shows a container's network before it runs: what was configured,
/// and Go's zero values for what the endpoint will tell.
fn configured(m: &crate::network::Membership) -> ct::EndpointSettings {
    let ipam_config = (m.ipv4.is_some() || m.ipv6.is_some()).then(|| {
        let mut cfg = serde_json::Map::new();
        if let Some(ip) = m.ipv4 {
            cfg.insert("IPv4Address".into(), ip.to_string().into());
        }
        if let Some(ip) = m.ipv6 {
            cfg.insert("IPv6Address".into(), ip.to_string().into());
        }
        serde_json::Value::Object(cfg)
    });
    ct::EndpointSettings {
        ipam_config,
        links: (!m.links.is_empty()).then(|| m.links.clone()),
        aliases: (!m.aliases.is_empty()).then(|| m.aliases.clone()),
        mac_address: m.mac.clone().unwrap_or_default(),
        driver_opts: (!m.driver_opts.is_empty()).then(|| m.driver_opts.clone()),
        gw_priority: m.gw_priority,
        ..Default::default()
    }
}

impl Daemon {
    /// `NetworkSettings` before the endpoints are filled in ([`with_network`]): the
    /// container's networks as configured (its memberships), or for `host`, `none` and
    /// `container:` modes the mode.
    pub(crate) fn network_settings(&self, c: &Container) -> ct::NetworkSettings {
        let mode = match c.host_config.network_mode.as_str() {
            "" | "default" => DEFAULT_NETWORK,
            m => m,
        };
        let mut networks = BTreeMap::new();
        if matches!(mode, "host" | "none") || mode.starts_with("container:") {
            networks.insert(mode.to_string(), ct::EndpointSettings::default());
        } else {
            for m in self.net.memberships(&c.id) {
                let name = self
                    .net
                    .network_of(&m)
                    .map_or_else(|| m.network_name.clone(), |n| n.name);
                networks.insert(name, configured(&m));
            }
        }
        ct::NetworkSettings {
            networks,
            ..Default::default()
        }
    }

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
            // The configured part (aliases, links, fixed addresses, ...) is the
            // membership's, from `network_settings`.
            let base = ns.networks.get(&net.name).cloned().unwrap_or_default();
            let settings = ct::EndpointSettings {
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
            // As with Docker, a network that does not exist (yet) fails the start, not the
            // create (see `NetService::plan`).
            _ => warnings.extend(forwarding_warning(ipv4_forwarding())),
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
    pub(crate) fn restore_network(&self) -> std::result::Result<(), crate::network::NetError> {
        self.load_networks()?;
        let records: Vec<Container> = self.store.containers()?;
        let running: Vec<String> = records
            .iter()
            .filter(|c| c.state.status.is_active())
            .map(|c| c.id.clone())
            .collect();
        self.net.restore(&running)
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
    fn hosts_that_do_not_forward_get_dockers_warning() {
        assert_eq!(
            forwarding_warning(false).as_deref(),
            Some("IPv4 forwarding is disabled. Networking will not work.")
        );
        assert_eq!(forwarding_warning(true), None);
    }
}
