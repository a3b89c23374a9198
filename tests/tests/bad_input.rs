//! Acceptance 6: bad input gets a clear error with the right status, and nothing leaks.

use berth_tests::*;

#[test]
fn api_errors() {
    let d = Daemon::start();
    d.load_busybox();
    let (st, body) = d.api("POST", "/v1.51/containers/create", Some("{not json"));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Tty":"yes"}"#),
    );
    assert_eq!(st, 400, "wrong type: {body}");
    let (st, _) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#),
    );
    assert_eq!(st, 400);
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"nosuchimage"}"#),
    );
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such image: nosuchimage:latest"), "{body}");
    let (st, body) = d.api("GET", "/containers/deadbeef/json", None);
    assert_eq!(st, 404);
    assert!(body.contains("No such container: deadbeef"), "{body}");
    let (st, _) = d.api("GET", "/v1.12/info", None);
    assert_eq!(st, 400, "too old a version");
    let (st, _) = d.api("GET", "/v1.99/info", None);
    assert_eq!(st, 400, "too new a version");
    let (st, _) = d.api("GET", "/exec/nope/json", None);
    assert_eq!(st, 404);

    let (st, _) = d.api(
        "POST",
        "/containers/create?name=dup",
        Some(r#"{"Image":"busybox","Cmd":["sleep","100"]}"#),
    );
    assert_eq!(st, 201);
    let (st, body) = d.api(
        "POST",
        "/containers/create?name=dup",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("already in use"), "{body}");
    let (st, body) = d.api("POST", "/containers/dup/start", None);
    assert_eq!(st, 204, "{body}");
    let (st, _) = d.api("POST", "/containers/dup/start", None);
    assert_eq!(st, 304);
    let (st, body) = d.api("DELETE", "/containers/dup", None);
    assert_eq!(st, 409, "{body}");
    let (st, _) = d.api("POST", "/containers/dup/kill", None);
    assert_eq!(st, 204);
    assert!(eventually(std::time::Duration::from_secs(10), || d
        .api("GET", "/containers/dup/json", None)
        .1
        .contains("\"exited\"")));
    let (st, _) = d.api("POST", "/containers/dup/stop", None);
    assert_eq!(st, 304);
    let (st, _) = d.api("DELETE", "/containers/dup", None);
    assert_eq!(st, 204);

    let (st, _) = d.api("HEAD", "/_ping", None);
    assert_eq!(st, 200);
    let (st, body) = d.api("GET", "/info", None);
    assert_eq!(st, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["Images"], 1);
    assert!(info["NCPU"].as_i64().unwrap() >= 1 && info["MemTotal"].as_i64().unwrap() > 0);
}

