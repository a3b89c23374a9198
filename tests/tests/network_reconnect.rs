//! Network connect/disconnect as Docker does them (issue 18): a container leaves and joins
//! any of its networks, its first one included, created or running; the default route,
//! published ports, `/etc/hosts` and resolv.conf follow dockerd's rules (checked against
//! dockerd 20.10: the endpoint whose network name sorts first gives the gateway); several
//! networks at create; a network that does not exist fails the start. Driven with the real
//! docker CLI, and with docker-py (tests/python/network_reconnect.py).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_tests::*;

/// The `n`th address of a `a.b.c.d/len` subnet.
fn nth(subnet: &str, n: u8) -> String {
    let ip = subnet.split('/').next().unwrap();
    let mut p: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    p[3] += n;
    format!("{}.{}.{}.{}", p[0], p[1], p[2], p[3])
}

fn http_get(addr: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn network_names(d: &Daemon, c: &str) -> String {
    inspect(
        d,
        c,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    )
}

fn routes(d: &Daemon, c: &str) -> String {
    exec_out(d, c, &["ip", "route"])
}

fn hosts(d: &Daemon, c: &str) -> String {
    exec_out(d, c, &["cat", "/etc/hosts"])
}

#[test]
fn docker_cli_reconnects_created_and_running_containers() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let (sa, sb) = (d.spare_subnet(0), d.spare_subnet(1));
    let (gwa, gwb) = (nth(&sa, 1), nth(&sb, 1));
    for (name, subnet) in [("ra", &sa), ("rb", &sb)] {
        assert_ok(
            &d.docker(&["network", "create", "--subnet", subnet, name]),
            "network create",
        );
    }
    run_sleeper(&d, "peer", &["--network", "ra"]);

    // Created: leave the first network and join it again with other settings (compose v1).
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "web",
            "--network",
            "ra",
            "--network-alias",
            "old",
            "busybox",
            "sleep",
            "300",
        ]),
        "create",
    );
    assert_ok(
        &d.docker(&["network", "disconnect", "ra", "web"]),
        "disconnect created",
    );
    assert_eq!(
        inspect(&d, "web", "{{json .NetworkSettings.Networks}}"),
        "{}"
    );
    let fixed = nth(&sa, 20);
    assert_ok(
        &d.docker(&[
            "network", "connect", "--alias", "new", "--ip", &fixed, "ra", "web",
        ]),
        "connect created",
    );
    assert_eq!(
        inspect(&d, "web", "{{json .NetworkSettings.Networks.ra.Aliases}} {{.NetworkSettings.Networks.ra.IPAMConfig.IPv4Address}}"),
        format!("[\"new\"] {fixed}")
    );
    // NetworkMode is left as it was created, as dockerd leaves it.
    assert_eq!(inspect(&d, "web", "{{.HostConfig.NetworkMode}}"), "ra");
    assert_ok(&d.docker(&["start", "web"]), "start");
    assert!(routes(&d, "web").contains(&format!("default via {gwa} dev eth0")));
    assert!(
        d.docker(&["exec", "peer", "ping", "-c1", "-W2", "new"])
            .status
            .success(),
        "the new alias resolves"
    );
    let out = d.docker(&["exec", "peer", "nslookup", "old"]);
    assert!(
        !stdout(&out).contains(&fixed),
        "the old alias is gone: {}",
        stdout(&out)
    );

    // Running: joining rb keeps the route on ra (it sorts first); /etc/hosts gets a line.
    // With an interface sysctl (DriverOpts, API 1.46), set on the new eth1.
    assert_ok(
        &d.docker(&[
            "network",
            "connect",
            "--driver-opt",
            "com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1",
            "rb",
            "web",
        ]),
        "connect running",
    );
    assert_eq!(
        exec_out(
            &d,
            "web",
            &["cat", "/proc/sys/net/ipv4/conf/eth1/log_martians"]
        )
        .trim(),
        "1"
    );
    let ipb = inspect(&d, "web", "{{.NetworkSettings.Networks.rb.IPAddress}}");
    assert!(routes(&d, "web").contains(&format!("default via {gwa}")));
    let h = hosts(&d, "web");
    assert!(
        h.contains(&format!("{fixed}\t")) && h.contains(&format!("{ipb}\t")),
        "{h}"
    );
    assert!(
        exec_out(&d, "web", &["cat", "/etc/resolv.conf"]).contains(&format!("nameserver {gwa}"))
    );
    // Leaving ra, the gateway's network: the route, the hosts line and the resolver move.
    assert_ok(
        &d.docker(&["network", "disconnect", "ra", "web"]),
        "disconnect running",
    );
    let r = routes(&d, "web");
    assert!(
        r.contains(&format!("default via {gwb}")) && !r.contains(&gwa),
        "{r}"
    );
    let h = hosts(&d, "web");
    assert!(
        !h.contains(&format!("{fixed}\t")) && h.contains(&format!("{ipb}\t")),
        "{h}"
    );
    assert!(
        exec_out(&d, "web", &["cat", "/etc/resolv.conf"]).contains(&format!("nameserver {gwb}"))
    );
    let out = d.docker(&["network", "disconnect", "ra", "web"]);
    assert!(
        stderr(&out).contains("is not connected to network ra"),
        "{}",
        stderr(&out)
    );

    // Published ports follow the gateway endpoint, and go when there is none.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "pub",
            "--network",
            "rb",
            "-p",
            &publish,
            "busybox",
            "sh",
            "-c",
            "echo up > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ]),
        "run pub",
    );
    let url = format!("127.0.0.1:{port}");
    assert!(eventually(Duration::from_secs(5), || http_get(&url)
        .as_deref()
        == Some("up\n")));
    assert_ok(
        &d.docker(&["network", "connect", "ra", "pub"]),
        "connect pub",
    );
    assert!(routes(&d, "pub").contains(&format!("default via {gwa}")));
    assert_eq!(http_get(&url).as_deref(), Some("up\n"), "moved to ra");
    assert_ok(
        &d.docker(&["network", "disconnect", "ra", "pub"]),
        "back to rb",
    );
    assert_eq!(http_get(&url).as_deref(), Some("up\n"), "moved back to rb");
    assert_ok(
        &d.docker(&["network", "disconnect", "rb", "pub"]),
        "no network",
    );
    assert!(!routes(&d, "pub").contains("default"));
    assert_eq!(
        http_get(&url),
        None,
        "no gateway endpoint, no published port"
    );
    assert_ok(
        &d.docker(&["network", "connect", "ra", "pub"]),
        "a network again",
    );
    assert!(eventually(Duration::from_secs(5), || http_get(&url)
        .as_deref()
        == Some("up\n")));

    // The networks outlive a daemon restart and a container restart, in their order.
    d.restart();
    assert_eq!(
        inspect(
            &d,
            "web",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        ),
        "rb"
    );
    assert_ok(&d.docker(&["restart", "web"]), "restart web");
    let links = exec_out(&d, "web", &["ip", "-o", "link"]);
    assert!(links.contains("eth0") && !links.contains("eth1"), "{links}");
    assert!(routes(&d, "web").contains(&format!("default via {gwb} dev eth0")));
}

