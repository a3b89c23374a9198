//! Rootless berth's alternative drivers (issue 14), each forced through berthd's environment
//! as a user would: pasta (`BERTHD_ROOTLESS_NET=pasta`) as the daemon's network instead of
//! slirp4netns, and the copying storage driver (`BERTHD_ROOTLESS_STORAGE=vfs`), berthd's last
//! fallback where no overlay can be mounted; and limits in a delegated cgroup v2 subtree (run
//! only on a cgroup v2 host). The everyday rootless set is in rootless.rs.
//!
//! Each test skips with a printed reason where the host lacks a prerequisite.

use std::io::{Read, Write};
use std::time::Duration;

use berth_tests::rootless::{missing_prerequisite, RootlessDaemon};
use berth_tests::*;

fn skip() -> bool {
    skip_when("rootless", missing_prerequisite())
}

fn ok(o: &std::process::Output, what: &str) -> String {
    ok_trimmed(o, what)
}

fn load_busybox(d: &RootlessDaemon) {
    let archive = busybox_archive();
    ok(
        &d.docker(&["load", "-i", archive.to_str().expect("utf8")]),
        "docker load",
    );
}

/// `GET path` on the host's loopback at `port` until the body contains `want` (10 s).
fn http_get_contains(port: u16, path: &str, want: &str) -> (bool, String) {
    let mut body = String::new();
    let reached = eventually(Duration::from_secs(10), || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
        body.clear();
        let _ = s.read_to_string(&mut body);
        body.contains(want)
    });
    (reached, body)
}

/// pasta as the daemon's network: a container on a user network publishes a port reached
/// from the host's loopback (through berth's port driver), and two containers on that
/// network find each other by name through the embedded DNS.
#[test]
fn pasta_network() {
    if skip() {
        return;
    }
    if !has_pasta() {
        return;
    }
    let d = RootlessDaemon::start_with(&[], &[("BERTHD_ROOTLESS_NET", "pasta")]);
    // pasta, not slirp4netns, is what the outer process attached.
    let state = d.runtime_dir.join("berth/rootless");
    assert!(
        state.join("pasta.log").exists() && !state.join("slirp4netns.log").exists(),
        "pasta's log expected in {}\n{}",
        state.display(),
        d.log()
    );
    let comms: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| rootless::proc_uid(*pid) == Some(d.user.uid))
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|c| c.trim().to_string())
        .collect();
    assert!(
        comms
            .iter()
            .any(|c| c.starts_with("pasta") || c.starts_with("passt")),
        "no pasta process of the user: {comms:?}"
    );
    assert!(
        !comms.iter().any(|c| c == "slirp4netns"),
        "slirp4netns runs too: {comms:?}"
    );

    load_busybox(&d);
    ok(&d.docker(&["network", "create", "pnet"]), "network create");
    let port = free_port();
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "pnet",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo hello-pasta > /index.html; exec httpd -f -p 80 -h /",
        ]),
        "docker run -p",
    );
    let (reached, body) = http_get_contains(port, "/index.html", "hello-pasta");
    assert!(
        reached,
        "published port not reachable: {body:?}\n{}",
        d.log()
    );

    // DNS between two containers of the user network.
    // (busybox's nslookup asks the container's resolver: the embedded DNS.)
    let got = d.docker(&[
        "run",
        "--rm",
        "--network",
        "pnet",
        "busybox",
        "nslookup",
        "web",
    ]);
    let answer = ok(&got, "nslookup web");
    let web_ip = ok(
        &d.docker(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.pnet.IPAddress}}",
            "web",
        ]),
        "inspect web",
    );
    assert!(answer.contains(&web_ip), "web is {web_ip}: {answer}");
    let ping = d.docker(&[
        "run",
        "--rm",
        "--network",
        "pnet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "web",
    ]);
    assert_ok(&ping, "ping web by name");

    ok(&d.docker(&["rm", "-f", "web"]), "rm web");
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "the host port outlived its container"
    );
    ok(&d.docker(&["network", "rm", "pnet"]), "network rm");
}

