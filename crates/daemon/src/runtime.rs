//! The kernel- and shim-facing layer: container directories, the overlay rootfs, launching the
//! per-container shim and talking to it. Everything above this module is plain logic.

use std::path::{Path, PathBuf};

use berth_shim_protocol::{ShimClient, ShimConfig};

use crate::DaemonConfig;

pub struct Runtime {
    data_root: PathBuf,
    exec_root: PathBuf,
    shim_path: PathBuf,
}

impl Runtime {
    pub fn new(cfg: &DaemonConfig) -> Runtime {
        Runtime {
            data_root: cfg.data_root.clone(),
            exec_root: cfg.exec_root.clone(),
            shim_path: cfg.shim_path.clone(),
        }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }
    pub fn hostname_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("hostname")
    }
    pub fn hosts_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("hosts")
    }
    pub fn resolv_conf_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("resolv.conf")
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }
    /// Runtime state the shim hands over lives in the exec root (a tmpfs in real deployments,
    /// as `/run/containerd` is): the exit status of a process that ended while berthd was away
    /// and the start record of a running one. Both mean nothing after a reboot, and writing
    /// them there keeps two fsyncs to the data disk off every start and every exit.
    pub fn exit_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("exit.json")
    }
    pub fn state_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("state.json")
    }
    fn fs_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("fs")
    }
    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.fs_dir(id).join("upper")
    }
    /// Where the container's root filesystem is mounted while it runs.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.fs_dir(id).join("merged")
    }
    pub fn socket_path(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("shim.sock")
    }

    /// Creates the container's writable layer directories.
    pub fn create_dirs(&self, id: &str) -> std::io::Result<()> {
        let fs = self.fs_dir(id);
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir_all(fs.join(d))?;
        }
        std::fs::create_dir_all(self.bundle_dir(id))
    }

    pub fn is_mounted(&self, id: &str) -> bool {
        is_mount_point(&self.rootfs(id))
    }

    /// Mounts image layers (top first) plus the container's upper dir on `rootfs(id)`.
    /// `throwaway`: the container is removed when it ends (`--rm`), so its upper directory
    /// never needs to reach the disk (overlayfs `volatile`: no syncs, no sync at unmount).
    pub fn mount_rootfs(
        &self,
        id: &str,
        lowers: &[PathBuf],
        throwaway: bool,
    ) -> std::io::Result<()> {
        if self.is_mounted(id) {
            return Ok(());
        }
        let fs = self.fs_dir(id);
        // A leftover work dir from an unclean stop makes overlayfs refuse the mount.
        let work = fs.join("work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let (upper, rootfs) = (fs.join("upper"), self.rootfs(id));
        if throwaway {
            berth_image::overlay::mount_overlay_volatile(lowers, &upper, &work, &rootfs)
        } else {
            berth_image::overlay::mount_overlay(lowers, &upper, &work, &rootfs)
        }
        .map_err(std::io::Error::other)
    }

    pub fn unmount_rootfs(&self, id: &str) {
        if self.is_mounted(id) {
            if let Err(e) = berth_image::overlay::unmount(&self.rootfs(id)) {
                tracing::warn!(container = id, "unmounting rootfs: {e}");
            }
        }
    }

    /// Where removed containers' directories wait for their deletion (see
    /// [`Runtime::remove_dirs_soon`]); emptied at daemon start.
    fn trash_dir(&self) -> PathBuf {
        self.data_root.join("trash")
    }

    /// [`Runtime::remove_dirs`] for a container removed on a latency-sensitive path (`--rm`):
    /// its directory is renamed into the trash at once (its rootfs, if still mounted, moves
    /// along) and unmounted and deleted on a background thread, so the caller waits neither
    /// for the overlay's teardown nor for the file system to free (and, with `-o discard`,
    /// trim) every file and directory of the container. Falls back to deleting in place.
    pub fn remove_dirs_soon(&self, id: &str) -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(self.run_dir(id));
        let trash = self.trash_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dest = trash.join(format!("{id}-{nanos}"));
        let moved = std::fs::create_dir_all(&trash)
            .and_then(|()| std::fs::rename(self.container_dir(id), &dest));
        match moved {
            Ok(()) => {
                let spawned = std::thread::Builder::new()
                    .name("trash".into())
                    .spawn(move || delete_trashed(&dest));
                if let Err(e) = spawned {
                    tracing::warn!("deleting a removed container's files later: {e}");
                }
                Ok(())
            }
            Err(_) if !self.container_dir(id).exists() => Ok(()),
            Err(_) => self.remove_dirs(id),
        }
    }

    /// Deletes what the trash still holds (a daemon stopped before its deletions finished).
    pub fn empty_trash(&self) {
        for e in std::fs::read_dir(self.trash_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            delete_trashed(&e.path());
        }
    }

    /// Removes every trace of the container on disk (the caller has unmounted the rootfs).
    pub fn remove_dirs(&self, id: &str) -> std::io::Result<()> {
        self.unmount_rootfs(id);
        let _ = std::fs::remove_dir_all(self.run_dir(id));
        match std::fs::remove_dir_all(self.container_dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn shim_config(
        &self,
        id: &str,
        tty: bool,
        open_stdin: bool,
        stdin_once: bool,
    ) -> ShimConfig {
        ShimConfig {
            id: id.to_string(),
            bundle: self.bundle_dir(id),
            runtime_root: self.exec_root.join("runtime"),
            socket: self.socket_path(id),
            state_file: self.state_file(id),
            exit_file: self.exit_file(id),
            log_path: Some(self.log_path(id)),
            log_max_size: 0,
            log_max_file: 1,
            tty,
            open_stdin,
            stdin_once,
            console_size: None,
            readonly_cgroups: true,
            systemd_cgroup: None,
        }
    }

    /// Starts the shim, which creates the container (the user's process waits for `start`).
    /// Blocks: call from `spawn_blocking`. Errors are the runtime's message.
    pub fn launch(&self, id: &str, cfg: &ShimConfig) -> Result<u32, String> {
        self.wait_for_previous_shim(id);
        let run_dir = self.run_dir(id);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        let _ = std::fs::remove_file(self.exit_file(id));
        let _ = std::fs::remove_file(self.state_file(id));
        let path = run_dir.join("shim.json");
        let body = serde_json::to_vec_pretty(cfg).map_err(|e| e.to_string())?;
        std::fs::write(&path, body).map_err(|e| format!("writing {}: {e}", path.display()))?;
        berth_shim_protocol::launch(&self.shim_path, &path)
    }

    /// A shim answers its waiters before it deletes the container's runtime record and
    /// cgroups, and removes its pid file last: a start right after an exit (a restart) waits
    /// here until that shim has finished, so the new one never meets the old one's leftovers.
    fn wait_for_previous_shim(&self, id: &str) {
        let pid_file = self.run_dir(id).join("shim.pid");
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 0)
        else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // A pid file that outlived its shim (a crash) names a dead or unrelated process.
        let is_shim = || {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "berth-shim")
        };
        while is_shim() && pid_file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    pub fn client(&self, id: &str) -> ShimClient {
        ShimClient::new(self.socket_path(id))
    }

    /// The exit status the shim recorded, if the process exited.
    pub fn read_exit(&self, id: &str) -> Option<berth_shim_protocol::ExitStatus> {
        let raw = std::fs::read(self.exit_file(id)).ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// Starts the kernel's cgroup migration lock on its way, off the caller's path.
///
/// Every container start and exec moves a new process into the container's cgroup (the runtime
/// writes its pid to `cgroup.procs`). The first such write after a quiet spell waits for a full
/// RCU grace period before it gets the kernel's global cgroup threadgroup lock — 5 to 20 ms on a
/// small VM, the largest single cost of a container start. Writes that come while another one is
/// in flight, or within a grace period after it, get the lock at once. So at the start of a
/// container start (and of an exec) berthd moves itself into the cgroup it is already in, on a
/// background thread: a no-op move that pays the grace period while the bundle, network and
/// shim are being prepared. Best effort: any error is ignored.
pub fn prime_cgroup_migration() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    static PROCS: OnceLock<Option<PathBuf>> = OnceLock::new();
    static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
    let Some(procs) = PROCS
        .get_or_init(|| {
            let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            own_cgroup_procs(&text, Path::new("/sys/fs/cgroup"))
        })
        .clone()
    else {
        return;
    };
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(move || {
            let _ = std::fs::write(&procs, std::process::id().to_string());
            IN_FLIGHT.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The `cgroup.procs` file of the cgroup this process is in, from `/proc/self/cgroup`: the
/// unified hierarchy's when it is mounted, else the first v1 controller hierarchy's.
fn own_cgroup_procs(proc_cgroup: &str, root: &Path) -> Option<PathBuf> {
    let mut v1 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            let base = if root.join("cgroup.controllers").exists() {
                root.to_owned()
            } else {
                root.join("unified")
            };
            let dir = base.join(rel);
            if dir.join("cgroup.procs").exists() {
                return Some(dir.join("cgroup.procs"));
            }
        } else if v1.is_none() && !ctrls.starts_with("name=") {
            let dir = root.join(ctrls).join(rel);
            if dir.join("cgroup.procs").exists() {
                v1 = Some(dir.join("cgroup.procs"));
            }
        }
    }
    v1
}

/// Deletes a container directory moved into the trash, unmounting its rootfs first if it was
/// still mounted (removing through a mounted overlay would fill its upper dir with whiteouts
/// and leave the mount point behind).
fn delete_trashed(dir: &Path) {
    let merged = dir.join("fs").join("merged");
    if is_mount_point(&merged) {
        if let Err(e) = berth_image::overlay::unmount(&merged) {
            tracing::warn!("unmounting {}: {e}", merged.display());
            return;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn is_mount_point(path: &Path) -> bool {
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
pub fn loopback_up(pid: u32) -> std::io::Result<()> {
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
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS sets the flags from `req`, which names `lo`.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_procs_prefers_unified_then_v1_controllers() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let hybrid = "5:pids:/berth/d\n1:name=systemd:/berth/d\n0::/berth/d\n";
        std::fs::create_dir_all(r.join("systemd/berth/d")).unwrap();
        std::fs::write(r.join("systemd/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            None,
            "named hierarchies are not used"
        );
        std::fs::create_dir_all(r.join("pids/berth/d")).unwrap();
        std::fs::write(r.join("pids/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            Some(r.join("pids/berth/d/cgroup.procs"))
        );
        std::fs::create_dir_all(r.join("unified/berth/d")).unwrap();
        std::fs::write(r.join("unified/berth/d/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs(hybrid, r),
            Some(r.join("unified/berth/d/cgroup.procs"))
        );
        // Pure v2: the hierarchy is mounted at the root itself.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(v2.path().join("system.slice")).unwrap();
        std::fs::write(v2.path().join("system.slice/cgroup.procs"), "").unwrap();
        assert_eq!(
            own_cgroup_procs("0::/system.slice\n", v2.path()),
            Some(v2.path().join("system.slice/cgroup.procs"))
        );
    }
}
