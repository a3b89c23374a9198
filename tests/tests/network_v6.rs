//! IPv6 on user-defined networks (issue 6), driven with the real docker CLI: dual-stack
//! containers, AAAA answers of the embedded DNS, `--ip6`, isolation, published ports over
//! IPv6, bad input, a daemon crash, and no IPv6 leftovers. Every daemon uses its own IPv6
//! subnets (derived from its unique bridge name) and the harness removes its `ip` and `ip6`
//! nftables tables and bridges when the test ends, also on failure.

use std::process::Command;
use std::time::Duration;

use berth_tests::*;

/// Whether the test must be skipped: not root, or a host without IPv6 at all.
fn skip() -> bool {
    if !is_root() {
        return true;
    }
    if !std::path::Path::new("/proc/net/if_inet6").exists() {
        eprintln!("skipping: this host's kernel has no IPv6 (/proc/net/if_inet6 is missing)");
        return true;
    }
    false
}

/// An IPv6 /64 no other test daemon uses (`i` picks one of several per daemon).
fn v6_subnet(d: &Daemon, i: u8) -> String {
    let key: u32 = d.bridge.trim_start_matches("bt").parse().expect("bt<key>");
    format!("fd00:b7:{key:x}:{i}::/64")
}

/// Creates a dual-stack network `name` on the daemon's spare IPv4 subnet `i4` and its IPv6
/// subnet `i6`; returns the IPv6 subnet.
fn dual_stack_network(d: &Daemon, name: &str, i4: u8, i6: u8) -> String {
    let s6 = v6_subnet(d, i6);
    let s4 = d.spare_subnet(i4);
    assert_ok(
        &d.docker(&[
            "network", "create", "--ipv6", "--subnet", &s4, "--subnet", &s6, name,
        ]),
        &format!("network create --ipv6 {name}"),
    );
    s6
}

/// `subnet` (`p::/64`) with `host` as the last hextet: `p::host`.
fn v6_addr(subnet: &str, host: &str) -> String {
    format!("{}{host}", subnet.trim_end_matches("/64"))
}

fn table6(d: &Daemon) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip6", &format!("berth_{}", d.bridge)])
        .output()
        .expect("nft");
    out.status.success().then(|| stdout(&out))
}

fn v6_routes() -> String {
    stdout(
        &Command::new("ip")
            .args(["-6", "route"])
            .output()
            .expect("ip"),
    )
}

