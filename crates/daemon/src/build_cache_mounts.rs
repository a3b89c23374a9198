//! `RUN --mount=type=cache`: directories the daemon keeps across builds, in
//! `<data-root>/builder/cachemounts/<key>/` (`data/` is what the step sees, `meta.json`
//! says what it is), shown by `system df` as `exec.cachemount` build cache records and
//! removed by `builder prune` when no step uses them.
//!
//! Sharing: `shared` users run together; `locked` waits until nobody else (shared or
//! locked) uses the cache; `private` takes the cache when it is free and otherwise a
//! directory of its own (`<key>-1`, `<key>-2`, ..., persistent too). The locks live in this
//! process: a data root belongs to one daemon.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use berth_builder::flags::Sharing;
use berth_builder::{CacheMountLease, CacheMountRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::RwLock;

use crate::model::now_rfc3339;
use crate::Daemon;

#[derive(Serialize, Deserialize, Default)]
struct Meta {
    id: String,
    description: String,
    created: String,
    last_used: String,
    usage_count: u64,
}

type Locks = Mutex<HashMap<PathBuf, Arc<RwLock<()>>>>;

/// The lock of each cache directory, by path (unique per data root).
fn lock_of(dir: &Path) -> Arc<RwLock<()>> {
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let mut m = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.entry(dir.to_path_buf()).or_default().clone()
}

/// Holds a lock for as long as a step uses the cache.
struct Guard {
    _read: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    _write: Option<tokio::sync::OwnedRwLockWriteGuard<()>>,
}

fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))[..32].to_string()
}

/// A cache mount that could not be prepared; the build's error message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheMountError {
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("preparing cache mount {id}: {source}")]
    Prepare { id: String, source: std::io::Error },
}

impl Daemon {
    fn cache_mounts_dir(&self) -> PathBuf {
        self.builder_dir().join("cachemounts")
    }

    /// Lends a cache directory to a step, creating (and seeding) it first if needed.
    pub(crate) async fn cache_mount_lease(
        &self,
        req: &CacheMountRequest,
    ) -> Result<CacheMountLease, CacheMountError> {
        let base = self.cache_mounts_dir();
        let key = key_of(&req.id);
        let primary = base.join(&key);
        let (dir, guard) = match req.sharing {
            Sharing::Shared => {
                let g = lock_of(&primary).read_owned().await;
                (
                    primary,
                    Guard {
                        _read: Some(g),
                        _write: None,
                    },
                )
            }
            Sharing::Locked => {
                let g = lock_of(&primary).write_owned().await;
                (
                    primary,
                    Guard {
                        _read: None,
                        _write: Some(g),
                    },
                )
            }
            Sharing::Private => {
                let mut n = 0u32;
                loop {
                    let dir = if n == 0 {
                        primary.clone()
                    } else {
                        base.join(format!("{key}-{n}"))
                    };
                    if let Ok(g) = lock_of(&dir).try_write_owned() {
                        break (
                            dir,
                            Guard {
                                _read: None,
                                _write: Some(g),
                            },
                        );
                    }
                    n += 1;
                }
            }
        };
        let mut req2 = req.clone();
        // A remapped daemon's RUN steps run in its mapping (and its data root, caches
        // included, is its own): the cache belongs to the host ids of the owner asked for.
        if let Some(m) = &self.cfg.userns_remap {
            req2.uid = m.uid_to_host(req.uid);
            req2.gid = m.gid_to_host(req.gid);
        }
        let dir2 = dir.clone();
        tokio::task::spawn_blocking(move || ensure_cache_dir(&dir2, &req2))
            .await?
            .map_err(|source| CacheMountError::Prepare {
                id: req.id.clone(),
                source,
            })?;
        Ok(CacheMountLease {
            path: dir.join("data"),
            _guard: Box::new(guard),
        })
    }

    /// The cache mounts as `system df` `BuildCache` records.
    pub(crate) fn cache_mount_usage(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for (name, dir, meta) in self.cache_mount_dirs() {
            let in_use = lock_of(&dir).try_write().is_err();
            out.push(serde_json::json!({
                "ID": name,
                "Parents": null,
                "Type": "exec.cachemount",
                "Description": meta.description,
                "InUse": in_use,
                "Shared": false,
                "Size": crate::sys::dir_size(&dir.join("data")),
                "CreatedAt": meta.created,
                "LastUsedAt": meta.last_used,
                "UsageCount": meta.usage_count,
            }));
        }
        out
    }

    /// Removes every cache mount no step is using; returns their ids and the bytes freed.
    pub(crate) fn cache_mount_prune(&self) -> (Vec<String>, u64) {
        let mut ids = Vec::new();
        let mut space = 0;
        for (name, dir, _) in self.cache_mount_dirs() {
            let lock = lock_of(&dir);
            let Ok(_held) = lock.try_write() else {
                continue;
            };
            let size = crate::sys::dir_size(&dir.join("data"));
            if std::fs::remove_dir_all(&dir).is_ok() {
                ids.push(name);
                space += size;
            }
        }
        (ids, space)
    }

    fn cache_mount_dirs(&self) -> Vec<(String, PathBuf, Meta)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.cache_mounts_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let meta: Meta = std::fs::read(e.path().join("meta.json"))
                .ok()
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .unwrap_or_default();
            out.push((name, e.path(), meta));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Creates the cache directory (seeded, with its mode and owner) when it does not exist,
/// and records its use.
fn ensure_cache_dir(dir: &Path, req: &CacheMountRequest) -> std::io::Result<()> {
    // Two shared users of a new cache must not both create it.
    static CREATE: Mutex<()> = Mutex::new(());
    let _one = CREATE.lock().unwrap_or_else(|p| p.into_inner());
    let data = dir.join("data");
    let mut meta: Meta = std::fs::read(dir.join("meta.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default();
    if !data.is_dir() {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(
            ".new-{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        let tmp_data = tmp.join("data");
        std::fs::create_dir_all(&tmp)?;
        match &req.seed {
            Some(seed) if seed.exists() => berth_builder::copy::copy_tree(
                seed,
                &tmp_data,
                berth_builder::copy::Owner {
                    uid: req.uid,
                    gid: req.gid,
                    chmod: None,
                },
            )?,
            _ => std::fs::create_dir(&tmp_data)?,
        }
        std::fs::set_permissions(&tmp_data, std::fs::Permissions::from_mode(req.mode))?;
        std::os::unix::fs::lchown(&tmp_data, Some(req.uid), Some(req.gid))?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&tmp, dir)?;
        meta.created = now_rfc3339();
    }
    meta.id = req.id.clone();
    meta.description = req.description.clone();
    meta.last_used = now_rfc3339();
    meta.usage_count += 1;
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec(&meta).unwrap_or_default(),
    )
}
