//! RunPodSandbox and the rest of a pod's lifecycle: pinned namespaces, CNI ADD/DEL, the pod
//! record; stop and remove take the pod's containers with them.

use std::time::Duration;

use async_trait::async_trait;
use berth_cri::api;
use berth_cri::backend::PodBackend;
use berth_cri::cni::{NetworkConfigList, PortMapping, RuntimeConf};
use berth_cri::types::{PodFilter, PodState, PodStatsFilter, PodStatus, RunPodSandbox};
use berth_cri::{CriError, CriResult};

use super::store::{encode, PodRecord};
use super::translate::pod_hostname;
use super::{new_id, now_nanos, nsfs, pidns, PodService};

/// `NamespaceMode::Node` as the proto numbers it.
pub(crate) const NODE: i32 = api::NamespaceMode::Node as i32;
/// `NamespaceMode::Pod`, the default.
pub(crate) const POD: i32 = api::NamespaceMode::Pod as i32;

/// The pod's namespace options (all POD when unset).
pub(crate) fn ns_options(cfg: &api::PodSandboxConfig) -> api::NamespaceOption {
    cfg.linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

fn port_mappings(cfg: &api::PodSandboxConfig) -> Vec<PortMapping> {
    cfg.port_mappings
        .iter()
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port).ok().filter(|n| *n > 0)?;
            let container_port = u16::try_from(p.container_port).ok().filter(|n| *n > 0)?;
            Some((p, host_port, container_port))
        })
        .map(|(p, host_port, container_port)| PortMapping {
            host_port,
            container_port,
            protocol: match api::Protocol::try_from(p.protocol) {
                Ok(api::Protocol::Udp) => "udp",
                Ok(api::Protocol::Sctp) => "sctp",
                _ => "tcp",
            }
            .to_string(),
            host_ip: p.host_ip.clone(),
        })
        .collect()
}

impl PodService {
    /// The pod `key` names (id or unique prefix), with its lock held: read again under the
    /// lock, as a call that held it before may have changed or removed it.
    pub(crate) async fn lock_pod(
        &self,
        key: &str,
    ) -> CriResult<(tokio::sync::OwnedMutexGuard<()>, PodRecord)> {
        let id = self.pod_or_not_found(key)?.id;
        let guard = self.locks.lock(&id).await;
        Ok((guard, self.pod_or_not_found(&id)?))
    }

    pub(crate) fn pod_or_not_found(&self, id: &str) -> CriResult<PodRecord> {
        self.store
            .find_pod(id)
            .ok_or_else(|| CriError::not_found("pod sandbox", id))
    }

    fn pod_summary(&self, r: &PodRecord) -> api::PodSandbox {
        let cfg = r.config();
        api::PodSandbox {
            id: r.id.clone(),
            metadata: cfg.metadata.clone(),
            state: if r.ready {
                PodState::Ready
            } else {
                PodState::NotReady
            }
            .to_proto(),
            created_at: r.created_at,
            labels: cfg.labels,
            annotations: cfg.annotations,
            runtime_handler: r.runtime_handler.clone(),
        }
    }

    /// Undoes what a (partial) RunPodSandbox set up: CNI, pinned namespaces, the directory.
    async fn teardown_network(&self, r: &mut PodRecord) -> CriResult<()> {
        let t0 = std::time::Instant::now();
        if let Some(att) = &r.attachment {
            self.cni
                .del(att)
                .await
                .map_err(|e| CriError::Internal(format!("CNI DEL of pod {}: {e}", r.id)))?;
            r.attachment = None;
        }
        let t_cni = t0.elapsed();
        for p in [r.netns.as_deref(), r.ipc.as_deref(), r.uts.as_deref()]
            .into_iter()
            .flatten()
        {
            nsfs::unpin(p)?;
        }
        if let Some(p) = r.pid_ns.take() {
            pidns::stop(r.pid_init, &p)?;
            r.pid_init = 0;
        }
        tracing::debug!(pod = %r.id, ?t_cni, total = ?t0.elapsed(), "pod network torn down");
        Ok(())
    }

