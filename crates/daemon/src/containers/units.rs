//! Sizes and durations as Docker's `go-units` writes and parses them.

/// `max-size` as Docker parses it (`10m`, `1k`, `200`).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1024u64),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1024 * 1024),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1024 * 1024 * 1024),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as u64)
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".to_string()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".to_string()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

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
    fn sizes_and_durations() {
        assert_eq!(parse_size("1m"), Some(1024 * 1024));
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("200"), Some(200));
        assert_eq!(parse_size("x"), None);
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
    }
}
