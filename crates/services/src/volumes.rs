//! Named and anonymous volumes.

use async_trait::async_trait;
use berth_api_types::volume;

use crate::Result;

#[async_trait]
pub trait VolumeBackend: Send + Sync + 'static {
    async fn volume_create(&self, req: volume::CreateRequest) -> Result<volume::Volume>;
    async fn volume_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<volume::ListResponse>;
    async fn volume_inspect(&self, name: &str) -> Result<volume::Volume>;
    async fn volume_remove(&self, name: &str, force: bool) -> Result<()>;
    /// With `named_too`, named volumes are pruned as well as anonymous ones (API < 1.42, or
    /// the `all=true` filter).
    async fn volume_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
        named_too: bool,
    ) -> Result<volume::PruneResponse>;
}
