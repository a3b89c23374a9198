//! Small helpers: exit codes and atomic file writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
    let tmp = tmp_path(path);
    if let Some(dir) = tmp.parent() {
        fs::create_dir_all(dir)?;
    }
    File::create(&tmp)?.write_all(data)?;
    fs::rename(&tmp, path)
}

fn tmp_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    dir.join(tmp_name)
}

/// Room kept for a record written later (the exit status, the start record).
pub const RESERVED: usize = 4096;

/// Allocates the blocks a later [`write_reserved`] of `path` writes into: on a filesystem
/// that fills up while the container runs (a container writing into its rootfs on the same
/// disk as the exec root), the exit status must still get written, or berthd would never
/// learn that the container ended. Fails with `ENOSPC` when there is no room now, which
/// fails the container's start with a clear cause instead of its end.
pub fn reserve(path: &Path) -> io::Result<()> {
    let tmp = tmp_path(path);
    if let Some(dir) = tmp.parent() {
        fs::create_dir_all(dir)?;
    }
    let res = File::create(&tmp).and_then(|mut f| f.write_all(&[b' '; RESERVED]));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// [`write_atomic`] into the blocks [`reserve`] allocated (no truncation, so no block is
/// given back and asked for again); `data` up to [`RESERVED`] bytes needs no new space.
/// Without a reservation it is a plain [`write_atomic`].
pub fn write_reserved(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut f = match OpenOptions::new().write(true).open(&tmp) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return write_atomic(path, data),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(0))?;
    f.write_all(data)?;
    f.set_len(data.len() as u64)?;
    drop(f);
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
    fn reserved_write_uses_the_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        reserve(&p).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("exit.json.tmp"))
                .unwrap()
                .len(),
            RESERVED as u64
        );
        assert!(!p.exists(), "a reservation is not a record");
        write_reserved(&p, b"{\"exit_code\":1}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{\"exit_code\":1}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // without a reservation it still writes
        write_reserved(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
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