fn http_server(name: &str, net: &str, body: &str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        &format!("echo {body} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn docker_s(d: &Daemon, args: &[String]) -> std::process::Output {
    let v: Vec<&str> = args.iter().map(String::as_str).collect();
    d.docker(&v)
}

#[test]
fn ipv6_network_gives_dual_stack_containers_that_talk_by_name_and_address() {
    if skip() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(
        &d,
        vec!["aa", "bb", "fixed", "xx"],
        vec!["v6net", "v6other"],
    );
    let s4 = d.spare_subnet(0);
    let s6 = dual_stack_network(&d, "v6net", 0, 1);
    // Inspect shows IPv6 enabled and both IPAM configs.
    assert_eq!(
        inspect(&d, "v6net", "{{.EnableIPv6}}"),
        "true",
        "network inspect"
    );
    let ipam = inspect(
        &d,
        "v6net",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}",
    );
    let gw6 = v6_addr(&s6, "1");
    assert!(ipam.contains(&format!("{s6} {gw6};")), "{ipam}");
    assert!(ipam.contains(&format!("{s4} ")), "{ipam}");

    assert_ok(
        &docker_s(&d, &http_server("bb", "v6net", "hello-v6")),
        "run bb",
    );
    run_sleeper(&d, "aa", &["--network", "v6net"]);
    // Container inspect: the IPv6 fields of the endpoint.
    let f = inspect(
        &d,
        "bb",
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}} {{.IPAddress}}{{end}}",
    );
    let fields: Vec<&str> = f.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{f}");
    let b6 = fields[0].to_string();
    assert!(
        b6.starts_with(s6.trim_end_matches("::/64")) && b6 != gw6,
        "{b6} not in {s6}"
    );
    assert_eq!(fields[1], "64");
    assert_eq!(fields[2], gw6);
    assert!(!fields[3].is_empty(), "still has IPv4: {f}");

    // The interface, the default IPv6 route and /etc/hosts inside the container.
    let addr = exec_out(&d, "bb", &["ip", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet6 {b6}/64")), "{addr}");
    assert!(!addr.contains("tentative\n    inet6 fd"), "{addr}");
    let route = exec_out(&d, "aa", &["ip", "-6", "route"]);
    assert!(route.contains(&format!("default via {gw6}")), "{route}");
    let hosts = exec_out(&d, "bb", &["cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{b6}\t")), "{hosts}");

    // ping6 by name (AAAA from the embedded DNS) and by address, and HTTP over IPv6.
    let ping = d.docker(&["exec", "aa", "ping", "-6", "-c1", "-W2", "bb"]);
    assert_ok(&ping, "ping -6 bb");
    assert!(stdout(&ping).contains(&b6), "{}", stdout(&ping));
    assert_ok(
        &d.docker(&["exec", "aa", "ping6", "-c1", "-W2", &b6]),
        "ping6 by address",
    );
    let body = exec_out(
        &d,
        "aa",
        &["wget", "-qO-", &format!("http://[{b6}]:8080/index.html")],
    );
    assert_eq!(body, "hello-v6\n");
    let ns = exec_out(&d, "aa", &["nslookup", "-type=aaaa", "bb"]);
    assert!(ns.contains(&b6), "{ns}");

    // network inspect lists the members with their IPv6 addresses.
    let members = inspect(
        &d,
        "v6net",
        "{{range .Containers}}{{.Name}}={{.IPv6Address}};{{end}}",
    );
    assert!(members.contains(&format!("bb={b6}/64;")), "{members}");

    // --ip6: a fixed address, shown in IPAMConfig.
    let fixed = v6_addr(&s6, "99");
    run_sleeper(&d, "fixed", &["--network", "v6net", "--ip6", &fixed]);
    let f = inspect(
        &d,
        "fixed",
        "{{(index .NetworkSettings.Networks \"v6net\").IPAMConfig.IPv6Address}} {{(index .NetworkSettings.Networks \"v6net\").GlobalIPv6Address}}",
    );
    assert_eq!(f, format!("{fixed} {fixed}"));
    let addr = exec_out(&d, "fixed", &["ip", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet6 {fixed}/64")), "{addr}");
    // The same address twice is refused, and nothing is left half-made.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        &fixed,
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Address already in use"),
        "{}",
        stderr(&out)
    );

    // A second IPv6 network: `network connect --ip6`, and isolation from the first.
    let s6b = dual_stack_network(&d, "v6other", 1, 2);
    run_sleeper(&d, "xx", &["--network", "v6other"]);
    let ping = d.docker(&["exec", "xx", "ping6", "-c1", "-W1", &b6]);
    assert!(
        !ping.status.success(),
        "v6other reached v6net over IPv6\n{}",
        stdout(&ping)
    );
    let ping = d.docker(&["exec", "xx", "ping", "-6", "-c1", "-W1", "bb"]);
    assert!(!ping.status.success(), "bb resolved from another network");
    let t = table6(&d).expect("ip6 table while IPv6 networks exist");
    assert!(t.contains(&format!("ip6 saddr {s6} oifname")), "{t}");
    assert!(t.contains("masquerade"), "{t}");

    let conn_ip = v6_addr(&s6b, "42");
    assert_ok(
        &d.docker(&["network", "connect", "--ip6", &conn_ip, "v6other", "aa"]),
        "network connect --ip6",
    );
    let addr = exec_out(&d, "aa", &["ip", "-6", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet6 {conn_ip}/64")), "{addr}");
    assert_ok(
        &d.docker(&["exec", "xx", "ping6", "-c1", "-W2", &conn_ip]),
        "xx reaches aa over the shared network",
    );
    let f = inspect(
        &d,
        "aa",
        "{{(index .NetworkSettings.Networks \"v6other\").IPAMConfig.IPv6Address}}",
    );
    assert_eq!(f, conn_ip);
    assert_ok(
        &d.docker(&["network", "disconnect", "v6other", "aa"]),
        "disconnect",
    );
    // The address went back to the pool: it can be taken again.
    assert_ok(
        &d.docker(&[
            "run",
            "--rm",
            "--network",
            "v6other",
            "--ip6",
            &conn_ip,
            "busybox",
            "true",
        ]),
        "reuse a released --ip6",
    );

    // Removing everything leaves no IPv6 rules or routes behind.
    assert_ok(&d.docker(&["rm", "-f", "aa", "bb", "fixed", "xx"]), "rm");
    assert_ok(
        &d.docker(&["network", "rm", "v6net", "v6other"]),
        "network rm",
    );
    assert!(table6(&d).is_none(), "{:?}", table6(&d));
    let ruleset = stdout(
        &Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft"),
    );
    assert!(
        !ruleset.contains(s6.trim_end_matches("::/64")),
        "{s6} left in the ruleset"
    );
    let routes = v6_routes();
    for s in [&s6, &s6b] {
        assert!(!routes.contains(s.as_str()), "{s} still routed:\n{routes}");
    }
}

#[test]
fn published_ports_are_reachable_over_ipv6() {
    if skip() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["web"], vec!["pubv6"]);
    dual_stack_network(&d, "pubv6", 2, 3);
    let port = free_port();
    let mut run = http_server("web", "pubv6", "published-v6");
    run.splice(4..4, ["-p".to_string(), format!("{port}:8080")]);
    assert_ok(&docker_s(&d, &run), "run -p");
    let url = format!("http://[::1]:{port}/index.html");
    assert!(
        eventually(Duration::from_secs(5), || curl(&url) == "published-v6\n"),
        "{url}: {:?}\n{:?}",
        curl(&url),
        table6(&d)
    );
    // And on IPv4 as before.
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/index.html")),
        "published-v6\n"
    );
    // On the host's own global IPv6 addresses (DNAT), when it has one.
    let addrs = stdout(
        &Command::new("ip")
            .args(["-6", "-o", "addr", "show", "scope", "global"])
            .output()
            .expect("ip"),
    );
    let global = addrs
        .lines()
        .filter(|l| !l.contains(" bt") && !l.contains(" br-"))
        .find_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet6")?;
            Some(w.next()?.split('/').next()?.to_string())
        });
    if let Some(addr) = global {
        assert_eq!(
            curl(&format!("http://[{addr}]:{port}/index.html")),
            "published-v6\n",
            "via [{addr}]"
        );
    }
    // A restart gets its [::1] proxy back.
    assert_ok(&d.docker(&["restart", "-t", "1", "web"]), "restart");
    assert!(
        eventually(Duration::from_secs(5), || curl(&url) == "published-v6\n"),
        "after restart {url}: {:?}",
        curl(&url)
    );
    let ports = stdout(&d.docker(&["port", "web"]));
    assert!(
        ports.contains(&format!("8080/tcp -> 0.0.0.0:{port}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("8080/tcp -> [::]:{port}")),
        "{ports}"
    );
    assert_ok(&d.docker(&["rm", "-f", "web"]), "rm");
    let t = table6(&d).unwrap_or_default();
    assert!(!t.contains(&format!("dport {port}")), "{t}");
}

fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "3", "-g", url])
        .output()
        .expect("curl");
    stdout(&out)
}

