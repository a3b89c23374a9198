//! SPDY/3 frames on the wire. A control frame is `1 | version(15) | type(16) | flags(8) |
//! length(24) | data`; a data frame is `0 | stream-id(31) | flags(8) | length(24) | data`.
//! Header blocks (in SYN_STREAM, SYN_REPLY, HEADERS) are `count(32)` then `len(32) name
//! len(32) value` pairs, compressed by the session's [`zlib`](super::zlib) stream; a header
//! with several values joins them with NUL.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::zlib::{Deflater, Inflater, ZlibError};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Frames larger than this are refused (Go's framer allows 16 MiB; nothing here sends that much).
pub const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

pub type Headers = Vec<(String, String)>;

/// The value of header `name` (names are lowercase on the wire).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame type we do not know (skipped, as the spec asks).
    Unknown(u16),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("spdy: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Zlib(#[from] ZlibError),
    #[error("spdy: unsupported version {0}")]
    Version(u16),
    #[error("spdy: malformed {0} frame")]
    Malformed(&'static str),
    #[error("spdy: frame of {0} bytes is too large")]
    TooLarge(usize),
}

/// A length for a frame field. What berth writes is far below 4 GiB: data frames carry at
/// most 32 KiB (`conn::MAX_DATA`), header blocks a few names and values.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn encode_headers(h: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&len32(h.len()).to_be_bytes());
    for (k, v) in h {
        let k = k.to_ascii_lowercase();
        b.extend_from_slice(&len32(k.len()).to_be_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&len32(v.len()).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

fn decode_headers(b: &[u8]) -> Option<Headers> {
    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }
    let count = u32_at(b, 0)? as usize;
    let mut at = 4;
    let mut h = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32_at(b, at)? as usize;
        let name = std::str::from_utf8(b.get(at + 4..at + 4 + n)?).ok()?;
        at += 4 + n;
        let n = u32_at(b, at)? as usize;
        let value = std::str::from_utf8(b.get(at + 4..at + 4 + n)?).ok()?;
        at += 4 + n;
        h.push((name.to_string(), value.to_string()));
    }
    Some(h)
}

fn control(ty: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + payload.len());
    b.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    b.extend_from_slice(&ty.to_be_bytes());
    let len = len32(payload.len());
    b.push(flags);
    b.extend_from_slice(&len.to_be_bytes()[1..]);
    b.extend_from_slice(payload);
    b
}

