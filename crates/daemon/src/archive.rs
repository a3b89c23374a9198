//! `HEAD/GET/PUT /containers/{id}/archive`: stat, tar out and extract into a container's files
//! (what `docker cp` uses), for running and stopped containers.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)` against a directory fd of the
//! container's root, so `..` chains and absolute symlinks are clamped at that root by the
//! kernel, even if the container swaps a component for a symlink while we work (the race of
//! CVE-2018-15664). The tar walk opens each entry relative to its parent's fd with
//! `O_NOFOLLOW` and records symlinks as symlinks; extraction goes through berth-image's safe
//! unpacker rooted at the resolved directory's fd (`/proc/self/fd/N`), which refuses to write
//! through symlinks.
//!
//! The root is `/proc/<pid>/root` of a running container (its own mount namespace: volumes and
//! binds are seen exactly as the container sees them). A stopped container's overlay is mounted
//! for the operation and its volumes and binds are bind-mounted into it, as Docker does.

use std::ffi::OsStr;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_api_types::volume::{go_mode, PathStat};
use berth_api_types::ApiError;
use berth_services::ByteStream;

use crate::model::no_such_container;
use crate::{internal, Daemon, Result};

use crate::sys::{
    fd_path, fstat, fstatat_nofollow, open_dir, open_in_root, openat_nofollow, readlinkat,
};

/// Go's `os.FileMode` from a `st_mode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= go_mode::DIR,
        libc::S_IFLNK => m |= go_mode::SYMLINK,
        libc::S_IFIFO => m |= go_mode::NAMED_PIPE,
        libc::S_IFSOCK => m |= go_mode::SOCKET,
        libc::S_IFBLK => m |= go_mode::DEVICE,
        libc::S_IFCHR => m |= go_mode::DEVICE | go_mode::CHAR_DEVICE,
        _ => {}
    }
    if st_mode & libc::S_ISUID != 0 {
        m |= go_mode::SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= go_mode::SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= go_mode::STICKY;
    }
    m
}

/// `docker cp` path rules: a trailing `/` or `/.` means "the directory itself, followed".
fn follows_final(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The name the archive's top entry gets: the base of the path as asked (`.` for `dir/.`).
fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        None if !trimmed.is_empty() => trimmed.to_string(),
        _ => "/".into(),
    }
}

fn rfc3339(secs: i64, nsec: i64) -> String {
    chrono::DateTime::from_timestamp(secs, u32::try_from(nsec).unwrap_or(0))
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// Stats `path` inside `root` the way docker's `StatPath` does.
pub fn stat_in_root(root: &Path, root_fd: BorrowedFd<'_>, path: &str) -> io::Result<PathStat> {
    let flags = if follows_final(path) {
        libc::O_PATH
    } else {
        libc::O_PATH | libc::O_NOFOLLOW
    };
    let fd = open_in_root(root_fd, Path::new(path), flags)?;
    let st = fstat(fd.as_fd())?;
    let mut link_target = String::new();
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // The fully resolved target, as a path inside the container (only shown, never used).
        if let Ok(resolved) = crate::sys::resolve_in_root(root, Path::new(path)) {
            if let Ok(rel) = resolved.strip_prefix(root) {
                link_target = Path::new("/").join(rel).display().to_string();
            }
        }
    }
    Ok(PathStat {
        name: base_name(path),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
        link_target,
    })
}

/// Writes `path` (inside `root_fd`'s tree) as a tar to `out`, top entry named [`base_name`].
pub fn tar_in_root<W: Write>(root_fd: BorrowedFd<'_>, path: &str, out: W) -> io::Result<W> {
    let flags = if follows_final(path) {
        libc::O_PATH
    } else {
        libc::O_PATH | libc::O_NOFOLLOW
    };
    let fd = open_in_root(root_fd, Path::new(path), flags)?;
    let st = fstat(fd.as_fd())?;
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    // `/` itself is archived as `.` (its content), like a trailing `/.`.
    let name = match base_name(path).as_str() {
        "/" => PathBuf::from("."),
        b => PathBuf::from(b),
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => {
            // An O_PATH fd of a symlink: read its target through the fd itself.
            let target = readlinkat(fd.as_fd(), OsStr::new(""))?;
            append_link(&mut builder, &name, &st, &target)?;
        }
        libc::S_IFDIR => {
            let dir = open_in_root(
                root_fd,
                Path::new(path),
                libc::O_RDONLY
                    | libc::O_DIRECTORY
                    | if follows_final(path) {
                        0
                    } else {
                        libc::O_NOFOLLOW
                    },
            )?;
            append_header(&mut builder, &name, &st, tar::EntryType::Directory, 0)?;
            walk_dir(&mut builder, dir, &name)?;
        }
        libc::S_IFREG => {
            let f = open_in_root(root_fd, Path::new(path), libc::O_RDONLY | libc::O_NOFOLLOW)?;
            append_file(&mut builder, &name, &st, f)?;
        }
        _ => append_special(&mut builder, &name, &st)?,
    }
    builder.into_inner()
}

