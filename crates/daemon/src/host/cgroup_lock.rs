//! The kernel's cgroup migration lock, which every container start and exec takes: a move
//! into a cgroup (a write to `cgroup.procs`) takes the global threadgroup lock for writing.
//! In the kernel's default mode the first such write after a quiet spell waits for an RCU
//! grace period first (5 to 16 ms measured on a 2-core VM). Two ways out:
//!
//! - [`enable_favordynmods`], asked by berthd's `--cgroup-favordynmods`: the cgroup2 mount
//!   option of Linux 6.0+ that keeps the lock ready for writers (a move then takes ~0.2 ms),
//!   at some cost to `fork` and `exit`. It is one setting for the whole host, every cgroup
//!   hierarchy included, so berthd sets it only when asked, and leaves it set when it exits
//!   (as it leaves IP forwarding on). Linux 6.18 and later keep the cheaper lock until reboot
//!   even when the option is removed.
//! - [`prime_migration`], otherwise: a no-op move started ahead of the real one.

use std::io;
use std::path::{Path, PathBuf};

use crate::mountinfo::{self, Entry};

/// The mount option.
const OPTION: &str = "favordynmods";

/// Whether the host's cgroup mounts already run with `favordynmods` (any hierarchy's flag
/// changes the one lock they share).
pub(crate) fn favordynmods_on(mounts: &[Entry]) -> bool {
    mounts
        .iter()
        .any(|m| m.fstype.starts_with("cgroup") && m.super_options.iter().any(|o| o == OPTION))
}

/// What [`enable_favordynmods`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Favordynmods {
    /// The host had it already.
    AlreadyOn,
    /// The cgroup2 mount at this path was remounted with it.
    Enabled(PathBuf),
}

/// The remount that turns `favordynmods` on: the host's cgroup2 mount and its super options with
/// the flag added (a cgroup2 remount replaces all its flags, so `nsdelegate` and the others are
/// kept). `Err` when there is nothing to remount: cgroup v1 hierarchies cannot change the flag by
/// remount (the kernel's boot parameter `cgroup_favordynmods=true` sets it for them).
fn remount_plan(mounts: &[Entry]) -> Result<Option<(PathBuf, String)>, String> {
    if favordynmods_on(mounts) {
        return Ok(None);
    }
    let m = mounts.iter().find(|m| m.fstype == "cgroup2").ok_or_else(|| {
        "the host has no cgroup2 mount to set it on (cgroup v1 hierarchies take it only at boot: \
         cgroup_favordynmods=true)"
            .to_string()
    })?;
    let mut opts: Vec<&str> = m
        .super_options
        .iter()
        .map(String::as_str)
        .filter(|o| !o.is_empty())
        .collect();
    opts.push(OPTION);
    Ok(Some((m.mount_point.clone(), opts.join(","))))
}

/// Turns the kernel's `favordynmods` on by remounting the host's cgroup2 mount with it, and
/// checks that the kernel kept it (a kernel older than 6.0 refuses the option).
pub fn enable_favordynmods() -> Result<Favordynmods, String> {
    let read = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| mountinfo::parse(&t))
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))
    };
    let Some((point, options)) = remount_plan(&read()?)? else {
        return Ok(Favordynmods::AlreadyOn);
    };
    remount(&point, &options).map_err(|e| {
        format!(
            "remounting {} with {options}: {e} (the kernel may predate the option, Linux 6.0)",
            point.display()
        )
    })?;
    if favordynmods_on(&read()?) {
        Ok(Favordynmods::Enabled(point))
    } else {
        Err(format!(
            "the kernel accepted the remount of {} but does not show {OPTION}",
            point.display()
        ))
    }
}

fn remount(point: &Path, options: &str) -> io::Result<()> {
    nix::mount::mount(
        None::<&str>,
        point,
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT,
        Some(options),
    )
    .map_err(io::Error::from)
}

