use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::frame::{FrameKind, FrameReader};
use crate::types::{ExecStarted, ExitStatus, Request, Response, StartError};

/// Errors of the shim client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached: the shim is gone (or not started yet).
    #[error("connect to shim socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("shim connection: {0}")]
    Io(#[from] io::Error),
    /// The shim sent something that does not follow the protocol.
    #[error("shim protocol: {0}")]
    Protocol(String),
    /// The shim refused the request; the message is meant for the user.
    #[error("{0}")]
    Shim(String),
    /// The process of an exec could not be started (Docker's message and the cause).
    #[error("{0}")]
    Start(StartError),
}

/// A streaming connection (`attach` or `exec`) after the shim accepted it.
///
/// Read frames from `reader` until a final frame (kind 3 with the JSON `ExitStatus`,
/// or kind 4 with an error message). Write raw stdin bytes to `writer`; `writer.shutdown()`
/// half-closes the connection, which the shim takes as stdin EOF.
pub struct ShimStream {
    pub reader: FrameReader<BufReader<OwnedReadHalf>>,
    pub writer: OwnedWriteHalf,
    /// Host pid of the exec process (`None` for attach).
    pub pid: Option<u32>,
}

/// Async client of one shim's control socket. Cheap: every call opens its own connection.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        ShimClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `{"op":"state"}`: status, pid, started_at and exit (if exited).
    pub async fn state(&self) -> Result<Response, ClientError> {
        self.call(&Request::State).await
    }

    /// Runs the user's command. The answer carries the process's `pid` and `started_at`, as
    /// `state` would (a shim of an earlier berth answered with neither).
    pub async fn start(&self) -> Result<Response, ClientError> {
        self.call(&Request::Start).await
    }

    /// Sends `signal` to the init process, or to every process of the container when `all`.
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), ClientError> {
        self.call(&Request::Kill { signal, all }).await.map(drop)
    }

    /// Resizes the container's tty (`exec_id` `None`) or an exec's tty.
    pub async fn resize(
        &self,
        exec_id: Option<&str>,
        height: u16,
        width: u16,
    ) -> Result<(), ClientError> {
        self.call(&Request::Resize {
            exec_id: exec_id.map(str::to_owned),
            height,
            width,
        })
        .await
        .map(drop)
    }

    /// Every pid (host pid namespace) in the container's cgroup.
    pub async fn pids(&self) -> Result<Vec<u32>, ClientError> {
        Ok(self.call(&Request::Pids).await?.pids.unwrap_or_default())
    }

    pub async fn pause(&self) -> Result<(), ClientError> {
        self.call(&Request::Pause).await.map(drop)
    }

    pub async fn resume(&self) -> Result<(), ClientError> {
        self.call(&Request::Resume).await.map(drop)
    }

    /// Blocks until the init process has exited. If the connection breaks first (the shim
    /// died), the caller should read `exit.json`.
    pub async fn wait(&self) -> Result<ExitStatus, ClientError> {
        self.call(&Request::Wait)
            .await?
            .exit
            .ok_or_else(|| ClientError::Protocol("wait answer without exit".into()))
    }

    /// Attaches to the container's live output (and stdin when `stdin` and the container
    /// was created with `open_stdin`). Returns once the shim has registered the client,
    /// so output produced after this returns is not missed.
    pub async fn attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<ShimStream, ClientError> {
        self.stream(&Request::Attach {
            stdin,
            stdout,
            stderr,
        })
        .await
    }

    /// Runs `process` (an OCI runtime-spec `Process`) in the container. Returns once the
    /// process runs; an error to start it comes back as `ClientError::Shim(message)`.
    pub async fn exec(
        &self,
        exec_id: &str,
        process: serde_json::Value,
        stdin: bool,
    ) -> Result<ShimStream, ClientError> {
        self.stream(&Request::Exec {
            exec_id: exec_id.to_owned(),
            process,
            stdin,
        })
        .await
    }

    async fn send(&self, req: &Request) -> Result<UnixStream, ClientError> {
        let mut conn = connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let mut line = serde_json::to_vec(req)
            .map_err(|e| ClientError::Protocol(format!("encode request: {e}")))?;
        line.push(b'\n');
        conn.write_all(&line).await?;
        Ok(conn)
    }

    /// Sends a plain request and reads its one-line answer.
    pub async fn call(&self, req: &Request) -> Result<Response, ClientError> {
        let conn = self.send(req).await?;
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(ClientError::Protocol(
                "shim closed the connection without answering".into(),
            ));
        }
        let resp: Response = serde_json::from_str(line.trim_end())
            .map_err(|e| ClientError::Protocol(format!("bad answer {line:?}: {e}")))?;
        if resp.ok {
            Ok(resp)
        } else {
            Err(ClientError::Shim(
                resp.error.unwrap_or_else(|| "unknown shim error".into()),
            ))
        }
    }

    async fn stream(&self, req: &Request) -> Result<ShimStream, ClientError> {
        let conn = self.send(req).await?;
        let (r, writer) = conn.into_split();
        let mut reader = FrameReader::new(BufReader::new(r));
        let first = reader.next_frame().await?.ok_or_else(|| {
            ClientError::Protocol("shim closed the stream before accepting it".into())
        })?;
        match first.kind {
            FrameKind::Started => {
                let started: ExecStarted = if first.payload.is_empty() {
                    ExecStarted::default()
                } else {
                    serde_json::from_slice(&first.payload)
                        .map_err(|e| ClientError::Protocol(format!("bad started frame: {e}")))?
                };
                Ok(ShimStream {
                    reader,
                    writer,
                    pid: started.pid,
                })
            }
            FrameKind::Error => Err(ClientError::Start(StartError::from_payload(&first.payload))),
            k => Err(ClientError::Protocol(format!(
                "expected a started frame, got {k:?}"
            ))),
        }
    }
}

