//! Typed plain-Rust values the gRPC layer hands to the backends: filters with their matching
//! rules, states, and the results of calls whose proto shape is awkward (ExecSync, versions).
//! Large nested configs and statuses stay the generated [`crate::api`] structs: they are plain
//! Rust already, and the daemon needs every field of them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::api;

/// A pod sandbox's state (`PodSandboxState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    Ready,
    NotReady,
}

impl PodState {
    pub fn from_proto(v: i32) -> Option<Self> {
        match api::PodSandboxState::try_from(v).ok()? {
            api::PodSandboxState::SandboxReady => Some(PodState::Ready),
            api::PodSandboxState::SandboxNotready => Some(PodState::NotReady),
        }
    }

    pub fn to_proto(self) -> i32 {
        match self {
            PodState::Ready => api::PodSandboxState::SandboxReady as i32,
            PodState::NotReady => api::PodSandboxState::SandboxNotready as i32,
        }
    }
}

/// A container's state (`ContainerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

impl ContainerState {
    pub fn from_proto(v: i32) -> Option<Self> {
        Some(match api::ContainerState::try_from(v).ok()? {
            api::ContainerState::ContainerCreated => ContainerState::Created,
            api::ContainerState::ContainerRunning => ContainerState::Running,
            api::ContainerState::ContainerExited => ContainerState::Exited,
            api::ContainerState::ContainerUnknown => ContainerState::Unknown,
        })
    }

    pub fn to_proto(self) -> i32 {
        (match self {
            ContainerState::Created => api::ContainerState::ContainerCreated,
            ContainerState::Running => api::ContainerState::ContainerRunning,
            ContainerState::Exited => api::ContainerState::ContainerExited,
            ContainerState::Unknown => api::ContainerState::ContainerUnknown,
        }) as i32
    }
}

/// `labels` holds every `selector` pair (the CRI's label selectors are MatchLabels, ANDed).
pub fn labels_match(selector: &BTreeMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// An id filter: CRI runtimes match a full id or a unique prefix of it; an empty filter id
/// matches everything.
fn id_matches(filter: &Option<String>, id: &str) -> bool {
    filter.as_deref().is_none_or(|f| id.starts_with(f))
}

/// `ListPodSandbox`/`StreamPodSandboxes` filter; all set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    pub id: Option<String>,
    pub state: Option<PodState>,
    pub labels: BTreeMap<String, String>,
}

impl PodFilter {
    pub fn from_proto(f: Option<api::PodSandboxFilter>) -> Self {
        let Some(f) = f else { return Self::default() };
        PodFilter {
            id: non_empty(f.id),
            state: f.state.and_then(|s| PodState::from_proto(s.state)),
            labels: f.label_selector.into_iter().collect(),
        }
    }

    pub fn matches(&self, pod: &api::PodSandbox) -> bool {
        id_matches(&self.id, &pod.id)
            && self
                .state
                .is_none_or(|s| PodState::from_proto(pod.state) == Some(s))
            && labels_match(&self.labels, &pod.labels)
    }
}

/// `ListContainers`/`StreamContainers` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub state: Option<ContainerState>,
    pub pod_sandbox_id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl ContainerFilter {
    pub fn from_proto(f: Option<api::ContainerFilter>) -> Self {
        let Some(f) = f else { return Self::default() };
        ContainerFilter {
            id: non_empty(f.id),
            state: f.state.and_then(|s| ContainerState::from_proto(s.state)),
            pod_sandbox_id: non_empty(f.pod_sandbox_id),
            labels: f.label_selector.into_iter().collect(),
        }
    }

    pub fn matches(&self, c: &api::Container) -> bool {
        id_matches(&self.id, &c.id)
            && id_matches(&self.pod_sandbox_id, &c.pod_sandbox_id)
            && self
                .state
                .is_none_or(|s| ContainerState::from_proto(c.state) == Some(s))
            && labels_match(&self.labels, &c.labels)
    }
}

/// `ListContainerStats`/`StreamContainerStats` filter (no state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatsFilter {
    pub id: Option<String>,
    pub pod_sandbox_id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl ContainerStatsFilter {
    pub fn from_proto(f: Option<api::ContainerStatsFilter>) -> Self {
        let Some(f) = f else { return Self::default() };
        ContainerStatsFilter {
            id: non_empty(f.id),
            pod_sandbox_id: non_empty(f.pod_sandbox_id),
            labels: f.label_selector.into_iter().collect(),
        }
    }

    /// Whether a container (its id, pod and labels) is selected.
    pub fn matches(&self, c: &api::Container) -> bool {
        id_matches(&self.id, &c.id)
            && id_matches(&self.pod_sandbox_id, &c.pod_sandbox_id)
            && labels_match(&self.labels, &c.labels)
    }
}

/// `ListPodSandboxStats`/`StreamPodSandboxStats` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodStatsFilter {
    pub id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl PodStatsFilter {
    pub fn from_proto(f: Option<api::PodSandboxStatsFilter>) -> Self {
        let Some(f) = f else { return Self::default() };
        PodStatsFilter {
            id: non_empty(f.id),
            labels: f.label_selector.into_iter().collect(),
        }
    }

    pub fn matches(&self, pod: &api::PodSandbox) -> bool {
        id_matches(&self.id, &pod.id) && labels_match(&self.labels, &pod.labels)
    }
}

/// `RunPodSandbox`: the validated config (metadata with name, namespace and uid present).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPodSandbox {
    pub config: api::PodSandboxConfig,
    /// The runtime handler (RuntimeClass); empty for the default one.
    pub runtime_handler: String,
}

