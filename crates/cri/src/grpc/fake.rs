//! A recording fake of every backend trait for the gRPC layer's tests: each call is logged as
//! a line, answers come from a small canned state, and `fail_next` injects an error.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::api;
use crate::backend::*;
use crate::error::{CriError, CriResult};
use crate::types::*;

#[derive(Default)]
pub struct Fake {
    pub calls: Mutex<Vec<String>>,
    pub fail: Mutex<Option<CriError>>,
    pub pods: Mutex<Vec<api::PodSandbox>>,
    pub containers: Mutex<Vec<api::Container>>,
    pub images: Mutex<Vec<api::Image>>,
    pub last_run: Mutex<Option<RunPodSandbox>>,
    pub last_create: Mutex<Option<CreateContainer>>,
    pub last_pull: Mutex<Option<PullImage>>,
    pub events: Mutex<Vec<api::ContainerEventResponse>>,
}

impl Fake {
    fn record(&self, call: String) -> CriResult<()> {
        self.calls.lock().unwrap().push(call);
        match self.fail.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn fail_next(&self, e: CriError) {
        *self.fail.lock().unwrap() = Some(e);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl RuntimeBackend for Fake {
    async fn version(&self) -> CriResult<RuntimeVersion> {
        self.record("version".into())?;
        Ok(RuntimeVersion {
            runtime_name: "berth".into(),
            runtime_version: "0.1.0".into(),
        })
    }
    async fn status(&self, verbose: bool) -> CriResult<RuntimeStatus> {
        self.record(format!("status verbose={verbose}"))?;
        Ok(RuntimeStatus {
            conditions: vec![
                Condition::ready(Condition::RUNTIME_READY),
                Condition::not_ready(
                    Condition::NETWORK_READY,
                    "NetworkPluginNotReady",
                    "cni config uninitialized",
                ),
            ],
            info: [("config".to_string(), "{}".to_string())].into(),
            ..Default::default()
        })
    }
    async fn update_runtime_config(&self, pod_cidr: String) -> CriResult<()> {
        self.record(format!("update_runtime_config {pod_cidr}"))
    }
    async fn cgroup_driver(&self) -> CriResult<CgroupDriver> {
        self.record("cgroup_driver".into())?;
        Ok(CgroupDriver::Cgroupfs)
    }
}

#[async_trait]
impl PodBackend for Fake {
    async fn run_pod_sandbox(&self, req: RunPodSandbox) -> CriResult<String> {
        self.record(format!("run_pod_sandbox {}", req.metadata().name))?;
        *self.last_run.lock().unwrap() = Some(req);
        Ok("pod1".into())
    }
    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.record(format!("stop_pod_sandbox {id}"))
    }
    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.record(format!("remove_pod_sandbox {id}"))
    }
    async fn pod_sandbox_status(&self, id: &str, verbose: bool) -> CriResult<PodStatus> {
        self.record(format!("pod_sandbox_status {id} verbose={verbose}"))?;
        Ok(PodStatus {
            status: api::PodSandboxStatus {
                id: id.into(),
                state: PodState::Ready.to_proto(),
                ..Default::default()
            },
            info: [("info".to_string(), "{}".to_string())].into(),
            ..Default::default()
        })
    }
    async fn list_pod_sandboxes(&self, filter: &PodFilter) -> CriResult<Vec<api::PodSandbox>> {
        self.record(format!("list_pod_sandboxes {filter:?}"))?;
        let pods = self.pods.lock().unwrap();
        Ok(pods.iter().filter(|p| filter.matches(p)).cloned().collect())
    }
    async fn pod_sandbox_stats(&self, id: &str) -> CriResult<api::PodSandboxStats> {
        self.record(format!("pod_sandbox_stats {id}"))?;
        Ok(api::PodSandboxStats::default())
    }
    async fn list_pod_sandbox_stats(
        &self,
        filter: &PodStatsFilter,
    ) -> CriResult<Vec<api::PodSandboxStats>> {
        self.record(format!("list_pod_sandbox_stats {filter:?}"))?;
        Ok(vec![api::PodSandboxStats::default(); 2])
    }
}

#[async_trait]
impl ContainerBackend for Fake {
    async fn create_container(&self, req: CreateContainer) -> CriResult<String> {
        self.record(format!(
            "create_container {} {} {}",
            req.pod_sandbox_id,
            req.metadata().name,
            req.image()
        ))?;
        *self.last_create.lock().unwrap() = Some(req);
        Ok("ctr1".into())
    }
    async fn start_container(&self, id: &str) -> CriResult<()> {
        self.record(format!("start_container {id}"))
    }
    async fn stop_container(&self, id: &str, timeout: Duration) -> CriResult<()> {
        self.record(format!("stop_container {id} {}s", timeout.as_secs()))
    }
    async fn remove_container(&self, id: &str) -> CriResult<()> {
        self.record(format!("remove_container {id}"))
    }
    async fn list_containers(&self, filter: &ContainerFilter) -> CriResult<Vec<api::Container>> {
        self.record(format!("list_containers {filter:?}"))?;
        let cs = self.containers.lock().unwrap();
        Ok(cs.iter().filter(|c| filter.matches(c)).cloned().collect())
    }
    async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> CriResult<WithInfo<api::ContainerStatus>> {
        self.record(format!("container_status {id} verbose={verbose}"))?;
        Ok(WithInfo {
            status: api::ContainerStatus {
                id: id.into(),
                state: ContainerState::Running.to_proto(),
                ..Default::default()
            },
            info: [("info".to_string(), "{}".to_string())].into(),
        })
    }
    async fn update_container_resources(
        &self,
        id: &str,
        linux: Option<api::LinuxContainerResources>,
        _annotations: HashMap<String, String>,
    ) -> CriResult<()> {
        let shares = linux.map(|l| l.cpu_shares).unwrap_or_default();
        self.record(format!("update_container_resources {id} shares={shares}"))
    }
    async fn reopen_container_log(&self, id: &str) -> CriResult<()> {
        self.record(format!("reopen_container_log {id}"))
    }
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Option<Duration>,
    ) -> CriResult<ExecSyncOutput> {
        self.record(format!("exec_sync {id} {cmd:?} {timeout:?}"))?;
        Ok(ExecSyncOutput {
            stdout: b"out".to_vec(),
            stderr: b"err".to_vec(),
            exit_code: 3,
        })
    }
    async fn container_stats(&self, id: &str) -> CriResult<api::ContainerStats> {
        self.record(format!("container_stats {id}"))?;
        Ok(api::ContainerStats::default())
    }
    async fn list_container_stats(
        &self,
        filter: &ContainerStatsFilter,
    ) -> CriResult<Vec<api::ContainerStats>> {
        self.record(format!("list_container_stats {filter:?}"))?;
        Ok(Vec::new())
    }
    fn container_events(&self) -> CriResult<EventStream> {
        self.calls.lock().unwrap().push("container_events".into());
        let events = self.events.lock().unwrap().clone();
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

#[async_trait]
impl ImageBackend for Fake {
    async fn list_images(&self, filter: Option<&api::ImageSpec>) -> CriResult<Vec<api::Image>> {
        self.record(format!(
            "list_images {:?}",
            filter.map(|f| f.image.as_str())
        ))?;
        Ok(self.images.lock().unwrap().clone())
    }
    async fn image_status(
        &self,
        image: &api::ImageSpec,
        verbose: bool,
    ) -> CriResult<Option<WithInfo<api::Image>>> {
        self.record(format!("image_status {} verbose={verbose}", image.image))?;
        let images = self.images.lock().unwrap();
        Ok(images
            .iter()
            .find(|i| i.repo_tags.contains(&image.image))
            .map(|i| WithInfo {
                status: i.clone(),
                info: [("info".to_string(), "{}".to_string())].into(),
            }))
    }
    async fn pull_image(&self, req: PullImage) -> CriResult<String> {
        self.record(format!("pull_image {}", req.image.image))?;
        *self.last_pull.lock().unwrap() = Some(req);
        Ok("sha256:abc".into())
    }
    async fn remove_image(&self, image: &api::ImageSpec) -> CriResult<()> {
        self.record(format!("remove_image {}", image.image))
    }
    async fn image_fs_info(&self) -> CriResult<FsInfo> {
        self.record("image_fs_info".into())?;
        Ok(FsInfo {
            image_filesystems: vec![api::FilesystemUsage {
                timestamp: 1,
                ..Default::default()
            }],
            container_filesystems: Vec::new(),
        })
    }
}

#[async_trait]
impl StreamCheck for Fake {
    async fn check_container_running(&self, container_id: &str) -> CriResult<()> {
        self.record(format!("check_container_running {container_id}"))
    }
    async fn check_pod_ready(&self, pod_sandbox_id: &str) -> CriResult<()> {
        self.record(format!("check_pod_ready {pod_sandbox_id}"))
    }
}
