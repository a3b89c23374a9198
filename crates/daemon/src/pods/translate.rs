//! A CRI container config (with its pod's config) as the Docker create request berth's
//! container code understands: command/args as Entrypoint/Cmd, mounts, devices, security
//! context, resources, namespaces, DNS, and the `io.kubernetes.*` labels `docker ps` shows.

use std::collections::BTreeMap;

use berth_api_types::container as ct;
use berth_cri::api;
use berth_cri::{CriError, CriResult};

use super::sandbox::{ns_options, NODE, POD};

pub(crate) const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub(crate) const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub(crate) const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub(crate) const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub(crate) const LABEL_SANDBOX_ID: &str = "io.kubernetes.sandbox.id";

/// The Docker name of a pod's container, as dockershim named them.
pub(crate) fn container_name(c: &api::ContainerMetadata, pod: &api::PodSandboxMetadata) -> String {
    format!(
        "k8s_{}_{}_{}_{}_{}",
        c.name, pod.name, pod.namespace, pod.uid, c.attempt
    )
}

fn propagation(p: i32) -> &'static str {
    match api::MountPropagation::try_from(p) {
        Ok(api::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(api::MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    }
}

/// Whether this process has CAP_SYS_RESOURCE in its effective set (needed to lower an
/// OOM score adjustment below its own floor).
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The OOM score adjustment clamped to what this daemon may set: without CAP_SYS_RESOURCE
/// (as on VMs and in unprivileged containers) nothing below the daemon's own value is allowed,
/// and a kubelet's negative score (-997 for a Guaranteed pod's container) would fail the start.
pub(crate) fn clamp_oom_score_adj(v: i64) -> i64 {
    let v = v.clamp(-1000, 1000);
    if has_cap_sys_resource() {
        return v;
    }
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    v.max(own.min(1000))
}

fn user_of(sc: &api::LinuxContainerSecurityContext) -> CriResult<String> {
    let group = sc.run_as_group.as_ref().map(|g| g.value);
    Ok(
        match (&sc.run_as_user, sc.run_as_username.as_str(), group) {
            (Some(u), _, Some(g)) => format!("{}:{g}", u.value),
            (Some(u), _, None) => u.value.to_string(),
            (None, name, Some(g)) if !name.is_empty() => format!("{name}:{g}"),
            (None, _, Some(_)) => {
                return Err(CriError::invalid(
                    "config.linux.security_context.run_as_group",
                    "run_as_group is set without run_as_user or run_as_username",
                ))
            }
            (None, name, None) => name.to_string(),
        },
    )
}

/// The container's `SupplementalGroupsPolicy`: `Merge` (the default) gives its user the
/// groups the image's `/etc/group` lists it in, also with `run_as_group` (as containerd does;
/// Docker adds them only without an explicit group); `Strict` gives none of them.
pub(crate) fn image_groups(cfg: &api::ContainerConfig) -> crate::spec::ImageGroups {
    let strict = cfg
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|sc| {
            sc.supplemental_groups_policy == api::SupplementalGroupsPolicy::Strict as i32
        });
    if strict {
        crate::spec::ImageGroups::Strict
    } else {
        crate::spec::ImageGroups::Merge
    }
}

/// The seccomp profile of a container as a Docker security option: `RuntimeDefault` is the
/// daemon's default profile, `Unconfined` and no profile at all (as containerd) none, a
/// `Localhost` profile the file's JSON. The deprecated `seccomp_profile_path`
/// (`runtime/default`, `unconfined`, `localhost/<path>`) is read when `seccomp` is unset.
fn seccomp_opt(p: Option<&api::SecurityProfile>, deprecated: &str) -> CriResult<Option<String>> {
    use api::security_profile::ProfileType;
    let field = "config.linux.security_context.seccomp.localhost_ref";
    let local = |path: &str, field: &str| -> CriResult<Option<String>> {
        let body = std::fs::read_to_string(path)
            .map_err(|e| CriError::invalid(field, format!("{path}: {e}")))?;
        Ok(Some(format!("seccomp={body}")))
    };
    let unconfined = Ok(Some("seccomp=unconfined".into()));
    let Some(p) = p else {
        return match deprecated {
            "runtime/default" | "docker/default" => Ok(None),
            "" | "unconfined" => unconfined,
            other => match other.strip_prefix("localhost/") {
                Some(path) => local(path, "config.linux.security_context.seccomp_profile_path"),
                None => Err(CriError::invalid(
                    "config.linux.security_context.seccomp_profile_path",
                    format!("unknown seccomp profile {other:?}"),
                )),
            },
        };
    };
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::Unconfined) => unconfined,
        Ok(ProfileType::Localhost) => local(&p.localhost_ref, field),
        Ok(ProfileType::RuntimeDefault) => Ok(None),
        Err(_) => Err(CriError::invalid(
            "config.linux.security_context.seccomp.profile_type",
            format!("unknown profile type {}", p.profile_type),
        )),
    }
}

