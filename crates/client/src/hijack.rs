//! Hijacked connections for attach and exec start.
//!
//! The client sends `Connection: Upgrade` / `Upgrade: tcp`; the daemon answers
//! `101 Switching Protocols` and from then on the socket carries the container's stdio: output
//! from the daemon (8-byte framed unless the container has a TTY) and stdin to it. The request is
//! written by hand rather than through hyper so that the socket can be split into owned halves and
//! its write side shut down on its own: that half-close is how stdin EOF reaches the container
//! while its output keeps flowing back.

use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::Conn;
use crate::ClientError;

/// Output side of a hijacked connection (bytes from the daemon).
pub struct HijackReader(Box<dyn AsyncRead + Send + Unpin>);

/// Input side of a hijacked connection (bytes to the container's stdin).
/// `shutdown()` half-closes the socket, which the daemon turns into stdin EOF.
pub struct HijackWriter(Box<dyn AsyncWrite + Send + Unpin>);

/// A hijacked attach/exec connection.
pub struct Hijacked {
    pub reader: HijackReader,
    pub writer: HijackWriter,
    /// `Content-Type` of the 101 answer: `application/vnd.docker.multiplexed-stream` (framed,
    /// see [`crate::mux`]) or `application/vnd.docker.raw-stream` (TTY).
    pub content_type: Option<String>,
    /// The status the daemon answered with (101, or 200 for daemons that do not upgrade).
    pub status: u16,
}

impl Hijacked {
    /// True when the daemon said the output is framed. `None` when it did not say; callers then
    /// decide from whether the container/exec has a TTY.
    pub fn is_multiplexed(&self) -> Option<bool> {
        match self.content_type.as_deref() {
            Some("application/vnd.docker.multiplexed-stream") => Some(true),
            Some("application/vnd.docker.raw-stream") => Some(false),
            _ => None,
        }
    }

    pub fn split(self) -> (HijackReader, HijackWriter) {
        (self.reader, self.writer)
    }
}

impl AsyncRead for HijackReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for HijackWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl HijackWriter {
    /// Half-closes the connection: the daemon sees EOF on the container's stdin.
    pub async fn close_write(&mut self) -> std::io::Result<()> {
        self.shutdown().await
    }
}

const MAX_HEADER: usize = 64 * 1024;

pub(crate) async fn hijack(
    mut conn: Conn,
    host: &str,
    uri: &str,
    body: Option<Vec<u8>>,
) -> Result<Hijacked, ClientError> {
    let body = body.unwrap_or_default();
    let content_type = if body.is_empty() {
        "text/plain"
    } else {
        "application/json"
    };
    let head = format!(
        "POST {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-client/{}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&body).await?;
    conn.flush().await?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (status, header_len, content_type, content_length) = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(ClientError::Protocol(
                "connection closed before the response headers".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let find = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_string())
                };
                let ct = find("content-type");
                let cl = find("content-length").and_then(|v| v.trim().parse::<usize>().ok());
                break (resp.code.unwrap_or(0), len, ct, cl);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEADER => continue,
            Ok(httparse::Status::Partial) => {
                return Err(ClientError::Protocol("response headers too large".into()))
            }
            Err(e) => return Err(ClientError::Protocol(format!("bad response: {e}"))),
        }
    };
    let leftover = buf.split_off(header_len);

    if status >= 400 {
        let mut body = leftover;
        match content_length {
            Some(len) => {
                while body.len() < len {
                    let n = conn.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(len);
            }
            None => {
                // Chunked or close-delimited: read what comes within a short time and pick the
                // JSON object out of it.
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    conn.read_to_end(&mut body),
                )
                .await;
                if let (Some(s), Some(e)) = (
                    body.iter().position(|&b| b == b'{'),
                    body.iter().rposition(|&b| b == b'}'),
                ) {
                    body = body[s..=e].to_vec();
                }
            }
        }
        return Err(ClientError::from_body(status, &body));
    }
    if status != 101 && status != 200 {
        return Err(ClientError::Protocol(format!(
            "unexpected status {status} for hijack"
        )));
    }

    let (reader, writer): (
        Box<dyn AsyncRead + Send + Unpin>,
        Box<dyn AsyncWrite + Send + Unpin>,
    ) = match conn {
        Conn::Unix(s) => {
            let (r, w) = s.into_split();
            (Box::new(r), Box::new(w))
        }
        Conn::Tcp(s) => {
            let (r, w) = s.into_split();
            (Box::new(r), Box::new(w))
        }
        Conn::Tls(s) => {
            // Shutting the write half down sends close_notify: the daemon sees stdin's end.
            let (r, w) = tokio::io::split(*s);
            (Box::new(r), Box::new(w))
        }
    };
    let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(Cursor::new(leftover).chain(reader));
    Ok(Hijacked {
        reader: HijackReader(reader),
        writer: HijackWriter(writer),
        content_type,
        status,
    })
}
