//! Image builds (`POST /build`) over `berth_builder`, plus the other ways a container's
//! filesystem becomes data: `commit`, `diff` (changes) and `export`.
//!
//! The builder's [`berth_builder::Backend`] is implemented here with the daemon's own
//! machinery: build containers are ordinary container records (so `ps -a` shows them while a
//! step runs and the usual start/wait/remove paths serve them), their changes are the
//! overlay upper directory turned into a layer tar (`berth_image::diff`), and the layer
//! cache maps a step's key to the image it produced (`<data-root>/builder/cache/<key>`).

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use berth_api_server::backend::{BuildOptions, ByteStream, CommitOptions, WaitCondition};
use berth_api_types::container::{ChangeItem, Config, HostConfig};
use berth_api_types::{ApiError, ErrorDetail, ProgressMessage};
use berth_builder::{ImageState, RunConfig};
use berth_image::config::ImageConfig;
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::images::ImageRecord;
use crate::model::{now_rfc3339, Container, RunState, Status};
use crate::{internal, lock, spec, Daemon, Result};

/// The daemon as the builder's backend for one build.
struct BuildBackend {
    daemon: Arc<Daemon>,
    /// `--cache-from` images that exist (others are ignored, as Docker does).
    cache_from: Vec<ImageState>,
    /// The network mode of RUN steps (`networkmode=`; the default bridge unless given).
    network_mode: String,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    id: String,
    layers: Vec<String>,
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Daemon {
    fn builder_dir(&self) -> PathBuf {
        self.cfg.data_root.join("builder")
    }

    /// An image as the builder sees it.
    fn image_state(&self, name: &str) -> Result<ImageState> {
        let e = self.resolve_image(name)?;
        Ok(ImageState {
            id: e.id,
            config: e.config,
            layers: e.record.layers,
        })
    }

    /// Creates a container record for a build step (not started) and mounts its rootfs.
    fn create_build_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
        network_mode: &str,
    ) -> Result<(String, PathBuf)> {
        let id = random_id();
        let mut config = Config {
            image: image.id.clone(),
            hostname: spec::default_hostname(&id),
            ..Default::default()
        };
        let (path, args) = match run {
            Some(r) => {
                config.cmd = Some(r.cmd.clone());
                config.env = Some(r.env.clone());
                config.user = r.user.clone();
                config.working_dir = r.workdir.clone();
                let path = r.cmd.first().cloned().unwrap_or_default();
                (path, r.cmd.iter().skip(1).cloned().collect())
            }
            None => (String::new(), Vec::new()),
        };
        let mut host_config = HostConfig {
            network_mode: network_mode.into(),
            ..Default::default()
        };
        spec::adapt_host_config(&mut host_config);
        let name = format!("berth_build_{}", &id[..12]);
        let record = Container {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            path,
            args,
            config,
            host_config,
            image_id: image.id.clone(),
            top_layer: image.layers.last().cloned(),
            state: RunState::created(),
            ..Default::default()
        };
        self.runtime.create_dirs(&id).map_err(internal)?;
        if let Err(e) = self.save(&record) {
            let _ = self.runtime.remove_dirs(&id);
            return Err(e);
        }
        // A step runs on the build's network, as a created container does on its own.
        if let Err(e) = self.record_create_networks(&id, network_mode, None) {
            let _ = self.store.delete_container(&id);
            lock(&self.containers).remove(&id);
            let _ = self.runtime.remove_dirs(&id);
            return Err(e);
        }
        let lowers = self.lower_dirs(record.top_layer.as_deref())?;
        self.runtime
            .mount_rootfs(&id, &lowers, false)
            .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
        let rootfs = self.runtime.rootfs(&id);
        Ok((id, rootfs))
    }

