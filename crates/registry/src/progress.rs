//! Progress events of a pull or push, in Docker's vocabulary (`Downloading`, `Pull complete`,
//! `Pushing`, ...). The daemon turns them into JSON progress messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One progress update: `id` is a layer's short id (or a tag), `current/total` are bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

impl ProgressEvent {
    pub fn status(id: impl Into<String>, status: impl Into<String>) -> Self {
        ProgressEvent {
            id: Some(id.into()),
            status: status.into(),
            current: None,
            total: None,
        }
    }

    pub fn bytes(id: impl Into<String>, status: &str, current: u64, total: u64) -> Self {
        ProgressEvent {
            id: Some(id.into()),
            status: status.to_string(),
            current: Some(current),
            total: Some(total),
        }
    }
}

/// Where progress goes; called from async tasks and blocking threads alike.
pub type ProgressFn = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Rate-limits byte-progress events to about ten a second (plus the final one).
pub(crate) struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new() -> Self {
        Throttle { last: None }
    }

    pub(crate) fn ready(&mut self, done: bool) -> bool {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|l| now.duration_since(l) >= Duration::from_millis(100));
        if due || done {
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}
