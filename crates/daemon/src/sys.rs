//! Safe wrappers of the kernel's path calls that several rooms share: `openat2` confined to a
//! root, `O_PATH` directory handles, symlink resolution inside a root (berth-image's, one
//! implementation for image archives and container filesystems), and a tree's size.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use berth_image::inroot::resolve_in_root;

/// `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `path` is resolved as if `root`
/// were `/` (absolute symlinks and `..` never leave it).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root,
        rel,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// How often [`openat2`] tries a resolution that raced with mounts elsewhere (EAGAIN).
const OPENAT2_ATTEMPTS: u32 = 64;

/// `openat2(2)` of `rel` below `dir` with the given `O_*` flags (`O_CLOEXEC` is always added)
/// and `RESOLVE_*` rules.
pub fn openat2(dir: BorrowedFd<'_>, rel: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a nul byte"))?;
    // SAFETY: `open_how` is plain old data; all-zero is valid and the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::from((flags | libc::O_CLOEXEC).cast_unsigned());
    how.resolve = resolve;
    // With RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel answers EAGAIN when a mount or rename
    // anywhere on the host raced with the resolution of a `..`: nothing is wrong with the
    // path, so the call is repeated (as the man page advises), a bounded number of times.
    let mut attempts = 0;
    let fd = loop {
        // SAFETY: the path is a valid nul-terminated string and `how` a live struct whose size
        // is passed with it; the kernel returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            break fd;
        }
        let err = io::Error::last_os_error();
        attempts += 1;
        if err.raw_os_error() != Some(libc::EAGAIN) || attempts >= OPENAT2_ATTEMPTS {
            return Err(err);
        }
    };
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
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

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: `stat` is plain old data, filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: `fd` is open; AT_EMPTY_PATH stats the fd itself (also an O_PATH symlink fd).
    let rc = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

pub(crate) fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let c = CString::new(name.as_bytes()).map_err(|_| io::Error::other("nul in name"))?;
    // SAFETY: plain old data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and nul-terminated name; never follows a symlink.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

pub(crate) fn openat_nofollow(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: i32,
) -> io::Result<OwnedFd> {
    let c = CString::new(name.as_bytes()).map_err(|_| io::Error::other("nul in name"))?;
    // SAFETY: valid fd and nul-terminated name; O_NOFOLLOW refuses a symlink.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from openat(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<PathBuf> {
    let c = CString::new(name.as_bytes()).map_err(|_| io::Error::other("nul in name"))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is live and its length passed; the kernel writes at most that much.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    // Negative is an error.
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(PathBuf::from(OsStr::from_bytes(&buf)))
}

pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The bytes of the regular files below `path` (unreadable parts count as empty).
pub(crate) fn dir_size(path: &std::path::Path) -> u64 {
    tree_usage(path).bytes
}

/// What a tree holds: the bytes of its regular files and its inodes (every entry below it, the
/// root included, hard links once per name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TreeUsage {
    pub bytes: u64,
    pub inodes: u64,
}

/// Walks `path` without following symlinks; unreadable parts count as empty.
pub(crate) fn tree_usage(path: &std::path::Path) -> TreeUsage {
    use std::os::unix::fs::MetadataExt;
    let mut usage = TreeUsage::default();
    if std::fs::symlink_metadata(path).is_err() {
        return usage;
    }
    usage.inodes = 1;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            usage.inodes += 1;
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                usage.bytes += md.size();
            }
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_usage_counts_bytes_and_inodes() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(tree_usage(&d.path().join("none")), TreeUsage::default());
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a"), b"12345").unwrap();
        std::fs::write(d.path().join("b"), b"123").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l")).unwrap();
        let u = tree_usage(d.path());
        assert_eq!(u.bytes, 8, "symlinks are not followed");
        assert_eq!(u.inodes, 5, "root, sub, sub/a, b, l");
        assert_eq!(dir_size(d.path()), 8);
    }
}
