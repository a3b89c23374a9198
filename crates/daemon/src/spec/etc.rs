//! Contents of the files berth bind-mounts over `/etc/hostname`, `/etc/hosts` and
//! `/etc/resolv.conf` (libnetwork `etchosts` / `resolvconf` behaviour).

use std::net::IpAddr;

use super::SpecError;

/// Docker's default hostname: the first 12 characters of the container id.
pub fn default_hostname(id: &str) -> String {
    id.chars().take(12).collect()
}

/// `/etc/hostname`: the hostname and a newline.
pub fn hostname_file_contents(hostname: &str) -> String {
    format!("{hostname}\n")
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

fn parse_extra_host(entry: &str) -> Result<(&str, &str), SpecError> {
    // `name=ip`, else `name:ip` split at the first colon (an IPv6 address keeps its own).
    let (name, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| SpecError::InvalidExtraHost(entry.to_string()))?;
    if name.is_empty() || name.contains(':') {
        return Err(SpecError::InvalidExtraHost(entry.to_string()));
    }
    let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => ip,
    };
    if ip.parse::<IpAddr>().is_err() {
        return Err(SpecError::InvalidExtraHostIp(ip.to_string()));
    }
    Ok((name, ip))
}

/// Checks `ExtraHosts` entries (`name:ip` or `name=ip`) at create time, as Docker does.
/// `host-gateway` must have been substituted by then.
pub fn validate_extra_hosts(extra_hosts: &[String]) -> Result<(), SpecError> {
    extra_hosts
        .iter()
        .try_for_each(|e| parse_extra_host(e).map(|_| ()))
}

/// Docker's `/etc/hosts` for a container without an address of its own (`--network none`, or
/// before the network is attached): the fixed loopback block, then one `ip\tname` line per
/// `ExtraHosts` entry. Entries that do not parse are skipped (reject them at create with
/// [`validate_extra_hosts`]).
pub fn hosts_file_contents(hostname: &str, domainname: &str, extra_hosts: &[String]) -> String {
    let valid: Vec<String> = extra_hosts
        .iter()
        .filter(|e| match parse_extra_host(e) {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(%err, "skipping extra host");
                false
            }
        })
        .cloned()
        .collect();
    hosts_file_with_address(hostname, domainname, &valid, None).unwrap_or_default()
}

/// [`hosts_file_contents`] plus, when the container has an address, the line
/// `ip\thostname[.domainname hostname]`. IPv6 entries keep their colons, optionally in brackets.
pub fn hosts_file_with_address(
    hostname: &str,
    domainname: &str,
    extra_hosts: &[String],
    container_ip: Option<&str>,
) -> Result<String, SpecError> {
    let addrs: Vec<IpAddr> = container_ip
        .map(|ip| {
            ip.parse()
                .map_err(|_| SpecError::InvalidExtraHost(ip.to_string()))
        })
        .transpose()?
        .into_iter()
        .collect();
    hosts_file_with_addresses(hostname, domainname, extra_hosts, &addrs)
}

