//! Rootless berth (issue 14): berthd started by an ordinary user (a throwaway one with
//! subordinate ids) runs in a user namespace with its per-user defaults; the docker CLI drives
//! it through the user's socket. Containers run as root inside and as the user's ids on the
//! host, a published port is reachable on the host's loopback, containers on a user network
//! resolve each other, limits are refused with Docker rootless's (runc's) message, `docker
//! info` says `rootless`, and a missing prerequisite stops berthd with a clear error.
//!
//! Each test skips with a printed reason where the host lacks a prerequisite.

use std::io::{Read, Write};
use std::time::Duration;

use berth_tests::rootless::{missing_prerequisite, proc_uid, RootlessDaemon, User};
use berth_tests::*;

fn skip() -> bool {
    skip_when("rootless", missing_prerequisite())
}

fn ok(o: &std::process::Output, what: &str) -> String {
    ok_trimmed(o, what)
}

/// The rootless daemon's essentials, in one daemon's life.
#[test]
fn rootless_daemon_runs_containers_as_the_user() {
    if skip() {
        return;
    }
    let mut d = RootlessDaemon::start();
    // Per-user defaults: the socket in XDG_RUNTIME_DIR, data in ~/.local/share/berth,
    // both owned by the user on the host.
    let sock_uid = nix::sys::stat::stat(&d.socket()).expect("socket").st_uid;
    assert_eq!(sock_uid, d.user.uid, "the socket belongs to the user");
    let data = d.data_home.join("berth");
    assert!(
        data.join("berth.db").exists(),
        "data root at {}",
        data.display()
    );

    // docker info: rootless in the security options, no cgroups here (v1/hybrid).
    let opts = ok(
        &d.docker(&["info", "--format", "{{json .SecurityOptions}}"]),
        "docker info",
    );
    assert!(opts.contains("name=rootless"), "{opts}");

    let archive = busybox_archive();
    ok(
        &d.docker(&["load", "-i", archive.to_str().expect("utf8")]),
        "docker load",
    );
    // Image files keep their owners inside; on the host they are the user's.
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "id -u; stat -c %u /bin/busybox",
        ]),
        "docker run id",
    );
    assert_eq!(out, "0\n0", "root inside, and root-owned image files");

    // A running container: uid 0 inside, the user's uid on the host.
    ok(
        &d.docker(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "300"]),
        "docker run -d",
    );
    let pid: u32 = ok(
        &d.docker(&["inspect", "-f", "{{.State.Pid}}", "sleeper"]),
        "inspect pid",
    )
    .parse()
    .expect("pid");
    assert_eq!(
        proc_uid(pid),
        Some(d.user.uid),
        "container root is the user"
    );
    // A non-root user of the container is one of the user's subordinate ids.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "nobody",
            "--user",
            "1000:1000",
            "busybox",
            "sleep",
            "300",
        ]),
        "docker run --user",
    );
    let pid2: u32 = ok(
        &d.docker(&["inspect", "-f", "{{.State.Pid}}", "nobody"]),
        "inspect pid",
    )
    .parse()
    .expect("pid");
    // uid 1000 inside is the 1000th subordinate id (0 is the user, 1.. the range).
    assert_eq!(proc_uid(pid2), Some(d.user.sub_start + 999));
    // Files the container writes are owned by the user's ids on the host.
    assert_eq!(
        ok(
            &d.docker(&[
                "exec",
                "sleeper",
                "sh",
                "-c",
                "echo hi > /made && cat /made"
            ]),
            "exec"
        ),
        "hi"
    );
    ok(&d.docker(&["rm", "-f", "sleeper", "nobody"]), "rm -f");

    // A published port, reached from the host's loopback.
    let port = free_port();
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo hello-rootless > /index.html; exec httpd -f -p 80 -h /",
        ]),
        "docker run -p",
    );
    let mut body = String::new();
    let reached = eventually(Duration::from_secs(10), || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        body.clear();
        let _ = s.read_to_string(&mut body);
        body.contains("hello-rootless")
    });
    assert!(
        reached,
        "published port not reachable: {body:?}\n{}",
        d.log()
    );
    // The host port is opened by the user's own process, not by root.
    ok(&d.docker(&["rm", "-f", "web"]), "rm web");
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "the host port outlived its container"
    );

    // A published UDP port: an echo server (the host's python3, its /usr bind-mounted, as
    // busybox has no UDP server) answers a datagram sent to the host's loopback.
    if std::path::Path::new("/usr/bin/python3").exists() {
        let uport = free_port();
        let echo = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5353))\nwhile True:\n    d,a=s.recvfrom(2048)\n    s.sendto(d,a)\n";
        ok(
            &d.docker(&[
                "run",
                "-d",
                "--name",
                "udpecho",
                "-p",
                &format!("127.0.0.1:{uport}:5353/udp"),
                "-v",
                "/usr:/usr:ro",
                "-v",
                "/usr/lib:/lib:ro",
                "-v",
                "/usr/lib64:/lib64:ro",
                "busybox",
                "/usr/bin/python3",
                "-c",
                echo,
            ]),
            "docker run -p .../udp",
        );
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut got = Vec::new();
        let answered = eventually(Duration::from_secs(10), || {
            let _ = sock.send_to(b"ping-udp", ("127.0.0.1", uport));
            let mut b = [0u8; 64];
            match sock.recv(&mut b) {
                Ok(n) => {
                    got = b[..n].to_vec();
                    true
                }
                Err(_) => false,
            }
        });
        assert!(
            answered,
            "no UDP answer through the port driver\n{}",
            d.log()
        );
        assert_eq!(got, b"ping-udp");
        ok(&d.docker(&["rm", "-f", "udpecho"]), "rm udpecho");
    }

    // Host ports below net.ipv4.ip_unprivileged_port_start: refused, saying what to do.
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start > 81 {
        let out = d.docker(&["run", "--rm", "-p", "127.0.0.1:81:80", "busybox", "true"]);
        assert!(!out.status.success(), "port 81 must be refused");
        assert!(
            stderr(&out).contains("net.ipv4.ip_unprivileged_port_start"),
            "{}",
            stderr(&out)
        );
    }

    // --privileged keeps its meaning inside the user namespace: all capabilities there (a
    // mount), where an ordinary container has not.
    let mount = "mkdir -p /m && mount -t tmpfs t /m && echo mounted";
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", "--privileged", "busybox", "sh", "-c", mount]),
            "docker run --privileged"
        ),
        "mounted"
    );
    assert!(!d
        .docker(&["run", "--rm", "busybox", "sh", "-c", mount])
        .status
        .success());

    // A user network with DNS between two containers.
    ok(&d.docker(&["network", "create", "rlnet"]), "network create");
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "rlnet",
            "busybox",
            "sleep",
            "300",
        ]),
        "run srv",
    );
    let ping = d.docker(&[
        "run",
        "--rm",
        "--network",
        "rlnet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "srv",
    ]);
    assert_ok(&ping, "ping srv by name");
    ok(&d.docker(&["rm", "-f", "srv"]), "rm srv");
    ok(&d.docker(&["network", "rm", "rlnet"]), "network rm");

    // Limits need cgroups this user may write; without them, runc's message.
    // (Refused here on every host: v1/hybrid allow a user no cgroups, and this daemon runs in
    // the test's cgroup, which is not delegated; rootless_drivers.rs tests delegation.)
    {
        let out = d.docker(&["run", "--rm", "--memory", "64m", "busybox", "true"]);
        assert!(!out.status.success(), "a memory limit must be refused");
        assert!(
            stderr(&out)
                .contains("cannot set memory limit: container could not join or create cgroup"),
            "{}",
            stderr(&out)
        );
        let info = ok(
            &d.docker(&["info", "--format", "{{.CgroupDriver}}"]),
            "info",
        );
        assert_eq!(info, "none");
        ok(
            &d.docker(&["run", "-d", "--name", "upd", "busybox", "sleep", "300"]),
            "run upd",
        );
        let out = d.docker(&["update", "--pids-limit", "10", "upd"]);
        assert!(
            !out.status.success(),
            "docker update with a limit must be refused"
        );
        assert!(
            stderr(&out).contains("cannot set pids limit"),
            "{}",
            stderr(&out)
        );
        ok(&d.docker(&["rm", "-f", "upd"]), "rm upd");
    }

    // Stopping the user's berthd ends the whole daemon: the outer process exits with it,
    // and the socket is gone.
    let st = d.stop().expect("daemon was running");
    assert!(st.success(), "rootless berthd exit: {st}\n{}", d.log());
    assert!(!d.socket().exists(), "socket left behind");
}

