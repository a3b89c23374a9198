//! Container wire types: the create body, inspect, list, wait, top.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go_typed;

pub type Labels = BTreeMap<String, String>;
/// `{"80/tcp": {}}` style sets.
pub type PortSet = BTreeMap<String, Value>;

/// The container `Config` (also the top level of the create body).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub exposed_ports: Option<PortSet>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<HealthConfig>,
    pub args_escaped: Option<bool>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub entrypoint: Option<Vec<String>>,
    pub network_disabled: Option<bool>,
    pub mac_address: Option<String>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<Labels>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub shell: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub test: Option<Vec<String>>,
    pub interval: i64,
    pub timeout: i64,
    pub retries: i64,
    pub start_period: i64,
    pub start_interval: i64,
}

/// `POST /containers/create` body: `Config` fields at the top level plus host and network config
/// (moby's `ContainerConfigWrapper`, which embeds `*Config`). Deserialized by hand with
/// [`crate::gojson::promoted`] rather than `flatten`, so the promoted fields keep Go's rules.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: Config,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
    /// The `platform` query parameter (`os[/arch[/variant]]`), not part of the body.
    #[serde(skip)]
    pub platform: Option<String>,
}

impl<'de> Deserialize<'de> for CreateRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        static FIELDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        let fields = crate::gojson::concat_fields(
            &FIELDS,
            crate::gojson::fields_of::<Config>(),
            &["HostConfig", "NetworkingConfig"],
        );
        d.deserialize_struct("ContainerConfigWrapper", fields, CreateVisitor)
    }
}

struct CreateVisitor;

impl<'de> serde::de::Visitor<'de> for CreateVisitor {
    type Value = CreateRequest;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a container create body")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<CreateRequest, A::Error> {
        let (mut host_config, mut networking_config) = (None, None);
        let config = crate::gojson::promoted(map, |key, map: &mut A| {
            match key {
                "HostConfig" => host_config = map.next_value()?,
                "NetworkingConfig" => networking_config = map.next_value()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(CreateRequest {
            config,
            host_config,
            networking_config,
            platform: None,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `--mount` entries (`HostConfig.Mounts`); kept loosely typed beyond the common keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    pub target: String,
    pub source: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "go_typed::typed::<_, go_typed::BindOptions>"
    )]
    pub bind_options: Option<Value>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "go_typed::typed::<_, go_typed::VolumeOptions>"
    )]
    pub volume_options: Option<Value>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "go_typed::typed::<_, go_typed::TmpfsOptions>"
    )]
    pub tmpfs_options: Option<Value>,
}

