//! `/proc/<pid>/mountinfo`, parsed once for every berth process that reads it: each mount's
//! root and point, whether it is writable, how it propagates, its file system type, source and
//! the file system's own options.
//!
//! A line is `id parent maj:min root point options [optional...] - fstype source superopts`
//! (proc(5)); paths escape space, tab, newline and backslash as `\ooo`.

use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The directory of the mounted file system that is mounted (field 4; `/` for a whole one).
    pub root: PathBuf,
    /// Where it is mounted (field 5), as the reading process sees it.
    pub mount_point: PathBuf,
    /// `rw` among the per-mount options (field 6).
    pub writable: bool,
    /// In a peer group (`shared:N`).
    pub shared: bool,
    /// Receives from a master's peer group (`master:N`).
    pub slave: bool,
    /// Marked `unbindable`.
    pub unbindable: bool,
    /// The file system type (first field after `-`).
    pub fstype: String,
    /// The mount source (second field after `-`), e.g. a device or `none`.
    pub source: String,
    /// The file system's own options (third field after `-`), e.g. a cgroup v1 hierarchy's
    /// controllers.
    pub super_options: Vec<String>,
}

/// Parses a mountinfo text into its entries, in mount order. A line without the six leading
/// fields, the `-` separator and the three fields after it is skipped.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut f = line.split(' ');
    let root = f.nth(3)?;
    let point = f.next()?;
    let options = f.next()?;
    let optional: Vec<&str> = f.by_ref().take_while(|x| *x != "-").collect();
    // Without the separator `take_while` ran to the end and the fields after it are missing.
    let (fstype, source, super_options) = (f.next()?, f.next()?, f.next()?);
    if root.is_empty() || point.is_empty() || options.is_empty() || fstype.is_empty() {
        return None;
    }
    Some(Entry {
        root: PathBuf::from(unescape(root)),
        mount_point: PathBuf::from(unescape(point)),
        writable: options.split(',').any(|o| o == "rw"),
        shared: optional.iter().any(|o| o.starts_with("shared:")),
        slave: optional.iter().any(|o| o.starts_with("master:")),
        unbindable: optional.contains(&"unbindable"),
        fstype: unescape(fstype),
        source: unescape(source),
        super_options: super_options.split(',').map(str::to_string).collect(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash); a backslash
/// not followed by three octal digits of a byte is kept as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            (b'0'..=b'3').contains(&d[0]) && d[1..].iter().all(|c| (b'0'..=b'7').contains(c))
        });
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
    use std::path::Path;

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
        assert!(e[0].writable && e[0].shared && !e[0].slave && !e[0].unbindable);
        assert!(!e[1].writable && !e[1].shared && !e[1].slave);
        assert_eq!(e[2].mount_point, Path::new("/mnt/a b"));
        assert!(e[2].shared && e[2].slave);
        assert!(!e[3].shared && e[3].slave && e[3].unbindable);
        assert_eq!(e[3].mount_point, Path::new("/mnt/a b/c"));
        assert_eq!(e[2].fstype, "tmpfs");
        assert_eq!(e[0].super_options, ["rw"]);
        assert_eq!(e[0].source, "/dev/vda1");
        assert_eq!(e[1].source, "proc");
    }

    #[test]
    fn root_type_and_file_system_options() {
        let text = "35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
90 22 254:1 /var/lib/x /data ro - ext4 /dev/vda1 rw,errors=remount-ro
";
        let e = parse(text);
        assert_eq!(e[0].root, Path::new("/"));
        assert_eq!(e[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(e[0].fstype, "cgroup");
        assert_eq!(e[0].super_options, ["rw", "cpu", "cpuacct"]);
        assert_eq!(e[1].root, Path::new("/var/lib/x"));
        assert_eq!(e[1].fstype, "ext4");
        assert_eq!(e[1].super_options, ["rw", "errors=remount-ro"]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = [
            "",
            "garbage",
            "22 1 254:1 / / rw,relatime shared:1",
            "22 1 254:1 / / rw,relatime shared:1 - ext4",
            "23 1 0:5 / /a rw shared:2 - tmpfs  rw",
            "24 1 0:6 / /b rw - tmpfs t rw",
        ]
        .join("\n");
        let e = parse(&text);
        // An empty source (`mount -t tmpfs '' /a`) is still a whole line.
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].mount_point, Path::new("/a"));
        assert_eq!(e[0].source, "");
        assert!(e[0].shared);
        assert_eq!(e[1].mount_point, Path::new("/b"));
        assert!(!e[1].shared && !e[1].slave && !e[1].unbindable);
    }

    #[test]
    fn unescapes_paths() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain\\09"), "/plain\\09");
        assert_eq!(unescape(r"/x\09"), r"/x\09");
        assert_eq!(unescape(r"/a\040b\\c"), r"/a b\\c");
        // An escape at the very end, and digits that are no byte.
        assert_eq!(unescape("/end\\040"), "/end ");
        assert_eq!(unescape("/big\\777"), "/big\\777");
        assert_eq!(unescape("/short\\04"), "/short\\04");
    }
}
