//! The CRI container log format, as the kubelet reads it from `log_directory/log_path`:
//! one entry per line, `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n`. `F` ends a
//! line of the container's output; `P` is a piece of a longer line (split at the maximum line
//! size) or the unterminated rest at the end of a stream. Synchronous I/O, so the per-container
//! monitor can use it as well as the daemon.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};

/// containerd's default `max_container_log_line_size`.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// `F` (full: the entry ends a line) or `P` (partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTag {
    Full,
    Partial,
}

impl LogTag {
    fn as_str(self) -> &'static str {
        match self {
            LogTag::Full => "F",
            LogTag::Partial => "P",
        }
    }
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub time: DateTime<Utc>,
    pub stream: LogStream,
    pub tag: LogTag,
    pub content: Vec<u8>,
}

/// Parses one line of a CRI log (without its newline).
pub fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    let tag = match parts.next()? {
        b"F" => LogTag::Full,
        b"P" => LogTag::Partial,
        _ => return None,
    };
    Some(LogEntry {
        time,
        stream,
        tag,
        content: parts.next().unwrap_or_default().to_vec(),
    })
}

/// A container's CRI log file, shared by its stdout and stderr writers.
pub struct CriLog {
    path: PathBuf,
    file: Mutex<File>,
    max_line: usize,
    clock: fn() -> DateTime<Utc>,
}

fn open(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn locked<T>(m: &Mutex<T>) -> io::Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| io::Error::other("cri log file lock poisoned"))
}

impl CriLog {
    /// Opens (appending, creating it and its directory) the log at `path`.
    pub fn open(path: impl Into<PathBuf>, max_line: usize) -> io::Result<Arc<Self>> {
        let path = path.into();
        let file = open(&path)?;
        Ok(Arc::new(CriLog {
            path,
            file: Mutex::new(file),
            max_line: max_line.max(1),
            clock: Utc::now,
        }))
    }

