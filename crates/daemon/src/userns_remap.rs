//! `--userns-remap`: every container of a root daemon runs in a user namespace mapped to
//! subordinate id ranges (its root is the first id of the lowest), as dockerd's
//! user-namespace remapping does.
//!
//! berthd resolves the user and its ranges (`berthd/src/remap.rs`); here live the mapping,
//! what create refuses (dockerd's rules) and the checks of the data root's path. The files a
//! remapped container needs owned by its root (layer views, init and writable layers) are
//! `remap_fs.rs`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_api_types::container::HostConfig;
use berth_api_types::ApiError;

pub use berth_image::unpack::IdRange;
use berth_image::unpack::{id_to_container, id_to_host};

/// The mapping of a remapped daemon: each subordinate range of the user (and of the group) is
/// one line of the user namespace's map, as dockerd's `createIDMap` makes them: the ranges by
/// their first host id, container ids from 0 on, contiguous. Container root is the first
/// id of the lowest range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    /// The user (and group) whose subordinate ranges these are, `user:group` as dockerd
    /// shows it in `docker info`'s root dir.
    pub name: String,
    uids: Vec<IdRange>,
    gids: Vec<IdRange>,
}

/// How many lines the kernel takes in a `uid_map` or `gid_map`: 340 since Linux 4.15, 5
/// before (`user_namespaces(7)`).
pub fn kernel_map_lines() -> usize {
    let Ok(u) = nix::sys::utsname::uname() else {
        return 5;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if (major, minor) >= (4, 15) {
        340
    } else {
        5
    }
}

/// dockerd's `createIDMap`: `ranges` (`(first host id, count)`) by first id, container ids
/// from 0 on. Empty ranges are left out; overlapping ones are refused (the kernel would).
fn map_lines(ranges: &[(u32, u32)], what: &str, max: usize) -> Result<Vec<IdRange>, String> {
    let mut sorted: Vec<(u32, u32)> = ranges.iter().copied().filter(|r| r.1 > 0).collect();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Err(format!("no {what} range to map"));
    }
    if sorted.len() > max {
        return Err(format!(
            "{} subordinate {what} ranges, more than the {max} lines this kernel takes in a user namespace's {what} map",
            sorted.len()
        ));
    }
    let mut out = Vec::with_capacity(sorted.len());
    let mut next: u32 = 0;
    for (i, (host, size)) in sorted.iter().copied().enumerate() {
        if let Some((prev, psize)) = i.checked_sub(1).map(|p| sorted[p]) {
            if u64::from(prev) + u64::from(psize) > u64::from(host) {
                return Err(format!(
                    "subordinate {what} ranges {prev}:{psize} and {host}:{size} overlap"
                ));
            }
        }
        out.push(IdRange {
            container: next,
            host,
            size,
        });
        next = next
            .checked_add(size)
            .ok_or_else(|| format!("subordinate {what} ranges hold more than 2^32 ids"))?;
    }
    Ok(out)
}

impl IdMap {
    /// The mapping of the subordinate ranges `uids` and `gids` (`(first host id, count)`,
    /// in any order), at most `max_lines` of each (see [`kernel_map_lines`]).
    pub fn from_ranges(
        name: &str,
        uids: &[(u32, u32)],
        gids: &[(u32, u32)],
        max_lines: usize,
    ) -> Result<IdMap, String> {
        Ok(IdMap {
            name: name.to_string(),
            uids: map_lines(uids, "uid", max_lines)?,
            gids: map_lines(gids, "gid", max_lines)?,
        })
    }

    /// The uid map's lines.
    pub fn uids(&self) -> &[IdRange] {
        &self.uids
    }

    /// The gid map's lines.
    pub fn gids(&self) -> &[IdRange] {
        &self.gids
    }

    /// How many gids the mapping holds.
    pub fn gid_count(&self) -> u32 {
        self.gids.iter().fold(0u32, |n, r| n.saturating_add(r.size))
    }

    /// The host uid and gid of container root.
    pub fn root(&self) -> (u32, u32) {
        self.shift().root()
    }

    /// The same mapping for the unpacker (`docker cp` into a container).
    pub fn shift(&self) -> berth_image::unpack::IdShift {
        berth_image::unpack::IdShift {
            uids: self.uids.clone(),
            gids: self.gids.clone(),
        }
    }

    /// `<uid>.<gid>`, the name of this mapping's directory (as dockerd names its remapped root).
    pub fn dir_name(&self) -> String {
        let (uid, gid) = self.root();
        format!("{uid}.{gid}")
    }

    /// The host uid of container uid `id`; ids no line maps stay.
    pub(crate) fn uid_to_host(&self, id: u32) -> u32 {
        id_to_host(&self.uids, id).unwrap_or(id)
    }

    pub(crate) fn gid_to_host(&self, id: u32) -> u32 {
        id_to_host(&self.gids, id).unwrap_or(id)
    }

    /// As [`IdMap::uid_to_host`], but a host id of the mapping is taken as shifted already and
    /// stays: shifting twice is shifting once (what the daemon shifts again at each start).
    pub(crate) fn shift_uid(&self, id: u32) -> u32 {
        match id_to_container(&self.uids, id) {
            Some(_) => id,
            None => self.uid_to_host(id),
        }
    }

