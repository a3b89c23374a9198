//! The `publish=`, `expose=` and `volume=` filters of `GET /containers/json`, as moby's
//! `includeContainerInList` applies them: `publish=` is the published (host) port, `expose=`
//! the container port, and `volume=` a volume name, a bind's host path or a destination.

use berth_api_types::container as ct;

use crate::model::MountRecord;

/// The container ports a container exposes, as `port/proto`: its `ExposedPorts` and the
/// ports its bindings publish.
pub(crate) fn exposed(c: &crate::model::Container) -> Vec<String> {
    let mut out: Vec<String> = c
        .config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
        .chain(c.host_config.port_bindings.iter().flat_map(|m| m.keys()))
        .map(|k| normalize(k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The host ports a container publishes, as `port/proto`: the fixed host ports of its
/// bindings, and the ports really bound while it runs (`live`, for ephemeral host ports).
pub(crate) fn published(bindings: Option<&ct::PortMap>, live: &[ct::Port]) -> Vec<String> {
    let mut out = Vec::new();
    for (key, list) in bindings.into_iter().flatten() {
        let proto = key.split_once('/').map_or("tcp", |(_, p)| p).to_lowercase();
        for b in list.iter().flatten() {
            let (lo, hi) = match b.host_port.split_once('-') {
                Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                None => (b.host_port.parse::<u16>(), b.host_port.parse::<u16>()),
            };
            if let (Ok(lo), Ok(hi)) = (lo, hi) {
                out.extend((lo.max(1)..=hi).map(|p| format!("{p}/{proto}")));
            }
        }
    }
    out.extend(
        live.iter()
            .filter_map(|p| p.public_port.filter(|p| *p > 0).map(|pp| (pp, &p.kind)))
            .map(|(pp, kind)| format!("{pp}/{}", kind.to_lowercase())),
    );
    out.sort();
    out.dedup();
    out
}

/// `80` and `80/TCP` as `80/tcp`.
fn normalize(key: &str) -> String {
    match key.split_once('/') {
        Some((p, proto)) => format!("{p}/{}", proto.to_lowercase()),
        None => format!("{key}/tcp"),
    }
}

/// Docker's `volume=` filter: a volume's name, a bind's (or other unnamed mount's) source,
/// or any mount's destination.
pub(crate) fn volume_matches(mounts: &[MountRecord], value: &str) -> bool {
    mounts.iter().any(|m| {
        m.destination == value
            || if m.name.is_empty() {
                m.source == value
            } else {
                m.name == value
            }
    })
}

/// `is-task=`: berth runs no swarm tasks, so `true` matches nothing and `false` everything.
pub(crate) fn is_task_value(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: &str, name: &str, source: &str, dest: &str) -> MountRecord {
        MountRecord {
            kind: kind.into(),
            name: name.into(),
            source: source.into(),
            destination: dest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn volume_filter_matches_names_bind_sources_and_destinations() {
        let mounts = vec![
            mount(
                "volume",
                "data",
                "/var/lib/berth/volumes/data/_data",
                "/data",
            ),
            mount("bind", "", "/srv/www", "/www"),
        ];
        for v in ["data", "/data", "/srv/www", "/www"] {
            assert!(volume_matches(&mounts, v), "{v}");
        }
        for v in ["/var/lib/berth/volumes/data/_data", "www", "/srv"] {
            assert!(!volume_matches(&mounts, v), "{v}");
        }
    }

    #[test]
    fn published_ports_are_host_ports() {
        let mut map = ct::PortMap::new();
        map.insert(
            "80/udp".into(),
            Some(vec![ct::PortBinding {
                host_ip: String::new(),
                host_port: "18181".into(),
            }]),
        );
        map.insert(
            "443/tcp".into(),
            Some(vec![ct::PortBinding {
                host_ip: String::new(),
                host_port: String::new(),
            }]),
        );
        map.insert(
            "53".into(),
            Some(vec![ct::PortBinding {
                host_ip: String::new(),
                host_port: "5300-5301".into(),
            }]),
        );
        let live = vec![ct::Port {
            ip: "0.0.0.0".into(),
            private_port: 443,
            public_port: Some(32768),
            kind: "tcp".into(),
        }];
        assert_eq!(
            published(Some(&map), &live),
            ["18181/udp", "32768/tcp", "5300/tcp", "5301/tcp"]
        );
        assert!(published(None, &[]).is_empty());
    }

    #[test]
    fn is_task_values() {
        assert_eq!(is_task_value("true"), Some(true));
        assert_eq!(is_task_value("false"), Some(false));
        assert_eq!(is_task_value("maybe"), None);
    }
}
