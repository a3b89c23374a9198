//! The persisted container record and its lifecycle state machine.

use berth_api_types::container::{Config, HostConfig};
use berth_api_types::ApiError;
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

    /// The lifecycle's legal moves (moby's `container.State` setters). Whether a verb may ask
    /// for a move is the verb's own check (`can_start`, ...): `paused → running` is an
    /// unpause, never a start. A record is made `created`; nothing moves back there.
    pub fn can_transition_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            // start (user, policy, daemon start) and unpause
            (Created | Exited | Restarting | Paused, Running)
                | (Running, Paused)
                // the process ended, or a policy restart was cancelled or failed to start
                | (Running | Paused | Restarting, Exited)
                // a restart policy picks up an exit
                | (Exited, Restarting)
                | (Created | Exited | Dead, Removing)
                | (Removing, Dead)
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// Changed only through [`Container::transition`].
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
    pub mounts: Vec<crate::model::MountRecord>,
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
    /// The pod's UTS namespace (its hostname), shared by its containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<std::path::PathBuf>,
    /// The pod's shared PID namespace (CRI `NamespaceOption.pid = POD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<std::path::PathBuf>,
    /// The container's `SupplementalGroupsPolicy`: which of its user's group memberships in
    /// the image it gets.
    #[serde(default, skip_serializing_if = "is_docker_groups")]
    pub image_groups: crate::spec::ImageGroups,
}

fn is_docker_groups(g: &crate::spec::ImageGroups) -> bool {
    *g == crate::spec::ImageGroups::Docker
}

impl Container {
    /// Moves the container to `to`: every change of `state.status` goes through here, so an
    /// illegal move is refused (with Docker's error for it) and leaves the record as it was.
    pub fn transition(&mut self, to: Status) -> Result<(), ApiError> {
        self.may_transition(to)?;
        self.state.status = to;
        Ok(())
    }

    /// Whether `transition(to)` would be allowed, with Docker's refusal when not: for verbs
    /// that check before doing the work the move records.
    pub fn may_transition(&self, to: Status) -> Result<(), ApiError> {
        let from = self.state.status;
        if from.can_transition_to(to) {
            Ok(())
        } else {
            Err(refusal(&self.id, from, to))
        }
    }
}

/// Docker's answer to a move the lifecycle does not allow (moby `daemon/start.go`,
/// `pause.go`, `kill.go`, `container/state.go`).
fn refusal(id: &str, from: Status, to: Status) -> ApiError {
    use Status::*;
    match (from, to) {
        (Running, Running) => ApiError::not_modified(),
        (Removing | Dead, Running) => ApiError::conflict(format!(
            "container {id} is marked for removal and cannot be started"
        )),
        (Paused, Paused) => ApiError::conflict(format!("Container {id} is already paused")),
        (Restarting, Paused) => ApiError::conflict(format!(
            "Container {id} is restarting, wait until the container is running"
        )),
        (_, Paused | Exited) => ApiError::conflict(format!("Container {id} is not running")),
        (Removing, Removing) => {
            ApiError::conflict(format!("removal of container {id} is already in progress"))
        }
        (Running | Paused | Restarting, Removing) => ApiError::conflict(format!(
            "cannot remove container {id}: container is {}",
            from.as_str()
        )),
        _ => ApiError::conflict(format!(
            "container {id} cannot go from {} to {}",
            from.as_str(),
            to.as_str()
        )),
    }
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

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountRecord {
    /// `volume`, `bind` or `tmpfs`.
    pub kind: String,
    /// The volume's name (volumes only).
    pub name: String,
    /// Host path: the bind source or the volume's `_data`.
    pub source: String,
    pub destination: String,
    /// The mode string as given (`ro`, `z`, `nocopy`...), shown by inspect.
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// Populate an empty volume from the image's content at `destination` on start.
    pub copy_data: bool,
    /// A volume created for this container alone (`-v /path`, image `VOLUME`).
    pub anonymous: bool,
    /// A `-v` bind whose missing source is created (`--mount` refuses instead).
    pub create_source: bool,
    /// tmpfs mount options (`size=`, `mode=`).
    pub tmpfs_options: Vec<String>,
    /// A read-only bind that stays read-only at its top only (`BindOptions.ReadOnlyNonRecursive`,
    /// and every read-only bind of an API client older than 1.44); otherwise read-only binds are
    /// recursively read-only where the kernel can.
    #[serde(default)]
    pub ro_non_recursive: bool,
    /// Recursively read-only or an error (`BindOptions.ReadOnlyForceRecursive`).
    #[serde(default)]
    pub ro_force_recursive: bool,
}

/// Docker's 404 for a container name or id that matches none.
pub(crate) fn no_such_container(id: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {id}"))
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

    const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Removing,
        Status::Exited,
        Status::Dead,
    ];

    fn in_state(status: Status) -> Container {
        Container {
            id: "c1".into(),
            state: RunState {
                status,
                ..RunState::created()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_transition_table() {
        use Status::*;
        let legal = [
            (Created, Running),
            (Exited, Running),
            (Restarting, Running),
            (Paused, Running),
            (Running, Paused),
            (Running, Exited),
            (Paused, Exited),
            (Restarting, Exited),
            (Exited, Restarting),
            (Created, Removing),
            (Exited, Removing),
            (Dead, Removing),
            (Removing, Dead),
        ];
        for from in ALL {
            for to in ALL {
                let want = legal.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), want, "{from:?} -> {to:?}");
                let mut c = in_state(from);
                assert_eq!(c.transition(to).is_ok(), want, "{from:?} -> {to:?}");
                // A refused move leaves the record as it was.
                assert_eq!(c.state.status, if want { to } else { from });
            }
        }
        // Nothing stays put through a transition, and nothing goes back to `created`.
        for s in ALL {
            assert!(!s.can_transition_to(s), "{s:?} -> itself");
            assert!(!s.can_transition_to(Created), "{s:?} -> created");
        }
    }

    #[test]
    fn refusals_answer_as_docker() {
        use berth_api_types::ErrorKind;
        let refused = |from, to| in_state(from).transition(to).unwrap_err();
        assert_eq!(
            refused(Status::Running, Status::Running).kind,
            ErrorKind::NotModified
        );
        let e = refused(Status::Dead, Status::Running);
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(
            e.message,
            "container c1 is marked for removal and cannot be started"
        );
        assert_eq!(
            refused(Status::Paused, Status::Paused).message,
            "Container c1 is already paused"
        );
        for from in [Status::Created, Status::Exited] {
            let e = refused(from, Status::Paused);
            assert_eq!(
                (e.kind, e.message.as_str()),
                (ErrorKind::Conflict, "Container c1 is not running")
            );
            assert_eq!(
                refused(from, Status::Exited).message,
                "Container c1 is not running"
            );
        }
        assert_eq!(
            refused(Status::Removing, Status::Removing).message,
            "removal of container c1 is already in progress"
        );
        assert_eq!(
            refused(Status::Running, Status::Restarting).message,
            "container c1 cannot go from running to restarting"
        );
    }
}
