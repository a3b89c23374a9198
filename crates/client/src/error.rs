use std::io;

/// Errors returned by the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached at all.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: io::Error,
    },
    /// The daemon answered with an error status; `message` is the `message` field of its body
    /// (or the body text when it was not JSON).
    #[error("error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error("invalid host {0:?}: {1}")]
    InvalidHost(String, String),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("invalid json from daemon: {0}")]
    Json(#[from] serde_json::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl ClientError {
    /// The HTTP status for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The daemon's message for API errors, else the error's display text.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Builds an API error from a status and a response body: `{"message": "..."}` per the
    /// Engine API, falling back to the trimmed body text.
    pub fn from_body(status: u16, body: &[u8]) -> ClientError {
        #[derive(serde::Deserialize)]
        struct Msg {
            message: Option<String>,
        }
        let message = match serde_json::from_slice::<Msg>(body) {
            Ok(Msg { message: Some(m) }) => m,
            _ => {
                let text = String::from_utf8_lossy(body).trim().to_string();
                if text.is_empty() {
                    http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("unknown error")
                        .to_string()
                } else {
                    text
                }
            }
        };
        ClientError::Api { status, message }
    }
}
