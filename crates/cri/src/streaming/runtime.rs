//! What the daemon provides to the streaming server: running an exec, attaching, and
//! connecting to a port inside a pod, with the client's streams.

use std::io;
use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::error::CriResult;

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A terminal size from the client's resize stream (`{"Width":80,"Height":24}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The client's streams for an exec or attach. Absent ones were not asked for. The runtime
/// shuts the writers down (or drops them) when the output ends; stdin ends when the client
/// closes it. With a TTY there is no stderr and `resize` carries the window sizes.
pub struct StreamIo {
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    pub tty: bool,
    pub resize: Option<mpsc::Receiver<TermSize>>,
}

/// The daemon's side of Exec, Attach and PortForward.
#[async_trait]
pub trait StreamRuntime: Send + Sync + 'static {
    /// Runs `cmd` in the container with `io` and answers its exit code.
    async fn exec(&self, container_id: &str, cmd: &[String], io: StreamIo) -> CriResult<i32>;
    /// Attaches `io` to the container's main process until it exits or the client leaves.
    async fn attach(&self, container_id: &str, io: StreamIo) -> CriResult<()>;
    /// Connects to `port` on the pod's loopback (inside its network namespace) and copies
    /// both ways until either side ends. [`connect_in_netns`] does the connecting.
    async fn port_forward(
        &self,
        pod_sandbox_id: &str,
        port: u16,
        from_client: BoxRead,
        to_client: BoxWrite,
    ) -> CriResult<()>;
}

/// Connects to `127.0.0.1:port` from inside the network namespace at `netns` (a bind-mounted
/// `/run/netns/...` or `/proc/<pid>/ns/net`). The socket is created on a short-lived thread
/// that entered the namespace (setns changes only the calling thread); a socket keeps the
/// namespace it was made in, so it is usable from any thread afterwards.
pub async fn connect_in_netns(netns: &Path, port: u16) -> io::Result<tokio::net::TcpStream> {
    let netns = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Not a pool thread: the namespace switch must not outlive this one connect.
    std::thread::spawn(move || {
        let connect = || -> io::Result<std::net::TcpStream> {
            let ns = std::fs::File::open(&netns)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("setns {}: {e}", netns.display())))?;
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                std::time::Duration::from_secs(10),
            )
        };
        let _ = tx.send(connect());
    });
    let std_stream = rx
        .await
        .map_err(|_| io::Error::other("netns connect thread died"))??;
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
}

/// Copies between the client's streams and a connection until both directions end.
pub async fn pump<S>(conn: S, mut from_client: BoxRead, mut to_client: BoxWrite) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let up = async {
        tokio::io::copy(&mut from_client, &mut wr).await?;
        wr.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut rd, &mut to_client).await?;
        to_client.shutdown().await
    };
    let (a, b) = tokio::join!(up, down);
    a.and(b)
}
