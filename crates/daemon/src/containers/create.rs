//! `POST /containers/create`: validate, merge the image's config, pick a name, record.

use berth_api_types::container::{Config, CreateRequest, CreateResponse, HostConfig};
use berth_api_types::ApiError;

use crate::model::{now_rfc3339, Container, RunState};
use crate::{internal, lock, names, spec, Daemon, Result};

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

impl Daemon {
    pub async fn container_create(
        &self,
        name: Option<String>,
        req: CreateRequest,
    ) -> Result<CreateResponse> {
        // `docker run` sends start right after create: begin paying the start's cgroup
        // migration cost now (see `prime_cgroup_migration`).
        self.runtime.ops.prime_cgroup_migration();
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
        crate::userns_remap::check_create(&host_config, self.cfg.userns_remap.as_ref())?;
        if let Some(r) = &self.cfg.rootless {
            crate::rootless::check_limits(&host_config, r)?;
        }
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
                let n = names::validate(&n)?;
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
        self.register_new(&record, req.networking_config.as_ref())?;
        self.emit_container(&record, "create", &[]);
        Ok(CreateResponse { id, warnings })
    }
}

impl Daemon {
    /// Makes a new container exist: its directories, its saved record and its network
    /// endpoints (from `networking`, else its `NetworkMode`). On failure nothing of it stays.
    /// Serves `docker create` and the builder's step containers.
    pub(crate) fn register_new(
        &self,
        record: &Container,
        networking: Option<&berth_api_types::container::NetworkingConfig>,
    ) -> Result<()> {
        let id = &record.id;
        self.runtime.create_dirs(id).map_err(internal)?;
        if let Err(e) = self.save(record) {
            let _ = self.runtime.remove_dirs(id);
            return Err(e);
        }
        if let Err(e) =
            self.record_create_networks(id, &record.host_config.network_mode, networking)
        {
            let _ = self.store.delete_container(id);
            lock(&self.containers).remove(id);
            let _ = self.runtime.remove_dirs(id);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
