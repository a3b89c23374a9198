//! Acceptance 2: the real docker CLI 28.2.2 against berthd.

use std::time::Duration;

use berth_tests::scenarios::{self, Cli};
use berth_tests::*;

#[test]
fn run_exit_codes_stdin_and_tty() {
    let d = Daemon::start();
    scenarios::run_basics(&d, Cli::Docker);
}

#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    d.load_busybox();
    scenarios::detached_lifecycle(&d, Cli::Docker);
}

#[test]
fn save_and_load_keep_the_image_id() {
    let d = Daemon::start();
    d.load_busybox();
    scenarios::save_and_load(&d, Cli::Docker);
}

#[test]
fn image_commands() {
    let d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.docker(&["tag", "busybox", "example.com/team/bb:1"]),
        "tag",
    );
    let out = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let text = stdout(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["busybox:latest", "example.com/team/bb:1"]);
    let out = d.docker(&["images", "--filter", "reference=example.com/*/*", "-q"]);
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = d.docker(&["rmi", "example.com/team/bb:1"]);
    assert!(
        stdout(&out).contains("Untagged: example.com/team/bb:1"),
        "{}",
        stdout(&out)
    );
    let out = d.docker(&["history", "busybox"]);
    assert_ok(&out, "history");
    assert!(stdout(&out).contains("COPY busybox"), "{}", stdout(&out));
    let out = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}",
        "busybox",
    ]);
    assert_eq!(stdout(&out), "linux/amd64 [\"sh\"]\n");

    // A container blocks removal of its image.
    assert_ok(&d.docker(&["create", "--name", "cc", "busybox"]), "create");
    let out = d.docker(&["rmi", "busybox"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));

    // import with changes
    let rootfs = d.root.join("rootfs.tar");
    let st = std::process::Command::new("tar")
        .args(["-cf", rootfs.to_str().unwrap(), "-C", "/", "bin/busybox"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = d.docker(&[
        "import",
        "-c",
        "ENV FOO=bar",
        "-c",
        "CMD [\"/bin/busybox\", \"env\"]",
        rootfs.to_str().unwrap(),
        "imported:1",
    ]);
    assert_ok(&out, "docker import");
    let out = d.docker(&["run", "--rm", "imported:1"]);
    assert!(
        stdout(&out).contains("FOO=bar"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn kill_wait_restart_and_log_rotation() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run", "-d", "--name", "rr", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; sleep 100",
    ]);
    assert_ok(&out, "run with log opts");
    let id = stdout(&out).trim().to_string();
    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.docker(&["logs", "--tail", "1", "rr"])
    )
        == "line-199-xxxxxxxxxxxxxxxxxxxxxxxx\n"));
    let dir = d.root.join("data/containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    assert!(
        dir.join(format!("{id}-json.log.1")).exists(),
        "rotated file kept"
    );
    assert!(
        !dir.join(format!("{id}-json.log.2")).exists(),
        "max-file=2 keeps two files"
    );
    assert!(
        std::fs::metadata(&log).unwrap().len() <= 2048,
        "current log stays near max-size"
    );
    let all = stdout(&d.docker(&["logs", "rr"]));
    assert!(all.lines().count() < 200, "old lines rotated away");

    assert_ok(&d.docker(&["kill", "rr"]), "kill");
    let out = d.docker(&["wait", "rr"]);
    assert_eq!(stdout(&out), "137\n");
    assert_ok(&d.docker(&["restart", "-t", "1", "rr"]), "restart");
    let out = d.docker(&["inspect", "-f", "{{.State.Running}}", "rr"]);
    assert_eq!(stdout(&out), "true\n");
    assert_ok(&d.docker(&["rm", "-f", "rr"]), "rm -f running");

    let out = d.docker(&["run", "-d", "busybox", "sh", "-c", "sleep 1; exit 7"]);
    let id = stdout(&out).trim().to_string();
    let out = d.docker(&["wait", &id]);
    assert_eq!(stdout(&out), "7\n");
    let out = d.docker(&["start", "-a", &id]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "start -a returns the exit code again"
    );
}

#[test]
fn attach_replays_logs() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    assert_ok(&out, "run");
    let (st, body) = d.api(
        "POST",
        "/containers/done/attach?logs=1&stdout=1&stderr=1",
        None,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body, "\u{1}\0\0\0\0\0\0\u{4}one\n\u{2}\0\0\0\0\0\0\u{4}two\n",
        "framed replay"
    );
    let (_, body) = d.api("POST", "/containers/done/attach?logs=1&stderr=1", None);
    assert_eq!(body, "\u{2}\0\0\0\0\0\0\u{4}two\n", "stream selection");
}

