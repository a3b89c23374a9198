//! `GET /containers/json`: the summaries and their `Status` text.

use berth_api_types::container::{self as ct, Summary};
use berth_services::ContainerListOptions;

use super::filters::ListFilters;
use crate::model::{unix_seconds, Container, Status};
use crate::sys::dir_size;
use crate::units::human_duration;
use crate::{lock, Daemon, Result};

impl Daemon {
    pub fn container_list(&self, opts: ContainerListOptions) -> Result<Vec<Summary>> {
        let mut all: Vec<Container> = lock(&self.containers).values().cloned().collect();
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let filters = ListFilters::parse(self, &opts.filters)?;
        let mut out = Vec::new();
        for c in &all {
            // As in Docker, a limit (`ps -n`, `ps -l`) lists containers in any state.
            if !opts.all
                && opts.limit.is_none()
                && !c.state.status.is_active()
                && !filters.wants_stopped()
            {
                continue;
            }
            if !filters.matches(c, &all) {
                continue;
            }
            out.push(self.summary(c, opts.size));
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn summary(&self, c: &Container, size: bool) -> Summary {
        let command = std::iter::once(c.path.clone())
            .chain(c.args.iter().cloned())
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" ");
        let size_rw = size.then(|| dir_size(&self.runtime.upper_dir(&c.id)) as i64);
        let ns = self.with_network(c, self.network_settings(c));
        Summary {
            id: c.id.clone(),
            names: vec![format!("/{}", c.name)],
            image: c.config.image.clone(),
            image_id: c.image_id.clone(),
            command,
            created: unix_seconds(&c.created),
            ports: self.summary_ports(c),
            size_rw,
            size_root_fs: size.then(|| size_rw.unwrap_or(0) + self.image_size(&c.image_id)),
            labels: c.config.labels.clone().unwrap_or_default(),
            state: c.state.status.as_str().to_string(),
            status: status_text(c),
            host_config: ct::SummaryHostConfig {
                network_mode: if c.host_config.network_mode.is_empty() {
                    "bridge".to_string()
                } else {
                    c.host_config.network_mode.clone()
                },
                annotations: c.host_config.annotations.clone().filter(|a| !a.is_empty()),
            },
            network_settings: ct::SummaryNetworkSettings {
                networks: ns.networks,
            },
            mounts: self.mount_points(c),
            health: Some(crate::health::summary(c)),
        }
    }
}

/// Docker's `Status` column: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
fn status_text(c: &Container) -> String {
    let now = chrono::Utc::now().timestamp();
    match c.state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!(
            "Up {}{}",
            human_duration(now - unix_seconds(&c.state.started_at)),
            crate::health::status_suffix(c)
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - unix_seconds(&c.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human_duration(now - unix_seconds(&c.state.finished_at))
        ),
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human_duration(now - unix_seconds(&c.state.finished_at))
        ),
    }
}
