//! The CRI layer's error kinds and their one mapping to gRPC status codes.

use tonic::{Code, Status};

/// What a backend (the daemon) or the CRI layer itself reports. Each kind maps to one gRPC code in
/// [`CriError::into_status`]; the message is what the kubelet shows.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CriError {
    /// `what` (e.g. "pod sandbox", "container", "image") named `id` does not exist.
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// A request field is missing or malformed; `field` names it as in the proto (`config.metadata.name`).
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The object exists but is in the wrong state for the call (exec into a stopped container).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A name is reserved by another object (same pod/container metadata and attempt).
    #[error("{0}")]
    AlreadyExists(String),
    /// The runtime does not implement the call (or an option of it).
    #[error("{0} is not implemented")]
    Unimplemented(String),
    /// The call's own timeout ran out (ExecSync with a timeout).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// Anything else: the message names what failed.
    #[error("{0}")]
    Internal(String),
}

impl CriError {
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        CriError::NotFound {
            what,
            id: id.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CriError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A required field that is unset or empty.
    pub fn missing(field: impl Into<String>) -> Self {
        Self::invalid(field, "must be set")
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        CriError::Internal(msg.to_string())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::NotFound { .. })
    }

    /// The gRPC code of this kind: the only place CRI errors become status codes.
    pub fn code(&self) -> Code {
        match self {
            CriError::NotFound { .. } => Code::NotFound,
            CriError::InvalidArgument { .. } => Code::InvalidArgument,
            CriError::FailedPrecondition(_) => Code::FailedPrecondition,
            CriError::AlreadyExists(_) => Code::AlreadyExists,
            CriError::Unimplemented(_) => Code::Unimplemented,
            CriError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            CriError::Internal(_) => Code::Unknown,
        }
    }

    pub fn into_status(self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

impl From<CriError> for Status {
    fn from(e: CriError) -> Status {
        e.into_status()
    }
}

pub type CriResult<T> = Result<T, CriError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_codes() {
        let cases = [
            (CriError::not_found("container", "abc"), Code::NotFound),
            (CriError::missing("config.metadata"), Code::InvalidArgument),
            (
                CriError::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
            ),
            (CriError::AlreadyExists("x".into()), Code::AlreadyExists),
            (
                CriError::Unimplemented("CheckpointContainer".into()),
                Code::Unimplemented,
            ),
            (
                CriError::DeadlineExceeded("x".into()),
                Code::DeadlineExceeded,
            ),
            (CriError::internal("boom"), Code::Unknown),
        ];
        for (e, code) in cases {
            assert_eq!(e.into_status().code(), code);
        }
    }

    #[test]
    fn messages_name_the_thing() {
        let s = CriError::not_found("pod sandbox", "p1").into_status();
        assert_eq!(s.message(), "pod sandbox \"p1\" not found");
        let s = CriError::missing("config.metadata.name").into_status();
        assert_eq!(
            s.message(),
            "invalid argument config.metadata.name: must be set"
        );
    }
}
