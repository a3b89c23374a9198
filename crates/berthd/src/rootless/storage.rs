//! Whether overlayfs works in the daemon's user namespace (Linux 5.11+ with `userxattr`),
//! tried once at start on the data root's filesystem, so that a kernel without it is a clear
//! error at start rather than a failure of every container.

use std::path::Path;

use anyhow::{bail, Result};

/// Mounts a throwaway overlay under `data_root` and unmounts it again.
pub fn probe_overlay(data_root: &Path) -> Result<()> {
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
        bail!(
            "overlayfs cannot be mounted in the rootless daemon's user namespace on {} (kernel {}; Linux 5.11 or later allows it): {e}",
            data_root.display(),
            release.trim()
        );
    }
    Ok(())
}
