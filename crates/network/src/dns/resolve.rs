//! What a name means to the embedded DNS: pure functions over a snapshot of the running
//! endpoints, so the rules (names, aliases, short ids, links, the asker's networks,
//! search-domain stripping, reverse lookups, who may ask) are unit-tested without sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One container's endpoint on one network, as the DNS sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsEndpoint {
    pub container_id: String,
    pub network_id: String,
    /// The endpoint's addresses (IPv4 and, where the network has it, IPv6).
    pub addrs: Vec<IpAddr>,
    /// Names every member of the network resolves to `addrs`: container name, network
    /// aliases, short id; each also as `<name>.<network name>`, as with Docker.
    pub names: Vec<String>,
    /// The network's name (empty: none, no `<name>.<network>` names).
    pub network_name: String,
    /// Legacy `--link target:alias` on a user-defined network: `(alias, target name)`. Only
    /// this container resolves the alias (Docker's rule), to the addresses the target name
    /// has on the networks this container is on.
    pub links: Vec<(String, String)>,
    /// The container's own upstream servers (`docker run --dns`); empty: the network's.
    pub upstreams: Vec<SocketAddr>,
    /// What a reverse (PTR) lookup of `addrs` answers, `<container name>.<network name>`
    /// as with Docker; `None`: the address is left to the upstream servers.
    pub ptr_name: Option<String>,
}

/// The names a query may mean: the name itself (lowercase, no final dot), plus the name
/// with each search domain stripped, so `b.example.com` finds `b` when the host (and so the
/// container's resolv.conf) searches `example.com`.
pub fn candidates(name: &str, search: &[String]) -> Vec<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = vec![name.clone()];
    for dom in search {
        let dom = dom.trim_end_matches('.').to_ascii_lowercase();
        if dom.is_empty() {
            continue;
        }
        if let Some(short) = name.strip_suffix(&format!(".{dom}")) {
            if !short.is_empty() && !out.iter().any(|c| c == short) {
                out.push(short.to_string());
            }
        }
    }
    out
}

/// Whether `client` is a member of `network_id`, i.e. may use that network's DNS server.
pub fn is_member(eps: &[DnsEndpoint], network_id: &str, client: IpAddr) -> bool {
    let client = unmap(client);
    eps.iter()
        .any(|e| e.network_id == network_id && e.addrs.contains(&client))
}

/// `::ffff:a.b.c.d` (a v4 client seen on a dual-stack socket) as `a.b.c.d`.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses `name` has for `client`, which asked the server of `network_id`; `None`
/// when the name is no container the client can see (the caller forwards or says
/// NXDOMAIN).
///
/// As with Docker's per-container resolver, the asker sees the members of every network it
/// is on, not just the one whose server it asked; its own `--link` aliases come first.
pub fn resolve(
    eps: &[DnsEndpoint],
    network_id: &str,
    client: IpAddr,
    name: &str,
    search: &[String],
) -> Option<Vec<IpAddr>> {
    let (asker, networks) = visible_networks(eps, network_id, client);
    let wanted = candidates(name, search);
    let matches = |n: &str| wanted.iter().any(|w| n.eq_ignore_ascii_case(w));
    let mut found: Vec<IpAddr> = Vec::new();
    let mut push = |ips: &[IpAddr]| {
        for ip in ips {
            if !found.contains(ip) {
                found.push(*ip);
            }
        }
    };
    if let Some(id) = asker {
        let targets: Vec<&str> = eps
            .iter()
            .filter(|e| e.container_id == id)
            .flat_map(|e| e.links.iter())
            .filter(|(alias, _)| matches(alias))
            .map(|(_, target)| target.as_str())
            .collect();
        for e in eps
            .iter()
            .filter(|e| networks.contains(&e.network_id.as_str()))
        {
            if e.names
                .iter()
                .any(|n| targets.iter().any(|t| n.eq_ignore_ascii_case(t)))
            {
                push(&e.addrs);
            }
        }
    }
    for e in eps
        .iter()
        .filter(|e| networks.contains(&e.network_id.as_str()))
    {
        // `<name>.<network>`: the name on that network only.
        let qualified = |n: &str| {
            !e.network_name.is_empty()
                && wanted.iter().any(|w| {
                    w.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n))
                        && w.get(n.len()..)
                            .and_then(|r| r.strip_prefix('.'))
                            .is_some_and(|r| r.eq_ignore_ascii_case(&e.network_name))
                })
        };
        if e.names.iter().any(|n| matches(n) || qualified(n)) {
            push(&e.addrs);
        }
    }
    (!found.is_empty()).then_some(found)
}

