//! Images: resolution of names, list, inspect, history, tag, remove, load, save, import.
//! Files live in `berth_image::store::ImageStore`; image records and tags in the metadata store.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use berth_api_types::container::{Config, HealthConfig};
use berth_api_types::image::{self as it, DeleteItem, HistoryItem};
use berth_api_types::{ApiError, ProgressDetail, ProgressMessage};
use berth_image::config::ImageConfig;
use berth_image::digest::Digest;
use berth_image::reference::{self, Reference};
use berth_services::{ByteStream, ImageListOptions, ImportOptions};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::model::{now_rfc3339, unix_seconds};
use crate::{internal, Daemon, Result};

/// The record kept in the metadata store for each image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<config digest>`.
    pub id: String,
    /// Chain ids, bottom first.
    pub layers: Vec<String>,
    pub size: i64,
    pub loaded_at: String,
    /// `domain/path@sha256:...` of the manifests this image was pulled as or pushed as.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The image this one was built or committed on (`Parent` in inspect): each build step
    /// is an image whose parent is the previous step's, as with Docker's legacy builder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
}

/// A resolved image: its record plus the parsed config.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    pub id: String,
    pub record: ImageRecord,
    pub config: ImageConfig,
    pub top_layer: Option<String>,
}

impl ImageEntry {
    /// The image's runtime defaults as a container `Config`.
    pub fn container_config(&self) -> Config {
        let Some(c) = &self.config.config else {
            return Config::default();
        };
        Config {
            hostname: c.hostname.clone().unwrap_or_default(),
            domainname: c.domainname.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            exposed_ports: c.exposed_ports.clone(),
            env: c.env.clone(),
            cmd: c.cmd.as_ref().map(|s| s.0.clone()),
            healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
                test: h.test.clone(),
                interval: h.interval.unwrap_or(0),
                timeout: h.timeout.unwrap_or(0),
                retries: h.retries.unwrap_or(0),
                start_period: h.start_period.unwrap_or(0),
                start_interval: h.start_interval.unwrap_or(0),
            }),
            args_escaped: c.args_escaped,
            volumes: c.volumes.clone(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            entrypoint: c.entrypoint.as_ref().map(|s| s.0.clone()),
            on_build: c.on_build.clone(),
            labels: c.labels.clone(),
            stop_signal: c.stop_signal.clone(),
            stop_timeout: c.stop_timeout,
            shell: c.shell.as_ref().map(|s| s.0.clone()),
            ..Default::default()
        }
    }
}

fn no_such_image(name: &str) -> ApiError {
    let shown = Reference::parse(name)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| name.to_string());
    ApiError::not_found(format!("No such image: {shown}"))
}

fn image_error(e: berth_image::Error) -> ApiError {
    use berth_image::Error as E;
    match e {
        E::InvalidReferenceFormat
        | E::InvalidTagFormat
        | E::ReferenceNotLowercase(_)
        | E::InvalidReference(_)
        | E::InvalidDigest { .. } => ApiError::invalid(e.to_string()),
        E::UnsafePath { .. }
        | E::InvalidArchive(_)
        | E::InvalidChange { .. }
        | E::UnknownChange(_)
        | E::DigestMismatch { .. }
        | E::Tar { .. } => ApiError::invalid(e.to_string()),
        other => internal(other),
    }
}

/// Sends a progress line; the receiver going away just means the client left.
async fn send(tx: &mpsc::Sender<std::io::Result<Bytes>>, msg: &ProgressMessage) {
    let mut line = serde_json::to_vec(msg).unwrap_or_default();
    line.push(b'\n');
    let _ = tx.send(Ok(Bytes::from(line))).await;
}

/// Docker's progress bar text, e.g. `[=====>     ]  1.5MB/3MB`.
pub(crate) fn progress_bar(current: u64, total: u64) -> String {
    let width = 50usize;
    let filled = if total > 0 {
        // At most `width`: the product cannot overflow in u128.
        let f = u128::from(current.min(total)) * 50 / u128::from(total);
        usize::try_from(f).unwrap_or(width)
    } else {
        0
    };
    let mut bar = "=".repeat(filled);
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat(width - filled - 1));
    }
    format!("[{bar}] {}/{}", human_size(current), human_size(total))
}

