//! Container lifecycle, one file per verb: create, start, stop, kill, wait, remove, restart,
//! rename, pause, list (+ filters), inspect, top, attach; `monitor` records a container's exit;
//! restore after a daemon restart is `crate::restore`.

mod attach;
mod bundle;
#[cfg(test)]
mod bundle_tests;
mod create;
mod filters;
mod inspect;
mod kill;
mod list;
mod monitor;
mod pause;
mod records;
mod remove;
mod rename;
mod restart;
mod start;
mod stop;
#[cfg(test)]
mod tests;
mod top;
mod wait;

use berth_api_types::ApiError;
use berth_services::{AttachOptions, BoxedIo};

pub(crate) use crate::model::no_such_container;

/// An attach that arrived before the container started: connected to the shim at start.
pub struct PendingAttach {
    pub opts: AttachOptions,
    /// The client's connection once its upgrade is done. The entry itself is made before the
    /// client gets its 101, so the start the client sends next always finds it.
    pub io: tokio::sync::oneshot::Receiver<BoxedIo>,
}

pub(super) fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}
