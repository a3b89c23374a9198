//! TLS trust for secure registries: the system's roots plus what `certs.d/<host[:port]>/`
//! holds, read the way Docker reads `/etc/docker/certs.d` — every `*.crt` is a CA, every
//! `*.cert` is a client certificate whose key is the `*.key` with the same base name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reqwest::{Certificate, ClientBuilder, Identity};

use crate::error::{Error, Result};

/// Bundles where Debian, Fedora/RHEL, openSUSE and Alpine keep the system roots.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's root certificates (the first bundle found; empty when there is none, and
/// then only the built-in webpki roots are trusted).
fn system_roots() -> &'static [Certificate] {
    static ROOTS: OnceLock<Vec<Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        for b in SYSTEM_BUNDLES {
            if let Ok(pem) = std::fs::read(b) {
                match Certificate::from_pem_bundle(&pem) {
                    Ok(c) => return c,
                    Err(e) => tracing::warn!("ignoring system CA bundle {b}: {e}"),
                }
            }
        }
        Vec::new()
    })
}

/// Adds the system roots to a client builder.
pub(crate) fn with_system_roots(mut b: ClientBuilder) -> ClientBuilder {
    for c in system_roots() {
        b = b.add_root_certificate(c.clone());
    }
    b
}

/// What `certs.d/<host>/` asks for.
#[derive(Debug, Default)]
pub(crate) struct HostCerts {
    pub cas: Vec<PathBuf>,
    /// (cert, key)
    pub clients: Vec<(PathBuf, PathBuf)>,
}

impl HostCerts {
    pub(crate) fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.clients.is_empty()
    }
}

/// Lists `dir/<host>/` (a missing directory is no certificates). Like Docker, a `.cert`
/// without its `.key` (or the reverse) is an error.
pub(crate) fn read_host_dir(certs_dir: &Path, host: &str) -> Result<HostCerts> {
    let dir = certs_dir.join(host);
    let mut out = HostCerts::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        if n.ends_with(".crt") {
            out.cas.push(dir.join(n));
        } else if let Some(base) = n.strip_suffix(".cert") {
            let key = format!("{base}.key");
            if !names.contains(&key) {
                return Err(Error::Invalid(format!(
                    "missing key {key} for client certificate {n}. CA certificates must use the extension .crt"
                )));
            }
            out.clients.push((dir.join(n), dir.join(key)));
        } else if let Some(base) = n.strip_suffix(".key") {
            let cert = format!("{base}.cert");
            if !names.contains(&cert) {
                return Err(Error::Invalid(format!(
                    "missing client certificate {cert} for key {n}"
                )));
            }
        }
    }
    Ok(out)
}

/// Adds a host's CAs and (first) client certificate to a builder.
pub(crate) fn apply(mut b: ClientBuilder, certs: &HostCerts) -> Result<ClientBuilder> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e));
    for ca in &certs.cas {
        let pem = read(ca)?;
        let list = Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Invalid(format!("invalid CA certificate {}: {e}", ca.display())))?;
        if list.is_empty() {
            return Err(Error::Invalid(format!(
                "invalid CA certificate {}: no PEM certificate found",
                ca.display()
            )));
        }
        for c in list {
            b = b.add_root_certificate(c);
        }
    }
    if let Some((cert, key)) = certs.clients.first() {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        let id = Identity::from_pem(&pem).map_err(|e| {
            Error::Invalid(format!(
                "invalid client certificate {}: {e}",
                cert.display()
            ))
        })?;
        b = b.identity(id);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cas_and_client_pairs() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("reg:5000");
        std::fs::create_dir_all(&h).unwrap();
        assert!(read_host_dir(d.path(), "other").unwrap().is_empty());
        std::fs::write(h.join("ca.crt"), "x").unwrap();
        std::fs::write(h.join("client.cert"), "x").unwrap();
        let err = read_host_dir(d.path(), "reg:5000").unwrap_err().to_string();
        assert!(err.contains("missing key client.key"), "{err}");
        std::fs::write(h.join("client.key"), "x").unwrap();
        let c = read_host_dir(d.path(), "reg:5000").unwrap();
        assert_eq!(c.cas, vec![h.join("ca.crt")]);
        assert_eq!(
            c.clients,
            vec![(h.join("client.cert"), h.join("client.key"))]
        );
        std::fs::write(h.join("lone.key"), "x").unwrap();
        let err = read_host_dir(d.path(), "reg:5000").unwrap_err().to_string();
        assert!(
            err.contains("missing client certificate lone.cert"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_ca_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("reg");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(h.join("ca.crt"), "not a certificate").unwrap();
        let c = read_host_dir(d.path(), "reg").unwrap();
        let err = apply(reqwest::Client::builder(), &c)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid CA certificate"), "{err}");
    }
}