/// [`hosts_file_contents`] plus one [`hosts_entry`] line for each of the container's
/// addresses, in order: libnetwork adds one for every address of every endpoint the
/// container joins.
pub fn hosts_file_with_addresses(
    hostname: &str,
    domainname: &str,
    extra_hosts: &[String],
    addrs: &[IpAddr],
) -> Result<String, SpecError> {
    let mut out = String::from(DEFAULT_HOSTS);
    for entry in extra_hosts {
        let (name, ip) = parse_extra_host(entry)?;
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for ip in addrs {
        out.push_str(&hosts_entry(ip, hostname, domainname));
        out.push('\n');
    }
    Ok(out)
}

/// The `/etc/hosts` line (without its newline) of one of the container's own addresses:
/// `ip\thostname`, or `ip\thostname.domainname hostname`.
pub fn hosts_entry(ip: &IpAddr, hostname: &str, domainname: &str) -> String {
    if domainname.is_empty() {
        format!("{ip}\t{hostname}")
    } else {
        format!("{ip}\t{hostname}.{domainname} {hostname}")
    }
}

/// Google's public resolvers: Docker's fallback when no usable nameserver remains.
const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// A container's `/etc/resolv.conf` derived from the host's.
///
/// `--dns`, `--dns-search` and `--dns-option` replace the host's nameservers, search domains
/// (`.` means none) and options. With a private network namespace (`private_netns`) loopback
/// nameservers (127.0.0.0/8, ::1) cannot be reached from the container and are dropped; when
/// none remain Docker's defaults (8.8.8.8, 8.8.4.4) are used. On the host network the host's
/// servers are kept as they are.
pub fn resolv_conf_contents(
    host_resolv_conf: &str,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
    private_netns: bool,
) -> String {
    let mut nameservers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other = Vec::new();
    for line in host_resolv_conf.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        match words.next() {
            Some("nameserver") => nameservers.extend(words.next().map(String::from)),
            // The last of `domain`/`search` wins, as in resolv.conf(5).
            Some("search") | Some("domain") => search = words.map(String::from).collect(),
            Some("options") => options.extend(words.map(String::from)),
            _ => other.push(trimmed.to_string()),
        }
    }
    if !dns.is_empty() {
        nameservers = dns.to_vec();
    } else if private_netns {
        nameservers.retain(|ns| !is_loopback(ns));
        if nameservers.is_empty() {
            nameservers = DEFAULT_NAMESERVERS
                .iter()
                .map(|s| (*s).to_string())
                .collect();
        }
    }
    if !dns_search.is_empty() {
        search = dns_search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !dns_options.is_empty() {
        options = dns_options.to_vec();
    }

    let mut out = String::new();
    for ns in &nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_defaults_to_short_id() {
        assert_eq!(default_hostname("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(hostname_file_contents("box"), "box\n");
    }

    #[test]
    fn hosts_file() {
        let got = hosts_file_with_address(
            "box",
            "",
            &[
                "db:10.0.0.5".into(),
                "v6:::1".into(),
                "eq=192.168.1.1".into(),
                "br:[fe80::1]".into(),
            ],
            Some("172.17.0.2"),
        )
        .unwrap();
        assert_eq!(
            got,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
10.0.0.5\tdb\n::1\tv6\n192.168.1.1\teq\nfe80::1\tbr\n172.17.0.2\tbox\n"
        );
        let got = hosts_file_with_address("box", "example.com", &[], Some("10.1.1.1")).unwrap();
        assert!(got.ends_with("10.1.1.1\tbox.example.com box\n"));
        assert!(validate_extra_hosts(&["nocolon".into()]).is_err());
        assert!(validate_extra_hosts(&["x:notanip".into()]).is_err());
        assert!(validate_extra_hosts(&["ok:1.2.3.4".into()]).is_ok());
        // the plain form skips bad entries instead of failing a start
        let got = hosts_file_contents("box", "", &["bad".into(), "db:10.0.0.5".into()]);
        assert!(got.ends_with("ff02::2\tip6-allrouters\n10.0.0.5\tdb\n"));
    }

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nnameserver ::1\n\
search corp.example\noptions edns0 trust-ad\n";

    #[test]
    fn resolv_conf_drops_loopback_on_private_netns() {
        assert_eq!(
            resolv_conf_contents(HOST, &[], &[], &[], true),
            "nameserver 1.1.1.1\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf_contents("nameserver 127.0.0.53\n", &[], &[], &[], true),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn resolv_conf_host_network_keeps_loopback() {
        assert_eq!(
            resolv_conf_contents("nameserver 127.0.0.53\n", &[], &[], &[], false),
            "nameserver 127.0.0.53\n"
        );
    }

    #[test]
    fn resolv_conf_overrides() {
        let got = resolv_conf_contents(
            HOST,
            &["9.9.9.9".into()],
            &["a.example".into(), "b.example".into()],
            &["ndots:2".into()],
            true,
        );
        assert_eq!(
            got,
            "nameserver 9.9.9.9\nsearch a.example b.example\noptions ndots:2\n"
        );
        let got = resolv_conf_contents(HOST, &[], &[".".into()], &[], true);
        assert!(!got.contains("search"));
    }
}
