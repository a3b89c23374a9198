//! The file-descriptor mount API (Linux 5.2+; `mount_setattr` 5.12+): a mount cloned as a
//! detached tree, changed, then attached elsewhere, possibly in another mount namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `O_CLOEXEC`.
const OPEN_TREE_CLOEXEC: libc::c_uint = 0o2_000_000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::from)
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `src` (not its submounts),
/// as a bind mount of `src` would be.
pub fn clone_tree(src: &Path) -> io::Result<OwnedFd> {
    let c_src = c_path(src)?;
    // SAFETY: a path syscall with a valid NUL-terminated path; the result is a new fd or -1.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_src.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(raw).map_err(|_| io::Error::other("open_tree: bad descriptor"))?;
    // SAFETY: open_tree returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mount_setattr(MOUNT_ATTR_IDMAP)`: the detached `tree` shows its files' owners through the
/// mapping of the user namespace `userns`.
pub fn idmap_tree(tree: &OwnedFd, userns: &OwnedFd) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::try_from(userns.as_raw_fd()).unwrap_or(u64::MAX),
    };
    let empty = c"";
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is an empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `move_mount`: attaches the detached `tree` at `dst` (resolved in the caller's mount
/// namespace and root).
pub fn attach_tree(tree: &OwnedFd, dst: &Path) -> io::Result<()> {
    let c_dst = c_path(dst)?;
    let empty = c"";
    // SAFETY: valid descriptors and NUL-terminated paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c_dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloning_a_path_that_does_not_exist_is_an_error() {
        let e = clone_tree(Path::new("/nonexistent/berth-sys-test")).unwrap_err();
        // ENOENT, or EPERM/ENOSYS where the caller may not or the kernel cannot.
        assert!(
            matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EPERM | libc::ENOSYS)
            ),
            "{e}"
        );
    }

    #[test]
    fn a_cloned_tree_attaches_where_a_bind_would_go() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: needs root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-sys-mount-{}", std::process::id()));
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        // A thread of its own with a private mount namespace: nothing reaches the host's, and
        // the namespace goes with the thread.
        let (s, d) = (src.clone(), dst.clone());
        let seen = std::thread::spawn(move || -> io::Result<String> {
            // SAFETY: unshare of this thread's mount namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: valid C strings; makes this namespace's mounts private.
            let rc = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            let tree = clone_tree(&s)?;
            attach_tree(&tree, &d)?;
            std::fs::read_to_string(d.join("f"))
        })
        .join()
        .unwrap();
        let host_view = dst.join("f").exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(seen.unwrap(), "x");
        assert!(
            !host_view,
            "the attach leaked out of the thread's namespace"
        );
    }
}
