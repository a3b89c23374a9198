//! The kernel- and shim-facing layer: container directories, the overlay rootfs, launching the
//! per-container shim and talking to it. Everything above this module is plain logic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_shim_protocol::{ShimClient, ShimConfig, StartError};

use crate::host::RuntimeOps;
use crate::prepared_dirs::PreparedDirs;
use crate::DaemonConfig;

pub struct Runtime {
    data_root: PathBuf,
    exec_root: PathBuf,
    shim_path: PathBuf,
    /// The kernel behind mounts and shim launches (a fake in unit tests).
    pub(crate) ops: Arc<dyn RuntimeOps>,
    /// Container directories made ahead of need.
    prepared: PreparedDirs,
}

impl Runtime {
    pub fn new(cfg: &DaemonConfig, ops: Arc<dyn RuntimeOps>) -> Runtime {
        Runtime {
            data_root: cfg.data_root.clone(),
            exec_root: cfg.exec_root.clone(),
            shim_path: cfg.shim_path.clone(),
            ops,
            prepared: PreparedDirs::new(&cfg.data_root, cfg.prepared_dirs),
        }
    }

    /// Lets go of what was made ahead of need (pooled shims, prepared directories).
    pub fn shutdown(&self) {
        self.ops.shutdown();
        self.prepared.drain();
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
    /// The OCI bundle a start hands the shim (its `config.json`; the rootfs is the overlay
    /// mount, by absolute path): regenerated at every start, so it lives in the exec root
    /// with the rest of the runtime state, not on the data disk (`spec`: the shim writes its
    /// own copy of the spec to `bundle`).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("spec")
    }
    /// Where berth before 2026-12-07 kept the bundle (a container it started may still run).
    fn legacy_bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }
    /// The `config.json` the container's last start was given: from [`Self::bundle_dir`], else
    /// from [`Self::legacy_bundle_dir`] (a container an earlier berth started). The error is
    /// the first place's.
    pub fn read_spec(&self, id: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.bundle_dir(id).join("config.json")).or_else(|err| {
            std::fs::read(self.legacy_bundle_dir(id).join("config.json")).map_err(|_| err)
        })
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

    /// Creates the container's writable layer directories: a prepared skeleton renamed into
    /// place when one is ready (see `prepared_dirs.rs`), else made here.
    pub fn create_dirs(&self, id: &str) -> std::io::Result<()> {
        let dir = self.container_dir(id);
        if self.prepared.take_to(&dir) {
            return Ok(());
        }
        crate::prepared_dirs::make_skeleton(&dir)
    }

    pub fn is_mounted(&self, id: &str) -> bool {
        self.ops.is_mount_point(&self.rootfs(id))
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
        // A leftover work dir from an unclean stop makes overlayfs refuse the mount; an
        // empty one (a container's first start) is kept as it is.
        let work = fs.join("work");
        let empty = std::fs::read_dir(&work).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work)?;
        }
        let (upper, rootfs) = (fs.join("upper"), self.rootfs(id));
        self.ops
            .mount_overlay(lowers, &upper, &work, &rootfs, throwaway)
    }

    pub fn unmount_rootfs(&self, id: &str) {
        if self.is_mounted(id) {
            if let Err(e) = self.ops.unmount(&self.rootfs(id)) {
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
                let ops = self.ops.clone();
                let spawned = std::thread::Builder::new()
                    .name("trash".into())
                    .spawn(move || delete_trashed(&*ops, &dest));
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
            delete_trashed(&*self.ops, &e.path());
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
            mount_cgroups_v1: false,
            systemd_cgroup: None,
        }
    }

    /// Starts the shim, which creates the container (the user's process waits for `start`).
    /// Blocks: call from `spawn_blocking`. Errors are the runtime's message.
    pub fn launch(&self, id: &str, cfg: &ShimConfig) -> Result<u32, StartError> {
        self.wait_for_previous_shim(id);
        let run_dir = self.run_dir(id);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        let _ = std::fs::remove_file(self.exit_file(id));
        let _ = std::fs::remove_file(self.state_file(id));
        let path = run_dir.join("shim.json");
        let body = serde_json::to_vec_pretty(cfg).map_err(|e| e.to_string())?;
        std::fs::write(&path, body).map_err(|e| format!("writing {}: {e}", path.display()))?;
        self.ops.launch_shim(&self.shim_path, &path, cfg)
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

/// Deletes a container directory moved into the trash, unmounting its rootfs first if it was
/// still mounted (removing through a mounted overlay would fill its upper dir with whiteouts
/// and leave the mount point behind).
fn delete_trashed(ops: &dyn RuntimeOps, dir: &Path) {
    let merged = dir.join("fs").join("merged");
    if ops.is_mount_point(&merged) {
        if let Err(e) = ops.unmount(&merged) {
            tracing::warn!("unmounting {}: {e}", merged.display());
            return;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
