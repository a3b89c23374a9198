//! The whole spec assembled from its parts: [`build_spec`] / [`build_spec_with`].

use std::path::Path;

use oci_spec::runtime::{LinuxBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder};

use super::devices::{
    default_device_rules, default_devices, device_rule, parse_device_cgroup_rule,
};
use super::mounts::{base_mounts, bind, tmpfs_mounts};
use super::namespaces::{namespaces, sysctls, NsModes};
use super::process::{all_gids, container_env, oci_user, rlimits};
use super::resources::{cgroups_path, resources};
use super::security::{capabilities_oci, parse_security_opts, seccomp_for};
use super::{
    additional_groups, build_err, command_argv, container_capabilities, host_devices, merge_mounts,
    resolve_user_with, swap_masked_eq_operands, HostFacts, SpecError, SpecExtras, SpecInput,
    DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, INIT_PATH,
};

/// Builds the OCI runtime spec for a container, the way Docker would.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    build_spec_with(input, &SpecExtras::default())
}

/// [`build_spec`] plus mounts and a network namespace supplied by other subsystems.
/// Whether the shim, not the runtime, mounts the container's cgroup file system (the spec then
/// has no cgroup mount): for a container that joins another PID namespace on a host with
/// cgroup v1 hierarchies, where libcontainer 0.7 looks its cgroups up in `/proc/<pid>` with
/// the PID of the joined namespace and fails whenever that PID is not also one on the host
/// (see the shim's `cgroup_v1_mounts`).
pub fn shim_mounts_cgroups(extras: &SpecExtras, host: &HostFacts) -> bool {
    extras.pid_ns_path.is_some() && !host.cgroup_v2()
}

