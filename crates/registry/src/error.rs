//! Errors of the distribution client, worded like Docker's so clients can print them as is.

use berth_image::Digest;

/// What went wrong talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Transport failure (connection refused, reset, TLS), Go-style: `Get "url": cause`.
    #[error("{method} \"{url}\": {message}")]
    Transport {
        method: String,
        url: String,
        message: String,
    },
    /// The registry refused our credentials (or we had none).
    #[error("{0}")]
    Unauthorized(String),
    /// The manifest, tag or repository does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Any other error status from the registry.
    #[error("{0}")]
    Registry(String),
    /// A blob or manifest whose content does not hash to its digest.
    #[error("{0}")]
    Verification(String),
    /// A manifest we cannot use.
    #[error("{0}")]
    InvalidManifest(String),
    /// No manifest in an index matches the wanted platform.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    /// Bad input from the caller (platform string, reference).
    #[error("{0}")]
    Invalid(String),
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] berth_image::Error),
    /// Local I/O (temp files).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn transport(method: &str, url: &str, e: &reqwest::Error) -> Self {
        // reqwest nests the useful cause (connection refused, reset) in its source chain.
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message = s.to_string();
            src = s.source();
        }
        // Read like Go's net errors: `connection refused`, not `Connection refused (os error 111)`.
        if let Some(i) = message.find(" (os error ") {
            message.truncate(i);
        }
        if let Some(m) = go_tls_message(&message) {
            message = m;
        }
        let mut chars = message.chars();
        let message = match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => message,
        };
        Error::Transport {
            method: method.to_string(),
            url: url.to_string(),
            message,
        }
    }

    pub(crate) fn blob_mismatch(digest: &Digest) -> Self {
        Error::Verification(format!(
            "filesystem layer verification failed for digest {digest}"
        ))
    }
}

/// rustls' certificate verdicts in the words of Go's crypto/tls, which Docker shows.
fn go_tls_message(rustls: &str) -> Option<String> {
    let cause = rustls.strip_prefix("invalid peer certificate: ")?;
    let x509 = if cause.starts_with("UnknownIssuer") {
        "certificate signed by unknown authority".to_string()
    } else if [
        "Expired",
        "certificate expired",
        "NotValidYet",
        "certificate not valid yet",
    ]
    .iter()
    .any(|p| cause.starts_with(p))
    {
        "certificate has expired or is not yet valid".to_string()
    } else if cause.starts_with("NotValidForName")
        || cause.starts_with("certificate not valid for name")
    {
        format!("certificate is not valid for this name ({cause})")
    } else {
        cause.to_string()
    };
    Some(format!("tls: failed to verify certificate: x509: {x509}"))
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_read_like_go() {
        assert_eq!(
            go_tls_message("invalid peer certificate: UnknownIssuer").as_deref(),
            Some(
                "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            )
        );
        assert!(go_tls_message("invalid peer certificate: Expired")
            .unwrap()
            .ends_with("certificate has expired or is not yet valid"));
        assert_eq!(go_tls_message("connection refused"), None);
    }
}
