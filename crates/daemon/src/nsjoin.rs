//! `--pid container:<name|id>` and `--ipc container:<name|id>`: a container that joins another
//! running container's PID or IPC namespace, as Docker does (a debugging sidecar that sees
//! the target's processes, or shares its System V IPC). `--network container:` lives in
//! network.rs, with the network service.

use std::path::PathBuf;

use berth_api_types::container as ct;
use berth_api_types::ApiError;

use crate::model::Container;
use crate::{Daemon, Result};

/// The namespaces a container joins instead of making its own.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct NsJoins {
    /// `/proc/<target init>/ns/pid`.
    pub pid: Option<PathBuf>,
    /// `/proc/<target init>/ns/ipc`.
    pub ipc: Option<PathBuf>,
}

/// Docker's IPC modes; `container:<x>` besides.
const IPC_MODES: [&str; 6] = ["", "none", "private", "shareable", "host", "default"];

/// Create-time checks of `PidMode` and `IpcMode`, as Docker answers them.
pub(crate) fn validate_modes(hc: &ct::HostConfig) -> Result<()> {
    let pid = hc.pid_mode.as_str();
    if !(matches!(pid, "" | "host" | "private") || pid.starts_with("container:")) {
        return Err(ApiError::invalid(format!("invalid PID mode: {pid}")));
    }
    let ipc = hc.ipc_mode.as_str();
    if !(IPC_MODES.contains(&ipc) || ipc.starts_with("container:")) {
        return Err(ApiError::invalid(format!("invalid IPC mode: {ipc}")));
    }
    for (flag, mode) in [("pid", pid), ("ipc", ipc)] {
        if mode.strip_prefix("container:").is_some_and(str::is_empty) {
            return Err(ApiError::invalid(format!(
                "invalid {} mode: {mode}",
                flag.to_ascii_uppercase()
            )));
        }
    }
    Ok(())
}

impl Daemon {
    /// `container:<name>` becomes `container:<id>`; a target that does not exist is refused at
    /// create with a 400, as dockerd does (`No such container: <name>`). One removed later
    /// fails the start.
    pub(crate) fn resolve_ns_refs(&self, hc: &mut ct::HostConfig) -> Result<()> {
        for mode in [&mut hc.pid_mode, &mut hc.ipc_mode] {
            if let Some(key) = mode.strip_prefix("container:") {
                let t = self
                    .resolve_container(key)
                    .map_err(|e| ApiError::invalid(e.message))?;
                *mode = format!("container:{}", t.id);
            }
        }
        Ok(())
    }

    /// For a container about to start: the running targets' namespaces it joins.
    pub(crate) fn ns_joins(&self, c: &Container) -> Result<NsJoins> {
        let hc = &c.host_config;
        let join = |mode: &str, what: &str, ns: &str| -> Result<Option<PathBuf>> {
            let Some(key) = mode.strip_prefix("container:") else {
                return Ok(None);
            };
            let t = self.resolve_container(key)?;
            if t.id == c.id {
                return Err(ApiError::invalid(format!(
                    "cannot join own {what} namespace"
                )));
            }
            if !t.state.status.is_active() || t.state.pid <= 0 {
                return Err(ApiError::conflict(format!(
                    "cannot join {what} of a non running container: {}",
                    t.id
                )));
            }
            Ok(Some(PathBuf::from(format!(
                "/proc/{}/ns/{ns}",
                t.state.pid
            ))))
        };
        Ok(NsJoins {
            pid: join(&hc.pid_mode, "PID", "pid")?,
            ipc: join(&hc.ipc_mode, "IPC", "ipc")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(pid: &str, ipc: &str) -> ct::HostConfig {
        ct::HostConfig {
            pid_mode: pid.into(),
            ipc_mode: ipc.into(),
            ..Default::default()
        }
    }

    #[test]
    fn modes_are_checked_like_dockers() {
        for (pid, ipc) in [
            ("", ""),
            ("host", "host"),
            ("container:web", "container:web"),
            ("private", "shareable"),
            ("", "none"),
        ] {
            assert!(validate_modes(&hc(pid, ipc)).is_ok(), "{pid} {ipc}");
        }
        let e = validate_modes(&hc("nope", "")).unwrap_err();
        assert_eq!(e.message, "invalid PID mode: nope");
        let e = validate_modes(&hc("", "weird")).unwrap_err();
        assert_eq!(e.message, "invalid IPC mode: weird");
        assert!(validate_modes(&hc("container:", "")).is_err());
    }
}
