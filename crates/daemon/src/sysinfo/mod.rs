//! What this host's kernel and cgroups support, probed once at daemon start as dockerd's
//! `pkg/sysinfo` does. Create and update consult it (`resource_checks`) to discard, with
//! dockerd's warnings, the limits the kernel cannot enforce instead of failing at start; the
//! spec builder never asks the runtime for a knob it lacks; `docker info` reports it.
//!
//! Everything is read below one root directory (`/` on a real host), so the probe itself is
//! unit-tested against fake `/proc` and `/sys` trees. Nothing here writes to the host.
//!
//! Hybrid hosts (v1 controllers, an empty cgroup2 at `/sys/fs/cgroup/unified`) count as v1:
//! the runtime places containers on the v1 hierarchies there.

mod probe;

use std::path::{Path, PathBuf};

pub use probe::Probe;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    /// As `docker info` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "1",
            CgroupVersion::V2 => "2",
        }
    }
}

/// The cgroup knobs a container limit needs, per dockerd's `SysInfo` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupFeatures {
    pub memory_limit: bool,
    /// Soft limit (`memory.soft_limit_in_bytes` / `memory.low`).
    pub memory_reservation: bool,
    /// Memory+swap limit (`memory.memsw.limit_in_bytes` / `memory.swap.max`).
    pub swap_limit: bool,
    pub memory_swappiness: bool,
    pub kernel_memory: bool,
    pub kernel_memory_tcp: bool,
    pub oom_kill_disable: bool,
    pub cpu_shares: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    pub cpu_realtime: bool,
    pub cpuset: bool,
    /// The CPUs and memory nodes containers may use (`0-3`), empty when unknown.
    pub cpus: String,
    pub mems: String,
    /// `--blkio-weight`: `blkio.weight` / `blkio.bfq.weight` (v1), `io.weight` /
    /// `io.bfq.weight` (v2). Only present with an I/O scheduler that does proportional weights
    /// (BFQ since Linux 5.0, or blk-iocost on v2).
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps: bool,
    pub blkio_write_bps: bool,
    pub blkio_read_iops: bool,
    pub blkio_write_iops: bool,
    pub pids_limit: bool,
    /// Huge page sizes the hugetlb controller limits (`2MB`, `1GB`).
    pub hugetlb_sizes: Vec<String>,
    pub rdma: bool,
    pub devices: bool,
}

/// Kernel features beyond cgroup knobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelFeatures {
    /// `CONFIG_SECCOMP_FILTER`.
    pub seccomp: bool,
    pub apparmor: bool,
    pub selinux: bool,
    pub user_namespaces: bool,
    pub cgroup_namespaces: bool,
    pub overlay_metacopy: bool,
    pub overlay_redirect_dir: bool,
    /// `clone3(CLONE_INTO_CGROUP)`: Linux ≥ 5.7 on a unified (v2) host.
    pub clone_into_cgroup: bool,
    /// `cgroup.kill`: Linux ≥ 5.14 on a unified (v2) host.
    pub cgroup_kill: bool,
    pub openat2: bool,
    /// `mount_setattr(2)` (Linux ≥ 5.12): recursively read-only bind mounts.
    pub mount_setattr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysInfo {
    pub cgroup_version: CgroupVersion,
    pub cgroup: CgroupFeatures,
    pub kernel: KernelFeatures,
    /// CPUs the daemon may use (`--cpus` is checked against it).
    pub ncpu: i64,
    /// Where every cgroup hierarchy is mounted (v1 controllers, named hierarchies such as
    /// `name=systemd`, the unified one): a container's cgroup is `<mount>/<its path>` in each.
    pub cgroup_mounts: Vec<PathBuf>,
}

impl SysInfo {
    /// Probes the running host.
    pub fn detect() -> SysInfo {
        Probe::new(Path::new("/")).run()
    }

    /// A host that supports everything (unit tests, and the spec builder's default facts).
    pub fn all_supported(version: CgroupVersion) -> SysInfo {
        SysInfo {
            cgroup_version: version,
            cgroup: CgroupFeatures {
                memory_limit: true,
                memory_reservation: true,
                swap_limit: true,
                memory_swappiness: version == CgroupVersion::V1,
                kernel_memory: false,
                kernel_memory_tcp: version == CgroupVersion::V1,
                oom_kill_disable: version == CgroupVersion::V1,
                cpu_shares: true,
                cpu_cfs_period: true,
                cpu_cfs_quota: true,
                cpu_realtime: version == CgroupVersion::V1,
                cpuset: true,
                cpus: "0-63".into(),
                mems: "0".into(),
                blkio_weight: true,
                blkio_weight_device: true,
                blkio_read_bps: true,
                blkio_write_bps: true,
                blkio_read_iops: true,
                blkio_write_iops: true,
                pids_limit: true,
                hugetlb_sizes: vec!["2MB".into()],
                rdma: true,
                devices: true,
            },
            kernel: KernelFeatures {
                seccomp: true,
                apparmor: false,
                selinux: false,
                user_namespaces: true,
                cgroup_namespaces: true,
                overlay_metacopy: true,
                overlay_redirect_dir: true,
                clone_into_cgroup: version == CgroupVersion::V2,
                cgroup_kill: version == CgroupVersion::V2,
                openat2: true,
                mount_setattr: true,
            },
            ncpu: 64,
            cgroup_mounts: Vec::new(),
        }
    }

