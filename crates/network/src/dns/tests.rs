use std::io::{Read, Write};
use std::str::FromStr;

use hickory_proto::rr::Name;

use super::*;

struct Fixed(Vec<DnsEndpoint>);

impl Directory for Fixed {
    fn endpoints(&self) -> Vec<DnsEndpoint> {
        self.0.clone()
    }
}

/// An endpoint `cid` on network `net` (also the resolver's tests').
pub(super) fn ep(cid: &str, net: &str, ips: &[&str], names: &[&str]) -> DnsEndpoint {
    DnsEndpoint {
        container_id: cid.into(),
        network_id: net.into(),
        addrs: ips.iter().map(|s| s.parse().unwrap()).collect(),
        names: names.iter().map(|s| s.to_string()).collect(),
        links: Vec::new(),
        upstreams: Vec::new(),
        ptr_name: Some(format!("{cid}.{net}")),
        network_name: net.into(),
    }
}

fn ups(servers: &[SocketAddr]) -> Upstreams {
    Upstreams {
        servers: servers.to_vec(),
        search: vec!["example.com".into()],
        timeout: Duration::from_millis(500),
    }
}

#[test]
fn decisions() {
    let eps = vec![
        ep("a", "n1", &["10.0.0.2"], &["a"]),
        ep("b", "n1", &["10.0.0.3", "fd00::3"], &["b"]),
        ep("c", "n1", &["10.0.0.4"], &["c"]),
    ];
    let a: IpAddr = "10.0.0.2".parse().unwrap();
    let up = ups(&["192.0.2.1:53".parse().unwrap()]);
    let d = |name: &str, t: RecordType| decide(&eps, "n1", a, name, t, &up);
    assert_eq!(
        d("b.", RecordType::A),
        Decision::Local(vec!["10.0.0.3".parse().unwrap()])
    );
    assert_eq!(
        d("b.", RecordType::AAAA),
        Decision::Local(vec!["fd00::3".parse().unwrap()])
    );
    // A name that exists without an address of that type: NOERROR, no records.
    assert_eq!(d("c.", RecordType::AAAA), Decision::Local(vec![]));
    assert_eq!(d("c.", RecordType::MX), Decision::Local(vec![]));
    assert_eq!(d("nosuch.", RecordType::A), Decision::NxDomain);
    assert_eq!(d("example.org.", RecordType::A), Decision::Forward);
    // Reverse lookups of members' addresses are answered here, others go upstream.
    assert_eq!(
        d("3.0.0.10.in-addr.arpa.", RecordType::PTR),
        Decision::Ptr("b.n1".into())
    );
    let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(d(v6, RecordType::PTR), Decision::Ptr("b.n1".into()));
    assert_eq!(
        d("99.0.0.10.in-addr.arpa.", RecordType::PTR),
        Decision::Forward
    );
    assert_eq!(
        d("0.0.10.in-addr.arpa.", RecordType::PTR),
        Decision::Forward
    );
    assert_eq!(
        d("3.0.0.10.in-addr.arpa.", RecordType::A),
        Decision::Forward,
        "only PTR questions"
    );
    assert_eq!(
        decide(
            &eps,
            "n1",
            "10.9.9.9".parse().unwrap(),
            "3.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            &up
        ),
        Decision::Refused
    );
    let stranger: IpAddr = "10.9.9.9".parse().unwrap();
    assert_eq!(
        decide(&eps, "n1", stranger, "b.", RecordType::A, &up),
        Decision::Refused
    );
    // Nowhere to forward to: NXDOMAIN rather than a timeout.
    assert_eq!(
        decide(&eps, "n1", a, "example.org.", RecordType::A, &ups(&[])),
        Decision::NxDomain
    );
}

fn build_query(name: &str, t: RecordType) -> (u16, Vec<u8>) {
    let id: u16 = rand::random();
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).unwrap(), t));
    (id, m.to_vec().unwrap())
}

/// A blocking client: one question over UDP (from `from`) or TCP.
fn ask(server: SocketAddr, from: IpAddr, name: &str, t: RecordType, tcp: bool) -> Message {
    let (id, q) = build_query(name, t);
    let r = if tcp {
        let mut s = std::net::TcpStream::connect(server).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let len = u16::try_from(q.len()).unwrap().to_be_bytes();
        s.write_all(&[&len[..], &q].concat()).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        Message::from_vec(&buf).unwrap()
    } else {
        let s = std::net::UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(&q, server).unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    };
    assert_eq!(r.id(), id);
    r
}

fn fake_answer(q: &[u8]) -> Vec<u8> {
    let q = Message::from_vec(q).unwrap();
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_available(true);
    r.add_queries(q.queries().to_vec());
    let name = q.queries()[0].name().clone();
    r.add_answer(Record::from_rdata(
        name,
        60,
        RData::A(A("192.0.2.77".parse().unwrap())),
    ));
    r.to_vec().unwrap()
}

