//! cgroup v2 delegation for a rootless daemon: where systemd (`Delegate=yes`) or an
//! administrator has handed the user the cgroup berthd was started in, containers get their
//! limits in child cgroups of it, as Docker rootless does with systemd. Elsewhere (v1 and
//! hybrid hosts, a cgroup the user does not own, one shared with other processes) containers
//! run without cgroups of their own and limits are refused.
//!
//! The outer process checks its own cgroup ([`Delegation::check`], over a cgroupfs root so
//! that the decision is tested against a fake tree) and, when it is delegated, moves itself
//! and the inner daemon into a leaf `daemon` (cgroup v2 lets a cgroup with processes have no
//! controllers enabled for its children) and enables the controllers for the children
//! ([`Plan::apply`]). The inner daemon, whose cgroup namespace is rooted at that cgroup,
//! mounts its own view of it at /sys/fs/cgroup (`child.rs`), so containers' cgroups
//! (`/berth/<id>` by default) are made under the delegated one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Controllers a container's limits need; delegation without memory and pids is not used.
const REQUIRED: &[&str] = &["memory", "pids"];
/// Controllers enabled for the children when the cgroup offers them.
const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];
/// The leaf the daemon's own processes move to.
pub const DAEMON_LEAF: &str = "daemon";

/// The cgroup hierarchy as seen from a cgroupfs root (`/sys/fs/cgroup` on the host).
pub struct Delegation {
    pub root: PathBuf,
}

/// What the outer process does on a delegated cgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The delegated cgroup's directory (the daemon's cgroup namespace root).
    pub dir: PathBuf,
    /// The controllers enabled for its children.
    pub controllers: Vec<String>,
}

impl Delegation {
    pub fn host() -> Delegation {
        Delegation {
            root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    /// Whether `own` (the v2 path of this process's cgroup, from the `0::` line of
    /// `/proc/self/cgroup`) is delegated to `uid` and can hold containers' cgroups: a pure v2
    /// host, the directory and its `cgroup.procs` and `cgroup.subtree_control` owned by the
    /// user, memory and pids among its controllers, and no processes in it but `ours` (which
    /// the plan moves out). The error says why not.
    pub fn check(&self, own: &str, uid: u32, ours: &[u32]) -> Result<Plan, String> {
        if !self.root.join("cgroup.controllers").exists() {
            return Err("not a cgroup v2 host (v1 or hybrid: no cgroups for a user)".into());
        }
        let rel = own.trim_start_matches('/');
        if rel.is_empty() {
            return Err("berthd runs in the root cgroup".into());
        }
        let dir = self.root.join(rel);
        for f in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
        ] {
            match std::fs::metadata(&f) {
                Ok(m) if m.uid() == uid => {}
                Ok(_) => {
                    return Err(format!(
                        "{} is not delegated to this user (systemd: run berthd in a unit with Delegate=yes, e.g. systemd-run --user -p Delegate=yes berthd)",
                        f.display()
                    ))
                }
                Err(e) => return Err(format!("{}: {e}", f.display())),
            }
        }
        let offered = read(&dir.join("cgroup.controllers"));
        let offered: Vec<&str> = offered.split_whitespace().collect();
        if let Some(m) = REQUIRED.iter().find(|c| !offered.contains(c)) {
            return Err(format!(
                "the {m} controller is not delegated to {} (it offers: {})",
                dir.display(),
                offered.join(" ")
            ));
        }
        let others: Vec<u32> = read(&dir.join("cgroup.procs"))
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| !ours.contains(p))
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "{} holds other processes too ({others:?}): start berthd in a cgroup of its own",
                dir.display()
            ));
        }
        Ok(Plan {
            controllers: WANTED
                .iter()
                .filter(|c| offered.contains(c))
                .map(|c| c.to_string())
                .collect(),
            dir,
        })
    }
}

