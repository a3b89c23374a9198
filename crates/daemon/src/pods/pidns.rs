//! A pod's shared PID namespace (`NamespaceOption.pid = POD`). A PID namespace, unlike a
//! network or IPC one, dies with its first process: a pinned namespace with no process in it
//! takes no new ones once its init has gone. So berth starts a tiny init of its own (no pause
//! image): a process forked from berthd that becomes PID 1 of a fresh PID namespace, reaps
//! orphans and does nothing else. The pod's containers join that namespace (through its nsfs
//! file, bind-mounted under `<exec-root>/pods/<id>/pid`), see each other's processes, and may
//! come and go in any order. The init is detached (its own session, no descriptors of
//! berthd's), so it outlives a berthd restart like the shims do; StopPodSandbox kills it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::nsfs::PodNsError;

/// The init's loop: reap any child, sleep a little when there is none. Only
/// async-signal-safe calls: it runs in a child forked from a multithreaded process.
fn init_loop() -> ! {
    loop {
        // SAFETY: plain syscalls on this process's own state.
        unsafe {
            if libc::waitpid(-1, std::ptr::null_mut(), 0) < 0 {
                let ts = libc::timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                libc::nanosleep(&ts, std::ptr::null_mut());
            }
        }
    }
}

/// The middle process: unshares the PID namespace, forks the init into it, reports the
/// init's pid (as berthd sees it) on `fd` and exits. Async-signal-safe calls only.
///
/// # Safety
/// Only to be called in a freshly forked child.
unsafe fn middle(fd: libc::c_int) -> ! {
    // SAFETY: the caller guarantees a freshly forked child; only syscalls follow.
    unsafe {
        libc::setsid();
        if libc::unshare(libc::CLONE_NEWPID) != 0 {
            libc::_exit(1);
        }
        let pid = libc::fork();
        if pid == 0 {
            // The init: default signal handling, nothing blocked, no inherited descriptors.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            libc::chdir(c"/".as_ptr());
            libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            libc::prctl(libc::PR_SET_NAME, c"berth-pod-init".as_ptr());
            init_loop();
        }
        let bytes = (pid as i32).to_ne_bytes();
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(if pid > 0 { 0 } else { 1 })
    }
}

/// Starts a pod's PID namespace init and pins its namespace on `path`; answers the init's pid.
pub(crate) fn start(path: &Path) -> Result<i32, PodNsError> {
    let (rd, wr) = nix::unistd::pipe().map_err(PodNsError::Pipe)?;
    use std::os::fd::AsRawFd;
    // SAFETY: the child only makes async-signal-safe calls (see `middle`).
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(PodNsError::Fork(std::io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: in the freshly forked child.
        unsafe { middle(wr.as_raw_fd()) }
    }
    drop(wr);
    let mut buf = [0u8; 4];
    let n = nix::unistd::read(rd.as_raw_fd(), &mut buf).unwrap_or(0);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    let pid = i32::from_ne_bytes(buf);
    if n != 4 || pid <= 0 {
        return Err(PodNsError::PidInit);
    }
    let pinned = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| PodNsError::Create {
            path: path.to_path_buf(),
            source,
        })
        .and_then(|_| {
            nix::mount::mount(
                Some(format!("/proc/{pid}/ns/pid").as_str()),
                path,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|source| PodNsError::Pin {
                what: "PID",
                path: path.to_path_buf(),
                source,
            })
        });
    if let Err(e) = pinned {
        kill(pid, None);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(pid)
}

/// Kills the init `pid` (and with it whatever still runs in its namespace) if it is still the
/// init of the namespace pinned at `path` (after a restart the pid may have been reused), then
/// unpins the namespace. Either may be gone already.
pub(crate) fn stop(pid: i32, path: &Path) -> Result<(), PodNsError> {
    kill(pid, Some(path));
    super::nsfs::unpin(path)
}

fn kill(pid: i32, pinned: Option<&Path>) {
    if pid <= 0 {
        return;
    }
    let ino = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    if let Some(path) = pinned {
        let own = ino(Path::new(&format!("/proc/{pid}/ns/pid")));
        if own.is_none() || own != ino(path) {
            return;
        }
    }
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
    // Not berthd's child (its parent, the middle process, has exited): nothing to reap here.
}
