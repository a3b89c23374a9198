//! A private berthd with a CNI network and a CRI client, for the CRI suites that drive pods
//! and containers and look at them from inside through ExecSync.

use crate::cri::*;
use crate::Daemon;

pub struct Env {
    pub d: Daemon,
    pub _net: CniNet,
    pub c: CriClient,
}

pub async fn env() -> Env {
    let net = CniNet::new();
    let args = net.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with_args(&args);
    d.load_busybox();
    let c = CriClient::connect(&d.cri_socket()).await;
    Env { d, _net: net, c }
}

pub fn ns_opts(
    network: api::NamespaceMode,
    pid: api::NamespaceMode,
    ipc: api::NamespaceMode,
) -> api::NamespaceOption {
    api::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        ..Default::default()
    }
}

impl Env {
    pub fn logs(&self) -> std::path::PathBuf {
        self.d.root.join("pod-logs")
    }

    pub async fn pod(
        &mut self,
        name: &str,
        ns: api::NamespaceOption,
        sysctls: &[(&str, &str)],
    ) -> (String, api::PodSandboxConfig) {
        let mut cfg = pod_config(name, &[], &self.logs());
        cfg.linux = Some(api::LinuxPodSandboxConfig {
            sysctls: sysctls
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(ns),
                ..Default::default()
            }),
            ..Default::default()
        });
        self.run_pod(cfg).await
    }

    /// RunPodSandbox of `cfg` as it is: the pod's id and config.
    pub async fn run_pod(&mut self, cfg: api::PodSandboxConfig) -> (String, api::PodSandboxConfig) {
        let id = self
            .c
            .rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        (id, cfg)
    }

    pub async fn create(
        &mut self,
        pod: &(String, api::PodSandboxConfig),
        cfg: api::ContainerConfig,
    ) -> Result<String, tonic::Status> {
        self.c
            .rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: pod.0.clone(),
                config: Some(cfg),
                sandbox_config: Some(pod.1.clone()),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    /// Creates and starts a container running `sleep` with the given security context.
    pub async fn run(
        &mut self,
        pod: &(String, api::PodSandboxConfig),
        name: &str,
        sc: api::LinuxContainerSecurityContext,
    ) -> String {
        self.start(pod, sleeper(name, sc)).await
    }

    /// Creates and starts a container from `cfg`.
    pub async fn start(
        &mut self,
        pod: &(String, api::PodSandboxConfig),
        cfg: api::ContainerConfig,
    ) -> String {
        let id = self.create(pod, cfg).await.expect("CreateContainer");
        self.c
            .rt
            .start_container(api::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("StartContainer");
        id
    }

    /// `sh -c script` in the container: (exit code, stdout + stderr).
    pub async fn sh(&mut self, id: &str, script: &str) -> (i32, String) {
        let r = self
            .c
            .rt
            .exec_sync(api::ExecSyncRequest {
                container_id: id.into(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                timeout: 10,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        let mut out = String::from_utf8_lossy(&r.stdout).to_string();
        out += &String::from_utf8_lossy(&r.stderr);
        (r.exit_code, out)
    }

    pub async fn out(&mut self, id: &str, script: &str) -> String {
        let (code, out) = self.sh(id, script).await;
        assert_eq!(code, 0, "{script}: {out}");
        out.trim().to_string()
    }

    pub async fn remove_pod(&mut self, id: &str) {
        self.c
            .rt
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .expect("RemovePodSandbox");
    }
}

pub fn sleeper(name: &str, sc: api::LinuxContainerSecurityContext) -> api::ContainerConfig {
    let mut cfg = container_config(name, &format!("exec sleep 10{}", name.len()));
    cfg.linux = Some(api::LinuxContainerConfig {
        security_context: Some(sc),
        ..Default::default()
    });
    cfg
}
