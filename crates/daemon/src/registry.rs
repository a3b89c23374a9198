//! Pull, push, login and search: the daemon's side of `berth_registry`. Pulled images are
//! recorded exactly like loaded ones (image record, tags) plus their `RepoDigests`.

use std::sync::Arc;

use berth_api_types::{ApiError, ErrorKind, ProgressDetail, ProgressMessage};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_registry::pull::{pull_image, resolve, PulledImage, Resolved};
use berth_registry::{AuthConfig, DistributionCache, Platform, ProgressEvent, ProgressFn};
use berth_services::{ByteStream, PullOptions, PushOptions};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::images::{progress_bar, ImageRecord};
use crate::model::now_rfc3339;
use crate::{internal, Daemon, DaemonConfig, Result};

/// Why a pull for the daemon's own callers failed after it started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PullError {
    /// Reading the progress stream.
    #[error("{0}")]
    Stream(#[from] std::io::Error),
    /// The first error the progress stream reported, as the registry client wrote it.
    #[error("{0}")]
    Reported(String),
}

/// The distribution client and what it remembers about blobs.
pub(crate) struct Registry {
    client: berth_registry::Client,
    cache: DistributionCache,
}

impl Registry {
    pub(crate) fn new(cfg: &DaemonConfig) -> std::result::Result<Registry, berth_registry::Error> {
        let client = berth_registry::Client::new(berth_registry::RegistryConfig {
            insecure: cfg.insecure_registries.clone(),
            mirrors: cfg.registry_mirrors.clone(),
            certs_dir: Some(cfg.registry_certs_dir.clone()),
            chunk_size: cfg.registry_chunk_size,
            verify_loopback: cfg.registry_verify_loopback,
        })?;
        Ok(Registry {
            client,
            cache: DistributionCache::new(cfg.data_root.join("distribution")),
        })
    }
}

/// `RepoDigests` as Docker shows them (`busybox@sha256:...`).
pub(crate) fn familiar_digests(all: &[String]) -> Vec<String> {
    all.iter()
        .map(|d| {
            Reference::parse_named(d)
                .map(|r| r.familiar_string())
                .unwrap_or_else(|_| d.clone())
        })
        .collect()
}

/// Registry failures as API errors: unknown things are 404; refused credentials are 500 as
/// dockerd answers them for pull and push (a 401 makes the docker CLI prompt for a login).
pub(crate) fn registry_error(e: berth_registry::Error) -> ApiError {
    use berth_registry::Error as E;
    let kind = match &e {
        E::NotFound(_) | E::NoMatchingPlatform(_) => ErrorKind::NotFound,
        E::Invalid(_) => ErrorKind::InvalidParameter,
        _ => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

/// `X-Registry-Auth`: base64 JSON, decoded by Go's rules as dockerd does.
fn decode_auth(header: Option<&str>) -> Option<AuthConfig> {
    header.and_then(|h| {
        AuthConfig::from_header_with(h, |raw| berth_api_types::gojson::from_slice(raw).ok())
    })
}

fn to_message(ev: ProgressEvent) -> ProgressMessage {
    let detail = match (ev.current, ev.total) {
        (Some(c), Some(t)) => ProgressDetail {
            current: Some(c),
            total: Some(t),
        },
        _ => ProgressDetail::default(),
    };
    ProgressMessage {
        progress: match (ev.current, ev.total) {
            (Some(c), Some(t)) => Some(progress_bar(c, t)),
            _ => None,
        },
        progress_detail: ev.id.as_ref().map(|_| detail),
        status: Some(ev.status),
        id: ev.id,
        ..Default::default()
    }
}

/// An ordered progress channel: events from async tasks and blocking threads alike go
/// through one unbounded queue, forwarded in order to the response body.
struct Out {
    tx: mpsc::UnboundedSender<ProgressMessage>,
}

impl Out {
    fn new(body: mpsc::Sender<std::io::Result<Bytes>>) -> (Out, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<ProgressMessage>();
        let forward = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let mut line = serde_json::to_vec(&m).unwrap_or_default();
                line.push(b'\n');
                // The client leaving is not an error for the pull itself.
                let _ = body.send(Ok(Bytes::from(line))).await;
            }
        });
        (Out { tx }, forward)
    }

    fn send(&self, m: ProgressMessage) {
        let _ = self.tx.send(m);
    }

    fn progress_fn(&self) -> ProgressFn {
        let tx = self.tx.clone();
        Arc::new(move |ev| {
            let _ = tx.send(to_message(ev));
        })
    }
}