fn tar_with(entries: &[(&str, &[u8], u8, &str)]) -> Vec<u8> {
    // Minimal ustar writer: (name, data, typeflag, linkname).
    let mut out = Vec::new();
    for (name, data, kind, link) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        let size = format!("{:011o}", data.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let sum = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(sum.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_tarballs_touch_nothing_outside() {
    let d = Daemon::start();
    let marker = std::path::PathBuf::from(format!("/var/tmp/berth-escape-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let cases: Vec<Vec<u8>> = vec![
        tar_with(&[(
            &format!("../../../../../..{}", marker.display()),
            b"pwned",
            b'0',
            "",
        )]),
        tar_with(&[
            ("link", b"", b'2', "/var/tmp"),
            (
                &format!("link/{}", marker.file_name().unwrap().to_str().unwrap()),
                b"pwned",
                b'0',
                "",
            ),
        ]),
        tar_with(&[(
            "manifest.json",
            b"[{\"Config\":\"../../../../etc/passwd\",\"RepoTags\":[\"x:1\"],\"Layers\":[]}]",
            b'0',
            "",
        )]),
    ];
    for (i, tarball) in cases.iter().enumerate() {
        let path = d.root.join(format!("hostile-{i}.tar"));
        std::fs::write(&path, tarball).unwrap();
        let out = d.docker(&["load", "-i", path.to_str().unwrap()]);
        assert!(
            !out.status.success(),
            "hostile load {i} must fail: {}",
            stdout(&out)
        );
        let out = d.docker(&[
            "import",
            path.to_str().unwrap(),
            format!("hostile:{i}").as_str(),
        ]);
        let _ = out;
        assert!(!marker.exists(), "case {i} wrote outside the data root");
    }
    assert!(
        stdout(&d.docker(&["images", "-q", "x"])).trim().is_empty(),
        "nothing half-loaded"
    );
}

#[test]
fn huge_body_and_pause() {
    let d = Daemon::start();
    d.load_busybox();
    let huge = format!(
        r#"{{"Image":"busybox","Env":["X={}"]}}"#,
        "x".repeat(4 << 20)
    );
    let (st, body) = d.api("POST", "/containers/create", Some(&huge));
    assert_eq!(st, 413, "{}", &body[..body.len().min(200)]);
    assert!(body.contains("\"message\""), "{body}");
    assert_eq!(
        stdout(&d.docker(&["ps", "-aq"])).trim(),
        "",
        "nothing created"
    );

    assert_ok(
        &d.docker(&["run", "-d", "--name", "pp", "busybox", "sleep", "100"]),
        "run",
    );
    assert_ok(&d.docker(&["pause", "pp"]), "pause");
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "pp",
    ]);
    assert_eq!(stdout(&out), "paused true true\n");
    let out = d.docker(&["exec", "pp", "true"]);
    assert!(
        !out.status.success(),
        "exec into a paused container is refused"
    );
    assert!(stdout(&d.docker(&["ps"])).contains("(Paused)"));
    assert_ok(&d.docker(&["unpause", "pp"]), "unpause");
    let out = d.docker(&["inspect", "-f", "{{.State.Status}}", "pp"]);
    assert_eq!(stdout(&out), "running\n");
    assert_ok(&d.docker(&["pause", "pp"]), "pause again");
    assert_ok(&d.docker(&["rm", "-f", "pp"]), "rm -f a paused container");
}

/// What dockerd refuses at create is refused at create, with its message, and nothing is
/// created (issue 16, item 4). First through the docker CLI, which passes these through.
#[test]
fn create_refuses_what_dockerd_refuses() {
    let d = Daemon::start();
    d.load_busybox();
    for (args, want) in [
        (
            &["--cap-add", "FOO"][..],
            "invalid CapAdd: unknown capability: \"CAP_FOO\"",
        ),
        (
            &["--cap-drop", "cap_bar"],
            "invalid CapDrop: unknown capability: \"CAP_BAR\"",
        ),
        (
            &["--tmpfs", "rel"],
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            &["--tmpfs", "/"],
            "invalid specification: destination can't be '/'",
        ),
        (
            &["-w", "rel"],
            "the working directory 'rel' is invalid, it needs to be an absolute path",
        ),
        (&["--runtime", "foo"], "unknown or invalid runtime name: foo"),
        (
            &["--isolation", "hyperv"],
            "invalid isolation (hyperv): linux only supports 'default'",
        ),
        (
            &["--security-opt", "foo=bar"],
            "invalid --security-opt 2: \"foo=bar\"",
        ),
        (
            &["--storage-opt", "size=1G"],
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ),
        (
            &["--network", "container:other", "-h", "hh"],
            "conflicting options: hostname and the network mode",
        ),
        (
            &["--network", "host", "--link", "a:b"],
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ),
        (
            &["--uts", "host", "-h", "hh"],
            "conflicting options: hostname and the UTS mode",
        ),
        (
            &["--name", "a"],
            "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
    ] {
        let mut cmd = vec!["create"];
        cmd.extend_from_slice(args);
        cmd.push("busybox");
        let out = d.docker(&cmd);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr(&out).contains(&format!("Error response from daemon: {want}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // What the CLI itself would refuse, through the API.
    let api_cases = [
        (
            r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"abc"}]}}"#,
            "invalid port specification: \"abc\"",
        ),
        (
            r#""HostConfig":{"PortBindings":{"abc/tcp":[{"HostPort":"1"}]}}"#,
            "invalid port specification: \"abc\"",
        ),
        (
            r#""HostConfig":{"ShmSize":-1}"#,
            "SHM size can not be less than 0",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"Interval":-1}"#,
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"Timeout":-5000000000}"#,
            "Timeout in Healthcheck cannot be less than 1ms",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"StartPeriod":-1}"#,
            "StartPeriod in Healthcheck cannot be less than 1ms",
        ),
        (
            r#""Healthcheck":{"Test":["CMD","true"],"Retries":-1}"#,
            "Retries in Healthcheck cannot be negative",
        ),
        (r#""Env":["=x"]"#, "invalid environment variable: =x"),
        (
            r#""HostConfig":{"ExtraHosts":["foo"]}"#,
            "bad format for add-host: \"foo\"",
        ),
        (
            r#""HostConfig":{"ExtraHosts":["a:zz"]}"#,
            "invalid IP address in add-host: \"zz\"",
        ),
        (
            r#""HostConfig":{"UTSMode":"foo"}"#,
            "invalid UTS mode: foo",
        ),
        (
            r#""HostConfig":{"CgroupnsMode":"foo"}"#,
            "invalid cgroup namespace mode: foo",
        ),
        (
            r#""HostConfig":{"SecurityOpt":["foo"]}"#,
            "invalid --security-opt 1: \"foo\"",
        ),
        (
            r#""HostConfig":{"NetworkMode":"container:"}"#,
            "invalid network mode: invalid container format container:<name|id>",
        ),
        (
            r#""ExposedPorts":{"80/tcp":{}},"HostConfig":{"NetworkMode":"container:other"}"#,
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            r#""HostConfig":{"Annotations":{"":"x"}}"#,
            "invalid Annotations: the empty string is not permitted as an annotation key",
        ),
        (
            r#""HostConfig":{"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/"}]}"#,
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
        ),
        (
            r#""HostConfig":{"VolumesFrom":["nosuch"]}"#,
            "No such container: nosuch",
        ),
    ];
    for (fields, want) in api_cases {
        let body = format!(r#"{{"Image":"busybox",{fields}}}"#);
        let (st, resp) = d.api("POST", "/containers/create", Some(&body));
        assert_eq!(st, 400, "{fields}: {resp}");
        let msg: serde_json::Value = serde_json::from_str(&resp).expect("JSON error");
        assert_eq!(msg["message"], want, "{fields}");
    }
    assert_eq!(
        stdout(&d.docker(&["ps", "-aq"])).trim(),
        "",
        "a refused create left a container"
    );
    // The same settings, valid, are accepted.
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "fine",
            "--cap-add",
            "net_admin",
            "--cap-drop",
            "ALL",
            "--tmpfs",
            "/scratch",
            "-w",
            "/a/../b/",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "-p",
            "127.0.0.1::80",
            "busybox",
        ]),
        "valid create",
    );
    assert_eq!(inspect(&d, "fine", "{{.Config.WorkingDir}}"), "/b");
    // update checks what it changes.
    let out = d.docker(&["update", "--restart", "sometimes", "fine"]);
    assert!(!out.status.success(), "update took a bad restart policy");
    assert!(
        stderr(&out).contains("invalid restart policy"),
        "{}",
        stderr(&out)
    );
    let _ = d.docker(&["rm", "-f", "fine"]);
}

