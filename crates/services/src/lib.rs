//! The services berthd offers, apart from any transport: the option types each call takes and
//! one trait per resource (as moby's backend interfaces split them). The API server calls them
//! through the [`Backend`] umbrella; the daemon implements them (joined in the `berthd` binary's
//! adapter), so neither side sees the other.

mod build;
mod containers;
mod exec;
mod images;
mod networks;
mod streams;
mod system;
mod volumes;

use berth_api_types::{ApiError, ErrorKind};

pub use build::{BuildBackend, BuildOptions, BuildOutput};
pub use containers::{
    AttachOptions, CommitOptions, ContainerBackend, ContainerListOptions, LogsOptions,
    StatsOptions, UpdateOptions, WaitCondition,
};
pub use exec::{ExecBackend, ExecStarted};
pub use images::{
    ImageBackend, ImageListOptions, ImportOptions, LoadOptions, PlatformSpec, PullOptions,
    PushOptions,
};
pub use networks::NetworkBackend;
pub use streams::{BoxedIo, ByteStream, Io, Session};
pub use system::{DiskUsageOptions, EventFormat, EventsOptions, SystemBackend};
pub use volumes::VolumeBackend;

pub type Result<T> = std::result::Result<T, ApiError>;

/// Every service the Engine API needs: what the server requires of its backend.
pub trait Backend:
    SystemBackend
    + ContainerBackend
    + ExecBackend
    + ImageBackend
    + BuildBackend
    + NetworkBackend
    + VolumeBackend
{
}

impl<T> Backend for T where
    T: SystemBackend
        + ContainerBackend
        + ExecBackend
        + ImageBackend
        + BuildBackend
        + NetworkBackend
        + VolumeBackend
{
}

/// The answer of a call the backend does not implement.
fn not_implemented(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::NotImplemented, message)
}

/// The answer of an optional call the backend does not implement.
fn not_supported_by_daemon(what: &str) -> ApiError {
    not_implemented(format!("{what} is not supported by this daemon"))
}
