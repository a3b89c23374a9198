//! Networking (issue 6): the default bridge, published ports, leftovers after removal and
//! after a daemon crash. Every daemon has its own bridge, subnet and nftables table (see the
//! harness), and the harness removes them when the test ends, also on failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use berth_tests::*;

/// The /24 prefix of the daemon's subnet, e.g. `10.3.17.`.
fn subnet_prefix(d: &Daemon) -> String {
    let ip = d.bip.split('/').next().unwrap();
    let mut parts: Vec<&str> = ip.split('.').collect();
    parts.pop();
    format!("{}.", parts.join("."))
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn nft_table(d: &Daemon) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .expect("nft");
    stdout(&out)
}

/// The host's first global IPv4 address (not loopback).
fn host_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    stdout(&out)
        .lines()
        .filter(|l| !l.contains(" bt") && !l.contains(" br-"))
        .find_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet")?;
            Some(w.next()?.split('/').next()?.to_string())
        })
}

/// A plain HTTP GET with a short timeout; the body, or None if nothing answered.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[test]
fn default_bridge_gives_eth0_in_the_subnet_and_none_only_lo() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let prefix = subnet_prefix(&d);
    let out = d.docker(&["run", "--rm", "busybox", "ip", "-4", "addr"]);
    assert_ok(&out, "run ip addr");
    let text = stdout(&out);
    assert!(text.contains("eth0"), "{text}");
    assert!(
        text.contains(&format!("inet {prefix}")),
        "{prefix} not in {text}"
    );

    let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "ip", "link"]);
    assert_ok(&out, "run --network none");
    let text = stdout(&out);
    assert!(text.contains("lo:") && !text.contains("eth0"), "{text}");

    // A running container: inspect fields, default route, /etc/hosts, reaching the gateway.
    run_sleeper(&d, "c1", &[]);
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Networks.bridge.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.MacAddress}}",
        "c1",
    ]);
    let fields: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(fields.len(), 5, "{}", stdout(&out));
    assert!(
        fields[0].starts_with(&prefix) && fields[0] == fields[1],
        "{fields:?}"
    );
    assert_eq!(fields[2], format!("{prefix}1"));
    assert_eq!(fields[3], "25");
    assert!(fields[4].starts_with("02:42:"), "{fields:?}");
    let route = stdout(&d.docker(&["exec", "c1", "ip", "route"]));
    assert!(route.contains(&format!("default via {prefix}1")), "{route}");
    let hosts = stdout(&d.docker(&["exec", "c1", "cat", "/etc/hosts"]));
    assert!(hosts.contains(&fields[0]), "{hosts}");
    let out = d.docker(&[
        "run",
        "--rm",
        "--add-host",
        "gw.test:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(
        stdout(&out).contains(&format!("{prefix}1\tgw.test")),
        "{}",
        stdout(&out)
    );
    let resolv = stdout(&d.docker(&["exec", "c1", "cat", "/etc/resolv.conf"]));
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    let ping = d.docker(&["exec", "c1", "ping", "-c1", "-W2", &format!("{prefix}1")]);
    assert_ok(&ping, "ping the gateway");

    // Two containers never share an address.
    run_sleeper(&d, "c2", &[]);
    let ip2 = stdout(&d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "c2"]));
    assert!(ip2.starts_with(&prefix) && ip2.trim() != fields[0], "{ip2}");
    let ping = d.docker(&["exec", "c2", "ping", "-c1", "-W2", &fields[0]]);
    assert_ok(&ping, "c2 pings c1 on the default bridge");
    assert_eq!(bridge_ports(&d.bridge).len(), 2);
    // The bridge has a MAC of its own, derived from the gateway (as Docker sets one): without it the kernel gives it
    // the lowest MAC of its ports, which changes as containers join and leaves the others'
    // ARP entries for the gateway pointing nowhere (DNS and outbound traffic stall).
    let sys = std::path::Path::new("/sys/class/net").join(&d.bridge);
    let assign = std::fs::read_to_string(sys.join("addr_assign_type")).unwrap();
    assert_eq!(assign.trim(), "3", "bridge MAC not set explicitly");
    let mac = std::fs::read_to_string(sys.join("address")).unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");

    // Removing releases the veth and the namespace.
    assert_ok(&d.docker(&["rm", "-f", "c1", "c2"]), "rm");
    assert!(eventually(Duration::from_secs(5), || bridge_ports(
        &d.bridge
    )
    .is_empty()));
    let netns = d.root.join("exec/netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn published_ports_reach_the_container() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let port = free_port().to_string();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        "echo hello-from-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert_ok(&out, "run web");
    let local = format!("127.0.0.1:{port}");
    assert!(
        eventually(Duration::from_secs(5), || http_get(&local, "/index.html")
            .is_some_and(|b| b.contains("hello-from-web"))),
        "no answer on {local}\n{}",
        nft_table(&d)
    );
    // With the real curl, as a user would.
    let curl = std::process::Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{local}/index.html")])
        .output()
        .expect("curl");
    assert_eq!(stdout(&curl), "hello-from-web\n");
    if let Some(addr) = host_address() {
        let body = http_get(&format!("{addr}:{port}"), "/index.html");
        assert!(
            body.is_some_and(|b| b.contains("hello-from-web")),
            "via {addr}"
        );
        // Hairpin: another container reaches it through the host's address.
        let url = format!("http://{addr}:{port}/index.html");
        let out = d.docker(&["run", "--rm", "busybox", "wget", "-qO-", &url]);
        assert_eq!(
            stdout(&out),
            "hello-from-web\n",
            "hairpin: {}",
            stderr(&out)
        );
    }

    // docker port, berth port, inspect and ps show the mapping.
    let out = d.docker(&["port", "web"]);
    assert_eq!(stdout(&out), format!("80/tcp -> 0.0.0.0:{port}\n"));
    let out = d.berth(&["port", "web", "80"]);
    assert_eq!(
        stdout(&out),
        format!("0.0.0.0:{port}\n"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(stdout(&out), format!("0.0.0.0:{port}->80/tcp\n"));

    // The host port is taken now: a second container cannot have it, and the error says so.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("port is already allocated"),
        "{}",
        stderr(&out)
    );
    // ...and nor can another process on the host.
    assert!(std::net::TcpListener::bind(format!("0.0.0.0:{port}")).is_err());

    // -P publishes EXPOSEd ports on ephemeral host ports.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "pall",
        "--expose",
        "8080",
        "--expose",
        "9090/udp",
        "-P",
        "busybox",
        "sh",
        "-c",
        "echo p > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    ]);
    assert_ok(&out, "run -P");
    let out = d.docker(&["port", "pall", "8080/tcp"]);
    let mapped = stdout(&out);
    let hp = mapped.trim().rsplit(':').next().unwrap().to_string();
    assert!(hp.parse::<u16>().is_ok_and(|p| p > 0), "{mapped}");
    assert!(eventually(Duration::from_secs(5), || http_get(
        &format!("127.0.0.1:{hp}"),
        "/index.html"
    )
    .is_some_and(|b| b.contains('p'))));
    let udp = stdout(&d.docker(&["port", "pall", "9090/udp"]));
    assert!(udp.starts_with("0.0.0.0:"), "{udp}");

    // Removing the containers removes their rules and frees the port.
    assert_ok(&d.docker(&["rm", "-f", "web", "pall"]), "rm");
    let table = nft_table(&d);
    assert!(!table.contains("dnat to"), "{table}");
    assert!(std::net::TcpListener::bind(format!("0.0.0.0:{port}")).is_ok());
}

#[test]
fn networking_survives_a_daemon_crash_and_leaves_nothing_behind() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let port = free_port().to_string();
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo up > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ]),
        "run web",
    );
    let ip = stdout(&d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]));
    let local = format!("127.0.0.1:{port}");
    assert!(eventually(Duration::from_secs(5), || http_get(
        &local,
        "/index.html"
    )
    .is_some()));

    d.kill9();
    d.restart();
    // Same address, port still published, new containers get another address.
    let ip_after = stdout(&d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]));
    assert_eq!(ip, ip_after);
    assert!(
        eventually(Duration::from_secs(5), || http_get(&local, "/index.html")
            .is_some_and(|b| b.contains("up"))),
        "{}",
        nft_table(&d)
    );
    let out = d.docker(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert_ok(&out, "run after restart");
    assert!(
        !stdout(&out).contains(&format!("inet {}/", ip.trim())),
        "{}",
        stdout(&out)
    );
    let out = d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&out).contains("port is already allocated"),
        "{}",
        stderr(&out)
    );

    assert_ok(&d.docker(&["rm", "-f", "web"]), "rm web");
    assert!(eventually(Duration::from_secs(5), || bridge_ports(
        &d.bridge
    )
    .is_empty()));
    let table = nft_table(&d);
    assert!(!table.contains("dnat to"), "{table}");
}