fn header_for(st: &libc::stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(size);
    h
}

/// Appends an entry keeping the name verbatim when it fits the header (the tar crate would
/// drop a leading `./`, which docker cp's rebasing of `dir/.` relies on); longer names go
/// through the crate's GNU long-name handling.
fn append_named<W: Write, R: Read>(
    b: &mut tar::Builder<W>,
    mut h: tar::Header,
    name: &Path,
    data: R,
) -> io::Result<()> {
    let raw = name.as_os_str().as_bytes();
    if raw.len() < 100 {
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        h.set_cksum();
        b.append(&h, data)
    } else {
        b.append_data(&mut h, name, data)
    }
}

fn append_header<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    st: &libc::stat,
    kind: tar::EntryType,
    size: u64,
) -> io::Result<()> {
    append_named(b, header_for(st, kind, size), name, io::empty())
}

fn append_link<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    st: &libc::stat,
    target: &Path,
) -> io::Result<()> {
    let mut h = header_for(st, tar::EntryType::Symlink, 0);
    let raw = target.as_os_str().as_bytes();
    if raw.len() < 100 && name.as_os_str().len() < 100 {
        h.as_old_mut().linkname[..raw.len()].copy_from_slice(raw);
        append_named(b, h, name, io::empty())
    } else {
        b.append_link(&mut h, name, target)
    }
}

fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    st: &libc::stat,
    fd: OwnedFd,
) -> io::Result<()> {
    let file = std::fs::File::from(fd);
    let size = file.metadata()?.len();
    let h = header_for(st, tar::EntryType::Regular, size);
    append_named(b, h, name, file.take(size))
}

fn append_special<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    st: &libc::stat,
) -> io::Result<()> {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => tar::EntryType::Fifo,
        libc::S_IFCHR => tar::EntryType::Char,
        libc::S_IFBLK => tar::EntryType::Block,
        _ => return Ok(()), // sockets are not archived
    };
    let mut h = header_for(st, kind, 0);
    h.set_device_major(libc::major(st.st_rdev))?;
    h.set_device_minor(libc::minor(st.st_rdev))?;
    append_named(b, h, name, io::empty())
}

/// Archives the entries below `dir`, opening each relative to its parent without following.
fn walk_dir<W: Write>(b: &mut tar::Builder<W>, dir: OwnedFd, prefix: &Path) -> io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(fd_path(dir.as_fd()))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for n in names {
        let Ok(st) = fstatat_nofollow(dir.as_fd(), &n) else {
            continue; // removed meanwhile
        };
        let name = prefix.join(&n);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                append_header(b, &name, &st, tar::EntryType::Directory, 0)?;
                let sub = openat_nofollow(dir.as_fd(), &n, libc::O_RDONLY | libc::O_DIRECTORY)?;
                walk_dir(b, sub, &name)?;
            }
            libc::S_IFREG => {
                let f = openat_nofollow(dir.as_fd(), &n, libc::O_RDONLY)?;
                append_file(b, &name, &st, f)?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(dir.as_fd(), &n)?;
                append_link(b, &name, &st, &target)?;
            }
            _ => append_special(b, &name, &st)?,
        }
    }
    Ok(())
}

