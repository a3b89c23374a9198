//! The API on TCP (`-H tcp://host:port`): plain, with TLS (`--tls`), or with TLS and client
//! certificates signed by a given CA (`--tlsverify`), as dockerd serves it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Backend;

/// The files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// With `Some`: clients must present a certificate signed by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// Loads `files` into a server configuration; every failure names the file.
pub fn tls_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let read = |what: &str, p: &PathBuf| {
        std::fs::read(p).map_err(|e| format!("reading the TLS {what} {}: {e}", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read("certificate", &files.cert)?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("parsing {}: {e}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key", &files.key)?)
        .map_err(|e| format!("parsing the key {}: {e}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read("CA certificate", ca)?) {
                let c = c.map_err(|e| format!("parsing {}: {e}", ca.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("CA certificate in {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("no CA certificate in {}", ca.display()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("client verification with {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "TLS certificate {} and key {}: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves the API on `listener` until `shutdown` resolves, over TLS when `tls` is given.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    backend: Arc<dyn Backend>,
    versions: crate::Versions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(
            listener,
            crate::version::wrap(crate::router(backend), versions),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let service = hyper_util::service::TowerToHyperService::new(crate::version::app(
        crate::router(backend),
        versions,
    ));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: do not spin.
                    tracing::warn!("accepting an API connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}
