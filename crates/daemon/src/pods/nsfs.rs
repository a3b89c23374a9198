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
    pin(path, CloneFlags::CLONE_NEWIPC, "ipc", |_| Ok(()))
}

/// Creates a new UTS namespace whose hostname is `hostname`, bind-mounted on `path`: the pod's
/// containers join it, so they share the pod's hostname as in a Kubernetes pod.
pub(crate) fn pin_uts(path: &Path, hostname: &str) -> Result<(), String> {
    let hostname = hostname.to_string();
    pin(path, CloneFlags::CLONE_NEWUTS, "uts", move |_| {
        nix::unistd::sethostname(&hostname).map_err(|e| format!("sethostname({hostname}): {e}"))
    })
}

/// Makes a namespace of `flag` on a throwaway thread, lets `setup` configure it from inside, and
/// bind-mounts the thread's nsfs file (`/proc/self/task/<tid>/ns/<kind>`) on `path`.
fn pin(
    path: &Path,
    flag: CloneFlags,
    kind: &'static str,
    setup: impl FnOnce(&Path) -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    let target = path.to_path_buf();
    let res = std::thread::spawn(move || -> Result<(), String> {
        nix::sched::unshare(flag).map_err(|e| format!("unshare({flag:?}): {e}"))?;
        setup(&target)?;
        let own = format!("/proc/self/task/{}/ns/{kind}", nix::unistd::gettid());
        nix::mount::mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            format!(
                "bind-mounting {kind} namespace on {}: {e}",
                target.display()
            )
        })
    })
    .join()
    .unwrap_or_else(|_| Err(format!("pinning {kind} namespace: thread panicked")));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmounts and removes a pinned namespace of either kind; a missing one is fine.
pub(crate) fn unpin(path: &Path) -> Result<(), String> {
    berth_network::netns::remove(path).map_err(|e| e.to_string())
}
