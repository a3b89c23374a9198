//! Facts about the daemon's host that shape every spec, gathered once at start-up.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::resource::{getrlimit, Resource};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType};

use super::caps::{caps_from_mask, ALL_CAPABILITIES};
use crate::sysinfo::parse_kernel_version;
use crate::sysinfo::{CgroupVersion, SysInfo};

/// What the daemon's own process and kernel look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The daemon's bounding set (`CAP_*` names): the most any container can hold.
    pub bounding_caps: Vec<String>,
    /// The daemon's rlimits as (`RLIMIT_NOFILE`-style name, soft, hard); containers inherit
    /// them and cannot be raised above the hard limits.
    pub rlimits: Vec<(String, u64, u64)>,
    /// What the kernel and cgroups support (the cgroup version among it).
    pub sys: SysInfo,
    /// The running kernel's (major, minor, patch), for seccomp `minKernel`.
    pub kernel_version: (u32, u32, u32),
}

/// Every rlimit Linux defines, with the name the OCI spec uses.
pub(crate) const RLIMITS: [(&str, Resource); 16] = [
    ("RLIMIT_CPU", Resource::RLIMIT_CPU),
    ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
    ("RLIMIT_DATA", Resource::RLIMIT_DATA),
    ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    ("RLIMIT_CORE", Resource::RLIMIT_CORE),
    ("RLIMIT_RSS", Resource::RLIMIT_RSS),
    ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", Resource::RLIMIT_AS),
    ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", Resource::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
];

impl HostFacts {
    /// Reads `CapBnd` from `/proc/self/status`, every rlimit, what the kernel and cgroups
    /// support ([`SysInfo`]) and the kernel release. Anything unreadable degrades to "unknown" (empty caps, no rlimits, v1, 0.0.0).
    pub fn detect() -> HostFacts {
        let bounding_caps = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_cap_bnd(&s))
            .map(caps_from_mask)
            .unwrap_or_else(|| {
                tracing::warn!("cannot read CapBnd from /proc/self/status");
                Vec::new()
            });
        let rlimits = RLIMITS
            .iter()
            .filter_map(|(name, res)| {
                getrlimit(*res)
                    .ok()
                    .map(|(soft, hard)| ((*name).to_string(), soft, hard))
            })
            .collect();
        let kernel_version = fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| parse_kernel_version(&r))
            .unwrap_or((0, 0, 0));
        HostFacts {
            bounding_caps,
            rlimits,
            sys: SysInfo::detect(),
            kernel_version,
        }
    }

    /// The host mounts only the unified cgroup v2 hierarchy at `/sys/fs/cgroup`.
    pub fn cgroup_v2(&self) -> bool {
        self.sys.cgroup_v2()
    }

    /// Facts for tests and for callers that want Docker's view of an unrestricted host:
    /// every capability, no rlimits, cgroup v2, a recent kernel.
    pub fn unrestricted() -> HostFacts {
        HostFacts {
            bounding_caps: ALL_CAPABILITIES.iter().map(|c| (*c).to_string()).collect(),
            rlimits: Vec::new(),
            sys: SysInfo::all_supported(CgroupVersion::V2),
            kernel_version: (6, 1, 0),
        }
    }
}

fn parse_cap_bnd(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Directories under `/dev` that hold no devices a privileged container should get
/// (containerd `oci.HostDevices`).
const SKIPPED_DEV_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Every character and block device under `dir` (normally `/dev`), for privileged containers.
pub fn host_devices(dir: &Path) -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    collect_devices(dir, &mut out);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn collect_devices(dir: &Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if !SKIPPED_DEV_DIRS.iter().any(|d| name == *d) {
                collect_devices(&path, out);
            }
            continue;
        }
        // The console is the container's own terminal, set up by the runtime. In a user
        // namespace (rootless) devices are bind-mounted, and /dev/ptmx, which the runtime
        // makes a link to the container's own devpts, cannot take a bind of the host's.
        if name == "console" || (name == "ptmx" && berth_image::userns::in_user_namespace()) {
            continue;
        }
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        let rdev = meta.rdev();
        let built = LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(-1))
            .minor(i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(-1))
            .file_mode(meta.mode() & 0o7777)
            .uid(meta.uid())
            .gid(meta.gid())
            .build();
        if let Ok(dev) = built {
            out.push(dev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_bnd_parses() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        let caps = caps_from_mask(parse_cap_bnd(status).unwrap());
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    }

    #[test]
    fn detect_reads_this_process() {
        let facts = HostFacts::detect();
        assert!(facts.rlimits.iter().any(|(n, _, _)| n == "RLIMIT_NOFILE"));
        assert!(facts.kernel_version.0 >= 3);
    }

    #[test]
    fn host_devices_include_null() {
        let devs = host_devices(Path::new("/dev"));
        let null = devs
            .iter()
            .find(|d| d.path() == Path::new("/dev/null"))
            .expect("/dev/null");
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert!(devs.iter().all(|d| !d.path().starts_with("/dev/pts")));
    }
}
