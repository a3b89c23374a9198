//! The traits the CRI gRPC services call: what the daemon implements. One per service area, so
//! a fake can stand in for each; all take typed, validated values (see [`crate::types`]).
//!
//! Idempotence the kubelet relies on (StopPodSandbox, RemovePodSandbox, StopContainer,
//! RemoveContainer, RemoveImage of something that is gone) is handled in the gRPC layer: a
//! backend may simply answer [`CriError::NotFound`] there.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;

use crate::api;
use crate::error::{CriError, CriResult};
use crate::types::*;

/// A stream of container lifecycle events for `GetContainerEvents`.
pub type EventStream = Pin<Box<dyn Stream<Item = api::ContainerEventResponse> + Send>>;

/// Runtime-wide calls: Version, Status, UpdateRuntimeConfig, RuntimeConfig.
#[async_trait]
pub trait RuntimeBackend: Send + Sync + 'static {
    async fn version(&self) -> CriResult<RuntimeVersion>;
    /// The runtime's conditions; `verbose` asks for the `info` map too.
    async fn status(&self, verbose: bool) -> CriResult<RuntimeStatus>;
    /// The kubelet hands over the node's pod CIDR (empty when it has none).
    async fn update_runtime_config(&self, pod_cidr: String) -> CriResult<()>;
    async fn cgroup_driver(&self) -> CriResult<CgroupDriver>;
}

/// Pod sandboxes: the pod's namespaces, network and the container group.
#[async_trait]
pub trait PodBackend: Send + Sync + 'static {
    /// Creates and starts the sandbox; answers its id once it is ready.
    async fn run_pod_sandbox(&self, req: RunPodSandbox) -> CriResult<String>;
    /// Stops the pod's containers and tears its network down.
    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()>;
    /// Removes the sandbox and (forcibly) its containers.
    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()>;
    async fn pod_sandbox_status(&self, id: &str, verbose: bool) -> CriResult<PodStatus>;
    async fn list_pod_sandboxes(&self, filter: &PodFilter) -> CriResult<Vec<api::PodSandbox>>;
    async fn pod_sandbox_stats(&self, id: &str) -> CriResult<api::PodSandboxStats>;
    async fn list_pod_sandbox_stats(
        &self,
        filter: &PodStatsFilter,
    ) -> CriResult<Vec<api::PodSandboxStats>>;
    /// Applies the pod-level resources (`overhead`, `resources`) of an in-place resize.
    async fn update_pod_sandbox_resources(
        &self,
        _id: &str,
        _overhead: Option<api::LinuxContainerResources>,
        _resources: Option<api::LinuxContainerResources>,
    ) -> CriResult<()> {
        Err(CriError::Unimplemented("UpdatePodSandboxResources".into()))
    }
    /// The metrics `ListPodSandboxMetrics` may report (none by default).
    async fn list_metric_descriptors(&self) -> CriResult<Vec<api::MetricDescriptor>> {
        Ok(Vec::new())
    }
    async fn list_pod_sandbox_metrics(&self) -> CriResult<Vec<api::PodSandboxMetrics>> {
        Ok(Vec::new())
    }
}

/// Containers inside pod sandboxes.
#[async_trait]
pub trait ContainerBackend: Send + Sync + 'static {
    async fn create_container(&self, req: CreateContainer) -> CriResult<String>;
    async fn start_container(&self, id: &str) -> CriResult<()>;
    /// Stops with the container's stop signal, then SIGKILL after `timeout` (zero: at once).
    async fn stop_container(&self, id: &str, timeout: Duration) -> CriResult<()>;
    /// Removes the container, forcibly if it is running.
    async fn remove_container(&self, id: &str) -> CriResult<()>;
    async fn list_containers(&self, filter: &ContainerFilter) -> CriResult<Vec<api::Container>>;
    async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> CriResult<WithInfo<api::ContainerStatus>>;
    async fn update_container_resources(
        &self,
        id: &str,
        linux: Option<api::LinuxContainerResources>,
        annotations: std::collections::HashMap<String, String>,
    ) -> CriResult<()>;
    /// Closes and reopens the container's CRI log file at its log path (after the kubelet rotated it).
    async fn reopen_container_log(&self, id: &str) -> CriResult<()>;
    /// Runs `cmd` in the container and collects its output; `timeout` kills it when it runs out
    /// (answer [`CriError::DeadlineExceeded`]).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Option<Duration>,
    ) -> CriResult<ExecSyncOutput>;
    async fn container_stats(&self, id: &str) -> CriResult<api::ContainerStats>;
    async fn list_container_stats(
        &self,
        filter: &ContainerStatsFilter,
    ) -> CriResult<Vec<api::ContainerStats>>;
    async fn checkpoint_container(
        &self,
        _id: &str,
        _location: &str,
        _timeout: Option<Duration>,
    ) -> CriResult<()> {
        Err(CriError::Unimplemented("CheckpointContainer".into()))
    }
    /// Container lifecycle events from now on (created, started, stopped, deleted).
    fn container_events(&self) -> CriResult<EventStream> {
        Err(CriError::Unimplemented("GetContainerEvents".into()))
    }
}

/// Images, in the store shared with the Docker API.
#[async_trait]
pub trait ImageBackend: Send + Sync + 'static {
    /// Images, all of them or those `filter` (a reference) names.
    async fn list_images(&self, filter: Option<&api::ImageSpec>) -> CriResult<Vec<api::Image>>;
    /// `None` when the image is not present (the CRI answers an empty status, not an error).
    async fn image_status(
        &self,
        image: &api::ImageSpec,
        verbose: bool,
    ) -> CriResult<Option<WithInfo<api::Image>>>;
    /// Pulls and answers the image's reference (its id or digest reference).
    async fn pull_image(&self, req: PullImage) -> CriResult<String>;
    /// Removes the image with all its tags.
    async fn remove_image(&self, image: &api::ImageSpec) -> CriResult<()>;
    async fn image_fs_info(&self) -> CriResult<FsInfo>;
}

/// Checks before a streaming URL is handed out (containerd refuses exec into a container that
/// is not running with FailedPrecondition, before the client connects).
#[async_trait]
pub trait StreamCheck: Send + Sync + 'static {
    /// The container exists and is running.
    async fn check_container_running(&self, container_id: &str) -> CriResult<()>;
    /// The pod exists and is ready (its network namespace is there to forward into).
    async fn check_pod_ready(&self, pod_sandbox_id: &str) -> CriResult<()>;
}

/// The backends of both services. The daemon usually implements every trait on one type: see
/// [`Backends::from_one`].
#[derive(Clone)]
pub struct Backends {
    pub runtime: Arc<dyn RuntimeBackend>,
    pub pods: Arc<dyn PodBackend>,
    pub containers: Arc<dyn ContainerBackend>,
    pub images: Arc<dyn ImageBackend>,
    pub stream_check: Arc<dyn StreamCheck>,
}

impl Backends {
    pub fn from_one<T>(b: Arc<T>) -> Self
    where
        T: RuntimeBackend + PodBackend + ContainerBackend + ImageBackend + StreamCheck,
    {
        Backends {
            runtime: b.clone(),
            pods: b.clone(),
            containers: b.clone(),
            images: b.clone(),
            stream_check: b,
        }
    }
}
