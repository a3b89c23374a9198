//! Pulling an image into the image store.
//!
//! Manifests are resolved first (index → platform → image manifest), then the config, then
//! layers: up to three blobs download at once into temp files under the store's `tmp/`,
//! each hashed as it streams and checked against its digest, and unpacked as it arrives
//! (see `follow`); each verified download is kept as its layer's blob (no uncompressed copy
//! of the tar), and layers are registered in layer order as soon as a layer and the one
//! below it are ready. Nothing is registered here: the caller records the image once
//! everything is in place, so a failed pull leaves no image, and the layers this pull
//! unpacked are removed again.

use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::config::ImageConfig;
use berth_image::digest::chain_ids;
use berth_image::store::PreparedLayer;
use berth_image::{Digest, ImageStore, LayerInfo};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::cache::{BlobRecord, DistributionCache};
use crate::client::Repository;
use crate::error::{Error, Result};
use crate::follow::{EndGuard, Follow, FollowReader};
use crate::manifest::{
    check_layer_type, select_platform, Descriptor, ImageManifest, Manifest, Platform,
};
use crate::progress::{ProgressEvent, ProgressFn, Throttle};

/// Downloads at once, like Docker's `max-concurrent-downloads` default.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 3;
const MAX_ATTEMPTS: u32 = 3;

/// A manifest resolved for one platform.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the document the reference names (the index for multi-platform images):
    /// what `RepoDigests` records and `Digest:` shows.
    pub digest: Digest,
    pub manifest: ImageManifest,
}

/// What a pull produced; the caller stores `config` under `id` and records the image.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub id: Digest,
    pub config: Bytes,
    /// Bottom first.
    pub layers: Vec<LayerInfo>,
    /// Whether any layer had to be downloaded.
    pub downloaded: bool,
}

/// Fetches the manifest `reference` (a tag or `sha256:` digest) names and picks `platform`
/// from an index.
pub async fn resolve(
    repo: &Repository,
    reference: &str,
    shown: &str,
    platform: &Platform,
) -> Result<Resolved> {
    let (bytes, media_type, digest) = repo.manifest(reference, shown).await?;
    match Manifest::parse(&bytes, &media_type)? {
        Manifest::Image(manifest) => Ok(Resolved { digest, manifest }),
        Manifest::Index(entries) => {
            let chosen = select_platform(&entries, platform)?.clone();
            let (bytes, media_type, _) = repo.manifest(chosen.digest.as_str(), shown).await?;
            match Manifest::parse(&bytes, &media_type)? {
                Manifest::Image(manifest) => Ok(Resolved { digest, manifest }),
                Manifest::Index(_) => Err(Error::InvalidManifest(
                    "an index entry points at another index".into(),
                )),
            }
        }
    }
}

fn short(d: &Digest) -> String {
    d.short_id().to_string()
}

