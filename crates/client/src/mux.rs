//! The Engine API's multiplexed stream format, used for attach, exec and logs without a TTY:
//! each chunk is `[stream, 0, 0, 0, len as big-endian u32]` followed by `len` bytes, where
//! stream is 0 (stdin), 1 (stdout), 2 (stderr) or 3 (an error from the daemon).

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ClientError;

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    /// A daemon-side error message (stream 3).
    System,
}

impl StreamKind {
    pub fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            3 => Some(StreamKind::System),
            _ => None,
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            StreamKind::Stdin => 0,
            StreamKind::Stdout => 1,
            StreamKind::Stderr => 2,
            StreamKind::System => 3,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: StreamKind,
    pub data: Bytes,
}

/// Size of a frame header.
pub const HEADER_LEN: usize = 8;

/// Encodes one frame (for tests and fake servers).
pub fn encode_frame(stream: StreamKind, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.push(stream.as_byte());
    out.extend_from_slice(&[0, 0, 0]);
    let len = u32::try_from(data.len()).expect("a frame of tests and fake servers is < 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// An incremental decoder: push bytes as they arrive, pull complete frames.
/// Frames with an unknown stream byte are passed on as stdout so no output is lost.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.buf.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        let stream = StreamKind::from_byte(self.buf[0]).unwrap_or(StreamKind::Stdout);
        self.buf.advance(HEADER_LEN);
        let data = self.buf.split_to(len).freeze();
        Some(Frame { stream, data })
    }
}

/// Reads one frame from `r`; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, ClientError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(ClientError::Protocol(
                "truncated stream frame header".into(),
            ));
        }
        got += n;
    }
    let stream = StreamKind::from_byte(header[0]).unwrap_or(StreamKind::Stdout);
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Some(Frame {
        stream,
        data: Bytes::from(data),
    }))
}

/// Copies a framed stream to `stdout` and `stderr` until EOF. Stream-3 (daemon error) frames are
/// returned as an error after the copy stops.
pub async fn demux<R, O, E>(r: &mut R, stdout: &mut O, stderr: &mut E) -> Result<(), ClientError>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    while let Some(frame) = read_frame(r).await? {
        match frame.stream {
            StreamKind::Stdout | StreamKind::Stdin => {
                stdout.write_all(&frame.data).await?;
                stdout.flush().await?;
            }
            StreamKind::Stderr => {
                stderr.write_all(&frame.data).await?;
                stderr.flush().await?;
            }
            StreamKind::System => {
                return Err(ClientError::Protocol(
                    String::from_utf8_lossy(&frame.data).trim().to_string(),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_frames() {
        let mut bytes = encode_frame(StreamKind::Stdout, b"hello\n");
        bytes.extend(encode_frame(StreamKind::Stderr, b"oops"));
        bytes.extend(encode_frame(StreamKind::Stdout, b""));
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        // Feed one byte at a time: frames must come out whole.
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[0],
            Frame {
                stream: StreamKind::Stdout,
                data: Bytes::from_static(b"hello\n")
            }
        );
        assert_eq!(frames[1].stream, StreamKind::Stderr);
        assert_eq!(&frames[1].data[..], b"oops");
        assert!(frames[2].data.is_empty());
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn header_layout() {
        let f = encode_frame(StreamKind::Stderr, &[7u8; 300]);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
    }

    #[tokio::test]
    async fn demuxes_to_writers() {
        let mut bytes = encode_frame(StreamKind::Stdout, b"out1 ");
        bytes.extend(encode_frame(StreamKind::Stderr, b"err"));
        bytes.extend(encode_frame(StreamKind::Stdout, b"out2"));
        let mut r = &bytes[..];
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(&mut r, &mut o, &mut e).await.unwrap();
        assert_eq!(o, b"out1 out2");
        assert_eq!(e, b"err");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let bytes = encode_frame(StreamKind::Stdout, b"hello");
        let mut r = &bytes[..10];
        assert!(read_frame(&mut r).await.is_err());
        let mut r = &bytes[..3];
        assert!(read_frame(&mut r).await.is_err());
    }
}