/// The container asking (`client` on `network_id`), if it is one, and the networks whose
/// members it sees: every network it is on (just `network_id` for an unknown asker).
fn visible_networks<'a>(
    eps: &'a [DnsEndpoint],
    network_id: &'a str,
    client: IpAddr,
) -> (Option<&'a str>, Vec<&'a str>) {
    let client = unmap(client);
    let asker = eps
        .iter()
        .find(|e| e.network_id == network_id && e.addrs.contains(&client))
        .map(|e| e.container_id.as_str());
    let networks = match asker {
        Some(id) => eps
            .iter()
            .filter(|e| e.container_id == id)
            .map(|e| e.network_id.as_str())
            .collect(),
        None => vec![network_id],
    };
    (asker, networks)
}

/// The address a reverse-lookup name stands for: `d.c.b.a.in-addr.arpa` (all four octets)
/// or the 32 nibbles of an `ip6.arpa` name, any case, final dot optional. Partial names
/// (a whole subnet's zone) and anything else are `None`.
pub fn arpa_addr(name: &str) -> Option<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if let Some(labels) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let parts: Vec<&str> = labels.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        for (i, p) in parts.iter().rev().enumerate() {
            // Decimal without leading zeros (no "01"), as the reverse names are written.
            if p.is_empty()
                || p.len() > 3
                || (p.len() > 1 && p.starts_with('0'))
                || !p.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            octets[i] = p.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(labels) = name.strip_suffix(".ip6.arpa") {
        let parts: Vec<&str> = labels.split('.').collect();
        if parts.len() != 32 {
            return None;
        }
        let mut v: u128 = 0;
        for p in parts.iter().rev() {
            if p.len() != 1 {
                return None;
            }
            let nibble = u128::from(char::from(p.as_bytes()[0]).to_digit(16)?);
            v = (v << 4) | nibble;
        }
        return Some(IpAddr::V6(Ipv6Addr::from(v)));
    }
    None
}

/// The name a reverse lookup of `ip` gives `client`, which asked the server of `network_id`:
/// the `ptr_name` of the container with that address on one of the asker's networks (the
/// same members it resolves by name); `None` when that is no such container (the caller
/// forwards the question).
pub fn reverse(
    eps: &[DnsEndpoint],
    network_id: &str,
    client: IpAddr,
    ip: IpAddr,
) -> Option<String> {
    let (_, networks) = visible_networks(eps, network_id, client);
    eps.iter()
        .filter(|e| networks.contains(&e.network_id.as_str()))
        .find(|e| e.ptr_name.is_some() && e.addrs.contains(&ip))
        .and_then(|e| e.ptr_name.clone())
}

/// The upstream servers for names `client` (a member of `network_id`) asks about that are no
/// container: its own `--dns` servers if it has any.
pub fn upstreams_for(
    eps: &[DnsEndpoint],
    network_id: &str,
    client: IpAddr,
) -> Option<Vec<SocketAddr>> {
    let client = unmap(client);
    eps.iter()
        .find(|e| e.network_id == network_id && e.addrs.contains(&client))
        .filter(|e| !e.upstreams.is_empty())
        .map(|e| e.upstreams.clone())
}

/// The upstream servers and search domains from a resolv.conf: loopback nameservers are
/// skipped (they are the host's stub resolvers, unreachable from where containers' queries
/// would have gone).
pub fn upstream_resolvers(resolv: &str) -> (Vec<SocketAddr>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in resolv.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(ip) = w.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                    if !ip.is_loopback() {
                        servers.push(SocketAddr::new(ip, 53));
                    }
                }
            }
            Some("search") | Some("domain") => {
                search = w
                    .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
                    .collect()
            }
            _ => {}
        }
    }
    (servers, search)
}

