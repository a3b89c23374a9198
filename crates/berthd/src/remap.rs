//! `--userns-remap=default|user[:group]` (`userns-remap` in daemon.json), as dockerd reads it:
//! the user (and group) whose subordinate id ranges the containers' user namespaces map (all
//! of them, as dockerd maps them: see `IdMap::from_ranges`).
//! `default` is the user `berthremap` (dockerd's `dockremap`), created on demand with a free
//! 65536-id range appended to `/etc/subuid` and `/etc/subgid`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use berth_daemon::userns_remap::IdMap;

use crate::rootless::subid::{self, Range};

/// The user `default` stands for.
pub const DEFAULT_USER: &str = "berthremap";
/// How many ids a range made for `default` holds (dockerd's size).
const DEFAULT_SIZE: u32 = 65536;
/// Where ranges made for `default` may start (dockerd's lowest).
const FIRST_ID: u64 = 100_000;

/// What the flag names: `(user, group)`; `default` is [`DEFAULT_USER`] for both.
pub fn parse(value: &str) -> Result<(String, String)> {
    let value = value.trim();
    if value == "default" {
        return Ok((DEFAULT_USER.into(), DEFAULT_USER.into()));
    }
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, g),
        None => (value, value),
    };
    if user.is_empty() || group.is_empty() || group.contains(':') {
        bail!("invalid --userns-remap {value:?}: use default or user[:group]");
    }
    Ok((user.to_string(), group.to_string()))
}

/// The mapping `value` names, making `berthremap` and its ranges first for `default`.
pub fn resolve(value: &str, subuid: &Path, subgid: &Path) -> Result<IdMap> {
    let (user, group) = parse(value)?;
    let is_default = value.trim() == "default";
    if is_default {
        ensure_default_user()?;
    }
    let u = nix::unistd::User::from_name(&user)
        .with_context(|| format!("looking up user {user}"))?
        .with_context(|| format!("--userns-remap: no such user: {user}"))?;
    let g = nix::unistd::Group::from_name(&group)
        .with_context(|| format!("looking up group {group}"))?;
    let gid = g.as_ref().map_or(u.gid.as_raw(), |g| g.gid.as_raw());
    if is_default {
        ensure_range(subuid, &user)?;
        ensure_range(subgid, &group)?;
    }
    let uid_ranges = all_ranges(subuid, &user, u.uid.as_raw())?;
    let gid_ranges = all_ranges(subgid, &group, gid)?;
    IdMap::from_ranges(
        &format!("{user}:{group}"),
        &uid_ranges,
        &gid_ranges,
        berth_daemon::userns_remap::kernel_map_lines(),
    )
    .map_err(|e| anyhow::anyhow!("--userns-remap={value}: {e}"))
}

/// Every range of `name` (or of its numeric id) in a subuid/subgid file, as `(start, count)`.
fn all_ranges(file: &Path, name: &str, id: u32) -> Result<Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let ranges: Vec<(u32, u32)> = subid::ranges(&text, name, id)
        .into_iter()
        .map(|Range { start, count }| (start, count))
        .collect();
    if ranges.is_empty() {
        bail!(
            "--userns-remap: {name} has no subordinate id range in {}: add a line such as {name}:100000:65536",
            file.display()
        );
    }
    Ok(ranges)
}

/// Creates the system user `berthremap` (no home, no login) when it does not exist.
fn ensure_default_user() -> Result<()> {
    if nix::unistd::User::from_name(DEFAULT_USER)?.is_some() {
        return Ok(());
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            DEFAULT_USER,
        ])
        .output()
        .context("--userns-remap=default: running useradd to create berthremap")?;
    if !out.status.success() {
        bail!(
            "--userns-remap=default: useradd {DEFAULT_USER}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Appends `name:<start>:65536` to `file` unless `name` has a range there, with `<start>` the
/// first free id from 100000 on past every range the file holds.
fn ensure_range(file: &Path, name: &str) -> Result<()> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if text.lines().any(|l| l.split(':').next() == Some(name)) {
        return Ok(());
    }
    let start = free_start(&text, DEFAULT_SIZE)
        .with_context(|| format!("no free range of {DEFAULT_SIZE} ids in {}", file.display()))?;
    let mut line = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&format!("{name}:{start}:{DEFAULT_SIZE}\n"));
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("appending to {}", file.display()))
}

/// The lowest start ≥ 100000 where `size` ids overlap no range of `text`.
fn free_start(text: &str, size: u32) -> Option<u32> {
    let mut taken: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (_, start, count) = (f.next()?, f.next()?, f.next()?);
            let start: u64 = start.trim().parse().ok()?;
            let count: u64 = count.trim().parse().ok()?;
            Some((start, start + count))
        })
        .collect();
    taken.sort_unstable();
    let mut cand = FIRST_ID;
    for (s, e) in taken {
        if s < cand + u64::from(size) && e > cand {
            cand = e;
        }
    }
    u32::try_from(cand + u64::from(size))
        .ok()
        .and_then(|_| u32::try_from(cand).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_names_a_user_and_a_group() {
        assert_eq!(
            parse("default").unwrap(),
            ("berthremap".into(), "berthremap".into())
        );
        assert_eq!(parse("alice").unwrap(), ("alice".into(), "alice".into()));
        assert_eq!(
            parse("alice:staff").unwrap(),
            ("alice".into(), "staff".into())
        );
        assert!(parse(":x").is_err());
        assert!(parse("a:").is_err());
        assert!(parse("a:b:c").is_err());
    }

    #[test]
    fn a_new_range_starts_past_the_taken_ones() {
        assert_eq!(free_start("", 65536), Some(100_000));
        assert_eq!(free_start("a:100000:65536\n", 65536), Some(165_536));
        // A gap large enough below a later range is used.
        assert_eq!(
            free_start("a:100000:65536\nb:300000:65536\n", 65536),
            Some(165_536)
        );
        assert_eq!(
            free_start("a:100000:65536\nb:200000:65536\n", 65536),
            Some(265_536)
        );
        assert_eq!(free_start("a:0:10\n", 65536), Some(100_000));
    }

    #[test]
    fn ranges_are_appended_once_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("subuid");
        std::fs::write(&f, "alice:100000:65536").unwrap();
        ensure_range(&f, "berthremap").unwrap();
        ensure_range(&f, "berthremap").unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "alice:100000:65536\nberthremap:165536:65536\n"
        );
        assert_eq!(
            all_ranges(&f, "berthremap", 999).unwrap(),
            vec![(165_536, 65536)]
        );
        // By numeric id too, as dockerd reads the files; every line of the user counts.
        std::fs::write(&f, "1234:500000:1000\nalice:1:2\nbob:400000:10\n").unwrap();
        assert_eq!(
            all_ranges(&f, "bob", 1234).unwrap(),
            vec![(500_000, 1000), (400_000, 10)]
        );
        let e = all_ranges(&f, "carol", 1).unwrap_err().to_string();
        assert!(e.contains("carol has no subordinate id range"), "{e}");
    }
}
