//! Network namespaces kept alive by a bind mount (like `ip netns add`, but anywhere, e.g.
//! `<exec-root>/netns/<id>`), so the daemon can plumb a namespace before the container
//! exists and the container's runtime joins it by path.

use std::path::Path;

use crate::{Error, Result};

/// Creates a new, empty network namespace bind-mounted on `path` (a regular file is created).
///
/// `unshare(CLONE_NEWNET)` moves only the calling thread into the new namespace, so it runs
/// on a throwaway thread: no other task of the daemon ever runs inside it. The bind mount of
/// the thread's `ns/net` file is what keeps the namespace alive once the thread is gone.
pub fn create(path: &Path) -> Result<()> {
    make(path, false)
}

/// [`create`], with the namespace's `lo` up (brought up by the same throwaway thread).
pub fn create_with_lo_up(path: &Path) -> Result<()> {
    make(path, true)
}

fn make(path: &Path, lo_up: bool) -> Result<()> {
    placeholder(path)?;
    let target = path.to_path_buf();
    let res = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Io {
            what: "unshare(CLONE_NEWNET)".into(),
            source: e.into(),
        })?;
        if lo_up {
            crate::netlink::Conn::open()
                .and_then(|mut nl| nl.set_up("lo"))
                .map_err(|e| Error::Io {
                    what: "bringing up lo in a new network namespace".into(),
                    source: e.into_io(),
                })?;
        }
        let own = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        nix::mount::mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::Io {
            what: format!("bind-mounting network namespace on {}", target.display()),
            source: e.into(),
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::Command {
            what: "creating network namespace".into(),
            detail: "thread panicked".into(),
        })
    });
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Pins the existing network namespace `source` (e.g. `/proc/<pid>/ns/net` of a container
/// whose runtime made it) by bind-mounting it on `path`, as [`create`] does with a new one, so
/// that it outlives its processes' view of it and [`remove`] undoes it the same way.
pub fn pin(source: &Path, path: &Path) -> Result<()> {
    placeholder(path)?;
    let res = nix::mount::mount(
        Some(source),
        path,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::Io {
        what: format!("bind-mounting {} on {}", source.display(), path.display()),
        source: e.into(),
    });
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// The empty file (and its directory) a namespace is bind-mounted on.
fn placeholder(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(crate::io_err(format!("creating {}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(crate::io_err(format!("creating {}", path.display())))?;
    Ok(())
}

/// Whether `path` is a mounted network namespace.
pub fn is_mounted(path: &Path) -> bool {
    // An nsfs bind mount reports the namespace inode on a device different from the file's
    // directory; an unmounted placeholder is an ordinary empty file.
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

/// Unmounts and removes a namespace made by [`create`]; missing ones are fine. The namespace
/// itself goes away once no process is left in it.
pub fn remove(path: &Path) -> Result<()> {
    if is_mounted(path) {
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(|e| Error::Io {
            what: format!("unmounting {}", path.display()),
            source: e.into(),
        })?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            what: format!("removing {}", path.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}