/// Starts `http_server` with `-p <publish>`.
fn run_http(d: &Daemon, name: &str, net: &str, body: &str, publish: &str) {
    let mut run = http_server(name, net, body);
    run.splice(4..4, ["-p".to_string(), publish.to_string()]);
    assert_ok(&docker_s(d, &run), &format!("run -p {publish}"));
}

/// `url` answers with `body` (and a newline) within a few seconds.
fn assert_serves(d: &Daemon, url: &str, body: &str) {
    let want = format!("{body}\n");
    assert!(
        eventually(Duration::from_secs(5), || curl(url) == want),
        "{url}: {:?}\n{:?}",
        curl(url),
        table6(d)
    );
}

#[test]
fn ports_published_on_one_ipv6_host_address() {
    if skip() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    // No `Cleanup`: the daemon is restarted midway; its harness removes what is left.
    let s6 = dual_stack_network(&d, "one6", 4, 5);
    // [::1] on a dual-stack container: served by the userland proxy, and only there.
    let (p1, p2, p3, p4) = (free_port(), free_port(), free_port(), free_port());
    run_http(
        &d,
        "lo6",
        "one6",
        "on-loopback6",
        &format!("[::1]:{p1}:8080"),
    );
    let url1 = format!("http://[::1]:{p1}/index.html");
    assert_serves(&d, &url1, "on-loopback6");
    assert_eq!(curl(&format!("http://127.0.0.1:{p1}/index.html")), "");
    assert_eq!(
        stdout(&d.docker(&["port", "lo6"])).trim(),
        format!("8080/tcp -> [::1]:{p1}")
    );
    assert_eq!(
        inspect(
            &d,
            "lo6",
            "{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}} {{.HostPort}}{{end}}{{end}}"
        ),
        format!("::1 {p1}")
    );
    let ps = stdout(&d.docker(&["ps", "--filter", "name=lo6", "--format", "{{.Ports}}"]));
    assert_eq!(ps.trim(), format!("[::1]:{p1}->8080/tcp"));
    // The same address and port cannot be published twice.
    let mut dup = http_server("dup", "one6", "dup");
    dup.splice(4..4, ["-p".to_string(), format!("[::1]:{p1}:8080")]);
    let out = docker_s(&d, &dup);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "Bind for [::1]:{p1} failed: port is already allocated"
        )),
        "{}",
        stderr(&out)
    );
    // A restart gets the proxy back on the same address; so does a daemon killed and started
    // again.
    assert_ok(&d.docker(&["restart", "-t", "1", "lo6"]), "restart");
    assert_serves(&d, &url1, "on-loopback6");
    d.kill9();
    d.restart();
    assert_serves(&d, &url1, "on-loopback6");
    // Another local IPv6 address (the network's gateway on the host): DNAT in the ip6 table.
    let gw = v6_addr(&s6, "1");
    run_http(
        &d,
        "gw6",
        "one6",
        "on-gateway6",
        &format!("[{gw}]:{p2}:8080"),
    );
    assert_serves(&d, &format!("http://[{gw}]:{p2}/index.html"), "on-gateway6");
    let t = table6(&d).unwrap_or_default();
    assert!(
        t.contains(&format!("ip6 daddr {gw} tcp dport {p2} dnat to")),
        "{t}"
    );
    // `[::]` alone: every IPv6 address of the host ([::1] included), no IPv4 one.
    run_http(&d, "any6", "one6", "on-any6", &format!("[::]:{p4}:8080"));
    for host in ["[::1]".to_string(), format!("[{gw}]")] {
        assert_serves(&d, &format!("http://{host}:{p4}/index.html"), "on-any6");
    }
    assert_eq!(curl(&format!("http://127.0.0.1:{p4}/index.html")), "");
    assert_eq!(
        stdout(&d.docker(&["port", "any6"])).trim(),
        format!("8080/tcp -> [::]:{p4}")
    );
    // A container without IPv6 (the default bridge): the proxy forwards to its IPv4 address.
    run_http(
        &d,
        "v4only",
        "bridge",
        "v4-behind-v6",
        &format!("[::1]:{p3}:8080"),
    );
    assert_serves(&d, &format!("http://[::1]:{p3}/index.html"), "v4-behind-v6");
    // Removing the containers frees the addresses and drops the rule.
    assert_ok(
        &d.docker(&["rm", "-f", "lo6", "gw6", "any6", "v4only"]),
        "rm",
    );
    assert!(std::net::TcpListener::bind(("::1", p1)).is_ok());
    assert!(std::net::TcpListener::bind(("::1", p3)).is_ok());
    let t = table6(&d).unwrap_or_default();
    assert!(!t.contains(&format!("dport {p2}")), "{t}");
}