pub fn build_spec_with(input: &SpecInput, extras: &SpecExtras) -> Result<Spec, SpecError> {
    let config = input.config;
    let hc = input.host_config;
    let args = command_argv(config);
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let args = match extras.init_binary {
        Some(_) => [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(args)
            .collect(),
        None => args,
    };
    let oom_score_adj = i32::try_from(hc.oom_score_adj)
        .ok()
        .filter(|v| (-1000..=1000).contains(v))
        .ok_or_else(|| {
            SpecError::InvalidParameter(format!(
                "invalid value {}, range for oom score adj is [-1000, 1000]",
                hc.oom_score_adj
            ))
        })?;
    let security = parse_security_opts(hc.security_opt.as_deref().unwrap_or(&[]))?;
    let ns = NsModes {
        host_network: hc.network_mode == "host",
        host_ipc: hc.ipc_mode == "host",
        host_uts: hc.uts_mode == "host",
        userns_gids: extras.userns.map(crate::userns_remap::IdMap::gid_count),
    };

    // process
    let user = resolve_user_with(input.rootfs, &config.user, extras.image_groups)?;
    let group_add = additional_groups(input.rootfs, hc.group_add.as_deref().unwrap_or(&[]))?;
    let caps = container_capabilities(
        hc.cap_add.as_deref().unwrap_or(&[]),
        hc.cap_drop.as_deref().unwrap_or(&[]),
        hc.privileged,
        &input.host.bounding_caps,
    )?;
    let cwd = if config.working_dir.is_empty() {
        "/".to_string()
    } else if config.working_dir.starts_with('/') {
        config.working_dir.clone()
    } else {
        return Err(SpecError::InvalidParameter(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    };
    let mut process = ProcessBuilder::default()
        .terminal(config.tty)
        .args(args)
        .env(container_env(config, config.tty, &[], &user.home))
        .cwd(cwd)
        .user(oci_user(user.uid, user.gid, all_gids(&user, &group_add))?)
        .capabilities(capabilities_oci(&caps)?)
        .rlimits(rlimits(hc, input.host)?)
        .no_new_privileges(security.no_new_privileges)
        .oom_score_adj(oom_score_adj)
        .build()
        .map_err(build_err)?;
    // libcontainer 0.7 loads the seccomp filter while it still holds CAP_SYS_ADMIN only when
    // `noNewPrivileges` is absent; an explicit `false` defers the load past the capability drop,
    // where the kernel refuses it. So "off" must be written as absent.
    if !security.no_new_privileges {
        process.set_no_new_privileges(None);
    }

    // mounts
    let mut user_mounts = tmpfs_mounts(hc)?;
    user_mounts.extend(extras.extra_mounts.iter().cloned());
    if let Some(init) = extras.init_binary {
        user_mounts.push(bind(INIT_PATH, init, true)?);
    }
    let mut base = base_mounts(input, &ns)?;
    if shim_mounts_cgroups(extras, input.host) {
        base.retain(|m| m.typ().as_deref() != Some("cgroup"));
    }
    let mounts = merge_mounts(base, user_mounts);

    // devices
    let mut devices = default_devices()?;
    let mut device_rules = default_device_rules()?;
    if hc.privileged {
        let host_devs = host_devices(Path::new("/dev"));
        devices.retain(|d| !host_devs.iter().any(|h| h.path() == d.path()));
        devices.extend(host_devs);
        device_rules = vec![device_rule(true, None, None, None, "rwm")?];
    } else {
        for rule in hc.device_cgroup_rules.iter().flatten() {
            device_rules.push(parse_device_cgroup_rule(rule)?);
        }
        let (devs, rules) = crate::resources::device_mappings(hc)?;
        devices.retain(|d| !devs.iter().any(|n| n.path() == d.path()));
        devices.extend(devs);
        device_rules.extend(rules);
    }

    let (masked, readonly) = if hc.privileged || security.systempaths_unconfined {
        (Vec::new(), Vec::new())
    } else {
        (
            hc.masked_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_MASKED_PATHS.iter().map(|p| (*p).into()).collect()),
            hc.readonly_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_READONLY_PATHS.iter().map(|p| (*p).into()).collect()),
        )
    };

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(input, extras, &ns)?)
        .devices(devices)
        .resources(resources(input, device_rules)?)
        .cgroups_path(cgroups_path(input))
        .sysctl(sysctls(hc, &ns)?)
        .masked_paths(masked)
        .readonly_paths(readonly);
    if let Some(m) = extras.userns.filter(|_| extras.userns_path.is_none()) {
        linux = linux
            .uid_mappings(id_mappings(m.uids())?)
            .gid_mappings(id_mappings(m.gids())?);
    }
    if let Some(p) = rootfs_propagation(&mounts) {
        linux = linux.rootfs_propagation(p);
    }
    if let Some(mut sc) = seccomp_for(
        security.seccomp.as_deref(),
        hc.privileged,
        &caps,
        input.host,
    )? {
        // The built-in runtime reads masked comparisons the other way round from runc; see
        // `swap_masked_eq_operands`, which also converts back for external runtimes.
        swap_masked_eq_operands(&mut sc);
        linux = linux.seccomp(sc);
    }

    let spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(hc.readonly_rootfs)
                .build()
                .map_err(build_err)?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux.build().map_err(build_err)?);
    let mut spec = spec.build().map_err(build_err)?;
    // oci-spec's defaults carry a hostname of their own; a host UTS namespace must set none.
    spec.set_hostname(None);
    spec.set_domainname(None);
    if !ns.host_uts {
        spec.set_hostname(Some(config.hostname.clone()));
        if !config.domainname.is_empty() {
            spec.set_domainname(Some(config.domainname.clone()));
        }
    }
    Ok(spec)
}

/// The propagation of the container's root: `shared` when a bind is shared, so that the bind
/// (cloned in the container's namespace) can stay a peer of the host's mount, as dockerd and
/// containerd do for `rshared` binds; otherwise the runtime's default (`slave`). The root's
/// parent mount is made private by the runtime either way, and the shim gives each bind its
/// own propagation (see the shim's `propagation`).
pub(super) fn rootfs_propagation(mounts: &[oci_spec::runtime::Mount]) -> Option<String> {
    let shared = mounts
        .iter()
        .flat_map(|m| m.options().iter().flatten())
        .any(|o| o == "rshared" || o == "shared");
    shared.then(|| "shared".to_string())
}

/// Container ids `0..size` as host ids `host..`.
/// One OCI id mapping per line of the user namespace's map.
fn id_mappings(
    lines: &[crate::userns_remap::IdRange],
) -> Result<Vec<oci_spec::runtime::LinuxIdMapping>, SpecError> {
    lines
        .iter()
        .map(|r| {
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(r.container)
                .host_id(r.host)
                .size(r.size)
                .build()
                .map_err(build_err)
        })
        .collect()
}