    /// Writes the container's upper directory as a layer on `parent_top`; `None` when
    /// there were no changes and `allow_empty` is set.
    fn commit_upper(
        &self,
        id: &str,
        parent_top: Option<&str>,
        allow_empty: bool,
    ) -> Result<Option<berth_image::LayerInfo>> {
        self.runtime.unmount_rootfs(id);
        let upper = self.runtime.upper_dir(id);
        let mut tmp = tempfile::tempfile_in(self.images.tmp_dir()).map_err(internal)?;
        let n = {
            let w = std::io::BufWriter::new(&mut tmp);
            berth_image::diff::write_layer_tar(&upper, w).map_err(internal)?
        };
        if n == 0 && allow_empty {
            return Ok(None);
        }
        tmp.seek(SeekFrom::Start(0)).map_err(internal)?;
        let parent = parent_top
            .map(Digest::parse)
            .transpose()
            .map_err(internal)?;
        let info = self
            .images
            .apply_layer(parent.as_ref(), std::io::BufReader::new(tmp))
            .map_err(internal)?;
        Ok(Some(info))
    }

    fn store_config(&self, config: &ImageConfig, layers: Vec<String>) -> Result<ImageState> {
        let bytes = config.to_vec().map_err(internal)?;
        let id = self.images.put_blob(&bytes).map_err(internal)?;
        Ok(ImageState {
            id: id.to_string(),
            config: config.clone(),
            layers,
        })
    }

    /// Records a build step's (or a commit's) image as an untagged image whose parent is
    /// `parent`, as Docker's legacy builder leaves one per step (`docker images -a`,
    /// `.Parent`); the final step's record is the built image itself.
    fn register_step(&self, img: &ImageState, parent: &str) -> Result<()> {
        let existing: Option<ImageRecord> = self.store.image(&img.id).map_err(internal)?;
        let size = self.layers_size(&img.layers);
        let rec = ImageRecord {
            id: img.id.clone(),
            layers: img.layers.clone(),
            size: size as i64,
            loaded_at: existing
                .as_ref()
                .map(|r| r.loaded_at.clone())
                .unwrap_or_else(now_rfc3339),
            repo_digests: existing.map(|r| r.repo_digests).unwrap_or_default(),
            parent: parent.to_string(),
        };
        self.store.put_image(&img.id, &rec).map_err(internal)
    }

    fn layers_size(&self, layers: &[String]) -> u64 {
        layers
            .iter()
            .filter_map(|l| Digest::parse(l).ok())
            .filter_map(|d| self.images.layer_info(&d).ok())
            .map(|i| i.size)
            .sum()
    }

    /// Records a built or committed image and tags it; returns the familiar tag names.
    fn register_built(&self, img: &ImageState, tags: &[String]) -> Result<Vec<String>> {
        let mut size = 0u64;
        for l in &img.layers {
            if let Ok(d) = Digest::parse(l) {
                if let Ok(info) = self.images.layer_info(&d) {
                    size += info.size;
                }
            }
        }
        self.put_image_record(&img.id, img.layers.clone(), size)?;
        let mut out = Vec::new();
        for t in tags {
            let r = Reference::parse(t).map_err(|e| ApiError::invalid(e.to_string()))?;
            self.store
                .set_tag(&r.to_string(), &img.id, &now_rfc3339())
                .map_err(internal)?;
            self.emit_image(&img.id, "tag", &r.familiar_string());
            out.push(r.familiar_string());
        }
        Ok(out)
    }

