//! Acceptance 2: the real docker CLI 28.2.2 against berthd.

use std::time::Duration;

use berth_tests::*;

fn script(d: &Daemon, cmd: &str) -> std::process::Output {
    d.run(
        "/usr/bin/script".as_ref(),
        &["-qec", cmd, "/dev/null"],
        None,
    )
}

#[test]
fn run_exit_codes_stdin_and_tty() {
    let d = Daemon::start();
    d.load_busybox();

    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_ok(&out, "docker run echo");
    assert_eq!(stdout(&out), "hello from berth\n");

    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    let out = d.docker_stdin(&["run", "--rm", "-i", "busybox", "cat"], b"hi\n");
    assert_ok(&out, "docker run -i cat");
    assert_eq!(stdout(&out), "hi\n");

    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(stdout(&out), "out\n");
    assert!(
        stderr(&out).contains("err\n"),
        "stderr is demultiplexed: {}",
        stderr(&out)
    );

    let out = script(&d, "docker run --rm -t busybox tty");
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "tty expected: {} {}",
        stdout(&out),
        stderr(&out)
    );

    let out = d.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );

    // --rm removed everything.
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(stdout(&out).trim(), "", "containers left behind");
}

#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "t",
        "busybox",
        "sh",
        "-c",
        "while :; do echo tick; sleep 1; done",
    ]);
    assert_ok(&out, "docker run -d");
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "full id printed: {id}");

    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.docker(&["logs", "t"])
    )
    .contains("tick")));

    // logs -f streams until stopped: bound it in time and expect more than one tick.
    let out = d.run(
        "/usr/bin/timeout".as_ref(),
        &["3", "/usr/local/bin/docker", "logs", "-f", "t"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(124),
        "logs -f should still be following"
    );
    assert!(
        stdout(&out).matches("tick").count() >= 2,
        "{}",
        stdout(&out)
    );

    let out = d.docker(&["exec", "t", "ps"]);
    assert_ok(&out, "docker exec ps");
    let first = stdout(&out).lines().nth(1).unwrap_or_default().to_string();
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("while :"),
        "PID 1 is the loop: {}",
        stdout(&out)
    );

    let out = d.docker(&["exec", "t", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));

    let out = script(&d, "docker exec -it t tty");
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "exec -it gets a tty: {}",
        stdout(&out)
    );

    let out = d.docker(&["top", "t"]);
    assert_ok(&out, "docker top");
    assert!(stdout(&out).contains("while :"), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("UID"), "{}", stdout(&out));

    let started = std::time::Instant::now();
    let out = d.docker(&["stop", "-t", "2", "t"]);
    assert_ok(&out, "docker stop");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop honours its timeout"
    );

    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Config.User}} {{.State.ExitCode}}",
        "t",
    ]);
    assert_eq!(stdout(&out), "exited  137\n");

    let out = d.docker(&["ps", "-a", "--filter", "status=exited", "-q"]);
    assert_eq!(stdout(&out).trim(), &id[..12]);
    let out = d.docker(&["ps", "-q"]);
    assert_eq!(stdout(&out).trim(), "", "nothing running");

    assert_ok(&d.docker(&["rm", "t"]), "docker rm");
    let out = d.docker(&["inspect", "t"]);
    assert!(!out.status.success());
}

#[test]
fn save_and_load_keep_the_image_id() {
    let d = Daemon::start();
    d.load_busybox();
    let id = stdout(&d.docker(&["images", "-q", "--no-trunc", "busybox"]))
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let archive = d.root.join("saved.tar");
    assert_ok(
        &d.docker(&["save", "-o", archive.to_str().unwrap(), "busybox"]),
        "docker save",
    );
    assert_ok(&d.docker(&["rmi", "busybox"]), "docker rmi");
    assert_eq!(stdout(&d.docker(&["images", "-q"])).trim(), "");
    let out = d.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert_ok(&out, "docker load of saved archive");
    assert!(
        stdout(&out).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&out)
    );
    let again = stdout(&d.docker(&["images", "-q", "--no-trunc", "busybox"]))
        .trim()
        .to_string();
    assert_eq!(again, id, "same image id after save → load");
    let out = d.docker(&["run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!(stdout(&out), "ok\n");
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
    assert_ok(&d.docker(&["create", "--name", "c", "busybox"]), "create");
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
        "run", "-d", "--name", "r", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; sleep 100",
    ]);
    assert_ok(&out, "run with log opts");
    let id = stdout(&out).trim().to_string();
    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.docker(&["logs", "--tail", "1", "r"])
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
    let all = stdout(&d.docker(&["logs", "r"]));
    assert!(all.lines().count() < 200, "old lines rotated away");

    assert_ok(&d.docker(&["kill", "r"]), "kill");
    let out = d.docker(&["wait", "r"]);
    assert_eq!(stdout(&out), "137\n");
    assert_ok(&d.docker(&["restart", "-t", "1", "r"]), "restart");
    let out = d.docker(&["inspect", "-f", "{{.State.Running}}", "r"]);
    assert_eq!(stdout(&out), "true\n");
    assert_ok(&d.docker(&["rm", "-f", "r"]), "rm -f running");

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
