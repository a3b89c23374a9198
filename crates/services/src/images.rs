//! Images: the local store, pull/push/search against registries, load/save/import.

use async_trait::async_trait;
use berth_api_types::{image, prune};

use crate::{not_implemented, ByteStream, Result};

#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub repo: String,
    pub tag: String,
    pub message: String,
    pub changes: Vec<String>,
}

/// `POST /images/create?fromImage=`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub from_image: String,
    /// Tag or digest; empty with an untagged `from_image` means every tag.
    pub tag: String,
    pub platform: String,
    /// The raw `X-Registry-Auth` header.
    pub registry_auth: Option<String>,
}

/// `POST /images/{name}/push`.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub name: String,
    /// Empty: every tag of the repository.
    pub tag: String,
    pub registry_auth: Option<String>,
}

/// An OCI platform as the `platform` query parameters give it (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// `POST /images/load`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub quiet: bool,
    /// Only images of these platforms are loaded; empty: all.
    pub platforms: Vec<PlatformSpec>,
}

#[async_trait]
pub trait ImageBackend: Send + Sync + 'static {
    async fn image_list(&self, opts: ImageListOptions) -> Result<Vec<image::Summary>>;
    async fn image_inspect(&self, name: &str) -> Result<image::InspectResponse>;
    async fn image_history(&self, name: &str) -> Result<Vec<image::HistoryItem>>;
    async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()>;
    async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<image::DeleteItem>>;
    /// Streams newline-delimited JSON progress.
    async fn image_load(&self, body: ByteStream, opts: LoadOptions) -> Result<ByteStream>;
    /// Streams a tar archive of `names`, each of which must be of one of `platforms` (when any).
    async fn image_save(
        &self,
        names: Vec<String>,
        platforms: Vec<PlatformSpec>,
    ) -> Result<ByteStream>;
    /// Streams newline-delimited JSON progress.
    async fn image_import(&self, body: ByteStream, opts: ImportOptions) -> Result<ByteStream>;
    async fn images_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<prune::ImagePruneResponse>;
    /// Streams Docker's pull progress; errors before the first byte are returned as statuses.
    async fn image_pull(&self, _opts: PullOptions) -> Result<ByteStream> {
        Err(not_implemented("pulling is not supported"))
    }
    /// Streams Docker's push progress.
    async fn image_push(&self, _opts: PushOptions) -> Result<ByteStream> {
        Err(not_implemented("pushing is not supported"))
    }
    /// `GET /images/search`.
    async fn image_search(
        &self,
        _term: String,
        _limit: Option<usize>,
        _registry_auth: Option<String>,
    ) -> Result<Vec<serde_json::Value>> {
        Err(not_implemented("search is not supported"))
    }
}