    /// `POST /build`.
    pub async fn image_build(
        self: &Arc<Self>,
        body: ByteStream,
        opts: BuildOptions,
    ) -> Result<ByteStream> {
        if !opts.remote.is_empty() {
            return Err(ApiError::invalid(format!(
                "remote build contexts are not supported: {}",
                opts.remote
            )));
        }
        let mut tags = Vec::new();
        for t in &opts.tags {
            let r = Reference::parse(t)
                .map_err(|e| ApiError::invalid(format!("invalid reference format: {t}: {e}")))?;
            tags.push(r.to_string());
        }
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(64);
        let this = self.clone();
        tokio::spawn(async move {
            let send = |m: ProgressMessage| {
                let tx = tx.clone();
                async move {
                    let mut line = serde_json::to_vec(&m).unwrap_or_default();
                    line.push(b'\n');
                    let _ = tx.send(Ok(Bytes::from(line))).await;
                }
            };
            let work = this.builder_dir().join("tmp").join(random_id());
            let res = this.run_build(body, &opts, &work, &tx).await;
            match res {
                Ok(img) => match this.register_built(&img, &tags) {
                    Ok(names) => {
                        send(ProgressMessage {
                            aux: Some(serde_json::json!({ "ID": img.id })),
                            ..Default::default()
                        })
                        .await;
                        if opts.quiet {
                            send(ProgressMessage::stream(format!("{}\n", img.id))).await;
                        } else {
                            send(ProgressMessage::stream(format!(
                                "Successfully built {}\n",
                                berth_builder::engine::short(&img.id)
                            )))
                            .await;
                            for n in names {
                                send(ProgressMessage::stream(format!(
                                    "Successfully tagged {n}\n"
                                )))
                                .await;
                            }
                        }
                    }
                    Err(e) => send(error_message(this.build_error(&e.message, &work), None)).await,
                },
                Err(e) => send(error_message(this.build_error(&e.0, &work), e.1)).await,
            }
            // The client has its answer; the unpacked context goes after it.
            drop(tx);
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&work)).await;
        });
        Ok(crate::channel_stream(rx))
    }

    async fn run_build(
        self: &Arc<Self>,
        body: ByteStream,
        opts: &BuildOptions,
        work: &Path,
        tx: &mpsc::Sender<std::io::Result<Bytes>>,
    ) -> std::result::Result<ImageState, (String, Option<i64>)> {
        let context = work.join("context");
        std::fs::create_dir_all(&context)
            .map_err(|e| (format!("creating build context: {e}"), None))?;
        let reader = SyncIoBridge::new(StreamReader::new(body));
        let ctx2 = context.clone();
        let df_name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let df_name2 = df_name.clone();
        let dockerfile =
            tokio::task::spawn_blocking(move || unpack_context(reader, &ctx2, &df_name2))
                .await
                .map_err(|e| (e.to_string(), None))?
                .map_err(|e| (e, None))?;
        let (otx, mut orx) = mpsc::unbounded_channel::<String>();
        let quiet = opts.quiet;
        let ftx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(text) = orx.recv().await {
                if quiet {
                    continue;
                }
                let mut line =
                    serde_json::to_vec(&ProgressMessage::stream(text)).unwrap_or_default();
                line.push(b'\n');
                let _ = ftx.send(Ok(Bytes::from(line))).await;
            }
        });
        let bopts = berth_builder::Options {
            dockerfile,
            context,
            build_args: opts.build_args.clone(),
            labels: opts.labels.clone(),
            target: (!opts.target.is_empty()).then(|| opts.target.clone()),
            no_cache: opts.no_cache,
        };
        let backend = BuildBackend {
            daemon: self.clone(),
            cache_from: opts
                .cache_from
                .iter()
                .filter_map(|n| self.image_state(n).ok())
                .collect(),
            network_mode: match opts.network_mode.as_str() {
                "" => "default".to_string(),
                m => m.to_string(),
            },
        };
        let res = berth_builder::build(&backend, &bopts, &otx).await;
        drop(otx);
        let _ = forward.await;
        res.map_err(|e| {
            let msg = match e.line {
                Some(l) if !e.message.starts_with("dockerfile parse error") => {
                    format!("{} (Dockerfile line {l})", e.message)
                }
                _ => e.message,
            };
            (msg, e.code)
        })
    }

    /// The build cache entries (step key → step image) whose image still exists, by key.
    fn cache_entries(&self) -> Vec<(String, CacheEntry, std::fs::Metadata)> {
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

    /// `POST /build/prune`: forgets every cache entry and removes the step images only the
    /// cache kept (an earlier stage's steps, a failed build's steps, the steps of an image
    /// whose tag moved on), children first, with the layers no other image uses. Images a
    /// tag or container keeps, and the steps they were built on, stay.
    pub async fn build_prune(self: &Arc<Self>) -> Result<(Vec<String>, u64)> {
        let _g = self.image_lock.lock().await;
        let records: Vec<ImageRecord> = self.store.images().map_err(internal)?;
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
            let records: Vec<ImageRecord> = self.store.images().map_err(internal)?;
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
        Ok((deleted, space))
    }

    /// `POST /commit`.
    pub async fn container_commit(self: &Arc<Self>, opts: CommitOptions) -> Result<String> {
        let c = self.resolve_container(&opts.container)?;
        let tag = if opts.repo.is_empty() {
            None
        } else {
            let t = if opts.tag.is_empty() {
                opts.repo.clone()
            } else {
                format!("{}:{}", opts.repo, opts.tag)
            };
            Some(
                Reference::parse(&t)
                    .map_err(|e| ApiError::invalid(e.to_string()))?
                    .to_string(),
            )
        };
        let base = if c.image_id.is_empty() {
            ImageState::default()
        } else {
            self.image_state(&c.image_id).or_else(|_| {
                let d = Digest::parse(&c.image_id).map_err(internal)?;
                let raw = self.images.get_blob(&d).map_err(internal)?;
                Ok::<_, ApiError>(ImageState {
                    id: c.image_id.clone(),
                    config: ImageConfig::from_slice(&raw).map_err(internal)?,
                    layers: c.top_layer.iter().cloned().collect(),
                })
            })?
        };
        let paused = opts.pause && c.state.status == Status::Running;
        if paused {
            self.container_pause(&c.id, true).await?;
        }
        let this = self.clone();
        let id = c.id.clone();
        let upper = self.runtime.upper_dir(&id);
        let parent_top = base.layers.last().cloned();
        let layer = tokio::task::spawn_blocking(move || -> Result<berth_image::LayerInfo> {
            let mut tmp = tempfile::tempfile_in(this.images.tmp_dir()).map_err(internal)?;
            {
                let w = std::io::BufWriter::new(&mut tmp);
                berth_image::diff::write_layer_tar(&upper, w).map_err(internal)?;
            }
            tmp.seek(SeekFrom::Start(0)).map_err(internal)?;
            let parent = parent_top
                .as_deref()
                .map(Digest::parse)
                .transpose()
                .map_err(internal)?;
            this.images
                .apply_layer(parent.as_ref(), std::io::BufReader::new(tmp))
                .map_err(internal)
        })
        .await
        .map_err(internal);
        if paused {
            let _ = self.container_pause(&c.id, false).await;
        }
        let layer = layer??;
        // The new image's config: the container's config (what Docker does), then `changes`.
        let mut cfg = base.config.clone();
        let mut cc = cfg.config.clone().unwrap_or_default();
        let source = match &opts.config {
            Some(body) => crate::commit_merge::merge(body, &c.config),
            None => c.config.clone(),
        };
        cc.cmd = source.cmd.clone().map(berth_image::config::StrSlice);
        cc.entrypoint = source.entrypoint.clone().map(berth_image::config::StrSlice);
        cc.env = source.env.clone().or(cc.env);
        if !source.user.is_empty() {
            cc.user = Some(source.user.clone());
        }
        if !source.working_dir.is_empty() {
            cc.working_dir = Some(source.working_dir.clone());
        }
        if source.labels.is_some() {
            cc.labels = source.labels.clone();
        }
        if source.exposed_ports.is_some() {
            cc.exposed_ports = source.exposed_ports.clone();
        }
        berth_image::archive::apply_changes(&mut cc, &opts.changes)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        cfg.config = Some(cc);
        let created = now_rfc3339();
        cfg.created = Some(created.clone());
        cfg.author = (!opts.author.is_empty()).then(|| opts.author.clone());
        cfg.comment = (!opts.comment.is_empty()).then(|| opts.comment.clone());
        cfg.container = Some(c.id.clone());
        cfg.rootfs.diff_ids.push(layer.diff_id.clone());
        cfg.history.push(berth_image::config::History {
            created: Some(created),
            created_by: Some(
                format!("{} {}", c.path, c.args.join(" "))
                    .trim()
                    .to_string(),
            ),
            author: cfg.author.clone(),
            comment: cfg.comment.clone(),
            ..Default::default()
        });
        let mut layers = base.layers.clone();
        layers.push(layer.chain_id.to_string());
        let img = self.store_config(&cfg, layers)?;
        self.register_step(&img, &base.id)?;
        let tags: Vec<String> = tag.into_iter().collect();
        self.register_built(&img, &tags)?;
        // A container event, as dockerd records a commit.
        self.emit_container(
            &c,
            "commit",
            &[
                ("comment", opts.comment.clone()),
                ("imageID", img.id.clone()),
                ("imageRef", tags.first().cloned().unwrap_or_default()),
            ],
        );
        Ok(img.id)
    }

    /// `GET /containers/{id}/changes`.
    pub fn container_changes(&self, key: &str) -> Result<Vec<ChangeItem>> {
        let c = self.resolve_container(key)?;
        let lowers = self.container_lowers(&c)?;
        let upper = self.runtime.upper_dir(&c.id);
        let changes = berth_image::diff::changes(&upper, &lowers).map_err(internal)?;
        Ok(changes
            .into_iter()
            .map(|ch| ChangeItem {
                path: ch.path,
                kind: ch.kind,
            })
            .collect())
    }

    /// `GET /containers/{id}/export`: the merged filesystem as a tar.
    pub async fn container_export(self: &Arc<Self>, key: &str) -> Result<ByteStream> {
        let c = self.resolve_container(key)?;
        let lowers = self.container_lowers(&c)?;
        // A stopped container's rootfs is not mounted: mount a view for the export and
        // unmount it after (only when this call mounted it).
        let mounted_here = !self.runtime.is_mounted(&c.id);
        if mounted_here {
            self.runtime
                .mount_rootfs(&c.id, &lowers, false)
                .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
        }
        let rootfs = self.runtime.rootfs(&c.id);
        let (rd, wr) = tokio::io::duplex(256 * 1024);
        let this = self.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = SyncIoBridge::new(wr);
            let mut b = tar::Builder::new(&mut writer);
            b.follow_symlinks(false);
            if let Err(e) =
                crate::archive::append_root_entries(&mut b, &rootfs).and_then(|_| b.finish())
            {
                tracing::warn!(container = %id, "export: {e}");
            }
            drop(b);
            let _ = std::io::Write::flush(&mut writer);
            let _ = writer.shutdown();
            if mounted_here && this.get(&id).is_some_and(|c| !c.state.status.is_active()) {
                this.runtime.unmount_rootfs(&id);
            }
        });
        Ok(Box::pin(tokio_util::io::ReaderStream::new(rd)))
    }
}

