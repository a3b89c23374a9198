//! `SIGHUP`: applying the reloadable part of a changed config file without a restart, as dockerd
//! does, and announcing it with a `daemon reload` event.

use berth_api_types::container::LogConfig;

use crate::{lock, Daemon, Result};

/// Settings a reload may change while containers keep running.
#[derive(Debug, Clone)]
pub(crate) struct Reloadable {
    /// Defaults for containers created from now on (`log-driver`, `log-opts`).
    pub log_config: LogConfig,
}

impl Daemon {
    /// The daemon's stable id (`docker info`'s ID, the actor of daemon events).
    pub fn daemon_id(&self) -> String {
        use sha2::Digest;
        let h = sha2::Sha256::digest(self.cfg.data_root.display().to_string().as_bytes());
        hex::encode(&h[..16])
    }

    /// The log driver and options a new container gets when it names none.
    pub(crate) fn log_defaults(&self) -> LogConfig {
        lock(&self.reloadable).log_config.clone()
    }

    /// Applies reloaded settings; `log_level` is only reported (the binary owns logging).
    /// Invalid settings are refused and change nothing.
    pub fn reload(&self, log_config: LogConfig, log_level: &str) -> Result<()> {
        crate::logdriver::validate(&log_config)?;
        lock(&self.reloadable).log_config = log_config.clone();
        let mut attrs: Vec<(&str, String)> = vec![
            ("log-driver", log_config.kind.clone()),
            (
                "log-opts",
                serde_json::to_string(&log_config.config).unwrap_or_default(),
            ),
            ("log-level", log_level.to_string()),
            (
                "debug",
                (log_level == "debug" || log_level == "trace").to_string(),
            ),
            (
                "insecure-registries",
                format!("[{}]", self.cfg.insecure_registries.join(", ")),
            ),
            (
                "registry-mirrors",
                format!("[{}]", self.cfg.registry_mirrors.join(", ")),
            ),
        ];
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        attrs.push(("name", name));
        self.emit_daemon("reload", &attrs);
        Ok(())
    }
}
