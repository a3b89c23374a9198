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
        &d.docker(&["run", "-d", "--name", "p", "busybox", "sleep", "100"]),
        "run",
    );
    assert_ok(&d.docker(&["pause", "p"]), "pause");
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "p",
    ]);
    assert_eq!(stdout(&out), "paused true true\n");
    let out = d.docker(&["exec", "p", "true"]);
    assert!(
        !out.status.success(),
        "exec into a paused container is refused"
    );
    assert!(stdout(&d.docker(&["ps"])).contains("(Paused)"));
    assert_ok(&d.docker(&["unpause", "p"]), "unpause");
    let out = d.docker(&["inspect", "-f", "{{.State.Status}}", "p"]);
    assert_eq!(stdout(&out), "running\n");
    assert_ok(&d.docker(&["pause", "p"]), "pause again");
    assert_ok(&d.docker(&["rm", "-f", "p"]), "rm -f a paused container");
}