impl RunPodSandbox {
    pub fn metadata(&self) -> &api::PodSandboxMetadata {
        // Checked by the gRPC layer before the value is built.
        self.config
            .metadata
            .as_ref()
            .expect("RunPodSandbox is only built with metadata")
    }
}

/// `CreateContainer`: the validated config (metadata with a name, an image).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateContainer {
    pub pod_sandbox_id: String,
    pub config: api::ContainerConfig,
    /// The pod's config as the kubelet sent it to RunPodSandbox (labels, log directory, ...).
    pub sandbox_config: Option<api::PodSandboxConfig>,
}

impl CreateContainer {
    pub fn metadata(&self) -> &api::ContainerMetadata {
        self.config
            .metadata
            .as_ref()
            .expect("CreateContainer is only built with metadata")
    }

    /// The image reference the kubelet asks for (`config.image.image`), checked non-empty.
    pub fn image(&self) -> &str {
        self.config
            .image
            .as_ref()
            .map(|i| i.image.as_str())
            .unwrap_or_default()
    }
}

/// Registry credentials of a `PullImage`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// base64 of `username:password`, as in a docker config.
    pub auth: String,
    pub server_address: String,
    pub identity_token: String,
    pub registry_token: String,
}

impl From<api::AuthConfig> for RegistryAuth {
    fn from(a: api::AuthConfig) -> Self {
        RegistryAuth {
            username: a.username,
            password: a.password,
            auth: a.auth,
            server_address: a.server_address,
            identity_token: a.identity_token,
            registry_token: a.registry_token,
        }
    }
}

/// `PullImage`: the validated image reference.
#[derive(Debug, Clone, PartialEq)]
pub struct PullImage {
    pub image: api::ImageSpec,
    pub auth: Option<RegistryAuth>,
    pub sandbox_config: Option<api::PodSandboxConfig>,
}

/// The runtime's name and version for `Version` (the API version is the CRI's own, "v1").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
}

/// One runtime condition (`RuntimeReady`, `NetworkReady`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: String,
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub const RUNTIME_READY: &'static str = "RuntimeReady";
    pub const NETWORK_READY: &'static str = "NetworkReady";

    pub fn ready(kind: &str) -> Self {
        Condition {
            kind: kind.to_string(),
            ready: true,
            reason: String::new(),
            message: String::new(),
        }
    }

    pub fn not_ready(kind: &str, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            kind: kind.to_string(),
            ready: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// `Status`: conditions, handlers and features; `info` only on verbose calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeStatus {
    pub conditions: Vec<Condition>,
    pub info: HashMap<String, String>,
    pub runtime_handlers: Vec<api::RuntimeHandler>,
    pub features: Option<api::RuntimeFeatures>,
}

/// The cgroup driver reported by `RuntimeConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Systemd,
    Cgroupfs,
}

/// What `ExecSync` ran to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSyncOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A status with its verbose-only `info` map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WithInfo<T> {
    pub status: T,
    pub info: HashMap<String, String>,
}

/// `PodSandboxStatus`'s answer: with the statuses of the pod's containers when the runtime
/// reports them (kubelet's evented PLEG uses them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodStatus {
    pub status: api::PodSandboxStatus,
    pub info: HashMap<String, String>,
    pub containers_statuses: Vec<api::ContainerStatus>,
    /// Nanoseconds since the epoch when the status was taken; 0 to let the gRPC layer fill in now.
    pub timestamp: i64,
}

/// The filesystems `ImageFsInfo` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FsInfo {
    pub image_filesystems: Vec<api::FilesystemUsage>,
    pub container_filesystems: Vec<api::FilesystemUsage>,
}

/// A timeout field of the CRI (seconds; 0 or negative means none).
pub fn timeout_from_secs(secs: i64) -> Option<Duration> {
    u64::try_from(secs)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str, state: PodState, labels: &[(&str, &str)]) -> api::PodSandbox {
        api::PodSandbox {
            id: id.into(),
            state: state.to_proto(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn pod_filter_ands_its_fields() {
        let f = PodFilter::from_proto(Some(api::PodSandboxFilter {
            id: "ab".into(),
            state: Some(api::PodSandboxStateValue {
                state: PodState::Ready.to_proto(),
            }),
            label_selector: [("app".to_string(), "web".to_string())].into(),
        }));
        assert!(f.matches(&pod("abc", PodState::Ready, &[("app", "web"), ("x", "y")])));
        assert!(!f.matches(&pod("xbc", PodState::Ready, &[("app", "web")])));
        assert!(!f.matches(&pod("abc", PodState::NotReady, &[("app", "web")])));
        assert!(!f.matches(&pod("abc", PodState::Ready, &[("app", "db")])));
        assert!(PodFilter::from_proto(None).matches(&pod("z", PodState::NotReady, &[])));
    }

    #[test]
    fn container_filter_by_pod_and_state() {
        let f = ContainerFilter::from_proto(Some(api::ContainerFilter {
            pod_sandbox_id: "p1".into(),
            state: Some(api::ContainerStateValue {
                state: ContainerState::Exited.to_proto(),
            }),
            ..Default::default()
        }));
        let mut c = api::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            state: ContainerState::Exited.to_proto(),
            ..Default::default()
        };
        assert!(f.matches(&c));
        c.state = ContainerState::Running.to_proto();
        assert!(!f.matches(&c));
        c.state = ContainerState::Exited.to_proto();
        c.pod_sandbox_id = "p2".into();
        assert!(!f.matches(&c));
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_from_secs(0), None);
        assert_eq!(timeout_from_secs(-1), None);
        assert_eq!(timeout_from_secs(3), Some(Duration::from_secs(3)));
    }
}
