//! The `filters` of `GET /containers/json`.

use berth_api_types::container as ct;
use berth_api_types::ApiError;

use crate::model::{Container, Status};
use crate::{lock, Daemon, Result};

/// The `filters` of `GET /containers/json`.
pub(super) struct ListFilters {
    ids: Vec<String>,
    names: Vec<String>,
    labels: Vec<String>,
    status: Vec<String>,
    exited: Vec<i64>,
    ancestors: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    health: Vec<String>,
    volumes: Vec<String>,
    /// `network=`: the names/ids asked for (and of the networks they resolve to), and the
    /// containers attached to those networks.
    networks: Vec<String>,
    network_members: std::collections::HashSet<String>,
    /// `publish=`: host ports, `expose=`: container ports, as `port/proto`.
    publish: Vec<String>,
    expose: Vec<String>,
    /// For `publish=`: each running container's bound host ports.
    live_ports: std::collections::HashMap<String, Vec<ct::Port>>,
    /// `is-task=`: berth has no swarm tasks.
    is_task: Option<bool>,
}

impl ListFilters {
    pub(super) fn parse(d: &Daemon, filters: &[(String, Vec<String>)]) -> Result<ListFilters> {
        let mut f = ListFilters {
            ids: vec![],
            names: vec![],
            labels: vec![],
            status: vec![],
            exited: vec![],
            ancestors: vec![],
            before: None,
            since: None,
            health: vec![],
            volumes: vec![],
            networks: vec![],
            network_members: Default::default(),
            publish: vec![],
            expose: vec![],
            live_ports: Default::default(),
            is_task: None,
        };
        for (k, vals) in filters {
            match k.as_str() {
                "id" => f.ids.extend(vals.iter().cloned()),
                "name" => f.names.extend(vals.iter().cloned()),
                "label" => f.labels.extend(vals.iter().cloned()),
                "status" => {
                    for v in vals {
                        if ![
                            "created",
                            "restarting",
                            "running",
                            "removing",
                            "paused",
                            "exited",
                            "dead",
                        ]
                        .contains(&v.as_str())
                        {
                            return Err(ApiError::invalid(format!("invalid filter 'status={v}'")));
                        }
                    }
                    f.status.extend(vals.iter().cloned())
                }
                "exited" => {
                    for v in vals {
                        f.exited.push(v.parse().map_err(|_| {
                            ApiError::invalid(format!("invalid filter 'exited={v}'"))
                        })?);
                    }
                }
                "ancestor" => {
                    for v in vals {
                        match d.resolve_image(v) {
                            Ok(img) => f.ancestors.push(img.id),
                            Err(_) => f.ancestors.push(format!("<unknown:{v}>")),
                        }
                    }
                }
                "before" => {
                    f.before = vals
                        .first()
                        .map(|v| d.resolve_container(v).map(|c| c.created))
                        .transpose()?
                }
                "since" => {
                    f.since = vals
                        .first()
                        .map(|v| d.resolve_container(v).map(|c| c.created))
                        .transpose()?
                }
                "health" => {
                    if let Some(v) = vals.iter().find(|v| {
                        !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none")
                    }) {
                        return Err(ApiError::invalid(format!(
                            "Unrecognised filter value for health: {v}"
                        )));
                    }
                    f.health.extend(vals.iter().cloned())
                }
                "volume" => f.volumes.extend(vals.iter().cloned()),
                "network" => {
                    for v in vals {
                        f.networks.push(v.clone());
                        if let Some(n) = d.net.find(v) {
                            // Running or not, the containers whose networks name it.
                            f.network_members.extend(
                                d.net
                                    .all_memberships()
                                    .into_iter()
                                    .filter(|m| m.is_of(&n))
                                    .map(|m| m.container_id),
                            );
                            f.network_members
                                .extend(d.net.members(&n.id).into_iter().map(|(id, _)| id));
                            f.networks.extend([n.id, n.name]);
                        }
                    }
                }
                "publish" => f.publish.extend(port_filter_values(vals)?),
                "expose" => f.expose.extend(port_filter_values(vals)?),
                "is-task" => {
                    for v in vals {
                        f.is_task = Some(crate::ps_filters::is_task_value(v).ok_or_else(|| {
                            ApiError::invalid(format!("Invalid filter 'is-task={v}'"))
                        })?);
                    }
                }
                "isolation" => {}
                other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
            }
        }
        if !f.publish.is_empty() {
            let running: Vec<Container> = lock(&d.containers).values().cloned().collect();
            for c in running.iter().filter(|c| c.state.status.is_active()) {
                f.live_ports.insert(c.id.clone(), d.summary_ports(c));
            }
        }
        Ok(f)
    }

