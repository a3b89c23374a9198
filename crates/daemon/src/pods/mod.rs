//! The CRI pods service: berth-cri's backend traits implemented over the daemon's image store,
//! containers (shims, cgroups) and records. A pod sandbox is a set of pinned namespaces (network
//! and IPC, bind-mounted under `<exec-root>/pods/<id>/`) plus its CNI attachment, kept without
//! a pause container; a pod's containers are ordinary berth containers (so `docker ps -a` shows
//! them, with the `io.kubernetes.*` labels) that join those namespaces.
//!
//! The service talks to the rest of the daemon through the Docker-level calls (container
//! create/start/stop/remove/inspect, exec, image pull/list/remove) and one hook, the
//! container's `pod_join` (the namespaces it joins at start): it can move to its own crate
//! once the daemon is split into services.
//!
//! Files: `store` (the persisted pod and container records), `sandbox` (RunPodSandbox and the
//! rest of the pod lifecycle), `locks` (per-pod locks and name reservations), `nsfs` (pinned
//! namespaces), `translate` (a CRI container config as a Docker create request), `containers` (the container lifecycle), `exec` (ExecSync and
//! the streaming runtime), `logs` (CRI log files), `images`, `stats`, `runtime` (Version,
//! Status, runtime config), `events` (GetContainerEvents).

mod containers;
mod events;
mod exec;
mod images;
mod locks;
mod logs;
mod nsfs;
mod pidns;
mod runtime;
mod sandbox;
mod stats;
mod store;
mod translate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api_types::{ApiError, ErrorKind};
use berth_cri::api;
use berth_cri::cni::Cni;
use berth_cri::log::CriLog;
use berth_cri::CriError;
use tokio::sync::broadcast;

use crate::Daemon;

pub use store::PodStoreError;

pub use exec::Streams;

/// What the pods service is configured with (`--cni-conf-dir`, `--cni-bin-dir`).
#[derive(Debug, Clone)]
pub struct PodConfig {
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
}

impl Default for PodConfig {
    fn default() -> Self {
        PodConfig {
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
        }
    }
}

/// The CRI's view of the daemon: implements every berth-cri backend trait.
pub struct PodService {
    pub(crate) daemon: Arc<Daemon>,
    cfg: PodConfig,
    cni: Cni,
    store: store::PodStore,
    /// `<exec-root>/pods`: one directory of pinned namespaces per pod.
    ns_dir: PathBuf,
    pod_cidr: Mutex<String>,
    /// Open CRI log files of running containers, for ReopenContainerLog.
    logs: Mutex<HashMap<String, Arc<CriLog>>>,
    events: broadcast::Sender<api::ContainerEventResponse>,
    /// One lock per pod and the pod names being started (see `locks`).
    locks: locks::PodLocks,
}

impl PodService {
    /// Opens the pod store under `<data-root>/cri` and picks up pods and containers of an
    /// earlier run (log files of running containers are followed again).
    pub async fn open(
        daemon: Arc<Daemon>,
        cfg: PodConfig,
    ) -> Result<Arc<Self>, store::PodStoreError> {
        let store = store::PodStore::open(daemon.cfg.data_root.join("cri"))?;
        let ns_dir = daemon.cfg.exec_root.join("pods");
        let (events, _) = broadcast::channel(256);
        let svc = Arc::new(PodService {
            cni: Cni::new(cfg.cni_bin_dirs.clone()),
            cfg,
            store,
            ns_dir,
            pod_cidr: Mutex::new(String::new()),
            logs: Mutex::new(HashMap::new()),
            events,
            locks: locks::PodLocks::default(),
            daemon,
        });
        svc.forward_daemon_events();
        svc.resume_logs();
        Ok(svc)
    }
}

/// A Docker-level error as the CRI reports it; `what`/`id` name the object for NotFound.
pub(crate) fn cri_err(what: &'static str, id: &str, e: ApiError) -> CriError {
    match e.kind {
        ErrorKind::NotFound => CriError::not_found(what, id),
        ErrorKind::InvalidParameter => CriError::invalid(what, e.message),
        ErrorKind::Conflict => CriError::FailedPrecondition(e.message),
        _ => CriError::Internal(e.message),
    }
}

/// Nanoseconds since the epoch now.
pub(crate) fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// An RFC 3339 time as nanoseconds since the epoch (0 for Go's zero time).
pub(crate) fn rfc3339_nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// A new 64-hex-digit id.
pub(crate) fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}
