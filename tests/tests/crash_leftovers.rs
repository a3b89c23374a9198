//! Issue 16, item 2: what a daemon crash during a build leaves (its step container, its
//! work directory, layers and blobs nothing references) is collected when berthd starts
//! again, and by `docker builder prune` while the daemon runs, without touching what a
//! build in progress holds.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use berth_tests::*;

fn write_context(d: &Daemon, name: &str, dockerfile: &str) -> PathBuf {
    let dir = d.root.join(name);
    std::fs::create_dir_all(&dir).expect("context dir");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    dir
}

fn spawn_build(d: &Daemon, ctx: &Path, tag: &str) -> Child {
    d.docker_command(&["build", "-t", tag, ctx.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker build")
}

/// The names of the containers `ps -a` lists.
fn all_names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_ok(&out, "ps -a");
    stdout(&out).lines().map(str::to_string).collect()
}

fn build_container(d: &Daemon) -> Option<String> {
    all_names(d)
        .into_iter()
        .find(|n| n.starts_with("berth_build_"))
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Plants what a crash between writing a layer and recording its image leaves: a layer
/// directory (a copy of a real one under a chain id nothing names) and a blob nothing names,
/// both dated before the daemon's start.
fn plant_orphans(d: &Daemon) -> (PathBuf, PathBuf) {
    let store = d.root.join("data/image");
    let layers = store.join("layers");
    let real = entries(&layers)
        .into_iter()
        .find(|n| n.len() == 64)
        .expect("a layer");
    let orphan_layer = layers.join("ab".repeat(32));
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(layers.join(&real))
        .arg(&orphan_layer)
        .status()
        .expect("cp");
    assert!(st.success());
    let orphan_blob = store.join("blobs/sha256").join("cd".repeat(32));
    std::fs::write(&orphan_blob, b"half a layer").expect("blob");
    for p in [&orphan_layer, &orphan_blob] {
        let st = std::process::Command::new("touch")
            .args(["-h", "-d", "2020-01-01"])
            .arg(p)
            .status()
            .expect("touch");
        assert!(st.success());
    }
    (orphan_layer, orphan_blob)
}

#[test]
fn a_build_cut_by_sigkill_leaves_nothing_after_restart() {
    let mut d = Daemon::start();
    d.load_busybox();
    let ctx = write_context(
        &d,
        "slow",
        "FROM busybox\nRUN echo one > /one\nRUN sleep 60\n",
    );
    let mut build = spawn_build(&d, &ctx, "cut:1");
    assert!(
        eventually(Duration::from_secs(30), || build_container(&d).is_some()),
        "the build never reached its slow step"
    );
    // The step's process runs; then the daemon dies with it mid-build.
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    let _ = build.kill();
    let _ = build.wait();
    let tmp = d.root.join("data/builder/tmp");
    assert!(!entries(&tmp).is_empty(), "the build had a work directory");
    let (orphan_layer, orphan_blob) = plant_orphans(&d);

    d.restart();
    let left: Vec<String> = all_names(&d)
        .into_iter()
        .filter(|n| n.starts_with("berth_build_"))
        .collect();
    assert!(left.is_empty(), "build containers left: {left:?}");
    assert!(entries(&tmp).is_empty(), "builder tmp: {:?}", entries(&tmp));
    assert!(!orphan_layer.exists(), "an unreferenced layer stayed");
    assert!(!orphan_blob.exists(), "an unreferenced blob stayed");
    // No process of the cut step survives in the daemon's cgroups.
    let procs = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat /sys/fs/cgroup/{}/*/cgroup.procs /sys/fs/cgroup/*/{}/*/cgroup.procs 2>/dev/null",
            d.cgroup_parent, d.cgroup_parent
        ))
        .output()
        .expect("sh");
    assert!(
        stdout(&procs).trim().is_empty(),
        "processes left: {}",
        stdout(&procs)
    );
    // What is referenced stayed: the image runs, and the same build now succeeds.
    let out = d.docker(&["run", "--rm", "busybox", "echo", "still here"]);
    assert_ok(&out, "run after the collection");
    assert_eq!(stdout(&out).trim(), "still here");
    let quick = write_context(&d, "quick", "FROM busybox\nRUN echo one > /one\n");
    let out = d.docker(&["build", "-t", "ok:1", quick.to_str().expect("utf-8")]);
    assert_ok(&out, "build after restart");
    let out = d.docker(&["run", "--rm", "ok:1", "cat", "/one"]);
    assert_ok(&out, "run the built image");
    assert_eq!(stdout(&out).trim(), "one");
}

#[test]
fn builder_prune_collects_orphans_but_not_a_running_build() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = write_context(
        &d,
        "busy",
        "FROM busybox\nRUN sleep 4 && echo done > /done\n",
    );
    let (orphan_layer, orphan_blob) = plant_orphans(&d);
    let mut build = spawn_build(&d, &ctx, "busy:1");
    assert!(
        eventually(Duration::from_secs(30), || build_container(&d).is_some()),
        "the build never started its step"
    );
    let out = d.docker(&["builder", "prune", "-f"]);
    assert_ok(&out, "builder prune");
    assert!(
        build_container(&d).is_some(),
        "prune removed a running build's container"
    );
    let st = build.wait().expect("wait build");
    assert!(st.success(), "the build cut by prune");
    let out = d.docker(&["run", "--rm", "busy:1", "cat", "/done"]);
    assert_ok(&out, "run the built image");
    // Nothing is in flight for the second prune: the orphans (older than the daemon) go.
    let out = d.docker(&["builder", "prune", "-f"]);
    assert_ok(&out, "builder prune");
    assert!(!orphan_layer.exists(), "an unreferenced layer stayed");
    assert!(!orphan_blob.exists(), "an unreferenced blob stayed");
    let out = d.docker(&["run", "--rm", "busy:1", "cat", "/done"]);
    assert_ok(&out, "the image survives the sweep");
    assert_eq!(stdout(&out).trim(), "done");
}
