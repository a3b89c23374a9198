//! Docker's container configuration (`Config` + `HostConfig`) turned into an OCI runtime spec,
//! following moby (`daemon/oci_linux.go`, `oci/defaults.go`, `profiles/seccomp`).
//!
//! Public API:
//! - [`build_spec`] — the whole `config.json` for a container, from a [`SpecInput`];
//!   [`build_spec_with`] takes [`SpecExtras`] too, the hook through which binds and volumes
//!   (merged the way Docker merges user mounts over its defaults) and a prepared network
//!   namespace will arrive.
//! - [`build_exec_process`] — the `process` of a `docker exec` ([`ExecSpec`]), derived from the
//!   container's own process.
//! - [`HostFacts`] / [`HostFacts::detect`] — the daemon's bounding set, rlimits, cgroup layout and
//!   kernel version, gathered once.
//! - [`resolve_user`] / [`additional_groups`] — `User` and `GroupAdd` against the container's
//!   `/etc/passwd` and `/etc/group`, read without ever leaving the rootfs ([`resolve_in_root`]).
//! - [`parse_signal`] — signal names and numbers as `docker kill -s` accepts them.
//! - [`default_hostname`], [`hostname_file_contents`], [`hosts_file_contents`],
//!   [`hosts_file_with_address`], [`validate_extra_hosts`], [`resolv_conf_contents`] — the
//!   three `/etc` files berth bind-mounts into containers.
//! - [`adapt_host_config`] — Docker's create-time defaults (`MemorySwap`, `ShmSize`, masked and
//!   read-only paths) applied to a stored `HostConfig` so inspect shows what Docker shows.
//! - [`convert_seccomp_profile`] — a Docker seccomp profile (JSON) converted for one container
//!   (runc operand order); [`swap_masked_eq_operands`] converts between runc's and libcontainer
//!   0.7's reading of `SCMP_CMP_MASKED_EQ`.
//!
//! Runtime target: the spec is written for the built-in runtime, libcontainer 0.7. Its only
//! divergence from runc that matters here is the operand order of masked seccomp comparisons,
//! so [`build_spec`] emits them libcontainer's way; apply [`swap_masked_eq_operands`] to the
//! spec's seccomp section before handing it to runc or crun.
//!
//! Documented refusals: the `container:<id>` PID and IPC modes. `--network container:<id>`
//! arrives here as `SpecExtras::netns_path`, `--init` as `SpecExtras::init_binary`.

pub(crate) mod caps;
mod etc;
mod host;
mod seccomp;
mod signal;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use berth_api_types::container::{Config, HostConfig};
use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

pub use caps::{
    caps_to_mask, container_capabilities, validate_capability_names, ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
};
pub use etc::{
    default_hostname, hostname_file_contents, hosts_entry, hosts_file_contents,
    hosts_file_with_address, hosts_file_with_addresses, resolv_conf_contents, validate_extra_hosts,
};
pub use host::{host_devices, HostFacts};
pub use seccomp::{
    native_arch, parse_kernel_version, swap_masked_eq_operands, SeccompContext,
    DEFAULT_PROFILE_JSON,
};
pub use signal::parse_signal;
pub use user::{additional_groups, resolve_in_root, resolve_user, ResolvedUser};

