//! The subordinate id ranges of `/etc/subuid` and `/etc/subgid` (`name:start:count` or
//! `uid:start:count` lines, see subuid(5)), which `newuidmap`/`newgidmap` let a user map.

/// One range of subordinate ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges of the user named `name` with id `id` in a subuid/subgid file's `text`.
pub fn ranges(text: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if owner != name && owner != id {
                return None;
            }
            let r = Range {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (r.count > 0).then_some(r)
        })
        .collect()
}

/// The arguments of `newuidmap PID ...`/`newgidmap PID ...`: the user's own id as 0 in the
/// namespace, then its subordinate ranges from 1 on.
pub fn map_args(own: u32, ranges: &[Range]) -> Vec<String> {
    let mut out = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next: u64 = 1;
    for r in ranges {
        out.extend([next.to_string(), r.start.to_string(), r.count.to_string()]);
        next += u64::from(r.count);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_uid() {
        let text =
            "# comment\nalice:100000:65536\nbob:165536:65536\n1001:300000:10\nbad:x:1\nalice:0:0\n";
        assert_eq!(
            ranges(text, "alice", 1000),
            vec![Range {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            ranges(text, "carol", 1001),
            vec![Range {
                start: 300000,
                count: 10
            }]
        );
        assert!(ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn map_puts_the_user_at_zero_and_ranges_after() {
        let r = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 500000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &r).join(" "),
            "0 1000 1 1 100000 65536 65537 500000 10"
        );
    }
}