/// Extracts the tar in `archive` into directory `path` inside the root. With
/// `no_overwrite_dir_non_dir`, an entry that would replace a directory with a non-directory (or
/// the reverse) fails the whole copy before anything is written.
pub fn extract_in_root(
    root_fd: BorrowedFd<'_>,
    path: &str,
    archive: &mut std::fs::File,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
    id_shift: Option<berth_image::unpack::IdShift>,
) -> std::result::Result<(), ApiError> {
    let dir =
        open_in_root(root_fd, Path::new(path), libc::O_PATH).map_err(|e| map_open_err(e, path))?;
    let st = fstat(dir.as_fd()).map_err(internal)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(ApiError::invalid("extraction point is not a directory"));
    }
    if no_overwrite_dir_non_dir {
        archive.rewind().map_err(internal)?;
        let mut ar = tar::Archive::new(&mut *archive);
        for entry in ar.entries().map_err(|e| ApiError::invalid(e.to_string()))? {
            let entry = entry.map_err(|e| ApiError::invalid(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| ApiError::invalid(e.to_string()))?
                .into_owned();
            let is_dir = entry.header().entry_type().is_dir();
            let existing = open_beneath(dir.as_fd(), &name).and_then(|fd| fstat(fd.as_fd()));
            if let Ok(ex) = existing {
                let ex_dir = ex.st_mode & libc::S_IFMT == libc::S_IFDIR;
                let shown = Path::new(path).join(&name).display().to_string();
                if ex_dir && !is_dir {
                    return Err(ApiError::invalid(format!(
                        "cannot overwrite directory {shown:?} with non-directory {:?}",
                        name.display().to_string()
                    )));
                }
                if !ex_dir && is_dir {
                    return Err(ApiError::invalid(format!(
                        "cannot overwrite non-directory {shown:?} with directory {:?}",
                        name.display().to_string()
                    )));
                }
            }
        }
    }
    archive.rewind().map_err(internal)?;
    // A directory fd (not O_PATH) keeps `/proc/self/fd/N` pointing at the resolved directory.
    let target = open_in_root(root_fd, Path::new(path), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| map_open_err(e, path))?;
    let opts = berth_image::unpack::UnpackOptions {
        whiteouts: false,
        preserve_owner: copy_uid_gid,
        xattrs: false,
        id_shift,
    };
    let mut reader = io::BufReader::new(&mut *archive);
    berth_image::unpack::unpack(&mut reader, &fd_path(target.as_fd()), opts)
        .map_err(|e| ApiError::invalid(format!("extracting archive: {e}")))?;
    Ok(())
}

/// The uploaded tar as a plain tar: the API takes it uncompressed or compressed with gzip,
/// bzip2 or xz (zstd too), told apart by their magic bytes. A compressed upload is inflated
/// into a second spool file, since extraction reads the archive twice.
fn decompressed(
    mut spool: std::fs::File,
    tmp_dir: &Path,
) -> std::result::Result<std::fs::File, ApiError> {
    spool.rewind().map_err(internal)?;
    let mut magic = [0u8; 6];
    let n = spool.read(&mut magic).map_err(internal)?;
    spool.rewind().map_err(internal)?;
    let compressed = [
        &[0x1f, 0x8b][..],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ]
    .iter()
    .any(|m| magic[..n].starts_with(m));
    if !compressed {
        return Ok(spool);
    }
    let mut plain = tempfile::tempfile_in(tmp_dir).map_err(internal)?;
    let mut reader = berth_image::store::decompress(io::BufReader::new(spool))
        .map_err(|e| ApiError::invalid(format!("decompressing archive: {e}")))?;
    io::copy(&mut reader, &mut plain)
        .map_err(|e| ApiError::invalid(format!("decompressing archive: {e}")))?;
    Ok(plain)
}

/// Opens `rel` below `dir` for a look only, refusing symlinks and escapes.
fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    crate::sys::openat2(
        dir,
        rel,
        libc::O_PATH | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
}

fn not_found_in(e: io::Error, path: &str, container: &str) -> ApiError {
    let mut err = map_open_err(e, path);
    if err.kind == berth_api_types::ErrorKind::NotFound {
        err.message = format!("Could not find the file {path} in container {container}");
    }
    err
}

fn map_open_err(e: io::Error, path: &str) -> ApiError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            ApiError::not_found(format!("Could not find the file {path} in container"))
        }
        _ => ApiError::internal(format!("{path}: {e}")),
    }
}

/// Where an archive operation finds the container's root.
enum RootPlan {
    /// A root already mounted and visible from here (`/proc/<pid>/root` of a running
    /// container, or an overlay a start left mounted).
    Ready(PathBuf),
    /// A stopped container: its overlay and its volumes and binds are mounted in a private
    /// mount namespace for the duration of the operation only.
    Stopped {
        rootfs: PathBuf,
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        mounts: Vec<crate::model::MountRecord>,
    },
}

