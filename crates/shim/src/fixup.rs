//! The created container's mounts, fixed between create and start in one helper process
//! that joins its mount namespace (`mountns::run_in`): the cgroup v1 hierarchies mounted
//! where the runtime could not (`cgroup_v1_mounts`), the cgroup mounts made read-only
//! (`cgroupfs`) and each bind given the propagation its options ask (`propagation`). The
//! container's mountinfo is read first and only what differs is done; most containers need
//! no helper at all.

use std::fs;
use std::path::PathBuf;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

use crate::mountinfo;

/// Why the container's mounts could not be fixed (its start fails).
#[derive(Debug, thiserror::Error)]
pub enum FixupError {
    #[error("reading the container's mounts: {0}")]
    Mounts(std::io::Error),
    #[error(
        "making the container's cgroup mounts read-only and setting its binds' propagation: {0}"
    )]
    Remount(crate::mountns::MountNsError),
    #[error("mounting the container's cgroup v1 hierarchies: {0}")]
    CgroupV1(std::io::Error),
}

/// The remounts the container with these mounts (its mountinfo) needs: the cgroup mounts
/// read-only first when `seal_cgroups`, then the binds' propagation.
pub fn plan(
    entries: &[mountinfo::Entry],
    spec: &Spec,
    seal_cgroups: bool,
) -> Vec<(PathBuf, MsFlags)> {
    let mut ops = if seal_cgroups {
        crate::cgroupfs::seal_ops(entries)
    } else {
        Vec::new()
    };
    ops.extend(crate::propagation::pending(entries, spec));
    ops
}

/// Fixes the mounts of the created container whose init is `pid`; with `mount_cgroups_v1`
/// it also gets its cgroup v1 hierarchies (the spec has no cgroup mount). Must be called
/// while the shim is single-threaded (the helper is forked).
pub fn apply(
    pid: i32,
    spec: &Spec,
    seal_cgroups: bool,
    mount_cgroups_v1: bool,
) -> Result<(), FixupError> {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).map_err(FixupError::Mounts)?;
    let ops = plan(&mountinfo::parse(&info), spec, seal_cgroups);
    let cgroup_trees = if mount_cgroups_v1 {
        let host = fs::read_to_string("/proc/self/mountinfo").map_err(FixupError::CgroupV1)?;
        let own =
            fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(FixupError::CgroupV1)?;
        let hs = crate::cgroup_v1_mounts::hierarchies(&mountinfo::parse(&host), &own);
        crate::cgroup_v1_mounts::clone_all(&hs).map_err(FixupError::CgroupV1)?
    } else {
        Vec::new()
    };
    if ops.is_empty() && !mount_cgroups_v1 {
        return Ok(());
    }
    crate::mountns::run_in(pid, || {
        if mount_cgroups_v1 {
            crate::cgroup_v1_mounts::attach_all(&cgroup_trees, seal_cgroups)?;
        }
        for (target, flags) in &ops {
            mount(None::<&str>, target, None::<&str>, *flags, None::<&str>)?;
        }
        Ok(())
    })
    .map_err(FixupError::Remount)
}
