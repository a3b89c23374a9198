//! Container directories made ahead of need. A new container's `fs/{upper,work,merged}` costs
//! five mkdirs on the data disk (~0.7 ms on ext4); a few skeletons wait in
//! `<data-root>/containers-pool/` instead, on the same file system, and a create takes one by
//! a single rename to `<data-root>/containers/<id>`. A background thread refills them
//! ([`crate::host::pool`]). The pool directory is removed whole when the daemon opens (what a
//! crash left) and when it shuts down.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::host::pool::{Pool, Poolable};

/// The sub-directories of a container's directory made at create.
pub(crate) const SKELETON: [&str; 3] = ["fs/upper", "fs/work", "fs/merged"];

/// Makes `SKELETON` under `dir` (and `dir` itself).
pub(crate) fn make_skeleton(dir: &Path) -> io::Result<()> {
    for d in SKELETON {
        std::fs::create_dir_all(dir.join(d))?;
    }
    Ok(())
}

/// One skeleton waiting in the pool; removed if dropped before it was taken.
pub(crate) struct PreparedDir {
    path: Option<PathBuf>,
}

impl PreparedDir {
    /// Moves the skeleton to `dest` (which must not exist, or be an empty directory).
    pub(crate) fn move_to(mut self, dest: &Path) -> io::Result<()> {
        let Some(path) = self.path.as_ref() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        std::fs::rename(path, dest)?;
        self.path = None;
        Ok(())
    }
}

impl Poolable for PreparedDir {
    fn usable(&mut self) -> bool {
        self.path.as_ref().is_some_and(|p| p.is_dir())
    }
}

impl Drop for PreparedDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// The pool of skeletons under `<data-root>/containers-pool`.
pub(crate) struct PreparedDirs {
    dir: PathBuf,
    pool: Pool<PreparedDir>,
}

impl PreparedDirs {
    /// Removes what an earlier daemon left in `<data_root>/containers-pool`, then keeps up to
    /// `size` skeletons ready there (0: none).
    pub(crate) fn new(data_root: &Path, size: usize) -> PreparedDirs {
        let dir = data_root.join("containers-pool");
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.clone();
        let next = AtomicU64::new(0);
        let pool = Pool::new("dir-pool", size, true, move || {
            std::fs::create_dir_all(&d)?;
            // Named by pid too: a second daemon on the same data root (tests) never shares one.
            let n = next.fetch_add(1, Ordering::Relaxed);
            let path = d.join(format!("{}-{n}", std::process::id()));
            // A half-made skeleton is removed by the drop of the `PreparedDir`.
            let prepared = PreparedDir {
                path: Some(path.clone()),
            };
            make_skeleton(&path)?;
            Ok(prepared)
        });
        PreparedDirs { dir, pool }
    }

    /// Moves a ready skeleton to `dest`; false when none was ready or the move failed (the
    /// caller makes the directories itself).
    pub(crate) fn take_to(&self, dest: &Path) -> bool {
        self.pool.take().is_some_and(|p| p.move_to(dest).is_ok())
    }

    /// Removes every skeleton and the pool directory (graceful shutdown).
    pub(crate) fn drain(&self) {
        self.pool.drain();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::pool::until;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn skeletons_are_taken_by_rename_and_refilled() {
        let root = tempfile::tempdir().unwrap();
        let pool_dir = root.path().join("containers-pool");
        let prepared = PreparedDirs::new(root.path(), 2);
        until("two skeletons", || entries(&pool_dir).len() == 2);
        std::fs::create_dir_all(root.path().join("containers")).unwrap();
        let dest = root.path().join("containers/abc");
        assert!(prepared.take_to(&dest));
        for d in SKELETON {
            assert!(dest.join(d).is_dir(), "{d}");
        }
        until("refilled", || entries(&pool_dir).len() == 2);
        // A destination in use is refused: the caller makes its own directories.
        std::fs::write(dest.join("fs/upper/file"), "x").unwrap();
        assert!(!prepared.take_to(&dest.join("fs")));
        assert!(dest.join("fs/upper/file").exists(), "nothing replaced");
        prepared.drain();
        assert!(!pool_dir.exists(), "drained");
        assert!(!prepared.take_to(&root.path().join("containers/def")));
    }

    #[test]
    fn leftovers_of_an_earlier_daemon_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let pool_dir = root.path().join("containers-pool");
        std::fs::create_dir_all(pool_dir.join("old/fs/upper")).unwrap();
        std::fs::write(pool_dir.join("old/fs/upper/f"), "x").unwrap();
        let prepared = PreparedDirs::new(root.path(), 0);
        assert!(!pool_dir.exists());
        assert!(!prepared.take_to(&root.path().join("x")), "size 0");
    }
}
