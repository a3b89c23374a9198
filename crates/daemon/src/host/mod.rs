//! The daemon's kernel seams: every kernel interface the services use, behind a small trait,
//! gathered in one [`Host`] given to [`crate::Daemon::open_with`]. berthd opens the daemon
//! with [`Host::real`]; unit tests give recording fakes (`host::fake`), so a container verb
//! runs without root, kernel features or a shim process.
//!
//! | seam | what it covers | real implementation |
//! | --- | --- | --- |
//! | [`RuntimeOps`] | the rootfs overlay mounts, launching a shim, `lo` up in a new netns, the cgroup-migration primer | overlayfs, `berth-shim` (a pool of them spawned ahead, `shim_pool.rs`), `setns` + ioctl |
//! | [`LinkOps`] | bridges, veth pairs, addresses, routes, network namespaces of endpoints | rtnetlink (`berth_network::ops::Rtnetlink`) |
//! | [`Netns`] | pinned network namespaces of containers | `unshare` + bind mount (`berth_network::netns`) |
//! | [`Firewall`] | berth's nftables table, its chain in the host's iptables filter table | `nft -f -`, `iptables-restore` |
//! | [`CgroupFiles`] | writes of resource limits into a running container's cgroup files | `write(2)` on cgroupfs |
//! | [`RemapOps`] | `--userns-remap`: idmapped views and copies of image layers, owners given to the remapped root | `open_tree` + `mount_setattr` (`idmapped.rs`), `cp -a`, `lchown` |
//!
//! The shim client needs no trait: it speaks the shim protocol over the shim's socket, and the
//! fake launcher serves that socket in-process (`host::fake_shim`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use berth_network::ops::LinkOps;
use berth_shim_protocol::{ShimConfig, StartError};

use crate::userns_remap::IdMap;

pub mod cgroup_lock;
pub(crate) mod pool;
mod real;
mod shim_pool;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) mod fake_shim;
#[cfg(test)]
pub(crate) mod testkit;

/// What the container runtime layer (`runtime.rs`) asks of the kernel.
pub trait RuntimeOps: Send + Sync {
    /// Mounts an overlay of `lowers` (top first) and `upper` on `target`; `volatile` skips
    /// syncs (a container removed when it ends).
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        volatile: bool,
    ) -> io::Result<()>;
    fn unmount(&self, target: &Path) -> io::Result<()>;
    fn is_mount_point(&self, path: &Path) -> bool;
    /// Starts the shim `shim` with the config file `config` (whose contents are `cfg`); the
    /// shim creates the container, whose init waits for `start`. Returns the init's pid; an
    /// error is the runtime's message with its cause.
    fn launch_shim(&self, shim: &Path, config: &Path, cfg: &ShimConfig) -> Result<u32, StartError>;
    /// Brings `lo` up in the network namespace of process `pid`.
    fn loopback_up(&self, pid: u32) -> io::Result<()>;
    /// Pays the kernel's cgroup migration grace period ahead of a start (see `runtime.rs`).
    fn prime_cgroup_migration(&self);
    /// Lets go of what was made ahead of need (pooled shims); called at graceful shutdown.
    fn shutdown(&self) {}
}

/// berth's packet filtering: its own nftables table and its chain in the host's iptables.
pub trait Firewall: Send + Sync {
    /// Replaces berth's nftables table with `script` (one `nft -f` transaction).
    fn apply_nft(&self, script: &str) -> berth_network::Result<()>;
    /// Makes the host's iptables FORWARD chain accept `bridges` through `chain` where it drops
    /// (see `berth_network::hostfw`); returns what it changed.
    fn refresh_host_chain(
        &self,
        chain: &str,
        bridges: &[String],
    ) -> berth_network::Result<Vec<String>>;
}

/// Network namespaces pinned by a bind mount (a container's, at `<exec-root>/netns/<id>`).
pub trait Netns: Send + Sync {
    fn create(&self, path: &Path) -> io::Result<()>;
    /// [`Netns::create`] with the namespace's `lo` up (the pool's namespaces).
    fn create_with_lo_up(&self, path: &Path) -> io::Result<()>;
    /// Pins the existing namespace `source` (a `/proc/<pid>/ns/net`) at `path`.
    fn pin(&self, source: &Path, path: &Path) -> io::Result<()>;
    fn is_mounted(&self, path: &Path) -> bool;
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// A running container's cgroup files: where they are, and writes of its limits.
pub trait CgroupFiles: Send + Sync {
    /// The cgroup directories of process `pid` (`None` when it is gone).
    fn paths_of(&self, pid: i64) -> Option<crate::resources::CgroupPaths>;
    fn write(&self, file: &Path, value: &str) -> io::Result<()>;
}

/// What `--userns-remap` asks of the kernel: image layers seen with owners shifted into a
/// mapping (idmapped mounts, else copies), and files given to ids of the mapping. The logic
/// (which layers, where, when to fall back) is `remap_fs.rs`.
pub trait RemapOps: Send + Sync {
    /// Whether the kernel's overlayfs takes idmapped lower layers (Linux 5.19 and later).
    fn idmap_supported(&self) -> bool;
    /// Bind-mounts each `(layer, view)`'s layer directory on `view` (made if missing) with its
    /// owners shifted into `map` (`mount_setattr(MOUNT_ATTR_IDMAP)`); a view that is a mount
    /// point already is kept.
    fn mount_idmapped(&self, map: &IdMap, layers: &[(PathBuf, PathBuf)]) -> io::Result<()>;
    /// Whether `view` is a mount point (an idmapped view made earlier).
    fn is_idmapped(&self, view: &Path) -> bool;
    /// Detaches the idmapped `view`.
    fn unmount_idmapped(&self, view: &Path) -> io::Result<()>;
    /// Copies the tree `src` to the new `dst` as `cp -a` does (owners, modes, xattrs, device
    /// nodes, hard links), sharing blocks where the file system can.
    fn copy_tree(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// `lchown(2)`: gives `path` (never a symlink's target) to `uid`:`gid`.
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
}

/// Every kernel seam of the daemon.
#[derive(Clone)]
pub struct Host {
    pub runtime: Arc<dyn RuntimeOps>,
    pub links: Arc<dyn LinkOps>,
    pub netns: Arc<dyn Netns>,
    pub firewall: Arc<dyn Firewall>,
    pub cgroups: Arc<dyn CgroupFiles>,
    pub remap: Arc<dyn RemapOps>,
}

impl Host {
    /// The running kernel, every start spawning its own shim.
    #[cfg(test)]
    pub fn real() -> Host {
        Self::real_with_shim_pool(Path::new(""), 0, false)
    }

    /// The running kernel, with up to `pool` shims of `shim` spawned ahead of need (see
    /// `shim_pool.rs`), at the lowest priority when `background` (berthd can give them its
    /// own back: not rootless).
    pub fn real_with_shim_pool(shim: &Path, pool: usize, background: bool) -> Host {
        Host {
            runtime: Arc::new(real::KernelRuntime::new(shim, pool, background)),
            links: Arc::new(berth_network::ops::Rtnetlink),
            netns: Arc::new(real::Kernel),
            firewall: Arc::new(real::Kernel),
            cgroups: Arc::new(real::Kernel),
            remap: Arc::new(real::Kernel),
        }
    }
}
