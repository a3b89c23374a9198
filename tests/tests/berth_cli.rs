//! Acceptance 3: the same scenarios through `berth`.

use std::time::Duration;

use berth_tests::*;

#[test]
fn berth_run_and_lifecycle() {
    let d = Daemon::start();
    let archive = busybox_archive();
    let out = d.berth(&["load", "-i", archive.to_str().unwrap()]);
    assert_ok(&out, "berth load");
    assert!(
        stdout(&out).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&out)
    );

    let out = d.berth(&["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_eq!(stdout(&out), "hello from berth\n", "{}", stderr(&out));
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let out = d.berth_stdin(&["run", "--rm", "-i", "busybox", "cat"], b"hi\n");
    assert_eq!(stdout(&out), "hi\n");
    let out = d.run(
        "/usr/bin/script".as_ref(),
        &[
            "-qec",
            &format!("{} run --rm -t busybox tty", bin("berth").display()),
            "/dev/null",
        ],
        None,
    );
    assert!(stdout(&out).contains("/dev/pts/"), "{}", stdout(&out));
    let out = d.berth(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127));

    assert_ok(
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "t",
            "busybox",
            "sh",
            "-c",
            "while :; do echo tick; sleep 1; done",
        ]),
        "berth run -d",
    );
    assert!(eventually(Duration::from_secs(10), || stdout(
        &d.berth(&["logs", "t"])
    )
    .contains("tick")));
    let out = d.run(
        "/usr/bin/timeout".as_ref(),
        &["3", bin("berth").to_str().unwrap(), "logs", "-f", "t"],
        None,
    );
    assert_eq!(out.status.code(), Some(124));
    assert!(stdout(&out).matches("tick").count() >= 2);
    let out = d.berth(&["exec", "t", "ps"]);
    assert!(
        stdout(&out)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .trim_start()
            .starts_with("1 "),
        "{}",
        stdout(&out)
    );
    let out = d.berth(&["top", "t"]);
    assert!(stdout(&out).contains("while :"), "{}", stdout(&out));
    let out = d.berth(&["ps"]);
    assert!(stdout(&out).starts_with("CONTAINER ID"), "{}", stdout(&out));
    assert!(stdout(&out).contains(" t\n"), "{}", stdout(&out));
    assert_ok(&d.berth(&["stop", "-t", "1", "t"]), "berth stop");
    let out = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Config.User}} {{.State.ExitCode}}",
        "t",
    ]);
    assert_eq!(stdout(&out), "exited  137\n");
    let out = d.berth(&["ps", "-a", "--filter", "status=exited", "-q"]);
    assert_eq!(stdout(&out).lines().count(), 1);
    assert_ok(&d.berth(&["rename", "t", "t2"]), "rename");
    assert_ok(&d.berth(&["rm", "t2"]), "berth rm");

    let saved = d.root.join("s.tar");
    let id = stdout(&d.berth(&["images", "-q", "--no-trunc"]))
        .trim()
        .to_string();
    assert_ok(
        &d.berth(&["save", "-o", saved.to_str().unwrap(), "busybox"]),
        "berth save",
    );
    assert_ok(&d.berth(&["rmi", "busybox"]), "berth rmi");
    assert_ok(
        &d.berth(&["load", "-i", saved.to_str().unwrap()]),
        "berth load saved",
    );
    assert_eq!(stdout(&d.berth(&["images", "-q", "--no-trunc"])).trim(), id);
    let out = d.berth(&["version"]);
    assert_ok(&out, "berth version");
    let out = d.berth(&["info"]);
    assert_ok(&out, "berth info");
}
