//! What survives a daemon restart: the endpoints of running containers, recorded as JSON
//! under `<exec-root>/network/endpoints/` (they live exactly as long as the running
//! containers, which do not survive a reboot either), so a restarted daemon re-marks their
//! addresses and host ports as taken and rebuilds its rules from them.

use super::*;

impl NetService {
    pub(super) fn endpoints_dir(&self) -> PathBuf {
        self.exec_root.join("network").join("endpoints")
    }
    pub(super) fn endpoint_file(&self, id: &str) -> PathBuf {
        self.endpoints_dir().join(format!("{id}.json"))
    }

    /// Daemon start: brings up the bridges, re-marks the addresses and ports of containers
    /// still running (`running`), removes what a crash left behind, and installs the rules.
    pub(crate) fn restore(&self, running: &[String]) -> std::result::Result<(), NetError> {
        if self.ip_forward {
            // As dockerd does at start (`--ip-forward`, on by default).
            match berth_network::ops::enable_ipv4_forwarding() {
                Ok(true) => tracing::info!("turned on IPv4 forwarding (net.ipv4.ip_forward)"),
                Ok(false) => {}
                Err(e) => tracing::warn!("turning on IPv4 forwarding: {e}"),
            }
        }
        let networks: Vec<Network> = lock(&self.state).networks.values().cloned().collect();
        for n in &networks {
            self.bring_up_bridge(n)?;
        }
        self.refresh_host_firewall();
        let mut keep = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.endpoints_dir()) {
            for e in dir.flatten() {
                let path = e.path();
                let Some(id) = path.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                    continue;
                };
                let eps: Option<Vec<Endpoint>> = std::fs::read(&path)
                    .ok()
                    .and_then(|raw| serde_json::from_slice(&raw).ok());
                match eps {
                    Some(eps) if running.contains(&id) => {
                        let mut st = lock(&self.state);
                        let mut fds = Vec::new();
                        let mut proxies = crate::network_v6::loopback_proxies(&id, &eps);
                        for ep in &eps {
                            if let Some(pool) = st.pools.get_mut(&ep.network_id) {
                                if let Err(e) = pool.reserve(ep.ip) {
                                    tracing::warn!(container = %id, "re-marking {}: {e}", ep.ip);
                                }
                            }
                            if let (Some(ip6), Some(pool)) =
                                (ep.ipv6, st.pools6.get_mut(&ep.network_id))
                            {
                                if let Err(e) = pool.reserve(ip6) {
                                    tracing::warn!(container = %id, "re-marking {ip6}: {e}");
                                }
                            }
                            for p in &ep.ports {
                                let w = WantedPort {
                                    proto: p.proto.clone(),
                                    host_ip: p.host_ip,
                                    host_ports: (p.host_port, p.host_port),
                                    container_port: p.container_port,
                                };
                                match take_port(ep, &w, self.port_driver.as_deref()) {
                                    Ok((held, _)) => {
                                        fds.extend(held.fds);
                                        proxies.extend(held.proxy);
                                    }
                                    Err(e) => {
                                        tracing::warn!(container = %id, "re-publishing port {}: {e}", p.host_port)
                                    }
                                }
                            }
                            keep.push(ep.host_ifname.clone());
                        }
                        st.reservations.insert(id.clone(), fds);
                        st.proxies6.insert(id.clone(), proxies);
                        st.endpoints.insert(id, eps);
                    }
                    other => {
                        for ep in other.unwrap_or_default() {
                            let _ = self.ops.delete_link(&ep.host_ifname);
                        }
                        let _ = self.netns.remove(&self.netns_path(&id));
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        // Interfaces on our bridges that no running container owns are leftovers.
        for n in &networks {
            for port in self.ops.bridge_ports(&n.bridge) {
                if !keep.contains(&port) {
                    tracing::info!(interface = %port, "removing a stale interface");
                    let _ = self.ops.delete_link(&port);
                }
            }
        }
        // Namespaces of containers that are gone.
        if let Ok(dir) = std::fs::read_dir(self.exec_root.join("netns")) {
            for e in dir.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                if !running.contains(&id) {
                    let _ = self.netns.remove(&e.path());
                }
            }
        }
        self.apply_rules()
    }

    pub(super) fn persist(&self, id: &str) -> std::result::Result<(), NetError> {
        let eps = lock(&self.state).endpoints.get(id).cloned();
        let path = self.endpoint_file(id);
        let failed = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| NetError::Persist { path, source }
        };
        match eps {
            Some(eps) => {
                let dir = self.endpoints_dir();
                std::fs::create_dir_all(&dir).map_err(failed(&dir))?;
                let tmp = path.with_extension("tmp");
                let body = serde_json::to_vec(&eps)?;
                std::fs::write(&tmp, body).map_err(failed(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(failed(&path))
            }
            None => {
                let _ = std::fs::remove_file(&path);
                Ok(())
            }
        }
    }
}
