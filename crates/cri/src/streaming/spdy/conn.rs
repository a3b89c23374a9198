//! A SPDY/3.1 session over one upgraded connection: a reader task dispatches frames to
//! streams, a writer task owns the socket's write half and the header compressor (so header
//! blocks are compressed in the order they are sent). The server side accepts the streams the
//! client opens (answering each SYN_STREAM with a SYN_REPLY, as Kubernetes' server does); the
//! client side (tests) opens them.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::io::StreamReader;
use tokio_util::sync::PollSender;

use super::frame::{Frame, Headers, FLAG_FIN, RST_CANCEL, RST_REFUSED_STREAM};
use super::zlib::{Deflater, Inflater};

/// The largest DATA frame we send.
const MAX_DATA: usize = 32 * 1024;

enum Cmd {
    Frame(Frame),
    Shutdown,
}

struct Entry {
    data: Option<mpsc::UnboundedSender<Bytes>>,
    reply: Option<oneshot::Sender<()>>,
    reset: Arc<AtomicBool>,
}

#[derive(Default)]
struct Shared {
    streams: Mutex<HashMap<u32, Entry>>,
    last_accepted: AtomicU32,
}

impl Shared {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        // A poisoned map only means a task panicked mid-update; the map itself stays usable.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The receiving half of a stream: EOF when the peer half-closes (FIN) or resets it.
pub type StreamRead = StreamReader<
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = io::Result<Bytes>> + Send + Sync>>,
    Bytes,
>;

/// One SPDY stream.
pub struct SpdyStream {
    pub id: u32,
    pub headers: Headers,
    pub reader: StreamRead,
    pub writer: StreamWrite,
}

impl SpdyStream {
    /// The value of one of the stream's headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::frame::header(&self.headers, name)
    }
}

/// The sending half of a stream: DATA frames; shutdown sends the FIN.
pub struct StreamWrite {
    id: u32,
    tx: PollSender<Cmd>,
    reset: Arc<AtomicBool>,
    fin_sent: bool,
}

impl AsyncWrite for StreamWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.reset.load(Ordering::Acquire) || self.fin_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let n = buf.len().min(MAX_DATA);
        let frame = Frame::Data {
            stream_id: self.id,
            flags: 0,
            data: buf[..n].to_vec(),
        };
        self.tx
            .send_item(Cmd::Frame(frame))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames leave in order through the writer task; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.fin_sent || self.reset.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let frame = Frame::Data {
            stream_id: self.id,
            flags: FLAG_FIN,
            data: Vec::new(),
        };
        self.tx
            .send_item(Cmd::Frame(frame))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        self.fin_sent = true;
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamWrite {
    /// A stream dropped without shutdown still ends with a FIN, so the peer's reader sees EOF
    /// (best effort: skipped if the writer queue is full or gone).
    fn drop(&mut self) {
        if self.fin_sent || self.reset.load(Ordering::Acquire) {
            return;
        }
        if let Some(tx) = self.tx.get_ref() {
            let _ = tx.try_send(Cmd::Frame(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Vec::new(),
            }));
        }
    }
}

/// A SPDY session. Dropping it does not end the connection; [`Session::close`] does.
#[derive(Clone)]
pub struct Session {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU32>,
}

