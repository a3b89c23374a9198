//! CRI log files: a task per running container follows the daemon's own log of it (what
//! `docker logs -f` reads) and writes each line to `log_directory/log_path` in the CRI format
//! through berth-cri's [`CriLog`]; ReopenContainerLog reopens the file. After a daemon
//! restart the follower of a running container resumes from the restart on.

use std::path::Path;
use std::sync::Arc;

use berth_cri::log::{CriLog, LogStream};
use berth_cri::{CriError, CriResult};
use berth_services::LogsOptions;
use futures_util::StreamExt;
use std::io::Write;

use super::PodService;
use crate::lock;

/// Longest CRI log entry; longer lines are cut into partial (`P`) entries (as containerd).
const MAX_LINE: usize = 16 * 1024;

impl PodService {
    /// Starts copying the container's output into its CRI log (`since`: unix seconds of the
    /// first line wanted, 0 for all).
    pub(crate) fn follow_log(&self, id: &str, path: &Path, since: f64) -> CriResult<()> {
        let log = CriLog::open(path, MAX_LINE)
            .map_err(|e| CriError::Internal(format!("opening {}: {e}", path.display())))?;
        let (tty, mut stream) = self
            .daemon
            .container_logs(
                id,
                LogsOptions {
                    follow: true,
                    stdout: true,
                    stderr: true,
                    since,
                    ..Default::default()
                },
            )
            .map_err(|e| super::cri_err("container", id, e))?;
        lock(&self.logs).insert(id.to_string(), log.clone());
        let mut out = log.writer(LogStream::Stdout);
        let mut err = log.writer(LogStream::Stderr);
        tokio::spawn(async move {
            // The daemon's stream: raw for a TTY, else frames of an 8-byte header
            // (stream, 0, 0, 0, big-endian length) and the payload.
            let mut buf: Vec<u8> = Vec::new();
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else { break };
                if tty {
                    let _ = out.write_all(&chunk);
                    continue;
                }
                buf.extend_from_slice(&chunk);
                while buf.len() >= 8 {
                    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                    if buf.len() < 8 + len {
                        break;
                    }
                    let w = if buf[0] == 2 { &mut err } else { &mut out };
                    let _ = w.write_all(&buf[8..8 + len]);
                    buf.drain(..8 + len);
                }
            }
            let _ = out.finish();
            let _ = err.finish();
        });
        Ok(())
    }

    pub(crate) fn close_log(&self, id: &str) {
        lock(&self.logs).remove(id);
    }

    pub(crate) fn reopen_log(&self, id: &str) -> CriResult<()> {
        let log = lock(&self.logs).get(id).cloned();
        match log {
            Some(l) => l
                .reopen()
                .map_err(|e| CriError::Internal(format!("reopening {}: {e}", l.path().display()))),
            None => Err(CriError::FailedPrecondition(format!(
                "container {id} has no open log"
            ))),
        }
    }

    /// Follows the logs of running containers again after a daemon restart.
    pub(crate) fn resume_logs(self: &Arc<Self>) {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        for r in self.store.containers() {
            let running = self
                .daemon
                .get(&r.id)
                .is_some_and(|c| c.state.status.is_active());
            if let (true, Some(path)) = (running, &r.log_path) {
                if let Err(e) = self.follow_log(&r.id, path, now) {
                    tracing::warn!(container = %r.id, "resuming CRI log: {e}");
                }
            }
        }
    }
}
