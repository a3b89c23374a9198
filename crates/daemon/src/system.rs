//! `/version` and `/info` from real values of this host and daemon.

use std::collections::BTreeMap;

use berth_api_types::system::{
    Commit, ComponentVersion, InfoResponse, Platform, Runtime, VersionResponse,
};
use berth_api_types::{API_VERSION, MIN_API_VERSION};

use crate::model::Status;
use crate::{lock, Daemon};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Shown where Docker shows its Go version.
const RUST_VERSION: &str = "rust";

fn git_commit() -> &'static str {
    option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().to_string())
        .unwrap_or_default()
}

fn os_release() -> (String, String) {
    let raw = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        raw.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> i64 {
    let raw = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    raw.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn arch() -> &'static str {
    berth_image::config::host_platform().0
}

impl Daemon {
    pub fn version(&self) -> VersionResponse {
        let mut details = BTreeMap::new();
        details.insert("ApiVersion".to_string(), API_VERSION.to_string());
        details.insert("MinAPIVersion".to_string(), MIN_API_VERSION.to_string());
        details.insert("Os".to_string(), "linux".to_string());
        details.insert("Arch".to_string(), arch().to_string());
        details.insert("KernelVersion".to_string(), kernel_version());
        details.insert("GitCommit".to_string(), git_commit().to_string());
        details.insert("GoVersion".to_string(), RUST_VERSION.to_string());
        details.insert("BuildTime".to_string(), String::new());
        details.insert("Experimental".to_string(), "false".to_string());
        VersionResponse {
            platform: Platform {
                name: "Berth Engine".to_string(),
            },
            components: vec![
                ComponentVersion {
                    name: "Engine".to_string(),
                    version: VERSION.to_string(),
                    details,
                },
                ComponentVersion {
                    name: "libcontainer".to_string(),
                    version: "0.7.0".to_string(),
                    details: BTreeMap::from([("GitCommit".to_string(), String::new())]),
                },
            ],
            version: VERSION.to_string(),
            api_version: API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: option_env!("BERTH_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            go_version: "n/a (rust)".to_string(),
            os: "linux".to_string(),
            arch: arch().to_string(),
            kernel_version: kernel_version(),
            experimental: false,
            build_time: String::new(),
        }
    }

    pub fn info(&self) -> InfoResponse {
        let ipv4_forwarding = crate::network_view::ipv4_forwarding();
        let sys = &self.host.sys;
        let mut warnings = sys.info_warnings();
        if !ipv4_forwarding {
            warnings.push("WARNING: IPv4 forwarding is disabled".to_string());
        }
        let rootless = self.cfg.rootless.as_ref();
        let no_cgroups = rootless.is_some_and(|r| !r.cgroups);
        if let Some(r) = rootless.filter(|_| no_cgroups) {
            // dockerd's words, and the limit warnings of a host without cgroups are moot.
            warnings.retain(|w| !w.starts_with("WARNING: No "));
            warnings.push(crate::rootless::no_cgroups_warning(r.host_cgroup_v2).to_string());
        }
        let (mut running, mut paused, mut stopped, mut total) = (0, 0, 0, 0);
        for c in lock(&self.containers).values() {
            total += 1;
            match c.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let (os, os_version) = os_release();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_string())
            .unwrap_or_default();
        let nfd = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as i64)
            .unwrap_or(0);
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "berth".to_string(),
            Runtime {
                path: self.cfg.shim_path.display().to_string(),
            },
        );
        let id = self.daemon_id();
        InfoResponse {
            id,
            containers: total,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: stopped,
            images: self.image_count(),
            driver: berth_image::overlay::driver_name().to_string(),
            driver_status: vec![
                ["Backing Filesystem".to_string(), "extfs".to_string()],
                ["Supports d_type".to_string(), "true".to_string()],
                ["Using metacopy".to_string(), "false".to_string()],
                ["Native Overlay Diff".to_string(), "true".to_string()],
                ["userxattr".to_string(), "false".to_string()],
            ],
            docker_root_dir: self.cfg.data_root.display().to_string(),
            plugins: serde_json::json!({"Volume": ["local"], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file"]}),
            memory_limit: sys.cgroup.memory_limit,
            swap_limit: sys.cgroup.swap_limit,
            kernel_memory_tcp: sys.cgroup.kernel_memory_tcp,
            cpu_cfs_period: sys.cgroup.cpu_cfs_period,
            cpu_cfs_quota: sys.cgroup.cpu_cfs_quota,
            cpu_shares: sys.cgroup.cpu_shares,
            cpu_set: sys.cgroup.cpuset,
            pids_limit: sys.cgroup.pids_limit,
            oom_kill_disable: sys.cgroup.oom_kill_disable,
            ipv4_forwarding,
            debug: false,
            n_fd: nfd,
            n_goroutines: 0,
            system_time: crate::model::now_rfc3339(),
            logging_driver: "json-file".to_string(),
            cgroup_driver: if no_cgroups { "none" } else { "cgroupfs" }.to_string(),
            cgroup_version: sys.cgroup_version.as_str().to_string(),
            n_events_listener: self.event_log.listeners() as i64,
            kernel_version: kernel_version(),
            operating_system: os,
            os_version,
            os_type: "linux".to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            ncpu: sys.ncpu,
            mem_total: mem_total(),
            index_server_address: "https://index.docker.io/v1/".to_string(),
            registry_config: serde_json::json!({
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}},
                "Mirrors": []
            }),
            generic_resources: None,
            http_proxy: std::env::var("HTTP_PROXY").unwrap_or_default(),
            https_proxy: std::env::var("HTTPS_PROXY").unwrap_or_default(),
            no_proxy: std::env::var("NO_PROXY").unwrap_or_default(),
            name: hostname,
            labels: Vec::new(),
            experimental_build: false,
            server_version: VERSION.to_string(),
            runtimes,
            default_runtime: "berth".to_string(),
            swarm: serde_json::json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
            live_restore_enabled: true,
            isolation: String::new(),
            init_binary: "docker-init".into(),
            containerd_commit: Commit::default(),
            runc_commit: Commit::default(),
            init_commit: Commit::default(),
            security_options: {
                let mut o = sys.security_options();
                if self.cfg.userns_remap.is_some() {
                    // dockerd's order: after seccomp and selinux, before cgroupns.
                    let at = o
                        .iter()
                        .position(|s| s == "name=cgroupns")
                        .unwrap_or(o.len());
                    o.insert(at, "name=userns".to_string());
                }
                if rootless.is_some() {
                    o.push("name=rootless".to_string());
                }
                o
            },
            product_license: String::new(),
            default_address_pools: Vec::new(),
            warnings,
            cdi_spec_dirs: Vec::new(),
        }
    }
}
