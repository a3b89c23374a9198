//! Sizes and durations as Docker's `go-units` writes and parses them (berth-go), and the
//! size of a directory tree.

/// `max-size` as Docker parses it (`10m`, `1k`, `200`): go-units' `RAMInBytes`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    berth_go::ram_in_bytes(s)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

pub(crate) use berth_go::human_duration;

pub(crate) use berth_go::trunc_i64 as float_to_i64;

/// Float unix seconds (`--since 1700000000.5`) as nanoseconds.
pub(crate) fn secs_to_nanos(s: f64) -> i64 {
    float_to_i64(s * 1e9)
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
