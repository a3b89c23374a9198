//! The daemon's services as the API server calls them: each service trait of `berth-services`
//! forwarded to [`Daemon`]. This is where HTTP (berth-api-server) and the daemon meet; neither
//! crate depends on the other.

use std::sync::Arc;

use async_trait::async_trait;
use berth_api_types::{container, exec, image, network, prune, system, volume};
use berth_daemon::Daemon;
use berth_services::{
    AttachOptions, BuildBackend, BuildOptions, ByteStream, CommitOptions, ContainerBackend,
    ContainerListOptions, DiskUsageOptions, EventsOptions, ExecBackend, ExecStarted, ImageBackend,
    ImageListOptions, ImportOptions, LoadOptions, LogsOptions, NetworkBackend, PlatformSpec,
    PullOptions, PushOptions, Result, Session, StatsOptions, SystemBackend, UpdateOptions,
    VolumeBackend, WaitCondition,
};
use futures_util::future::BoxFuture;

/// The daemon as the API server sees it (a newtype: the traits and `Daemon` are both foreign
/// here).
pub struct Api(pub Arc<Daemon>);

#[async_trait]
impl SystemBackend for Api {
    async fn version(&self) -> Result<system::VersionResponse> {
        Ok(self.0.version())
    }
    async fn info(&self) -> Result<system::InfoResponse> {
        Ok(self.0.info())
    }
    async fn events(&self, opts: EventsOptions) -> Result<ByteStream> {
        self.0.events(opts)
    }
    async fn system_df(&self, opts: DiskUsageOptions) -> Result<prune::DiskUsage> {
        self.0.system_df(opts)
    }
    async fn registry_login(&self, body: serde_json::Value) -> Result<serde_json::Value> {
        self.0.registry_login(body).await
    }
}

#[async_trait]
impl ContainerBackend for Api {
    async fn container_create(
        &self,
        name: Option<String>,
        req: container::CreateRequest,
    ) -> Result<container::CreateResponse> {
        self.0.container_create(name, req).await
    }
    async fn container_list(&self, opts: ContainerListOptions) -> Result<Vec<container::Summary>> {
        self.0.container_list(opts)
    }
    async fn container_inspect(&self, id: &str, size: bool) -> Result<container::InspectResponse> {
        self.0.container_inspect(id, size)
    }
    async fn container_start(&self, id: &str) -> Result<()> {
        self.0.container_start(id).await
    }
    async fn container_stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        self.0.container_stop(id, signal, timeout).await
    }
    async fn container_restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        self.0.container_restart(id, signal, timeout).await
    }
    async fn container_kill(&self, id: &str, signal: Option<String>) -> Result<()> {
        self.0.container_kill(id, signal).await
    }
    async fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, container::WaitResponse>> {
        self.0.container_wait(id, condition).await
    }
    async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        self.0.container_remove(id, force, volumes).await
    }
    async fn container_remove_link(&self, name: &str) -> Result<()> {
        self.0.remove_link(name)
    }
    async fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        self.0.container_rename(id, name).await
    }
    async fn container_top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<container::TopResponse> {
        self.0.container_top(id, ps_args).await
    }
    async fn container_pause(&self, id: &str) -> Result<()> {
        self.0.container_pause(id, true).await
    }
    async fn container_unpause(&self, id: &str) -> Result<()> {
        self.0.container_pause(id, false).await
    }
    async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.0.container_resize(id, height, width).await
    }
    async fn container_logs(&self, id: &str, opts: LogsOptions) -> Result<(bool, ByteStream)> {
        self.0.container_logs(id, opts)
    }
    async fn container_attach(&self, id: &str, opts: AttachOptions) -> Result<Session> {
        self.0.container_attach(id, opts).await
    }
    async fn container_archive_stat(&self, id: &str, path: &str) -> Result<volume::PathStat> {
        self.0.container_archive_stat(id, path).await
    }
    async fn container_archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(volume::PathStat, ByteStream)> {
        self.0.container_archive_get(id, path).await
    }
    async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: ByteStream,
    ) -> Result<()> {
        self.0
            .container_archive_put(id, path, no_overwrite_dir_non_dir, copy_uid_gid, body)
            .await
    }
    async fn containers_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<prune::ContainerPruneResponse> {
        self.0.containers_prune(&filters).await
    }
    async fn container_update(
        &self,
        id: &str,
        body: serde_json::Value,
        opts: UpdateOptions,
    ) -> Result<Vec<String>> {
        self.0.container_update(id, body, opts).await
    }
    async fn container_stats(&self, id: &str, opts: StatsOptions) -> Result<ByteStream> {
        self.0.container_stats(id, opts).await
    }
    async fn container_commit(&self, opts: CommitOptions) -> Result<String> {
        self.0.container_commit(opts).await
    }
    async fn container_changes(&self, id: &str) -> Result<Vec<container::ChangeItem>> {
        self.0.container_changes(id)
    }
    async fn container_export(&self, id: &str) -> Result<ByteStream> {
        self.0.container_export(id).await
    }
}

