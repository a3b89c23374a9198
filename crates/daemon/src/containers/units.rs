//! Sizes and durations as Docker's `go-units` writes and parses them (berth-go), and the
//! size of a directory tree.

/// `max-size` as Docker parses it (`10m`, `1k`, `200`): go-units' `RAMInBytes`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    berth_go::ram_in_bytes(s)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

pub(crate) use berth_go::human_duration;

pub(crate) fn dir_size(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.size();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1m"), Some(1024 * 1024));
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("200"), Some(200));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1"), None);
    }
}