#[test]
fn daemon_start_removes_stale_interfaces_and_rules() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.kill9();
    // What a crash could leave: a veth on our bridge nobody owns and a rule in our table.
    let stale = format!("vx{}", &d.bridge[2..]);
    let peer = format!("vy{}", &d.bridge[2..]);
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert_ok(&out, &format!("ip {}", args.join(" ")));
    };
    ip(&["link", "add", &stale, "type", "veth", "peer", "name", &peer]);
    ip(&["link", "set", &stale, "master", &d.bridge]);
    let table = format!("berth_{}", d.bridge);
    let out = std::process::Command::new("nft")
        .args([
            "add",
            "rule",
            "ip",
            &table,
            "ports",
            "tcp",
            "dport",
            "1",
            "dnat",
            "to",
            "192.0.2.99:1",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "nft add rule");
    d.restart();
    let gone = !std::path::Path::new("/sys/class/net").join(&stale).exists();
    if !gone {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &stale])
            .status();
    }
    assert!(gone, "stale veth survived the restart");
    assert!(!nft_table(&d).contains("192.0.2.99"), "{}", nft_table(&d));
}

/// Removes a network with the docker CLI when the test ends, also on failure (the harness
/// deletes the bridge either way; this keeps the daemon's records tidy too).
struct NetGuard<'a>(&'a Daemon, &'static str);
impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["network", "rm", self.1]);
    }
}

