//! Recording what already happened when the metadata database cannot be written.
//!
//! An exit is a fact the kernel decided: refusing to record it because the disk is full
//! (the container that just ended may well be the one that filled it) would leave `ps`
//! saying `Up` forever about a process that is gone. Memory follows at once, so `ps`,
//! `inspect`, `wait` and the restart policy see the exit; the database write is retried
//! in the background until it goes through or the container is removed. A daemon
//! restarted before that finds the exit again from the shim's exit file.

use std::sync::Arc;
use std::time::Duration;

use crate::model::Container;
use crate::{lock, Daemon, Result};

const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Daemon {
    /// Applies `f` to container `id` and saves it; when saving fails, the change is kept
    /// in memory and saved later (see the module comment). When `f` fails (a refused state
    /// transition), nothing changes.
    pub(crate) fn update_observed(
        self: &Arc<Self>,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<()>,
    ) -> Result<Container> {
        let mut c = self
            .get(id)
            .ok_or_else(|| crate::model::no_such_container(id))?;
        f(&mut c)?;
        if let Err(e) = self.save(&c) {
            tracing::warn!(
                container = id,
                "recording its state: {}; kept in memory, retrying",
                e.message
            );
            lock(&self.containers).insert(c.id.clone(), c.clone());
            let this = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RETRY_EVERY).await;
                    // Saved under the op lock, so a newer change is never overwritten.
                    let guard = this.op_lock(&id);
                    let _g = guard.lock().await;
                    let Some(cur) = this.get(&id) else { return };
                    if this.store.put_container(&cur.id, &cur.name, &cur).is_ok() {
                        tracing::info!(container = %id, "state recorded after all");
                        return;
                    }
                }
            });
        }
        Ok(c)
    }
}
