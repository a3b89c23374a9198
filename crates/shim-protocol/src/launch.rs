use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::types::{LaunchStatus, StartCause, StartError};

/// Spawns `berth-shim --config <config_path>` and reads its status line (blocking: call it
/// from `spawn_blocking`). Returns the container's init pid, or the error the shim reported
/// (Docker-like, e.g. `exec: "nosuch": executable file not found in $PATH`, with its cause).
///
/// The shim forks and its first process exits right after relaying the line, so this also
/// reaps that process; the monitor itself lives on in its own session.
pub fn launch(shim_binary: &Path, config_path: &Path) -> Result<u32, StartError> {
    let mut child = Command::new(shim_binary)
        .arg("--config")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start shim {}: {e}", shim_binary.display()))?;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(out) => BufReader::new(out).read_line(&mut line),
        None => Ok(0),
    };
    let status = child.wait();
    parse_status_line(&line).map_err(|e| match (read, status) {
        (Err(re), _) => format!("read shim status: {re}").into(),
        (_, Ok(st)) if line.trim().is_empty() => {
            format!("shim exited ({st}) without a status").into()
        }
        _ => e,
    })
}

fn parse_status_line(line: &str) -> Result<u32, StartError> {
    let st: LaunchStatus = serde_json::from_str(line.trim())
        .map_err(|e| format!("bad shim status line {line:?}: {e}"))?;
    match (st.ok, st.pid) {
        (true, Some(pid)) => Ok(pid),
        (true, None) => Err("shim status line without pid".to_string().into()),
        (false, _) => {
            let message = st.error.unwrap_or_else(|| "shim failed".into());
            let cause = st
                .cause
                .unwrap_or_else(|| StartCause::from_message(&message));
            Err(StartError::new(cause, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("{\"ok\":true,\"pid\":77}\n"), Ok(77));
        let old_shim = parse_status_line(
            r#"{"ok":false,"error":"exec: \"x\": executable file not found in $PATH"}"#,
        )
        .unwrap_err();
        assert_eq!(
            old_shim.message,
            "exec: \"x\": executable file not found in $PATH"
        );
        assert_eq!(
            old_shim.cause,
            StartCause::NotFound,
            "classified by its text"
        );
        let new_shim = parse_status_line(
            r#"{"ok":false,"error":"exec: \"/x\": stat /x: bad","cause":"permission_denied"}"#,
        )
        .unwrap_err();
        assert_eq!(
            new_shim.cause,
            StartCause::PermissionDenied,
            "the shim's cause wins"
        );
        assert_eq!(new_shim.cause.exit_code(), 126);
        assert!(parse_status_line("").is_err());
    }

    #[test]
    fn launch_reports_missing_binary() {
        let e = launch(Path::new("/nonexistent/berth-shim"), Path::new("/x.json")).unwrap_err();
        assert!(e.message.contains("/nonexistent/berth-shim"), "{e}");
        assert_eq!(e.cause, StartCause::Other);
    }

    #[test]
    fn launch_relays_status_line() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-shim");
        std::fs::write(&script, "#!/bin/sh\necho '{\"ok\":true,\"pid\":4242}'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(launch(&script, Path::new("/x.json")), Ok(4242));
    }
}
