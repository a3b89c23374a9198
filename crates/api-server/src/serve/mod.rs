//! The accept loop every API listener runs (unix socket, TCP, TCP with TLS), over hyper.
//!
//! What it adds to plain `axum::serve`, so that abusive or broken clients cannot take the API
//! down (see [`Limits`]):
//! - a header-read timeout: a request head must be complete within it of its first byte (a
//!   slowloris client trickling header bytes is cut off);
//! - an idle timeout for keep-alive connections between requests;
//! - a body-progress timeout for request bodies, except the stdin streams of attach and exec;
//! - a cap on open connections below the process's file-descriptor limit: past it the
//!   connection that has waited longest for a request is closed, and past a little more the
//!   listener stops accepting until one closes, so the daemon's own descriptors (shim sockets,
//!   logs, layers) never run out.
//!
//! Requests in flight are never cut: a streaming response (events, `logs -f`, `wait`, pull,
//! push, build and load progress, stats) keeps its connection busy for as long as it streams,
//! and a hijacked attach or exec connection belongs to its session.

mod body;
mod conns;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::ServiceExt;

pub use conns::Connections;

use body::{GuardedBody, ProgressBody};
use conns::{ConnState, RequestGuard, TrackedIo};

/// How long clients may take, and how many connections they may hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// From the first byte of a request head to its end (Docker answers a slowloris client
    /// after `ReadHeaderTimeout`; ours is shorter).
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight and no byte of the next one.
    pub idle_timeout: Duration,
    /// The longest pause in a request body (attach and exec stdin excepted).
    pub body_timeout: Duration,
    /// Open connections of all listeners together before the quietest idle one is closed.
    pub max_connections: usize,
}

/// Defaults: a 30 s header timeout, keep-alive connections closed after two idle minutes
/// (longer than the 90 s after which Go's and Python's clients drop theirs, so the client
/// closes first), one minute for a stalled request body.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

impl Limits {
    /// The default timeouts, with the connection cap derived from the process's open-file
    /// limit `nofile` (the soft `RLIMIT_NOFILE`).
    pub fn for_fd_limit(nofile: u64) -> Limits {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: max_connections_for(nofile),
        }
    }
}

/// The connections allowed under an open-file limit: a quarter of it (at least 128, at most
/// 4096 descriptors) stays reserved for the daemon's own files, sockets and pipes — the
/// listeners, shim connections, log files, layer files, the database.
pub fn max_connections_for(nofile: u64) -> usize {
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let reserve = (nofile / 4).clamp(128, 4096);
    nofile.saturating_sub(reserve).max(16)
}

/// A listening socket connections are accepted from.
pub trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        // Small request/response exchanges (and attach keystrokes) should not wait for Nagle.
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// A poisoned lock still holds consistent data here (plain maps and counters).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Out of file descriptors (per process or system-wide).
fn fds_exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` resolves, counting its
/// connections in `conns`, which all of the daemon's listeners share.
pub async fn serve<L: Accept>(
    listener: L,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    conns: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection task holds a clone: the strong count says how many still run.
    let running = Arc::new(());
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    'accept: loop {
        // At the hard cap, accept nothing until a connection closes.
        while conns.count() >= conns.hard_cap() {
            conns.evict_one();
            tokio::select! {
                _ = &mut shutdown => break 'accept,
                _ = conns.freed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept_stream() => a,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                if fds_exhausted(&e) {
                    // Some other part of the daemon used up its reserve: free a descriptor.
                    conns.evict_one();
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(
                            open = conns.count(),
                            "accepting an API connection: {e}; closing idle connections"
                        );
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    tracing::debug!("accepting an API connection: {e}");
                }
                continue;
            }
        };
        let state = conns.register();
        let io = TrackedIo::new(stream, state.clone(), conns.clone());
        let task = Connection {
            state,
            conns: conns.clone(),
            app: app.clone(),
            stop: stop_rx.clone(),
            _running: running.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => task.run(io).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        task.conns
                            .limits()
                            .header_read_timeout
                            .min(Duration::from_secs(10)),
                        acceptor.accept(io),
                    );
                    let state = task.state.clone();
                    let done = tokio::select! {
                        r = handshake => Some(r),
                        _ = state.close.notified() => None,
                    };
                    match done {
                        Some(Ok(Ok(tls))) => task.run(tls).await,
                        Some(Ok(Err(e))) => tracing::debug!("TLS handshake failed: {e}"),
                        Some(Err(_)) => tracing::debug!("TLS handshake timed out"),
                        None => {}
                    }
                }
            }
        });
    }
    // Stop: connections finish the request they serve and close; idle ones close now.
    let _ = stop_tx.send(true);
    conns.close_waiting();
    while Arc::strong_count(&running) > 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One accepted connection's task.
struct Connection {
    state: Arc<ConnState>,
    conns: Arc<Connections>,
    app: Router,
    stop: watch::Receiver<bool>,
    _running: Arc<()>,
}

/// Attach and exec start read the client's stdin from the request body for as long as the
/// session lasts (without `Upgrade: tcp`): no progress timeout there.
fn streams_stdin(path: &str) -> bool {
    let (_, path) = crate::version::split_version(path);
    (path.starts_with("/containers/") && path.ends_with("/attach"))
        || (path.starts_with("/exec/") && path.ends_with("/start"))
}

impl Connection {
    async fn run<S>(mut self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.conns.limits().clone();
        let (state, conns, app) = (self.state.clone(), self.conns.clone(), self.app.clone());
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = RequestGuard::begin(&state, &conns);
            let state = state.clone();
            let app = app.clone();
            let body_timeout = limits.body_timeout;
            async move {
                let req = if streams_stdin(req.uri().path()) {
                    req.map(Body::new)
                } else {
                    req.map(|b| Body::new(ProgressBody::new(b, body_timeout)))
                };
                let resp = match app.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    state.set_hijacked();
                }
                Ok::<_, Infallible>(resp.map(|b| Body::new(GuardedBody::new(b, guard))))
            }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let limits = self.conns.limits().clone();
        let mut stopping = false;
        loop {
            let wait = self
                .state
                .deadline(&limits)
                .map(|d| Duration::from_millis(d.saturating_sub(self.conns.now_ms())));
            if wait == Some(Duration::ZERO) {
                tracing::debug!("closing an API connection that sent no complete request in time");
                return;
            }
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("API connection: {e}");
                    }
                    return;
                }
                _ = self.state.close.notified() => return,
                _ = self.state.wake.notified() => {}
                _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_daemon() {
        assert_eq!(max_connections_for(1024), 768);
        assert_eq!(max_connections_for(256), 128);
        assert_eq!(max_connections_for(1 << 20), (1 << 20) - 4096);
        assert_eq!(max_connections_for(100), 16);
    }

    #[test]
    fn stdin_streams_are_recognised() {
        assert!(streams_stdin("/containers/abc/attach"));
        assert!(streams_stdin("/v1.41/exec/abc/start"));
        assert!(!streams_stdin("/containers/create"));
        assert!(!streams_stdin("/build"));
        assert!(!streams_stdin("/containers/abc/start"));
    }
}