    async fn setup_pod(&self, r: &mut PodRecord, cfg: &api::PodSandboxConfig) -> CriResult<()> {
        let t0 = std::time::Instant::now();
        let dir = self.ns_dir.join(&r.id);
        std::fs::create_dir_all(&dir).map_err(CriError::internal)?;
        let ns = ns_options(cfg);
        if ns.ipc != NODE {
            let p = dir.join("ipc");
            nsfs::pin_ipc(&p)?;
            r.ipc = Some(p);
        }
        if ns.network != NODE {
            let p = dir.join("uts");
            nsfs::pin_uts(&p, &pod_hostname(cfg))?;
            r.uts = Some(p);
        }
        if ns.pid == POD {
            let p = dir.join("pid");
            r.pid_init = pidns::start(&p)?;
            r.pid_ns = Some(p);
        }
        if ns.network == NODE {
            return Ok(());
        }
        let t_ns = t0.elapsed();
        let p = dir.join("net");
        nsfs::pin_net(&p)?;
        r.netns = Some(p.clone());
        let t_net = t0.elapsed();
        let list = NetworkConfigList::load_dir(&self.cfg.cni_conf_dir)
            .map_err(|e| CriError::Internal(e.to_string()))?
            .ok_or_else(|| {
                CriError::FailedPrecondition(format!(
                    "network not ready: no CNI network config in {}",
                    self.cfg.cni_conf_dir.display()
                ))
            })?;
        let md = cfg.metadata.clone().unwrap_or_default();
        let mut rt = RuntimeConf::for_pod(&r.id, &p, &md.namespace, &md.name, &md.uid);
        rt.port_mappings = port_mappings(cfg);
        let t_conf = t0.elapsed();
        let added = self.cni.add(&list, &rt).await;
        tracing::debug!(pod = %r.id, ?t_ns, ?t_net, ?t_conf, total = ?t0.elapsed(), "pod namespaces and network");
        match added {
            Ok((result, att)) => {
                r.ips = result
                    .pod_ips(&rt.ifname)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                r.attachment = Some(att);
                Ok(())
            }
            Err(e) => {
                // Whatever the plugins did before failing goes too.
                let _ = self.cni.del_with(&list, &rt, None).await;
                Err(CriError::Internal(format!(
                    "setting up the network of pod {}: {e}",
                    md.name
                )))
            }
        }
    }

    /// Stops the pod's containers at once and tears its network down (idempotent). The two
    /// are independent (a dying container needs no network; DEL needs no stopped container),
    /// so they run side by side, as do the containers' stops; both are done before this
    /// answers. The record is rewritten only when something changed (a stopped pod's is not).
    async fn stop_pod(&self, r: &mut PodRecord) -> CriResult<()> {
        let t0 = std::time::Instant::now();
        let dirty = r.ready || r.attachment.is_some() || r.pid_ns.is_some();
        let containers = self.store.containers_of(&r.id);
        let stops = async {
            let res = futures_util::future::join_all(
                containers
                    .iter()
                    .map(|c| self.stop_cri_container(&c.id, Duration::ZERO)),
            )
            .await;
            (res, t0.elapsed())
        };
        let ((stopped, t_stopped), torn_down) = tokio::join!(stops, self.teardown_network(r));
        stopped.into_iter().collect::<CriResult<Vec<()>>>()?;
        torn_down?;
        r.ready = false;
        if dirty {
            self.store.put_pod(r).map_err(CriError::internal)?;
        }
        tracing::debug!(pod = %r.id, ?t_stopped, total = ?t0.elapsed(), "pod stopped");
        Ok(())
    }
}

