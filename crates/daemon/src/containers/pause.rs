//! `POST /containers/{id}/pause` and `/unpause`.

use berth_api_types::ApiError;

use super::{no_such_container, not_running};
use crate::model::Status;
use crate::{internal, Daemon, Result};

impl Daemon {
    /// `pause` (freeze) or `unpause` (thaw); the state is committed before answering.
    pub async fn container_pause(&self, key: &str, pause: bool) -> Result<()> {
        let c = self.resolve_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let c = self.get(&c.id).ok_or_else(|| no_such_container(key))?;
        match (pause, c.state.status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            // Already paused, restarting, not running: the lifecycle table's refusals.
            (true, _) => c.may_transition(Status::Paused)?,
            (false, Status::Running) => {
                return Err(ApiError::conflict(format!(
                    "Container {} is not paused",
                    c.id
                )))
            }
            _ => return Err(not_running(&c.id)),
        }
        let client = self.runtime.client(&c.id);
        let res = if pause {
            client.pause().await
        } else {
            client.resume().await
        };
        res.map_err(|e| {
            internal(format!(
                "cannot {} container {}: {e}",
                if pause { "pause" } else { "unpause" },
                c.id
            ))
        })?;
        self.try_update_state(&c.id, |c| {
            c.transition(if pause {
                Status::Paused
            } else {
                Status::Running
            })
        })?;
        self.emit_container(&c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }
}
