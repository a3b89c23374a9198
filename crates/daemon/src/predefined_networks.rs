//! Docker's two networks without a bridge, `host` and `none`: listed, inspected (with the
//! containers in that mode), never removed or connected to, as in Docker. They have no state:
//! their ids derive from the name, their creation time is the default bridge's.

use std::collections::BTreeMap;

use berth_api_types::network as nt;
use berth_api_types::ApiError;

use crate::Daemon;

/// `(name, driver)` of the predefined networks that are not bridges.
pub(crate) const NETWORKS: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// The stable id of predefined network `name`.
pub(crate) fn id_of(name: &str) -> String {
    crate::network::stable_id(&format!("berth-predefined-network:{name}"))
}

/// The predefined network `key` names (name, full id or id prefix), if any.
pub(crate) fn find(key: &str) -> Option<(&'static str, &'static str)> {
    NETWORKS
        .into_iter()
        .find(|(name, _)| *name == key || (!key.is_empty() && id_of(name).starts_with(key)))
}

/// Refusal of connect/disconnect for a predefined network, as Docker words it.
pub(crate) fn not_connectable(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "container cannot be disconnected from {name} network or connected to {name} network"
    ))
}

impl Daemon {
    /// The view of predefined network `name` with `driver`; `members`: list its containers.
    pub(crate) fn predefined_view(&self, name: &str, driver: &str, members: bool) -> nt::Network {
        let mut containers = BTreeMap::new();
        if members {
            let cs: Vec<_> = crate::lock(&self.containers).values().cloned().collect();
            for c in cs
                .iter()
                .filter(|c| c.host_config.network_mode == name && c.state.status.is_active())
            {
                containers.insert(
                    c.id.clone(),
                    nt::EndpointResource {
                        name: c.name.clone(),
                        endpoint_id: id_of(&format!("{name}/{}", c.id)),
                        ..Default::default()
                    },
                );
            }
        }
        let created = self
            .net
            .all_networks()
            .into_iter()
            .find(|n| n.name == crate::network::DEFAULT_NETWORK)
            .map(|n| n.created)
            .unwrap_or_default();
        nt::Network {
            name: name.to_string(),
            id: id_of(name),
            created,
            scope: "local".to_string(),
            driver: driver.to_string(),
            enable_ipv4: false,
            enable_ipv6: false,
            ipam: nt::Ipam {
                driver: "default".to_string(),
                options: None,
                // An empty list, not null, as dockerd answers for host and none.
                config: Some(Vec::new()),
            },
            containers,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_name_and_id_prefix() {
        assert_eq!(find("host"), Some(("host", "host")));
        assert_eq!(find("none"), Some(("none", "null")));
        assert_eq!(find(&id_of("none")[..12]), Some(("none", "null")));
        assert_eq!(find("bridge"), None);
        assert_eq!(find(""), None);
        assert_ne!(id_of("host"), id_of("none"));
    }
}
