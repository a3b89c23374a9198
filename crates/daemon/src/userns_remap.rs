//! `--userns-remap`: every container of a root daemon runs in a user namespace whose root is
//! the first id of a subordinate range, as dockerd's user-namespace remapping does.
//!
//! berthd resolves the user and its ranges (`berthd/src/remap.rs`); here live what create
//! refuses (dockerd's rules), the id mappings of the OCI spec and the files a remapped
//! container needs owned by its root: image layers are owned by host root and would show as
//! `nobody` inside, so each layer is copied once per mapping with its owners shifted into the
//! range (dockerd's fallback without idmapped mounts), under `<data-root>/remap/<uid>.<gid>/`.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_api_types::container::HostConfig;
use berth_api_types::ApiError;

/// The mapping of a remapped daemon: container ids `0..count` are host ids `start..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    /// The user (and group) whose subordinate ranges these are, `user:group` as dockerd
    /// shows it in `docker info`'s root dir.
    pub name: String,
    pub uid: u32,
    pub uid_count: u32,
    pub gid: u32,
    pub gid_count: u32,
}

impl IdMap {
    /// The host uid and gid of container root.
    pub fn root(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// The same mapping for the unpacker (`docker cp` into a container).
    pub fn shift(&self) -> berth_image::unpack::IdShift {
        berth_image::unpack::IdShift {
            uid: self.uid,
            uid_count: self.uid_count,
            gid: self.gid,
            gid_count: self.gid_count,
        }
    }

    /// `<uid>.<gid>`, the name of this mapping's directory (as dockerd names its remapped root).
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.uid, self.gid)
    }

    /// The host id of container uid `id`; ids past the range (and ids already shifted) stay.
    fn shift_uid(&self, id: u32) -> u32 {
        if id < self.uid_count {
            self.uid + id
        } else {
            id
        }
    }

    fn shift_gid(&self, id: u32) -> u32 {
        if id < self.gid_count {
            self.gid + id
        } else {
            id
        }
    }
}

/// The mapping a container runs with: the daemon's, unless it opted out with `--userns=host`.
pub(crate) fn for_container<'a>(remap: Option<&'a IdMap>, hc: &HostConfig) -> Option<&'a IdMap> {
    remap.filter(|_| hc.userns_mode != "host")
}

/// dockerd's checks of `UsernsMode` and of what a remapped container cannot share with the
/// host (moby `verifyPlatformContainerSettings`).
pub(crate) fn check_create(hc: &HostConfig, remap: Option<&IdMap>) -> Result<(), ApiError> {
    if !matches!(hc.userns_mode.as_str(), "" | "host") {
        return Err(ApiError::invalid(format!(
            "invalid USER mode: {}",
            hc.userns_mode
        )));
    }
    if for_container(remap, hc).is_none() {
        return Ok(());
    }
    if hc.privileged {
        return Err(ApiError::invalid(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        ));
    }
    if hc.network_mode == "host" {
        return Err(ApiError::invalid(
            "cannot share the host's network namespace when user namespaces are enabled",
        ));
    }
    if hc.pid_mode == "host" {
        return Err(ApiError::invalid(
            "cannot share the host PID namespace when user namespaces are enabled",
        ));
    }
    Ok(())
}

/// The user namespace a remapped container joins along with another container's network,
/// PID or IPC namespace (`ns` is that container's `/proc/<pid>/ns/<type>`), as dockerd does:
/// namespaces owned by another user namespace can only be joined from inside it. A target in
/// the host's user namespace (`--userns=host`) cannot be joined.
pub(crate) fn userns_of_join(ns: &Path) -> Result<PathBuf, ApiError> {
    let user = ns
        .parent()
        .map(|d| d.join("user"))
        .ok_or_else(|| ApiError::invalid(format!("no user namespace beside {}", ns.display())))?;
    let ino = |p: &Path| std::fs::metadata(p).map(|m| m.ino());
    match (ino(&user), ino(Path::new("/proc/self/ns/user"))) {
        (Ok(a), Ok(b)) if a != b => Ok(user),
        (Ok(_), Ok(_)) => Err(ApiError::invalid(
            "cannot share the namespaces of a container in the host's user namespace (--userns=host) when user namespaces are enabled",
        )),
        (Err(e), _) | (_, Err(e)) => Err(ApiError::internal(format!(
            "reading {}: {e}",
            user.display()
        ))),
    }
}

/// Where the shifted copies of one mapping's layers live.
pub(crate) fn remap_dir(data_root: &Path, map: &IdMap) -> PathBuf {
    data_root.join("remap").join(map.dir_name())
}