/// Runs `f` on a thread of its own with the container's root open. For a stopped container the
/// thread first moves into a new mount namespace (slave of the host's, so nothing it mounts
/// propagates back): the mounts vanish with the thread, even if the daemon dies mid-copy.
async fn with_root<T: Send + 'static>(
    plan: RootPlan,
    f: impl FnOnce(&Path, BorrowedFd<'_>) -> std::result::Result<T, ApiError> + Send + 'static,
) -> std::result::Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run_in_root(plan, f));
    });
    rx.await
        .map_err(|_| internal("archive worker thread ended without an answer"))?
}

fn run_in_root<T>(
    plan: RootPlan,
    f: impl FnOnce(&Path, BorrowedFd<'_>) -> std::result::Result<T, ApiError>,
) -> std::result::Result<T, ApiError> {
    match plan {
        RootPlan::Ready(root) => {
            let fd = open_dir(&root).map_err(internal)?;
            f(&root, fd.as_fd())
        }
        RootPlan::Stopped {
            rootfs,
            lowers,
            upper,
            mounts,
        } => {
            use nix::mount::MsFlags;
            // CLONE_NEWNS implies CLONE_FS, which a single thread of a threaded process may
            // unshare; the namespace dies with this thread.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| internal(format!("private mount namespace: {e}")))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(|e| internal(format!("making mounts private: {e}")))?;
            let work = upper.with_file_name("work");
            // A leftover work dir from an unclean stop makes overlayfs refuse the mount.
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).map_err(internal)?;
            berth_image::overlay::mount_overlay(&lowers, &upper, &work, &rootfs)
                .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
            let root_fd = open_dir(&rootfs).map_err(internal)?;
            let mut mounts: Vec<_> = mounts.iter().filter(|m| m.kind != "tmpfs").collect();
            mounts.sort_by_key(|m| Path::new(&m.destination).components().count());
            for m in mounts {
                bind_into_root(&rootfs, root_fd.as_fd(), m);
            }
            f(&rootfs, root_fd.as_fd())
        }
    }
}

/// Bind-mounts a volume or bind source at its destination inside `root` (private namespace).
fn bind_into_root(root: &Path, root_fd: BorrowedFd<'_>, m: &crate::model::MountRecord) {
    use nix::mount::MsFlags;
    let src = Path::new(&m.source);
    let Ok(src_md) = std::fs::metadata(src) else {
        return;
    };
    // Create the mount point inside the root, resolved without leaving it.
    if open_in_root(root_fd, Path::new(&m.destination), libc::O_PATH).is_err() {
        let Ok(target) = crate::sys::resolve_in_root(root, Path::new(&m.destination)) else {
            return;
        };
        let made = if src_md.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map(std::fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|_| std::fs::File::create(&target).map(|_| ()))
        };
        if made.is_err() {
            return;
        }
    }
    // The target is opened through the kernel resolver, so the bind lands inside the root.
    let Ok(tfd) = open_in_root(root_fd, Path::new(&m.destination), libc::O_PATH) else {
        return;
    };
    let tpath = fd_path(tfd.as_fd());
    if nix::mount::mount(
        Some(src),
        &tpath,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .is_ok()
        && !m.rw
    {
        if let Ok(t2) = open_in_root(root_fd, Path::new(&m.destination), libc::O_PATH) {
            let _ = nix::mount::mount(
                None::<&str>,
                &fd_path(t2.as_fd()),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            );
        }
    }
}

impl Daemon {
    /// How to reach the container's root. The caller holds the container's op lock.
    fn root_plan(&self, id: &str) -> Result<RootPlan> {
        let c = self.get(id).ok_or_else(|| no_such_container(id))?;
        if c.state.status.is_active() && c.state.pid > 0 {
            let path = PathBuf::from(format!("/proc/{}/root", c.state.pid));
            if path.exists() {
                return Ok(RootPlan::Ready(path));
            }
        }
        if self.runtime.is_mounted(id) {
            return Ok(RootPlan::Ready(self.runtime.rootfs(id)));
        }
        Ok(RootPlan::Stopped {
            rootfs: self.runtime.rootfs(id),
            lowers: self.container_lowers(&c)?,
            upper: self.runtime.upper_dir(id),
            mounts: c.mounts.clone(),
        })
    }

    fn archive_container(&self, key: &str) -> Result<crate::model::Container> {
        self.resolve_container(key)
    }

    pub async fn container_archive_stat(&self, key: &str, path: &str) -> Result<PathStat> {
        let c = self.archive_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let plan = self.root_plan(&c.id)?;
        let (p, k) = (path.to_string(), key.to_string());
        with_root(plan, move |root, fd| {
            stat_in_root(root, fd, &p).map_err(|e| not_found_in(e, &p, &k))
        })
        .await
    }

