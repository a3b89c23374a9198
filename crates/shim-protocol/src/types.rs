use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Everything the shim needs to run one container; written by berthd as `shim.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub socket: PathBuf,
    pub state_file: PathBuf,
    pub exit_file: PathBuf,
    /// json-file log path; `None` (or an empty string) disables logging (`--log-driver none`).
    #[serde(default, deserialize_with = "empty_path_is_none")]
    pub log_path: Option<PathBuf>,
    /// Rotate when the current file reaches this many bytes; 0 = unlimited.
    #[serde(default)]
    pub log_max_size: u64,
    /// Number of log files kept, the live one included.
    #[serde(default = "default_max_file")]
    pub log_max_file: u32,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    /// Initial `[height, width]` of the container's tty.
    #[serde(default)]
    pub console_size: Option<[u16; 2]>,
    /// Remount the container's cgroup filesystem read-only before it starts (not for
    /// privileged containers): see the shim's `cgroupfs` module.
    #[serde(default)]
    pub readonly_cgroups: bool,
    /// The spec has no cgroup mount: the shim mounts the container's cgroup v1 hierarchies
    /// itself before it starts (a container joining another PID namespace on a cgroup v1
    /// host, where the runtime would look its cgroups up under the wrong PID; see the shim's
    /// `cgroup_v1_mounts`).
    #[serde(default)]
    pub mount_cgroups_v1: bool,
    /// The container's cgroup path (`/<parent>/<id>`) in a cgroup v1 `name=systemd`
    /// hierarchy, when the host has one: the runtime does not manage that hierarchy, so the
    /// shim puts the container there itself (as runc does), instead of leaving it in the root.
    #[serde(default)]
    pub systemd_cgroup: Option<PathBuf>,
}

fn default_max_file() -> u32 {
    1
}

fn empty_path_is_none<'de, D>(d: D) -> Result<Option<PathBuf>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let p: Option<PathBuf> = Option::deserialize(d)?;
    Ok(p.filter(|p| !p.as_os_str().is_empty()))
}

impl ShimConfig {
    /// `shim.pid`, next to the control socket.
    pub fn pid_file(&self) -> PathBuf {
        self.socket_dir().join("shim.pid")
    }

    /// The directory holding the control socket (`<exec-root>/containers/<id>`).
    pub fn socket_dir(&self) -> &Path {
        self.socket.parent().unwrap_or_else(|| Path::new("/"))
    }
}

/// Lifecycle state of the container as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

/// How a container (or exec) process ended; also the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit status, or 128+signal when the process was killed by a signal.
    pub exit_code: i32,
    /// RFC 3339 UTC with nanoseconds, e.g. `2026-01-01T00:00:00.000000000Z`.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// Log messages the shim could not write (a full disk): dropped, as Docker's
    /// non-blocking log mode drops them, rather than blocking or killing the container.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Content of `state.json`, written once the user's command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub pid: u32,
    pub started_at: String,
}

/// Payload of the acknowledgement frame (kind 5) of an `exec` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    /// Host pid of the exec process; absent in the acknowledgement of `attach`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// One request per connection, sent as a single JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    State,
    Start,
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    Resize {
        #[serde(default)]
        exec_id: Option<String>,
        height: u16,
        width: u16,
    },
    Pids,
    Pause,
    Resume,
    Wait,
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    Exec {
        exec_id: String,
        /// An OCI runtime-spec `Process` object.
        process: serde_json::Value,
        #[serde(default)]
        stdin: bool,
    },
}

impl Request {
    /// Whether the connection switches to frames after this request.
    pub fn is_streaming(&self) -> bool {
        matches!(self, Request::Attach { .. } | Request::Exec { .. })
    }
}

/// Answer to a plain request: `{"ok":true, ...fields}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Vec<u32>>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    pub fn err(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// The single status line the shim prints on its stdout at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchStatus {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the process could not be created (absent from shims older than the field: the
    /// daemon then classifies `error` by its text, as dockerd does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<StartCause>,
}

/// Why a container's or an exec's process could not be started, as the runtime found it. It
/// decides Docker's exit code: 127 for a command that is not there, 126 for one that cannot be
/// executed, 128 for anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCause {
    NotFound,
    PermissionDenied,
    #[default]
    Other,
}

impl StartCause {
    /// Docker's exit code for a process that could not be started for this cause.
    pub fn exit_code(self) -> i32 {
        match self {
            StartCause::NotFound => 127,
            StartCause::PermissionDenied => 126,
            StartCause::Other => 128,
        }
    }