/// Connects to a unix socket whose path may exceed `sun_path` (108 bytes): a long path is
/// reached through its directory's `/proc/self/fd/N` link, which the kernel resolves like any
/// other path, so only the short link goes into the socket address.
/// Connects to a shim's socket. Failures that say nothing about the shim are retried for up to
/// two seconds: the daemon briefly out of file descriptors, or the shim's accept backlog full
/// while it serves a burst (a daemon restart, when every container's monitor reconnects). A
/// missing socket or a refused connection means the shim is gone and is answered at once.
async fn connect(path: &Path) -> io::Result<UnixStream> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match connect_once(path).await {
            Err(e) if transient(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn connect_once(path: &Path) -> io::Result<UnixStream> {
    const SUN_PATH_MAX: usize = 100;
    if path.as_os_str().len() < SUN_PATH_MAX {
        return UnixStream::connect(path).await;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return UnixStream::connect(path).await;
    };
    let dir = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ))
    .join(name);
    let conn = UnixStream::connect(&short).await;
    drop(dir);
    conn
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    use super::*;
    use crate::frame::encode_frame;

    #[tokio::test]
    async fn call_and_stream_against_fake_shim() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("shim.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..3 {
                let (conn, _) = listener.accept().await.unwrap();
                let (r, mut w) = conn.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                let req: Request = serde_json::from_str(&line).unwrap();
                match req {
                    Request::Pids => {
                        w.write_all(b"{\"ok\":true,\"pids\":[1,2]}\n")
                            .await
                            .unwrap();
                    }
                    Request::Kill { .. } => {
                        w.write_all(b"{\"ok\":false,\"error\":\"container is not running\"}\n")
                            .await
                            .unwrap();
                    }
                    Request::Exec { stdin, .. } => {
                        assert!(stdin);
                        w.write_all(&encode_frame(FrameKind::Started, br#"{"pid":42}"#))
                            .await
                            .unwrap();
                        let mut input = Vec::new();
                        r.read_to_end(&mut input).await.unwrap();
                        w.write_all(&encode_frame(FrameKind::Stdout, &input))
                            .await
                            .unwrap();
                        w.write_all(&encode_frame(
                            FrameKind::Exit,
                            br#"{"exit_code":3,"finished_at":"t","oom_killed":false}"#,
                        ))
                        .await
                        .unwrap();
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
        let c = ShimClient::new(&sock);
        assert_eq!(c.pids().await.unwrap(), vec![1, 2]);
        match c.kill(9, false).await {
            Err(ClientError::Shim(m)) => assert_eq!(m, "container is not running"),
            other => panic!("unexpected {other:?}"),
        }
        let mut s = c
            .exec("e1", serde_json::json!({"args":["cat"]}), true)
            .await
            .unwrap();
        assert_eq!(s.pid, Some(42));
        s.writer.write_all(b"ping").await.unwrap();
        s.writer.shutdown().await.unwrap();
        let f = s.reader.next_frame().await.unwrap().unwrap();
        assert_eq!((f.kind, &f.payload[..]), (FrameKind::Stdout, &b"ping"[..]));
        let f = s.reader.next_frame().await.unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Exit);
        let e: ExitStatus = serde_json::from_slice(&f.payload).unwrap();
        assert_eq!(e.exit_code, 3);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn connect_error_names_the_socket() {
        let c = ShimClient::new("/nonexistent/shim.sock");
        match c.state().await {
            Err(e @ ClientError::Connect { .. }) => {
                assert!(e.to_string().contains("/nonexistent/shim.sock"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