/// The name a layer directory's copy goes by: the layer's chain id for `layers/<hex>/diff`,
/// else the directory's own name (the empty layer).
fn layer_key(lower: &Path) -> String {
    let name = lower.file_name().map(|n| n.to_string_lossy().into_owned());
    match name.as_deref() {
        Some("diff") => lower
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "diff".into()),
        Some(n) => n.to_string(),
        None => "root".into(),
    }
}

/// Set once idmapped mounts failed here: later starts go straight to the copies.
static IDMAP_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `lowers` (image layers, top first) as the remapped root sees them: idmapped mounts where
/// the kernel and the file system allow them, else shifted copies.
pub(crate) fn remapped_layers(
    data_root: &Path,
    map: &IdMap,
    lowers: &[PathBuf],
) -> io::Result<Vec<PathBuf>> {
    use std::sync::atomic::Ordering;
    // `BERTHD_USERNS_REMAP_COPY=1` forces the copies (tests of that path on any kernel).
    let forced_copy = std::env::var_os("BERTHD_USERNS_REMAP_COPY").is_some_and(|v| v == "1");
    if !forced_copy && crate::idmapped::kernel_supports() && !IDMAP_FAILED.load(Ordering::Relaxed) {
        let dir = remap_dir(data_root, map);
        match crate::idmapped::mount_layers(&dir, map, lowers, layer_key) {
            Ok(views) => return Ok(views),
            Err(e) => {
                IDMAP_FAILED.store(true, Ordering::Relaxed);
                tracing::warn!("--userns-remap: idmapped mounts unavailable ({e}); copying layers with shifted owners instead");
            }
        }
    }
    shifted_layers(data_root, map, lowers)
}

/// `lowers` (image layers, top first) replaced by their copies with owners shifted into
/// `map`, each made on first use. A copy is made under a temporary name and renamed into
/// place, so two starts at once never see a half-made one: the loser discards its own.
pub(crate) fn shifted_layers(
    data_root: &Path,
    map: &IdMap,
    lowers: &[PathBuf],
) -> io::Result<Vec<PathBuf>> {
    let dir = remap_dir(data_root, map);
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::with_capacity(lowers.len());
    for lower in lowers {
        let dest = dir.join(layer_key(lower));
        if !dest.is_dir() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let tmp = dir.join(format!(
                ".tmp-{}-{}-{nanos}",
                layer_key(lower),
                std::process::id()
            ));
            let made = copy_tree(lower, &tmp)
                .and_then(|()| shift_tree(&tmp, map))
                .and_then(|()| std::fs::rename(&tmp, &dest));
            if let Err(e) = made {
                let _ = std::fs::remove_dir_all(&tmp);
                if !dest.is_dir() {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("remapping layer {}: {e}", lower.display()),
                    ));
                }
            }
        }
        out.push(dest);
    }
    Ok(out)
}

/// Removes every mapping's copy of the layer with chain id `hex` (its layer was removed).
pub(crate) fn forget_layer(data_root: &Path, hex: &str) {
    crate::idmapped::forget(&data_root.join("remap"), hex);
    let Ok(maps) = std::fs::read_dir(data_root.join("remap")) else {
        return;
    };
    for m in maps.flatten() {
        let copy = m.path().join(hex);
        if copy.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&copy) {
                tracing::warn!("removing {}: {e}", copy.display());
            }
        }
    }
}

/// `cp -a` (owners, modes, xattrs such as overlay's opaque markers, device nodes such as its
/// whiteouts, hard links), sharing blocks where the file system can.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let out = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(src)
        .arg(dst)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cp -a: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Shifts the owner of `root` and of everything under it into `map` (never following a
/// symlink). chown(2) clears the set-user-id and set-group-id bits of a file (even for root
/// since Linux 2.2.13): they are put back. Ids already in the range are left as they are, so
/// shifting twice is shifting once.
pub(crate) fn shift_tree(root: &Path, map: &IdMap) -> io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p)?;
        let (uid, gid) = (map.shift_uid(md.uid()), map.shift_gid(md.gid()));
        if (uid, gid) != (md.uid(), md.gid()) {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
            let special = md.mode() & 0o6000;
            if special != 0 && !md.file_type().is_symlink() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            }
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}

