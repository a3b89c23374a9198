//! Issue 4, acceptance 1 and parts of 8: named and anonymous volumes, `--volumes-from`, the
//! local driver's options, `system df`/prune, driven with the real docker CLI (and `berth`
//! where it says so) against a private berthd. Binds are in `binds.rs`, `docker cp` in `cp.rs`.

use std::path::Path;
use std::process::Command;

use berth_tests::volumes::{quiet_ok, scratch};
use berth_tests::*;

#[test]
fn named_volume_shared_survives_rm_and_daemon_restart() {
    let mut d = Daemon::start();
    d.load_busybox();
    let out = quiet_ok(
        &d.docker(&["volume", "create", "--label", "app=web", "webdata"]),
        "volume create",
    );
    assert_eq!(out.trim(), "webdata");
    let mp = quiet_ok(
        &d.docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}} {{.Driver}} {{.Scope}} {{.Labels.app}}",
            "webdata",
        ]),
        "volume inspect",
    );
    let expected = d.root.join("data/volumes/webdata/_data");
    assert_eq!(mp.trim(), format!("{} local local web", expected.display()));
    assert_ok(
        &d.docker(&[
            "run",
            "--name",
            "writer",
            "-v",
            "webdata:/data",
            "busybox",
            "sh",
            "-c",
            "echo from-writer > /data/note",
        ]),
        "writer",
    );
    // As dockerd shows a named volume given with `-v` and no mode: "z".
    let mode = quiet_ok(
        &d.docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}}:{{.Mode}}{{end}}",
            "writer",
        ]),
        "inspect mounts",
    );
    assert_eq!(mode.trim(), "webdata:z");
    // A volume in use cannot be removed, not even with force; nothing changes.
    let out = d.docker(&["volume", "rm", "-f", "webdata"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    let (st, body) = d.api("DELETE", "/volumes/webdata", None);
    assert_eq!(st, 409, "{body}");
    assert!(expected.join("note").exists());
    assert_ok(&d.docker(&["rm", "writer"]), "rm writer");
    assert!(
        expected.join("note").exists(),
        "a named volume outlives its container"
    );
    d.stop();
    d.restart();
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "webdata:/d:ro",
            "busybox",
            "cat",
            "/d/note",
        ]),
        "reader",
    );
    assert_eq!(out, "from-writer\n");
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "webdata:/d:ro",
        "busybox",
        "touch",
        "/d/x",
    ]);
    assert!(!out.status.success(), "read-only volume was writable");
    let ls = quiet_ok(
        &d.docker(&["volume", "ls", "--filter", "label=app=web", "-q"]),
        "ls",
    );
    assert_eq!(ls, "webdata\n");
    let ls = quiet_ok(
        &d.docker(&["volume", "ls", "--filter", "dangling=true", "-q"]),
        "ls dangling",
    );
    assert_eq!(ls, "webdata\n");
    assert_ok(&d.docker(&["volume", "rm", "webdata"]), "volume rm");
    assert!(!expected.exists(), "volume data removed");
    let out = d.docker(&["volume", "inspect", "webdata"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such volume"), "{}", stderr(&out));
}

/// An image whose `/data` is a `VOLUME` holding a file owned by 1000:1000, mode 0640.
fn volume_image(d: &Daemon) {
    let dir = scratch(d, "imgroot");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    std::fs::write(dir.join("data/hello"), "from the image\n").unwrap();
    std::os::unix::fs::chown(dir.join("data/hello"), Some(1000), Some(1000)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("data/hello"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(dir.join("data/sub"), Some(1000), Some(1000)).unwrap();
    let tar = d.root.join("scratch/img.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    assert_ok(
        &d.docker(&[
            "import",
            "-c",
            "VOLUME /data",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            "volimg",
        ]),
        "import",
    );
}

fn volume_names(d: &Daemon) -> Vec<String> {
    let out = quiet_ok(&d.docker(&["volume", "ls", "-q"]), "volume ls");
    out.lines().map(str::to_string).collect()
}

#[test]
fn image_volumes_copy_up_and_anonymous_volumes() {
    let d = Daemon::start();
    d.load_busybox();
    volume_image(&d);
    // The image's VOLUME becomes an anonymous volume pre-populated with the image's files,
    // ownership and modes included.
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--name",
            "aa",
            "volimg",
            "/bin/busybox",
            "stat",
            "-c",
            "%u:%g %a %n",
            "/data/hello",
            "/data/sub",
        ]),
        "run volimg",
    );
    assert_eq!(out, "1000:1000 640 /data/hello\n1000:1000 755 /data/sub\n");
    let vols = volume_names(&d);
    assert_eq!(vols.len(), 1, "{vols:?}");
    let anon = &vols[0];
    assert_eq!(anon.len(), 64);
    let mounts = quiet_ok(
        &d.docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
            "aa",
        ]),
        "inspect",
    );
    assert_eq!(mounts.trim(), format!("volume {anon} /data true"));
    // A named volume mounted at an image path starts with the image's files...
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "named:/data",
            "volimg",
            "/bin/busybox",
            "cat",
            "/data/hello",
        ]),
        "named copy-up",
    );
    assert_eq!(out, "from the image\n");
    // A volume over /etc keeps the generated hosts/hostname/resolv.conf visible on top of it.
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "--hostname",
            "vh",
            "-v",
            "etcv:/etc",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hostname; test -s /etc/hosts && test -e /etc/resolv.conf && \
             test -s /etc/passwd && echo ok",
        ]),
        "volume over /etc",
    );
    assert_eq!(out, "vh\nok\n");
    assert_ok(&d.docker(&["volume", "rm", "etcv"]), "rm etcv");
    // ...unless nocopy says otherwise.
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "empty:/data:nocopy",
            "volimg",
            "/bin/busybox",
            "ls",
            "-A",
            "/data",
        ]),
        "nocopy",
    );
    assert_eq!(out, "");
    // rm -v removes the anonymous volume, never a named one.
    assert_ok(&d.docker(&["rm", "-v", "aa"]), "rm -v");
    let mut vols = volume_names(&d);
    vols.sort();
    assert_eq!(vols, vec!["empty".to_string(), "named".to_string()]);
    // --rm removes `-v /path` anonymous volumes too.
    assert_ok(
        &d.docker(&["run", "--rm", "-v", "/scratch", "busybox", "true"]),
        "run --rm -v /scratch",
    );
    assert_eq!(volume_names(&d).len(), 2);
    // Prune removes only anonymous volumes by default, named ones with --all.
    assert_ok(
        &d.docker(&["create", "--name", "keep", "-v", "/k", "busybox"]),
        "create keep",
    );
    assert_ok(&d.docker(&["rm", "keep"]), "rm keep");
    assert_eq!(volume_names(&d).len(), 3);
    let out = quiet_ok(&d.docker(&["volume", "prune", "-f"]), "prune");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(volume_names(&d).len(), 2);
    quiet_ok(&d.docker(&["volume", "prune", "-af"]), "prune -a");
    assert!(volume_names(&d).is_empty());
}

