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
//! Layout: `build` assembles the spec from `process` (command, env, user, rlimits), `mounts`,
//! `devices`, `resources` (limits, cgroup path), `namespaces` (+ sysctls) and `security`
//! (`--security-opt`, seccomp, capabilities); `defaults` holds Docker's defaults, `exec` the
//! process of a `docker exec`; `caps`, `seccomp`, `user`, `etc`, `host` and `signal` as named.
//!
//! Documented refusals: the `container:<id>` PID and IPC modes. `--network container:<id>`
//! arrives here as `SpecExtras::netns_path`, `--init` as `SpecExtras::init_binary`.

mod build;
pub(crate) mod caps;
mod defaults;
mod devices;
mod etc;
mod exec;
mod host;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod seccomp;
mod security;
mod signal;
mod user;

use std::path::{Path, PathBuf};

use berth_api_types::container::{Config, HostConfig};
use oci_spec::runtime::Mount;

pub use crate::sysinfo::parse_kernel_version;
pub use caps::{
    caps_to_mask, container_capabilities, validate_capability_names, ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
};
pub use etc::{
    default_hostname, hostname_file_contents, hosts_entry, hosts_file_contents,
    hosts_file_with_address, hosts_file_with_addresses, resolv_conf_contents, validate_extra_hosts,
};
pub use host::{host_devices, HostFacts};
pub use seccomp::{native_arch, swap_masked_eq_operands, SeccompContext, DEFAULT_PROFILE_JSON};
pub use signal::parse_signal;
pub use user::{
    additional_groups, resolve_in_root, resolve_user, resolve_user_with, ImageGroups, ResolvedUser,
};

pub use build::{build_spec, build_spec_with, shim_mounts_cgroups};
pub use defaults::{
    adapt_host_config, DEFAULT_MASKED_PATHS, DEFAULT_PATH_ENV, DEFAULT_READONLY_PATHS,
    DEFAULT_SHM_SIZE,
};
pub use exec::{build_exec_process, ExecSpec};
pub use mounts::merge_mounts;
pub use process::command_argv;
pub use resources::container_cgroup_path;
pub use security::{convert_seccomp_profile, validate_security_opts};

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
    /// A `--device` or blkio option naming something that is not a usable device.
    #[error(transparent)]
    Device(#[from] crate::resources::DeviceError),
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
        use crate::errors::Classified;
        match self {
            SpecError::Io { .. } | SpecError::Build(_) => false,
            SpecError::Device(e) => e.kind() == berth_api_types::ErrorKind::InvalidParameter,
            _ => true,
        }
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
    /// A UTS namespace to join (a CRI pod's, with the pod's hostname).
    pub uts_ns_path: Option<&'a Path>,
    /// Binds, volumes and other user mounts, already resolved to host paths. They replace a
    /// default mount with the same destination and are ordered by depth, as Docker does.
    pub extra_mounts: &'a [Mount],
    /// `--init`: the host's init binary, bind-mounted read-only at [`INIT_PATH`] and run as the
    /// container's PID 1 in front of its command, as Docker does.
    pub init_binary: Option<&'a Path>,
    /// `--userns-remap`: a new user namespace with these id mappings (container root is the
    /// range's first id on the host).
    pub userns: Option<&'a crate::userns_remap::IdMap>,
    /// With `userns`: the user namespace of another container to join instead of a new one
    /// (`--network`, `--pid` or `--ipc container:`).
    pub userns_path: Option<&'a Path>,
    /// Which of the user's group memberships in the image the process gets (a CRI
    /// container's `SupplementalGroupsPolicy`; Docker's rule otherwise).
    pub image_groups: ImageGroups,
}

/// Where `--init` puts the init binary inside the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

#[cfg(test)]
mod tests;
