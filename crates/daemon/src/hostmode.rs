//! `--network host`: the host's hostname and `/etc/hosts`, as Docker gives them.

use berth_api_types::container::HostConfig;

/// The hostname of a new container whose request names none: with `--network host` the
/// host's (as Docker's `newContainer` does), else the first 12 hex digits of its id.
pub(crate) fn default_hostname(network_mode: &str, id: &str) -> String {
    if network_mode == "host" {
        if let Some(h) = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
        {
            return h;
        }
    }
    crate::spec::default_hostname(id)
}

/// With `--network host` and no `--add-host`, Docker's `/etc/hosts` is a copy of the host's
/// (libnetwork's default sandbox); `None` otherwise.
pub(crate) fn hosts_file(hc: &HostConfig, host_hosts: &std::path::Path) -> Option<String> {
    let plain = hc.extra_hosts.as_deref().unwrap_or_default().is_empty();
    if hc.network_mode != "host" || !plain {
        return None;
    }
    std::fs::read_to_string(host_hosts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_network_takes_the_host_name() {
        let id = "0123456789abcdef0123";
        assert_eq!(default_hostname("bridge", id), "0123456789ab");
        assert_eq!(default_hostname("", id), "0123456789ab");
        let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert_eq!(default_hostname("host", id), host);
    }

    #[test]
    fn host_network_copies_the_host_hosts_file() {
        let d = tempfile::tempdir().unwrap();
        let hosts = d.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n10.1.2.3 db\n").unwrap();
        let mut hc = HostConfig {
            network_mode: "host".into(),
            ..Default::default()
        };
        assert_eq!(
            hosts_file(&hc, &hosts).as_deref(),
            Some("127.0.0.1 localhost\n10.1.2.3 db\n")
        );
        hc.extra_hosts = Some(vec!["x:10.0.0.1".into()]);
        assert_eq!(hosts_file(&hc, &hosts), None);
        hc.extra_hosts = None;
        hc.network_mode = "bridge".into();
        assert_eq!(hosts_file(&hc, &hosts), None);
    }
}
