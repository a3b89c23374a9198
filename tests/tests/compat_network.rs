//! Networking behaviours a compatibility sweep against a real dockerd found different, checked
//! with the real docker CLI: an unknown network, the host network's name and hosts file, the
//! `publish` filter of `ps`, connecting and disconnecting the default bridge.

use berth_tests::*;

#[test]
fn unknown_network_fails_the_run_without_a_pull() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&["run", "--network", "nonexist", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("network nonexist not found"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    // As with dockerd (20.10 and 28), the create succeeded and the start failed: the
    // container is left, created.
    let out = d.docker(&["ps", "-a", "--format", "{{.Status}}"]);
    assert_eq!(stdout(&out), "Created\n");
}

#[test]
fn host_network_uses_the_host_name_and_hosts_file() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["hostnet"], vec![]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let out = d.docker(&[
        "run",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; echo ---; cat /etc/hosts",
    ]);
    assert_ok(&out, "run --network host");
    let hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts");
    assert_eq!(stdout(&out), format!("{host}{host}---\n{hosts}"));
    assert_eq!(inspect(&d, "hostnet", "{{.Config.Hostname}}"), host.trim());
    // An explicit name and --add-host still win.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-h",
        "mine",
        "--add-host",
        "db:10.9.8.7",
        "busybox",
        "sh",
        "-c",
        "hostname; grep db /etc/hosts",
    ]);
    assert_ok(&out, "run --network host -h --add-host");
    assert_eq!(stdout(&out), "mine\n10.9.8.7\tdb\n");
    // Other modes keep the id.
    let out = d.docker(&["run", "--rm", "busybox", "hostname"]);
    assert_ok(&out, "run");
    assert_ne!(stdout(&out), host);
    assert_eq!(stdout(&out).trim().len(), 12);
}

/// `ps --filter publish=` matches the host port a running container got, ephemeral ones
/// included; `expose=` its container port.
#[test]
fn ps_publish_filter_matches_a_running_containers_host_port() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["ps-pub-run"], vec![]);
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "ps-pub-run",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "600",
        ]),
        "run -d -p",
    );
    let out = d.docker(&["port", "ps-pub-run", "80/tcp"]);
    assert_ok(&out, "port");
    let host_port = stdout(&out)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("a binding")
        .trim()
        .to_string();
    let names = |filter: &str| {
        let out = d.docker(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
        assert_ok(&out, filter);
        stdout(&out).trim().to_string()
    };
    assert_eq!(names(&format!("publish={host_port}")), "ps-pub-run");
    assert_eq!(names(&format!("publish={host_port}/udp")), "");
    assert_eq!(names("publish=80"), "");
    assert_eq!(names("expose=80/tcp"), "ps-pub-run");
}

/// `docker network connect bridge` adds the default bridge to a container on a user-defined
/// network (running: a new interface at once; stopped: at its next start), and
/// `network disconnect bridge` takes it away again.
#[test]
fn network_connect_and_disconnect_the_default_bridge() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["nb-run", "nb-stopped", "nb-peer"], vec!["nbnet"]);
    let subnet = d.spare_subnet(0);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &subnet, "nbnet"]),
        "network create",
    );
    assert_ok(
        &d.docker(&["run", "-d", "--name", "nb-peer", "busybox", "sleep", "600"]),
        "run peer on the default bridge",
    );
    let peer_ip = inspect(&d, "nb-peer", "{{.NetworkSettings.IPAddress}}");
    assert!(!peer_ip.is_empty());
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "nb-run",
            "--network",
            "nbnet",
            "busybox",
            "sleep",
            "600",
        ]),
        "run on nbnet",
    );
    let ping = |c: &str| {
        d.docker(&["exec", c, "ping", "-c1", "-W2", &peer_ip])
            .status
            .success()
    };
    assert!(!ping("nb-run"), "not on the default bridge yet");
    assert_ok(
        &d.docker(&["network", "connect", "bridge", "nb-run"]),
        "connect bridge (running)",
    );
    let bridge_ip = inspect(
        &d,
        "nb-run",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
    );
    assert!(!bridge_ip.is_empty(), "inspect shows the bridge");
    assert!(!inspect(
        &d,
        "nb-run",
        "{{.NetworkSettings.Networks.nbnet.IPAddress}}"
    )
    .is_empty());
    assert!(
        exec_out(&d, "nb-run", &["ip", "-4", "-o", "addr"]).contains(&format!("inet {bridge_ip}/")),
    );
    assert!(ping("nb-run"), "reaches the default bridge");
    let out = d.docker(&["network", "connect", "bridge", "nb-run"]);
    assert!(!out.status.success(), "connected twice");
    assert!(
        stderr(&out).contains("endpoint with name nb-run already exists in network bridge"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["network", "connect", "bridge", "nb-peer"]);
    assert!(
        stderr(&out).contains("already exists in network bridge"),
        "a container of the default bridge: {}",
        stderr(&out)
    );
    assert_ok(
        &d.docker(&["network", "disconnect", "bridge", "nb-run"]),
        "disconnect bridge",
    );
    assert!(!exec_out(&d, "nb-run", &["ip", "-4", "-o", "addr"]).contains(&bridge_ip));
    assert!(!ping("nb-run"), "cut off again");
    // A stopped container gets it at its next start.
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "nb-stopped",
            "--network",
            "nbnet",
            "busybox",
            "sleep",
            "600",
        ]),
        "create on nbnet",
    );
    assert_ok(
        &d.docker(&["network", "connect", "bridge", "nb-stopped"]),
        "connect bridge (stopped)",
    );
    assert_ok(&d.docker(&["start", "nb-stopped"]), "start");
    assert!(ping("nb-stopped"), "reaches the default bridge after start");
    assert!(!inspect(
        &d,
        "nb-stopped",
        "{{.NetworkSettings.Networks.nbnet.IPAddress}}"
    )
    .is_empty());
}