#[test]
fn ipv6_bad_input_gets_clear_errors() {
    if skip() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec![], vec!["good6", "auto6", "plain4", "int6"]);
    let s6 = v6_subnet(&d, 4);
    let s4 = d.spare_subnet(0);
    let create = |body: String| d.api("POST", "/networks/create", Some(&body));
    let (st, body) = create(format!(
        r#"{{"Name":"good6","EnableIPv6":true,"IPAM":{{"Config":[{{"Subnet":"{s4}"}},{{"Subnet":"{s6}"}}]}}}}"#
    ));
    assert_eq!(st, 201, "{body}");
    // Overlapping IPv6 subnets.
    let inner = s6.replace("::/64", ":8000::/80");
    let (st, body) = create(format!(
        r#"{{"Name":"n2","EnableIPv6":true,"IPAM":{{"Config":[{{"Subnet":"{inner}"}}]}}}}"#
    ));
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("overlaps"), "{body}");
    // Invalid CIDR.
    let out = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:zz::/64",
        "n3",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid CIDR address: fd00:zz::/64"),
        "{}",
        stderr(&out)
    );
    // Gateway outside the subnet.
    let other = v6_subnet(&d, 5);
    let (st, body) = create(format!(
        r#"{{"Name":"n4","EnableIPv6":true,"IPAM":{{"Config":[{{"Subnet":"{other}","Gateway":"fd00:dead::1"}}]}}}}"#
    ));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not in subnet"), "{body}");
    // An IPv6 subnet without --ipv6.
    let (st, body) = create(format!(
        r#"{{"Name":"n5","IPAM":{{"Config":[{{"Subnet":"{other}"}}]}}}}"#
    ));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("IPv6 is not enabled"), "{body}");
    for n in ["n2", "n3", "n4", "n5"] {
        let (st, _) = d.api("GET", &format!("/networks/{n}"), None);
        assert_eq!(st, 404, "{n} was created");
    }
    // --ipv6 without a subnet gets a ULA /64, as with Docker 28.
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            &d.spare_subnet(1),
            "auto6",
        ]),
        "create auto6",
    );
    let cfg = inspect(&d, "auto6", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    assert!(
        cfg.split_whitespace()
            .any(|s| s.starts_with("fd") && s.ends_with("::/64")),
        "{cfg}"
    );
    // UDP on [::1] would need a UDP proxy, which berth does not have: said at start.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "p6",
        "--network",
        "good6",
        "-p",
        "[::1]:8080:80/udp",
        "busybox",
        "sleep",
        "30",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("userland proxy, which serves [::1], [::] alone and containers without IPv6, speaks TCP only"),
        "{}",
        stderr(&out)
    );
    assert_ok(&d.docker(&["rm", "-f", "p6"]), "rm p6");
    // --ip6 outside the subnet, or on a network without IPv6.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "good6",
        "--ip6",
        "fd00:dead::5",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no configured subnet contains IP address fd00:dead::5"),
        "{}",
        stderr(&out)
    );
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--subnet",
            &d.spare_subnet(2),
            "plain4",
        ]),
        "create plain4",
    );
    assert_eq!(inspect(&d, "plain4", "{{.EnableIPv6}}"), "false");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "plain4",
        "--ip6",
        &v6_addr(&s6, "5"),
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    // A container on an IPv4-only network has no global IPv6 address and no AAAA.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "plain4",
        "busybox",
        "ip",
        "-6",
        "addr",
    ]);
    assert_ok(&out, "run on plain4");
    assert!(!stdout(&out).contains("scope global"), "{}", stdout(&out));
    // An internal IPv6 network: addresses but no default route and no masquerade.
    let s6i = v6_subnet(&d, 7);
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--internal",
            "--ipv6",
            "--subnet",
            &d.spare_subnet(3),
            "--subnet",
            &s6i,
            "int6",
        ]),
        "create int6",
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "int6",
        "busybox",
        "ip",
        "-6",
        "route",
    ]);
    assert_ok(&out, "run on int6");
    assert!(stdout(&out).contains(&s6i), "{}", stdout(&out));
    assert!(!stdout(&out).contains("default"), "{}", stdout(&out));
    let t = table6(&d).expect("ip6 table");
    assert!(!t.contains(&format!("ip6 saddr {s6i}")), "{t}");
    assert!(t.contains(&format!("ip6 saddr {s6} oifname")), "{t}");
    // Nothing was lost.
    assert_eq!(inspect(&d, "good6", "{{.EnableIPv6}}"), "true");
}

