//! The embedded DNS of user-defined networks (issue 6): A/AAAA answers, TCP, NXDOMAIN,
//! forwarding to the daemon's `--dns` upstream (a fake server this test runs on a loopback
//! address), SERVFAIL when the upstream is silent, members only, and that every server keeps
//! answering through network connect/disconnect, another network's removal and parallel load.
//!
//! Precise checks use a small client in this file, run inside a container's network
//! namespace (a thread that joined it); busybox's `nslookup` covers the real client path.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use berth_tests::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn net_ip(d: &Daemon, container: &str, net: &str) -> String {
    inspect(
        d,
        container,
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
    )
}

fn gateway(d: &Daemon, net: &str) -> String {
    let out = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        net,
    ]);
    assert_ok(&out, "network inspect");
    stdout(&out).trim().to_string()
}

/// Runs `f` on a thread that joined the network namespace of `container`'s init process.
fn in_netns<T: Send + 'static>(
    d: &Daemon,
    container: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let pid = inspect(d, container, "{{.State.Pid}}");
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// One question to `server` over UDP or TCP; `None` when nothing came back in time.
fn ask(server: SocketAddr, name: &str, t: RecordType, tcp: bool) -> Option<Message> {
    let id: u16 = u16::try_from(std::process::id() & 0xffff).unwrap()
        ^ u16::try_from(name.len() & 0xff).unwrap() << 8;
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).unwrap(), t));
    let q = m.to_vec().unwrap();
    let r = if tcp {
        let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
        s.write_all(&[&u16::try_from(q.len()).unwrap().to_be_bytes()[..], &q].concat())
            .ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).ok()?;
        Message::from_vec(&buf).ok()?
    } else {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
        s.send_to(&q, server).ok()?;
        let mut buf = vec![0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        Message::from_vec(&buf[..n]).ok()?
    };
    assert_eq!(r.id(), id, "answer to another question");
    Some(r)
}

fn addrs(m: &Message) -> Vec<String> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

fn fake_answer(q: &[u8], answer: &str) -> Option<Vec<u8>> {
    let q = Message::from_vec(q).ok()?;
    let name = q.queries().first()?.name().to_ascii();
    if name.starts_with("silent.") {
        return None;
    }
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_available(true);
    r.add_queries(q.queries().to_vec());
    r.add_answer(Record::from_rdata(
        q.queries()[0].name().clone(),
        60,
        RData::A(A(answer.parse().unwrap())),
    ));
    r.to_vec().ok()
}

/// A fake upstream DNS server on `ip:53` (UDP and TCP, threads that live as long as the
/// test process): every name is `answer`, except `silent.*`, which never gets an answer.
fn fake_upstream(ip: &str, answer: &'static str) {
    let addr: SocketAddr = format!("{ip}:53").parse().unwrap();
    let udp = std::net::UdpSocket::bind(addr).expect("bind fake upstream udp");
    let tcp = std::net::TcpListener::bind(addr).expect("bind fake upstream tcp");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, src)) = udp.recv_from(&mut buf) {
            if let Some(a) = fake_answer(&buf[..n], answer) {
                let _ = udp.send_to(&a, src);
            }
        }
    });
    std::thread::spawn(move || {
        for mut c in tcp.incoming().flatten() {
            let mut len = [0u8; 2];
            if c.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if c.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(a) = fake_answer(&q, answer) {
                let _ =
                    c.write_all(&[&u16::try_from(a.len()).unwrap().to_be_bytes()[..], &a].concat());
            }
        }
    });
}

/// A loopback address no other test process uses for its fake upstream.
fn upstream_ip(salt: u32) -> String {
    let k = std::process::id() * 4 + salt;
    format!("127.53.{}.{}", (k >> 8) & 0xff, (k & 0xff).max(1))
}

