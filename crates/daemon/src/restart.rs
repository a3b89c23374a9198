//! Restart policies (`no`, `always`, `unless-stopped`, `on-failure[:N]`) with Docker's backoff:
//! the first restart waits 100 ms, each next one twice as long (at most a minute), and a run of
//! 10 s or more resets the delay. A container the user stopped or killed is never restarted by
//! its policy while the daemon runs; at daemon start `always` containers come back regardless
//! (Docker's documented behaviour), `unless-stopped` and `on-failure` ones only when not
//! stopped by the user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::container::HostConfig;

use crate::model::{unix_seconds, Container, Status};
use crate::{lock, ContainerEvent, Daemon};

const DEFAULT_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const RESET_AFTER_SECS: i64 = 10;

/// The per-container backoff delay of the last scheduled restart.
#[derive(Default)]
pub(crate) struct Restarts {
    delays: Mutex<HashMap<String, Duration>>,
}

/// Docker's `ShouldRestart` for an exit while the daemon runs.
pub(crate) fn should_restart(hc: &HostConfig, exit_code: i64, restart_count: i64) -> bool {
    if hc.auto_remove {
        return false;
    }
    match hc.restart_policy.name.as_str() {
        "always" | "unless-stopped" => true,
        // berth's on-unhealthy acts as on-failure for exits; the health monitor restarts
        // the container when it turns unhealthy.
        n if n == "on-failure" || n == crate::health::ON_UNHEALTHY => {
            let max = hc.restart_policy.maximum_retry_count;
            exit_code != 0 && (max == 0 || restart_count < max)
        }
        _ => false,
    }
}

/// Whether a stopped container is started when the daemon starts.
pub(crate) fn restart_on_boot(c: &Container) -> bool {
    let hc = &c.host_config;
    match hc.restart_policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !c.manually_stopped,
        "on-failure" => {
            !c.manually_stopped && should_restart(hc, c.state.exit_code, c.restart_count)
        }
        _ => false,
    }
}

/// The next backoff delay from the previous one and how long the container ran.
pub(crate) fn next_delay(prev: Option<Duration>, ran_secs: i64) -> Duration {
    if ran_secs >= RESET_AFTER_SECS {
        return DEFAULT_DELAY;
    }
    match prev {
        None => DEFAULT_DELAY,
        Some(d) => (d * 2).min(MAX_DELAY),
    }
}

impl Daemon {
    /// Called with the op lock held right after an exit was recorded: applies the policy.
    pub(crate) fn schedule_restart(self: &Arc<Self>, id: &str) {
        let Some(c) = self.get(id) else { return };
        if c.manually_stopped
            || c.state.status != Status::Exited
            || !should_restart(&c.host_config, c.state.exit_code, c.restart_count)
        {
            lock(&self.restarts.delays).remove(id);
            return;
        }
        let ran = unix_seconds(&c.state.finished_at) - unix_seconds(&c.state.started_at);
        let delay = {
            let mut d = lock(&self.restarts.delays);
            let next = next_delay(d.get(id).copied(), ran);
            d.insert(id.to_string(), next);
            next
        };
        // As dockerd's monitor does, the count goes up with the move to `restarting`, and the
        // container stays `restarting` until the next run is up: a client waiting for
        // `exited` with the final `RestartCount` must never see that pair while a run is
        // still to come (it would read the logs before the last run wrote them).
        if self
            .try_update_state(id, |c| {
                c.transition(Status::Restarting)?;
                c.restart_count += 1;
                Ok(())
            })
            .is_err()
        {
            return;
        }
        tracing::debug!(container = id, ?delay, "restart policy: restarting");
        self.spawn_policy_start(id, delay);
    }