/// The thing a tagged or digested reference names: `1` or `sha256:...`.
fn ref_key(r: &Reference) -> String {
    r.digest()
        .map(|d| d.to_string())
        .or_else(|| r.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string())
}

/// The error a pull's progress stream reported on one line (`{"error": ...}` /
/// `{"errorDetail": {"message": ...}}`), if any.
pub(crate) fn stream_error(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("error")
        .or_else(|| v.get("errorDetail").and_then(|d| d.get("message")))
        .and_then(|e| e.as_str())
        .map(str::to_string)
}

impl Daemon {
    /// The image whose `RepoDigests` holds `repo@digest`.
    pub(crate) fn by_repo_digest(&self, r: &Reference) -> Result<Option<ImageRecord>> {
        let Some(d) = r.digest() else {
            return Ok(None);
        };
        let want = format!("{}@{d}", r.full_name());
        let all: Vec<ImageRecord> = self.store.images()?;
        Ok(all.into_iter().find(|rec| rec.repo_digests.contains(&want)))
    }

    /// Stores a pulled image's config and record, its repo digest and tag. Returns whether
    /// anything changed (Docker's "Downloaded newer image" versus "Image is up to date").
    fn record_pulled(
        &self,
        p: &PulledImage,
        tag: Option<&Reference>,
        repo_digest: String,
    ) -> Result<bool> {
        let had_config = self.images.has_blob(&p.id);
        let res = self.record_pulled_inner(p, tag, repo_digest);
        // A record the database refused (a full disk) leaves no config blob behind.
        if res.is_err()
            && !had_config
            && self
                .store
                .image::<ImageRecord>(p.id.as_str())
                .ok()
                .flatten()
                .is_none()
        {
            let _ = self.images.delete_blob(&p.id);
        }
        res
    }

    fn record_pulled_inner(
        &self,
        p: &PulledImage,
        tag: Option<&Reference>,
        repo_digest: String,
    ) -> Result<bool> {
        self.images
            .put_blob_expected(&p.config[..], &p.id)
            .map_err(internal)?;
        let id = p.id.to_string();
        let existing: Option<ImageRecord> = self.store.image(&id)?;
        let mut changed = existing.is_none() || p.downloaded;
        let mut rec = existing.unwrap_or_else(|| ImageRecord {
            id: id.clone(),
            layers: p.layers.iter().map(|l| l.chain_id.to_string()).collect(),
            size: p.layers.iter().map(|l| l.size as i64).sum(),
            loaded_at: now_rfc3339(),
            repo_digests: Vec::new(),
            ..Default::default()
        });
        add_repo_digest(&mut rec, repo_digest);
        self.store.put_image(&id, &rec)?;
        if let Some(t) = tag {
            let name = t.to_string();
            let before = self.store.tag_target(&name)?;
            if before.as_deref() != Some(id.as_str()) {
                changed = true;
                self.store.set_tag(&name, &id, &now_rfc3339())?;
            }
        }
        Ok(changed)
    }

