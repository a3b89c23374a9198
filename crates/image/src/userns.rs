//! Layers and overlays inside a user namespace (a rootless daemon): overlayfs there
//! (Linux 5.11+) keeps its whiteout and opaque markers in `user.overlay.*` xattrs and must be
//! mounted with `userxattr`, since `trusted.*` needs CAP_SYS_ADMIN in the initial namespace.

use std::sync::OnceLock;

/// Whether this process runs in a user namespace other than the initial one (whose uid map
/// is the identity over the whole 32-bit range).
pub fn in_user_namespace() -> bool {
    static IN: OnceLock<bool> = OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| !is_initial_map(&m))
            .unwrap_or(false)
    })
}

fn is_initial_map(map: &str) -> bool {
    let f: Vec<&str> = map.split_whitespace().collect();
    f == ["0", "0", "4294967295"]
}

/// The xattr that marks an opaque directory in an upper or layer directory.
pub fn opaque_xattr() -> &'static str {
    if in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Extra overlay mount options for this process (`,userxattr` in a user namespace).
pub fn overlay_mount_suffix() -> &'static str {
    if in_user_namespace() {
        ",userxattr"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_map_is_the_identity() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("0 1000 1\n1 100000 65536\n"));
    }
}
