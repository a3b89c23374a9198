//! A CNI client (spec 1.0): runs the plugin binaries of a network configuration list for a
//! pod's network namespace. ADD runs the plugins in order, each getting the previous one's
//! result as `prevResult`; DEL runs them in reverse with the ADD result; CHECK runs them in
//! order with it. `runtimeConfig` carries the capabilities a plugin declares
//! (`portMappings`, `bandwidth`). The [`Attachment`] record holds everything DEL needs, so a pod
//! stopped after a daemon restart is torn down with the config it was set up with.

mod config;
mod result;

pub use config::{version_at_least, NetworkConfigList};
pub use result::{CniResult, Dns, Interface, IpConfig, IpNet, Route};

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::error::CriError;
use crate::types::Condition;

/// The CNI binaries' default directories: `--cni-bin-dir`'s default, then Debian's.
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
/// `--cni-conf-dir`'s default.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// The pod's interface name.
pub const DEFAULT_IFNAME: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("cni config {}: {reason}", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<inline>".into()))]
    Config {
        path: Option<PathBuf>,
        reason: String,
    },
    #[error("cni plugin {plugin:?} not found in {dirs:?}")]
    PluginNotFound { plugin: String, dirs: Vec<PathBuf> },
    #[error("cni plugin {plugin} {command} failed: {msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("running cni plugin {plugin}: {source}")]
    Exec {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cni plugin {plugin} returned a bad result: {reason}")]
    BadResult { plugin: String, reason: String },
    #[error("cni network {network:?} (version {version:?}) does not support CHECK")]
    CheckUnsupported { network: String, version: String },
}

impl CniError {
    fn config(path: Option<&Path>, reason: impl std::fmt::Display) -> Self {
        CniError::Config {
            path: path.map(Path::to_path_buf),
            reason: reason.to_string(),
        }
    }

    fn with_path(self, p: &Path) -> Self {
        match self {
            CniError::Config { path: None, reason } => CniError::Config {
                path: Some(p.to_path_buf()),
                reason,
            },
            e => e,
        }
    }
}

impl From<CniError> for CriError {
    fn from(e: CniError) -> Self {
        CriError::Internal(e.to_string())
    }
}

/// A port the pod publishes (the `portMappings` capability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// Traffic shaping (the `bandwidth` capability): rates in bits per second, bursts in bits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

/// The per-attachment runtime parameters (CNI_* variables and capability arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConf {
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    /// `CNI_ARGS` pairs, e.g. `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID`, `K8S_POD_UID`.
    pub args: Vec<(String, String)>,
    pub port_mappings: Vec<PortMapping>,
    pub bandwidth: Option<Bandwidth>,
}

impl RuntimeConf {
    /// The kubelet's CNI_ARGS for a pod (what containerd passes), with `IgnoreUnknown=1`.
    pub fn for_pod(
        sandbox_id: &str,
        netns: impl Into<PathBuf>,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Self {
        RuntimeConf {
            container_id: sandbox_id.to_string(),
            netns: netns.into(),
            ifname: DEFAULT_IFNAME.to_string(),
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), namespace.into()),
                ("K8S_POD_NAME".into(), name.into()),
                ("K8S_POD_INFRA_CONTAINER_ID".into(), sandbox_id.into()),
                ("K8S_POD_UID".into(), uid.into()),
            ],
            port_mappings: Vec::new(),
            bandwidth: None,
        }
    }

    fn cni_args(&self) -> String {
        self.args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The capability arguments a plugin declared it wants.
    fn runtime_config_for(&self, plugin: &Map<String, Value>) -> Option<Value> {
        let caps = plugin.get("capabilities")?.as_object()?;
        let wants = |c: &str| caps.get(c).and_then(Value::as_bool).unwrap_or(false);
        let mut rc = Map::new();
        if wants("portMappings") && !self.port_mappings.is_empty() {
            rc.insert("portMappings".into(), serde_json::json!(self.port_mappings));
        }
        if let (true, Some(bw)) = (wants("bandwidth"), &self.bandwidth) {
            rc.insert("bandwidth".into(), serde_json::json!(bw));
        }
        (!rc.is_empty()).then_some(Value::Object(rc))
    }
}

/// What an ADD set up: enough to CHECK and DEL it later, also from another daemon process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The config list as used for ADD.
    pub network: Value,
    pub runtime: RuntimeConf,
    /// The ADD result.
    pub result: Value,
}

impl Attachment {
    pub fn network_list(&self) -> Result<NetworkConfigList, CniError> {
        NetworkConfigList::from_list_json(self.network.to_string().as_bytes())
    }

    pub fn parsed_result(&self) -> Result<CniResult, CniError> {
        CniResult::parse(self.result.clone()).map_err(|reason| CniError::BadResult {
            plugin: "<cached>".into(),
            reason,
        })
    }
}

/// Runs CNI plugins found in `bin_dirs`.
#[derive(Debug, Clone)]
pub struct Cni {
    pub bin_dirs: Vec<PathBuf>,
}