    /// A pull for the daemon's own callers (a build's base image, the CRI), read to its end:
    /// `Err` when it could not start, `Ok(Err(message))` with the first error its progress
    /// stream reported (lines may span chunks).
    pub(crate) async fn pull_to_end(
        self: &Arc<Self>,
        opts: PullOptions,
    ) -> Result<std::result::Result<(), PullError>> {
        use futures_util::StreamExt;
        let mut stream = self.image_pull(opts).await?;
        let mut rest: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Ok(Err(PullError::Stream(e))),
            };
            rest.extend_from_slice(&chunk);
            while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = rest.drain(..=nl).collect();
                if let Some(e) = stream_error(&line) {
                    return Ok(Err(PullError::Reported(e)));
                }
            }
        }
        Ok(stream_error(&rest).map_or(Ok(()), |e| Err(PullError::Reported(e))))
    }

    pub async fn image_pull(self: &Arc<Self>, opts: PullOptions) -> Result<ByteStream> {
        let named = Reference::parse_named(&opts.from_image)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let has_ref = named.tag().is_some() || named.digest().is_some();
        let target: Option<Reference> = if has_ref {
            Some(named.clone())
        } else if opts.tag.is_empty() {
            None
        } else if opts.tag.starts_with("sha256:") {
            let d = Digest::parse(&opts.tag).map_err(|e| ApiError::invalid(e.to_string()))?;
            Some(named.with_digest(d))
        } else {
            Some(
                named
                    .with_tag(&opts.tag)
                    .map_err(|e| ApiError::invalid(e.to_string()))?,
            )
        };
        let platform = if opts.platform.is_empty() {
            Platform::host()
        } else {
            Platform::parse(&opts.platform).map_err(|e| ApiError::invalid(e.to_string()))?
        };
        let auth = decode_auth(opts.registry_auth.as_deref());
        // Docker Hub images come from the first mirror that has them, else from Docker Hub.
        if let (Some(r), "docker.io") = (&target, named.domain()) {
            for m in self.registry.client.mirror_repositories(named.path()).await {
                match resolve(&m, &ref_key(r), &r.familiar_string(), &platform).await {
                    Ok(resolved) => {
                        return Ok(self.spawn_pull(m, vec![(r.clone(), Some(resolved))], platform))
                    }
                    Err(e) => tracing::info!("mirror {} lacks {r}: {e}", m.base),
                }
            }
        }
        let repo = self
            .registry
            .client
            .repository(named.domain(), named.path(), auth.as_ref(), false)
            .await
            .map_err(registry_error)?;
        // Resolve before answering, so a missing image or a refused login is an HTTP error
        // status (as Docker answers) rather than a line in a 200 stream.
        let mut targets: Vec<(Reference, Option<Resolved>)> = Vec::new();
        match target {
            Some(r) => {
                let shown = r.familiar_string();
                let resolved = resolve(&repo, &ref_key(&r), &shown, &platform)
                    .await
                    .map_err(registry_error)?;
                targets.push((r, Some(resolved)));
            }
            None => {
                let tags = repo.tags().await.map_err(registry_error)?;
                for t in tags {
                    if let Ok(r) = named.with_tag(&t) {
                        targets.push((r, None));
                    }
                }
            }
        }
        Ok(self.spawn_pull(repo, targets, platform))
    }

    /// Streams the pull of `targets` (resolved already, or resolved on the way for `-a`).
    fn spawn_pull(
        self: &Arc<Self>,
        repo: berth_registry::Repository,
        targets: Vec<(Reference, Option<Resolved>)>,
        platform: Platform,
    ) -> ByteStream {
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        let writer = self.image_writer_lease();
        tokio::spawn(async move {
            let _writer = writer;
            let (out, forward) = Out::new(tx);
            for (r, resolved) in targets {
                let key = ref_key(&r);
                let resolved = match resolved {
                    Some(x) => x,
                    None => match resolve(&repo, &key, &r.familiar_string(), &platform).await {
                        Ok(x) => x,
                        Err(e) => {
                            out.send(ProgressMessage::error(e.to_string()));
                            break;
                        }
                    },
                };
                out.send(ProgressMessage {
                    status: Some(format!("Pulling from {}", r.path())),
                    id: Some(key.clone()),
                    ..Default::default()
                });
                // Concurrent pulls of one image take turns, so each blob is downloaded once:
                // the second finds every layer present.
                let turn = this.op_lock(&format!("pull:{}", resolved.manifest.config.digest));
                let _turn = turn.lock().await;
                let pulled = pull_image(
                    &repo,
                    &resolved.manifest,
                    &this.images,
                    &this.registry.cache,
                    out.progress_fn(),
                )
                .await;
                let pulled = match pulled {
                    Ok(p) => p,
                    Err(e) => {
                        out.send(ProgressMessage::error(e.to_string()));
                        break;
                    }
                };
                let repo_digest = format!("{}@{}", r.full_name(), resolved.digest);
                let recorded = {
                    let _g = this.image_lock.lock().await;
                    let tag = r.digest().is_none().then_some(&r);
                    this.record_pulled(&pulled, tag, repo_digest)
                };
                match recorded {
                    Ok(changed) => {
                        this.emit_image(pulled.id.as_str(), "pull", &r.familiar_string());
                        out.send(ProgressMessage::status(format!(
                            "Digest: {}",
                            resolved.digest
                        )));
                        out.send(ProgressMessage::status(if changed {
                            format!("Status: Downloaded newer image for {}", r.familiar_string())
                        } else {
                            format!("Status: Image is up to date for {}", r.familiar_string())
                        }));
                    }
                    Err(e) => {
                        out.send(ProgressMessage::error(e.message));
                        break;
                    }
                }
            }
            drop(out);
            let _ = forward.await;
        });
        crate::channel_stream(rx)
    }

    pub async fn image_push(self: &Arc<Self>, opts: PushOptions) -> Result<ByteStream> {
        let named =
            Reference::parse_named(&opts.name).map_err(|e| ApiError::invalid(e.to_string()))?;
        let repo_name = named.repository();
        let refs: Vec<Reference> = if named.tag().is_some() {
            vec![named.clone()]
        } else if !opts.tag.is_empty() {
            vec![named
                .with_tag(&opts.tag)
                .map_err(|e| ApiError::invalid(e.to_string()))?]
        } else {
            // Every local tag of the repository (`docker push -a`).
            let prefix = format!("{}:", repo_name);
            let mut v: Vec<Reference> = self
                .store
                .tags()?
                .into_iter()
                .filter(|(n, _, _)| n.starts_with(&prefix))
                .filter_map(|(n, _, _)| Reference::parse(&n).ok())
                .collect();
            v.sort_by_key(|r| r.to_string());
            v
        };
        if refs.is_empty() {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                named.familiar_name()
            )));
        }
        let mut items = Vec::new();
        for r in &refs {
            let e = self.resolve_image(&r.to_string()).map_err(|_| {
                ApiError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                ))
            })?;
            let id = Digest::parse(&e.id).map_err(internal)?;
            let config = self.images.get_blob(&id).map_err(internal)?;
            items.push((
                r.clone(),
                e.id.clone(),
                config,
                e.config.diff_ids().to_vec(),
            ));
        }
        let auth = decode_auth(opts.registry_auth.as_deref());
        let repo = self
            .registry
            .client
            .repository(named.domain(), named.path(), auth.as_ref(), true)
            .await
            .map_err(registry_error)?;
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            let (out, forward) = Out::new(tx);
            out.send(ProgressMessage::status(format!(
                "The push refers to repository [{}]",
                repo_name
            )));
            for (r, id, config, diff_ids) in items {
                let tag = r.tag().unwrap_or("latest").to_string();
                let res = berth_registry::push::push_image(
                    &repo,
                    &tag,
                    Bytes::from(config),
                    &diff_ids,
                    &this.images,
                    &this.registry.cache,
                    out.progress_fn(),
                )
                .await;
                match res {
                    Ok(p) => {
                        {
                            let _g = this.image_lock.lock().await;
                            if let Ok(Some(mut rec)) = this.store.image::<ImageRecord>(&id) {
                                add_repo_digest(
                                    &mut rec,
                                    format!("{}@{}", r.full_name(), p.digest),
                                );
                                let _ = this.store.put_image(&id, &rec);
                            }
                        }
                        this.emit_image(&id, "push", &r.familiar_string());
                        out.send(ProgressMessage::status(format!(
                            "{tag}: digest: {} size: {}",
                            p.digest, p.size
                        )));
                        out.send(ProgressMessage {
                            progress_detail: Some(ProgressDetail::default()),
                            aux: Some(serde_json::json!({
                                "Tag": tag,
                                "Digest": p.digest.to_string(),
                                "Size": p.size,
                            })),
                            ..Default::default()
                        });
                    }
                    Err(e) => {
                        out.send(ProgressMessage::error(e.to_string()));
                        break;
                    }
                }
            }
            drop(out);
            let _ = forward.await;
        });
        Ok(crate::channel_stream(rx))
    }

    pub async fn registry_login(&self, body: serde_json::Value) -> Result<serde_json::Value> {
        let mut auth: AuthConfig = berth_api_types::gojson::from_value(body)
            .map_err(|e| ApiError::invalid(format!("invalid auth configuration: {e}")))?;
        auth.fill_from_auth();
        let domain = server_domain(&auth.serveraddress);
        self.registry
            .client
            .login(&domain, &auth)
            .await
            .map_err(|e| match e {
                berth_registry::Error::Unauthorized(m) => ApiError::new(ErrorKind::Unauthorized, m),
                other => registry_error(other),
            })?;
        Ok(serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}))
    }

    pub async fn image_search(
        &self,
        term: String,
        limit: Option<usize>,
        registry_auth: Option<String>,
    ) -> Result<Vec<serde_json::Value>> {
        let (domain, q) = match term.split_once('/') {
            Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), term.clone()),
        };
        let limit = limit.filter(|l| *l > 0).unwrap_or(25);
        if limit > 100 {
            return Err(ApiError::invalid(format!(
                "limit {limit} is outside the range of [1, 100]"
            )));
        }
        let auth = decode_auth(registry_auth.as_deref());
        self.registry
            .client
            .search(&domain, &q, limit, auth.as_ref())
            .await
            .map_err(registry_error)
    }
}