/// Starts the kernel's cgroup migration lock on its way, off the caller's path.
///
/// Every container start and exec moves a new process into the container's cgroup (the runtime
/// writes its pid to `cgroup.procs`). The first such write after a quiet spell waits for a full
/// RCU grace period before it gets the kernel's global cgroup threadgroup lock — 5 to 20 ms on a
/// small VM, the largest single cost of a container start. Writes that come while another one is
/// in flight, or within a grace period after it, get the lock at once. So at the start of a
/// container start (and of an exec) berthd moves itself into the cgroup it is already in, on a
/// background thread: a no-op move that pays the grace period while the bundle, network and
/// shim are being prepared. Best effort: any error is ignored. Nothing is done when the kernel
/// keeps the lock ready anyway ([`favordynmods_on`]).
pub(super) fn prime_migration() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    static PROCS: OnceLock<Option<PathBuf>> = OnceLock::new();
    static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
    let Some(procs) = PROCS
        .get_or_init(|| {
            if std::fs::read_to_string("/proc/self/mountinfo")
                .is_ok_and(|info| favordynmods_on(&mountinfo::parse(&info)))
            {
                return None;
            }
            let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            own_cgroup_procs(&text, Path::new("/sys/fs/cgroup"))
        })
        .clone()
    else {
        return;
    };
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(move || {
            let _ = std::fs::write(&procs, std::process::id().to_string());
            IN_FLIGHT.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The `cgroup.procs` file of the cgroup this process is in, from `/proc/self/cgroup`: the
/// unified hierarchy's when it is mounted, else the first v1 controller hierarchy's.
fn own_cgroup_procs(proc_cgroup: &str, root: &Path) -> Option<PathBuf> {
    let mut v1 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            let base = if root.join("cgroup.controllers").exists() {
                root.to_owned()
            } else {
                root.join("unified")
            };
            let dir = base.join(rel);
            if dir.join("cgroup.procs").exists() {
                return Some(dir.join("cgroup.procs"));
            }
        } else if v1.is_none() && !ctrls.starts_with("name=") {
            let dir = root.join(ctrls).join(rel);
            if dir.join("cgroup.procs").exists() {
                v1 = Some(dir.join("cgroup.procs"));
            }
        }
    }
    v1
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/pids rw shared:5 - cgroup cgroup rw,pids
27 25 0:24 / /sys/fs/cgroup/unified rw shared:6 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn the_cgroup2_mount_is_remounted_with_its_options_kept() {
        let m = mountinfo::parse(HYBRID);
        assert!(!favordynmods_on(&m));
        assert_eq!(
            remount_plan(&m),
            Ok(Some((
                PathBuf::from("/sys/fs/cgroup/unified"),
                "rw,nsdelegate,memory_recursiveprot,favordynmods".to_string()
            )))
        );
    }

    #[test]
    fn nothing_is_remounted_when_a_hierarchy_has_it_and_v1_alone_cannot() {
        let on = HYBRID.replace("rw,pids", "rw,pids,favordynmods");
        let m = mountinfo::parse(&on);
        assert!(favordynmods_on(&m));
        assert_eq!(remount_plan(&m), Ok(None));
        let v1_only: String = HYBRID.lines().take(2).map(|l| format!("{l}\n")).collect();
        let err = remount_plan(&mountinfo::parse(&v1_only)).unwrap_err();
        assert!(err.contains("cgroup_favordynmods=true"), "{err}");
        // A tmpfs with the word among its options is not a cgroup mount.
        let tmpfs = "25 1 0:22 / /x rw - tmpfs tmpfs rw,favordynmods\n";
        assert!(!favordynmods_on(&mountinfo::parse(tmpfs)));
    }

    #[test]
    fn own_cgroup_procs_prefers_unified_then_v1_controllers() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let hybrid = "5:pids:/berth/d\n1:name=systemd:/berth/d\n0::/berth/d\n";
        std::fs::create_dir_all(r.join("systemd/berth/d")).unwrap();
        std::fs::write(r.join("systemd/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            None,
            "named hierarchies are not used"
        );
        std::fs::create_dir_all(r.join("pids/berth/d")).unwrap();
        std::fs::write(r.join("pids/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            Some(r.join("pids/berth/d/cgroup.procs"))
        );
        std::fs::create_dir_all(r.join("unified/berth/d")).unwrap();
        std::fs::write(r.join("unified/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            Some(r.join("unified/berth/d/cgroup.procs"))
        );
        // Pure v2: the hierarchy is mounted at the root itself.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(v2.path().join("system.slice")).unwrap();
        std::fs::write(v2.path().join("system.slice/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs("0::/system.slice\n", v2.path()),
            Some(v2.path().join("system.slice/cgroup.procs"))
        );
    }
}
