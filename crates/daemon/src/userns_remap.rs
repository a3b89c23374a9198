//! `--userns-remap`: every container of a root daemon runs in a user namespace whose root is
//! the first id of a subordinate range, as dockerd's user-namespace remapping does.
//!
//! berthd resolves the user and its ranges (`berthd/src/remap.rs`); here live the mapping,
//! what create refuses (dockerd's rules) and the checks of the data root's path. The files a
//! remapped container needs owned by its root (layer views, init and writable layers) are
//! `remap_fs.rs`.

use std::os::unix::fs::MetadataExt;
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
    pub(crate) fn shift_uid(&self, id: u32) -> u32 {
        if id < self.uid_count {
            self.uid + id
        } else {
            id
        }
    }

    pub(crate) fn shift_gid(&self, id: u32) -> u32 {
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
}
