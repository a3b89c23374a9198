//! Safe extraction of untrusted tar streams (image layers and image archives).
//!
//! Rules, in the order they are applied to each entry:
//! - The entry name is cleaned lexically like Go's `filepath.Clean` relative to `/`:
//!   a leading `/` is stripped, `.` dropped, `..` pops a component; a `..` that would
//!   climb above the root of a *relative* name is rejected as a breakout (an absolute
//!   name is clamped at `/`, as Docker does).
//! - Every parent directory is walked component by component with `lstat`: missing
//!   parents are created (0755), a parent that is a symlink is refused (we never follow a
//!   symlink created by the archive itself, so `a -> /etc` + `a/passwd` cannot touch the
//!   host), a parent that is not a directory is refused.
//! - Whatever already exists at the final path is removed first, unless both it and the
//!   entry are directories. New files are opened with `O_CREAT|O_EXCL|O_NOFOLLOW`.
//! - Symlinks are created verbatim (absolute targets are fine: they are only resolved
//!   inside the container later) and never followed here. Hard links must point at an
//!   existing non-directory inside the destination, reached without symlinks; `linkat`
//!   is called without `AT_SYMLINK_FOLLOW`.
//! - Block and character devices are skipped and counted; FIFOs are created.
//! - Ownership (when asked), mode including setuid/setgid/sticky, xattrs (except the
//!   `trusted.overlay.*` namespace, which only whiteout conversion may set) and mtimes
//!   are applied; directory mtimes last.
//! - With whiteout conversion on, AUFS-style `.wh.<name>` becomes an overlayfs whiteout
//!   (a 0/0 character device `<name>`) and `.wh..wh..opq` sets
//!   `trusted.overlay.opaque=y` on its directory. Other `.wh..wh.*` entries are dropped.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};

pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
pub(crate) const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
pub(crate) const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

/// How to unpack.
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// Convert AUFS whiteouts to overlayfs form (image layers: yes; archives: no).
    pub whiteouts: bool,
    /// Apply uid/gid from the headers (needs root).
    pub preserve_owner: bool,
    /// Apply `SCHILY.xattr.*` PAX records.
    pub xattrs: bool,
    /// Extracting into a container in a user namespace (`--userns-remap`): header ids are
    /// shifted into its range, and without `preserve_owner` entries belong to its root.
    pub id_shift: Option<IdShift>,
}

/// One line of a user namespace's id map: container ids `container..container + size` are
/// host ids `host..host + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdRange {
    fn to_host(self, id: u32) -> Option<u32> {
        let d = id.checked_sub(self.container).filter(|d| *d < self.size)?;
        self.host.checked_add(d)
    }

    fn to_container(self, id: u32) -> Option<u32> {
        let d = id.checked_sub(self.host).filter(|d| *d < self.size)?;
        self.container.checked_add(d)
    }
}

/// The host id of container id `id` under `map`; `None` when no line maps it.
pub fn id_to_host(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter().find_map(|r| r.to_host(id))
}

/// The container id of host id `id` under `map`; `None` when no line maps it.
pub fn id_to_container(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter().find_map(|r| r.to_container(id))
}

/// A user namespace's uid and gid maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdShift {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl IdShift {
    /// The host ids of container ids `(uid, gid)`; `None` for ids the maps do not hold.
    pub fn to_host(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        Some((id_to_host(&self.uids, uid)?, id_to_host(&self.gids, gid)?))
    }

    /// The host ids of container root.
    pub fn root(&self) -> (u32, u32) {
        let first = |m: &[IdRange]| m.iter().find(|r| r.container == 0).map_or(0, |r| r.host);
        (first(&self.uids), first(&self.gids))
    }

    /// The container ids of host ids `(uid, gid)`; ids outside the maps (files the daemon
    /// wrote with container ids, e.g. a build's `COPY --chown`) stay as they are.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            id_to_container(&self.uids, uid).unwrap_or(uid),
            id_to_container(&self.gids, gid).unwrap_or(gid),
        )
    }
}

