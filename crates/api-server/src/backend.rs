//! The service interface the server calls. The daemon implements it; the server never sees the daemon.

use std::pin::Pin;

use async_trait::async_trait;
use berth_api_types::{container, exec, image, prune, system, volume, ApiError};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

pub type Result<T> = std::result::Result<T, ApiError>;

/// A body streamed in either direction.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A bidirectional byte stream: a hijacked connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub type BoxedIo = Box<dyn Io>;

/// Runs an attach or exec session over the hijacked connection once the server has it.
pub struct Session {
    /// Whether the stream is raw (TTY) rather than multiplexed.
    pub tty: bool,
    pub run: Box<dyn FnOnce(BoxedIo) -> BoxFuture<'static, ()> + Send>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    /// `filters` decoded: key → values.
    pub filters: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractional), 0 = from the start.
    pub since: f64,
    /// Unix seconds (fractional), 0 = no bound.
    pub until: f64,
    pub timestamps: bool,
    /// `None` = all lines.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub repo: String,
    pub tag: String,
    pub message: String,
    pub changes: Vec<String>,
}

/// `POST /images/create?fromImage=`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub from_image: String,
    /// Tag or digest; empty with an untagged `from_image` means every tag.
    pub tag: String,
    pub platform: String,
    /// The raw `X-Registry-Auth` header.
    pub registry_auth: Option<String>,
}

/// `POST /images/{name}/push`.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub name: String,
    /// Empty: every tag of the repository.
    pub tag: String,
    pub registry_auth: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub filters: Vec<(String, Vec<String>)>,
    pub format: EventFormat,
}

/// What an event message carries, decided by the request's API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFormat {
    /// The deprecated `status`, `id` and `from` of container and image events (API < 1.52).
    pub legacy_fields: bool,
    /// Image `create` events (API 1.46+).
    pub image_create: bool,
}

impl Default for EventFormat {
    fn default() -> Self {
        EventFormat {
            legacy_fields: false,
            image_create: true,
        }
    }
}

/// `GET /containers/{id}/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsOptions {
    pub stream: bool,
    /// With `stream` false: one sample at once instead of two a second apart.
    pub one_shot: bool,
    /// Each sample says `os_type` (API 1.52+).
    pub os_type: bool,
}

/// Which fields of an update body apply, decided by the request's API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateOptions {
    /// `PidsLimit` (API 1.40+).
    pub pids_limit: bool,
    /// `BlkioWeightDevice`, `BlkioDevice{Read,Write}{Bps,IOps}` (API 1.55+).
    pub blkio_devices: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            pids_limit: true,
            blkio_devices: true,
        }
    }
}

/// An OCI platform as the `platform` query parameters give it (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// `POST /images/load`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub quiet: bool,
    /// Only images of these platforms are loaded; empty: all.
    pub platforms: Vec<PlatformSpec>,
}

/// `GET /system/df`: the object types to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsageOptions {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl Default for DiskUsageOptions {
    fn default() -> Self {
        DiskUsageOptions {
            containers: true,
            images: true,
            volumes: true,
            build_cache: true,
        }
    }
}

/// `POST /build` query parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`dockerfile=`).
    pub dockerfile: String,
    /// `t=` (repeated).
    pub tags: Vec<String>,
    /// `buildargs=` (JSON object; a null value means "take it from the environment").
    pub build_args: std::collections::BTreeMap<String, Option<String>>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub quiet: bool,
    /// `remote=`: a URL context (not supported).
    pub remote: String,
    /// `cachefrom=` (JSON array of image names).
    pub cache_from: Vec<String>,
    /// The host configuration of RUN steps' containers, from `networkmode=` (empty: the
    /// default bridge, as Docker), `extrahosts=`, `shmsize=`, `memory=`, `memswap=`,
    /// `cpushares=`, `cpuperiod=`, `cpuquota=`, `cpusetcpus=`, `cpusetmems=`, `cgroupparent=`
    /// and `ulimits=` (dockerd's `hostConfigFromOptions`).
    pub step_host: berth_api_types::container::HostConfig,
    /// berth extension, `secret=` (repeated): `id=ID,src=PATH|env=VAR|data=BASE64`.
    pub secrets: Vec<String>,
    /// berth extension, `ssh=` (repeated): `ID=SOCKET` (an SSH agent socket on the daemon's host).
    pub ssh: Vec<String>,
    /// berth extension, `buildcontext=` (repeated): `NAME=docker-image://REF`, or `NAME=local`
    /// for a directory sent inside the context tar under `.berth-build-contexts/NAME/`.
    pub build_contexts: Vec<String>,
    /// `outputs=` (JSON `[{"Type":"local"|"tar"}]`): stream the final stage's files as a
    /// tar instead of making an image (berth's answer to BuildKit's exporters).
    pub outputs: Vec<BuildOutput>,
}