#[test]
fn volumes_from_and_volume_events() {
    let d = Daemon::start();
    d.load_busybox();
    let since = quiet_ok(&d.docker(&["version", "-f", "{{.Server.Version}}"]), "v");
    assert!(!since.is_empty());
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    assert_ok(
        &d.docker(&[
            "run",
            "--name",
            "src",
            "-v",
            "shared:/s",
            "-v",
            "/anon",
            "busybox",
            "sh",
            "-c",
            "echo one > /s/f; echo two > /anon/g",
        ]),
        "src",
    );
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            "busybox",
            "sh",
            "-c",
            "cat /s/f /anon/g; touch /s/x 2>/dev/null || echo refused",
        ]),
        "volumes-from",
    );
    assert_eq!(out, "one\ntwo\nrefused\n");
    // The anonymous volume belongs to `src`: --rm of the borrower kept it.
    assert_eq!(volume_names(&d).len(), 2);
    assert_ok(&d.docker(&["rm", "-v", "src"]), "rm -v src");
    assert_eq!(volume_names(&d), vec!["shared".to_string()]);
    assert_ok(&d.docker(&["volume", "rm", "shared"]), "volume rm");
    let now = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let out = quiet_ok(
        &d.docker(&[
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &now,
            "--filter",
            "type=volume",
            "--filter",
            "volume=shared",
            "--format",
            "{{.Action}}",
        ]),
        "events",
    );
    let actions: Vec<&str> = out.lines().collect();
    assert_eq!(
        actions.first().copied(),
        Some("create"),
        "events: {actions:?}"
    );
    assert!(actions.contains(&"mount"), "{actions:?}");
    assert!(actions.contains(&"unmount"), "{actions:?}");
    assert_eq!(actions.last().copied(), Some("destroy"), "{actions:?}");
}

