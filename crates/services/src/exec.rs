//! Processes run in a running container (`docker exec`).

use async_trait::async_trait;
use berth_api_types::exec;

use crate::{Result, Session};

pub enum ExecStarted {
    /// `Detach: true`: started, nothing to stream.
    Detached,
    Attached(Session),
}

#[async_trait]
pub trait ExecBackend: Send + Sync + 'static {
    async fn exec_create(&self, id: &str, req: exec::CreateRequest) -> Result<String>;
    async fn exec_start(&self, exec_id: &str, req: exec::StartRequest) -> Result<ExecStarted>;
    async fn exec_inspect(&self, exec_id: &str) -> Result<exec::InspectResponse>;
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()>;
}