impl UnpackOptions {
    /// Settings for an image layer.
    pub const LAYER: UnpackOptions = UnpackOptions {
        whiteouts: true,
        preserve_owner: true,
        xattrs: true,
        id_shift: None,
    };
    /// Settings for an outer image archive (docker save / OCI layout tar).
    pub const ARCHIVE: UnpackOptions = UnpackOptions {
        whiteouts: false,
        preserve_owner: false,
        xattrs: false,
        id_shift: None,
    };
}

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries processed.
    pub entries: u64,
    /// Sum of regular file sizes (Docker's layer "size").
    pub size: u64,
    /// Block/char device entries skipped.
    pub skipped_devices: u64,
    /// Whiteouts and opaque markers converted.
    pub whiteouts: u64,
}

/// Unpack a tar stream into `dest` (which must exist). Reads entries up to the tar
/// end marker; the caller may drain what follows from `reader`.
pub fn unpack<R: Read>(reader: &mut R, dest: &Path, opts: UnpackOptions) -> Result<UnpackStats> {
    let opts = &opts;
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let entries = archive.entries().map_err(|e| Error::Tar {
        context: "reading archive".into(),
        source: e,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Tar {
            context: "reading entry header".into(),
            source: e,
        })?;
        stats.entries += 1;
        unpack_entry(&mut entry, dest, opts, &mut stats, &mut dir_times)?;
    }
    for (path, mtime) in dir_times.iter().rev() {
        // The directory may have been replaced by a later entry; best effort.
        let _ = set_mtime(path, *mtime);
    }
    Ok(stats)
}

fn tar_err(path: &str, e: io::Error) -> Error {
    Error::Tar {
        context: path.to_string(),
        source: e,
    }
}

/// Clean an archive path into normal components; `Ok(vec![])` means the root itself.
pub(crate) fn clean_components(name: &Path) -> Result<Vec<OsString>> {
    let mut parts: Vec<OsString> = Vec::new();
    let mut absolute = false;
    for comp in name.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() && !absolute {
                    return Err(Error::UnsafePath {
                        path: name.display().to_string(),
                        reason: "path escapes the destination",
                    });
                }
            }
            Component::Normal(c) => parts.push(c.to_os_string()),
        }
    }
    Ok(parts)
}

/// Walk (creating when `create`) the directories `parts` below `root`, refusing symlinks
/// and non-directories. Returns the full path.
fn walk_dirs(root: &Path, parts: &[OsString], create: bool, shown: &str) -> Result<PathBuf> {
    let mut cur = root.to_path_buf();
    for c in parts {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::UnsafePath {
                    path: shown.to_string(),
                    reason: "a parent directory is a symlink",
                })
            }
            Ok(_) => {
                return Err(Error::UnsafePath {
                    path: shown.to_string(),
                    reason: "a parent is not a directory",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&cur)
                    .map_err(|e| Error::io("create directory", &cur, e))?;
            }
            Err(e) => return Err(Error::io("stat", &cur, e)),
        }
    }
    Ok(cur)
}

fn remove_existing(path: &Path, keep_dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if !keep_dir {
                fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))?;
            }
        }
        Ok(_) => fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("stat", path, e)),
    }
    Ok(())
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::UnsafePath {
        path: path.display().to_string(),
        reason: "path contains a nul byte",
    })
}

/// `lsetxattr(2)`: never follows a symlink at `path`.
pub(crate) fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = cpath(path)?;
    let n = CString::new(name).map_err(|_| Error::UnsafePath {
        path: name.to_string(),
        reason: "xattr name contains a nul byte",
    })?;
    // SAFETY: both pointers are valid nul-terminated C strings that outlive the call, and
    // `value` is a live slice whose pointer and length are passed together.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::io("set xattr on", path, io::Error::last_os_error()));
    }
    Ok(())
}

/// `lgetxattr(2)`, for tests and diagnostics. `None` when the attribute is absent.
pub fn lgetxattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = CString::new(name).map_err(|_| Error::UnsafePath {
        path: name.to_string(),
        reason: "xattr name contains a nul byte",
    })?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: pointers are valid C strings; `buf` is a writable buffer of the given length.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    // Negative is an error.
    let Ok(len) = usize::try_from(rc) else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODATA) {
            return Ok(None);
        }
        return Err(Error::io("get xattr of", path, e));
    };
    buf.truncate(len);
    Ok(Some(buf))
}

