//! dockerode (the Node.js Docker client), unchanged, against berthd: tests/node/dockerode_smoke.js
//! drives attach and exec with demultiplexed streams, hijacked stdin, logs follow, archives,
//! builds from a tar stream, filtered events, stats and typed errors. Skipped with a message when
//! node or the npm packages are missing (scripts/install-deps.sh installs them).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::*;

const STEPS: [&str; 13] = [
    "ping version info",
    "run demux",
    "attach stdin hijack",
    "exec demux",
    "logs follow",
    "archives",
    "stats",
    "errors",
    "lifecycle",
    "build",
    "events",
    "networks volumes",
    "all",
];

#[test]
fn dockerode_everyday_calls() {
    if !is_root() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node || !dir.join("node_modules/dockerode").exists() {
        eprintln!("skipping: node or tests/node/node_modules missing (scripts/install-deps.sh)");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let out = d.run_for(
        Path::new("node"),
        &[dir.join("dockerode_smoke.js").to_str().expect("utf8 path")],
        None,
        Duration::from_secs(300),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "dockerode_smoke.js failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in STEPS {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}
