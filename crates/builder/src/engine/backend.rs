//! What the engine needs from the daemon: images, build containers, commits, the layer
//! cache, persistent cache mounts and URL downloads — the [`Backend`] trait and the values
//! that cross it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_image::config::ImageConfig;

use crate::flags::Sharing;

/// An image as the builder sees it.
#[derive(Debug, Clone, Default)]
pub struct ImageState {
    /// `sha256:...`; empty for `scratch`.
    pub id: String,
    pub config: ImageConfig,
    /// Layer chain ids, bottom first.
    pub layers: Vec<String>,
}

/// One host path (or tmpfs) mounted into a `RUN` container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Absolute path in the container.
    pub target: String,
    pub kind: RunMountKind,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMountKind {
    /// A bind of a host file, directory or socket.
    Bind(PathBuf),
    /// A fresh tmpfs, optionally limited in bytes.
    Tmpfs(Option<u64>),
}

/// What a `RUN` container executes, and with what.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `RUN --mount`s, resolved to host paths.
    pub mounts: Vec<RunMount>,
    /// `RUN --network=none|host`; `None`: the build's network.
    pub network: Option<String>,
    /// `RUN --security=insecure`: a privileged container.
    pub privileged: bool,
    /// `NAME=value` pairs of secrets given to the process only: never stored with the
    /// container record, never logged, never in the image.
    pub secret_env: Vec<String>,
}

/// A request for the persistent directory of `RUN --mount=type=cache`.
#[derive(Debug, Clone)]
pub struct CacheMountRequest {
    /// The cache's id (`id=`, default the target).
    pub id: String,
    pub sharing: Sharing,
    /// Mode, owner of the directory when it is created (BuildKit: 0755, 0:0).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content for a new cache (`from=`/`source=`): copied in when the cache is created.
    pub seed: Option<PathBuf>,
    /// What `system df` shows for it (`cached mount /target from exec ...`).
    pub description: String,
}

/// A cache directory lent to one step; the lock (for `locked`/`private`) lasts as long as
/// `_guard` lives.
pub struct CacheMountLease {
    pub path: PathBuf,
    pub _guard: Box<dyn Send + Sync>,
}

/// A downloaded `ADD <url>` source.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The downloaded file.
    pub path: PathBuf,
    /// `Last-Modified` as unix seconds, when the server said.
    pub modified: Option<i64>,
}

/// Where a step's output goes.
pub trait Output: Send + Sync {
    fn send(&self, text: String);
}

impl Output for tokio::sync::mpsc::UnboundedSender<String> {
    fn send(&self, text: String) {
        let _ = tokio::sync::mpsc::UnboundedSender::send(self, text);
    }
}

/// Why a backend operation failed: the daemon's own error, whose message the build shows.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// The image and container operations the builder needs.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Finds a local image by name or id.
    async fn image(&self, name: &str) -> Result<ImageState, BackendError>;
    /// Creates a build container on `image` and mounts its root filesystem read-write;
    /// returns the container id and the rootfs path.
    async fn create_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
    ) -> Result<(String, PathBuf), BackendError>;
    /// Starts a container created with a [`RunConfig`], forwards its output, returns its
    /// exit code.
    async fn run_container(&self, id: &str, output: &dyn Output) -> Result<i64, BackendError>;
    /// Turns the container's filesystem changes into a new layer on `parent` and stores
    /// `config` (its diff ids are completed here). With `allow_empty`, no changes means no
    /// layer: the config is stored alone and its last history entry marked `empty_layer`.
    /// Mount points the runtime created for a `RunConfig`'s mounts are not part of the
    /// layer. Returns the image and whether a layer was added.
    async fn commit(
        &self,
        container: &str,
        parent: &ImageState,
        config: ImageConfig,
        allow_empty: bool,
    ) -> Result<(ImageState, bool), BackendError>;
    /// Stores a config-only image on top of `parent`'s layers.
    async fn commit_config(
        &self,
        parent: &ImageState,
        config: ImageConfig,
    ) -> Result<ImageState, BackendError>;
    /// Removes a build container (and unmounts it).
    async fn remove_container(&self, id: &str);
    async fn cache_get(&self, key: &str) -> Option<ImageState>;
    async fn cache_put(&self, key: &str, image: &ImageState);
    /// Images named by `--cache-from`: their history can satisfy cache lookups.
    fn cache_sources(&self) -> &[ImageState] {
        &[]
    }
    /// The persistent directory of a cache mount, locked as its `sharing` asks.
    async fn cache_mount(&self, req: &CacheMountRequest) -> Result<CacheMountLease, BackendError>;
    /// Downloads `url` into `dir` (with the daemon's proxy settings).
    async fn fetch(&self, url: &str, dir: &Path) -> Result<Fetched, BackendError>;
}
