//! `/proc/self/mountinfo` (parsed by `berth_sys::mountinfo`): which mount a path is on and how
//! that mount propagates.

use std::path::Path;

pub(crate) use berth_sys::mountinfo::{parse, Entry};

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (a bind mount of a directory on
/// the same filesystem has the same device number as its parent, so `stat` cannot tell).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    parse(&info).iter().any(|m| m.mount_point == path)
}

/// The mount `path` (made canonical) lives on: the last-mounted entry whose mount point is the
/// longest prefix of it.
pub(crate) fn mount_of(path: &Path) -> Option<Entry> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<Entry> = None;
    for m in parse(&info) {
        if path.starts_with(&m.mount_point)
            && best.as_ref().is_none_or(|b| {
                m.mount_point.components().count() >= b.mount_point.components().count()
            })
        {
            best = Some(m);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_of_a_path() {
        assert!(is_mount_point(Path::new("/")));
        assert!(is_mount_point(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()));
        assert_eq!(
            mount_of(Path::new("/proc/self")).unwrap().mount_point,
            Path::new("/proc")
        );
        assert!(mount_of(&dir.path().join("missing")).is_none());
    }
}
