//! What Docker puts between a container's image and its writable layer, and the working
//! directory it creates at start.
//!
//! Docker gives every container an "init layer" (`<id>-init`) made at create: `/.dockerenv`,
//! `/etc/mtab -> /proc/mounts` and empty mount points for the files and file systems the runtime
//! mounts (`/etc/hosts`, `/proc`, …), each only when the image lacks it. It sits below the
//! writable layer, so `docker diff` and `docker commit` never show it, while `docker export`
//! (the merged view) does. Its contents depend on the image alone, and it is never written
//! (it is a lower layer), so berth makes it once per image top layer, next to that layer's
//! unpacked files (`layers/<chain id>/init`), and every container of the image mounts it as its
//! topmost lower layer: a start makes none of its ten entries (on this VM's ext4 each new file
//! or directory costs 0.1–0.5 ms). A container keeps a directory of its own next to its upper
//! directory where one cannot be shared: a remapped container (`--userns-remap`: the layer is
//! given to its root), an image without layers, and containers made by earlier berths.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_api_types::ApiError;

use crate::model::Container;
use crate::sys::{fstatat_nofollow, open_dir, open_in_root, readlinkat};
use crate::{internal, Daemon, Result};

/// What the init layer holds when the image does not: path, and `None` for an empty
/// directory, `Some("")` for an empty file, `Some(target)` for a symlink.
const INIT_ENTRIES: &[(&str, Option<&str>)] = &[
    ("dev/pts", None),
    ("dev/shm", None),
    ("proc", None),
    ("sys", None),
    (".dockerenv", Some("")),
    ("etc/resolv.conf", Some("")),
    ("etc/hosts", Some("")),
    ("etc/hostname", Some("")),
    ("dev/console", Some("")),
    ("etc/mtab", Some("/proc/mounts")),
];

/// How a shared init layer being made is named in its layer's directory (`init.tmp-<pid>-<ns>`),
/// until it is renamed to `init`; one left by a crash is collected (`crash_gc`).
pub(crate) const INIT_TMP_PREFIX: &str = "init.tmp-";

/// A container's own init layer directory (next to its `upper` directory).
pub(crate) fn init_dir(upper: &Path) -> PathBuf {
    upper.with_file_name("init")
}

/// `lowers` (top first) with the init layer `init` in front, made first if it is missing.
pub(crate) fn with_init_layer(init: PathBuf, lowers: Vec<PathBuf>) -> io::Result<Vec<PathBuf>> {
    if !init.is_dir() {
        // Made aside and renamed into place: a half-made layer is never used, and two callers
        // at once (a start and an export) do not trip over each other.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let tmp = init.with_file_name(format!("{INIT_TMP_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir(&tmp)?;
        let made = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .and_then(|()| populate(&tmp, &lowers))
            .and_then(|()| std::fs::rename(&tmp, &init));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            if !init.is_dir() {
                return Err(e);
            }
        }
    }
    Ok(std::iter::once(init).chain(lowers).collect())
}

/// How `rel` looks in the merged image layers: the topmost layer's entry, `None` when no layer
/// has it or the topmost one deletes it (an overlay whiteout).
fn lookup(lowers: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    for l in lowers {
        if let Ok(md) = std::fs::symlink_metadata(l.join(rel)) {
            let whiteout = md.file_type().is_char_device() && md.rdev() == 0;
            return (!whiteout).then_some(md);
        }
    }
    None
}

