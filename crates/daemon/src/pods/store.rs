//! The pods service's records: one JSON file per pod sandbox and per pod container under
//! `<data-root>/cri/{pods,containers}/<id>.json`, written atomically, cached in memory. The
//! CRI configs are kept as the kubelet sent them (protobuf, base64), so every field survives a
//! restart without a second schema.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use berth_cri::api;
use berth_cri::cni::Attachment;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::lock;

/// A pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PodRecord {
    pub id: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub ready: bool,
    /// `PodSandboxConfig`, protobuf in base64.
    pub config: String,
    #[serde(default)]
    pub runtime_handler: String,
    /// The pinned network namespace (`None`: the host's).
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// The pinned IPC namespace (`None`: the host's).
    #[serde(default)]
    pub ipc: Option<PathBuf>,
    /// The pinned UTS namespace with the pod's hostname (`None`: the host's, or a pod made
    /// before berth shared it; its containers then get one each).
    #[serde(default)]
    pub uts: Option<PathBuf>,
    /// The pod's shared PID namespace (PID `POD`), pinned, and its init's pid.
    #[serde(default)]
    pub pid_ns: Option<PathBuf>,
    #[serde(default)]
    pub pid_init: i32,
    /// What CNI ADD set up, for DEL (also after a restart); `None` once torn down.
    #[serde(default)]
    pub attachment: Option<Attachment>,
    /// The pod's IPs from the CNI result, the first one primary.
    #[serde(default)]
    pub ips: Vec<String>,
}

impl PodRecord {
    pub fn config(&self) -> api::PodSandboxConfig {
        decode(&self.config)
    }
}

/// A container of a pod: the CRI's half of it (its runtime state is the daemon's record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub id: String,
    pub pod_id: String,
    pub created_at: i64,
    /// `ContainerConfig`, protobuf in base64.
    pub config: String,
    /// The image's id.
    pub image_ref: String,
    /// `log_directory/log_path` of the pod and the container (`None`: no CRI log).
    #[serde(default)]
    pub log_path: Option<PathBuf>,
}

impl ContainerRecord {
    pub fn config(&self) -> api::ContainerConfig {
        decode(&self.config)
    }
}

pub(crate) fn encode<M: Message>(m: &M) -> String {
    base64::engine::general_purpose::STANDARD.encode(m.encode_to_vec())
}

fn decode<M: Message + Default>(s: &str) -> M {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .and_then(|b| M::decode(b.as_slice()).ok())
        .unwrap_or_default()
}

pub(crate) struct PodStore {
    dir: PathBuf,
    pods: Mutex<HashMap<String, PodRecord>>,
    containers: Mutex<HashMap<String, ContainerRecord>>,
}

/// The pod store's directory cannot be made or read (the CRI service does not open).
#[derive(Debug, thiserror::Error)]
pub enum PodStoreError {
    #[error("creating {}: {source}", dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", dir.display())]
    Read {
        dir: PathBuf,
        source: std::io::Error,
    },
}

fn load_dir<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>, PodStoreError> {
    std::fs::create_dir_all(dir).map_err(|source| PodStoreError::Create {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| PodStoreError::Read {
        dir: dir.to_path_buf(),
        source,
    })?;
    for e in entries {
        let Ok(e) = e else { continue };
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match std::fs::read(&p).map(|b| serde_json::from_slice::<T>(&b)) {
            Ok(Ok(r)) => out.push(r),
            _ => tracing::warn!(file = %p.display(), "skipping unreadable CRI record"),
        }
    }
    Ok(out)
}

fn write_atomic(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value)?)?;
    std::fs::rename(&tmp, path)
}

fn remove_file(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl PodStore {
    pub fn open(dir: PathBuf) -> Result<Self, PodStoreError> {
        let pods = load_dir::<PodRecord>(&dir.join("pods"))?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let containers = load_dir::<ContainerRecord>(&dir.join("containers"))?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(PodStore {
            dir,
            pods: Mutex::new(pods),
            containers: Mutex::new(containers),
        })
    }

    /// The pod named by a full id or a unique prefix.
    pub fn find_pod(&self, key: &str) -> Option<PodRecord> {
        let pods = lock(&self.pods);
        if let Some(p) = pods.get(key) {
            return Some(p.clone());
        }
        let mut hits = pods
            .values()
            .filter(|p| !key.is_empty() && p.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(p), None) => Some(p.clone()),
            _ => None,
        }
    }

    pub fn pods(&self) -> Vec<PodRecord> {
        lock(&self.pods).values().cloned().collect()
    }

    pub fn put_pod(&self, r: &PodRecord) -> std::io::Result<()> {
        write_atomic(&self.dir.join("pods").join(format!("{}.json", r.id)), r)?;
        lock(&self.pods).insert(r.id.clone(), r.clone());
        Ok(())
    }

    pub fn delete_pod(&self, id: &str) -> std::io::Result<()> {
        remove_file(&self.dir.join("pods").join(format!("{id}.json")))?;
        lock(&self.pods).remove(id);
        Ok(())
    }

    /// The container named by a full id or a unique prefix.
    pub fn find_container(&self, key: &str) -> Option<ContainerRecord> {
        let all = lock(&self.containers);
        if let Some(c) = all.get(key) {
            return Some(c.clone());
        }
        let mut hits = all
            .values()
            .filter(|c| !key.is_empty() && c.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(c), None) => Some(c.clone()),
            _ => None,
        }
    }

    pub fn containers(&self) -> Vec<ContainerRecord> {
        lock(&self.containers).values().cloned().collect()
    }

    pub fn containers_of(&self, pod_id: &str) -> Vec<ContainerRecord> {
        lock(&self.containers)
            .values()
            .filter(|c| c.pod_id == pod_id)
            .cloned()
            .collect()
    }

    pub fn put_container(&self, r: &ContainerRecord) -> std::io::Result<()> {
        write_atomic(
            &self.dir.join("containers").join(format!("{}.json", r.id)),
            r,
        )?;
        lock(&self.containers).insert(r.id.clone(), r.clone());
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> std::io::Result<()> {
        remove_file(&self.dir.join("containers").join(format!("{id}.json")))?;
        lock(&self.containers).remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = PodStore::open(d.path().to_path_buf()).unwrap();
        let cfg = api::PodSandboxConfig {
            hostname: "web".into(),
            ..Default::default()
        };
        let pod = PodRecord {
            id: "abc123".into(),
            created_at: 1,
            ready: true,
            config: encode(&cfg),
            runtime_handler: String::new(),
            netns: Some("/run/x/net".into()),
            ipc: None,
            uts: None,
            pid_ns: None,
            pid_init: 0,
            attachment: None,
            ips: vec!["10.1.0.2".into()],
        };
        s.put_pod(&pod).unwrap();
        let s = PodStore::open(d.path().to_path_buf()).unwrap();
        let back = s.find_pod("abc").unwrap();
        assert_eq!(back.config().hostname, "web");
        assert_eq!(back.ips, vec!["10.1.0.2".to_string()]);
        s.delete_pod("abc123").unwrap();
        assert!(PodStore::open(d.path().to_path_buf())
            .unwrap()
            .pods()
            .is_empty());
    }
}
