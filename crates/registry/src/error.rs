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

pub type Result<T> = std::result::Result<T, Error>;
