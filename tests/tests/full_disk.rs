//! Issue 16, item 7: a full disk, everywhere. berthd's data root and exec root share a small
//! tmpfs that fills up during a container's run, its logging, a pull, a load, a build, a
//! `docker cp`, a commit and an export. Every operation answers a clear error (`no space left
//! on device`), nothing half-written stays in the stores, berthd restarts cleanly and
//! everything inspects, and once space is freed the same operations succeed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::registry::TestRegistry;
use berth_tests::*;

const DISK_MIB: u64 = 64;

/// Fills the small filesystem with a file outside the daemon's directories.
fn fill(d: &Daemon) -> PathBuf {
    let p = d.disk().join("filler");
    let mut f = std::fs::File::create(&p).expect("filler");
    let mb = vec![0x5au8; 1 << 20];
    while f.write_all(&mb).is_ok() {}
    let kb = vec![0x5au8; 4096];
    while f.write_all(&kb).is_ok() {}
    let _ = f.write_all(&[0u8; 1]);
    p
}

fn unfill(d: &Daemon) {
    let _ = std::fs::remove_file(d.disk().join("filler"));
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What the stores hold: layers, blobs, and the staging directories' entries.
fn stores(d: &Daemon) -> (Vec<String>, Vec<String>, Vec<String>) {
    let data = d.root.join("data");
    let mut tmp = names(&data.join("image/tmp"));
    tmp.extend(names(&data.join("builder/tmp")));
    (
        names(&data.join("image/layers")),
        names(&data.join("image/blobs/sha256")),
        tmp,
    )
}

fn assert_enospc(out: &std::process::Output, what: &str) {
    assert!(!out.status.success(), "{what} succeeded on a full disk");
    let text = format!("{}{}", stdout(out), stderr(out)).to_lowercase();
    assert!(
        text.contains("no space left on device"),
        "{what}: the error does not say the disk is full:\n{text}"
    );
}

/// Every container and image inspects.
fn assert_all_inspect(d: &Daemon) {
    for (list, kind) in [(["ps", "-aq"], "container"), (["images", "-aq"], "image")] {
        let out = d.docker(&list);
        assert_ok(&out, "list");
        let ids: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        if ids.is_empty() {
            continue;
        }
        let mut args = vec![kind, "inspect"];
        args.extend(ids.iter().map(String::as_str));
        assert_ok(&d.docker(&args), &format!("{kind} inspect"));
    }
}

#[test]
fn a_container_filling_the_disk_exits_and_its_exit_is_recorded() {
    let mut d = Daemon::start_on_small_fs(DISK_MIB);
    d.load_busybox();
    // The reported hang: the exit status could not be written, `ps` said `Up` forever.
    let out = d.docker(&[
        "run",
        "--name",
        "fill",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=200",
    ]);
    assert!(!out.status.success(), "dd fit on a {DISK_MIB} MiB disk?");
    assert!(
        eventually(Duration::from_secs(10), || inspect(
            &d,
            "fill",
            "{{.State.Status}}"
        ) == "exited"),
        "fill never read exited: {}",
        inspect(&d, "fill", "{{.State.Status}}")
    );
    let ps = d.docker(&["ps", "--format", "{{.Names}}"]);
    assert!(!stdout(&ps).contains("fill"), "ps still lists it");
    // A start on the full disk fails with the cause. (Recording the exit may have taken
    // the database's reserve, which gave some room back: the disk is filled up again.)
    fill(&d);
    let out = d.docker(&["run", "--name", "second", "busybox", "true"]);
    assert_enospc(&out, "a start on the full disk");
    // berthd restarts on the full disk and everything inspects.
    d.restart();
    assert_eq!(inspect(&d, "fill", "{{.State.Status}}"), "exited");
    assert_all_inspect(&d);
    // Removing what filled the disk works on the full disk, and frees it.
    assert_ok(
        &d.docker(&["rm", "-f", "fill", "second"]),
        "rm on a full disk",
    );
    let out = d.docker(&["run", "--rm", "busybox", "echo", "room again"]);
    assert_ok(&out, "run after freeing");
    assert_eq!(stdout(&out).trim(), "room again");
    d.restart();
    assert_all_inspect(&d);
}

#[test]
fn logs_on_a_full_disk_neither_block_nor_kill_the_container() {
    let d = Daemon::start_on_small_fs(DISK_MIB);
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "logger",
        "busybox",
        "sh",
        "-c",
        "sleep 2; i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo end; exit 7",
    ]);
    assert_ok(&out, "run -d");
    fill(&d);
    assert!(
        eventually(Duration::from_secs(30), || inspect(
            &d,
            "logger",
            "{{.State.Status}} {{.State.ExitCode}}"
        ) == "exited 7"),
        "the logging container did not finish on its own: {}",
        inspect(&d, "logger", "{{.State.Status}} {{.State.ExitCode}}")
    );
    assert_ok(&d.docker(&["logs", "logger"]), "logs on a full disk");
    unfill(&d);
    let out = d.docker(&["run", "--name", "after", "busybox", "echo", "logged"]);
    assert_ok(&out, "run after freeing");
    let out = d.docker(&["logs", "after"]);
    assert_eq!(stdout(&out).trim(), "logged");
}