#[test]
fn user_defined_networks_resolve_names_and_are_isolated() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    // Acceptance 2 as written: no subnet given, the daemon picks a free one.
    assert_ok(
        &d.docker(&["network", "create", "appnet"]),
        "network create",
    );
    let _g1 = NetGuard(&d, "appnet");
    let other = d.spare_subnet(0);
    assert_ok(
        &d.berth(&["network", "create", "--subnet", &other, "othernet"]),
        "berth network create",
    );
    let _g2 = NetGuard(&d, "othernet");
    let out = d.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    let names = stdout(&out);
    for n in ["appnet bridge", "othernet bridge", "bridge bridge"] {
        assert!(names.lines().any(|l| l == n), "{n} missing in {names}");
    }
    let out = d.berth(&["inspect", "-f", "{{.Name}} {{.Driver}}", "othernet"]);
    assert_eq!(stdout(&out), "othernet bridge\n", "{}", stderr(&out));
    let out = d.berth(&["network", "ls", "-f", "name=other", "-q"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));

    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "bb",
            "--network",
            "appnet",
            "--network-alias",
            "webalias",
            "busybox",
            "sh",
            "-c",
            "echo hello-b > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
        ]),
        "run bb",
    );
    run_sleeper(&d, "aa", &["--network", "appnet"]);
    assert_ok(
        &d.docker(&["exec", "aa", "ping", "-c1", "-W2", "bb"]),
        "ping bb by name",
    );
    let fetch = |who: &str, host: &str| {
        let out = d.docker(&[
            "exec",
            who,
            "wget",
            "-qO-",
            &format!("http://{host}:8080/index.html"),
        ]);
        stdout(&out)
    };
    assert!(
        eventually(Duration::from_secs(5), || fetch("aa", "bb") == "hello-b\n"),
        "wget by name: {}",
        fetch("aa", "bb")
    );
    assert_eq!(fetch("aa", "webalias"), "hello-b\n", "by alias");
    let b_id = stdout(&d.docker(&["inspect", "-f", "{{.Id}}", "bb"]));
    assert_eq!(fetch("aa", &b_id[..12]), "hello-b\n", "by short id");

    // Inspect: the network lists both containers; the container lists the network.
    let out = d.docker(&["network", "inspect", "-f", "{{len .Containers}}", "appnet"]);
    assert_eq!(stdout(&out), "2\n");
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"appnet\").Aliases}}",
        "bb",
    ]);
    assert_eq!(stdout(&out), "[webalias]\n");

    // A container on another network reaches neither the names nor the addresses.
    run_sleeper(&d, "cc", &["--network", "othernet"]);
    let b_ip = stdout(&d.docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"appnet\").IPAddress}}",
        "bb",
    ]));
    let out = d.docker(&["exec", "cc", "ping", "-c1", "-W1", b_ip.trim()]);
    assert!(!out.status.success(), "othernet reached appnet by address");
    let out = d.docker(&["exec", "cc", "nslookup", "bb"]);
    assert!(
        !stdout(&out).contains(b_ip.trim()),
        "othernet resolved bb: {}",
        stdout(&out)
    );

    // An internal network: members talk to each other but get no route out.
    let inet = d.spare_subnet(1);
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            &inet,
            "inside",
        ]),
        "create --internal",
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "inside",
        "busybox",
        "ip",
        "route",
    ]);
    assert_ok(&out, "run on internal");
    assert!(!stdout(&out).contains("default"), "{}", stdout(&out));
    assert!(stdout(&out).contains(&inet), "{}", stdout(&out));
    assert_ok(&d.docker(&["network", "rm", "inside"]), "rm internal");

    // connect: c joins appnet with an alias and a fixed address and now reaches b.
    let fixed = {
        let gw = stdout(&d.docker(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            "appnet",
        ]));
        let mut p: Vec<String> = gw.trim().split('.').map(String::from).collect();
        p[3] = "200".into();
        p.join(".")
    };
    assert_ok(
        &d.berth(&[
            "network", "connect", "--alias", "cee", "--ip", &fixed, "appnet", "cc",
        ]),
        "network connect",
    );
    assert!(eventually(Duration::from_secs(5), || fetch("cc", "bb") == "hello-b\n"));
    assert!(
        eventually(Duration::from_secs(20), || d
            .docker(&["exec", "aa", "ping", "-c1", "-W2", "cee"])
            .status
            .success()),
        "ping the alias from aa: {}",
        {
            let o = d.docker(&["exec", "aa", "nslookup", "cee"]);
            format!("{}{}", stdout(&o), stderr(&o))
        }
    );
    let out = d.docker(&["exec", "cc", "ip", "-4", "-o", "addr"]);
    assert!(
        stdout(&out).contains(&format!("inet {fixed}/")),
        "{}",
        stdout(&out)
    );
    // Twice is an error; removing a network in use too.
    let out = d.docker(&["network", "connect", "appnet", "cc"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already exists in network appnet"),
        "{}",
        stderr(&out)
    );
    let (status, body) = d.api("DELETE", "/networks/appnet", None);
    assert_eq!(status, 403, "dockerd's status for active endpoints: {body}");
    assert!(body.contains("has active endpoints"), "{body}");
    // disconnect cuts it off again.
    assert_ok(
        &d.docker(&["network", "disconnect", "appnet", "cc"]),
        "disconnect",
    );
    let out = d.docker(&["exec", "cc", "ping", "-c1", "-W1", b_ip.trim()]);
    assert!(
        !out.status.success(),
        "disconnected container still reaches appnet"
    );

    // Once empty, networks go away with their bridges.
    let bridge = stdout(&d.docker(&[
        "network",
        "inspect",
        "-f",
        // berth names a network's bridge `br-<first 12 of its id>`, as dockerd does.
        "br-{{printf \"%.12s\" .Id}}",
        "appnet",
    ]));
    assert_ok(&d.docker(&["rm", "-f", "aa", "bb", "cc"]), "rm");
    assert_ok(&d.docker(&["network", "rm", "appnet"]), "network rm");
    let out = d.berth(&["network", "prune", "-f"]);
    assert!(stdout(&out).contains("othernet"), "{}", stdout(&out));
    assert!(!std::path::Path::new("/sys/class/net")
        .join(bridge.trim())
        .exists());
    let out = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["bridge", "host", "none"],
        "only the predefined networks are left"
    );
    // Network events, as `docker events` shows them.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let out = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let events = stdout(&out);
    for e in [
        "create appnet",
        "connect appnet",
        "disconnect appnet",
        "destroy appnet",
        "destroy othernet",
    ] {
        assert!(events.lines().any(|l| l == e), "{e} missing in:\n{events}");
    }
}