/// Without subordinate ids berthd refuses to start, says what is missing and what to do, and
/// leaves no daemon, socket or process behind.
#[test]
fn a_missing_prerequisite_is_a_clear_error() {
    if skip() {
        return;
    }
    let d = RootlessDaemon::prepare(User::without_ranges());
    let out = d
        .user_command(&bin("berthd"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("berthd");
    assert!(!out.status.success(), "berthd must not start");
    let err = stderr(&out);
    assert!(err.contains("/etc/subuid"), "{err}");
    assert!(err.contains("usermod --add-subuids"), "{err}");
    assert!(
        !d.socket().exists(),
        "no socket for a daemon that did not start"
    );
}

/// Exec, logs, cp, volumes and binds (owned by the user on the host; a root-owned host file
/// stays unwritable), a build, `berth` finding the user's socket by itself, and a daemon
/// restart: the outer process takes the namespace's containers down with it, and a restart
/// policy brings them back with the next daemon.
#[test]
fn rootless_storage_build_and_restart() {
    if skip() {
        return;
    }
    let mut d = RootlessDaemon::start();
    let archive = busybox_archive();
    ok(
        &d.docker(&["load", "-i", archive.to_str().expect("utf8")]),
        "docker load",
    );
    let web_port = free_port();
    let served = || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", web_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /i.html HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("served")
    };
    // exec, logs, cp.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "box",
            "--restart",
            "always",
            "-v",
            "vol:/data",
            "-p",
            &format!("127.0.0.1:{web_port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo started; echo served > /i.html; exec httpd -f -p 80 -h /",
        ]),
        "run box",
    );
    assert_eq!(ok(&d.docker(&["exec", "box", "id", "-u"]), "exec"), "0");
    assert!(
        eventually(Duration::from_secs(5), || stdout(
            &d.docker(&["logs", "box"])
        )
        .contains("started")),
        "logs"
    );
    let cp_src = d.root.join("cp-in.txt");
    std::fs::write(&cp_src, "copied\n").expect("cp source");
    ok(
        &d.docker(&["cp", cp_src.to_str().expect("utf8"), "box:/cp.txt"]),
        "docker cp in",
    );
    assert_eq!(
        ok(&d.docker(&["exec", "box", "cat", "/cp.txt"]), "cat"),
        "copied"
    );

    // A named volume: written by container root, owned by the user on the host.
    ok(
        &d.docker(&["exec", "box", "sh", "-c", "echo v > /data/f"]),
        "write volume",
    );
    let vol_file = d.data_home.join("berth/volumes/vol/_data/f");
    let st = nix::sys::stat::stat(&vol_file).expect("volume file on the host");
    assert_eq!(st.st_uid, d.user.uid, "volume files belong to the user");

    // Binds: a directory of the user's is writable, a root-owned host file is not.
    let mine = d.root.join("mine");
    std::fs::create_dir_all(&mine).expect("bind dir");
    nix::unistd::chown(
        &mine,
        Some(nix::unistd::Uid::from_raw(d.user.uid)),
        Some(nix::unistd::Gid::from_raw(d.user.gid)),
    )
    .expect("chown");
    let rootfile = d.root.join("rootfile");
    std::fs::write(&rootfile, "root's\n").expect("root file");
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/mine", mine.display()),
        "-v",
        &format!("{}:/rootfile", rootfile.display()),
        "busybox",
        "sh",
        "-c",
        "echo ok > /mine/new; echo pwned >> /rootfile; echo rc=$?",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("rc=1"),
        "a root-owned host file was writable: {text}"
    );
    assert_eq!(std::fs::read_to_string(&rootfile).unwrap(), "root's\n");
    let st = nix::sys::stat::stat(&mine.join("new")).expect("file written through the bind");
    assert_eq!(st.st_uid, d.user.uid);

    // A build.
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo built-rootless > /b && chown 1000:1000 /b\n",
    )
    .expect("Dockerfile");
    ok(
        &d.docker(&["build", "-t", "rl:1", ctx.to_str().expect("utf8")]),
        "docker build",
    );
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", "rl:1", "sh", "-c", "cat /b; stat -c %u /b"]),
            "run built"
        ),
        "built-rootless\n1000"
    );

    // `berth`, run by the user with no host configured, finds the user's socket.
    let out = d.run_as_user(&bin("berth"), &["ps", "--format", "{{.Names}}"]);
    if !std::path::Path::new("/run/berth/berth.sock").exists() {
        assert_eq!(ok(&out, "berth ps as the user"), "box");
    }

    // Restart: the containers go with the daemon and come back by their policy.
    let st = d.stop().expect("running");
    assert!(st.success(), "stop: {st}");
    d.spawn();
    assert!(
        eventually(Duration::from_secs(20), || ok(
            &d.docker(&["inspect", "-f", "{{.State.Running}}", "box"]),
            "inspect"
        ) == "true"),
        "box did not come back:\n{}",
        d.log()
    );
    // Its published port is back on the host with it.
    assert!(
        eventually(Duration::from_secs(10), served),
        "the restarted container's port is not served:\n{}",
        d.log()
    );
    assert_eq!(
        ok(
            &d.docker(&["exec", "box", "cat", "/data/f", "/cp.txt"]),
            "after restart"
        ),
        "v\ncopied"
    );
}