/// Defines a struct whose fields are the given ones, then moby's `container.Resources` fields in
/// Go's order (the fields `HostConfig` embeds and `UpdateConfig` sends at its top level), then the
/// `then` ones: one list of the resource fields for every body that carries them.
/// (`KernelMemory`/`KernelMemoryTCP`, deprecated and `omitempty` in Go, are left out.)
macro_rules! with_resources {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $( $(#[$fattr:meta])* pub $field:ident : $ty:ty, )*
        }
        then { $( $(#[$tattr:meta])* pub $tfield:ident : $tty:ty, )* }
    ) => {
        $(#[$attr])*
        pub struct $name {
            $( $(#[$fattr])* pub $field: $ty, )*
            pub cpu_shares: i64,
            pub memory: i64,
            pub nano_cpus: i64,
            pub cgroup_parent: String,
            pub blkio_weight: u16,
            pub blkio_weight_device: Option<Vec<WeightDevice>>,
            pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
            pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
            #[serde(rename = "BlkioDeviceReadIOps")]
            pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
            #[serde(rename = "BlkioDeviceWriteIOps")]
            pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
            pub cpu_period: i64,
            pub cpu_quota: i64,
            pub cpu_realtime_period: i64,
            pub cpu_realtime_runtime: i64,
            pub cpuset_cpus: String,
            pub cpuset_mems: String,
            pub devices: Option<Vec<DeviceMapping>>,
            pub device_cgroup_rules: Option<Vec<String>>,
            #[serde(deserialize_with = "go_typed::typed_list::<_, go_typed::DeviceRequest>")]
            pub device_requests: Option<Vec<Value>>,
            pub memory_reservation: i64,
            pub memory_swap: i64,
            pub memory_swappiness: Option<i64>,
            pub oom_kill_disable: Option<bool>,
            pub pids_limit: Option<i64>,
            pub ulimits: Option<Vec<Ulimit>>,
            pub cpu_count: i64,
            pub cpu_percent: i64,
            #[serde(rename = "IOMaximumIOps")]
            pub io_maximum_iops: u64,
            #[serde(rename = "IOMaximumBandwidth")]
            pub io_maximum_bandwidth: u64,
            $( $(#[$tattr])* pub $tfield: $tty, )*
        }
    };
}

with_resources! {
    /// `HostConfig` with Docker's resource fields inlined.
    #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    pub struct HostConfig {
        pub binds: Option<Vec<String>>,
        #[serde(rename = "ContainerIDFile")]
        pub container_id_file: String,
        pub log_config: LogConfig,
        pub network_mode: String,
        pub port_bindings: Option<PortMap>,
        pub restart_policy: RestartPolicy,
        pub auto_remove: bool,
        pub volume_driver: String,
        pub volumes_from: Option<Vec<String>>,
        pub mounts: Option<Vec<Mount>>,
        pub console_size: Option<Vec<u32>>,
        pub annotations: Option<BTreeMap<String, String>>,
        pub cap_add: Option<Vec<String>>,
        pub cap_drop: Option<Vec<String>>,
        pub cgroupns_mode: String,
        pub dns: Option<Vec<String>>,
        pub dns_options: Option<Vec<String>>,
        pub dns_search: Option<Vec<String>>,
        pub extra_hosts: Option<Vec<String>>,
        pub group_add: Option<Vec<String>>,
        pub ipc_mode: String,
        pub cgroup: String,
        pub links: Option<Vec<String>>,
        pub oom_score_adj: i64,
        pub pid_mode: String,
        pub privileged: bool,
        pub publish_all_ports: bool,
        pub readonly_rootfs: bool,
        pub security_opt: Option<Vec<String>>,
        pub storage_opt: Option<BTreeMap<String, String>>,
        pub tmpfs: Option<BTreeMap<String, String>>,
        #[serde(rename = "UTSMode")]
        pub uts_mode: String,
        pub userns_mode: String,
        pub shm_size: i64,
        pub sysctls: Option<BTreeMap<String, String>>,
        pub runtime: String,
        pub isolation: String,
        pub masked_paths: Option<Vec<String>>,
        pub readonly_paths: Option<Vec<String>>,
    }
    then {
        pub init: Option<bool>,
    }
}

with_resources! {
    /// `POST /containers/{id}/update` body as clients send it (moby's `UpdateConfig`: the
    /// `Resources` fields at the top level plus `RestartPolicy`), every field written as Go writes
    /// it (`KernelMemory`/`KernelMemoryTCP`, `omitempty` and deprecated, are left out). Zero
    /// values and a `RestartPolicy` without a name mean "leave as is".
    #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    pub struct UpdateConfig {
    }
    then {
        pub restart_policy: RestartPolicy,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(
        rename = "IPAMConfig",
        deserialize_with = "go_typed::typed::<_, go_typed::EndpointIpamConfig>"
    )]
    pub ipam_config: Option<Value>,
    pub links: Option<Vec<String>>,
    pub mac_address: String,
    pub aliases: Option<Vec<String>>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub gw_priority: i64,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthcheckResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverData {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    pub ports: PortMap,
    pub sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Value>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Value>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectResponse {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: DriverData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<MountPoint>,
    pub config: Config,
    pub network_settings: NetworkSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub private_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Summary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: Labels,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
    /// API 1.52+ (the api-server leaves it out for older clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<SummaryHealth>,
}

/// The health of a listed container: `none` without a health check or when not running.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryHealth {
    pub status: String,
    pub failing_streak: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryHostConfig {
    pub network_mode: String,
    /// API 1.46+; omitted when the container has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WaitExitError {
    pub message: String,
}

/// `POST /containers/{id}/wait` body, written when the container exits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    pub error: Option<WaitExitError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// One entry of `GET /containers/{id}/changes` (`Kind`: 0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeItem {
    pub path: String,
    pub kind: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_cli_create_fixture() {
        let body =
            include_str!("../tests/fixtures/container-create/docker-cli-28.2.2-create-body.json");
        let req: CreateRequest = serde_json::from_str(body).expect("fixture parses");
        assert_eq!(req.config.image, "nginx:alpine");
        assert_eq!(req.config.entrypoint, Some(vec!["/bin/sh".to_string()]));
        let hc = req.host_config.expect("host config");
        assert_eq!(hc.memory, 67108864);
        assert_eq!(hc.restart_policy.name, "unless-stopped");
        assert_eq!(hc.memory_swappiness, Some(-1));
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(serde_json::from_str::<CreateRequest>(r#"{"Image":"x","Tty":"yes"}"#).is_err());
        assert!(serde_json::from_str::<CreateRequest>(
            r#"{"Image":"x","HostConfig":{"Memory":"1g"}}"#
        )
        .is_err());
    }

    #[test]
    fn inspect_has_every_key() {
        let v = serde_json::to_value(InspectResponse::default()).expect("serializes");
        for key in [
            "Id",
            "State",
            "Config",
            "HostConfig",
            "NetworkSettings",
            "Mounts",
            "LogPath",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert!(v["Config"].get("User").is_some());
        assert!(v["State"].get("ExitCode").is_some());
        assert!(v["NetworkSettings"].get("IPAddress").is_some());
    }
}
