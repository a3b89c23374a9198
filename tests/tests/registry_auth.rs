//! Ship, with credentials: `docker login` against a registry with basic auth, the bearer token
//! flow of a fake registry, and HTTPS registries (certs.d CA and client certificate, loopback
//! insecure by default), through berthd with the real docker CLI and with `berth`.

use berth_tests::registry::{
    fake_state, push_busybox, push_busybox_plain, rmi_pull_run, FakeRegistry, TestPki, TestRegistry,
};
use berth_tests::*;

fn docker_config(d: &Daemon) -> serde_json::Value {
    let raw = std::fs::read(d.root.join("docker-config/config.json")).expect("config.json");
    serde_json::from_slice(&raw).expect("config.json is JSON")
}

#[test]
fn basic_auth_login_push_pull() {
    let reg = TestRegistry::start_with_htpasswd("alice", "s3cret-pw");
    let d = Daemon::start();
    d.load_busybox();
    let image = format!("{}/private/busybox:1", reg.addr());
    assert_ok(&d.docker(&["tag", "busybox", &image]), "docker tag");

    let out = d.docker(&["push", &image]);
    assert!(!out.status.success(), "push without login must fail");
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("no basic auth credentials"),
        "{}",
        stderr(&out)
    );

    let out = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        b"wrong\n",
    );
    assert!(!out.status.success(), "wrong password must fail");
    assert!(
        stderr(&out).contains(&format!(
            "Error response from daemon: login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.addr()
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        docker_config_opt(&d).is_none_or(|c| c["auths"][reg.addr()].is_null()),
        "nothing stored for a failed login"
    );

    let out = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        b"s3cret-pw\n",
    );
    assert_ok(&out, "docker login");
    assert!(stdout(&out).contains("Login Succeeded"));
    assert!(docker_config(&d)["auths"][reg.addr()]["auth"].is_string());

    assert_ok(&d.docker(&["push", &image]), "docker push after login");
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    assert_ok(&d.docker(&["pull", &image]), "docker pull after login");
    assert_ok(&d.docker(&["run", "--rm", &image, "true"]), "docker run");
    assert_ok(&d.docker(&["logout", &reg.addr()]), "docker logout");
    assert!(docker_config(&d)["auths"][reg.addr()].is_null());

    // berth logs in the same way; the docker CLI then uses berth's stored credentials.
    let out = d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        b"nope\n",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("401 Unauthorized"),
        "{}",
        stderr(&out)
    );
    let out = d.berth_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        b"s3cret-pw\n",
    );
    assert_ok(&out, "berth login");
    assert_eq!(stdout(&out), "Login Succeeded\n");
    assert_eq!(
        docker_config(&d)["auths"][reg.addr()]["auth"],
        "YWxpY2U6czNjcmV0LXB3",
        "base64 of alice:s3cret-pw, as docker stores it"
    );
    assert_ok(&d.docker(&["rmi", &image]), "docker rmi");
    assert_ok(
        &d.docker(&["pull", &image]),
        "docker pull with berth's login",
    );
    assert_ok(&d.berth(&["rmi", &image]), "berth rmi");
    assert_ok(&d.berth(&["pull", &image]), "berth pull with berth's login");
    let out = d.berth(&["logout", &reg.addr()]);
    assert_ok(&out, "berth logout");
    assert_eq!(
        stdout(&out),
        format!("Removing login credentials for {}\n", reg.addr())
    );
    assert!(docker_config(&d)["auths"][reg.addr()].is_null());
    let out = d.berth(&["pull", &image]);
    assert!(!out.status.success(), "pull after logout must fail");
}

fn docker_config_opt(d: &Daemon) -> Option<serde_json::Value> {
    let raw = std::fs::read(d.root.join("docker-config/config.json")).ok()?;
    serde_json::from_slice(&raw).ok()
}

#[test]
fn bearer_token_flow() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "tok/busybox");
    let fake = FakeRegistry::start(fake_state(&reg, "tok/busybox", Some(("bob", "hunter2"))));
    drop(reg);
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let img = format!("{}/tok/busybox:1", fake.addr());

    let out = d.docker(&["pull", &img]);
    assert!(!out.status.success(), "anonymous token request is refused");
    let out = d.docker_stdin(
        &["login", "-u", "bob", "--password-stdin", &fake.addr()],
        b"bad\n",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unauthorized: incorrect username or password"),
        "{}",
        stderr(&out)
    );
    let out = d.docker_stdin(
        &["login", "-u", "bob", "--password-stdin", &fake.addr()],
        b"hunter2\n",
    );
    assert_ok(&out, "docker login (token server)");
    assert_ok(
        &d.docker(&["pull", &img]),
        "docker pull with a bearer token",
    );
    assert_ok(&d.docker(&["run", "--rm", &img, "true"]), "run");
}

#[test]
fn https_registry_verified_with_certs_dir_ca_and_client_cert() {
    let pki = TestPki::new();
    // HTTPS only, and a client certificate from the test CA is required.
    let reg = TestRegistry::start_tls(&pki, true);
    let addr = reg.addr();

    // Verified like a non-loopback registry: nothing in certs.d means the registry's
    // certificate is not trusted and there is no fallback to HTTP.
    let empty = pki.dir.join("certs.d-empty");
    std::fs::create_dir_all(&empty).expect("empty certs dir");
    let d = Daemon::start_with_args(&[
        "--certs-dir",
        empty.to_str().expect("path"),
        "--registry-verify-loopback",
    ]);
    let image = format!("{addr}/tls/busybox:1");
    let out = d.docker(&["pull", &image]);
    assert!(!out.status.success(), "pull without the CA must fail");
    let err = stderr(&out);
    eprintln!("without the CA: {err}");
    assert!(
        err.contains("x509: certificate signed by unknown authority"),
        "want a certificate error: {err}"
    );
    // The CA alone is not enough: the registry wants our client certificate.
    pki.install(&empty, &addr, false);
    let d2 = Daemon::start_with_args(&[
        "--certs-dir",
        empty.to_str().expect("path"),
        "--registry-verify-loopback",
    ]);
    let out = d2.docker(&["pull", &image]);
    assert!(
        !out.status.success(),
        "pull without a client cert must fail"
    );
    eprintln!("without a client certificate: {}", stderr(&out));
    drop((d, d2));

    // CA plus client.cert/client.key: push, rmi, pull, run over verified HTTPS.
    let good = pki.dir.join("certs.d");
    pki.install(&good, &addr, true);
    let d = Daemon::start_with_args(&[
        "--certs-dir",
        good.to_str().expect("path"),
        "--registry-verify-loopback",
    ]);
    let image = push_busybox_plain(&d, &addr, "tls/busybox");
    rmi_pull_run(&d, &image);
}

#[test]
fn https_loopback_registry_is_insecure_by_default() {
    // Docker semantics: 127.0.0.0/8 is insecure, so HTTPS is tried first and the
    // certificate is not verified (no certs.d entry needed).
    let pki = TestPki::new();
    let reg = TestRegistry::start_tls(&pki, false);
    let empty = pki.dir.join("certs.d-empty");
    std::fs::create_dir_all(&empty).expect("empty certs dir");
    let d = Daemon::start_with_args(&["--certs-dir", empty.to_str().expect("path")]);
    let image = push_busybox_plain(&d, &reg.addr(), "insecure/busybox");
    rmi_pull_run(&d, &image);
}