#[test]
fn embedded_dns_answers_a_aaaa_tcp_and_forwards() {
    if !is_root() {
        return;
    }
    let up = upstream_ip(0);
    fake_upstream(&up, "192.0.2.77");
    let d = Daemon::start_with_args(&["--dns", &up]);
    d.load_busybox();
    let sub = d.spare_subnet(0);
    let _c = Cleanup(&d, vec!["aa", "bb", "xx"], vec!["dnsnet"]);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &sub, "dnsnet"]),
        "network create",
    );
    for (name, alias) in [("bb", "bee"), ("aa", "ay")] {
        run_sleeper(&d, name, &["--network", "dnsnet", "--network-alias", alias]);
    }
    let b_ip = net_ip(&d, "bb", "dnsnet");
    let gw: SocketAddr = format!("{}:53", gateway(&d, "dnsnet")).parse().unwrap();

    // The real client: busybox's resolver, by name, alias and through the upstream.
    let out = d.docker(&["exec", "aa", "nslookup", "bee"]);
    assert!(stdout(&out).contains(&b_ip), "{}", stdout(&out));
    // And qualified with the network's name, as with Docker.
    let out = d.docker(&["exec", "aa", "nslookup", "bb.dnsnet"]);
    assert!(stdout(&out).contains(&b_ip), "{}", stdout(&out));
    let out = d.docker(&["exec", "aa", "nslookup", "www.outside.test"]);
    assert!(
        stdout(&out).contains("192.0.2.77"),
        "forwarded: {}",
        stdout(&out)
    );
    assert_ok(
        &d.docker(&["exec", "aa", "ping", "-c1", "-W2", "bb"]),
        "ping bb",
    );

    let results = in_netns(&d, "aa", move || {
        vec![
            ask(gw, "bb.", RecordType::A, false),
            ask(gw, "bee.", RecordType::AAAA, false),
            ask(gw, "nosuch.", RecordType::A, false),
            ask(gw, "bee.", RecordType::A, true),
            ask(gw, "www.outside.test.", RecordType::A, false),
            ask(gw, "www.outside.test.", RecordType::A, true),
            ask(gw, "silent.outside.test.", RecordType::A, false),
        ]
    });
    let r: Vec<Message> = results
        .into_iter()
        .map(|m| m.expect("the embedded DNS answered"))
        .collect();
    assert_eq!(r[0].response_code(), ResponseCode::NoError);
    assert!(r[0].authoritative());
    assert_eq!(addrs(&r[0]), vec![b_ip.clone()], "A");
    // No IPv6 address: the name exists, the answer is empty.
    assert_eq!(r[1].response_code(), ResponseCode::NoError, "AAAA");
    assert!(r[1].answers().is_empty(), "AAAA: {:?}", r[1].answers());
    assert_eq!(r[2].response_code(), ResponseCode::NXDomain);
    assert_eq!(addrs(&r[3]), vec![b_ip.clone()], "over TCP");
    assert_eq!(addrs(&r[4]), vec!["192.0.2.77"], "forwarded over UDP");
    assert_eq!(addrs(&r[5]), vec!["192.0.2.77"], "forwarded over TCP");
    assert_eq!(
        r[6].response_code(),
        ResponseCode::ServFail,
        "silent upstream"
    );

    // A container's own --dns servers are its upstreams; container names still resolve.
    // (A non-loopback address the test can serve on: the gateway of the daemon's default
    // bridge, a host address; the fake upstream listens there.)
    let own = d.bip.split('/').next().unwrap().to_string();
    fake_upstream(&own, "192.0.2.88");
    run_sleeper(&d, "xx", &["--network", "dnsnet", "--dns", &own]);
    let resolv = stdout(&d.docker(&["exec", "xx", "cat", "/etc/resolv.conf"]));
    assert!(
        resolv
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .eq([format!("nameserver {}", gw.ip())]
                .iter()
                .map(String::as_str)),
        "{resolv}"
    );
    let out = d.docker(&["exec", "xx", "nslookup", "www.outside.test"]);
    assert!(
        stdout(&out).contains("192.0.2.88"),
        "own upstream: {}",
        stdout(&out)
    );
    let out = d.docker(&["exec", "xx", "nslookup", "bb"]);
    assert!(stdout(&out).contains(&b_ip), "{}", stdout(&out));

    // Only members of the network get answers: the host (its source is the gateway) is
    // refused.
    let r = ask(gw, "bb.", RecordType::A, false).expect("an answer");
    assert_eq!(r.response_code(), ResponseCode::Refused);
}

