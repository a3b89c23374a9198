//! Pushing an image: layers (a pulled layer's gzip download as it is, others compressed with
//! gzip from the kept layer tars, or found again through the distribution cache), the config,
//! then the manifest under the tag.

use std::io::{BufReader, BufWriter};
use std::sync::Arc;

use berth_image::store::Compression;
use berth_image::{Digest, ImageStore};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cache::{BlobRecord, DistributionCache};
use crate::client::Repository;
use crate::error::{Error, Result};
use crate::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::progress::{ProgressEvent, ProgressFn, Throttle};

/// Uploads at once, like Docker's `max-concurrent-uploads` default.
pub const MAX_CONCURRENT_UPLOADS: usize = 5;

/// The pushed manifest.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub size: usize,
}

/// Pushes the image whose config is `config` (layers by diff id, bottom first) as `tag`.
pub async fn push_image(
    repo: &Repository,
    tag: &str,
    config: Bytes,
    diff_ids: &[Digest],
    store: &ImageStore,
    cache: &DistributionCache,
    progress: ProgressFn,
) -> Result<Pushed> {
    for d in diff_ids {
        progress(ProgressEvent::status(d.short_id(), "Preparing"));
    }
    let sem = Arc::new(Semaphore::new(MAX_CONCURRENT_UPLOADS));
    let mut tasks = Vec::new();
    for (d, chain) in diff_ids
        .iter()
        .zip(berth_image::digest::chain_ids(diff_ids))
    {
        let (repo, d, store, cache, progress, sem) = (
            repo.clone(),
            d.clone(),
            store.clone(),
            cache.clone(),
            progress.clone(),
            sem.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    progress(ProgressEvent::status(d.short_id(), "Waiting"));
                    sem.acquire_owned()
                        .await
                        .map_err(|_| Error::Invalid("upload queue closed".into()))?
                }
            };
            let r = push_layer(&repo, (&chain, &d), &store, &cache, &progress).await;
            drop(permit);
            r
        }));
    }
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let mut layers = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(rec)) => layers.push(rec),
            Ok(Err(e)) => {
                aborts.iter().for_each(|a| a.abort());
                return Err(e);
            }
            Err(e) => {
                aborts.iter().for_each(|a| a.abort());
                return Err(Error::Invalid(format!("upload task failed: {e}")));
            }
        }
    }

    let config_digest = Digest::sha256_of(&config);
    if !repo.blob_exists(&config_digest).await? {
        let loc = repo
            .start_upload(None)
            .await?
            .ok_or_else(|| Error::Registry("registry sent no upload location".into()))?;
        repo.finish_upload(&loc, &config_digest, Some(config.clone()))
            .await?;
    }

    // Docker schema 2 when every layer is gzip (what docker itself pushes); OCI otherwise.
    let docker = layers
        .iter()
        .all(|l| l.media_type == DOCKER_LAYER_GZIP || l.media_type == OCI_LAYER_GZIP);
    let (mt, config_mt, gzip_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let layer_json: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let media_type = if l.media_type.ends_with("gzip") {
                gzip_mt
            } else {
                l.media_type.as_str()
            };
            json!({"mediaType": media_type, "size": l.size, "digest": l.digest})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "size": config.len(), "digest": config_digest},
        "layers": layer_json,
    });
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Invalid(format!("encoding manifest: {e}")))?;
    let digest = Digest::sha256_of(&body);
    let size = body.len();
    repo.put_manifest(tag, mt, Bytes::from(body)).await?;
    Ok(Pushed { digest, size })
}

