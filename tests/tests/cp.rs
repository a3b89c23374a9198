//! Issue 4, acceptance 2: `docker cp` and `berth cp` both ways (hostile symlinks included),
//! the archive API's stat header and ownership with and without archive mode, against a
//! private berthd.

use std::path::Path;
use std::process::Command;

use berth_tests::volumes::{quiet_ok, scratch};
use berth_tests::*;

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