#[async_trait]
impl PodBackend for PodService {
    async fn run_pod_sandbox(&self, req: RunPodSandbox) -> CriResult<String> {
        let cfg = req.config;
        let md = cfg.metadata.clone().unwrap_or_default();
        let id = new_id();
        let name = format!("{}_{}_{}_{}", md.name, md.namespace, md.uid, md.attempt);
        // Held until the pod is stored or its start failed; other pods start meanwhile.
        let _reserved = self
            .locks
            .reserve_name(name.clone(), &id, || {
                self.store
                    .pods()
                    .into_iter()
                    .find(|p| {
                        let m = p.config().metadata.unwrap_or_default();
                        m.name == md.name
                            && m.namespace == md.namespace
                            && m.uid == md.uid
                            && m.attempt == md.attempt
                    })
                    .map(|p| p.id)
            })
            .map_err(|other| {
                CriError::AlreadyExists(format!("pod sandbox name {name} is reserved for {other}"))
            })?;
        let mut r = PodRecord {
            id,
            created_at: now_nanos(),
            ready: true,
            config: encode(&cfg),
            runtime_handler: req.runtime_handler,
            netns: None,
            ipc: None,
            uts: None,
            pid_ns: None,
            pid_init: 0,
            attachment: None,
            ips: Vec::new(),
        };
        let t0 = std::time::Instant::now();
        let res = match self.setup_pod(&mut r, &cfg).await {
            Ok(()) => self.store.put_pod(&r).map_err(CriError::internal),
            Err(e) => Err(e),
        };
        tracing::debug!(pod = %r.id, total = ?t0.elapsed(), "pod set up and stored");
        if let Err(e) = res {
            let _ = self.teardown_network(&mut r).await;
            let _ = std::fs::remove_dir_all(self.ns_dir.join(&r.id));
            let _ = self.store.delete_pod(&r.id);
            return Err(e);
        }
        tracing::info!(pod = %r.id, name = %md.name, ips = ?r.ips, "pod sandbox ready");
        Ok(r.id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let (_g, mut r) = self.lock_pod(id).await?;
        self.stop_pod(&mut r).await
    }

    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let (_g, mut r) = self.lock_pod(id).await?;
        let t0 = std::time::Instant::now();
        self.stop_pod(&mut r).await?;
        let t_stopped = t0.elapsed();
        for c in self.store.containers_of(&r.id) {
            self.remove_cri_container(&c.id).await?;
        }
        let t_containers = t0.elapsed();
        let _ = std::fs::remove_dir_all(self.ns_dir.join(&r.id));
        self.store.delete_pod(&r.id).map_err(CriError::internal)?;
        tracing::debug!(pod = %r.id, ?t_stopped, ?t_containers, total = ?t0.elapsed(), "pod removed");
        self.locks.forget(&r.id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str, verbose: bool) -> CriResult<PodStatus> {
        let r = self.pod_or_not_found(id)?;
        let cfg = r.config();
        let mut ips = r.ips.iter();
        let network = api::PodSandboxNetworkStatus {
            ip: ips.next().cloned().unwrap_or_default(),
            additional_ips: ips.map(|ip| api::PodIp { ip: ip.clone() }).collect(),
        };
        let status = api::PodSandboxStatus {
            id: r.id.clone(),
            metadata: cfg.metadata.clone(),
            state: if r.ready {
                PodState::Ready
            } else {
                PodState::NotReady
            }
            .to_proto(),
            created_at: r.created_at,
            network: Some(network),
            linux: Some(api::LinuxPodSandboxStatus {
                namespaces: Some(api::Namespace {
                    options: Some(ns_options(&cfg)),
                }),
            }),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            runtime_handler: r.runtime_handler.clone(),
        };
        let mut info = std::collections::HashMap::new();
        if verbose {
            let netns = r.netns.as_ref().map(|p| p.display().to_string());
            info.insert(
                "info".to_string(),
                serde_json::json!({
                    "netns": netns,
                    "ipc": r.ipc.as_ref().map(|p| p.display().to_string()),
                    "uts": r.uts.as_ref().map(|p| p.display().to_string()),
                    "pid": r.pid_ns.as_ref().map(|p| p.display().to_string()),
                    "pidInit": r.pid_init,
                    "cni": r.attachment.as_ref().map(|a| &a.result),
                })
                .to_string(),
            );
        }
        Ok(PodStatus {
            status,
            info,
            containers_statuses: Vec::new(),
            timestamp: 0,
        })
    }

    async fn list_pod_sandboxes(&self, filter: &PodFilter) -> CriResult<Vec<api::PodSandbox>> {
        let mut out: Vec<api::PodSandbox> = self
            .store
            .pods()
            .iter()
            .map(|r| self.pod_summary(r))
            .filter(|p| filter.matches(p))
            .collect();
        out.sort_by_key(|p| p.created_at);
        Ok(out)
    }

    async fn pod_sandbox_stats(&self, id: &str) -> CriResult<api::PodSandboxStats> {
        let r = self.pod_or_not_found(id)?;
        Ok(self.pod_stats(&r))
    }

    async fn list_pod_sandbox_stats(
        &self,
        filter: &PodStatsFilter,
    ) -> CriResult<Vec<api::PodSandboxStats>> {
        Ok(self
            .store
            .pods()
            .iter()
            .filter(|r| r.ready && filter.matches(&self.pod_summary(r)))
            .map(|r| self.pod_stats(r))
            .collect())
    }
}
