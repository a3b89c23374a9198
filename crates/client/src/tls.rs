//! TLS to a daemon on `tcp://` (`--tls`, `--tlsverify`), as the docker CLI does it.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::ClientError;

/// What `--tls`/`--tlsverify` and the certificate flags ask for.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Verify the daemon's certificate against `ca` (`--tlsverify`); without it the
    /// connection is encrypted but the daemon is not authenticated (`--tls`).
    pub verify: bool,
    /// The CA the daemon's certificate must be signed by.
    pub ca: Option<PathBuf>,
    /// The client certificate and key presented to a daemon that asks for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn bad(what: String) -> ClientError {
    ClientError::Tls(what)
}

/// The rustls configuration for `o`.
pub(crate) fn client_config(o: &TlsOptions) -> Result<Arc<ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let read = |what: &str, p: &PathBuf| {
        std::fs::read(p).map_err(|e| bad(format!("reading the {what} {}: {e}", p.display())))
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    let builder = if o.verify {
        let ca =
            o.ca.as_ref()
                .ok_or_else(|| bad("--tlsverify needs a CA certificate (--tlscacert)".into()))?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&read("CA certificate", ca)?) {
            let c = c.map_err(|e| bad(format!("parsing {}: {e}", ca.display())))?;
            roots
                .add(c)
                .map_err(|e| bad(format!("CA certificate in {}: {e}", ca.display())))?;
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| bad(format!("CA certificates in {}: {e}", ca.display())))?;
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
    };
    let cfg = match (&o.cert, &o.key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read("client certificate", cert)?)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(format!("parsing {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&read("client key", key)?)
                .map_err(|e| bad(format!("parsing {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(format!("client certificate {}: {e}", cert.display())))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// `--tls` without `--tlsverify`: any certificate is accepted (the signatures of the
/// handshake are still checked), as the docker CLI does.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
