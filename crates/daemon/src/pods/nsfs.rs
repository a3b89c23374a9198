//! Pinned namespaces of a pod sandbox: a fresh namespace made on a throwaway thread and kept
//! alive by a bind mount of its nsfs file, so no process (no pause container) has to hold it.

use std::path::Path;

use nix::sched::CloneFlags;

/// Creates a new network namespace bind-mounted on `path`.
pub(crate) fn pin_net(path: &Path) -> Result<(), String> {
    berth_network::netns::create(path).map_err(|e| e.to_string())
}

/// Creates a new IPC namespace bind-mounted on `path`.
pub(crate) fn pin_ipc(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    let target = path.to_path_buf();
    let res = std::thread::spawn(move || -> Result<(), String> {
        nix::sched::unshare(CloneFlags::CLONE_NEWIPC)
            .map_err(|e| format!("unshare(CLONE_NEWIPC): {e}"))?;
        let own = format!("/proc/self/task/{}/ns/ipc", nix::unistd::gettid());
        nix::mount::mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting IPC namespace on {}: {e}", target.display()))
    })
    .join()
    .unwrap_or_else(|_| Err("pinning IPC namespace: thread panicked".into()));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmounts and removes a pinned namespace of either kind; a missing one is fine.
pub(crate) fn unpin(path: &Path) -> Result<(), String> {
    berth_network::netns::remove(path).map_err(|e| e.to_string())
}
