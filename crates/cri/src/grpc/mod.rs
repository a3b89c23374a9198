//! The gRPC services: `runtime.v1.RuntimeService` and `runtime.v1.ImageService` over the
//! backend traits. Each RPC validates its request (naming the missing field), turns it into a
//! typed call, and maps the answer back; errors become status codes only in
//! [`CriError::into_status`](crate::error::CriError::into_status).

mod image_service;
mod runtime_service;
mod serve;

pub use serve::{serve_unix, CriSocket};

use std::pin::Pin;

use futures_util::Stream;
use tonic::Status;

use crate::backend::Backends;
use crate::error::{CriError, CriResult};
use crate::streaming::StreamUrls;

/// The CRI API version `Version` reports.
pub const CRI_API_VERSION: &str = "v1";
/// The kubelet-facing `version` field of `VersionResponse` (the CRI's own "0.1.0").
pub const CRI_VERSION: &str = "0.1.0";
/// Items per message of the Stream* list variants (each message carries at least one).
pub const STREAM_CHUNK: usize = 256;

/// Both CRI services over `backends`; `streams` hands out the Exec/Attach/PortForward URLs
/// (without it those RPCs answer Unimplemented).
#[derive(Clone)]
pub struct CriServer {
    backends: Backends,
    streams: Option<StreamUrls>,
}

impl CriServer {
    pub fn new(backends: Backends, streams: Option<StreamUrls>) -> Self {
        CriServer { backends, streams }
    }

    /// The tonic service for `runtime.v1.RuntimeService`.
    pub fn runtime_service(
        &self,
    ) -> crate::api::runtime_service_server::RuntimeServiceServer<CriServer> {
        crate::api::runtime_service_server::RuntimeServiceServer::new(self.clone())
    }

    /// The tonic service for `runtime.v1.ImageService`.
    pub fn image_service(&self) -> crate::api::image_service_server::ImageServiceServer<CriServer> {
        crate::api::image_service_server::ImageServiceServer::new(self.clone())
    }
}

type GrpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Stream* list variants: the list cut into messages of at most [`STREAM_CHUNK`] items
/// (none for an empty list), then EOF.
fn chunked<I, T>(items: Vec<I>, wrap: impl Fn(Vec<I>) -> T + Send + 'static) -> GrpcStream<T>
where
    I: Send + 'static,
    T: Send + 'static,
{
    let mut chunks = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(Ok(wrap(items.by_ref().take(STREAM_CHUNK).collect())));
    }
    Box::pin(futures_util::stream::iter(chunks))
}

fn require(value: &str, field: &str) -> CriResult<()> {
    if value.is_empty() {
        return Err(CriError::missing(field));
    }
    Ok(())
}

/// For calls the kubelet repeats until they succeed: a thing already gone is success.
fn idempotent(r: CriResult<()>) -> CriResult<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
