//! ExecSync, and the streaming server's runtime (Exec, Attach, PortForward) with the checks
//! made before a streaming URL is handed out. Execs and attaches run through the daemon's
//! Docker-level sessions (the same code as `docker exec`/`docker attach`), whose stream is
//! demultiplexed here into the CRI's separate stdout and stderr.

use std::time::Duration;

use async_trait::async_trait;
use berth_api_types::exec as et;
use berth_cri::backend::StreamCheck;
use berth_cri::streaming::{connect_in_netns, pump, BoxRead, BoxWrite, StreamIo, StreamRuntime};
use berth_cri::types::{ContainerState, ExecSyncOutput};
use berth_cri::{CriError, CriResult};
use berth_services::{AttachOptions, ExecStarted, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::containers::cri_state;
use super::{cri_err, PodService};

/// Splits the daemon's multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian
/// length) into stdout and stderr; raw output with a TTY goes to stdout.
async fn demux(
    mut from: impl AsyncRead + Unpin,
    tty: bool,
    mut stdout: Option<BoxWrite>,
    mut stderr: Option<BoxWrite>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tty {
            if let Some(w) = stdout.as_mut() {
                let _ = w.write_all(&buf[..n]).await;
                let _ = w.flush().await;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while pending.len() >= 8 {
            let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + len {
                break;
            }
            let w = if pending[0] == 2 {
                stderr.as_mut()
            } else {
                stdout.as_mut()
            };
            if let Some(w) = w {
                let _ = w.write_all(&pending[8..8 + len]).await;
                let _ = w.flush().await;
            }
            pending.drain(..8 + len);
        }
    }
    for w in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = w.shutdown().await;
    }
}

/// An in-memory writer whose bytes are read back after the stream ends.
#[derive(Clone, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl AsyncWrite for Collect {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        crate::lock(&self.0).extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl Collect {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *crate::lock(&self.0))
    }
}

/// Runs a session with the client's streams: stdin in, output demultiplexed out.
async fn run_session(
    session: Session,
    stdin: Option<BoxRead>,
    stdout: Option<BoxWrite>,
    stderr: Option<BoxWrite>,
) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let tty = session.tty;
    let run = tokio::spawn((session.run)(Box::new(theirs)));
    let (rd, mut wr) = tokio::io::split(ours);
    let input = async move {
        if let Some(mut stdin) = stdin {
            let _ = tokio::io::copy(&mut stdin, &mut wr).await;
            let _ = wr.shutdown().await;
        }
        // Without stdin the write half stays open until the output ends.
        wr
    };
    let output = demux(rd, tty, stdout, stderr);
    let (wr, ()) = tokio::join!(input, output);
    drop(wr);
    let _ = run.await;
}