    pub async fn container_archive_get(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream)> {
        let c = self.archive_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let plan = self.root_plan(&c.id)?;
        let tmp_dir = self.cfg.data_root.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(internal)?;
        let (p, k) = (path.to_string(), key.to_string());
        let (stat, file) = with_root(plan, move |root, fd| {
            let stat = stat_in_root(root, fd, &p).map_err(|e| not_found_in(e, &p, &k))?;
            let archive = || -> io::Result<std::fs::File> {
                let file = tempfile::tempfile_in(&tmp_dir)?;
                let mut file = tar_in_root(fd, &p, io::BufWriter::new(file))?
                    .into_inner()
                    .map_err(|e| e.into_error())?;
                file.rewind()?;
                Ok(file)
            };
            let file = archive().map_err(|e| internal(format!("archiving {p}: {e}")))?;
            Ok((stat, file))
        })
        .await?;
        let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
        Ok((stat, Box::pin(stream)))
    }

    pub async fn container_archive_put(
        &self,
        key: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: ByteStream,
    ) -> Result<()> {
        use futures_util::StreamExt;
        let c = self.archive_container(key)?;
        if c.host_config.readonly_rootfs && !self.path_on_writable_mount(&c, path) {
            return Err(ApiError::new(
                berth_api_types::ErrorKind::Forbidden,
                "container rootfs is marked read-only",
            ));
        }
        // Spool the upload first: the client may be slow, and the op lock is held only for the
        // extraction itself.
        let tmp_dir = self.cfg.data_root.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(internal)?;
        let mut spool = tempfile::tempfile_in(&tmp_dir).map_err(internal)?;
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading upload: {e}")))?;
            if let Err(e) = spool.write_all(&chunk) {
                // A client still sending would get a broken pipe instead of this answer (a
                // full disk): the rest of the upload is read and dropped first, for a bounded
                // time.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(60), async {
                    while let Some(Ok(_)) = body.next().await {}
                })
                .await;
                return Err(internal(format!("spooling the upload: {e}")));
            }
        }
        let mut spool = tokio::task::spawn_blocking(move || decompressed(spool, &tmp_dir))
            .await
            .map_err(internal)??;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let plan = self.root_plan(&c.id)?;
        let (p, k) = (path.to_string(), key.to_string());
        // A remapped container's files belong to its root (dockerd's `RootPair`), or keep the
        // archive's owners shifted into its range with `-a`.
        let id_shift =
            crate::userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config)
                .map(crate::userns_remap::IdMap::shift);
        with_root(plan, move |_root, fd| {
            extract_in_root(
                fd,
                &p,
                &mut spool,
                no_overwrite_dir_non_dir,
                copy_uid_gid,
                id_shift,
            )
            .map_err(|mut e| {
                if e.kind == berth_api_types::ErrorKind::NotFound {
                    e.message = format!("Could not find the file {p} in container {k}");
                }
                e
            })
        })
        .await
    }

    fn path_on_writable_mount(&self, c: &crate::model::Container, path: &str) -> bool {
        let p = Path::new(path);
        c.mounts
            .iter()
            .any(|m| m.rw && p.starts_with(Path::new(&m.destination)))
            || c.host_config
                .tmpfs
                .iter()
                .flatten()
                .any(|(d, _)| p.starts_with(Path::new(d)))
    }
}

