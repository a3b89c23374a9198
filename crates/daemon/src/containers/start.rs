//! `POST /containers/{id}/start` and recording a start that failed.

use std::sync::Arc;
use std::time::Duration;

use berth_api_types::ApiError;

use super::no_such_container;
use crate::model::{now_rfc3339, Container, Status};
use crate::{internal, lock, spec, ContainerEvent, Daemon, Result};
use berth_shim_protocol::StartCause;

impl Daemon {
    pub async fn container_start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.resolve_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let c = self.get(&c.id).ok_or_else(|| no_such_container(key))?;
        match c.state.status {
            Status::Running | Status::Restarting => return Err(ApiError::not_modified()),
            Status::Paused => {
                return Err(ApiError::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(ApiError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited => {}
        }
        let id = c.id.clone();
        self.start_by_user(&id);
        let res = self.start_locked(c).await;
        if res.is_err() {
            // Docker removes an auto-remove container whose start failed before answering.
            drop(_g);
            self.maybe_auto_remove(&id).await;
        }
        res
    }

    /// Starts a container whose op lock the caller holds.
    pub(crate) async fn start_locked(self: &Arc<Self>, c: Container) -> Result<()> {
        let id = c.id.clone();
        let t0 = std::time::Instant::now();
        self.runtime.ops.prime_cgroup_migration();
        let shim_mounts_cgroups = match self.prepare_bundle(&c) {
            Ok(v) => v,
            Err(e) => {
                self.runtime.unmount_rootfs(&id);
                self.record_start_failure(&id, &e.message, None).await;
                return Err(e);
            }
        };
        let mut shim_cfg =
            self.runtime
                .shim_config(&id, c.config.tty, c.config.open_stdin, c.config.stdin_once);
        crate::logdriver::configure_shim(&c.host_config.log_config, &mut shim_cfg)?;
        // As Docker: a privileged container's cgroup filesystem is writable.
        shim_cfg.readonly_cgroups = !c.host_config.privileged;
        shim_cfg.mount_cgroups_v1 = shim_mounts_cgroups;
        shim_cfg.systemd_cgroup = Some(spec::container_cgroup_path(
            &c.host_config.cgroup_parent,
            &self.cfg.cgroup_parent,
            &id,
        ));
        if let Some(sz) = c
            .host_config
            .console_size
            .as_ref()
            .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
        {
            let dim = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
            shim_cfg.console_size = Some([dim(sz[0]), dim(sz[1])]);
        }
        tracing::debug!(container = %id, prepared = ?t0.elapsed(), "bundle ready");
        let this = self.clone();
        let launch_id = id.clone();
        let launched =
            tokio::task::spawn_blocking(move || this.runtime.launch(&launch_id, &shim_cfg))
                .await
                .map_err(internal)?;
        let init_pid = match launched {
            Ok(pid) => pid,
            Err(e) => {
                self.runtime.unmount_rootfs(&id);
                let msg = format!("failed to create task for container: {}", e.message);
                self.record_start_failure(&id, &msg, Some(e.cause)).await;
                return Err(ApiError::invalid(msg));
            }
        };
        let remapped =
            crate::userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config)
                .is_some();
        if remapped {
            if let Err(e) = self.setup_created_network(&c, init_pid) {
                let _ = self.runtime.client(&id).kill(9, true).await;
                self.runtime.unmount_rootfs(&id);
                self.record_start_failure(&id, &e.message, None).await;
                return Err(e);
            }
        }
        // A namespace the network service plumbed, or one of its pool's (pinned at the
        // container's path), has `lo` up already.
        if c.host_config.network_mode != "host"
            && self.net.endpoints(&id).is_empty()
            && !self.net.netns.is_mounted(&self.net.netns_path(&id))
        {
            if let Err(e) = self.runtime.ops.loopback_up(init_pid) {
                tracing::warn!(container = %id, "bringing up lo: {e}");
            }
        }
        let t_launched = t0.elapsed();
        let client = self.runtime.client(&id);
        let pending = lock(&self.pending_attach).remove(&id).unwrap_or_default();
        for p in pending {
            // A client that went away before its upgrade finished drops its sender.
            match tokio::time::timeout(Duration::from_secs(5), p.io).await {
                Ok(Ok(io)) => self.connect_attach(&id, c.config.tty, p.opts, io).await,
                _ => tracing::debug!(container = %id, "an attach before start never connected"),
            }
        }
        let started = match client.start().await {
            Ok(r) => r,
            Err(e) => {
                let _ = client.kill(9, true).await;
                self.runtime.unmount_rootfs(&id);
                let msg = format!("failed to start container: {e}");
                self.record_start_failure(&id, &msg, None).await;
                return Err(ApiError::internal(msg));
            }
        };
        // The shim answers the start with the process's pid and start time; one of an earlier
        // berth did not, and is asked.
        let (pid, started_at) = match (started.pid, started.started_at) {
            (Some(pid), Some(at)) => (pid as i64, at),
            _ => match client.state().await {
                Ok(s) => (
                    s.pid.unwrap_or(0) as i64,
                    s.started_at.unwrap_or_else(now_rfc3339),
                ),
                Err(_) => (0, now_rfc3339()),
            },
        };
        // The process runs now, whether or not the database can take it (a full disk).
        self.update_observed(&id, |c| {
            c.transition(Status::Running)?;
            c.state.pid = pid;
            c.state.exit_code = 0;
            c.state.error = String::new();
            c.state.started_at = started_at;
            c.state.oom_killed = false;
            Ok(())
        })?;
        tracing::debug!(container = %id, ?t_launched, total = ?t0.elapsed(), "started");
        self.emit_container_id(&id, "start", &[]);
        let _ = self.events.send(ContainerEvent::Started { id: id.clone() });
        self.begin_health(&id);
        self.post_start_limits(&id);
        self.spawn_monitor(id);
        Ok(())
    }

    /// A start that failed before the process ran: Docker records it as an exit with 126/127/128.
    /// `cause`: the runtime's, when it reported one; else dockerd's rule on the message.
    async fn record_start_failure(
        self: &Arc<Self>,
        id: &str,
        msg: &str,
        cause: Option<StartCause>,
    ) {
        self.net.release(id);
        let code = i64::from(
            cause
                .unwrap_or_else(|| StartCause::from_message(msg))
                .exit_code(),
        );
        let res = self.try_update_state(id, |c| {
            // A created container stays created; an exited one stays exited; a policy
            // restart that failed to start is an exit.
            if !matches!(c.state.status, Status::Created | Status::Exited) {
                c.transition(Status::Exited)?;
            }
            c.state.exit_code = code;
            c.state.error = msg.to_string();
            c.state.pid = 0;
            c.state.finished_at = now_rfc3339();
            Ok(())
        });
        lock(&self.pending_attach).remove(id);
        if res.is_ok() {
            let _ = self.events.send(ContainerEvent::Exited {
                id: id.to_string(),
                exit_code: code,
                // The start call reports the message; Docker's wait answers no error here.
                error: None,
            });
            // The caller holds this container's op lock: remove once it is released.
            let this = self.clone();
            let id = id.to_string();
            tokio::spawn(async move { this.maybe_auto_remove(&id).await });
        }
    }
}