/// Docker keeps one digest per repository: the newest replaces the one before.
fn add_repo_digest(rec: &mut ImageRecord, repo_digest: String) {
    if let Some((repo, _)) = repo_digest.split_once('@') {
        let prefix = format!("{repo}@");
        rec.repo_digests.retain(|d| !d.starts_with(&prefix));
    }
    rec.repo_digests.push(repo_digest);
}

/// The registry domain a `POST /auth` server address names: empty or Docker Hub's index
/// URL is `docker.io`; a URL is reduced to its host.
fn server_domain(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_of_a_pull() {
        assert_eq!(
            stream_error(br#"{"error":"boom","errorDetail":{"message":"boom"}}"#),
            Some("boom".into())
        );
        assert_eq!(
            stream_error(br#"{"errorDetail":{"message":"detail only"}}"#),
            Some("detail only".into())
        );
        assert_eq!(stream_error(br#"{"status":"Pull complete"}"#), None);
    }

    #[test]
    fn server_addresses() {
        assert_eq!(server_domain(""), "docker.io");
        assert_eq!(server_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_domain("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_domain("http://localhost:5000/v2/"), "localhost:5000");
    }

    #[test]
    fn one_digest_per_repository() {
        let mut rec = ImageRecord {
            id: "sha256:x".into(),
            layers: vec![],
            size: 0,
            loaded_at: String::new(),
            repo_digests: vec![],
            ..Default::default()
        };
        let d1 = format!("h:5000/a@{}", Digest::sha256_of(b"1"));
        let d2 = format!("h:5000/a@{}", Digest::sha256_of(b"2"));
        let d3 = format!("h:5000/b@{}", Digest::sha256_of(b"3"));
        add_repo_digest(&mut rec, d1);
        add_repo_digest(&mut rec, d3.clone());
        add_repo_digest(&mut rec, d2.clone());
        assert_eq!(rec.repo_digests, vec![d3, d2]);
        assert_eq!(
            familiar_digests(&[format!(
                "docker.io/library/busybox@{}",
                Digest::sha256_of(b"1")
            )]),
            vec![format!("busybox@{}", Digest::sha256_of(b"1"))]
        );
    }
}
