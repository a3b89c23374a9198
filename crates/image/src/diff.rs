//! Layer diffs from an overlayfs upper directory: what a container changed, as an image layer
//! tar (`docker build`/`commit`) or as a change list (`docker diff`).
//!
//! overlayfs records a deletion as a 0/0 character device with the deleted name and a
//! directory whose lower contents are hidden with the `trusted.overlay.opaque=y` xattr; image
//! layers spell these `.wh.<name>` and `<dir>/.wh..wh..opq` (OCI image spec, "whiteouts").

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Paths the runtime creates as mount points in a container's upper directory; when they
/// are empty they are not the container's changes.
const MOUNT_TARGETS: &[&str] = &[
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "dev",
    "proc",
    "sys",
    ".dockerenv",
];

/// One entry of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 0 = modified, 1 = added, 2 = deleted (the API's `Kind`).
    pub kind: u8,
    /// Absolute path in the container.
    pub path: String,
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(crate::unpack::lgetxattr(path, crate::userns::opaque_xattr()), Ok(Some(v)) if v == b"y")
}

fn skip_mount_target(rel: &Path, md: &fs::Metadata, path: &Path) -> bool {
    let r = rel.to_string_lossy();
    if !MOUNT_TARGETS.contains(&r.as_ref()) {
        return false;
    }
    if md.is_file() {
        return md.len() == 0;
    }
    md.is_dir()
        && fs::read_dir(path)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
}

/// Every entry of the upper directory, parents before children, names sorted. A directory
/// that only held skipped mount targets (copied up when the runtime created them) is left
/// out too.
fn walk(upper: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    walk_dir(upper, Path::new(""), &mut out)?;
    Ok(out)
}

/// Appends `rel`'s entries; returns whether it skipped something.
fn walk_dir(upper: &Path, rel: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) -> Result<bool> {
    let dir = upper.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| Error::io("read dir", &dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut skipped = false;
    for n in names {
        let r = rel.join(&n);
        let p = upper.join(&r);
        let md = fs::symlink_metadata(&p).map_err(|e| Error::io("stat", &p, e))?;
        if skip_mount_target(&r, &md, &p) {
            skipped = true;
            continue;
        }
        if md.is_dir() {
            let at = out.len();
            out.push((r.clone(), md));
            let child_skipped = walk_dir(upper, &r, out)?;
            if child_skipped && out.len() == at + 1 && !is_opaque(&p) {
                out.pop();
                skipped = true;
            }
        } else {
            out.push((r, md));
        }
    }
    Ok(skipped)
}

/// Writes the upper directory as a layer tar; returns the number of entries written.
pub fn write_layer_tar(upper: &Path, writer: impl Write) -> Result<usize> {
    write_layer_tar_shifted(upper, writer, None)
}

/// [`write_layer_tar`] of a container in a user namespace (`--userns-remap`): its files' host
/// ids are written as the container's (ids outside its range stay: files the daemon wrote as
/// host root are root's), so the layer means the same on any daemon.
pub fn write_layer_tar_shifted(
    upper: &Path,
    writer: impl Write,
    shift: Option<&crate::unpack::IdShift>,
) -> Result<usize> {
    let tar_err = |e: io::Error| Error::Tar {
        context: format!("writing layer from {}", upper.display()),
        source: e,
    };
    let mut b = tar::Builder::new(writer);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut n = 0;
    for (rel, md) in walk(upper)? {
        let path = upper.join(&rel);
        if is_whiteout(&md) {
            let name = rel
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
            b.append_data(&mut h, &wh, io::empty()).map_err(tar_err)?;
            n += 1;
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        if let Some(s) = shift {
            let (uid, gid) = s.to_container(md.uid(), md.gid());
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
        }
        let ft = md.file_type();
        if ft.is_dir() {
            b.append_data(&mut h, &rel, io::empty()).map_err(tar_err)?;
            n += 1;
            if is_opaque(&path) {
                let mut o = tar::Header::new_gnu();
                o.set_entry_type(tar::EntryType::Regular);
                o.set_size(0);
                o.set_mode(0o644);
                o.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
                b.append_data(&mut o, rel.join(".wh..wh..opq"), io::empty())
                    .map_err(tar_err)?;
                n += 1;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| Error::io("readlink", &path, e))?;
            h.set_size(0);
            b.append_link(&mut h, &rel, &target).map_err(tar_err)?;
            n += 1;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &rel, first).map_err(tar_err)?;
                    n += 1;
                    continue;
                }
                links.insert((md.dev(), md.ino()), rel.clone());
            }
            let f = fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            b.append_data(&mut h, &rel, f).map_err(tar_err)?;
            n += 1;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_size(0);
            if ft.is_fifo() {
                h.set_entry_type(tar::EntryType::Fifo);
            } else {
                let major = libc::major(md.rdev());
                let minor = libc::minor(md.rdev());
                let _ = h.set_device_major(major);
                let _ = h.set_device_minor(minor);
            }
            b.append_data(&mut h, &rel, io::empty()).map_err(tar_err)?;
            n += 1;
        }
        // Sockets are not carried in layers.
    }
    b.finish().map_err(tar_err)?;
    Ok(n)
}

/// The container's changes for `docker diff`: `lowers` (top first) tell added from changed.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let in_lower = |rel: &Path| {
        lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
    };
    let mut out = Vec::new();
    for (rel, md) in walk(upper)? {
        let abs = format!("/{}", rel.to_string_lossy());
        if is_whiteout(&md) {
            out.push(Change { kind: 2, path: abs });
            continue;
        }
        let kind = if in_lower(&rel) { 0 } else { 1 };
        out.push(Change { kind, path: abs });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_dirs_and_links() {
        let d = tempfile::tempdir().unwrap();
        let up = d.path();
        fs::create_dir_all(up.join("etc")).unwrap();
        fs::write(up.join("etc/app.conf"), "x=1\n").unwrap();
        fs::write(up.join("etc/hostname"), "").unwrap();
        std::os::unix::fs::symlink("app.conf", up.join("etc/link")).unwrap();
        fs::hard_link(up.join("etc/app.conf"), up.join("hard")).unwrap();
        fs::create_dir(up.join("proc")).unwrap();
        let mut buf = Vec::new();
        let n = write_layer_tar(up, &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            ));
        }
        assert_eq!(n, seen.len());
        let names: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            vec!["etc", "etc/app.conf", "etc/link", "hard"],
            "{seen:?}"
        );
        assert_eq!(seen[2].1, tar::EntryType::Symlink);
        assert_eq!(seen[3].1, tar::EntryType::Link);
    }

    #[test]
    #[ignore = "needs root (mknod): the privileged tier runs it"]
    fn whiteouts_become_wh_files() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let up = d.path();
        fs::create_dir(up.join("gone_dir_parent")).unwrap();
        nix::sys::stat::mknod(
            &up.join("gone_dir_parent/old"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o000),
            0,
        )
        .unwrap();
        let mut buf = Vec::new();
        write_layer_tar(up, &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.contains(&"gone_dir_parent/.wh.old".to_string()),
            "{names:?}"
        );
        let lower = tempfile::tempdir().unwrap();
        fs::create_dir(lower.path().join("gone_dir_parent")).unwrap();
        let ch = changes(up, &[lower.path().to_path_buf()]).unwrap();
        assert_eq!(
            ch,
            vec![
                Change {
                    kind: 0,
                    path: "/gone_dir_parent".into()
                },
                Change {
                    kind: 2,
                    path: "/gone_dir_parent/old".into()
                },
            ]
        );
    }
}