#[test]
fn bad_volume_input_changes_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&["volume", "create", "a/b"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&out)
    );
    let (st, _) = d.api("POST", "/volumes/create", Some(r#"{"Name":"x/y"}"#));
    assert_eq!(st, 400);
    let (st, body) = d.api(
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"ok1","DriverOpts":{"bogus":"1"}}"#),
    );
    assert_eq!(st, 400, "{body}");
    assert!(volume_names(&d).is_empty());
    let missing = d.root.join("no/such/dir");
    let out = d.docker(&[
        "run",
        "--mount",
        &format!("type=bind,source={},target=/x", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists());
    let out = d.docker(&["run", "-v", "bad/name:/x", "busybox", "true"]);
    assert!(!out.status.success());
    let out = d.docker(&["create", "-v", "okvol:/x", "-v", "/h:/x", "busybox"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Duplicate mount point"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        quiet_ok(&d.docker(&["ps", "-aq"]), "ps"),
        "",
        "no container was created"
    );
    assert!(
        volume_names(&d).is_empty(),
        "no volume was created by a refused create"
    );
    let (st, body) = d.api("DELETE", "/volumes/nope", None);
    assert_eq!(st, 404, "{body}");
}

#[test]
fn berth_volume_commands_match_docker() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(
        quiet_ok(
            &d.berth(&["volume", "create", "--label", "team=a", "bv1"]),
            "create"
        ),
        "bv1\n"
    );
    quiet_ok(&d.berth(&["volume", "create", "bv2"]), "create 2");
    assert_eq!(
        quiet_ok(
            &d.berth(&["inspect", "-f", "{{.Labels.team}}", "bv1"]),
            "inspect"
        ),
        "a\n"
    );
    assert_eq!(
        quiet_ok(
            &d.berth(&["inspect", "--type", "volume", "-f", "{{.Driver}}", "bv2"]),
            "inspect --type volume"
        ),
        "local\n"
    );
    for args in [
        vec!["volume", "ls"],
        vec!["volume", "ls", "-q"],
        vec!["volume", "ls", "--filter", "label=team=a"],
        vec![
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
        ],
        vec!["volume", "inspect", "bv1", "bv2"],
        vec![
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Mountpoint}}",
            "bv1",
        ],
    ] {
        let ours = quiet_ok(&d.berth(&args), "berth");
        let theirs = quiet_ok(&d.docker(&args), "docker");
        assert_eq!(ours, theirs, "{args:?}");
    }
    // --mount parsed by berth: volume, bind (read-only) and tmpfs.
    let host = scratch(&d, "berth-bind");
    std::fs::write(host.join("f"), "bound\n").unwrap();
    let out = quiet_ok(
        &d.berth(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=bv1,target=/v",
            "--mount",
            &format!("type=bind,src={},dst=/b,readonly", host.display()),
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "--read-only",
            "busybox",
            "sh",
            "-c",
            "echo in-volume > /v/x && cat /b/f && (touch /b/y 2>/dev/null || echo ro) && \
             grep -c ' /t tmpfs' /proc/mounts",
        ]),
        "berth run --mount",
    );
    assert_eq!(out, "bound\nro\n1\n");
    let out = quiet_ok(
        &d.berth(&["run", "--rm", "-v", "bv1:/v", "busybox", "cat", "/v/x"]),
        "berth -v",
    );
    assert_eq!(out, "in-volume\n");
    let out = d.berth(&[
        "run",
        "--mount",
        "type=bind,src=/no/such/path/x,dst=/x",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bind source path does not exist: /no/such/path/x"),
        "{}",
        stderr(&out)
    );
    quiet_ok(
        &d.berth(&["create", "--name", "holder", "-v", "bv2:/x", "busybox"]),
        "create holder",
    );
    let out = d.berth(&["volume", "rm", "bv2"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    quiet_ok(&d.berth(&["rm", "holder"]), "rm holder");
    assert_eq!(
        quiet_ok(&d.berth(&["volume", "rm", "bv2"]), "rm bv2"),
        "bv2\n"
    );
    let out = quiet_ok(&d.berth(&["volume", "prune", "-a", "-f"]), "prune");
    assert!(out.starts_with("Deleted Volumes:\nbv1\n"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(quiet_ok(&d.berth(&["volume", "ls", "-q"]), "ls"), "");
}

#[test]
fn local_driver_options_tmpfs_and_bind() {
    let d = Daemon::start();
    d.load_busybox();
    quiet_ok(
        &d.docker(&[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m,mode=0750",
            "tv",
        ]),
        "create tmpfs volume",
    );
    let opts = quiet_ok(
        &d.docker(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]),
        "inspect",
    );
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=1m,mode=0750","type":"tmpfs"}"#
    );
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "tv:/t",
            "busybox",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts; stat -c %a /t",
        ]),
        "run tmpfs volume",
    );
    assert!(
        out.starts_with("tmpfs /t tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.ends_with("750\n"), "{out}");
    let data = d.root.join("data/volumes/tv/_data");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {} ", data.display()))
    };
    assert!(
        eventually(std::time::Duration::from_secs(5), || !mounted()),
        "the tmpfs is unmounted when its last user exits"
    );
    // A bind-type local volume shows the host directory.
    let host = scratch(&d, "bindvol");
    std::fs::write(host.join("h"), "through bind volume\n").unwrap();
    quiet_ok(
        &d.docker(&[
            "volume",
            "create",
            "--opt",
            "type=none",
            "--opt",
            "o=bind",
            "--opt",
            &format!("device={}", host.display()),
            "bv",
        ]),
        "create bind volume",
    );
    let out = quiet_ok(
        &d.docker(&["run", "--rm", "-v", "bv:/b", "busybox", "cat", "/b/h"]),
        "run bind volume",
    );
    assert_eq!(out, "through bind volume\n");
    assert_ok(&d.docker(&["volume", "rm", "tv", "bv"]), "rm");
    assert!(
        host.join("h").exists(),
        "removing a bind volume keeps the host files"
    );
}

