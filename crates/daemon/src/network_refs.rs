//! References a container's network settings make to other containers: `container:<x>`
//! network modes, legacy `--link`s, and `--mac-address` checks.

use std::path::PathBuf;

use berth_api_types::container as ct;
use berth_api_types::ApiError;

use crate::model::Container;
use crate::network::DEFAULT_NETWORK;
use crate::Daemon;

/// The container whose network namespace a `container:<id>` container joins.
pub(crate) struct Joined {
    pub id: String,
    pub netns: PathBuf,
    /// The target's init, whose user namespace a remapped container joins with its network.
    pub pid: i64,
    pub hostname: String,
    pub domainname: String,
}

/// Docker's check of a `--mac-address`: six colon- or dash-separated hex octets.
pub(crate) fn parse_mac(s: &str) -> crate::Result<String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(ApiError::invalid(format!("invalid MAC address {s}")));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

fn conflict_opt(what: &str) -> ApiError {
    ApiError::invalid(format!("conflicting options: {what}"))
}

impl Daemon {
    /// Create-time resolution of the containers a new container's network settings name:
    /// `container:<name>` becomes `container:<id>` and every `--link` target must exist (the
    /// options that conflict with the network mode were refused by `create_checks`).
    pub(crate) fn resolve_network_refs(
        &self,
        config: &ct::Config,
        hc: &mut ct::HostConfig,
    ) -> crate::Result<()> {
        if let Some(key) = hc.network_mode.strip_prefix("container:") {
            // As in Docker a missing target fails the start, not the create (a 404 here
            // would make the CLI try to pull the image).
            let target = self.resolve_container(key).ok();
            if config.mac_address.as_ref().is_some_and(|m| !m.is_empty()) {
                return Err(conflict_opt("mac-address and the network mode"));
            }
            if let Some(t) = target {
                hc.network_mode = format!("container:{}", t.id);
            }
        }
        if let Some(mac) = config.mac_address.as_ref().filter(|m| !m.is_empty()) {
            parse_mac(mac)?;
        }
        for link in hc.links.iter().flatten() {
            let name = link.split_once(':').map_or(link.as_str(), |(n, _)| n);
            let name = name.trim_start_matches('/');
            if let Err(e) = self.resolve_container(name) {
                return Err(ApiError::invalid(format!(
                    "could not get container for {name}: {}",
                    e.message
                )));
            }
        }
        Ok(())
    }

    /// `--link name[:alias]` as Docker records it in `HostConfig.Links`: `/child:/parent/alias`.
    pub(crate) fn normalize_links(&self, hc: &mut ct::HostConfig, parent: &str) {
        for link in hc.links.iter_mut().flatten() {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let name = name.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            let child = self
                .resolve_container(name)
                .map_or_else(|_| name.to_string(), |c| c.name);
            *link = format!("/{child}:/{parent}/{alias}");
        }
    }

    /// For a `container:<id>` container about to start: the running target whose namespace,
    /// hostname and /etc files it shares.
    pub(crate) fn join_target(&self, c: &Container) -> crate::Result<Option<Joined>> {
        let Some(key) = c.host_config.network_mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let t = self.resolve_container(key)?;
        if t.id == c.id {
            return Err(ApiError::invalid("cannot join own network"));
        }
        if t.state.status == crate::model::Status::Restarting {
            return Err(ApiError::conflict(format!(
                "Container {} is restarting, wait until the container is running",
                t.id
            )));
        }
        if !t.state.status.is_active() || t.state.pid <= 0 {
            return Err(ApiError::conflict(format!(
                "cannot join network namespace of a non running container: container {} is {}",
                t.name,
                t.state.status.as_str()
            )));
        }
        let mounted = self.net.netns_path(&t.id);
        let netns = if self.net.netns.is_mounted(&mounted) {
            mounted
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", t.state.pid))
        };
        Ok(Some(Joined {
            id: t.id.clone(),
            netns,
            pid: t.state.pid,
            hostname: t.config.hostname.clone(),
            domainname: t.config.domainname.clone(),
        }))
    }

    /// `/etc/hosts` entries (`names=ip`) for a default-bridge container's legacy `--link`s:
    /// the alias, the linked container's hostname and its name, as Docker writes them.
    pub(crate) fn link_hosts(&self, c: &Container) -> crate::Result<Vec<String>> {
        let mut out = Vec::new();
        let links = c.host_config.links.clone().unwrap_or_default();
        // Legacy links are the default bridge's (the container's endpoints exist by now).
        let on_default = self.net.endpoints(&c.id).iter().any(|ep| {
            self.net
                .network(&ep.network_id)
                .is_some_and(|n| n.name == DEFAULT_NETWORK)
        });
        if links.is_empty() || !on_default {
            return Ok(out);
        }
        for link in &links {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let name = name.trim_start_matches('/');
            // `/parent/alias` as Docker stores it, or a plain alias.
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            let child = self.resolve_container(name).map_err(|e| {
                ApiError::invalid(format!("could not get container for {name}: {}", e.message))
            })?;
            let ip = self
                .net
                .endpoints(&child.id)
                .into_iter()
                .find(|ep| {
                    self.net
                        .network(&ep.network_id)
                        .is_some_and(|n| n.name == DEFAULT_NETWORK)
                })
                .map(|ep| ep.ip);
            if !child.state.status.is_active() {
                return Err(ApiError::invalid(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    child.name, c.name
                )));
            }
            // Like Docker, no entry for a linked container without a default-bridge address.
            let Some(ip) = ip else {
                continue;
            };
            let mut names = format!("{alias} {}", child.config.hostname);
            if alias != child.name {
                names.push(' ');
                names.push_str(&child.name);
            }
            out.push(format!("{names}={ip}"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_like_docker() {
        assert_eq!(parse_mac("02:42:AC:11:00:99").unwrap(), "02:42:ac:11:00:99");
        assert_eq!(parse_mac("02-42-ac-11-00-99").unwrap(), "02:42:ac:11:00:99");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:99:aa",
            "02:42:zz:11:00:99",
            "2:42:ac:11:00:99",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert_eq!(e.message, format!("invalid MAC address {bad}"));
        }
    }
}