/// The root filesystem's entries, each with its subtree, named relative to the root and
/// without an entry for the root itself (dockerd's export has none).
pub(crate) fn append_root_entries<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    rootfs: &std::path::Path,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(rootfs)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if e.file_type()?.is_dir() {
            b.append_dir_all(&name, e.path())?;
        } else {
            b.append_path_with_name(e.path(), &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake container root with hostile symlinks, next to a "host" directory with a secret.
    fn hostile() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let host = dir.path().join("host");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("secret"), b"host secret").unwrap();
        std::fs::write(root.join("data/file"), b"inside").unwrap();
        // Absolute symlink to the host directory (by its real host path).
        symlink(&host, root.join("abs")).unwrap();
        // `..` chain that would climb out of root.
        symlink("../../../../../../..", root.join("up")).unwrap();
        symlink("../host", root.join("rel")).unwrap();
        // Loops.
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        (dir, root, host)
    }

    #[test]
    fn resolution_never_leaves_the_root() {
        let (_d, root, host) = hostile();
        let rfd = open_dir(&root).unwrap();
        // /abs → <host path> is re-read inside the root: that path does not exist there.
        let e = open_in_root(rfd.as_fd(), Path::new("/abs/secret"), libc::O_RDONLY);
        assert!(e.is_err(), "absolute symlink followed out of the root");
        // `..` chains clamp at the root: /up/data/file is /data/file.
        let f = open_in_root(rfd.as_fd(), Path::new("/up/data/file"), libc::O_RDONLY).unwrap();
        let mut s = String::new();
        std::fs::File::from(f).read_to_string(&mut s).unwrap();
        assert_eq!(s, "inside");
        // ../host from the root is /host inside the root: absent.
        assert!(open_in_root(rfd.as_fd(), Path::new("/rel/secret"), libc::O_RDONLY).is_err());
        assert!(
            open_in_root(rfd.as_fd(), Path::new("/../../host/secret"), libc::O_RDONLY).is_err()
        );
        let e = open_in_root(rfd.as_fd(), Path::new("/loop1"), libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert!(host.join("secret").exists());
    }

    #[test]
    fn tar_records_symlinks_without_following() {
        let (_d, root, _host) = hostile();
        let rfd = open_dir(&root).unwrap();
        let buf = tar_in_root(rfd.as_fd(), "/", Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            names.push(e.path().unwrap().display().to_string());
            assert_ne!(
                e.path().unwrap().file_name().and_then(|n| n.to_str()),
                Some("secret"),
                "followed a symlink out of the root"
            );
        }
        assert!(names.contains(&"./abs".to_string()), "{names:?}");
        assert!(names.contains(&"./data/file".to_string()), "{names:?}");
        // A symlinked final component is archived as the link itself.
        let buf = tar_in_root(rfd.as_fd(), "/abs", Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
        // With a trailing `/.` the directory's content comes with `.` names.
        let buf = tar_in_root(rfd.as_fd(), "/data/.", Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".", "./file"]);
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> std::fs::File {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Raw name bytes: hostile names (`..`) that `set_path` would refuse.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        f
    }

    #[test]
    fn extraction_through_hostile_symlinks_stays_inside() {
        let (_d, root, host) = hostile();
        let rfd = open_dir(&root).unwrap();
        // The destination itself is an absolute symlink to the host dir: resolved inside the root
        // it does not exist.
        let mut t = tar_of(&[("secret", b"pwned")]);
        let e = extract_in_root(rfd.as_fd(), "/abs", &mut t, true, false, None).unwrap_err();
        assert_eq!(e.kind, berth_api_types::ErrorKind::NotFound);
        // An entry going through a symlink in the destination is refused.
        let mut t = tar_of(&[("rel/secret", b"pwned")]);
        assert!(extract_in_root(rfd.as_fd(), "/", &mut t, false, false, None).is_err());
        let mut t = tar_of(&[("../../host/secret", b"pwned")]);
        let _ = extract_in_root(rfd.as_fd(), "/", &mut t, false, false, None);
        assert_eq!(std::fs::read(host.join("secret")).unwrap(), b"host secret");
        // A normal copy lands inside.
        let mut t = tar_of(&[("new.txt", b"hello")]);
        extract_in_root(rfd.as_fd(), "/up/data", &mut t, true, false, None).unwrap();
        assert_eq!(std::fs::read(root.join("data/new.txt")).unwrap(), b"hello");
        // noOverwriteDirNonDir refuses a file over a directory.
        let mut t = tar_of(&[("data", b"x")]);
        let e = extract_in_root(rfd.as_fd(), "/", &mut t, true, false, None).unwrap_err();
        assert!(e.message.contains("cannot overwrite directory"), "{e}");
        assert!(root.join("data").is_dir());
    }

    #[test]
    fn stat_shape() {
        let (_d, root, _host) = hostile();
        let rfd = open_dir(&root).unwrap();
        let s = stat_in_root(&root, rfd.as_fd(), "/data").unwrap();
        assert_eq!(s.name, "data");
        assert!(s.mode & go_mode::DIR != 0);
        let s = stat_in_root(&root, rfd.as_fd(), "/up").unwrap();
        assert!(s.mode & go_mode::SYMLINK != 0);
        assert_eq!(s.link_target, "/");
        let s = stat_in_root(&root, rfd.as_fd(), "/data/file").unwrap();
        assert_eq!((s.size, s.mode & 0o777), (6, 0o644));
        assert!(stat_in_root(&root, rfd.as_fd(), "/nope").is_err());
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), ".");
        assert_eq!(base_name("x"), "x");
    }
}
