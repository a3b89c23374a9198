//! The streaming server for Exec, Attach and PortForward: the CRI calls answer a one-time URL
//! (see [`tokens`]); the client then connects to this HTTP server on loopback and upgrades to
//! SPDY/3.1 or WebSocket, speaking Kubernetes' remotecommand or portforward protocol. The
//! daemon supplies the actual exec/attach/port-forward through [`StreamRuntime`].

#[cfg(feature = "server")]
mod portforward;
#[cfg(feature = "server")]
mod remotecommand;
mod runtime;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod spdy;
pub mod status;
mod tokens;
#[cfg(feature = "server")]
pub mod websocket;

#[cfg(feature = "server")]
pub use remotecommand::STREAM_CREATION_TIMEOUT;
pub use runtime::{connect_in_netns, pump, BoxRead, BoxWrite, StreamIo, StreamRuntime, TermSize};
#[cfg(feature = "server")]
pub use server::{StreamingServer, SPDY_REMOTECOMMAND};
pub use tokens::{StreamUrls, TokenCache, MAX_IN_FLIGHT, TOKEN_TTL};

/// An Exec request as the kubelet sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecParams {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An Attach request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachParams {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A PortForward request: the pod and the ports it allows (empty: any the client names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardParams {
    pub pod_sandbox_id: String,
    pub ports: Vec<u16>,
}

/// A streaming request waiting for its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    Exec(ExecParams),
    Attach(AttachParams),
    PortForward(PortForwardParams),
}

impl StreamRequest {
    /// The URL path segment of the request's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamRequest::Exec(_) => "exec",
            StreamRequest::Attach(_) => "attach",
            StreamRequest::PortForward(_) => "portforward",
        }
    }
}
