//! `RUN --mount`s of a build step as container mounts, and the mount points the runtime
//! created for them taken out of the step's layer again.
//!
//! libcontainer creates a missing mount target (a directory, or an empty file for a file
//! or socket) in the container's root filesystem, which for a build step is the overlay
//! upper directory that becomes the layer. BuildKit removes such stubs; so does berth:
//! a target (and its parents) that is an empty file or directory in the upper directory
//! and exists in no lower layer was made for the mount and is removed before the diff.

use std::path::{Path, PathBuf};

use berth_builder::{RunConfig, RunMountKind};

use crate::model::MountRecord;

/// The container mounts of a step's `RunConfig`.
pub(crate) fn mount_records(run: &RunConfig) -> Vec<MountRecord> {
    run.mounts
        .iter()
        .map(|m| match &m.kind {
            RunMountKind::Bind(src) => MountRecord {
                kind: "bind".into(),
                source: src.display().to_string(),
                destination: m.target.clone(),
                mode: if m.readonly { "ro" } else { "rw" }.into(),
                rw: !m.readonly,
                propagation: "rprivate".into(),
                ..Default::default()
            },
            RunMountKind::Tmpfs(size) => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                MountRecord {
                    kind: "tmpfs".into(),
                    destination: m.target.clone(),
                    rw: true,
                    tmpfs_options: opts,
                    ..Default::default()
                }
            }
        })
        .collect()
}

fn in_any_lower(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn is_empty_stub(p: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return false;
    };
    if md.is_dir() {
        std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
    } else {
        md.is_file() && md.len() == 0
    }
}

/// Removes the mount points made for `targets` from `upper` (see the module comment).
pub(crate) fn remove_mount_stubs(upper: &Path, lowers: &[PathBuf], targets: &[String]) {
    let mut targets: Vec<PathBuf> = targets
        .iter()
        .map(|t| berth_builder::copy::clean_rel(t))
        .filter(|t| !t.as_os_str().is_empty())
        .collect();
    // Deepest first, so a stub inside another mount's stub goes before its parent.
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    for rel in targets {
        let mut cur = Some(rel.as_path());
        while let Some(r) = cur.filter(|r| !r.as_os_str().is_empty()) {
            let p = upper.join(r);
            if in_any_lower(lowers, r) || !is_empty_stub(&p) {
                break;
            }
            let removed = if p.is_dir() {
                std::fs::remove_dir(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if removed.is_err() {
                break;
            }
            cur = r.parent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_go_and_real_content_stays() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("root")).unwrap();
        // Stubs the runtime made: a secret file under new dirs, a cache dir under /root.
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(upper.join("root/.cache")).unwrap();
        // What the step itself wrote stays, and so does a non-empty target.
        std::fs::write(upper.join("root/out.txt"), "x").unwrap();
        std::fs::create_dir_all(upper.join("data")).unwrap();
        std::fs::write(upper.join("data/kept"), "y").unwrap();
        remove_mount_stubs(
            &upper,
            std::slice::from_ref(&lower),
            &[
                "/run/secrets/tok".into(),
                "/root/.cache".into(),
                "/data".into(),
            ],
        );
        assert!(!upper.join("run").exists(), "new parents of a stub go too");
        assert!(!upper.join("root/.cache").exists());
        assert!(upper.join("root/out.txt").exists());
        assert!(upper.join("data/kept").exists());
    }

    #[test]
    fn targets_that_exist_below_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("var/cache")).unwrap();
        std::fs::create_dir_all(upper.join("var/cache")).unwrap();
        remove_mount_stubs(&upper, &[lower], &["/var/cache".into()]);
        assert!(upper.join("var/cache").exists());
    }
}
