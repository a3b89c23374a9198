//! The kernel-facing part of the crate: overlayfs mounts.
//!
//! A container's rootfs is `overlay` with `lowerdir=` the image's layer directories
//! (top-most first, from [`ImageStore::lower_dirs`](crate::store::ImageStore::lower_dirs)),
//! plus a per-container `upperdir` and `workdir` on the same filesystem. An image with
//! no layers uses [`ImageStore::empty_layer_dir`](crate::store::ImageStore::empty_layer_dir)
//! as its single lowerdir, since overlayfs needs at least one.
//!
//! The whole option string must fit in one page (the kernel copies mount data with a
//! page-size limit, 4096 bytes on most machines). When the plain paths do not fit, each
//! lower directory is opened (`O_PATH|O_DIRECTORY`) and passed as `/proc/self/fd/<n>`:
//! the kernel resolves those magic links during `mount(2)` in this process, after which
//! the descriptors are closed. That keeps each lower at ~17 bytes, so ~200 layers fit,
//! without changing the process-wide working directory (which a multi-threaded daemon
//! must never do) and without extra symlink farms on disk.
//!
//! Paths containing `,` or `:` are refused (they are option/lowerdir separators); store
//! paths are hex digests, so this only concerns exotic data roots.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(4096)
}

fn check_path(p: &Path) -> Result<()> {
    let b = p.as_os_str().as_bytes();
    if b.is_empty() || b.iter().any(|c| matches!(c, b',' | b':' | 0)) {
        return Err(Error::InvalidOverlay(format!(
            "path {} is empty or contains ',' or ':'",
            p.display()
        )));
    }
    Ok(())
}

/// The overlay mount data string for these directories.
pub fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    if lowers.is_empty() {
        return Err(Error::InvalidOverlay(
            "at least one lower directory is required (use the empty layer directory)".into(),
        ));
    }
    for p in lowers.iter().map(PathBuf::as_path).chain([upper, work]) {
        check_path(p)?;
    }
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    ))
}

/// Mount an overlay at `target`. `lowers` are top-most first; `upper` and `work` must
/// exist, be empty (work) and live on the same filesystem.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay_inner(lowers, upper, work, target, false, false)
}

/// [`mount_overlay`] with overlayfs' `volatile` option (Linux 5.10+; plain mount before): the
/// overlay never syncs its upper directory, so neither `fsync` inside nor the unmount waits for
/// the disk, and after a machine crash the upper directory cannot be mounted again. For
/// throwaway containers (`--rm`), whose upper directory nobody needs after they end.
pub fn mount_overlay_volatile(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    match mount_overlay_inner(lowers, upper, work, target, false, true) {
        Err(Error::Mount {
            source: nix::errno::Errno::EINVAL,
            ..
        }) => mount_overlay(lowers, upper, work, target),
        r => r,
    }
}

/// Where overlays are mounted with `fuse-overlayfs` instead of the kernel's overlayfs (a
/// rootless daemon on a kernel that refuses overlayfs in a user namespace), set once at start.
static FUSE_OVERLAYFS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Mounts every later overlay with the `fuse-overlayfs` program `bin`.
pub fn use_fuse_overlayfs(bin: PathBuf) {
    let _ = FUSE_OVERLAYFS.set(bin);
}

/// The fuse-overlayfs program overlays are mounted with, if any.
pub fn fuse_overlayfs() -> Option<&'static Path> {
    FUSE_OVERLAYFS.get().map(PathBuf::as_path)
}

/// Set once at start when no overlay can be mounted at all: every later "overlay" is a copy
/// of its layers made in the target directory ([`crate::copyfs`], dockerd's `vfs`).
static COPIES: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// Makes every later overlay a copy (see [`COPIES`]).
pub fn use_copies() {
    let _ = COPIES.set(());
}

/// Whether overlays are copies.
pub fn copies() -> bool {
    COPIES.get().is_some()
}

/// The storage driver's name as `docker info` and `inspect` give it: `vfs` for copies,
/// `fuse-overlayfs`, else `overlay2`.
pub fn driver_name() -> &'static str {
    if copies() {
        "vfs"
    } else if fuse_overlayfs().is_some() {
        "fuse-overlayfs"
    } else {
        "overlay2"
    }
}

/// Before reading the upper directory of an overlay at `target`: with copies, rewrites it
/// from the copy ([`crate::copyfs::refresh_upper`]); nothing otherwise.
pub fn refresh_upper(target: &Path, upper: &Path) -> Result<()> {
    if copies() {
        crate::copyfs::refresh_upper(target, upper)
    } else {
        Ok(())
    }
}

