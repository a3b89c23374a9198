//! Resolving `Config.User` against the container's own `/etc/passwd` and `/etc/group`
//! (moby/sys/user `GetExecUserPath` semantics), reading those files strictly inside the rootfs.

use std::fs;
use std::io;
use std::path::Path;

use super::SpecError;

/// Largest uid/gid Docker accepts (moby/sys/user `maxID`).
const MAX_ID: u64 = 2_147_483_647;

/// Which of the user's `/etc/group` memberships in the image the container's process gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ImageGroups {
    /// Docker's rule: only when no group is given explicitly (`user`, not `user:group`).
    #[default]
    Docker,
    /// The CRI's `SupplementalGroupsPolicy` `Merge`: with an explicit group too.
    Merge,
    /// The CRI's `Strict`: never; only the groups asked for.
    Strict,
}

/// A user spec resolved against the container's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups from `/etc/group` membership (only when no group was given explicitly).
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, `/` when there is no entry.
    pub home: String,
    /// The user's name when it has a passwd entry.
    pub name: Option<String>,
}

pub use berth_image::inroot::resolve_in_root;

/// Reads a file of the container; a missing file reads as empty, like moby treats a missing
/// passwd or group file.
fn read_in_root(root: &Path, path: &str) -> Result<String, SpecError> {
    let host = resolve_in_root(root, Path::new(path)).map_err(|source| SpecError::Io {
        path: root.join(path.trim_start_matches('/')),
        source,
    })?;
    match fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(SpecError::Io { path: host, source }),
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_id(s: &str) -> Result<Option<u32>, SpecError> {
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_ID => Ok(u32::try_from(n).ok()),
        Ok(_) => Err(SpecError::User(
            "uids and gids must be in range 0-2147483647".into(),
        )),
        Err(_) => Ok(None),
    }
}

/// Resolves a Docker user spec (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) inside `rootfs`.
///
/// Numeric ids need no files; names must exist in the container's `/etc/passwd` / `/etc/group`.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser, SpecError> {
    resolve_user_with(rootfs, user, ImageGroups::Docker)
}

/// [`resolve_user`] with the image's group memberships given as `groups` says.
pub fn resolve_user_with(
    rootfs: &Path,
    user: &str,
    groups: ImageGroups,
) -> Result<ResolvedUser, SpecError> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let passwd = parse_passwd(&read_in_root(rootfs, "/etc/passwd")?);
    let uid_num = parse_id(user_arg)?;

    let entry = passwd.iter().find(|p| match uid_num {
        Some(uid) => p.uid == uid,
        None => p.name == user_arg,
    });
    let mut out = match (entry, uid_num) {
        (Some(p), _) => ResolvedUser {
            uid: p.uid,
            gid: p.gid,
            additional_gids: Vec::new(),
            home: if p.home.is_empty() {
                "/".into()
            } else {
                p.home.clone()
            },
            name: Some(p.name.clone()),
        },
        (None, Some(uid)) => ResolvedUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".into(),
            name: None,
        },
        (None, None) => {
            return Err(SpecError::User(format!(
                "unable to find user {user_arg}: no matching entries in passwd file"
            )))
        }
    };

    let explicit = group_arg.filter(|g| !g.is_empty());
    if let Some(group_arg) = explicit {
        let gid_num = parse_id(group_arg)?;
        let groups = parse_group(&read_in_root(rootfs, "/etc/group")?);
        let found = groups.iter().find(|g| match gid_num {
            Some(gid) => g.gid == gid,
            None => g.name == group_arg,
        });
        out.gid = match (found, gid_num) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(SpecError::User(format!(
                    "unable to find group {group_arg}: no matching entries in group file"
                )))
            }
        };
    }
    // Docker adds memberships only in the implicit form (moby/sys/user).
    let memberships = match groups {
        ImageGroups::Docker => explicit.is_none(),
        ImageGroups::Merge => true,
        ImageGroups::Strict => false,
    };
    if let (true, Some(name)) = (memberships, &out.name) {
        let groups = parse_group(&read_in_root(rootfs, "/etc/group")?);
        out.additional_gids = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.gid)
            .collect();
    }
    Ok(out)
}