/// `PATH` for containers whose image sets none (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default `/dev/shm` size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Paths masked in every unprivileged container (moby `oci.DefaultLinuxSpec`).
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in every unprivileged container.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Why a spec could not be built. Everything except [`SpecError::Io`] is the client's mistake.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("capability {0} is not in the daemon's bounding set, so no container can hold it")]
    CapabilityUnavailable(String),
    #[error("{0}")]
    Seccomp(String),
    #[error("{0}")]
    User(String),
    #[error("Invalid signal: {0}")]
    InvalidSignal(String),
    /// moby's `ValidateExtraHost`: no name, or a name with a colon.
    #[error("bad format for add-host: {0:?}")]
    InvalidExtraHost(String),
    #[error("invalid IP address in add-host: {0:?}")]
    InvalidExtraHostIp(String),
    #[error("{0}")]
    Ulimit(String),
    #[error("{0}")]
    Sysctl(String),
    /// moby's `parseSecurityOpt`: 1 is an option without a `=`/`:` separator, 2 an unknown
    /// key or a bad value.
    #[error("invalid --security-opt {0}: {1:?}")]
    InvalidSecurityOpt(u8, String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("building the OCI spec: {0}")]
    Build(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SpecError {
    /// True when the request itself is wrong (HTTP 400 class), false for daemon-side failures.
    pub fn is_invalid_parameter(&self) -> bool {
        !matches!(self, SpecError::Io { .. } | SpecError::Build(_))
    }
}

fn build_err(e: impl std::fmt::Display) -> SpecError {
    SpecError::Build(e.to_string())
}

/// Everything [`build_spec`] needs about one container.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// The effective config: image config already merged with the create request.
    pub config: &'a Config,
    pub host_config: &'a HostConfig,
    /// Absolute path of the mounted overlay (becomes `root.path`).
    pub rootfs: &'a Path,
    /// Files bind-mounted on `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`.
    pub hostname_path: &'a Path,
    pub hosts_path: &'a Path,
    pub resolv_conf_path: &'a Path,
    /// Daemon-wide cgroup parent (`berth`); `HostConfig.CgroupParent` overrides it.
    pub cgroup_parent: &'a str,
    pub host: &'a HostFacts,
}

/// What later subsystems add to a container's spec: see [`build_spec_with`].
#[derive(Debug, Clone, Default)]
pub struct SpecExtras<'a> {
    /// An existing network namespace to join (set up by the network service); `None` with a
    /// non-host network mode means a fresh, empty one.
    pub netns_path: Option<&'a Path>,
    /// `--pid container:`: the target's PID namespace (`/proc/<pid>/ns/pid`).
    pub pid_ns_path: Option<&'a Path>,
    /// `--ipc container:`: the target's IPC namespace.
    pub ipc_ns_path: Option<&'a Path>,
    /// Binds, volumes and other user mounts, already resolved to host paths. They replace a
    /// default mount with the same destination and are ordered by depth, as Docker does.
    pub extra_mounts: &'a [Mount],
    /// `--init`: the host's init binary, bind-mounted read-only at [`INIT_PATH`] and run as the
    /// container's PID 1 in front of its command, as Docker does.
    pub init_binary: Option<&'a Path>,
}

/// Where `--init` puts the init binary inside the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// `SecurityOpt` parsed the way moby's `parseSecurityOpt` does.
#[derive(Debug, Default)]
struct SecurityOpts {
    no_new_privileges: bool,
    /// `None`: the default profile; `Some("unconfined")`; or a profile's JSON.
    seccomp: Option<String>,
    systempaths_unconfined: bool,
}

fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // SELinux labelling: berth does not label
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SpecError::InvalidSecurityOpt(1, opt.clone()));
        };
        match key {
            "seccomp" => out.seccomp = Some(value.to_string()),
            "no-new-privileges" => {
                out.no_new_privileges = parse_go_bool(value)
                    .ok_or_else(|| SpecError::InvalidSecurityOpt(2, opt.clone()))?
            }
            "systempaths" if value == "unconfined" => out.systempaths_unconfined = true,
            "label" | "apparmor" => {
                tracing::debug!(opt, "security option ignored: berth applies no LSM profile");
            }
            _ => return Err(SpecError::InvalidSecurityOpt(2, opt.clone())),
        }
    }
    Ok(out)
}

/// Checks `SecurityOpt` at create, as moby's `setSecurityOptions` does.
pub fn validate_security_opts(opts: &[String]) -> Result<(), SpecError> {
    parse_security_opts(opts).map(|_| ())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's create-time defaults, applied to a `HostConfig` before it is stored (moby
/// `adaptContainerSettings` and `create.go`): swap twice the memory limit, a 64 MiB `/dev/shm`,
/// the default masked and read-only paths for unprivileged containers.
pub fn adapt_host_config(hc: &mut HostConfig) {
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory * 2;
    }
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE;
    }
    if !hc.privileged {
        if hc.masked_paths.is_none() {
            hc.masked_paths = Some(DEFAULT_MASKED_PATHS.iter().map(|p| (*p).into()).collect());
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = Some(DEFAULT_READONLY_PATHS.iter().map(|p| (*p).into()).collect());
        }
    }
}

