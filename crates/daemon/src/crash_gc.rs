//! Collecting what a daemon crash left behind: the step containers (`berth_build_*`) and
//! work directories (`builder/tmp/*`) of builds that no longer run, and the layers and blobs
//! of the store that nothing references (a build or pull cut between writing a layer and
//! recording its image).
//!
//! It runs at daemon start, before the API serves (nothing can race it then), and with
//! `builder prune` and `system prune`. There, builds in progress hold leases on their step
//! containers and work directories, and the store is swept only when no image writer (pull,
//! build, commit) is in flight and only of items older than the daemon's start: whatever
//! is younger was written by this daemon, which records what it writes before it answers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use berth_image::Digest;

use crate::{internal, lock, Daemon, Result};

/// What running builds and image writers hold.
pub(crate) struct Leases {
    started: SystemTime,
    writers: Arc<AtomicUsize>,
    build_containers: Mutex<HashSet<String>>,
    work_dirs: Mutex<HashSet<PathBuf>>,
}

impl Default for Leases {
    fn default() -> Self {
        Leases {
            started: SystemTime::now(),
            writers: Default::default(),
            build_containers: Default::default(),
            work_dirs: Default::default(),
        }
    }
}

/// Held by a pull, build or commit while it writes layers and blobs not yet recorded.
pub(crate) struct WriterLease(Arc<AtomicUsize>);

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Held by a build for its work directory (released, with the directory, when it ends).
pub(crate) struct WorkDirLease {
    daemon: Arc<Daemon>,
    dir: PathBuf,
}

impl Drop for WorkDirLease {
    fn drop(&mut self) {
        lock(&self.daemon.leases.work_dirs).remove(&self.dir);
    }
}

/// What a collection removed.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub containers: Vec<String>,
    pub work_dirs: usize,
    pub layers: Vec<String>,
    pub blobs: usize,
    pub space: u64,
}

impl Daemon {
    pub(crate) fn image_writer_lease(&self) -> WriterLease {
        self.leases.writers.fetch_add(1, Ordering::SeqCst);
        WriterLease(self.leases.writers.clone())
    }

    pub(crate) fn lease_work_dir(self: &Arc<Self>, dir: &Path) -> WorkDirLease {
        lock(&self.leases.work_dirs).insert(dir.to_path_buf());
        WorkDirLease {
            daemon: self.clone(),
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn lease_build_container(&self, id: &str) {
        lock(&self.leases.build_containers).insert(id.to_string());
    }

    pub(crate) fn release_build_container(&self, id: &str) {
        lock(&self.leases.build_containers).remove(id);
    }

    /// Collects the leftovers (see the module comment). `at_start`: nothing else runs yet.
    pub(crate) async fn collect_leftovers(self: &Arc<Self>, at_start: bool) -> Result<Collected> {
        let mut out = Collected::default();
        let leased = lock(&self.leases.build_containers).clone();
        let orphans: Vec<(String, String)> = lock(&self.containers)
            .values()
            .filter(|c| c.name.starts_with("berth_build_") && !leased.contains(&c.id))
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        for (id, name) in orphans {
            match self.remove_container(&id, true).await {
                Ok(()) => out.containers.push(id),
                Err(e) => tracing::warn!("collecting build container {name}: {}", e.message),
            }
        }
        let tmp = self.builder_dir().join("tmp");
        let leased_dirs = lock(&self.leases.work_dirs).clone();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let p = e.path();
            if leased_dirs.contains(&p) {
                continue;
            }
            let p2 = p.clone();
            if tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&p2))
                .await
                .is_ok_and(|r| r.is_ok())
            {
                out.work_dirs += 1;
            }
        }
        // The store: under the image lock (loads and imports hold it throughout), with no
        // pull, build or commit in flight.
        let _g = self.image_lock.lock().await;
        if !at_start && self.leases.writers.load(Ordering::SeqCst) > 0 {
            tracing::debug!("store sweep skipped: image writers in flight");
        } else {
            let older_than = (!at_start).then_some(self.leases.started);
            let this = self.clone();
            let (layers, blobs, space) =
                tokio::task::spawn_blocking(move || this.sweep_store(older_than))
                    .await
                    .map_err(internal)??;
            out.layers = layers;
            out.blobs = blobs;
            out.space = space;
        }
        if !out.containers.is_empty()
            || out.work_dirs > 0
            || !out.layers.is_empty()
            || out.blobs > 0
        {
            tracing::info!(
                containers = out.containers.len(),
                work_dirs = out.work_dirs,
                layers = out.layers.len(),
                blobs = out.blobs,
                "collected leftovers of interrupted work"
            );
        }
        Ok(out)
    }

    /// Mark (every layer an image or container stands on, the blobs of their configs and
    /// the blobs that keep their layers' tars) and sweep (every other layer and blob, when older than `older_than`).
    fn sweep_store(&self, older_than: Option<SystemTime>) -> Result<(Vec<String>, usize, u64)> {
        let records: Vec<crate::images::ImageRecord> = self.store.images()?;
        let mut tops: Vec<String> = records.iter().flat_map(|r| r.layers.clone()).collect();
        let mut blobs: HashSet<String> = records.iter().map(|r| hex_of(&r.id)).collect();
        for c in lock(&self.containers).values() {
            tops.extend(c.top_layer.clone());
            // A container of a force-removed image still commits on its config.
            blobs.insert(hex_of(&c.image_id));
        }
        let mut layers: HashSet<String> = HashSet::new();
        for top in tops {
            let mut cur = Digest::parse(&top).ok();
            while let Some(d) = cur {
                if !layers.insert(d.hex().to_string()) {
                    break;
                }
                cur = match self.images.layer_info(&d) {
                    Ok(info) => {
                        blobs.insert(info.blob_digest().hex().to_string());
                        info.parent
                    }
                    Err(_) => None,
                };
            }
        }
        let old_enough = |p: &Path| match older_than {
            None => true,
            Some(t) => std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < t),
        };
        let root = self.images.root().to_path_buf();
        let mut removed_layers = Vec::new();
        let mut space = 0u64;
        for e in std::fs::read_dir(root.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(d) = Digest::from_hex(&name) else {
                continue; // `empty` and anything not a layer
            };
            if layers.contains(&name) || !old_enough(&e.path()) {
                // An init layer cut while it was being made (`initlayer::with_init_layer`).
                for t in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    if t.file_name()
                        .to_string_lossy()
                        .starts_with(crate::initlayer::INIT_TMP_PREFIX)
                        && old_enough(&t.path())
                    {
                        let _ = std::fs::remove_dir_all(t.path());
                    }
                }
                continue;
            }
            space += self.images.layer_info(&d).map(|i| i.size).unwrap_or(0);
            match self.images.remove_layer(&d) {
                Ok(()) => {
                    self.remap_fs.forget_layer(d.hex());
                    removed_layers.push(d.to_string())
                }
                Err(err) => tracing::warn!("collecting layer {d}: {err}"),
            }
            // A directory cut before its `layer.json` is not a layer to the store.
            let _ = std::fs::remove_dir_all(e.path());
        }
        let mut removed_blobs = 0;
        for e in std::fs::read_dir(root.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if blobs.contains(&name) || !old_enough(&e.path()) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(e.path()).is_ok() {
                removed_blobs += 1;
                space += size;
            }
        }
        Ok((removed_layers, removed_blobs, space))
    }
}

fn hex_of(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).to_string()
}