#[test]
fn several_networks_at_create_and_missing_ones_at_start() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let (sa, sb) = (d.spare_subnet(2), d.spare_subnet(3));
    for (name, subnet) in [("ma", &sa), ("mb", &sb)] {
        assert_ok(
            &d.docker(&["network", "create", "--subnet", subnet, name]),
            "network create",
        );
    }
    let _c = Cleanup(
        &d,
        vec!["multi", "lost", "orphan", "probe"],
        vec!["ma", "mb", "mc"],
    );
    // The docker CLI sends both networks in NetworkingConfig (API ≥ 1.44).
    run_sleeper(
        &d,
        "multi",
        &["--network", "mb", "--network", "name=ma,alias=mm"],
    );
    assert_eq!(
        inspect(
            &d,
            "multi",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.Aliases}} {{end}}"
        ),
        "ma:[mm] mb:[]"
    );
    let r = routes(&d, "multi");
    assert!(
        r.contains(&format!("default via {}", nth(&sa, 1))),
        "ma sorts first: {r}"
    );
    assert!(exec_out(&d, "multi", &["ip", "-o", "link"]).contains("eth1"));
    // Below API 1.45 dockerd adds the short id and hostname to a user network's aliases.
    let id = inspect(&d, "multi", "{{.Id}}");
    let aliases = |v: &str| {
        let (st, body) = d.api("GET", &format!("/{v}/containers/multi/json"), None);
        assert_eq!(st, 200, "{body}");
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        j["NetworkSettings"]["Networks"]["ma"]["Aliases"].to_string()
    };
    assert_eq!(aliases("v1.44"), format!("[\"mm\",\"{}\"]", &id[..12]));
    assert_eq!(aliases("v1.45"), "[\"mm\"]");
    run_sleeper(&d, "probe", &["--network", "ma"]);
    assert!(d
        .docker(&["exec", "probe", "ping", "-c1", "-W2", "mm"])
        .status
        .success());
    // Below API 1.44 one network only, with Docker's message.
    let body = r#"{"Image":"busybox","HostConfig":{"NetworkMode":"ma"},"NetworkingConfig":{"EndpointsConfig":{"ma":{},"mb":{}}}}"#;
    let (st, msg) = d.api("POST", "/v1.43/containers/create", Some(body));
    assert_eq!(st, 400, "{msg}");
    assert!(
        msg.contains("Container cannot be created with multiple network endpoints: ma, mb"),
        "{msg}"
    );
    let (st, msg) = d.api("POST", "/v1.44/containers/create?name=probe2", Some(body));
    assert_eq!(st, 201, "{msg}");
    let _ = d.docker(&["rm", "-f", "probe2"]);

    // As with dockerd, a network that does not exist fails the start, not the create; the
    // container can leave it by name.
    assert_ok(
        &d.docker(&["create", "--name", "lost", "--network", "nosuch", "busybox"]),
        "create",
    );
    let out = d.docker(&["start", "lost"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("network nosuch not found"),
        "{}",
        stderr(&out)
    );
    assert_ok(
        &d.docker(&["network", "disconnect", "nosuch", "lost"]),
        "disconnect by name",
    );
    assert_ok(&d.docker(&["start", "lost"]), "start without networks");
    // A removed network stays with the stopped containers that named it.
    assert_ok(&d.docker(&["network", "create", "mc"]), "create mc");
    assert_ok(
        &d.docker(&["create", "--name", "orphan", "--network", "mc", "busybox"]),
        "create",
    );
    assert_ok(&d.docker(&["network", "rm", "mc"]), "rm mc");
    let out = d.docker(&["start", "orphan"]);
    assert!(
        stderr(&out).contains("network mc not found"),
        "{}",
        stderr(&out)
    );
    assert_ok(
        &d.docker(&["network", "disconnect", "mc", "orphan"]),
        "disconnect",
    );
    assert_eq!(
        inspect(&d, "orphan", "{{json .NetworkSettings.Networks}}"),
        "{}"
    );
}

