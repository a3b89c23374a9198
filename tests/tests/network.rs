//! Networking (issue 6): the default bridge, published ports, legacy links, leftovers after
//! removal and after a daemon crash. Every daemon has its own bridge, subnet and nftables table
//! (see the harness), and the harness removes them when the test ends, also on failure.
//! User-defined networks and the other `--network` modes are in `network_modes.rs`.

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
