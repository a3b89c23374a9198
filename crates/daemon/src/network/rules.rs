//! berth's nftables table, rebuilt from the state, and its chain in the host's iptables
//! filter table where that one drops forwarded traffic.

use super::*;

impl NetService {
    /// Replaces berth's nftables table with one built from the current state.
    pub(super) fn apply_rules(&self) -> std::result::Result<(), NetError> {
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
        Ok(self.firewall.apply_nft(&script)?)
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
        match self.firewall.refresh_host_chain(&chain, &bridges) {
            Ok(changed) if !changed.is_empty() => tracing::info!(
                ?changed,
                %chain,
                "the host's iptables FORWARD chain drops: berth's bridges are accepted in {chain}"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("the host's iptables filter table: {e}"),
        }
    }
}
