//! Container lifecycle: create, start, stop, kill, wait, remove, rename, list, inspect, top,
//! attach, restore after a daemon restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_api_server::backend::{
    AttachOptions, BoxedIo, ContainerListOptions, Session, WaitCondition,
};
use berth_api_types::container::{
    self as ct, Config, CreateRequest, CreateResponse, HostConfig, InspectResponse, Summary,
    WaitResponse,
};
use berth_api_types::{ApiError, ErrorKind};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::model::{now_rfc3339, unix_seconds, Container, RunState, Status};
use crate::{internal, lock, names, spec, ContainerEvent, Daemon, Result};

/// An attach that arrived before the container started: connected to the shim at start.
pub struct PendingAttach {
    pub opts: AttachOptions,
    /// The client's connection once its upgrade is done. The entry itself is made before the
    /// client gets its 101, so the start the client sends next always finds it.
    pub io: tokio::sync::oneshot::Receiver<BoxedIo>,
}

pub(crate) fn no_such_container(id: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {id}"))
}

fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}

/// Docker's exit code for a process that could not be started, from the runtime's message.
pub(crate) fn exit_code_for_start_error(msg: &str) -> i64 {
    let m = msg.to_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        128
    }
}

/// Docker's merge of the image config into the user's config (`daemon/create.go` merge).
pub(crate) fn merge_config(user: &mut Config, image: &Config) {
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    let mut ports = image.exposed_ports.clone().unwrap_or_default();
    ports.extend(user.exposed_ports.take().unwrap_or_default());
    user.exposed_ports = (!ports.is_empty()).then_some(ports);
    // The user's variables first, then the image's that the user did not set (dockerd's
    // order: `-e A=2` on an image with PATH gives ["A=2", "PATH=…"]).
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut env: Vec<String> = user.env.take().unwrap_or_default();
    for e in image.env.iter().flatten() {
        if !env.iter().any(|u| key(u) == key(e)) {
            env.push(e.clone());
        }
    }
    user.env = Some(env);
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(user.labels.take().unwrap_or_default());
    user.labels = Some(labels);
    let user_entrypoint_empty = user.entrypoint.as_ref().is_none_or(|e| e.is_empty());
    if user_entrypoint_empty {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    let mut vols = image.volumes.clone().unwrap_or_default();
    vols.extend(user.volumes.take().unwrap_or_default());
    user.volumes = (!vols.is_empty()).then_some(vols);
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    if user.healthcheck.is_none() {
        user.healthcheck = image.healthcheck.clone();
    }
    if user.shell.is_none() {
        user.shell = image.shell.clone();
    }
}

/// Path and args as Docker shows them: `--entrypoint ""` means no entrypoint at all.
pub(crate) fn path_and_args(cfg: &Config) -> (String, Vec<String>) {
    let mut argv = spec::command_argv(cfg);
    if argv.is_empty() {
        return (String::new(), Vec::new());
    }
    let path = argv.remove(0);
    (path, argv)
}

fn validate_host_config(
    hc: &mut HostConfig,
    sys: &crate::sysinfo::SysInfo,
    warnings: &mut Vec<String>,
) -> Result<()> {
    crate::resource_checks::verify(hc, sys, false, warnings)?;
    // Network modes are checked by the network service (`check_network_mode`).
    crate::restart::validate_policy(&hc.restart_policy)?;
    if hc.auto_remove && !matches!(hc.restart_policy.name.as_str(), "" | "no") {
        return Err(ApiError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    crate::logdriver::validate(&hc.log_config)?;
    // dockerd refuses unknown capabilities at create, naming the list:
    // `invalid CapAdd: unknown capability: "CAP_NOT_A_CAP"`.
    for (what, caps) in [("CapAdd", &hc.cap_add), ("CapDrop", &hc.cap_drop)] {
        for cap in caps.as_deref().unwrap_or_default() {
            spec::caps::normalize(cap)
                .map_err(|e| ApiError::invalid(format!("invalid {what}: {e}")))?;
        }
    }
    Ok(())
}

/// `max-size` as Docker parses it (`10m`, `1k`, `200`).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1024u64),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1024 * 1024),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1024 * 1024 * 1024),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as u64)
}

impl Daemon {
    pub(crate) fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.op_locks)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Resolves a full id, a name (with or without `/`) or a unique id prefix.
    pub(crate) fn resolve_container(&self, key: &str) -> Result<Container> {
        let map = lock(&self.containers);
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<&Container> = map.values().filter(|c| c.id.starts_with(key)).collect();
            match matches.len() {
                1 => return Ok(matches[0].clone()),
                0 => {}
                _ => {
                    return Err(ApiError::invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )))
                }
            }
        }
        Err(no_such_container(key))
    }

    pub(crate) fn get(&self, id: &str) -> Option<Container> {
        lock(&self.containers).get(id).cloned()
    }

    /// Commits a record to the database, then to memory.
    pub(crate) fn save(&self, c: &Container) -> Result<()> {
        self.store
            .put_container(&c.id, &c.name, c)
            .map_err(internal)?;
        lock(&self.containers).insert(c.id.clone(), c.clone());
        Ok(())
    }

    fn update_state(&self, id: &str, f: impl FnOnce(&mut Container)) -> Result<Container> {
        let mut c = self.get(id).ok_or_else(|| no_such_container(id))?;
        f(&mut c);
        self.save(&c)?;
        Ok(c)
    }

    pub async fn container_create(
        &self,
        name: Option<String>,
        req: CreateRequest,
    ) -> Result<CreateResponse> {
        // `docker run` sends start right after create: begin paying the start's cgroup
        // migration cost now (see `prime_cgroup_migration`).
        crate::runtime::prime_cgroup_migration();
        let mut warnings = Vec::new();
        let mut config = req.config;
        let mut host_config = req.host_config.unwrap_or_default();
        // Docker fills these defaults in at create, so inspect shows them.
        spec::adapt_host_config(&mut host_config);
        crate::create_defaults::fill(&mut host_config, self.host.cgroup_v2());
        crate::logdriver::with_default(&mut host_config.log_config, &self.log_defaults());
        self.substitute_host_gateway(&mut host_config)?;
        spec::validate_extra_hosts(host_config.extra_hosts.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        if config.image.is_empty() {
            return Err(ApiError::invalid(
                "Config cannot be empty in order to create a container",
            ));
        }
        // dockerd parses `platform` before anything else (400 for one it does not know).
        if let Some(p) = req.platform.as_deref() {
            berth_registry::Platform::parse(p).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        crate::create_checks::verify(&mut config, &host_config, &mut warnings)?;
        validate_host_config(&mut host_config, &self.host.sys, &mut warnings)?;
        self.resolve_network_refs(&config, &mut host_config)?;
        crate::nsjoin::validate_modes(&host_config)?;
        self.resolve_ns_refs(&mut host_config)?;
        self.check_network_mode(&host_config, &mut warnings)?;
        let image = self.resolve_image(&config.image)?;
        if let Some(p) = req.platform.as_deref() {
            crate::platform_check::check(&config.image, p, &image.config)?;
        }
        merge_config(&mut config, &image.container_config());
        let (path, args) = path_and_args(&config);
        if path.is_empty() {
            return Err(ApiError::invalid("no command specified"));
        }
        if let Some(sig) = &config.stop_signal {
            spec::parse_signal(sig).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        let id = {
            let bytes: [u8; 32] = rand::random();
            hex::encode(bytes)
        };
        if config.hostname.is_empty() {
            config.hostname = crate::hostmode::default_hostname(&host_config.network_mode, &id);
        }
        let name = match name {
            Some(n) => {
                let n = names::validate(&n).map_err(ApiError::invalid)?;
                if let Some(other) = lock(&self.containers).values().find(|c| c.name == n) {
                    return Err(ApiError::conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.id
                    )));
                }
                n
            }
            None => {
                let taken: Vec<String> = lock(&self.containers)
                    .values()
                    .map(|c| c.name.clone())
                    .collect();
                let mut n = names::random_name(0);
                let mut retry = 1;
                while taken.contains(&n) {
                    n = names::random_name(retry);
                    retry += 1;
                }
                n
            }
        };
        self.normalize_links(&mut host_config, &name);
        let mounts = self.plan_mounts(&config, &host_config)?;
        self.runtime.create_dirs(&id).map_err(internal)?;
        let record = Container {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            path,
            args,
            config,
            host_config,
            image_id: image.id.clone(),
            top_layer: image.top_layer.clone(),
            state: RunState::created(),
            mounts,
            ..Default::default()
        };
        if let Err(e) = self.save(&record) {
            let _ = self.runtime.remove_dirs(&id);
            return Err(e);
        }
        if let Err(e) = self.record_create_networks(
            &id,
            &record.host_config.network_mode,
            req.networking_config.as_ref(),
        ) {
            let _ = self.store.delete_container(&id);
            lock(&self.containers).remove(&id);
            let _ = self.runtime.remove_dirs(&id);
            return Err(e);
        }
        self.emit_container(&record, "create", &[]);
        Ok(CreateResponse { id, warnings })
    }

    /// Writes the generated /etc files and the OCI spec for a start.
    fn prepare_bundle(&self, c: &Container) -> Result<()> {
        let rt = &self.runtime;
        let id = &c.id;
        let lowers = self.container_lowers(c)?;
        rt.mount_rootfs(id, &lowers, c.host_config.auto_remove)
            .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
        self.create_working_dir(c)?;
        let hc = &c.host_config;
        std::fs::write(rt.hostname_path(id), format!("{}\n", c.config.hostname))
            .map_err(internal)?;
        let attached = self.net.setup(c)?;
        let joined = self.join_target(c)?;
        let ns_joins = self.ns_joins(c)?;
        let hosts = self.hosts_for_start(c, attached.as_ref())?;
        std::fs::write(rt.hosts_path(id), hosts).map_err(internal)?;
        // On a user-defined network the embedded DNS (on a gateway) answers; `--dns`
        // servers are its upstreams for this container (see network.rs), as with Docker.
        let resolv = self.resolv_conf_for(c, attached.as_ref().and_then(|a| a.dns));
        std::fs::write(rt.resolv_conf_path(id), resolv).map_err(internal)?;
        let rootfs = rt.rootfs(id);
        let mut hostname_path = rt.hostname_path(id);
        let mut hosts_path = rt.hosts_path(id);
        let mut resolv_path = rt.resolv_conf_path(id);
        let mut config = std::borrow::Cow::Borrowed(&c.config);
        let link_env = self.link_env(c)?;
        if !link_env.is_empty() {
            let env = config.to_mut().env.get_or_insert_with(Vec::new);
            *env = [link_env, std::mem::take(env)].concat();
        }
        if !c.secret_env.is_empty() {
            let env = config.to_mut().env.get_or_insert_with(Vec::new);
            env.extend(c.secret_env.iter().cloned());
        }
        if let Some(j) = &joined {
            // `--network container:` shares the target's /etc files and hostname, as Docker does.
            hostname_path = rt.hostname_path(&j.id);
            hosts_path = rt.hosts_path(&j.id);
            resolv_path = rt.resolv_conf_path(&j.id);
            config.to_mut().hostname = j.hostname.clone();
            config.to_mut().domainname = j.domainname.clone();
        }
        let input = spec::SpecInput {
            id,
            config: &config,
            host_config: hc,
            rootfs: &rootfs,
            hostname_path: &hostname_path,
            hosts_path: &hosts_path,
            resolv_conf_path: &resolv_path,
            cgroup_parent: &self.cfg.cgroup_parent,
            host: &self.host,
        };
        let user_mounts = self.start_mounts(c)?;
        let init_binary = if hc.init.unwrap_or(self.cfg.init) {
            Some(init_binary(self.cfg.init_path.as_deref()).map_err(ApiError::invalid)?)
        } else {
            None
        };
        let pod_join = c.pod_join.as_ref();
        let extras = spec::SpecExtras {
            init_binary: init_binary.as_deref(),
            netns_path: attached
                .as_ref()
                .map(|a| a.netns.as_path())
                .or(joined.as_ref().map(|j| j.netns.as_path()))
                .or(pod_join.and_then(|p| p.netns.as_deref())),
            pid_ns_path: ns_joins
                .pid
                .as_deref()
                .or(pod_join.and_then(|p| p.pid.as_deref())),
            ipc_ns_path: ns_joins
                .ipc
                .as_deref()
                .or(pod_join.and_then(|p| p.ipc.as_deref())),
            extra_mounts: &user_mounts,
        };
        let oci =
            spec::build_spec_with(&input, &extras).map_err(|e| ApiError::invalid(e.to_string()))?;
        let body = serde_json::to_vec_pretty(&oci).map_err(internal)?;
        let path = rt.bundle_dir(id).join("config.json");
        std::fs::create_dir_all(rt.bundle_dir(id)).map_err(internal)?;
        std::fs::write(&path, body).map_err(internal)?;
        Ok(())
    }

    pub async fn container_start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.resolve_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let c = self.get(&c.id).ok_or_else(|| no_such_container(key))?;
        match c.state.status {
            Status::Running | Status::Restarting => return Err(ApiError::not_modified()),
            Status::Paused => {
                return Err(ApiError::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(ApiError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited => {}
        }
        let id = c.id.clone();
        self.start_by_user(&id);
        let res = self.start_locked(c).await;
        if res.is_err() {
            // Docker removes an auto-remove container whose start failed before answering.
            drop(_g);
            self.maybe_auto_remove(&id).await;
        }
        res
    }

    /// Starts a container whose op lock the caller holds.
    pub(crate) async fn start_locked(self: &Arc<Self>, c: Container) -> Result<()> {
        let id = c.id.clone();
        let t0 = std::time::Instant::now();
        crate::runtime::prime_cgroup_migration();
        if let Err(e) = self.prepare_bundle(&c) {
            self.runtime.unmount_rootfs(&id);
            self.record_start_failure(&id, &e.message).await;
            return Err(e);
        }
        let mut shim_cfg =
            self.runtime
                .shim_config(&id, c.config.tty, c.config.open_stdin, c.config.stdin_once);
        crate::logdriver::configure_shim(&c.host_config.log_config, &mut shim_cfg)?;
        // As Docker: a privileged container's cgroup filesystem is writable.
        shim_cfg.readonly_cgroups = !c.host_config.privileged;
        shim_cfg.systemd_cgroup = Some(spec::container_cgroup_path(
            &c.host_config.cgroup_parent,
            &self.cfg.cgroup_parent,
            &id,
        ));
        if let Some(sz) = c
            .host_config
            .console_size
            .as_ref()
            .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
        {
            shim_cfg.console_size = Some([sz[0] as u16, sz[1] as u16]);
        }
        tracing::debug!(container = %id, prepared = ?t0.elapsed(), "bundle ready");
        let this = self.clone();
        let launch_id = id.clone();
        let launched =
            tokio::task::spawn_blocking(move || this.runtime.launch(&launch_id, &shim_cfg))
                .await
                .map_err(internal)?;
        let init_pid = match launched {
            Ok(pid) => pid,
            Err(msg) => {
                self.runtime.unmount_rootfs(&id);
                let msg = format!("failed to create task for container: {msg}");
                self.record_start_failure(&id, &msg).await;
                return Err(ApiError::invalid(msg));
            }
        };
        // A namespace the network service plumbed has `lo` up already.
        if c.host_config.network_mode != "host" && self.net.endpoints(&id).is_empty() {
            if let Err(e) = crate::runtime::loopback_up(init_pid) {
                tracing::warn!(container = %id, "bringing up lo: {e}");
            }
        }
        let t_launched = t0.elapsed();
        let client = self.runtime.client(&id);
        let pending = lock(&self.pending_attach).remove(&id).unwrap_or_default();
        for p in pending {
            // A client that went away before its upgrade finished drops its sender.
            match tokio::time::timeout(Duration::from_secs(5), p.io).await {
                Ok(Ok(io)) => self.connect_attach(&id, c.config.tty, p.opts, io).await,
                _ => tracing::debug!(container = %id, "an attach before start never connected"),
            }
        }
        if let Err(e) = client.start().await {
            let _ = client.kill(9, true).await;
            self.runtime.unmount_rootfs(&id);
            let msg = format!("failed to start container: {e}");
            self.record_start_failure(&id, &msg).await;
            return Err(ApiError::internal(msg));
        }
        let (pid, started_at) = match client.state().await {
            Ok(s) => (
                s.pid.unwrap_or(0) as i64,
                s.started_at.unwrap_or_else(now_rfc3339),
            ),
            Err(_) => (0, now_rfc3339()),
        };
        // The process runs now, whether or not the database can take it (a full disk).
        self.update_observed(&id, |c| {
            c.state = RunState {
                status: Status::Running,
                pid,
                exit_code: 0,
                error: String::new(),
                started_at,
                finished_at: c.state.finished_at.clone(),
                oom_killed: false,
            };
        })?;
        tracing::debug!(container = %id, ?t_launched, total = ?t0.elapsed(), "started");
        self.emit_container_id(&id, "start", &[]);
        let _ = self.events.send(ContainerEvent::Started { id: id.clone() });
        self.begin_health(&id);
        self.post_start_limits(&id);
        self.spawn_monitor(id);
        Ok(())
    }

    /// A start that failed before the process ran: Docker records it as an exit with 126/127/128.
    async fn record_start_failure(self: &Arc<Self>, id: &str, msg: &str) {
        self.net.release(id);
        let code = exit_code_for_start_error(msg);
        let res = self.update_state(id, |c| {
            c.state.status = if c.state.status == Status::Created {
                Status::Created
            } else {
                Status::Exited
            };
            c.state.exit_code = code;
            c.state.error = msg.to_string();
            c.state.pid = 0;
            c.state.finished_at = now_rfc3339();
        });
        lock(&self.pending_attach).remove(id);
        if res.is_ok() {
            let _ = self.events.send(ContainerEvent::Exited {
                id: id.to_string(),
                exit_code: code,
                // The start call reports the message; Docker's wait answers no error here.
                error: None,
            });
            // The caller holds this container's op lock: remove once it is released.
            let this = self.clone();
            let id = id.to_string();
            tokio::spawn(async move { this.maybe_auto_remove(&id).await });
        }
    }

    /// Watches the shim until the process exits, then records the exit.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, id: String) {
        self.start_health(&id);
        let this = self.clone();
        tokio::spawn(async move {
            let client = this.runtime.client(&id);
            let status = match client.wait().await {
                Ok(s) => Some(s),
                Err(e) => {
                    // A process that exits at once can take its shim with it before this
                    // connects; the exit file tells. Only its absence is worth a warning.
                    tracing::debug!(container = %id, "shim gone before wait: {e}");
                    // The shim records the exit on disk before it answers anyone.
                    let mut found = this.runtime.read_exit(&id);
                    for _ in 0..20 {
                        if found.is_some() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        found = this.runtime.read_exit(&id);
                    }
                    if found.is_none() {
                        tracing::warn!(container = %id, "lost the shim and found no exit status");
                    }
                    found
                }
            };
            this.handle_exit(&id, status).await;
        });
    }

    pub(crate) async fn handle_exit(
        self: &Arc<Self>,
        id: &str,
        status: Option<berth_shim_protocol::ExitStatus>,
    ) {
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        // Without an exit status the shim died (SIGKILL, OOM, a crash) and its container's
        // processes may live on, re-parented to init: they are killed through the cgroups
        // before anything they use (rootfs, network) is released.
        let lost_monitor = status.is_none();
        if lost_monitor {
            self.kill_by_cgroup(id, true).await;
        }
        // A `--rm` container's rootfs is unmounted with its removal, off the answer's path.
        if !self.get(id).is_some_and(|c| c.host_config.auto_remove) {
            self.runtime.unmount_rootfs(id);
        }
        self.net.release(id);
        self.release_mounts(id);
        if let Some(n) = status.as_ref().map(|s| s.log_dropped).filter(|n| *n > 0) {
            tracing::warn!(
                container = id,
                "{n} log messages dropped: no space left on device"
            );
        }
        let (code, finished, oom) = match &status {
            Some(s) => (s.exit_code as i64, s.finished_at.clone(), s.oom_killed),
            // Killed above with SIGKILL: 128 + 9, as Docker reports a killed container.
            None => (137, now_rfc3339(), false),
        };
        let res = self.update_observed(id, |c| {
            c.state.status = Status::Exited;
            c.state.pid = 0;
            c.state.exit_code = code;
            c.state.finished_at = finished;
            c.state.oom_killed = oom;
            if lost_monitor {
                c.state.error = "container monitor lost: its processes were killed".to_string();
            }
        });
        if res.is_err() {
            return;
        }
        self.finish_execs(id);
        self.emit_container_id(id, "die", &[("exitCode", code.to_string())]);
        let _ = self.events.send(ContainerEvent::Exited {
            id: id.to_string(),
            exit_code: code,
            error: None,
        });
        self.schedule_restart(id);
        drop(_g);
        self.maybe_auto_remove(id).await;
    }

    /// Kills whatever still runs in the container's cgroups (see `cgroup_kill`). `owned`: the
    /// shim is gone, so its cgroup directories are berthd's to remove; otherwise they are left
    /// to the runtime and only touched when processes were found.
    pub(crate) async fn kill_by_cgroup(self: &Arc<Self>, id: &str, owned: bool) {
        let Some(c) = self.get(id) else { return };
        let path =
            spec::container_cgroup_path(&c.host_config.cgroup_parent, &self.cfg.cgroup_parent, id);
        let this = self.clone();
        let id = id.to_string();
        let res = tokio::task::spawn_blocking(move || {
            let cgroups = crate::cgroup_kill::ContainerCgroups::find(&this.host.sys, &path);
            if !owned && cgroups.pids().is_empty() {
                return Ok(0);
            }
            let n = cgroups.kill_all(&mut crate::cgroup_kill::sigkill, Duration::from_secs(10))?;
            cgroups.remove()?;
            Ok::<usize, String>(n)
        })
        .await;
        match res {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::warn!(container = %id, "killed {n} processes left without their shim")
            }
            Ok(Err(e)) => {
                tracing::error!(container = %id, "killing the container's processes: {e}")
            }
            Err(e) => tracing::error!(container = %id, "killing the container's processes: {e}"),
        }
    }

    async fn maybe_auto_remove(self: &Arc<Self>, id: &str) {
        let Some(c) = self.get(id) else { return };
        if c.host_config.auto_remove && !c.state.status.is_active() {
            if let Err(e) = self.remove_container_with(id, true, true).await {
                tracing::warn!(container = id, "auto-remove: {}", e.message);
            } else {
                self.remove_anonymous_volumes(&c);
            }
        }
    }

    pub async fn container_stop(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.resolve_container(key)?;
        if self.stop_by_user(&c.id).await {
            self.emit_container_id(&c.id, "stop", &[]);
            return Ok(());
        }
        if !c.state.status.can_kill() {
            return Err(ApiError::not_modified());
        }
        let sig = signal
            .or_else(|| c.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".to_string());
        let signo = spec::parse_signal(&sig).map_err(|e| ApiError::invalid(e.to_string()))?;
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        self.stop_with(&c.id, signo, timeout).await?;
        self.emit_container_id(&c.id, "stop", &[]);
        Ok(())
    }

    /// Sends `signo`, waits up to `timeout` seconds (negative: forever), then SIGKILLs. Each
    /// signal is a `kill` event (with `signal=`) before the `die`, as dockerd's stop, `rm -f`
    /// and restart emit them.
    pub(crate) async fn stop_with(&self, id: &str, signo: i32, timeout: i64) -> Result<()> {
        let client = self.runtime.client(id);
        if self
            .get(id)
            .is_some_and(|c| c.state.status == Status::Paused)
        {
            let _ = client.resume().await;
        }
        self.emit_container_id(id, "kill", &[("signal", signo.to_string())]);
        if let Err(e) = client.kill(signo, false).await {
            tracing::debug!(container = id, "stop signal: {e}");
        }
        let done = if timeout < 0 {
            self.exited(id).await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), self.exited(id))
                .await
                .is_ok()
        };
        if !done {
            self.emit_container_id(id, "kill", &[("signal", "9".to_string())]);
            let _ = client.kill(9, true).await;
            let _ = tokio::time::timeout(Duration::from_secs(30), self.exited(id)).await;
        }
        Ok(())
    }

    /// Resolves once the container is not running (or is gone).
    fn exited(&self, id: &str) -> impl std::future::Future<Output = ()> + 'static {
        // Subscribe before looking at the state: the exit is recorded before it is announced,
        // so either the state already says so or the event is still to come.
        let mut events = self.events.subscribe();
        let running = self.get(id).is_some_and(|c| c.state.status.is_active());
        let id = id.to_string();
        async move {
            if !running {
                return;
            }
            loop {
                match events.recv().await {
                    Ok(ContainerEvent::Exited { id: x, .. })
                    | Ok(ContainerEvent::Removed { id: x })
                        if x == id =>
                    {
                        return
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                }
            }
        }
    }

    pub async fn container_restart(
        self: &Arc<Self>,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        match self.container_stop(key, signal, timeout).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        match self.container_start(key).await {
            Err(e) if e.kind == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if let Ok(c) = self.resolve_container(key) {
            self.emit_container(&c, "restart", &[]);
        }
        Ok(())
    }

    pub async fn container_kill(&self, key: &str, signal: Option<String>) -> Result<()> {
        let signo = spec::parse_signal(signal.as_deref().unwrap_or("SIGKILL"))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        // dockerd's kill route wraps every failure after the signal parse in
        // "Cannot kill container: <name as given>: …" (the status stays the inner one's).
        self.kill_checked(key, signo).await.map_err(|mut e| {
            e.message = format!("Cannot kill container: {key}: {}", e.message);
            e
        })
    }

    async fn kill_checked(&self, key: &str, signo: i32) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !c.state.status.can_kill() {
            return Err(not_running(&c.id));
        }
        // Only a signal meant to end the container counts as the user stopping it.
        if matches!(signo, 2 | 3 | 9 | 15) && self.stop_by_user(&c.id).await {
            return Ok(());
        }
        // SIGKILL (the default) is dockerd's `Kill`: the answer waits for the container to be
        // gone (up to 10 s), so a client that inspects right after finds it exited. Watched
        // from before the signal goes out.
        let exited = (signo == 9).then(|| self.exited(&c.id));
        // Announced before the signal goes out, so the `die` it may cause always follows it
        // (dockerd holds the container's lock across both; its exit handling waits for it).
        self.emit_container(&c, "kill", &[("signal", signo.to_string())]);
        self.runtime
            .client(&c.id)
            .kill(signo, false)
            .await
            .map_err(|e| internal(format!("cannot kill container {}: {e}", c.id)))?;
        if let Some(exited) = exited {
            let _ = tokio::time::timeout(Duration::from_secs(10), exited).await;
        }
        Ok(())
    }

    pub async fn container_wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, WaitResponse>> {
        let c = self.resolve_container(key)?;
        let mut events = self.events.subscribe();
        let id = c.id.clone();
        let current = self.get(&id);
        let ready = |c: &Container| WaitResponse {
            status_code: c.state.exit_code,
            error: (!c.state.error.is_empty()).then(|| ct::WaitExitError {
                message: c.state.error.clone(),
            }),
        };
        if condition == WaitCondition::NotRunning {
            if let Some(c) = current.as_ref().filter(|c| !c.state.status.is_active()) {
                let resp = ready(c);
                return Ok(async move { resp }.boxed());
            }
        }
        Ok(async move {
            // Already exited: its code is the answer unless it runs (and exits) again first.
            let mut last: Option<WaitResponse> = current
                .as_ref()
                .filter(|c| !c.state.status.is_active())
                .map(ready);
            loop {
                match events.recv().await {
                    Ok(ContainerEvent::Exited {
                        id: x,
                        exit_code,
                        error,
                    }) if x == id => {
                        let resp = WaitResponse {
                            status_code: exit_code,
                            error: error.map(|message| ct::WaitExitError { message }),
                        };
                        if condition != WaitCondition::Removed {
                            return resp;
                        }
                        last = Some(resp);
                    }
                    Ok(ContainerEvent::Removed { id: x }) if x == id => {
                        return last.unwrap_or(WaitResponse {
                            status_code: 0,
                            error: None,
                        });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return WaitResponse {
                            status_code: -1,
                            error: None,
                        };
                    }
                    _ => {}
                }
            }
        }
        .boxed())
    }

    pub async fn container_remove(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !force && !c.state.status.can_remove_without_force() {
            let what = if c.state.status == Status::Paused {
                "paused"
            } else {
                "running"
            };
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                c.name
            )));
        }
        self.remove_container(&c.id, force).await?;
        if volumes {
            self.remove_anonymous_volumes(&c);
        }
        Ok(())
    }

    pub(crate) async fn remove_container(self: &Arc<Self>, id: &str, force: bool) -> Result<()> {
        self.remove_container_with(id, force, false).await
    }

    /// `soon`: the container's files are deleted in the background after it is gone
    /// ([`crate::runtime::Runtime::remove_dirs_soon`]); `rm` and prune free the space before
    /// they answer, as their callers expect.
    async fn remove_container_with(
        self: &Arc<Self>,
        id: &str,
        force: bool,
        soon: bool,
    ) -> Result<()> {
        if force {
            self.stop_by_user(id).await;
        }
        if force && self.get(id).is_some_and(|c| c.state.status.is_active()) {
            self.stop_with(id, 9, 10).await?;
        }
        let guard = self.op_lock(id);
        let _g = guard.lock().await;
        let Some(c) = self.get(id) else { return Ok(()) };
        if c.state.status.is_active() {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running",
                c.name
            )));
        }
        // The record says the container ended; its cgroups decide: nothing of it may outlive
        // its removal, whatever happened to its shim.
        self.kill_by_cgroup(id, false).await;
        self.emit_container(&c, "destroy", &[]);
        self.network_container_removed(id);
        if soon {
            self.runtime.remove_dirs_soon(id)
        } else {
            self.runtime.remove_dirs(id)
        }
        .map_err(|e| internal(format!("removing container {id}: {e}")))?;
        self.store.delete_container(id).map_err(internal)?;
        lock(&self.containers).remove(id);
        lock(&self.op_locks).remove(id);
        lock(&self.pending_attach).remove(id);
        self.forget_execs(id);
        let _ = self
            .events
            .send(ContainerEvent::Removed { id: id.to_string() });
        Ok(())
    }

    pub async fn container_rename(&self, key: &str, new_name: &str) -> Result<()> {
        let c = self.resolve_container(key)?;
        // dockerd reserves "/<name>" and wraps what goes wrong in "Error when allocating new
        // name: …", the name in the message with its slash.
        let allocating = |m: String| format!("Error when allocating new name: {m}");
        let n = names::validate(new_name).map_err(|_| {
            ApiError::invalid(allocating(format!(
                "Invalid container name (/{new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )))
        })?;
        if n == c.name {
            return Err(ApiError::conflict(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = lock(&self.containers).values().find(|o| o.name == n) {
            return Err(ApiError::conflict(allocating(format!(
                "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            ))));
        }
        let renamed = self.update_state(&c.id, |c| c.name = n)?;
        self.emit_container(&renamed, "rename", &[("oldName", format!("/{}", c.name))]);
        Ok(())
    }

    /// `pause` (freeze) or `unpause` (thaw); the state is committed before answering.
    pub async fn container_pause(&self, key: &str, pause: bool) -> Result<()> {
        let c = self.resolve_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let c = self.get(&c.id).ok_or_else(|| no_such_container(key))?;
        match (pause, c.state.status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            (true, Status::Paused) => {
                return Err(ApiError::conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            (false, Status::Running) => {
                return Err(ApiError::conflict(format!(
                    "Container {} is not paused",
                    c.id
                )))
            }
            _ => return Err(not_running(&c.id)),
        }
        let client = self.runtime.client(&c.id);
        let res = if pause {
            client.pause().await
        } else {
            client.resume().await
        };
        res.map_err(|e| {
            internal(format!(
                "cannot {} container {}: {e}",
                if pause { "pause" } else { "unpause" },
                c.id
            ))
        })?;
        self.update_state(&c.id, |c| {
            c.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        })?;
        self.emit_container(&c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    pub async fn container_resize(&self, key: &str, h: u16, w: u16) -> Result<()> {
        let c = self.resolve_container(key)?;
        if !c.state.status.is_active() {
            return Err(not_running(&c.id));
        }
        self.runtime
            .client(&c.id)
            .resize(None, h, w)
            .await
            .map_err(internal)
    }

    pub async fn container_top(
        &self,
        key: &str,
        ps_args: Option<String>,
    ) -> Result<ct::TopResponse> {
        let c = self.resolve_container(key)?;
        if !c.state.status.is_active() {
            return Err(not_running(&c.id));
        }
        let pids = self.runtime.client(&c.id).pids().await.map_err(internal)?;
        let args = ps_args.unwrap_or_else(|| "-ef".to_string());
        let out = tokio::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .await
            .map_err(|e| internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            // As dockerd: the first line of ps's stderr says why it failed.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.trim().lines().next().unwrap_or("failed");
            return Err(internal(format!("ps: {why}")));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    pub fn container_inspect(&self, key: &str, size: bool) -> Result<InspectResponse> {
        let c = self.resolve_container(key)?;
        let rt = &self.runtime;
        let mut state = ct::State {
            status: c.state.status.as_str().to_string(),
            running: matches!(c.state.status, Status::Running | Status::Paused),
            paused: c.state.status == Status::Paused,
            restarting: c.state.status == Status::Restarting,
            oom_killed: c.state.oom_killed,
            dead: c.state.status == Status::Dead,
            pid: c.state.pid,
            exit_code: c.state.exit_code,
            error: c.state.error.clone(),
            started_at: c.state.started_at.clone(),
            finished_at: c.state.finished_at.clone(),
            health: c.health.clone(),
        };
        if !state.running {
            state.pid = 0;
        }
        let mut data = BTreeMap::new();
        data.insert(
            "UpperDir".to_string(),
            rt.upper_dir(&c.id).display().to_string(),
        );
        data.insert(
            "MergedDir".to_string(),
            rt.rootfs(&c.id).display().to_string(),
        );
        data.insert(
            "WorkDir".to_string(),
            rt.upper_dir(&c.id)
                .with_file_name("work")
                .display()
                .to_string(),
        );
        if let Ok(mut lowers) = self.lower_dirs(c.top_layer.as_deref()) {
            crate::initlayer::show_init_layer(&rt.upper_dir(&c.id), &mut lowers);
            data.insert(
                "LowerDir".to_string(),
                lowers
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
        let mut host_config = c.host_config.clone();
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = "json-file".to_string();
        }
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "bridge".to_string();
        }
        if host_config.restart_policy.name.is_empty() {
            host_config.restart_policy.name = "no".to_string();
        }
        let size_rw = size.then(|| dir_size(&rt.upper_dir(&c.id)) as i64);
        Ok(InspectResponse {
            id: c.id.clone(),
            created: c.created.clone(),
            path: c.path.clone(),
            args: c.args.clone(),
            state,
            image: c.image_id.clone(),
            resolv_conf_path: rt.resolv_conf_path(&c.id).display().to_string(),
            hostname_path: rt.hostname_path(&c.id).display().to_string(),
            hosts_path: rt.hosts_path(&c.id).display().to_string(),
            log_path: rt.log_path(&c.id).display().to_string(),
            name: format!("/{}", c.name),
            restart_count: c.restart_count,
            driver: "overlay2".to_string(),
            platform: "linux".to_string(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: (!c.exec_ids.is_empty()).then(|| c.exec_ids.clone()),
            host_config,
            graph_driver: ct::DriverData {
                data,
                name: "overlay2".to_string(),
            },
            size_rw,
            size_root_fs: size.then(|| size_rw.unwrap_or(0) + self.image_size(&c.image_id)),
            mounts: self.mount_points(&c),
            config: c.config.clone(),
            network_settings: self.with_network(&c, self.network_settings(&c)),
        })
    }

    pub fn container_list(&self, opts: ContainerListOptions) -> Result<Vec<Summary>> {
        let mut all: Vec<Container> = lock(&self.containers).values().cloned().collect();
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let filters = ListFilters::parse(self, &opts.filters)?;
        let mut out = Vec::new();
        for c in &all {
            // As in Docker, a limit (`ps -n`, `ps -l`) lists containers in any state.
            if !opts.all
                && opts.limit.is_none()
                && !c.state.status.is_active()
                && !filters.wants_stopped()
            {
                continue;
            }
            if !filters.matches(c, &all) {
                continue;
            }
            out.push(self.summary(c, opts.size));
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn summary(&self, c: &Container, size: bool) -> Summary {
        let command = std::iter::once(c.path.clone())
            .chain(c.args.iter().cloned())
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" ");
        let size_rw = size.then(|| dir_size(&self.runtime.upper_dir(&c.id)) as i64);
        let ns = self.with_network(c, self.network_settings(c));
        Summary {
            id: c.id.clone(),
            names: vec![format!("/{}", c.name)],
            image: c.config.image.clone(),
            image_id: c.image_id.clone(),
            command,
            created: unix_seconds(&c.created),
            ports: self.summary_ports(c),
            size_rw,
            size_root_fs: size.then(|| size_rw.unwrap_or(0) + self.image_size(&c.image_id)),
            labels: c.config.labels.clone().unwrap_or_default(),
            state: c.state.status.as_str().to_string(),
            status: status_text(c),
            host_config: ct::SummaryHostConfig {
                network_mode: if c.host_config.network_mode.is_empty() {
                    "bridge".to_string()
                } else {
                    c.host_config.network_mode.clone()
                },
                annotations: c.host_config.annotations.clone().filter(|a| !a.is_empty()),
            },
            network_settings: ct::SummaryNetworkSettings {
                networks: ns.networks,
            },
            mounts: self.mount_points(c),
            health: Some(crate::health::summary(c)),
        }
    }

    pub async fn container_attach(
        self: &Arc<Self>,
        key: &str,
        opts: AttachOptions,
    ) -> Result<Session> {
        let c = self.resolve_container(key)?;
        let tty = c.config.tty;
        crate::exec::parse_detach_keys(
            opts.detach_keys
                .as_deref()
                .unwrap_or(crate::exec::DEFAULT_DETACH_KEYS),
        )?;
        // `docker run` and `docker start -a` attach before they start: registered now, before
        // the client hears back, so the start it sends right after can never miss it.
        let pending = (opts.stream && !c.state.status.is_active()).then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&self.pending_attach)
                .entry(c.id.clone())
                .or_default()
                .push(PendingAttach {
                    opts: opts.clone(),
                    io: rx,
                });
            tx
        });
        let this = self.clone();
        let id = c.id.clone();
        Ok(Session {
            tty,
            run: Box::new(move |io: BoxedIo| {
                async move {
                    let mut io = io;
                    if opts.logs {
                        let past = crate::logs::replay(
                            &this.runtime.log_path(&id),
                            opts.stdout,
                            opts.stderr,
                            tty,
                        );
                        if tokio::io::AsyncWriteExt::write_all(&mut io, &past)
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    if !opts.stream {
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
                        return;
                    }
                    match pending {
                        // The start (or its failure) takes it from here.
                        Some(tx) => {
                            let _ = tx.send(io);
                        }
                        None => this.connect_attach(&id, tty, opts, io).await,
                    }
                }
                .boxed()
            }),
        })
    }

    /// Joins a client connection to the shim's attach stream.
    async fn connect_attach(&self, id: &str, tty: bool, opts: AttachOptions, io: BoxedIo) {
        let client = self.runtime.client(id);
        match client.attach(opts.stdin, opts.stdout, opts.stderr).await {
            Ok(stream) => {
                self.emit_container_id(id, "attach", &[]);
                let keys = crate::exec::parse_detach_keys(
                    opts.detach_keys
                        .as_deref()
                        .unwrap_or(crate::exec::DEFAULT_DETACH_KEYS),
                )
                .ok();
                tokio::spawn(crate::exec::bridge(
                    stream,
                    io,
                    tty,
                    tty,
                    opts.stdin,
                    keys,
                    |_| {},
                ));
            }
            Err(e) => tracing::warn!(container = id, "attach: {e}"),
        }
    }
}

/// Docker's `Status` column: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
fn status_text(c: &Container) -> String {
    let now = chrono::Utc::now().timestamp();
    match c.state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!(
            "Up {}{}",
            human_duration(now - unix_seconds(&c.state.started_at)),
            crate::health::status_suffix(c)
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - unix_seconds(&c.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human_duration(now - unix_seconds(&c.state.finished_at))
        ),
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human_duration(now - unix_seconds(&c.state.finished_at))
        ),
    }
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".to_string()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".to_string()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

pub(crate) fn dir_size(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.size();
            }
        }
    }
    total
}

/// Keeps the `ps` rows whose PID column is one of `pids` (Docker's `top`).
fn parse_ps(output: &str, pids: &[u32]) -> Result<ct::TopResponse> {
    let mut lines = output.lines();
    let header = lines.next().ok_or_else(|| internal("ps printed nothing"))?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<u32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(ct::TopResponse { titles, processes })
}

/// The `filters` of `GET /containers/json`.
struct ListFilters {
    ids: Vec<String>,
    names: Vec<String>,
    labels: Vec<String>,
    status: Vec<String>,
    exited: Vec<i64>,
    ancestors: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    health: Vec<String>,
    volumes: Vec<String>,
    /// `network=`: the names/ids asked for (and of the networks they resolve to), and the
    /// containers attached to those networks.
    networks: Vec<String>,
    network_members: std::collections::HashSet<String>,
    /// `publish=`: host ports, `expose=`: container ports, as `port/proto`.
    publish: Vec<String>,
    expose: Vec<String>,
    /// For `publish=`: each running container's bound host ports.
    live_ports: std::collections::HashMap<String, Vec<ct::Port>>,
    /// `is-task=`: berth has no swarm tasks.
    is_task: Option<bool>,
}

impl ListFilters {
    fn parse(d: &Daemon, filters: &[(String, Vec<String>)]) -> Result<ListFilters> {
        let mut f = ListFilters {
            ids: vec![],
            names: vec![],
            labels: vec![],
            status: vec![],
            exited: vec![],
            ancestors: vec![],
            before: None,
            since: None,
            health: vec![],
            volumes: vec![],
            networks: vec![],
            network_members: Default::default(),
            publish: vec![],
            expose: vec![],
            live_ports: Default::default(),
            is_task: None,
        };
        for (k, vals) in filters {
            match k.as_str() {
                "id" => f.ids.extend(vals.iter().cloned()),
                "name" => f.names.extend(vals.iter().cloned()),
                "label" => f.labels.extend(vals.iter().cloned()),
                "status" => {
                    for v in vals {
                        if ![
                            "created",
                            "restarting",
                            "running",
                            "removing",
                            "paused",
                            "exited",
                            "dead",
                        ]
                        .contains(&v.as_str())
                        {
                            return Err(ApiError::invalid(format!("invalid filter 'status={v}'")));
                        }
                    }
                    f.status.extend(vals.iter().cloned())
                }
                "exited" => {
                    for v in vals {
                        f.exited.push(v.parse().map_err(|_| {
                            ApiError::invalid(format!("invalid filter 'exited={v}'"))
                        })?);
                    }
                }
                "ancestor" => {
                    for v in vals {
                        match d.resolve_image(v) {
                            Ok(img) => f.ancestors.push(img.id),
                            Err(_) => f.ancestors.push(format!("<unknown:{v}>")),
                        }
                    }
                }
                "before" => {
                    f.before = vals
                        .first()
                        .map(|v| d.resolve_container(v).map(|c| c.created))
                        .transpose()?
                }
                "since" => {
                    f.since = vals
                        .first()
                        .map(|v| d.resolve_container(v).map(|c| c.created))
                        .transpose()?
                }
                "health" => {
                    if let Some(v) = vals.iter().find(|v| {
                        !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none")
                    }) {
                        return Err(ApiError::invalid(format!(
                            "Unrecognised filter value for health: {v}"
                        )));
                    }
                    f.health.extend(vals.iter().cloned())
                }
                "volume" => f.volumes.extend(vals.iter().cloned()),
                "network" => {
                    for v in vals {
                        f.networks.push(v.clone());
                        if let Some(n) = d.net.find(v) {
                            // Running or not, the containers whose networks name it.
                            f.network_members.extend(
                                d.net
                                    .all_memberships()
                                    .into_iter()
                                    .filter(|m| m.is_of(&n))
                                    .map(|m| m.container_id),
                            );
                            f.network_members
                                .extend(d.net.members(&n.id).into_iter().map(|(id, _)| id));
                            f.networks.extend([n.id, n.name]);
                        }
                    }
                }
                "publish" => f.publish.extend(port_filter_values(vals)?),
                "expose" => f.expose.extend(port_filter_values(vals)?),
                "is-task" => {
                    for v in vals {
                        f.is_task = Some(crate::ps_filters::is_task_value(v).ok_or_else(|| {
                            ApiError::invalid(format!("Invalid filter 'is-task={v}'"))
                        })?);
                    }
                }
                "isolation" => {}
                other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
            }
        }
        if !f.publish.is_empty() {
            let running: Vec<Container> = lock(&d.containers).values().cloned().collect();
            for c in running.iter().filter(|c| c.state.status.is_active()) {
                f.live_ports.insert(c.id.clone(), d.summary_ports(c));
            }
        }
        Ok(f)
    }

    fn wants_stopped(&self) -> bool {
        !self.exited.is_empty() || self.status.iter().any(|s| s != "running" && s != "paused")
    }

    fn matches(&self, c: &Container, _all: &[Container]) -> bool {
        if !self.ids.is_empty() && !self.ids.iter().any(|i| c.id.starts_with(i.as_str())) {
            return false;
        }
        if !self.names.is_empty()
            && !self
                .names
                .iter()
                .any(|n| c.name.contains(n.trim_start_matches('/')))
        {
            return false;
        }
        let labels = c.config.labels.clone().unwrap_or_default();
        for l in &self.labels {
            let ok = match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l),
            };
            if !ok {
                return false;
            }
        }
        if !self.status.is_empty() && !self.status.iter().any(|s| s == c.state.status.as_str()) {
            return false;
        }
        let exited_matches =
            c.state.status == Status::Exited && self.exited.contains(&c.state.exit_code);
        if !self.exited.is_empty() && !exited_matches {
            return false;
        }
        if !self.ancestors.is_empty() && !self.ancestors.contains(&c.image_id) {
            return false;
        }
        if let Some(b) = &self.before {
            if c.created >= *b {
                return false;
            }
        }
        if let Some(s) = &self.since {
            if c.created <= *s {
                return false;
            }
        }
        if !self.health.is_empty() && !crate::health::filter_matches(c, &self.health) {
            return false;
        }
        if !self.volumes.is_empty()
            && !self
                .volumes
                .iter()
                .any(|v| crate::ps_filters::volume_matches(&c.mounts, v))
        {
            return false;
        }
        if !self.networks.is_empty()
            && !self.network_members.contains(&c.id)
            && !self.networks.iter().any(|n| {
                // `host` and `none` containers are on the network their mode names.
                let mode = c.host_config.network_mode.as_str();
                matches!(mode, "host" | "none") && n == mode
            })
        {
            return false;
        }
        if !self.publish.is_empty() || !self.expose.is_empty() {
            // As in Docker, either a published or an exposed port matching lists it.
            let live = self.live_ports.get(&c.id).map_or(&[][..], Vec::as_slice);
            let published =
                crate::ps_filters::published(c.host_config.port_bindings.as_ref(), live);
            let exposed = crate::ps_filters::exposed(c);
            if !published.iter().any(|p| self.publish.contains(p))
                && !exposed.iter().any(|p| self.expose.contains(p))
            {
                return false;
            }
        }
        self.is_task != Some(true)
    }
}

/// `publish=`/`expose=` values (`80`, `80/udp`, `8000-8002/tcp`) as the `port/proto` keys
/// a container's config uses.
fn port_filter_values(vals: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in vals {
        let (ports, proto) = v.split_once('/').unwrap_or((v.as_str(), "tcp"));
        let bad = || ApiError::invalid(format!("invalid port filter value: {v}"));
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
            None => (ports.parse::<u16>(), ports.parse::<u16>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi {
            return Err(bad());
        }
        out.extend((lo..=hi).map(|p| format!("{p}/{}", proto.to_lowercase())));
    }
    Ok(out)
}

/// The host binary `--init` runs as the container's PID 1: the configured `init-path`, else
/// Docker's `docker-init`, else Debian's `tini-static`, from `PATH` or Docker's libexec
/// directories. It must be a static executable: it runs inside the container's root.
fn init_binary(configured: Option<&Path>) -> std::result::Result<PathBuf, String> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(format!("init binary {} not found", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(
            ["/usr/local/libexec/docker", "/usr/libexec/docker"]
                .iter()
                .map(PathBuf::from),
        )
        .collect();
    ["docker-init", "tini-static"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .ok_or_else(|| "exec: \"docker-init\": executable file not found in $PATH".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_init_binary_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let tini = dir.path().join("tini");
        assert_eq!(
            init_binary(Some(&tini)).unwrap_err(),
            format!("init binary {} not found", tini.display())
        );
        std::fs::write(&tini, b"").unwrap();
        assert_eq!(init_binary(Some(&tini)).unwrap(), tini);
    }

    fn cfg(entry: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> Config {
        Config {
            entrypoint: entry.map(|v| v.into_iter().map(String::from).collect()),
            cmd: cmd.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn merge_follows_docker() {
        let image = Config {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            user: "nobody".into(),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut user = cfg(None, None);
        user.env = Some(vec!["A=2".into()]);
        merge_config(&mut user, &image);
        assert_eq!(user.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(
            user.env,
            Some(vec!["A=2".to_string(), "PATH=/bin".to_string()])
        );
        assert_eq!(user.user, "nobody");
        assert_eq!(user.working_dir, "/w");

        let mut user = cfg(Some(vec!["/bin/echo"]), None);
        merge_config(&mut user, &image);
        assert_eq!(
            user.cmd, None,
            "an entrypoint given at run drops the image's cmd"
        );

        let mut user = cfg(Some(vec![""]), Some(vec!["ls"]));
        merge_config(
            &mut user,
            &Config {
                entrypoint: Some(vec!["/init".into()]),
                ..image
            },
        );
        assert_eq!(path_and_args(&user), ("ls".to_string(), vec![]));
    }

    #[test]
    fn exit_codes_for_start_errors() {
        assert_eq!(
            exit_code_for_start_error("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            exit_code_for_start_error("exec /etc: permission denied"),
            126
        );
        assert_eq!(exit_code_for_start_error("boom"), 128);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1m"), Some(1024 * 1024));
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("200"), Some(200));
        assert_eq!(parse_size("x"), None);
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
    }

    #[test]
    fn ps_filtering() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sh -c while true\nroot 11 1 0 10:00 ? 00:00:00 other\n";
        let top = parse_ps(out, &[10]).unwrap();
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][7], "sh -c while true");
    }
}
