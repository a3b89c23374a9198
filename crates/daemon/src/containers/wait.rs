//! `POST /containers/{id}/wait`.

use berth_api_types::container::{self as ct, WaitResponse};
use berth_services::WaitCondition;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::model::Container;
use crate::{ContainerEvent, Daemon, Result};

impl Daemon {
    pub async fn container_wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, WaitResponse>> {
        let c = self.resolve_container(key)?;
        let mut events = self.events.subscribe();
        let id = c.id.clone();
        let current = self.get(&id);
        let ready = |c: &Container| WaitResponse {
            status_code: c.state.exit_code,
            error: (!c.state.error.is_empty()).then(|| ct::WaitExitError {
                message: c.state.error.clone(),
            }),
        };
        if condition == WaitCondition::NotRunning {
            if let Some(c) = current.as_ref().filter(|c| !c.state.status.is_active()) {
                let resp = ready(c);
                return Ok(async move { resp }.boxed());
            }
        }
        Ok(async move {
            // Already exited: its code is the answer unless it runs (and exits) again first.
            let mut last: Option<WaitResponse> = current
                .as_ref()
                .filter(|c| !c.state.status.is_active())
                .map(ready);
            loop {
                match events.recv().await {
                    Ok(ContainerEvent::Exited {
                        id: x,
                        exit_code,
                        error,
                    }) if x == id => {
                        let resp = WaitResponse {
                            status_code: exit_code,
                            error: error.map(|message| ct::WaitExitError { message }),
                        };
                        if condition != WaitCondition::Removed {
                            return resp;
                        }
                        last = Some(resp);
                    }
                    Ok(ContainerEvent::Removed { id: x }) if x == id => {
                        return last.unwrap_or(WaitResponse {
                            status_code: 0,
                            error: None,
                        });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return WaitResponse {
                            status_code: -1,
                            error: None,
                        };
                    }
                    _ => {}
                }
            }
        }
        .boxed())
    }
}
