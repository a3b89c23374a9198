//! `runtime.v1.RuntimeService` over the backends.

use tonic::{Request, Response, Status};

use super::{chunked, idempotent, now_nanos, require, CriServer, GrpcStream};
use super::{CRI_API_VERSION, CRI_VERSION};
use crate::api::runtime_service_server::RuntimeService;
use crate::api::*;
use crate::error::{CriError, CriResult};
use crate::streaming::{AttachParams, ExecParams, PortForwardParams, StreamRequest};
use crate::types::{self, timeout_from_secs, CgroupDriver};

type R<T> = Result<Response<T>, Status>;

fn ok<T>(v: T) -> R<T> {
    Ok(Response::new(v))
}

/// RunPodSandbox: the config with its metadata (name, namespace, uid) is required.
fn validate_pod_config(config: Option<PodSandboxConfig>) -> CriResult<PodSandboxConfig> {
    let config = config.ok_or_else(|| CriError::missing("config"))?;
    let md = config
        .metadata
        .as_ref()
        .ok_or_else(|| CriError::missing("config.metadata"))?;
    require(&md.name, "config.metadata.name")?;
    require(&md.namespace, "config.metadata.namespace")?;
    require(&md.uid, "config.metadata.uid")?;
    Ok(config)
}

/// CreateContainer: metadata with a name and an image are required.
fn validate_container_config(config: Option<ContainerConfig>) -> CriResult<ContainerConfig> {
    let config = config.ok_or_else(|| CriError::missing("config"))?;
    let md = config
        .metadata
        .as_ref()
        .ok_or_else(|| CriError::missing("config.metadata"))?;
    require(&md.name, "config.metadata.name")?;
    let image = config
        .image
        .as_ref()
        .ok_or_else(|| CriError::missing("config.image"))?;
    require(&image.image, "config.image.image")?;
    Ok(config)
}