/// Networks on reserved address ranges are refused before anything is set up (issue 16,
/// item 5): no bridge with a loopback, multicast, unspecified or link-local address.
#[test]
fn networks_on_reserved_ranges_are_refused() {
    let d = Daemon::start();
    for (i, (subnet, kind)) in [
        ("127.0.0.0/8", "loopback"),
        ("127.1.0.0/16", "loopback"),
        ("224.0.0.0/4", "multicast"),
        ("0.0.0.0/8", "unspecified"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/64", "link-local"),
        ("ff02::/16", "multicast"),
        ("::1/128", "loopback"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("reserved{i}");
        let mut args = vec!["network", "create", "--subnet", subnet];
        if subnet.contains(':') {
            args.push("--ipv6");
        }
        args.push(&name);
        let out = d.docker(&args);
        assert!(!out.status.success(), "{subnet} was accepted");
        assert!(
            stderr(&out).contains(&format!("invalid subnet {subnet}: "))
                && stderr(&out).contains(kind),
            "{subnet}: {}",
            stderr(&out)
        );
        let (st, body) = d.api(
            "POST",
            "/networks/create",
            Some(&format!(
                r#"{{"Name":"{name}","EnableIPv6":true,"IPAM":{{"Config":[{{"Subnet":"{subnet}"}}]}}}}"#
            )),
        );
        assert_eq!(st, 400, "{subnet}: {body}");
    }
    // No interface but lo holds a loopback, multicast, unspecified or link-local IPv4 address
    // (a refused network never got a bridge).
    let addrs = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("ip addr");
    for line in stdout(&addrs).lines() {
        let mut f = line.split_whitespace();
        let dev = f.nth(1).unwrap_or_default();
        let addr = f.nth(1).unwrap_or_default();
        let reserved = ["127.", "224.", "0.", "169.254."]
            .iter()
            .any(|p| addr.starts_with(p));
        assert!(dev == "lo" || !reserved, "{dev} holds {addr}");
    }
    let out = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!stdout(&out).contains("reserved"), "{}", stdout(&out));
    let sub = d.spare_subnet(0);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &sub, "ordinary"]),
        "an ordinary subnet",
    );
    assert_ok(&d.docker(&["network", "rm", "ordinary"]), "network rm");
}

