//! berthd's services: container lifecycle, images, exec, the metadata store, restore on start,
//! and the translation of Docker's `Config` + `HostConfig` into an OCI runtime spec (`spec`).
//!
//! [`Daemon`] offers the services of `berth-services`; the `berthd` binary's adapter joins them
//! to the API server. The kernel-facing parts (overlay mounts, talking to shims) sit in
//! `runtime.rs`; libcontainer itself is only ever called from `berth-shim`.

mod archive;
mod blkio;
mod build;
mod build_backend;
mod build_cache;
mod build_cache_mounts;
mod build_context;
mod build_fetch;
mod build_mounts;
mod build_options;
mod cgroup_kill;
mod commit_merge;
mod containers;
mod cpuset;
mod crash_gc;
mod create_checks;
mod create_defaults;
mod errors;
mod etcfiles;
mod events;
mod exec;
mod exec_cwd;
mod health;
mod host;
mod host_paths;
mod hostmode;
mod housekeeping;
mod idmapped;
mod images;
mod initlayer;
mod links;
mod logdriver;
mod logs;
pub mod model;
mod mount_spec;
mod mountinfo;
pub mod names;
mod network;
mod network_connect;
mod network_model;
mod network_ports;
mod network_refs;
mod network_v6;
mod network_view;
mod networks_api;
mod nsjoin;
mod observed;
mod platform_check;
pub mod pods;
mod predefined_networks;
mod prepared_dirs;
mod ps_filters;
mod registry;
mod reload;
mod remap_fs;
mod resource_checks;
mod resources;
mod restart;
mod restore;
pub mod rootless;
mod runtime;
#[cfg(test)]
mod service_tests;
pub mod spec;
mod stats;
pub mod store;
mod store_reserve;
pub mod sys;
pub mod sysinfo;
mod system;
mod units;
pub mod userns_remap;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api_types::ApiError;
use tokio::sync::broadcast;

pub use host::cgroup_lock;
pub use runtime::Runtime;

/// What the daemon was started with.
#[derive(Debug, Clone, Default)]
pub struct DaemonConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `berth-shim` binary.
    pub shim_path: PathBuf,
    /// How many network namespaces are kept made ahead of need for containers on a bridge
    /// network (`--netns-pool`; 0: none).
    pub netns_pool: usize,
    /// How many shims wait spawned ahead of need (`--shim-pool`; 0: none).
    pub shim_pool: usize,
    /// How many container directories wait made ahead of need (0: none).
    pub prepared_dirs: usize,
    /// Parent cgroup of every container (`/berth/<id>`).
    pub cgroup_parent: String,
    /// The `-H` addresses served (shown by `info`).
    pub hosts: Vec<String>,
    /// Default log driver and options (`log-driver`, `log-opts` in the config file).
    pub log_config: berth_api_types::container::LogConfig,
    /// The default bridge's interface name (`none`: no default bridge).
    pub bridge: String,
    /// The default bridge's address and subnet, e.g. `172.30.0.1/16`.
    pub bip: String,
    /// Registries reached over plain HTTP besides loopback (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// Docker Hub mirrors (`registry-mirrors`).
    pub registry_mirrors: Vec<String>,
    /// Per-registry CAs and client certificates (`certs-dir`, `<dir>/<host[:port]>/`).
    pub registry_certs_dir: PathBuf,
    /// Chunked blob uploads above this size (hidden `--registry-chunk-size`); `None`: whole.
    pub registry_chunk_size: Option<u64>,
    /// Verify TLS for loopback registries too (hidden `--registry-verify-loopback`, tests).
    pub registry_verify_loopback: bool,
    /// `--dns`: upstream servers of the embedded DNS and default nameservers of containers
    /// (empty: the host's resolv.conf).
    pub dns: Vec<String>,
    /// Containers without an explicit `Init` get one (`--init`, `"init"` in the config file).
    pub init: bool,
    /// The init binary for `--init` (`--init-path`); `None`: looked up as Docker does.
    pub init_path: Option<PathBuf>,
    /// IPv6 on the default bridge (`--ipv6`), from `--fixed-cidr-v6` or a ULA /64 derived
    /// from the bridge's name (stable across restarts).
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
    /// Turn on the host's IPv4 forwarding at start, and IPv6 forwarding when an IPv6 network
    /// comes up (`--ip-forward`, on by default in berthd as in dockerd).
    pub ip_forward: bool,
    /// `RUN --security=insecure` is allowed in builds (`--allow-insecure-entitlement
    /// security.insecure`, `builder.entitlements.security-insecure` in the config file).
    pub builder_insecure: bool,
    /// Running rootless (an unprivileged user's daemon in a user namespace); `None`: root.
    pub rootless: Option<rootless::RootlessConfig>,
    /// `--userns-remap`: containers run in a user namespace mapped to this range (a root
    /// daemon only); `None`: off.
    pub userns_remap: Option<userns_remap::IdMap>,
    /// With `userns_remap`: copy the layers with shifted owners even where idmapped mounts
    /// would work (`BERTHD_USERNS_REMAP_COPY=1` in berthd's environment, for tests).
    pub userns_remap_copy: bool,
}

/// A container lifecycle event, fanned out to waiters (and later to `/events`).
#[derive(Debug, Clone)]
pub enum ContainerEvent {
    Started {
        id: String,
    },
    Exited {
        id: String,
        exit_code: i64,
        error: Option<String>,
    },
    Removed {
        id: String,
    },
}