#[test]
fn docker_py_disconnects_and_connects_like_compose() {
    if !is_root() {
        return;
    }
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/network_reconnect.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env("SUBNET_A", d.spare_subnet(0))
        .env("SUBNET_B", d.spare_subnet(1))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .expect("python3");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "network_reconnect.py failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in [
        "created reconnect",
        "running reconnect",
        "default route",
        "errors",
        "cleanup",
    ] {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}

#[test]
fn records_of_earlier_versions_keep_their_network() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let subnet = d.spare_subnet(2);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &subnet, "old"]),
        "network create",
    );
    assert_ok(
        &d.docker(&["create", "--name", "plain", "busybox", "sleep", "300"]),
        "create",
    );
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "onold",
            "--network",
            "old",
            "busybox",
            "sleep",
            "300",
        ]),
        "create",
    );
    d.stop();
    // What berth wrote before networks were memberships: no row for the default bridge of a
    // default-mode container, and a database without a schema version.
    let db = d.root.join("data/berth.db");
    let py = r#"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for cid, nid, data in list(c.execute("SELECT container_id, network_id, data FROM network_attachments")):
    if json.loads(data).get("network_name") == "bridge":
        c.execute("DELETE FROM network_attachments WHERE container_id = ? AND network_id = ?", (cid, nid))
c.execute("PRAGMA user_version = 0")
c.commit()
print(c.execute("SELECT count(*) FROM network_attachments").fetchone()[0])
"#;
    let out = Command::new("python3")
        .args(["-c", py])
        .arg(&db)
        .output()
        .expect("python3");
    assert_ok(&out, "rewrite the database");
    assert_eq!(stdout(&out).trim(), "1", "only onold's row is left");
    d.restart();
    assert_eq!(network_names(&d, "plain"), "bridge");
    assert_eq!(network_names(&d, "onold"), "old");
    assert_ok(&d.docker(&["start", "plain", "onold"]), "start");
    assert!(
        routes(&d, "plain").contains(&format!("default via {}", d.bip.split('/').next().unwrap()))
    );
    assert!(routes(&d, "onold").contains(&format!("default via {}", nth(&subnet, 1))));
    // Once migrated, a disconnect from the default bridge sticks across restarts.
    assert_ok(
        &d.docker(&["network", "disconnect", "bridge", "plain"]),
        "disconnect",
    );
    d.restart();
    assert_eq!(network_names(&d, "plain"), "");
}
