//! The cgroup v1 file system of a container that joins another process's PID namespace,
//! mounted by the shim instead of the runtime.
//!
//! libcontainer 0.7 (`rootfs/mount.rs`, `mount_cgroup_v1`) finds the cgroups to show a
//! container through `/proc/<pid>` of the host's procfs, with the PID its init has in its own
//! PID namespace. In a joined namespace (a pod's shared one, `--pid container:X`) that PID
//! names another process on the host or none, and the start fails whenever none. So the
//! daemon leaves the cgroup mount out of such a spec and asks the shim
//! (`ShimConfig::mount_cgroups_v1`): between create and start, the shim clones the directory
//! of each hierarchy that holds the container (`open_tree`, in the host's mount namespace),
//! and its helper, inside the container's, lays them out as the runtime would: a tmpfs at
//! `/sys/fs/cgroup`, one directory per hierarchy, symlinks for co-mounted controllers
//! (`cpu -> cpu,cpuacct`), everything read-only unless the container is privileged.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::mountinfo::Entry;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One hierarchy as the container gets it: `/sys/fs/cgroup/<name>` shows the host's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The hierarchy's directory name under `/sys/fs/cgroup` (the host's), e.g. `cpu,cpuacct`.
    pub name: String,
    /// The container's cgroup directory in the host's hierarchy.
    pub source: PathBuf,
}

/// The cgroup v1 hierarchies mounted under `/sys/fs/cgroup` on the host (`host`: the shim's
/// mountinfo), each with the container's cgroup in it (`proc_cgroup`: its init's
/// `/proc/<pid>/cgroup`). A hierarchy the container is not in, or whose mount shows only a
/// part of it that does not hold the container's cgroup, is left out.
pub fn hierarchies(host: &[Entry], proc_cgroup: &str) -> Vec<Hierarchy> {
    let memberships: Vec<(Vec<&str>, &str)> = proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            (!controllers.is_empty()).then(|| (controllers.split(',').collect(), path))
        })
        .collect();
    host.iter()
        .filter(|e| e.fstype == "cgroup" && e.mount_point.parent() == Some(Path::new(CGROUP_ROOT)))
        .filter_map(|e| {
            let name = e.mount_point.file_name()?.to_str()?.to_string();
            let (_, path) = memberships.iter().find(|(controllers, _)| {
                controllers
                    .iter()
                    .all(|c| e.super_options.iter().any(|o| o == c))
            })?;
            let rel = Path::new(path).strip_prefix(&e.root).ok()?;
            Some(Hierarchy {
                name,
                source: e.mount_point.join(rel),
            })
        })
        .collect()
}

/// The hierarchies, each cloned (in the caller's mount namespace) to be attached in the
/// container's.
pub fn clone_all(hs: &[Hierarchy]) -> io::Result<Vec<(String, OwnedFd)>> {
    hs.iter()
        .map(|h| {
            berth_sys::mount_api::clone_tree(&h.source)
                .map(|fd| (h.name.clone(), fd))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", h.source.display())))
        })
        .collect()
}

/// The symlinks a hierarchy of co-mounted controllers gets (`cpu` and `cpuacct` for
/// `cpu,cpuacct`), as `(link name, target)`.
pub fn comount_links(name: &str) -> Vec<(String, String)> {
    if !name.contains(',') {
        return Vec::new();
    }
    name.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| (part.to_string(), name.to_string()))
        .collect()
}

/// Inside the container's mount namespace (the helper of `mountns::run_in`, only system
/// calls): the tmpfs, the cloned hierarchies attached on it, the co-mount symlinks, and with
/// `readonly` all of it read-only.
pub fn attach_all(trees: &[(String, OwnedFd)], readonly: bool) -> nix::Result<()> {
    let root = Path::new(CGROUP_ROOT);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), root, Some("tmpfs"), base, Some("mode=755"))?;
    for (name, tree) in trees {
        let target = root.join(name);
        nix::unistd::mkdir(&target, nix::sys::stat::Mode::from_bits_truncate(0o755))?;
        berth_sys::mount_api::attach_tree(tree, &target)
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        for (link, to) in comount_links(name) {
            let at = root.join(&link);
            if !trees.iter().any(|(n, _)| *n == link) {
                nix::unistd::symlinkat(to.as_str(), None, &at)?;
            }
        }
        if readonly {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                None::<&str>,
            )?;
        }
    }
    if readonly {
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
31 24 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
34 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
35 31 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
36 31 0:31 /sub /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
37 25 0:30 / /mnt/memory rw - cgroup cgroup rw,memory
";
    const PROC: &str = "\
12:pids:/berth/abc
5:memory:/berth/abc
4:cpu,cpuacct:/berth/abc
1:name=systemd:/berth/abc
0::/
";

    #[test]
    fn each_hierarchy_under_the_cgroup_root_with_the_containers_directory() {
        let hs = hierarchies(&crate::mountinfo::parse(HOST), PROC);
        assert_eq!(
            hs,
            [
                Hierarchy {
                    name: "systemd".into(),
                    source: "/sys/fs/cgroup/systemd/berth/abc".into()
                },
                Hierarchy {
                    name: "cpu,cpuacct".into(),
                    source: "/sys/fs/cgroup/cpu,cpuacct/berth/abc".into()
                },
                Hierarchy {
                    name: "memory".into(),
                    source: "/sys/fs/cgroup/memory/berth/abc".into()
                },
            ],
            "cgroup2, mounts elsewhere and a mount of a part without the container are left out"
        );
    }

    #[test]
    fn a_mount_of_the_part_holding_the_container_is_followed() {
        let host = "36 31 0:31 /berth /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let hs = hierarchies(&crate::mountinfo::parse(host), "12:pids:/berth/abc\n");
        assert_eq!(hs[0].source, Path::new("/sys/fs/cgroup/pids/abc"));
    }

    #[test]
    fn comounted_controllers_get_links() {
        assert_eq!(
            comount_links("cpu,cpuacct"),
            [
                ("cpu".to_string(), "cpu,cpuacct".to_string()),
                ("cpuacct".to_string(), "cpu,cpuacct".to_string())
            ]
        );
        assert!(comount_links("memory").is_empty());
    }
}