#[async_trait]
impl ExecBackend for Api {
    async fn exec_create(&self, id: &str, req: exec::CreateRequest) -> Result<String> {
        self.0.exec_create(id, req).await
    }
    async fn exec_start(&self, exec_id: &str, req: exec::StartRequest) -> Result<ExecStarted> {
        self.0.exec_start(exec_id, req).await
    }
    async fn exec_inspect(&self, exec_id: &str) -> Result<exec::InspectResponse> {
        self.0.exec_inspect(exec_id)
    }
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        self.0.exec_resize(exec_id, height, width).await
    }
}

#[async_trait]
impl ImageBackend for Api {
    async fn image_list(&self, opts: ImageListOptions) -> Result<Vec<image::Summary>> {
        self.0.image_list(opts)
    }
    async fn image_inspect(&self, name: &str) -> Result<image::InspectResponse> {
        self.0.image_inspect(name)
    }
    async fn image_history(&self, name: &str) -> Result<Vec<image::HistoryItem>> {
        self.0.image_history(name)
    }
    async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        self.0.image_tag(name, repo, tag).await
    }
    async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<image::DeleteItem>> {
        self.0.image_remove(name, force, noprune).await
    }
    async fn image_load(&self, body: ByteStream, opts: LoadOptions) -> Result<ByteStream> {
        self.0.image_load(body, opts).await
    }
    async fn image_save(
        &self,
        names: Vec<String>,
        platforms: Vec<PlatformSpec>,
    ) -> Result<ByteStream> {
        self.0.image_save(names, platforms).await
    }
    async fn image_import(&self, body: ByteStream, opts: ImportOptions) -> Result<ByteStream> {
        self.0.image_import(body, opts).await
    }
    async fn images_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<prune::ImagePruneResponse> {
        self.0.images_prune(&filters).await
    }
    async fn image_pull(&self, opts: PullOptions) -> Result<ByteStream> {
        self.0.image_pull(opts).await
    }
    async fn image_push(&self, opts: PushOptions) -> Result<ByteStream> {
        self.0.image_push(opts).await
    }
    async fn image_search(
        &self,
        term: String,
        limit: Option<usize>,
        registry_auth: Option<String>,
    ) -> Result<Vec<serde_json::Value>> {
        self.0.image_search(term, limit, registry_auth).await
    }
}

#[async_trait]
impl BuildBackend for Api {
    async fn image_build(&self, body: ByteStream, opts: BuildOptions) -> Result<ByteStream> {
        self.0.image_build(body, opts).await
    }
    async fn build_prune(&self) -> Result<(Vec<String>, u64)> {
        self.0.build_prune().await
    }
}

#[async_trait]
impl NetworkBackend for Api {
    async fn network_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
        containers: bool,
    ) -> Result<Vec<network::Network>> {
        self.0.network_list(filters, containers).await
    }
    async fn network_inspect(&self, id: &str) -> Result<network::Network> {
        self.0.network_inspect(id).await
    }
    async fn network_create(&self, req: network::CreateRequest) -> Result<network::CreateResponse> {
        self.0.network_create(req).await
    }
    async fn network_remove(&self, id: &str) -> Result<()> {
        self.0.network_remove(id).await
    }
    async fn network_connect(&self, id: &str, req: network::ConnectRequest) -> Result<()> {
        self.0.network_connect(id, req).await
    }
    async fn network_disconnect(&self, id: &str, req: network::DisconnectRequest) -> Result<()> {
        self.0.network_disconnect(id, req).await
    }
    async fn network_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<network::PruneResponse> {
        self.0.network_prune(filters).await
    }
}

#[async_trait]
impl VolumeBackend for Api {
    async fn volume_create(&self, req: volume::CreateRequest) -> Result<volume::Volume> {
        self.0.volume_create(req)
    }
    async fn volume_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<volume::ListResponse> {
        self.0.volume_list(&filters)
    }
    async fn volume_inspect(&self, name: &str) -> Result<volume::Volume> {
        self.0.volume_inspect(name)
    }
    async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        self.0.volume_remove(name, force)
    }
    async fn volume_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
        named_too: bool,
    ) -> Result<volume::PruneResponse> {
        self.0.volume_prune(&filters, named_too)
    }
}