#[test]
fn ipv6_addresses_survive_a_daemon_crash_without_duplicates_or_leftovers() {
    if skip() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let s6 = v6_subnet(&d, 6);
    // Dynamic IPv6 addresses come from the ::100/120 range only.
    let range = v6_addr(&s6, "100/120");
    assert_ok(
        &d.docker(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            &d.spare_subnet(3),
            "--subnet",
            &s6,
            "--ip-range",
            &range,
            "keep6",
        ]),
        "create",
    );
    // No drop guard here (the daemon is restarted below): on failure the harness's cleanup
    // of the daemon removes its containers, bridges and tables.
    {
        let port = free_port();
        let mut run = http_server("srv", "keep6", "kept-v6");
        run.splice(4..4, ["-p".to_string(), format!("{port}:8080")]);
        assert_ok(&docker_s(&d, &run), "run srv");
        run_sleeper(&d, "cli", &["--network", "keep6"]);
        let fmt = "{{(index .NetworkSettings.Networks \"keep6\").GlobalIPv6Address}}";
        let srv6 = inspect(&d, "srv", fmt);
        let cli6 = inspect(&d, "cli", fmt);
        assert!(
            srv6.starts_with(&v6_addr(&s6, "1")),
            "{srv6} not in {range}"
        );
        d.kill9();
        d.restart();
        assert_eq!(inspect(&d, "srv", fmt), srv6);
        let fetch = || {
            stdout(&d.docker(&[
                "exec",
                "cli",
                "wget",
                "-qO-",
                &format!("http://[{srv6}]:8080/index.html"),
            ]))
        };
        assert!(
            eventually(Duration::from_secs(5), || fetch() == "kept-v6\n"),
            "{}",
            fetch()
        );
        assert_ok(
            &d.docker(&["exec", "cli", "ping", "-6", "-c1", "-W2", "srv"]),
            "AAAA after restart",
        );
        // The published port on [::1] is served again by the restarted daemon.
        let url = format!("http://[::1]:{port}/index.html");
        let curl = || {
            stdout(
                &Command::new("curl")
                    .args(["-s", "-m", "3", "-g", &url])
                    .output()
                    .expect("curl"),
            )
        };
        assert!(
            eventually(Duration::from_secs(5), || curl() == "kept-v6\n"),
            "{url}: {:?}",
            curl()
        );
        // A new member never gets an IPv6 address already in use.
        run_sleeper(&d, "new", &["--network", "keep6"]);
        let new6 = inspect(&d, "new", fmt);
        assert!(!new6.is_empty() && new6 != srv6 && new6 != cli6, "{new6}");
        assert_ok(
            &d.docker(&["exec", "new", "ping6", "-c1", "-W2", &srv6]),
            "new reaches srv",
        );
    }
    assert_ok(&d.docker(&["rm", "-f", "srv", "cli", "new"]), "rm");
    assert_ok(&d.docker(&["network", "rm", "keep6"]), "network rm");
    assert!(table6(&d).is_none(), "{:?}", table6(&d));
    assert!(!v6_routes().contains(&s6), "{}", v6_routes());
    // A crash that left an ip6 table behind (as one during a network's life would): the next
    // start removes it when no network has IPv6 any more.
    d.kill9();
    let table = format!("berth_{}", d.bridge);
    let stale = format!(
        "table ip6 {table} {{\n chain forward {{\n  type filter hook forward priority filter; policy accept;\n  ip6 saddr {s6} drop\n }}\n}}\n"
    );
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(nft.stdin.as_mut().unwrap(), stale.as_bytes()).unwrap();
    drop(nft.stdin.take());
    assert!(nft.wait().unwrap().success());
    assert!(table6(&d).is_some());
    d.restart();
    assert!(table6(&d).is_none(), "{:?}", table6(&d));
}

