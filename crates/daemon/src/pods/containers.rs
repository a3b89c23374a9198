//! The CRI container lifecycle over the daemon's containers: create (translated config, pod
//! namespaces to join), start (and its CRI log), stop, remove, list, status, resources.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use berth_api_types::ErrorKind;
use berth_cri::api;
use berth_cri::backend::{ContainerBackend, EventStream};
use berth_cri::types::{
    ContainerFilter, ContainerState, ContainerStatsFilter, CreateContainer, ExecSyncOutput,
    WithInfo,
};
use berth_cri::{CriError, CriResult};

use super::store::{encode, ContainerRecord};
use super::{cri_err, now_nanos, rfc3339_nanos, translate, PodService};
use crate::model::{Container, PodJoin, Status};

/// The CRI state of a daemon container.
pub(crate) fn cri_state(c: Option<&Container>) -> ContainerState {
    match c.map(|c| c.state.status) {
        Some(Status::Created) => ContainerState::Created,
        Some(Status::Running | Status::Paused | Status::Restarting) => ContainerState::Running,
        Some(Status::Exited | Status::Dead | Status::Removing) => ContainerState::Exited,
        None => ContainerState::Unknown,
    }
}

impl PodService {
    pub(crate) fn container_or_not_found(&self, id: &str) -> CriResult<ContainerRecord> {
        self.store
            .find_container(id)
            .ok_or_else(|| CriError::not_found("container", id))
    }

    pub(crate) fn summary(&self, r: &ContainerRecord) -> api::Container {
        let cfg = r.config();
        let c = self.daemon.get(&r.id);
        api::Container {
            id: r.id.clone(),
            pod_sandbox_id: r.pod_id.clone(),
            metadata: cfg.metadata,
            image: cfg.image,
            image_ref: r.image_ref.clone(),
            state: cri_state(c.as_ref()).to_proto(),
            created_at: r.created_at,
            labels: cfg.labels,
            annotations: cfg.annotations,
            image_id: r.image_ref.clone(),
        }
    }

    pub(crate) fn status_of(&self, r: &ContainerRecord) -> api::ContainerStatus {
        let cfg = r.config();
        let c = self.daemon.get(&r.id);
        let state = cri_state(c.as_ref());
        let (started_at, finished_at, exit_code, oom, error) = match &c {
            Some(c) => (
                rfc3339_nanos(&c.state.started_at),
                rfc3339_nanos(&c.state.finished_at),
                i32::try_from(c.state.exit_code).unwrap_or(-1),
                c.state.oom_killed,
                c.state.error.clone(),
            ),
            None => (0, 0, 0, false, String::new()),
        };
        let reason = if state != ContainerState::Exited {
            ""
        } else if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        api::ContainerStatus {
            id: r.id.clone(),
            metadata: cfg.metadata,
            state: state.to_proto(),
            created_at: r.created_at,
            started_at: if state == ContainerState::Created {
                0
            } else {
                started_at
            },
            finished_at: if state == ContainerState::Exited {
                finished_at
            } else {
                0
            },
            exit_code,
            image: cfg.image,
            image_ref: r.image_ref.clone(),
            reason: reason.to_string(),
            message: error,
            labels: cfg.labels,
            annotations: cfg.annotations,
            mounts: cfg.mounts,
            log_path: r
                .log_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            resources: cfg
                .linux
                .and_then(|l| l.resources)
                .map(|linux| api::ContainerResources {
                    linux: Some(linux),
                    windows: None,
                }),
            image_id: r.image_ref.clone(),
            user: self.container_user(&r.id),
            stop_signal: 0,
        }
    }

    /// The identity the container's process started with, from the spec of its last start
    /// (none before its first).
    fn container_user(&self, id: &str) -> Option<api::ContainerUser> {
        let spec: serde_json::Value =
            serde_json::from_slice(&self.daemon.runtime.read_spec(id).ok()?).ok()?;
        let user = &spec["process"]["user"];
        let id_of = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
        Some(api::ContainerUser {
            linux: Some(api::LinuxContainerUser {
                uid: id_of(&user["uid"]),
                gid: id_of(&user["gid"]),
                supplemental_groups: user["additionalGids"]
                    .as_array()
                    .map(|a| a.iter().map(id_of).collect())
                    .unwrap_or_default(),
            }),
        })
    }

