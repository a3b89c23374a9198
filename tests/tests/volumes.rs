//! Issue 4, acceptance 1, 2 and parts of 8: volumes, mounts and `docker cp`, driven with the
//! real docker CLI (and `berth` where it says so) against a private berthd.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::*;

fn quiet_ok(o: &std::process::Output, what: &str) -> String {
    assert_ok(o, what);
    stdout(o)
}

/// A temp directory under the daemon's root (removed with it).
fn scratch(d: &Daemon, name: &str) -> PathBuf {
    let p = d.root.join("scratch").join(name);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

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
fn binds_tmpfs_and_read_only_root() {
    let d = Daemon::start();
    d.load_busybox();
    let host = scratch(&d, "bind");
    std::fs::write(host.join("in"), "host file\n").unwrap();
    let h = host.to_str().unwrap();
    // --read-only root, writable tmpfs and bind; read-only bind.
    let script = "echo t > /tmp/t && cat /tmp/t && echo w > /rw/out && cat /ro/in && \
                  (touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused) && \
                  (touch /root-file 2>/dev/null && echo root-writable || echo root-refused) && \
                  grep ' /size ' /proc/mounts";
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-v",
            &format!("{h}:/rw"),
            "--mount",
            &format!("type=bind,source={h},target=/ro,readonly"),
            "--mount",
            "type=tmpfs,target=/size,tmpfs-size=2m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            script,
        ]),
        "read-only run",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        &["t", "host file", "ro-refused", "root-refused"],
        "{out}"
    );
    assert!(
        lines[4].contains("size=2048k") && lines[4].contains("mode=1770"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "w\n");
    // A single file can be bind-mounted too.
    let out = quiet_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{h}/in:/single.txt:ro"),
            "busybox",
            "cat",
            "/single.txt",
        ]),
        "file bind",
    );
    assert_eq!(out, "host file\n");
    // -v creates a missing bind source.
    let made = host.join("made/by/v");
    assert_ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/m", made.display()),
            "busybox",
            "true",
        ]),
        "-v missing source",
    );
    assert!(made.is_dir());
    // Binds and Mounts as inspect shows them.
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "insp",
            "-v",
            &format!("{h}:/b:ro"),
            "--mount",
            "type=volume,source=mv,target=/mv",
            "busybox",
        ]),
        "create",
    );
    let out = quiet_ok(
        &d.docker(&[
            "inspect",
            "-f",
            "{{json .HostConfig.Binds}} {{(index .HostConfig.Mounts 0).Source}} {{len .Mounts}}",
            "insp",
        ]),
        "inspect binds",
    );
    assert_eq!(out.trim(), format!("[\"{h}:/b:ro\"] mv 2"));
    let out = quiet_ok(
        &d.docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}}:{{.Propagation}} {{end}}",
            "insp",
        ]),
        "inspect mounts",
    );
    assert!(out.contains("bind:/b:false:rprivate"), "{out}");
    assert!(out.contains("volume:/mv:true:"), "{out}");
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