#[test]
fn berth_cli_creates_ipv6_networks_and_fixed_addresses() {
    if skip() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["fx"], vec!["bv6", "bv6b"]);
    let s6 = v6_subnet(&d, 8);
    let gw = v6_addr(&s6, "fe");
    let out = d.berth(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.spare_subnet(0),
        "--subnet",
        &s6,
        "--gateway",
        // spare_subnet(0) is `a.b.c.128/27`: its first host.
        &d.spare_subnet(0).replace(".128/27", ".129"),
        "--gateway",
        &gw,
        "bv6",
    ]);
    assert_ok(&out, "berth network create --ipv6");
    let ipam = inspect(
        &d,
        "bv6",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}}={{.Gateway}} {{end}}",
    );
    assert!(ipam.starts_with("true "), "{ipam}");
    assert!(ipam.contains(&format!("{s6}={gw}")), "{ipam}");
    let fixed = v6_addr(&s6, "77");
    assert_ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "fx",
            "--network",
            "bv6",
            "--ip6",
            &fixed,
            "busybox",
            "sleep",
            "300",
        ]),
        "berth run --ip6",
    );
    assert_eq!(
        inspect(&d, "fx", "{{(index .NetworkSettings.Networks \"bv6\").GlobalIPv6Address}} {{(index .NetworkSettings.Networks \"bv6\").IPv6Gateway}}"),
        format!("{fixed} {gw}")
    );
    let s6b = v6_subnet(&d, 9);
    assert_ok(
        &d.berth(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            &d.spare_subnet(1),
            "--subnet",
            &s6b,
            "bv6b",
        ]),
        "create bv6b",
    );
    let conn = v6_addr(&s6b, "55");
    assert_ok(
        &d.berth(&["network", "connect", "--ip6", &conn, "bv6b", "fx"]),
        "berth network connect --ip6",
    );
    let addr = exec_out(&d, "fx", &["ip", "-6", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet6 {conn}/64")), "{addr}");
    // Docker's ls shows the IPv6 column from EnableIPv6.
    let out = d.berth(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.IPv6}}",
        "-f",
        "name=bv6",
    ]);
    assert!(stdout(&out).contains("bv6 true"), "{}", stdout(&out));
}