fn error_message(message: String, code: Option<i64>) -> ProgressMessage {
    ProgressMessage {
        error_detail: Some(ErrorDetail {
            code,
            message: message.clone(),
        }),
        error: Some(message),
        ..Default::default()
    }
}

/// Unpacks the (optionally compressed) context tar into `dir`, drops what `.dockerignore`
/// excludes, and returns the Dockerfile's text.
fn unpack_context(
    reader: impl std::io::Read,
    dir: &Path,
    dockerfile: &str,
) -> std::result::Result<String, String> {
    let decoded = berth_image::store::decompress(reader)
        .map_err(|e| format!("reading build context: {e}"))?;
    let mut ar = tar::Archive::new(ZeroPad {
        inner: decoded,
        pad: 0,
    });
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| format!("reading build context: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading build context: {e}"))?;
        // unpack_in refuses paths that would leave `dir`.
        entry
            .unpack_in(dir)
            .map_err(|e| format!("unpacking build context: {e}"))?;
    }
    let rel = berth_builder::copy::clean_rel(dockerfile);
    let mut path = dir.join(&rel);
    if !path.exists() && dockerfile == "Dockerfile" {
        path = dir.join("dockerfile");
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|_| format!("Cannot locate specified Dockerfile: {dockerfile}"))?;
    if let Ok(ign) = std::fs::read_to_string(dir.join(".dockerignore")) {
        let ignore = berth_builder::Ignore::parse(&ign);
        if !ignore.is_empty() {
            prune(dir, dir, &ignore);
        }
    }
    Ok(text)
}