impl PodService {
    fn check_running(&self, id: &str) -> CriResult<()> {
        if cri_state(self.daemon.get(id).as_ref()) != ContainerState::Running {
            return Err(CriError::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        Ok(())
    }

    /// Creates and starts an exec; answers its id and session.
    async fn start_exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        stdin: bool,
        tty: bool,
    ) -> CriResult<(String, Session)> {
        self.check_running(id)?;
        let exec_id = self
            .daemon
            .exec_create(
                id,
                et::CreateRequest {
                    attach_stdin: stdin,
                    attach_stdout: true,
                    attach_stderr: !tty,
                    tty,
                    cmd: Some(cmd),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cri_err("container", id, e))?;
        match self
            .daemon
            .exec_start(&exec_id, et::StartRequest::default())
            .await
            .map_err(|e| cri_err("container", id, e))?
        {
            ExecStarted::Attached(s) => Ok((exec_id, s)),
            ExecStarted::Detached => Err(CriError::internal("exec started detached")),
        }
    }

    /// The exit code of a finished exec (its end is recorded just after the output ends).
    async fn exec_exit_code(&self, exec_id: &str) -> i32 {
        for _ in 0..100 {
            if let Ok(i) = self.daemon.exec_inspect(exec_id) {
                if !i.running {
                    if let Some(c) = i.exit_code {
                        return i32::try_from(c).unwrap_or(-1);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        -1
    }

    pub(crate) async fn exec_sync_in(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Option<Duration>,
    ) -> CriResult<ExecSyncOutput> {
        let (exec_id, session) = self.start_exec(id, cmd, false, false).await?;
        let (out, err) = (Collect::default(), Collect::default());
        let run = run_session(
            session,
            None,
            Some(Box::new(out.clone())),
            Some(Box::new(err.clone())),
        );
        match timeout {
            Some(t) => {
                if tokio::time::timeout(t, run).await.is_err() {
                    if let Ok(i) = self.daemon.exec_inspect(&exec_id) {
                        if let Some(pid) = i32::try_from(i.pid).ok().filter(|p| *p > 0) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    return Err(CriError::DeadlineExceeded(format!(
                        "command timed out after {}s",
                        t.as_secs_f64()
                    )));
                }
            }
            None => run.await,
        }
        Ok(ExecSyncOutput {
            stdout: out.take(),
            stderr: err.take(),
            exit_code: self.exec_exit_code(&exec_id).await,
        })
    }
}

#[async_trait]
impl StreamCheck for PodService {
    async fn check_container_running(&self, container_id: &str) -> CriResult<()> {
        let r = self.container_or_not_found(container_id)?;
        self.check_running(&r.id)
    }

    async fn check_pod_ready(&self, pod_sandbox_id: &str) -> CriResult<()> {
        let p = self.pod_or_not_found(pod_sandbox_id)?;
        if !p.ready {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                p.id
            )));
        }
        Ok(())
    }
}

/// The streaming server's runtime: a handle on the pods service.
pub struct Streams(pub std::sync::Arc<PodService>);

#[async_trait]
impl StreamRuntime for Streams {
    async fn exec(&self, container_id: &str, cmd: &[String], io: StreamIo) -> CriResult<i32> {
        let svc = &self.0;
        let r = svc.container_or_not_found(container_id)?;
        let (exec_id, session) = svc
            .start_exec(&r.id, cmd.to_vec(), io.stdin.is_some(), io.tty)
            .await?;
        if let Some(mut resize) = io.resize {
            let daemon = svc.daemon.clone();
            let exec_id = exec_id.clone();
            tokio::spawn(async move {
                while let Some(sz) = resize.recv().await {
                    let _ = daemon.exec_resize(&exec_id, sz.height, sz.width).await;
                }
            });
        }
        run_session(session, io.stdin, io.stdout, io.stderr).await;
        Ok(svc.exec_exit_code(&exec_id).await)
    }

    async fn attach(&self, container_id: &str, io: StreamIo) -> CriResult<()> {
        let svc = &self.0;
        let r = svc.container_or_not_found(container_id)?;
        svc.check_running(&r.id)?;
        let session = svc
            .daemon
            .container_attach(
                &r.id,
                AttachOptions {
                    stream: true,
                    logs: false,
                    stdin: io.stdin.is_some(),
                    stdout: io.stdout.is_some(),
                    stderr: io.stderr.is_some(),
                    detach_keys: None,
                },
            )
            .await
            .map_err(|e| cri_err("container", &r.id, e))?;
        if let Some(mut resize) = io.resize {
            let daemon = svc.daemon.clone();
            let id = r.id.clone();
            tokio::spawn(async move {
                while let Some(sz) = resize.recv().await {
                    let _ = daemon.container_resize(&id, sz.height, sz.width).await;
                }
            });
        }
        run_session(session, io.stdin, io.stdout, io.stderr).await;
        Ok(())
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: &str,
        port: u16,
        from_client: BoxRead,
        to_client: BoxWrite,
    ) -> CriResult<()> {
        let p = self.0.pod_or_not_found(pod_sandbox_id)?;
        let host_network = super::sandbox::ns_options(&p.config()).network == super::sandbox::NODE;
        let conn = match p.netns.as_deref().filter(|_| p.ready) {
            Some(netns) => connect_in_netns(netns, port).await,
            // As containerd: a pod on the node's network is reached on the node's loopback.
            None if p.ready && host_network => {
                tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).await
            }
            None => {
                return Err(CriError::FailedPrecondition(format!(
                    "pod sandbox {} has no network namespace",
                    p.id
                )))
            }
        }
        .map_err(|e| CriError::Internal(format!("connecting to port {port}: {e}")))?;
        pump(conn, from_client, to_client)
            .await
            .map_err(CriError::internal)
    }
}