/// `NAME=value` lists where later entries replace earlier ones with the same name and a bare
/// `NAME` removes it (moby `ReplaceOrAppendEnvValues`).
fn merge_env(base: &mut Vec<String>, overrides: &[String]) {
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let pos = base
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (pos, entry.contains('=')) {
            (Some(i), true) => base[i] = entry.clone(),
            (Some(i), false) => {
                base.remove(i);
            }
            (None, true) => base.push(entry.clone()),
            (None, false) => {}
        }
    }
}

fn has_env(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
}

/// The container environment (moby `CreateDaemonEnvironment`) plus `HOME` from passwd, which
/// runc adds and libcontainer does not.
fn container_env(config: &Config, tty: bool, extra: &[String], home: &str) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH_ENV}"),
        format!("HOSTNAME={}", config.hostname),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, config.env.as_deref().unwrap_or(&[]));
    merge_env(&mut env, extra);
    if !has_env(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn ulimit_resource(name: &str) -> Option<&'static str> {
    Some(match name {
        "as" => "RLIMIT_AS",
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        _ => return None,
    })
}

fn ulimit_value(v: i64) -> u64 {
    // -1 is Docker's "unlimited".
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The daemon's own limits, with `HostConfig.Ulimits` replacing individual entries. Without
/// `CAP_SYS_RESOURCE` nothing can go above the daemon's hard limit, so asking for it is an error
/// rather than something to clamp silently.
fn rlimits(hc: &HostConfig, host: &HostFacts) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut limits: BTreeMap<String, (u64, u64)> = host
        .rlimits
        .iter()
        .map(|(n, s, h)| (n.clone(), (*s, *h)))
        .collect();
    let can_raise = host.bounding_caps.iter().any(|c| c == "CAP_SYS_RESOURCE");
    for ul in hc.ulimits.iter().flatten() {
        let res = ulimit_resource(&ul.name)
            .ok_or_else(|| SpecError::Ulimit(format!("invalid ulimit type: {}", ul.name)))?;
        let (soft, hard) = (ulimit_value(ul.soft), ulimit_value(ul.hard));
        if soft > hard {
            return Err(SpecError::Ulimit(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                ul.soft, ul.hard
            )));
        }
        if let Some((_, daemon_hard)) = host
            .rlimits
            .iter()
            .find(|(n, _, _)| n == res)
            .map(|(_, s, h)| (s, h))
        {
            if hard > *daemon_hard && !can_raise {
                return Err(SpecError::Ulimit(format!(
                    "ulimit {}: {}:{} exceeds the daemon's hard limit {} (raising it needs CAP_SYS_RESOURCE)",
                    ul.name,
                    ul.soft,
                    ul.hard,
                    fmt_limit(*daemon_hard)
                )));
            }
        }
        limits.insert(res.to_string(), (soft, hard));
    }
    limits
        .into_iter()
        .map(|(name, (soft, hard))| {
            let typ: PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| SpecError::Ulimit(format!("invalid ulimit type: {name}")))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(build_err)
        })
        .collect()
}

fn fmt_limit(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The namespace modes that matter for sysctl validation.
struct NsModes {
    host_network: bool,
    host_ipc: bool,
    host_uts: bool,
}

/// Sysctls, validated like runc/Docker: only namespaced keys, and only when the container owns
/// the namespace in question. Docker's defaults for a private network namespace come first.
fn sysctls(hc: &HostConfig, ns: &NsModes) -> Result<HashMap<String, String>, SpecError> {
    let mut out = HashMap::new();
    if !ns.host_network {
        out.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        out.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }
    for (key, value) in hc.sysctls.iter().flatten() {
        let ipc = [
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
        ]
        .contains(&key.as_str())
            || key.starts_with("kernel.shm")
            || key.starts_with("fs.mqueue.");
        if ipc {
            if ns.host_ipc {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host IPC mode"
                )));
            }
        } else if key.starts_with("net.") {
            if ns.host_network {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host network mode"
                )));
            }
        } else if key == "kernel.domainname" || key == "kernel.hostname" {
            if ns.host_uts {
                return Err(SpecError::Sysctl(format!(
                    "sysctl {key:?} is not allowed in host UTS mode"
                )));
            }
        } else {
            return Err(SpecError::Sysctl(format!(
                "sysctl {key:?} is not in a separate kernel namespace"
            )));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_string()).collect::<Vec<_>>())
        .build()
        .map_err(build_err)
}

