//! Watching a running container's shim and recording its exit.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{now_rfc3339, Status};
use crate::{spec, ContainerEvent, Daemon};

impl Daemon {
    /// Watches the shim until the process exits, then records the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, id: String) {
        self.start_health(&id);
        let this = self.clone();
        tokio::spawn(async move {
            let client = this.runtime.client(&id);
            let status = match client.wait().await {
                Ok(s) => Some(s),
                Err(e) => {
                    // A process that exits at once can take its shim with it before this
                    // connects; the exit file tells. Only its absence is worth a warning.
                    tracing::debug!(container = %id, "shim gone before wait: {e}");
                    // The shim records the exit on disk before it answers anyone.
                    let mut found = this.runtime.read_exit(&id);
                    for _ in 0..20 {
                        if found.is_some() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        found = this.runtime.read_exit(&id);
                    }
                    if found.is_none() {
                        tracing::warn!(container = %id, "lost the shim and found no exit status");
                    }
                    found
                }
            };
            this.handle_exit(&id, status).await;
        });
    }

    pub(crate) async fn handle_exit(
        self: &Arc<Self>,
        id: &str,
        status: Option<berth_shim_protocol::ExitStatus>,
    ) {
        let t0 = std::time::Instant::now();
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        // Without an exit status the shim died (SIGKILL, OOM, a crash) and its container's
        // processes may live on, re-parented to init: they are killed through the cgroups
        // before anything they use (rootfs, network) is released.
        let lost_monitor = status.is_none();
        if lost_monitor {
            self.kill_by_cgroup(id, true).await;
        }
        // A `--rm` container's rootfs is unmounted with its removal, off the answer's path.
        if !self.get(id).is_some_and(|c| c.host_config.auto_remove) {
            self.runtime.unmount_rootfs(id);
        }
        self.net.release(id);
        self.release_mounts(id);
        if let Some(n) = status.as_ref().map(|s| s.log_dropped).filter(|n| *n > 0) {
            tracing::warn!(
                container = id,
                "{n} log messages dropped: no space left on device"
            );
        }
        let (code, finished, oom) = match &status {
            Some(s) => (s.exit_code as i64, s.finished_at.clone(), s.oom_killed),
            // Killed above with SIGKILL: 128 + 9, as Docker reports a killed container.
            None => (137, now_rfc3339(), false),
        };
        let res = self.update_observed(id, |c| {
            c.transition(Status::Exited)?;
            c.state.pid = 0;
            c.state.exit_code = code;
            c.state.finished_at = finished;
            c.state.oom_killed = oom;
            if lost_monitor {
                c.state.error = "container monitor lost: its processes were killed".to_string();
            }
            Ok(())
        });
        if res.is_err() {
            return;
        }
        self.finish_execs(id);
        self.emit_container_id(id, "die", &[("exitCode", code.to_string())]);
        let _ = self.events.send(ContainerEvent::Exited {
            id: id.to_string(),
            exit_code: code,
            error: None,
        });
        self.schedule_restart(id);
        drop(_g);
        tracing::debug!(container = id, recorded = ?t0.elapsed(), "exit handled");
        self.maybe_auto_remove(id).await;
        tracing::debug!(container = id, total = ?t0.elapsed(), "exit and auto-removal done");
    }

    /// Kills whatever still runs in the container's cgroups (see `cgroup_kill`). `owned`: the
    /// shim is gone, so its cgroup directories are berthd's to remove; otherwise they are left
    /// to the runtime and only touched when processes were found.
    pub(crate) async fn kill_by_cgroup(self: &Arc<Self>, id: &str, owned: bool) {
        let Some(c) = self.get(id) else { return };
        let path =
            spec::container_cgroup_path(&c.host_config.cgroup_parent, &self.cfg.cgroup_parent, id);
        let this = self.clone();
        let id = id.to_string();
        let res = tokio::task::spawn_blocking(move || {
            let cgroups = crate::cgroup_kill::ContainerCgroups::find(&this.host.sys, &path);
            if !owned && cgroups.pids().is_empty() {
                return Ok(0);
            }
            let n = cgroups.kill_all(&mut crate::cgroup_kill::sigkill, Duration::from_secs(10))?;
            cgroups.remove()?;
            Ok::<usize, crate::cgroup_kill::CgroupKillError>(n)
        })
        .await;
        match res {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::warn!(container = %id, "killed {n} processes left without their shim")
            }
            Ok(Err(e)) => {
                tracing::error!(container = %id, "killing the container's processes: {e}")
            }
            Err(e) => tracing::error!(container = %id, "killing the container's processes: {e}"),
        }
    }
}