fn set_mtime(path: &Path, mtime: u64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime as i64, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    opts: &UnpackOptions,
    stats: &mut UnpackStats,
    dir_times: &mut Vec<(PathBuf, u64)>,
) -> Result<()> {
    let raw_path = entry
        .path()
        .map_err(|e| tar_err("entry path", e))?
        .into_owned();
    let shown = raw_path.display().to_string();
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
    ) {
        return Ok(());
    }
    let mut parts = clean_components(&raw_path)?;
    let Some(name) = parts.pop() else {
        // The root directory itself ("./"): only layers carry meaningful root metadata.
        if kind.is_dir() && opts.whiteouts {
            apply_metadata(entry, dest, opts, false)?;
            dir_times.push((dest.to_path_buf(), entry.header().mtime().unwrap_or(0)));
        }
        return Ok(());
    };
    let parent = walk_dirs(dest, &parts, true, &shown)?;
    let name_str = name.to_string_lossy();

    if opts.whiteouts && name_str.starts_with(WHITEOUT_PREFIX) {
        stats.whiteouts += 1;
        if name_str == WHITEOUT_OPAQUE {
            return lsetxattr(&parent, crate::userns::opaque_xattr(), b"y");
        }
        if name_str.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let target = &name.as_bytes()[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::UnsafePath {
                path: shown,
                reason: "invalid whiteout name",
            });
        }
        let path = parent.join(OsStr::from_bytes(target));
        remove_existing(&path, false)?;
        mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| Error::io("create whiteout", &path, e.into()))?;
        std::os::unix::fs::lchown(&path, Some(0), Some(0))
            .map_err(|e| Error::io("chown", &path, e))?;
        return Ok(());
    }

    let path = parent.join(&name);
    match kind {
        tar::EntryType::Directory => {
            remove_existing(&path, true)?;
            if !path.is_dir() {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(|e| Error::io("create directory", &path, e))?;
            }
            apply_metadata(entry, &path, opts, false)?;
            dir_times.push((path, entry.header().mtime().unwrap_or(0)));
            return Ok(());
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            remove_existing(&path, false)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| Error::io("create", &path, e))?;
            let n = io::copy(entry, &mut f).map_err(|e| tar_err(&shown, e))?;
            stats.size += n;
            drop(f);
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| tar_err(&shown, e))?
                .ok_or_else(|| tar_err(&shown, io::Error::other("symlink without target")))?;
            remove_existing(&path, false)?;
            std::os::unix::fs::symlink(&target, &path)
                .map_err(|e| Error::io("create symlink", &path, e))?;
            apply_metadata(entry, &path, opts, true)?;
            return Ok(());
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| tar_err(&shown, e))?
                .ok_or_else(|| tar_err(&shown, io::Error::other("hard link without target")))?;
            let mut tparts = clean_components(&target)?;
            let Some(tname) = tparts.pop() else {
                return Err(Error::UnsafePath {
                    path: shown,
                    reason: "hard link to the root directory",
                });
            };
            let tpath = walk_dirs(dest, &tparts, false, &shown)
                .map_err(|_| Error::UnsafePath {
                    path: shown.clone(),
                    reason: "hard link target is outside the layer",
                })?
                .join(tname);
            match fs::symlink_metadata(&tpath) {
                Ok(m) if !m.is_dir() => {}
                _ => {
                    return Err(Error::UnsafePath {
                        path: shown,
                        reason: "hard link target is missing or a directory",
                    })
                }
            }
            if tpath == path {
                return Ok(());
            }
            remove_existing(&path, false)?;
            // std's hard_link is linkat(..., 0): a symlink target is linked, not followed.
            fs::hard_link(&tpath, &path).map_err(|e| Error::io("create hard link", &path, e))?;
            return Ok(());
        }
        tar::EntryType::Fifo => {
            remove_existing(&path, false)?;
            mknod(&path, SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                .map_err(|e| Error::io("create fifo", &path, e.into()))?;
        }
        tar::EntryType::Block | tar::EntryType::Char => {
            stats.skipped_devices += 1;
            return Ok(());
        }
        _ => return Ok(()),
    }
    apply_metadata(entry, &path, opts, false)?;
    if let Ok(mtime) = entry.header().mtime() {
        set_mtime(&path, mtime).map_err(|e| Error::io("set mtime of", &path, e.into()))?;
    }
    Ok(())
}

