//! How the rootless daemon mounts overlays: the kernel's overlayfs in the user namespace
//! (Linux 5.11+ with `userxattr`), else `fuse-overlayfs` where it is installed (and
//! `/dev/fuse` is usable), else copies of the layers (`vfs`, `berth_image::copyfs`: slow and
//! large, but it needs nothing). Tried once at start on the data root's filesystem, so that
//! the choice is made before any container. `BERTHD_ROOTLESS_STORAGE=overlay`,
//! `fuse-overlayfs` or `vfs` insists on one (an error when it does not work).

use std::path::Path;

use anyhow::{bail, Result};

/// Picks the overlay driver (see the module comment).
pub fn choose(data_root: &Path) -> Result<()> {
    let forced = std::env::var("BERTHD_ROOTLESS_STORAGE").ok();
    match choose_overlay(data_root, forced.as_deref()) {
        Ok(()) => Ok(()),
        Err(e) if forced.is_none() => {
            tracing::warn!(
                "rootless storage: vfs (copies of the layers; slow and large), as no overlay works: {e:#}"
            );
            berth_image::overlay::use_copies();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The kernel's overlayfs or fuse-overlayfs, as `forced` (the environment's choice) allows.
fn choose_overlay(data_root: &Path, forced: Option<&str>) -> Result<()> {
    let kernel = match forced {
        Some("fuse-overlayfs") => None,
        Some("overlay") | None => Some(probe_overlay(data_root)),
        Some("vfs") => {
            berth_image::overlay::use_copies();
            tracing::info!("rootless storage: vfs");
            return Ok(());
        }
        Some(other) => {
            bail!("BERTHD_ROOTLESS_STORAGE={other:?}: use overlay (the kernel's), fuse-overlayfs or vfs (copies)")
        }
    };
    let kernel_err = match kernel {
        Some(Ok(())) => return Ok(()),
        Some(Err(e)) if forced.is_some() => return Err(e),
        Some(Err(e)) => Some(e),
        None => None,
    };
    let Some(bin) = super::checks::find_program("fuse-overlayfs") else {
        match kernel_err {
            Some(e) => bail!("{e:#}; and fuse-overlayfs is not installed (apt-get install fuse-overlayfs)"),
            None => bail!("BERTHD_ROOTLESS_STORAGE=fuse-overlayfs, but fuse-overlayfs is not installed (apt-get install fuse-overlayfs)"),
        }
    };
    berth_image::overlay::use_fuse_overlayfs(bin);
    probe_overlay(data_root).map_err(|e| match kernel_err {
        Some(k) => anyhow::anyhow!(
            "{k:#}; and fuse-overlayfs failed too: {e:#} (is /dev/fuse usable by this user?)"
        ),
        None => anyhow::anyhow!("{e:#} (is /dev/fuse usable by this user?)"),
    })?;
    tracing::info!("rootless storage: fuse-overlayfs");
    Ok(())
}

/// Mounts a throwaway overlay under `data_root` and unmounts it again.
fn probe_overlay(data_root: &Path) -> Result<()> {
    let dir = data_root.join("tmp/overlay-probe");
    let _ = std::fs::remove_dir_all(&dir);
    let (lower, upper, work, merged) = (
        dir.join("lower"),
        dir.join("upper"),
        dir.join("work"),
        dir.join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    let res =
        berth_image::overlay::mount_overlay(std::slice::from_ref(&lower), &upper, &work, &merged);
    if res.is_ok() {
        let _ = berth_image::overlay::unmount(&merged);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = res {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let how = match berth_image::overlay::fuse_overlayfs() {
            Some(_) => "fuse-overlayfs cannot mount",
            None => "overlayfs cannot be mounted",
        };
        bail!(
            "{how} in the rootless daemon's user namespace on {} (kernel {}; Linux 5.11 or later allows overlayfs there): {e}",
            data_root.display(),
            release.trim()
        );
    }
    Ok(())
}
