//! The resource-limit and health-check flags of `create`/`run` (`LimitOpts`, `HealthOpts`) and
//! how they fill the create body's `HostConfig` and `Config`.

use berth_api_types::container::{Config, HealthConfig, HostConfig, ThrottleDevice, WeightDevice};
use clap::Args;

use super::{parse_bytes, OptsError};

// Resource flags of `create`/`run` beyond the basic ones in `ContainerOpts` (a plain comment:
// see `ContainerOpts`).
#[derive(Args, Debug, Clone, Default)]
pub struct LimitOpts {
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune container memory swappiness (0 to 100)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub memory_swappiness: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device", value_name = "list")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list")]
    pub device_write_iops: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    pub device_cgroup_rule: Vec<String>,
}

// The health-check flags of `create`/`run` (a plain comment: see `ContainerOpts`).
#[derive(Args, Debug, Clone, Default)]
pub struct HealthOpts {
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub health_retries: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
}

/// Puts the health flags into a create body's `Healthcheck`, as docker's CLI does.
pub fn apply_health(o: &HealthOpts, config: &mut Config) -> Result<(), OptsError> {
    let dur = |flag: &str, v: &Option<String>| -> Result<i64, OptsError> {
        match v {
            None => Ok(0),
            Some(s) => match berth_go::parse_duration(s) {
                Ok(d) if d >= 0 => Ok(d),
                Ok(_) => Err(OptsError(format!(
                    "invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}"
                ))),
                Err(e) => Err(OptsError(format!(
                    "invalid argument {s:?} for \"--{flag}\" flag: {e}"
                ))),
            },
        }
    };
    let interval = dur("health-interval", &o.health_interval)?;
    let timeout = dur("health-timeout", &o.health_timeout)?;
    let start = dur("health-start-period", &o.health_start_period)?;
    let retries = o.health_retries.unwrap_or(0);
    let any = o.health_cmd.is_some() || interval != 0 || timeout != 0 || start != 0 || retries != 0;
    if o.no_healthcheck {
        if any {
            return Err(OptsError(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        config.healthcheck = Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..HealthConfig::default()
        });
        return Ok(());
    }
    if !any {
        return Ok(());
    }
    if retries < 0 {
        return Err(OptsError("--health-retries cannot be negative".into()));
    }
    let test = match &o.health_cmd {
        Some(c) if !c.is_empty() => Some(vec!["CMD-SHELL".to_string(), c.clone()]),
        _ => None,
    };
    config.healthcheck = Some(HealthConfig {
        test,
        interval,
        timeout,
        start_period: start,
        retries,
        start_interval: 0,
    });
    Ok(())
}

/// `/dev/sda:1mb` (bytes) or `/dev/sda:100` (iops) → `{"Path", "Rate"}`.
fn throttle(s: &str, bytes: bool) -> Result<ThrottleDevice, OptsError> {
    let bad = || {
        OptsError(format!(
            "invalid argument {s:?}: bad format for device throttle"
        ))
    };
    let (path, rate) = s.rsplit_once(':').ok_or_else(bad)?;
    if !path.starts_with("/dev/") {
        return Err(bad());
    }
    let rate = if bytes {
        u64::try_from(parse_bytes(rate).map_err(|_| bad())?).map_err(|_| bad())?
    } else {
        rate.parse::<u64>().map_err(|_| bad())?
    };
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

/// Puts the `LimitOpts` into a create body's `HostConfig`.
pub fn apply_limits(o: &LimitOpts, hc: &mut HostConfig) -> Result<(), OptsError> {
    if let Some(r) = &o.memory_reservation {
        hc.memory_reservation = parse_bytes(r)?;
    }
    if o.oom_kill_disable {
        hc.oom_kill_disable = Some(true);
    }
    if let Some(v) = o.memory_swappiness {
        hc.memory_swappiness = Some(v);
    }
    if let Some(v) = o.cpu_period {
        hc.cpu_period = v;
    }
    if let Some(v) = o.cpu_quota {
        hc.cpu_quota = v;
    }
    if let Some(v) = &o.cpuset_cpus {
        hc.cpuset_cpus = v.clone();
    }
    if let Some(v) = &o.cpuset_mems {
        hc.cpuset_mems = v.clone();
    }
    if let Some(v) = o.blkio_weight {
        hc.blkio_weight = v;
    }
    let mut weights = Vec::new();
    for w in &o.blkio_weight_device {
        let (path, weight) = w
            .rsplit_once(':')
            .and_then(|(p, v)| Some((p, v.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                OptsError(format!(
                    "invalid argument {w:?}: bad format for blkio-weight-device"
                ))
            })?;
        weights.push(WeightDevice {
            path: path.to_string(),
            weight,
        });
    }
    hc.blkio_weight_device = Some(weights);
    let throttles = |list: &[String], bytes: bool| {
        list.iter()
            .map(|s| throttle(s, bytes))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    hc.blkio_device_read_bps = throttles(&o.device_read_bps, true)?;
    hc.blkio_device_write_bps = throttles(&o.device_write_bps, true)?;
    hc.blkio_device_read_iops = throttles(&o.device_read_iops, false)?;
    hc.blkio_device_write_iops = throttles(&o.device_write_iops, false)?;
    if !o.device_cgroup_rule.is_empty() {
        hc.device_cgroup_rules = Some(o.device_cgroup_rule.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_flags() {
        let mut config = Config::default();
        let o = HealthOpts {
            health_cmd: Some("true".into()),
            health_interval: Some("2s".into()),
            health_retries: Some(4),
            ..Default::default()
        };
        apply_health(&o, &mut config).unwrap();
        let h = config.healthcheck.unwrap();
        assert_eq!(h.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(h.interval, 2_000_000_000i64);
        assert_eq!(h.retries, 4);
        let mut config = Config::default();
        let o = HealthOpts {
            no_healthcheck: true,
            ..Default::default()
        };
        apply_health(&o, &mut config).unwrap();
        let h = serde_json::to_value(config.healthcheck.unwrap()).unwrap();
        assert_eq!(h["Test"], json!(["NONE"]));
        // Go's ParseDuration errors, as the docker CLI's flag parsing prints them.
        let o = HealthOpts {
            health_timeout: Some("5x".into()),
            ..Default::default()
        };
        let e = apply_health(&o, &mut Config::default()).unwrap_err();
        assert_eq!(
            e.0,
            r#"invalid argument "5x" for "--health-timeout" flag: time: unknown unit "x" in duration "5x""#
        );
    }
}