#[test]
fn pull_load_and_build_on_a_full_disk_fail_cleanly_and_succeed_later() {
    let mut d = Daemon::start_on_small_fs(DISK_MIB);
    d.load_busybox();
    // A 6 MiB image, pushed to a local registry and saved outside the small disk.
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/urandom of=/r bs=1M count=6\n",
    )
    .expect("Dockerfile");
    let ctx = ctx.to_str().expect("utf-8");
    assert_ok(&d.docker(&["build", "-t", "big:1", ctx]), "build big");
    let reg = TestRegistry::start();
    let remote = format!("{}/big:1", reg.addr());
    assert_ok(&d.docker(&["tag", "big:1", &remote]), "tag");
    assert_ok(&d.docker(&["push", &remote]), "push");
    let saved = d.root.join("big.tar");
    let saved = saved.to_str().expect("utf-8");
    assert_ok(&d.docker(&["save", "-o", saved, "big:1"]), "save");
    assert_ok(&d.docker(&["rmi", "big:1", &remote]), "rmi");
    assert_ok(&d.docker(&["builder", "prune", "-f"]), "builder prune");
    let before = stores(&d);

    fill(&d);
    assert_enospc(&d.docker(&["pull", &remote]), "pull");
    assert_eq!(
        stores(&d),
        before,
        "a failed pull left something in the stores"
    );
    assert_enospc(&d.docker(&["load", "-i", saved]), "load");
    assert_eq!(
        stores(&d),
        before,
        "a failed load left something in the stores"
    );
    let out = d.docker(&["build", "--no-cache", "-t", "big:2", ctx]);
    assert_enospc(&out, "build");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("database or disk is full"), "{text}");
    let ps = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!stdout(&ps).contains("berth_build_"), "{}", stdout(&ps));
    assert_all_inspect(&d);
    d.restart();
    assert_all_inspect(&d);

    unfill(&d);
    assert_ok(&d.docker(&["pull", &remote]), "pull after freeing");
    assert_ok(&d.docker(&["rmi", &remote]), "rmi");
    assert_ok(&d.docker(&["load", "-i", saved]), "load after freeing");
    assert_ok(
        &d.docker(&["build", "--no-cache", "-t", "big:2", ctx]),
        "build after freeing",
    );
    let out = d.docker(&["run", "--rm", "big:2", "sh", "-c", "wc -c < /r"]);
    assert_ok(&out, "run the built image");
    assert_eq!(stdout(&out).trim(), (6 << 20).to_string());
    d.restart();
    assert_all_inspect(&d);
}

#[test]
fn cp_commit_and_export_on_a_full_disk_fail_cleanly_and_succeed_later() {
    let mut d = Daemon::start_on_small_fs(DISK_MIB);
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "src",
        "busybox",
        "dd",
        "if=/dev/urandom",
        "of=/payload",
        "bs=1M",
        "count=6",
    ]);
    assert_ok(&out, "write the payload");
    let upload = d.root.join("upload.bin");
    std::fs::write(&upload, vec![7u8; 6 << 20]).expect("upload file");
    let upload = upload.to_str().expect("utf-8");
    let export = d.root.join("export.tar");
    let export = export.to_str().expect("utf-8");
    let before = stores(&d);

    fill(&d);
    assert_enospc(&d.docker(&["cp", upload, "src:/upload.bin"]), "docker cp");
    assert_enospc(&d.docker(&["commit", "src", "snap:1"]), "commit");
    assert_eq!(
        stores(&d),
        before,
        "a failed commit left something in the stores"
    );
    // An export streams to the client: the full disk must not break it.
    assert_ok(
        &d.docker(&["export", "-o", export, "src"]),
        "export on a full disk",
    );
    assert_all_inspect(&d);
    d.restart();
    assert_all_inspect(&d);

    unfill(&d);
    assert_ok(
        &d.docker(&["cp", upload, "src:/upload.bin"]),
        "cp after freeing",
    );
    assert_ok(
        &d.docker(&["commit", "src", "snap:1"]),
        "commit after freeing",
    );
    let out = d.docker(&["run", "--rm", "snap:1", "sh", "-c", "wc -c < /upload.bin"]);
    assert_ok(&out, "run the commit");
    assert_eq!(stdout(&out).trim(), (6 << 20).to_string());
}
