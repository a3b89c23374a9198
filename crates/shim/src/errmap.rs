//! Turns libcontainer's error chains into the messages Docker users know.

use berth_shim_protocol::{StartCause, StartError};

/// `impl From<E> for StartError` for the shim's own errors: a failure that is not about the
/// executable (cause `Other`), with the error's message.
macro_rules! into_start_error {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for berth_shim_protocol::StartError {
            fn from(e: $t) -> Self {
                berth_shim_protocol::StartError::from(e.to_string())
            }
        })*
    };
}

into_start_error!(
    crate::seccomp::SeccompError,
    crate::setup::SetupError,
    RuntimeError,
);

/// A libcontainer failure, shown with its whole chain of causes.
#[derive(Debug, thiserror::Error)]
#[error("{}", error_chain(.0))]
pub struct RuntimeError(#[from] pub libcontainer::error::LibcontainerError);

/// Joins an error and its sources into one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        let s = e.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        src = e.source();
    }
    msg
}

/// Maps a libcontainer create/exec failure to a Docker-like message. The container's init
/// validates the executable after pivot_root and reports, through its channel, text like
/// `executable 'x' not found in $PATH` or `executable 'x' at path '"/x"' does not have
/// correct permissions`; those become `exec: "x": executable file not found in $PATH` and
/// `exec: "x": permission denied`. Anything else is returned unchanged.
pub fn docker_message(chain: &str) -> String {
    docker_error(chain).message
}

/// [`docker_message`] with the failure's cause, which the status line and exec error frames
/// carry to the daemon (it decides the exit code: 127, 126 or 128).
pub fn docker_error(chain: &str) -> StartError {
    if let Some(name) = between(chain, "executable '", "' not found in $PATH") {
        return StartError::new(
            StartCause::NotFound,
            format!("exec: \"{name}\": executable file not found in $PATH"),
        );
    }
    if let Some(name) = between(chain, "executable '", "' at path") {
        if chain.contains("does not have correct permissions") {
            return StartError::new(
                StartCause::PermissionDenied,
                format!("exec: \"{name}\": permission denied"),
            );
        }
    }
    if let Some(name) = between(chain, "failed to check permissions for executable '", "'") {
        return StartError::new(
            StartCause::NotFound,
            format!("exec: \"{name}\": stat {name}: no such file or directory"),
        );
    }
    if chain.contains("PATH environment variable is not set") {
        return StartError::new(
            StartCause::Other,
            "exec: PATH environment variable is not set",
        );
    }
    // Anything else gets the cause dockerd would give its text (`daemon/start.go`), so the
    // exit code stays what dockerd reports for the same failure.
    StartError::new(StartCause::from_message(chain), chain)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_not_found() {
        let raw = "failed to create container: failed to run container process: \
                   error in executing process : invalid executable: executable 'nosuchcmd' \
                   not found in $PATH";
        assert_eq!(
            docker_message(raw),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
    }

    #[test]
    fn maps_permission_denied() {
        let raw = "invalid executable: executable '/etc/passwd' at path '\"/etc/passwd\"' does \
                   not have correct permissions";
        assert_eq!(
            docker_message(raw),
            "exec: \"/etc/passwd\": permission denied"
        );
    }

    #[test]
    fn other_errors_pass_through() {
        assert_eq!(docker_message("cgroup busy"), "cgroup busy");
    }

    #[test]
    fn chain_joins_sources() {
        let e = std::io::Error::other("inner");
        assert_eq!(error_chain(&e), "inner");
    }

    #[test]
    fn errors_carry_their_cause() {
        let not_found = docker_error("invalid executable: executable 'nope' not found in $PATH");
        assert_eq!(not_found.cause, StartCause::NotFound);
        let denied =
            docker_error("executable 'x' at path '\"/x\"' does not have correct permissions");
        assert_eq!(denied.cause, StartCause::PermissionDenied);
        assert_eq!(denied.message, "exec: \"x\": permission denied");
        let other = docker_error("failed to prepare rootfs: operation not permitted");
        assert_eq!(other.cause, StartCause::Other);
        let as_dockerd = docker_error("failed to prepare rootfs: no such file or directory");
        assert_eq!(
            as_dockerd.cause,
            StartCause::NotFound,
            "dockerd's rule on the text"
        );
    }
}
