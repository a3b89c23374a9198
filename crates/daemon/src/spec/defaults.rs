//! Docker's defaults for a container: `PATH`, `/dev/shm`, masked and read-only paths, and the
//! create-time defaults stored in a `HostConfig`.

use berth_api_types::container::HostConfig;

/// `PATH` for containers whose image sets none (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default `/dev/shm` size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Paths masked in every unprivileged container (moby `oci.DefaultLinuxSpec`).
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in every unprivileged container.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's create-time defaults, applied to a `HostConfig` before it is stored (moby
/// `adaptContainerSettings` and `create.go`): swap twice the memory limit, a 64 MiB `/dev/shm`,
/// the default masked and read-only paths for unprivileged containers.
pub fn adapt_host_config(hc: &mut HostConfig) {
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory * 2;
    }
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE;
    }
    if !hc.privileged {
        if hc.masked_paths.is_none() {
            hc.masked_paths = Some(DEFAULT_MASKED_PATHS.iter().map(|p| (*p).into()).collect());
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = Some(DEFAULT_READONLY_PATHS.iter().map(|p| (*p).into()).collect());
        }
    }
}