    pub(crate) fn shift_gid(&self, id: u32) -> u32 {
        match id_to_container(&self.gids, id) {
            Some(_) => id,
            None => self.gid_to_host(id),
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

/// dockerd's layout for a remapped daemon: everything it keeps (containers, images, volumes,
/// its database) lives in `<root>/<uid>.<gid>`, named by the remapped root's host ids, so a
/// daemon with another mapping, or none, on the same root never sees containers whose files
/// carry other ids. As dockerd does, `root` and that directory become mode 0710, owned by
/// this process's uid and the remapped root's group: the remapped root passes through them
/// to its containers' files, other users do not.
pub fn remapped_data_root(root: &Path, map: &IdMap) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let (_, gid) = map.root();
    let dir = root.join(map.dir_name());
    for d in [root, dir.as_path()] {
        std::fs::create_dir_all(d)?;
        std::os::unix::fs::chown(d, Some(nix::unistd::geteuid().as_raw()), Some(gid))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o710))?;
    }
    Ok(dir)
}

/// Whether the remapped root (host ids `uid`, `gid`) may pass through a directory of mode
/// `mode` owned by `owner`:`group` (moby's `canAccess`).
fn can_pass(mode: u32, owner: u32, group: u32, (uid, gid): (u32, u32)) -> bool {
    mode & 0o001 != 0 || (owner == uid && mode & 0o100 != 0) || (group == gid && mode & 0o010 != 0)
}

/// Every directory above `data_root` must let the remapped root through, or its containers
/// cannot reach their root file systems; dockerd refuses to start otherwise.
pub fn check_path_access(data_root: &Path, map: &IdMap) -> Result<(), String> {
    for dir in data_root.ancestors().skip(1) {
        if dir.as_os_str().is_empty() || dir == Path::new("/") {
            break;
        }
        let Ok(md) = std::fs::metadata(dir) else {
            continue;
        };
        if !can_pass(md.mode(), md.uid(), md.gid(), map.root()) {
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
        IdMap::from_ranges("u:u", &[(100_000, 65536)], &[(200_000, 65536)], 340).unwrap()
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

    #[test]
    fn every_range_is_mapped_in_dockerds_order() {
        // Two uid ranges given out of order: sorted by host id, container ids contiguous.
        let m = IdMap::from_ranges(
            "u:g",
            &[(300_000, 1000), (100_000, 65536)],
            &[(200_000, 65536)],
            340,
        )
        .unwrap();
        let lines: Vec<_> = m
            .uids()
            .iter()
            .map(|r| (r.container, r.host, r.size))
            .collect();
        assert_eq!(lines, vec![(0, 100_000, 65536), (65536, 300_000, 1000)]);
        assert_eq!(m.root(), (100_000, 200_000));
        assert_eq!(m.dir_name(), "100000.200000");
        // Ids of the second part land in the second range.
        assert_eq!(m.uid_to_host(65536), 300_000);
        assert_eq!(m.uid_to_host(66535), 300_999);
        assert_eq!(m.uid_to_host(66536), 66536, "past the map: unchanged");
        assert_eq!(m.shift().to_host(65537, 1), Some((300_001, 200_001)));
        assert_eq!(m.shift().to_host(66536, 0), None);
        assert_eq!(m.shift().to_container(300_002, 200_003), (65538, 3));
        // Host ids of the mapping are shifted already.
        assert_eq!(m.shift_uid(300_005), 300_005);
        assert_eq!(m.shift_uid(100_005), 100_005);
        assert_eq!(m.shift_uid(7), 100_007);
        assert_eq!(m.gid_count(), 65536);
        // The kernel's limit on lines, empty and overlapping ranges.
        let three = [(1_000_000, 10), (2_000_000, 10), (3_000_000, 10)];
        let e = IdMap::from_ranges("u:g", &three, &three, 2).unwrap_err();
        assert!(e.contains("more than the 2 lines"), "{e}");
        assert!(IdMap::from_ranges("u:g", &three, &three, 3).is_ok());
        assert!(IdMap::from_ranges("u:g", &[], &three, 3)
            .unwrap_err()
            .contains("no uid range"));
        let e = IdMap::from_ranges("u:g", &[(100, 50), (120, 10)], &three, 3).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
    }

    #[test]
    fn the_remapped_root_passes_as_dockerd_lets_it() {
        let root = (100_000, 200_000);
        assert!(can_pass(0o701, 0, 0, root), "o+x");
        assert!(can_pass(0o710, 0, 200_000, root), "its group with g+x");
        assert!(can_pass(0o700, 100_000, 5, root), "its own with u+x");
        assert!(!can_pass(0o710, 0, 0, root), "root's group");
        assert!(!can_pass(0o770, 0, 7, root));
        assert!(!can_pass(0o600, 100_000, 200_000, root), "no x at all");
        // A real path: a 0700 directory above the data root stops it.
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("a/b/data");
        std::fs::create_dir_all(&data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let a = d.path().join("a");
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o700)).unwrap();
        let m = map();
        let e = check_path_access(&data, &m).unwrap_err();
        assert!(e.contains(&format!("allow o+x on {}", a.display())), "{e}");
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o711)).unwrap();
        if std::fs::metadata(d.path()).unwrap().mode() & 0o001 != 0 {
            check_path_access(&data, &m).unwrap();
        }
    }
}