impl Session {
    /// Starts the session's tasks on `io`. `server` picks the stream id parity (clients open odd
    /// ids) and whether incoming streams are answered. Answers the session and the streams the
    /// peer opens.
    pub fn start<IO>(io: IO, server: bool) -> (Session, mpsc::Receiver<SpdyStream>)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel::<Cmd>(64);
        let (accept_tx, accept_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared::default());
        let session = Session {
            tx: tx.clone(),
            shared: shared.clone(),
            next_id: Arc::new(AtomicU32::new(if server { 2 } else { 1 })),
        };
        tokio::spawn(write_loop(wr, rx));
        tokio::spawn(read_loop(rd, tx, shared, accept_tx, server));
        (session, accept_rx)
    }

    fn new_stream(
        &self,
        id: u32,
        headers: Headers,
        reset: Arc<AtomicBool>,
        data: mpsc::UnboundedReceiver<Bytes>,
    ) -> SpdyStream {
        let body: Pin<Box<dyn tokio_stream::Stream<Item = io::Result<Bytes>> + Send + Sync>> =
            Box::pin(UnboundedReceiverStream::new(data).map(Ok));
        SpdyStream {
            id,
            headers,
            reader: StreamReader::new(body),
            writer: StreamWrite {
                id,
                tx: PollSender::new(self.tx.clone()),
                reset,
                fin_sent: false,
            },
        }
    }

    /// Opens a stream and waits for the peer's SYN_REPLY. `fin` half-closes our side at once
    /// (as clients open the error stream).
    pub async fn open_stream(&self, headers: Headers, fin: bool) -> io::Result<SpdyStream> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        let reset = Arc::new(AtomicBool::new(false));
        self.shared.streams().insert(
            id,
            Entry {
                data: Some(data_tx),
                reply: Some(reply_tx),
                reset: reset.clone(),
            },
        );
        let frame = Frame::SynStream {
            stream_id: id,
            associated: 0,
            priority: 0,
            flags: if fin { FLAG_FIN } else { 0 },
            headers: headers.clone(),
        };
        self.tx
            .send(Cmd::Frame(frame))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        reply_rx
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionReset, "spdy stream refused"))?;
        let mut s = self.new_stream(id, headers, reset, data_rx);
        s.writer.fin_sent = fin;
        Ok(s)
    }

    /// Resets a stream (RST_STREAM CANCEL).
    pub async fn reset(&self, id: u32) {
        if let Some(e) = self.shared.streams().remove(&id) {
            e.reset.store(true, Ordering::Release);
        }
        let _ = self
            .tx
            .send(Cmd::Frame(Frame::RstStream {
                stream_id: id,
                status: RST_CANCEL,
            }))
            .await;
    }

    /// Sends GOAWAY after everything queued so far and closes the connection.
    pub async fn close(&self) {
        let last = self.shared.last_accepted.load(Ordering::Relaxed);
        let _ = self
            .tx
            .send(Cmd::Frame(Frame::GoAway {
                last_stream_id: last,
                status: 0,
            }))
            .await;
        let _ = self.tx.send(Cmd::Shutdown).await;
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Cmd>) {
    let mut z = Deflater::default();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Frame(f) => {
                if w.write_all(&f.encode(&mut z)).await.is_err() {
                    break;
                }
                // Flush when nothing else is queued, so small writes go out promptly.
                if rx.is_empty() && w.flush().await.is_err() {
                    break;
                }
            }
            Cmd::Shutdown => break,
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    accept: mpsc::Sender<SpdyStream>,
    server: bool,
) {
    let mut z = Inflater::default();
    let session = Session {
        tx: tx.clone(),
        shared: shared.clone(),
        next_id: Arc::new(AtomicU32::new(0)),
    };
    loop {
        let frame = match Frame::read(&mut r, &mut z).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("spdy session ends: {e}");
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                // Streams the peer opens carry the peer's parity.
                if stream_id == 0
                    || (stream_id % 2 == 1) != server
                    || shared.streams().contains_key(&stream_id)
                {
                    let _ = tx
                        .send(Cmd::Frame(Frame::RstStream {
                            stream_id,
                            status: super::frame::RST_PROTOCOL_ERROR,
                        }))
                        .await;
                    continue;
                }
                let (data_tx, data_rx) = mpsc::unbounded_channel();
                let reset = Arc::new(AtomicBool::new(false));
                let fin = flags & FLAG_FIN != 0;
                shared.streams().insert(
                    stream_id,
                    Entry {
                        data: (!fin).then_some(data_tx),
                        reply: None,
                        reset: reset.clone(),
                    },
                );
                shared.last_accepted.store(stream_id, Ordering::Relaxed);
                let stream = session.new_stream(stream_id, headers, reset, data_rx);
                let reply = Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: Vec::new(),
                };
                if tx.send(Cmd::Frame(reply)).await.is_err() {
                    break;
                }
                if accept.send(stream).await.is_err() {
                    shared.streams().remove(&stream_id);
                    let _ = tx
                        .send(Cmd::Frame(Frame::RstStream {
                            stream_id,
                            status: RST_REFUSED_STREAM,
                        }))
                        .await;
                }
            }
            Frame::SynReply {
                stream_id, flags, ..
            } => {
                let mut streams = shared.streams();
                if let Some(e) = streams.get_mut(&stream_id) {
                    if let Some(r) = e.reply.take() {
                        let _ = r.send(());
                    }
                    if flags & FLAG_FIN != 0 {
                        e.data = None;
                    }
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let mut streams = shared.streams();
                if let Some(e) = streams.get_mut(&stream_id) {
                    if !data.is_empty() {
                        if let Some(d) = &e.data {
                            let _ = d.send(Bytes::from(data));
                        }
                    }
                    if flags & FLAG_FIN != 0 {
                        e.data = None;
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                if let Some(e) = shared.streams().remove(&stream_id) {
                    e.reset.store(true, Ordering::Release);
                }
            }
            Frame::Ping(id) => {
                // Answer the peer's pings (theirs have the other parity than ours).
                if (id % 2 == 1) == server {
                    let _ = tx.send(Cmd::Frame(Frame::Ping(id))).await;
                }
            }
            Frame::GoAway { .. } => {
                // No new streams will come; existing ones run on until the connection ends.
            }
            Frame::Headers { .. }
            | Frame::Settings
            | Frame::WindowUpdate { .. }
            | Frame::Unknown(_) => {}
        }
    }
    // The connection is gone: every reader sees EOF, every writer fails.
    for (_, e) in shared.streams().drain() {
        e.reset.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn h(k: &str, v: &str) -> Headers {
        vec![(k.to_string(), v.to_string())]
    }

    #[tokio::test]
    async fn streams_both_ways_with_half_close() {
        let (a, b) = tokio::io::duplex(1024);
        let (server, mut incoming) = Session::start(a, true);
        let (client, _none) = Session::start(b, false);

        let echo = tokio::spawn(async move {
            let mut s = incoming.recv().await.unwrap();
            assert_eq!(s.header("streamtype"), Some("stdin"));
            let mut got = Vec::new();
            s.reader.read_to_end(&mut got).await.unwrap();
            let mut e = incoming.recv().await.unwrap();
            assert_eq!(e.header("streamtype"), Some("error"));
            // The error stream was opened half-closed: its reader ends at once.
            let mut nothing = Vec::new();
            e.reader.read_to_end(&mut nothing).await.unwrap();
            assert!(nothing.is_empty());
            s.writer.write_all(&got).await.unwrap();
            s.writer.write_all(&vec![7u8; 100_000]).await.unwrap();
            s.writer.shutdown().await.unwrap();
            server.close().await;
        });

        let mut s = client
            .open_stream(h("streamtype", "stdin"), false)
            .await
            .unwrap();
        assert_eq!(s.id, 1);
        let e = client
            .open_stream(h("streamtype", "error"), true)
            .await
            .unwrap();
        assert_eq!(e.id, 3);
        s.writer.write_all(b"ping").await.unwrap();
        s.writer.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.reader.read_to_end(&mut back).await.unwrap();
        assert_eq!(&back[..4], b"ping");
        assert_eq!(back.len(), 4 + 100_000);
        echo.await.unwrap();
    }

    #[tokio::test]
    async fn reset_and_connection_loss_end_streams() {
        let (a, b) = tokio::io::duplex(1024);
        let (_server, mut incoming) = Session::start(a, true);
        let (client, _) = Session::start(b, false);
        let mut s = client
            .open_stream(h("streamtype", "data"), false)
            .await
            .unwrap();
        let mut srv = incoming.recv().await.unwrap();
        client.reset(s.id).await;
        // The server's writer fails once the reset has arrived.
        let mut failed = false;
        for _ in 0..100 {
            if srv.writer.write_all(b"x").await.is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(failed);
        assert!(s.writer.write_all(b"x").await.is_err());
    }
}