/// Exec and Attach: some stream must be asked for, and a TTY merges stderr into stdout.
fn validate_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> CriResult<()> {
    if !stdin && !stdout && !stderr {
        return Err(CriError::invalid(
            "stdin",
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    if tty && stderr {
        return Err(CriError::invalid(
            "stderr",
            "tty and stderr cannot both be true",
        ));
    }
    Ok(())
}

impl CriServer {
    fn stream_url(&self, req: StreamRequest) -> CriResult<String> {
        match &self.streams {
            Some(s) => s.issue(req),
            None => Err(CriError::Unimplemented("streaming".into())),
        }
    }
}

#[tonic::async_trait]
impl RuntimeService for CriServer {
    async fn version(&self, _req: Request<VersionRequest>) -> R<VersionResponse> {
        let v = self.backends.runtime.version().await?;
        ok(VersionResponse {
            version: CRI_VERSION.into(),
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            runtime_api_version: CRI_API_VERSION.into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<RunPodSandboxRequest>,
    ) -> R<RunPodSandboxResponse> {
        let req = req.into_inner();
        let config = validate_pod_config(req.config)?;
        let id = self
            .backends
            .pods
            .run_pod_sandbox(types::RunPodSandbox {
                config,
                runtime_handler: req.runtime_handler,
            })
            .await?;
        ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<StopPodSandboxRequest>,
    ) -> R<StopPodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        require(&id, "pod_sandbox_id")?;
        idempotent(self.backends.pods.stop_pod_sandbox(&id).await)?;
        ok(StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<RemovePodSandboxRequest>,
    ) -> R<RemovePodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        require(&id, "pod_sandbox_id")?;
        idempotent(self.backends.pods.remove_pod_sandbox(&id).await)?;
        ok(RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<PodSandboxStatusRequest>,
    ) -> R<PodSandboxStatusResponse> {
        let req = req.into_inner();
        require(&req.pod_sandbox_id, "pod_sandbox_id")?;
        let s = self
            .backends
            .pods
            .pod_sandbox_status(&req.pod_sandbox_id, req.verbose)
            .await?;
        ok(PodSandboxStatusResponse {
            status: Some(s.status),
            info: if req.verbose {
                s.info
            } else {
                Default::default()
            },
            containers_statuses: s.containers_statuses,
            timestamp: if s.timestamp == 0 {
                now_nanos()
            } else {
                s.timestamp
            },
        })
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<ListPodSandboxRequest>,
    ) -> R<ListPodSandboxResponse> {
        let filter = types::PodFilter::from_proto(req.into_inner().filter);
        let items = self.backends.pods.list_pod_sandboxes(&filter).await?;
        ok(ListPodSandboxResponse { items })
    }

    type StreamPodSandboxesStream = GrpcStream<StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        req: Request<StreamPodSandboxesRequest>,
    ) -> R<Self::StreamPodSandboxesStream> {
        let filter = types::PodFilter::from_proto(req.into_inner().filter);
        let items = self.backends.pods.list_pod_sandboxes(&filter).await?;
        ok(chunked(items, |pod_sandboxes| StreamPodSandboxesResponse {
            pod_sandboxes,
        }))
    }

    async fn create_container(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> R<CreateContainerResponse> {
        let req = req.into_inner();
        require(&req.pod_sandbox_id, "pod_sandbox_id")?;
        let config = validate_container_config(req.config)?;
        let id = self
            .backends
            .containers
            .create_container(types::CreateContainer {
                pod_sandbox_id: req.pod_sandbox_id,
                config,
                sandbox_config: req.sandbox_config,
            })
            .await?;
        ok(CreateContainerResponse { container_id: id })
    }

    async fn start_container(
        &self,
        req: Request<StartContainerRequest>,
    ) -> R<StartContainerResponse> {
        let id = req.into_inner().container_id;
        require(&id, "container_id")?;
        self.backends.containers.start_container(&id).await?;
        ok(StartContainerResponse {})
    }

    async fn stop_container(&self, req: Request<StopContainerRequest>) -> R<StopContainerResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        let timeout = timeout_from_secs(req.timeout).unwrap_or_default();
        idempotent(
            self.backends
                .containers
                .stop_container(&req.container_id, timeout)
                .await,
        )?;
        ok(StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        req: Request<RemoveContainerRequest>,
    ) -> R<RemoveContainerResponse> {
        let id = req.into_inner().container_id;
        require(&id, "container_id")?;
        idempotent(self.backends.containers.remove_container(&id).await)?;
        ok(RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        req: Request<ListContainersRequest>,
    ) -> R<ListContainersResponse> {
        let filter = types::ContainerFilter::from_proto(req.into_inner().filter);
        let containers = self.backends.containers.list_containers(&filter).await?;
        ok(ListContainersResponse { containers })
    }

    type StreamContainersStream = GrpcStream<StreamContainersResponse>;

    async fn stream_containers(
        &self,
        req: Request<StreamContainersRequest>,
    ) -> R<Self::StreamContainersStream> {
        let filter = types::ContainerFilter::from_proto(req.into_inner().filter);
        let items = self.backends.containers.list_containers(&filter).await?;
        ok(chunked(items, |containers| StreamContainersResponse {
            containers,
        }))
    }

    async fn container_status(
        &self,
        req: Request<ContainerStatusRequest>,
    ) -> R<ContainerStatusResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        let s = self
            .backends
            .containers
            .container_status(&req.container_id, req.verbose)
            .await?;
        ok(ContainerStatusResponse {
            status: Some(s.status),
            info: if req.verbose {
                s.info
            } else {
                Default::default()
            },
        })
    }

    async fn update_container_resources(
        &self,
        req: Request<UpdateContainerResourcesRequest>,
    ) -> R<UpdateContainerResourcesResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        self.backends
            .containers
            .update_container_resources(&req.container_id, req.linux, req.annotations)
            .await?;
        ok(UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        req: Request<ReopenContainerLogRequest>,
    ) -> R<ReopenContainerLogResponse> {
        let id = req.into_inner().container_id;
        require(&id, "container_id")?;
        self.backends.containers.reopen_container_log(&id).await?;
        ok(ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, req: Request<ExecSyncRequest>) -> R<ExecSyncResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(CriError::missing("cmd").into());
        }
        let out = self
            .backends
            .containers
            .exec_sync(&req.container_id, req.cmd, timeout_from_secs(req.timeout))
            .await?;
        ok(ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }

    async fn exec(&self, req: Request<ExecRequest>) -> R<ExecResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(CriError::missing("cmd").into());
        }
        validate_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        self.backends
            .stream_check
            .check_container_running(&req.container_id)
            .await?;
        let url = self.stream_url(StreamRequest::Exec(ExecParams {
            container_id: req.container_id,
            cmd: req.cmd,
            tty: req.tty,
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        }))?;
        ok(ExecResponse { url })
    }

    async fn attach(&self, req: Request<AttachRequest>) -> R<AttachResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        validate_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        self.backends
            .stream_check
            .check_container_running(&req.container_id)
            .await?;
        let url = self.stream_url(StreamRequest::Attach(AttachParams {
            container_id: req.container_id,
            tty: req.tty,
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        }))?;
        ok(AttachResponse { url })
    }

    async fn port_forward(&self, req: Request<PortForwardRequest>) -> R<PortForwardResponse> {
        let req = req.into_inner();
        require(&req.pod_sandbox_id, "pod_sandbox_id")?;
        let ports =
            req.port
                .iter()
                .map(|&p| {
                    u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                        CriError::invalid("port", format!("{p} is not a valid port"))
                    })
                })
                .collect::<CriResult<Vec<u16>>>()?;
        self.backends
            .stream_check
            .check_pod_ready(&req.pod_sandbox_id)
            .await?;
        let url = self.stream_url(StreamRequest::PortForward(PortForwardParams {
            pod_sandbox_id: req.pod_sandbox_id,
            ports,
        }))?;
        ok(PortForwardResponse { url })
    }

    async fn container_stats(
        &self,
        req: Request<ContainerStatsRequest>,
    ) -> R<ContainerStatsResponse> {
        let id = req.into_inner().container_id;
        require(&id, "container_id")?;
        let stats = self.backends.containers.container_stats(&id).await?;
        ok(ContainerStatsResponse { stats: Some(stats) })
    }

    async fn list_container_stats(
        &self,
        req: Request<ListContainerStatsRequest>,
    ) -> R<ListContainerStatsResponse> {
        let filter = types::ContainerStatsFilter::from_proto(req.into_inner().filter);
        let stats = self
            .backends
            .containers
            .list_container_stats(&filter)
            .await?;
        ok(ListContainerStatsResponse { stats })
    }

    type StreamContainerStatsStream = GrpcStream<StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        req: Request<StreamContainerStatsRequest>,
    ) -> R<Self::StreamContainerStatsStream> {
        let filter = types::ContainerStatsFilter::from_proto(req.into_inner().filter);
        let stats = self
            .backends
            .containers
            .list_container_stats(&filter)
            .await?;
        ok(chunked(stats, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        }))
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<PodSandboxStatsRequest>,
    ) -> R<PodSandboxStatsResponse> {
        let id = req.into_inner().pod_sandbox_id;
        require(&id, "pod_sandbox_id")?;
        let stats = self.backends.pods.pod_sandbox_stats(&id).await?;
        ok(PodSandboxStatsResponse { stats: Some(stats) })
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<ListPodSandboxStatsRequest>,
    ) -> R<ListPodSandboxStatsResponse> {
        let filter = types::PodStatsFilter::from_proto(req.into_inner().filter);
        let stats = self.backends.pods.list_pod_sandbox_stats(&filter).await?;
        ok(ListPodSandboxStatsResponse { stats })
    }

    type StreamPodSandboxStatsStream = GrpcStream<StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        req: Request<StreamPodSandboxStatsRequest>,
    ) -> R<Self::StreamPodSandboxStatsStream> {
        let filter = types::PodStatsFilter::from_proto(req.into_inner().filter);
        let stats = self.backends.pods.list_pod_sandbox_stats(&filter).await?;
        ok(chunked(stats, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    }

    async fn update_runtime_config(
        &self,
        req: Request<UpdateRuntimeConfigRequest>,
    ) -> R<UpdateRuntimeConfigResponse> {
        let pod_cidr = req
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        self.backends
            .runtime
            .update_runtime_config(pod_cidr)
            .await?;
        ok(UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, req: Request<StatusRequest>) -> R<StatusResponse> {
        let verbose = req.into_inner().verbose;
        let s = self.backends.runtime.status(verbose).await?;
        ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: s
                    .conditions
                    .into_iter()
                    .map(|c| RuntimeCondition {
                        r#type: c.kind,
                        status: c.ready,
                        reason: c.reason,
                        message: c.message,
                    })
                    .collect(),
            }),
            info: if verbose { s.info } else { Default::default() },
            runtime_handlers: s.runtime_handlers,
            features: s.features,
        })
    }

    async fn checkpoint_container(
        &self,
        req: Request<CheckpointContainerRequest>,
    ) -> R<CheckpointContainerResponse> {
        let req = req.into_inner();
        require(&req.container_id, "container_id")?;
        self.backends
            .containers
            .checkpoint_container(
                &req.container_id,
                &req.location,
                timeout_from_secs(req.timeout),
            )
            .await?;
        ok(CheckpointContainerResponse {})
    }

    type GetContainerEventsStream = GrpcStream<ContainerEventResponse>;

    async fn get_container_events(
        &self,
        _req: Request<GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        use futures_util::StreamExt;
        let events = self.backends.containers.container_events()?;
        ok(Box::pin(events.map(Ok)))
    }

    async fn list_metric_descriptors(
        &self,
        _req: Request<ListMetricDescriptorsRequest>,
    ) -> R<ListMetricDescriptorsResponse> {
        let descriptors = self.backends.pods.list_metric_descriptors().await?;
        ok(ListMetricDescriptorsResponse { descriptors })
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<ListPodSandboxMetricsRequest>,
    ) -> R<ListPodSandboxMetricsResponse> {
        let pod_metrics = self.backends.pods.list_pod_sandbox_metrics().await?;
        ok(ListPodSandboxMetricsResponse { pod_metrics })
    }

    type StreamPodSandboxMetricsStream = GrpcStream<StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        _req: Request<StreamPodSandboxMetricsRequest>,
    ) -> R<Self::StreamPodSandboxMetricsStream> {
        let metrics = self.backends.pods.list_pod_sandbox_metrics().await?;
        ok(chunked(metrics, |pod_sandbox_metrics| {
            StreamPodSandboxMetricsResponse {
                pod_sandbox_metrics,
            }
        }))
    }

    async fn runtime_config(
        &self,
        _req: Request<RuntimeConfigRequest>,
    ) -> R<RuntimeConfigResponse> {
        let driver = match self.backends.runtime.cgroup_driver().await? {
            CgroupDriver::Systemd => CgroupDriver_::Systemd,
            CgroupDriver::Cgroupfs => CgroupDriver_::Cgroupfs,
        };
        ok(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        })
    }

    async fn update_pod_sandbox_resources(
        &self,
        req: Request<UpdatePodSandboxResourcesRequest>,
    ) -> R<UpdatePodSandboxResourcesResponse> {
        let req = req.into_inner();
        require(&req.pod_sandbox_id, "pod_sandbox_id")?;
        self.backends
            .pods
            .update_pod_sandbox_resources(&req.pod_sandbox_id, req.overhead, req.resources)
            .await?;
        ok(UpdatePodSandboxResourcesResponse {})
    }
}

/// The generated enum, named apart from the typed [`CgroupDriver`].
use crate::api::CgroupDriver as CgroupDriver_;
