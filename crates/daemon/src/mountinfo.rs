//! `/proc/self/mountinfo`: which mount a path is on and how that mount propagates.

use std::path::{Path, PathBuf};

/// One line of mountinfo, what berth asks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub mount_point: PathBuf,
    /// In a peer group (`shared:N`).
    pub shared: bool,
    /// Receives from a master's peer group (`master:N`).
    pub slave: bool,
    /// The file system type (first field after `-`).
    pub fstype: String,
    /// The file system's own options (third field after `-`).
    pub super_options: Vec<String>,
}

/// Parses a mountinfo text (field 5 is the mount point; the optional fields run from field 7
/// up to the `-` separator, followed by the type, the source and the super options).
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let point = f.nth(4)?;
            let optional: Vec<&str> = f.by_ref().skip(1).take_while(|x| *x != "-").collect();
            let fstype = f.next().unwrap_or_default().to_string();
            let super_options = f
                .nth(1)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(point)),
                shared: optional.iter().any(|o| o.starts_with("shared:")),
                slave: optional.iter().any(|o| o.starts_with("master:")),
                fstype,
                super_options,
            })
        })
        .collect()
}

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
pub(crate) fn mount_of(path: &Path) -> Option<MountEntry> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<MountEntry> = None;
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

/// Undoes mountinfo's octal escapes (`\040` for a space).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_propagation() {
        let text = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /proc rw - proc proc rw
41 22 0:40 / /mnt/a\\040b rw master:7 shared:9 - tmpfs t rw
42 41 0:41 / /mnt/a\\040b/c rw master:3 - tmpfs t rw
";
        let e = parse(text);
        assert_eq!(e.len(), 4);
        assert!(e[0].shared && !e[0].slave);
        assert!(!e[1].shared && !e[1].slave);
        assert_eq!(e[2].mount_point, Path::new("/mnt/a b"));
        assert!(e[2].shared && e[2].slave);
        assert!(!e[3].shared && e[3].slave);
        assert_eq!(e[2].fstype, "tmpfs");
        assert_eq!(e[0].super_options, ["rw"]);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

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
