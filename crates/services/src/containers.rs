//! Containers: lifecycle, logs, attach, resources, stats, files and commits.

use async_trait::async_trait;
use berth_api_types::{container, prune, volume};
use futures_util::future::BoxFuture;

use crate::{not_supported_by_daemon, ByteStream, Result, Session};

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

#[async_trait]
pub trait ContainerBackend: Send + Sync + 'static {
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
    /// Changes resource limits (Docker's `UpdateConfig` body); returns warnings.
    async fn container_update(
        &self,
        id: &str,
        body: serde_json::Value,
        opts: UpdateOptions,
    ) -> Result<Vec<String>>;
    /// Docker's stats JSON objects, one per line; a single one unless `stream`.
    async fn container_stats(&self, id: &str, opts: StatsOptions) -> Result<ByteStream>;
    /// `POST /commit`: returns the new image id.
    async fn container_commit(&self, _opts: CommitOptions) -> Result<String> {
        Err(not_supported_by_daemon("commit"))
    }
    /// `GET /containers/{id}/changes`.
    async fn container_changes(&self, _id: &str) -> Result<Vec<container::ChangeItem>> {
        Err(not_supported_by_daemon("changes"))
    }
    /// `GET /containers/{id}/export`: a tar of the container's filesystem.
    async fn container_export(&self, _id: &str) -> Result<ByteStream> {
        Err(not_supported_by_daemon("export"))
    }
}
