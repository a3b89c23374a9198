//! GetContainerEvents: created/deleted are told by the pods service itself, started/stopped
//! come from the daemon's container events (a container may exit on its own).

use std::sync::Arc;

use berth_cri::api;
use berth_cri::backend::EventStream;

use super::{now_nanos, PodService};
use crate::ContainerEvent;

impl PodService {
    /// Sends one event (nobody listening is fine).
    pub(crate) fn emit(&self, id: &str, kind: api::ContainerEventType) {
        let statuses = self
            .store
            .find_container(id)
            .map(|r| vec![self.status_of(&r)])
            .unwrap_or_default();
        let _ = self.events.send(api::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at: now_nanos(),
            pod_sandbox_status: None,
            containers_statuses: statuses,
        });
    }

    pub(crate) fn forward_daemon_events(self: &Arc<Self>) {
        let mut rx = self.daemon.events.subscribe();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(svc) = weak.upgrade() else { return };
                let (id, kind) = match &ev {
                    ContainerEvent::Started { id } => {
                        (id, api::ContainerEventType::ContainerStartedEvent)
                    }
                    ContainerEvent::Exited { id, .. } => {
                        (id, api::ContainerEventType::ContainerStoppedEvent)
                    }
                    ContainerEvent::Removed { .. } => continue,
                };
                if svc.store.find_container(id).is_some_and(|r| &r.id == id) {
                    svc.emit(id, kind);
                }
            }
        });
    }

    pub(crate) fn event_stream(&self) -> EventStream {
        let rx = self.events.subscribe();
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        }))
    }
}
