//! Address management: subnets and per-network address pools, one generic implementation
//! for both address families: [`Subnet`] and [`Pool`] for IPv4, [`Subnet6`] and [`Pool6`]
//! for IPv6.
//!
//! A [`Pool`] hands out host addresses of one subnet, never the network address, the
//! broadcast address or the gateway, and never one address twice. Its state is the set of
//! addresses in use, so it can be rebuilt after a restart from whatever records the daemon
//! kept ([`Pool::reserve`] each one). [`Pool6`] does the same for an IPv6 subnet, which has
//! no broadcast address; its first address (the subnet-router anycast address) is never
//! handed out either.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What subnets and pools need of an address type: its width and its bits as a number.
pub trait Family: Copy + Ord + Hash + fmt::Debug + fmt::Display + FromStr {
    /// Address width in bits.
    const BITS: u8;
    /// "IPv4" or "IPv6", for messages.
    const NAME: &'static str;
    /// Whether a subnet's last address is its broadcast address (never handed out).
    const BROADCAST: bool;
    /// How many candidates one allocation looks at before giving up: IPv6 subnets are far
    /// too large to walk, and a pool with this many consecutive addresses taken is full.
    const SCAN_LIMIT: u128;
    fn to_bits(self) -> u128;
    fn from_bits(bits: u128) -> Self;
}

impl Family for Ipv4Addr {
    const BITS: u8 = 32;
    const NAME: &'static str = "IPv4";
    const BROADCAST: bool = true;
    const SCAN_LIMIT: u128 = u128::MAX;
    fn to_bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    fn from_bits(bits: u128) -> Self {
        // Bits of an IPv4 address: the low 32.
        Ipv4Addr::from(u32::try_from(bits & u128::from(u32::MAX)).unwrap_or(0))
    }
}

impl Family for Ipv6Addr {
    const BITS: u8 = 128;
    const NAME: &'static str = "IPv6";
    const BROADCAST: bool = false;
    const SCAN_LIMIT: u128 = 1 << 16;
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }
}

/// The host bits of an `A` address under a `prefix`-long prefix.
fn host_bits<A: Family>(prefix: u8) -> u128 {
    let all = u128::MAX >> (128 - u32::from(A::BITS));
    all.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// The network bits of an `A` address under a `prefix`-long prefix.
fn mask<A: Family>(prefix: u8) -> u128 {
    host_bits::<A>(0) & !host_bits::<A>(prefix)
}

/// A subnet in CIDR notation, always stored with host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr<A: Family> {
    network: A,
    prefix: u8,
}

/// An IPv4 subnet.
pub type Subnet = Cidr<Ipv4Addr>;
/// An IPv6 subnet.
pub type Subnet6 = Cidr<Ipv6Addr>;

