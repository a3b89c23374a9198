//! Reading the host's `/proc` and `/sys` (below a root, `/` on a real host) into a [`SysInfo`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{CgroupFeatures, CgroupVersion, KernelFeatures, SysInfo};
use crate::sysinfo::parse_kernel_version;

/// The v1 controllers a container's limits use.
const V1_CONTROLLERS: [&str; 8] = [
    "memory", "cpu", "cpuset", "blkio", "pids", "hugetlb", "rdma", "devices",
];

/// One probe of a host tree.
pub struct Probe {
    root: PathBuf,
}

impl Probe {
    pub fn new(root: &Path) -> Probe {
        Probe {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn exists(&self, p: &Path) -> bool {
        p.exists()
    }

    fn read(&self, p: &str) -> Option<String> {
        fs::read_to_string(self.path(p)).ok()
    }

    pub fn run(&self) -> SysInfo {
        let mounts = self.cgroup_mounts();
        let kernel_version = self
            .read("/proc/sys/kernel/osrelease")
            .and_then(|r| parse_kernel_version(&r))
            .unwrap_or((0, 0, 0));
        let (version, mut cgroup) = match &mounts.unified_root {
            Some(root) => (CgroupVersion::V2, self.cgroup_v2(root)),
            None => (CgroupVersion::V1, self.cgroup_v1(&mounts.v1)),
        };
        if cgroup.cpus.is_empty() {
            cgroup.cpus = self
                .read("/sys/devices/system/cpu/online")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
        }
        if cgroup.mems.is_empty() {
            cgroup.mems = self
                .read("/sys/devices/system/node/online")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|| "0".into());
        }
        let v2 = version == CgroupVersion::V2;
        let at_least = |want: (u32, u32, u32)| kernel_version >= want;
        let kernel = KernelFeatures {
            // The `Seccomp:` line exists with CONFIG_SECCOMP (filters come with it on every
            // distribution kernel; `Seccomp_filters:` only exists since 5.9).
            seccomp: self
                .read("/proc/self/status")
                .is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:"))),
            apparmor: self.exists(&self.path("/sys/kernel/security/apparmor"))
                && self
                    .read("/sys/module/apparmor/parameters/enabled")
                    .is_some_and(|s| s.trim() == "Y"),
            selinux: self.exists(&self.path("/sys/fs/selinux/enforce")),
            user_namespaces: self.exists(&self.path("/proc/self/ns/user"))
                && self
                    .read("/proc/sys/user/max_user_namespaces")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .is_none_or(|n| n > 0),
            cgroup_namespaces: self.exists(&self.path("/proc/self/ns/cgroup")),
            overlay_metacopy: self.exists(&self.path("/sys/module/overlay/parameters/metacopy")),
            overlay_redirect_dir: self
                .exists(&self.path("/sys/module/overlay/parameters/redirect_dir")),
            clone_into_cgroup: v2 && at_least((5, 7, 0)),
            cgroup_kill: v2 && at_least((5, 14, 0)),
            openat2: if self.root == Path::new("/") {
                openat2_works()
            } else {
                at_least((5, 6, 0))
            },
            mount_setattr: if self.root == Path::new("/") {
                mount_setattr_exists()
            } else {
                at_least((5, 12, 0))
            },
        };
        let ncpu = if self.root == Path::new("/") {
            crate::sysinfo::ncpu()
        } else {
            crate::cpuset::parse_list(&cgroup.cpus).map_or(1, |s| s.len().max(1) as i64)
        };
        SysInfo {
            cgroup_version: version,
            cgroup,
            kernel,
            ncpu,
            cgroup_mounts: mounts.all,
        }
    }

    /// Where the cgroup hierarchies are mounted, from `/proc/self/mountinfo`.
    fn cgroup_mounts(&self) -> CgroupMounts {
        let mut out = CgroupMounts::default();
        let Some(text) = self.read("/proc/self/mountinfo") else {
            return out;
        };
        for m in berth_sys::mountinfo::parse(&text) {
            let fstype = m.fstype.as_str();
            let mount_point = self.path(&m.mount_point.to_string_lossy());
            if fstype == "cgroup" || fstype == "cgroup2" {
                out.all.push(mount_point.clone());
            }
            match fstype {
                "cgroup2" if mount_point == self.path("/sys/fs/cgroup") => {
                    out.unified_root = Some(mount_point);
                }
                "cgroup" => {
                    for opt in &m.super_options {
                        if V1_CONTROLLERS.contains(&opt.as_str()) {
                            out.v1.entry(opt.to_string()).or_insert(mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn bfq_available(&self) -> bool {
        let Ok(entries) = fs::read_dir(self.path("/sys/block")) else {
            return false;
        };
        entries.flatten().any(|e| {
            fs::read_to_string(e.path().join("queue/scheduler")).is_ok_and(|s| {
                s.split_whitespace()
                    .any(|w| w.trim_matches(|c| c == '[' || c == ']') == "bfq")
            })
        })
    }

    fn cgroup_v1(&self, mounts: &BTreeMap<String, PathBuf>) -> CgroupFeatures {
        let has = |controller: &str, file: &str| {
            mounts
                .get(controller)
                .is_some_and(|m| self.exists(&m.join(file)))
        };
        let mounted = |controller: &str| mounts.contains_key(controller);
        let bfq = mounted("blkio") && self.bfq_available();
        let (cpus, mems) = match mounts.get("cpuset") {
            Some(m) => (
                read_trim(&m.join("cpuset.cpus")),
                read_trim(&m.join("cpuset.mems")),
            ),
            None => (String::new(), String::new()),
        };
        CgroupFeatures {
            memory_limit: mounted("memory"),
            memory_reservation: has("memory", "memory.soft_limit_in_bytes"),
            swap_limit: has("memory", "memory.memsw.limit_in_bytes"),
            memory_swappiness: has("memory", "memory.swappiness"),
            kernel_memory: has("memory", "memory.kmem.limit_in_bytes"),
            kernel_memory_tcp: has("memory", "memory.kmem.tcp.limit_in_bytes"),
            oom_kill_disable: has("memory", "memory.oom_control"),
            cpu_shares: has("cpu", "cpu.shares"),
            cpu_cfs_period: has("cpu", "cpu.cfs_period_us"),
            cpu_cfs_quota: has("cpu", "cpu.cfs_quota_us"),
            cpu_realtime: has("cpu", "cpu.rt_period_us") && has("cpu", "cpu.rt_runtime_us"),
            cpuset: mounted("cpuset") && !cpus.is_empty(),
            cpus,
            mems,
            // CFQ (before Linux 5.0) showed `blkio.weight` everywhere; BFQ's files exist only
            // below the root, whenever BFQ is registered as a scheduler.
            blkio_weight: has("blkio", "blkio.weight") || bfq,
            blkio_weight_device: has("blkio", "blkio.weight_device") || bfq,
            blkio_read_bps: has("blkio", "blkio.throttle.read_bps_device"),
            blkio_write_bps: has("blkio", "blkio.throttle.write_bps_device"),
            blkio_read_iops: has("blkio", "blkio.throttle.read_iops_device"),
            blkio_write_iops: has("blkio", "blkio.throttle.write_iops_device"),
            pids_limit: mounted("pids"),
            hugetlb_sizes: mounts
                .get("hugetlb")
                .map(|m| hugetlb_sizes_v1(m))
                .unwrap_or_default(),
            rdma: mounted("rdma"),
            devices: mounted("devices"),
        }
    }

    fn cgroup_v2(&self, root: &Path) -> CgroupFeatures {
        let controllers: BTreeSet<String> = fs::read_to_string(root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let on = |c: &str| controllers.contains(c);
        let io = on("io");
        let bfq = io && self.bfq_available();
        // blk-iocost provides `io.weight`; its root-only `io.cost.qos` says it is built in.
        let iocost = io && self.exists(&root.join("io.cost.qos"));
        let swap = on("memory")
            && (self.exists(&self.path("/proc/swaps"))
                || self.own_v2_file(root, "memory.swap.max"));
        let (cpus, mems) = if on("cpuset") {
            (
                read_trim(&root.join("cpuset.cpus.effective")),
                read_trim(&root.join("cpuset.mems.effective")),
            )
        } else {
            (String::new(), String::new())
        };
        CgroupFeatures {
            memory_limit: on("memory"),
            memory_reservation: on("memory"),
            swap_limit: swap,
            memory_swappiness: false,
            kernel_memory: false,
            kernel_memory_tcp: false,
            oom_kill_disable: false,
            cpu_shares: on("cpu"),
            cpu_cfs_period: on("cpu"),
            cpu_cfs_quota: on("cpu"),
            cpu_realtime: false,
            cpuset: on("cpuset"),
            cpus,
            mems,
            blkio_weight: bfq || iocost,
            // The runtime writes per-device weights to `io.bfq.weight` only.
            blkio_weight_device: bfq,
            blkio_read_bps: io,
            blkio_write_bps: io,
            blkio_read_iops: io,
            blkio_write_iops: io,
            pids_limit: on("pids"),
            hugetlb_sizes: if on("hugetlb") {
                self.hugepage_sizes()
            } else {
                Vec::new()
            },
            rdma: on("rdma"),
            devices: true,
        }
    }

    /// Whether `file` exists in the daemon's own v2 cgroup (`0::/path` in /proc/self/cgroup).
    fn own_v2_file(&self, root: &Path, file: &str) -> bool {
        self.read("/proc/self/cgroup")
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
            })
            .is_some_and(|p| self.exists(&root.join(p.trim_start_matches('/')).join(file)))
    }

    /// `hugepages-2048kB` under /sys/kernel/mm/hugepages → `2MB`.
    fn hugepage_sizes(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.path("/sys/kernel/mm/hugepages")) else {
            return Vec::new();
        };
        let mut kbs: Vec<u64> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()
            })
            .collect();
        kbs.sort_unstable();
        kbs.into_iter().map(hugepage_size_name).collect()
    }
}

#[derive(Default)]
struct CgroupMounts {
    /// The unified hierarchy when it is mounted at /sys/fs/cgroup itself (a v2 host).
    unified_root: Option<PathBuf>,
    /// v1 controller → mount point.
    v1: BTreeMap<String, PathBuf>,
    /// Every cgroup hierarchy's mount point (v1 controllers, named ones, the unified one).
    all: Vec<PathBuf>,
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `hugetlb.2MB.limit_in_bytes` files of a v1 hugetlb hierarchy → `["2MB", ...]`.
fn hugetlb_sizes_v1(mount: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(mount) else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(".limit_in_bytes")?;
            Some(size.to_string())
        })
        .collect();
    sizes.sort();
    sizes
}

fn hugepage_size_name(kb: u64) -> String {
    if kb >= 1024 * 1024 && kb.is_multiple_of(1024 * 1024) {
        format!("{}GB", kb / (1024 * 1024))
    } else if kb >= 1024 && kb.is_multiple_of(1024) {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    }
}

/// `openat2(2)` on `/`: ENOSYS on kernels before 5.6 (or where seccomp hides it).
fn openat2_works() -> bool {
    let Ok(root) = crate::sys::open_dir(Path::new("/")) else {
        return false;
    };
    use std::os::fd::AsFd;
    crate::sys::open_in_root(root.as_fd(), Path::new("/"), libc::O_PATH).is_ok()
}

/// `mount_setattr(2)` with nothing to do: ENOSYS on kernels before 5.12 (or where seccomp
/// hides it); any other answer means the call exists.
fn mount_setattr_exists() -> bool {
    // SAFETY: a null attr with size 0 and an invalid fd: the kernel only validates the
    // arguments and writes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0,
            std::ptr::null::<u8>(),
            0usize,
        )
    };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host tree: files are created with their parents.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Tree {
            Tree(tempfile::tempdir().expect("tempdir"))
        }
        fn file(&self, p: &str, content: &str) -> &Self {
            let path = self.0.path().join(p.trim_start_matches('/'));
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, content).expect("write");
            self
        }
        fn probe(&self) -> SysInfo {
            Probe::new(self.0.path()).run()
        }
    }

    /// This project's dev VM: hybrid cgroups, no BFQ, kernel 6.18.
    fn hybrid_without_bfq() -> Tree {
        let t = Tree::new();
        let mut mountinfo =
            String::from("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n");
        for (i, c) in ["cpu", "cpuset", "memory", "devices", "blkio", "pids"]
            .iter()
            .enumerate()
        {
            mountinfo.push_str(&format!(
                "{} 31 0:{} / /sys/fs/cgroup/{c} rw,relatime - cgroup cgroup rw,{c}\n",
                32 + i,
                29 + i
            ));
        }
        mountinfo
            .push_str("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
        t.file("/proc/self/mountinfo", &mountinfo)
            .file("/proc/sys/kernel/osrelease", "6.18.44\n")
            .file(
                "/proc/self/status",
                "Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n",
            )
            .file(
                "/sys/block/vda/queue/scheduler",
                "none [mq-deadline] kyber\n",
            );
        for f in [
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.swappiness",
            "memory.kmem.tcp.limit_in_bytes",
            "memory.oom_control",
        ] {
            t.file(&format!("/sys/fs/cgroup/memory/{f}"), "");
        }
        for f in ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"] {
            t.file(&format!("/sys/fs/cgroup/cpu/{f}"), "");
        }
        for f in ["read_bps", "write_bps", "read_iops", "write_iops"] {
            t.file(
                &format!("/sys/fs/cgroup/blkio/blkio.throttle.{f}_device"),
                "",
            );
        }
        t.file("/sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n")
            .file("/sys/fs/cgroup/cpuset/cpuset.mems", "0\n")
            .file("/sys/fs/cgroup/pids/tasks", "");
        t
    }

    #[test]
    fn hybrid_host_counts_as_v1_and_lacks_the_blkio_weight_without_bfq() {
        let s = hybrid_without_bfq().probe();
        assert_eq!(s.cgroup_version, CgroupVersion::V1);
        let c = &s.cgroup;
        assert!(c.memory_limit && c.swap_limit && c.memory_reservation && c.oom_kill_disable);
        assert!(c.cpu_shares && c.cpu_cfs_period && c.cpu_cfs_quota);
        assert!(!c.cpu_realtime, "no cpu.rt_* files");
        assert!(!c.blkio_weight && !c.blkio_weight_device);
        assert!(c.blkio_read_bps && c.blkio_write_bps && c.blkio_read_iops && c.blkio_write_iops);
        assert!(c.pids_limit && c.cpuset && c.devices);
        assert_eq!((c.cpus.as_str(), c.mems.as_str()), ("0-1", "0"));
        assert!(c.hugetlb_sizes.is_empty() && !c.rdma);
        assert_eq!(s.ncpu, 2);
        assert!(s.kernel.seccomp && !s.kernel.apparmor && !s.kernel.selinux);
        assert!(!s.kernel.clone_into_cgroup && !s.kernel.cgroup_kill && s.kernel.openat2);
        let mounts = &s.cgroup_mounts;
        assert_eq!(mounts.len(), 7, "{mounts:?}");
        assert!(mounts.iter().any(|m| m.ends_with("sys/fs/cgroup/unified")));
        assert!(mounts.iter().any(|m| m.ends_with("sys/fs/cgroup/pids")));
    }

    #[test]
    fn bfq_as_a_scheduler_brings_the_blkio_weight() {
        let t = hybrid_without_bfq();
        t.file(
            "/sys/block/vda/queue/scheduler",
            "mq-deadline kyber [bfq] none\n",
        );
        let c = t.probe().cgroup;
        assert!(c.blkio_weight && c.blkio_weight_device);
        // CFQ-era kernels show blkio.weight at the root instead.
        let t = hybrid_without_bfq();
        t.file("/sys/fs/cgroup/blkio/blkio.weight", "500\n");
        let c = t.probe().cgroup;
        assert!(c.blkio_weight && !c.blkio_weight_device);
    }

    #[test]
    fn a_missing_hierarchy_means_no_knob_of_it() {
        let t = hybrid_without_bfq();
        let info = t.0.path().join("proc/self/mountinfo");
        let text = fs::read_to_string(&info).expect("mountinfo");
        let kept: String = text
            .lines()
            .filter(|l| !l.ends_with("rw,pids") && !l.ends_with("rw,blkio"))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&info, kept).expect("write");
        let c = t.probe().cgroup;
        assert!(!c.pids_limit && !c.blkio_read_bps && !c.blkio_weight);
        assert!(c.memory_limit);
    }

    #[test]
    fn unified_host_reads_its_controllers() {
        let t = Tree::new();
        t.file(
            "/proc/self/mountinfo",
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        .file("/proc/sys/kernel/osrelease", "6.1.0-13-amd64\n")
        .file("/proc/swaps", "Filename Type Size Used Priority\n")
        .file(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids\n",
        )
        .file("/sys/fs/cgroup/cpuset.cpus.effective", "0-7\n")
        .file("/sys/fs/cgroup/cpuset.mems.effective", "0\n")
        .file(
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "0\n",
        )
        .file(
            "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            "0\n",
        )
        .file("/sys/block/sda/queue/scheduler", "[mq-deadline] none\n");
        let s = t.probe();
        assert_eq!(s.cgroup_version, CgroupVersion::V2);
        let c = &s.cgroup;
        assert!(c.memory_limit && c.swap_limit && !c.memory_swappiness && !c.oom_kill_disable);
        assert!(c.blkio_read_bps && !c.blkio_weight && !c.blkio_weight_device);
        assert_eq!(c.hugetlb_sizes, vec!["2MB", "1GB"]);
        assert_eq!(s.ncpu, 8);
        assert!(s.kernel.clone_into_cgroup && s.kernel.cgroup_kill);
        // blk-iocost gives io.weight (not per device: the runtime writes those to BFQ).
        t.file("/sys/fs/cgroup/io.cost.qos", "");
        let c = t.probe().cgroup;
        assert!(c.blkio_weight && !c.blkio_weight_device);
    }

    #[test]
    fn escaped_cgroup_mount_points_are_read_unescaped() {
        let t = Tree::new();
        t.file(
            "/proc/self/mountinfo",
            "30 23 0:26 / /sys/fs/cgroup/my\\040tree rw - cgroup cgroup rw,name=x\n",
        );
        assert_eq!(
            t.probe().cgroup_mounts,
            [t.0.path().join("sys/fs/cgroup/my tree")]
        );
    }

    #[test]
    fn hugepage_size_names() {
        assert_eq!(hugepage_size_name(64), "64KB");
    }
}