/// Pulls the config and layers of `manifest` into `store`.
pub async fn pull_image(
    repo: &Repository,
    manifest: &ImageManifest,
    store: &ImageStore,
    cache: &DistributionCache,
    progress: ProgressFn,
) -> Result<PulledImage> {
    for l in &manifest.layers {
        check_layer_type(l)?;
    }
    let started = Instant::now();
    let config_bytes = repo.blob_bytes(&manifest.config.digest).await?;
    let config = ImageConfig::from_slice(&config_bytes)?;
    let diff_ids = config.diff_ids().to_vec();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::InvalidManifest(format!(
            "layers from manifest don't match image configuration ({} layers, {} diff ids)",
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let chains = chain_ids(&diff_ids);
    let present: Vec<bool> = chains.iter().map(|c| store.has_layer(c)).collect();
    for (i, l) in manifest.layers.iter().enumerate() {
        let status = if present[i] {
            "Already exists"
        } else {
            "Pulling fs layer"
        };
        progress(ProgressEvent::status(short(&l.digest), status));
    }

    let sem = Arc::new(Semaphore::new(MAX_CONCURRENT_DOWNLOADS));
    // Layer directories do not depend on the layers below, so layers unpack as soon as they
    // arrive, a few at once; only naming them by chain id (commit) goes in order.
    let unpackers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, MAX_CONCURRENT_DOWNLOADS);
    let unpack_sem = Arc::new(Semaphore::new(unpackers));
    let cancelled = Arc::new(AtomicBool::new(false));
    let mut downloads = Vec::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        if present[i] {
            downloads.push(None);
            continue;
        }
        let (repo, desc, store, progress, sem, unpack_sem, diff_id, cancelled) = (
            repo.clone(),
            l.clone(),
            store.clone(),
            progress.clone(),
            sem.clone(),
            unpack_sem.clone(),
            diff_ids[i].clone(),
            cancelled.clone(),
        );
        downloads.push(Some(tokio::spawn(async move {
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    progress(ProgressEvent::status(short(&desc.digest), "Waiting"));
                    sem.acquire_owned()
                        .await
                        .map_err(|_| Error::Invalid("download queue closed".into()))?
                }
            };
            let t = Instant::now();
            let tmp = store.tmp_dir();
            let file = tempfile::Builder::new()
                .prefix("pull-")
                .tempfile_in(&tmp)
                .map_err(|e| Error::io(format!("creating temp file in {}", tmp.display()), e))?;
            let reader_file = file
                .reopen()
                .map_err(|e| Error::io("opening temp file", e))?;
            let follow = Follow::new();
            // The download runs beside the unpacking that reads it (see `follow`).
            let dl = {
                let (repo, desc, progress, follow) =
                    (repo.clone(), desc.clone(), progress.clone(), follow.clone());
                tokio::spawn(async move {
                    let r = download(&repo, &desc, file, &progress, follow).await;
                    drop(permit);
                    r
                })
            };
            // Aborting this layer's task (a failed or dropped pull) stops its download too.
            let _stop_download = AbortAll(vec![dl.abort_handle()]);
            let unpack = |reader: Box<dyn Read + Send>, gate: Option<Arc<Follow>>| {
                let (store, progress, diff_id, cancelled, unpack_sem) = (
                    store.clone(),
                    progress.clone(),
                    diff_id.clone(),
                    cancelled.clone(),
                    unpack_sem.clone(),
                );
                let (id, size, digest) = (short(&desc.digest), desc.size, desc.digest.clone());
                async move {
                    let unpacking = unpack_sem
                        .acquire_owned()
                        .await
                        .map_err(|_| Error::Invalid("unpack queue closed".into()))?;
                    // The permit lives in the blocking closure: a failed pull waits for every
                    // running unpack by taking all permits, and a cancelled one cleans up
                    // before giving its permit back, so nothing is left in staging when the
                    // pull returns.
                    tokio::task::spawn_blocking(move || -> Result<PreparedLayer> {
                        let _unpacking = unpacking;
                        let t = Instant::now();
                        let reader = ProgressReader {
                            inner: std::io::BufReader::with_capacity(256 * 1024, reader),
                            done: 0,
                            total: size,
                            id,
                            progress,
                            throttle: Throttle::new(),
                            gate,
                        };
                        let prepared = store.prepare_layer_without_tar(reader, Some(&diff_id));
                        if cancelled.load(Ordering::SeqCst) {
                            drop(prepared);
                            return Err(Error::Invalid("pull cancelled".into()));
                        }
                        tracing::debug!(
                            layer = %digest,
                            bytes = size,
                            unpack_ms = t.elapsed().as_millis(),
                            "layer unpacked"
                        );
                        prepared.map_err(Error::from)
                    })
                    .await
                    .map_err(|e| Error::Invalid(format!("extraction task failed: {e}")))?
                }
            };
            let streamed = unpack(
                Box::new(FollowReader::new(reader_file, follow.clone())),
                Some(follow.clone()),
            )
            .await;
            // The download's own failure is the one to report.
            let file = dl
                .await
                .map_err(|e| Error::Invalid(format!("download task failed: {e}")))??;
            tracing::debug!(
                layer = %desc.digest,
                download_ms = t.elapsed().as_millis(),
                "layer downloaded"
            );
            let mut prepared = match streamed {
                // A download that started over voided what the unpacker read: once more,
                // from the finished file.
                Err(_) if follow.restarted() => {
                    let f = file.reopen().map_err(|e| Error::io("reopening layer", e))?;
                    unpack(Box::new(f), None).await?
                }
                other => other?,
            };
            // The verified download is the layer's blob (no uncompressed copy is written):
            // synced here, beside the other layers' work, under an unpack permit so that a
            // failed pull waits for it too.
            let permit = unpack_sem
                .acquire_owned()
                .await
                .map_err(|_| Error::Invalid("unpack queue closed".into()))?;
            let digest = desc.digest.clone();
            tokio::task::spawn_blocking(move || -> Result<PreparedLayer> {
                let _permit = permit;
                let t = Instant::now();
                prepared.keep_blob(file, digest.clone())?;
                if cancelled.load(Ordering::SeqCst) {
                    // Cleaned up before the permit goes back (see above).
                    drop(prepared);
                    return Err(Error::Invalid("pull cancelled".into()));
                }
                tracing::debug!(layer = %digest, sync_ms = t.elapsed().as_millis(), "layer synced");
                Ok(prepared)
            })
            .await
            .map_err(|e| Error::Invalid(format!("extraction task failed: {e}")))?
        })));
    }
    // Aborts the downloads still running when the pull fails or is dropped.
    let _abort = AbortAll(
        downloads
            .iter()
            .flatten()
            .map(|h| h.abort_handle())
            .collect(),
    );

    let mut layers = Vec::new();
    let mut created: Vec<Digest> = Vec::new();
    let result: Result<()> = async {
        for (i, l) in manifest.layers.iter().enumerate() {
            let Some(handle) = downloads[i].take() else {
                layers.push(store.layer_info(&chains[i])?);
                continue;
            };
            let prepared = handle
                .await
                .map_err(|e| Error::Invalid(format!("download task failed: {e}")))??;
            let parent = if i == 0 {
                None
            } else {
                Some(chains[i - 1].clone())
            };
            let existed = store.has_layer(&chains[i]);
            let st = store.clone();
            let info =
                tokio::task::spawn_blocking(move || st.commit_layer(parent.as_ref(), prepared))
                    .await
                    .map_err(|e| Error::Invalid(format!("extraction task failed: {e}")))??;
            if !existed {
                created.push(info.chain_id.clone());
            }
            cache.add(
                &info.diff_id,
                BlobRecord {
                    digest: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    source: format!("{}/{}", repo.host, repo.name),
                },
            );
            progress(ProgressEvent::status(short(&l.digest), "Pull complete"));
            layers.push(info);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        cancelled.store(true, Ordering::SeqCst);
        for h in downloads.iter().flatten() {
            h.abort();
        }
        for h in downloads.into_iter().flatten() {
            let _ = h.await;
        }
        let _ = unpack_sem
            .acquire_many(u32::try_from(unpackers).unwrap_or(u32::MAX))
            .await;
        for c in created.iter().rev() {
            if let Err(err) = store.remove_layer(c) {
                tracing::warn!("removing layer {c} of a failed pull: {err}");
            }
        }
        return Err(e);
    }
    tracing::debug!(
        layers = layers.len(),
        total_ms = started.elapsed().as_millis(),
        "image pulled"
    );
    Ok(PulledImage {
        id: manifest.config.digest.clone(),
        config: config_bytes,
        layers,
        downloaded: present.iter().any(|p| !p),
    })
}

