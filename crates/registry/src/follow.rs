//! A layer's download read while it is being written, so its unpacking starts with its first
//! bytes instead of after its last.
//!
//! The download appends to a temp file and says how far it got ([`Follow::advance`]); the
//! unpacker reads the same file through a [`FollowReader`], which waits for more bytes until
//! the download has ended, then reports its end: EOF after a verified download, an error
//! otherwise. A download that starts its file over (a registry that ignored `Range`) fails the
//! reader ([`Follow::restart`]); the caller then unpacks the finished file again.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
struct State {
    written: u64,
    /// `None` while the download runs; its outcome after.
    end: Option<Result<(), String>>,
    restarted: bool,
}

#[derive(Default)]
pub(crate) struct Follow {
    state: Mutex<State>,
    cv: Condvar,
}

impl Follow {
    pub(crate) fn new() -> Arc<Follow> {
        Arc::new(Follow::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `n` more bytes are in the file.
    pub(crate) fn advance(&self, n: u64) {
        self.state().written += n;
        self.cv.notify_all();
    }

    /// The file was truncated to start over: what a reader read is void.
    pub(crate) fn restart(&self) {
        let mut s = self.state();
        s.restarted = true;
        s.written = 0;
        self.cv.notify_all();
    }

    /// The download ended (verified, or not).
    pub(crate) fn finish(&self, outcome: Result<(), String>) {
        let mut s = self.state();
        if s.end.is_none() {
            s.end = Some(outcome);
        }
        self.cv.notify_all();
    }

    /// Whether the download ended verified.
    pub(crate) fn complete(&self) -> bool {
        matches!(self.state().end, Some(Ok(())))
    }

    /// Whether the download started its file over.
    pub(crate) fn restarted(&self) -> bool {
        self.state().restarted
    }
}

/// Held by the download: ends it as failed if it is dropped (a cancelled pull) before it
/// says how it ended, so no reader waits forever.
pub(crate) struct EndGuard(pub(crate) Arc<Follow>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.finish(Err("the download stopped".into()));
    }
}

/// Reads the download's file as far as it is written, waiting for the rest.
pub(crate) struct FollowReader {
    file: File,
    pos: u64,
    follow: Arc<Follow>,
}

impl FollowReader {
    /// `file`: the download's file, opened for reading at its start.
    pub(crate) fn new(file: File, follow: Arc<Follow>) -> FollowReader {
        FollowReader {
            file,
            pos: 0,
            follow,
        }
    }
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.follow.state();
        loop {
            if s.restarted {
                return Err(io::Error::other("the download started over"));
            }
            if s.written > self.pos {
                let avail = usize::try_from(s.written - self.pos).unwrap_or(usize::MAX);
                drop(s);
                let len = avail.min(buf.len());
                let n = self.file.read(&mut buf[..len])?;
                self.pos += n as u64;
                if n > 0 {
                    return Ok(n);
                }
                // Written but not readable yet cannot happen for a regular file; do not spin.
                return Err(io::Error::other("the download's file ended early"));
            }
            match &s.end {
                Some(Ok(())) => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e.clone())),
                None => {
                    s = self
                        .follow
                        .cv
                        .wait(s)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// A temp file opened twice, as the download and the unpacker do: each with its offset.
    fn pair() -> (tempfile::NamedTempFile, File, File) {
        let t = tempfile::NamedTempFile::new().unwrap();
        let w = File::options().append(true).open(t.path()).unwrap();
        let r = File::open(t.path()).unwrap();
        (t, w, r)
    }

    #[test]
    fn the_reader_gets_every_byte_as_it_arrives_then_eof() {
        let (_t, mut w, r) = pair();
        let f = Follow::new();
        let reader = {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                FollowReader::new(r, f).read_to_end(&mut out).map(|_| out)
            })
        };
        for chunk in [&b"hello "[..], b"streamed ", b"world"] {
            std::thread::sleep(Duration::from_millis(10));
            w.write_all(chunk).unwrap();
            f.advance(chunk.len() as u64);
        }
        f.finish(Ok(()));
        assert!(f.complete());
        assert_eq!(reader.join().unwrap().unwrap(), b"hello streamed world");
    }

    #[test]
    fn a_failed_or_dropped_download_fails_the_reader() {
        let (_t, _w, r) = pair();
        let f = Follow::new();
        let reader = {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                FollowReader::new(r, f).read_to_end(&mut out)
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        drop(EndGuard(f.clone()));
        let e = reader.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
        assert!(!f.complete());
    }

    #[test]
    fn a_restart_fails_the_reader() {
        let (_t, _w, r) = pair();
        let f = Follow::new();
        f.restart();
        let mut out = Vec::new();
        let e = FollowReader::new(r, f.clone())
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(e.to_string().contains("started over"), "{e}");
        assert!(f.restarted());
    }
}
