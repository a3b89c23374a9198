//! A small SPDY/3.1 implementation: what Kubernetes' remotecommand and portforward protocols
//! use (streams the client opens, data both ways, half-close, reset, ping, goaway). Flow control
//! windows are not enforced: Go's spdystream, the peer in practice, neither sends nor awaits
//! WINDOW_UPDATE.

pub mod conn;
pub mod frame;
pub mod zlib;