/// Shifts the owners of the directories of `dir` (an absolute path inside the container, such
/// as its working directory) that the daemon made as host root in the container's mounted
/// `rootfs`; what the container or a layer made is shifted already and stays. Through the
/// mount, not in the upper directory: overlayfs keeps its own copy of an inode's owner.
/// A symlink ends the walk (it would lead elsewhere than the container sees).
pub(crate) fn shift_made_dirs(rootfs: &Path, dir: &str, map: &IdMap) -> io::Result<()> {
    let mut p = rootfs.to_path_buf();
    for part in Path::new(dir).components() {
        if let std::path::Component::Normal(name) = part {
            p.push(name);
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                break;
            };
            if !md.is_dir() {
                break;
            }
            let (uid, gid) = (map.shift_uid(md.uid()), map.shift_gid(md.gid()));
            if (uid, gid) != (md.uid(), md.gid()) {
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}

/// Gives `path` (only it) to the remapped root.
pub(crate) fn chown_root(path: &Path, map: &IdMap) -> io::Result<()> {
    let (uid, gid) = map.root();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Every directory above `data_root` must let the remapped root through (`o+x`), or its
/// containers cannot reach their root file systems; dockerd refuses to start otherwise.
pub fn check_path_access(data_root: &Path) -> Result<(), String> {
    for dir in data_root.ancestors().skip(1) {
        if dir.as_os_str().is_empty() || dir == Path::new("/") {
            break;
        }
        let Ok(md) = std::fs::metadata(dir) else {
            continue;
        };
        if md.mode() & 0o001 == 0 {
            return Err(format!(
                "a directory in the path of the data root ({}) restricts access to the remapped root: allow o+x on {}",
                data_root.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> IdMap {
        IdMap {
            name: "u:u".into(),
            uid: 100_000,
            uid_count: 65536,
            gid: 200_000,
            gid_count: 65536,
        }
    }

    fn hc(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    #[test]
    fn create_follows_dockerds_rules() {
        let m = map();
        let err = |h: HostConfig, remap: Option<&IdMap>| {
            check_create(&h, remap).map_err(|e| e.message).err()
        };
        assert_eq!(err(hc(|_| {}), Some(&m)), None);
        assert_eq!(
            err(hc(|h| h.userns_mode = "private".into()), None).as_deref(),
            Some("invalid USER mode: private")
        );
        assert!(err(hc(|h| h.privileged = true), Some(&m))
            .unwrap()
            .starts_with("privileged mode is incompatible with user namespaces"));
        assert!(err(hc(|h| h.network_mode = "host".into()), Some(&m))
            .unwrap()
            .contains("host's network namespace"));
        assert!(err(hc(|h| h.pid_mode = "host".into()), Some(&m))
            .unwrap()
            .contains("host PID namespace"));
        // `--userns=host` opts out; without remapping nothing is refused.
        let host = |h: &mut HostConfig| {
            h.userns_mode = "host".into();
            h.privileged = true;
            h.pid_mode = "host".into();
        };
        assert_eq!(err(hc(host), Some(&m)), None);
        assert_eq!(err(hc(|h| h.privileged = true), None), None);
        assert!(for_container(Some(&m), &hc(|h| h.userns_mode = "host".into())).is_none());
        assert_eq!(for_container(Some(&m), &hc(|_| {})), Some(&m));
    }

    #[test]
    fn layer_copies_are_named_by_chain_id() {
        assert_eq!(layer_key(Path::new("/d/image/layers/abc/diff")), "abc");
        assert_eq!(layer_key(Path::new("/d/image/layers/empty")), "empty");
    }

    #[test]
    fn shifting_maps_ids_into_the_range_once() {
        let m = map();
        assert_eq!(m.shift_uid(0), 100_000);
        assert_eq!(m.shift_uid(1000), 101_000);
        assert_eq!(m.shift_uid(100_000), 100_000);
        assert_eq!(m.shift_gid(5), 200_005);
        assert_eq!(m.dir_name(), "100000.200000");
        // docker cp's ids: inside the range or refused.
        assert_eq!(m.shift().to_host(0, 0), Some((100_000, 200_000)));
        assert_eq!(m.shift().to_host(65535, 1), Some((165_535, 200_001)));
        assert_eq!(m.shift().to_host(65536, 0), None);
    }

    #[test]
    #[ignore = "needs root (chown)"]
    fn a_shifted_copy_keeps_modes_and_shifts_owners() {
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("layers/abc/diff");
        std::fs::create_dir_all(layer.join("bin")).unwrap();
        let f = layer.join("bin/su");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("su", layer.join("bin/link")).unwrap();
        let m = map();
        let out = shifted_layers(d.path(), &m, std::slice::from_ref(&layer)).unwrap();
        assert_eq!(out, vec![d.path().join("remap/100000.200000/abc")]);
        let md = std::fs::metadata(out[0].join("bin/su")).unwrap();
        assert_eq!((md.uid(), md.gid()), (100_000, 200_000));
        assert_eq!(md.mode() & 0o7777, 0o4755);
        let l = std::fs::symlink_metadata(out[0].join("bin/link")).unwrap();
        assert_eq!(l.uid(), 100_000);
        // The original is untouched; a second use reuses the copy.
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), 0);
        assert_eq!(
            shifted_layers(d.path(), &m, std::slice::from_ref(&layer)).unwrap(),
            out
        );
        forget_layer(d.path(), "abc");
        assert!(!out[0].exists());
    }
}