/// One layer: reuse a blob the registry has (or can mount), else gzip and upload it.
async fn push_layer(
    repo: &Repository,
    (chain_id, diff_id): (&Digest, &Digest),
    store: &ImageStore,
    cache: &DistributionCache,
    progress: &ProgressFn,
) -> Result<BlobRecord> {
    let id = diff_id.short_id().to_string();
    let here = format!("{}/{}", repo.host, repo.name);
    for rec in cache.get(diff_id) {
        if rec.source == here && repo.blob_exists(&rec.digest).await? {
            progress(ProgressEvent::status(&id, "Layer already exists"));
            return Ok(rec);
        }
    }
    for rec in cache.get(diff_id) {
        let Some(from) = rec.source.strip_prefix(&format!("{}/", repo.host)) else {
            continue;
        };
        if from == repo.name {
            continue;
        }
        if let Ok(None) = repo.start_upload(Some((&rec.digest, from))).await {
            progress(ProgressEvent::status(&id, format!("Mounted from {from}")));
            let rec = BlobRecord {
                source: here.clone(),
                ..rec
            };
            cache.add(diff_id, rec.clone());
            return Ok(rec);
        }
    }

    let (st, c, d) = (store.clone(), chain_id.clone(), diff_id.clone());
    let GzipBlob {
        file: upload,
        temp: _compressed,
        digest,
        size,
    } = tokio::task::spawn_blocking(move || gzip_blob(&st, &c, &d))
        .await
        .map_err(|e| Error::Invalid(format!("compression task failed: {e}")))??;
    let rec = BlobRecord {
        digest: digest.clone(),
        size,
        media_type: DOCKER_LAYER_GZIP.to_string(),
        source: here,
    };
    if repo.blob_exists(&digest).await? {
        progress(ProgressEvent::status(&id, "Layer already exists"));
        cache.add(diff_id, rec.clone());
        return Ok(rec);
    }
    let loc = repo
        .start_upload(None)
        .await?
        .ok_or_else(|| Error::Registry("registry sent no upload location".into()))?;
    let chunk = repo.client().config().chunk_size.unwrap_or(0);
    let loc = if chunk > 0 && size > chunk {
        upload_chunked(repo, &loc, upload, size, chunk, &id, progress).await?
    } else {
        upload_whole(repo, &loc, upload, size, &id, progress).await?
    };
    repo.finish_upload(&loc, &digest, None).await?;
    progress(ProgressEvent::status(&id, "Pushed"));
    cache.add(diff_id, rec.clone());
    Ok(rec)
}

/// A layer as the gzip blob to upload.
struct GzipBlob {
    /// Open at its start.
    file: std::fs::File,
    /// The temp file it was compressed into (removed when dropped); `None`: the kept blob.
    temp: Option<tempfile::NamedTempFile>,
    digest: Digest,
    size: u64,
}

/// The gzip blob of the layer `chain_id` (diff id `diff_id`): a pulled layer's gzip download as it is, else the
/// layer's tar (read through the store, whichever blob keeps it) compressed with gzip into a
/// temp file in the store's `tmp/`.
fn gzip_blob(store: &ImageStore, chain_id: &Digest, diff_id: &Digest) -> Result<GzipBlob> {
    let kept = store.layer_blob(chain_id, diff_id)?;
    if kept.compression == Compression::Gzip {
        let file = store.open_blob(&kept.digest)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading layer {}", kept.digest), e))?
            .len();
        return Ok(GzipBlob {
            file,
            temp: None,
            digest: kept.digest,
            size,
        });
    }
    let src = store.open_kept_tar(kept)?;
    let tmp = store.tmp_dir();
    let temp = tempfile::Builder::new()
        .prefix("push-")
        .tempfile_in(&tmp)
        .map_err(|e| Error::io(format!("creating temp file in {}", tmp.display()), e))?;
    let out = berth_image::digest::HashingWriter::new(BufWriter::new(
        temp.reopen()
            .map_err(|e| Error::io("opening temp file", e))?,
    ));
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    std::io::copy(&mut BufReader::with_capacity(256 * 1024, src), &mut gz)
        .map_err(|e| Error::io("compressing layer", e))?;
    let out = gz.finish().map_err(|e| Error::io("compressing layer", e))?;
    let (digest, size, w) = out.finish();
    w.into_inner()
        .map_err(|e| Error::io("compressing layer", e.into_error()))?;
    let file = temp
        .reopen()
        .map_err(|e| Error::io("opening temp file", e))?;
    Ok(GzipBlob {
        file,
        temp: Some(temp),
        digest,
        size,
    })
}