/// The docker CLI's `-f -` rewrites the context tar and ends it right after the last file's
/// data, without the block padding and end-of-archive blocks. Docker's reader accepts that;
/// reading zeros after the end makes the tar crate see a proper end too.
struct ZeroPad<R> {
    inner: R,
    pad: usize,
}

impl<R: std::io::Read> std::io::Read for ZeroPad<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad == 0 {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
        let room = (3 * 512usize).saturating_sub(self.pad).min(buf.len());
        buf[..room].fill(0);
        self.pad += room;
        Ok(room)
    }
}

/// Removes excluded files; an excluded directory goes whole unless an exception may apply
/// below it.
fn prune(root: &Path, dir: &Path, ignore: &berth_builder::Ignore) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let excluded = ignore.excluded(&rel);
        if is_dir {
            if excluded && !ignore.may_include_below(&rel) {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                prune(root, &p, ignore);
                if excluded
                    && std::fs::read_dir(&p)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false)
                {
                    let _ = std::fs::remove_dir(&p);
                }
            }
        } else if excluded {
            let _ = std::fs::remove_file(&p);
        }
    }
}

#[async_trait]
impl berth_builder::Backend for BuildBackend {
    async fn image(&self, name: &str) -> std::result::Result<ImageState, String> {
        self.daemon.image_state(name).map_err(|e| {
            if e.message.starts_with("No such image") {
                format!(
                    "pull access denied for {name}, repository does not exist or may require 'docker login': berth cannot pull from registries yet ({})",
                    e.message
                )
            } else {
                e.message
            }
        })
    }