/// `berthd --ipv6`: the default bridge gets a ULA /64 derived from its name (the same after a
/// restart) and its containers dual-stack addresses that reach each other and the gateway;
/// `--fixed-cidr-v6` picks the subnet; `--fixed-cidr-v6` alone is refused at start.
#[test]
fn default_bridge_gets_ipv6_with_the_ipv6_flag() {
    if skip() {
        return;
    }
    let mut d = Daemon::start_with_args(&["--ipv6"]);
    d.load_busybox();
    let subnet = inspect(&d, "bridge", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    let subnet6 = subnet
        .split_whitespace()
        .find(|s| s.contains(':'))
        .unwrap_or_else(|| panic!("no IPv6 subnet on the default bridge: {subnet}"))
        .to_string();
    assert!(
        subnet6.starts_with("fd") && subnet6.ends_with("::/64"),
        "{subnet6}"
    );
    assert_eq!(inspect(&d, "bridge", "{{.EnableIPv6}}"), "true");
    d.restart();
    let again = inspect(&d, "bridge", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    assert!(
        again.contains(&subnet6),
        "same subnet after a restart: {again}"
    );
    let _c = Cleanup(&d, vec!["a6", "b6"], vec![]);
    for n in ["a6", "b6"] {
        run_sleeper(&d, n, &[]);
    }
    let prefix = subnet6.trim_end_matches("/64");
    let b6 = inspect(&d, "b6", "{{.NetworkSettings.GlobalIPv6Address}}");
    assert!(b6.starts_with(prefix), "{b6} in {subnet6}");
    assert_eq!(
        inspect(&d, "a6", "{{.NetworkSettings.IPv6Gateway}}"),
        format!("{prefix}1")
    );
    let routes = exec_out(&d, "a6", &["ip", "-6", "route"]);
    assert!(
        routes.contains(&format!("default via {prefix}1")),
        "{routes}"
    );
    exec_out(&d, "a6", &["ping", "-6", "-c1", "-W2", &b6]);
    exec_out(
        &d,
        "a6",
        &["ping", "-6", "-c1", "-W2", &format!("{prefix}1")],
    );
    drop(_c);

    let fixed = v6_subnet(&d, 9);
    let d2 = Daemon::start_with_args(&["--ipv6", "--fixed-cidr-v6", &fixed]);
    d2.load_busybox();
    let out = d2.docker(&["run", "--rm", "busybox", "ip", "-6", "addr", "show", "eth0"]);
    assert_ok(&out, "run on a fixed-cidr-v6 bridge");
    assert!(
        stdout(&out).contains(fixed.trim_end_matches("/64")),
        "{}",
        stdout(&out)
    );
}
