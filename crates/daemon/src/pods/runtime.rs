//! Version, Status (RuntimeReady; NetworkReady from the CNI config directory), the pod CIDR
//! the kubelet hands over, and the cgroup driver.

use async_trait::async_trait;
use berth_cri::backend::RuntimeBackend;
use berth_cri::types::{CgroupDriver, Condition, RuntimeStatus, RuntimeVersion};
use berth_cri::{cni, CriResult};

use super::PodService;
use crate::lock;

#[async_trait]
impl RuntimeBackend for PodService {
    async fn version(&self) -> CriResult<RuntimeVersion> {
        Ok(RuntimeVersion {
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    async fn status(&self, verbose: bool) -> CriResult<RuntimeStatus> {
        let mut info = std::collections::HashMap::new();
        if verbose {
            info.insert(
                "config".to_string(),
                serde_json::json!({
                    "cniConfDir": self.cfg.cni_conf_dir,
                    "cniBinDirs": self.cfg.cni_bin_dirs,
                    "podCIDR": *lock(&self.pod_cidr),
                })
                .to_string(),
            );
        }
        Ok(RuntimeStatus {
            conditions: vec![
                Condition::ready(Condition::RUNTIME_READY),
                cni::network_condition(&self.cfg.cni_conf_dir),
            ],
            info,
            runtime_handlers: vec![berth_cri::api::RuntimeHandler {
                name: String::new(),
                features: Some(berth_cri::api::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: self.daemon.host.sys.kernel.mount_setattr,
                    user_namespaces: false,
                }),
            }],
            features: Some(berth_cri::api::RuntimeFeatures {
                supplemental_groups_policy: true,
                user_namespaces_host_network: false,
            }),
        })
    }

    async fn update_runtime_config(&self, pod_cidr: String) -> CriResult<()> {
        *lock(&self.pod_cidr) = pod_cidr;
        Ok(())
    }

    async fn cgroup_driver(&self) -> CriResult<CgroupDriver> {
        Ok(CgroupDriver::Cgroupfs)
    }
}