impl Plan {
    /// Moves `pids` into the leaf [`DAEMON_LEAF`] and enables the controllers for the
    /// delegated cgroup's children.
    pub fn apply(&self, pids: &[u32]) -> Result<(), String> {
        let leaf = self.dir.join(DAEMON_LEAF);
        std::fs::create_dir_all(&leaf).map_err(|e| format!("creating {}: {e}", leaf.display()))?;
        for p in pids {
            write(&leaf.join("cgroup.procs"), &p.to_string())?;
        }
        let enable: Vec<String> = self.controllers.iter().map(|c| format!("+{c}")).collect();
        write(&self.dir.join("cgroup.subtree_control"), &enable.join(" "))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn write(p: &Path, v: &str) -> Result<(), String> {
    use std::io::Write;
    // cgroupfs takes one write per value; no truncation or creation.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .map_err(|e| format!("opening {}: {e}", p.display()))?;
    f.write_all(v.as_bytes())
        .map_err(|e| format!("writing {v:?} to {}: {e}", p.display()))
}

/// The v2 path of a process's cgroup from its `/proc/<pid>/cgroup` text (the `0::` line).
pub fn v2_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The outer process's part: checks its cgroup and applies the plan for itself and the
/// inner daemon `inner`. The controllers enabled, or why containers get no cgroups.
pub fn delegate(inner: u32) -> Result<Vec<String>, String> {
    let me = std::process::id();
    let own = read(Path::new("/proc/self/cgroup"));
    let own = v2_path(&own).ok_or("no cgroup v2 path in /proc/self/cgroup")?;
    let plan = Delegation::host().check(own, nix::unistd::getuid().as_raw(), &[me, inner])?;
    plan.apply(&[me, inner])?;
    Ok(plan.controllers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroupfs: a v2 root, the user's delegated cgroup `own` with `procs` in it.
    fn tree(v2: bool, offered: &str, procs: &str) -> (tempfile::TempDir, Delegation) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        if v2 {
            std::fs::write(root.join("cgroup.controllers"), "cpuset cpu io memory pids").unwrap();
        }
        let own =
            root.join("user.slice/user-1000.slice/user@1000.service/app.slice/berthd.service");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("cgroup.controllers"), offered).unwrap();
        std::fs::write(own.join("cgroup.procs"), procs).unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        (d, Delegation { root })
    }

    const OWN: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/berthd.service";

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn a_delegated_cgroup_gets_a_daemon_leaf_and_its_controllers_enabled() {
        let (_d, del) = tree(true, "cpu io memory pids", "41\n42\n");
        let plan = del.check(OWN, me(), &[41, 42]).unwrap();
        assert_eq!(plan.dir, del.root.join(OWN.trim_start_matches('/')));
        // cpuset is not offered here, so not asked for.
        assert_eq!(plan.controllers, vec!["cpu", "io", "memory", "pids"]);
        // The kernel gives a new cgroup its files; the fake tree has them beforehand.
        std::fs::create_dir(plan.dir.join("daemon")).unwrap();
        std::fs::write(plan.dir.join("daemon/cgroup.procs"), "").unwrap();
        plan.apply(&[41]).unwrap();
        assert_eq!(read(&plan.dir.join("daemon/cgroup.procs")), "41");
        assert_eq!(
            read(&plan.dir.join("cgroup.subtree_control")),
            "+cpu +io +memory +pids"
        );
    }

    #[test]
    fn hybrid_and_v1_hosts_are_not_delegated() {
        let (_d, del) = tree(false, "cpu io memory pids", "");
        let e = del.check(OWN, me(), &[]).unwrap_err();
        assert!(e.contains("not a cgroup v2 host"), "{e}");
    }

    #[test]
    fn a_cgroup_of_another_owner_is_not_delegated() {
        let (_d, del) = tree(true, "cpu io memory pids", "");
        let e = del.check(OWN, me() + 1, &[]).unwrap_err();
        assert!(e.contains("not delegated to this user"), "{e}");
        assert!(e.contains("Delegate=yes"), "{e}");
    }

    #[test]
    fn memory_and_pids_must_be_offered() {
        let (_d, del) = tree(true, "cpu pids", "");
        let e = del.check(OWN, me(), &[]).unwrap_err();
        assert!(e.contains("memory controller is not delegated"), "{e}");
    }

    #[test]
    fn other_processes_in_the_cgroup_keep_it_from_being_used() {
        let (_d, del) = tree(true, "memory pids", "41\n99\n");
        let e = del.check(OWN, me(), &[41]).unwrap_err();
        assert!(e.contains("other processes too ([99])"), "{e}");
    }

    #[test]
    fn the_root_cgroup_is_not_used() {
        let (_d, del) = tree(true, "memory pids", "");
        assert!(del.check("/", me(), &[]).is_err());
    }

    #[test]
    fn the_v2_path_is_the_0_line() {
        assert_eq!(
            v2_path("12:pids:/user.slice\n0::/user.slice/x.service\n"),
            Some("/user.slice/x.service")
        );
        assert_eq!(v2_path("12:pids:/user.slice\n"), None);
    }
}
