//! The `/etc/hosts` and `/etc/resolv.conf` berth writes for a container: at start, and again
//! when a running container joins or leaves a network, as libnetwork keeps them.
//!
//! libnetwork adds an `address hostname` line for each address of each endpoint a container
//! joins and, since Docker 25, removes the lines of an endpoint's addresses when it leaves
//! (dockerd 20.10 dropped all of them then; berth follows the newer rule). The files are
//! bind-mounted into the container, so they are rewritten in place (same inode): lines are
//! added and removed, anything else in them stays, edits made inside included.
//!
//! Docker's containers ask the embedded DNS at 127.0.0.11 in their own namespace; berth's
//! ask it on the gateway of one of their user-defined networks
//! ([`crate::network`]'s `dns_address`), which can change when the container joins or leaves
//! a network: resolv.conf is then written again for the new address. A container that left
//! its last user-defined network gets the nameservers a default-bridge container gets.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use berth_api_types::ApiError;

use crate::model::Container;
use crate::network::Attached;
use crate::{internal, spec, Daemon, Result};

/// `hosts` with `add` appended and the lines equal to one of `remove` taken out.
pub(crate) fn edit_hosts(hosts: &str, add: &[String], remove: &[String]) -> String {
    let mut out: String = hosts
        .lines()
        .filter(|l| !remove.iter().any(|r| r == l.trim_end()))
        .map(|l| format!("{l}\n"))
        .collect();
    for line in add {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Replaces the contents of `path` without replacing the file, so a bind mount of it shows
/// the new contents.
fn rewrite_in_place(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

impl Daemon {
    /// The `/etc/hosts` of a container about to start.
    pub(crate) fn hosts_for_start(
        &self,
        c: &Container,
        attached: Option<&Attached>,
    ) -> Result<String> {
        let hc = &c.host_config;
        let (hostname, domainname) = (&c.config.hostname, &c.config.domainname);
        let hosts = match attached {
            Some(a) => {
                let mut extra_hosts = hc.extra_hosts.clone().unwrap_or_default();
                extra_hosts.extend(self.link_hosts(c)?);
                spec::hosts_file_with_addresses(hostname, domainname, &extra_hosts, &a.addrs)
                    .map_err(|e| ApiError::invalid(e.to_string()))?
            }
            None => spec::hosts_file_contents(
                hostname,
                domainname,
                hc.extra_hosts.as_deref().unwrap_or_default(),
            ),
        };
        Ok(crate::hostmode::hosts_file(hc, Path::new("/etc/hosts")).unwrap_or(hosts))
    }

    /// A container's `/etc/resolv.conf`: the embedded DNS at `dns` on a user-defined network
    /// (the container's `--dns` servers are its upstreams there), else `--dns`, the daemon's
    /// `--dns`, or the host's nameservers.
    pub(crate) fn resolv_conf_for(&self, c: &Container, dns: Option<Ipv4Addr>) -> String {
        let hc = &c.host_config;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let servers = match dns {
            Some(ip) => vec![ip.to_string()],
            None => hc
                .dns
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| crate::network::daemon_nameservers(&self.cfg.dns)),
        };
        spec::resolv_conf_contents(
            &host_resolv,
            &servers,
            hc.dns_search.as_deref().unwrap_or_default(),
            hc.dns_options.as_deref().unwrap_or_default(),
            hc.network_mode != "host",
        )
    }

    /// After a running container joined a network with the addresses `joined`, or left one
    /// that had `left`: its `/etc/hosts` gains or loses their lines, and its resolv.conf
    /// follows the embedded DNS address (it was `dns_before`).
    pub(crate) fn etc_files_follow(
        &self,
        c: &Container,
        joined: &[IpAddr],
        left: &[IpAddr],
        dns_before: Option<Ipv4Addr>,
    ) -> Result<()> {
        let (hostname, domainname) = (&c.config.hostname, &c.config.domainname);
        let lines = |addrs: &[IpAddr]| -> Vec<String> {
            addrs
                .iter()
                .map(|ip| spec::hosts_entry(ip, hostname, domainname))
                .collect()
        };
        let hosts_path = self.runtime.hosts_path(&c.id);
        if let Ok(hosts) = std::fs::read_to_string(&hosts_path) {
            let edited = edit_hosts(&hosts, &lines(joined), &lines(left));
            if edited != hosts {
                rewrite_in_place(&hosts_path, &edited)
                    .map_err(|e| internal(format!("updating {}: {e}", hosts_path.display())))?;
            }
        }
        let dns = self.net.dns_address_of(&c.id);
        if dns != dns_before {
            let path = self.runtime.resolv_conf_path(&c.id);
            rewrite_in_place(&path, &self.resolv_conf_for(c, dns))
                .map_err(|e| internal(format!("updating {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lines_come_and_go_and_the_rest_stays() {
        let base = "127.0.0.1\tlocalhost\n10.0.0.2\tabc\n192.0.2.9\tmine\n";
        let joined = edit_hosts(base, &["10.0.1.2\tabc".into()], &[]);
        assert_eq!(joined, format!("{base}10.0.1.2\tabc\n"));
        // Leaving the first network takes its line only; a line added inside stays.
        let left = edit_hosts(&joined, &[], &["10.0.0.2\tabc".into()]);
        assert_eq!(
            left,
            "127.0.0.1\tlocalhost\n192.0.2.9\tmine\n10.0.1.2\tabc\n"
        );
        // A file without a final newline gets one.
        assert_eq!(edit_hosts("a\tb", &[], &[]), "a\tb\n");
    }

    #[test]
    fn rewriting_keeps_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "a much longer first version\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        rewrite_in_place(&p, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    }
}
