//! `/proc/<pid>/mountinfo` as the shim reads it for a created container: each mount's point
//! (as the container sees it), whether it is writable, and how it propagates.

use std::path::{Path, PathBuf};

/// One line of mountinfo, what the shim asks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The directory of the mounted file system that is mounted (field 4; `/` for a whole one).
    pub root: PathBuf,
    pub point: PathBuf,
    /// `rw` among the per-mount options (field 6).
    pub writable: bool,
    /// In a peer group (`shared:N`).
    pub shared: bool,
    /// Receives from a master's peer group (`master:N`).
    pub slave: bool,
    pub unbindable: bool,
    /// The file system type (first field after `-`).
    pub fstype: String,
    /// The file system's own options (third field after `-`), e.g. a cgroup v1 hierarchy's
    /// controllers.
    pub super_options: Vec<String>,
}

/// Parses a mountinfo text: field 5 is the mount point, field 6 the mount's options, the
/// optional fields run from field 7 up to the `-` separator.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let root = PathBuf::from(unescape(f.nth(3)?));
            let point = PathBuf::from(unescape(f.next()?));
            let writable = f.next()?.split(',').any(|o| o == "rw");
            let optional: Vec<&str> = f.by_ref().take_while(|x| *x != "-").collect();
            let fstype = f.next().unwrap_or_default().to_string();
            let super_options = f
                .nth(1)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            Some(Entry {
                root,
                point,
                writable,
                shared: optional.iter().any(|o| o.starts_with("shared:")),
                slave: optional.iter().any(|o| o.starts_with("master:")),
                unbindable: optional.contains(&"unbindable"),
                fstype,
                super_options,
            })
        })
        .collect()
}

/// The entries at or below `dir` (whole path components), in mount order.
pub fn under<'a>(entries: &'a [Entry], dir: &'a Path) -> impl Iterator<Item = &'a Entry> + 'a {
    entries.iter().filter(move |e| e.point.starts_with(dir))
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_options_and_propagation() {
        let text = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /proc ro,nosuid - proc proc rw
41 22 0:40 / /mnt/a\\040b rw master:7 shared:9 - tmpfs t rw
42 41 0:41 / /mnt/a\\040b/c rw,nodev master:3 unbindable - tmpfs t rw
";
        let e = parse(text);
        assert_eq!(e.len(), 4);
        assert!(e[0].writable && e[0].shared && !e[0].slave);
        assert!(!e[1].writable && !e[1].shared && !e[1].slave);
        assert_eq!(e[2].point, Path::new("/mnt/a b"));
        assert!(e[2].shared && e[2].slave);
        assert!(!e[3].shared && e[3].slave && e[3].unbindable);
        let below: Vec<_> = under(&e, Path::new("/mnt/a b"))
            .map(|e| e.point.clone())
            .collect();
        assert_eq!(
            below,
            [PathBuf::from("/mnt/a b"), PathBuf::from("/mnt/a b/c")]
        );
        assert_eq!(under(&e, Path::new("/mnt/a")).count(), 0);
    }

    #[test]
    fn root_type_and_file_system_options() {
        let text = "35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
90 22 254:1 /var/lib/x /data ro - ext4 /dev/vda1 rw,errors=remount-ro
";
        let e = parse(text);
        assert_eq!(e[0].root, Path::new("/"));
        assert_eq!(e[0].point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(e[0].fstype, "cgroup");
        assert_eq!(e[0].super_options, ["rw", "cpu", "cpuacct"]);
        assert_eq!(e[1].root, Path::new("/var/lib/x"));
        assert_eq!(e[1].fstype, "ext4");
        assert_eq!(e[1].super_options, ["rw", "errors=remount-ro"]);
    }

    #[test]
    fn unescapes_paths() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain\\09"), "/plain\\09");
    }
}