    pub fn cgroup_v2(&self) -> bool {
        self.cgroup_version == CgroupVersion::V2
    }

    /// The `WARNING:` lines `docker info` shows for the cgroup knobs this host lacks, as
    /// dockerd words them (`daemon/info_unix.go`). Some are v1- or v2-only there because
    /// the user could do nothing about them on the other version.
    pub fn info_warnings(&self) -> Vec<String> {
        let c = &self.cgroup;
        let v2 = self.cgroup_v2();
        let mut out = Vec::new();
        let mut warn = |missing: bool, text: &str| {
            if missing {
                out.push(format!("WARNING: {text}"));
            }
        };
        warn(!c.memory_limit, "No memory limit support");
        warn(!c.swap_limit, "No swap limit support");
        warn(
            !c.kernel_memory_tcp && !v2,
            "No kernel memory TCP limit support",
        );
        warn(!c.oom_kill_disable && !v2, "No oom kill disable support");
        warn(!c.cpu_cfs_quota, "No cpu cfs quota support");
        warn(!c.cpu_cfs_period, "No cpu cfs period support");
        warn(!c.cpu_shares, "No cpu shares support");
        warn(!c.cpuset, "No cpuset support");
        warn(!c.blkio_weight && v2, "No io.weight support");
        warn(
            !c.blkio_weight_device && v2,
            "No io.weight (per device) support",
        );
        let throttles = [
            (c.blkio_read_bps, "rbps", "read_bps_device"),
            (c.blkio_write_bps, "wbps", "write_bps_device"),
            (c.blkio_read_iops, "riops", "read_iops_device"),
            (c.blkio_write_iops, "wiops", "write_iops_device"),
        ];
        for (have, v2_name, v1_name) in throttles {
            if v2 {
                warn(!have, &format!("No io.max ({v2_name}) support"));
            } else {
                warn(!have, &format!("No blkio throttle.{v1_name} support"));
            }
        }
        out
    }

    /// `SecurityOptions` of `docker info`.
    pub fn security_options(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.kernel.apparmor {
            out.push("name=apparmor".to_string());
        }
        if self.kernel.seccomp {
            out.push("name=seccomp,profile=builtin".to_string());
        }
        if self.kernel.selinux {
            out.push("name=selinux".to_string());
        }
        // Containers get a private cgroup namespace by default only on v2 (as with Docker).
        if self.kernel.cgroup_namespaces && self.cgroup_v2() {
            out.push("name=cgroupns".to_string());
        }
        out
    }
}

/// CPUs this process may run on.
pub(crate) fn ncpu() -> i64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1)
}

/// Parses a kernel release such as `5.15.0-101-generic` or a profile's `minKernel` (`4.8`).
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32, u32)> {
    let mut parts = release.trim().splitn(3, '.');
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = num(parts.next())?;
    let minor = num(parts.next()).unwrap_or(0);
    let patch = num(parts.next()).unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_with_everything_has_no_info_warnings() {
        assert!(SysInfo::all_supported(CgroupVersion::V1)
            .info_warnings()
            .is_empty());
        assert!(SysInfo::all_supported(CgroupVersion::V2)
            .info_warnings()
            .is_empty());
    }

    #[test]
    fn info_warnings_follow_dockerd_per_cgroup_version() {
        let mut v1 = SysInfo::all_supported(CgroupVersion::V1);
        v1.cgroup.blkio_weight = false;
        v1.cgroup.blkio_read_iops = false;
        v1.cgroup.oom_kill_disable = false;
        // dockerd says nothing of the blkio weight on v1 (nothing to do about it there).
        assert_eq!(
            v1.info_warnings(),
            vec![
                "WARNING: No oom kill disable support",
                "WARNING: No blkio throttle.read_iops_device support",
            ]
        );
        let mut v2 = SysInfo::all_supported(CgroupVersion::V2);
        v2.cgroup.blkio_weight = false;
        v2.cgroup.blkio_weight_device = false;
        v2.cgroup.blkio_write_bps = false;
        v2.cgroup.cpuset = false;
        assert_eq!(
            v2.info_warnings(),
            vec![
                "WARNING: No cpuset support",
                "WARNING: No io.weight support",
                "WARNING: No io.weight (per device) support",
                "WARNING: No io.max (wbps) support",
            ]
        );
    }

    #[test]
    fn security_options_name_what_the_kernel_has() {
        let mut s = SysInfo::all_supported(CgroupVersion::V2);
        assert_eq!(
            s.security_options(),
            vec!["name=seccomp,profile=builtin", "name=cgroupns"]
        );
        s.kernel.apparmor = true;
        s.kernel.seccomp = false;
        s.cgroup_version = CgroupVersion::V1;
        assert_eq!(s.security_options(), vec!["name=apparmor"]);
    }
}
