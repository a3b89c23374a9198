//! Docker Engine API wire types (v1.24–v1.55), shared by the server, the daemon, the client and tests.
//!
//! Inspect-shaped types serialize **every** field with Go's zero value when unset: `docker inspect -f`
//! templates fail on a missing key. Request types accept what real clients send, including Docker's
//! "StrSlice" (`Cmd`, `Entrypoint`, `Shell` as a string, an array or null). No I/O here.

pub mod container;
pub mod detach;
pub mod exec;
pub mod go_typed;
pub mod gojson;
pub mod image;
pub mod network;
pub mod prune;
pub mod registry;
pub mod strslice;
pub mod system;
pub mod volume;

use serde::{Deserialize, Serialize};

/// Lowest API version served.
pub const MIN_API_VERSION: &str = "1.24";
/// Highest (default) API version served.
pub const API_VERSION: &str = "1.55";

/// `{"message": "..."}`: the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    pub message: String,
}

/// `{"Id": "..."}` as answered by `POST /exec` and `POST /commit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

/// One line of a progress stream (`load`, `pull`, `push`, `build`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<i64>,
    pub message: String,
}

impl ProgressMessage {
    pub fn status(status: impl Into<String>) -> Self {
        ProgressMessage {
            status: Some(status.into()),
            ..Default::default()
        }
    }
    pub fn stream(text: impl Into<String>) -> Self {
        ProgressMessage {
            stream: Some(text.into()),
            ..Default::default()
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        ProgressMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }
}

/// The class of a failure, as the API reports it. The api-server maps each kind to one status code;
/// lower layers classify their own errors into these kinds once, in the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: a bad parameter or body.
    InvalidParameter,
    /// 404: an unknown container, image, exec instance...
    NotFound,
    /// 409: a name in use, removing a running container without force...
    Conflict,
    /// 304: starting a started container, stopping a stopped one.
    NotModified,
    /// 403
    Forbidden,
    /// 501
    NotImplemented,
    /// 401: a registry refused the credentials.
    Unauthorized,
    /// 503: the node cannot do it in its present state (e.g. swarm endpoints off a swarm).
    Unavailable,
    /// 500
    Internal,
}

/// An error with the message clients print as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "")
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
