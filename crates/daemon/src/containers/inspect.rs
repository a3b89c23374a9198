//! `GET /containers/{id}/json`.

use std::collections::BTreeMap;

use berth_api_types::container::{self as ct, InspectResponse};

use crate::model::Status;
use crate::sys::dir_size;
use crate::{Daemon, Result};

impl Daemon {
    pub fn container_inspect(&self, key: &str, size: bool) -> Result<InspectResponse> {
        let c = self.resolve_container(key)?;
        let rt = &self.runtime;
        let mut state = ct::State {
            status: c.state.status.as_str().to_string(),
            running: matches!(c.state.status, Status::Running | Status::Paused),
            paused: c.state.status == Status::Paused,
            restarting: c.state.status == Status::Restarting,
            oom_killed: c.state.oom_killed,
            dead: c.state.status == Status::Dead,
            pid: c.state.pid,
            exit_code: c.state.exit_code,
            error: c.state.error.clone(),
            started_at: c.state.started_at.clone(),
            finished_at: c.state.finished_at.clone(),
            health: c.health.clone(),
        };
        if !state.running {
            state.pid = 0;
        }
        let mut data = BTreeMap::new();
        data.insert(
            "UpperDir".to_string(),
            rt.upper_dir(&c.id).display().to_string(),
        );
        data.insert(
            "MergedDir".to_string(),
            rt.rootfs(&c.id).display().to_string(),
        );
        data.insert(
            "WorkDir".to_string(),
            rt.upper_dir(&c.id)
                .with_file_name("work")
                .display()
                .to_string(),
        );
        if let Ok(mut lowers) = self.lower_dirs(c.top_layer.as_deref()) {
            self.show_init_layer(&c, &mut lowers);
            data.insert(
                "LowerDir".to_string(),
                lowers
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
        let mut host_config = c.host_config.clone();
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = "json-file".to_string();
        }
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "bridge".to_string();
        }
        if host_config.restart_policy.name.is_empty() {
            host_config.restart_policy.name = "no".to_string();
        }
        let size_rw = size.then(|| dir_size(&rt.upper_dir(&c.id)) as i64);
        Ok(InspectResponse {
            id: c.id.clone(),
            created: c.created.clone(),
            path: c.path.clone(),
            args: c.args.clone(),
            state,
            image: c.image_id.clone(),
            resolv_conf_path: rt.resolv_conf_path(&c.id).display().to_string(),
            hostname_path: rt.hostname_path(&c.id).display().to_string(),
            hosts_path: rt.hosts_path(&c.id).display().to_string(),
            log_path: rt.log_path(&c.id).display().to_string(),
            name: format!("/{}", c.name),
            restart_count: c.restart_count,
            driver: berth_image::overlay::driver_name().to_string(),
            platform: "linux".to_string(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: (!c.exec_ids.is_empty()).then(|| c.exec_ids.clone()),
            host_config,
            graph_driver: ct::DriverData {
                data,
                name: berth_image::overlay::driver_name().to_string(),
            },
            size_rw,
            size_root_fs: size.then(|| size_rw.unwrap_or(0) + self.image_size(&c.image_id)),
            mounts: self.mount_points(&c),
            config: c.config.clone(),
            network_settings: self.with_network(&c, self.network_settings(&c)),
        })
    }
}
