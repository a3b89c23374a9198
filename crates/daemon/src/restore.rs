//! Reconciling the container records with what runs after a daemon (re)start: shims to
//! reconnect to, exits that happened while the daemon was down, starts and restarts a crash
//! interrupted.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Container, Status};
use crate::{lock, Daemon};

impl Daemon {
    /// Reconciles the records with what is running after a daemon (re)start.
    pub(crate) async fn restore(
        self: &Arc<Self>,
    ) -> std::result::Result<(), crate::store::StoreError> {
        let records: Vec<Container> = self.store.containers()?;
        let known: std::collections::HashSet<String> =
            records.iter().map(|c| c.id.clone()).collect();
        let rt = self.clone();
        std::thread::spawn(move || rt.runtime.empty_trash());
        // Directories without a record are creates that were interrupted before they committed.
        if let Ok(entries) = std::fs::read_dir(self.runtime.containers_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !known.contains(&name) {
                    tracing::info!(container = %name, "removing a half-created container");
                    let _ = self.runtime.remove_dirs(&name);
                }
            }
        }
        for c in records {
            lock(&self.containers).insert(c.id.clone(), c.clone());
            if !c.state.status.is_active() {
                // A daemon killed in the middle of a start can leave a shim holding a created,
                // never-started container; it would block every later start of this container.
                let client = self.runtime.client(&c.id);
                if client.state().await.is_ok() {
                    tracing::info!(container = %c.id, "removing a start interrupted by a daemon crash");
                    let _ = client.kill(9, true).await;
                    for _ in 0..50 {
                        if client.state().await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                // A crash between mount and exit bookkeeping can leave the rootfs mounted.
                self.runtime.unmount_rootfs(&c.id);
                continue;
            }
            let client = self.runtime.client(&c.id);
            match client.state().await {
                // A policy restart cut by the crash between launch and start: that shim
                // holds a container that never ran; it goes, and the restart starts over.
                Ok(s)
                    if c.state.status == Status::Restarting
                        && s.status == Some(berth_shim_protocol::Status::Created) =>
                {
                    let _ = client.kill(9, true).await;
                    self.resume_policy_restart(&c.id);
                }
                Ok(_) => {
                    tracing::info!(container = %c.id, "reconnected to running container");
                    self.spawn_monitor(c.id.clone());
                }
                Err(_) if c.state.status == Status::Restarting => {
                    self.resume_policy_restart(&c.id);
                }
                Err(_) => {
                    let status = self.runtime.read_exit(&c.id);
                    tracing::info!(container = %c.id, "container exited while the daemon was down");
                    self.handle_exit(&c.id, status).await;
                }
            }
        }
        Ok(())
    }
}
