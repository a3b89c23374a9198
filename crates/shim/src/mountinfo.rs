//! `/proc/<pid>/mountinfo` as the shim reads it for a created container (parsed by
//! `berth_sys::mountinfo`): each mount's point as the container sees it, whether it is
//! writable, and how it propagates.

use std::path::Path;

pub use berth_sys::mountinfo::{parse, Entry};

/// The entries at or below `dir` (whole path components), in mount order.
pub fn under<'a>(entries: &'a [Entry], dir: &'a Path) -> impl Iterator<Item = &'a Entry> + 'a {
    entries
        .iter()
        .filter(move |e| e.mount_point.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn entries_under_a_directory() {
        let text = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /proc ro,nosuid - proc proc rw
41 22 0:40 / /mnt/a\\040b rw master:7 shared:9 - tmpfs t rw
42 41 0:41 / /mnt/a\\040b/c rw,nodev master:3 unbindable - tmpfs t rw
";
        let e = parse(text);
        let below: Vec<_> = under(&e, Path::new("/mnt/a b"))
            .map(|e| e.mount_point.clone())
            .collect();
        assert_eq!(
            below,
            [PathBuf::from("/mnt/a b"), PathBuf::from("/mnt/a b/c")]
        );
        assert_eq!(under(&e, Path::new("/mnt/a")).count(), 0);
    }
}