/// Names are checked as dockerd checks them, and a name the filesystem cannot hold is a 400,
/// not a 500 (issue 16, item 6).
#[test]
fn names_are_validated_with_a_400() {
    let d = Daemon::start();
    d.load_busybox();
    let long = "v".repeat(256);
    let (st, body) = d.api(
        "POST",
        "/volumes/create",
        Some(&format!(r#"{{"Name":"{long}"}}"#)),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("too long"), "{body}");
    let (st, body) = d.api(
        "POST",
        "/volumes/create",
        Some(&format!(r#"{{"Name":"{}"}}"#, "v".repeat(255))),
    );
    assert_eq!(st, 201, "255 characters fit: {body}");
    let out = d.docker(&["volume", "create", "a"]);
    assert!(
        stderr(&out).contains(
            "volume name is too short, names should be at least two alphanumeric characters"
        ),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["volume", "create", "a b"]);
    assert!(
        stderr(&out).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{long}:/x"),
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too long"), "{}", stderr(&out));
    for bad in ["a", "-ab", "a b", "a/b"] {
        let (st, body) = d.api(
            "POST",
            &format!("/containers/create?name={}", bad.replace(' ', "%20")),
            Some(r#"{"Image":"busybox"}"#),
        );
        assert_eq!(st, 400, "{bad:?}: {body}");
        assert!(body.contains("Invalid container name"), "{body}");
    }
    assert_ok(
        &d.docker(&["create", "--name", "ab", "busybox"]),
        "two characters",
    );
    let out = d.docker(&["rename", "ab", "a"]);
    assert!(!out.status.success(), "renamed to one character");
    let _ = d.docker(&["rm", "-f", "ab"]);
    // A path that is not UTF-8 is looked up as Go decodes it, and answered in JSON.
    for path in ["/containers/%ff/json", "/volumes/%ff%fe", "/networks/%c3"] {
        let (st, body) = d.api("GET", path, None);
        assert_eq!(st, 404, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains('\u{fffd}')),
            "{path}: {body}"
        );
    }
}