#[test]
fn network_bad_input_gets_clear_errors() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    let s0 = d.spare_subnet(1);
    let create = |body: &str| d.api("POST", "/networks/create", Some(body));
    let (st, body) = create(&format!(
        r#"{{"Name":"n1","IPAM":{{"Config":[{{"Subnet":"{s0}"}}]}}}}"#
    ));
    assert_eq!(st, 201, "{body}");
    let _g = NetGuard(&d, "n1");
    // Overlapping subnets.
    let (st, body) = create(&format!(
        r#"{{"Name":"n2","IPAM":{{"Config":[{{"Subnet":"{s0}"}}]}}}}"#
    ));
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("overlaps"), "{body}");
    // Invalid CIDR.
    let (st, body) = create(r#"{"Name":"n3","IPAM":{"Config":[{"Subnet":"10.300.0.0/16"}]}}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid CIDR address"), "{body}");
    // Gateway outside the subnet.
    let s1 = d.spare_subnet(2);
    let (st, body) = create(&format!(
        r#"{{"Name":"n4","IPAM":{{"Config":[{{"Subnet":"{s1}","Gateway":"192.0.2.77"}}]}}}}"#
    ));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not in subnet"), "{body}");
    // Duplicate name, missing name, predefined name, unknown network.
    let (st, _) = create(&format!(
        r#"{{"Name":"n1","IPAM":{{"Config":[{{"Subnet":"{s1}"}}]}}}}"#
    ));
    assert_eq!(st, 409);
    let (st, _) = create(r#"{"Name":""}"#);
    assert_eq!(st, 400);
    let (st, _) = create(r#"{"Name":"host"}"#);
    assert_eq!(st, 403);
    let (st, _) = d.api("GET", "/networks/nosuchnet", None);
    assert_eq!(st, 404);
    let (st, _) = d.api("DELETE", "/networks/bridge", None);
    assert_eq!(st, 403);
    let out = d.docker(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
    assert!(!out.status.success());
    // Nothing was lost: n1 is still there.
    let (st, _) = d.api("GET", "/networks/n1", None);
    assert_eq!(st, 200);
}

#[test]
fn user_networks_survive_a_daemon_crash() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let subnet = d.spare_subnet(3);
    // The harness deletes the bridge (recorded under the exec root) if this test fails.
    // Dynamic addresses come from the upper /28 of the /27 only.
    let range = subnet.replace(".224/27", ".240/28");
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--ip-range",
            &range,
            "keep",
        ]),
        "create",
    );
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "keep",
            "busybox",
            "sh",
            "-c",
            "echo kept > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
        ]),
        "run srv",
    );
    run_sleeper(&d, "cli", &["--network", "keep"]);
    let srv_ip = stdout(&d.docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"keep\").IPAddress}}",
        "srv",
    ]));
    let last: u8 = srv_ip.trim().rsplit('.').next().unwrap().parse().unwrap();
    assert!(last >= 240, "{srv_ip} outside the ip-range {range}");
    d.kill9();
    d.restart();
    let fetch =
        || stdout(&d.docker(&["exec", "cli", "wget", "-qO-", "http://srv:8080/index.html"]));
    assert!(
        eventually(Duration::from_secs(5), || fetch() == "kept\n"),
        "{}",
        fetch()
    );
    let out = d.docker(&["network", "inspect", "-f", "{{len .Containers}}", "keep"]);
    assert_eq!(stdout(&out), "2\n");
    // A new member never gets an address already in use.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "srv",
    ]);
    assert_ok(&out, "new member resolves srv");
    assert_ok(&d.docker(&["rm", "-f", "srv", "cli"]), "rm");
    assert_ok(&d.docker(&["network", "rm", "keep"]), "network rm");
    let table = nft_table(&d);
    assert!(!table.contains("br-"), "{table}");
}

