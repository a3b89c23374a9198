//! Legacy container links (`--link name[:alias]`).
//!
//! On the default bridge a link gives the linking container `/etc/hosts` entries (see
//! `Daemon::link_hosts`) and Docker's link environment variables ([`env_vars`]); on a
//! user-defined network it is a DNS alias only the linking container resolves
//! ([`dns_links`]).

use crate::model::Container;
use crate::network_model::DEFAULT_NETWORK;
use crate::{lock, Daemon};

/// `(alias, linked container's name)` for each link of an endpoint (`EndpointSettings.Links`,
/// or `HostConfig.Links` copied at create): `/child:/parent/alias` as Docker stores them, or a
/// plain `child[:alias]`.
pub(crate) fn dns_links(links: &[String]) -> Vec<(String, String)> {
    links
        .iter()
        .map(|link| {
            let (child, alias) = link.split_once(':').unwrap_or((link, link));
            let child = child.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            (alias.to_string(), child.to_string())
        })
        .collect()
}

/// One exposed port as `(number, protocol)`; `80` means `80/tcp`.
fn parse_port(key: &str) -> Option<(u16, String)> {
    let (num, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((num.parse().ok()?, proto.to_ascii_lowercase()))
}

/// Docker's environment for one link (moby `links.Link.ToEnv`): `name` is the link's
/// `/parent/alias`, `child_env` the linked container's `Config.Env`, `exposed` its
/// `ExposedPorts` keys.
pub(crate) fn env_vars(
    name: &str,
    child_ip: &str,
    child_env: &[String],
    exposed: &[String],
) -> Vec<String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let alias = last.to_ascii_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed.iter().filter_map(|k| parse_port(k)).collect();
    // TCP first, then by number within a protocol (moby's withTCPPriority).
    ports.sort_by(|(an, ap), (bn, bp)| {
        if ap == bp {
            an.cmp(bn)
        } else if ap == "tcp" {
            std::cmp::Ordering::Less
        } else if bp == "tcp" {
            std::cmp::Ordering::Greater
        } else {
            ap.cmp(bp)
        }
    });
    ports.dedup();
    let mut env = Vec::new();
    let prefix = |n: u16, p: &str| format!("{alias}_PORT_{n}_{}", p.to_ascii_uppercase());
    let mut start: Option<(u16, String)> = None;
    let mut end: Option<(u16, String)> = None;
    for (i, (num, proto)) in ports.iter().enumerate() {
        if i == 0 {
            env.push(format!("{alias}_PORT={proto}://{child_ip}:{num}"));
            start = Some((*num, proto.clone()));
            end = start.clone();
        }
        let pre = prefix(*num, proto);
        env.push(format!("{pre}={proto}://{child_ip}:{num}"));
        env.push(format!("{pre}_ADDR={child_ip}"));
        env.push(format!("{pre}_PORT={num}"));
        env.push(format!("{pre}_PROTO={proto}"));
        // Consecutive ports of one protocol form a range, announced once it ends.
        if let Some((en, ep)) = &end {
            if u32::from(*num) == u32::from(*en) + 1 && proto == ep {
                end = Some((*num, proto.clone()));
                if i < ports.len() - 1 {
                    continue;
                }
            }
        }
        if let (Some((sn, sp)), Some((en, ep))) = (&start, &end) {
            if (sn, sp) != (en, ep) {
                let pre = prefix(*sn, sp);
                env.push(format!("{pre}_START={sp}://{child_ip}:{sn}"));
                env.push(format!("{pre}_PORT_START={sn}"));
                env.push(format!("{pre}_END={ep}://{child_ip}:{en}"));
                env.push(format!("{pre}_PORT_END={en}"));
            }
        }
        start = Some((*num, proto.clone()));
        end = start.clone();
    }
    env.push(format!("{alias}_NAME={name}"));
    for v in child_env {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        // Set by builds, not meaningful for the linking container (as in Docker).
        if k == "HOME" || k == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{k}={val}"));
    }
    env
}

/// The `/parent/alias` a stored link (`/child:/parent/alias`, or a plain `child[:alias]` of
/// container `parent`) is known by.
fn link_name(link: &str, parent: &str) -> String {
    let (child, alias) = link.split_once(':').unwrap_or((link, link));
    if alias.starts_with('/') {
        alias.to_string()
    } else {
        let alias = if alias.is_empty() { child } else { alias };
        format!("/{parent}/{}", alias.trim_start_matches('/'))
    }
}

