//! Which of a container's endpoints gives it its default gateway, and what follows that
//! endpoint when a running container joins or leaves a network.
//!
//! libnetwork keeps a sandbox's endpoints sorted (`Endpoint.Less` in its sandbox code): a
//! higher `GwPriority` first (API 1.48), then endpoints on non-internal networks, then those
//! with both an IPv4 and an IPv6 gateway before IPv6-only before IPv4-only, then by network
//! name. The first endpoint with an IPv4 gateway gives the IPv4 default route, the first
//! with an IPv6 gateway the IPv6 one, and published ports are programmed on the IPv4
//! gateway's endpoint ("external connectivity"). When a container joins a network that sorts
//! first, or the gateway's endpoint leaves, the default route and the ports move to the
//! endpoint that is now first; with none left the container has no default route and no
//! published ports (checked against dockerd 20.10, whose rule is the same without
//! priorities).

use std::cmp::Reverse;
use std::net::Ipv4Addr;

use crate::model::Container;
use crate::network_ports::wanted_ports;
use crate::{internal, lock};

use super::{Endpoint, NetService, Network, DEFAULT_NETWORK};

/// What the choice looks at for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate<'a> {
    /// The network's name.
    pub network: &'a str,
    pub priority: i64,
    pub internal: bool,
    /// The network has IPv6 (so the endpoint has an IPv6 gateway unless internal).
    pub ipv6: bool,
}

impl Candidate<'_> {
    /// libnetwork's join-info rank: 1 for an IPv4 gateway, 2 for an IPv6 one.
    fn gateways(&self) -> u8 {
        if self.internal {
            0
        } else {
            1 + if self.ipv6 { 2 } else { 0 }
        }
    }
}

/// The endpoints' indices in libnetwork's order.
pub(crate) fn order(c: &[Candidate]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..c.len()).collect();
    idx.sort_by_key(|&i| {
        let e = &c[i];
        (
            Reverse(e.priority),
            e.internal,
            Reverse(e.gateways()),
            e.network,
        )
    });
    idx
}

/// The endpoints that give the IPv4 and the IPv6 default route.
pub(crate) fn gateways(c: &[Candidate]) -> (Option<usize>, Option<usize>) {
    let sorted = order(c);
    let v4 = sorted.iter().copied().find(|&i| c[i].gateways() & 1 != 0);
    let v6 = sorted.iter().copied().find(|&i| c[i].gateways() & 2 != 0);
    (v4, v6)
}

/// The address of the embedded DNS server a container asks: the gateway of its first
/// user-defined network in gateway order (internal ones included: the server answers on
/// every user-defined network's gateway, and an on-link address needs no route). `None` when
/// it is on no user-defined network.
pub(crate) fn dns_address(c: &[Candidate], gateways4: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    order(c)
        .into_iter()
        .find(|&i| c[i].network != DEFAULT_NETWORK)
        .map(|i| gateways4[i])
}

