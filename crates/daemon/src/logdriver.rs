//! Log drivers: `json-file` (the default, rotated by default — a berth improvement: Docker's
//! default log grows without bound) and `none`. The daemon-wide default driver and options come
//! from the config file (`log-driver`, `log-opts`) and are recorded in each new container's
//! `HostConfig.LogConfig`, as Docker does.

use std::collections::BTreeMap;

use berth_api_types::container::LogConfig;
use berth_api_types::ApiError;
use berth_shim_protocol::ShimConfig;

use crate::Result;

/// Rotation a json-file log gets unless `max-size` says otherwise: 10 MiB per file...
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// ...and 3 files.
pub const DEFAULT_MAX_FILE: u32 = 3;

const JSON_FILE_OPTS: &[&str] = &[
    "max-size",
    "max-file",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "compress",
    "mode",
    "max-buffer-size",
];

/// The log drivers dockerd has built in: a name outside them is looked up as a logging plugin
/// there, which berth has none of; one inside them that berth lacks is refused as unsupported.
const DOCKERD_DRIVERS: &[&str] = &[
    "awslogs",
    "etwlogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "json-file",
    "local",
    "logentries",
    "none",
    "splunk",
    "syslog",
];

/// dockerd's driver-independent checks (moby `logger.ValidateLogOpts`), in its order and
/// words: the delivery mode, the buffer size (non-blocking mode only), then whether the
/// driver exists (as a built-in driver or, for dockerd, a plugin).
fn validate_common(driver: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    if driver == "none" {
        return Ok(());
    }
    let mode = opts.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(ApiError::invalid(format!(
            "logger: logging mode not supported: {mode}"
        )));
    }
    if let Some(size) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(ApiError::invalid(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ));
        }
        if crate::units::parse_size(size).is_none() {
            return Err(ApiError::invalid(format!(
                "error parsing option max-buffer-size: invalid size: '{size}'"
            )));
        }
    }
    if !DOCKERD_DRIVERS.contains(&driver) {
        // What dockerd answers when its plugin lookup finds nothing (20.10 measured).
        return Err(ApiError::invalid(format!(
            "error looking up logging plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    Ok(())
}

/// Checks a container's (or the daemon's) log configuration with Docker's messages.
pub(crate) fn validate(lc: &LogConfig) -> Result<()> {
    let driver = if lc.kind.is_empty() {
        "json-file"
    } else {
        lc.kind.as_str()
    };
    validate_common(driver, &lc.config)?;
    let allowed: &[&str] = match driver {
        "json-file" => JSON_FILE_OPTS,
        "none" => &["mode", "max-buffer-size"],
        other => {
            return Err(ApiError::invalid(format!(
                "logging driver {other:?} is not supported by berth (json-file, none)"
            )))
        }
    };
    for k in lc.config.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "unknown log opt '{k}' for {driver} log driver"
            )));
        }
    }
    if let Some(sz) = lc.config.get("max-size") {
        if sz != "-1" && crate::units::parse_size(sz).is_none() {
            return Err(ApiError::invalid(format!("invalid max-size {sz:?}")));
        }
    }
    if let Some(n) = lc.config.get("max-file") {
        if n.parse::<u32>().ok().filter(|n| *n >= 1).is_none() {
            return Err(ApiError::invalid(format!("invalid max-file {n:?}")));
        }
    }
    Ok(())
}

/// Fills an empty log configuration with the daemon's default (Docker records the effective
/// driver in the container).
pub(crate) fn with_default(lc: &mut LogConfig, default: &LogConfig) {
    if lc.kind.is_empty() {
        lc.kind = if default.kind.is_empty() {
            "json-file".into()
        } else {
            default.kind.clone()
        };
        if lc.config.is_empty() && lc.kind == default.kind {
            lc.config = default.config.clone();
        }
    }
}

/// Sets the shim's log file and rotation for a start.
pub(crate) fn configure_shim(lc: &LogConfig, cfg: &mut ShimConfig) -> Result<()> {
    validate(lc)?;
    if lc.kind == "none" {
        cfg.log_path = None;
        return Ok(());
    }
    let opts: &BTreeMap<String, String> = &lc.config;
    cfg.log_max_size = match opts.get("max-size") {
        // An explicit `-1` keeps Docker's unbounded log.
        Some(s) if s == "-1" => 0,
        Some(s) => crate::units::parse_size(s)
            .ok_or_else(|| ApiError::invalid(format!("invalid max-size {s:?}")))?,
        None => DEFAULT_MAX_SIZE,
    };
    cfg.log_max_file = match opts.get("max-file") {
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::invalid(format!("invalid max-file {n:?}")))?,
        None if opts.contains_key("max-size") => 1,
        None => DEFAULT_MAX_FILE,
    };
    Ok(())
}

/// `docker logs` on a driver that keeps nothing.
pub(crate) fn check_readable(lc: &LogConfig) -> Result<()> {
    if lc.kind == "none" {
        return Err(ApiError::invalid(
            "configured logging driver does not support reading",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc(kind: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            kind: kind.into(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn validation_and_defaults() {
        assert!(validate(&lc("json-file", &[("max-size", "10m")])).is_ok());
        assert!(validate(&lc("none", &[])).is_ok());
        assert_eq!(
            validate(&lc("json-file", &[("bogus", "1")]))
                .unwrap_err()
                .message,
            "unknown log opt 'bogus' for json-file log driver"
        );
        assert!(validate(&lc("syslog", &[])).is_err());
        assert_eq!(
            validate(&lc("x", &[])).unwrap_err().message,
            "error looking up logging plugin x: plugin \"x\" not found"
        );
        assert_eq!(
            validate(&lc("json-file", &[("mode", "fast")]))
                .unwrap_err()
                .message,
            "logger: logging mode not supported: fast"
        );
        assert_eq!(
            validate(&lc("json-file", &[("max-buffer-size", "1m")]))
                .unwrap_err()
                .message,
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        assert!(validate(&lc(
            "json-file",
            &[("mode", "non-blocking"), ("max-buffer-size", "1m")]
        ))
        .is_ok());
        assert!(validate(&lc("json-file", &[("max-file", "0")])).is_err());
        let mut c = lc("", &[]);
        with_default(&mut c, &lc("json-file", &[("max-size", "1m")]));
        assert_eq!(c, lc("json-file", &[("max-size", "1m")]));
        let mut c = lc("", &[]);
        with_default(&mut c, &LogConfig::default());
        assert_eq!(c.kind, "json-file");
    }
}