fn untar_to(data: &[u8], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    assert!(child.wait().unwrap().success());
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Acceptance 2 with the real `docker cp`, and the same with `berth cp`.
fn cp_scenario(d: &Daemon, cli: &str) {
    let run = |args: &[&str]| {
        if cli == "docker" {
            d.docker(args)
        } else {
            d.berth(args)
        }
    };
    let work = scratch(d, &format!("cp-{cli}"));
    let name = format!("cp-{cli}");
    let marker = format!("berth-cp-test-{}-{cli}", std::process::id());
    let script = "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && \
                  echo v > /vol/v && ln -sfn /etc /data/evil && ln -sfn ../../../../../etc /up && \
                  exec sleep 1000";
    assert_ok(
        &run(&[
            "run", "-d", "--name", &name, "-v", "/vol", "busybox", "sh", "-c", script,
        ]),
        "run",
    );
    assert!(eventually(std::time::Duration::from_secs(10), || {
        run(&["exec", &name, "test", "-L", "/up"]).status.success()
    }));
    for running in [true, false] {
        let tag = if running { "run" } else { "stopped" };
        // Directory out, to a new name: the directory itself.
        let dst = work.join(format!("{tag}-dir"));
        assert_ok(
            &run(&["cp", &format!("{name}:/data"), dst.to_str().unwrap()]),
            "cp dir out",
        );
        let mut expected = vec!["a", "evil", "sub", "sub/b"];
        if !running {
            // What the first round copied in.
            expected.extend(["tree-run", "tree-run/inner", "tree-run/inner/x"]);
        }
        assert_eq!(listing(&dst), expected, "{tag}");
        assert!(std::fs::symlink_metadata(dst.join("evil"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Into an existing directory: nested; with `/.`: the content.
        let existing = work.join(format!("{tag}-existing"));
        std::fs::create_dir_all(&existing).unwrap();
        assert_ok(
            &run(&["cp", &format!("{name}:/data"), existing.to_str().unwrap()]),
            "cp into dir",
        );
        assert!(existing.join("data/sub/b").is_file());
        let dot = work.join(format!("{tag}-dot"));
        std::fs::create_dir_all(&dot).unwrap();
        assert_ok(
            &run(&["cp", &format!("{name}:/data/."), dot.to_str().unwrap()]),
            "cp /.",
        );
        assert!(dot.join("sub/b").is_file() && !dot.join("data").exists());
        // A single file, and a file from the volume.
        let f = work.join(format!("{tag}-a"));
        assert_ok(
            &run(&["cp", &format!("{name}:/data/a"), f.to_str().unwrap()]),
            "cp file",
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a\n");
        let out = run(&["cp", &format!("{name}:/vol/v"), "-"]);
        assert_ok(&out, "cp to stdout");
        let t = work.join(format!("{tag}-stdout"));
        untar_to(&out.stdout, &t);
        assert_eq!(std::fs::read_to_string(t.join("v")).unwrap(), "v\n");
        // Files in: a file, a directory, through the hostile symlinks.
        let src = work.join(format!("{tag}-src"));
        std::fs::create_dir_all(src.join("tree/inner")).unwrap();
        std::fs::write(src.join("tree/inner/x"), "x\n").unwrap();
        std::fs::write(src.join(&marker), "must stay inside\n").unwrap();
        assert_ok(
            &run(&[
                "cp",
                src.join("tree").to_str().unwrap(),
                &format!("{name}:/data/tree-{tag}"),
            ]),
            "cp dir in",
        );
        for link in ["/data/evil/", "/up/"] {
            let o = run(&[
                "cp",
                src.join(&marker).to_str().unwrap(),
                &format!("{name}:{link}"),
            ]);
            assert_ok(&o, "cp through symlink");
        }
        assert!(
            !Path::new("/etc").join(&marker).exists(),
            "docker cp wrote the host's /etc"
        );
        let out = run(&["cp", &format!("{name}:/data/evil/passwd"), "-"]);
        assert_ok(&out, "cp out through symlink");
        let t = work.join(format!("{tag}-passwd"));
        untar_to(&out.stdout, &t);
        let passwd = std::fs::read_to_string(t.join("passwd")).unwrap();
        assert!(
            passwd.contains("berth user"),
            "read something other than the container's passwd: {passwd}"
        );
        // Tar on stdin.
        let mut tar = Command::new("tar");
        tar.arg("-C").arg(&src).arg("-cf").arg("-").arg("tree");
        let tar_bytes = tar.output().unwrap().stdout;
        let o = if cli == "docker" {
            d.docker_stdin(&["cp", "-", &format!("{name}:/vol")], &tar_bytes)
        } else {
            d.berth_stdin(&["cp", "-", &format!("{name}:/vol")], &tar_bytes)
        };
        assert_ok(&o, "cp - in");
        let missing = run(&["cp", &format!("{name}:/nope"), work.to_str().unwrap()]);
        assert!(!missing.status.success());
        assert!(
            stderr(&missing).contains("Could not find the file /nope"),
            "{}",
            stderr(&missing)
        );
        if running {
            assert_ok(&run(&["stop", "-t", "0", &name]), "stop");
        }
    }
    // Copies with a stopped container mounted nothing in the host's namespace.
    let containers = d.root.join("data/containers");
    let leaked: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*containers.to_string_lossy()))
        .map(str::to_string)
        .collect();
    assert!(leaked.is_empty(), "mounts left behind: {leaked:?}");
    // What went in is there when the container runs again.
    assert_ok(&run(&["start", &name]), "start");
    let check = run(&[
        "exec",
        &name,
        "sh",
        "-c",
        &format!(
            "cat /data/tree-run/inner/x /data/tree-stopped/inner/x /vol/tree/inner/x /etc/{marker}"
        ),
    ]);
    assert_eq!(
        stdout(&check),
        "x\nx\nx\nmust stay inside\n",
        "{}",
        stderr(&check)
    );
    assert_ok(&run(&["rm", "-f", &name]), "rm");
}

#[test]
fn docker_cp_both_ways_with_hostile_symlinks() {
    let d = Daemon::start();
    d.load_busybox();
    cp_scenario(&d, "docker");
}

#[test]
fn archive_api_stat_header() {
    let d = Daemon::start();
    d.load_busybox();
    assert_ok(&d.docker(&["create", "--name", "ss", "busybox"]), "create");
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    sock.write_all(
        b"HEAD /containers/ss/archive?path=/etc/passwd HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let header = raw
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .expect("stat header");
    let mut dec = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin
        .take()
        .unwrap()
        .write_all(header.as_bytes())
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&dec.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(json["name"], "passwd");
    assert_eq!(json["mode"], 0o644);
    assert!(json["size"].as_i64().unwrap() > 0);
    assert_eq!(json["linkTarget"], "");
    let (st, _) = d.api("HEAD", "/containers/ss/archive?path=/nope", None);
    assert_eq!(st, 404);
    let (st, body) = d.api("PUT", "/containers/ss/archive?path=/etc/passwd", Some(""));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
}

#[test]
fn berth_cp_both_ways_with_hostile_symlinks() {
    let d = Daemon::start();
    d.load_busybox();
    cp_scenario(&d, "berth");
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

#[test]
fn docker_cp_ownership_with_and_without_archive_mode() {
    let d = Daemon::start();
    d.load_busybox();
    let work = scratch(&d, "owner");
    let f = work.join("owned");
    std::fs::write(&f, "x\n").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(4321)).unwrap();
    assert_ok(
        &d.docker(&["run", "-d", "--name", "oo", "busybox", "sleep", "1000"]),
        "run",
    );
    assert_ok(
        &d.docker(&["cp", f.to_str().unwrap(), "oo:/tmp/plain"]),
        "cp",
    );
    assert_ok(
        &d.docker(&["cp", "-a", f.to_str().unwrap(), "oo:/tmp/archived"]),
        "cp -a",
    );
    let out = quiet_ok(
        &d.docker(&[
            "exec",
            "oo",
            "stat",
            "-c",
            "%u:%g %n",
            "/tmp/plain",
            "/tmp/archived",
        ]),
        "stat",
    );
    assert_eq!(out, "0:0 /tmp/plain\n1234:4321 /tmp/archived\n");
    assert_ok(&d.docker(&["rm", "-f", "oo"]), "rm");
}

/// Whether the running kernel has `mount_setattr(2)` (Linux ≥ 5.12): berthd's own probe.
fn kernel_has_mount_setattr() -> bool {
    berth_daemon::sysinfo::SysInfo::detect()
        .kernel
        .mount_setattr
}

/// Unmounts the tmpfs of `recursive_read_only_binds` however the test ends.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// API 1.44: a read-only bind is recursively read-only (its submounts too) where the kernel can;
/// `bind-recursive=writable` (ReadOnlyNonRecursive) and older clients keep the top-only kind;
/// `bind-recursive=readonly` (ReadOnlyForceRecursive) insists; the options need `readonly`.
#[test]
fn recursive_read_only_binds() {
    let d = Daemon::start();
    d.load_busybox();
    let src = scratch(&d, "rro");
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "rro-test", sub.to_str().unwrap()])
        .status()
        .expect("mount");
    assert!(ok.success(), "mounting a tmpfs under the bind source");
    let _unmount = Unmount(sub.clone());
    let src = src.to_str().unwrap();
    // Writing into the submount: "sub-ok" or "sub-ro"; the top is read-only in every case.
    let script = "touch /m/top 2>/dev/null && echo top-rw; \
                  if touch /m/sub/f 2>/dev/null; then echo sub-ok; else echo sub-ro; fi";
    let run = |mount: &str, env: &[(&str, &str)]| -> std::process::Output {
        d.run_env_for(
            DOCKER.as_ref(),
            &[
                "run", "--rm", "--mount", mount, "busybox", "sh", "-c", script,
            ],
            env,
            None,
            std::time::Duration::from_secs(60),
        )
    };
    let expect_sub = if kernel_has_mount_setattr() {
        "sub-ro"
    } else {
        eprintln!("kernel without mount_setattr: read-only binds are not recursive here");
        "sub-ok"
    };
    let plain = format!("type=bind,src={src},dst=/m,readonly");
    let out = run(&plain, &[]);
    assert_eq!(quiet_ok(&out, "readonly bind").trim(), expect_sub);
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{src}:/m:ro"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(quiet_ok(&out, "-v :ro").trim(), expect_sub);
    let writable = format!("{plain},bind-recursive=writable");
    assert_eq!(quiet_ok(&run(&writable, &[]), "writable").trim(), "sub-ok");
    // A client of API 1.43 gets the read-only binds it knew.
    let old = run(&plain, &[("DOCKER_API_VERSION", "1.43")]);
    assert_eq!(quiet_ok(&old, "API 1.43").trim(), "sub-ok");
    let force = format!("{plain},bind-recursive=readonly,bind-propagation=rprivate");
    let out = run(&force, &[]);
    if kernel_has_mount_setattr() {
        assert_eq!(quiet_ok(&out, "force recursive").trim(), "sub-ro");
    } else {
        assert!(
            !out.status.success(),
            "force recursive without mount_setattr"
        );
        assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    }
    // The recursion options need a read-only mount, and forcing needs rprivate (the docker CLI
    // checks the first itself; the API answers both with dockerd's 400).
    let out = run(
        &format!("type=bind,src={src},dst=/m,bind-recursive=writable"),
        &[],
    );
    assert!(!out.status.success(), "the docker CLI refuses it too");
    for (opts, read_only, want) in [
        (
            r#"{"ReadOnlyNonRecursive":true}"#,
            false,
            "must not set ReadOnlyNonRecursive when ReadOnly is false",
        ),
        (
            r#"{"ReadOnlyForceRecursive":true}"#,
            false,
            "must not set ReadOnlyForceRecursive when ReadOnly is false",
        ),
        (
            r#"{"ReadOnlyForceRecursive":true,"Propagation":"rshared"}"#,
            true,
            "must set Propagation to rprivate when ReadOnlyForceRecursive is true",
        ),
    ] {
        let body = format!(
            r#"{{"Image":"busybox","HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{src}","Target":"/m","ReadOnly":{read_only},"BindOptions":{opts}}}]}}}}"#
        );
        let (st, resp) = d.api("POST", "/v1.51/containers/create", Some(&body));
        assert_eq!(st, 400, "{resp}");
        assert!(resp.contains(want), "{resp}");
    }
}

/// Bind propagation through the docker CLI: a bind is `rprivate` unless asked (a mount the host
/// makes later stays out), `rslave` receives it, and a privileged container's mount on an
/// `rshared` bind reaches the host. The source is a shared mount, as `/` is under systemd.
#[test]
fn bind_propagation() {
    let d = Daemon::start();
    d.load_busybox();
    let src = scratch(&d, "prop");
    let s = src.to_str().unwrap().to_string();
    let mut cleanup = vec![Unmount(src.clone())];
    for args in [vec!["--bind", &s, &s], vec!["--make-rshared", &s]] {
        assert!(Command::new("mount")
            .args(&args)
            .status()
            .unwrap()
            .success());
    }
    let run = |name: &str, bind: String, privileged: bool| {
        let mut args = vec!["run", "-d", "--name", name, "-v", &bind];
        if privileged {
            args.push("--privileged");
        }
        args.extend(["busybox", "sleep", "300"]);
        assert_ok(&d.docker(&args), name);
    };
    run("private", format!("{s}:/m"), false);
    run("slave", format!("{s}:/m:rslave"), false);
    run("shared", format!("{s}:/m:rshared"), true);
    let later = src.join("later");
    std::fs::create_dir_all(&later).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "prop-later", later.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    cleanup.push(Unmount(later.clone()));
    std::fs::write(later.join("mark"), "host").unwrap();
    let look = |name: &str| {
        stdout(&d.docker(&[
            "exec",
            name,
            "sh",
            "-c",
            "cat /m/later/mark 2>/dev/null || echo none",
        ]))
        .trim()
        .to_string()
    };
    assert_eq!(
        look("private"),
        "none",
        "rprivate (the default) receives nothing"
    );
    assert_eq!(look("slave"), "host");
    assert_eq!(look("shared"), "host");
    let ctr = src.join("from-ctr");
    cleanup.push(Unmount(ctr.clone()));
    assert_ok(
        &d.docker(&[
            "exec", "shared", "sh", "-c",
            "mkdir -p /m/from-ctr && mount -t tmpfs prop-ctr /m/from-ctr && echo ctr > /m/from-ctr/mark",
        ]),
        "mount in the rshared container",
    );
    assert_eq!(
        std::fs::read_to_string(ctr.join("mark")).unwrap_or_default(),
        "ctr\n",
        "the rshared container's mount reaches the host"
    );
    assert_ok(&d.docker(&["rm", "-f", "private", "slave", "shared"]), "rm");
    // A private source cannot feed a shared or slave bind: dockerd's errors, at start.
    let lone = scratch(&d, "lone");
    let l = lone.to_str().unwrap();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "--make-private", "prop-lone", l])
        .status()
        .unwrap()
        .success());
    cleanup.push(Unmount(lone.clone()));
    for (mode, want) in [
        ("rshared", "not a shared mount"),
        ("rslave", "not a shared or slave mount"),
    ] {
        let out = d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{l}:/m:{mode}"),
            "busybox",
            "true",
        ]);
        assert!(!out.status.success(), "{mode} of a private mount");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("path {l} is mounted on {l} but it is {want}")),
            "{err}"
        );
    }
    drop(cleanup);
}
