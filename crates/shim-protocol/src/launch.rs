use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::types::{LaunchStatus, StartCause, StartError};

/// The argument of `berth-shim` that makes it wait for its config path on stdin.
pub const POOLED_ARG: &str = "--pooled";

/// Spawns `berth-shim --config <config_path>` and reads its status line (blocking: call it
/// from `spawn_blocking`). Returns the container's init pid, or the error the shim reported
/// (Docker-like, e.g. `exec: "nosuch": executable file not found in $PATH`, with its cause).
///
/// The shim forks and its first process exits right after relaying the line, so this also
/// reaps that process; the monitor itself lives on in its own session.
pub fn launch(shim_binary: &Path, config_path: &Path) -> Result<u32, StartError> {
    let child = command(shim_binary)
        .arg("--config")
        .arg(config_path)
        .spawn()
        .map_err(|e| format!("start shim {}: {e}", shim_binary.display()))?;
    await_status(child)
}

/// How every shim is spawned, fresh or pooled: berthd's environment and working directory,
/// stdout piped for the status line, nothing else inherited.
fn command(shim_binary: &Path) -> Command {
    let mut c = Command::new(shim_binary);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

/// Reads the launching shim's status line and reaps it (see [`launch`]).
fn await_status(mut child: Child) -> Result<u32, StartError> {
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

/// A shim spawned ahead of need (`berth-shim --pooled`): exec'd, loaded and waiting for one
/// line on its stdin, the path of a config, after which it does what `--config <path>` does.
/// At EOF on its stdin it exits 0, so a pooled shim never outlives the process holding the
/// other end of that pipe (berthd, even when SIGKILLed). Dropping one closes its stdin, kills
/// and reaps it.
pub struct PooledShim {
    /// `None` once handed over.
    child: Option<Child>,
}

/// A pooled shim that took its config: its status line is still to be read.
pub struct HandedShim(Child);

impl PooledShim {
    /// Spawns `berth-shim --pooled` as [`launch`] spawns a shim, but with stdin a pipe.
    pub fn spawn(shim_binary: &Path) -> io::Result<PooledShim> {
        let child = command(shim_binary)
            .arg(POOLED_ARG)
            .stdin(Stdio::piped())
            .spawn()?;
        Ok(PooledShim { child: Some(child) })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Gives the shim its config path. An error means the shim did not take it (it died, or
    /// the path cannot go on one line): the shim is reaped and the caller launches another.
    pub fn hand_over(mut self, config_path: &Path) -> io::Result<HandedShim> {
        let bytes = config_path.as_os_str().as_bytes();
        if bytes.contains(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "config path holds a newline",
            ));
        }
        let mut child = self.child.take().ok_or(io::ErrorKind::NotFound)?;
        let written = match child.stdin.take() {
            // The pipe closes when `stdin` drops, right after the line.
            Some(mut stdin) => stdin.write_all(&[bytes, b"\n"].concat()),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        };
        match written {
            Ok(()) => Ok(HandedShim(child)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }
}

impl HandedShim {
    /// The container's init pid or the shim's error, as [`launch`] returns them.
    pub fn status(self) -> Result<u32, StartError> {
        await_status(self.0)
    }
}

impl Drop for PooledShim {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An idle pooled shim holds nothing: EOF alone would end it, SIGKILL makes the
            // wait short whatever it is doing.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

    /// Spawns [`fake_pooled_shim`]. A test thread that forks while another has the script
    /// open for writing makes the exec fail with `ETXTBSY` until that child execs: retried.
    fn spawn_fake(dir: &Path) -> PooledShim {
        let script = fake_pooled_shim(dir);
        for _ in 0..100 {
            match PooledShim::spawn(&script) {
                Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                res => return res.expect("spawn the fake pooled shim"),
            }
        }
        panic!("{} stayed busy", script.display());
    }

    /// A stand-in for `berth-shim --pooled`: prints the path it was given as the pid.
    fn fake_pooled_shim(dir: &Path) -> std::path::PathBuf {
        let script = dir.join("fake-shim");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = --pooled ] || exit 3\nread p || exit 0\necho \"{\\\"ok\\\":true,\\\"pid\\\":$p}\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn pooled_shim_takes_its_config_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let shim = spawn_fake(dir.path());
        let handed = shim.hand_over(Path::new("77")).unwrap();
        assert_eq!(handed.status(), Ok(77));
    }

    #[test]
    fn pooled_shim_that_died_is_not_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut shim = spawn_fake(dir.path());
        let pid = shim.pid().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !shim.has_exited() {
            assert!(std::time::Instant::now() < deadline, "not reaped");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(shim.hand_over(Path::new("77")).is_err());
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
    }

    #[test]
    fn dropped_pooled_shim_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let shim = spawn_fake(dir.path());
        let pid = shim.pid().unwrap();
        drop(shim);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
    }

    #[test]
    fn newline_in_config_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shim = spawn_fake(dir.path());
        assert!(shim.hand_over(Path::new("a\nb")).is_err());
    }
}
