//! Networking (issue 6) beyond the default bridge: user-defined networks (name resolution,
//! isolation, bad input), `--network container:<name>`, `host` and `none`, and a fixed MAC
//! address. Every daemon has its own bridge, subnet and nftables table (see the harness), and
//! the harness removes them when the test ends, also on failure.

use std::time::Duration;

use berth_tests::*;

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
