//! The container's cgroup as seen from the host: where its processes are listed and where
//! the kernel counts OOM kills. Works on v1, hybrid and v2 hosts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel counts OOM kills for the container's memory cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OomCounter {
    /// cgroup v1 `memory.oom_control`, line `oom_kill N`.
    V1(PathBuf),
    /// cgroup v2 `memory.events`, line `oom_kill N`.
    V2(PathBuf),
}

impl OomCounter {
    pub fn read(&self) -> Option<u64> {
        let (OomCounter::V1(p) | OomCounter::V2(p)) = self;
        parse_oom_kill(&fs::read_to_string(p).ok()?)
    }
}

/// Cgroup locations of one container, found from `/proc/<init>/cgroup` at create time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Directory whose `cgroup.procs` (recursively) lists the container's processes.
    pub procs_dir: Option<PathBuf>,
    pub oom: Option<OomCounter>,
}

/// The `(controllers, path)` pairs of a `/proc/<pid>/cgroup` text (`hierarchy:controllers:path`
/// lines; controllers are empty for the unified hierarchy).
pub fn entries(proc_cgroup: &str) -> impl Iterator<Item = (&str, &str)> {
    proc_cgroup.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        Some((ctrls, path))
    })
}

impl CgroupInfo {
    /// Reads `/proc/<pid>/cgroup`; `mount_root` is normally `/sys/fs/cgroup`.
    pub fn for_pid(pid: i32, mount_root: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let unified_only = mount_root.join("cgroup.controllers").exists();
        Ok(Self::parse(&text, mount_root, unified_only))
    }

    /// The cgroups of container init `pid`, unless the runtime could not give it cgroups of
    /// its own (a rootless daemon without delegated cgroups leaves it in the shim's): then
    /// none, so that "every process of the container's cgroup" never names the shim, the
    /// daemon or other containers.
    pub fn for_container(pid: i32, mount_root: &Path) -> io::Result<Self> {
        let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let ours = fs::read_to_string("/proc/self/cgroup")?;
        let unified_only = mount_root.join("cgroup.controllers").exists();
        if shares_cgroups(&theirs, &ours, unified_only) {
            return Ok(CgroupInfo::default());
        }
        Self::for_pid(pid, mount_root)
    }

    pub fn parse(proc_cgroup: &str, root: &Path, unified_only: bool) -> Self {
        let mut info = CgroupInfo::default();
        let join = |base: PathBuf, rel: &str| base.join(rel.trim_start_matches('/'));
        let mut v1_memory = None;
        let mut v1_pids = None;
        for (ctrls, path) in entries(proc_cgroup) {
            if ctrls.is_empty() {
                if unified_only {
                    let dir = join(root.to_owned(), path);
                    info.oom = Some(OomCounter::V2(dir.join("memory.events")));
                    info.procs_dir = Some(dir);
                }
                continue;
            }
            let list: Vec<&str> = ctrls.split(',').collect();
            if list.contains(&"memory") {
                v1_memory = Some(join(root.join(ctrls), path));
            }
            if list.contains(&"pids") {
                v1_pids = Some(join(root.join(ctrls), path));
            }
        }
        if !unified_only {
            if let Some(mem) = &v1_memory {
                info.oom = Some(OomCounter::V1(mem.join("memory.oom_control")));
            }
            info.procs_dir = v1_pids.or(v1_memory);
        }
        info
    }

    /// Every pid listed in the cgroup and its descendants, sorted.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut out = Vec::new();
        if let Some(dir) = &self.procs_dir {
            collect_pids(dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Whether two `/proc/<pid>/cgroup` texts name the same cgroup in a hierarchy [`CgroupInfo`]
/// lists processes from (the unified one on v2 hosts, v1's `pids`/`memory` elsewhere).
fn shares_cgroups(a: &str, b: &str, unified_only: bool) -> bool {
    let counted = |text: &str| -> Vec<(String, String)> {
        entries(text)
            .filter(|(c, _)| {
                if unified_only {
                    c.is_empty()
                } else {
                    c.split(',').any(|x| x == "pids" || x == "memory")
                }
            })
            .map(|(c, p)| (c.to_string(), p.to_string()))
            .collect()
    };
    let (a, b) = (counted(a), counted(b));
    a.iter().any(|e| b.contains(e))
}

fn collect_pids(dir: &Path, out: &mut Vec<u32>) -> io::Result<()> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    for entry in fs::read_dir(dir)?.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("oom_kill"))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_left_in_the_shims_cgroup_has_none_of_its_own() {
        let shim = "0::/user.slice/u/session-1.scope\n";
        assert!(shares_cgroups(shim, shim, true));
        assert!(!shares_cgroups("0::/berth/c1\n", shim, true));
        // Hybrid: the unified line stays the shim's, the v1 ones are the container's own.
        let v1 = "4:pids:/berth/c1\n3:memory:/berth/c1\n0::/x\n";
        let v1_shim = "4:pids:/user.slice\n3:memory:/user.slice\n0::/x\n";
        assert!(!shares_cgroups(v1, v1_shim, false));
        assert!(shares_cgroups(v1_shim, v1_shim, false));
    }

    const HYBRID: &str = "12:pids:/berth-test/c1\n11:memory:/berth-test/c1\n\
                          4:cpu,cpuacct:/berth-test/c1\n1:name=systemd:/x\n0::/user.slice\n";

    #[test]
    fn hybrid_uses_v1() {
        let i = CgroupInfo::parse(HYBRID, Path::new("/sys/fs/cgroup"), false);
        assert_eq!(
            i.procs_dir,
            Some(PathBuf::from("/sys/fs/cgroup/pids/berth-test/c1"))
        );
        assert_eq!(
            i.oom,
            Some(OomCounter::V1(PathBuf::from(
                "/sys/fs/cgroup/memory/berth-test/c1/memory.oom_control"
            )))
        );
    }

    #[test]
    fn unified_uses_v2() {
        let i = CgroupInfo::parse("0::/berth/c2\n", Path::new("/sys/fs/cgroup"), true);
        assert_eq!(i.procs_dir, Some(PathBuf::from("/sys/fs/cgroup/berth/c2")));
        assert_eq!(
            i.oom,
            Some(OomCounter::V2(PathBuf::from(
                "/sys/fs/cgroup/berth/c2/memory.events"
            )))
        );
    }

    #[test]
    fn oom_counter_parsing() {
        assert_eq!(
            parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            parse_oom_kill("low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n"),
            Some(1)
        );
        assert_eq!(parse_oom_kill("under_oom 0\n"), None);
    }

    #[test]
    fn pids_walks_children() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.procs"), "5\n3\n").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/cgroup.procs"), "4\n").unwrap();
        let i = CgroupInfo {
            procs_dir: Some(dir.path().to_owned()),
            oom: None,
        };
        assert_eq!(i.pids().unwrap(), vec![3, 4, 5]);
    }
}
