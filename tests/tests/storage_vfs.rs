//! `berthd --storage-driver vfs` (dockerd's flag): a root daemon that copies images into each
//! container's root instead of mounting overlays (crates/image/src/copyfs.rs, the same driver a
//! rootless daemon falls back to): `docker info` names it, a container runs on a copy,
//! `docker diff` and `docker commit` see an addition and a deletion, and `docker rm` frees the
//! copy. An unknown driver stops berthd with what it accepts.

use berth_tests::*;

fn ok(o: &std::process::Output, what: &str) -> String {
    ok_trimmed(o, what)
}

#[test]
fn root_daemon_with_the_vfs_driver() {
    if skip_when(
        "storage-driver vfs",
        (!is_root()).then(|| "needs root".into()),
    ) {
        return;
    }
    let d = Daemon::start_with_args(&["--storage-driver", "vfs"]);
    assert_eq!(
        ok(&d.docker(&["info", "--format", "{{.Driver}}"]), "info"),
        "vfs"
    );
    d.load_busybox();
    ok(
        &d.docker(&[
            "run",
            "--name",
            "c1",
            "busybox",
            "sh",
            "-c",
            "grep ' / ' /proc/mounts | cut -d' ' -f3 > /fs; rm /bin/ls",
        ]),
        "run c1",
    );
    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "c1"]), "inspect");
    assert_eq!(
        ok(
            &d.docker(&["inspect", "-f", "{{.GraphDriver.Name}}", "c1"]),
            "inspect driver"
        ),
        "vfs"
    );
    let mut diff: Vec<String> = ok(&d.docker(&["diff", "c1"]), "diff")
        .lines()
        .map(String::from)
        .collect();
    diff.sort();
    assert_eq!(diff, vec!["A /fs", "C /bin", "D /bin/ls"]);
    ok(&d.docker(&["commit", "c1", "vfs:c1"]), "commit");
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "vfs:c1",
            "sh",
            "-c",
            "cat /fs; test -e /bin/ls || echo gone",
        ]),
        "run committed",
    );
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("overlay"), "the root was an overlay");
    assert_eq!(lines.next(), Some("gone"));
    let copy = d.root.join("data/containers").join(&id);
    assert!(copy.exists(), "{}", copy.display());
    ok(&d.docker(&["rm", "c1"]), "rm");
    assert!(
        eventually(std::time::Duration::from_secs(10), || !copy.exists()),
        "docker rm left {}",
        copy.display()
    );
}

#[test]
fn an_unknown_storage_driver_is_refused() {
    if skip_when(
        "storage-driver vfs",
        (!is_root()).then(|| "needs root".into()),
    ) {
        return;
    }
    let out = std::process::Command::new(bin("berthd"))
        .args([
            "--storage-driver",
            "zfs",
            "--data-root",
            "/nonexistent-berth-vfs-test",
        ])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use overlay2 or vfs"), "{err}");
}
