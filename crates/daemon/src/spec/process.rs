//! The container's process: command line, environment, user and rlimits.

use std::collections::BTreeMap;

use berth_api_types::container::{Config, HostConfig};
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType, UserBuilder};

use super::{build_err, HostFacts, ResolvedUser, SpecError, DEFAULT_PATH_ENV};

/// The container's command line: entrypoint then cmd. `--entrypoint ""` (`[""]`) means no
/// entrypoint at all, as in Docker.
pub fn command_argv(config: &Config) -> Vec<String> {
    let entrypoint = match &config.entrypoint {
        Some(e) if !(e.len() == 1 && e[0].is_empty()) => e.as_slice(),
        _ => &[],
    };
    entrypoint
        .iter()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect()
}

/// `NAME=value` lists where later entries replace earlier ones with the same name and a bare
/// `NAME` removes it (moby `ReplaceOrAppendEnvValues`).
pub(super) fn merge_env(base: &mut Vec<String>, overrides: &[String]) {
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let pos = base
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (pos, entry.contains('=')) {
            (Some(i), true) => base[i] = entry.clone(),
            (Some(i), false) => {
                base.remove(i);
            }
            (None, true) => base.push(entry.clone()),
            (None, false) => {}
        }
    }
}

pub(super) fn has_env(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
}

/// The container environment (moby `CreateDaemonEnvironment`) plus `HOME` from passwd, which
/// runc adds and libcontainer does not.
pub(super) fn container_env(
    config: &Config,
    tty: bool,
    extra: &[String],
    home: &str,
) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH_ENV}"),
        format!("HOSTNAME={}", config.hostname),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, config.env.as_deref().unwrap_or(&[]));
    merge_env(&mut env, extra);
    if !has_env(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

pub(super) fn oci_user(
    uid: u32,
    gid: u32,
    gids: Vec<u32>,
) -> Result<oci_spec::runtime::User, SpecError> {
    UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(gids)
        .build()
        .map_err(build_err)
}

/// `[gid] + supplementary groups + GroupAdd`, without duplicates (moby `getUser`).
pub(super) fn all_gids(user: &ResolvedUser, group_add: &[u32]) -> Vec<u32> {
    let mut gids = vec![user.gid];
    for g in user.additional_gids.iter().chain(group_add) {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    gids
}

fn ulimit_resource(name: &str) -> Option<&'static str> {
    Some(match name {
        "as" => "RLIMIT_AS",
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        _ => return None,
    })
}

fn ulimit_value(v: i64) -> u64 {
    // -1 is Docker's "unlimited".
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The daemon's own limits, with `HostConfig.Ulimits` replacing individual entries. Without
/// `CAP_SYS_RESOURCE` nothing can go above the daemon's hard limit, so asking for it is an error
/// rather than something to clamp silently.
pub(super) fn rlimits(hc: &HostConfig, host: &HostFacts) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut limits: BTreeMap<String, (u64, u64)> = host
        .rlimits
        .iter()
        .map(|(n, s, h)| (n.clone(), (*s, *h)))
        .collect();
    let can_raise = host.bounding_caps.iter().any(|c| c == "CAP_SYS_RESOURCE");
    for ul in hc.ulimits.iter().flatten() {
        let res = ulimit_resource(&ul.name)
            .ok_or_else(|| SpecError::Ulimit(format!("invalid ulimit type: {}", ul.name)))?;
        let (soft, hard) = (ulimit_value(ul.soft), ulimit_value(ul.hard));
        if soft > hard {
            return Err(SpecError::Ulimit(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                ul.soft, ul.hard
            )));
        }
        if let Some((_, daemon_hard)) = host
            .rlimits
            .iter()
            .find(|(n, _, _)| n == res)
            .map(|(_, s, h)| (s, h))
        {
            if hard > *daemon_hard && !can_raise {
                return Err(SpecError::Ulimit(format!(
                    "ulimit {}: {}:{} exceeds the daemon's hard limit {} (raising it needs CAP_SYS_RESOURCE)",
                    ul.name,
                    ul.soft,
                    ul.hard,
                    fmt_limit(*daemon_hard)
                )));
            }
        }
        limits.insert(res.to_string(), (soft, hard));
    }
    limits
        .into_iter()
        .map(|(name, (soft, hard))| {
            let typ: PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| SpecError::Ulimit(format!("invalid ulimit type: {name}")))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(build_err)
        })
        .collect()
}

fn fmt_limit(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}
