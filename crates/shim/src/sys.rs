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

/// Gives back the memory that only the container's creation needed, so an idle shim costs
/// little: free heap pages go back to the kernel (`malloc_trim`), and the page mappings of
/// every executable, file-backed, never-written mapping (the shim's and the libraries' code)
/// are dropped. Creating a container runs a lot of code (libcontainer, seccomp, the JSON
/// parsers) that the monitor loop never touches again; its pages stay in the page cache and
/// any that are needed later come back on the next touch with a minor fault. Writable and
/// read-only data mappings are left alone: their contents may differ from the file (relocations).
pub fn release_startup_memory() {
    // SAFETY: malloc_trim only hands free heap memory back to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in code_mappings(&maps) {
        // SAFETY: the range is a private, read-only, executable file mapping of this process:
        // dropping its pages cannot change what a later access reads (it faults the same
        // bytes back in from the file), and no Rust object lives in it.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// `(start, length)` of the private `r-xp` mappings of files in a `/proc/<pid>/maps` text.
fn code_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, _offset, _dev, inode) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if perms != "r-xp" || inode == "0" {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let a = usize::from_str_radix(a, 16).ok()?;
            let b = usize::from_str_radix(b, 16).ok()?;
            (b > a).then(|| (a, b - a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_mappings_are_private_executable_file_mappings() {
        let maps = "55d0a000-55d0b000 r--p 00000000 fe:01 123 /bin/shim\n\
                    55d0b000-55d0f000 r-xp 00001000 fe:01 123 /bin/shim\n\
                    55d10000-55d11000 rw-p 00005000 fe:01 123 /bin/shim\n\
                    7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n\
                    7f000000-7f002000 r-xs 00000000 fe:01 77 /dev/shm/x\n";
        assert_eq!(code_mappings(maps), vec![(0x55d0b000, 0x4000)]);
    }

    #[test]
    fn releasing_startup_memory_keeps_the_process_working() {
        let rss_file = || -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            s.lines()
                .find_map(|l| l.strip_prefix("RssFile:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                .unwrap()
        };
        let before = rss_file();
        release_startup_memory();
        let after = rss_file();
        assert!(after < before, "file-backed RSS {before} kB -> {after} kB");
        // Code and data are intact after the pages come back.
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(v.iter().sum::<u64>(), 5050);
        assert_eq!(format!("{:?}", Some("x")), "Some(\"x\")");
    }
}
