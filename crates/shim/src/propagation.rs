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

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use crate::mountinfo::{under, Entry};

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

/// The binds of `spec` whose propagation in the created container (`entries`, its
/// mountinfo) is not yet what their options ask, with the flags that make it so. A recursive
/// option counts the mounts below the bind too; a bind not found (a destination reached
/// through a symlink) is set, to be sure. Usually nothing: a bind libcontainer cloned from a
/// private source is private already, which is what Docker's default `rprivate` asks.
pub fn pending(entries: &[Entry], spec: &Spec) -> Vec<(PathBuf, MsFlags)> {
    binds(spec)
        .into_iter()
        .filter(|(dest, flags)| {
            if flags.contains(MsFlags::MS_REC) {
                let mut below = under(entries, dest).peekable();
                below.peek().is_none() || below.any(|e| !has(e, *flags))
            } else {
                // The mount on top at `dest`.
                entries
                    .iter()
                    .rfind(|e| e.mount_point == *dest)
                    .is_none_or(|e| !has(e, *flags))
            }
        })
        .collect()
}

/// Whether a mount already propagates as `flags` ask.
fn has(e: &Entry, flags: MsFlags) -> bool {
    if flags.contains(MsFlags::MS_SHARED) {
        e.shared
    } else if flags.contains(MsFlags::MS_SLAVE) {
        e.slave && !e.shared
    } else if flags.contains(MsFlags::MS_UNBINDABLE) {
        e.unbindable
    } else {
        !e.shared && !e.slave && !e.unbindable
    }
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

    #[test]
    fn only_what_differs_is_pending() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/etc/hosts", "type": "bind", "source": "/h", "options": ["rbind", "rprivate"]},
                {"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind", "rprivate"]},
                {"destination": "/b", "type": "bind", "source": "/y", "options": ["rbind", "rslave"]},
                {"destination": "/c", "type": "bind", "source": "/z", "options": ["bind", "shared"]},
                {"destination": "/via/link", "type": "bind", "source": "/w", "options": ["rbind", "rprivate"]}
            ]
        }))
        .unwrap();
        let info = crate::mountinfo::parse(
            "\
1 0 0:1 / / rw - overlay overlay rw
2 1 254:0 /h /etc/hosts rw - ext4 /dev/vda rw
3 1 254:0 /x /a rw - ext4 /dev/vda rw
4 3 0:9 / /a/sub rw shared:5 - tmpfs t rw
5 1 254:0 /y /b rw master:1 - ext4 /dev/vda rw
6 1 254:0 /z /c rw shared:1 - ext4 /dev/vda rw
",
        );
        let got: Vec<PathBuf> = pending(&info, &spec).into_iter().map(|(p, _)| p).collect();
        // /etc/hosts, /b and /c already are what they ask; /a has a shared mount below it;
        // /via/link is not in the table under that name.
        assert_eq!(got, [PathBuf::from("/a"), PathBuf::from("/via/link")]);
    }
}