#[test]
fn detach_keys_leave_the_container_running() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.docker(&["run", "-dit", "--name", "dk", "busybox", "sh"]),
        "run -dit",
    );
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1.51/containers/dk/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    s.write_all(b"echo marker-$((40+2))\n").unwrap();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("marker-42") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before the command ran: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    s.write_all(&[0x10, 0x11]).unwrap(); // ctrl-p ctrl-q
    let mut rest = Vec::new();
    let res = s.read_to_end(&mut rest);
    assert!(
        res.is_ok(),
        "the daemon closes the connection on the detach keys: {res:?}"
    );
    let out = d.docker(&["inspect", "-f", "{{.State.Status}}", "dk"]);
    assert_eq!(
        stdout(&out),
        "running\n",
        "the container runs on after a detach"
    );
    let out = d.docker(&["exec", "dk", "true"]);
    assert_ok(&out, "still usable");
}

#[test]
fn events_since_until_and_filters() {
    let d = Daemon::start();
    let t0 = unix_now() - 1.0;
    d.load_busybox();
    assert_ok(
        &d.docker(&["run", "--rm", "--name", "ev", "busybox", "true"]),
        "run",
    );
    assert_ok(&d.docker(&["tag", "busybox", "other:1"]), "tag");
    let t1 = unix_now() + 1.0;
    let since = format!("{t0:.3}");
    let until = format!("{t1:.3}");
    let out = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=ev",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_ok(&out, "docker events");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        vec!["create", "attach", "start", "die", "destroy"],
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("container ") && l.ends_with(" ev")),
        "{lines:?}"
    );
    let out = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(stdout(&out), "load\ntag\n");
    // `berth events` prints exactly what docker prints, default lines and --format alike.
    for extra in [
        &["--filter", "container=ev"][..],
        &[
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{json .Actor.Attributes}}",
        ][..],
    ] {
        let mut args = vec!["events", "--since", &since, "--until", &until];
        args.extend_from_slice(extra);
        let theirs = d.docker(&args);
        let ours = d.berth(&args);
        assert_ok(&theirs, "docker events");
        assert_ok(&ours, "berth events");
        assert!(stdout(&ours).lines().count() >= 2, "{}", stdout(&ours));
        assert_eq!(stdout(&ours), stdout(&theirs));
    }
    // A live subscriber sees events as they happen.
    let live_until = unix_now() + 4.0;
    let host = d.host();
    let watcher = std::thread::spawn(move || {
        std::process::Command::new(DOCKER)
            .args([
                "events",
                "--until",
                &format!("{live_until:.3}"),
                "--filter",
                "event=die",
                "--format",
                "{{.Actor.Attributes.exitCode}}",
            ])
            .env("DOCKER_HOST", host)
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    let _ = d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 5"]);
    let out = watcher.join().unwrap();
    // `--until` alone also replays the past events (earlier dies), as dockerd does; the live
    // one comes last.
    assert_eq!(
        stdout(&out).lines().last(),
        Some("5"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // dockerd does not check the names of event filters: an unknown one filters nothing.
    let out = d.docker(&["events", "--filter", "nope=1", "--until", &until]);
    assert_ok(&out, "events with a filter dockerd does not know");
    assert!(stdout(&out).contains("container"), "{}", stdout(&out));
}

/// `ps --filter volume=|network=|publish=|expose=|is-task=` select the containers Docker
/// selects: `publish=` is the published (host) port, `expose=` the container port, `volume=` a
/// volume name, a bind's host path or a destination.
#[test]
fn ps_filters_by_volume_network_and_ports() {
    let d = Daemon::start();
    d.load_busybox();
    let subnet = d.spare_subnet(0);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &subnet, "psnet"]),
        "network create",
    );
    for args in [
        &["create", "--name", "vol", "-v", "psvol:/data", "busybox"][..],
        &[
            "create",
            "--name",
            "bind",
            "-v",
            "/etc:/hostetc:ro",
            "busybox",
        ][..],
        &["create", "--name", "net", "--network", "psnet", "busybox"][..],
        &["create", "--name", "pub", "-p", "18181:80/udp", "busybox"][..],
        &[
            "create",
            "--name",
            "exp",
            "--expose",
            "9000-9001",
            "busybox",
        ][..],
        &["create", "--name", "plain", "busybox"][..],
    ] {
        assert_ok(&d.docker(args), "create");
    }
    let names = |filter: &str| -> String {
        let out = d.docker(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
        assert_ok(&out, filter);
        let mut v: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names("volume=psvol"), "vol");
    assert_eq!(names("volume=/data"), "vol");
    assert_eq!(names("volume=/etc"), "bind", "a bind by its host path");
    assert_eq!(names("volume=/hostetc"), "bind");
    assert_eq!(names("network=psnet"), "net");
    assert_eq!(names("publish=18181/udp"), "pub", "the host port");
    assert_eq!(names("publish=18000-18200/udp"), "pub");
    assert_eq!(names("publish=80/udp"), "", "not the container port");
    assert_eq!(names("publish=18181"), "", "tcp by default");
    assert_eq!(names("expose=80/udp"), "pub");
    assert_eq!(names("expose=18181/udp"), "");
    assert_eq!(names("expose=9001"), "exp");
    assert_eq!(names("expose=8000-9000/tcp"), "exp");
    assert_eq!(
        names("network=bridge"),
        "bind,exp,plain,pub,vol",
        "the default network by name"
    );
    assert_eq!(names("is-task=true"), "", "berth runs no swarm tasks");
    assert_eq!(names("is-task=false"), "bind,exp,net,plain,pub,vol");
    let out = d.docker(&["ps", "--filter", "publish=http"]);
    assert!(!out.status.success(), "a bad port filter is refused");
}

/// `--init`: Docker's init (tini, bind-mounted at /sbin/docker-init) is PID 1 in front of the
/// command, passes the exit code through and forwards `docker stop`'s SIGTERM, which a shell
/// or `sleep` as PID 1 would ignore (the stop would then wait for the 10 s SIGKILL).
#[test]
fn init_runs_as_pid_1_passes_exit_codes_and_forwards_signals() {
    let d = Daemon::start();
    d.load_busybox();
    for cli in [Cli::Docker, Cli::Berth] {
        let out = cli.run(
            &d,
            &[
                "run",
                "--rm",
                "--init",
                "busybox",
                "sh",
                "-c",
                "tr '\\0' ' ' </proc/1/cmdline; echo; echo $$",
            ],
        );
        assert_ok(&out, "run --init");
        let text = stdout(&out);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().map(str::trim_end),
            Some("/sbin/docker-init -- sh -c tr '\\0' ' ' </proc/1/cmdline; echo; echo $$"),
            "{cli:?}: {text}"
        );
        assert_ne!(lines.next(), Some("1"), "{cli:?}: the shell is not PID 1");
        let out = cli.run(
            &d,
            &["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"],
        );
        assert_eq!(out.status.code(), Some(7), "{cli:?}: {}", stderr(&out));

        let name = format!("init-{cli:?}").to_lowercase();
        let out = cli.run(
            &d,
            &[
                "run", "-d", "--init", "--name", &name, "busybox", "sleep", "300",
            ],
        );
        assert_ok(&out, "run -d --init");
        let out = cli.run(&d, &["inspect", "-f", "{{.HostConfig.Init}}", &name]);
        assert_eq!(stdout(&out).trim(), "true");
        let t0 = std::time::Instant::now();
        assert_ok(&cli.run(&d, &["stop", &name]), "stop");
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{cli:?}: stop took {:?}: SIGTERM was not forwarded",
            t0.elapsed()
        );
        let out = cli.run(&d, &["inspect", "-f", "{{.State.ExitCode}}", &name]);
        assert_eq!(
            stdout(&out).trim(),
            "143",
            "{cli:?}: sleep ended by SIGTERM"
        );
        assert_ok(&cli.run(&d, &["rm", &name]), "rm");
    }
    // Without --init the command is PID 1 itself.
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]);
    assert_eq!(stdout(&out).trim(), "1");
}

