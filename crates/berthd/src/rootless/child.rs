//! The inner half of a rootless berthd: the re-executed daemon moves itself into new user,
//! mount and network namespaces, waits for the outer process to map its ids and attach
//! slirp4netns or pasta, becomes root of the namespace, and then runs as any daemon does.
//!
//! Why the inner half unshares itself (rather than being cloned into namespaces): after
//! `unshare(CLONE_NEWUSER)` the calling process holds every capability in the new namespace
//! for as long as it does not `execve`, and `execve` with an unmapped uid would drop them.
//! Unsharing after the exec, while still single-threaded (the kernel refuses a user
//! namespace to a multi-threaded process), keeps the capabilities whatever the maps say.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::{CHILD_ENV, SLIRP_DNS};

/// Takes the two pipe ends the outer process left in `_BERTH_ROOTLESS_CHILD` (`READ:WRITE`).
fn pipes(value: &str) -> Result<(File, File)> {
    let (r, w) = value
        .split_once(':')
        .with_context(|| format!("bad {CHILD_ENV} {value:?}"))?;
    let fd = |s: &str| -> Result<File> {
        let n: i32 = s
            .parse()
            .with_context(|| format!("bad {CHILD_ENV} {value:?}"))?;
        // Only descriptors 3 and above, which the outer process passed for this purpose
        // and nothing else in this fresh process owns yet.
        if n < 3 {
            bail!("bad {CHILD_ENV} {value:?}");
        }
        // SAFETY: the outer process created this pipe end for us and cleared its
        // close-on-exec flag; no other owner of the descriptor exists in this process.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(n) }))
    };
    Ok((fd(r)?, fd(w)?))
}

/// Enters the namespaces (see the module comment). Must run before any thread is started.
pub fn enter(value: &str, exec_root: &Path) -> Result<()> {
    let (mut from_parent, mut to_parent) = pipes(value)?;
    let parent = nix::unistd::getppid();
    // Not inherited by the shims and containers this daemon starts.
    std::env::remove_var(CHILD_ENV);
    unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWCGROUP,
    )
        .context("creating the user, mount and network namespaces (unshare): are unprivileged user namespaces allowed? scripts/rootless-setup.sh checks")?;
    to_parent
        .write_all(b"1")
        .context("telling the rootless parent")?;
    // The release: `1`, then what became of cgroups (`parent.rs`), up to the pipe's end.
    let mut go = Vec::new();
    from_parent
        .read_to_end(&mut go)
        .context("waiting for the id maps")?;
    if go.first() != Some(&b'1') {
        bail!("the rootless parent gave up before the namespace was ready (see its error)");
    }
    let cgroups = super::release_cgroups(&go[1..]);
    let delegated = cgroups.is_ok();
    let _ = super::CGROUPS.set(cgroups);
    drop(to_parent);
    drop(from_parent);
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context("becoming gid 0 in the user namespace")?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context("becoming uid 0 in the user namespace")?;
    // The outer process holds the host side of this daemon (its network driver, the port driver):
    // if it dies, the daemon shuts down rather than run on cut off. Set after the id changes,
    // which may clear it; a parent gone before that leaves us re-parented.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("asking for the parent-death signal")?;
    if nix::unistd::getppid() != parent {
        bail!("the rootless parent exited while the daemon was starting");
    }
    // newgidmap leaves setgroups(2) allowed: drop the supplementary groups the user had,
    // which the namespace cannot name.
    let _ = setgroups(&[]);
    // Nothing this daemon mounts (rootfs overlays, netns pins) travels back to the host's
    // mount namespace, and nothing of the host's comes in under our feet.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making the mount namespace private")?;
    resolv_conf(exec_root)?;
    unified_cgroups(delegated)?;
    Ok(())
}

/// On cgroup v1 and hybrid hosts the runtime would try to create v1 cgroups, which no
/// unprivileged user may, and fail every start. The daemon's mount namespace gets the
/// unified hierarchy at /sys/fs/cgroup instead (mounted in its own cgroup namespace, which
/// the kernel allows an unprivileged user), where the runtime, finding no cgroup it may
/// write, leaves containers in the daemon's cgroup; limits are refused at create.
///
/// With a `delegated` cgroup (v2, `cgroups.rs`) the same mount shows the delegated cgroup
/// (this namespace's root) as /sys/fs/cgroup, so the containers' cgroups (`/berth/<id>`)
/// are made under it, and what `/proc/<pid>/cgroup` says matches the paths there.
fn unified_cgroups(delegated: bool) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let is_v2 = nix::sys::statfs::statfs(root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if is_v2 && !delegated {
        return Ok(());
    }
    mount(
        Some("cgroup2"),
        root,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("mounting the unified cgroup hierarchy at /sys/fs/cgroup in the daemon's namespace")
}

/// The host's resolv.conf often names a resolver on the host's loopback (systemd-resolved's
/// 127.0.0.53), which the daemon's network namespace cannot reach: the daemon and its
/// containers use the network driver's DNS forwarder instead, bind-mounted over /etc/resolv.conf in
/// the daemon's mount namespace only (as rootlesskit does).
fn resolv_conf(exec_root: &Path) -> Result<()> {
    let dir = exec_root.join("rootless");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join("resolv.conf");
    std::fs::write(&file, format!("nameserver {SLIRP_DNS}\n"))
        .with_context(|| format!("writing {}", file.display()))?;
    mount(
        Some(&file),
        "/etc/resolv.conf",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("bind-mounting the namespace's resolv.conf over /etc/resolv.conf")?;
    Ok(())
}
