//! Wire types, framing and the async client for the `berth-shim` control socket.
//!
//! The contract is described in `docs/shim-protocol.md`. This crate is linked by the
//! daemon, so it must stay free of libcontainer and of anything kernel-specific.

mod client;
mod frame;
mod launch;
mod types;

pub use client::{ClientError, ShimClient, ShimStream};
pub use frame::{encode_frame, Frame, FrameKind, FrameReader, FRAME_HEADER_LEN, MAX_FRAME_LEN};
pub use launch::{launch, HandedShim, PooledShim, POOLED_ARG};
pub use types::{
    format_timestamp, ExecStarted, ExitStatus, LaunchStatus, Request, Response, RunState,
    ShimConfig, StartCause, StartError, Status,
};