fn bridge_mac(d: &Daemon, net: &str) -> String {
    let out = d.docker(&[
        "network",
        "inspect",
        "-f",
        // berth names a network's bridge `br-<first 12 of its id>`, as dockerd does.
        "br-{{printf \"%.12s\" .Id}}",
        net,
    ]);
    assert_ok(&out, "network inspect");
    let br = stdout(&out).trim().to_string();
    std::fs::read_to_string(format!("/sys/class/net/{br}/address"))
        .expect("bridge address")
        .trim()
        .to_string()
}

fn ss_listening(addr: &str) -> String {
    let out = std::process::Command::new("ss")
        .args(["-H", "-uln", "src", addr])
        .output()
        .expect("ss");
    stdout(&out)
}

#[test]
fn embedded_dns_keeps_answering_through_changes_and_load() {
    if !is_root() {
        return;
    }
    let up = upstream_ip(1);
    fake_upstream(&up, "192.0.2.77");
    let d = Daemon::start_with_args(&["--dns", &up]);
    d.load_busybox();
    let _c = Cleanup(
        &d,
        vec!["aa", "bb", "cc", "l1", "l2", "l3"],
        vec!["n1", "n2", "n3"],
    );
    for (i, n) in ["n1", "n2"].iter().enumerate() {
        assert_ok(
            &d.docker(&[
                "network",
                "create",
                "--subnet",
                &d.spare_subnet(u8::try_from(i).unwrap()),
                n,
            ]),
            "network create",
        );
    }
    for (name, net) in [("aa", "n1"), ("bb", "n1"), ("cc", "n2")] {
        run_sleeper(&d, name, &["--network", net]);
    }
    let gw1 = gateway(&d, "n1");
    let gw: SocketAddr = format!("{gw1}:53").parse().unwrap();
    let resolves = |who: &str, name: &str| -> Option<String> {
        let q = format!("{name}.");
        in_netns(&d, who, move || ask(gw, &q, RecordType::A, false))
            .filter(|m| m.response_code() == ResponseCode::NoError)
            .and_then(|m| addrs(&m).into_iter().next())
    };
    let b_ip = net_ip(&d, "bb", "n1");
    assert_eq!(resolves("aa", "bb"), Some(b_ip.clone()));
    let mac1 = bridge_mac(&d, "n1");

    for round in 0..3 {
        // c joins n1 with an alias: a resolves it at once.
        assert_ok(
            &d.docker(&["network", "connect", "--alias", "cee", "n1", "cc"]),
            "connect",
        );
        let c_ip = net_ip(&d, "cc", "n1");
        // The bridge keeps its MAC when ports join (else a's neighbour entry for the
        // gateway goes stale and its DNS questions are lost for seconds).
        assert_eq!(
            bridge_mac(&d, "n1"),
            mac1,
            "round {round}: n1's MAC changed"
        );
        assert_eq!(
            resolves("aa", "cee"),
            Some(c_ip),
            "round {round}: alias after connect"
        );
        assert_ok(
            &d.docker(&["exec", "aa", "ping", "-c1", "-W2", "cee"]),
            "ping the alias",
        );
        // Another network comes and goes.
        assert_ok(
            &d.docker(&["network", "create", "--subnet", &d.spare_subnet(2), "n3"]),
            "create n3",
        );
        let gw3 = gateway(&d, "n3");
        assert!(ss_listening(&format!("{gw3}:53")).contains(":53"));
        assert_ok(&d.docker(&["network", "rm", "n3"]), "rm n3");
        // Its server is gone with its sockets.
        assert_eq!(ss_listening(&format!("{gw3}:53")), "", "n3's DNS socket");
        // c leaves: the name is gone, the rest still answers.
        assert_ok(
            &d.docker(&["network", "disconnect", "n1", "cc"]),
            "disconnect",
        );
        assert_eq!(
            resolves("aa", "cee"),
            None,
            "round {round}: alias after disconnect"
        );
        assert_eq!(resolves("aa", "bb"), Some(b_ip.clone()), "round {round}");
    }

    // Load: three more containers and the test itself ask many questions at once.
    for name in ["l1", "l2", "l3"] {
        run_sleeper(&d, name, &["--network", "n1"]);
    }
    let mut jobs = Vec::new();
    for name in ["l1", "l2", "l3"] {
        let args: Vec<String> = [
            "exec",
            name,
            "sh",
            "-c",
            "f=0; for i in $(seq 30); do nslookup bb >/dev/null 2>&1 || f=$((f+1)); \
             nslookup x$i.outside.test >/dev/null 2>&1 || f=$((f+1)); done; echo fails=$f",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let host = d.host();
        jobs.push(std::thread::spawn(move || {
            let out = std::process::Command::new(DOCKER)
                .env("DOCKER_HOST", host)
                .args(&args)
                .output()
                .expect("docker exec");
            stdout(&out)
        }));
    }
    let pid = inspect(&d, "aa", "{{.State.Pid}}");
    let burst = std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut failed = Vec::new();
        for i in 0..200 {
            let name = if i % 2 == 0 {
                "bb.".to_string()
            } else {
                format!("y{i}.outside.test.")
            };
            let tcp = i % 5 == 0;
            match ask(gw, &name, RecordType::A, tcp) {
                Some(m) if addrs(&m).len() == 1 => {}
                other => failed.push(format!(
                    "{name} tcp={tcp}: {:?}",
                    other.map(|m| (m.response_code(), addrs(&m)))
                )),
            }
        }
        failed
    });
    for j in jobs {
        let out = j.join().expect("exec thread");
        assert!(out.contains("fails=0"), "lookups failed under load: {out}");
    }
    let failed = burst.join().expect("burst");
    assert!(failed.is_empty(), "unanswered under load: {failed:#?}");

    // A network re-created on the same subnet serves again (the old sockets were closed).
    assert_ok(
        &d.docker(&["rm", "-f", "aa", "bb", "cc", "l1", "l2", "l3"]),
        "rm",
    );
    assert_ok(&d.docker(&["network", "rm", "n1"]), "rm n1");
    assert_eq!(ss_listening(&format!("{gw1}:53")), "");
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &d.spare_subnet(0), "n1"]),
        "re-create n1",
    );
    assert!(ss_listening(&format!("{gw1}:53")).contains(":53"));
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "--name",
        "aa",
        "busybox",
        "nslookup",
        "aa",
    ]);
    assert_ok(&out, "nslookup on the re-created network");
}

