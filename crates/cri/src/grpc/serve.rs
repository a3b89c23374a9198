//! Serving both CRI services on a unix socket.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use super::CriServer;

/// The CRI socket's file mode: owner and group, as the Engine API socket.
pub const SOCKET_MODE: u32 = 0o660;

/// A bound CRI socket (the stale file of an earlier run is replaced).
pub struct CriSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl CriSocket {
    /// Binds `path` (creating its directory) with mode 0660.
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        Ok(CriSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serves RuntimeService and ImageService on `socket` until `shutdown` resolves, then removes
/// the socket file.
pub async fn serve_unix(
    server: CriServer,
    socket: CriSocket,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let CriSocket { path, listener } = socket;
    let result = tonic::transport::Server::builder()
        .add_service(server.runtime_service())
        .add_service(server.image_service())
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    let _ = std::fs::remove_file(&path);
    result
}