impl Default for Cni {
    fn default() -> Self {
        Cni {
            bin_dirs: DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

impl Cni {
    pub fn new(bin_dirs: Vec<PathBuf>) -> Self {
        Cni { bin_dirs }
    }

    fn find(&self, plugin: &str) -> Result<PathBuf, CniError> {
        if !plugin.contains('/') {
            for d in &self.bin_dirs {
                let p = d.join(plugin);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(CniError::PluginNotFound {
            plugin: plugin.to_string(),
            dirs: self.bin_dirs.clone(),
        })
    }

    /// The config one plugin of `list` gets on stdin.
    fn plugin_config(
        list: &NetworkConfigList,
        plugin: &Map<String, Value>,
        rt: &RuntimeConf,
        prev: Option<&Value>,
    ) -> Value {
        let mut conf = plugin.clone();
        conf.insert("name".into(), Value::String(list.name.clone()));
        conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
        if let Some(prev) = prev {
            conf.insert("prevResult".into(), prev.clone());
        }
        if let Some(rc) = rt.runtime_config_for(plugin) {
            conf.insert("runtimeConfig".into(), rc);
        }
        Value::Object(conf)
    }

    /// Runs one plugin; answers its stdout (the result JSON for ADD, usually empty otherwise).
    async fn exec(
        &self,
        command: &'static str,
        plugin: &Map<String, Value>,
        conf: &Value,
        rt: &RuntimeConf,
    ) -> Result<Vec<u8>, CniError> {
        let ty = plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let path = self.find(&ty)?;
        let cni_path = std::env::join_paths(&self.bin_dirs).unwrap_or_default();
        let exec_err = |source| CniError::Exec {
            plugin: ty.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&path)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &rt.container_id)
            .env("CNI_NETNS", &rt.netns)
            .env("CNI_IFNAME", &rt.ifname)
            .env("CNI_ARGS", rt.cni_args())
            .env("CNI_PATH", cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(exec_err)?;
        let input = serde_json::to_vec(conf).unwrap_or_default();
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin may exit without reading its config (an early error): a broken pipe
            // then is no failure of ours; its exit status says what happened.
            let _ = stdin.write_all(&input).await;
        }
        let out = child.wait_with_output().await.map_err(exec_err)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        // A failing plugin prints a CNI error object on stdout.
        #[derive(Deserialize, Default)]
        struct Wire {
            #[serde(default)]
            code: u32,
            #[serde(default)]
            msg: String,
            #[serde(default)]
            details: String,
        }
        let e: Wire = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let msg = if e.msg.is_empty() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.is_empty() {
                format!("{}", out.status)
            } else {
                stderr
            }
        } else {
            e.msg
        };
        Err(CniError::Plugin {
            plugin: ty,
            command,
            code: e.code,
            msg,
            details: e.details,
        })
    }

    /// ADD: sets up the pod's network; the attachment holds what DEL and CHECK need.
    pub async fn add(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<(CniResult, Attachment), CniError> {
        let mut prev: Option<Value> = None;
        for plugin in &list.plugins {
            let t0 = std::time::Instant::now();
            let conf = Self::plugin_config(list, plugin, rt, prev.as_ref());
            let out = self.exec("ADD", plugin, &conf, rt).await?;
            let ty = plugin.get("type").and_then(Value::as_str).unwrap_or("?");
            tracing::debug!(plugin = ty, elapsed = ?t0.elapsed(), "cni ADD");
            let v: Value = serde_json::from_slice(&out).map_err(|e| CniError::BadResult {
                plugin: ty.to_string(),
                reason: e.to_string(),
            })?;
            prev = Some(v);
        }
        let raw = prev.unwrap_or(Value::Null);
        let result = CniResult::parse(raw.clone()).map_err(|reason| CniError::BadResult {
            plugin: list.name.clone(),
            reason,
        })?;
        let attachment = Attachment {
            network: list.to_json(),
            runtime: rt.clone(),
            result: raw,
        };
        Ok((result, attachment))
    }

    /// CHECK: asks each plugin whether the attachment is still as set up (0.4.0+ lists; a list
    /// with `disableCheck` passes without running anything).
    pub async fn check(&self, att: &Attachment) -> Result<(), CniError> {
        let list = att.network_list()?;
        if list.disable_check {
            return Ok(());
        }
        if !list.supports_check() {
            return Err(CniError::CheckUnsupported {
                network: list.name,
                version: list.cni_version,
            });
        }
        for plugin in &list.plugins {
            let conf = Self::plugin_config(&list, plugin, &att.runtime, Some(&att.result));
            self.exec("CHECK", plugin, &conf, &att.runtime).await?;
        }
        Ok(())
    }

    /// DEL: tears the attachment down, plugins in reverse order with the ADD result. Every
    /// plugin runs even if one fails (the first error is answered), so a half-torn-down pod does
    /// not keep its other resources.
    pub async fn del(&self, att: &Attachment) -> Result<(), CniError> {
        let list = att.network_list()?;
        self.del_with(&list, &att.runtime, Some(&att.result)).await
    }

    /// DEL without an ADD record (e.g. cleaning up after a failed ADD).
    pub async fn del_with(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        // prevResult on DEL is 0.4.0+.
        let prev = prev.filter(|_| list.supports_check());
        let mut first_err = None;
        for plugin in list.plugins.iter().rev() {
            let t0 = std::time::Instant::now();
            let conf = Self::plugin_config(list, plugin, rt, prev);
            if let Err(e) = self.exec("DEL", plugin, &conf, rt).await {
                first_err.get_or_insert(e);
            }
            let ty = plugin.get("type").and_then(Value::as_str).unwrap_or("?");
            tracing::debug!(plugin = ty, elapsed = ?t0.elapsed(), "cni DEL");
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The `NetworkReady` condition for a conf dir: not ready without a config, as containerd.
pub fn network_condition(conf_dir: &Path) -> Condition {
    match NetworkConfigList::load_dir(conf_dir) {
        Ok(Some(_)) => Condition::ready(Condition::NETWORK_READY),
        Ok(None) => Condition::not_ready(
            Condition::NETWORK_READY,
            "NetworkPluginNotReady",
            "Network plugin returns error: cni plugin not initialized",
        ),
        Err(e) => Condition::not_ready(
            Condition::NETWORK_READY,
            "NetworkPluginNotReady",
            format!("Network plugin returns error: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests;
