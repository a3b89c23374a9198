//! `POST /containers/{id}/stop` and waiting for a container to exit.

use std::time::Duration;

use berth_api_types::ApiError;

use crate::model::Status;
use crate::{spec, ContainerEvent, Daemon, Result};

impl Daemon {
    pub async fn container_stop(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.resolve_container(key)?;
        if self.stop_by_user(&c.id).await {
            self.emit_container_id(&c.id, "stop", &[]);
            return Ok(());
        }
        if !c.state.status.can_kill() {
            return Err(ApiError::not_modified());
        }
        let sig = signal
            .or_else(|| c.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".to_string());
        let signo = spec::parse_signal(&sig).map_err(|e| ApiError::invalid(e.to_string()))?;
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        self.stop_with(&c.id, signo, timeout).await?;
        self.emit_container_id(&c.id, "stop", &[]);
        Ok(())
    }

    /// Sends `signo`, waits up to `timeout` seconds (negative: forever), then SIGKILLs. Each
    /// signal is a `kill` event (with `signal=`) before the `die`, as dockerd's stop, `rm -f`
    /// and restart emit them.
    pub(crate) async fn stop_with(&self, id: &str, signo: i32, timeout: i64) -> Result<()> {
        let client = self.runtime.client(id);
        if self
            .get(id)
            .is_some_and(|c| c.state.status == Status::Paused)
        {
            let _ = client.resume().await;
        }
        self.emit_container_id(id, "kill", &[("signal", signo.to_string())]);
        if let Err(e) = client.kill(signo, false).await {
            tracing::debug!(container = id, "stop signal: {e}");
        }
        let done = if timeout < 0 {
            self.exited(id).await;
            true
        } else {
            let secs = u64::try_from(timeout).unwrap_or(0);
            tokio::time::timeout(Duration::from_secs(secs), self.exited(id))
                .await
                .is_ok()
        };
        if !done {
            self.emit_container_id(id, "kill", &[("signal", "9".to_string())]);
            let _ = client.kill(9, true).await;
            let _ = tokio::time::timeout(Duration::from_secs(30), self.exited(id)).await;
        }
        Ok(())
    }

    /// Resolves once the container is not running (or is gone).
    pub(super) fn exited(&self, id: &str) -> impl std::future::Future<Output = ()> + 'static {
        // Subscribe before looking at the state: the exit is recorded before it is announced,
        // so either the state already says so or the event is still to come.
        let mut events = self.events.subscribe();
        let running = self.get(id).is_some_and(|c| c.state.status.is_active());
        let id = id.to_string();
        async move {
            if !running {
                return;
            }
            loop {
                match events.recv().await {
                    Ok(ContainerEvent::Exited { id: x, .. })
                    | Ok(ContainerEvent::Removed { id: x })
                        if x == id =>
                    {
                        return
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                }
            }
        }
    }
}
