//! The CRI endpoint of berthd: the daemon's pods service (`berth_daemon::pods`) behind
//! berth-cri's gRPC server on `--cri-socket` (default `<exec-root>/cri.sock`, mode 0660), and
//! the streaming server for Exec/Attach/PortForward on 127.0.0.1 (an ephemeral port).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_cri::grpc::{serve_unix, CriServer, CriSocket};
use berth_cri::streaming::StreamingServer;
use berth_cri::Backends;
use berth_daemon::pods::{PodConfig, PodService, Streams};
use berth_daemon::Daemon;

/// Where the CRI is served and how pods get their network.
#[derive(Debug, Clone)]
pub struct CriOptions {
    /// `None`: the CRI is off (`--cri-socket ""`).
    pub socket: Option<PathBuf>,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
}

impl CriOptions {
    /// From the flag and config values: an empty socket disables the CRI; bin dirs are
    /// colon-separated lists.
    pub fn resolve(
        socket: Option<String>,
        exec_root: &Path,
        conf_dir: Option<PathBuf>,
        bin_dirs: Vec<String>,
    ) -> Self {
        let socket = match socket {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(PathBuf::from(s)),
            None => Some(exec_root.join("cri.sock")),
        };
        let defaults = PodConfig::default();
        let bin_dirs: Vec<PathBuf> = bin_dirs
            .iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        CriOptions {
            socket,
            cni_conf_dir: conf_dir.unwrap_or(defaults.cni_conf_dir),
            cni_bin_dirs: if bin_dirs.is_empty() {
                defaults.cni_bin_dirs
            } else {
                bin_dirs
            },
        }
    }
}

/// The running CRI servers.
pub struct CriHandle {
    pub socket: PathBuf,
    pub server: tokio::task::JoinHandle<()>,
    streams: StreamingServer,
}

impl CriHandle {
    pub fn stop(&self) {
        self.streams.stop();
    }
}

/// Opens the pods service and serves the CRI until `shutdown`; `None` when it is off.
pub async fn start(
    daemon: Arc<Daemon>,
    opts: CriOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<CriHandle>> {
    let Some(socket) = opts.socket else {
        tracing::info!("CRI disabled (--cri-socket \"\")");
        return Ok(None);
    };
    // A live daemon answers on the socket; a stale file from a crash does not.
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        anyhow::bail!("another daemon is already serving {}", socket.display());
    }
    let svc = PodService::open(
        daemon,
        PodConfig {
            cni_conf_dir: opts.cni_conf_dir.clone(),
            cni_bin_dirs: opts.cni_bin_dirs.clone(),
        },
    )
    .await
    .map_err(anyhow::Error::msg)
    .context("opening the CRI pods service")?;
    let streams = StreamingServer::start(
        Arc::new(Streams(svc.clone())),
        "127.0.0.1:0".parse().expect("loopback address"),
    )
    .await
    .context("starting the CRI streaming server")?;
    let server = CriServer::new(Backends::from_one(svc), Some(streams.urls()));
    let bound = CriSocket::bind(&socket)
        .with_context(|| format!("binding the CRI socket {}", socket.display()))?;
    if let Ok(Some(group)) = nix::unistd::Group::from_name("berth") {
        let _ = nix::unistd::chown(&socket, None, Some(group.gid));
    }
    tracing::info!(
        cni_conf_dir = %opts.cni_conf_dir.display(),
        "CRI listening on {}",
        socket.display()
    );
    let task = tokio::spawn(async move {
        if let Err(e) = serve_unix(server, bound, shutdown).await {
            tracing::error!("CRI server: {e}");
        }
    });
    Ok(Some(CriHandle {
        socket,
        server: task,
        streams,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_and_cni_defaults() {
        let o = CriOptions::resolve(None, Path::new("/run/berth"), None, vec![]);
        assert_eq!(o.socket, Some(PathBuf::from("/run/berth/cri.sock")));
        assert_eq!(o.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(
            o.cni_bin_dirs,
            vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
        let o = CriOptions::resolve(Some(String::new()), Path::new("/r"), None, vec![]);
        assert_eq!(o.socket, None);
        let o = CriOptions::resolve(
            Some("/x/cri.sock".into()),
            Path::new("/r"),
            Some("/c".into()),
            vec!["/a:/b".into(), "/d".into()],
        );
        assert_eq!(o.socket, Some(PathBuf::from("/x/cri.sock")));
        assert_eq!(o.cni_bin_dirs.len(), 3);
    }
}
