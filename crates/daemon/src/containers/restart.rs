//! `POST /containers/{id}/restart` (the restart policies are `crate::restart`).

use std::sync::Arc;

use berth_api_types::ErrorKind;

use crate::{Daemon, Result};

impl Daemon {
    pub async fn container_restart(
        self: &Arc<Self>,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        match self.container_stop(key, signal, timeout).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        match self.container_start(key).await {
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if let Ok(c) = self.resolve_container(key) {
            self.emit_container(&c, "restart", &[]);
        }
        Ok(())
    }
}
