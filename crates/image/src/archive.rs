//! Image archives: `docker load` / `docker save` / `docker import`.
//!
//! [`load`] accepts the three layouts found in the wild:
//! - legacy `docker save` (`manifest.json` + `<id>/layer.tar`, often with symlinks
//!   between duplicate layers),
//! - Docker 25+ (`manifest.json` *and* an OCI layout with `blobs/sha256/...`),
//! - plain OCI image layout archives (`oci-layout`, `index.json`), with tags from the
//!   `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations.
//!
//! The outer archive is untrusted: it is extracted into a staging directory with the
//! same path rules as layers, and paths named by its JSON files are resolved inside
//! that directory (symlinks followed but scoped to it, like Docker's
//! `FollowSymlinkInScope`). Every layer's diff id is checked against the config's
//! `rootfs.diff_ids` before the layer is registered; an image is only returned once all
//! its layers and its config are in the store.
//!
//! [`save`] writes Docker's 25+ combined layout, which both `docker load` (old and new)
//! and OCI tools accept. Layers are written uncompressed, byte-identical to what was
//! loaded or pulled, so diff ids and image ids survive save → load.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::config::{host_platform, ContainerConfig, History, ImageConfig, RootFs, StrSlice};
use crate::digest::{child_chain_id, Digest};
use crate::error::{Error, Result};
use crate::oci::{Descriptor, Platform};
use crate::reference::Reference;
use crate::store::{decompress, ImageStore, LayerInfo};
use crate::unpack::{open_in_root, resolve_in_root, unpack, UnpackOptions};

pub use crate::oci::media_types;

const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
const PROGRESS_STEP: u64 = 512 * 1024;

/// Progress while loading, enough for Docker's
/// `{"status":"Loading layer","progressDetail":{"current","total"},"id":...}` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadEvent {
    /// `current` of `total` bytes of a layer file read; `id` is the short (12 hex) diff id.
    LoadingLayer {
        id: String,
        current: u64,
        total: u64,
    },
    /// The layer was already in the store and was not unpacked again.
    LayerExists { id: String },
}

/// An image that was fully stored by [`load`] or [`import`].
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// Image id: digest of the config bytes.
    pub id: Digest,
    pub config: ImageConfig,
    /// The exact config bytes (also stored as a blob named by `id`).
    pub config_bytes: Vec<u8>,
    /// Familiar `name:tag` strings, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
}

