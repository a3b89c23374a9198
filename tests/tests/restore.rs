//! Acceptance 5: containers outlive a SIGKILLed daemon.

use std::time::Duration;

use berth_tests::*;

#[test]
fn sigkill_daemon_and_reconnect() {
    let mut d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "loop",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do echo tick; sleep 1; done",
        ]),
        "run loop",
    );
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "short",
            "busybox",
            "sh",
            "-c",
            "sleep 3; exit 42",
        ]),
        "run short",
    );
    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.docker(&["logs", "loop"])
    )
    .contains("tick")));

    d.kill9();
    // While the daemon is down, "short" exits with 42.
    std::thread::sleep(Duration::from_secs(4));
    d.restart();

    let out = d.docker(&["inspect", "-f", "{{.State.Status}}", "loop"]);
    assert_eq!(stdout(&out), "running\n", "{}", d.log());
    let before = stdout(&d.docker(&["logs", "loop"])).matches("tick").count();
    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.docker(&["logs", "loop"])
    )
    .matches("tick")
    .count()
        > before));
    let out = d.docker(&["exec", "loop", "echo", "still here"]);
    assert_eq!(stdout(&out), "still here\n", "{}", stderr(&out));

    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}",
        "short",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with("exited 42 "),
        "true exit code after restart: {text}"
    );
    assert!(!text.contains("0001-01-01"), "real finish time: {text}");

    assert_ok(&d.docker(&["stop", "loop"]), "stop after restart");
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "loop",
    ]);
    assert_eq!(stdout(&out), "exited 0\n");
}

#[test]
fn half_created_container_is_cleaned_up() {
    let mut d = Daemon::start();
    d.load_busybox();
    d.stop();
    // A create that died before its record was committed leaves only a directory.
    let orphan = d.root.join("data/containers").join("f".repeat(64));
    std::fs::create_dir_all(orphan.join("fs/upper")).unwrap();
    d.restart();
    assert!(!orphan.exists(), "orphan directory removed at start");
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(stdout(&out).trim(), "");
}
