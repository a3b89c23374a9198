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

#[test]
fn start_interrupted_by_a_crash_does_not_block_later_starts() {
    let mut d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.docker(&["create", "--name", "cc", "busybox", "echo", "hi"]),
        "create",
    );
    assert_ok(&d.docker(&["start", "-a", "cc"]), "first start");
    let id = stdout(&d.docker(&["inspect", "-f", "{{.Id}}", "cc"]))
        .trim()
        .to_string();
    let lower = stdout(&d.docker(&["inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", "cc"]))
        .trim()
        .to_string();
    d.kill9();
    // Re-create what a daemon killed between launching the shim and `start` leaves behind:
    // a mounted rootfs and a shim holding a created container whose process never ran.
    let fs = d.root.join("data/containers").join(&id).join("fs");
    let _ = std::fs::remove_dir_all(fs.join("work"));
    std::fs::create_dir_all(fs.join("work")).unwrap();
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        fs.join("upper").display(),
        fs.join("work").display()
    );
    let st = std::process::Command::new("mount")
        .args([
            "-t",
            "overlay",
            "overlay",
            "-o",
            &opts,
            fs.join("merged").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "mount rootfs");
    // ...and the network namespace the daemon had prepared for it.
    let netns = d.root.join("exec/netns").join(&id);
    std::fs::create_dir_all(netns.parent().unwrap()).unwrap();
    std::fs::write(&netns, "").unwrap();
    let st = std::process::Command::new("unshare")
        .arg(format!("--net={}", netns.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success(), "netns");
    let shim_cfg = d.root.join("exec/containers").join(&id).join("shim.json");
    let out = std::process::Command::new(bin("berth-shim"))
        .arg("--config")
        .arg(&shim_cfg)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("\"ok\":true"),
        "shim created the container: {}",
        stdout(&out)
    );
    d.restart();
    let out = d.docker(&["start", "-a", "cc"]);
    assert_ok(&out, "start after the interrupted start");
    assert_eq!(stdout(&out), "hi\n");
}

/// The super options of the overlay mounted at `target`, from the host's mount table.
fn overlay_options(target: &std::path::Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let t = target.to_str()?;
    table
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(t))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

/// `--rm` containers run on a `volatile` overlay (nothing of theirs needs to reach the disk)
/// and their files go through the trash, which is empty again right after; other containers
/// keep a durable overlay; a daemon start empties a trash left by a stopped daemon.
#[test]
fn throwaway_containers_are_volatile_and_leave_nothing_behind() {
    let mut d = Daemon::start();
    d.load_busybox();
    let containers = d.root.join("data/containers");
    let trash = d.root.join("data/trash");
    let id_of = |name: &str| {
        stdout(&d.docker(&["inspect", "-f", "{{.Id}}", name]))
            .trim()
            .to_string()
    };
    assert_ok(
        &d.docker(&[
            "run", "-d", "--rm", "--name", "tmp", "busybox", "sleep", "300",
        ]),
        "run --rm",
    );
    run_sleeper(&d, "keep", &[]);
    let (tmp, keep) = (id_of("tmp"), id_of("keep"));
    let opts =
        overlay_options(&containers.join(&tmp).join("fs/merged")).expect("--rm rootfs mounted");
    assert!(opts.contains("volatile"), "--rm overlay: {opts}");
    let opts = overlay_options(&containers.join(&keep).join("fs/merged")).expect("rootfs mounted");
    assert!(!opts.contains("volatile"), "durable overlay: {opts}");

    assert_ok(&d.docker(&["kill", "tmp"]), "kill");
    assert!(
        eventually(Duration::from_secs(10), || !containers.join(&tmp).exists()),
        "the --rm container's directory is gone"
    );
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_dir(&trash)
            .map(|r| r.count() == 0)
            .unwrap_or(true)),
        "the trash is emptied"
    );
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!table.contains(&tmp), "the --rm rootfs is unmounted");
    assert_ok(&d.docker(&["rm", "-f", "keep"]), "rm");
    assert!(
        !containers.join(&keep).exists(),
        "rm deletes in place before answering"
    );

    d.stop();
    let leftover = trash.join("0123abcd-1");
    std::fs::create_dir_all(leftover.join("fs/upper/etc")).unwrap();
    d.restart();
    assert!(
        eventually(Duration::from_secs(10), || !leftover.exists()),
        "a daemon start empties the trash"
    );
}