fn bind(dest: &str, source: &Path, readonly: bool) -> Result<Mount, SpecError> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        opts.push("ro".into());
    }
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(opts)
        .build()
        .map_err(build_err)
}

/// `--tmpfs` options merged over Docker's defaults (`noexec,nosuid,nodev`): a user flag wins
/// over its opposite.
fn tmpfs_options(user: &str) -> Vec<String> {
    let mut opts: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in user.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "noexec" => Some("exec"),
            "suid" => Some("nosuid"),
            "nosuid" => Some("suid"),
            "dev" => Some("nodev"),
            "nodev" => Some("dev"),
            "rw" => Some("ro"),
            "ro" => Some("rw"),
            _ => None,
        };
        if let Some(op) = opposite {
            opts.retain(|x| x != op);
        }
        if let Some((key, _)) = o.split_once('=') {
            opts.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        }
        if !opts.iter().any(|x| x == o) {
            opts.push(o.to_string());
        }
    }
    opts
}

/// Docker's default mounts, in Docker's order, then the `/etc` files and `--tmpfs` entries.
fn base_mounts(input: &SpecInput, ns: &NsModes) -> Result<Vec<Mount>, SpecError> {
    let hc = input.host_config;
    let privileged = hc.privileged;
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_size = if hc.shm_size > 0 {
        hc.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if ns.host_ipc {
        mounts.push(bind("/dev/shm", Path::new("/dev/shm"), false)?);
    } else {
        let size = format!("size={shm_size}");
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &size],
        )?);
    }
    // Docker makes these follow the rootfs: read-only with --read-only.
    let ro = hc.readonly_rootfs;
    mounts.push(bind("/etc/resolv.conf", input.resolv_conf_path, ro)?);
    mounts.push(bind("/etc/hostname", input.hostname_path, ro)?);
    mounts.push(bind("/etc/hosts", input.hosts_path, ro)?);
    Ok(mounts)
}

fn tmpfs_mounts(hc: &HostConfig) -> Result<Vec<Mount>, SpecError> {
    let mut out = Vec::new();
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        if !dest.starts_with('/') || dest == "/" {
            return Err(SpecError::InvalidParameter(format!(
                "invalid tmpfs mount destination {dest:?}: must be an absolute path other than /"
            )));
        }
        MountBuilder::default()
            .destination(dest)
            .typ("tmpfs")
            .source("tmpfs")
            .options(tmpfs_options(opts))
            .build()
            .map_err(build_err)
            .map(|m| out.push(m))?;
    }
    Ok(out)
}

/// Docker's merge of user mounts over the defaults: a user mount replaces any default with the
/// same destination (or anything under `/dev` when it mounts `/dev` itself), and user mounts are
/// applied parents first.
pub fn merge_mounts(defaults: Vec<Mount>, mut user: Vec<Mount>) -> Vec<Mount> {
    let user_dests: Vec<PathBuf> = user.iter().map(|m| m.destination().clone()).collect();
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|d| {
            !user_dests.iter().any(|u| {
                u == d.destination()
                    || (u == Path::new("/dev") && d.destination().starts_with("/dev"))
            })
        })
        .collect();
    user.sort_by_key(|m| m.destination().components().count());
    out.extend(user);
    out
}

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(build_err)
}

