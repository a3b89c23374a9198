//! The `HostConfig` values Docker 28 fills in at create, so `docker inspect` shows what the
//! container really gets (the spec builder reads the same fields).

use berth_api_types::container::HostConfig;

/// The runtime every berth container runs with (Docker's default runtime name).
pub(crate) const DEFAULT_RUNTIME: &str = "runc";

/// Docker's `daemon.adaptContainerSettings` and create-route normalisation:
/// - `IpcMode` "" becomes "private" (Docker 28's default IPC mode);
/// - `CgroupnsMode` "" becomes "private" on a cgroup v2 host, "host" on v1/hybrid;
/// - `Runtime` "" becomes "runc";
/// - `PidsLimit` 0 or negative (the CLI sends 0 when unset) means unlimited and is stored null;
/// - `MemorySwappiness` -1 (the CLI's "unset") is stored null;
/// - `ConsoleSize` unset is `[0, 0]` (a fixed-size array in Go, never null).
pub(crate) fn fill(hc: &mut HostConfig, cgroup_v2: bool) {
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = "private".into();
    }
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if cgroup_v2 { "private" } else { "host" }.into();
    }
    if hc.runtime.is_empty() {
        hc.runtime = DEFAULT_RUNTIME.into();
    }
    if hc.pids_limit.is_some_and(|l| l <= 0) {
        hc.pids_limit = None;
    }
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }
    if hc.console_size.is_none() {
        hc.console_size = Some(vec![0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_get_dockers_defaults() {
        let mut hc = HostConfig {
            pids_limit: Some(0),
            memory_swappiness: Some(-1),
            ..Default::default()
        };
        fill(&mut hc, true);
        assert_eq!(hc.ipc_mode, "private");
        assert_eq!(hc.cgroupns_mode, "private");
        assert_eq!(hc.runtime, "runc");
        assert_eq!(hc.pids_limit, None);
        assert_eq!(hc.memory_swappiness, None);
        let mut hc = HostConfig::default();
        fill(&mut hc, false);
        assert_eq!(hc.cgroupns_mode, "host");
        let mut hc = HostConfig {
            pids_limit: Some(-1),
            ..Default::default()
        };
        fill(&mut hc, false);
        assert_eq!(hc.pids_limit, None);
    }

    #[test]
    fn values_asked_for_are_kept() {
        let mut hc = HostConfig {
            ipc_mode: "shareable".into(),
            cgroupns_mode: "private".into(),
            pids_limit: Some(42),
            memory_swappiness: Some(10),
            ..Default::default()
        };
        fill(&mut hc, false);
        assert_eq!(hc.ipc_mode, "shareable");
        assert_eq!(hc.cgroupns_mode, "private");
        assert_eq!(hc.pids_limit, Some(42));
        assert_eq!(hc.memory_swappiness, Some(10));
        for mode in ["none", "host", "container:abc"] {
            let mut hc = HostConfig {
                ipc_mode: mode.into(),
                ..Default::default()
            };
            fill(&mut hc, true);
            assert_eq!(hc.ipc_mode, mode);
        }
    }
}
