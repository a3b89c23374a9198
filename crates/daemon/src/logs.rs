//! `docker logs`: reading the json-file logs the shim writes, with follow, tail, since/until.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_services::{ByteStream, LogsOptions};
use bytes::Bytes;
use serde::Deserialize;

use crate::{Daemon, Result};

#[derive(Debug, Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Turns one log entry into the bytes a client gets, or `None` when filtered out.
fn render(line: &str, opts: &LogsOptions, tty: bool) -> Option<Vec<u8>> {
    let e: Entry = serde_json::from_str(line).ok()?;
    let is_err = e.stream == "stderr";
    if (is_err && !opts.stderr) || (!is_err && !opts.stdout) {
        return None;
    }
    if opts.since > 0.0 || opts.until > 0.0 {
        let t = chrono::DateTime::parse_from_rfc3339(&e.time).ok()?;
        let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
        if opts.since > 0.0 && secs < opts.since {
            return None;
        }
        if opts.until > 0.0 && secs > opts.until {
            return None;
        }
    }
    let mut payload = Vec::with_capacity(e.log.len() + 40);
    if opts.timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    if tty {
        return Some(payload);
    }
    let mut framed = Vec::with_capacity(payload.len() + 8);
    framed.push(if is_err { 2 } else { 1 });
    framed.extend_from_slice(&[0, 0, 0]);
    // One log entry: a line the shim cut at 16 KiB (`MAX_LINE`), far within the 32-bit length.
    framed.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&payload);
    Some(framed)
}

/// The log files, oldest first: `log.N` … `log.1`, `log`.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1..=1000 {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    rotated.push(path.to_path_buf());
    rotated
}

/// What the log files hold so far: complete lines, oldest first, and where the live file ends.
struct Past {
    lines: Vec<String>,
    /// Bytes of complete lines in the live file (where following resumes).
    offset: u64,
    /// The live file's inode (a different one later means it rotated).
    inode: u64,
}

fn read_past(path: &Path) -> Past {
    let mut past = Past {
        lines: Vec::new(),
        offset: 0,
        inode: 0,
    };
    let files = log_files(path);
    for (i, f) in files.iter().enumerate() {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        let live = i == files.len() - 1;
        if live {
            if let Ok(md) = file.metadata() {
                past.inode = md.ino();
            }
        }
        let mut reader = BufReader::new(file);
        let mut buf = String::new();
        loop {
            buf.clear();
            match reader.read_line(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !buf.ends_with('\n') {
                        break; // a line still being written: follow picks it up
                    }
                    if live {
                        past.offset += n as u64;
                    }
                    past.lines.push(buf.clone());
                }
            }
        }
    }
    past
}

/// The log's entries so far, oldest first: `(from stderr, text)`.
pub(crate) fn entries(path: &Path) -> Vec<(bool, String)> {
    read_past(path)
        .lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .map(|e| (e.stream == "stderr", e.log))
        .collect()
}

/// The whole log so far, rendered for an attach with `logs=1`.
pub(crate) fn replay(path: &Path, stdout: bool, stderr: bool, tty: bool) -> Vec<u8> {
    let opts = LogsOptions {
        stdout,
        stderr,
        ..Default::default()
    };
    read_past(path)
        .lines
        .iter()
        .filter_map(|l| render(l, &opts, tty))
        .flatten()
        .collect()
}

impl Daemon {
    pub fn container_logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogsOptions,
    ) -> Result<(bool, ByteStream)> {
        let c = self.resolve_container(key)?;
        crate::logdriver::check_readable(&c.host_config.log_config)?;
        let tty = c.config.tty;
        let path = self.runtime.log_path(&c.id);
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
        let this = self.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            let Past {
                lines,
                mut offset,
                mut inode,
            } = read_past(&path);
            // dockerd's tail takes the last N entries of the log, both streams, and only then
            // drops the stream not asked for: `--tail 2` of out3, err3 shows out3 alone.
            let skip = match opts.tail {
                Some(n) => lines.len().saturating_sub(n),
                None => 0,
            };
            let rendered: Vec<Vec<u8>> = lines
                .iter()
                .skip(skip)
                .filter_map(|l| render(l, &opts, tty))
                .collect();
            for chunk in rendered {
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            let mut events = this.events.subscribe();
            loop {
                let running = this.get(&id).is_some_and(|c| c.state.status.is_active());
                // Read whatever was appended; a new inode or a shorter file means it rotated.
                if let Ok(mut file) = std::fs::File::open(&path) {
                    if let Ok(md) = file.metadata() {
                        if md.ino() != inode || md.len() < offset {
                            inode = md.ino();
                            offset = 0;
                        }
                    }
                    if file.seek(SeekFrom::Start(offset)).is_ok() {
                        let mut reader = BufReader::new(file);
                        let mut buf = String::new();
                        loop {
                            buf.clear();
                            match reader.read_line(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if !buf.ends_with('\n') {
                                        break;
                                    }
                                    offset += n as u64;
                                    if let Some(chunk) = render(&buf, &opts, tty) {
                                        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                if !running || tx.is_closed() {
                    return;
                }
                if opts.until > 0.0 && (chrono::Utc::now().timestamp() as f64) > opts.until {
                    return;
                }
                // Wake on an exit (then read the tail once more) or poll for new lines.
                let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
            }
        });
        Ok((tty, crate::channel_stream(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LogsOptions {
        LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }
    }

    #[test]
    fn renders_frames_and_filters() {
        let line = r#"{"log":"hi\n","stream":"stderr","time":"2026-01-01T00:00:00.5Z"}"#;
        let out = render(line, &opts(), false).unwrap();
        assert_eq!(&out[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&out[8..], b"hi\n");
        assert_eq!(render(line, &opts(), true).unwrap(), b"hi\n");
        let mut o = opts();
        o.stderr = false;
        assert!(render(line, &o, false).is_none());
        let mut o = opts();
        o.timestamps = true;
        assert_eq!(
            render(line, &o, true).unwrap(),
            b"2026-01-01T00:00:00.5Z hi\n"
        );
        let mut o = opts();
        o.since = 1767225601.0;
        assert!(render(line, &o, true).is_none());
    }
}
