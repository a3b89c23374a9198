//! Health checks: `HEALTHCHECK` from the image or `--health-*` flags. Each probe runs as an exec
//! in the container through the shim; `State.Health` keeps the status, the failing streak and
//! the last 5 results; a status change emits a `health_status: <status>` event.
//!
//! Berth extension (moby#28400): the restart policy `on-unhealthy[:N]` kills a container that
//! turns unhealthy, and restarts it like `on-failure[:N]` (up to N restarts, 0 = no limit).

use std::sync::Arc;
use std::time::Duration;

use berth_api_types::container::{Config, Health, HealthcheckResult};
use berth_shim_protocol::FrameKind;

use crate::exec::ExecInstance;
use crate::model::{now_rfc3339, unix_seconds, Container, Status};
use crate::Daemon;

/// Berth's restart policy that also restarts unhealthy containers.
pub(crate) const ON_UNHEALTHY: &str = "on-unhealthy";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

pub(crate) const STARTING: &str = "starting";
pub(crate) const HEALTHY: &str = "healthy";
pub(crate) const UNHEALTHY: &str = "unhealthy";

/// A container's effective probe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns.unsigned_abs())
    } else {
        default
    }
}

/// The probe of a config (image defaults already merged), or `None` without one or with `NONE`.
pub(crate) fn probe_for(config: &Config) -> Option<Probe> {
    let hc = config.healthcheck.as_ref()?;
    let test = hc.test.as_ref()?;
    let cmd = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Probe {
        cmd,
        interval: dur(hc.interval, DEFAULT_INTERVAL),
        timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
        retries: if hc.retries > 0 {
            hc.retries
        } else {
            DEFAULT_RETRIES
        },
        start_period: dur(hc.start_period, Duration::ZERO),
    })
}

/// Folds one result into the health record (moby `handleProbeResult`); returns the new status.
pub(crate) fn apply_result(
    h: &mut Health,
    r: HealthcheckResult,
    probe: &Probe,
    in_start_period: bool,
) -> String {
    if r.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else if !(h.status == STARTING && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= probe.retries {
            h.status = UNHEALTHY.into();
        }
    }
    h.log.push(r);
    if h.log.len() > MAX_LOG_ENTRIES {
        let extra = h.log.len() - MAX_LOG_ENTRIES;
        h.log.drain(..extra);
    }
    h.status.clone()
}

/// The `(healthy)` suffix of `docker ps`'s status column.
pub(crate) fn status_suffix(c: &Container) -> String {
    match c.health.as_ref().map(|h| h.status.as_str()) {
        Some(STARTING) => " (health: starting)".into(),
        Some(s) if !s.is_empty() && c.state.status == Status::Running => format!(" ({s})"),
        _ => String::new(),
    }
}

/// `Health` of a `GET /containers/json` entry (API 1.52+): `none` without a health check or
/// when the container is not running.
pub(crate) fn summary(c: &Container) -> berth_api_types::container::SummaryHealth {
    let h = c
        .health
        .as_ref()
        .filter(|h| !h.status.is_empty() && c.state.status == Status::Running);
    berth_api_types::container::SummaryHealth {
        status: h.map_or("none", |h| h.status.as_str()).to_string(),
        failing_streak: h.map_or(0, |h| h.failing_streak),
    }
}

