//! `GET /events`: Docker's event messages for containers and images, kept in a bounded recent
//! log (for `since`) and fanned out live to subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_services::{ByteStream, EventsOptions};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::Container;
use crate::{lock, Daemon, Result};

/// How many past events `since` can reach back over.
const RECENT: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event as the API shows it (with the legacy `status`/`id`/`from` fields of container and
/// image events, which API < 1.52 clients still read).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

pub struct EventLog {
    recent: std::sync::Mutex<VecDeque<Message>>,
    tx: broadcast::Sender<Message>,
}

impl EventLog {
    pub fn new() -> EventLog {
        let (tx, _) = broadcast::channel(RECENT);
        EventLog {
            recent: std::sync::Mutex::new(VecDeque::new()),
            tx,
        }
    }

    fn publish(&self, m: Message) {
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(m.clone());
        // Sent under the lock so a subscriber that copied `recent` sees each event once.
        let _ = self.tx.send(m);
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The buffered events as `(type, action, actor id)`, oldest first (unit tests).
    #[cfg(test)]
    pub(crate) fn recent(&self) -> Vec<(String, String, String)> {
        lock(&self.recent)
            .iter()
            .map(|m| (m.kind.clone(), m.action.clone(), m.actor.id.clone()))
            .collect()
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Docker's event filters.
struct Filters(Vec<(String, Vec<String>)>);

impl Filters {
    fn matches(&self, m: &Message) -> bool {
        self.0.iter().all(|(k, vals)| {
            let attrs = &m.actor.attributes;
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "type" => m.kind == *v,
                    "event" => m.action == *v || m.action.split(':').next() == Some(v.as_str()),
                    "container" => {
                        m.kind == "container"
                            && (m.actor.id.starts_with(v.as_str()) || attrs.get("name") == Some(v))
                    }
                    "image" => {
                        attrs.get("image") == Some(v)
                            || (m.kind == "image"
                                && (m.actor.id == *v || attrs.get("name") == Some(v)))
                            || m.from == *v
                    }
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => attrs.get(lk).is_some_and(|x| x == lv),
                        None => attrs.contains_key(v),
                    },
                    "scope" => v == "local",
                    "volume" => m.kind == "volume" && m.actor.id == *v,
                    // dockerd does not check the names of event filters: one it does not
                    // know filters nothing.
                    _ => true,
                })
        })
    }
}

impl Daemon {
    /// Records a container event with Docker's attributes (image, name, labels, plus `extra`).
    pub(crate) fn emit_container(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = c.config.labels.clone().unwrap_or_default();
        attributes.insert("image".to_string(), c.config.image.clone());
        attributes.insert("name".to_string(), c.name.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        let nanos = now_nanos();
        self.event_log.publish(Message {
            status: action.to_string(),
            id: c.id.clone(),
            from: c.config.image.clone(),
            kind: "container".to_string(),
            action: action.to_string(),
            actor: Actor {
                id: c.id.clone(),
                attributes,
            },
            scope: "local".to_string(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        });
    }

    pub(crate) fn emit_container_id(&self, id: &str, action: &str, extra: &[(&str, String)]) {
        if let Some(c) = self.get(id) {
            self.emit_container(&c, action, extra);
        }
    }

    /// Records an image event; `name` is the reference involved (or the id).
    pub(crate) fn emit_image(&self, id: &str, action: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), name.to_string());
        let nanos = now_nanos();
        self.event_log.publish(Message {
            status: action.to_string(),
            id: id.to_string(),
            from: String::new(),
            kind: "image".to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        });
    }

    /// Records a volume event (`create`, `mount`, `unmount`, `destroy`).
    pub(crate) fn emit_volume(&self, name: &str, action: &str, attrs: &[(&str, String)]) {
        self.emit_object("volume", name, action, attrs);
    }

    /// Records a network event (`create`, `connect`, `disconnect`, `destroy`).
    pub(crate) fn emit_network(&self, id: &str, action: &str, attrs: &[(&str, String)]) {
        self.emit_object("network", id, action, attrs);
    }

    /// Records a daemon event (`reload`), its actor the daemon's id.
    pub(crate) fn emit_daemon(&self, action: &str, attrs: &[(&str, String)]) {
        self.emit_object("daemon", &self.daemon_id(), action, attrs);
    }

    /// Records an event of an object identified by `id` alone, with the given attributes.
    fn emit_object(&self, kind: &str, id: &str, action: &str, attrs: &[(&str, String)]) {
        let attributes = attrs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let nanos = now_nanos();
        self.event_log.publish(Message {
            status: String::new(),
            id: String::new(),
            from: String::new(),
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        });
    }

    pub fn events(&self, opts: EventsOptions) -> Result<ByteStream> {
        let format = opts.format;
        let filters = Filters(opts.filters);
        // What this client is sent at all (image create events are API 1.46+).
        let wanted = move |m: &Message| {
            (format.image_create || !(m.kind == "image" && m.action == "create"))
                && filters.matches(m)
        };
        let since = opts.since.map(crate::units::secs_to_nanos);
        let until = opts.until.map(crate::units::secs_to_nanos);
        let (past, mut live) = {
            let recent = lock(&self.event_log.recent);
            // dockerd replays its buffer when either bound is given: `--until` alone lists
            // the past events up to it.
            let past: Vec<Message> = if since.is_some() || until.is_some() {
                let s = since.unwrap_or(0);
                recent
                    .iter()
                    .filter(|m| m.time_nano >= s)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (past, self.event_log.tx.subscribe())
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
        tokio::spawn(async move {
            let line = |m: &Message| {
                let mut v = if format.legacy_fields {
                    serde_json::to_vec(m)
                } else {
                    // API 1.52 dropped `status`, `id` and `from`.
                    serde_json::to_vec(&Message {
                        status: String::new(),
                        id: String::new(),
                        from: String::new(),
                        ..m.clone()
                    })
                }
                .unwrap_or_default();
                v.push(b'\n');
                Bytes::from(v)
            };
            for m in past
                .iter()
                .filter(|m| wanted(m) && until.is_none_or(|u| m.time_nano <= u))
            {
                if tx.send(Ok(line(m))).await.is_err() {
                    return;
                }
            }
            loop {
                let wait = match until {
                    Some(u) => {
                        let left = u - now_nanos();
                        if left <= 0 {
                            return;
                        }
                        Duration::from_nanos(left.unsigned_abs())
                    }
                    None => Duration::from_secs(3600),
                };
                match tokio::time::timeout(wait, live.recv()).await {
                    Ok(Ok(m)) => {
                        if wanted(&m) && tx.send(Ok(line(&m))).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                    Ok(Err(broadcast::error::RecvError::Closed)) => return,
                    Err(_) if until.is_some() => return,
                    Err(_) => {
                        if tx.is_closed() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(crate::channel_stream(rx))
    }
}
