//! The Kubernetes Container Runtime Interface (CRI v1, `runtime.v1`) for berthd, apart from the
//! daemon's internals:
//!
//! - [`api`]: the prost messages and tonic stubs generated from `proto/api.proto` at build time
//!   (the stubs with the `server` feature only);
//! - [`backend`]: the traits the daemon implements (runtime, pods, containers, images, stream checks);
//! - `grpc`: both services over those traits, validation and the error → status mapping
//!   (`server` feature);
//! - [`cni`]: a CNI 1.0 client running plugin binaries from config lists;
//! - [`log`]: the CRI log format writer (`<RFC3339Nano> stdout|stderr F|P <line>`);
//! - [`streaming`]: the Exec/Attach/PortForward runtime types and, with the `server` feature,
//!   their HTTP server (SPDY/3.1 and WebSocket).
//!
//! The `server` feature (default) holds everything that serves: the daemon builds without it.

pub mod api {
    //! The generated `runtime.v1` messages and the tonic client/server stubs.
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

pub mod backend;
pub mod cni;
pub mod error;
#[cfg(feature = "server")]
pub mod grpc;
pub mod log;
pub mod streaming;
pub mod types;

pub use backend::Backends;
pub use error::{CriError, CriResult};
