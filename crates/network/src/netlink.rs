//! A small synchronous rtnetlink client: the handful of link, address and route requests
//! berth's [`LinkOps`](crate::ops::LinkOps) needs, one request in flight at a time.
//!
//! Why not the `rtnetlink` crate: it is an async stack (netlink-proto, futures and a
//! connection task on a tokio runtime) while every caller here is synchronous and sends a
//! few requests in a row; and libcontainer already builds `netlink-packet-route`,
//! `netlink-packet-core` and `netlink-sys`, so this module adds no crate to the build.
//!
//! A netlink socket talks to the network namespace it was created in, so [`Conn::open_in`]
//! creates one on a throwaway thread that joined the target namespace; the socket keeps
//! working in there once that thread is gone, and no other code of the caller runs inside.

use std::net::IpAddr;
use std::os::fd::AsFd;

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A failed request: the kernel's errno and, when it sent one, its extended-ack message
/// (e.g. "Nexthop has invalid gateway").
#[derive(Debug, Clone, PartialEq)]
pub struct NlError {
    pub errno: i32,
    pub msg: Option<String>,
}

impl NlError {
    fn io(e: std::io::Error) -> NlError {
        NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            msg: e.raw_os_error().is_none().then(|| e.to_string()),
        }
    }

    fn protocol(msg: impl Into<String>) -> NlError {
        NlError {
            errno: libc::EPROTO,
            msg: Some(msg.into()),
        }
    }

    /// As an `io::Error` of the errno's kind carrying this error's text.
    pub fn into_io(self) -> std::io::Error {
        let kind = std::io::Error::from_raw_os_error(self.errno).kind();
        std::io::Error::new(kind, self.to_string())
    }
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let os = std::io::Error::from_raw_os_error(self.errno);
        match &self.msg {
            Some(m) => write!(f, "{m}: {os}"),
            None => write!(f, "{os}"),
        }
    }
}

impl std::error::Error for NlError {}

pub type NlResult<T> = std::result::Result<T, NlError>;

const NLMSG_HDRLEN: usize = 16;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The extended-ack message of an `NLMSG_ERROR` whose header flags are `flags` and whose
/// payload after the errno is `rest` (the echoed request, capped or not, then the TLVs).
pub fn ext_ack_message(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        align4(u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize)
    };
    let mut tlvs = rest.get(echoed..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = &tlvs[4..len];
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            let msg = String::from_utf8_lossy(&value[..end]).trim().to_string();
            return (!msg.is_empty()).then_some(msg);
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or_default();
    }
    None
}

/// `aa:bb:cc:dd:ee:ff` → bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn up(msg: &mut LinkMessage) {
    msg.header.flags |= LinkFlags::Up;
    msg.header.change_mask |= LinkFlags::Up;
}

/// `RTM_NEWLINK` for a bridge named `name` (down; addresses go on before it comes up).
pub fn bridge_message(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    m
}

/// What a new veth pair looks like: the host end enslaved to a bridge and up, the peer
/// created directly inside another namespace under its final name, with its MAC. (The peer
/// cannot come up in the same request: a veth refuses to open, ENOTCONN, until the kernel has
/// paired both ends, which happens after their flags are applied.)
#[derive(Debug, Clone, PartialEq)]
pub struct Veth<'a> {
    pub host: &'a str,
    pub bridge_index: u32,
    pub peer: &'a str,
    pub peer_mac: [u8; 6],
    pub peer_netns_fd: i32,
}

/// `RTM_NEWLINK` creating `v` in one request (like `ip link add H master B up type veth peer
/// name P address M netns N`).
pub fn veth_message(v: &Veth) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(v.peer.to_string()));
    peer.attributes
        .push(LinkAttribute::Address(v.peer_mac.to_vec()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(v.peer_netns_fd));
    let mut m = LinkMessage::default();
    up(&mut m);
    m.attributes.push(LinkAttribute::IfName(v.host.to_string()));
    m.attributes.push(LinkAttribute::Controller(v.bridge_index));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    m
}

/// `RTM_NEWADDR` for `ip/prefix` on interface `index` (like `ip addr add`).
pub fn address_message(index: u32, ip: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(ip);
    m.header.prefix_len = prefix;
    m.header.index = index;
    if ip.is_ipv4() {
        // IPv4 wants the local address; iproute2 sends both, as a non-point-to-point
        // interface has the same one in each.
        m.attributes.push(AddressAttribute::Local(ip));
    }
    m.attributes.push(AddressAttribute::Address(ip));
    m
}