/// One streamed `PATCH` with the whole blob; returns the location to commit at.
async fn upload_whole(
    repo: &Repository,
    loc: &str,
    file: std::fs::File,
    size: u64,
    id: &str,
    progress: &ProgressFn,
) -> Result<String> {
    let f = tokio::fs::File::from_std(file);
    let prog = progress.clone();
    let pid = id.to_string();
    let mut sent = 0u64;
    let mut throttle = Throttle::new();
    let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).map(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
            if throttle.ready(sent == size) {
                prog(ProgressEvent::bytes(pid.clone(), "Pushing", sent, size));
            }
        }
        chunk
    });
    repo.patch_upload(loc, reqwest::Body::wrap_stream(stream), None)
        .await
}

/// `PATCH`es the blob in `chunk`-byte pieces with `Content-Range: start-end`, each to the
/// location the previous one returned; returns the location to commit at.
async fn upload_chunked(
    repo: &Repository,
    loc: &str,
    file: std::fs::File,
    size: u64,
    chunk: u64,
    id: &str,
    progress: &ProgressFn,
) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::from_std(file);
    let mut loc = loc.to_string();
    let mut start = 0u64;
    let mut throttle = Throttle::new();
    let mut chunks = 0u64;
    while start < size {
        let len = chunk.min(size - start);
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::io("reading temp file", e))?;
        let buf_len = usize::try_from(len).map_err(|_| {
            Error::io(
                "reading temp file",
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            )
        })?;
        let mut buf = vec![0u8; buf_len];
        f.read_exact(&mut buf)
            .await
            .map_err(|e| Error::io("reading temp file", e))?;
        loc = repo
            .patch_upload(
                &loc,
                reqwest::Body::from(buf),
                Some((start, start + len - 1)),
            )
            .await?;
        start += len;
        chunks += 1;
        if throttle.ready(start == size) {
            progress(ProgressEvent::bytes(id.to_string(), "Pushing", start, size));
        }
    }
    tracing::debug!("uploaded layer {id} ({size} bytes) in {chunks} chunks of {chunk}");
    Ok(loc)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn layer_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/hostname", &b"box\n"[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    fn gunzip(mut f: impl Read) -> Vec<u8> {
        let mut gz = Vec::new();
        f.read_to_end(&mut gz).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn compress(tar: &[u8], gzip: bool) -> Vec<u8> {
        if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        } else {
            zstd::stream::encode_all(tar, 3).unwrap()
        }
    }

    #[test]
    fn a_kept_uncompressed_tar_is_compressed_for_the_push() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let tar = layer_tar();
        let diff_id = store.put_blob(&tar).unwrap();
        let blob = gzip_blob(&store, &diff_id, &diff_id).unwrap();
        assert!(blob.temp.is_some());
        assert_ne!(blob.digest, diff_id);
        assert_eq!(gunzip(blob.file), tar);
        drop(blob.temp);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn a_pulled_gzip_layer_goes_as_it_is_and_a_zstd_one_as_gzip() {
        let tar = layer_tar();
        let diff_id = Digest::sha256_of(&tar);
        for gzip in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let store = ImageStore::open(dir.path()).unwrap();
            let download = compress(&tar, gzip);
            let mut file = tempfile::NamedTempFile::new_in(store.tmp_dir()).unwrap();
            file.write_all(&download).unwrap();
            let mut p = store
                .prepare_layer_without_tar(&download[..], Some(&diff_id))
                .unwrap();
            p.keep_blob(file, Digest::sha256_of(&download)).unwrap();
            store.commit_layer(None, p).unwrap();
            let blob = gzip_blob(&store, &diff_id, &diff_id).unwrap();
            if gzip {
                assert!(blob.temp.is_none(), "the download itself");
                assert_eq!(blob.digest, Digest::sha256_of(&download));
                assert_eq!(blob.size, download.len() as u64);
            } else {
                assert!(blob.temp.is_some(), "recompressed");
            }
            assert_eq!(gunzip(blob.file), tar);
        }
    }
}