/// Device cgroup rules every container gets: deny everything, then allow mknod of any device
/// and use of the standard devices, the ptys and tun (runc's `AllowedDevices`, which Docker
/// relies on). Privileged containers get a single allow-all rule instead.
fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::{B, C};
    let rwm = "rwm";
    Ok(vec![
        device_rule(false, None, None, None, rwm)?,
        device_rule(true, Some(C), None, None, "m")?,
        device_rule(true, Some(B), None, None, "m")?,
        device_rule(true, Some(C), Some(1), Some(3), rwm)?,
        device_rule(true, Some(C), Some(1), Some(8), rwm)?,
        device_rule(true, Some(C), Some(1), Some(7), rwm)?,
        device_rule(true, Some(C), Some(5), Some(0), rwm)?,
        device_rule(true, Some(C), Some(1), Some(5), rwm)?,
        device_rule(true, Some(C), Some(1), Some(9), rwm)?,
        device_rule(true, Some(C), Some(5), Some(1), rwm)?,
        device_rule(true, Some(C), Some(136), None, rwm)?,
        device_rule(true, Some(C), Some(5), Some(2), rwm)?,
        device_rule(true, Some(C), Some(10), Some(200), rwm)?,
    ])
}

/// The devices OCI requires every container to have, created by the runtime.
fn default_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(path, major, minor)| {
        LinuxDeviceBuilder::default()
            .path(*path)
            .typ(LinuxDeviceType::C)
            .major(*major)
            .minor(*minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .map_err(build_err)
    })
    .collect()
}

/// `--device-cgroup-rule` entries: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`.
fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::InvalidParameter(format!("invalid device cgroup rule: {rule:?}"));
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [typ, nums, access] = parts.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| bad())
        }
    };
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    device_rule(true, Some(typ), num(major)?, num(minor)?, access)
}

