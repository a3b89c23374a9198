//! The persisted container record and its lifecycle state machine.

use berth_api_types::container::{Config, HostConfig};
use serde::{Deserialize, Serialize};

/// Lifecycle states, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a process (and a shim) exists for the container.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    pub fn can_kill(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    pub fn can_remove_without_force(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    /// RFC 3339 with nanoseconds; Go's zero time when never started.
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl RunState {
    /// The state of a container that was created and never started.
    pub fn created() -> RunState {
        RunState {
            status: Status::Created,
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Container {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    /// The effective config (image defaults merged with the request).
    pub config: Config,
    pub host_config: HostConfig,
    pub image_id: String,
    /// The top layer's chain id; `None` for an image without layers.
    pub top_layer: Option<String>,
    pub state: RunState,
    pub restart_count: i64,
    /// Set once the container's own directories exist; a record without it is a half-done create.
    #[serde(default)]
    pub exec_ids: Vec<String>,
    /// Volumes, binds and tmpfs mounts planned at create.
    #[serde(default)]
    pub mounts: Vec<crate::volumes::MountRecord>,
    /// Set by stop/kill/rm -f: the restart policy does not undo it (Docker's
    /// `HasBeenManuallyStopped`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// `State.Health` of a container with a healthcheck.
    #[serde(default)]
    pub health: Option<berth_api_types::container::Health>,
    /// `NAME=value` build secrets (`RUN --mount=type=secret,env=`) added to the process's
    /// environment at start: kept in memory only, never written with the record.
    #[serde(skip)]
    pub secret_env: Vec<String>,
    /// A CRI pod's pinned namespaces the container joins (set by the pods service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_join: Option<PodJoin>,
}

/// Namespaces of a CRI pod sandbox, pinned by bind mounts, that a pod's container joins
/// instead of making its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PodJoin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<std::path::PathBuf>,
    /// The pod's shared PID namespace (CRI `NamespaceOption.pid = POD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<std::path::PathBuf>,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses an RFC 3339 time into unix seconds (0 for Go's zero time or garbage).
pub fn unix_seconds(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .unwrap_or(0)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert!(Status::Created.can_start() && Status::Exited.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Running.can_remove_without_force());
        assert!(Status::Paused.can_kill() && !Status::Exited.can_kill());
        assert_eq!(
            serde_json::to_string(&Status::Exited).unwrap(),
            "\"exited\""
        );
    }
}