fn setup_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rootless-setup.sh")
}

/// scripts/rootless-setup.sh, run by the user: what is missing with its fix, or everything in
/// place and what to export.
#[test]
fn setup_script_checks_and_explains() {
    if skip() {
        return;
    }
    let bare = RootlessDaemon::prepare(User::without_ranges());
    let out = bare.run_as_user(
        std::path::Path::new("/bin/bash"),
        &[setup_script().to_str().expect("utf8")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("no range for") && text.contains("/etc/subuid"),
        "{text}"
    );
    assert!(text.contains("usermod --add-subuids"), "{text}");
    drop(bare);

    let ready = RootlessDaemon::prepare(User::create());
    let out = ready.run_as_user(
        std::path::Path::new("/bin/bash"),
        &[setup_script().to_str().expect("utf8")],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "export DOCKER_HOST=unix://{}",
            ready.socket().display()
        )),
        "{text}"
    );
}

/// One rootless berthd per exec root; and the outer berthd holds the daemon's host side
/// (slirp4netns, the port driver): when it is killed outright, the daemon inside shuts down
/// instead of running on cut off.
#[test]
fn the_daemon_ends_with_its_outer_process() {
    if skip() {
        return;
    }
    let d = RootlessDaemon::start();
    // A second berthd of the same user on the same exec root is refused and leaves the first
    // one alone.
    let second = d
        .user_command(&bin("berthd"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("second berthd");
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("another rootless berthd is running"),
        "{}",
        stderr(&second)
    );
    ok(&d.docker(&["version"]), "the first daemon still answers");
    let outer = d.pid();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(outer as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(
        eventually(Duration::from_secs(15), || !d.socket().exists()),
        "the inner daemon outlived its outer process:\n{}",
        d.log()
    );
}

/// Push and pull with a registry on the host's loopback: unreachable by default (the
/// daemon's namespace has its own loopback, and slirp4netns keeps the host's closed), reached
/// as 10.0.2.2 with `BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK=false`, as with Docker rootless.
#[test]
fn push_and_pull_through_the_hosts_loopback() {
    if skip() {
        return;
    }
    let reg = berth_tests::registry::TestRegistry::start();
    let remote = format!("10.0.2.2:{}", reg.port);
    let d = RootlessDaemon::start_with(
        &["--insecure-registry", &remote],
        &[("BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK", "false")],
    );
    let archive = busybox_archive();
    ok(
        &d.docker(&["load", "-i", archive.to_str().expect("utf8")]),
        "docker load",
    );
    let image = format!("{remote}/rl/busybox:1");
    ok(&d.docker(&["tag", "busybox", &image]), "tag");
    ok(&d.docker(&["push", &image]), "docker push");
    ok(&d.docker(&["rmi", &image]), "rmi");
    ok(&d.docker(&["pull", &image]), "docker pull");
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", &image, "echo", "pulled"]),
            "run pulled"
        ),
        "pulled"
    );
}

