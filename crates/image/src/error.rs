//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `berth-image`. Messages are lowercase and name the
/// thing that failed; the daemon classifies these into API error kinds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference did not match the grammar at all.
    #[error("invalid reference format")]
    InvalidReferenceFormat,
    /// A reference's repository part contained upper-case letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    ReferenceNotLowercase(String),
    /// A tag given on its own (`?tag=`) did not match the tag grammar.
    #[error("invalid tag format")]
    InvalidTagFormat,
    /// A reference was syntactically fine but violated another rule (length, 64-hex name...).
    #[error("{0}")]
    InvalidReference(String),
    /// A digest string was malformed or used an unsupported algorithm.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: &'static str },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An I/O error without a useful path (e.g. a caller-supplied stream).
    #[error("{context}: {source}")]
    Stream {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The content store has no blob with this digest.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// The layer store has no layer with this chain id.
    #[error("layer {0} not found")]
    LayerNotFound(Digest),
    /// Content did not hash to what the caller or a manifest said it should.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    /// A tar stream was corrupt or truncated.
    #[error("invalid tar archive ({context}): {source}")]
    Tar {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A tar entry tried to escape the directory it is unpacked into.
    #[error("unsafe path in archive: {path}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// JSON (image config, manifest, index) could not be parsed or produced.
    #[error("invalid {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// An image archive (docker save / OCI layout) was structurally invalid.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// A `--change` line for import could not be applied.
    #[error("invalid change {line:?}: {reason}")]
    InvalidChange { line: String, reason: String },
    /// A `--change` line whose instruction commit/import do not take (dockerd's words, with
    /// the instruction lowercased as its parser leaves it).
    #[error("{0} is not a valid change command")]
    UnknownChange(String),
    /// A mount or unmount syscall failed.
    #[error("{op} {target}: {source}")]
    Mount {
        op: &'static str,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// Overlay options were unusable (no lower dirs, bad characters in paths...).
    #[error("invalid overlay mount: {0}")]
    InvalidOverlay(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    /// True when the error means "the thing does not exist" (blob or layer).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::BlobNotFound(_) | Error::LayerNotFound(_) => true,
            Error::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}