impl<A: Family> Cidr<A> {
    pub fn new(addr: A, prefix: u8) -> Result<Cidr<A>> {
        if prefix > A::BITS {
            return Err(Error::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Cidr {
            network: A::from_bits(addr.to_bits() & mask::<A>(prefix)),
            prefix,
        })
    }

    /// Parses `addr/n` into the subnet and the address as written (which may have host
    /// bits set, as `--bip 172.30.0.1/16` does).
    pub fn parse_with_addr(s: &str) -> Result<(Cidr<A>, A)> {
        let bad = || Error::InvalidCidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: A = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > A::BITS {
            return Err(bad());
        }
        Ok((Cidr::new(addr, prefix)?, addr))
    }

    pub fn network(&self) -> A {
        self.network
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    /// The subnet's last address (for IPv4 its broadcast address).
    pub fn last(&self) -> A {
        A::from_bits(self.network.to_bits() | host_bits::<A>(self.prefix))
    }
    pub fn contains(&self, ip: A) -> bool {
        ip.to_bits() & mask::<A>(self.prefix) == self.network.to_bits()
    }
    pub fn overlaps(&self, other: &Cidr<A>) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
    /// The first host address (for IPv6 the first after the subnet-router anycast
    /// address): Docker's default gateway.
    pub fn first_host(&self) -> A {
        A::from_bits(self.network.to_bits().saturating_add(1))
    }
}

impl Subnet {
    pub fn broadcast(&self) -> Ipv4Addr {
        self.last()
    }
}

impl<A: Family> FromStr for Cidr<A> {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr<A>> {
        Cidr::parse_with_addr(s).map(|(n, _)| n)
    }
}

impl<A: Family> TryFrom<String> for Cidr<A> {
    type Error = Error;
    fn try_from(s: String) -> Result<Cidr<A>> {
        s.parse()
    }
}

impl<A: Family> From<Cidr<A>> for String {
    fn from(s: Cidr<A>) -> String {
        s.to_string()
    }
}

impl<A: Family> fmt::Display for Cidr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A ULA /64 (RFC 4193, `fdXX:XXXX:XXXX:YYYY::/64`) made from 64 bits of `seed`: what a
/// network created with IPv6 enabled but no IPv6 subnet gets, as with Docker 28.
pub fn ula_subnet(seed: u64) -> Subnet6 {
    // 40-bit global id and 16-bit subnet id from the seed, under fd00::/8.
    let bits = (0xfdu128 << 120) | (u128::from(seed & 0x00ff_ffff_ffff_ffff) << 64);
    Subnet6 {
        network: Ipv6Addr::from(bits),
        prefix: 64,
    }
}

/// The addresses of one subnet and which of them are taken.
#[derive(Debug, Clone, PartialEq)]
pub struct AddrPool<A: Family> {
    subnet: Cidr<A>,
    gateway: A,
    used: BTreeSet<A>,
    /// Dynamic allocations come from this part of the subnet only (`--ip-range`).
    range: Option<Cidr<A>>,
    /// Where the next search starts, so a released address is not handed out again at once
    /// (as libnetwork does: a restarted container's peers may still cache the old mapping).
    next: u128,
}

/// An IPv4 address pool.
pub type Pool = AddrPool<Ipv4Addr>;
/// An IPv6 address pool.
pub type Pool6 = AddrPool<Ipv6Addr>;

impl<A: Family> AddrPool<A> {
    /// A pool over `subnet` whose `gateway` (inside it) is never handed out.
    pub fn new(subnet: Cidr<A>, gateway: A) -> Result<AddrPool<A>> {
        if !subnet.contains(gateway) {
            return Err(Error::OutsideSubnet {
                addr: gateway.to_string(),
                subnet: subnet.to_string(),
            });
        }
        if subnet.prefix() > A::BITS - 2 {
            return Err(Error::InvalidCidr(format!(
                "{subnet}: subnet too small for containers"
            )));
        }
        Ok(AddrPool {
            subnet,
            gateway,
            used: BTreeSet::new(),
            range: None,
            next: subnet.network().to_bits() + 1,
        })
    }

    /// Restricts dynamic allocation to `range`, which must lie inside the subnet.
    pub fn with_range(mut self, range: Cidr<A>) -> Result<AddrPool<A>> {
        if !self.subnet.contains(range.network()) || range.prefix() < self.subnet.prefix() {
            return Err(Error::OutsideSubnet {
                addr: range.to_string(),
                subnet: self.subnet.to_string(),
            });
        }
        self.range = Some(range);
        Ok(self)
    }

    pub fn subnet(&self) -> Cidr<A> {
        self.subnet
    }
    pub fn gateway(&self) -> A {
        self.gateway
    }
    pub fn in_use(&self) -> impl Iterator<Item = A> + '_ {
        self.used.iter().copied()
    }

    /// Never handed out: the network address, the broadcast address, the gateway. (A
    /// range smaller than the subnet may use all of its addresses: they are ordinary hosts
    /// of the subnet.)
    fn assignable(&self, ip: A) -> bool {
        self.subnet.contains(ip)
            && ip != self.subnet.network()
            && !(A::BROADCAST && ip == self.subnet.last())
            && ip != self.gateway
    }

    /// Takes the next free address.
    pub fn allocate(&mut self) -> Result<A> {
        let span_of = self.range.unwrap_or(self.subnet);
        let first = span_of.network().to_bits();
        let last = span_of.last().to_bits();
        // `last - first` may be u128::MAX for ::/0; the scan is bounded anyway.
        let span = (last - first).saturating_add(1);
        let start = if (first..=last).contains(&self.next) {
            self.next
        } else {
            first
        };
        for i in 0..span.min(A::SCAN_LIMIT) {
            let cand = first + (start - first + i) % span;
            let ip = A::from_bits(cand);
            if self.assignable(ip) && !self.used.contains(&ip) {
                self.used.insert(ip);
                self.next = if cand == last { first } else { cand + 1 };
                return Ok(ip);
            }
        }
        Err(Error::PoolExhausted {
            family: A::NAME,
            subnet: self.subnet.to_string(),
        })
    }

    /// Takes a specific address (`--ip`/`--ip6`, or re-marking one after a restart).
    pub fn reserve(&mut self, ip: A) -> Result<()> {
        if !self.subnet.contains(ip) {
            return Err(Error::OutsideSubnet {
                addr: ip.to_string(),
                subnet: self.subnet.to_string(),
            });
        }
        if !self.assignable(ip) || !self.used.insert(ip) {
            return Err(Error::AddressInUse(ip.to_string()));
        }
        Ok(())
    }

    /// Gives an address back; releasing one not in use is a no-op.
    pub fn release(&mut self, ip: A) {
        self.used.remove(&ip);
    }
}

/// A locally administered MAC address derived from an IPv4 address, as Docker does
/// (`02:42:` followed by the four address bytes).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalizes_subnets() {
        let (n, a) = Subnet::parse_with_addr("172.30.0.1/16").unwrap();
        assert_eq!(n.to_string(), "172.30.0.0/16");
        assert_eq!(a, ip("172.30.0.1"));
        assert_eq!(n.broadcast(), ip("172.30.255.255"));
        assert_eq!(n.first_host(), ip("172.30.0.1"));
        for bad in [
            "172.30.0.0",
            "172.30.0.0/33",
            "172.30.0/16",
            "x/8",
            "1.2.3.4/",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad} accepted");
        }
        let s: Subnet = "10.1.2.3/0".parse().unwrap();
        assert_eq!(s.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn overlap_and_containment() {
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        let b: Subnet = "10.5.0.0/16".parse().unwrap();
        let c: Subnet = "10.6.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&c));
        assert!(a.contains(ip("10.255.255.255")) && !b.contains(ip("10.6.0.1")));
    }

    #[test]
    fn allocates_without_duplicates_and_skips_reserved() {
        let subnet: Subnet = "192.168.7.0/29".parse().unwrap();
        let mut p = Pool::new(subnet, ip("192.168.7.1")).unwrap();
        let mut got = Vec::new();
        while let Ok(a) = p.allocate() {
            got.push(a);
        }
        // .0 network, .1 gateway, .7 broadcast are never handed out: .2-.6 remain.
        assert_eq!(
            got,
            [
                "192.168.7.2",
                "192.168.7.3",
                "192.168.7.4",
                "192.168.7.5",
                "192.168.7.6"
            ]
            .map(ip)
            .to_vec()
        );
        assert!(matches!(p.allocate(), Err(Error::PoolExhausted { .. })));
        p.release(ip("192.168.7.4"));
        assert_eq!(p.allocate().unwrap(), ip("192.168.7.4"));
    }

    #[test]
    fn released_addresses_are_not_reused_at_once() {
        let mut p = Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.9.0.1")).unwrap();
        let a = p.allocate().unwrap();
        p.release(a);
        let b = p.allocate().unwrap();
        assert_ne!(a, b);
        assert_eq!(b, ip("10.9.0.3"));
    }

    #[test]
    fn reserve_checks_range_and_conflicts() {
        let mut p = Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.9.0.1")).unwrap();
        p.reserve(ip("10.9.0.2")).unwrap();
        assert!(matches!(
            p.reserve(ip("10.9.0.2")),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            p.reserve(ip("10.9.0.1")),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            p.reserve(ip("10.8.0.5")),
            Err(Error::OutsideSubnet { .. })
        ));
        // The next allocation skips the reserved address.
        assert_eq!(p.allocate().unwrap(), ip("10.9.0.3"));
    }

    #[test]
    fn state_is_rebuilt_from_the_addresses_in_use() {
        let mut p = Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.9.0.1")).unwrap();
        p.allocate().unwrap();
        p.allocate().unwrap();
        let mut back = Pool::new(p.subnet(), p.gateway()).unwrap();
        for a in p.in_use() {
            back.reserve(a).unwrap();
        }
        assert_eq!(back.allocate().unwrap(), ip("10.9.0.4"));
    }

    #[test]
    fn ranges_limit_dynamic_allocation() {
        let p = Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.9.0.1")).unwrap();
        let mut p = p.with_range("10.9.0.128/30".parse().unwrap()).unwrap();
        let got: Vec<Ipv4Addr> = std::iter::from_fn(|| p.allocate().ok()).collect();
        assert_eq!(
            got,
            ["10.9.0.128", "10.9.0.129", "10.9.0.130", "10.9.0.131"]
                .map(ip)
                .to_vec()
        );
        // Fixed addresses outside the range are still fine.
        p.reserve(ip("10.9.0.5")).unwrap();
        let p = Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.9.0.1")).unwrap();
        assert!(p.with_range("10.8.0.0/28".parse().unwrap()).is_err());
    }

    #[test]
    fn gateway_must_be_inside() {
        assert!(Pool::new("10.9.0.0/24".parse().unwrap(), ip("10.8.0.1")).is_err());
        assert!(Pool::new("10.9.0.0/31".parse().unwrap(), ip("10.9.0.0")).is_err());
    }

    #[test]
    fn macs_follow_docker() {
        assert_eq!(mac_for(ip("172.30.0.2")), "02:42:ac:1e:00:02");
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalizes_v6_subnets() {
        let (n, a) = Subnet6::parse_with_addr("fd00:db8:1::5/64").unwrap();
        assert_eq!(n.to_string(), "fd00:db8:1::/64");
        assert_eq!(a, ip6("fd00:db8:1::5"));
        assert_eq!(n.first_host(), ip6("fd00:db8:1::1"));
        assert_eq!(n.last(), ip6("fd00:db8:1:0:ffff:ffff:ffff:ffff"));
        for bad in [
            "fd00::",
            "fd00::/129",
            "fd00:::1/64",
            "10.0.0.0/8",
            "fd00::/",
            "fd00::/x",
            "fd00::/0064",
        ] {
            assert!(bad.parse::<Subnet6>().is_err(), "{bad} accepted");
        }
        let s: Subnet6 = "fd00:1::/0".parse().unwrap();
        assert_eq!(s.to_string(), "::/0");
    }

    #[test]
    fn v6_overlap_and_containment() {
        let a: Subnet6 = "fd00:db8::/32".parse().unwrap();
        let b: Subnet6 = "fd00:db8:1::/64".parse().unwrap();
        let c: Subnet6 = "fd00:db9::/64".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&c) && !a.overlaps(&c));
        assert!(b.contains(ip6("fd00:db8:1::ffff")) && !b.contains(ip6("fd00:db8:2::1")));
    }

    #[test]
    fn v6_pool_allocates_without_duplicates_and_skips_reserved() {
        let subnet: Subnet6 = "fd00:db8:1::/125".parse().unwrap();
        let mut p = Pool6::new(subnet, subnet.first_host()).unwrap();
        let got: Vec<Ipv6Addr> = std::iter::from_fn(|| p.allocate().ok()).collect();
        // ::0 (subnet-router anycast) and ::1 (gateway) are never handed out; ::7 is fine.
        assert_eq!(
            got,
            (2..=7)
                .map(|i| ip6(&format!("fd00:db8:1::{i}")))
                .collect::<Vec<_>>()
        );
        assert!(matches!(p.allocate(), Err(Error::PoolExhausted { .. })));
        p.release(ip6("fd00:db8:1::4"));
        assert_eq!(p.allocate().unwrap(), ip6("fd00:db8:1::4"));
    }

    #[test]
    fn v6_reserve_release_and_no_immediate_reuse() {
        let subnet: Subnet6 = "fd00:db8:1::/64".parse().unwrap();
        let mut p = Pool6::new(subnet, ip6("fd00:db8:1::1")).unwrap();
        p.reserve(ip6("fd00:db8:1::2")).unwrap();
        assert!(matches!(
            p.reserve(ip6("fd00:db8:1::2")),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            p.reserve(ip6("fd00:db8:1::1")),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            p.reserve(ip6("fd00:db8:2::5")),
            Err(Error::OutsideSubnet { .. })
        ));
        let a = p.allocate().unwrap();
        assert_eq!(a, ip6("fd00:db8:1::3"));
        p.release(a);
        assert_eq!(p.allocate().unwrap(), ip6("fd00:db8:1::4"));
        // Rebuilt after a restart from the addresses in use.
        let mut back = Pool6::new(p.subnet(), p.gateway()).unwrap();
        for a in p.in_use() {
            back.reserve(a).unwrap();
        }
        assert_eq!(back.allocate().unwrap(), ip6("fd00:db8:1::3"));
    }

    #[test]
    fn v6_ranges_and_gateways() {
        let subnet: Subnet6 = "fd00:db8:1::/64".parse().unwrap();
        let p = Pool6::new(subnet, ip6("fd00:db8:1::1")).unwrap();
        let mut p = p
            .with_range("fd00:db8:1::100/126".parse().unwrap())
            .unwrap();
        let got: Vec<Ipv6Addr> = std::iter::from_fn(|| p.allocate().ok()).collect();
        assert_eq!(
            got,
            [
                "fd00:db8:1::100",
                "fd00:db8:1::101",
                "fd00:db8:1::102",
                "fd00:db8:1::103"
            ]
            .map(ip6)
            .to_vec()
        );
        let p = Pool6::new(subnet, ip6("fd00:db8:1::1")).unwrap();
        assert!(p.with_range("fd00:db8:2::/80".parse().unwrap()).is_err());
        assert!(Pool6::new(subnet, ip6("fd00:db8:2::1")).is_err());
        assert!(Pool6::new("fd00::/127".parse().unwrap(), ip6("fd00::1")).is_err());
    }

    #[test]
    fn ula_subnets_are_unique_local_64s() {
        let s = ula_subnet(0x1234_5678_9abc_def0);
        assert_eq!(s.prefix(), 64);
        assert_eq!(s.to_string(), "fd34:5678:9abc:def0::/64");
        assert!("fc00::/7".parse::<Subnet6>().unwrap().contains(s.network()));
    }
}
