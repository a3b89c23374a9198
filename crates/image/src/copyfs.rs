//! The copying storage driver (dockerd's `vfs`): where no overlay can be mounted (a rootless
//! daemon whose kernel refuses overlayfs in a user namespace and without fuse-overlayfs), a
//! container's root filesystem is a full copy of its layers, made once in the directory the
//! overlay would be mounted on. The layers stay in overlay form, so everything that reads an
//! upper directory (`docker diff`, `commit`, build steps) keeps working: before it reads,
//! [`refresh_upper`] rewrites the upper directory as what an overlay would hold, by comparing
//! the copy with the layers (type, owner, mode, size, modification time, link target; as
//! dockerd's naive diff does), deletions as whiteouts.
//!
//! The copy's layers are remembered next to it (`<target>.lowers`, one path a line), so that
//! a refresh needs only the copy and its upper directory. Extended attributes other than the
//! opaque marker and hard links within a layer are not carried into the copy.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};

/// Where the layers of the copy at `target` are listed.
fn lowers_file(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(OsString::from).unwrap_or_default();
    name.push(".lowers");
    target.with_file_name(name)
}

/// Makes `target` the merged view of `lowers` (top first) and `upper`, once: a target that
/// already holds its copy (a container started again) is left as it is, since it is the
/// container's filesystem.
pub fn populate(lowers: &[PathBuf], upper: &Path, target: &Path) -> Result<()> {
    let list = lowers_file(target);
    if list.exists() {
        return Ok(());
    }
    fs::create_dir_all(target).map_err(|e| Error::io("create", target, e))?;
    for layer in lowers.iter().rev().map(PathBuf::as_path).chain([upper]) {
        apply(layer, target, Path::new(""))?;
    }
    // The root of an overlay is its upper directory's: its owner and mode (a remapped
    // container's upper directory belongs to the remapped root, whose `/` it must be).
    if let Some(md) = lstat(upper) {
        std::os::unix::fs::lchown(target, Some(md.uid()), Some(md.gid()))
            .map_err(|e| Error::io("chown", target, e))?;
        fs::set_permissions(
            target,
            std::os::unix::fs::PermissionsExt::from_mode(md.mode() & 0o7777),
        )
        .map_err(|e| Error::io("chmod", target, e))?;
    }
    let mut text = Vec::new();
    for l in lowers {
        text.extend_from_slice(l.as_os_str().as_bytes());
        text.push(b'\n');
    }
    fs::write(&list, text).map_err(|e| Error::io("write", &list, e))
}

/// Rewrites `upper` as the overlay upper directory of the copy at `target` (see the module
/// comment). Nothing happens for a target that is not a copy.
pub fn refresh_upper(target: &Path, upper: &Path) -> Result<()> {
    // One rewrite at a time: a diff and a commit of one container must not clear the upper
    // directory under each other.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let list = lowers_file(target);
    let Ok(text) = fs::read(&list) else {
        return Ok(());
    };
    let lowers: Vec<PathBuf> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| PathBuf::from(OsString::from_vec(l.to_vec())))
        .collect();
    if let Ok(entries) = fs::read_dir(upper) {
        for e in entries.flatten() {
            remove_any(&e.path())?;
        }
    }
    fs::create_dir_all(upper).map_err(|e| Error::io("create", upper, e))?;
    diff_dir(&lowers, target, upper, Path::new(""))?;
    Ok(())
}

fn lstat(p: &Path) -> Option<Metadata> {
    fs::symlink_metadata(p).ok()
}

fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    matches!(crate::unpack::lgetxattr(p, crate::userns::opaque_xattr()), Ok(Some(v)) if v == b"y")
}

