//! The container's view of the cgroup filesystem made read-only, as runc makes it for a `ro`
//! cgroup mount. libcontainer honours `ro` for cgroup v2, but on v1 and hybrid hosts it
//! mounts a writable tmpfs at `/sys/fs/cgroup` and bind-mounts each hierarchy into it `rw`:
//! a container could then raise its own limits (`pids.max`, `memory.limit_in_bytes`) or make
//! cgroups of its own. Between create and start, the shim remounts every mount at or below
//! `/sys/fs/cgroup` in the container's mount namespace read-only (nosuid, nodev, noexec).

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::mountinfo::{under, Entry};

/// Where containers see their cgroups.
const CGROUP_DIR: &str = "/sys/fs/cgroup";

/// The mount points at or below `dir` of a container's mounts that are still writable,
/// deepest first.
pub fn writable_mounts_under(entries: &[Entry], dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = under(entries, dir)
        .filter(|e| e.writable)
        .map(|e| e.mount_point.clone())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// The remounts that make a container's cgroup mounts read-only (nosuid, nodev, noexec),
/// deepest first; none when they are already.
pub fn seal_ops(entries: &[Entry]) -> Vec<(PathBuf, MsFlags)> {
    writable_mounts_under(entries, Path::new(CGROUP_DIR))
        .into_iter()
        .map(|t| {
            let ro = MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC;
            (t, ro)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "\
1039 1010 0:130 / / rw,relatime - overlay overlay rw,lowerdir=/l
1045 1039 0:133 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1046 1045 0:134 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
1047 1046 0:27 /berth/c1 /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,memory
1048 1046 0:28 /berth/c1 /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct
1049 1046 0:29 / /sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,name=systemd
1050 1039 0:135 / /sys/fs/cgroupx rw - tmpfs tmpfs rw
1051 1046 0:30 / /sys/fs/cgroup/odd\\040name rw - cgroup cgroup rw,pids
";

    #[test]
    fn finds_the_writable_cgroup_mounts_deepest_first() {
        let got = writable_mounts_under(&crate::mountinfo::parse(V1), Path::new(CGROUP_DIR));
        assert_eq!(
            got,
            [
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/odd name",
                "/sys/fs/cgroup",
            ]
            .map(PathBuf::from)
        );
        assert!(writable_mounts_under(&[], Path::new(CGROUP_DIR)).is_empty());
        assert_eq!(seal_ops(&crate::mountinfo::parse(V1)).len(), 4);
    }
}

/// The host's cgroup v1 `name=systemd` hierarchy, when mounted.
const SYSTEMD_HIERARCHY: &str = "/sys/fs/cgroup/systemd";

/// Where the shim went in the `name=systemd` hierarchy: the container's cgroup there (made
/// by the shim) and the shim's own cgroup before, to go back to.
#[derive(Debug)]
pub struct SystemdCgroup {
    dir: PathBuf,
    own: PathBuf,
}

impl SystemdCgroup {
    /// Moves the shim into `rel` (`/<parent>/<id>`) of the `name=systemd` hierarchy, so the
    /// container's processes, created next, start there (and see only that cgroup in their
    /// /sys/fs/cgroup/systemd). `None` on hosts without that hierarchy, or on any error:
    /// the container then stays where the shim is, as before.
    pub fn enter(rel: &Path) -> Option<SystemdCgroup> {
        let root = Path::new(SYSTEMD_HIERARCHY);
        if !root.join("cgroup.procs").exists() {
            return None;
        }
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = crate::cgroup::entries(&own)
            .find(|(ctrls, _)| *ctrls == "name=systemd")
            .map(|(_, path)| root.join(path.trim_start_matches('/')))?;
        let dir = root.join(rel.strip_prefix("/").unwrap_or(rel));
        fs::create_dir_all(&dir).ok()?;
        fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).ok()?;
        Some(SystemdCgroup { dir, own })
    }

    /// The shim goes back to its own cgroup (its children stay).
    pub fn leave(&self) {
        let _ = fs::write(
            self.own.join("cgroup.procs"),
            std::process::id().to_string(),
        );
    }

    /// Removes the container's cgroup once nothing is left in it.
    pub fn remove(&self) {
        let _ = fs::remove_dir(&self.dir);
    }
}