/// Go's `units.HumanSizeWithPrecision(n, 3)`: decimal units, `%.3g`.
pub(crate) fn human_size(n: u64) -> String {
    berth_go::human_size_prec(n as f64, 3)
}

impl Daemon {
    fn image_record(&self, id: &str) -> Result<Option<ImageRecord>> {
        Ok(self.store.image(id)?)
    }

    fn entry(&self, rec: ImageRecord) -> Result<ImageEntry> {
        let digest = Digest::parse(&rec.id).map_err(image_error)?;
        let raw = self.images.get_blob(&digest).map_err(internal)?;
        let config = ImageConfig::from_slice(&raw).map_err(internal)?;
        Ok(ImageEntry {
            id: rec.id.clone(),
            top_layer: rec.layers.last().cloned(),
            record: rec,
            config,
        })
    }

    /// Resolves a reference (`busybox`, `busybox:1`, `docker.io/library/busybox`) or an id (prefix).
    pub(crate) fn resolve_image(&self, name: &str) -> Result<ImageEntry> {
        let parsed = Reference::parse(name);
        if let Ok(r) = &parsed {
            if r.digest().is_none() {
                if let Some(id) = self.store.tag_target(&r.to_string())? {
                    if let Some(rec) = self.image_record(&id)? {
                        return self.entry(rec);
                    }
                }
            } else if let Some(rec) = self.by_repo_digest(r)? {
                return self.entry(rec);
            }
        }
        if let Some(hex) = reference::id_prefix(name) {
            let all: Vec<ImageRecord> = self.store.images()?;
            let matches: Vec<ImageRecord> = all
                .into_iter()
                .filter(|r| r.id.trim_start_matches("sha256:").starts_with(hex))
                .collect();
            match matches.len() {
                1 => return self.entry(matches.into_iter().next().expect("one match")),
                0 => {}
                _ => {
                    return Err(ApiError::invalid(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )))
                }
            }
        }
        // Neither an id nor a valid reference: dockerd's GetImage answers the parse error
        // (400), not "No such image".
        if let Err(e) = parsed {
            if reference::id_prefix(name).is_none() && !name.starts_with("sha256:") {
                return Err(ApiError::invalid(e.to_string()));
            }
        }
        Err(no_such_image(name))
    }

    pub(crate) fn lower_dirs(&self, top: Option<&str>) -> Result<Vec<PathBuf>> {
        match top {
            None => Ok(vec![self.images.empty_layer_dir()]),
            Some(t) => {
                let d = Digest::parse(t).map_err(image_error)?;
                self.images.lower_dirs(&d).map_err(internal)
            }
        }
    }

    pub(crate) fn image_size(&self, id: &str) -> i64 {
        self.image_record(id)
            .ok()
            .flatten()
            .map(|r| r.size)
            .unwrap_or(0)
    }

    /// Tags by image id, as familiar strings.
    fn tags_by_image(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (name, id, _) in self.store.tags()? {
            let shown = Reference::parse(&name)
                .map(|r| r.familiar_string())
                .unwrap_or(name);
            out.entry(id).or_default().push(shown);
        }
        Ok(out)
    }

    pub(crate) fn image_count(&self) -> i64 {
        self.store
            .images::<ImageRecord>()
            .map(|v| v.len() as i64)
            .unwrap_or(0)
    }

    pub fn image_list(&self, opts: ImageListOptions) -> Result<Vec<it::Summary>> {
        let tags = self.tags_by_image()?;
        let records: Vec<ImageRecord> = self.store.images()?;
        let parents: std::collections::HashSet<String> =
            records.iter().map(|r| r.parent.clone()).collect();
        let mut entries = Vec::new();
        for r in records {
            entries.push(self.entry(r)?);
        }
        let mut before: Option<i64> = None;
        let mut since: Option<i64> = None;
        let mut references = Vec::new();
        let mut labels = Vec::new();
        let mut dangling: Option<bool> = None;
        for (k, vals) in &opts.filters {
            match k.as_str() {
                "reference" => references.extend(vals.iter().cloned()),
                "label" => labels.extend(vals.iter().cloned()),
                "dangling" => {
                    for v in vals {
                        dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(ApiError::invalid(format!(
                                    "invalid filter 'dangling={v}'"
                                )))
                            }
                        });
                    }
                }
                "before" | "since" => {
                    let v = vals.first().cloned().unwrap_or_default();
                    let img = self.resolve_image(&v)?;
                    let t = img
                        .config
                        .created_time()
                        .map(|t| t.timestamp())
                        .unwrap_or(0);
                    if k == "before" {
                        before = Some(t);
                    } else {
                        since = Some(t);
                    }
                }
                "until" => {}
                other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
            }
        }
        // Docker 28 (API 1.51) counts the containers of each image; the api-server shows -1
        // to older clients.
        let mut per_image: HashMap<String, i64> = HashMap::new();
        for c in crate::lock(&self.containers).values() {
            *per_image.entry(c.image_id.clone()).or_default() += 1;
        }
        let mut out = Vec::new();
        for e in entries {
            let repo_tags = tags.get(&e.id).cloned().unwrap_or_default();
            let created = e.config.created_time().map(|t| t.timestamp()).unwrap_or(0);
            let img_labels = e
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            // Untagged images with children are a build's intermediate steps: only `-a`
            // lists them, and they are not dangling (Docker's `Heads`).
            let has_children = parents.contains(&e.id);
            if repo_tags.is_empty() && has_children && !opts.all {
                continue;
            }
            if let Some(d) = dangling {
                if d != (repo_tags.is_empty() && !has_children) {
                    continue;
                }
            }
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if !labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => img_labels.get(k).is_some_and(|x| x == v),
                None => img_labels.contains_key(l),
            }) {
                continue;
            }
            let mut repo_tags = repo_tags;
            if !references.is_empty() {
                // Docker lists only the tags that matched, so one image can show as one row.
                repo_tags.retain(|t| references.iter().any(|p| reference_matches(p, t)));
                if repo_tags.is_empty() {
                    continue;
                }
            }
            out.push(it::Summary {
                id: e.id.clone(),
                parent_id: e.record.parent.clone(),
                repo_tags,
                repo_digests: crate::registry::familiar_digests(&e.record.repo_digests),
                created,
                size: e.record.size,
                shared_size: -1,
                virtual_size: e.record.size,
                labels: img_labels,
                containers: per_image.get(&e.id).copied().unwrap_or(0),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn image_inspect(&self, name: &str) -> Result<it::InspectResponse> {
        let e = self.resolve_image(name)?;
        let tags = self.tags_by_image()?.remove(&e.id).unwrap_or_default();
        let mut data = BTreeMap::new();
        if let Some(top) = &e.top_layer {
            if let Ok(dirs) = self.lower_dirs(Some(top)) {
                data.insert(
                    "LowerDir".to_string(),
                    dirs.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
        }
        Ok(it::InspectResponse {
            id: e.id.clone(),
            repo_tags: tags,
            repo_digests: crate::registry::familiar_digests(&e.record.repo_digests),
            parent: e.record.parent.clone(),
            comment: e.config.comment.clone().unwrap_or_default(),
            created: e.config.created.clone().unwrap_or_default(),
            docker_version: e.config.docker_version.clone().unwrap_or_default(),
            author: e.config.author.clone().unwrap_or_default(),
            config: e.container_config(),
            architecture: e.config.architecture.clone(),
            variant: e.config.variant.clone().unwrap_or_default(),
            os: e.config.os.clone(),
            os_version: e.config.os_version.clone().unwrap_or_default(),
            size: e.record.size,
            virtual_size: e.record.size,
            graph_driver: berth_api_types::container::DriverData {
                data,
                name: berth_image::overlay::driver_name().to_string(),
            },
            root_fs: it::RootFs {
                kind: "layers".to_string(),
                layers: e.config.diff_ids().iter().map(|d| d.to_string()).collect(),
            },
            metadata: it::Metadata {
                last_tag_time: e.record.loaded_at.clone(),
            },
        })
    }

    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let e = self.resolve_image(name)?;
        let tags = self.tags_by_image()?.remove(&e.id).unwrap_or_default();
        let mut layer_sizes = Vec::new();
        for chain in &e.record.layers {
            let size = Digest::parse(chain)
                .ok()
                .and_then(|d| self.images.layer_info(&d).ok())
                .map(|l| l.size as i64)
                .unwrap_or(0);
            layer_sizes.push(size);
        }
        let mut items = Vec::new();
        let mut layer_idx = 0;
        let step_ids = self.history_step_ids(&e.config);
        for (i, h) in e.config.history.iter().enumerate() {
            let size = if h.empty_layer.unwrap_or(false) {
                0
            } else {
                let s = layer_sizes.get(layer_idx).copied().unwrap_or(0);
                layer_idx += 1;
                s
            };
            items.push(HistoryItem {
                id: step_ids
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "<missing>".to_string()),
                created: h.created.as_deref().map(unix_seconds).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        if items.is_empty() {
            items.push(HistoryItem {
                id: String::new(),
                created: e.config.created_time().map(|t| t.timestamp()).unwrap_or(0),
                size: e.record.size,
                ..Default::default()
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = e.id.clone();
            top.tags = tags;
        }
        Ok(items)
    }

    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let _g = self.image_lock.lock().await;
        let e = self.resolve_image(name)?;
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r = Reference::parse(&target).map_err(image_error)?;
        if r.digest().is_some() {
            return Err(ApiError::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        self.store.set_tag(&r.to_string(), &e.id, &now_rfc3339())?;
        self.emit_image(&e.id, "tag", &r.familiar_string());
        Ok(())
    }

    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<DeleteItem>> {
        // Images (the one named and the untagged parents that go with it) get a delete
        // event; the layers listed after each get none.
        let images: std::collections::HashSet<String> = self
            .store
            .images::<ImageRecord>()?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let items = self.image_remove_inner(name, force, noprune).await?;
        for item in &items {
            match item {
                DeleteItem::Untagged(r) => self.emit_image(r, "untag", r),
                DeleteItem::Deleted(id) if images.contains(id) => {
                    self.emit_image(id, "delete", id);
                }
                DeleteItem::Deleted(_) => {}
            }
        }
        Ok(items)
    }

    async fn image_remove_inner(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<DeleteItem>> {
        let _g = self.image_lock.lock().await;
        let e = self.resolve_image(name)?;
        let all_tags: Vec<(String, String, String)> = self.store.tags()?;
        let my_tags: Vec<String> = all_tags
            .iter()
            .filter(|(_, id, _)| *id == e.id)
            .map(|(n, _, _)| n.clone())
            .collect();
        let users: Vec<crate::model::Container> = crate::lock(&self.containers)
            .values()
            .filter(|c| c.image_id == e.id)
            .cloned()
            .collect();
        let by_reference = Reference::parse(name)
            .ok()
            .filter(|r| my_tags.contains(&r.to_string()));
        let mut out = Vec::new();
        let has_children = self.image_has_children(&e.id)?;
        if let Some(r) = &by_reference {
            // A reference that is not the image's last tag is only untagged; removing the last
            // one is an image delete, with the checks below. An image other images were built
            // on loses its tag but stays (as an intermediate image), as with Docker.
            if my_tags.len() > 1 || (has_children && users.is_empty()) {
                self.store.delete_tag(&r.to_string()).map_err(internal)?;
                return Ok(vec![DeleteItem::Untagged(r.familiar_string())]);
            }
        } else if has_children {
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                &e.id.trim_start_matches("sha256:")[..12]
            )));
        } else if my_tags.len() > 1 && !force {
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                &e.id.trim_start_matches("sha256:")[..12]
            )));
        }
        if let Some(c) = users.iter().find(|c| c.state.status.is_active()) {
            return Err(ApiError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                if by_reference.is_some() { name.to_string() } else { e.id.trim_start_matches("sha256:")[..12].to_string() },
                &c.id[..12]
            )));
        }
        if let Some(c) = users.first() {
            if !force {
                return Err(ApiError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &c.id[..12],
                    &e.id.trim_start_matches("sha256:")[..12]
                )));
            }
            // Forced: untag, but keep the image the stopped containers need.
            for t in &my_tags {
                self.store.delete_tag(t)?;
                out.push(DeleteItem::Untagged(
                    Reference::parse(t)
                        .map(|r| r.familiar_string())
                        .unwrap_or_else(|_| t.clone()),
                ));
            }
            return Ok(out);
        }
        for t in &my_tags {
            out.push(DeleteItem::Untagged(
                Reference::parse(t)
                    .map(|r| r.familiar_string())
                    .unwrap_or_else(|_| t.clone()),
            ));
        }
        // Digest references (`repo@sha256:...`) go with the image, listed as docker lists them.
        for d in crate::registry::familiar_digests(&e.record.repo_digests) {
            out.push(DeleteItem::Untagged(d));
        }
        out.extend(self.delete_image_and_layers(&e.record)?);
        // Its untagged parents that nothing else needs go too (a build's intermediate step
        // images), as Docker's delete does unless `noprune`.
        let mut parent = e.record.parent.clone();
        while !noprune && !parent.is_empty() {
            let Some(rec) = self.image_record(&parent)? else {
                break;
            };
            let tagged = self
                .store
                .tags()
                .map_err(internal)?
                .iter()
                .any(|(_, id, _)| *id == rec.id);
            let used = crate::lock(&self.containers)
                .values()
                .any(|c| c.image_id == rec.id);
            if tagged || used || self.image_has_children(&rec.id)? {
                break;
            }
            out.extend(self.delete_image_and_layers(&rec)?);
            parent = rec.parent.clone();
        }
        Ok(out)
    }

    /// Whether another image names `id` as its parent.
    pub(crate) fn image_has_children(&self, id: &str) -> Result<bool> {
        let all: Vec<ImageRecord> = self.store.images()?;
        Ok(all.iter().any(|r| r.parent == id))
    }

    /// Deletes an image record, the layers no other image uses and its config blob;
    /// returns the `Deleted` items (the image, then each freed layer). The caller holds
    /// `image_lock` and has done the checks.
    pub(crate) fn delete_image_and_layers(&self, e: &ImageRecord) -> Result<Vec<DeleteItem>> {
        let mut out = Vec::new();
        self.store.delete_image(&e.id)?;
        out.push(DeleteItem::Deleted(e.id.clone()));
        // Layers no other image uses go too; blobs last so a crash leaves only garbage, never a hole.
        let remaining: Vec<ImageRecord> = self.store.images()?;
        for chain in e.layers.iter().rev() {
            if remaining.iter().any(|r| r.layers.contains(chain)) {
                continue;
            }
            if let Ok(d) = Digest::parse(chain) {
                // Removes the blob that keeps the layer's tar too (uncompressed, or a pulled
                // layer's download) unless another layer keeps its tar there.
                if let Err(err) = self.images.remove_layer(&d) {
                    tracing::warn!("removing layer {chain}: {err}");
                }
                self.remap_fs.forget_layer(d.hex());
                out.push(DeleteItem::Deleted(chain.clone()));
            }
        }
        if let Ok(d) = Digest::parse(&e.id) {
            let _ = self.images.delete_blob(&d);
        }
        Ok(out)
    }

    /// Stores the record of image `id` (its layer chain ids and total size); an image that is
    /// already known keeps its first-seen time and its repository digests.
    pub(crate) fn put_image_record(&self, id: &str, layers: Vec<String>, size: u64) -> Result<()> {
        let existing = self.image_record(id)?;
        let rec = ImageRecord {
            id: id.to_string(),
            layers,
            size: size as i64,
            repo_digests: existing
                .as_ref()
                .map(|r| r.repo_digests.clone())
                .unwrap_or_default(),
            parent: existing
                .as_ref()
                .map(|r| r.parent.clone())
                .unwrap_or_default(),
            loaded_at: existing.map(|r| r.loaded_at).unwrap_or_else(now_rfc3339),
        };
        Ok(self.store.put_image(id, &rec)?)
    }

    /// Records a loaded/imported image and its tags; returns the messages Docker prints.
    fn register(
        &self,
        loaded: &berth_image::archive::LoadedImage,
        tags: &[String],
    ) -> Result<Vec<String>> {
        let id = loaded.id.to_string();
        let size: u64 = loaded.layers.iter().map(|l| l.size).sum();
        let layers = loaded
            .layers
            .iter()
            .map(|l| l.chain_id.to_string())
            .collect();
        self.put_image_record(&id, layers, size)?;
        let mut messages = Vec::new();
        for t in tags {
            let r = Reference::parse(t).map_err(image_error)?;
            if let Some(old) = self
                .store
                .set_tag(&r.to_string(), &id, &now_rfc3339())
                .map_err(internal)?
            {
                messages.push(format!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    r.familiar_string()
                ));
            }
            messages.push(format!("Loaded image: {}", r.familiar_string()));
        }
        if tags.is_empty() {
            messages.push(format!("Loaded image ID: {id}"));
        }
        Ok(messages)
    }

    /// `POST /images/load`: images of none of `opts.platforms` (when given) are not registered,
    /// each with dockerd's error in the stream.
    pub async fn image_load(
        self: &Arc<Self>,
        body: ByteStream,
        opts: berth_services::LoadOptions,
    ) -> Result<ByteStream> {
        let quiet = opts.quiet;
        let platforms = opts.platforms;
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            let _g = this.image_lock.lock().await;
            let reader = SyncIoBridge::new(StreamReader::new(body));
            let (ptx, mut prx) = mpsc::unbounded_channel::<berth_image::archive::LoadEvent>();
            let store = this.clone();
            let job = tokio::task::spawn_blocking(move || {
                let mut progress = |ev: berth_image::archive::LoadEvent| {
                    let _ = ptx.send(ev);
                };
                berth_image::archive::load(reader, &store.images, &mut progress)
            });
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(ev) = prx.recv().await {
                    if quiet {
                        continue;
                    }
                    let msg = match ev {
                        berth_image::archive::LoadEvent::LoadingLayer { id, current, total } => {
                            ProgressMessage {
                                status: Some("Loading layer".to_string()),
                                id: Some(id),
                                progress_detail: Some(ProgressDetail {
                                    current: Some(current),
                                    total: Some(total),
                                }),
                                progress: Some(progress_bar(current, total)),
                                ..Default::default()
                            }
                        }
                        berth_image::archive::LoadEvent::LayerExists { id } => ProgressMessage {
                            status: Some("Layer already exists".to_string()),
                            id: Some(id),
                            ..Default::default()
                        },
                    };
                    send(&forward_tx, &msg).await;
                }
            });
            let result = job.await;
            let _ = forward.await;
            match result {
                Ok(Ok(images)) => {
                    for img in &images {
                        let name = img
                            .repo_tags
                            .first()
                            .cloned()
                            .unwrap_or_else(|| img.id.to_string());
                        if let Err(e) =
                            crate::platform_check::check_any(&name, &platforms, &img.config)
                        {
                            send(&tx, &ProgressMessage::error(e.message)).await;
                            continue;
                        }
                        match this.register(img, &img.repo_tags) {
                            Ok(msgs) => {
                                let name = img
                                    .repo_tags
                                    .first()
                                    .cloned()
                                    .unwrap_or_else(|| img.id.to_string());
                                this.emit_image(img.id.as_str(), "load", &name);
                                for m in msgs {
                                    send(&tx, &ProgressMessage::stream(format!("{m}\n"))).await;
                                }
                            }
                            Err(e) => send(&tx, &ProgressMessage::error(e.message)).await,
                        }
                    }
                }
                Ok(Err(e)) => send(&tx, &ProgressMessage::error(format!("{e}"))).await,
                Err(e) => send(&tx, &ProgressMessage::error(format!("load failed: {e}"))).await,
            }
        });
        Ok(crate::channel_stream(rx))
    }

    /// `GET /images/get`: each of `names` must be of one of `platforms` (when given).
    pub async fn image_save(
        self: &Arc<Self>,
        names: Vec<String>,
        platforms: Vec<berth_services::PlatformSpec>,
    ) -> Result<ByteStream> {
        let tag_map = self.store.tags()?;
        let mut items: Vec<berth_image::archive::SaveItem> = Vec::new();
        for n in &names {
            let e = self.resolve_image(n)?;
            crate::platform_check::check_any(n, &platforms, &e.config)?;
            let by_ref = Reference::parse(n).ok().filter(|r| {
                tag_map
                    .iter()
                    .any(|(t, id, _)| *t == r.to_string() && *id == e.id)
            });
            let tags: Vec<String> = match by_ref {
                Some(r) => vec![r.familiar_string()],
                None if reference::looks_like_id(n) => Vec::new(),
                None => tag_map
                    .iter()
                    .filter(|(_, id, _)| *id == e.id)
                    .map(|(t, _, _)| {
                        Reference::parse(t)
                            .map(|r| r.familiar_string())
                            .unwrap_or_else(|_| t.clone())
                    })
                    .collect(),
            };
            if let Some(existing) = items.iter_mut().find(|i| i.id.to_string() == e.id) {
                for t in tags {
                    if !existing.repo_tags.contains(&t) {
                        existing.repo_tags.push(t);
                    }
                }
                continue;
            }
            let digest = Digest::parse(&e.id).map_err(image_error)?;
            let config_bytes = self.images.get_blob(&digest).map_err(internal)?;
            items.push(berth_image::archive::SaveItem {
                id: digest,
                config_bytes,
                repo_tags: tags,
                diff_ids: e.config.diff_ids().to_vec(),
            });
        }
        let (rd, wr) = tokio::io::duplex(256 * 1024);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = SyncIoBridge::new(wr);
            if let Err(e) = berth_image::archive::save(&items, &this.images, &mut writer) {
                tracing::warn!("image save: {e}");
            }
            let _ = std::io::Write::flush(&mut writer);
            let _ = writer.shutdown();
        });
        Ok(Box::pin(tokio_util::io::ReaderStream::new(rd)))
    }

    pub async fn image_import(
        self: &Arc<Self>,
        body: ByteStream,
        opts: ImportOptions,
    ) -> Result<ByteStream> {
        let tag = if opts.repo.is_empty() {
            None
        } else {
            let t = if opts.tag.is_empty() {
                opts.repo.clone()
            } else {
                format!("{}:{}", opts.repo, opts.tag)
            };
            Some(Reference::parse(&t).map_err(image_error)?.to_string())
        };
        let (tx, rx) = mpsc::channel(8);
        let this = self.clone();
        tokio::spawn(async move {
            let _g = this.image_lock.lock().await;
            let reader = SyncIoBridge::new(StreamReader::new(body));
            let store = this.clone();
            let changes = opts.changes.clone();
            let message = opts.message.clone();
            let res = tokio::task::spawn_blocking(move || {
                berth_image::archive::import(reader, &changes, &message, &store.images)
            })
            .await;
            match res {
                Ok(Ok(img)) => {
                    let tags: Vec<String> = tag.into_iter().collect();
                    match this.register(&img, &tags) {
                        Ok(_) => {
                            let name = tags.first().cloned().unwrap_or_else(|| img.id.to_string());
                            this.emit_image(img.id.as_str(), "import", &name);
                            // dockerd's one status message: the bare id (clients parse it).
                            send(&tx, &ProgressMessage::status(img.id.to_string())).await
                        }
                        Err(e) => send(&tx, &ProgressMessage::error(e.message)).await,
                    }
                }
                Ok(Err(e)) => send(&tx, &ProgressMessage::error(e.to_string())).await,
                Err(e) => send(&tx, &ProgressMessage::error(format!("import failed: {e}"))).await,
            }
        });
        Ok(crate::channel_stream(rx))
    }
}

/// Docker's `reference=` filter: a glob over `name` or `name:tag`.
fn reference_matches(pattern: &str, familiar: &str) -> bool {
    let (name, _) = familiar.rsplit_once(':').unwrap_or((familiar, ""));
    glob_match(pattern, familiar) || glob_match(pattern, name)
}

fn glob_match(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' && s[si] != b'/' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            if s[mark] == b'/' {
                return false;
            }
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
    }

    #[test]
    fn reference_filter() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(!reference_matches("*", "a/b:1"));
    }
}