fn names(dir: &Path) -> Result<Vec<OsString>> {
    let mut v: Vec<OsString> = fs::read_dir(dir)
        .map_err(|e| Error::io("read dir", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    v.sort();
    Ok(v)
}

fn remove_any(p: &Path) -> Result<()> {
    let res = match lstat(p) {
        None => return Ok(()),
        Some(m) if m.is_dir() => fs::remove_dir_all(p),
        Some(_) => fs::remove_file(p),
    };
    res.map_err(|e| Error::io("remove", p, e))
}

/// Lays the layer directory `src` over `dst` at `rel`, as overlayfs shows an upper layer over
/// a lower one: whiteouts delete, opaque directories replace, others are copied.
fn apply(src: &Path, dst: &Path, rel: &Path) -> Result<()> {
    for name in names(&src.join(rel))? {
        let r = rel.join(&name);
        let (s, d) = (src.join(&r), dst.join(&r));
        let Some(md) = lstat(&s) else { continue };
        if is_whiteout(&md) {
            remove_any(&d)?;
            continue;
        }
        if md.is_dir() {
            let existing = lstat(&d);
            if existing.as_ref().is_some_and(|m| !m.is_dir()) || is_opaque(&s) {
                remove_any(&d)?;
            }
            if lstat(&d).is_none() {
                fs::create_dir(&d).map_err(|e| Error::io("create", &d, e))?;
            }
            apply(src, dst, &r)?;
            set_meta(&d, &md)?;
        } else {
            remove_any(&d)?;
            copy_entry(&s, &d, &md)?;
        }
    }
    Ok(())
}

/// Copies one non-directory entry with its owner, mode and times.
fn copy_entry(s: &Path, d: &Path, md: &Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_file() {
        fs::copy(s, d).map_err(|e| Error::io("copy", s, e))?;
    } else if ft.is_symlink() {
        let to = fs::read_link(s).map_err(|e| Error::io("read link", s, e))?;
        std::os::unix::fs::symlink(&to, d).map_err(|e| Error::io("symlink", d, e))?;
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        let kind = if ft.is_fifo() {
            SFlag::S_IFIFO
        } else if ft.is_char_device() {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        match mknod(d, kind, Mode::from_bits_truncate(0o600), md.rdev()) {
            Ok(()) => {}
            // Device nodes need CAP_MKNOD on the host, which a rootless daemon lacks (its
            // unpacker skips them alike); a container gets /dev from its runtime.
            Err(nix::errno::Errno::EPERM) => return Ok(()),
            Err(e) => return Err(Error::io("mknod", d, e.into())),
        }
    } else {
        // Sockets are not carried.
        return Ok(());
    }
    set_meta(d, md)
}

/// Owner, then mode (a chown clears set-id bits), then times, of `p` as `md` says.
fn set_meta(p: &Path, md: &Metadata) -> Result<()> {
    let symlink = md.file_type().is_symlink();
    nix::unistd::fchownat(
        None,
        p,
        Some(nix::unistd::Uid::from_raw(md.uid())),
        Some(nix::unistd::Gid::from_raw(md.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io("chown", p, e.into()))?;
    if !symlink {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| Error::io("chmod", p, e))?;
    }
    utimensat(
        None,
        p,
        &TimeSpec::new(md.atime(), md.atime_nsec()),
        &TimeSpec::new(md.mtime(), md.mtime_nsec()),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::io("set times of", p, e.into()))
}

/// The entry `rel` of the layers that make up directory `view` (its layer roots whose `rel`'s
/// parent merges, top first): its path and metadata, and, for a directory, the layers that
/// make up its own contents. `None` when no layer has it or a whiteout hides it.
fn lookup(view: &[PathBuf], rel: &Path) -> Option<(PathBuf, Metadata, Vec<PathBuf>)> {
    let mut found: Option<(PathBuf, Metadata, Vec<PathBuf>)> = None;
    for layer in view {
        let p = layer.join(rel);
        let Some(md) = lstat(&p) else { continue };
        match &mut found {
            None => {
                if is_whiteout(&md) {
                    return None;
                }
                let dir = md.is_dir();
                let opaque = dir && is_opaque(&p);
                found = Some((p, md, if dir { vec![layer.clone()] } else { vec![] }));
                if !dir || opaque {
                    break;
                }
            }
            Some((_, _, below)) => {
                if !md.is_dir() {
                    break;
                }
                below.push(layer.clone());
                if is_opaque(&p) {
                    break;
                }
            }
        }
    }
    found
}

fn same(t: &Path, tm: &Metadata, l: &Path, lm: &Metadata) -> bool {
    let (tf, lf) = (tm.file_type(), lm.file_type());
    let kind_same = (tf.is_file() && lf.is_file())
        || (tf.is_dir() && lf.is_dir())
        || (tf.is_symlink() && lf.is_symlink())
        || (tf.is_fifo() && lf.is_fifo())
        || (tf.is_char_device() && lf.is_char_device())
        || (tf.is_block_device() && lf.is_block_device());
    if !kind_same || tm.uid() != lm.uid() || tm.gid() != lm.gid() {
        return false;
    }
    if tf.is_symlink() {
        return fs::read_link(t).ok() == fs::read_link(l).ok();
    }
    if tm.mode() & 0o7777 != lm.mode() & 0o7777 {
        return false;
    }
    if tf.is_dir() {
        return true;
    }
    tm.len() == lm.len()
        && tm.mtime() == lm.mtime()
        && tm.mtime_nsec() == lm.mtime_nsec()
        && tm.rdev() == lm.rdev()
}

/// Writes into `upper` what differs between the copy's directory `rel` and the same
/// directory of the layers `view`; returns whether anything was written.
fn diff_dir(view: &[PathBuf], target: &Path, upper: &Path, rel: &Path) -> Result<bool> {
    let mut changed = false;
    let ours = names(&target.join(rel))?;
    for name in &ours {
        let r = rel.join(name);
        let (t, u) = (target.join(&r), upper.join(&r));
        let Some(tm) = lstat(&t) else { continue };
        let lower = lookup(view, &r);
        match lower {
            Some((lp, lm, below)) if tm.is_dir() && lm.is_dir() => {
                // The directory reaches the upper one only with a change in or under it
                // (made there by whatever writes first), as overlayfs copies up parents.
                let meta_same = same(&t, &tm, &lp, &lm);
                if !meta_same {
                    fs::create_dir_all(&u).map_err(|e| Error::io("create", &u, e))?;
                }
                let sub = diff_dir(&below, target, upper, &r)?;
                if sub || !meta_same {
                    set_meta(&u, &tm)?;
                    changed = true;
                }
            }
            Some((lp, lm, _)) if same(&t, &tm, &lp, &lm) => {}
            _ => {
                fs::create_dir_all(upper.join(rel)).map_err(|e| Error::io("create", upper, e))?;
                copy_tree(&t, &u, &tm)?;
                changed = true;
            }
        }
    }
    // What the layers show here and the copy no longer has: deleted.
    let mut theirs: Vec<OsString> = Vec::new();
    for layer in view {
        if let Ok(n) = names(&layer.join(rel)) {
            theirs.extend(n);
        }
    }
    theirs.sort();
    theirs.dedup();
    for name in theirs {
        if ours.contains(&name) {
            continue;
        }
        let r = rel.join(&name);
        if lookup(view, &r).is_some() {
            fs::create_dir_all(upper.join(rel)).map_err(|e| Error::io("create", upper, e))?;
            let w = upper.join(&r);
            mknod(&w, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| Error::io("make whiteout", &w, e.into()))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Copies `t` (a directory with all it holds, or one entry) to `u`.
fn copy_tree(t: &Path, u: &Path, tm: &Metadata) -> Result<()> {
    if !tm.is_dir() {
        return copy_entry(t, u, tm);
    }
    fs::create_dir(u).map_err(|e| Error::io("create", u, e))?;
    for name in names(t)? {
        let (ct, cu) = (t.join(&name), u.join(&name));
        if let Some(m) = lstat(&ct) {
            copy_tree(&ct, &cu, &m)?;
        }
    }
    set_meta(u, tm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
            for n in names(d).unwrap() {
                let p = d.join(&n);
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let md = lstat(&p).unwrap();
                if is_whiteout(&md) {
                    out.push(format!("{rel} (whiteout)"));
                } else if md.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(base, &p, out);
                } else {
                    out.push(rel);
                }
            }
        }
        walk(dir, dir, &mut out);
        out
    }

    /// Needs whiteouts (0/0 character devices): root, or a user namespace on Linux 5.8+.
    fn can_make_whiteouts(dir: &Path) -> bool {
        let p = dir.join("probe");
        let ok = mknod(&p, SFlag::S_IFCHR, Mode::empty(), 0).is_ok();
        let _ = fs::remove_file(&p);
        ok
    }

    #[test]
    fn a_copy_merges_layers_and_its_changes_become_an_upper_dir() {
        let d = tempfile::tempdir().unwrap();
        let (low1, low2, upper, target) = (
            d.path().join("l1"),
            d.path().join("l2"),
            d.path().join("upper"),
            d.path().join("merged"),
        );
        write(&low1.join("etc/a"), "a1");
        write(&low1.join("etc/b"), "b1");
        write(&low1.join("bin/sh"), "sh");
        write(&low2.join("etc/a"), "a2");
        fs::create_dir_all(&upper).unwrap();
        // Top first, as the overlay would be mounted.
        let lowers = vec![low2.clone(), low1.clone()];
        populate(&lowers, &upper, &target).unwrap();
        assert_eq!(fs::read_to_string(target.join("etc/a")).unwrap(), "a2");
        assert_eq!(fs::read_to_string(target.join("etc/b")).unwrap(), "b1");

        // Nothing changed: nothing in the upper directory.
        refresh_upper(&target, &upper).unwrap();
        assert!(listing(&upper).is_empty(), "{:?}", listing(&upper));

        write(&target.join("etc/new"), "n");
        write(&target.join("etc/b"), "b-changed");
        write(&target.join("srv/x/y"), "deep");
        if can_make_whiteouts(d.path()) {
            fs::remove_file(target.join("bin/sh")).unwrap();
        }
        refresh_upper(&target, &upper).unwrap();
        let mut want = vec!["etc/", "etc/b", "etc/new", "srv/", "srv/x/", "srv/x/y"];
        if can_make_whiteouts(d.path()) {
            want.insert(0, "bin/");
            want.insert(1, "bin/sh (whiteout)");
        }
        assert_eq!(listing(&upper), want);
        assert_eq!(
            fs::read_to_string(upper.join("etc/b")).unwrap(),
            "b-changed"
        );
        let ch = crate::diff::changes(&upper, &lowers).unwrap();
        let added: Vec<&str> = ch
            .iter()
            .filter(|c| c.kind == 1)
            .map(|c| c.path.as_str())
            .collect();
        assert_eq!(added, vec!["/etc/new", "/srv", "/srv/x", "/srv/x/y"]);

        // A second populate keeps the copy (the container's filesystem) as it is.
        populate(&lowers, &upper, &target).unwrap();
        assert_eq!(fs::read_to_string(target.join("etc/new")).unwrap(), "n");
    }

    #[test]
    fn refreshing_a_target_that_is_no_copy_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("upper/keep"), "k");
        refresh_upper(&d.path().join("merged"), &d.path().join("upper")).unwrap();
        assert_eq!(listing(&d.path().join("upper")), vec!["keep"]);
    }
}
