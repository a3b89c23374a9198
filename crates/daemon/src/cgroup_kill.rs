//! Killing every process of a container through its cgroups, without trusting its shim.
//!
//! A shim killed with SIGKILL leaves its container's processes running, re-parented to init
//! but still in the container's cgroups. As containerd does when a shim dies, berthd then kills
//! them all: on cgroup v2 with `cgroup.kill` (Linux 5.14) in one write; elsewhere by freezing
//! the group (so nothing forks while the list is read), sending SIGKILL to every member,
//! thawing, and repeating until the group is empty. Then the cgroup directories are removed
//! (deepest first), as the runtime would have at the container's deletion.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sysinfo::SysInfo;

/// What could not be cleaned up after a container whose shim is gone (logged, never an API
/// error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CgroupKillError {
    #[error("processes {0:?} are still in the container's cgroups")]
    Survivors(BTreeSet<i32>),
    /// Every cgroup directory that could not be removed, and why.
    #[error("{}", removals(.0))]
    Remove(Vec<(PathBuf, std::io::Error)>),
}

fn removals(failed: &[(PathBuf, std::io::Error)]) -> String {
    failed
        .iter()
        .map(|(d, e)| format!("{}: {e}", d.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A container's cgroup directories: `<mount>/<path>` in every hierarchy where it exists.
#[derive(Debug, Clone)]
pub(crate) struct ContainerCgroups {
    dirs: Vec<PathBuf>,
}

impl ContainerCgroups {
    /// `path` is the container's cgroup path (`/<parent>/<id>`).
    pub fn find(sys: &SysInfo, path: &Path) -> ContainerCgroups {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let dirs = sys
            .cgroup_mounts
            .iter()
            .map(|m| m.join(rel))
            .filter(|d| d.is_dir())
            .collect();
        ContainerCgroups { dirs }
    }

    /// Every process in the container's cgroups and their descendants' cgroups.
    pub fn pids(&self) -> BTreeSet<i32> {
        let mut out = BTreeSet::new();
        for d in &self.dirs {
            collect_pids(d, &mut out);
        }
        out
    }

    /// Kills every process of the container and waits (up to `timeout`) until none is left.
    /// `kill` sends SIGKILL to one pid (the real one is [`sigkill`]; tests record). Returns
    /// how many processes were signalled; an error names what is still there.
    pub fn kill_all(
        &self,
        kill: &mut dyn FnMut(i32),
        timeout: Duration,
    ) -> Result<usize, CgroupKillError> {
        if self.dirs.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        let mut signalled = BTreeSet::new();
        // One write kills the whole subtree where the kernel offers it.
        if let Some(d) = self.dirs.iter().find(|d| d.join("cgroup.kill").exists()) {
            let members = self.pids();
            if std::fs::write(d.join("cgroup.kill"), "1").is_ok() {
                signalled.extend(members);
            }
        }
        loop {
            let frozen = self.freeze(true, deadline);
            let members = self.pids();
            for &pid in &members {
                kill(pid);
            }
            signalled.extend(members.iter().copied());
            if frozen {
                self.freeze(false, deadline);
            }
            // Killed processes leave their cgroup as they exit; give them a moment.
            let settle = Instant::now() + Duration::from_millis(200);
            while !self.pids().is_empty() && Instant::now() < settle.min(deadline) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let left = self.pids();
            if left.is_empty() {
                return Ok(signalled.len());
            }
            if Instant::now() >= deadline {
                return Err(CgroupKillError::Survivors(left));
            }
        }
    }

    /// Freezes (or thaws) the group where a freezer exists: `freezer.state` on v1,
    /// `cgroup.freeze` on v2. Returns whether a freezer was used; waits for the frozen state
    /// until `deadline` at most.
    fn freeze(&self, on: bool, deadline: Instant) -> bool {
        for d in &self.dirs {
            let v1 = d.join("freezer.state");
            if v1.exists() {
                let want = if on { "FROZEN" } else { "THAWED" };
                if std::fs::write(&v1, want).is_err() {
                    return false;
                }
                while on && Instant::now() < deadline {
                    match std::fs::read_to_string(&v1) {
                        Ok(s) if s.trim() == want => break,
                        Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                        Err(_) => break,
                    }
                }
                return true;
            }
            let v2 = d.join("cgroup.freeze");
            if v2.exists() {
                return std::fs::write(&v2, if on { "1" } else { "0" }).is_ok();
            }
        }
        false
    }

    /// Removes the (empty) cgroup directories, children first. Errors are left to the
    /// caller's log: a directory that still has members cannot go.
    pub fn remove(&self) -> Result<(), CgroupKillError> {
        let mut errors = Vec::new();
        for d in &self.dirs {
            if let Err(e) = remove_tree(d) {
                errors.push((d.clone(), e));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CgroupKillError::Remove(errors))
        }
    }
}

/// SIGKILL to `pid`; a process already gone is fine.
pub(crate) fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn collect_pids(dir: &Path, out: &mut BTreeSet<i32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), out);
        }
    }
}