#[test]
fn container_network_mode_shares_the_targets_namespace_and_etc_files() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _rm = Cleanup(&d, vec!["tgt", "joiner", "idle", "j2", "nonet"], vec![]);
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "tgt",
            "--hostname",
            "tgthost",
            "busybox",
            "sh",
            "-c",
            "echo shared-ns > /tmp/hello; httpd -f -p 127.0.0.1:8080 -h /tmp",
        ]),
        "run target",
    );
    let tgt_id = inspect(&d, "tgt", "{{.Id}}");

    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--network",
        "container:tgt",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_ok(&out, "run --network container:tgt");
    assert_eq!(
        inspect(&d, "joiner", "{{.HostConfig.NetworkMode}}"),
        format!("container:{tgt_id}")
    );
    // Same interfaces and addresses.
    let addrs = |n: &str| {
        exec_out(&d, n, &["ip", "-4", "-o", "addr"])
            .lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let (a, b) = (addrs("tgt"), addrs("joiner"));
    assert!(a.iter().any(|l| l.contains("eth0")), "{a:?}");
    assert_eq!(a, b);
    // The target's loopback is the joiner's loopback.
    let out = d.docker(&[
        "exec",
        "joiner",
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/hello",
    ]);
    assert_ok(&out, "wget from the joiner to the target's 127.0.0.1");
    assert_eq!(stdout(&out).trim(), "shared-ns");
    // Hostname, /etc/hosts and resolv.conf are the target's.
    assert_eq!(exec_out(&d, "joiner", &["hostname"]).trim(), "tgthost");
    for f in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
        assert_eq!(
            exec_out(&d, "joiner", &["cat", f]),
            exec_out(&d, "tgt", &["cat", f]),
            "{f}"
        );
    }
    assert!(exec_out(&d, "joiner", &["cat", "/etc/hosts"]).contains("tgthost"));

    // A target without a berth-managed namespace (--network none) is joined through its pid:
    // the joiner sees the interface the target made.
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "nonet",
            "--network",
            "none",
            "--cap-add",
            "NET_ADMIN",
            "busybox",
            "sh",
            "-c",
            "ip link set lo mtu 12345 && sleep 300",
        ]),
        "run --network none",
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:nonet",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 20); do ip link show lo | grep 'mtu 12345' && exit 0; sleep 0.2; done; exit 1",
    ]);
    assert_ok(
        &out,
        "run --network container:nonet sees the target's lo mtu",
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:nonet",
        "busybox",
        "ip",
        "link",
    ]);
    assert_ok(&out, "run --network container:nonet");
    let text = stdout(&out);
    assert!(
        text.contains("lo:") && text.contains("mtu 12345") && !text.contains("eth0"),
        "{text}"
    );

    // It has no network of its own to connect to others.
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &d.spare_subnet(3), "cnet"]),
        "network create",
    );
    let _g = NetGuard(&d, "cnet");
    let out = d.docker(&["network", "connect", "cnet", "joiner"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container sharing network namespace with another container or host cannot be connected to any other network"),
        "{}",
        stderr(&out)
    );

    // Joining a container that is not running, or does not exist.
    assert_ok(
        &d.docker(&["create", "--name", "idle", "busybox", "true"]),
        "create idle",
    );
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "j2",
        "--network",
        "container:idle",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "cannot join network namespace of a non running container: container idle is created"
        ),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:nosuch",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
    // Options that make no sense in someone else's namespace.
    let out = d.docker(&[
        "create",
        "--network",
        "container:tgt",
        "-p",
        "8081:80",
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("conflicting options: port publishing and the container type network mode"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mac_address_is_applied_to_eth0_and_shown_in_inspect() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _rm = Cleanup(&d, vec!["m1", "m2"], vec![]);
    let mac = "02:42:ac:11:00:99";
    let out = d.docker(&[
        "run",
        "--rm",
        "--mac-address",
        mac,
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_ok(&out, "run --mac-address");
    assert_eq!(stdout(&out).trim(), mac);

    run_sleeper(&d, "m1", &["--mac-address", mac]);
    assert_eq!(inspect(&d, "m1", "{{.NetworkSettings.MacAddress}}"), mac);
    assert_eq!(
        inspect(&d, "m1", "{{.NetworkSettings.Networks.bridge.MacAddress}}"),
        mac
    );
    // Without the flag the address stays the derived one.
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_ok(&out, "run");
    assert_ne!(stdout(&out).trim(), mac);

    // On a user-defined network, through EndpointSettings.
    let sub = d.spare_subnet(2);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &sub, "macnet"]),
        "network create",
    );
    let _g = NetGuard(&d, "macnet");
    let mac2 = "02:42:0a:0b:0c:0d";
    run_sleeper(&d, "m2", &["--network", "macnet", "--mac-address", mac2]);
    assert_eq!(
        exec_out(&d, "m2", &["cat", "/sys/class/net/eth0/address"]).trim(),
        mac2
    );
    assert_eq!(
        inspect(&d, "m2", "{{.NetworkSettings.Networks.macnet.MacAddress}}"),
        mac2
    );
    let _ = d.docker(&["rm", "-f", "m2"]);

    // A malformed address (the CLI checks it too, so go through the API). The container-wide
    // Config.MacAddress is read until API 1.51 only.
    let (st, body) = d.api(
        "POST",
        "/v1.51/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:zz"}"#),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid MAC address 02:42:zz"), "{body}");
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(
            r#"{"Image":"busybox","Cmd":["true"],"NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"nope"}}}}"#,
        ),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid MAC address nope"), "{body}");
}

