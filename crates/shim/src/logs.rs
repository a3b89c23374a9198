//! Docker's json-file log driver: one JSON object per message, size-based rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_shim_protocol::format_timestamp;

/// Docker's copier reads at most this much before it emits a partial message.
pub const MAX_LINE: usize = 16 * 1024;

/// Which stream a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits a byte stream into log messages the way Docker's copier does: a message ends at
/// `\n` (kept), or is emitted as a partial message (no `\n`) when 16 KiB accumulate without
/// one, or when the stream ends.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; `f` gets each message that is complete. Whole lines are handed out of
    /// `data` itself, without a copy.
    pub fn push(&mut self, mut data: &[u8], mut f: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.buf.len();
            let take = data.len().min(room);
            let newline = data[..take].iter().position(|&b| b == b'\n');
            if self.buf.is_empty() {
                match newline {
                    Some(i) => {
                        f(&data[..=i]);
                        data = &data[i + 1..];
                    }
                    None if take == MAX_LINE => {
                        f(&data[..take]);
                        data = &data[take..];
                    }
                    None => {
                        self.buf.extend_from_slice(data);
                        data = &[];
                    }
                }
                continue;
            }
            let end = newline.map_or(take, |i| i + 1);
            self.buf.extend_from_slice(&data[..end]);
            data = &data[end..];
            if newline.is_some() || self.buf.len() >= MAX_LINE {
                f(&self.buf);
                self.buf.clear();
            }
        }
    }

    /// Emits what is left (a partial message) at end of stream.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction are dropped, as in the
/// `time` field Docker writes.
pub fn go_rfc3339_nano(t: SystemTime) -> String {
    let fixed = format_timestamp(t); // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let (head, frac) = fixed.split_at(19);
    let digits = frac.trim_start_matches('.').trim_end_matches('Z');
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{digits}Z")
    }
}

/// Whether a byte goes into a JSON string as it is: printable ASCII (and DEL, which Go's
/// encoder leaves alone) other than the quote, the backslash and the HTML-sensitive `<>&`.
fn is_plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7f) && !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&')
}

/// Appends `s` as a JSON string the way Docker's jsonlog encoder does: HTML-sensitive
/// characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD. Runs of plain
/// ASCII are copied in one go.
pub fn write_json_string(out: &mut Vec<u8>, mut bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    while !bytes.is_empty() {
        let run = bytes
            .iter()
            .position(|&b| !is_plain(b))
            .unwrap_or(bytes.len());
        out.extend_from_slice(&bytes[..run]);
        bytes = &bytes[run..];
        let Some(&b) = bytes.first() else { break };
        if b.is_ascii() {
            escape_ascii(out, b);
            bytes = &bytes[1..];
        } else {
            // An ASCII byte is never part of a multi-byte sequence, so the non-ASCII run can
            // be decoded on its own.
            let end = bytes.iter().position(u8::is_ascii).unwrap_or(bytes.len());
            write_non_ascii(out, &bytes[..end]);
            bytes = &bytes[end..];
        }
    }
    out.push(b'"');
}

fn escape_ascii(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        b'<' | b'>' | b'&' | 0..=0x1f => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xf) as usize],
        ]),
        b => out.push(b),
    }
}