/// Resolves `HostConfig.GroupAdd` entries (names or numeric gids) against the container's
/// `/etc/group` (moby/sys/user `GetAdditionalGroupsPath`).
pub fn additional_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, SpecError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let entries = parse_group(&read_in_root(rootfs, "/etc/group")?);
    let mut out = Vec::new();
    for g in groups {
        let gid_num = parse_id(g)?;
        let found = entries.iter().find(|e| match gid_num {
            Some(gid) => e.gid == gid,
            None => &e.name == g,
        });
        let gid = match (found, gid_num) {
            (Some(e), _) => e.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(SpecError::User(format!("unable to find group {g}")));
            }
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    #[test]
    fn default_is_root() {
        let r = rootfs();
        let u = resolve_user(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.additional_gids, vec![10]);
    }

    #[test]
    fn by_name_and_uid() {
        let r = rootfs();
        let u = resolve_user(r.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![10, 50]);
        assert_eq!(resolve_user(r.path(), "1000").unwrap(), u);
    }

    #[test]
    fn uid_gid_and_names_with_groups() {
        let r = rootfs();
        let u = resolve_user(r.path(), "1234:4321").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 4321, "/"));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user(r.path(), "app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(
            u.additional_gids.is_empty(),
            "explicit group: no supplementary groups"
        );
        let err = resolve_user(r.path(), "app:nogroup").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn the_cri_policies_merge_memberships_always_or_never() {
        let r = rootfs();
        let merge = resolve_user_with(r.path(), "1000:4321", ImageGroups::Merge).unwrap();
        assert_eq!((merge.uid, merge.gid), (1000, 4321));
        assert_eq!(
            merge.additional_gids,
            vec![10, 50],
            "with an explicit group too"
        );
        let strict = resolve_user_with(r.path(), "app", ImageGroups::Strict).unwrap();
        assert_eq!((strict.uid, strict.gid), (1000, 1000));
        assert!(strict.additional_gids.is_empty());
        // A uid without a passwd entry has no memberships to merge.
        let nobody = resolve_user_with(r.path(), "1234", ImageGroups::Merge).unwrap();
        assert!(nobody.additional_gids.is_empty());
    }

    #[test]
    fn numeric_ids_need_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let u = resolve_user(dir.path(), "42:7").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (42, 7, "/"));
        assert!(resolve_user(dir.path(), "").is_ok());
        assert!(resolve_user(dir.path(), "3000000000").is_err());
    }

    #[test]
    fn unknown_user_is_dockers_error() {
        let r = rootfs();
        let err = resolve_user(r.path(), "nosuch").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nosuch: no matching entries in passwd file"
        );
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_rootfs() {
        let r = tempfile::tempdir().unwrap();
        fs::create_dir_all(r.path().join("etc")).unwrap();
        fs::create_dir_all(r.path().join("real")).unwrap();
        fs::write(
            r.path().join("real/passwd"),
            "evil:x:4242:4242::/evil:/bin/sh\n",
        )
        .unwrap();
        // An absolute link that, followed on the host, would read the host's /etc/passwd.
        symlink("/real/passwd", r.path().join("etc/passwd")).unwrap();
        let u = resolve_user(r.path(), "evil").unwrap();
        assert_eq!(u.uid, 4242);
        assert!(
            resolve_user(r.path(), "root").is_err(),
            "host passwd must not be read"
        );

        // `..` cannot climb out either, and a link to a directory is followed inside the root.
        fs::remove_file(r.path().join("etc/passwd")).unwrap();
        symlink("../../../../real/passwd", r.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(r.path(), "evil").unwrap().uid, 4242);
        fs::remove_file(r.path().join("etc/passwd")).unwrap();
        fs::remove_dir(r.path().join("etc")).unwrap();
        symlink("/real", r.path().join("etc")).unwrap();
        assert_eq!(resolve_user(r.path(), "evil").unwrap().uid, 4242);
    }

    #[test]
    fn symlink_loops_fail() {
        let r = tempfile::tempdir().unwrap();
        fs::create_dir_all(r.path().join("etc")).unwrap();
        symlink("/etc/passwd", r.path().join("etc/passwd")).unwrap();
        assert!(resolve_user(r.path(), "app").is_err());
    }

    #[test]
    fn group_add() {
        let r = rootfs();
        assert_eq!(
            additional_groups(r.path(), &["staff".into(), "999".into()]).unwrap(),
            vec![50, 999]
        );
        assert!(additional_groups(r.path(), &["nope".into()]).is_err());
    }
}
