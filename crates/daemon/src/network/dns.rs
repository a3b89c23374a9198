//! The embedded DNS servers of user-defined networks, and the view of the running endpoints
//! they answer from.

use super::*;

impl NetService {
    /// Serves DNS for a user-defined network on its gateway address (port 53).
    pub(super) fn start_dns(&self, n: &Network) -> std::io::Result<()> {
        self.dns
            .start(berth_network::dns::NetworkDns {
                network_id: n.id.clone(),
                listen: vec![std::net::SocketAddr::from((n.gateway, 53))],
                directory: std::sync::Arc::new(StateDirectory(self.state.clone())),
                upstreams: self.dns_upstreams.clone(),
            })
            .map(|_| ())
    }
}

/// The daemon's live endpoints, as the embedded DNS servers see them.
struct StateDirectory(std::sync::Arc<Mutex<State>>);

impl berth_network::dns::Directory for StateDirectory {
    fn endpoints(&self) -> Vec<berth_network::dns::DnsEndpoint> {
        dns_endpoints(&lock(&self.0))
    }
}

fn dns_endpoints(st: &State) -> Vec<berth_network::dns::DnsEndpoint> {
    st.endpoints
        .values()
        .flatten()
        .map(|ep| berth_network::dns::DnsEndpoint {
            container_id: ep.container_id.clone(),
            network_id: ep.network_id.clone(),
            addrs: std::iter::once(std::net::IpAddr::V4(ep.ip))
                .chain(ep.ipv6.map(std::net::IpAddr::V6))
                .collect(),
            names: ep.dns_names.clone(),
            links: ep.links.clone(),
            upstreams: ep.upstreams.clone(),
            // Reverse lookups answer `<container>.<network>` (the first DNS name is the
            // container's); default-bridge endpoints have none.
            ptr_name: ep.dns_names.first().and_then(|name| {
                let net = st.networks.get(&ep.network_id)?;
                Some(format!("{name}.{}", net.name))
            }),
            network_name: st
                .networks
                .get(&ep.network_id)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::test_endpoint as ep;

    #[test]
    fn dns_sees_every_running_endpoint() {
        let mut st = State::default();
        let mut a = ep("a", "n1", "10.0.0.2", &["a"]);
        a.links.push(("db".into(), "b".into()));
        st.endpoints.insert("a".into(), vec![a]);
        st.endpoints.insert(
            "b".into(),
            vec![
                ep("b", "n1", "10.0.0.3", &["b", "web"]),
                ep("b", "n2", "10.0.1.3", &["b"]),
            ],
        );
        let mut eps = dns_endpoints(&st);
        eps.sort_by(|x, y| x.addrs.cmp(&y.addrs));
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0].links, vec![("db".to_string(), "b".to_string())]);
        assert_eq!(eps[1].names, vec!["b", "web"]);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            berth_network::dns::resolve(&eps, "n1", ip("10.0.0.2"), "db", &[]),
            Some(vec![ip("10.0.0.3")])
        );
    }

    #[test]
    fn dns_lookup_returns_both_families() {
        let mut st = State::default();
        let mut b = ep("b", "n1", "10.0.0.3", &["b"]);
        b.ipv6 = Some("fd00:db8:1::3".parse().unwrap());
        st.endpoints.insert("b".into(), vec![b]);
        st.endpoints
            .insert("c".into(), vec![ep("c", "n1", "10.0.0.4", &["c"])]);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let eps = dns_endpoints(&st);
        let lookup =
            |name: &str| berth_network::dns::resolve(&eps, "n1", ip("10.0.0.2"), name, &[]);
        assert_eq!(lookup("b"), Some(vec![ip("10.0.0.3"), ip("fd00:db8:1::3")]));
        // An IPv4-only member still exists (AAAA gets an empty answer, not NXDOMAIN).
        assert_eq!(lookup("c"), Some(vec![ip("10.0.0.4")]));
    }
}
