//! Issue 16, item 2: what a daemon crash during a build leaves (its step container, its
//! work directory, layers and blobs nothing references) is collected when berthd starts
//! again, and by `docker builder prune` while the daemon runs, without touching what a
//! build in progress holds. Likewise a pull cut by a crash halfway through a layer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_tests::registry::TestRegistry;
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
/// and what a crash while making an image's shared init layer leaves (its half-made
/// directory in the real layer's), all dated before the daemon's start.
fn plant_orphans(d: &Daemon) -> (PathBuf, PathBuf, PathBuf) {
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
    let half_init = layers.join(&real).join("init.tmp-1-2");
    std::fs::create_dir_all(half_init.join("etc")).expect("half-made init layer");
    for p in [&orphan_layer, &orphan_blob, &half_init] {
        let st = std::process::Command::new("touch")
            .args(["-h", "-d", "2020-01-01"])
            .arg(p)
            .status()
            .expect("touch");
        assert!(st.success());
    }
    (orphan_layer, orphan_blob, half_init)
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
    let (orphan_layer, orphan_blob, half_init) = plant_orphans(&d);

    d.restart();
    let left: Vec<String> = all_names(&d)
        .into_iter()
        .filter(|n| n.starts_with("berth_build_"))
        .collect();
    assert!(left.is_empty(), "build containers left: {left:?}");
    assert!(entries(&tmp).is_empty(), "builder tmp: {:?}", entries(&tmp));
    assert!(!orphan_layer.exists(), "an unreferenced layer stayed");
    assert!(!orphan_blob.exists(), "an unreferenced blob stayed");
    assert!(!half_init.exists(), "a half-made init layer stayed");
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
    let (orphan_layer, orphan_blob, half_init) = plant_orphans(&d);
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
    assert!(!half_init.exists(), "a half-made init layer stayed");
    let out = d.docker(&["run", "--rm", "busy:1", "cat", "/done"]);
    assert_ok(&out, "the image survives the sweep");
    assert_eq!(stdout(&out).trim(), "done");
}

/// A TCP proxy on loopback in front of `upstream` that, while `hold` is set, passes at most
/// `limit` bytes of each response stream and then holds the rest (setting `held`).
struct HoldingProxy {
    port: u16,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
}

impl HoldingProxy {
    fn start(upstream: String, limit: usize) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let hold = Arc::new(AtomicBool::new(true));
        let held = Arc::new(AtomicBool::new(false));
        let (h, hd) = (hold.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (h, hd, up) = (h.clone(), hd.clone(), upstream.clone());
                std::thread::spawn(move || proxy_conn(client, &up, limit, &h, &hd));
            }
        });
        HoldingProxy { port, hold, held }
    }
}

fn proxy_conn(
    mut client: TcpStream,
    upstream: &str,
    limit: usize,
    hold: &AtomicBool,
    held: &AtomicBool,
) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(std::net::Shutdown::Write);
    });
    let mut passed = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if hold.load(Ordering::SeqCst) && passed + chunk.len() > limit {
            chunk = &chunk[..limit.saturating_sub(passed)];
            if client.write_all(chunk).is_err() {
                return;
            }
            held.store(true, Ordering::SeqCst);
            // The rest of this response waits for a daemon that is about to die.
            while hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        if client.write_all(chunk).is_err() {
            return;
        }
        passed += chunk.len();
    }
    let _ = client.shutdown(std::net::Shutdown::Write);
}

/// The store's blobs, each checked to hash to its name (nothing half-written stays).
fn checked_blobs(d: &Daemon) -> Vec<String> {
    let dir = d.root.join("data/image/blobs/sha256");
    let mut names = entries(&dir);
    names.sort();
    for n in &names {
        let out = std::process::Command::new("sha256sum")
            .arg(dir.join(n))
            .output()
            .expect("sha256sum");
        let sum = stdout(&out);
        assert_eq!(
            sum.split_whitespace().next(),
            Some(n.as_str()),
            "blob {n} is not what its name says"
        );
    }
    names
}

#[test]
fn a_pull_cut_by_sigkill_leaves_nothing_after_restart_and_the_next_pull_works() {
    let reg = TestRegistry::start();
    let mut d = Daemon::start();
    d.load_busybox();
    // An image with a 24 MiB layer of random bytes (gzip cannot shrink it), pushed, then removed.
    let image = format!("{}/cut/big:1", reg.addr());
    let out = d.docker(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "head -c 25165824 /dev/urandom > /big",
    ]);
    assert_ok(&out, "make the layer");
    assert_ok(&d.docker(&["commit", "mk", &image]), "commit");
    assert_ok(&d.docker(&["rm", "mk"]), "rm");
    assert_ok(&d.docker(&["push", &image]), "push");
    assert_ok(&d.docker(&["rmi", &image]), "rmi");
    let blobs_before = checked_blobs(&d);
    let layers_before = entries(&d.root.join("data/image/layers")).len();

    // The same registry through a proxy that holds each response after 4 MiB: the layer's.
    let proxy = HoldingProxy::start(reg.addr(), 4 << 20);
    let via_proxy = format!("127.0.0.1:{}/cut/big:1", proxy.port);
    let mut pull = d
        .docker_command(&["pull", &via_proxy])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker pull");
    assert!(
        eventually(Duration::from_secs(60), || proxy
            .held
            .load(Ordering::SeqCst)),
        "the pull never reached the layer"
    );
    let tmp = d.root.join("data/image/tmp");
    assert!(
        eventually(Duration::from_secs(10), || !entries(&tmp).is_empty()),
        "the pull had no download in progress"
    );
    d.kill9();
    let _ = pull.kill();
    let _ = pull.wait();

    d.restart();
    let out = d.docker(&["images", "-q", &via_proxy]);
    assert_ok(&out, "images");
    assert!(
        stdout(&out).trim().is_empty(),
        "a half-pulled image is listed"
    );
    assert!(entries(&tmp).is_empty(), "image tmp: {:?}", entries(&tmp));
    assert_eq!(checked_blobs(&d), blobs_before, "the store's blobs");
    assert_eq!(
        entries(&d.root.join("data/image/layers")).len(),
        layers_before,
        "layers"
    );
    let out = d.docker(&["run", "--rm", "busybox", "echo", "still here"]);
    assert_ok(&out, "run after the restart");

    // The registry answers in full now: the same pull completes and the image runs.
    proxy.hold.store(false, Ordering::SeqCst);
    assert_ok(&d.docker(&["pull", &via_proxy]), "pull after the restart");
    let out = d.docker(&["run", "--rm", &via_proxy, "sh", "-c", "wc -c < /big"]);
    assert_ok(&out, "run the pulled image");
    assert_eq!(stdout(&out).trim(), "25165824");
}
