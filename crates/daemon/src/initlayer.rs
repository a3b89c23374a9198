//! The working directory Docker creates in a container's rootfs at start.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use berth_api_types::ApiError;

use crate::archive::{fstatat_nofollow, open_in_root, readlinkat};
use crate::model::Container;
use crate::{internal, Daemon, Result};


/// `mkdir -p` of the absolute `path` inside `root` (new directories get mode 0755), resolving
/// it the way Docker's secure join does: symlinks are followed as if `root` were `/` (an absolute
/// target or `..` never leaves it) and a dangling one gets its target made. Every step opens
/// from `root` with `openat2(RESOLVE_IN_ROOT)`, so even a component swapped for a symlink
/// meanwhile cannot lead outside. Fails with `ENOTDIR` when a component is not a directory.
pub(crate) fn mkdir_all_in_root(root: &Path, path: &str) -> io::Result<()> {
    let root_fd = open_dir(root)?;
    let root_fd = root_fd.as_fd();
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
    let mut todo: VecDeque<OsString> = components(Path::new(path));
    // Always a symlink-free path of a directory inside the root.
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        let parent = open_in_root(root_fd, &cur, dir_flags)?;
        match fstatat_nofollow(parent.as_fd(), &name) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = readlinkat(parent.as_fd(), &name)?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                for c in components(&target).into_iter().rev() {
                    todo.push_front(c);
                }
            }
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => cur.push(&name),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                mkdirat(parent.as_fd(), &name)?;
                cur.push(&name);
            }
            Err(e) => return Err(e),
        }
    }
    open_in_root(root_fd, &cur, dir_flags).map(drop)
}

/// The names of `path` (`..` kept, `.` and the root dropped).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a nul byte"))?;
    // SAFETY: valid nul-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from open(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a nul byte"))?;
    // SAFETY: valid fd and nul-terminated name; mkdirat never follows a final symlink.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Daemon {
    /// Creates the container's working directory in its mounted rootfs, as Docker does at
    /// start (a missing `-w` or image `WORKDIR` is not an error).
    pub(crate) fn create_working_dir(&self, c: &Container) -> Result<()> {
        let wd = &c.config.working_dir;
        if !wd.starts_with('/') {
            // Empty: `/`; relative: refused when the spec is built.
            return Ok(());
        }
        mkdir_all_in_root(&self.runtime.rootfs(&c.id), wd).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTDIR) {
                ApiError::invalid(format!("Cannot mkdir: {wd} is not a directory"))
            } else {
                internal(format!("creating the working directory {wd}: {e}"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkdir_all_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(root.join("etc/passwd"), "").unwrap();
        // An absolute symlink to "/…" means the root's, never the host's.
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        mkdir_all_in_root(&root, "/tmp/new/dir").unwrap();
        let md = std::fs::metadata(root.join("tmp/new/dir")).unwrap();
        assert!(md.is_dir());
        assert_eq!(md.permissions().mode() & 0o7777, 0o755 & !umask());
        mkdir_all_in_root(&root, "/tmp/new/dir").unwrap();
        // A dangling one gets its target made, inside the root.
        mkdir_all_in_root(&root, "/abs/x").unwrap();
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
        mkdir_all_in_root(&root, "/up/y").unwrap();
        assert!(root.join("y").is_dir());
        mkdir_all_in_root(&root, "/../../z").unwrap();
        assert!(root.join("z").is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        std::os::unix::fs::symlink("/loop", root.join("loop")).unwrap();
        let e = mkdir_all_in_root(&root, "/loop/x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = mkdir_all_in_root(&root, "/etc/passwd/x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    }

    fn umask() -> u32 {
        // SAFETY: umask(2) cannot fail; the old value is put back at once.
        unsafe {
            let old = libc::umask(0o022);
            libc::umask(old);
            old
        }
    }
}