impl Frame {
    /// Serializes the frame, compressing header blocks with the session's deflater.
    pub fn encode(&self, z: &mut Deflater) -> Vec<u8> {
        match self {
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 7) << 5);
                p.push(0);
                p.extend_from_slice(&z.deflate(&encode_headers(headers)));
                control(SYN_STREAM, *flags, &p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            }
            | Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&z.deflate(&encode_headers(headers)));
                let ty = if matches!(self, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                control(ty, *flags, &p)
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(RST_STREAM, 0, &p)
            }
            Frame::Settings => control(SETTINGS, 0, &0u32.to_be_bytes()),
            Frame::Ping(id) => control(PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_stream_id,
                status,
            } => {
                let mut p = (last_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(GOAWAY, 0, &p)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                control(WINDOW_UPDATE, 0, &p)
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let mut b = Vec::with_capacity(8 + data.len());
                b.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                b.push(*flags);
                b.extend_from_slice(&len32(data.len()).to_be_bytes()[1..]);
                b.extend_from_slice(data);
                b
            }
            Frame::Unknown(ty) => control(*ty, 0, &[]),
        }
    }

    /// Reads one frame; `Ok(None)` at a clean end of the connection.
    pub async fn read<R: AsyncRead + Unpin>(
        r: &mut R,
        z: &mut Inflater,
    ) -> Result<Option<Frame>, FrameError> {
        let mut head = [0u8; 8];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        let mut p = vec![0u8; len];
        r.read_exact(&mut p).await?;
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
        };
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                flags,
                data: p,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let ty = u16::from_be_bytes([head[2], head[3]]);
        let id = |name| {
            word(0)
                .map(|w| w & 0x7fff_ffff)
                .ok_or(FrameError::Malformed(name))
        };
        let mut block = |at: usize, name| -> Result<Headers, FrameError> {
            let raw = z.inflate(p.get(at..).ok_or(FrameError::Malformed(name))?)?;
            decode_headers(&raw).ok_or(FrameError::Malformed(name))
        };
        Ok(Some(match ty {
            SYN_STREAM => Frame::SynStream {
                stream_id: id("SYN_STREAM")?,
                associated: word(4).ok_or(FrameError::Malformed("SYN_STREAM"))? & 0x7fff_ffff,
                priority: p.get(8).map(|b| b >> 5).unwrap_or(0),
                flags,
                headers: block(10, "SYN_STREAM")?,
            },
            SYN_REPLY => Frame::SynReply {
                stream_id: id("SYN_REPLY")?,
                flags,
                headers: block(4, "SYN_REPLY")?,
            },
            HEADERS => Frame::Headers {
                stream_id: id("HEADERS")?,
                flags,
                headers: block(4, "HEADERS")?,
            },
            RST_STREAM => Frame::RstStream {
                stream_id: id("RST_STREAM")?,
                status: word(4).ok_or(FrameError::Malformed("RST_STREAM"))?,
            },
            SETTINGS => Frame::Settings,
            PING => Frame::Ping(word(0).ok_or(FrameError::Malformed("PING"))?),
            GOAWAY => Frame::GoAway {
                last_stream_id: id("GOAWAY")?,
                status: word(4).unwrap_or(0),
            },
            WINDOW_UPDATE => Frame::WindowUpdate {
                stream_id: id("WINDOW_UPDATE")?,
                delta: word(4).unwrap_or(0) & 0x7fff_ffff,
            },
            other => Frame::Unknown(other),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "error")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: h(&[]),
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: b"hello".to_vec(),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: vec![],
            },
            Frame::Headers {
                stream_id: 3,
                flags: 0,
                headers: h(&[("a", "b\0c")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: RST_CANCEL,
            },
            Frame::Ping(7),
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 100,
            },
            Frame::GoAway {
                last_stream_id: 5,
                status: 0,
            },
            Frame::Settings,
        ];
        let mut z = Deflater::default();
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode(&mut z)).collect();
        let mut r = &wire[..];
        let mut inf = Inflater::default();
        for f in &frames {
            assert_eq!(
                Frame::read(&mut r, &mut inf).await.unwrap().as_ref(),
                Some(f)
            );
        }
        assert!(Frame::read(&mut r, &mut inf).await.unwrap().is_none());
    }

    /// A SYN_STREAM as Go's spdystream writes it (header block from zlib with the dictionary).
    #[tokio::test]
    async fn reads_a_syn_stream_compressed_by_zlib() {
        let block = "78f9e3c6a7c202253a703a2b294a4dcc851625c0149b920f2e88d10b192e84ebb097bb3cc8ce01000000ffff";
        let block: Vec<u8> = (0..block.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&block[i..i + 2], 16).unwrap())
            .collect();
        let mut p = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&block);
        let wire = control(SYN_STREAM, 0, &p);
        let f = Frame::read(&mut &wire[..], &mut Inflater::default())
            .await
            .unwrap()
            .unwrap();
        match f {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                assert_eq!(stream_id, 1);
                assert_eq!(
                    headers,
                    h(&[
                        ("streamtype", "stdout"),
                        ("content-type", "text/plain"),
                        ("accept-encoding", "gzip,deflate")
                    ])
                );
            }
            f => panic!("{f:?}"),
        }
    }

    #[tokio::test]
    async fn refuses_other_versions() {
        let wire = [0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        let e = Frame::read(&mut &wire[..], &mut Inflater::default())
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::Version(2)));
    }
}