/// Upstream servers configured explicitly (the daemon's `--dns`): `ip` or `ip:port`
/// (`[v6]:port`); loopback addresses are kept, since the server runs in the host's
/// namespace and can reach them.
pub fn parse_upstreams(list: &[String]) -> crate::Result<Vec<SocketAddr>> {
    list.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| crate::Error::NotAnIp(s.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::ep;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn world() -> Vec<DnsEndpoint> {
        vec![
            ep("a", "n1", &["10.0.0.2"], &["a"]),
            ep(
                "b",
                "n1",
                &["10.0.0.3", "fd00::3"],
                &["b", "web", "bbbbbbbbbbbb"],
            ),
            ep("c", "n2", &["10.0.1.2"], &["c"]),
            ep("c", "n1", &["10.0.0.4"], &["c", "cee"]),
            ep("d", "n2", &["10.0.1.3"], &["d"]),
        ]
    }

    #[test]
    fn names_aliases_and_short_ids_resolve_case_insensitively() {
        let w = world();
        let a = ip("10.0.0.2");
        assert_eq!(
            resolve(&w, "n1", a, "WEB", &[]),
            Some(vec![ip("10.0.0.3"), ip("fd00::3")])
        );
        assert_eq!(
            resolve(&w, "n1", a, "bbbbbbbbbbbb.", &[]),
            Some(vec![ip("10.0.0.3"), ip("fd00::3")])
        );
        assert_eq!(resolve(&w, "n1", a, "cee", &[]), Some(vec![ip("10.0.0.4")]));
        assert_eq!(resolve(&w, "n1", a, "nosuch", &[]), None);
    }

    #[test]
    fn names_qualified_with_the_network_resolve_on_that_network_only() {
        let w = world();
        let a = ip("10.0.0.2");
        assert_eq!(
            resolve(&w, "n1", a, "Web.N1.", &[]),
            Some(vec![ip("10.0.0.3"), ip("fd00::3")])
        );
        // c is on n1 and n2: qualified, only its n1 address.
        assert_eq!(
            resolve(&w, "n1", a, "c.n1", &[]),
            Some(vec![ip("10.0.0.4")])
        );
        // a is not on n2, and b is not on n2.
        assert_eq!(resolve(&w, "n1", a, "c.n2", &[]), None);
        assert_eq!(resolve(&w, "n1", a, "b.n2", &[]), None);
        assert_eq!(resolve(&w, "n1", a, "b.n1x", &[]), None);
    }

    #[test]
    fn the_asker_sees_only_its_own_networks() {
        let w = world();
        // d is only on n2: invisible from a.
        assert_eq!(resolve(&w, "n1", ip("10.0.0.2"), "d", &[]), None);
        // c is on both networks and sees d through n1's server.
        assert_eq!(
            resolve(&w, "n1", ip("10.0.0.4"), "d", &[]),
            Some(vec![ip("10.0.1.3")])
        );
        // Asked from n2 only (d), c is just its n2 address.
        assert_eq!(
            resolve(&w, "n2", ip("10.0.1.3"), "c", &[]),
            Some(vec![ip("10.0.1.2")])
        );
    }

    #[test]
    fn search_domains_are_stripped() {
        let w = world();
        let search = vec!["example.com".to_string()];
        assert_eq!(
            resolve(&w, "n1", ip("10.0.0.2"), "b.Example.com.", &search),
            Some(vec![ip("10.0.0.3"), ip("fd00::3")])
        );
        assert_eq!(
            candidates("x.y.example.com", &search),
            vec!["x.y.example.com".to_string(), "x.y".to_string()]
        );
        assert_eq!(candidates("example.com", &search), vec!["example.com"]);
    }

    #[test]
    fn links_are_private_to_the_linking_container() {
        let mut w = world();
        w[0].links.push(("db".into(), "b".into()));
        assert_eq!(
            resolve(&w, "n1", ip("10.0.0.2"), "db", &[]),
            Some(vec![ip("10.0.0.3"), ip("fd00::3")])
        );
        // c does not see a's link alias.
        assert_eq!(resolve(&w, "n1", ip("10.0.0.4"), "db", &[]), None);
        // A link to a container on no shared network resolves to nothing.
        w[0].links.push(("far".into(), "d".into()));
        assert_eq!(resolve(&w, "n1", ip("10.0.0.2"), "far", &[]), None);
    }

    #[test]
    fn a_containers_own_dns_servers_are_its_upstreams() {
        let mut w = world();
        w[0].upstreams = vec!["192.0.2.9:53".parse().unwrap()];
        assert_eq!(
            upstreams_for(&w, "n1", ip("10.0.0.2")),
            Some(vec!["192.0.2.9:53".parse().unwrap()])
        );
        assert_eq!(upstreams_for(&w, "n1", ip("10.0.0.3")), None);
        assert_eq!(upstreams_for(&w, "n2", ip("10.0.0.2")), None);
    }

    #[test]
    fn membership_is_by_address_on_that_network() {
        let w = world();
        assert!(is_member(&w, "n1", ip("10.0.0.2")));
        assert!(is_member(&w, "n1", ip("::ffff:10.0.0.2")));
        assert!(is_member(&w, "n1", ip("fd00::3")));
        assert!(!is_member(&w, "n2", ip("10.0.0.2")));
        assert!(!is_member(&w, "n1", ip("10.0.0.99")));
    }

    #[test]
    fn upstreams_skip_loopback_unless_configured() {
        let (servers, search) = upstream_resolvers(
            "nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nsearch Example.com.\n",
        );
        assert_eq!(servers, vec!["192.0.2.53:53".parse().unwrap()]);
        assert_eq!(search, vec!["example.com".to_string()]);
        assert_eq!(
            parse_upstreams(&["127.0.0.9".into(), "192.0.2.1:5353".into()]).unwrap(),
            vec![
                "127.0.0.9:53".parse().unwrap(),
                "192.0.2.1:5353".parse().unwrap()
            ]
        );
        assert!(parse_upstreams(&["nope".into()]).is_err());
    }

    #[test]
    fn arpa_names_parse_to_addresses() {
        assert_eq!(
            arpa_addr("3.0.18.172.in-addr.arpa."),
            Some(ip("172.18.0.3"))
        );
        assert_eq!(arpa_addr("255.0.0.10.IN-ADDR.ARPA"), Some(ip("10.0.0.255")));
        assert_eq!(
            arpa_addr("0.18.172.in-addr.arpa."),
            None,
            "a zone, not an address"
        );
        assert_eq!(arpa_addr("1.3.0.18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("256.0.18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("03.0.18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("x.0.18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("+3.0.18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("3..18.172.in-addr.arpa."), None);
        assert_eq!(arpa_addr("3.0.18.172.example.com."), None);
        assert_eq!(arpa_addr("in-addr.arpa."), None);
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        assert_eq!(arpa_addr(v6), Some(ip("fd00::3")));
        let v6 = "B.A.9.8.7.6.5.4.3.2.1.0.f.e.d.c.b.a.9.8.7.6.5.4.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(
            arpa_addr(v6),
            Some(ip("2001:db8:4567:89ab:cdef:123:4567:89ab"))
        );
        // Too few nibbles, a two-character label, not hex.
        assert_eq!(arpa_addr("3.0.d.f.ip6.arpa."), None);
        let long = format!("{}ip6.arpa.", "00.".repeat(32));
        assert_eq!(arpa_addr(&long), None);
        let bad = format!("g.{}ip6.arpa.", "0.".repeat(31));
        assert_eq!(arpa_addr(&bad), None);
    }

    #[test]
    fn reverse_lookups_see_the_askers_networks_only() {
        let w = world();
        let a = ip("10.0.0.2");
        assert_eq!(reverse(&w, "n1", a, ip("10.0.0.3")), Some("b.n1".into()));
        assert_eq!(reverse(&w, "n1", a, ip("fd00::3")), Some("b.n1".into()));
        // c's n1 address is c on n1.
        assert_eq!(reverse(&w, "n1", a, ip("10.0.0.4")), Some("c.n1".into()));
        // Not a container address, or one on a network a is not on.
        assert_eq!(reverse(&w, "n1", a, ip("10.0.0.99")), None);
        assert_eq!(reverse(&w, "n1", a, ip("10.0.1.3")), None);
        // c is on both networks: d's address is d on n2.
        assert_eq!(
            reverse(&w, "n1", ip("10.0.0.4"), ip("10.0.1.3")),
            Some("d.n2".into())
        );
        // An endpoint without a PTR name (the default bridge) answers nothing.
        let mut w = w;
        w[1].ptr_name = None;
        assert_eq!(reverse(&w, "n1", a, ip("10.0.0.3")), None);
    }
}