pub type Result<T> = std::result::Result<T, ApiError>;

pub struct Daemon {
    pub(crate) cfg: DaemonConfig,
    pub(crate) store: store::Store,
    pub(crate) images: berth_image::store::ImageStore,
    pub(crate) runtime: Runtime,
    pub(crate) host: spec::HostFacts,
    /// Writes into running containers' cgroup files (see [`host::CgroupFiles`]).
    pub(crate) cgroups: Arc<dyn host::CgroupFiles>,
    pub(crate) containers: Mutex<HashMap<String, model::Container>>,
    pub(crate) op_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) pending_attach: Mutex<HashMap<String, Vec<containers::PendingAttach>>>,
    pub(crate) execs: Mutex<HashMap<String, exec::ExecInstance>>,
    /// Serializes image-store mutations (load, import, tag, delete).
    pub(crate) image_lock: tokio::sync::Mutex<()>,
    pub(crate) events: broadcast::Sender<ContainerEvent>,
    /// What `GET /events` serves.
    pub(crate) event_log: events::EventLog,
    pub(crate) net: network::NetService,
    /// The distribution client (pull, push, login).
    pub(crate) registry: registry::Registry,
    /// Serializes volume creation and removal.
    pub(crate) volume_lock: Mutex<()>,
    pub(crate) restarts: restart::Restarts,
    /// What running builds and image writers hold (see `crash_gc`).
    pub(crate) leases: crash_gc::Leases,
    /// What a `SIGHUP` reload may change.
    pub(crate) reloadable: Mutex<reload::Reloadable>,
    /// `--userns-remap`'s layer views and owner changes (see [`host::RemapOps`]).
    pub(crate) remap_fs: remap_fs::RemapFs,
}

/// Any lower-layer failure the client cannot fix: a 500 with the cause.
pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// A response body fed by a task through a channel (progress, logs, events).
pub(crate) fn channel_stream(
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> berth_services::ByteStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the daemon could not open its data root or restore what an earlier run left.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("creating containers directory: {0}")]
    ContainersDir(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("opening image store: {0}")]
    ImageStore(berth_image::Error),
    #[error(transparent)]
    Network(network::NetError),
    #[error(transparent)]
    Registry(#[from] berth_registry::Error),
    #[error("restoring networks: {0}")]
    RestoreNetworks(network::NetError),
    #[error("restoring containers: {0}")]
    RestoreContainers(store::StoreError),
}

impl Daemon {
    /// Opens (or creates) the data root and restores containers left by an earlier run.
    pub async fn open(cfg: DaemonConfig) -> std::result::Result<Arc<Daemon>, OpenError> {
        let host =
            host::Host::real_with_shim_pool(&cfg.shim_path, cfg.shim_pool, cfg.rootless.is_none());
        Daemon::open_with(cfg, host).await
    }

    /// Lets go of what the daemon made ahead of need (pooled shims, prepared container
    /// directories, network namespaces) before berthd exits; running containers are left
    /// alone.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
        self.net.drain_pools();
    }

    /// [`Daemon::open`] over the given kernel seams (fakes in unit tests).
    pub(crate) async fn open_with(
        cfg: DaemonConfig,
        host: host::Host,
    ) -> std::result::Result<Arc<Daemon>, OpenError> {
        for dir in [&cfg.data_root, &cfg.exec_root] {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        }
        std::fs::create_dir_all(cfg.data_root.join("containers"))
            .map_err(OpenError::ContainersDir)?;
        let store = store::Store::open(&cfg.data_root.join("berth.db"))?;
        let images = berth_image::store::ImageStore::open(cfg.data_root.join("image"))
            .map_err(OpenError::ImageStore)?;
        let runtime = Runtime::new(&cfg, host.runtime.clone());
        let remap_fs =
            remap_fs::RemapFs::new(host.remap.clone(), &cfg.data_root, cfg.userns_remap_copy);
        let cfg_registry = cfg.clone();
        let cfg_log_config = cfg.log_config.clone();
        let (events, _) = broadcast::channel(1024);
        let net = network::NetService::new(
            &cfg,
            host.links.clone(),
            host.netns.clone(),
            host.firewall.clone(),
        )
        .map_err(OpenError::Network)?;
        let daemon = Arc::new(Daemon {
            host: spec::HostFacts::detect(),
            cgroups: host.cgroups.clone(),
            cfg,
            store,
            images,
            runtime,
            containers: Mutex::new(HashMap::new()),
            op_locks: Mutex::new(HashMap::new()),
            pending_attach: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            image_lock: tokio::sync::Mutex::new(()),
            events,
            event_log: events::EventLog::new(),
            net,
            registry: registry::Registry::new(&cfg_registry)?,
            volume_lock: Mutex::new(()),
            reloadable: Mutex::new(reload::Reloadable {
                log_config: cfg_log_config,
            }),
            restarts: Default::default(),
            leases: Default::default(),
            remap_fs,
        });
        daemon
            .restore_network()
            .map_err(OpenError::RestoreNetworks)?;
        daemon
            .restore()
            .await
            .map_err(OpenError::RestoreContainers)?;
        // Before the API serves: nothing can race the sweep yet.
        if let Err(e) = daemon.collect_leftovers(true).await {
            tracing::warn!("collecting leftovers of interrupted work: {}", e.message);
        }
        daemon.restart_on_daemon_start().await;
        Ok(daemon)
    }
}
