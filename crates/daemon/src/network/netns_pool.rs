//! Network namespaces made ahead of need.
//!
//! Making a container's network namespace (`unshare(CLONE_NEWNET)` on a throwaway thread and
//! its bind mount, and `lo` up) costs ~0.8 ms of a start on the default bridge or a user-defined network.
//! A few are kept ready under `<exec-root>/netns-pool/`; a start pins a ready one at the
//! container's usual path (`<exec-root>/netns/<id>`, a second bind mount of the same
//! namespace) and lets the pool's mount go, so everything after it (the veth, `release`,
//! restore) sees the namespace exactly as if it had been made for the container. The pool
//! refills in the background ([`crate::host::pool`]); what it holds at shutdown is unmounted,
//! and what a killed daemon left is unmounted at the next start, before anything is made.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::host::pool::{Pool, Poolable};
use crate::host::Netns;

/// A ready namespace, pinned at `path` until taken; its mount goes when it is dropped.
struct Pinned {
    path: PathBuf,
    netns: Arc<dyn Netns>,
}

impl Poolable for Pinned {
    fn usable(&mut self) -> bool {
        self.netns.is_mounted(&self.path)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(e) = self.netns.remove(&self.path) {
            tracing::warn!(
                "removing pooled network namespace {}: {e}",
                self.path.display()
            );
        }
    }
}

pub(crate) struct NetnsPool {
    pool: Pool<Pinned>,
    netns: Arc<dyn Netns>,
}

impl NetnsPool {
    /// Clears what an earlier daemon left in `<exec_root>/netns-pool` and keeps up to
    /// `capacity` namespaces ready there (none with 0).
    pub(crate) fn new(exec_root: &Path, netns: Arc<dyn Netns>, capacity: usize) -> NetnsPool {
        let dir = exec_root.join("netns-pool");
        clear(&dir, &*netns);
        let maker = netns.clone();
        let mut n = 0u64;
        let pool = Pool::new("netns-pool", capacity, true, move || {
            n += 1;
            let path = dir.join(format!("{}-{n}", std::process::id()));
            maker.create_with_lo_up(&path)?;
            Ok(Pinned {
                path,
                netns: maker.clone(),
            })
        });
        NetnsPool { pool, netns }
    }

    /// Pins a ready namespace at `dest`. False when none was ready (or pinning it failed):
    /// the caller makes one as before.
    pub(crate) fn take_into(&self, dest: &Path) -> bool {
        let Some(ready) = self.pool.take() else {
            return false;
        };
        match self.netns.pin(&ready.path, dest) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("using a pooled network namespace: {e}");
                false
            }
        }
        // `ready` is dropped here: the pool's own mount of the namespace goes.
    }

    /// Unmounts every ready namespace and makes no more (graceful shutdown).
    pub(crate) fn drain(&self) {
        self.pool.drain();
    }
}

/// Unmounts and removes every entry of `dir` (a killed daemon's pool).
fn clear(dir: &Path, netns: &dyn Netns) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if let Err(err) = netns.remove(&e.path()) {
            tracing::warn!("removing a left-over pooled network namespace: {err}");
        }
    }
}
