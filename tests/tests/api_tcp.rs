//! The API on TCP (`-H tcp://…`): with TLS and client certificates (`--tlsverify`), driven
//! by the real docker CLI and by `berth` over TLS (hijacked `run`s included); plain HTTP only
//! with an explicit `--tls=false`; refused at start otherwise.

use std::path::Path;
use std::process::Command;

use berth_tests::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert_ok(&out, &format!("openssl {}", args.join(" ")));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker's
/// "Protect the Docker daemon socket" guide makes them; and a second CA's client
/// certificate the daemon must refuse.
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let days = ["-days", "2"];
    for ca in ["ca", "other-ca"] {
        openssl(dir, &["genrsa", "-out", &format!("{ca}-key.pem"), "2048"]);
        let mut a = vec![
            "req",
            "-new",
            "-x509",
            "-key",
            &format!("{ca}-key.pem"),
            "-sha256",
            "-subj",
            "/CN=berth test CA",
            "-out",
            &format!("{ca}.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        a.extend(days.iter().map(|s| s.to_string()));
        openssl(dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    }
    std::fs::write(
        dir.join("server-ext.cnf"),
        "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client-ext.cnf"),
        "extendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    for (name, ca, ext) in [
        ("server", "ca", "server-ext.cnf"),
        ("client", "ca", "client-ext.cnf"),
        ("stranger", "other-ca", "client-ext.cnf"),
    ] {
        openssl(dir, &["genrsa", "-out", &format!("{name}-key.pem"), "2048"]);
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}-key.pem"),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}-key.pem"),
                "-CAcreateserial",
                "-sha256",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}-cert.pem"),
            ],
        );
    }
}

#[test]
fn tlsverify_serves_the_docker_cli_over_tls_with_client_certificates() {
    if !is_root() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("berth-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    make_certs(&tmp);
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let p = |f: &str| tmp.join(f).display().to_string();
    let d = Daemon::start_with_args(&[
        "-H",
        &host,
        "--tlsverify",
        "--tlscacert",
        &p("ca.pem"),
        "--tlscert",
        &p("server-cert.pem"),
        "--tlskey",
        &p("server-key.pem"),
    ]);
    d.load_busybox();
    let docker_tls = |client: &str, args: &[&str]| {
        let mut a = vec![
            "-H".to_string(),
            host.clone(),
            "--tlsverify".to_string(),
            "--tlscacert".to_string(),
            p("ca.pem"),
            "--tlscert".to_string(),
            p(&format!("{client}-cert.pem")),
            "--tlskey".to_string(),
            p(&format!("{client}-key.pem")),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        d.docker(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = docker_tls("client", &["version", "--format", "{{.Server.Version}}"]);
    assert_ok(&out, "docker version over TLS");
    assert!(!stdout(&out).trim().is_empty());
    // A hijacked connection (attach) over TLS: output and exit code come back.
    let out = docker_tls(
        "client",
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo over tls; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "over tls\n");
    let out = docker_tls("client", &["ps", "-a", "--format", "{{.Names}}"]);
    assert_ok(&out, "ps over TLS");
    // A client certificate from another CA, or none, is refused.
    let out = docker_tls("stranger", &["version"]);
    assert!(!out.status.success(), "a stranger got in: {}", stdout(&out));
    let out = d.docker(&[
        "-H",
        &host,
        "--tls",
        "version",
        "--format",
        "{{.Server.Version}}",
    ]);
    assert!(!out.status.success(), "no client cert got in");
    // Plain HTTP on the TLS port gets nothing useful.
    let out = d.berth(&["-H", &host, "version"]);
    assert!(!out.status.success());
    // berth speaks TLS too: flags, or DOCKER_TLS_VERIFY with DOCKER_CERT_PATH as docker reads
    // them; stdin's end reaches the container through the TLS stream (close_notify).
    let berth_tls = |ca: &str, args: &[&str], input: Option<&[u8]>| {
        let mut a = vec![
            "-H".to_string(),
            host.clone(),
            "--tlsverify".to_string(),
            "--tlscacert".to_string(),
            p(ca),
            "--tlscert".to_string(),
            p("client-cert.pem"),
            "--tlskey".to_string(),
            p("client-key.pem"),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        d.run(
            &bin("berth"),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            input,
        )
    };
    let out = berth_tls(
        "ca.pem",
        &["run", "-i", "--rm", "busybox", "tr", "a-z", "A-Z"],
        Some(b"quiet please"),
    );
    assert_ok(&out, "berth run -i over TLS");
    assert_eq!(stdout(&out), "QUIET PLEASE");
    // A daemon certificate the given CA did not sign is not trusted.
    let out = berth_tls("other-ca.pem", &["version"], None);
    assert!(!out.status.success(), "{}", stdout(&out));
    let certs = tmp.join("docker-cert-path");
    std::fs::create_dir_all(&certs).unwrap();
    for (from, to) in [
        ("ca.pem", "ca.pem"),
        ("client-cert.pem", "cert.pem"),
        ("client-key.pem", "key.pem"),
    ] {
        std::fs::copy(tmp.join(from), certs.join(to)).unwrap();
    }
    let out = Command::new(bin("berth"))
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .env("DOCKER_HOST", &host)
        .env_remove("BERTH_HOST")
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs)
        .output()
        .expect("berth");
    assert_ok(&out, "berth with DOCKER_TLS_VERIFY");
    // The unix socket is served as before.
    assert_ok(&d.docker(&["info", "--format", "{{.ID}}"]), "info on unix");
    drop(d);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn plain_tcp_needs_an_explicit_tls_false() {
    if !is_root() {
        return;
    }
    // Refused at start, before anything is created.
    let tmp = std::env::temp_dir().join(format!("berth-tcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let port = free_port();
    let out = Command::new(bin("berthd"))
        .args(["--data-root"])
        .arg(tmp.join("data"))
        .arg("--exec-root")
        .arg(tmp.join("exec"))
        .args(["-H", &format!("tcp://127.0.0.1:{port}"), "--bridge", "none"])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("without TLS") && stderr(&out).contains("--tls=false"),
        "{}",
        stderr(&out)
    );
    assert!(
        !tmp.join("data").exists(),
        "the refused daemon created its data root"
    );
    // A bad certificate path is said at start too.
    let out = Command::new(bin("berthd"))
        .args(["--data-root"])
        .arg(tmp.join("data"))
        .arg("--exec-root")
        .arg(tmp.join("exec"))
        .args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "--tls",
            "--tlscert",
            "/nonexistent/cert.pem",
            "--bridge",
            "none",
        ])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/cert.pem"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&tmp);
    // With --tls=false: plain HTTP, for `berth -H tcp://…` and the docker CLI alike.
    let host = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_with_args(&["-H", &host, "--tls=false"]);
    d.load_busybox();
    let out = d.berth(&["-H", &host, "run", "--rm", "busybox", "echo", "plain tcp"]);
    assert_ok(&out, "berth run over tcp");
    assert_eq!(stdout(&out), "plain tcp\n");
    let out = d.docker(&["-H", &host, "images", "--format", "{{.Repository}}"]);
    assert_ok(&out, "docker images over tcp");
    assert!(stdout(&out).contains("busybox"), "{}", stdout(&out));
    assert!(d.log().contains("without TLS"), "no warning in the log");
}
