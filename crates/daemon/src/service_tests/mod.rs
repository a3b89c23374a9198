//! The daemon's services driven through the fake kernel (`host::fake`) and in-process shims
//! (`host::fake_shim`): networks, volumes, exec, logs, events, images, inspect and restore,
//! with no root, no kernel features and no shim process.

mod exec_logs_events;
mod images;
mod inspect_restore;
mod netns_pool;
mod network_ports;
mod networks;
mod rootless;
mod userns_remap;
mod volumes;

use berth_api_types::container::{CreateRequest, EndpointSettings, HostConfig, NetworkingConfig};

use crate::host::testkit::TestDaemon;

/// A container's inspect output as the API shows it (JSON).
pub(super) fn inspect(t: &TestDaemon, id: &str) -> serde_json::Value {
    let r = t.d.container_inspect(id, false).expect("inspect");
    serde_json::to_value(r).expect("inspect json")
}

/// A create request on network `net` with a fixed IPv4 address.
pub(super) fn on_network(net: &str, ip: Option<&str>) -> CreateRequest {
    let mut endpoints = std::collections::BTreeMap::new();
    endpoints.insert(
        net.to_string(),
        EndpointSettings {
            ipam_config: ip.map(|ip| serde_json::json!({ "IPv4Address": ip })),
            ..EndpointSettings::default()
        },
    );
    CreateRequest {
        host_config: Some(HostConfig {
            network_mode: net.into(),
            ..HostConfig::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..CreateRequest::default()
    }
}

/// The fake's recorded calls that start with `op `.
pub(super) fn calls_of(t: &TestDaemon, op: &str) -> Vec<String> {
    let prefix = format!("{op} ");
    t.fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with(&prefix))
        .collect()
}
