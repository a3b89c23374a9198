//! The bundle a start hands the shim: rootfs, the generated /etc files and the OCI spec.

use std::path::{Path, PathBuf};

use berth_api_types::ApiError;

use crate::model::Container;
use crate::network::Attached;
use crate::{internal, spec, userns_remap, Daemon, Result};

impl Daemon {
    /// Writes the generated /etc files and the OCI spec for a start. True when the spec
    /// leaves the container's cgroup v1 mounts to the shim ([`spec::shim_mounts_cgroups`]).
    pub(super) fn prepare_bundle(&self, c: &Container) -> Result<bool> {
        let rt = &self.runtime;
        let id = &c.id;
        let remap = userns_remap::for_container(self.cfg.userns_remap.as_ref(), &c.host_config);
        let mut lowers = self.container_lowers(c)?;
        if let Some(m) = remap {
            self.remap_rootfs(c, m, &mut lowers)
                .map_err(|e| internal(format!("remapping the rootfs: {e}")))?;
        }
        rt.mount_rootfs(id, &lowers, c.host_config.auto_remove)
            .map_err(|e| internal(format!("mounting rootfs: {e}")))?;
        self.create_working_dir(c)?;
        if let Some(m) = remap {
            self.remap_fs
                .shift_made_dirs(&rt.rootfs(id), &c.config.working_dir, m)
                .map_err(|e| internal(format!("remapping the working directory: {e}")))?;
        }
        let hc = &c.host_config;
        std::fs::write(rt.hostname_path(id), format!("{}\n", c.config.hostname))
            .map_err(internal)?;
        // A remapped container's network namespace is made by the runtime inside its user
        // namespace and plumbed once it exists (`start_locked`); /etc/hosts and resolv.conf
        // are written again then.
        let attached = match remap {
            Some(_) => None,
            None => self.net.setup(c)?,
        };
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
            Some(init_binary(self.cfg.init_path.as_deref())?)
        } else {
            None
        };
        let pod_join = c.pod_join.as_ref();
        // A container with a namespace of its own and nothing to plumb in it (`--network
        // none`) joins a ready one from the pool, pinned at its usual path, instead of having
        // the runtime make it; without one ready the runtime makes it as before.
        let spare = match (&attached, remap, pod_join, hc.network_mode.as_str()) {
            (None, None, None, "none") => self.net.pin_spare(id),
            _ => None,
        };
        let userns_path = match remap {
            Some(_) => joined
                .as_ref()
                .map(|j| PathBuf::from(format!("/proc/{}/ns/net", j.pid)))
                .or(ns_joins.pid.clone())
                .or(ns_joins.ipc.clone())
                .map(|ns| userns_remap::userns_of_join(&ns))
                .transpose()?,
            None => None,
        };
        let extras = spec::SpecExtras {
            init_binary: init_binary.as_deref(),
            netns_path: attached
                .as_ref()
                .map(|a| a.netns.as_path())
                .or(joined.as_ref().map(|j| j.netns.as_path()))
                .or(pod_join.and_then(|p| p.netns.as_deref()))
                .or(spare.as_deref()),
            pid_ns_path: ns_joins
                .pid
                .as_deref()
                .or(pod_join.and_then(|p| p.pid.as_deref())),
            ipc_ns_path: ns_joins
                .ipc
                .as_deref()
                .or(pod_join.and_then(|p| p.ipc.as_deref())),
            uts_ns_path: pod_join.and_then(|p| p.uts.as_deref()),
            extra_mounts: &user_mounts,
            userns: remap,
            userns_path: userns_path.as_deref(),
            image_groups: pod_join.map(|p| p.image_groups).unwrap_or_default(),
        };
        let oci =
            spec::build_spec_with(&input, &extras).map_err(|e| ApiError::invalid(e.to_string()))?;
        let shim_mounts_cgroups = spec::shim_mounts_cgroups(&extras, &self.host);
        if let Some(m) = remap {
            for p in [
                rt.hostname_path(id),
                rt.hosts_path(id),
                rt.resolv_conf_path(id),
            ] {
                self.remap_fs.chown_root(&p, m).map_err(internal)?;
            }
        }
        let body = serde_json::to_vec_pretty(&oci).map_err(internal)?;
        let path = rt.bundle_dir(id).join("config.json");
        std::fs::create_dir_all(rt.bundle_dir(id)).map_err(internal)?;
        std::fs::write(&path, body).map_err(internal)?;
        Ok(shim_mounts_cgroups)
    }
}

impl Daemon {
    /// `--userns-remap`: the image layers (`lowers` past the init layer) replaced by their
    /// views (idmapped mounts or shifted copies), and the container's init layer and writable layer given to its root.
    fn remap_rootfs(
        &self,
        c: &Container,
        m: &userns_remap::IdMap,
        lowers: &mut [PathBuf],
    ) -> std::io::Result<()> {
        if let Some((init, layers)) = lowers.split_first_mut() {
            self.remap_fs.shift_tree(init, m)?;
            let views = self.remap_fs.layers(m, layers)?;
            layers.clone_from_slice(&views);
        }
        self.remap_fs.chown_root(&self.runtime.upper_dir(&c.id), m)
    }

    /// A remapped container's network, set up once its runtime made the namespace (the
    /// container exists, its process waits for start): plumbed through `init_pid`, then its
    /// /etc/hosts and resolv.conf rewritten in place (they are bind-mounted already).
    pub(super) fn setup_created_network(&self, c: &Container, init_pid: u32) -> Result<()> {
        match self.net.setup_created(c, init_pid)? {
            Some(attached) => self.rewrite_net_files(c, &attached),
            None => Ok(()),
        }
    }

    fn rewrite_net_files(&self, c: &Container, attached: &Attached) -> Result<()> {
        let rt = &self.runtime;
        let hosts = self.hosts_for_start(c, Some(attached))?;
        std::fs::write(rt.hosts_path(&c.id), hosts).map_err(internal)?;
        let resolv = self.resolv_conf_for(c, attached.dns);
        std::fs::write(rt.resolv_conf_path(&c.id), resolv).map_err(internal)
    }
}

/// The host binary `--init` runs as the container's PID 1: the configured `init-path`, else
/// Docker's `docker-init`, else Debian's `tini-static`, from `PATH` or Docker's libexec
/// directories. It must be a static executable: it runs inside the container's root.
fn init_binary(configured: Option<&Path>) -> std::result::Result<PathBuf, NoInit> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(NoInit::Configured(p.to_owned()))
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
        .ok_or(NoInit::NotInPath)
}

/// `--init` without a usable init binary on the host (400, as dockerd answers).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum NoInit {
    #[error("init binary {} not found", .0.display())]
    Configured(PathBuf),
    #[error("exec: \"docker-init\": executable file not found in $PATH")]
    NotInPath,
}

impl crate::errors::Classified for NoInit {
    fn kind(&self) -> berth_api_types::ErrorKind {
        berth_api_types::ErrorKind::InvalidParameter
    }
}

crate::errors::into_api_error!(NoInit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_init_binary_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let tini = dir.path().join("tini");
        assert_eq!(
            init_binary(Some(&tini)).unwrap_err().to_string(),
            format!("init binary {} not found", tini.display())
        );
        std::fs::write(&tini, b"").unwrap();
        assert_eq!(init_binary(Some(&tini)).unwrap(), tini);
    }
}
