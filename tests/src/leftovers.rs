//! What a test daemon leaves on the host and its `Drop` removes: interfaces and nftables
//! tables, the processes and directories of its cgroups, mounts below its root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Deletes the interfaces and the nftables table a test daemon created: its default bridge,
/// the bridges of networks it recorded under `<exec-root>/network/bridges`, and the veths
/// on them (deleting a bridge does not delete its ports).
pub fn remove_network_leftovers(exec_root: &Path, bridge: &str) {
    let mut bridges = vec![bridge.to_string()];
    if let Ok(entries) = std::fs::read_dir(exec_root.join("network/bridges")) {
        bridges.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string()),
        );
    }
    for br in &bridges {
        if br.is_empty() || br.contains('/') {
            continue;
        }
        if let Ok(ports) = std::fs::read_dir(format!("/sys/class/net/{br}/brif")) {
            for p in ports.flatten() {
                let _ = Command::new("ip")
                    .args(["link", "del"])
                    .arg(p.file_name())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if Path::new("/sys/class/net").join(br).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", br])
                .stderr(Stdio::null())
                .status();
        }
    }
    let table = format!(
        "berth_{}",
        bridge.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    for family in ["ip", "ip6"] {
        let _ = Command::new("nft")
            .args(["delete", "table", family, &table])
            .stderr(Stdio::null())
            .status();
    }
}

fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let p = e.path().join(parent);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let p = Path::new("/sys/fs/cgroup").join(parent);
    if p.exists() && !out.contains(&p) {
        out.push(p);
    }
    out
}

pub(crate) fn kill_cgroup_members(parent: &str) {
    for dir in cgroup_dirs(parent) {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.path()),
                );
            }
        }
    }
}

pub(crate) fn remove_cgroups(parent: &str) {
    for dir in cgroup_dirs(parent) {
        // Children first: a cgroup directory can only be removed when it has none.
        let mut all = vec![dir.clone()];
        let mut i = 0;
        while i < all.len() {
            if let Ok(entries) = std::fs::read_dir(&all[i]) {
                all.extend(
                    entries
                        .flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.path()),
                );
            }
            i += 1;
        }
        for d in all.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The mount points of `mountinfo` at or below `root`, deepest first. Component-wise:
/// `/var/tmp/berth-test-7-1` must not take `/var/tmp/berth-test-7-10`'s mounts (another test's
/// daemon, still running) with it.
fn mount_points_under(mountinfo: &str, root: &Path) -> Vec<String> {
    let mut points: Vec<String> = berth_sys::mountinfo::parse(mountinfo)
        .into_iter()
        .filter(|e| e.mount_point.starts_with(root))
        .map(|e| e.mount_point.to_string_lossy().into_owned())
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points
}

/// Unmounts everything mounted below `root`, deepest first.
pub fn unmount_under(root: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for p in mount_points_under(&info, root) {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_under_stay_within_the_root() {
        let info = "\
36 25 0:32 / /var/tmp/berth-test-7-1/data/overlay/a/merged rw - overlay overlay rw
37 25 0:4 net:[4026532] /var/tmp/berth-test-7-10/exec/netns/b rw - nsfs nsfs rw
38 25 0:33 / /var/tmp/berth-test-7-1 rw - tmpfs tmpfs rw
39 25 0:4 net:[4026533] /var/tmp/berth-test-7-1/exec/netns/c rw - nsfs nsfs rw
";
        assert_eq!(
            mount_points_under(info, Path::new("/var/tmp/berth-test-7-1")),
            vec![
                "/var/tmp/berth-test-7-1/data/overlay/a/merged",
                "/var/tmp/berth-test-7-1/exec/netns/c",
                "/var/tmp/berth-test-7-1",
            ]
        );
        // A bind whose path has a space is unmounted by its real name.
        let spaced = "40 25 0:34 / /var/tmp/berth-test-7-1/my\\040dir rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points_under(spaced, Path::new("/var/tmp/berth-test-7-1")),
            vec!["/var/tmp/berth-test-7-1/my dir"]
        );
    }
}
