//! Kubernetes' channel protocol over WebSocket (`v4.channel.k8s.io`, `v5.channel.k8s.io`):
//! every binary message starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error,
//! 4 resize for remotecommand; 2n data and 2n+1 error of the n-th port for portforward).
//! v5 adds a close signal: a message `[255, channel]` ends that channel's input.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::io::StreamReader;
use tokio_util::sync::PollSender;

pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// The v5 close signal's channel byte.
pub const CLOSE_SIGNAL: u8 = 255;

pub type ChannelRead =
    StreamReader<Pin<Box<dyn tokio_stream::Stream<Item = io::Result<Bytes>> + Send + Sync>>, Bytes>;

enum Out {
    Data(u8, Vec<u8>),
    Close,
}

/// A channel's writer: one message per write.
pub struct ChannelWrite {
    channel: u8,
    tx: PollSender<Out>,
}

impl AsyncWrite for ChannelWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.tx.poll_reserve(cx)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let n = buf.len().min(32 * 1024);
        let ch = self.channel;
        self.tx
            .send_item(Out::Data(ch, buf[..n].to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The channels of one connection.
pub struct Channels {
    readers: Vec<Option<ChannelRead>>,
    tx: mpsc::Sender<Out>,
    done: tokio::sync::watch::Receiver<bool>,
}

impl Channels {
    /// Starts reading and writing `ws` with `count` channels; `close_signal` is true for v5.
    pub fn start<S>(ws: WebSocketStream<S>, count: u8, close_signal: bool) -> Channels
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut source) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Out>(64);
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let mut senders = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..count {
            let (s, r) = mpsc::unbounded_channel::<Bytes>();
            senders.push(Some(s));
            let body: Pin<Box<dyn tokio_stream::Stream<Item = io::Result<Bytes>> + Send + Sync>> =
                Box::pin(UnboundedReceiverStream::new(r).map(Ok));
            readers.push(Some(StreamReader::new(body)));
        }
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let msg = match out {
                    Out::Data(ch, data) => {
                        let mut m = Vec::with_capacity(data.len() + 1);
                        m.push(ch);
                        m.extend_from_slice(&data);
                        Message::Binary(m.into())
                    }
                    Out::Close => {
                        let _ = sink.close().await;
                        break;
                    }
                };
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(Ok(msg)) = source.next().await {
                let data = match msg {
                    Message::Binary(d) => d,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Some((&ch, rest)) = data.split_first() else {
                    continue;
                };
                if close_signal && ch == CLOSE_SIGNAL {
                    if let Some(s) = rest.first().and_then(|c| senders.get_mut(*c as usize)) {
                        *s = None;
                    }
                    continue;
                }
                if let Some(Some(s)) = senders.get(ch as usize) {
                    if !rest.is_empty() {
                        let _ = s.send(Bytes::copy_from_slice(rest));
                    }
                }
            }
            let _ = done_tx.send(true);
        });
        Channels { readers, tx, done }
    }

    pub fn reader(&mut self, channel: u8) -> Option<ChannelRead> {
        self.readers.get_mut(channel as usize)?.take()
    }

    pub fn writer(&self, channel: u8) -> ChannelWrite {
        ChannelWrite {
            channel,
            tx: PollSender::new(self.tx.clone()),
        }
    }

    /// Sends one message on `channel` (as a whole, unlike a writer's splitting).
    pub async fn send(&self, channel: u8, data: Vec<u8>) -> io::Result<()> {
        self.tx
            .send(Out::Data(channel, data))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    /// Closes the WebSocket after everything queued.
    pub async fn close(&self) {
        let _ = self.tx.send(Out::Close).await;
    }

    /// Resolves when the client's side of the connection has ended.
    pub async fn client_gone(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}