/// With pasta, `BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK=false` opens the host's loopback as
/// 10.0.2.2, as with slirp4netns. (The default, `--no-map-gw`, is checked in pasta's
/// arguments only: without the mapping a connection to 10.0.2.2 would leave the machine.)
#[test]
fn pasta_reaches_the_hosts_loopback_when_asked() {
    if skip() || !has_pasta() {
        return;
    }
    // A service on the host's loopback only.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"host-loopback\n");
        }
    });
    let open = RootlessDaemon::start_with(
        &[],
        &[
            ("BERTHD_ROOTLESS_NET", "pasta"),
            ("BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK", "false"),
        ],
    );
    load_busybox(&open);
    // nc under `sh`, so `timeout` can end it (PID 1 ignores SIGTERM) and a connection that
    // hangs fails the test instead of holding it; its stdin stays open a while, so it does not
    // half-close before the host's answer arrives (Debian 12's pasta then lost the answer).
    let script = format!("sleep 3 | timeout 10 nc 10.0.2.2 {port}; true");
    let out = open.docker(&["run", "--rm", "busybox", "sh", "-c", &script]);
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        got.contains("host-loopback"),
        "10.0.2.2 did not reach the host: {got:?}\n{}",
        open.log()
    );
}

/// pasta ends with the outer berthd even when that is killed outright (the parent-death
/// signal), and so does the daemon inside.
#[test]
fn pasta_ends_with_a_killed_outer_process() {
    if skip() || !has_pasta() {
        return;
    }
    let d = RootlessDaemon::start_with(&[], &[("BERTHD_ROOTLESS_NET", "pasta")]);
    let pasta_pids = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| rootless::proc_uid(*pid) == Some(d.user.uid))
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.starts_with("pasta") || c.starts_with("passt"))
            })
            .collect()
    };
    assert!(!pasta_pids().is_empty(), "no pasta running:\n{}", d.log());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(
        eventually(Duration::from_secs(10), || pasta_pids().is_empty()),
        "pasta outlived the outer berthd: {:?}",
        pasta_pids()
    );
    assert!(
        eventually(Duration::from_secs(15), || !d.socket().exists()),
        "the inner daemon outlived its outer process:\n{}",
        d.log()
    );
}

fn has_pasta() -> bool {
    let found = ["/usr/bin/pasta", "/usr/local/bin/pasta"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !found {
        eprintln!("skipping: pasta not installed (apt-get install passt; scripts/install-deps.sh)");
    }
    found
}

/// A chosen network driver that is missing is a clear error at start, never a half-started
/// daemon.
#[test]
fn an_unknown_network_driver_is_refused() {
    if skip() {
        return;
    }
    let d = RootlessDaemon::prepare(rootless::User::create());
    let out = d
        .user_command(&bin("berthd"))
        .env("BERTHD_ROOTLESS_NET", "vpnkit")
        .output()
        .expect("berthd");
    assert!(
        !out.status.success(),
        "berthd must refuse BERTHD_ROOTLESS_NET=vpnkit"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use slirp4netns or pasta"), "{err}");
    assert!(
        !d.socket().exists(),
        "no socket for a daemon that did not start"
    );
}

/// scripts/rootless-setup.sh explains the network driver berthd would use and refuses one
/// it does not know.
#[test]
fn setup_script_explains_the_network_driver() {
    if skip() {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/rootless-setup.sh")
        .canonicalize()
        .expect("scripts/rootless-setup.sh");
    let d = RootlessDaemon::prepare(rootless::User::create());
    let run = |net: &str| {
        let out = d
            .user_command(std::path::Path::new("/bin/bash"))
            .arg(&script)
            .env("BERTHD_ROOTLESS_NET", net)
            .output()
            .expect("rootless-setup.sh");
        (out.status.code(), stdout(&out))
    };
    let (code, text) = run("vpnkit");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("BERTHD_ROOTLESS_NET=vpnkit is not a network driver"),
        "{text}"
    );
    if std::path::Path::new("/usr/bin/pasta").exists() {
        let (code, text) = run("pasta");
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("ok    network driver: pasta"), "{text}");
    }
}

/// The copying storage driver (`BERTHD_ROOTLESS_STORAGE=vfs`, dockerd's `vfs`): a container's
/// root filesystem is a plain copy of its image, `docker diff` and `docker commit` see what
/// the container changed (a deletion too), the committed image runs, a build's steps commit
/// alike, and `docker rm` frees the copy.
#[test]
fn vfs_storage() {
    if skip() {
        return;
    }
    let d = RootlessDaemon::start_with(&[], &[("BERTHD_ROOTLESS_STORAGE", "vfs")]);
    assert_eq!(
        ok(
            &d.docker(&["info", "--format", "{{.Driver}}"]),
            "docker info"
        ),
        "vfs"
    );
    load_busybox(&d);
    // No overlay: the root is a directory of the data root's filesystem.
    let fs = ok(
        &d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "grep ' / ' /proc/mounts | cut -d' ' -f3",
        ]),
        "run on vfs",
    );
    assert_ne!(fs, "overlay", "the root must not be an overlay");
    ok(
        &d.docker(&[
            "run",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "echo kept > /k && mkdir -p /srv/d && echo deep > /srv/d/f && rm /bin/ls",
        ]),
        "run c1",
    );
    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "c1"]), "inspect c1");
    let copy = d.data_home.join("berth/containers").join(&id);
    assert!(copy.exists(), "the container's copy at {}", copy.display());
    let mut diff: Vec<String> = ok(&d.docker(&["diff", "c1"]), "docker diff")
        .lines()
        .map(String::from)
        .collect();
    diff.sort();
    for want in [
        "A /k",
        "A /srv",
        "A /srv/d",
        "A /srv/d/f",
        "C /bin",
        "D /bin/ls",
    ] {
        assert!(diff.iter().any(|l| l == want), "{want} missing: {diff:?}");
    }
    assert!(
        !diff.iter().any(|l| l.contains("/etc/passwd")),
        "unchanged files are no changes: {diff:?}"
    );
    ok(&d.docker(&["commit", "c1", "committed:vfs"]), "commit");
    let out = d.docker(&[
        "run",
        "--rm",
        "committed:vfs",
        "sh",
        "-c",
        "cat /k /srv/d/f; test -e /bin/ls || echo gone",
    ]);
    assert_eq!(ok(&out, "run committed"), "kept\ndeep\ngone");
    // A build's steps are committed the same way (a deletion too).
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built-vfs > /b && rm /bin/cat\n",
    )
    .expect("Dockerfile");
    ok(
        &d.docker(&["build", "-t", "vfs:built", ctx.to_str().expect("utf8")]),
        "docker build",
    );
    assert_eq!(
        ok(
            &d.docker(&[
                "run",
                "--rm",
                "vfs:built",
                "sh",
                "-c",
                "head /b; test -e /bin/cat || echo gone",
            ]),
            "run built"
        ),
        "built-vfs\ngone"
    );
    ok(&d.docker(&["rm", "c1"]), "rm c1");
    assert!(
        eventually(Duration::from_secs(10), || !copy.exists()),
        "docker rm left the copy at {}",
        copy.display()
    );
}

