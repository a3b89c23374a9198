use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of a frame header: `[kind, 0, 0, 0, len: u32 big-endian]`.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a reader accepts; the shim never sends more than 128 KiB at once.
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Stdout = 1,
    Stderr = 2,
    /// Final frame: JSON `ExitStatus` of the attached container or exec process.
    Exit = 3,
    /// Final frame: an error message (for example, exec failed to start).
    Error = 4,
    /// First frame of a streaming connection: the request was accepted (JSON `ExecStarted`).
    Started = 5,
}

impl FrameKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => FrameKind::Stdout,
            2 => FrameKind::Stderr,
            3 => FrameKind::Exit,
            4 => FrameKind::Error,
            5 => FrameKind::Started,
            _ => return None,
        })
    }

    /// Whether the shim closes the connection after a frame of this kind.
    pub fn is_final(self) -> bool {
        matches!(self, FrameKind::Exit | FrameKind::Error)
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

/// Encodes one frame (header + payload).
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.push(kind as u8);
    out.extend_from_slice(&[0, 0, 0]);
    // Writers send at most MAX_FRAME_LEN (16 MiB) per frame, which readers enforce.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Yields frames from an `AsyncRead`.
pub struct FrameReader<R> {
    inner: R,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader { inner }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next frame, or `None` on a clean end of stream between frames.
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let mut filled = 0;
        while filled < FRAME_HEADER_LEN {
            let n = self.inner.read(&mut header[filled..]).await?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated frame header",
                ));
            }
            filled += n;
        }
        let kind = FrameKind::from_u8(header[0]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown frame kind {}", header[0]),
            )
        })?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes is too large"),
            ));
        }
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload).await?;
        Ok(Some(Frame { kind, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_header_layout() {
        let f = encode_frame(FrameKind::Stderr, b"abc");
        assert_eq!(f, vec![2, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let f = encode_frame(FrameKind::Stdout, &[]);
        assert_eq!(f, vec![1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn reader_roundtrip() {
        let mut buf = encode_frame(FrameKind::Stdout, b"hello\n");
        buf.extend(encode_frame(FrameKind::Stderr, &[7u8; 70_000]));
        buf.extend(encode_frame(FrameKind::Exit, br#"{"exit_code":0}"#));
        let mut r = FrameReader::new(&buf[..]);
        let f = r.next_frame().await.unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Stdout);
        assert_eq!(f.payload, b"hello\n");
        let f = r.next_frame().await.unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Stderr);
        assert_eq!(f.payload.len(), 70_000);
        let f = r.next_frame().await.unwrap().unwrap();
        assert!(f.kind.is_final());
        assert!(r.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reader_errors() {
        let buf = [1u8, 0, 0];
        let mut r = FrameReader::new(&buf[..]);
        assert!(r.next_frame().await.is_err());
        let buf = [9u8, 0, 0, 0, 0, 0, 0, 0];
        let mut r = FrameReader::new(&buf[..]);
        assert!(r.next_frame().await.is_err());
        let mut buf = encode_frame(FrameKind::Stdout, b"abcdef");
        buf.truncate(10);
        let mut r = FrameReader::new(&buf[..]);
        assert!(r.next_frame().await.is_err());
    }
}