#[test]
fn legacy_links_write_hosts_entries_on_the_default_bridge() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _rm = Cleanup(&d, vec!["web", "stopped"], vec![]);
    run_sleeper(&d, "web", &["--hostname", "webhost"]);
    let ip = inspect(&d, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    let out = d.docker(&[
        "run",
        "--rm",
        "--link",
        "web:db",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_ok(&out, "run --link web:db");
    let hosts = stdout(&out);
    assert!(
        hosts.lines().any(|l| l == format!("{ip}\tdb webhost web")),
        "{hosts}"
    );
    let _rm2 = Cleanup(&d, vec!["parent"], vec![]);
    run_sleeper(&d, "parent", &["--link", "web:db"]);
    assert_eq!(
        inspect(&d, "parent", "{{json .HostConfig.Links}}"),
        r#"["/web:/parent/db"]"#
    );
    assert!(
        exec_out(&d, "parent", &["cat", "/etc/hosts"]).contains(&format!("{ip}\tdb webhost web"))
    );
    let out = d.docker(&[
        "run", "--rm", "--link", "web", "busybox", "ping", "-c1", "-W2", "web",
    ]);
    assert_ok(&out, "ping the linked container by name");
    let out = d.docker(&[
        "run", "--rm", "--link", "web:db", "busybox", "ping", "-c1", "-W2", "db",
    ]);
    assert_ok(&out, "ping the linked container by alias");

    let out = d.docker(&["run", "--rm", "--link", "nosuch:db", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could not get container for nosuch"),
        "{}",
        stderr(&out)
    );
    assert_ok(
        &d.docker(&["create", "--name", "stopped", "busybox", "true"]),
        "create",
    );
    let out = d.docker(&["run", "--rm", "--link", "stopped:s", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Cannot link to a non running container: /stopped AS"),
        "{}",
        stderr(&out)
    );
}

/// `host` and `none` are listed and inspected like Docker's predefined networks, with the
/// containers in that mode, and can be neither removed nor connected to.
#[test]
fn predefined_host_and_none_networks() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["onhost", "plain"], vec![]);
    let out = d.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_ok(&out, "network ls");
    for line in ["bridge bridge local", "host host local", "none null local"] {
        assert!(
            stdout(&out).lines().any(|l| l == line),
            "{line}: {}",
            stdout(&out)
        );
    }
    run_sleeper(&d, "onhost", &["--network", "host"]);
    assert_eq!(
        inspect(
            &d,
            "host",
            "{{.Driver}} {{range .Containers}}{{.Name}}{{end}}"
        ),
        "host onhost"
    );
    let none_id = stdout(&d.docker(&["network", "ls", "-q", "--filter", "driver=null"]));
    assert_eq!(none_id.trim().len(), 12, "{none_id}");
    assert_eq!(inspect(&d, none_id.trim(), "{{.Name}}"), "none");
    let out = d.docker(&["network", "rm", "none"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("none is a pre-defined network and cannot be removed"),
        "{}",
        stderr(&out)
    );
    run_sleeper(&d, "plain", &[]);
    let out = d.docker(&["network", "connect", "host", "plain"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("cannot be disconnected from host network or connected to host network"),
        "{}",
        stderr(&out)
    );
    assert_ok(&d.docker(&["network", "prune", "-f"]), "prune");
    let out = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
}