/// Limits in a delegated cgroup v2 subtree (systemd's `Delegate=yes`, made here by the test
/// as root): the rootless daemon puts its containers' cgroups under the cgroup it was started
/// in, and `--memory`, `--pids-limit` and `--cpus` land in the container's own cgroup there.
/// Runs only on a cgroup v2 host.
#[test]
fn delegated_cgroup_v2_limits() {
    if skip() {
        return;
    }
    if skip_when("delegated cgroup v2", rootless::DelegatedCgroup::missing()) {
        return;
    }
    let user = rootless::User::create();
    // Declared before the daemon, so removed after it.
    let cg = rootless::DelegatedCgroup::create(&user);
    let d = RootlessDaemon::start_in_cgroup(user, &cg.dir);
    assert_eq!(
        ok(
            &d.docker(&["info", "--format", "{{.CgroupDriver}}"]),
            "docker info"
        ),
        "cgroupfs",
        "{}",
        d.log()
    );
    // The daemon moved itself into a leaf of the delegated cgroup.
    let procs = std::fs::read_to_string(cg.dir.join("daemon/cgroup.procs")).unwrap_or_default();
    assert!(
        procs.contains(&d.pid().to_string()),
        "outer berthd {} not in {}/daemon: {procs:?}",
        d.pid(),
        cg.dir.display()
    );
    load_busybox(&d);
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "lim",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            "busybox",
            "sleep",
            "300",
        ]),
        "docker run with limits",
    );
    let pid = ok(
        &d.docker(&["inspect", "-f", "{{.State.Pid}}", "lim"]),
        "pid",
    );
    // Seen from the host: the container's cgroup is under the delegated one.
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 cgroup line");
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    assert!(
        dir.starts_with(&cg.dir) && dir != cg.dir.join("daemon"),
        "container cgroup {} not a child of {}",
        dir.display(),
        cg.dir.display()
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    assert_eq!(read("memory.max").trim(), "67108864");
    assert_eq!(read("pids.max").trim(), "50");
    assert_eq!(read("cpu.max").trim(), "50000 100000");
    ok(&d.docker(&["rm", "-f", "lim"]), "rm lim");
}
