//! File operations of `COPY`/`ADD`: resolving sources (globs) under a root, hashing them for
//! the cache, copying them into a container's root filesystem with Docker's rules, and
//! extracting local archives for `ADD`.
//!
//! Docker's rules: a source directory's *contents* are copied; a source file goes to
//! `dest/<name>` when `dest` ends in `/` or is an existing directory, else to `dest`;
//! several sources need a directory destination ending in `/`; missing parent directories
//! are created; everything copied is owned by `--chown` (default 0:0) and gets `--chmod`
//! when given; modification times are kept.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Cleans a path inside a root: `..` can not climb above the root. Returns a relative path.
pub fn clean_rel(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands a source pattern relative to `root`; returns matched relative paths (sorted).
/// A pattern without glob characters is returned as-is when it exists.
pub fn resolve(root: &Path, pattern: &str) -> io::Result<Vec<PathBuf>> {
    let rel = clean_rel(pattern);
    if !has_glob(pattern) {
        fs::symlink_metadata(host_path(root, &rel))?;
        return Ok(vec![rel]);
    }
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut cur = vec![PathBuf::new()];
    for part in &parts {
        let mut next = Vec::new();
        for base in &cur {
            if has_glob(part) {
                let dir = host_path(root, base);
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if crate::ignore::glob(part.as_bytes(), n.as_bytes()) {
                        next.push(base.join(n));
                    }
                }
            } else if fs::symlink_metadata(host_path(root, &base.join(part))).is_ok() {
                next.push(base.join(part));
            }
        }
        cur = next;
    }
    if cur.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no source files were specified",
        ));
    }
    Ok(cur)
}

/// Where a source path relative to `root` (the context or a stage's rootfs) is on the host,
/// with every symlink on the way resolved inside `root` (Docker's `FollowSymlinkInScope`):
/// a context symlink to `/etc` must not copy the host's `/etc`.
pub fn host_path(root: &Path, rel: &Path) -> PathBuf {
    in_root(root, &rel.to_string_lossy())
}

/// Which paths (relative to the source root) a `COPY --exclude` leaves out.
pub type Excluded<'a> = &'a (dyn Fn(&Path) -> bool + Sync);

/// Excludes nothing.
pub fn keep_all(_: &Path) -> bool {
    false
}

/// A content hash of files (names, modes, contents, link targets — not times or owners).
pub fn hash_paths(root: &Path, rels: &[PathBuf]) -> io::Result<String> {
    hash_paths_except(root, rels, &keep_all)
}

/// [`hash_paths`] without the paths `excluded` names.
pub fn hash_paths_except(root: &Path, rels: &[PathBuf], excluded: Excluded) -> io::Result<String> {
    let mut h = Sha256::new();
    for rel in rels {
        hash_one(&mut h, &host_path(root, rel), rel, excluded)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_one(h: &mut Sha256, path: &Path, rel: &Path, excluded: Excluded) -> io::Result<()> {
    if excluded(rel) {
        return Ok(());
    }
    let md = fs::symlink_metadata(path)?;
    h.update(rel.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(md.mode().to_le_bytes());
    let ft = md.file_type();
    if ft.is_symlink() {
        h.update(fs::read_link(path)?.to_string_lossy().as_bytes());
    } else if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            hash_one(h, &path.join(&n), &rel.join(&n), excluded)?;
        }
    } else if ft.is_file() {
        let mut f = fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    h.update([0xff]);
    Ok(())
}

/// Ownership and mode for copied files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

/// A `--chown` name the destination's `/etc/passwd` or `/etc/group` does not have (BuildKit's
/// message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChownError {
    #[error("unable to convert uid/gid chown string to host mapping: can't find uid for user {0}: no such user: {0}")]
    NoUser(String),
    #[error("unable to convert uid/gid chown string to host mapping: can't find gid for group {0}: no such group: {0}")]
    NoGroup(String),
}

/// Resolves `--chown=user[:group]` against the destination's `/etc/passwd` and `/etc/group`.
pub fn resolve_chown(spec: &str, rootfs: &Path) -> Result<(u32, u32), ChownError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str| -> Result<(u32, u32), ChownError> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok((n, n));
        }
        let text = fs::read_to_string(rootfs.join(file)).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                let id = f[2].parse().unwrap_or(0);
                let gid = f[3].parse().unwrap_or(id);
                return Ok((id, gid));
            }
        }
        Err(ChownError::NoUser(name.to_string()))
    };
    let (uid, primary_gid) = lookup("etc/passwd", user)?;
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let text = fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                text.lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse().unwrap_or(0))
                    })
                    .ok_or_else(|| ChownError::NoGroup(g.to_string()))?
            }
        },
        None if user.parse::<u32>().is_ok() => uid,
        None => primary_gid,
    };
    Ok((uid, gid))
}

