//! Flag values of `create`/`run` turned into what the API takes, with docker's checks: env
//! lists and files, sizes, ulimits, published ports, security options.

use berth_api_types::container::{PortBinding, Ulimit};
use serde_json::Value;

/// Where the options' local inputs come from (environment, files); faked in tests.
pub trait Local {
    fn env(&self, key: &str) -> Option<String>;
    fn read_file(&self, path: &str) -> std::io::Result<String>;
}

/// The real process environment and filesystem.
pub struct RealLocal;

impl Local for RealLocal {
    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn read_file(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// A flag value the daemon would reject before any request is made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct OptsError(pub String);

pub(super) fn bad<T>(msg: impl Into<String>) -> Result<T, OptsError> {
    Err(OptsError(msg.into()))
}

/// `-e FOO=bar` as is; `-e FOO` takes FOO from the local environment, or stays `FOO` when unset
/// (the daemon then leaves it out), as docker's `ValidateEnv`.
pub fn expand_env(item: &str, local: &dyn Local) -> Result<String, OptsError> {
    let (key, has_value) = match item.split_once('=') {
        Some((k, _)) => (k, true),
        None => (item, false),
    };
    if key.is_empty() {
        return bad(format!("invalid environment variable: {item}"));
    }
    if has_value {
        return Ok(item.to_string());
    }
    Ok(match local.env(key) {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    })
}

/// Lines of an env file: blank lines and `#` comments skipped, `KEY` lines filled from the local
/// environment. Leading whitespace is dropped from keys, as docker does.
pub fn parse_env_file(
    content: &str,
    local: &dyn Local,
    for_env: bool,
) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    for line in content.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if for_env {
            if let Some((k, v)) = line.split_once('=') {
                if k.contains(char::is_whitespace) {
                    return bad(format!("variable '{k}' contains whitespaces"));
                }
                out.push(format!("{k}={v}"));
            } else {
                out.push(expand_env(line.trim_end(), local)?);
            }
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Parses sizes like `64m`, `1g`, `512k`, `100`: go-units' `RAMInBytes` (binary units), with its
/// errors (`invalid size: 'x'`, `invalid suffix: 'q'`).
pub fn parse_bytes(s: &str) -> Result<i64, OptsError> {
    berth_go::ram_in_bytes(s).map_err(OptsError)
}

/// `nofile=1024:2048` or `nofile=1024` → `{"Name","Soft","Hard"}`.
pub fn parse_ulimit(s: &str) -> Result<Ulimit, OptsError> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| OptsError(format!("invalid ulimit argument: {s}")))?;
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| OptsError(format!("invalid ulimit argument: {s}")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (`port/proto`, binding).
pub fn parse_publish(s: &str) -> Result<(String, PortBinding), OptsError> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (s, "tcp"),
    };
    // An IPv6 host IP is written in brackets: [::1]:80:80
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r
            .split_once(']')
            .ok_or_else(|| OptsError(format!("invalid publish spec: {s}")))?;
        (ip.to_string(), rest.trim_start_matches(':').to_string())
    } else {
        (String::new(), spec.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host_port, container_port) = match parts.as_slice() {
        [c] => (ip, "", *c),
        [h, c] => (ip, *h, *c),
        [i, h, c] => (i.to_string(), *h, *c),
        _ => return bad(format!("invalid publish spec: {s}")),
    };
    if container_port.is_empty() || container_port.split('-').any(|p| p.parse::<u16>().is_err()) {
        return bad(format!("invalid containerPort: {container_port}"));
    }
    Ok((
        format!("{container_port}/{proto}"),
        PortBinding {
            host_ip: ip,
            host_port: host_port.to_string(),
        },
    ))
}

/// `--security-opt`: `seccomp=<file>` is replaced by the file's compacted JSON, as docker does;
/// `key:value` is accepted as the legacy spelling of `key=value`.
pub fn parse_security_opt(s: &str, local: &dyn Local) -> Result<String, OptsError> {
    if s == "no-new-privileges" {
        return Ok(s.to_string());
    }
    let (k, v) = match s.split_once('=') {
        Some(kv) => kv,
        None => match s.split_once(':') {
            Some(kv) => kv,
            None => return bad(format!("Invalid --security-opt: {s:?}")),
        },
    };
    if k == "seccomp" && v != "unconfined" && v != "builtin" {
        let content = local
            .read_file(v)
            .map_err(|e| OptsError(format!("opening seccomp profile ({v}) failed: {e}")))?;
        let parsed: Value = serde_json::from_str(&content).map_err(|e| {
            OptsError(format!(
                "compacting json for seccomp profile ({v}) failed: {e}"
            ))
        })?;
        return Ok(format!(
            "seccomp={}",
            serde_json::to_string(&parsed).unwrap_or_default()
        ));
    }
    Ok(format!("{k}={v}"))
}
