//! Pinned namespaces of a pod sandbox: a fresh namespace made on a throwaway thread and kept
//! alive by a bind mount of its nsfs file, so no process (no pause container) has to hold it.

use std::path::{Path, PathBuf};

use berth_cri::CriError;
use nix::sched::CloneFlags;

/// A pod namespace that could not be made, pinned or unpinned (the CRI's `Internal`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PodNsError {
    #[error(transparent)]
    Netns(#[from] berth_network::Error),
    #[error("creating {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unshare(CLONE_NEWIPC): {0}")]
    Unshare(nix::Error),
    /// `what` is "IPC" or "PID".
    #[error("bind-mounting {what} namespace on {}: {source}", path.display())]
    Pin {
        what: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("pinning IPC namespace: thread panicked")]
    Panicked,
    #[error("pipe: {0}")]
    Pipe(nix::Error),
    #[error("fork: {0}")]
    Fork(std::io::Error),
    #[error("starting the pod's PID namespace init failed")]
    PidInit,
}

impl From<PodNsError> for CriError {
    fn from(e: PodNsError) -> Self {
        CriError::internal(e)
    }
}

/// Creates a new network namespace bind-mounted on `path`.
pub(crate) fn pin_net(path: &Path) -> Result<(), PodNsError> {
    Ok(berth_network::netns::create(path)?)
}

/// Creates a new IPC namespace bind-mounted on `path`.
pub(crate) fn pin_ipc(path: &Path) -> Result<(), PodNsError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| PodNsError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    let target = path.to_path_buf();
    let res = std::thread::spawn(move || -> Result<(), PodNsError> {
        nix::sched::unshare(CloneFlags::CLONE_NEWIPC).map_err(PodNsError::Unshare)?;
        let own = format!("/proc/self/task/{}/ns/ipc", nix::unistd::gettid());
        nix::mount::mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| PodNsError::Pin {
            what: "IPC",
            path: target.clone(),
            source,
        })
    })
    .join()
    .unwrap_or(Err(PodNsError::Panicked));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmounts and removes a pinned namespace of either kind; a missing one is fine.
pub(crate) fn unpin(path: &Path) -> Result<(), PodNsError> {
    Ok(berth_network::netns::remove(path)?)
}
