//! The few raw system calls the shim needs, each wrapped once.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Makes SIGPIPE, SIGHUP, SIGINT and SIGTERM harmless to the shim. A real (empty) handler
/// rather than SIG_IGN: handlers reset to SIG_DFL on execve, so the container's processes
/// still get default dispositions, whereas SIG_IGN would be inherited by them.
pub fn neutralize_signals() -> io::Result<()> {
    let act = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        // SAFETY: the handler is async-signal-safe (it does nothing) and lives for the
        // whole program.
        unsafe { sigaction(sig, &act) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Points fds 0, 1 and 2 at /dev/null.
pub fn stdio_to_devnull() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors; `null` stays valid for the call and
        // nothing in this process holds Rust-level ownership of fds 0..=2.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets the window size of a pty (master or slave).
pub fn set_winsize(fd: RawFd, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which is valid for the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no pointers involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Accepts the connection libcontainer made to our console socket and receives the pty
/// master it sends with SCM_RIGHTS (runc's console-socket protocol). libcontainer connects
/// and sends during `build()`, so by now the message is queued; the deadline only guards
/// against a runtime that never sends.
pub fn receive_pty_master(listener: &UnixListener, timeout: Duration) -> io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let conn: UnixStream = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::other(
        "console socket message carried no descriptor",
    ))
}

/// fork(2).
///
/// # Safety
/// Must be called while the process has a single thread.
pub unsafe fn fork() -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}