/// Aborts its tasks when dropped.
struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Counts bytes read for the `Extracting` bar.
struct ProgressReader<R> {
    inner: R,
    done: u64,
    total: u64,
    id: String,
    progress: ProgressFn,
    throttle: Throttle,
    /// While the layer still downloads, its `Downloading` bar is the one shown (as dockerd's
    /// order has it): `Extracting` waits for the download's end.
    gate: Option<Arc<Follow>>,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let shown = self.gate.as_ref().is_none_or(|g| g.complete());
        if shown && self.throttle.ready(n == 0) && (n > 0 || self.done > 0) {
            (self.progress)(ProgressEvent::bytes(
                self.id.clone(),
                "Extracting",
                self.done.min(self.total),
                self.total,
            ));
        }
        Ok(n)
    }
}

/// Downloads one blob into `file` (a temp file in the store), verifying size and digest, and
/// tells `follow` how far it got and how it ended. A dropped connection is retried (with
/// backoff) from where it stopped when the registry honours `Range`, otherwise from the start.
async fn download(
    repo: &Repository,
    desc: &Descriptor,
    file: tempfile::NamedTempFile,
    progress: &ProgressFn,
    follow: Arc<Follow>,
) -> Result<tempfile::NamedTempFile> {
    let end = EndGuard(follow.clone());
    let id = short(&desc.digest);
    // Unbuffered: what `follow` counts must be in the file for its reader.
    let mut out = file
        .reopen()
        .map_err(|e| Error::io("opening temp file", e))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut attempt = 0;
    let mut throttle = Throttle::new();
    loop {
        attempt += 1;
        let outcome: Result<()> = async {
            let (resp, partial) = repo.blob(&desc.digest, written).await?;
            if written > 0 && !partial {
                // The registry ignored the range: start over.
                follow.restart();
                out.set_len(0)
                    .map_err(|e| Error::io("truncating layer", e))?;
                out.rewind().map_err(|e| Error::io("truncating layer", e))?;
                hasher = Sha256::new();
                written = 0;
            }
            let url = repo.url(&format!("/v2/{}/blobs/{}", repo.name, desc.digest));
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::transport("Get", &url, &e))?;
                hasher.update(&chunk);
                out.write_all(&chunk)
                    .map_err(|e| Error::io("writing layer", e))?;
                written += chunk.len() as u64;
                follow.advance(chunk.len() as u64);
                if written > desc.size {
                    return Err(Error::blob_mismatch(&desc.digest));
                }
                if throttle.ready(written == desc.size) {
                    progress(ProgressEvent::bytes(
                        id.clone(),
                        "Downloading",
                        written,
                        desc.size,
                    ));
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) if written == desc.size => break,
            Ok(()) => {
                if attempt >= MAX_ATTEMPTS {
                    return Err(Error::Transport {
                        method: "Get".into(),
                        url: repo.url(&format!("/v2/{}/blobs/{}", repo.name, desc.digest)),
                        message: format!("unexpected EOF after {written} of {} bytes", desc.size),
                    });
                }
            }
            Err(e @ Error::Transport { .. }) if attempt < MAX_ATTEMPTS => {
                tracing::info!("retrying download of {} after: {e}", desc.digest);
            }
            Err(e) => return Err(e),
        }
        progress(ProgressEvent::status(
            id.clone(),
            format!("Retrying in {} seconds", 1u64 << (attempt - 1)),
        ));
        tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
    }
    progress(ProgressEvent::status(id.clone(), "Verifying Checksum"));
    let got = Digest::from_hex(&hex::encode(hasher.finalize()))?;
    if got != desc.digest {
        return Err(Error::blob_mismatch(&desc.digest));
    }
    progress(ProgressEvent::status(id, "Download complete"));
    end.0.finish(Ok(()));
    Ok(file)
}
