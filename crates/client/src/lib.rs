//! A small async client for the Docker Engine API, used by the `berth` CLI and by black-box tests.
//!
//! It speaks HTTP/1.1 over a unix socket (`unix:///run/berth/berth.sock`) or TCP
//! (`tcp://host:port`, plain or TLS), negotiates the API version with `/_ping`, maps `{"message": ...}` error
//! bodies to [`ClientError::Api`], streams JSON progress and raw bodies, sends streamed request
//! bodies, and hijacks connections for attach and exec (see [`Hijacked`]).

mod client;
mod error;
mod hijack;
mod host;
pub mod mux;
mod pool;
mod stream;
mod tls;

pub use client::{Body, Client, Query, MAX_API_VERSION, MIN_API_VERSION};
pub use error::ClientError;
pub use hijack::{HijackReader, HijackWriter, Hijacked};
pub use host::{Host, DEFAULT_HOST};
/// The response body type of [`Client::send`].
pub use hyper::body::Incoming;
pub use mux::{Frame, FrameDecoder, StreamKind};
pub use stream::{BodyStream, JsonStream};
pub use tls::TlsOptions;
