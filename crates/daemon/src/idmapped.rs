//! Idmapped mounts of image layers for `--userns-remap` (Linux ≥ 5.19: overlayfs accepts
//! idmapped lower layers): each layer directory is bind-mounted once per mapping, with
//! `mount_setattr(MOUNT_ATTR_IDMAP)` shifting its owners into the range, at
//! `<data-root>/remap/<uid>.<gid>/idmapped/<chain id>`. Nothing is copied; where the kernel or
//! the file system refuses, the caller falls back to shifted copies (`remap_fs`). The real
//! [`crate::host::RemapOps`] calls these.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::userns_remap::IdMap;

/// Serializes the mounts of this process (two starts must not stack two mounts on one path).
static MOUNTING: Mutex<()> = Mutex::new(());

/// Whether the running kernel's overlayfs takes idmapped lower layers (5.19 and later).
pub(crate) fn kernel_supports() -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    (major, minor) >= (5, 19)
}

/// Bind-mounts each `(layer, view)` on `view` with owners shifted into `map`; a view that is
/// a mount point already stays as it is. One user namespace (made on first need) serves them all.
pub(crate) fn mount(map: &IdMap, layers: &[(PathBuf, PathBuf)]) -> io::Result<()> {
    let _one = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let mut userns: Option<OwnedFd> = None;
    for (lower, dst) in layers {
        if crate::mountinfo::is_mount_point(dst) {
            continue;
        }
        std::fs::create_dir_all(dst)?;
        if userns.is_none() {
            userns = Some(userns_with(map)?);
        }
        let ns = userns.as_ref().expect("made just above");
        idmapped_bind(lower, dst, ns).map_err(|e| {
            let _ = std::fs::remove_dir(dst);
            io::Error::new(
                e.kind(),
                format!("idmapped mount of {}: {e}", lower.display()),
            )
        })?;
    }
    Ok(())
}

/// Detaches the idmapped view `view`.
pub(crate) fn unmount(view: &Path) -> io::Result<()> {
    let _one = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
    nix::mount::umount2(view, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// A user namespace with `map`'s uid and gid mappings, held by a file descriptor: a child
/// unshares one and waits (`sleep`), its maps are written, `ns/user` is opened, and the child
/// is killed (the descriptor keeps the namespace).
fn userns_with(map: &IdMap) -> io::Result<OwnedFd> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls unshare(2),
    // which is async-signal-safe; the child is single-threaded, as CLONE_NEWUSER requires.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let res = (|| {
        // `spawn` returned after the exec: the child is in its namespace.
        // The whole map in one write, as the kernel requires.
        let lines = |m: &[crate::userns_remap::IdRange]| {
            m.iter()
                .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
                .collect::<String>()
        };
        std::fs::write(format!("/proc/{pid}/uid_map"), lines(map.uids()))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), lines(map.gids()))?;
        let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(f))
    })();
    let _ = child.kill();
    let _ = child.wait();
    res
}

/// `open_tree(OPEN_TREE_CLONE)` of `src`, `mount_setattr(MOUNT_ATTR_IDMAP)` with `userns`,
/// then `move_mount` onto `dst`.
fn idmapped_bind(src: &Path, dst: &Path, userns: &OwnedFd) -> io::Result<()> {
    let tree = berth_sys::mount_api::clone_tree(src)?;
    berth_sys::mount_api::idmap_tree(&tree, userns)?;
    berth_sys::mount_api::attach_tree(&tree, dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    #[ignore = "needs root and idmapped mounts"]
    fn a_layer_shows_shifted_owners_through_its_idmapped_view() {
        if !kernel_supports() {
            eprintln!("skipping: kernel older than 5.19");
            return;
        }
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let layer = d.path().join("layers/abc/diff");
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::write(layer.join("f"), b"x").unwrap();
        let map = IdMap::from_ranges("u:u", &[(100_000, 65536)], &[(200_000, 65536)], 340).unwrap();
        let view = d.path().join("remap/m/idmapped/abc");
        let pair = [(layer.clone(), view.clone())];
        if let Err(e) = mount(&map, &pair) {
            eprintln!("skipping: {e}");
            return;
        }
        let md = std::fs::metadata(view.join("f")).unwrap();
        let shown = (md.uid(), md.gid());
        // The same again keeps the mount.
        mount(&map, &pair).unwrap();
        unmount(&view).unwrap();
        assert!(!crate::mountinfo::is_mount_point(&view));
        assert_eq!(shown, (100_000, 200_000));
        assert_eq!(std::fs::metadata(layer.join("f")).unwrap().uid(), 0);
    }
}