impl NetService {
    /// The choice's view of a running container's endpoints.
    fn candidates<'a>(&self, nets: &'a [Option<Network>], eps: &[Endpoint]) -> Vec<Candidate<'a>> {
        nets.iter()
            .zip(eps)
            .map(|(n, ep)| Candidate {
                network: n.as_ref().map_or("", |n| n.name.as_str()),
                priority: ep.gw_priority,
                internal: n.as_ref().is_some_and(|n| n.internal),
                ipv6: ep.ipv6.is_some() && ep.gateway6.is_some(),
            })
            .collect()
    }

    fn networks_of(&self, eps: &[Endpoint]) -> Vec<Option<Network>> {
        let st = lock(&self.state);
        eps.iter()
            .map(|ep| st.networks.get(&ep.network_id).cloned())
            .collect()
    }

    /// The embedded DNS address of a running container (see [`dns_address`]).
    pub(crate) fn dns_address_of(&self, id: &str) -> Option<Ipv4Addr> {
        let eps = self.endpoints(id);
        let nets = self.networks_of(&eps);
        let gws: Vec<Ipv4Addr> = eps.iter().map(|e| e.gateway).collect();
        dns_address(&self.candidates(&nets, &eps), &gws)
    }

    /// After a running container's endpoints changed: its default routes point at the
    /// endpoints that give its gateways now, and its published ports move to the IPv4 one
    /// (or go, when none is left).
    pub(crate) fn follow_gateway(&self, c: &Container) -> crate::Result<()> {
        let eps = self.endpoints(&c.id);
        let nets = self.networks_of(&eps);
        let (g4, g6) = gateways(&self.candidates(&nets, &eps));
        let v4 = g4.map(|i| (eps[i].ifname.as_str(), eps[i].gateway));
        let v6 = g6.and_then(|i| eps[i].gateway6.map(|gw| (eps[i].ifname.as_str(), gw)));
        self.ops
            .set_default_routes(&self.netns_path(&c.id), v4, v6)
            .map_err(|e| internal(format!("moving the default route: {e}")))?;
        let wanted = wanted_ports(c)?;
        let holder = eps.iter().position(|e| !e.ports.is_empty());
        if wanted.is_empty() || (holder.is_some() && holder == g4) {
            return Ok(());
        }
        // The endpoint that had them may be gone already (it left): its host sockets still
        // hold the ports, and the rules name its address until they are applied again.
        self.unpublish(&c.id);
        if let Some(i) = g4 {
            let mut ep = eps[i].clone();
            ep.ports.clear();
            self.publish(c, &mut ep, &wanted)?;
            let mut st = lock(&self.state);
            if let Some(slot) = st
                .endpoints
                .get_mut(&c.id)
                .and_then(|list| list.iter_mut().find(|e| e.endpoint_id == ep.endpoint_id))
            {
                *slot = ep;
            }
        }
        self.persist(&c.id)?;
        self.apply_rules()
            .map_err(|e| internal(format!("publishing ports: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(network: &str, priority: i64, internal: bool, ipv6: bool) -> Candidate<'_> {
        Candidate {
            network,
            priority,
            internal,
            ipv6,
        }
    }

    #[test]
    fn the_network_name_decides_between_equals() {
        // dockerd 20.10: `run --network nb`, then `network connect na` moves the default
        // route to na; `connect aa` to aa; and `bridge` sorts before user networks.
        let c = [cand("nb", 0, false, false), cand("na", 0, false, false)];
        assert_eq!(gateways(&c), (Some(1), None));
        let c = [
            cand("nb", 0, false, false),
            cand("na", 0, false, false),
            cand("aa", 0, false, false),
        ];
        assert_eq!(order(&c), vec![2, 1, 0]);
        let c = [cand("na", 0, false, false), cand("bridge", 0, false, false)];
        assert_eq!(gateways(&c).0, Some(1));
    }

    #[test]
    fn priority_internal_and_ipv6_come_before_the_name() {
        // A higher GwPriority wins over the name.
        let c = [cand("aa", 0, false, false), cand("zz", 5, false, false)];
        assert_eq!(gateways(&c).0, Some(1));
        // Internal networks give no gateway, and sort last.
        let c = [cand("aa", 0, true, false), cand("zz", 0, false, false)];
        assert_eq!(gateways(&c), (Some(1), None));
        assert_eq!(order(&c), vec![1, 0]);
        let c = [cand("aa", 0, true, true)];
        assert_eq!(gateways(&c), (None, None));
        // Dual-stack before IPv4-only; its endpoint gives both routes.
        let c = [cand("aa", 0, false, false), cand("zz", 0, false, true)];
        assert_eq!(gateways(&c), (Some(1), Some(1)));
        // A priority can split them: IPv4 from the preferred one, IPv6 from the other.
        let c = [cand("aa", 1, false, false), cand("zz", 0, false, true)];
        assert_eq!(gateways(&c), (Some(0), Some(1)));
        assert_eq!(gateways(&[]), (None, None));
    }

    #[test]
    fn dns_is_the_first_user_defined_network_in_that_order() {
        let gw = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let gws = [gw("10.0.0.1"), gw("10.0.1.1"), gw("10.0.2.1")];
        let c = [
            cand("bridge", 0, false, false),
            cand("nb", 0, false, false),
            cand("na", 0, true, false),
        ];
        // bridge gives the route; nb is the first user-defined network (na is internal).
        assert_eq!(gateways(&c).0, Some(0));
        assert_eq!(dns_address(&c, &gws), Some(gws[1]));
        // Only internal user-defined networks: still their gateway.
        assert_eq!(dns_address(&c[2..], &gws[2..]), Some(gws[2]));
        assert_eq!(dns_address(&c[..1], &gws[..1]), None);
    }
}