    async fn create_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
    ) -> std::result::Result<(String, PathBuf), String> {
        self.daemon
            .create_build_container(image, run, &self.network_mode)
            .map_err(|e| e.message)
    }

    async fn run_container(
        &self,
        id: &str,
        output: &mpsc::UnboundedSender<String>,
    ) -> std::result::Result<i64, String> {
        let d = &self.daemon;
        let wait = d
            .container_wait(id, WaitCondition::NextExit)
            .await
            .map_err(|e| e.message)?;
        // The build step's rootfs was mounted for inspection; start mounts it again.
        d.runtime.unmount_rootfs(id);
        d.container_start(id).await.map_err(|e| e.message)?;
        // Forward output while the step runs by following the log file.
        let log = d.runtime.log_path(id);
        let mut sent = 0usize;
        let mut wait = wait;
        let resp = loop {
            tokio::select! {
                r = &mut wait => break r,
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    let all = crate::logs::replay(&log, true, true, true);
                    if all.len() > sent {
                        let _ = output.send(String::from_utf8_lossy(&all[sent..]).into_owned());
                        sent = all.len();
                    }
                }
            }
        };
        let all = crate::logs::replay(&log, true, true, true);
        if all.len() > sent {
            let _ = output.send(String::from_utf8_lossy(&all[sent..]).into_owned());
        }
        if let Some(err) = resp.error {
            if !err.message.is_empty() {
                return Err(err.message);
            }
        }
        Ok(resp.status_code)
    }

    async fn commit(
        &self,
        container: &str,
        parent: &ImageState,
        mut config: ImageConfig,
        allow_empty: bool,
    ) -> std::result::Result<(ImageState, bool), String> {
        let d = self.daemon.clone();
        let id = container.to_string();
        let top = parent.layers.last().cloned();
        let layer =
            tokio::task::spawn_blocking(move || d.commit_upper(&id, top.as_deref(), allow_empty))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.message)?;
        let mut layers = parent.layers.clone();
        let layered = layer.is_some();
        match layer {
            Some(info) => {
                config.rootfs.diff_ids.push(info.diff_id.clone());
                layers.push(info.chain_id.to_string());
            }
            None => {
                if let Some(h) = config.history.last_mut() {
                    h.empty_layer = Some(true);
                }
            }
        }
        let img = self
            .daemon
            .store_config(&config, layers)
            .map_err(|e| e.message)?;
        self.daemon
            .register_step(&img, &parent.id)
            .map_err(|e| e.message)?;
        Ok((img, layered))
    }

    async fn commit_config(
        &self,
        parent: &ImageState,
        config: ImageConfig,
    ) -> std::result::Result<ImageState, String> {
        let img = self
            .daemon
            .store_config(&config, parent.layers.clone())
            .map_err(|e| e.message)?;
        self.daemon
            .register_step(&img, &parent.id)
            .map_err(|e| e.message)?;
        Ok(img)
    }

    async fn remove_container(&self, id: &str) {
        if let Err(e) = self.daemon.remove_container(id, true).await {
            tracing::warn!(container = id, "removing build container: {}", e.message);
        }
    }

    async fn cache_get(&self, key: &str) -> Option<ImageState> {
        let path = self.daemon.builder_dir().join("cache").join(key);
        let raw = std::fs::read(&path).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&raw).ok()?;
        // The cache is the step images: once one is deleted (`rmi` of the image built on
        // it, `builder prune`), its entry no longer hits.
        let _: ImageRecord = self.daemon.store.image(&entry.id).ok()??;
        let digest = Digest::parse(&entry.id).ok()?;
        let images = &self.daemon.images;
        for l in &entry.layers {
            if !images.has_layer(&Digest::parse(l).ok()?) {
                return None;
            }
        }
        let config = ImageConfig::from_slice(&images.get_blob(&digest).ok()?).ok()?;
        Some(ImageState {
            id: entry.id,
            config,
            layers: entry.layers,
        })
    }

    fn cache_sources(&self) -> &[ImageState] {
        &self.cache_from
    }

    async fn cache_put(&self, key: &str, image: &ImageState) {
        let dir = self.daemon.builder_dir().join("cache");
        let entry = CacheEntry {
            id: image.id.clone(),
            layers: image.layers.clone(),
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{key}.tmp"));
            std::fs::write(&tmp, serde_json::to_vec(&entry).unwrap_or_default())?;
            std::fs::rename(&tmp, dir.join(key))
        };
        if let Err(e) = write() {
            tracing::warn!("writing build cache entry: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)], pad: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let mut raw = b.into_inner().unwrap();
        if !pad {
            // What the docker CLI sends for `-f -`: no padding after the last file's data,
            // no end-of-archive blocks.
            let last = files.last().unwrap().1.len();
            let data_end = raw.len() - 1024 - (512 - last % 512) % 512;
            raw.truncate(data_end);
        }
        raw
    }

    #[test]
    fn context_unpack_applies_dockerignore_and_finds_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let raw = tar_of(
            &[
                ("Dockerfile", "FROM scratch\n"),
                ("a.log", "x"),
                ("keep.log", "x"),
                ("dir/sub/b.log", "x"),
                ("dir/code.rs", "x"),
                ("node_modules/m/index.js", "x"),
                (".dockerignore", "**/*.log\n!keep.log\nnode_modules\n"),
            ],
            false,
        );
        let text = unpack_context(&raw[..], d.path(), "Dockerfile").unwrap();
        assert_eq!(text, "FROM scratch\n");
        let exists = |p: &str| d.path().join(p).exists();
        assert!(exists("keep.log") && exists("dir/code.rs") && exists("Dockerfile"));
        assert!(!exists("a.log") && !exists("dir/sub/b.log") && !exists("node_modules"));
    }

    #[test]
    fn gzip_context_and_missing_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let raw = tar_of(&[("sub/Build.file", "FROM x\n")], true);
        let mut gz = gzip_of(&raw);
        let text = unpack_context(&mut gz, d.path(), "sub/Build.file").unwrap();
        assert_eq!(text, "FROM x\n");
        let e = tempfile::tempdir().unwrap();
        let err = unpack_context(&raw[..], e.path(), "Dockerfile").unwrap_err();
        assert_eq!(err, "Cannot locate specified Dockerfile: Dockerfile");
    }

    /// A gzip'd context, as `docker build` sends with `--compress` (made with the `gzip`
    /// binary: the daemon crate has no gzip encoder dependency).
    fn gzip_of(raw: &[u8]) -> std::io::Cursor<Vec<u8>> {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        std::io::Cursor::new(out.stdout)
    }
}