/// The `health=` filter of `docker ps`: starting, healthy, unhealthy or none.
pub(crate) fn filter_matches(c: &Container, wanted: &[String]) -> bool {
    let status = c
        .health
        .as_ref()
        .map(|h| h.status.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("none");
    wanted.iter().any(|w| w == status)
}

impl Daemon {
    /// Starts the probe loop of a running container (on start and on reconnect after a
    /// daemon restart). The loop ends when this run of the container ends.
    pub(crate) fn start_health(self: &Arc<Self>, id: &str) {
        let Some(c) = self.get(id) else { return };
        let Some(probe) = probe_for(&c.config) else {
            return;
        };
        let run = c.state.started_at.clone();
        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(probe.interval).await;
                let Some(c) = this.get(&id) else { return };
                if c.state.started_at != run || !c.state.status.is_active() {
                    return;
                }
                if c.state.status != Status::Running {
                    continue;
                }
                let result = this.run_probe(&c, &probe).await;
                // Under the op lock: the record is read and written whole, and an exit being
                // recorded at the same moment must not be overwritten.
                let guard = this.op_lock(&id);
                let g = guard.lock().await;
                let Some(c) = this.get(&id) else { return };
                if c.state.started_at != run || c.state.status != Status::Running {
                    return;
                }
                // A result from before the start (the clock stepped back) is not in it.
                let in_start = u64::try_from(unix_seconds(&result.start) - unix_seconds(&run))
                    .is_ok_and(|d| d <= probe.start_period.as_secs())
                    && !probe.start_period.is_zero();
                let mut h = c.health.clone().unwrap_or_else(|| Health {
                    status: STARTING.into(),
                    ..Default::default()
                });
                let before = h.status.clone();
                let after = apply_result(&mut h, result, &probe, in_start);
                let saved = {
                    let mut c = c.clone();
                    c.health = Some(h);
                    this.save(&c).is_ok()
                };
                drop(g);
                if saved && before != after {
                    this.emit_container_id(&id, &format!("health_status: {after}"), &[]);
                    if after == UNHEALTHY && c.host_config.restart_policy.name == ON_UNHEALTHY {
                        tracing::info!(container = %id, "unhealthy: restarting (on-unhealthy)");
                        // SIGKILL: the exit is non-zero, so the policy restarts it.
                        let _ = this.stop_with(&id, 9, 0).await;
                        return;
                    }
                }
            }
        });
    }

    /// Marks a container's health `starting` for a new run.
    pub(crate) fn begin_health(&self, id: &str) {
        let Some(mut c) = self.get(id) else { return };
        c.health = probe_for(&c.config).map(|_| Health {
            status: STARTING.into(),
            failing_streak: 0,
            log: Vec::new(),
        });
        let _ = self.save(&c);
    }

    async fn run_probe(self: &Arc<Self>, c: &Container, probe: &Probe) -> HealthcheckResult {
        let start = now_rfc3339();
        let fail = |msg: String| HealthcheckResult {
            start: start.clone(),
            end: now_rfc3339(),
            exit_code: -1,
            output: msg,
        };
        let probe_id = format!("health-{}", rand_hex());
        let e = ExecInstance {
            id: probe_id.clone(),
            container_id: c.id.clone(),
            req: berth_api_types::exec::CreateRequest {
                cmd: Some(probe.cmd.clone()),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            },
            running: false,
            started: false,
            exit_code: None,
            pid: 0,
        };
        let process = match self.exec_process(&e, false) {
            Ok(p) => p,
            Err(err) => return fail(err.message),
        };
        let mut stream = match self
            .runtime
            .client(&c.id)
            .exec(&probe_id, process, false)
            .await
        {
            Ok(s) => s,
            Err(err) => return fail(format!("health check exec failed: {err}")),
        };
        let pid = stream.pid;
        let mut output = Vec::new();
        let read = async {
            let mut code = -1i64;
            while let Ok(Some(frame)) = stream.reader.next_frame().await {
                match frame.kind {
                    FrameKind::Stdout | FrameKind::Stderr => {
                        if output.len() < MAX_OUTPUT {
                            output.extend_from_slice(&frame.payload);
                        }
                    }
                    FrameKind::Exit => {
                        if let Ok(s) = serde_json::from_slice::<berth_shim_protocol::ExitStatus>(
                            &frame.payload,
                        ) {
                            code = s.exit_code as i64;
                        }
                        break;
                    }
                    FrameKind::Error => {
                        let err = berth_shim_protocol::StartError::from_payload(&frame.payload);
                        output.extend_from_slice(err.message.as_bytes());
                        code = 126;
                        break;
                    }
                    FrameKind::Started => {}
                }
            }
            code
        };
        match tokio::time::timeout(probe.timeout, read).await {
            Ok(code) => {
                output.truncate(MAX_OUTPUT);
                HealthcheckResult {
                    start: start.clone(),
                    end: now_rfc3339(),
                    exit_code: code,
                    output: String::from_utf8_lossy(&output).into_owned(),
                }
            }
            Err(_) => {
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                fail(format!(
                    "Health check exceeded timeout ({})",
                    berth_go::format_duration(
                        i64::try_from(probe.timeout.as_nanos()).unwrap_or(i64::MAX)
                    )
                ))
            }
        }
    }
}

fn rand_hex() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::container::HealthConfig;

    fn cfg(test: &[&str]) -> Config {
        Config {
            healthcheck: Some(HealthConfig {
                test: Some(test.iter().map(|s| s.to_string()).collect()),
                interval: 2_000_000_000,
                retries: 2,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn probe_forms() {
        let p = probe_for(&cfg(&["CMD-SHELL", "test -e /ok"])).unwrap();
        assert_eq!(p.cmd, ["/bin/sh", "-c", "test -e /ok"]);
        assert_eq!(p.interval, Duration::from_secs(2));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 2);
        let p = probe_for(&cfg(&["CMD", "true"])).unwrap();
        assert_eq!(p.cmd, ["true"]);
        assert!(probe_for(&cfg(&["NONE"])).is_none());
        assert!(probe_for(&Config::default()).is_none());
    }

    fn res(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn status_transitions() {
        let p = probe_for(&cfg(&["CMD", "x"])).unwrap();
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        // Failures inside the start period do not count while starting.
        assert_eq!(apply_result(&mut h, res(1), &p, true), STARTING);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(apply_result(&mut h, res(0), &p, true), HEALTHY);
        assert_eq!(apply_result(&mut h, res(1), &p, false), HEALTHY);
        assert_eq!(apply_result(&mut h, res(1), &p, false), UNHEALTHY);
        assert_eq!(h.failing_streak, 2);
        for _ in 0..5 {
            apply_result(&mut h, res(1), &p, false);
        }
        assert_eq!(h.log.len(), 5);
        assert_eq!(apply_result(&mut h, res(0), &p, false), HEALTHY);
        assert_eq!(h.failing_streak, 0);
    }
}