impl LoadedImage {
    /// Chain id of the top layer (`None` for an image without layers).
    pub fn top_layer(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

/// One image to write with [`save`].
#[derive(Clone, Debug)]
pub struct SaveItem {
    pub id: Digest,
    pub config_bytes: Vec<u8>,
    /// Familiar or full `name:tag` strings; may be empty (saved by id).
    pub repo_tags: Vec<String>,
    /// Diff ids bottom first (as in the config's `rootfs.diff_ids`).
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciManifestOrIndex {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Counts bytes read and reports them, at most every 512 KiB and once at the end.
struct ProgressReader<'a, R> {
    inner: R,
    id: String,
    total: u64,
    current: u64,
    reported: u64,
    cb: &'a mut dyn FnMut(LoadEvent),
}

impl<R: Read> ProgressReader<'_, R> {
    fn emit(&mut self) {
        self.reported = self.current;
        (self.cb)(LoadEvent::LoadingLayer {
            id: self.id.clone(),
            current: self.current,
            total: self.total,
        });
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if (n == 0 && self.reported != self.current)
            || self.current - self.reported >= PROGRESS_STEP
        {
            self.emit();
        }
        Ok(n)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(root: &Path, rel: &str) -> Result<(T, Vec<u8>)> {
    let p = resolve_in_root(root, rel)?;
    let bytes = fs::read(&p).map_err(|e| Error::io("read", &p, e))?;
    let v = serde_json::from_slice(&bytes).map_err(|e| Error::json(rel, e))?;
    Ok((v, bytes))
}

fn blob_rel(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn read_blob_verified(root: &Path, d: &Digest) -> Result<Vec<u8>> {
    let p = resolve_in_root(root, &blob_rel(d))?;
    let bytes = fs::read(&p).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::InvalidArchive(format!("blob {d} missing from archive"))
        } else {
            Error::io("read", &p, e)
        }
    })?;
    let actual = Digest::sha256_of(&bytes);
    if actual != *d {
        return Err(Error::DigestMismatch {
            what: format!("archive blob {d}"),
            expected: d.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn normalize_tag(tag: &str) -> Result<String> {
    let r = Reference::parse(tag)?;
    if r.digest().is_some() {
        return Err(Error::InvalidArchive(format!(
            "repo tag {tag} must not contain a digest"
        )));
    }
    Ok(r.familiar_string())
}

/// Load a `docker save` or OCI layout archive (optionally gzip/zstd/xz/bzip2
/// compressed) into `store`. Returns every image it contained; the caller records them.
pub fn load(
    reader: impl Read,
    store: &ImageStore,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<Vec<LoadedImage>> {
    let work = store.temp_dir()?;
    let root = work.path().join("archive");
    fs::create_dir(&root).map_err(|e| Error::io("create directory", &root, e))?;
    let mut stream = decompress(reader)?;
    unpack(&mut stream, &root, UnpackOptions::ARCHIVE)?;
    io::copy(&mut stream, &mut io::sink()).map_err(|e| Error::Stream {
        context: "reading end of image archive".into(),
        source: e,
    })?;

    let has = |name: &str| fs::symlink_metadata(root.join(name)).is_ok();
    let mut images: Vec<LoadedImage> = Vec::new();
    if has("manifest.json") {
        let (items, _): (Vec<DockerManifestItem>, _) = read_json(&root, "manifest.json")?;
        for item in items {
            let cfg_path = resolve_in_root(&root, &item.config)?;
            let config_bytes = fs::read(&cfg_path).map_err(|e| Error::io("read", &cfg_path, e))?;
            let tags = item.repo_tags.unwrap_or_default();
            let img = load_image(&root, store, config_bytes, &item.layers, tags, progress)?;
            merge(&mut images, img);
        }
    } else if has("index.json") {
        let (index, _): (OciManifestOrIndex, _) = read_json(&root, "index.json")?;
        for desc in index.manifests.unwrap_or_default() {
            let tags = tags_from_annotations(&desc);
            let Some((config_desc, layers)) = resolve_manifest(&root, &desc, 0)? else {
                continue;
            };
            let config_bytes = read_blob_verified(&root, &config_desc.digest)?;
            let layer_paths: Vec<String> = layers.iter().map(|l| blob_rel(&l.digest)).collect();
            let img = load_image(&root, store, config_bytes, &layer_paths, tags, progress)?;
            merge(&mut images, img);
        }
    } else {
        return Err(Error::InvalidArchive(
            "no manifest.json or index.json found".into(),
        ));
    }
    Ok(images)
}

fn merge(images: &mut Vec<LoadedImage>, img: LoadedImage) {
    if let Some(existing) = images.iter_mut().find(|i| i.id == img.id) {
        for t in img.repo_tags {
            if !existing.repo_tags.contains(&t) {
                existing.repo_tags.push(t);
            }
        }
    } else {
        images.push(img);
    }
}

fn tags_from_annotations(desc: &Descriptor) -> Vec<String> {
    let Some(ann) = &desc.annotations else {
        return Vec::new();
    };
    if let Some(name) = ann.get(ANNOTATION_CONTAINERD_NAME) {
        if let Ok(t) = normalize_tag(name) {
            return vec![t];
        }
    }
    if let Some(name) = ann.get(ANNOTATION_REF_NAME) {
        // A bare tag ("latest") names no repository; only full references count.
        if let Ok(r) = Reference::parse_named(name) {
            let has_explicit_tag = name.rsplit('/').next().is_some_and(|l| l.contains(':'));
            if has_explicit_tag && r.digest().is_none() {
                return vec![r.familiar_string()];
            }
        }
    }
    Vec::new()
}

/// Follow a descriptor through nested indexes (picking the host platform) to a manifest.
fn resolve_manifest(
    root: &Path,
    desc: &Descriptor,
    depth: usize,
) -> Result<Option<(Descriptor, Vec<Descriptor>)>> {
    if depth > 8 {
        return Err(Error::InvalidArchive("index nesting too deep".into()));
    }
    let bytes = read_blob_verified(root, &desc.digest)?;
    let m: OciManifestOrIndex = serde_json::from_slice(&bytes)
        .map_err(|e| Error::json(format!("manifest {}", desc.digest), e))?;
    let is_index = m.manifests.is_some()
        || matches!(
            m.media_type.as_deref(),
            Some(media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST)
        );
    if is_index {
        let present: Vec<Descriptor> = m
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter(|d| resolve_in_root(root, &blob_rel(&d.digest)).is_ok_and(|p| p.is_file()))
            .collect();
        let host = Platform::host();
        let chosen = present
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| host.matches(p)))
            .or_else(|| present.first());
        return match chosen {
            Some(d) => resolve_manifest(root, d, depth + 1),
            None => Ok(None),
        };
    }
    let config = m
        .config
        .ok_or_else(|| Error::InvalidArchive(format!("manifest {} has no config", desc.digest)))?;
    Ok(Some((config, m.layers.unwrap_or_default())))
}

fn load_image(
    root: &Path,
    store: &ImageStore,
    config_bytes: Vec<u8>,
    layer_paths: &[String],
    tags: Vec<String>,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<LoadedImage> {
    let id = Digest::sha256_of(&config_bytes);
    let config = ImageConfig::from_slice(&config_bytes)?;
    let diff_ids = config.diff_ids().to_vec();
    if diff_ids.len() != layer_paths.len() {
        return Err(Error::InvalidArchive(format!(
            "image {}: config lists {} layers but the manifest has {}",
            id.short_id(),
            diff_ids.len(),
            layer_paths.len()
        )));
    }
    let repo_tags = tags
        .iter()
        .map(|t| normalize_tag(t))
        .collect::<Result<Vec<_>>>()?;
    let mut layers: Vec<LayerInfo> = Vec::with_capacity(diff_ids.len());
    for (path, diff_id) in layer_paths.iter().zip(&diff_ids) {
        let parent = layers.last().map(|l| l.chain_id.clone());
        let chain = match &parent {
            Some(p) => child_chain_id(p, diff_id),
            None => diff_id.clone(),
        };
        let short = diff_id.short_id().to_string();
        if store.has_layer(&chain) && store.has_blob(diff_id) {
            progress(LoadEvent::LayerExists { id: short });
            layers.push(store.layer_info(&chain)?);
            continue;
        }
        let (file, p) = open_in_root(root, path)?;
        let total = file.metadata().map_err(|e| Error::io("stat", &p, e))?.len();
        progress(LoadEvent::LoadingLayer {
            id: short.clone(),
            current: 0,
            total,
        });
        let reader = ProgressReader {
            inner: file,
            id: short,
            total,
            current: 0,
            reported: 0,
            cb: progress,
        };
        let info = store.apply_layer_expect(parent.as_ref(), reader, Some(diff_id))?;
        layers.push(info);
    }
    store.put_blob(&config_bytes)?;
    Ok(LoadedImage {
        id,
        config,
        config_bytes,
        repo_tags,
        layers,
    })
}

// ------------------------------------------------------------------------ save

struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    written: std::collections::HashSet<String>,
}

impl<W: Write> ArchiveWriter<W> {
    fn dir(&mut self, name: &str) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        self.tar
            .append_data(&mut h, name, io::empty())
            .map_err(|e| Error::io("write archive entry", name, e))
    }

    fn file(&mut self, name: &str, size: u64, data: impl Read) -> Result<()> {
        if !self.written.insert(name.to_string()) {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        self.tar
            .append_data(&mut h, name, data)
            .map_err(|e| Error::io("write archive entry", name, e))
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.file(name, data.len() as u64, data)
    }
}

/// Write `items` as a Docker 25+ `docker save` archive (also a valid OCI layout).
pub fn save(items: &[SaveItem], store: &ImageStore, writer: impl Write) -> Result<()> {
    let mut w = ArchiveWriter {
        tar: tar::Builder::new(writer),
        written: Default::default(),
    };
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    let mut index_manifests = Vec::new();
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let actual = Digest::sha256_of(&item.config_bytes);
        if actual != item.id {
            return Err(Error::DigestMismatch {
                what: "image config".into(),
                expected: item.id.clone(),
                actual,
            });
        }
        w.bytes(&blob_rel(&item.id), &item.config_bytes)?;
        let mut layer_descs = Vec::new();
        for (d, chain) in item
            .diff_ids
            .iter()
            .zip(crate::digest::chain_ids(&item.diff_ids))
        {
            let tar = store.open_layer_tar(&chain, d)?;
            let size = tar.blob.tar_size;
            w.file(&blob_rel(d), size, tar)?;
            layer_descs.push(json!({
                "mediaType": media_types::OCI_LAYER_TAR,
                "digest": d,
                "size": size,
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {
                "mediaType": media_types::OCI_CONFIG,
                "digest": item.id,
                "size": item.config_bytes.len(),
            },
            "layers": layer_descs,
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
        let manifest_digest = Digest::sha256_of(&manifest_bytes);
        w.bytes(&blob_rel(&manifest_digest), &manifest_bytes)?;

        let mut familiar_tags = Vec::new();
        for tag in &item.repo_tags {
            let r = Reference::parse(tag)?;
            let t = r.tag().unwrap_or("latest").to_string();
            familiar_tags.push(r.familiar_string());
            index_manifests.push(json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_bytes.len(),
                "annotations": {
                    ANNOTATION_CONTAINERD_NAME: r.to_string(),
                    ANNOTATION_REF_NAME: t,
                },
            }));
            if let Some(top) = item.diff_ids.last() {
                repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(t, top.hex().to_string());
            }
        }
        if item.repo_tags.is_empty() {
            index_manifests.push(json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_bytes.len(),
            }));
        }
        manifest_json.push(json!({
            "Config": blob_rel(&item.id),
            "RepoTags": if familiar_tags.is_empty() { serde_json::Value::Null } else { json!(familiar_tags) },
            "Layers": item.diff_ids.iter().map(blob_rel).collect::<Vec<_>>(),
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": index_manifests,
    });
    let to_vec = |v: &serde_json::Value, what: &str| {
        serde_json::to_vec(v).map_err(|e| Error::json(what.to_string(), e))
    };
    w.bytes("index.json", &to_vec(&index, "index.json")?)?;
    w.bytes(
        "manifest.json",
        &to_vec(&json!(manifest_json), "manifest.json")?,
    )?;
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        w.bytes(
            "repositories",
            &to_vec(&json!(repositories), "repositories")?,
        )?;
    }
    let mut inner = w.tar.into_inner().map_err(|e| Error::Stream {
        context: "finishing image archive".into(),
        source: e,
    })?;
    inner.flush().map_err(|e| Error::Stream {
        context: "flushing image archive".into(),
        source: e,
    })
}

// ---------------------------------------------------------------------- import

/// `docker import`: a root filesystem tarball (any compression) becomes a single-layer
/// image. `changes` are Dockerfile instructions (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`,
/// `LABEL`, `USER`, `WORKDIR`, `VOLUME`, `STOPSIGNAL`, `ONBUILD`); `message` becomes the
/// history comment and the legacy top-level `comment` (Docker passes
/// `"Imported from <src>"` when the user gave none — that choice is the caller's).
/// The config is stored as a blob; `repo_tags` is left empty for the caller to tag.
pub fn import(
    reader: impl Read,
    changes: &[String],
    message: &str,
    store: &ImageStore,
) -> Result<LoadedImage> {
    let mut cc = ContainerConfig::default();
    apply_changes(&mut cc, changes)?;
    let layer = store.apply_layer(None, reader)?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (arch, variant) = host_platform();
    let comment = (!message.is_empty()).then(|| message.to_string());
    let config = ImageConfig {
        architecture: arch.to_string(),
        os: "linux".to_string(),
        variant: variant.filter(|v| *v != "v8").map(str::to_string),
        created: Some(created.clone()),
        comment: comment.clone(),
        config: Some(cc),
        rootfs: RootFs {
            diff_ids: vec![layer.diff_id.clone()],
            ..RootFs::default()
        },
        history: vec![History {
            created: Some(created),
            comment,
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let config_bytes = config.to_vec()?;
    let id = store.put_blob(&config_bytes)?;
    Ok(LoadedImage {
        id,
        config,
        config_bytes,
        repo_tags: Vec::new(),
        layers: vec![layer],
    })
}

/// Apply Dockerfile-syntax change lines (as for `docker import --change` and
/// `docker commit --change`) to a container config.
pub fn apply_changes(cc: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for line in changes {
        apply_change(cc, line)?;
    }
    Ok(())
}

fn apply_change(cc: &mut ContainerConfig, line: &str) -> Result<()> {
    let bad = |reason: String| Error::InvalidChange {
        line: line.to_string(),
        reason,
    };
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(());
    }
    let (instr, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (trimmed, ""),
    };
    let upper = instr.to_ascii_uppercase();
    let need_args = |what: &str| -> Result<()> {
        if rest.is_empty() {
            Err(bad(format!("{what} requires at least one argument")))
        } else {
            Ok(())
        }
    };
    match upper.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let v = json_or_shell(rest);
            if upper == "CMD" {
                cc.cmd = Some(v);
            } else {
                cc.entrypoint = Some(v);
            }
        }
        "ENV" | "LABEL" => {
            need_args(&upper)?;
            let pairs = name_values(rest).map_err(bad)?;
            for (k, v) in pairs {
                if upper == "ENV" {
                    let env = cc.env.get_or_insert_with(Vec::new);
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.starts_with(&prefix) && e != &k);
                    env.push(format!("{k}={v}"));
                } else {
                    cc.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
                }
            }
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            let ports = cc.exposed_ports.get_or_insert_with(BTreeMap::new);
            for word in rest.split_whitespace() {
                for p in expand_port(word).map_err(bad)? {
                    ports.insert(p, json!({}));
                }
            }
        }
        "USER" => {
            need_args("USER")?;
            cc.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            need_args("WORKDIR")?;
            let mut p = std::path::PathBuf::from("/");
            if !rest.starts_with('/') {
                if let Some(cur) = cc.working_dir.as_deref() {
                    p.push(cur);
                }
            }
            p.push(rest);
            cc.working_dir = Some(clean_abs(&p));
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            let vols: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            let map = cc.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                if v.trim().is_empty() {
                    return Err(bad("VOLUME specified can not be an empty string".into()));
                }
                map.insert(v, json!({}));
            }
        }
        "STOPSIGNAL" => {
            need_args("STOPSIGNAL")?;
            cc.stop_signal = Some(rest.to_string());
        }
        "ONBUILD" => {
            need_args("ONBUILD")?;
            let (trigger, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let trigger = trigger.to_ascii_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(bad(format!(
                    "{trigger} isn't allowed as an ONBUILD trigger"
                )));
            }
            cc.on_build
                .get_or_insert_with(Vec::new)
                .push(format!("{trigger} {}", args.trim()).trim_end().to_string());
        }
        _ => return Err(Error::UnknownChange(instr.to_ascii_lowercase())),
    }
    Ok(())
}

/// JSON array form, else shell form wrapped in `/bin/sh -c`.
fn json_or_shell(rest: &str) -> StrSlice {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return StrSlice(v);
        }
    }
    StrSlice(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn clean_abs(p: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut s = String::new();
    for part in parts {
        s.push('/');
        s.push_str(&part.to_string_lossy());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Split words like the Dockerfile parser: whitespace separates, quotes group (and are
/// removed), backslash escapes the next character (except inside single quotes).
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `k=v k2="v 2"` or the legacy single pair `k some value`.
fn name_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| "requires a value".to_string())?;
        let v = shell_words(v)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    let mut out = Vec::new();
    for w in shell_words(rest)? {
        let (k, v) = w.split_once('=').ok_or_else(|| {
            format!("syntax error - can't find = in {w:?}. Must be of the form: name=value")
        })?;
        if k.is_empty() {
            return Err("empty name".into());
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// An `EXPOSE` word (`80`, `80/udp`, `8000-8002/tcp`) → `["80/tcp"]`, ... (used by import's
/// `changes` and by the builder).
pub fn expand_port(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, pr)) => (p, pr.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {s}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
pub(crate) fn tags_from_annotations_for_test(ref_name: &str) -> Vec<String> {
    let mut ann = BTreeMap::new();
    ann.insert(ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
    tags_from_annotations(&Descriptor {
        annotations: Some(ann),
        ..Descriptor::new("", Digest::sha256_of(b""), 0)
    })
}
