//! What changes when the daemon runs rootless (berthd's `rootless/`: an unprivileged user's
//! daemon, root only inside a user namespace): published ports also open on the host through
//! the port driver, resource limits need cgroups this user may write, and `info` says so.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// Why the port driver did not open a port on the host.
#[derive(Debug, thiserror::Error)]
pub enum PortDriverError {
    /// The driver could not be reached, or broke off before answering.
    #[error("rootless port driver at {}: {source}", socket.display())]
    Unreachable {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The driver refused, with its reason (e.g. the host port is taken).
    #[error("{0}")]
    Refused(String),
    /// An answer that is neither `ok` nor `error <reason>`.
    #[error("rootless port driver answered {0:?}")]
    Garbled(String),
}

/// Opens published ports on the host for a daemon whose network namespace is not the host's.
pub trait PortDriver: Send + Sync + std::fmt::Debug {
    /// Listens on `host_ip:host_port` (`proto` `tcp` or `udp`) on the host and carries each
    /// connection or datagram flow to `target` in the daemon's namespace, for as long as the
    /// returned descriptor is open.
    fn expose(
        &self,
        proto: &str,
        host_ip: IpAddr,
        host_port: u16,
        target: SocketAddr,
    ) -> Result<OwnedFd, PortDriverError>;
}

/// A rootless daemon's settings.
#[derive(Debug, Clone)]
pub struct RootlessConfig {
    pub port_driver: Arc<dyn PortDriver>,
    /// Containers can get cgroups of their own (cgroup v2 with a delegated subtree); without
    /// them resource limits are refused.
    pub cgroups: bool,
    /// With `cgroups`: the controllers delegated for containers (`memory`, `pids`, `cpu`,
    /// `cpuset`, `io`); a limit of another one is refused.
    pub controllers: Vec<String>,
    /// The host boots with cgroup v2 only (the daemon's namespace shows v2 either way).
    pub host_cgroup_v2: bool,
}

/// What runc (and so Docker rootless) answers when a limit needs a cgroup the rootless
/// daemon cannot create: `controller` is `memory`, `cpu`, `pids`, ...
pub fn limit_refusal(controller: &str) -> String {
    format!("cannot set {controller} limit: container could not join or create cgroup")
}

/// `docker info`'s warning of a rootless daemon without cgroups (Docker's words).
pub fn no_cgroups_warning(cgroup_v2: bool) -> &'static str {
    if cgroup_v2 {
        "WARNING: Running in rootless-mode without cgroups. Systemd is required to enable cgroups in rootless-mode."
    } else {
        "WARNING: Running in rootless-mode without cgroups. To enable cgroups in rootless-mode, you need to boot the system in cgroup v2 mode."
    }
}

/// Refuses the resource limits of `hc` whose controller containers cannot have (no cgroups
/// of their own, or a controller not delegated), with runc's message for the first one
/// (what `docker run` prints under Docker rootless on a cgroup v1 host).
pub(crate) fn check_limits(
    hc: &berth_api_types::container::HostConfig,
    cfg: &RootlessConfig,
) -> crate::Result<()> {
    let wanted = [
        (
            "memory",
            hc.memory > 0
                || hc.memory_reservation > 0
                || hc.memory_swap > 0
                || hc.memory_swappiness.is_some_and(|s| s >= 0)
                || hc.oom_kill_disable == Some(true),
        ),
        (
            "cpu",
            hc.nano_cpus > 0
                || hc.cpu_shares > 0
                || hc.cpu_period > 0
                || hc.cpu_quota > 0
                || hc.cpu_realtime_period > 0
                || hc.cpu_realtime_runtime > 0,
        ),
        (
            "cpuset",
            !hc.cpuset_cpus.is_empty() || !hc.cpuset_mems.is_empty(),
        ),
        ("pids", hc.pids_limit.is_some_and(|p| p > 0)),
        (
            "blkio",
            hc.blkio_weight > 0
                || some(&hc.blkio_weight_device)
                || some(&hc.blkio_device_read_bps)
                || some(&hc.blkio_device_write_bps)
                || some(&hc.blkio_device_read_iops)
                || some(&hc.blkio_device_write_iops),
        ),
    ];
    // blkio limits are the io controller's on cgroup v2.
    let delegated = |c: &str| {
        let v2 = if c == "blkio" { "io" } else { c };
        cfg.cgroups && cfg.controllers.iter().any(|d| d == v2)
    };
    match wanted.iter().find(|(c, set)| *set && !delegated(c)) {
        Some((controller, _)) => Err(berth_api_types::ApiError::invalid(limit_refusal(
            controller,
        ))),
        None => Ok(()),
    }
}

fn some<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NoDriver;
    impl PortDriver for NoDriver {
        fn expose(
            &self,
            _: &str,
            _: IpAddr,
            _: u16,
            _: SocketAddr,
        ) -> Result<OwnedFd, PortDriverError> {
            Err(PortDriverError::Refused("no".into()))
        }
    }

    fn cfg(cgroups: bool) -> RootlessConfig {
        RootlessConfig {
            port_driver: Arc::new(NoDriver),
            cgroups,
            controllers: if cgroups {
                ["cpu", "memory", "pids"].map(String::from).to_vec()
            } else {
                Vec::new()
            },
            host_cgroup_v2: false,
        }
    }

    #[test]
    fn limits_are_refused_without_cgroups_with_runcs_words() {
        let mut hc = berth_api_types::container::HostConfig::default();
        assert!(check_limits(&hc, &cfg(false)).is_ok());
        hc.memory = 64 << 20;
        let e = check_limits(&hc, &cfg(false)).unwrap_err();
        assert_eq!(
            e.message,
            "cannot set memory limit: container could not join or create cgroup"
        );
        assert!(check_limits(&hc, &cfg(true)).is_ok());
        let mut hc = berth_api_types::container::HostConfig {
            pids_limit: Some(10),
            ..Default::default()
        };
        assert!(check_limits(&hc, &cfg(false))
            .unwrap_err()
            .message
            .starts_with("cannot set pids limit"));
        // -1 and 0 mean "no limit".
        hc.pids_limit = Some(-1);
        assert!(check_limits(&hc, &cfg(false)).is_ok());
        hc.nano_cpus = 500_000_000;
        assert!(check_limits(&hc, &cfg(false))
            .unwrap_err()
            .message
            .starts_with("cannot set cpu limit"));
        // Delegated controllers take their limits; one not delegated is still refused.
        assert!(check_limits(&hc, &cfg(true)).is_ok());
        let hc = berth_api_types::container::HostConfig {
            cpuset_cpus: "0".into(),
            ..Default::default()
        };
        assert!(check_limits(&hc, &cfg(true))
            .unwrap_err()
            .message
            .starts_with("cannot set cpuset limit"));
    }
}