fn write_non_ascii(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let mut s = chunk.valid();
        while let Some(i) = s.find(['\u{2028}', '\u{2029}']) {
            out.extend_from_slice(&s.as_bytes()[..i]);
            let c = s[i..].chars().next().unwrap_or('\u{2028}');
            out.extend_from_slice(if c == '\u{2028}' {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            s = &s[i + c.len_utf8()..];
        }
        out.extend_from_slice(s.as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// Encodes one json-file log line (with its trailing `\n`).
pub fn encode_entry(msg: &[u8], stream: Stream, time: SystemTime) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 80);
    encode_entry_into(&mut out, msg, stream, &go_rfc3339_nano(time));
    out
}

/// Appends one json-file log line (with its trailing `\n`); `time` as [`go_rfc3339_nano`] gives it.
pub fn encode_entry_into(out: &mut Vec<u8>, msg: &[u8], stream: Stream, time: &str) {
    out.extend_from_slice(b"{\"log\":");
    write_json_string(out, msg);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The json-file writer with Docker's rotation: before a write, when the live file has
/// reached `max_size`, `<log>.N-1` … `<log>.1` shift up by one, the live file becomes
/// `<log>.1` and a new one is started; with `max_file` ≤ 1 the live file is truncated.
///
/// Entries are gathered by [`JsonLog::append`] and reach the file in one write at
/// [`JsonLog::flush`] (or when a rotation is due), so a burst of output costs one system call.
pub struct JsonLog {
    path: PathBuf,
    max_size: u64,
    max_file: u32,
    file: File,
    size: u64,
    pending: Vec<u8>,
    pending_entries: u64,
}

/// Above this many buffered bytes `append` writes them out by itself.
const FLUSH_AT: usize = 1 << 20;

impl JsonLog {
    pub fn open(path: &Path, max_size: u64, max_file: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_owned(),
            max_size,
            max_file: max_file.max(1),
            file,
            size,
            pending: Vec::new(),
            pending_entries: 0,
        })
    }

    /// Writes one entry now.
    pub fn write(&mut self, msg: &[u8], stream: Stream, time: SystemTime) -> io::Result<()> {
        let dropped = self.append(msg, stream, &go_rfc3339_nano(time)) + self.flush();
        match dropped {
            0 => Ok(()),
            _ => Err(io::Error::other("log entry dropped")),
        }
    }

    /// Buffers one entry (`time` as [`go_rfc3339_nano`] gives it). Returns how many entries
    /// were lost (a write or rotation that failed on the way, a full disk).
    pub fn append(&mut self, msg: &[u8], stream: Stream, time: &str) -> u64 {
        let mut dropped = 0;
        if self.max_size > 0 && self.size + self.pending.len() as u64 >= self.max_size {
            dropped += self.flush();
            if self.rotate().is_err() {
                return dropped + 1;
            }
        }
        encode_entry_into(&mut self.pending, msg, stream, time);
        self.pending_entries += 1;
        if self.pending.len() >= FLUSH_AT {
            dropped += self.flush();
        }
        dropped
    }

    /// Writes what [`JsonLog::append`] gathered. Returns how many entries were lost.
    pub fn flush(&mut self) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let entries = std::mem::take(&mut self.pending_entries);
        let res = self.file.write_all(&self.pending);
        let len = self.pending.len() as u64;
        self.pending.clear();
        if self.pending.capacity() > 4 * FLUSH_AT {
            self.pending.shrink_to(FLUSH_AT);
        }
        match res {
            Ok(()) => {
                self.size += len;
                0
            }
            Err(_) => {
                // A write cut short (a full disk) must not leave half an entry that would glue
                // itself to the next one: the file goes back to its last whole entry.
                let _ = self.file.set_len(self.size);
                entries
            }
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        let last = self.max_file - 1;
        match fs::remove_file(numbered(last)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for i in (1..last).rev() {
            match fs::rename(numbered(i), numbered(i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn t() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_767_225_600, 123_456_789)
    }

    #[test]
    fn entry_matches_docker_format() {
        assert_eq!(
            String::from_utf8(encode_entry(b"hi\n", Stream::Stdout, t())).unwrap(),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.123456789Z\"}\n"
        );
        let e = encode_entry(b"<a&b>\"\\\t\x01\xff\xe2\x80\xa8", Stream::Stderr, t());
        assert_eq!(
            String::from_utf8(e).unwrap(),
            "{\"log\":\"\\u003ca\\u0026b\\u003e\\\"\\\\\\t\\u0001\\ufffd\\u2028\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:00.123456789Z\"}\n"
        );
    }

    /// The encoder character by character, as Go's does it: the fast path must agree.
    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                    }
                    c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            if !chunk.invalid().is_empty() {
                out.extend_from_slice(b"\\ufffd");
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn fast_encoder_matches_reference() {
        let mut cases: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b, b'a', b]).collect();
        cases.push("é\u{2028}x\u{2029}\u{7f}€😀<tag>&\"\\".as_bytes().to_vec());
        cases.push(b"\xe2\x80\xa8\xe2\x80\xe2\x80\xa9\xf0\x9f\x98A\xc3".to_vec());
        // a pseudo-random mix weighted towards the interesting bytes
        let mut x = 0x1234_5678u32;
        let mut mixed = Vec::new();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let b = x.to_be_bytes()[2];
            mixed.push(if x & 1 == 0 {
                b
            } else {
                b"a\xe2\x80\xa8\xc3\xa9\x00<"[b as usize % 8]
            });
        }
        cases.push(mixed);
        for c in cases {
            let mut fast = Vec::new();
            write_json_string(&mut fast, &c);
            assert_eq!(fast, reference(&c), "{c:?}");
        }
    }

    #[test]
    fn batched_appends_rotate_like_single_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&p, 100, 3).unwrap();
        let time = go_rfc3339_nano(t());
        for i in 0..20 {
            assert_eq!(
                log.append(format!("line {i}\n").as_bytes(), Stream::Stdout, &time),
                0
            );
        }
        assert_eq!(log.flush(), 0);
        let live = fs::read_to_string(&p).unwrap();
        assert_eq!(live.lines().count(), 2, "{live}");
        assert!(live.contains("line 19"), "{live}");
        let one = fs::read_to_string(dir.path().join("c-json.log.1")).unwrap();
        assert!(one.contains("line 17"), "{one}");
    }

    #[test]
    fn splitter_hands_out_whole_lines_and_16k_pieces() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut data = vec![b'y'; MAX_LINE + 5];
        data.extend_from_slice(b"\nab\ncd");
        s.push(&data, |m| out.push(m.to_vec()));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], vec![b'y'; MAX_LINE]);
        assert_eq!(out[1], b"yyyyy\n");
        assert_eq!(out[2], b"ab\n");
        assert_eq!(s.finish(), Some(b"cd".to_vec()));
    }

    #[test]
    fn go_time_trims_zeros() {
        assert_eq!(
            go_rfc3339_nano(UNIX_EPOCH + Duration::new(0, 500_000_000)),
            "1970-01-01T00:00:00.5Z"
        );
        assert_eq!(go_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn splitter_lines_and_partials() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"a\nb", |m| out.push(m.to_vec()));
        s.push(b"c\n\nd", |m| out.push(m.to_vec()));
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec()]);
        assert_eq!(s.finish(), Some(b"d".to_vec()));
        assert_eq!(s.finish(), None);

        let mut out = Vec::new();
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        s.push(&big, |m| out.push(m.to_vec()));
        s.push(b"\n", |m| out.push(m.to_vec()));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2], [&[b'x'; 10][..], b"\n"].concat());
    }

    #[test]
    fn rotation_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&p, 100, 3).unwrap();
        for i in 0..20 {
            log.write(format!("line {i}\n").as_bytes(), Stream::Stdout, t())
                .unwrap();
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        // each entry is 78 bytes, so every file holds 2 of them and the newest is live
        let live = fs::read_to_string(&p).unwrap();
        assert!(live.contains("line 19"), "{live}");
        let one = fs::read_to_string(dir.path().join("c-json.log.1")).unwrap();
        assert!(one.contains("line 17"), "{one}");
        let two = fs::read_to_string(dir.path().join("c-json.log.2")).unwrap();
        assert!(two.contains("line 15"), "{two}");
        for l in live.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["stream"], "stdout");
        }
    }

    #[test]
    fn rotation_with_one_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&p, 50, 1).unwrap();
        for i in 0..5 {
            log.write(format!("l{i}\n").as_bytes(), Stream::Stderr, t())
                .unwrap();
        }
        let live = fs::read_to_string(&p).unwrap();
        assert_eq!(live.lines().count(), 1);
        assert!(live.contains("l4"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn reopen_appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        JsonLog::open(&p, 0, 1)
            .unwrap()
            .write(b"a\n", Stream::Stdout, t())
            .unwrap();
        JsonLog::open(&p, 0, 1)
            .unwrap()
            .write(b"b\n", Stream::Stdout, t())
            .unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap().lines().count(), 2);
    }
}
