//! `--cpuset-cpus` / `--cpuset-mems` against what the host has (`SysInfo`'s cpuset): Docker
//! refuses CPUs and memory nodes the host does not have at create (and in `docker update`) with
//! a 400, instead of failing the start on the cgroup write.

use std::collections::BTreeSet;

use berth_api_types::ErrorKind;

use crate::errors::{into_api_error, Classified};

/// A cpuset the host cannot give (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Requested {what} are not available - requested {requested}, available: {available}")]
pub(crate) struct Unavailable {
    /// "CPUs" or "memory nodes".
    what: String,
    requested: String,
    available: String,
}

impl Classified for Unavailable {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

into_api_error!(Unavailable);

/// A cpuset list (`0-3,5`) as its members; `None` when malformed.
pub(crate) fn parse_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi - lo > 1 << 16 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

/// Docker's message when `requested` asks for members outside `available` (both as the
/// user/the kernel wrote them). `what` is "CPUs" or "memory nodes".
pub(crate) fn check(requested: &str, available: &str, what: &str) -> Result<(), Unavailable> {
    let (Some(req), Some(have)) = (parse_list(requested), parse_list(available)) else {
        // Malformed requests are refused by the format check; an unreadable host list
        // leaves the decision to the kernel.
        return Ok(());
    };
    if req.is_subset(&have) {
        Ok(())
    } else {
        Err(Unavailable {
            what: what.to_string(),
            requested: requested.to_string(),
            available: available.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("0-2,5\n")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 5]
        );
        assert!(parse_list("2-1").is_none());
        assert!(parse_list("a").is_none());
        assert!(parse_list("").is_none());
    }

    #[test]
    fn requests_beyond_the_host_are_refused_with_dockers_message() {
        assert_eq!(
            check("7", "0-1\n", "CPUs").unwrap_err().to_string(),
            "Requested CPUs are not available - requested 7, available: 0-1"
        );
        assert_eq!(
            check("0,1-2", "0-1", "memory nodes")
                .unwrap_err()
                .to_string(),
            "Requested memory nodes are not available - requested 0,1-2, available: 0-1"
        );
        assert!(check("0-1", "0-1\n", "CPUs").is_ok());
        assert!(check("1", "0-3,8-11", "CPUs").is_ok());
        assert!(check("9", "0-3,8-11", "CPUs").is_ok());
        assert!(check("5", "0-3,8-11", "CPUs").is_err());
    }
}
