//! Symlink resolution inside a root directory (moby's `FollowSymlinkInScope`): a path is
//! walked component by component, every absolute link target and every `..` taken relative to
//! the root, so the result never names a file outside it. One implementation for image archives
//! (berth-image) and container root filesystems (the daemon's user lookup, volumes, copies).
//!
//! It is a userspace walk (like securejoin): it reads the tree as it is now, so it guards
//! against hostile content, not against a process concurrently rewriting the tree; where that
//! matters, the daemon opens with `openat2(RESOLVE_IN_ROOT)` instead.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before giving up (Linux's `MAXSYMLINKS` is 40; moby allows 255).
const MAX_SYMLINKS: usize = 255;

/// `path` (as seen from inside `root`) resolved to a path under `root`. Missing components are
/// kept as they are (the caller's open reports `ENOENT`); a symlink loop is `ELOOP`.
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, stored reversed so `pop` yields the next one.
    let mut pending = components(path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Ok(_) | Err(_) => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Whether an error of [`resolve_in_root`] is its symlink-loop refusal.
pub fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_and_dots_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/abs/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("up/x")).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("../../a/./b")).unwrap(),
            root.join("a/b")
        );
        let e = resolve_in_root(root, Path::new("loop/x")).unwrap_err();
        assert!(is_loop(&e), "{e}");
    }
}