    /// The cause of an error known only by its text: dockerd's own rule for the exit code of a
    /// failed start (`daemon/start.go`), for errors that come without a cause (an older shim,
    /// a failure before the runtime ran).
    pub fn from_message(msg: &str) -> StartCause {
        let m = msg.to_lowercase();
        if m.contains("executable file not found") || m.contains("no such file or directory") {
            StartCause::NotFound
        } else if m.contains("permission denied") || m.contains("is a directory") {
            StartCause::PermissionDenied
        } else {
            StartCause::Other
        }
    }
}

/// A process that could not be started: the message for the user (Docker's wording, e.g.
/// `exec: "x": executable file not found in $PATH`) and its cause. The payload of an exec's
/// error frame (JSON; older shims sent the bare message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub message: String,
    #[serde(default)]
    pub cause: StartCause,
}

impl StartError {
    pub fn new(cause: StartCause, message: impl Into<String>) -> StartError {
        StartError {
            message: message.into(),
            cause,
        }
    }

    /// An error frame's payload: a JSON `StartError`, or an older shim's bare message
    /// (classified by its text).
    pub fn from_payload(payload: &[u8]) -> StartError {
        serde_json::from_slice(payload).unwrap_or_else(|_| {
            let message = String::from_utf8_lossy(payload).into_owned();
            StartError::new(StartCause::from_message(&message), message)
        })
    }
}

/// Failures that say nothing about the process's command (a pipe, the config, the shim itself).
impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError::new(StartCause::Other, message)
    }
}

impl From<&str> for StartError {
    fn from(message: &str) -> StartError {
        StartError::new(StartCause::Other, message)
    }
}

/// Formats a time as RFC 3339 UTC with exactly nine fractional digits.
pub fn format_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Day 1-31 and month 1-12, by the algorithm.
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn request_serde_uses_op_tag() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":15,"all":false}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"op":"resize","exec_id":null,"height":24,"width":80}"#)
                .unwrap();
        assert_eq!(
            r,
            Request::Resize {
                exec_id: None,
                height: 24,
                width: 80
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::State).unwrap(),
            r#"{"op":"state"}"#
        );
        let r: Request = serde_json::from_str(
            r#"{"op":"exec","exec_id":"e1","process":{"args":["echo"]},"stdin":true}"#,
        )
        .unwrap();
        assert!(r.is_streaming());
        let r: Request =
            serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":true}"#)
                .unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: true
            }
        );
    }

    #[test]
    fn response_shapes() {
        assert_eq!(
            serde_json::to_string(&Response::ok()).unwrap(),
            r#"{"ok":true}"#
        );
        assert_eq!(
            serde_json::to_string(&Response::err("boom")).unwrap(),
            r#"{"ok":false,"error":"boom"}"#
        );
        let r: Response = serde_json::from_str(
            r#"{"ok":true,"status":"running","pid":12,"started_at":"x","exit":null}"#,
        )
        .unwrap();
        assert_eq!(r.status, Some(Status::Running));
        assert_eq!(r.exit, None);
    }

    #[test]
    fn config_defaults_and_empty_log_path() {
        let c: ShimConfig = serde_json::from_str(
            r#"{"id":"a","bundle":"/b","runtime_root":"/r","socket":"/run/x/shim.sock",
                "state_file":"/s","exit_file":"/e","log_path":""}"#,
        )
        .unwrap();
        assert_eq!(c.log_path, None);
        assert_eq!(c.log_max_file, 1);
        assert_eq!(c.console_size, None);
        assert_eq!(c.pid_file(), PathBuf::from("/run/x/shim.pid"));
        let c: ShimConfig = serde_json::from_str(
            r#"{"id":"a","bundle":"/b","runtime_root":"/r","socket":"/x/shim.sock",
                "state_file":"/s","exit_file":"/e","log_path":"/l.log","tty":true,
                "console_size":[24,80]}"#,
        )
        .unwrap();
        assert_eq!(c.log_path, Some(PathBuf::from("/l.log")));
        assert_eq!(c.console_size, Some([24, 80]));
    }

    #[test]
    fn exit_status_roundtrip() {
        let e = ExitStatus {
            exit_code: 137,
            finished_at: "2026-01-01T00:00:00.000000000Z".into(),
            oom_killed: true,
            log_dropped: 0,
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(
            s,
            r#"{"exit_code":137,"finished_at":"2026-01-01T00:00:00.000000000Z","oom_killed":true}"#
        );
        assert_eq!(serde_json::from_str::<ExitStatus>(&s).unwrap(), e);
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            format_timestamp(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let t = UNIX_EPOCH + Duration::new(1_767_225_600, 123_456_789);
        assert_eq!(format_timestamp(t), "2026-01-01T00:00:00.123456789Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 86_399, 5);
        assert_eq!(format_timestamp(t), "2000-02-29T23:59:59.000000005Z");
    }
}