fn du(path: &Path) -> u64 {
    let out = Command::new("du")
        .arg("-sk")
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Acceptance 7: `system df` reports, the
/// prunes reclaim, and the data root shrinks. Driven with docker for df and the per-type
/// prunes, with berth for `system df|prune`, then the real `docker system prune`.
#[test]
fn system_df_and_prune_reclaim_space() {
    let d = Daemon::start();
    d.load_busybox();
    let fill = "dd if=/dev/zero of=/d/f bs=1k count=2048 2>/dev/null; \
                dd if=/dev/zero of=/x bs=1k count=1024 2>/dev/null";
    assert_ok(
        &d.docker(&[
            "run", "--name", "filler", "-v", "dv:/d", "busybox", "sh", "-c", fill,
        ]),
        "filler",
    );
    let df = quiet_ok(
        &d.docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}",
        ]),
        "docker system df",
    );
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("Images 1 1 "), "{df}");
    assert_eq!(lines[1], "Containers 1 0 1.049MB", "{df}");
    assert_eq!(lines[2], "Local Volumes 1 1 2.097MB", "{df}");
    let ours = quiet_ok(&d.berth(&["system", "df"]), "berth system df");
    assert!(
        ours.contains("Local Volumes   1         1         2.097MB"),
        "{ours}"
    );
    let before = du(&d.root.join("data"));
    let out = quiet_ok(&d.docker(&["container", "prune", "-f"]), "container prune");
    assert!(out.contains("Deleted Containers:"), "{out}");
    let out = quiet_ok(&d.docker(&["volume", "prune", "-af"]), "volume prune");
    assert!(out.contains("dv"), "{out}");
    let out = quiet_ok(&d.docker(&["image", "prune", "-af"]), "image prune");
    assert!(out.contains("untagged: busybox:latest"), "{out}");
    let after = du(&d.root.join("data"));
    assert!(
        after + 3000 < before,
        "data root did not shrink: {before}k -> {after}k"
    );
    // berth system prune does it in one go.
    d.load_busybox();
    assert_ok(
        &d.docker(&[
            "run",
            "-v",
            "/anon",
            "busybox",
            "sh",
            "-c",
            "echo x > /anon/x",
        ]),
        "again",
    );
    let out = quiet_ok(
        &d.berth(&["system", "prune", "-af", "--volumes"]),
        "berth system prune",
    );
    assert!(
        out.contains("Deleted Containers:")
            && out.contains("Deleted Volumes:")
            && out.contains("deleted: sha256:")
            && out.contains("Total reclaimed space:"),
        "{out}"
    );
    let df = quiet_ok(&d.berth(&["system", "df"]), "df after");
    for kind in ["Images", "Containers", "Local Volumes"] {
        let line = df.lines().find(|l| l.starts_with(kind)).expect("df row");
        let cols: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cols[1], "0", "{kind} left after prune: {df}");
    }
    // And the real `docker system prune` (which also prunes networks and the build cache; with
    // API ≥ 1.42 `--volumes` removes anonymous volumes only, as with Docker).
    d.load_busybox();
    assert_ok(&d.docker(&["network", "create", "prunenet"]), "network");
    assert_ok(
        &d.docker(&[
            "run",
            "--network",
            "prunenet",
            "-v",
            "/d",
            "busybox",
            "sh",
            "-c",
            fill,
        ]),
        "third filler",
    );
    let before = du(&d.root.join("data"));
    let out = quiet_ok(
        &d.docker(&["system", "prune", "-af", "--volumes"]),
        "docker system prune",
    );
    assert!(
        out.contains("Deleted Containers:")
            && out.contains("Deleted Networks:\nprunenet")
            && out.contains("Deleted Volumes:")
            && out.contains("untagged: busybox:latest")
            && out.contains("Total reclaimed space:"),
        "{out}"
    );
    let after = du(&d.root.join("data"));
    assert!(
        after + 3000 < before,
        "data root did not shrink: {before}k -> {after}k"
    );
    let ls = quiet_ok(&d.docker(&["network", "ls", "--format", "{{.Name}}"]), "ls");
    assert!(!ls.contains("prunenet"), "{ls}");
}
