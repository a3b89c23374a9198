//! The container's output: pumped from its pipes or pty into the json-file log and to the
//! attached clients.

use std::rc::Rc;
use std::time::SystemTime;

use berth_shim_protocol::{encode_frame, FrameKind};

use super::{Monitor, Source};
use crate::logs::{go_rfc3339_nano, Stream};

/// How much output one read takes: with a pipe of [`PIPE_SIZE`], a fast writer fills several
/// of these between two reads, so frames and log writes come in big batches.
const OUTPUT_BUF: usize = 128 * 1024;
/// The container's output pipes are grown to this (Linux's default is 64 KiB), best effort.
const PIPE_SIZE: i32 = 1 << 20;

impl Monitor {
    pub(super) async fn pump(self: Rc<Self>, stream: Stream, mut src: Source) {
        src.grow(PIPE_SIZE);
        let mut buf = vec![0u8; OUTPUT_BUF];
        loop {
            match src.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.emit(stream, &buf[..n]).await,
            }
        }
        if let Some(rest) = self.splitters.borrow_mut()[stream as usize].finish() {
            self.log_message(stream, &rest);
        }
        self.pumps_open.set(self.pumps_open.get() - 1);
        self.pumps_changed.notify_waiters();
    }

    fn log_message(&self, stream: Stream, msg: &[u8]) {
        if let Some(log) = self.log.borrow_mut().as_mut() {
            // A full disk must neither block nor stop the container: as Docker's
            // non-blocking mode, the entry is dropped and counted; writing resumes as soon
            // as there is room. The count reaches berthd with the exit status.
            if log.write(msg, stream, SystemTime::now()).is_err() {
                self.log_dropped.set(self.log_dropped.get() + 1);
            }
        }
    }

    async fn emit(&self, stream: Stream, data: &[u8]) {
        if let Some(log) = self.log.borrow_mut().as_mut() {
            // One time for everything this read brought, as Docker's copier stamps a read.
            let time = go_rfc3339_nano(SystemTime::now());
            let mut dropped = 0;
            self.splitters.borrow_mut()[stream as usize]
                .push(data, |msg| dropped += log.append(msg, stream, &time));
            dropped += log.flush();
            self.log_dropped.set(self.log_dropped.get() + dropped);
        }
        let kind = match (stream, self.tty.is_some()) {
            (Stream::Stderr, false) => FrameKind::Stderr,
            _ => FrameKind::Stdout,
        };
        let tty = self.tty.is_some();
        let frame = Rc::new(encode_frame(kind, data));
        let targets: Vec<_> = self
            .attach
            .borrow()
            .iter()
            .filter(|c| match stream {
                _ if tty => c.stdout || c.stderr,
                Stream::Stdout => c.stdout,
                Stream::Stderr => c.stderr,
            })
            .map(|c| c.tx.clone())
            .collect();
        // Like Docker's broadcaster, a slow attached client slows the container's output
        // down rather than losing any of it; a client that went away is dropped.
        for tx in targets {
            let _ = tx.send(frame.clone()).await;
        }
        self.attach.borrow_mut().retain(|c| !c.tx.is_closed());
    }
}