fn ptrs(m: &Message) -> Vec<String> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect()
}

/// `a.b.c.d` as `d.c.b.a.in-addr.arpa.`.
fn arpa4(ip: &str) -> String {
    let mut o: Vec<&str> = ip.split('.').collect();
    o.reverse();
    format!("{}.in-addr.arpa.", o.join("."))
}

#[test]
fn embedded_dns_answers_reverse_lookups_of_container_addresses() {
    if !is_root() {
        return;
    }
    let up = upstream_ip(2);
    fake_upstream(&up, "192.0.2.77");
    let d = Daemon::start_with_args(&["--dns", &up]);
    d.load_busybox();
    let _c = Cleanup(&d, vec!["aa", "bb", "cc"], vec!["ptrnet", "othernet"]);
    // ptrnet is dual-stack where the host has IPv6, so ip6.arpa names are covered too.
    let v6 = std::path::Path::new("/proc/net/if_inet6").exists();
    let s6 = {
        let key: u32 = d.bridge.trim_start_matches("bt").parse().expect("bt<key>");
        format!("fd00:b7:{key:x}:5::/64")
    };
    let s4 = d.spare_subnet(0);
    let mut create = vec!["network", "create", "--subnet", &s4];
    if v6 {
        create.extend(["--ipv6", "--subnet", &s6]);
    }
    create.push("ptrnet");
    assert_ok(&d.docker(&create), "network create ptrnet");
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--subnet",
            &d.spare_subnet(1),
            "othernet",
        ]),
        "network create othernet",
    );
    for (name, net) in [("aa", "ptrnet"), ("bb", "ptrnet"), ("cc", "othernet")] {
        run_sleeper(&d, name, &["--network", net]);
    }
    let b_ip = net_ip(&d, "bb", "ptrnet");
    let c_ip = net_ip(&d, "cc", "othernet");

    // The real client: busybox's nslookup of b's address names it b.ptrnet.
    let out = d.docker(&["exec", "aa", "nslookup", &b_ip]);
    let text = stdout(&out);
    assert!(
        text.contains("name = bb.ptrnet"),
        "nslookup {b_ip}: {text}{}",
        stderr(&out)
    );
    if v6 {
        let b_ip6 = inspect(
            &d,
            "bb",
            "{{(index .NetworkSettings.Networks \"ptrnet\").GlobalIPv6Address}}",
        );
        assert!(b_ip6.starts_with("fd00:b7:"), "bb's IPv6 address: {b_ip6}");
        let out = d.docker(&["exec", "aa", "nslookup", &b_ip6]);
        let text = stdout(&out);
        assert!(
            text.contains("name = bb.ptrnet"),
            "nslookup {b_ip6}: {text}{}",
            stderr(&out)
        );
    }

    // Precisely: one authoritative PTR record, TTL 600, for b's address; an address of no
    // container (the network's .30, unused) and a container on another network (c) are
    // forwarded to the upstream (whose answer is an A record, not authoritative).
    let gw: SocketAddr = format!("{}:53", gateway(&d, "ptrnet")).parse().unwrap();
    let unused = {
        let mut o: Vec<&str> = s4.trim_end_matches("/27").split('.').collect();
        let last: u8 = o.pop().unwrap().parse().unwrap();
        format!("{}.{}", o.join("."), last + 30)
    };
    let (q_b, q_unused, q_c) = (arpa4(&b_ip), arpa4(&unused), arpa4(&c_ip));
    let r: Vec<Message> = in_netns(&d, "aa", move || {
        vec![
            ask(gw, &q_b, RecordType::PTR, false),
            ask(gw, &q_b, RecordType::PTR, true),
            ask(gw, &q_unused, RecordType::PTR, false),
            ask(gw, &q_c, RecordType::PTR, false),
        ]
    })
    .into_iter()
    .map(|m| m.expect("the embedded DNS answered"))
    .collect();
    for (i, m) in r[..2].iter().enumerate() {
        assert_eq!(m.response_code(), ResponseCode::NoError, "{i}");
        assert!(m.authoritative(), "{i}");
        assert_eq!(ptrs(m), vec!["bb.ptrnet.".to_string()], "{i}");
        assert_eq!(m.answers()[0].ttl(), 600);
        assert_eq!(m.answers()[0].name().to_ascii(), arpa4(&b_ip));
    }
    for (what, m) in [
        ("unused address", &r[2]),
        ("other network's container", &r[3]),
    ] {
        assert!(!m.authoritative(), "{what}");
        assert!(ptrs(m).is_empty(), "{what}: {:?}", m.answers());
        assert_eq!(addrs(m), vec!["192.0.2.77"], "{what}: forwarded");
    }

    // From c, on the other network, b's address is not answered from the table.
    let gw_other: SocketAddr = format!("{}:53", gateway(&d, "othernet")).parse().unwrap();
    let q_b = arpa4(&b_ip);
    let m = in_netns(&d, "cc", move || {
        ask(gw_other, &q_b, RecordType::PTR, false)
    })
    .expect("othernet's DNS answered");
    assert!(ptrs(&m).is_empty(), "{:?}", m.answers());
    assert_eq!(addrs(&m), vec!["192.0.2.77"], "forwarded");
    let out = d.docker(&["exec", "cc", "nslookup", &b_ip]);
    assert!(!stdout(&out).contains("ptrnet"), "{}", stdout(&out));
    // c's own address on othernet is c.othernet for c.
    let out = d.docker(&["exec", "cc", "nslookup", &c_ip]);
    assert!(
        stdout(&out).contains("name = cc.othernet"),
        "{}",
        stdout(&out)
    );

    // Once c joins ptrnet it sees b's name there too.
    assert_ok(
        &d.docker(&["network", "connect", "ptrnet", "cc"]),
        "network connect",
    );
    let out = d.docker(&["exec", "cc", "nslookup", &b_ip]);
    assert!(
        stdout(&out).contains("name = bb.ptrnet"),
        "after connect: {}",
        stdout(&out)
    );
}