/// One `outputs=` entry (keys in any case, by Go's rules).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct BuildOutput {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Attrs")]
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// `POST /commit` query parameters (+ the optional config body).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub changes: Vec<String>,
    pub pause: bool,
    pub config: Option<container::Config>,
}

pub enum ExecStarted {
    /// `Detach: true`: started, nothing to stream.
    Detached,
    Attached(Session),
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn version(&self) -> Result<system::VersionResponse>;
    async fn info(&self) -> Result<system::InfoResponse>;
    /// Streams newline-delimited event messages.
    async fn events(&self, opts: EventsOptions) -> Result<ByteStream>;

    async fn container_create(
        &self,
        name: Option<String>,
        req: container::CreateRequest,
    ) -> Result<container::CreateResponse>;
    async fn container_list(&self, opts: ContainerListOptions) -> Result<Vec<container::Summary>>;
    async fn container_inspect(&self, id: &str, size: bool) -> Result<container::InspectResponse>;
    async fn container_start(&self, id: &str) -> Result<()>;
    async fn container_stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()>;
    async fn container_restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()>;
    async fn container_kill(&self, id: &str, signal: Option<String>) -> Result<()>;
    /// Answers at once; the future resolves when the condition is met.
    async fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, container::WaitResponse>>;
    async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()>;
    /// `DELETE /containers/{parent}/{alias}?link=1`: removes the legacy link `name`
    /// (`parent/alias`).
    async fn container_remove_link(&self, name: &str) -> Result<()>;
    async fn container_rename(&self, id: &str, name: &str) -> Result<()>;
    async fn container_top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<container::TopResponse>;
    async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()>;
    /// Freezes every process of the container (cgroup freezer).
    async fn container_pause(&self, id: &str) -> Result<()>;
    async fn container_unpause(&self, id: &str) -> Result<()>;
    /// Returns whether the container has a TTY (raw stream) and the log stream.
    async fn container_logs(&self, id: &str, opts: LogsOptions) -> Result<(bool, ByteStream)>;
    async fn container_attach(&self, id: &str, opts: AttachOptions) -> Result<Session>;

    async fn exec_create(&self, id: &str, req: exec::CreateRequest) -> Result<String>;
    async fn exec_start(&self, exec_id: &str, req: exec::StartRequest) -> Result<ExecStarted>;
    async fn exec_inspect(&self, exec_id: &str) -> Result<exec::InspectResponse>;
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()>;

    async fn image_list(&self, opts: ImageListOptions) -> Result<Vec<image::Summary>>;
    async fn image_inspect(&self, name: &str) -> Result<image::InspectResponse>;
    async fn image_history(&self, name: &str) -> Result<Vec<image::HistoryItem>>;
    async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()>;
    async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<image::DeleteItem>>;
    /// Streams newline-delimited JSON progress.
    async fn image_load(&self, body: ByteStream, opts: LoadOptions) -> Result<ByteStream>;
    /// Streams a tar archive of `names`, each of which must be of one of `platforms` (when any).
    async fn image_save(
        &self,
        names: Vec<String>,
        platforms: Vec<PlatformSpec>,
    ) -> Result<ByteStream>;
    /// Streams newline-delimited JSON progress.
    async fn image_import(&self, body: ByteStream, opts: ImportOptions) -> Result<ByteStream>;