/// Joins a container path onto the rootfs without letting `..` or absolute symlinks escape:
/// each existing symlink on the way is resolved inside `rootfs`.
pub fn in_root(rootfs: &Path, container_path: &str) -> PathBuf {
    let mut cur = PathBuf::from("/");
    let mut pending: Vec<String> = clean_rel(container_path)
        .components()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        let candidate = cur.join(&part);
        let host = rootfs.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match fs::read_link(&host) {
            Ok(target) if hops < 40 => {
                hops += 1;
                let t = target.to_string_lossy().into_owned();
                let base = if t.starts_with('/') {
                    PathBuf::from("/")
                } else {
                    cur.clone()
                };
                let joined = base.join(&t);
                let rest: Vec<String> = clean_rel(&joined.to_string_lossy())
                    .components()
                    .rev()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                cur = PathBuf::from("/");
                pending.extend(rest);
            }
            _ => cur = candidate,
        }
    }
    rootfs.join(cur.strip_prefix("/").unwrap_or(&cur))
}

fn apply_owner(path: &Path, owner: Owner, is_dir: bool, is_link: bool) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))?;
    if let (Some(mode), false) = (owner.chmod, is_link) {
        let _ = is_dir;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents owned by `owner` (no chmod for parents).
pub fn mkdir_all(dir: &Path, owner: Owner) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        mkdir_all(p, owner)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
            std::os::unix::fs::lchown(dir, Some(owner.uid), Some(owner.gid))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn set_mtime(path: &Path, md: &fs::Metadata) {
    let times = [
        libc::timespec {
            tv_sec: md.atime() as libc::time_t,
            tv_nsec: md.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: md.mtime() as libc::time_t,
            tv_nsec: md.mtime_nsec() as _,
        },
    ];
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `times` two initialised timespecs;
    // utimensat does not keep either pointer.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

/// Copies `src` (file, dir or symlink) to exactly `dst`, recursively.
pub fn copy_tree(src: &Path, dst: &Path, owner: Owner) -> io::Result<()> {
    copy_tree_except(src, dst, owner, Path::new(""), &keep_all)
}

/// [`copy_tree`] leaving out what `excluded` names; `rel` is `src` relative to the source
/// root (what `excluded` is asked about).
pub fn copy_tree_except(
    src: &Path,
    dst: &Path,
    owner: Owner,
    rel: &Path,
    excluded: Excluded,
) -> io::Result<()> {
    if !rel.as_os_str().is_empty() && excluded(rel) {
        return Ok(());
    }
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src)?;
        let _ = fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst)?;
        apply_owner(dst, owner, false, true)?;
        set_mtime(dst, &md);
    } else if ft.is_dir() {
        if !dst.is_dir() {
            if fs::symlink_metadata(dst).is_ok() {
                fs::remove_file(dst)?;
            }
            fs::create_dir(dst)?;
            fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree_except(
                &e.path(),
                &dst.join(e.file_name()),
                owner,
                &rel.join(e.file_name()),
                excluded,
            )?;
        }
        apply_owner(dst, owner, true, false)?;
        set_mtime(dst, &md);
    } else if ft.is_file() {
        if fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(dst)?;
        }
        fs::copy(src, dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        apply_owner(dst, owner, false, false)?;
        set_mtime(dst, &md);
    }
    Ok(())
}

/// The archive kinds `ADD` extracts, sniffed from the first bytes.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(b"BZh")
        || h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (n >= 262 && &h[257..262] == b"ustar")
}

