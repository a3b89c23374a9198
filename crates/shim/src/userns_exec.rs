//! exec into a container that has a user namespace of its own (`--userns-remap`).
//!
//! libcontainer 0.7's tenant builder joins every namespace of the container's init except its
//! user namespace, so an exec process would run as the host's root in the container's other
//! namespaces. The shim therefore has libcontainer make the exec process as root (uid 0, the
//! spec's capabilities), and this executor, in that process and before anything else of the
//! workload (the seccomp filter included, which forbids `setns`), joins the init's user
//! namespace: `setns` there is allowed to a process whose effective uid owns the namespace
//! (host root created it), whatever its capability sets. Joining grants every capability in
//! the namespace, so the process's own sets (bounding, effective, permitted, inheritable,
//! ambient) are read before and put back after, and the requested user and groups are set
//! inside, where they map to the subordinate range.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::executor::{capget, capset, SeccompExecutor};

/// Set in the exec process once it is in the user namespace with its user and capabilities.
static JOINED: AtomicBool = AtomicBool::new(false);

/// The user an exec process runs as inside the container's user namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

#[derive(Clone)]
pub struct UsernsExecutor {
    /// `/proc/<init>/ns/user`, opened by the shim and inherited by the exec process (kept
    /// open by the shim until the process exists).
    userns: RawFd,
    user: ExecUser,
    inner: Option<SeccompExecutor>,
}

impl UsernsExecutor {
    pub fn new(userns: RawFd, user: ExecUser, inner: Option<SeccompExecutor>) -> Self {
        UsernsExecutor {
            userns,
            user,
            inner,
        }
    }

    fn join(&self) -> std::io::Result<()> {
        if JOINED.load(Ordering::SeqCst) {
            return Ok(());
        }
        let caps = capget()?;
        let bounding = cap_bits(|c| prctl(libc::PR_CAPBSET_READ, c, 0) == 1);
        let ambient = cap_bits(|c| {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::c_ulong::try_from(libc::PR_CAP_AMBIENT_IS_SET).unwrap_or_default(),
                c,
            ) == 1
        });
        // SAFETY: setns on a namespace fd the shim opened and kept open; no memory involved.
        if unsafe { libc::setns(self.userns, libc::CLONE_NEWUSER) } != 0 {
            return Err(last("setns"));
        }
        nix::unistd::setgroups(
            &self
                .user
                .groups
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect::<Vec<_>>(),
        )?;
        let gid = nix::unistd::Gid::from_raw(self.user.gid);
        nix::unistd::setresgid(gid, gid, gid)?;
        // The bounding set is full after joining: drop what the process did not have, while
        // CAP_SETPCAP is still effective.
        for c in 0..64 {
            let unwanted = bounding & (1 << c) == 0 && prctl(libc::PR_CAPBSET_READ, c, 0) == 1;
            if unwanted && prctl(libc::PR_CAPBSET_DROP, c, 0) != 0 {
                return Err(last("drop a bounding capability"));
            }
        }
        // Keep the permitted set across the change of uid, then set the process's own sets.
        if prctl(libc::PR_SET_KEEPCAPS, 1, 0) != 0 {
            return Err(last("PR_SET_KEEPCAPS"));
        }
        let uid = nix::unistd::Uid::from_raw(self.user.uid);
        nix::unistd::setresuid(uid, uid, uid)?;
        if prctl(libc::PR_SET_KEEPCAPS, 0, 0) != 0 {
            return Err(last("PR_SET_KEEPCAPS"));
        }
        capset(&caps)?;
        for c in 0..64 {
            if ambient & (1 << c) != 0 {
                let raise = libc::c_ulong::try_from(libc::PR_CAP_AMBIENT_RAISE).unwrap_or_default();
                if prctl(libc::PR_CAP_AMBIENT, raise, c) != 0 {
                    return Err(last("raise an ambient capability"));
                }
            }
        }
        JOINED.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Executor for UsernsExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        self.join().map_err(|e| {
            ExecutorError::Other(format!("joining the container's user namespace: {e}"))
        })?;
        match &self.inner {
            Some(i) => i.exec(spec),
            None => DefaultExecutor {}.exec(spec),
        }
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.join().map_err(|e| {
            ExecutorValidationError::ArgValidationError(format!(
                "joining the container's user namespace: {e}"
            ))
        })?;
        match &self.inner {
            Some(i) => i.validate(spec),
            None => DefaultExecutor {}.validate(spec),
        }
    }
}

/// Takes the user out of an exec `process` (OCI JSON) and makes it root, which the
/// executor turns back into the user inside the user namespace.
pub fn take_user(process: &mut serde_json::Value) -> ExecUser {
    let user = process
        .get("user")
        .and_then(|u| u.as_object())
        .cloned()
        .unwrap_or_default();
    let id = |k: &str| {
        user.get(k)
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let groups = user
        .get("additionalGids")
        .and_then(|g| g.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                .collect()
        })
        .unwrap_or_default();
    let out = ExecUser {
        uid: id("uid"),
        gid: id("gid"),
        groups,
    };
    if let Some(obj) = process.as_object_mut() {
        // Anything else of the user (its umask) stays as it was.
        let mut root = user;
        root.insert("uid".into(), 0.into());
        root.insert("gid".into(), 0.into());
        root.remove("additionalGids");
        obj.insert("user".into(), serde_json::Value::Object(root));
    }
    out
}

/// Whether process `pid` is in a user namespace other than the shim's own.
pub fn in_other_userns(pid: i32) -> bool {
    let ino = |p: String| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    match (
        ino(format!("/proc/{pid}/ns/user")),
        ino("/proc/self/ns/user".into()),
    ) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

fn cap_bits(has: impl Fn(libc::c_ulong) -> bool) -> u64 {
    (0..64u32)
        .filter(|c| has(libc::c_ulong::from(*c)))
        .fold(0, |acc, c| acc | (1u64 << c))
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> libc::c_int {
    // SAFETY: the capability and keep-caps prctls take integer arguments only.
    unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) }
}

fn last(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_moves_to_the_executor() {
        let mut p = serde_json::json!({
            "args": ["id"],
            "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 18}
        });
        let u = take_user(&mut p);
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 100,
                groups: vec![5, 6]
            }
        );
        assert_eq!(
            p["user"],
            serde_json::json!({"uid": 0, "gid": 0, "umask": 18})
        );
        assert_eq!(p["args"], serde_json::json!(["id"]));
        assert_eq!(take_user(&mut serde_json::json!({})), ExecUser::default());
    }

    #[test]
    fn the_shim_is_in_its_own_user_namespace() {
        assert!(!in_other_userns(i32::try_from(std::process::id()).unwrap()));
    }
}