/// Fills a new init layer at `dir` for an image with `lowers` (top first).
pub(crate) fn populate(dir: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    'entries: for (path, kind) in INIT_ENTRIES {
        let rel = Path::new(path);
        if lookup(lowers, rel).is_some() {
            continue;
        }
        // Parents: the image's directory (its mode and owner, which the init layer's copy
        // shadows in the overlay), or a new 0755 one; never through an image's symlink.
        let mut parent = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            parent.push(c);
            let here = dir.join(&parent);
            if here.is_dir() {
                continue;
            }
            match lookup(lowers, &parent) {
                Some(md) if md.is_dir() => {
                    std::fs::create_dir(&here)?;
                    std::fs::set_permissions(&here, md.permissions())?;
                    std::os::unix::fs::lchown(&here, Some(md.uid()), Some(md.gid()))?;
                    if let (Ok(a), Ok(m)) = (md.accessed(), md.modified()) {
                        let times = std::fs::FileTimes::new().set_accessed(a).set_modified(m);
                        std::fs::File::open(&here)?.set_times(times)?;
                    }
                }
                Some(_) => continue 'entries,
                None => {
                    std::fs::create_dir(&here)?;
                    std::fs::set_permissions(&here, std::fs::Permissions::from_mode(0o755))?;
                }
            }
        }
        let target = dir.join(rel);
        match kind {
            None => {
                std::fs::create_dir(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
            }
            Some("") => {
                std::fs::File::create(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
            }
            Some(link) => std::os::unix::fs::symlink(link, &target)?,
        }
    }
    Ok(())
}

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
    /// The lower layers of a container's overlay, top first: its init layer, then the image's.
    pub(crate) fn container_lowers(&self, c: &Container) -> Result<Vec<PathBuf>> {
        let lowers = self.lower_dirs(c.top_layer.as_deref())?;
        with_init_layer(self.init_layer_of(c), lowers)
            .map_err(|e| internal(format!("preparing the init layer: {e}")))
    }

    /// Puts the container's init layer in front of `lowers` when it exists (inspect's
    /// `GraphDriver.Data`, which must not make it).
    pub(crate) fn show_init_layer(&self, c: &Container, lowers: &mut Vec<PathBuf>) {
        let init = self.init_layer_of(c);
        if init.is_dir() {
            lowers.insert(0, init);
        }
    }

    /// Where the container's init layer is: the one its image's top layer shares, else (see
    /// the module's text) a directory of its own.
    fn init_layer_of(&self, c: &Container) -> PathBuf {
        let own = init_dir(&self.runtime.upper_dir(&c.id));
        let remapped =
            crate::userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config)
                .is_some();
        if remapped || own.is_dir() {
            return own;
        }
        match c
            .top_layer
            .as_deref()
            .map(berth_image::digest::Digest::parse)
        {
            Some(Ok(top)) => self.images.init_layer_dir(&top),
            _ => own,
        }
    }

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

    #[test]
    fn init_layer_fills_only_what_the_image_lacks() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        let base = d.path().join("base");
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::set_permissions(top.join("etc"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::create_dir_all(base.join("proc")).unwrap();
        std::fs::write(base.join("etc/hosts"), "127.0.0.1 x\n").unwrap();
        // `dev` is a symlink in the image: nothing is made under it.
        std::os::unix::fs::symlink("/somewhere", base.join("dev")).unwrap();
        let upper = d.path().join("fs/upper");
        std::fs::create_dir_all(&upper).unwrap();
        let init = init_dir(&upper);
        assert_eq!(init, d.path().join("fs/init"));
        let lowers = with_init_layer(init.clone(), vec![top.clone(), base.clone()]).unwrap();
        assert_eq!(lowers, vec![init.clone(), top, base]);
        assert_eq!(std::fs::metadata(init.join(".dockerenv")).unwrap().len(), 0);
        assert_eq!(
            std::fs::read_link(init.join("etc/mtab")).unwrap(),
            Path::new("/proc/mounts")
        );
        let etc = std::fs::metadata(init.join("etc")).unwrap();
        assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
        assert!(init.join("etc/hostname").is_file());
        assert!(!init.join("etc/hosts").exists());
        assert!(!init.join("proc").exists());
        assert!(init.join("sys").is_dir());
        assert!(std::fs::symlink_metadata(init.join("dev")).is_err());
        assert_eq!(std::fs::read_dir(d.path().join("fs")).unwrap().count(), 2);
        // Made once: a second mount reuses it.
        std::fs::remove_file(init.join(".dockerenv")).unwrap();
        with_init_layer(init.clone(), vec![]).unwrap();
        assert!(!init.join(".dockerenv").exists());
    }

    #[test]
    fn a_whiteout_hides_the_lower_entry() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        let base = d.path().join("base");
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::os::unix::fs::symlink("/proc/self/mounts", base.join("etc/mtab")).unwrap();
        assert!(lookup(&[top.clone(), base.clone()], Path::new("etc/mtab")).is_some());
        let c = CString::new(top.join("etc/mtab").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path; a 0/0 character device is overlayfs' whiteout.
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) } != 0 {
            return; // not root: no device nodes
        }
        assert!(lookup(&[top, base], Path::new("etc/mtab")).is_none());
    }
}
