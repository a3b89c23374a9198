//! Exec and attach over the remotecommand protocols: SPDY (`v4.channel.k8s.io`: one stream per
//! `streamType` header — error, stdin, stdout, stderr, resize) and WebSocket (channels 0–4).
//! When the command ends the error stream gets a `metav1.Status` with its exit code and the
//! connection closes.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::runtime::{BoxRead, BoxWrite, StreamIo, StreamRuntime, TermSize};
use super::spdy::conn::{Session, SpdyStream};
use super::websocket::Channels;
use super::{status, StreamRequest};
use crate::error::CriError;

/// How long the client has to open its streams after the upgrade (the kubelet's default).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What an exec or attach asked for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wanted {
    pub fn of(req: &StreamRequest) -> Option<Wanted> {
        match req {
            StreamRequest::Exec(e) => Some(Wanted {
                stdin: e.stdin,
                stdout: e.stdout,
                stderr: e.stderr && !e.tty,
                tty: e.tty,
            }),
            StreamRequest::Attach(a) => Some(Wanted {
                stdin: a.stdin,
                stdout: a.stdout,
                stderr: a.stderr && !a.tty,
                tty: a.tty,
            }),
            StreamRequest::PortForward(_) => None,
        }
    }

    /// The SPDY streams to wait for: error always, resize with a TTY.
    fn expected(&self) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr)
            + usize::from(self.tty)
    }
}

/// Feeds resize messages into a channel: a SPDY resize stream is a sequence of JSON objects.
fn spawn_resize_reader(mut r: impl AsyncRead + Unpin + Send + 'static) -> mpsc::Receiver<TermSize> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let n = match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut de = serde_json::Deserializer::from_slice(&buf).into_iter::<TermSize>();
            let mut used = 0;
            while let Some(Ok(size)) = de.next() {
                used = de.byte_offset();
                if tx.send(size).await.is_err() {
                    return;
                }
            }
            buf.drain(..used);
        }
    });
    rx
}

/// Runs the request and answers the status object for the error stream.
async fn run(rt: &Arc<dyn StreamRuntime>, req: &StreamRequest, io: StreamIo) -> Vec<u8> {
    match req {
        StreamRequest::Exec(e) => match rt.exec(&e.container_id, &e.cmd, io).await {
            Ok(0) => status::success(),
            Ok(code) => status::exit_code(&e.cmd, code),
            Err(err) => status::failure(&err),
        },
        StreamRequest::Attach(a) => match rt.attach(&a.container_id, io).await {
            Ok(()) => status::success(),
            Err(err) => status::failure(&err),
        },
        StreamRequest::PortForward(_) => {
            status::failure(&CriError::internal("not a remotecommand"))
        }
    }
}

/// Serves an exec or attach on an upgraded SPDY session.
pub async fn serve_spdy(
    rt: Arc<dyn StreamRuntime>,
    req: StreamRequest,
    session: Session,
    mut incoming: mpsc::Receiver<SpdyStream>,
) {
    let Some(want) = Wanted::of(&req) else { return };
    let mut streams: Vec<SpdyStream> = Vec::new();
    let gathered = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while streams.len() < want.expected() {
            match incoming.recv().await {
                Some(s) => streams.push(s),
                None => return false,
            }
        }
        true
    })
    .await;
    if !matches!(gathered, Ok(true)) {
        tracing::debug!("remotecommand: client did not open its streams");
        session.close().await;
        return;
    }
    let mut take = |ty: &str| {
        let i = streams
            .iter()
            .position(|s| s.header("streamtype") == Some(ty))?;
        Some(streams.swap_remove(i))
    };
    let Some(error) = take("error") else {
        session.close().await;
        return;
    };
    let stdin = take("stdin").map(|s| Box::new(s.reader) as BoxRead);
    let stdout = take("stdout").map(|s| Box::new(s.writer) as BoxWrite);
    let stderr = take("stderr").map(|s| Box::new(s.writer) as BoxWrite);
    let resize = take("resize").map(|s| spawn_resize_reader(s.reader));
    let io = StreamIo {
        stdin: want.stdin.then_some(stdin).flatten(),
        stdout,
        stderr,
        tty: want.tty,
        resize,
    };
    let status = run(&rt, &req, io).await;
    let mut w = error.writer;
    let _ = w.write_all(&status).await;
    let _ = w.shutdown().await;
    session.close().await;
}

/// Serves an exec or attach on a WebSocket of `v4.channel.k8s.io` or `v5.channel.k8s.io`.
pub async fn serve_websocket(rt: Arc<dyn StreamRuntime>, req: StreamRequest, mut ch: Channels) {
    let Some(want) = Wanted::of(&req) else { return };
    let resize = if want.tty {
        ch.reader(4).map(spawn_resize_reader)
    } else {
        None
    };
    let io = StreamIo {
        stdin: if want.stdin {
            ch.reader(0).map(|r| Box::new(r) as BoxRead)
        } else {
            None
        },
        stdout: want.stdout.then(|| Box::new(ch.writer(1)) as BoxWrite),
        stderr: want.stderr.then(|| Box::new(ch.writer(2)) as BoxWrite),
        tty: want.tty,
        resize,
    };
    let status = run(&rt, &req, io).await;
    let _ = ch.send(3, status).await;
    ch.close().await;
}
