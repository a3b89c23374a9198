//! Small helpers: exit codes and atomic file writes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use nix::sys::wait::WaitStatus;

/// Docker's exit code: the status, or 128+signal when killed by a signal.
pub fn exit_code(status: &WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(*code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + *sig as i32),
        _ => None,
    }
}

/// Writes `data` to `path` so that readers see either the old or the whole new content:
/// temp file in the same directory, then rename. No fsync: these files are runtime state in
/// the exec root (the exit status and start record the daemon reads back after a crash of its
/// own), which a power loss makes moot anyway, since it ends every container with it.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    File::create(&tmp)?.write_all(data)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    use super::*;

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code(&WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(&WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(&WaitStatus::StillAlive), None);
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
