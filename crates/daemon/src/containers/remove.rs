//! `DELETE /containers/{id}` and the auto-removal of `--rm` containers.

use std::sync::Arc;

use berth_api_types::ApiError;

use crate::model::Status;
use crate::{internal, lock, ContainerEvent, Daemon, Result};

impl Daemon {
    pub async fn container_remove(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !force && !c.state.status.can_remove_without_force() {
            let what = if c.state.status == Status::Paused {
                "paused"
            } else {
                "running"
            };
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                c.name
            )));
        }
        self.remove_container(&c.id, force).await?;
        if volumes {
            self.remove_anonymous_volumes(&c);
        }
        Ok(())
    }

    pub(crate) async fn remove_container(self: &Arc<Self>, id: &str, force: bool) -> Result<()> {
        self.remove_container_with(id, force, false).await
    }

    /// Removes the container `id` (by full id) forcibly, its files deleted in the background:
    /// the CRI's RemoveContainer and RemovePodSandbox, which free a container's storage later
    /// as containerd's garbage collector does.
    pub(crate) async fn remove_container_soon(self: &Arc<Self>, id: &str) -> Result<()> {
        self.remove_container_with(id, true, true).await
    }

    /// `soon`: the container's files are deleted in the background after it is gone
    /// ([`crate::runtime::Runtime::remove_dirs_soon`]); `rm` and prune free the space before
    /// they answer, as their callers expect.
    async fn remove_container_with(
        self: &Arc<Self>,
        id: &str,
        force: bool,
        soon: bool,
    ) -> Result<()> {
        if force {
            self.stop_by_user(id).await;
        }
        if force && self.get(id).is_some_and(|c| c.state.status.is_active()) {
            self.stop_with(id, 9, 10).await?;
        }
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        let Some(c) = self.get(id) else { return Ok(()) };
        if c.state.status.is_active() {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running",
                c.name
            )));
        }
        // The record says the container ended; its cgroups decide: nothing of it may outlive
        // its removal, whatever happened to its shim.
        self.kill_by_cgroup(id, false).await;
        self.emit_container(&c, "destroy", &[]);
        self.network_container_removed(id);
        if soon {
            self.runtime.remove_dirs_soon(id)
        } else {
            self.runtime.remove_dirs(id)
        }
        .map_err(|e| internal(format!("removing container {id}: {e}")))?;
        self.store.delete_container(id)?;
        lock(&self.containers).remove(id);
        lock(&self.op_locks).remove(id);
        lock(&self.pending_attach).remove(id);
        self.forget_execs(id);
        let _ = self
            .events
            .send(ContainerEvent::Removed { id: id.to_string() });
        Ok(())
    }

    pub(super) async fn maybe_auto_remove(self: &Arc<Self>, id: &str) {
        let Some(c) = self.get(id) else { return };
        if c.host_config.auto_remove && !c.state.status.is_active() {
            if let Err(e) = self.remove_container_with(id, true, true).await {
                tracing::warn!(container = id, "auto-remove: {}", e.message);
            } else {
                self.remove_anonymous_volumes(&c);
            }
        }
    }
}
