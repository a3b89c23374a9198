//! Image builds (`POST /build`) over `berth_builder`, plus the other ways a container's
//! filesystem becomes data: `commit`, `diff` (changes) and `export`.
//!
//! Beside it: `build_backend.rs` (the daemon as the builder's backend), `build_context.rs`
//! (the uploaded context), `build_options.rs` (berth's `POST /build` extensions: secrets,
//! ssh, named contexts, outputs), `build_cache.rs` (the layer cache, `system df`,
//! `builder prune`), `build_cache_mounts.rs` (`RUN --mount=type=cache` directories),
//! `build_mounts.rs` (a step's mounts) and `build_fetch.rs` (`ADD <url>`).

use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use berth_api_types::container::ChangeItem;
use berth_api_types::{ApiError, ErrorDetail, ProgressMessage};
use berth_builder::ImageState;
use berth_image::config::ImageConfig;
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_services::{BuildOptions, ByteStream, CommitOptions};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::build_backend::BuildBackend;
use crate::build_context::unpack_context;
use crate::build_options;
use crate::images::ImageRecord;
use crate::model::{now_rfc3339, Status};
use crate::{internal, Daemon, Result};

/// Why a build ended without an image: the stream's error message, and a failed `RUN`'s
/// exit code.
#[derive(Debug, thiserror::Error)]
enum BuildFailure {
    #[error("creating build context: {0}")]
    ContextDir(std::io::Error),
    #[error(transparent)]
    Option(#[from] build_options::BuildOptionError),
    #[error(transparent)]
    Context(#[from] crate::build_context::ContextError),
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    /// The builder's error, with the Dockerfile line of the failing instruction.
    #[error("{}", step_message(.0))]
    Step(berth_builder::BuildError),
}

impl BuildFailure {
    fn code(&self) -> Option<i64> {
        match self {
            BuildFailure::Step(e) => e.code,
            _ => None,
        }
    }
}

fn step_message(e: &berth_builder::BuildError) -> String {
    match e.line {
        Some(l) if !e.message.starts_with("dockerfile parse error") => {
            format!("{} (Dockerfile line {l})", e.message)
        }
        _ => e.message.clone(),
    }
}

pub(crate) fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Daemon {
    pub(crate) fn builder_dir(&self) -> PathBuf {
        self.cfg.data_root.join("builder")
    }

    /// An image as the builder sees it.
    pub(crate) fn image_state(&self, name: &str) -> Result<ImageState> {
        let e = self.resolve_image(name)?;
        Ok(ImageState {
            id: e.id,
            config: e.config,
            layers: e.record.layers,
        })
    }

    pub(crate) fn store_config(
        &self,
        config: &ImageConfig,
        layers: Vec<String>,
    ) -> Result<ImageState> {
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
    pub(crate) fn register_step(&self, img: &ImageState, parent: &str) -> Result<()> {
        let existing: Option<ImageRecord> = self.store.image(&img.id)?;
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
        Ok(self.store.put_image(&img.id, &rec)?)
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
                .set_tag(&r.to_string(), &img.id, &now_rfc3339())?;
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
        let export = build_options::check_outputs(&opts.outputs)?;
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
            let work_lease = this.lease_work_dir(&work);
            let _writer = this.image_writer_lease();
            let res = this.run_build(body, &opts, &work, &tx).await;
            match res {
                Ok(img) if export => {
                    if let Err(e) = this.export_output(&img, &tx).await {
                        send(error_message(this.build_error(&e.message, &work), None)).await;
                    }
                }
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
                Err(e) => {
                    let code = e.code();
                    send(error_message(this.build_error(&e.to_string(), &work), code)).await
                }
            }
            // The client has its answer; the unpacked context goes after it.
            drop(tx);
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&work)).await;
            drop(work_lease);
        });
        Ok(crate::channel_stream(rx))
    }

    async fn run_build(
        self: &Arc<Self>,
        body: ByteStream,
        opts: &BuildOptions,
        work: &Path,
        tx: &mpsc::Sender<std::io::Result<Bytes>>,
    ) -> std::result::Result<ImageState, BuildFailure> {
        let context = work.join("context");
        std::fs::create_dir_all(&context).map_err(BuildFailure::ContextDir)?;
        // berth's extensions are checked before the context is read.
        let contexts_dir = work.join("contexts");
        let contexts = build_options::contexts(&opts.build_contexts, &contexts_dir)?;
        let secrets = build_options::secrets(&opts.secrets)?;
        let ssh = build_options::ssh_sockets(&opts.ssh)?;
        let reader = SyncIoBridge::new(StreamReader::new(body));
        let ctx2 = context.clone();
        let df_name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let named = (!opts.build_contexts.is_empty()).then(|| contexts_dir.clone());
        let dockerfile = tokio::task::spawn_blocking(move || {
            unpack_context(reader, &ctx2, &df_name, named.as_deref())
        })
        .await??;
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
        // Secret files live under the exec root (a tmpfs in a real deployment), never
        // under the data root.
        let secrets_dir = self.cfg.exec_root.join("builder");
        let bopts = berth_builder::Options {
            dockerfile,
            context,
            build_args: opts.build_args.clone(),
            labels: opts.labels.clone(),
            target: (!opts.target.is_empty()).then(|| opts.target.clone()),
            no_cache: opts.no_cache,
            contexts,
            secrets,
            ssh,
            work_dir: work.to_path_buf(),
            secrets_dir: secrets_dir.clone(),
            allow_insecure: self.cfg.builder_insecure,
        };
        let _ = std::fs::create_dir_all(&secrets_dir);
        let backend = BuildBackend::new(
            self.clone(),
            opts.cache_from
                .iter()
                .filter_map(|n| self.image_state(n).ok())
                .collect(),
            {
                let mut host = opts.step_host.clone();
                if host.network_mode.is_empty() {
                    host.network_mode = "default".to_string();
                }
                host
            },
        );
        let res = berth_builder::build(&backend, &bopts, &otx).await;
        drop(otx);
        let _ = forward.await;
        res.map_err(BuildFailure::Step)
    }

    /// `outputs=`: the final stage's files as a tar, sent as base64 chunks in
    /// `{"aux":{"berth.output":"..."}}` messages (no image is tagged).
    async fn export_output(
        self: &Arc<Self>,
        img: &ImageState,
        tx: &mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<()> {
        let backend = BuildBackend::new(
            self.clone(),
            Vec::new(),
            berth_api_types::container::HostConfig {
                network_mode: "none".into(),
                ..Default::default()
            },
        );
        let (cid, rootfs) = berth_builder::Backend::create_container(&backend, img, None)
            .await
            .map_err(internal)?;
        let tmp_dir = self.images.tmp_dir();
        let tar = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let mut f = tempfile::tempfile_in(tmp_dir)?;
            {
                let mut b = tar::Builder::new(std::io::BufWriter::new(&mut f));
                b.follow_symlinks(false);
                b.append_dir_all(".", &rootfs)?;
                b.into_inner()?.flush()?;
            }
            f.seek(SeekFrom::Start(0))?;
            Ok(f)
        })
        .await
        .map_err(internal);
        berth_builder::Backend::remove_container(&backend, &cid).await;
        let mut f = tar?.map_err(|e| internal(format!("exporting the build result: {e}")))?;
        let mut buf = vec![0u8; 48 * 1024];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).map_err(internal)?;
            if n == 0 {
                break;
            }
            let m = ProgressMessage {
                aux: Some(serde_json::json!({
                    "berth.output": base64::engine::general_purpose::STANDARD.encode(&buf[..n])
                })),
                ..Default::default()
            };
            let mut line = serde_json::to_vec(&m).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// `POST /commit`.
    pub async fn container_commit(self: &Arc<Self>, opts: CommitOptions) -> Result<String> {
        let _writer = self.image_writer_lease();
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
        let rootfs = self.runtime.rootfs(&id);
        let parent_top = base.layers.last().cloned();
        let shift =
            crate::userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config)
                .map(crate::userns_remap::IdMap::shift);
        let layer = tokio::task::spawn_blocking(move || -> Result<berth_image::LayerInfo> {
            berth_image::overlay::refresh_upper(&rootfs, &upper).map_err(internal)?;
            let mut tmp = tempfile::tempfile_in(this.images.tmp_dir()).map_err(internal)?;
            {
                let w = std::io::BufWriter::new(&mut tmp);
                berth_image::diff::write_layer_tar_shifted(&upper, w, shift.as_ref())
                    .map_err(internal)?;
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
        berth_image::overlay::refresh_upper(&self.runtime.rootfs(&c.id), &upper)
            .map_err(internal)?;
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