/// Like [`address_message`], without duplicate address detection (like `ip addr add ...
/// nodad`; it matters for IPv6, which would keep the address "tentative" for a while). The
/// flag goes both in the header and in `IFA_FLAGS`, as iproute2 sends it.
pub fn address_message_nodad(index: u32, ip: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = address_message(index, ip, prefix);
    m.header.flags |= AddressHeaderFlags::Nodad;
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    m
}

/// `RTM_SETLINK` giving interface `index` the MAC `mac` (like `ip link set D address M`).
pub fn link_mac_message(index: u32, mac: [u8; 6]) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    m
}

/// `RTM_NEWROUTE` for a default route via `gateway` out of interface `index` in the main
/// table (like `ip route add default via G dev D`).
pub fn default_route_message(index: u32, gateway: IpAddr) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(gateway);
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    m
}

/// `RTM_DELROUTE` for a default route of one family in the main table, whatever its gateway
/// and interface (like `ip route del default` / `ip -6 route del default`).
pub fn default_route_delete_message(v6: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    // "Any scope", as iproute2 sends it for a delete.
    m.header.scope = RouteScope::NoWhere;
    m
}

fn by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

fn link_name(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// A `NETLINK_ROUTE` socket.
pub struct Conn {
    sock: netlink_sys::Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Conn {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> NlResult<Conn> {
        let mut sock =
            netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).map_err(NlError::io)?;
        sock.bind_auto().map_err(NlError::io)?;
        // Best effort, both: the kernel's reason in error replies, and replies that do not
        // echo the whole request back.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Conn {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// A socket in the network namespace `netns` (an open `nsfs` file).
    pub fn open_in(netns: &std::fs::File) -> NlResult<Conn> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NlError::io(e.into()))?;
                Conn::open()
            })
            .join()
            .unwrap_or_else(|_| Err(NlError::protocol("network namespace thread panicked")))
        })
    }

    /// Sends one request and collects the messages of its answer: up to the ACK for a plain
    /// request, up to `NLMSG_DONE` for a dump.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0).map_err(NlError::io)?;
        let mut answer = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(NlError::io)?;
            let mut data = &self.buf[..n.min(self.buf.len())];
            while data.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
                if len < NLMSG_HDRLEN || len > data.len() {
                    return Err(NlError::protocol("truncated netlink reply"));
                }
                let seq = u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes"));
                let one = &data[..len];
                data = data.get(align4(len)..).unwrap_or_default();
                if seq != self.seq {
                    continue;
                }
                let parsed = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) {
                    Ok(m) => m,
                    // A dump entry this crate cannot parse is skipped, not fatal.
                    Err(_) if dump => continue,
                    Err(e) => return Err(NlError::protocol(format!("bad netlink reply: {e}"))),
                };
                match parsed.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answer),
                            Some(code) => Err(NlError {
                                errno: code.get().abs(),
                                msg: ext_ack_message(parsed.header.flags, &e.header),
                            }),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answer),
                    NetlinkPayload::InnerMessage(m) => answer.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of the interface `name`, `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> NlResult<Option<u32>> {
        match self.request(RouteNetlinkMessage::GetLink(by_name(name)), 0) {
            Ok(msgs) => Ok(msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Brings the interface `name` up.
    pub fn set_up(&mut self, name: &str) -> NlResult<()> {
        let mut m = by_name(name);
        up(&mut m);
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Brings the interface with index `index` up.
    pub fn set_up_index(&mut self, index: u32) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        up(&mut m);
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Sets the MAC address of the interface with index `index`.
    pub fn set_mac_index(&mut self, index: u32, mac: [u8; 6]) -> NlResult<()> {
        self.request(
            RouteNetlinkMessage::SetLink(link_mac_message(index, mac)),
            0,
        )
        .map(drop)
    }

    /// Creates a bridge; `EEXIST` when a link of that name exists.
    pub fn add_bridge(&mut self, name: &str) -> NlResult<()> {
        self.request(
            RouteNetlinkMessage::NewLink(bridge_message(name)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    pub fn add_veth(&mut self, v: &Veth) -> NlResult<()> {
        self.request(
            RouteNetlinkMessage::NewLink(veth_message(v)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds an address; with `replace` an existing one is fine (`ip addr replace`).
    pub fn add_address(
        &mut self,
        index: u32,
        ip: IpAddr,
        prefix: u8,
        replace: bool,
    ) -> NlResult<()> {
        self.new_address(address_message(index, ip, prefix), replace)
    }

    /// [`Conn::add_address`] without duplicate address detection.
    pub fn add_address_nodad(
        &mut self,
        index: u32,
        ip: IpAddr,
        prefix: u8,
        replace: bool,
    ) -> NlResult<()> {
        self.new_address(address_message_nodad(index, ip, prefix), replace)
    }

    fn new_address(&mut self, m: AddressMessage, replace: bool) -> NlResult<()> {
        let mode = if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | mode)
            .map(drop)
    }

    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> NlResult<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(default_route_message(index, gateway)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Removes every default route of one family from the main table.
    pub fn delete_default_routes(&mut self, v6: bool) -> NlResult<()> {
        // One per request; a namespace berth manages has at most one or two.
        for _ in 0..16 {
            match self.request(
                RouteNetlinkMessage::DelRoute(default_route_delete_message(v6)),
                0,
            ) {
                Ok(_) => {}
                // IPv4 says ESRCH when none is left, IPv6 ENOENT.
                Err(e) if e.errno == libc::ESRCH || e.errno == libc::ENOENT => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes the link `name` (a veth takes its peer along); `ENODEV` when there is none.
    pub fn delete_link(&mut self, name: &str) -> NlResult<()> {
        self.request(RouteNetlinkMessage::DelLink(by_name(name)), 0)
            .map(drop)
    }

    /// The names of the interfaces whose controller (bridge) is `index`.
    pub fn ports(&mut self, index: u32) -> NlResult<Vec<String>> {
        let mut filter = LinkMessage::default();
        // The kernel filters a dump by IFLA_MASTER; checked again below in case it did not.
        filter.attributes.push(LinkAttribute::Controller(index));
        let msgs = self.request(RouteNetlinkMessage::GetLink(filter), NLM_F_DUMP)?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l)
                    if l.attributes.contains(&LinkAttribute::Controller(index)) =>
                {
                    link_name(l).map(str::to_string)
                }
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};
    use netlink_packet_route::link::LinkMessageBuffer;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:42:ac:1e:00:02"),
            Some([0x02, 0x42, 0xac, 0x1e, 0x00, 0x02])
        );
        assert_eq!(parse_mac("02:42:AC:1E:00:FF").unwrap()[5], 0xff);
        for bad in [
            "",
            "02:42:ac:1e:00",
            "02:42:ac:1e:00:02:03",
            "2:42:ac:1e:00:02",
            "zz:42:ac:1e:00:02",
            "02-42-ac-1e-00-02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    fn reparse(m: &LinkMessage) -> LinkMessage {
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        LinkMessage::parse(&LinkMessageBuffer::new_checked(&buf).unwrap()).unwrap()
    }

    #[test]
    fn veth_request_carries_the_peer_in_its_namespace() {
        let v = Veth {
            host: "vb1234567890ab",
            bridge_index: 7,
            peer: "eth0",
            peer_mac: [2, 0x42, 0xac, 0x1e, 0, 2],
            peer_netns_fd: 42,
        };
        let m = reparse(&veth_message(&v));
        assert!(m.header.flags.contains(LinkFlags::Up));
        assert!(m.header.change_mask.contains(LinkFlags::Up));
        assert_eq!(link_name(&m), Some("vb1234567890ab"));
        assert!(m.attributes.contains(&LinkAttribute::Controller(7)));
        let info = m
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .expect("link info");
        assert_eq!(info[0], LinkInfo::Kind(InfoKind::Veth));
        let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = &info[1] else {
            panic!("no peer in {info:?}");
        };
        assert_eq!(link_name(peer), Some("eth0"));
        assert!(!peer.header.change_mask.contains(LinkFlags::Up));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::Address(vec![2, 0x42, 0xac, 0x1e, 0, 2])));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(42)));
    }

    #[test]
    fn bridge_request() {
        let m = reparse(&bridge_message("berth0"));
        assert_eq!(link_name(&m), Some("berth0"));
        assert!(m
            .attributes
            .contains(&LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge
            )])));
        assert!(!m.header.flags.contains(LinkFlags::Up));
    }

    #[test]
    fn default_route_deletes_name_only_the_family_and_table() {
        for v6 in [false, true] {
            let m = default_route_delete_message(v6);
            let family = if v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            assert_eq!(m.header.address_family, family);
            assert_eq!(m.header.table, RouteHeader::RT_TABLE_MAIN);
            assert_eq!(m.header.destination_prefix_length, 0);
            assert_eq!(m.header.scope, RouteScope::NoWhere);
            assert!(m.attributes.is_empty());
        }
    }

    #[test]
    fn address_and_route_requests() {
        let ip: IpAddr = "172.30.0.2".parse().unwrap();
        let a = address_message(5, ip, 16);
        assert_eq!(a.header.family, AddressFamily::Inet);
        assert_eq!((a.header.index, a.header.prefix_len), (5, 16));
        assert_eq!(
            a.attributes,
            vec![AddressAttribute::Local(ip), AddressAttribute::Address(ip)]
        );
        let v6: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(
            address_message(5, v6, 64).attributes,
            vec![AddressAttribute::Address(v6)]
        );

        let gw: IpAddr = "172.30.0.1".parse().unwrap();
        let r = default_route_message(5, gw);
        assert_eq!(r.header.destination_prefix_length, 0);
        assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(r.header.kind, RouteType::Unicast);
        assert!(r.attributes.contains(&RouteAttribute::Oif(5)));
        assert!(r
            .attributes
            .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                "172.30.0.1".parse().unwrap()
            ))));
    }

    #[test]
    fn ipv6_address_without_dad_and_ipv6_default_route() {
        use netlink_packet_route::address::AddressMessageBuffer;
        let v6: IpAddr = "fd00:db8:1::2".parse().unwrap();
        let m = address_message_nodad(5, v6, 64);
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        let m = AddressMessage::parse(&AddressMessageBuffer::new_checked(&buf).unwrap()).unwrap();
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!((m.header.index, m.header.prefix_len), (5, 64));
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(m.attributes.contains(&AddressAttribute::Address(v6)));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        // Plain addresses keep DAD.
        assert!(!address_message(5, v6, 64)
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Flags(_))));

        let gw6: IpAddr = "fd00:db8:1::1".parse().unwrap();
        let r = default_route_message(5, gw6);
        assert_eq!(r.header.address_family, AddressFamily::Inet6);
        assert_eq!(r.header.destination_prefix_length, 0);
        assert!(r.attributes.contains(&RouteAttribute::Oif(5)));
        assert!(r
            .attributes
            .contains(&RouteAttribute::Gateway(RouteAddress::Inet6(
                "fd00:db8:1::1".parse().unwrap()
            ))));
    }

    #[test]
    fn mac_request() {
        let m = reparse(&link_mac_message(9, [2, 0x42, 0xac, 0x1e, 0, 1]));
        assert_eq!(m.header.index, 9);
        assert_eq!(
            m.attributes,
            vec![LinkAttribute::Address(vec![2, 0x42, 0xac, 0x1e, 0, 1])]
        );
        assert!(m.header.change_mask.is_empty());
    }

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(
            &u16::try_from(4 + value.len())
                .expect("a test attribute")
                .to_ne_bytes(),
        );
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn extended_ack_messages_are_found() {
        let mut capped = vec![0u8; 16];
        capped.extend(tlv(4, &7u32.to_ne_bytes()));
        capped.extend(tlv(1, b"Nexthop has invalid gateway\0"));
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &capped).as_deref(),
            Some("Nexthop has invalid gateway")
        );
        // Not capped: the whole request (its length in its header) comes first.
        let mut full = vec![0u8; 24];
        full[0..4].copy_from_slice(&22u32.to_ne_bytes());
        full.extend(tlv(1, b"Unknown device type\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &full).as_deref(),
            Some("Unknown device type")
        );
        // No TLVs flagged, or garbage: nothing.
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &capped), None);
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &[0u8; 10]),
            None
        );
        let mut bad = vec![0u8; 16];
        bad.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &bad), None);
    }

    #[test]
    fn errors_read_like_the_kernel_said_them() {
        let e = NlError {
            errno: libc::EEXIST,
            msg: None,
        };
        assert!(e.to_string().starts_with("File exists"), "{e}");
        let e = NlError {
            errno: libc::EINVAL,
            msg: Some("Nexthop has invalid gateway".into()),
        };
        assert!(e
            .to_string()
            .starts_with("Nexthop has invalid gateway: Invalid argument"));
        assert_eq!(e.into_io().kind(), std::io::ErrorKind::InvalidInput);
    }
}
