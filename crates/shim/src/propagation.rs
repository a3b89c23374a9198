//! The propagation of a container's bind mounts, applied by the shim between create and start.
//!
//! libcontainer (0.7) makes a bind with `open_tree(OPEN_TREE_CLONE)` + `move_mount` and never
//! applies the spec's propagation option to it. A clone of a shared host mount joins the host
//! mount's peer group, so every bind of a shared source (the usual case: systemd makes `/`
//! shared) behaved as `rshared`: mounts made on the host later showed up in the container, and
//! a privileged container's mounts under its bind reached the host. Docker's default for binds
//! and volumes is `rprivate`; `rslave` and `rshared` are asked for explicitly (`--mount
//! bind-propagation=`, `-v src:dst:rslave`, the CRI's PROPAGATION_HOST_TO_CONTAINER and
//! PROPAGATION_BIDIRECTIONAL). Here each bind gets what its options say.

use std::path::PathBuf;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

/// The propagation a mount's options ask for, as `mount(2)` flags.
pub fn flags_of(options: &[String]) -> Option<MsFlags> {
    options.iter().rev().find_map(|o| {
        Some(match o.as_str() {
            "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "private" => MsFlags::MS_PRIVATE,
            "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "slave" => MsFlags::MS_SLAVE,
            "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
            "shared" => MsFlags::MS_SHARED,
            "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            "unbindable" => MsFlags::MS_UNBINDABLE,
            _ => return None,
        })
    })
}

/// The bind mounts of `spec` with a propagation option, in the spec's order (parents before
/// what is mounted below them).
pub fn binds(spec: &Spec) -> Vec<(PathBuf, MsFlags)> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|m| Some((m.destination().clone(), flags_of(m.options().as_deref()?)?)))
        .collect()
}

/// Gives each bind of the created container whose init is `pid` its propagation. Must be
/// called while the shim is single-threaded (it forks).
pub fn apply(pid: i32, spec: &Spec) -> Result<(), crate::mountns::MountNsError> {
    let targets = binds(spec);
    if targets.is_empty() {
        return Ok(());
    }
    crate::mountns::run_in(pid, || {
        for (dest, flags) in &targets {
            mount(None::<&str>, dest, None::<&str>, *flags, None::<&str>)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_their_propagation() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind", "rprivate", "ro"]},
                {"destination": "/b", "source": "/y", "options": ["rbind", "rslave"]},
                {"destination": "/c", "type": "bind", "source": "/z", "options": ["bind", "shared"]},
                {"destination": "/d", "type": "bind", "source": "/w", "options": ["rbind"]},
                {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}
            ]
        }))
        .unwrap();
        let got = binds(&spec);
        assert_eq!(
            got,
            vec![
                (PathBuf::from("/a"), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
                (PathBuf::from("/b"), MsFlags::MS_SLAVE | MsFlags::MS_REC),
                (PathBuf::from("/c"), MsFlags::MS_SHARED),
            ]
        );
    }
}
