//! Namespaces (own, host's, or joined) and the sysctls each allows.

use std::collections::HashMap;
use std::path::Path;

use berth_api_types::container::HostConfig;
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType};

use super::{build_err, SpecError, SpecExtras, SpecInput};

/// The namespace modes that matter for sysctl validation.
pub(super) struct NsModes {
    pub(super) host_network: bool,
    pub(super) host_ipc: bool,
    pub(super) host_uts: bool,
    /// In a new user namespace (`--userns-remap`): how many gids it maps.
    pub(super) userns_gids: Option<u32>,
}

/// Sysctls, validated like runc/Docker: only namespaced keys, and only when the container owns
/// the namespace in question. Docker's defaults for a private network namespace come first.
pub(super) fn sysctls(hc: &HostConfig, ns: &NsModes) -> Result<HashMap<String, String>, SpecError> {
    let mut out = HashMap::new();
    if !ns.host_network {
        out.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        // As dockerd: not in a user namespace (a rootless daemon), where the range must
        // consist of mapped gids and the kernel refuses the whole 31-bit range.
        // In the container's own user namespace (`--userns-remap`) the same holds, for its
        // mapped gids.
        if let Some(n) = ns.userns_gids {
            let top = n.saturating_sub(1);
            out.insert("net.ipv4.ping_group_range".into(), format!("0 {top}"));
        } else if !berth_image::userns::in_user_namespace() {
            out.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
        }
    }
    for (key, value) in hc.sysctls.iter().flatten() {
        let ipc = [
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
        ]
        .contains(&key.as_str())
            || key.starts_with("kernel.shm")
            || key.starts_with("fs.mqueue.");
        if ipc {
            if ns.host_ipc {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host IPC mode"
                )));
            }
        } else if key.starts_with("net.") {
            if ns.host_network {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host network mode"
                )));
            }
        } else if key == "kernel.domainname" || key == "kernel.hostname" {
            if ns.host_uts {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host UTS mode"
                )));
            }
        } else {
            return Err(SpecError::Sysctl(format!(
                "sysctl {key:?} is not in a separate kernel namespace"
            )));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// True for `container:<id>` PID/IPC modes, which berth cannot join yet.
fn joins_container(mode: &str) -> bool {
    mode.starts_with("container:")
}

pub(super) fn namespaces(
    input: &SpecInput,
    extras: &SpecExtras,
    ns: &NsModes,
) -> Result<Vec<oci_spec::runtime::LinuxNamespace>, SpecError> {
    let hc = input.host_config;
    for (what, mode, path) in [
        ("--pid container:", hc.pid_mode.as_str(), extras.pid_ns_path),
        ("--ipc container:", hc.ipc_mode.as_str(), extras.ipc_ns_path),
    ] {
        if joins_container(mode) && path.is_none() {
            return Err(SpecError::Unsupported(format!("{what} without its target")));
        }
    }
    if !hc.pid_mode.is_empty()
        && hc.pid_mode != "host"
        && hc.pid_mode != "private"
        && !joins_container(&hc.pid_mode)
    {
        return Err(SpecError::InvalidParameter(format!(
            "invalid PID mode: {}",
            hc.pid_mode
        )));
    }
    let ns_of = |typ: LinuxNamespaceType, path: Option<&Path>| {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().map_err(build_err)
    };
    let mut out = vec![ns_of(LinuxNamespaceType::Mount, None)?];
    if extras.userns.is_some() {
        // Created first by the runtime, so the namespaces below are owned by it (a network
        // namespace made by the host could not be joined, nor its sysfs mounted).
        out.push(ns_of(LinuxNamespaceType::User, extras.userns_path)?);
    }
    if !ns.host_network {
        out.push(ns_of(LinuxNamespaceType::Network, extras.netns_path)?);
    }
    if !ns.host_uts {
        out.push(ns_of(LinuxNamespaceType::Uts, extras.uts_ns_path)?);
    }
    if hc.pid_mode != "host" {
        out.push(ns_of(LinuxNamespaceType::Pid, extras.pid_ns_path)?);
    }
    if !ns.host_ipc {
        out.push(ns_of(LinuxNamespaceType::Ipc, extras.ipc_ns_path)?);
    }
    let private_cgroupns = match hc.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        "" => input.host.cgroup_v2(),
        other => {
            return Err(SpecError::InvalidParameter(format!(
                "invalid cgroup namespace mode: {other}"
            )))
        }
    };
    if private_cgroupns {
        out.push(ns_of(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(out)
}
