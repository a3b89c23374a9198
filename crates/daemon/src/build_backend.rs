//! The daemon as the builder's [`berth_builder::Backend`]: build containers are ordinary
//! container records (so `ps -a` shows them while a step runs and the usual
//! start/wait/remove paths serve them), their changes are the overlay upper directory
//! turned into a layer tar (`berth_image::diff`), and the layer cache maps a step's key to
//! the image it produced (`<data-root>/builder/cache/<key>`).

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use berth_api_types::container::{Config, HostConfig};
use berth_builder::{BackendError, ImageState, RunConfig};
use berth_image::config::ImageConfig;
use berth_image::digest::Digest;
use berth_services::WaitCondition;

use crate::build::random_id;
use crate::build_cache::CacheEntry;
use crate::images::ImageRecord;
use crate::model::{now_rfc3339, Container, RunState};
use crate::{internal, spec, Daemon, Result};

/// The daemon as the builder's backend for one build.
pub(crate) struct BuildBackend {
    pub daemon: Arc<Daemon>,
    /// `--cache-from` images that exist (others are ignored, as Docker does).
    pub cache_from: Vec<ImageState>,
    /// The host configuration of RUN steps (network mode, extra hosts, resources: the build
    /// request's; the default bridge unless it names a network).
    pub step_host: HostConfig,
    /// The mount targets of each `RUN` container, whose stubs stay out of its layer.
    pub mount_targets: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
}

impl BuildBackend {
    pub(crate) fn new(
        daemon: Arc<Daemon>,
        cache_from: Vec<ImageState>,
        step_host: HostConfig,
    ) -> Self {
        BuildBackend {
            daemon,
            cache_from,
            step_host,
            mount_targets: Default::default(),
        }
    }
}

/// Sends a step's log entries after the first `sent` to the build's output, each as dockerd's
/// legacy builder writes them: stdout as it is, stderr in its red escape
/// (`\x1b[91m…\x1b[0m`, moby's `streamformatter.NewStderrWriter`). The number of entries
/// sent so far is the answer.
fn forward_step_output(log: &Path, sent: usize, output: &dyn berth_builder::Output) -> usize {
    let all = crate::logs::entries(log);
    let mut text = String::new();
    for (stderr, line) in all.iter().skip(sent) {
        if *stderr {
            text.push_str(STDERR_START);
            text.push_str(line);
            text.push_str(STDERR_END);
        } else {
            text.push_str(line);
        }
    }
    if !text.is_empty() {
        output.send(text);
    }
    all.len().max(sent)
}

/// How dockerd's legacy builder marks a RUN step's standard error in the build stream.
const STDERR_START: &str = "\x1b[91m";
const STDERR_END: &str = "\x1b[0m";

impl Daemon {
    /// Creates a container record for a build step (not started) and mounts its rootfs.
    pub(crate) fn create_build_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
        step_host: &HostConfig,
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
            network_mode: run
                .and_then(|r| r.network.clone())
                .unwrap_or_else(|| step_host.network_mode.clone()),
            privileged: run.is_some_and(|r| r.privileged),
            ..step_host.clone()
        };
        spec::adapt_host_config(&mut host_config);
        // Under `--userns-remap` a RUN step runs remapped, as dockerd's do: its start sees the
        // layers (container ids) through the mapping's views, and the commit writes container
        // ids back. What the builder writes into a step's rootfs itself (COPY, ADD) carries
        // container ids already and is committed as it is. A privileged step (`RUN
        // --security=insecure`) cannot be remapped, nor a step on the host's network (a new
        // user namespace cannot mount /sys for a network namespace it does not own): those
        // run in the host's user namespace, as builds did before remapping reached them.
        if self.cfg.userns_remap.is_some()
            && (host_config.privileged || host_config.network_mode == "host")
        {
            host_config.userns_mode = "host".into();
        }
        let mounts = run
            .map(crate::build_mounts::mount_records)
            .unwrap_or_default();
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
            mounts,
            secret_env: run.map(|r| r.secret_env.clone()).unwrap_or_default(),
            ..Default::default()
        };
        self.lease_build_container(&id);
        // A step runs on the build's network, as a created container does on its own.
        self.register_new(&record, None)?;
        let lowers = self.lower_dirs(record.top_layer.as_deref())?;
        self.runtime
            .mount_rootfs(&id, &lowers, false)
            .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
        let rootfs = self.runtime.rootfs(&id);
        Ok((id, rootfs))
    }

    /// Writes the container's upper directory as a layer on `parent_top`; `None` when
    /// there were no changes and `allow_empty` is set.
    /// The mount points made for `stubs` (a step's mount targets) are left out.
    fn commit_upper(
        &self,
        id: &str,
        parent_top: Option<&str>,
        allow_empty: bool,
        stubs: &[String],
    ) -> Result<Option<berth_image::LayerInfo>> {
        self.runtime.unmount_rootfs(id);
        let upper = self.runtime.upper_dir(id);
        berth_image::overlay::refresh_upper(&self.runtime.rootfs(id), &upper).map_err(internal)?;
        if !stubs.is_empty() {
            let top = self.get(id).and_then(|c| c.top_layer);
            let lowers = self.lower_dirs(top.as_deref())?;
            crate::build_mounts::remove_mount_stubs(&upper, &lowers, stubs);
        }
        let shift = self.get(id).and_then(|c| {
            crate::userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config)
                .map(crate::userns_remap::IdMap::shift)
        });
        let mut tmp = tempfile::tempfile_in(self.images.tmp_dir()).map_err(internal)?;
        let n = {
            let w = std::io::BufWriter::new(&mut tmp);
            berth_image::diff::write_layer_tar_shifted(&upper, w, shift.as_ref())
                .map_err(internal)?
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
}

