//! Space held back for the metadata database on a full disk.
//!
//! SQLite appends every commit to its write-ahead log, so on a full filesystem even a
//! `DELETE` fails (`database or disk is full`): the user could not remove the container
//! that filled the disk, and an exit the kernel already decided could not be recorded.
//! Like a ship's ballast, `CHUNKS` files of `CHUNK` bytes sit next to the database; when a
//! write fails for lack of space one of them is released and the write tried once more,
//! which gives the database room for the records that free space (removals) and the facts
//! it must not lose (exits), several times over. They come back once the filesystem has
//! ample room again.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Each chunk is enough for many small commits (a container record is a few KiB).
const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 4;
/// How often missing chunks are tried again after they could not be made.
const RETRY: Duration = Duration::from_secs(5);
/// Chunks are made only with this much room left beside them.
const ROOM: u64 = 4 * (CHUNK * CHUNKS) as u64;

pub(crate) struct Reserve {
    chunks: Vec<PathBuf>,
    /// Whether every chunk is there (spares `stat`s per database call).
    complete: AtomicBool,
    last_try: Mutex<Option<Instant>>,
}

impl Reserve {
    /// The reserve next to `db` (`<db>.reserve.N`), made at once when there is room.
    pub(crate) fn new(db: &Path) -> Reserve {
        let chunks = (0..CHUNKS)
            .map(|i| {
                let mut name = db.as_os_str().to_owned();
                name.push(format!(".reserve.{i}"));
                PathBuf::from(name)
            })
            .collect();
        let r = Reserve {
            chunks,
            complete: AtomicBool::new(false),
            last_try: Mutex::new(None),
        };
        r.replenish();
        r
    }

    /// Frees one chunk; true when there was one to free.
    pub(crate) fn release(&self) -> bool {
        self.complete.store(false, Ordering::SeqCst);
        *crate::lock(&self.last_try) = Some(Instant::now());
        let freed = self.chunks.iter().any(|c| fs::remove_file(c).is_ok());
        if freed {
            tracing::warn!("disk full: released reserve space of the metadata database");
        }
        freed
    }

    /// Makes the missing chunks (at most every `RETRY`, and only with ample room, so that
    /// making them is never what fills the disk for others); a chunk that does not fit is
    /// not left half-made.
    pub(crate) fn replenish(&self) {
        if self.complete.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut last = crate::lock(&self.last_try);
            if last.is_some_and(|t| t.elapsed() < RETRY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut all = true;
        for chunk in &self.chunks {
            if fs::metadata(chunk).is_ok_and(|m| m.len() == CHUNK as u64) {
                continue;
            }
            let dir = chunk.parent().unwrap_or_else(|| Path::new("."));
            let room = nix::sys::statvfs::statvfs(dir)
                .map(|st| st.blocks_available() * st.fragment_size())
                .unwrap_or(0);
            if room < ROOM {
                all = false;
                break;
            }
            let mut tmp = chunk.as_os_str().to_owned();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            if let Err(e) = write_zeros(&tmp, CHUNK).and_then(|()| fs::rename(&tmp, chunk)) {
                let _ = fs::remove_file(&tmp);
                tracing::debug!("metadata reserve not made: {e}");
                all = false;
                break;
            }
        }
        self.complete.store(all, Ordering::SeqCst);
    }
}

/// Writes (not only sizes) the file: a sparse file would hold no blocks to give back.
fn write_zeros(path: &Path, size: usize) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(&vec![0u8; size])?;
    f.sync_all()
}

/// Whether an error is SQLite's `SQLITE_FULL` (its unix VFS turns a write's `ENOSPC` into it).
pub(crate) fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_made_released_one_by_one_and_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reserve::new(&dir.path().join("m.db"));
        let present = || {
            (0..CHUNKS)
                .filter(|i| dir.path().join(format!("m.db.reserve.{i}")).exists())
                .count()
        };
        assert_eq!(present(), CHUNKS);
        for left in (0..CHUNKS).rev() {
            assert!(r.release());
            assert_eq!(present(), left);
        }
        assert!(!r.release(), "nothing left to release");
        r.replenish();
        assert_eq!(present(), 0, "not tried again within RETRY");
        *crate::lock(&r.last_try) = None;
        r.replenish();
        assert_eq!(present(), CHUNKS);
    }
}