fn resources(
    input: &SpecInput,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    // Create and update already discarded what the host lacks (`resource_checks`); a
    // container made on another host (or before a kernel change) may still ask for it, and
    // the runtime fails on a cgroup file that does not exist: such knobs are left out here.
    let mut hc = input.host_config.clone();
    crate::resource_checks::discard_unsupported(&mut hc, &input.host.sys);
    let hc = &hc;
    let mut mem = LinuxMemoryBuilder::default();
    if hc.memory > 0 {
        mem = mem.limit(hc.memory);
    }
    if hc.memory_reservation > 0 {
        mem = mem.reservation(hc.memory_reservation);
    }
    let swap = if hc.memory_swap == 0 && hc.memory > 0 {
        hc.memory * 2
    } else {
        hc.memory_swap
    };
    if swap != 0 {
        if swap > 0 && hc.memory > 0 && swap < hc.memory {
            return Err(SpecError::InvalidParameter(
                "minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        mem = mem.swap(swap);
    }
    if let Some(sw) = hc.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&sw) {
            return Err(SpecError::InvalidParameter(format!(
                "invalid value: {sw}, valid memory swappiness range is 0-100"
            )));
        }
        mem = mem.swappiness(sw as u64);
    }
    if hc.oom_kill_disable == Some(true) {
        mem = mem.disable_oom_killer(true);
    }
    let mut cpu = LinuxCpuBuilder::default();
    if hc.nano_cpus > 0 {
        if hc.cpu_period > 0 || hc.cpu_quota > 0 {
            return Err(SpecError::InvalidParameter(
                "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        let period: u64 = 100_000;
        cpu = cpu
            .period(period)
            .quota((hc.nano_cpus as i128 * period as i128 / 1_000_000_000) as i64);
    }
    if hc.cpu_shares > 0 {
        cpu = cpu.shares(hc.cpu_shares as u64);
    }
    if hc.cpu_period > 0 {
        cpu = cpu.period(hc.cpu_period as u64);
    }
    if hc.cpu_quota != 0 {
        cpu = cpu.quota(hc.cpu_quota);
    }
    if hc.cpu_realtime_period > 0 {
        cpu = cpu.realtime_period(hc.cpu_realtime_period as u64);
    }
    if hc.cpu_realtime_runtime != 0 {
        cpu = cpu.realtime_runtime(hc.cpu_realtime_runtime);
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(hc.cpuset_cpus.clone());
    }
    if !hc.cpuset_mems.is_empty() {
        cpu = cpu.mems(hc.cpuset_mems.clone());
    }

    let mut res = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .memory(mem.build().map_err(build_err)?)
        .cpu(cpu.build().map_err(build_err)?);
    if let Some(limit) = hc.pids_limit.filter(|l| *l > 0) {
        res = res.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(build_err)?,
        );
    }
    if let Some(bio) = crate::resources::block_io(hc).map_err(SpecError::InvalidParameter)? {
        res = res.block_io(bio);
    }
    res.build().map_err(build_err)
}

/// True for `container:<id>` PID/IPC modes, which berth cannot join yet.
fn joins_container(mode: &str) -> bool {
    mode.starts_with("container:")
}

fn namespaces(
    input: &SpecInput,
    extras: &SpecExtras,
    ns: &NsModes,
) -> Result<Vec<oci_spec::runtime::LinuxNamespace>, SpecError> {
    let hc = input.host_config;
    for (what, mode, path) in [
        ("--pid container:", hc.pid_mode.as_str(), extras.pid_ns_path),
        ("--ipc container:", hc.ipc_mode.as_str(), extras.ipc_ns_path),
    ] {
        if joins_container(mode) && path.is_none() {
            return Err(SpecError::Unsupported(format!("{what} without its target")));
        }
    }
    if !hc.pid_mode.is_empty()
        && hc.pid_mode != "host"
        && hc.pid_mode != "private"
        && !joins_container(&hc.pid_mode)
    {
        return Err(SpecError::InvalidParameter(format!(
            "invalid PID mode: {}",
            hc.pid_mode
        )));
    }
    let ns_of = |typ: LinuxNamespaceType, path: Option<&Path>| {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().map_err(build_err)
    };
    let mut out = vec![ns_of(LinuxNamespaceType::Mount, None)?];
    if !ns.host_network {
        out.push(ns_of(LinuxNamespaceType::Network, extras.netns_path)?);
    }
    if !ns.host_uts {
        out.push(ns_of(LinuxNamespaceType::Uts, None)?);
    }
    if hc.pid_mode != "host" {
        out.push(ns_of(LinuxNamespaceType::Pid, extras.pid_ns_path)?);
    }
    if !ns.host_ipc {
        out.push(ns_of(LinuxNamespaceType::Ipc, extras.ipc_ns_path)?);
    }
    let private_cgroupns = match hc.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        "" => input.host.cgroup_v2(),
        other => {
            return Err(SpecError::InvalidParameter(format!(
                "invalid cgroup namespace mode: {other}"
            )))
        }
    };
    if private_cgroupns {
        out.push(ns_of(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(out)
}

fn cgroups_path(input: &SpecInput) -> PathBuf {
    container_cgroup_path(
        &input.host_config.cgroup_parent,
        input.cgroup_parent,
        input.id,
    )
}

/// The container's cgroup, relative to each hierarchy's root: `/<parent>/<id>`, the parent
/// being `--cgroup-parent` (`own_parent`) or else the daemon's.
pub fn container_cgroup_path(own_parent: &str, daemon_parent: &str, id: &str) -> PathBuf {
    let parent = if own_parent.is_empty() {
        daemon_parent
    } else {
        own_parent
    };
    let mut p = PathBuf::from("/");
    p.push(parent.trim_start_matches('/'));
    p.push(id);
    p
}

/// The seccomp filter for a container with capability set `caps` (`None`: unconfined).
fn seccomp_for(
    profile: Option<&str>,
    privileged: bool,
    caps: &[String],
    host: &HostFacts,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    if privileged {
        return Ok(None);
    }
    let json = match profile {
        Some("unconfined") => return Ok(None),
        None | Some("") | Some("builtin") => DEFAULT_PROFILE_JSON,
        Some(custom) => custom,
    };
    convert_seccomp_profile(json, caps, host)
}

/// Converts a Docker seccomp profile (JSON text) for a container holding `caps`, on this host.
pub fn convert_seccomp_profile(
    profile_json: &str,
    caps: &[String],
    host: &HostFacts,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    seccomp::convert_profile(
        profile_json,
        &SeccompContext {
            capabilities: caps,
            arch: native_arch(),
            kernel: host.kernel_version,
        },
    )
}

fn oci_user(uid: u32, gid: u32, gids: Vec<u32>) -> Result<oci_spec::runtime::User, SpecError> {
    UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(gids)
        .build()
        .map_err(build_err)
}

/// `[gid] + supplementary groups + GroupAdd`, without duplicates (moby `getUser`).
fn all_gids(user: &ResolvedUser, group_add: &[u32]) -> Vec<u32> {
    let mut gids = vec![user.gid];
    for g in user.additional_gids.iter().chain(group_add) {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    gids
}

fn capabilities_oci(caps: &[String]) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let set = caps::to_oci(caps)?;
    // Docker ≥ 20.10 leaves inheritable and ambient empty (CVE-2022-24769).
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(build_err)
}

/// The container's command line: entrypoint then cmd. `--entrypoint ""` (`[""]`) means no
/// entrypoint at all, as in Docker.
pub fn command_argv(config: &Config) -> Vec<String> {
    let entrypoint = match &config.entrypoint {
        Some(e) if !(e.len() == 1 && e[0].is_empty()) => e.as_slice(),
        _ => &[],
    };
    entrypoint
        .iter()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect()
}

/// Builds the OCI runtime spec for a container, the way Docker would.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    build_spec_with(input, &SpecExtras::default())
}

/// [`build_spec`] plus mounts and a network namespace supplied by other subsystems.
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
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(SpecError::InvalidParameter(format!(
            "invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    let security = parse_security_opts(hc.security_opt.as_deref().unwrap_or(&[]))?;
    let ns = NsModes {
        host_network: hc.network_mode == "host",
        host_ipc: hc.ipc_mode == "host",
        host_uts: hc.uts_mode == "host",
    };

    // process
    let user = resolve_user(input.rootfs, &config.user)?;
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
        .oom_score_adj(hc.oom_score_adj as i32)
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
    let mounts = merge_mounts(base_mounts(input, &ns)?, user_mounts);

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
        let (devs, rules) =
            crate::resources::device_mappings(hc).map_err(SpecError::InvalidParameter)?;
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

/// A `docker exec` request.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// The user to run as; empty means the container process's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub tty: bool,
    pub privileged: bool,
}

fn env_value<'e>(env: &'e [String], key: &str) -> Option<&'e str> {
    env.iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// The `process` for an exec, derived from the container's own process (as written to its
/// `config.json`): the exec's command, terminal, user and working directory; the container's
/// environment with the exec's `Env` merged over it (moby `ReplaceOrAppendEnvValues`);
/// capabilities, rlimits, `noNewPrivileges` and the OOM score as the container's, except that
/// `privileged` grants the daemon's whole bounding set.
pub fn build_exec_process(
    container: &Process,
    req: &ExecSpec,
    rootfs: &Path,
    host: &HostFacts,
) -> Result<Process, SpecError> {
    if req.cmd.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let mut p = container.clone();
    p.set_args(Some(req.cmd.clone()));
    p.set_terminal(Some(req.tty));
    p.set_console_size(None);

    let base_user = container.user();
    let container_home = resolve_user(rootfs, &base_user.uid().to_string())
        .map(|u| u.home)
        .unwrap_or_else(|_| "/".into());
    let mut home = container_home.clone();
    if !req.user.is_empty() {
        let user = resolve_user(rootfs, &req.user)?;
        home = user.home.clone();
        // The same identity keeps the container's groups, which include `GroupAdd`.
        if (user.uid, user.gid) != (base_user.uid(), base_user.gid()) {
            p.set_user(oci_user(user.uid, user.gid, all_gids(&user, &[]))?);
        }
    }

    let mut env = container.env().clone().unwrap_or_default();
    // HOME was filled in from passwd for the container's user unless the image set it: an exec
    // as another user gets that user's home instead.
    if env_value(&env, "HOME") == Some(container_home.as_str()) {
        merge_env(&mut env, &[format!("HOME={home}")]);
    }
    if req.tty && !has_env(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, &req.env);
    if !has_env(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    p.set_env(Some(env));

    if !req.working_dir.is_empty() {
        if !req.working_dir.starts_with('/') {
            return Err(SpecError::InvalidParameter(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                req.working_dir
            )));
        }
        p.set_cwd(PathBuf::from(&req.working_dir));
    }
    if req.privileged {
        let caps = container_capabilities(&[], &[], true, &host.bounding_caps)?;
        p.set_capabilities(Some(capabilities_oci(&caps)?));
    }
    Ok(p)
}

#[cfg(test)]
mod tests;