/// The pod's namespaces a container joins (set on the daemon's record after create).
#[derive(Debug)]
pub(crate) struct Joins {
    pub netns: bool,
    pub ipc: bool,
    /// The pod's UTS namespace (every pod but a host-network one).
    pub uts: bool,
    /// The pod's shared PID namespace (PID `POD`, when the pod has one).
    pub pid: bool,
}

/// The pod's hostname: the config's, else the pod's name.
pub(crate) fn pod_hostname(pod: &api::PodSandboxConfig) -> String {
    if pod.hostname.is_empty() {
        pod.metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default()
    } else {
        pod.hostname.clone()
    }
}

/// Builds the create request of a pod's container.
pub(crate) fn create_request(
    pod_id: &str,
    pod: &api::PodSandboxConfig,
    cfg: &api::ContainerConfig,
    image: &str,
) -> CriResult<(ct::CreateRequest, Joins)> {
    let pod_md = pod.metadata.clone().unwrap_or_default();
    let md = cfg.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = cfg.labels.clone().into_iter().collect();
    labels.insert(LABEL_CONTAINER_NAME.into(), md.name.clone());
    labels.insert(LABEL_POD_NAME.into(), pod_md.name.clone());
    labels.insert(LABEL_POD_NAMESPACE.into(), pod_md.namespace.clone());
    labels.insert(LABEL_POD_UID.into(), pod_md.uid.clone());
    labels.insert(LABEL_SANDBOX_ID.into(), pod_id.into());
    let pod_ns = ns_options(pod);
    let linux = cfg.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let res = linux.resources.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let host_network = pod_ns.network == NODE;

    let mut config = ct::Config {
        image: image.to_string(),
        entrypoint: (!cfg.command.is_empty()).then(|| cfg.command.clone()),
        cmd: (!cfg.args.is_empty()).then(|| cfg.args.clone()),
        working_dir: cfg.working_dir.clone(),
        env: Some(
            cfg.envs
                .iter()
                .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
                .collect(),
        ),
        labels: Some(labels),
        tty: cfg.tty,
        open_stdin: cfg.stdin,
        stdin_once: cfg.stdin_once,
        user: user_of(&sc)?,
        ..Default::default()
    };
    if !host_network {
        config.hostname = pod_hostname(pod);
    }

    let mut mounts = Vec::new();
    for (i, m) in cfg.mounts.iter().enumerate() {
        if m.container_path.is_empty() || m.host_path.is_empty() {
            return Err(CriError::invalid(
                format!("config.mounts[{i}]"),
                "container_path and host_path must be set",
            ));
        }
        if !std::path::Path::new(&m.host_path).exists() {
            return Err(CriError::invalid(
                format!("config.mounts[{i}].host_path"),
                format!("{} does not exist", m.host_path),
            ));
        }
        if m.recursive_read_only
            && (!m.readonly || m.propagation != api::MountPropagation::PropagationPrivate as i32)
        {
            return Err(CriError::invalid(
                format!("config.mounts[{i}].recursive_read_only"),
                "needs readonly and private propagation",
            ));
        }
        // The CRI's read-only is the top mount only unless recursive_read_only asks for more.
        let bind_options = serde_json::json!({
            "Propagation": propagation(m.propagation),
            "ReadOnlyNonRecursive": m.readonly && !m.recursive_read_only,
            "ReadOnlyForceRecursive": m.recursive_read_only,
        });
        mounts.push(ct::Mount {
            target: m.container_path.clone(),
            source: m.host_path.clone(),
            kind: "bind".into(),
            read_only: m.readonly,
            bind_options: Some(bind_options),
            ..Default::default()
        });
    }

    let mut security_opt = Vec::new();
    if sc.no_new_privs {
        security_opt.push("no-new-privileges".to_string());
    }
    #[allow(deprecated)] // still sent by older kubelets
    let deprecated_seccomp = &sc.seccomp_profile_path;
    if let Some(s) = seccomp_opt(sc.seccomp.as_ref(), deprecated_seccomp)? {
        security_opt.push(s);
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let dns = pod.dns_config.clone().unwrap_or_default();
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let pod_linux = pod.linux.clone().unwrap_or_default();

    let mut hc = ct::HostConfig {
        network_mode: if host_network { "host" } else { "none" }.into(),
        privileged: sc.privileged,
        readonly_rootfs: sc.readonly_rootfs,
        cap_add: non_empty(caps.add_capabilities.clone()),
        cap_drop: non_empty(caps.drop_capabilities.clone()),
        group_add: non_empty(
            sc.supplemental_groups
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
        security_opt: non_empty(security_opt),
        masked_paths: non_empty(sc.masked_paths.clone()),
        readonly_paths: non_empty(sc.readonly_paths.clone()),
        dns: non_empty(dns.servers),
        dns_search: non_empty(dns.searches),
        dns_options: non_empty(dns.options),
        cpu_period: res.cpu_period,
        cpu_quota: res.cpu_quota,
        cpu_shares: res.cpu_shares,
        memory: res.memory_limit_in_bytes,
        cpuset_cpus: res.cpuset_cpus.clone(),
        cpuset_mems: res.cpuset_mems.clone(),
        oom_score_adj: clamp_oom_score_adj(res.oom_score_adj),
        cgroup_parent: pod_linux.cgroup_parent.clone(),
        sysctls: (!pod_linux.sysctls.is_empty())
            .then(|| pod_linux.sysctls.clone().into_iter().collect()),
        ..Default::default()
    };
    if !mounts.is_empty() {
        hc.mounts = Some(mounts);
    }
    if !cfg.devices.is_empty() {
        hc.devices = Some(
            cfg.devices
                .iter()
                .map(|d| ct::DeviceMapping {
                    path_on_host: d.host_path.clone(),
                    path_in_container: d.container_path.clone(),
                    cgroup_permissions: if d.permissions.is_empty() {
                        "rwm".into()
                    } else {
                        d.permissions.clone()
                    },
                })
                .collect(),
        );
    }
    if host_network {
        // As containerd: a host-network pod has the node's hostname and UTS namespace.
        hc.uts_mode = "host".into();
    }
    hc.pid_mode = match api::NamespaceMode::try_from(ns.pid) {
        Ok(api::NamespaceMode::Node) => "host".into(),
        Ok(api::NamespaceMode::Target) if !ns.target_id.is_empty() => {
            format!("container:{}", ns.target_id)
        }
        _ => String::new(),
    };
    let ipc_host = ns.ipc == NODE || pod_ns.ipc == NODE;
    if ipc_host {
        hc.ipc_mode = "host".into();
    } else {
        hc.ipc_mode = "private".into();
    }
    let joins = Joins {
        netns: !host_network,
        ipc: !ipc_host,
        uts: !host_network,
        pid: ns.pid == POD && hc.pid_mode.is_empty(),
    };
    Ok((
        ct::CreateRequest {
            config,
            host_config: Some(hc),
            networking_config: None,
            platform: None,
        },
        joins,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                attempt: 0,
            }),
            hostname: "webhost".into(),
            ..Default::default()
        }
    }

    #[test]
    fn command_args_labels_and_namespaces() {
        let cfg = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 2,
            }),
            command: vec!["/bin/sh".into()],
            args: vec!["-c".into(), "true".into()],
            envs: vec![api::KeyValue {
                key: "A".into(),
                value: b"b".to_vec(),
            }],
            labels: [("tier".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let (req, joins) = create_request("pod1", &pod(), &cfg, "busybox").unwrap();
        assert_eq!(req.config.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(req.config.cmd.as_ref().unwrap().len(), 2);
        assert_eq!(req.config.env, Some(vec!["A=b".to_string()]));
        assert_eq!(req.config.hostname, "webhost");
        let labels = req.config.labels.unwrap();
        assert_eq!(labels[LABEL_SANDBOX_ID], "pod1");
        assert_eq!(labels[LABEL_POD_NAMESPACE], "default");
        assert_eq!(labels["tier"], "x");
        let hc = req.host_config.unwrap();
        assert_eq!(hc.network_mode, "none");
        assert!(joins.netns && joins.ipc);
        let md = cfg.metadata.unwrap();
        assert_eq!(
            container_name(&md, &pod().metadata.unwrap()),
            "k8s_app_web_default_u1_2"
        );
    }

    #[test]
    fn read_only_mounts_recursive_only_when_asked() {
        let mount = |readonly, recursive_read_only, propagation: api::MountPropagation| {
            api::ContainerConfig {
                mounts: vec![api::Mount {
                    container_path: "/data".into(),
                    host_path: "/tmp".into(),
                    readonly,
                    recursive_read_only,
                    propagation: propagation as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }
        };
        let opts = |cfg: &api::ContainerConfig| {
            let (req, _) = create_request("p", &pod(), cfg, "busybox").unwrap();
            req.host_config.unwrap().mounts.unwrap()[0]
                .bind_options
                .clone()
                .unwrap()
        };
        let private = api::MountPropagation::PropagationPrivate;
        let o = opts(&mount(true, false, private));
        assert_eq!(o["ReadOnlyNonRecursive"], true);
        assert_eq!(o["ReadOnlyForceRecursive"], false);
        let o = opts(&mount(true, true, private));
        assert_eq!(o["ReadOnlyNonRecursive"], false);
        assert_eq!(o["ReadOnlyForceRecursive"], true);
        for bad in [
            mount(false, true, private),
            mount(true, true, api::MountPropagation::PropagationBidirectional),
        ] {
            let e = create_request("p", &pod(), &bad, "busybox").unwrap_err();
            assert!(
                matches!(e, CriError::InvalidArgument { ref field, .. } if field == "config.mounts[0].recursive_read_only"),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_mount_source_is_invalid() {
        let cfg = api::ContainerConfig {
            mounts: vec![api::Mount {
                container_path: "/data".into(),
                host_path: "/nonexistent/berth-cri".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = create_request("p", &pod(), &cfg, "busybox").unwrap_err();
        assert!(
            matches!(e, CriError::InvalidArgument { ref field, .. } if field == "config.mounts[0].host_path"),
            "{e}"
        );
    }

    #[test]
    fn seccomp_profiles_and_run_as_group() {
        use api::security_profile::ProfileType;
        let p = |t: ProfileType| api::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: String::new(),
        };
        assert_eq!(
            seccomp_opt(None, "").unwrap().as_deref(),
            Some("seccomp=unconfined")
        );
        assert_eq!(
            seccomp_opt(Some(&p(ProfileType::RuntimeDefault)), "").unwrap(),
            None
        );
        assert_eq!(
            seccomp_opt(Some(&p(ProfileType::Unconfined)), "")
                .unwrap()
                .as_deref(),
            Some("seccomp=unconfined")
        );
        assert_eq!(seccomp_opt(None, "runtime/default").unwrap(), None);
        assert!(seccomp_opt(None, "bogus").is_err());
        let sc = api::LinuxContainerSecurityContext {
            run_as_group: Some(api::Int64Value { value: 5 }),
            ..Default::default()
        };
        let e = user_of(&sc).unwrap_err();
        assert!(
            matches!(e, CriError::InvalidArgument { ref field, .. } if field.ends_with("run_as_group")),
            "{e}"
        );
        assert!(clamp_oom_score_adj(5000) == 1000 && clamp_oom_score_adj(500) == 500);
    }
}