/// fuse-overlayfs instead of the kernel's overlayfs (`BERTHD_ROOTLESS_STORAGE=fuse-overlayfs`;
/// also what berthd falls back to where the kernel refuses overlayfs in a user namespace):
/// containers run on it, and a commit carries a deletion (a whiteout) into the new image.
#[test]
fn fuse_overlayfs_storage() {
    if skip() {
        return;
    }
    let fuse_ok = std::fs::metadata("/dev/fuse")
        .map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o006 == 0o006
        })
        .unwrap_or(false);
    if !std::path::Path::new("/usr/bin/fuse-overlayfs").exists() || !fuse_ok {
        eprintln!("skipping: fuse-overlayfs not installed or /dev/fuse not open to users (scripts/install-deps.sh)");
        return;
    }
    let d = RootlessDaemon::start_with(&[], &[("BERTHD_ROOTLESS_STORAGE", "fuse-overlayfs")]);
    assert!(
        d.log().contains("rootless storage: fuse-overlayfs"),
        "{}",
        d.log()
    );
    let archive = busybox_archive();
    ok(
        &d.docker(&["load", "-i", archive.to_str().expect("utf8")]),
        "docker load",
    );
    let fs = ok(
        &d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "grep ' / ' /proc/mounts | cut -d' ' -f3; id -u",
        ]),
        "run on fuse-overlayfs",
    );
    assert_eq!(fs, "fuse.fuse-overlayfs\n0");
    ok(
        &d.docker(&[
            "run",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "rm /bin/ls && echo kept > /k",
        ]),
        "run c1",
    );
    ok(&d.docker(&["commit", "c1", "committed:1"]), "commit");
    let out = d.docker(&[
        "run",
        "--rm",
        "committed:1",
        "sh",
        "-c",
        "cat /k; test -e /bin/ls || echo gone",
    ]);
    assert_eq!(ok(&out, "run committed"), "kept\ngone");
}
