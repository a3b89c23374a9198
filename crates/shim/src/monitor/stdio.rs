//! The container's stdio ends as the monitor holds them: pipes or a pty master, read and
//! written without blocking the single-threaded runtime.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use crate::sys;

/// A readable end of a process's output: a pipe, or a pty master (EIO = hang-up = EOF).
pub(super) enum Source {
    Pipe(pipe::Receiver),
    Pty(Rc<AsyncFd<OwnedFd>>),
}

impl Source {
    /// Grows a pipe's buffer to `size` bytes so that a fast writer is not stopped every
    /// 64 KiB (the default); best effort (`/proc/sys/fs/pipe-max-size`, old kernels).
    pub(super) fn grow(&self, size: i32) {
        if let Source::Pipe(r) = self {
            let _ = nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(size));
        }
    }

    pub(super) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Pipe(r) => r.read(buf).await,
            Source::Pty(fd) => loop {
                let mut guard = fd.readable().await?;
                match guard.try_io(|fd| {
                    nix::unistd::read(fd.get_ref().as_raw_fd(), buf).map_err(io::Error::from)
                }) {
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                    Ok(res) => return res,
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

pub(super) async fn read_opt(src: &mut Option<Source>, buf: &mut [u8]) -> io::Result<usize> {
    match src {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// A writable end of a process's stdin.
pub(super) enum Sink {
    Pipe(pipe::Sender),
    Pty(Rc<AsyncFd<OwnedFd>>),
}

impl Sink {
    pub(super) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Pipe(w) => w.write_all(data).await,
            Sink::Pty(fd) => {
                while !data.is_empty() {
                    let mut guard = fd.writable().await?;
                    match guard.try_io(|fd| {
                        nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from)
                    }) {
                        Ok(Ok(n)) => data = &data[n..],
                        Ok(Err(e)) => return Err(e),
                        Err(_would_block) => continue,
                    }
                }
                Ok(())
            }
        }
    }
}

pub(super) fn pty_fd(master: OwnedFd) -> io::Result<Rc<AsyncFd<OwnedFd>>> {
    sys::set_nonblocking(master.as_raw_fd())?;
    // SAFETY: `OwnedFd` owns the descriptor and always reports the same one; it stays open
    // until the `AsyncFd` (which owns it) is dropped.
    let fd = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
    Ok(Rc::new(fd))
}