/// A daemon whose init binary cannot be found refuses `--init` at start with Docker's error,
/// and `--init-path` picks the binary.
#[test]
fn init_binary_is_configurable() {
    let d = Daemon::start_with_args(&["--init-path", "/nonexistent/tini"]);
    d.load_busybox();
    let out = d.docker(&["run", "--rm", "--init", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("init binary /nonexistent/tini not found"),
        "{}",
        stderr(&out)
    );
    // Containers without --init are unaffected.
    assert_ok(
        &d.docker(&["run", "--rm", "busybox", "true"]),
        "run without init",
    );
}

/// A failing `docker exec` is told over the attached stream with exit code 126, as Docker
/// does (the process starts after the upgrade; a quick one's output is never lost).
#[test]
fn exec_failures_are_reported_over_the_stream_with_126() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["ex"], vec![]);
    run_sleeper(&d, "ex", &["-e", "G=hi"]);
    let out = d.docker(&["exec", "ex", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("OCI runtime exec failed") && text.contains("nosuchcommand"),
        "{text}"
    );
    let out = d.docker(&["exec", "-u", "nouser", "ex", "true"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        (stdout(&out) + &stderr(&out)).contains("unable to find user nouser"),
        "{}",
        stdout(&out)
    );
    for _ in 0..20 {
        let out = d.docker(&["exec", "ex", "sh", "-c", "echo $G; exit 4"]);
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(stdout(&out), "hi\n");
    }
}
