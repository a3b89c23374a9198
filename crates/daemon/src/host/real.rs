//! The real kernel behind the seams of [`super::Host`].

use std::io;
use std::path::{Path, PathBuf};

use berth_shim_protocol::{ShimConfig, StartError};

use super::shim_pool::ShimPool;
use super::{CgroupFiles, Firewall, Netns, RemapOps, RuntimeOps};
use crate::userns_remap::IdMap;

/// The running kernel (and the `nft` and `iptables-restore` programs).
pub(super) struct Kernel;

/// The running kernel's mounts and `berth-shim` launches.
pub(super) struct KernelRuntime {
    shims: ShimPool,
}

impl KernelRuntime {
    /// Keeps up to `pool` shims of `shim` waiting (see [`ShimPool`]; `background`: spawned at
    /// the lowest priority).
    pub(super) fn new(shim: &Path, pool: usize, background: bool) -> KernelRuntime {
        KernelRuntime {
            shims: ShimPool::new(shim, pool, background),
        }
    }
}

impl RuntimeOps for KernelRuntime {
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        volatile: bool,
    ) -> io::Result<()> {
        if volatile {
            berth_image::overlay::mount_overlay_volatile(lowers, upper, work, target)
        } else {
            berth_image::overlay::mount_overlay(lowers, upper, work, target)
        }
        .map_err(io::Error::other)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        berth_image::overlay::unmount(target).map_err(io::Error::other)
    }

    fn is_mount_point(&self, path: &Path) -> bool {
        is_mount_point(path)
    }

    fn launch_shim(
        &self,
        shim: &Path,
        config: &Path,
        _cfg: &ShimConfig,
    ) -> Result<u32, StartError> {
        self.shims.launch(shim, config)
    }

    fn loopback_up(&self, pid: u32) -> io::Result<()> {
        loopback_up(pid)
    }

    fn prime_cgroup_migration(&self) {
        super::cgroup_lock::prime_migration()
    }

    fn shutdown(&self) {
        self.shims.drain()
    }
}

impl Firewall for Kernel {
    fn apply_nft(&self, script: &str) -> berth_network::Result<()> {
        berth_network::nft::apply(script)
    }

    fn refresh_host_chain(
        &self,
        chain: &str,
        bridges: &[String],
    ) -> berth_network::Result<Vec<String>> {
        berth_network::hostfw::refresh(chain, bridges)
    }
}

impl Netns for Kernel {
    fn create(&self, path: &Path) -> io::Result<()> {
        berth_network::netns::create(path).map_err(io::Error::other)
    }

    fn create_with_lo_up(&self, path: &Path) -> io::Result<()> {
        berth_network::netns::create_with_lo_up(path).map_err(io::Error::other)
    }

    fn pin(&self, source: &Path, path: &Path) -> io::Result<()> {
        berth_network::netns::pin(source, path).map_err(io::Error::other)
    }

    fn is_mounted(&self, path: &Path) -> bool {
        berth_network::netns::is_mounted(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        berth_network::netns::remove(path).map_err(io::Error::other)
    }
}

impl CgroupFiles for Kernel {
    fn paths_of(&self, pid: i64) -> Option<crate::resources::CgroupPaths> {
        crate::resources::CgroupPaths::for_pid(pid)
    }

    fn write(&self, file: &Path, value: &str) -> io::Result<()> {
        std::fs::write(file, value)
    }
}

impl RemapOps for Kernel {
    fn idmap_supported(&self) -> bool {
        crate::idmapped::kernel_supports()
    }

    fn mount_idmapped(&self, map: &IdMap, layers: &[(PathBuf, PathBuf)]) -> io::Result<()> {
        crate::idmapped::mount(map, layers)
    }

    fn is_idmapped(&self, view: &Path) -> bool {
        crate::mountinfo::is_mount_point(view)
    }

    fn unmount_idmapped(&self, view: &Path) -> io::Result<()> {
        crate::idmapped::unmount(view)
    }

    fn copy_tree(&self, src: &Path, dst: &Path) -> io::Result<()> {
        let out = std::process::Command::new("cp")
            .args(["-a", "--reflink=auto", "--"])
            .arg(src)
            .arg(dst)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "cp -a: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }
}

pub(crate) fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    match std::fs::metadata(parent) {
        // overlayfs reports its own device number, so a mounted rootfs differs from its parent.
        Ok(p) => p.dev() != me.dev(),
        Err(_) => false,
    }
}

/// Brings the loopback interface up inside the network namespace of process `pid`, as Docker
/// does for every container with its own network namespace (a new namespace starts with `lo`
/// down). Runs on a throwaway OS thread: `setns` changes only the calling thread's namespace,
/// and the thread ends right after, so no other task ever runs in the container's namespace.
fn loopback_up(pid: u32) -> std::io::Result<()> {
    std::thread::spawn(move || -> std::io::Result<()> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        set_lo_up_raw()
    })
    .join()
    .map_err(|_| std::io::Error::other("loopback thread panicked"))?
}

fn set_lo_up_raw() -> std::io::Result<()> {
    // SAFETY: plain socket(2) call; the returned fd is owned below and closed on drop.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    set_lo_up(std::os::fd::AsRawFd::as_raw_fd(&owned))
}

fn set_lo_up(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in `req` into `req`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the union member `ifru_flags` is the one SIOCGIFFLAGS filled in.
    unsafe {
        // IFF_UP | IFF_RUNNING is 0x41: within a c_short.
        req.ifr_ifru.ifru_flags |=
            libc::c_short::try_from(libc::IFF_UP | libc::IFF_RUNNING).unwrap_or(0x41);
    }
    // SAFETY: SIOCSIFFLAGS sets the flags from `req`, which names `lo`.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