    /// Stops a pod's container (SIGTERM, SIGKILL after `timeout`); stopped or gone is fine.
    pub(crate) async fn stop_cri_container(&self, id: &str, timeout: Duration) -> CriResult<()> {
        let secs = timeout.as_secs() as i64 + i64::from(timeout.subsec_nanos() > 0);
        match self.daemon.container_stop(id, None, Some(secs)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind, ErrorKind::NotModified | ErrorKind::NotFound) => Ok(()),
            Err(e) => Err(cri_err("container", id, e)),
        }
    }

    /// Removes a pod's container (forcibly) and its record.
    pub(crate) async fn remove_cri_container(&self, id: &str) -> CriResult<()> {
        let t0 = std::time::Instant::now();
        match self.daemon.remove_container_soon(id).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(cri_err("container", id, e)),
        }
        self.close_log(id);
        self.store
            .delete_container(id)
            .map_err(CriError::internal)?;
        self.emit(id, api::ContainerEventType::ContainerDeletedEvent);
        tracing::debug!(container = %id, total = ?t0.elapsed(), "cri container removed");
        Ok(())
    }
}

#[async_trait]
impl ContainerBackend for PodService {
    async fn create_container(&self, req: CreateContainer) -> CriResult<String> {
        let (_g, pod) = self.lock_pod(&req.pod_sandbox_id).await?;
        if !pod.ready {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let pod_cfg = pod.config();
        let image = self
            .daemon
            .resolve_image(req.image())
            .map_err(|e| cri_err("image", req.image(), e))?;
        let t0 = std::time::Instant::now();
        let (create, joins) =
            translate::create_request(&pod.id, &pod_cfg, &req.config, req.image())?;
        let name = translate::container_name(
            req.metadata(),
            &pod_cfg.metadata.clone().unwrap_or_default(),
        );
        let id = match self
            .daemon
            .container_create(Some(name.clone()), create)
            .await
        {
            Ok(r) => r.id,
            Err(e) if e.kind == ErrorKind::Conflict => {
                return Err(CriError::AlreadyExists(format!(
                    "container name {name} is reserved: {}",
                    e.message
                )))
            }
            Err(e) => return Err(cri_err("config", &name, e)),
        };
        let t_created = t0.elapsed();
        let log_path = (!req.config.log_path.is_empty() && !pod_cfg.log_directory.is_empty())
            .then(|| PathBuf::from(&pod_cfg.log_directory).join(&req.config.log_path));
        let record = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            created_at: now_nanos(),
            config: encode(&req.config),
            image_ref: image.id.clone(),
            log_path,
        };
        let joined = self.daemon.get(&id).map(|mut c| {
            c.pod_join = Some(PodJoin {
                netns: pod.netns.clone().filter(|_| joins.netns),
                ipc: pod.ipc.clone().filter(|_| joins.ipc),
                uts: pod.uts.clone().filter(|_| joins.uts),
                pid: pod.pid_ns.clone().filter(|_| joins.pid),
                image_groups: translate::image_groups(&req.config),
            });
            self.daemon.save(&c)
        });
        let saved = match joined {
            Some(Ok(())) => self
                .store
                .put_container(&record)
                .map_err(CriError::internal),
            Some(Err(e)) => Err(CriError::Internal(e.message)),
            None => Err(CriError::Internal(format!("container {id} vanished"))),
        };
        if let Err(e) = saved {
            let _ = self.daemon.container_remove(&id, true, false).await;
            return Err(e);
        }
        tracing::debug!(container = %id, ?t_created, total = ?t0.elapsed(), "cri container created");
        self.emit(&id, api::ContainerEventType::ContainerCreatedEvent);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        let r = self.container_or_not_found(id)?;
        let pod = self.pod_or_not_found(&r.pod_id)?;
        if !pod.ready {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let state = cri_state(self.daemon.get(&r.id).as_ref());
        if state != ContainerState::Created {
            return Err(CriError::FailedPrecondition(format!(
                "container {} is in {state:?} state, not Created",
                r.id
            )));
        }
        let t0 = std::time::Instant::now();
        self.daemon
            .container_start(&r.id)
            .await
            .map_err(|e| cri_err("container", &r.id, e))?;
        let t_started = t0.elapsed();
        if let Some(path) = &r.log_path {
            self.follow_log(&r.id, path, 0.0)?;
        }
        tracing::debug!(container = %r.id, ?t_started, total = ?t0.elapsed(), "cri container started");
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> CriResult<()> {
        let r = self.container_or_not_found(id)?;
        self.stop_cri_container(&r.id, timeout).await
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        let r = self.container_or_not_found(id)?;
        self.remove_cri_container(&r.id).await
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> CriResult<Vec<api::Container>> {
        let mut out: Vec<api::Container> = self
            .store
            .containers()
            .iter()
            .map(|r| self.summary(r))
            .filter(|c| filter.matches(c))
            .collect();
        out.sort_by_key(|c| c.created_at);
        Ok(out)
    }

    async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> CriResult<WithInfo<api::ContainerStatus>> {
        let r = self.container_or_not_found(id)?;
        let status = self.status_of(&r);
        let mut info = HashMap::new();
        if verbose {
            let c = self.daemon.get(&r.id);
            info.insert(
                "info".to_string(),
                serde_json::json!({
                    "sandboxID": r.pod_id,
                    "pid": c.as_ref().map(|c| c.state.pid).unwrap_or(0),
                    "name": c.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
                    "image": c.as_ref().map(|c| c.image_id.clone()).unwrap_or_default(),
                    "netns": c.as_ref().and_then(|c| c.pod_join.as_ref()).and_then(|p| p.netns.clone()),
                })
                .to_string(),
            );
        }
        Ok(WithInfo { status, info })
    }

    async fn update_container_resources(
        &self,
        id: &str,
        linux: Option<api::LinuxContainerResources>,
        _annotations: HashMap<String, String>,
    ) -> CriResult<()> {
        let r = self.container_or_not_found(id)?;
        let Some(res) = linux else { return Ok(()) };
        let mut body = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            body.insert(k.to_string(), v);
        };
        if res.cpu_period > 0 {
            put("CpuPeriod", res.cpu_period.into());
        }
        if res.cpu_quota != 0 {
            put("CpuQuota", res.cpu_quota.into());
        }
        if res.cpu_shares > 0 {
            put("CpuShares", res.cpu_shares.into());
        }
        if res.memory_limit_in_bytes > 0 {
            put("Memory", res.memory_limit_in_bytes.into());
            put("MemorySwap", (-1).into());
        }
        if !res.cpuset_cpus.is_empty() {
            put("CpusetCpus", res.cpuset_cpus.clone().into());
        }
        if !res.cpuset_mems.is_empty() {
            put("CpusetMems", res.cpuset_mems.clone().into());
        }
        self.daemon
            .container_update(&r.id, body.into(), Default::default())
            .await
            .map_err(|e| cri_err("container", &r.id, e))?;
        // The new resources show in ContainerStatus.
        let mut cfg = r.config();
        let l = cfg.linux.get_or_insert_with(Default::default);
        l.resources = Some(res);
        let mut r = r;
        r.config = encode(&cfg);
        self.store.put_container(&r).map_err(CriError::internal)
    }

    async fn reopen_container_log(&self, id: &str) -> CriResult<()> {
        let r = self.container_or_not_found(id)?;
        if cri_state(self.daemon.get(&r.id).as_ref()) != ContainerState::Running {
            return Err(CriError::FailedPrecondition(format!(
                "container {} is not running",
                r.id
            )));
        }
        self.reopen_log(&r.id)
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Option<Duration>,
    ) -> CriResult<ExecSyncOutput> {
        let r = self.container_or_not_found(id)?;
        self.exec_sync_in(&r.id, cmd, timeout).await
    }

    async fn container_stats(&self, id: &str) -> CriResult<api::ContainerStats> {
        let r = self.container_or_not_found(id)?;
        Ok(self.stats_of(&r))
    }

    async fn list_container_stats(
        &self,
        filter: &ContainerStatsFilter,
    ) -> CriResult<Vec<api::ContainerStats>> {
        Ok(self
            .store
            .containers()
            .iter()
            .filter(|r| filter.matches(&self.summary(r)))
            .map(|r| self.stats_of(r))
            .collect())
    }

    fn container_events(&self) -> CriResult<EventStream> {
        Ok(self.event_stream())
    }
}