/// cgroup directories are removed with rmdir (their files are not real files).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysinfo::CgroupVersion;

    fn sys_with(mounts: &[PathBuf]) -> SysInfo {
        let mut s = SysInfo::all_supported(CgroupVersion::V1);
        s.cgroup_mounts = mounts.to_vec();
        s
    }

    #[test]
    fn finds_the_container_in_every_hierarchy_that_has_it_and_kills_each_member() {
        let root = tempfile::tempdir().unwrap();
        let (freezer, pids, systemd) = (
            root.path().join("freezer"),
            root.path().join("pids"),
            root.path().join("systemd"),
        );
        let rel = Path::new("/berth/abc");
        for m in [&freezer, &pids, &systemd] {
            std::fs::create_dir_all(m.join("berth/abc")).unwrap();
        }
        std::fs::write(freezer.join("berth/abc/freezer.state"), "THAWED\n").unwrap();
        std::fs::write(freezer.join("berth/abc/cgroup.procs"), "10\n11\n").unwrap();
        std::fs::create_dir_all(pids.join("berth/abc/sub")).unwrap();
        std::fs::write(pids.join("berth/abc/sub/cgroup.procs"), "12\n").unwrap();
        let elsewhere = root.path().join("memory");
        let cg = ContainerCgroups::find(
            &sys_with(&[freezer.clone(), pids.clone(), systemd, elsewhere]),
            rel,
        );
        assert_eq!(cg.pids().into_iter().collect::<Vec<_>>(), [10, 11, 12]);
        // A recording "kill" that empties the fake groups as the kernel would.
        let mut killed = Vec::new();
        let (f, p) = (freezer.clone(), pids.clone());
        let mut kill = |pid: i32| {
            killed.push(pid);
            let _ = std::fs::write(f.join("berth/abc/cgroup.procs"), "");
            let _ = std::fs::write(p.join("berth/abc/sub/cgroup.procs"), "");
        };
        let n = cg.kill_all(&mut kill, Duration::from_secs(2)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(killed, [10, 11, 12]);
        // The freezer was used and thawed again.
        assert_eq!(
            std::fs::read_to_string(freezer.join("berth/abc/freezer.state")).unwrap(),
            "THAWED"
        );
    }

    #[test]
    fn a_process_that_does_not_die_is_an_error_after_the_timeout() {
        let root = tempfile::tempdir().unwrap();
        let m = root.path().join("pids");
        std::fs::create_dir_all(m.join("p/c")).unwrap();
        std::fs::write(m.join("p/c/cgroup.procs"), "77\n").unwrap();
        let cg = ContainerCgroups::find(&sys_with(&[m]), Path::new("/p/c"));
        let mut calls = 0;
        let err = cg
            .kill_all(&mut |_| calls += 1, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("77"), "{err}");
        assert!(calls >= 1);
    }

    #[test]
    fn nothing_to_do_without_cgroups() {
        let cg = ContainerCgroups::find(&sys_with(&[]), Path::new("/p/c"));
        assert!(cg.dirs.is_empty());
        assert_eq!(
            cg.kill_all(&mut |_| panic!("no kill"), Duration::ZERO)
                .unwrap(),
            0
        );
        assert!(cg.remove().is_ok());
    }
}