/// chown, chmod, xattrs (in that order: chown clears setuid bits and capabilities).
fn apply_metadata<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
    opts: &UnpackOptions,
    is_symlink: bool,
) -> Result<()> {
    // PAX records: xattrs, and uid/gid too large for the ustar header fields.
    let mut xattrs = VecDeque::new();
    let (mut pax_uid, mut pax_gid) = (None, None);
    if let Some(exts) = entry
        .pax_extensions()
        .map_err(|e| tar_err("pax header", e))?
    {
        for ext in exts {
            let ext = ext.map_err(|e| tar_err("pax header", e))?;
            let Ok(key) = ext.key() else { continue };
            let num = || ext.value().ok().and_then(|v| v.trim().parse::<u64>().ok());
            match key {
                "uid" => pax_uid = num(),
                "gid" => pax_gid = num(),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if !name.starts_with("trusted.overlay.")
                            && !name.starts_with("user.overlay.")
                        {
                            xattrs.push_back((name.to_string(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
    }
    let header = entry.header();
    if opts.preserve_owner {
        let uid = pax_uid.unwrap_or_else(|| header.uid().unwrap_or(0));
        let gid = pax_gid.unwrap_or_else(|| header.gid().unwrap_or(0));
        if let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) {
            let (uid, gid) = match &opts.id_shift {
                Some(m) => m.to_host(uid, gid).ok_or_else(|| {
                    Error::InvalidArchive(format!(
                        "container ids {uid}:{gid} of {} cannot be mapped to host ids",
                        path.display()
                    ))
                })?,
                None => (uid, gid),
            };
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .map_err(|e| Error::io("chown", path, e))?;
        }
    } else if let Some(m) = &opts.id_shift {
        let (uid, gid) = m.root();
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| Error::io("chown", path, e))?;
    }
    if !is_symlink {
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", path, e))?;
    }
    if opts.xattrs {
        for (name, value) in xattrs {
            if let Err(e) = lsetxattr(path, &name, &value) {
                // Filesystems without xattr support, symlinks (user.* is not allowed on
                // them) or a user namespace without the privilege for trusted.* must
                // not make a layer unusable.
                if let Error::Io { source, .. } = &e {
                    let code = source.raw_os_error();
                    if code == Some(libc::ENOTSUP) || code == Some(libc::EPERM) {
                        continue;
                    }
                }
                return Err(e);
            }
        }
    }
    if is_symlink {
        if let Ok(mtime) = header.mtime() {
            set_mtime(path, mtime).map_err(|e| Error::io("set mtime of", path, e.into()))?;
        }
    }
    Ok(())
}

/// Resolve `rel` inside `root`, following symlinks but treating `root` as `/` (Docker's
/// `FollowSymlinkInScope`, [`crate::inroot`]): the result never leaves `root`.
pub(crate) fn resolve_in_root(root: &Path, rel: &str) -> Result<PathBuf> {
    crate::inroot::resolve_in_root(root, Path::new(rel)).map_err(|e| {
        if crate::inroot::is_loop(&e) {
            Error::UnsafePath {
                path: rel.to_string(),
                reason: "too many levels of symbolic links",
            }
        } else {
            Error::io("resolve", root.join(rel), e)
        }
    })
}

/// Open a file inside an extracted archive, resolving symlinks within `root`.
pub(crate) fn open_in_root(root: &Path, rel: &str) -> Result<(File, PathBuf)> {
    let p = resolve_in_root(root, rel)?;
    let f = File::open(&p).map_err(|e| Error::io("open", &p, e))?;
    Ok((f, p))
}