/// The overlay as a FUSE filesystem: `fuse-overlayfs -o lowerdir=...,upperdir=...,workdir=...
/// TARGET`, which mounts and leaves its server running until the overlay is unmounted. It
/// reads the same whiteouts (0/0 devices) and opaque markers the unpacker writes.
fn mount_fuse(
    bin: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    let options = overlay_options(lowers, upper, work)?;
    let out = std::process::Command::new(bin)
        .arg("-o")
        .arg(&options)
        .arg(target)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("run fuse-overlayfs for", target, e))?;
    if !out.status.success() {
        return Err(Error::InvalidOverlay(format!(
            "fuse-overlayfs on {}: {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn mount_overlay_inner(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    force_fds: bool,
    volatile: bool,
) -> Result<()> {
    if copies() {
        return crate::copyfs::populate(lowers, upper, target);
    }
    if let Some(bin) = fuse_overlayfs() {
        return mount_fuse(bin, lowers, upper, work, target);
    }
    let limit = page_size() - 1;
    let suffix = format!(
        "{}{}",
        crate::userns::overlay_mount_suffix(),
        if volatile { ",volatile" } else { "" }
    );
    let mut data = overlay_options(lowers, upper, work)? + &suffix;
    // Keeps the O_PATH descriptors alive until mount(2) has resolved them.
    let mut fds: Vec<OwnedFd> = Vec::new();
    if force_fds || data.len() > limit {
        for l in lowers {
            let fd = open(
                l.as_path(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("open lower directory", l, e.into()))?;
            // SAFETY: `open` just returned this descriptor and nothing else owns it.
            fds.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
        let short: Vec<PathBuf> = fds
            .iter()
            .map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
            .collect();
        data = overlay_options(&short, upper, work)? + &suffix;
        if data.len() > limit {
            return Err(Error::InvalidOverlay(format!(
                "{} lower directories do not fit in the {limit}-byte mount option limit",
                lowers.len()
            )));
        }
    }
    let res = mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    );
    drop(fds);
    res.map_err(|source| Error::Mount {
        op: "mount overlay on",
        target: target.to_path_buf(),
        source,
    })
}

/// Lazily unmount (`MNT_DETACH`) whatever is mounted at `target`.
pub fn unmount(target: &Path) -> Result<()> {
    if copies() {
        // Nothing is mounted: the copy stays, as the container's filesystem.
        return Ok(());
    }
    umount2(target, MntFlags::MNT_DETACH).map_err(|source| Error::Mount {
        op: "unmount",
        target: target.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::store::ImageStore;
    use crate::testutil::{tar_bytes, E};

    #[test]
    fn options_string() {
        let o = overlay_options(
            &[PathBuf::from("/l/2"), PathBuf::from("/l/1")],
            Path::new("/u"),
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(o, "lowerdir=/l/2:/l/1,upperdir=/u,workdir=/w");
        assert!(overlay_options(&[], Path::new("/u"), Path::new("/w")).is_err());
        assert!(
            overlay_options(&[PathBuf::from("/a:b")], Path::new("/u"), Path::new("/w")).is_err()
        );
    }

    fn can_mount() -> bool {
        nix::unistd::geteuid().is_root()
            && fs::read_to_string("/proc/filesystems").is_ok_and(|s| s.contains("overlay"))
    }

    fn mount_two_layers(force_fds: bool, volatile: bool) {
        if !can_mount() {
            eprintln!("skipping: needs root and overlayfs");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let s = ImageStore::open(t.path().join("image")).unwrap();
        let l1 = tar_bytes(&[
            E::Dir("etc/"),
            E::File("etc/keep", b"k"),
            E::File("etc/gone", b"g"),
            E::Dir("opq/"),
            E::File("opq/old", b"o"),
        ]);
        let l2 = tar_bytes(&[
            E::File("etc/.wh.gone", b""),
            E::File("opq/.wh..wh..opq", b""),
            E::File("opq/new", b"n"),
            E::File("top", b"t"),
        ]);
        let i1 = s.apply_layer(None, &l1[..]).unwrap();
        let i2 = s.apply_layer(Some(&i1.chain_id), &l2[..]).unwrap();
        let lowers = s.lower_dirs(&i2.chain_id).unwrap();
        let (upper, work, target) = (t.path().join("u"), t.path().join("w"), t.path().join("m"));
        for d in [&upper, &work, &target] {
            fs::create_dir(d).unwrap();
        }
        if let Err(e) = mount_overlay_inner(&lowers, &upper, &work, &target, force_fds, volatile) {
            if matches!(
                e,
                Error::Mount {
                    source: nix::Error::EPERM | nix::Error::EINVAL,
                    ..
                }
            ) {
                eprintln!("skipping: overlay mount not permitted here: {e}");
                return;
            }
            panic!("{e}");
        }
        let check = || -> std::result::Result<(), String> {
            let r = |p: &str| fs::read(target.join(p)).map_err(|e| format!("{p}: {e}"));
            assert_eq!(r("etc/keep")?, b"k");
            assert_eq!(r("top")?, b"t");
            assert_eq!(r("opq/new")?, b"n");
            assert!(fs::symlink_metadata(target.join("etc/gone")).is_err());
            assert!(fs::symlink_metadata(target.join("opq/old")).is_err());
            fs::write(target.join("written"), b"w").map_err(|e| e.to_string())?;
            assert!(upper.join("written").exists());
            Ok(())
        };
        let res = std::panic::catch_unwind(check);
        unmount(&target).unwrap();
        res.unwrap().unwrap();
        assert!(!target.join("top").exists());
    }

    #[test]
    #[ignore = "needs root (overlay mounts): the privileged tier runs it"]
    fn mounts_two_layers_with_whiteouts() {
        mount_two_layers(false, false);
    }

    #[test]
    #[ignore = "needs root (overlay mounts): the privileged tier runs it"]
    fn mounts_via_proc_fd_paths() {
        mount_two_layers(true, false);
    }

    #[test]
    #[ignore = "needs root (overlay mounts): the privileged tier runs it"]
    fn volatile_overlays_work_the_same() {
        mount_two_layers(false, true);
        mount_two_layers(true, true);
    }

    #[test]
    #[ignore = "needs root (overlay mounts): the privileged tier runs it"]
    fn empty_image_uses_the_empty_layer_dir() {
        if !can_mount() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let s = ImageStore::open(t.path().join("image")).unwrap();
        let (upper, work, target) = (t.path().join("u"), t.path().join("w"), t.path().join("m"));
        for d in [&upper, &work, &target] {
            fs::create_dir(d).unwrap();
        }
        if mount_overlay(&[s.empty_layer_dir()], &upper, &work, &target).is_err() {
            return;
        }
        let n = fs::read_dir(&target).unwrap().count();
        unmount(&target).unwrap();
        assert_eq!(n, 0);
    }
}