/// A build step's container that failed as the runtime reported it.
#[derive(Debug, thiserror::Error)]
enum StepError {
    /// The wait for the step's exit carried an error (the runtime's message).
    #[error("{0}")]
    Wait(String),
}

impl BuildBackend {
    /// Pulls `name` (its tag, `latest` when it names none) through the daemon's pull, with
    /// the registry's error when it fails.
    async fn pull_base(&self, name: &str) -> std::result::Result<(), BackendError> {
        let r = berth_image::reference::Reference::parse_named(name)?.with_default_tag();
        let opts = berth_services::PullOptions {
            from_image: r.to_string(),
            ..Default::default()
        };
        Ok(self.daemon.pull_to_end(opts).await??)
    }
}

#[async_trait]
impl berth_builder::Backend for BuildBackend {
    async fn image(&self, name: &str) -> std::result::Result<ImageState, BackendError> {
        match self.daemon.image_state(name) {
            Err(e) if e.message.starts_with("No such image") => {
                // As dockerd's builder: a base image that is not here is pulled.
                self.pull_base(name).await?;
                Ok(self.daemon.image_state(name)?)
            }
            r => Ok(r?),
        }
    }

    async fn create_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
    ) -> std::result::Result<(String, PathBuf), BackendError> {
        let (id, root) = self
            .daemon
            .create_build_container(image, run, &self.step_host)?;
        if let Some(r) = run.filter(|r| !r.mounts.is_empty()) {
            crate::lock(&self.mount_targets).insert(
                id.clone(),
                r.mounts.iter().map(|m| m.target.clone()).collect(),
            );
        }
        Ok((id, root))
    }

    async fn run_container(
        &self,
        id: &str,
        output: &dyn berth_builder::Output,
    ) -> std::result::Result<i64, BackendError> {
        let d = &self.daemon;
        let wait = d.container_wait(id, WaitCondition::NextExit).await?;
        // The build step's rootfs was mounted for inspection; start mounts it again.
        d.runtime.unmount_rootfs(id);
        d.container_start(id).await?;
        // Forward output while the step runs by following the log file.
        let log = d.runtime.log_path(id);
        let mut sent = 0usize;
        let mut wait = wait;
        let resp = loop {
            tokio::select! {
                r = &mut wait => break r,
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    sent = forward_step_output(&log, sent, output);
                }
            }
        };
        forward_step_output(&log, sent, output);
        if let Some(err) = resp.error {
            if !err.message.is_empty() {
                return Err(Box::new(StepError::Wait(err.message)));
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
    ) -> std::result::Result<(ImageState, bool), BackendError> {
        let d = self.daemon.clone();
        let id = container.to_string();
        let top = parent.layers.last().cloned();
        let stubs = crate::lock(&self.mount_targets)
            .remove(container)
            .unwrap_or_default();
        let layer = tokio::task::spawn_blocking(move || {
            d.commit_upper(&id, top.as_deref(), allow_empty, &stubs)
        })
        .await??;
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
        let img = self.daemon.store_config(&config, layers)?;
        self.daemon.register_step(&img, &parent.id)?;
        Ok((img, layered))
    }

    async fn commit_config(
        &self,
        parent: &ImageState,
        config: ImageConfig,
    ) -> std::result::Result<ImageState, BackendError> {
        let img = self.daemon.store_config(&config, parent.layers.clone())?;
        self.daemon.register_step(&img, &parent.id)?;
        Ok(img)
    }

    async fn cache_mount(
        &self,
        req: &berth_builder::CacheMountRequest,
    ) -> std::result::Result<berth_builder::CacheMountLease, BackendError> {
        Ok(self.daemon.cache_mount_lease(req).await?)
    }

    async fn fetch(
        &self,
        url: &str,
        dir: &Path,
    ) -> std::result::Result<berth_builder::Fetched, BackendError> {
        Ok(crate::build_fetch::fetch(url, dir).await?)
    }

    async fn remove_container(&self, id: &str) {
        crate::lock(&self.mount_targets).remove(id);
        if let Err(e) = self.daemon.remove_container(id, true).await {
            tracing::warn!(container = id, "removing build container: {}", e.message);
        }
        self.daemon.release_build_container(id);
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