/// Extracts a (possibly compressed) tar into `dest`, the way `ADD` does.
pub fn extract_archive(path: &Path, dest: &Path, owner: Option<Owner>) -> io::Result<()> {
    let f = fs::File::open(path)?;
    let mut head = [0u8; 6];
    {
        let mut g = fs::File::open(path)?;
        let _ = g.read(&mut head)?;
    }
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::BzDecoder::new(f))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let rel = clean_rel(&entry.path()?.to_string_lossy());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        if let Some(p) = target.parent() {
            mkdir_all(p, owner.unwrap_or_default())?;
        }
        entry.unpack(&target)?;
        let (uid, gid) = match owner {
            Some(o) => (o.uid, o.gid),
            None => (
                // Ids past u32 are no Linux ids: root, as an unreadable one.
                u32::try_from(entry.header().uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(entry.header().gid().unwrap_or(0)).unwrap_or(0),
            ),
        };
        let _ = std::os::unix::fs::lchown(&target, Some(uid), Some(gid));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_globs_and_hashes_content_not_times() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.txt"), "a").unwrap();
        fs::write(d.path().join("b.txt"), "b").unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("sub/c.txt"), "c").unwrap();
        let m = resolve(d.path(), "*.txt").unwrap();
        assert_eq!(m, vec![PathBuf::from("a.txt"), PathBuf::from("b.txt")]);
        assert_eq!(
            resolve(d.path(), "s*/c.txt").unwrap(),
            vec![PathBuf::from("sub/c.txt")]
        );
        assert!(resolve(d.path(), "missing").is_err());
        assert!(resolve(d.path(), "*.nope").is_err());
        assert_eq!(
            resolve(d.path(), "../../a.txt").unwrap(),
            vec![PathBuf::from("a.txt")]
        );
        let h1 = hash_paths(d.path(), &m).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(d.path().join("a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            h1,
            hash_paths(d.path(), &m).unwrap(),
            "mtime is not content"
        );
        fs::write(d.path().join("a.txt"), "A").unwrap();
        assert_ne!(h1, hash_paths(d.path(), &m).unwrap());
    }

    #[test]
    fn sources_resolve_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        fs::create_dir_all(ctx.join("inner")).unwrap();
        fs::write(ctx.join("inner/file"), "inside").unwrap();
        std::os::unix::fs::symlink("/inner", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc", ctx.join("hostetc")).unwrap();
        assert_eq!(
            resolve(&ctx, "abs/file").unwrap(),
            vec![PathBuf::from("abs/file")]
        );
        assert_eq!(
            host_path(&ctx, Path::new("abs/file")),
            ctx.join("inner/file")
        );
        assert!(
            resolve(&ctx, "hostetc/passwd").is_err(),
            "host /etc is not reachable"
        );
    }

    #[test]
    fn in_root_keeps_symlinks_inside() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", d.path().join("up")).unwrap();
        assert_eq!(in_root(d.path(), "/abs/x"), d.path().join("real/x"));
        assert_eq!(in_root(d.path(), "/up/etc"), d.path().join("etc"));
        assert_eq!(in_root(d.path(), "../../etc"), d.path().join("etc"));
    }

    #[test]
    fn chown_names_from_passwd() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/h:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown("app", d.path()).unwrap(), (1000, 1001));
        assert_eq!(resolve_chown("app:staff", d.path()).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("7:8", d.path()).unwrap(), (7, 8));
        assert_eq!(resolve_chown("7", d.path()).unwrap(), (7, 7));
        assert!(resolve_chown("nobody", d.path()).is_err());
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn extracts_compressed_tars() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o640);
        h.set_cksum();
        b.append_data(&mut h, "dir/f", &b"hi"[..]).unwrap();
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let p = d.path().join("a.tar.gz");
        fs::write(&p, gz.finish().unwrap()).unwrap();
        assert!(is_archive(&p));
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        extract_archive(&p, &out, None).unwrap();
        assert_eq!(fs::read_to_string(out.join("dir/f")).unwrap(), "hi");
        let plain = d.path().join("plain.txt");
        fs::write(&plain, "not an archive").unwrap();
        assert!(!is_archive(&plain));
    }
}
