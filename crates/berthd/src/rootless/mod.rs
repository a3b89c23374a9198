//! Rootless berthd: a daemon started by an ordinary user runs in a user namespace that maps
//! the user to root and the user's subordinate ids (`/etc/subuid`, `/etc/subgid`) after it,
//! with a mount and a network namespace of its own whose outbound traffic goes through
//! slirp4netns or pasta (docs/rootless.md).
//!
//! The user's `berthd` is the outer half (`parent.rs`); it re-executes itself as the inner
//! half (`child.rs`), which is the daemon proper. `net.rs` attaches the network driver,
//! `ports.rs` is the port driver between them
//! (`udp.rs` its datagram flows), `storage.rs` the choice of overlay driver, `checks.rs` the
//! prerequisites, `paths.rs` the per-user defaults, `subid.rs` the id ranges.

pub mod cgroups;
pub mod checks;
pub mod child;
pub mod net;
pub mod parent;
pub mod paths;
pub mod ports;
pub mod storage;
pub mod subid;
pub mod udp;

/// Set by the outer half for the inner one: the sync pipe's two ends, `READ:WRITE`.
pub const CHILD_ENV: &str = "_BERTH_ROOTLESS_CHILD";
/// The network slirp4netns and pasta give the daemon's namespace (`net.rs`).
pub const SLIRP_CIDR: &str = "10.0.2.0/24";
pub const SLIRP_DNS: &str = "10.0.2.3";
pub const SLIRP_MTU: u32 = 65520;
pub const TAP: &str = "tap0";
/// `false` lets the daemon reach the host's loopback as 10.0.2.2 (see `parent.rs`).
pub const HOST_LOOPBACK_ENV: &str = "BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK";

/// Which berthd this process is.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Started by root: the system daemon.
    Root,
    /// Started by a user: the outer half of a rootless daemon.
    Parent,
    /// The inner half, with the value of [`CHILD_ENV`].
    Child(String),
}

impl Mode {
    pub fn detect() -> Mode {
        if let Some(v) = std::env::var_os(CHILD_ENV) {
            return Mode::Child(v.to_string_lossy().into_owned());
        }
        if nix::unistd::geteuid().is_root() {
            Mode::Root
        } else {
            Mode::Parent
        }
    }

    pub fn rootless(&self) -> bool {
        *self != Mode::Root
    }
}

/// The daemon's settings as the inner half of a rootless berthd in `exec_root`.
pub fn daemon_config(exec_root: &std::path::Path) -> berth_daemon::rootless::RootlessConfig {
    let controllers = match CGROUPS.get() {
        Some(Ok(list)) => {
            tracing::info!(
                "rootless cgroups: delegated, controllers {}",
                list.join(" ")
            );
            Some(list.clone())
        }
        Some(Err(why)) => {
            tracing::info!("rootless cgroups: none, limits are refused ({why})");
            None
        }
        None => None,
    };
    berth_daemon::rootless::RootlessConfig {
        port_driver: std::sync::Arc::new(ports::Driver {
            socket: exec_root.join("rootless").join(ports::DRIVER_SOCKET),
        }),
        // Delegated cgroup v2 (`cgroups.rs`): limits in the containers' own cgroups. Else
        // limits are refused rather than silently dropped.
        cgroups: controllers.is_some(),
        controllers: controllers.unwrap_or_default(),
        host_cgroup_v2: !has_v1_cgroups(),
    }
}

/// What the outer process found of cgroup delegation, as the inner one was told
/// ([`release_cgroups`]): the controllers enabled for containers, or why there are none.
pub static CGROUPS: std::sync::OnceLock<Result<Vec<String>, String>> = std::sync::OnceLock::new();

/// The release message's tail (after the `1`): `cgroups <controllers...>` or
/// `none <reason>`; see [`release_message`].
pub fn release_cgroups(tail: &[u8]) -> Result<Vec<String>, String> {
    let text = String::from_utf8_lossy(tail);
    match text.split_once(' ').unwrap_or((&text, "")) {
        ("cgroups", list) => Ok(list.split_whitespace().map(String::from).collect()),
        (_, reason) => Err(reason.to_string()),
    }
}

/// The outer process's release message for the inner one (see [`release_cgroups`]).
pub fn release_message(cgroups: &Result<Vec<String>, String>) -> Vec<u8> {
    match cgroups {
        Ok(list) => format!("1cgroups {}", list.join(" ")).into_bytes(),
        Err(reason) => format!("1none {reason}").into_bytes(),
    }
}

/// Whether the host mounts cgroup v1 hierarchies (a v1 or hybrid host). They stay listed in
/// the daemon's mountinfo under the unified hierarchy `child.rs` mounts over them.
fn has_v1_cgroups() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        berth_sys::mountinfo::parse(&m)
            .iter()
            .any(|e| e.fstype == "cgroup")
    })
}
