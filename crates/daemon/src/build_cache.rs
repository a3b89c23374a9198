//! The build cache as the daemon keeps it: one entry per step (`<data-root>/builder/cache/
//! <key>` names the step's image), what `system df` reports (`BuildCache`), what
//! `builder prune` frees, and the step ids `docker history` shows.

use std::sync::Arc;

use berth_image::config::ImageConfig;
use berth_image::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::images::ImageRecord;
use crate::model::now_rfc3339;
use crate::{Daemon, Result};

#[derive(Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    pub id: String,
    pub layers: Vec<String>,
}

impl Daemon {
    /// The build cache entries (step key → step image) whose image still exists, by key.
    pub(crate) fn cache_entries(&self) -> Vec<(String, CacheEntry, std::fs::Metadata)> {
        let dir = self.builder_dir().join("cache");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let key = e.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') {
                continue;
            }
            let (Ok(raw), Ok(meta)) = (std::fs::read(e.path()), e.metadata()) else {
                continue;
            };
            if let Ok(entry) = serde_json::from_slice::<CacheEntry>(&raw) {
                out.push((key, entry, meta));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Images something other than the build cache keeps: tagged ones, those containers
    /// use, and every ancestor of those (the step images a tagged image was built on).
    fn images_kept(&self, records: &[ImageRecord]) -> std::collections::HashSet<String> {
        let by_id: std::collections::HashMap<&str, &ImageRecord> =
            records.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut seeds: Vec<String> = self
            .store
            .tags()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, id, _)| id)
            .collect();
        seeds.extend(
            crate::lock(&self.containers)
                .values()
                .map(|c| c.image_id.clone()),
        );
        // Images that did not come from a build (loaded, pulled, imported) are never
        // the cache's to remove, tagged or not.
        let built: std::collections::HashSet<String> = self
            .cache_entries()
            .into_iter()
            .map(|(_, e, _)| e.id)
            .collect();
        seeds.extend(
            records
                .iter()
                .filter(|r| !built.contains(&r.id))
                .map(|r| r.id.clone()),
        );
        let mut kept = std::collections::HashSet::new();
        for mut id in seeds {
            while !id.is_empty() && kept.insert(id.clone()) {
                id = by_id
                    .get(id.as_str())
                    .map(|r| r.parent.clone())
                    .unwrap_or_default();
            }
        }
        kept
    }

    /// The build cache as `GET /system/df` reports it (`BuildCache`): one record per cache
    /// entry whose step image exists. A step's size is the layer it added (0 for a config
    /// step); it is `Shared` when something besides the cache keeps its image (a tag, a
    /// container, a tagged image built on it), so the docker CLI's size and reclaimable
    /// columns count exactly what `builder prune` frees.
    pub(crate) fn build_cache_usage(&self) -> Vec<serde_json::Value> {
        let records: Vec<ImageRecord> = self.store.images().unwrap_or_default();
        let by_id: std::collections::HashMap<&str, &ImageRecord> =
            records.iter().map(|r| (r.id.as_str(), r)).collect();
        let kept = self.images_kept(&records);
        let mut counted = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (key, entry, meta) in self.cache_entries() {
            let Some(rec) = by_id.get(entry.id.as_str()) else {
                continue;
            };
            let config = Digest::parse(&entry.id)
                .ok()
                .and_then(|d| self.images.get_blob(&d).ok())
                .and_then(|raw| ImageConfig::from_slice(&raw).ok());
            let description = config
                .as_ref()
                .and_then(|c| c.history.last())
                .and_then(|h| h.created_by.clone())
                .unwrap_or_default();
            let created = config
                .as_ref()
                .and_then(|c| c.created.clone())
                .unwrap_or_else(now_rfc3339);
            let last_used = meta
                .modified()
                .map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                })
                .unwrap_or_else(|_| created.clone());
            // A config-only step adds no layer: its top layer is its parent's.
            let parent_top = by_id
                .get(rec.parent.as_str())
                .and_then(|p| p.layers.last().cloned());
            let size = match rec.layers.last() {
                Some(top) if Some(top) != parent_top.as_ref() && counted.insert(top.clone()) => {
                    Digest::parse(top)
                        .ok()
                        .and_then(|d| self.images.layer_info(&d).ok())
                        .map(|i| i.size)
                        .unwrap_or(0)
                }
                _ => 0,
            };
            out.push(serde_json::json!({
                "ID": key.chars().take(25).collect::<String>(),
                "Parents": null,
                "Type": "regular",
                "Description": description,
                "InUse": false,
                "Shared": kept.contains(&entry.id),
                "Size": size,
                "CreatedAt": created,
                "LastUsedAt": last_used,
                "UsageCount": 1,
            }));
        }
        out.extend(self.cache_mount_usage());
        out
    }

    /// For `docker history`: per history entry of `config`, the id of a known image (an
    /// image record or a build step in the cache) whose history and layers are exactly that
    /// prefix — the step images Docker's legacy builder shows instead of `<missing>`.
    pub(crate) fn history_step_ids(&self, config: &ImageConfig) -> Vec<Option<String>> {
        let hist = &config.history;
        let diffs = &config.rootfs.diff_ids;
        let images: Vec<ImageRecord> = self.store.images().unwrap_or_default();
        let mut ids: Vec<String> = images.into_iter().map(|r| r.id).collect();
        for e in std::fs::read_dir(self.builder_dir().join("cache"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(entry) =
                serde_json::from_slice::<CacheEntry>(&std::fs::read(e.path()).unwrap_or_default())
            {
                ids.push(entry.id);
            }
        }
        ids.sort();
        ids.dedup();
        let mut out: Vec<Option<String>> = vec![None; hist.len()];
        for id in ids {
            let Some(c) = Digest::parse(&id)
                .ok()
                .and_then(|d| self.images.get_blob(&d).ok())
                .and_then(|raw| ImageConfig::from_slice(&raw).ok())
            else {
                continue;
            };
            let n = c.history.len();
            let k = c.rootfs.diff_ids.len();
            if n == 0
                || n >= hist.len()
                || k > diffs.len()
                || c.history[..] != hist[..n]
                || c.rootfs.diff_ids[..] != diffs[..k]
                || out[n - 1].is_some()
            {
                continue;
            }
            out[n - 1] = Some(id);
        }
        out
    }

    /// `POST /build/prune`: forgets every cache entry (and every cache mount not in use) and removes the step images only the
    /// cache kept (an earlier stage's steps, a failed build's steps, the steps of an image
    /// whose tag moved on), children first, with the layers no other image uses. Images a
    /// tag or container keeps, and the steps they were built on, stay.
    pub async fn build_prune(self: &Arc<Self>) -> Result<(Vec<String>, u64)> {
        let (mut deleted, mut space) = self.build_cache_prune().await?;
        // What interrupted builds and pulls left (see `crash_gc`), after the image lock is
        // free again (the collection takes it).
        let c = self.collect_leftovers(false).await?;
        deleted.extend(c.containers);
        deleted.extend(c.layers);
        space += c.space;
        Ok((deleted, space))
    }

    async fn build_cache_prune(self: &Arc<Self>) -> Result<(Vec<String>, u64)> {
        let _g = self.image_lock.lock().await;
        let records: Vec<ImageRecord> = self.store.images()?;
        let kept = self.images_kept(&records);
        let entries = self.cache_entries();
        let mut deleted = Vec::new();
        let mut candidates = std::collections::BTreeSet::new();
        let dir = self.builder_dir().join("cache");
        for (key, entry, _) in &entries {
            if !kept.contains(&entry.id) && records.iter().any(|r| r.id == entry.id) {
                candidates.insert(entry.id.clone());
            }
            let _ = std::fs::remove_file(dir.join(key));
            deleted.push(key.clone());
        }
        let mut space = 0u64;
        loop {
            let records: Vec<ImageRecord> = self.store.images()?;
            let parents: std::collections::HashSet<&String> =
                records.iter().map(|r| &r.parent).collect();
            let Some(rec) = records
                .iter()
                .find(|r| candidates.contains(&r.id) && !parents.contains(&r.id))
            else {
                break;
            };
            candidates.remove(&rec.id);
            let sizes: std::collections::HashMap<String, u64> = rec
                .layers
                .iter()
                .filter_map(|l| {
                    let d = Digest::parse(l).ok()?;
                    Some((l.clone(), self.images.layer_info(&d).ok()?.size))
                })
                .collect();
            for item in self.delete_image_and_layers(rec)? {
                if let berth_api_types::image::DeleteItem::Deleted(x) = item {
                    space += sizes.get(&x).copied().unwrap_or(0);
                }
            }
        }
        // `RUN --mount=type=cache` directories no step uses go too.
        let (mounts, mount_space) = self.cache_mount_prune();
        deleted.extend(mounts);
        Ok((deleted, space + mount_space))
    }
}
