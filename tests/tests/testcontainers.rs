//! testcontainers-python (PyPI `testcontainers`), unchanged, against berthd:
//! tests/python/testcontainers_suite.py drives its wait strategies (log message, HTTP,
//! healthcheck from the image and from the create request), networks with aliases, copies into
//! and out of containers, and image builds, all from the local busybox image. Skipped with a
//! message when the clients' virtual environment is missing (scripts/install-deps.sh installs
//! it into /opt/berth-clients).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::*;

const STEPS: [&str; 7] = [
    "log wait",
    "http wait",
    "healthcheck wait",
    "networks",
    "copy in out",
    "image build",
    "all",
];

#[test]
fn testcontainers_python() {
    if !is_root() {
        return;
    }
    let venv = std::env::var_os("BERTH_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-clients"));
    let python = venv.join("bin/python3");
    let has = Command::new(&python)
        .args(["-c", "import testcontainers.core.wait_strategies"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        eprintln!(
            "skipping: {} has no testcontainers (scripts/install-deps.sh installs it)",
            python.display()
        );
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/testcontainers_suite.py");
    let out = d.run_env_for(
        &python,
        &[script.to_str().expect("utf8 path")],
        &[("TESTCONTAINERS_RYUK_DISABLED", "true")],
        None,
        Duration::from_secs(240),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "testcontainers_suite.py failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in STEPS {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}
