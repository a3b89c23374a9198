//! The Python docker SDK (docker-py), unchanged, against berthd: the everyday calls of
//! tests/python/sdk_smoke.py (run, errors, ports, exec, archives, logs, stats, networks,
//! volumes, build, prune). Skipped with a message when python3 has no `docker` module
//! (scripts/install-deps.sh installs it).

use std::process::Command;

use berth_tests::*;

const STEPS: [&str; 15] = [
    "ping version info",
    "images",
    "run remove",
    "run error",
    "detach ports",
    "list filters",
    "exec_run",
    "archives",
    "wait logs",
    "stats",
    "stop remove",
    "networks volumes",
    "build",
    "prune",
    "errors",
];

#[test]
fn python_docker_sdk_everyday_calls() {
    if !is_root() {
        return;
    }
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_smoke.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .expect("python3");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "sdk_smoke.py failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in STEPS {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}
