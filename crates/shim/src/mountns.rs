//! Work done inside a created container's mount namespace between create and start: a forked
//! helper joins the namespace, takes the container's root as its own and runs a few mount
//! calls there (see `fixup`).

use std::fs;
use std::os::fd::AsRawFd;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;

#[derive(Debug, thiserror::Error)]
pub enum MountNsError {
    #[error("opening the container's mount namespace: {0}")]
    Namespace(std::io::Error),
    #[error("opening the container's root: {0}")]
    Root(std::io::Error),
    #[error("fork: {0}")]
    Fork(std::io::Error),
    /// The helper failed with this errno.
    #[error("{0}")]
    Failed(nix::errno::Errno),
    /// The helper did not exit normally (`waitpid`'s answer).
    #[error("helper ended abnormally: {0:?}")]
    Helper(nix::Result<WaitStatus>),
}

/// Runs `work` in a child that has joined the mount namespace of the process `pid` and made
/// that process's root its own, so paths are the container's. Must be called while the shim is
/// single-threaded (it forks); `work` may only make system calls.
pub fn run_in(pid: i32, work: impl FnOnce() -> nix::Result<()>) -> Result<(), MountNsError> {
    let ns = fs::File::open(format!("/proc/{pid}/ns/mnt")).map_err(MountNsError::Namespace)?;
    let root = fs::File::open(format!("/proc/{pid}/root")).map_err(MountNsError::Root)?;
    // SAFETY: the caller guarantees a single-threaded process; the child only makes system
    // calls on what is prepared above and leaves with `_exit`.
    match unsafe { crate::sys::fork() }.map_err(MountNsError::Fork)? {
        ForkResult::Child => {
            let res = (|| -> nix::Result<()> {
                setns(&ns, CloneFlags::CLONE_NEWNS)?;
                nix::unistd::fchdir(root.as_raw_fd())?;
                nix::unistd::chroot(".")?;
                work()
            })();
            // SAFETY: leaving the forked child without running the parent's exit handlers.
            unsafe { nix::libc::_exit(res.map_or_else(|e| e as i32, |()| 0)) }
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, errno)) => {
                Err(MountNsError::Failed(nix::errno::Errno::from_raw(errno)))
            }
            other => Err(MountNsError::Helper(other)),
        },
    }
}
