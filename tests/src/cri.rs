//! CRI test helpers: the generated gRPC clients of berth-cri connected to a test daemon's
//! `cri.sock`, and a private CNI network (bridge + host-local + loopback from Debian's
//! containernetworking-plugins in /usr/lib/cni) in a temporary conf dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub use berth_cri::api;
use berth_cri::api::image_service_client::ImageServiceClient;
use berth_cri::api::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::Daemon;

pub const PLUGIN_DIR: &str = "/usr/lib/cni";

static NET_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The runtime and image clients over a unix socket.
pub struct CriClient {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
}

impl CriClient {
    pub async fn connect(socket: &Path) -> CriClient {
        let p = socket.to_path_buf();
        let channel = tonic::transport::Endpoint::try_from("http://cri")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_| {
                let p = p.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(p).await?,
                    ))
                }
            }))
            .await
            .expect("connecting to cri.sock");
        CriClient {
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        }
    }
}

impl Daemon {
    /// The daemon's CRI socket (the default, `<exec-root>/cri.sock`).
    pub fn cri_socket(&self) -> PathBuf {
        self.root.join("exec/cri.sock")
    }
}

/// Whether the CNI plugins the tests use are installed.
pub fn cni_plugins_present() -> bool {
    ["bridge", "host-local", "loopback"]
        .iter()
        .all(|p| Path::new(PLUGIN_DIR).join(p).exists())
}

/// A CNI config list in its own directory with a private bridge and subnet; the bridge and
/// host-local's state go on drop.
pub struct CniNet {
    pub dir: PathBuf,
    pub bridge: String,
    /// `10.x.y.0/24`.
    pub subnet: String,
    /// host-local's `dataDir`: one file per allocated IP.
    pub ipam_dir: PathBuf,
}

impl CniNet {
    pub fn new() -> CniNet {
        Self::with_plugins(Vec::new())
    }

    /// The network with `extra` plugin configs chained after `bridge` and `loopback` (e.g.
    /// `portmap`).
    pub fn with_plugins(extra: Vec<serde_json::Value>) -> CniNet {
        let n = NET_COUNTER.fetch_add(1, Ordering::SeqCst);
        let key = ((std::process::id() % 200) << 4) | (n % 16);
        let dir = PathBuf::from(format!("/var/tmp/berth-cni-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conf = dir.join("net.d");
        std::fs::create_dir_all(&conf).expect("cni conf dir");
        let bridge = format!("bcri{key}");
        let subnet = format!("10.{}.{}.0/24", 200 + (key >> 8), key & 0xff);
        let ipam_dir = dir.join("ipam");
        let list = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("berth-cri-test-{key}"),
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "dataDir": ipam_dir,
                          "ranges": [[{"subnet": subnet}]]}},
                {"type": "loopback"}
            ]
        });
        let mut list = list;
        if let Some(plugins) = list["plugins"].as_array_mut() {
            plugins.extend(extra);
        }
        std::fs::write(conf.join("10-test.conflist"), list.to_string()).expect("conflist");
        CniNet {
            dir,
            bridge,
            subnet,
            ipam_dir,
        }
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }

    /// berthd flags pointing at this network.
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            "--cni-conf-dir".into(),
            self.conf_dir().display().to_string(),
            "--cni-bin-dir".into(),
            PLUGIN_DIR.into(),
        ]
    }

    /// The IPs host-local has handed out and not yet released.
    pub fn allocated(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.ipam_dir.join(self.name())) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    fn name(&self) -> String {
        let raw = std::fs::read_to_string(self.conf_dir().join("10-test.conflist")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        v["name"].as_str().unwrap().to_string()
    }
}

impl Default for CniNet {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CniNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pod config with the given name and labels, logging into `log_dir`; namespaces as a
/// kubelet sets them for a pod without `shareProcessNamespace` (PID per container).
pub fn pod_config(name: &str, labels: &[(&str, &str)], log_dir: &Path) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("uid-{name}"),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    pid: api::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container config running `sh -c script`.
pub fn container_config(name: &str, script: &str) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        labels: [("app".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

/// ContainerStatus of `id` (not verbose).
pub async fn status(c: &mut CriClient, id: &str) -> api::ContainerStatus {
    c.rt.container_status(api::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .expect("ContainerStatus")
    .into_inner()
    .status
    .expect("status")
}
