//! Networks and container endpoints on them.

use async_trait::async_trait;
use berth_api_types::network;

use crate::Result;

#[async_trait]
pub trait NetworkBackend: Send + Sync + 'static {
    /// With `containers`, each network lists its members as inspect does (API < 1.28).
    async fn network_list(
        &self,
        filters: Vec<(String, Vec<String>)>,
        containers: bool,
    ) -> Result<Vec<network::Network>>;
    async fn network_inspect(&self, id: &str) -> Result<network::Network>;
    async fn network_create(&self, req: network::CreateRequest) -> Result<network::CreateResponse>;
    async fn network_remove(&self, id: &str) -> Result<()>;
    async fn network_connect(&self, id: &str, req: network::ConnectRequest) -> Result<()>;
    async fn network_disconnect(&self, id: &str, req: network::DisconnectRequest) -> Result<()>;
    async fn network_prune(
        &self,
        filters: Vec<(String, Vec<String>)>,
    ) -> Result<network::PruneResponse>;
}
