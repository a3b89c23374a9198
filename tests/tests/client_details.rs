//! The details real clients hit (issue 18, item 5), each driven by a real client against
//! berthd: tests/python/sdk_details.py with the Python docker SDK (exec and attach with a TTY
//! in attached, socket and detached modes; commit with pause of a stopped container; import
//! with changes; legacy link removal; kill events; unknown log drivers; legacy build options
//! and RUN's stderr), and the docker CLI for the same answers where it has the command.

use std::time::Duration;

use berth_tests::*;

const STEPS: [&str; 8] = [
    "exec tty",
    "commit pause",
    "import changes",
    "remove link",
    "kill events",
    "log driver",
    "legacy build",
    "all",
];

#[test]
fn python_sdk_details() {
    if !is_root() {
        return;
    }
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sdk_details.py");
    let out = d.run_env_for(
        std::path::Path::new("python3"),
        &[script.to_str().expect("utf8 path")],
        &[],
        None,
        Duration::from_secs(180),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "sdk_details.py failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in STEPS {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}

#[test]
fn docker_cli_details() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["cli-db", "cli-web", "cli-ex"], vec![]);

    // exec -t: raw bytes from a terminal (CR LF), stderr on the same stream.
    run_sleeper(&d, "cli-ex", &[]);
    let out = d.docker(&["exec", "-t", "cli-ex", "sh", "-c", "echo out; echo err >&2"]);
    assert_ok(&out, "exec -t");
    assert_eq!(stdout(&out), "out\r\nerr\r\n");
    let out = d.docker(&["exec", "cli-ex", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(
        (stdout(&out), stderr(&out)),
        ("out\n".into(), "err\n".into())
    );

    // rm --link: the legacy link goes, both containers stay.
    run_sleeper(&d, "cli-db", &[]);
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "cli-web",
            "--link",
            "cli-db:db",
            "busybox",
            "sleep",
            "300",
        ]),
        "create with --link",
    );
    assert_eq!(
        inspect(&d, "cli-web", "{{json .HostConfig.Links}}"),
        r#"["/cli-db:/cli-web/db"]"#
    );
    let out = d.docker(&["rm", "--link", "cli-web/nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No such container: cli-web/nope"),
        "{}",
        stderr(&out)
    );
    assert_ok(&d.docker(&["rm", "--link", "/cli-web/db"]), "rm --link");
    assert_eq!(inspect(&d, "cli-web", "{{json .HostConfig.Links}}"), "null");
    assert_eq!(inspect(&d, "cli-db", "{{.State.Running}}"), "true");

    // An unknown log driver: dockerd's words.
    let out = d.docker(&["run", "--log-driver", "x", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(r#"error looking up logging plugin x: plugin "x" not found"#),
        "{}",
        stderr(&out)
    );

    // docker kill: `kill` (signal 9) comes before `die`.
    // dockerd's SIGKILL waits for the exit: the container is found exited at once.
    let out = d.docker(&["kill", "cli-ex"]);
    assert_ok(&out, "kill");
    assert_eq!(inspect(&d, "cli-ex", "{{.State.Status}}"), "exited");
    let until = events_until_now();
    let out = d.docker(&[
        "events",
        "--since",
        "1m",
        "--until",
        &until,
        "--filter",
        "container=cli-ex",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"signal\"}}",
    ]);
    let lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("kill") || l.starts_with("die"))
        .collect();
    assert_eq!(lines, vec!["kill 9", "die"], "{}", stdout(&out));
}
