//! The daemon as a whole: version, info, events, disk usage and registry login.

use async_trait::async_trait;
use berth_api_types::{prune, system};

use crate::{not_implemented, ByteStream, Result};

#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub filters: Vec<(String, Vec<String>)>,
    pub format: EventFormat,
}

/// What an event message carries, decided by the request's API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFormat {
    /// The deprecated `status`, `id` and `from` of container and image events (API < 1.52).
    pub legacy_fields: bool,
    /// Image `create` events (API 1.46+).
    pub image_create: bool,
}

impl Default for EventFormat {
    fn default() -> Self {
        EventFormat {
            legacy_fields: false,
            image_create: true,
        }
    }
}

/// `GET /system/df`: the object types to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsageOptions {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl Default for DiskUsageOptions {
    fn default() -> Self {
        DiskUsageOptions {
            containers: true,
            images: true,
            volumes: true,
            build_cache: true,
        }
    }
}

#[async_trait]
pub trait SystemBackend: Send + Sync + 'static {
    async fn version(&self) -> Result<system::VersionResponse>;
    async fn info(&self) -> Result<system::InfoResponse>;
    /// Streams newline-delimited event messages.
    async fn events(&self, opts: EventsOptions) -> Result<ByteStream>;
    /// The lists of `system df` for the object types `opts` asks for (the others empty).
    async fn system_df(&self, opts: DiskUsageOptions) -> Result<prune::DiskUsage>;
    /// `POST /auth`: validates credentials against a registry.
    async fn registry_login(&self, _body: serde_json::Value) -> Result<serde_json::Value> {
        Err(not_implemented("login is not supported"))
    }
}