/// A fake upstream on 127.0.0.1 (UDP and TCP on one port): answers every question with
/// 192.0.2.77, or stays silent.
fn fake_upstream(silent: bool) -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let l = std::net::TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, src)) = s.recv_from(&mut buf) {
            if !silent {
                let _ = s.send_to(&fake_answer(&buf[..n]), src);
            }
        }
    });
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            if silent {
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
            let mut len = [0u8; 2];
            if c.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if c.read_exact(&mut q).is_err() {
                continue;
            }
            let a = fake_answer(&q);
            let _ = c.write_all(&[&u16::try_from(a.len()).unwrap().to_be_bytes()[..], &a].concat());
        }
    });
    addr
}

fn addrs(m: &Message) -> Vec<String> {
    m.answers()
        .iter()
        .map(|r| match r.data() {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            RData::PTR(p) => format!("PTR {}", p.0),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn serves_udp_and_tcp_forwards_and_stops() {
    let servers = DnsServers::new().unwrap();
    let dir = Arc::new(Fixed(vec![
        ep("a", "n1", &["127.0.0.1"], &["a"]),
        ep("b", "n1", &["10.0.0.3", "fd00::3"], &["b", "web"]),
        ep("c", "n1", &["10.0.0.4"], &["c"]),
    ]));
    let up = fake_upstream(false);
    let start = |servers: &DnsServers, id: &str, up: Vec<SocketAddr>, port: u16| {
        servers
            .start(NetworkDns {
                network_id: id.into(),
                listen: vec![SocketAddr::from(([127, 0, 0, 1], port))],
                directory: dir.clone(),
                upstreams: ups(&up),
            })
            .unwrap()[0]
    };
    let srv = start(&servers, "n1", vec![up], 0);
    let me: IpAddr = "127.0.0.1".parse().unwrap();

    let r = ask(srv, me, "web", RecordType::A, false);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.authoritative());
    assert_eq!(addrs(&r), vec!["10.0.0.3"]);
    let r = ask(srv, me, "B.example.com.", RecordType::AAAA, false);
    assert_eq!(addrs(&r), vec!["fd00::3"]);
    let r = ask(srv, me, "c", RecordType::AAAA, false);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.answers().is_empty());
    let r = ask(srv, me, "nosuch", RecordType::A, false);
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    let r = ask(srv, me, "b", RecordType::A, true);
    assert_eq!(addrs(&r), vec!["10.0.0.3"], "over TCP");
    let r = ask(srv, me, "www.example.org.", RecordType::A, false);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(addrs(&r), vec!["192.0.2.77"], "forwarded");
    assert!(!r.authoritative());
    // Reverse lookups: a member's address is its container on this network, over UDP and
    // TCP; another address is forwarded.
    for tcp in [false, true] {
        let r = ask(srv, me, "3.0.0.10.IN-ADDR.ARPA.", RecordType::PTR, tcp);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.authoritative());
        assert_eq!(r.answers().len(), 1);
        assert_eq!(r.answers()[0].ttl(), 600);
        assert_eq!(
            *r.answers()[0].name(),
            Name::from_str("3.0.0.10.IN-ADDR.ARPA.").unwrap()
        );
        assert_eq!(addrs(&r), vec!["PTR b.n1."], "tcp={tcp}");
    }
    let r = ask(srv, me, "9.9.0.10.in-addr.arpa.", RecordType::PTR, false);
    assert!(!r.authoritative());
    assert_eq!(addrs(&r), vec!["192.0.2.77"], "forwarded PTR");
    // Not a member of the network: refused.
    let r = ask(srv, "127.0.0.2".parse().unwrap(), "b", RecordType::A, false);
    assert_eq!(r.response_code(), ResponseCode::Refused);

    // Many questions at once all get answers.
    let handles: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                let name = if i % 2 == 0 { "b" } else { "www.example.org." };
                addrs(&ask(srv, me, name, RecordType::A, i % 4 == 1))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().len(), 1);
    }

    // A second network with a silent upstream: SERVFAIL after the timeout; stopping it
    // leaves the first one serving.
    let silent = fake_upstream(true);
    let srv2 = start(&servers, "n2", vec![silent], 0);
    let dir2_member = ask(srv2, me, "www.example.org.", RecordType::A, false);
    // 127.0.0.1 is only a member of n1.
    assert_eq!(dir2_member.response_code(), ResponseCode::Refused);
    servers.stop("n2");
    assert_eq!(servers.serving(), vec!["n1".to_string()]);
    // Its sockets are closed (the aborted tasks drop them as the runtime gets to them): the
    // port can be bound again.
    let rebound = |what: &str, f: &dyn Fn() -> std::io::Result<()>| {
        let t = std::time::Instant::now();
        loop {
            match f() {
                Ok(()) => return,
                Err(e) if t.elapsed() < std::time::Duration::from_secs(2) => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("{what} port not released: {e}"),
            }
        }
    };
    rebound("udp", &|| std::net::UdpSocket::bind(srv2).map(drop));
    rebound("tcp", &|| std::net::TcpListener::bind(srv2).map(drop));
    assert_eq!(
        addrs(&ask(srv, me, "b", RecordType::A, false)),
        vec!["10.0.0.3"]
    );

    // Restart n1 on the same port with a silent upstream: SERVFAIL.
    servers.stop("n1");
    let srv = start(&servers, "n1", vec![silent], srv.port());
    let t = std::time::Instant::now();
    let r = ask(srv, me, "www.example.org.", RecordType::A, false);
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    servers.stop("n1");
    assert!(servers.serving().is_empty());
}