    /// As [`CriLog::open`] with a fixed clock, for tests.
    pub fn open_with_clock(
        path: impl Into<PathBuf>,
        max_line: usize,
        clock: fn() -> DateTime<Utc>,
    ) -> io::Result<Arc<Self>> {
        let mut log = Self::open(path, max_line)?;
        if let Some(l) = Arc::get_mut(&mut log) {
            l.clock = clock;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ReopenContainerLog: the kubelet renamed the file away; start a new one at the path.
    pub fn reopen(&self) -> io::Result<()> {
        let new = open(&self.path)?;
        let mut f = locked(&self.file)?;
        f.flush()?;
        *f = new;
        Ok(())
    }

    /// A line-buffering writer of `stream` into this log.
    pub fn writer(self: &Arc<Self>, stream: LogStream) -> CriLogWriter {
        CriLogWriter {
            log: self.clone(),
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes one entry in a single write(2), so entries of both streams never interleave.
    fn entry(&self, stream: LogStream, tag: LogTag, content: &[u8]) -> io::Result<()> {
        let ts = (self.clock)().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut line = Vec::with_capacity(ts.len() + content.len() + 12);
        line.extend_from_slice(ts.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_str().as_bytes());
        line.push(b' ');
        line.extend_from_slice(tag.as_str().as_bytes());
        line.push(b' ');
        line.extend_from_slice(content);
        line.push(b'\n');
        locked(&self.file)?.write_all(&line)
    }
}

/// Turns a byte stream (a container's stdout or stderr) into CRI log entries. Call
/// [`CriLogWriter::finish`] at the stream's end to write an unterminated rest.
pub struct CriLogWriter {
    log: Arc<CriLog>,
    stream: LogStream,
    buf: Vec<u8>,
}

impl CriLogWriter {
    /// Writes what is left without a newline as a partial entry (as containerd does at EOF).
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.log.entry(self.stream, LogTag::Partial, &rest)?;
        }
        Ok(())
    }
}

impl Write for CriLogWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        let max = self.log.max_line;
        let mut start = 0;
        loop {
            let pending = &self.buf[start..];
            match pending.iter().position(|b| *b == b'\n') {
                // A line longer than the maximum: its head goes out in partial pieces.
                Some(nl) if nl > max => {
                    self.log
                        .entry(self.stream, LogTag::Partial, &pending[..max])?;
                    start += max;
                }
                Some(nl) => {
                    self.log.entry(self.stream, LogTag::Full, &pending[..nl])?;
                    start += nl + 1;
                }
                None if pending.len() > max => {
                    self.log
                        .entry(self.stream, LogTag::Partial, &pending[..max])?;
                    start += max;
                }
                None => break,
            }
        }
        self.buf.drain(..start);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        locked(&self.log.file)?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T10:00:00.000000123Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn read(path: &Path) -> Vec<String> {
        // Not `lines()`: it would drop a `\r` the entry keeps.
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.strip_suffix('\n').unwrap();
        text.split('\n').map(str::to_string).collect()
    }

    #[test]
    fn full_lines_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let log = CriLog::open_with_clock(&path, DEFAULT_MAX_LINE, fixed).unwrap();
        let mut out = log.writer(LogStream::Stdout);
        let mut err = log.writer(LogStream::Stderr);
        out.write_all(b"hello\nwor").unwrap();
        err.write_all(b"oops\n").unwrap();
        out.write_all(b"ld\r\n\n").unwrap();
        assert_eq!(
            read(&path),
            [
                "2026-12-06T10:00:00.000000123Z stdout F hello",
                "2026-12-06T10:00:00.000000123Z stderr F oops",
                "2026-12-06T10:00:00.000000123Z stdout F world\r",
                "2026-12-06T10:00:00.000000123Z stdout F ",
            ]
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn long_lines_split_into_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let log = CriLog::open_with_clock(&path, 4, fixed).unwrap();
        let mut out = log.writer(LogStream::Stdout);
        out.write_all(b"abcdefghij\n").unwrap();
        out.write_all(b"1234").unwrap(); // exactly the maximum: waits for more
        out.write_all(b"5").unwrap();
        out.write_all(b"\nxy").unwrap();
        out.finish().unwrap();
        let tags: Vec<String> = read(&path)
            .iter()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect();
        assert_eq!(
            tags,
            [
                "stdout P abcd",
                "stdout P efgh",
                "stdout F ij",
                "stdout P 1234",
                "stdout F 5",
                "stdout P xy"
            ]
        );
    }

    #[test]
    fn reopen_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let log = CriLog::open(&path, DEFAULT_MAX_LINE).unwrap();
        let mut out = log.writer(LogStream::Stdout);
        out.write_all(b"one\n").unwrap();
        let rotated = dir.path().join("0.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        out.write_all(b"two\n").unwrap(); // still into the renamed file
        log.reopen().unwrap();
        out.write_all(b"three\n").unwrap();
        let old: Vec<_> = read(&rotated)
            .iter()
            .map(|l| parse_line(l.as_bytes()).unwrap().content)
            .collect();
        assert_eq!(old, [b"one".to_vec(), b"two".to_vec()]);
        let new = read(&path);
        assert_eq!(new.len(), 1);
        let e = parse_line(new[0].as_bytes()).unwrap();
        assert_eq!(
            (e.stream, e.tag, e.content),
            (LogStream::Stdout, LogTag::Full, b"three".to_vec())
        );
        assert!((Utc::now() - e.time).num_seconds().abs() < 60);
    }

    #[test]
    fn parses_lines() {
        let e = parse_line(b"2026-12-06T10:00:00.5Z stderr P a b c").unwrap();
        assert_eq!(e.stream, LogStream::Stderr);
        assert_eq!(e.tag, LogTag::Partial);
        assert_eq!(e.content, b"a b c");
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"2026-12-06T10:00:00Z stdin F x").is_none());
    }
}