    /// With `containers`, each network lists its members as inspect does (API < 1.28).
    async fn network_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
        containers: bool,
    ) -> Result<Vec<berth_api_types::network::Network>>;
    async fn network_inspect(&self, id: &str) -> Result<berth_api_types::network::Network>;
    async fn network_create(
        &self,
        req: berth_api_types::network::CreateRequest,
    ) -> Result<berth_api_types::network::CreateResponse>;
    async fn network_remove(&self, id: &str) -> Result<()>;
    async fn network_connect(
        &self,
        id: &str,
        req: berth_api_types::network::ConnectRequest,
    ) -> Result<()>;
    async fn network_disconnect(
        &self,
        id: &str,
        req: berth_api_types::network::DisconnectRequest,
    ) -> Result<()>;
    async fn network_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<berth_api_types::network::PruneResponse>;
    /// Streams Docker's pull progress; errors before the first byte are returned as statuses.
    async fn image_pull(&self, _opts: PullOptions) -> Result<ByteStream> {
        Err(ApiError::new(
            berth_api_types::ErrorKind::NotImplemented,
            "pulling is not supported",
        ))
    }
    /// Streams Docker's push progress.
    async fn image_push(&self, _opts: PushOptions) -> Result<ByteStream> {
        Err(ApiError::new(
            berth_api_types::ErrorKind::NotImplemented,
            "pushing is not supported",
        ))
    }
    /// `POST /auth`: validates credentials against a registry.
    async fn registry_login(&self, _body: serde_json::Value) -> Result<serde_json::Value> {
        Err(ApiError::new(
            berth_api_types::ErrorKind::NotImplemented,
            "login is not supported",
        ))
    }
    /// `GET /images/search`.
    async fn image_search(
        &self,
        _term: String,
        _limit: Option<usize>,
        _registry_auth: Option<String>,
    ) -> Result<Vec<serde_json::Value>> {
        Err(ApiError::new(
            berth_api_types::ErrorKind::NotImplemented,
            "search is not supported",
        ))
    }
    async fn volume_create(&self, req: volume::CreateRequest) -> Result<volume::Volume>;
    async fn volume_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<volume::ListResponse>;
    async fn volume_inspect(&self, name: &str) -> Result<volume::Volume>;
    async fn volume_remove(&self, name: &str, force: bool) -> Result<()>;
    /// With `named_too`, named volumes are pruned as well as anonymous ones (API < 1.42, or
    /// the `all=true` filter).
    async fn volume_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
        named_too: bool,
    ) -> Result<volume::PruneResponse>;
    /// `HEAD /containers/{id}/archive`.
    async fn container_archive_stat(&self, id: &str, path: &str) -> Result<volume::PathStat>;
    /// `GET /containers/{id}/archive`: the stat and a tar stream.
    async fn container_archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(volume::PathStat, ByteStream)>;
    /// `PUT /containers/{id}/archive`: extracts the tar body into directory `path`.
    async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: ByteStream,
    ) -> Result<()>;
    async fn containers_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<prune::ContainerPruneResponse>;
    async fn images_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<prune::ImagePruneResponse>;
    /// The lists of `system df` for the object types `opts` asks for (the others empty).
    async fn system_df(&self, opts: DiskUsageOptions) -> Result<prune::DiskUsage>;
    /// Changes resource limits (Docker's `UpdateConfig` body); returns warnings.
    async fn container_update(
        &self,
        id: &str,
        body: serde_json::Value,
        opts: UpdateOptions,
    ) -> Result<Vec<String>>;
    /// Docker's stats JSON objects, one per line; a single one unless `stream`.
    async fn container_stats(&self, id: &str, opts: StatsOptions) -> Result<ByteStream>;
    /// `POST /build`: the context tar in, newline-delimited JSON progress out.
    async fn image_build(&self, _body: ByteStream, _opts: BuildOptions) -> Result<ByteStream> {
        Err(not_implemented("build"))
    }
    /// `POST /commit`: returns the new image id.
    async fn container_commit(&self, _opts: CommitOptions) -> Result<String> {
        Err(not_implemented("commit"))
    }
    /// `GET /containers/{id}/changes`.
    async fn container_changes(&self, _id: &str) -> Result<Vec<container::ChangeItem>> {
        Err(not_implemented("changes"))
    }
    /// `POST /build/prune`: drops the build cache; returns (removed entries, bytes freed).
    async fn build_prune(&self) -> Result<(Vec<String>, u64)> {
        Err(not_implemented("build cache prune"))
    }
    /// `GET /containers/{id}/export`: a tar of the container's filesystem.
    async fn container_export(&self, _id: &str) -> Result<ByteStream> {
        Err(not_implemented("export"))
    }
}

fn not_implemented(what: &str) -> berth_api_types::ApiError {
    berth_api_types::ApiError::new(
        berth_api_types::ErrorKind::NotImplemented,
        format!("{what} is not supported by this daemon"),
    )
}