    pub(super) fn wants_stopped(&self) -> bool {
        !self.exited.is_empty() || self.status.iter().any(|s| s != "running" && s != "paused")
    }

    pub(super) fn matches(&self, c: &Container, _all: &[Container]) -> bool {
        if !self.ids.is_empty() && !self.ids.iter().any(|i| c.id.starts_with(i.as_str())) {
            return false;
        }
        if !self.names.is_empty()
            && !self
                .names
                .iter()
                .any(|n| c.name.contains(n.trim_start_matches('/')))
        {
            return false;
        }
        let labels = c.config.labels.clone().unwrap_or_default();
        for l in &self.labels {
            let ok = match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l),
            };
            if !ok {
                return false;
            }
        }
        if !self.status.is_empty() && !self.status.iter().any(|s| s == c.state.status.as_str()) {
            return false;
        }
        let exited_matches =
            c.state.status == Status::Exited && self.exited.contains(&c.state.exit_code);
        if !self.exited.is_empty() && !exited_matches {
            return false;
        }
        if !self.ancestors.is_empty() && !self.ancestors.contains(&c.image_id) {
            return false;
        }
        if let Some(b) = &self.before {
            if c.created >= *b {
                return false;
            }
        }
        if let Some(s) = &self.since {
            if c.created <= *s {
                return false;
            }
        }
        if !self.health.is_empty() && !crate::health::filter_matches(c, &self.health) {
            return false;
        }
        if !self.volumes.is_empty()
            && !self
                .volumes
                .iter()
                .any(|v| crate::ps_filters::volume_matches(&c.mounts, v))
        {
            return false;
        }
        if !self.networks.is_empty()
            && !self.network_members.contains(&c.id)
            && !self.networks.iter().any(|n| {
                // `host` and `none` containers are on the network their mode names.
                let mode = c.host_config.network_mode.as_str();
                matches!(mode, "host" | "none") && n == mode
            })
        {
            return false;
        }
        if !self.publish.is_empty() || !self.expose.is_empty() {
            // As in Docker, either a published or an exposed port matching lists it.
            let live = self.live_ports.get(&c.id).map_or(&[][..], Vec::as_slice);
            let published =
                crate::ps_filters::published(c.host_config.port_bindings.as_ref(), live);
            let exposed = crate::ps_filters::exposed(c);
            if !published.iter().any(|p| self.publish.contains(p))
                && !exposed.iter().any(|p| self.expose.contains(p))
            {
                return false;
            }
        }
        self.is_task != Some(true)
    }
}

/// `publish=`/`expose=` values (`80`, `80/udp`, `8000-8002/tcp`) as the `port/proto` keys
/// a container's config uses.
fn port_filter_values(vals: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in vals {
        let (ports, proto) = v.split_once('/').unwrap_or((v.as_str(), "tcp"));
        let bad = || ApiError::invalid(format!("invalid port filter value: {v}"));
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
            None => (ports.parse::<u16>(), ports.parse::<u16>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi {
            return Err(bad());
        }
        out.extend((lo..=hi).map(|p| format!("{p}/{}", proto.to_lowercase())));
    }
    Ok(out)
}
