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
    /// `flag` is the clone flag's name, e.g. "CLONE_NEWIPC".
    #[error("unshare({flag}): {source}")]
    Unshare {
        flag: &'static str,
        source: nix::Error,
    },
    #[error("sethostname({hostname}): {source}")]
    Hostname {
        hostname: String,
        source: nix::Error,
    },
    /// `what` is "IPC", "UTS" or "PID".
    #[error("bind-mounting {what} namespace on {}: {source}", path.display())]
    Pin {
        what: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("pinning {0} namespace: thread panicked")]
    Panicked(&'static str),
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
    pin(path, Kind::IPC, |_| Ok(()))
}

/// Creates a new UTS namespace whose hostname is `hostname`, bind-mounted on `path`: the pod's
/// containers join it, so they share the pod's hostname as in a Kubernetes pod.
pub(crate) fn pin_uts(path: &Path, hostname: &str) -> Result<(), PodNsError> {
    let hostname = hostname.to_string();
    pin(path, Kind::UTS, move |_| {
        nix::unistd::sethostname(&hostname)
            .map_err(|source| PodNsError::Hostname { hostname, source })
    })
}

/// A namespace kind [`pin`] makes: its clone flag and its names.
struct Kind {
    flag: CloneFlags,
    flag_name: &'static str,
    /// The nsfs file's name under `/proc/<pid>/ns/`.
    file: &'static str,
    what: &'static str,
}

impl Kind {
    const IPC: Kind = Kind {
        flag: CloneFlags::CLONE_NEWIPC,
        flag_name: "CLONE_NEWIPC",
        file: "ipc",
        what: "IPC",
    };
    const UTS: Kind = Kind {
        flag: CloneFlags::CLONE_NEWUTS,
        flag_name: "CLONE_NEWUTS",
        file: "uts",
        what: "UTS",
    };
}

/// Makes a namespace of `kind` on a throwaway thread, lets `setup` configure it from inside,
/// and bind-mounts the thread's nsfs file on `path`. Nothing is left behind on failure.
fn pin(
    path: &Path,
    kind: Kind,
    setup: impl FnOnce(&Path) -> Result<(), PodNsError> + Send + 'static,
) -> Result<(), PodNsError> {
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
    let what = kind.what;
    let res = std::thread::spawn(move || -> Result<(), PodNsError> {
        nix::sched::unshare(kind.flag).map_err(|source| PodNsError::Unshare {
            flag: kind.flag_name,
            source,
        })?;
        setup(&target)?;
        let own = format!("/proc/self/task/{}/ns/{}", nix::unistd::gettid(), kind.file);
        nix::mount::mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| PodNsError::Pin {
            what: kind.what,
            path: target.clone(),
            source,
        })
    })
    .join()
    .unwrap_or(Err(PodNsError::Panicked(what)));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmounts and removes a pinned namespace of any kind; a missing one is fine.
pub(crate) fn unpin(path: &Path) -> Result<(), PodNsError> {
    Ok(berth_network::netns::remove(path)?)
}