impl Daemon {
    /// `DELETE /containers/{parent}/{alias}?link=1` (`docker rm --link`): removes the legacy
    /// link `/parent/alias` from the parent's configuration and from its endpoints', with
    /// dockerd's answers: the link name must exist (404 `No such container: <name>`), and a
    /// plain container name is "the default link name" (500). The parent's running network
    /// keeps the link until its next start.
    pub fn remove_link(&self, key: &str) -> crate::Result<()> {
        use berth_api_types::ApiError;
        let name = format!("/{}", key.trim_start_matches('/'));
        let (parent_name, _) = name.rsplit_once('/').unwrap_or(("", &name));
        if parent_name.is_empty() {
            self.resolve_container(key)?;
            return Err(ApiError::internal(
                "Conflict, cannot remove the default link name of the container",
            ));
        }
        let parent = lock(&self.containers)
            .values()
            .find(|c| format!("/{}", c.name) == parent_name)
            .cloned();
        let Some(mut parent) = parent else {
            return Err(crate::model::no_such_container(key));
        };
        let links = parent.host_config.links.clone().unwrap_or_default();
        let keep: Vec<String> = links
            .iter()
            .filter(|l| link_name(l, &parent.name) != name)
            .cloned()
            .collect();
        let mut members = self.net.memberships(&parent.id);
        let mut members_changed = false;
        for m in &mut members {
            let before = m.links.len();
            m.links.retain(|l| link_name(l, &parent.name) != name);
            members_changed |= m.links.len() != before;
        }
        if keep.len() == links.len() && !members_changed {
            return Err(crate::model::no_such_container(key));
        }
        parent.host_config.links = (!keep.is_empty()).then_some(keep);
        self.save(&parent)?;
        if members_changed {
            for m in &members {
                self.store
                    .put_attachment(&parent.id, &m.key(), m)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            self.net.set_memberships(&parent.id, members);
        }
        Ok(())
    }

    /// The link environment of a default-bridge container about to start (nothing on other
    /// networks, as with Docker). Goes before the container's own `Env`, which wins.
    pub(crate) fn link_env(&self, c: &Container) -> crate::Result<Vec<String>> {
        let mut out = Vec::new();
        let on_default = self.net.endpoints(&c.id).iter().any(|ep| {
            self.net
                .network(&ep.network_id)
                .is_some_and(|n| n.name == DEFAULT_NETWORK)
        });
        if !on_default {
            return Ok(out);
        }
        for (alias, child) in dns_links(c.host_config.links.as_deref().unwrap_or_default()) {
            let Ok(child) = self.resolve_container(&child) else {
                continue;
            };
            let ip = self.net.endpoints(&child.id).into_iter().find(|ep| {
                self.net
                    .network(&ep.network_id)
                    .is_some_and(|n| n.name == DEFAULT_NETWORK)
            });
            let Some(ep) = ip else {
                continue;
            };
            let exposed: Vec<String> = child
                .config
                .exposed_ports
                .as_ref()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            out.extend(env_vars(
                &format!("/{}/{alias}", c.name),
                &ep.ip.to_string(),
                child.config.env.as_deref().unwrap_or_default(),
                &exposed,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn link_names_of_stored_and_plain_forms() {
        assert_eq!(link_name("/db:/web/d", "web"), "/web/d");
        assert_eq!(link_name("db:d", "web"), "/web/d");
        assert_eq!(link_name("db", "web"), "/web/db");
    }

    #[test]
    fn dns_links_from_stored_and_plain_forms() {
        assert_eq!(
            dns_links(&s(&["/srv:/cli/db", "web", "cache:kv"])),
            vec![
                ("db".to_string(), "srv".to_string()),
                ("web".to_string(), "web".to_string()),
                ("kv".to_string(), "cache".to_string()),
            ]
        );
    }

    #[test]
    fn env_like_docker() {
        let env = env_vars(
            "/parent/my-db",
            "172.30.0.5",
            &s(&[
                "PATH=/bin",
                "PASSWORD=gordon",
                "HOME=/root",
                "EMPTY=",
                "NOVALUE",
            ]),
            &s(&["6379/tcp", "53/udp"]),
        );
        assert_eq!(
            env,
            s(&[
                "MY_DB_PORT=tcp://172.30.0.5:6379",
                "MY_DB_PORT_6379_TCP=tcp://172.30.0.5:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.30.0.5",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.30.0.5:53",
                "MY_DB_PORT_53_UDP_ADDR=172.30.0.5",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_NAME=/parent/my-db",
                "MY_DB_ENV_PASSWORD=gordon",
                "MY_DB_ENV_EMPTY=",
            ])
        );
    }

    #[test]
    fn consecutive_ports_form_ranges() {
        let env = env_vars(
            "/p/web",
            "10.0.0.2",
            &[],
            &s(&["8002/tcp", "8000", "8001/tcp", "9000/tcp"]),
        );
        let ranges: Vec<&String> = env
            .iter()
            .filter(|e| e.contains("_START") || e.contains("_END"))
            .collect();
        assert_eq!(
            ranges,
            vec![
                "WEB_PORT_8000_TCP_START=tcp://10.0.0.2:8000",
                "WEB_PORT_8000_TCP_PORT_START=8000",
                "WEB_PORT_8000_TCP_END=tcp://10.0.0.2:8002",
                "WEB_PORT_8000_TCP_PORT_END=8002",
            ]
        );
        assert_eq!(env[0], "WEB_PORT=tcp://10.0.0.2:8000");
        assert!(env.contains(&"WEB_PORT_9000_TCP_PORT=9000".to_string()));
        // No ports: just the name.
        assert_eq!(env_vars("/p/x", "10.0.0.2", &[], &[]), s(&["X_NAME=/p/x"]));
    }
}
