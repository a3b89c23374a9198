//! `POST /containers/{id}/kill`.

use std::time::Duration;

use berth_api_types::ApiError;

use super::not_running;
use crate::{internal, spec, Daemon, Result};

impl Daemon {
    pub async fn container_kill(&self, key: &str, signal: Option<String>) -> Result<()> {
        let signo = spec::parse_signal(signal.as_deref().unwrap_or("SIGKILL"))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        // dockerd's kill route wraps every failure after the signal parse in
        // "Cannot kill container: <name as given>: …" (the status stays the inner one's).
        self.kill_checked(key, signo).await.map_err(|mut e| {
            e.message = format!("Cannot kill container: {key}: {}", e.message);
            e
        })
    }

    async fn kill_checked(&self, key: &str, signo: i32) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !c.state.status.can_kill() {
            return Err(not_running(&c.id));
        }
        // Only a signal meant to end the container counts as the user stopping it.
        if matches!(signo, 2 | 3 | 9 | 15) && self.stop_by_user(&c.id).await {
            return Ok(());
        }
        // SIGKILL (the default) is dockerd's `Kill`: the answer waits for the container to be
        // gone (up to 10 s), so a client that inspects right after finds it exited. Watched
        // from before the signal goes out.
        let exited = (signo == 9).then(|| self.exited(&c.id));
        // Announced before the signal goes out, so the `die` it may cause always follows it
        // (dockerd holds the container's lock across both; its exit handling waits for it).
        self.emit_container(&c, "kill", &[("signal", signo.to_string())]);
        self.runtime
            .client(&c.id)
            .kill(signo, false)
            .await
            .map_err(|e| internal(format!("cannot kill container {}: {e}", c.id)))?;
        if let Some(exited) = exited {
            let _ = tokio::time::timeout(Duration::from_secs(10), exited).await;
        }
        Ok(())
    }
}