    /// Starts a `restarting` container once `delay` has passed.
    pub(crate) fn spawn_policy_start(self: &Arc<Self>, id: &str, delay: Duration) {
        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.policy_start(&id).await;
        });
    }

    /// A container the daemon found `restarting` at its start (it was killed during the
    /// backoff delay): its exit was handled and counted already, so only the start is left.
    pub(crate) fn resume_policy_restart(self: &Arc<Self>, id: &str) {
        tracing::info!(
            container = id,
            "restart policy: resuming a restart cut by a daemon stop"
        );
        self.spawn_policy_start(id, DEFAULT_DELAY);
    }

    async fn policy_start(self: &Arc<Self>, id: &str) {
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        let Some(c) = self.get(id) else { return };
        // A stop, kill or remove during the delay cancelled it.
        if c.state.status != Status::Restarting || c.manually_stopped {
            return;
        }
        // Still `restarting` here: `start_locked` records `running` once the process is up,
        // or the exit (`exited`) when the start fails.
        if let Err(e) = self.start_locked(c).await {
            tracing::warn!(
                container = id,
                "restart policy: start failed: {}",
                e.message
            );
        }
    }

    /// `docker stop`/`kill`/`rm -f` of a container: the policy must not undo it. Returns true
    /// when the container was only waiting for a policy restart, which is now cancelled.
    pub(crate) async fn stop_by_user(&self, id: &str) -> bool {
        // Under the op lock: an exit being recorded at the same moment must not be overwritten.
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        let mut was_restarting = false;
        let _ = self.try_update_state(id, |c| {
            c.manually_stopped = true;
            if c.state.status == Status::Restarting {
                c.transition(Status::Exited)?;
                was_restarting = true;
            }
            Ok(())
        });
        if was_restarting {
            lock(&self.restarts.delays).remove(id);
            let _ = self.events.send(ContainerEvent::Exited {
                id: id.to_string(),
                exit_code: self.get(id).map(|c| c.state.exit_code).unwrap_or(0),
                error: None,
            });
        }
        was_restarting
    }

    /// A start by the user clears the stop mark and, as Docker does, the restart count.
    pub(crate) fn start_by_user(&self, id: &str) {
        lock(&self.restarts.delays).remove(id);
        let _ = self.update_state(id, |c| {
            c.manually_stopped = false;
            c.restart_count = 0;
        });
    }

    /// After restore: starts the stopped containers whose policy says so.
    pub(crate) async fn restart_on_daemon_start(self: &Arc<Self>) {
        let all: Vec<Container> = lock(&self.containers).values().cloned().collect();
        for c in all {
            if matches!(c.state.status, Status::Exited | Status::Created)
                && c.state.started_at != crate::model::ZERO_TIME
                && restart_on_boot(&c)
            {
                tracing::info!(container = %c.id, "restart policy: starting at daemon start");
                let guard = self.op_lock(&c.id);
                let _g = guard.lock().await;
                let Some(c) = self.get(&c.id) else { continue };
                if c.state.status.is_active() {
                    continue;
                }
                let Ok(c) = self.update_state(&c.id, |c| c.manually_stopped = false) else {
                    continue;
                };
                if let Err(e) = self.start_locked(c).await {
                    tracing::warn!("restart policy at daemon start: {}", e.message);
                }
            }
        }
    }
}

/// Docker's `ValidateRestartPolicy`, plus berth's `on-unhealthy`.
pub(crate) fn validate_policy(p: &berth_api_types::container::RestartPolicy) -> crate::Result<()> {
    use berth_api_types::ApiError;
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(ApiError::invalid(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                ));
            }
        }
        "on-failure" => {}
        n if n == crate::health::ON_UNHEALTHY => {}
        other => {
            return Err(ApiError::invalid(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if p.maximum_retry_count < 0 {
        return Err(ApiError::invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::container::RestartPolicy;

    fn hc(name: &str, max: i64) -> HostConfig {
        HostConfig {
            restart_policy: RestartPolicy {
                name: name.into(),
                maximum_retry_count: max,
            },
            ..Default::default()
        }
    }

    #[test]
    fn policies() {
        assert!(!should_restart(&hc("no", 0), 1, 0));
        assert!(!should_restart(&hc("", 0), 1, 0));
        assert!(should_restart(&hc("always", 0), 0, 100));
        assert!(should_restart(&hc("unless-stopped", 0), 0, 0));
        assert!(!should_restart(&hc("on-failure", 0), 0, 0));
        assert!(should_restart(&hc("on-failure", 0), 1, 50));
        assert!(should_restart(&hc("on-failure", 2), 1, 1));
        assert!(!should_restart(&hc("on-failure", 2), 1, 2));
        let mut h = hc("always", 0);
        h.auto_remove = true;
        assert!(!should_restart(&h, 1, 0));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let d1 = next_delay(None, 0);
        assert_eq!(d1, Duration::from_millis(100));
        let d2 = next_delay(Some(d1), 1);
        assert_eq!(d2, Duration::from_millis(200));
        assert_eq!(next_delay(Some(d2), 3), Duration::from_millis(400));
        assert_eq!(next_delay(Some(d2), 10), Duration::from_millis(100));
        assert_eq!(next_delay(Some(Duration::from_secs(50)), 0), MAX_DELAY);
    }

    #[test]
    fn boot_restarts() {
        let mut c = Container {
            id: "x".into(),
            name: "x".into(),
            created: String::new(),
            path: String::new(),
            args: vec![],
            config: Default::default(),
            host_config: hc("always", 0),
            image_id: String::new(),
            top_layer: None,
            state: Default::default(),
            restart_count: 0,
            exec_ids: vec![],
            mounts: vec![],
            manually_stopped: true,
            health: None,
            ..Default::default()
        };
        assert!(restart_on_boot(&c), "always comes back even when stopped");
        c.host_config = hc("unless-stopped", 0);
        assert!(!restart_on_boot(&c));
        c.manually_stopped = false;
        assert!(restart_on_boot(&c));
        c.host_config = hc("no", 0);
        assert!(!restart_on_boot(&c));
    }
}
