//! Behaviours a compatibility sweep against a real dockerd found different, checked with the real
//! docker CLI. Those of networking are in `compat_network.rs`.

use berth_tests::*;

/// `n` bytes of noise (xorshift), covering every byte value, detach sequences included.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            u8::try_from((x >> 24) & 0xff).unwrap()
        })
        .collect()
}

#[test]
fn binary_stdin_is_not_scanned_for_detach_keys_without_a_tty() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["bin-stdin"], vec![]);
    let small = b"abc\x10\x11def".to_vec();
    let mut big = noise(200 * 1024);
    big.extend_from_slice(b"\x10\x11\x10\x11");
    for input in [&small, &big] {
        let out = d.docker_stdin(&["run", "-i", "--rm", "busybox", "wc", "-c"], input);
        assert_ok(&out, "run -i wc -c");
        assert_eq!(stdout(&out).trim(), input.len().to_string(), "run -i");
    }
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "bin-stdin",
            "busybox",
            "sleep",
            "600",
        ]),
        "run -d",
    );
    for input in [&small, &big] {
        let out = d.docker_stdin(&["exec", "-i", "bin-stdin", "wc", "-c"], input);
        assert_ok(&out, "exec -i wc -c");
        assert_eq!(stdout(&out).trim(), input.len().to_string(), "exec -i");
    }
    // The bytes arrive unchanged, not only their number.
    let out = d.docker_stdin(&["exec", "-i", "bin-stdin", "md5sum"], &big);
    assert_ok(&out, "exec -i md5sum");
    let local = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&big)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let want = String::from_utf8_lossy(&local.stdout);
    assert_eq!(
        stdout(&out).split_whitespace().next(),
        want.split_whitespace().next()
    );
}

#[test]
fn working_dir_is_created_at_start() {
    let d = Daemon::start();
    d.load_busybox();
    let host_dir = tempfile_dir("wd-outside");
    let _c = Cleanup(&d, vec!["wd-base", "wd-base2", "wd-link", "wd-run"], vec![]);
    let _i = RemoveImages(&d, vec!["wd-img", "wd-link-img"]);
    let out = d.docker(&["run", "--rm", "-w", "/tmp/newdir/sub", "busybox", "pwd"]);
    assert_ok(&out, "run -w /tmp/newdir/sub");
    assert_eq!(stdout(&out), "/tmp/newdir/sub\n");
    let out = d.docker(&[
        "run", "--rm", "-w", "/srv/app", "busybox", "stat", "-c", "%a %u:%g", "/srv/app",
    ]);
    assert_ok(&out, "run -w /srv/app stat");
    assert_eq!(stdout(&out), "755 0:0\n");
    // It is part of the container's layer, as with Docker.
    assert_ok(
        &d.docker(&[
            "run", "--name", "wd-run", "-w", "/var/wd", "busybox", "true",
        ]),
        "run -w /var/wd",
    );
    let out = d.docker(&["diff", "wd-run"]);
    assert!(stdout(&out).contains("A /var/wd"), "{}", stdout(&out));
    // An image WORKDIR that does not exist in its files.
    assert_ok(
        &d.docker(&["create", "--name", "wd-base", "busybox"]),
        "create",
    );
    assert_ok(
        &d.docker(&["commit", "-c", "WORKDIR /opt/app", "wd-base", "wd-img"]),
        "commit WORKDIR",
    );
    let out = d.docker(&["run", "--rm", "wd-img", "pwd"]);
    assert_ok(&out, "run image with missing WORKDIR");
    assert_eq!(stdout(&out), "/opt/app\n");
    // A symlink to a host path is followed inside the rootfs, never on the host.
    let link_target = host_dir.to_str().expect("utf8");
    assert_ok(
        &d.docker(&[
            "run",
            "--name",
            "wd-link",
            "busybox",
            "ln",
            "-s",
            link_target,
            "/link",
        ]),
        "ln -s",
    );
    assert_ok(
        &d.docker(&["commit", "wd-link", "wd-link-img"]),
        "commit link",
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "-w",
        "/link/x",
        "wd-link-img",
        "sh",
        "-c",
        &format!("pwd && test -d {link_target}/x && echo inside"),
    ]);
    assert_ok(&out, "run -w through a symlink");
    // (`pwd` shows the resolved path, as getcwd does.)
    assert_eq!(stdout(&out), format!("{link_target}/x\ninside\n"));
    assert_eq!(std::fs::read_dir(&*host_dir).expect("host dir").count(), 0);
    // A file in the way is an error, as in Docker.
    let out = d.docker(&["run", "--rm", "-w", "/etc/passwd", "busybox", "pwd"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Cannot mkdir: /etc/passwd is not a directory"),
        "{}",
        stderr(&out)
    );
    // `exec -w` does not create anything.
    assert_ok(
        &d.docker(&["run", "-d", "--name", "wd-base2", "busybox", "sleep", "600"]),
        "run -d",
    );
    let out = d.docker(&["exec", "-w", "/nonexist", "wd-base2", "pwd"]);
    assert!(!out.status.success(), "{}", stdout(&out));
}

#[test]
fn ps_limit_lists_all_states() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["ps-running", "ps-exited"], vec![]);
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "ps-running",
            "busybox",
            "sleep",
            "600",
        ]),
        "run -d",
    );
    assert_ok(
        &d.docker(&["run", "--name", "ps-exited", "busybox", "true"]),
        "run",
    );
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let out = d.docker(&a);
        assert_ok(&out, "ps");
        stdout(&out)
    };
    assert_eq!(names(&[]), "ps-running\n");
    assert_eq!(names(&["-l"]), "ps-exited\n");
    assert_eq!(names(&["-n", "2"]), "ps-exited\nps-running\n");
    assert_eq!(names(&["-n", "1"]), "ps-exited\n");
    assert_eq!(names(&["-a"]), "ps-exited\nps-running\n");
}

#[test]
fn empty_entrypoint_means_none() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["ep-empty"], vec![]);
    let out = d.docker(&["run", "--rm", "--entrypoint", "", "busybox", "echo", "x"]);
    assert_ok(&out, "run --entrypoint ''");
    assert_eq!(stdout(&out), "x\n");
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "ep-empty",
            "--entrypoint",
            "",
            "busybox",
            "echo",
            "y",
        ]),
        "create",
    );
    assert_eq!(
        inspect(&d, "ep-empty", "{{.Path}} {{json .Args}}"),
        "echo [\"y\"]"
    );
    let out = d.docker(&["start", "-a", "ep-empty"]);
    assert_ok(&out, "start -a");
    assert_eq!(stdout(&out), "y\n");
}

#[test]
fn bind_consistency_modes_are_accepted() {
    let d = Daemon::start();
    d.load_busybox();
    let dir = tempfile_dir("consistency");
    std::fs::write(dir.join("f"), "hello\n").expect("write");
    let src = dir.to_str().expect("utf8");
    for mode in ["cached", "delegated", "consistent", "ro,cached"] {
        let out = d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{src}:/data:{mode}"),
            "busybox",
            "cat",
            "/data/f",
        ]);
        assert_ok(&out, &format!("-v …:{mode}"));
        assert_eq!(stdout(&out), "hello\n");
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={src},dst=/data,consistency=delegated"),
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_ok(&out, "--mount consistency=delegated");
    assert_eq!(stdout(&out), "hello\n");
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{src}:/data:bogus"),
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid mode: bogus"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_layer_files() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["init-layer"], vec![]);
    let _i = RemoveImages(&d, vec!["init-layer-img"]);
    let out = d.docker(&[
        "run",
        "--name",
        "init-layer",
        "busybox",
        "sh",
        "-c",
        "test -f /.dockerenv && test ! -s /.dockerenv && readlink /etc/mtab && touch /mine",
    ]);
    assert_ok(&out, "run");
    assert_eq!(stdout(&out), "/proc/mounts\n");
    // Below the container's layer: not a change…
    let out = d.docker(&["diff", "init-layer"]);
    assert_ok(&out, "diff");
    let diff = stdout(&out);
    assert!(diff.contains("A /mine"), "{diff}");
    assert!(
        !diff.contains(".dockerenv") && !diff.contains("mtab"),
        "{diff}"
    );
    // …but part of the container's files.
    let dir = tempfile_dir("init-layer");
    let exported = dir.join("export.tar");
    let out = d.docker(&[
        "export",
        "-o",
        exported.to_str().expect("utf8"),
        "init-layer",
    ]);
    assert_ok(&out, "export");
    let names = tar_names(&std::fs::read(&exported).expect("export.tar"));
    for want in [".dockerenv", "etc/mtab", "mine", "etc/passwd"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // A commit keeps only the container's own layer.
    assert_ok(
        &d.docker(&["commit", "init-layer", "init-layer-img"]),
        "commit",
    );
    let saved = dir.join("save.tar");
    let out = d.docker(&[
        "save",
        "-o",
        saved.to_str().expect("utf8"),
        "init-layer-img",
    ]);
    assert_ok(&out, "save");
    let top = top_layer_names(&std::fs::read(&saved).expect("save.tar"));
    assert!(top.iter().any(|n| n == "mine"), "{top:?}");
    assert!(!top.iter().any(|n| n.contains("dockerenv")), "{top:?}");
    // inspect lists it as the top lower layer: one the image's containers share (it is
    // never written), kept with the image's top layer.
    let lower = inspect(&d, "init-layer", "{{.GraphDriver.Data.LowerDir}}");
    let init = lower.split(':').next().unwrap_or_default().to_string();
    assert!(
        init.ends_with("/init") && init.contains("/layers/"),
        "{lower}"
    );
    let _c2 = Cleanup(&d, vec!["init-layer-2", "init-layer-3"], vec![]);
    // A container that writes over an init layer file changes only its own copy.
    let out = d.docker(&[
        "run",
        "--name",
        "init-layer-2",
        "busybox",
        "sh",
        "-c",
        "echo mine > /.dockerenv",
    ]);
    assert_ok(&out, "run 2");
    let lower2 = inspect(&d, "init-layer-2", "{{.GraphDriver.Data.LowerDir}}");
    assert_eq!(lower2.split(':').next(), Some(init.as_str()), "{lower2}");
    let diff = stdout(&d.docker(&["diff", "init-layer-2"]));
    assert!(diff.contains("C /.dockerenv"), "{diff}");
    let out = d.docker(&[
        "run",
        "--name",
        "init-layer-3",
        "busybox",
        "sh",
        "-c",
        "test ! -s /.dockerenv && echo empty",
    ]);
    assert_ok(&out, "run 3");
    assert_eq!(stdout(&out), "empty\n");
    // `docker cp` sees it too.
    let out = d.docker(&["cp", "init-layer:/.dockerenv", "-"]);
    assert_ok(&out, "cp");
    assert!(tar_names(&out.stdout).iter().any(|n| n == ".dockerenv"));
}

#[test]
fn wait_removed_reports_the_exit_code_of_an_exited_container() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["wait-removed"], vec![]);
    let out = d.docker(&[
        "run",
        "--name",
        "wait-removed",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let (status, body) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            d.api(
                "POST",
                "/containers/wait-removed/wait?condition=removed",
                None,
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_ok(&d.docker(&["rm", "wait-removed"]), "rm");
        waiter.join().expect("waiter")
    });
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("json");
    assert_eq!(v["StatusCode"], 3, "{body}");
}

/// Removes the named images when a test ends.
struct RemoveImages<'a>(&'a Daemon, Vec<&'static str>);

impl Drop for RemoveImages<'_> {
    fn drop(&mut self) {
        for i in &self.1 {
            let _ = self.0.docker(&["rmi", "-f", i]);
        }
    }
}

/// A new empty directory under the system temp dir, removed when dropped (also when a test
/// fails).
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir(tag: &str) -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("berth-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// The entry names of a tar (leading `./` and trailing `/` dropped), via tar(1).
fn tar_names(tar: &[u8]) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("tar")
        .arg("-t")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = tar.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("tar -t");
    let _ = writer.join();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The names in the last layer of a `docker save` archive (the top layer).
fn top_layer_names(save: &[u8]) -> Vec<String> {
    let dir = tempfile_dir("save");
    let archive = dir.join("image.tar");
    std::fs::write(&archive, save).expect("write save");
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&*dir)
        .status()
        .expect("tar -x");
    assert!(st.success());
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest json");
    let layers = manifest[0]["Layers"].as_array().expect("layers");
    let top = layers.last().and_then(|l| l.as_str()).expect("top layer");
    tar_names(&std::fs::read(dir.join(top)).expect("layer"))
}

/// `docker inspect` shows the HostConfig defaults Docker 28 fills in at create.
#[test]
fn inspect_shows_dockers_create_defaults() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["defaults", "defaults-set"], vec![]);
    assert_ok(
        &d.docker(&["create", "--name", "defaults", "busybox"]),
        "create",
    );
    let v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .any(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("cgroup2 "))
                && l.split(' ').nth(4) == Some("/sys/fs/cgroup")
        });
    let want_cgroupns = if v2 { "private" } else { "host" };
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{json .HostConfig.IpcMode}} {{json .HostConfig.CgroupnsMode}} {{json .HostConfig.Runtime}} {{json .HostConfig.PidsLimit}} {{json .HostConfig.MemorySwappiness}}",
        "defaults",
    ]);
    assert_ok(&out, "inspect");
    assert_eq!(
        stdout(&out).trim(),
        format!("\"private\" \"{want_cgroupns}\" \"runc\" null null")
    );
    // Values asked for are kept, and the container runs with them.
    assert_ok(
        &d.docker(&[
            "create",
            "--name",
            "defaults-set",
            "--ipc",
            "shareable",
            "--cgroupns",
            "private",
            "--pids-limit",
            "64",
            "busybox",
            "sleep",
            "600",
        ]),
        "create with values",
    );
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}} {{.HostConfig.PidsLimit}}",
        "defaults-set",
    ]);
    assert_eq!(stdout(&out).trim(), "shareable private 64");
    // The filled-in defaults still give private IPC and the host's cgroup namespace rule.
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup",
    ]);
    assert_ok(&out, "run readlink ns");
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").expect("ipc ns");
    let host_cg = std::fs::read_link("/proc/self/ns/cgroup").expect("cgroup ns");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_ne!(
        lines[0],
        host_ipc.to_string_lossy(),
        "private IPC namespace"
    );
    assert_eq!(
        lines[1] == host_cg.to_string_lossy(),
        !v2,
        "cgroup namespace"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--ipc",
        "none",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_ok(&out, "run --ipc none");
    assert_ne!(stdout(&out).trim(), host_ipc.to_string_lossy());
}

/// CPUs and memory nodes the host does not have are refused at create and in `docker update`,
/// with Docker's message, not at start with a cgroup write error.
#[test]
fn cpuset_beyond_the_host_is_refused_at_create_and_update() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["cpuset-bad", "cpuset-ok"], vec![]);
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online cpus");
    let online = online.trim();
    let last: u32 = online
        .split([',', '-'])
        .filter_map(|n| n.parse().ok())
        .max()
        .expect("a cpu");
    let beyond = (last + 1).to_string();
    let out = d.docker(&[
        "create",
        "--name",
        "cpuset-bad",
        "--cpuset-cpus",
        &beyond,
        "busybox",
    ]);
    assert!(!out.status.success(), "create with a missing CPU");
    assert!(
        stderr(&out).contains(&format!(
            "Requested CPUs are not available - requested {beyond}, available: {online}"
        )),
        "{}",
        stderr(&out)
    );
    let (status, body) = d.api(
        "POST",
        "/containers/create?name=cpuset-bad",
        Some(&format!(
            r#"{{"Image":"busybox","HostConfig":{{"CpusetCpus":"{beyond}"}}}}"#
        )),
    );
    assert_eq!(status, 400, "{body}");
    let nodes =
        std::fs::read_to_string("/sys/devices/system/node/online").unwrap_or_else(|_| "0".into());
    let out = d.docker(&["run", "--rm", "--cpuset-mems", "0,63", "busybox", "true"]);
    assert!(!out.status.success(), "run with a missing memory node");
    assert!(
        stderr(&out).contains(&format!(
            "Requested memory nodes are not available - requested 0,63, available: {}",
            nodes.trim()
        )),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["ps", "-aq", "--filter", "name=cpuset-bad"]);
    assert_eq!(stdout(&out), "", "nothing was created");
    // A CPU the host has still works, and update checks the same way.
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "cpuset-ok",
            "--cpuset-cpus",
            "0",
            "busybox",
            "sleep",
            "600",
        ]),
        "run --cpuset-cpus 0",
    );
    let out = d.docker(&["update", "--cpuset-cpus", &beyond, "cpuset-ok"]);
    assert!(!out.status.success(), "update to a missing CPU");
    assert!(
        stderr(&out).contains("Requested CPUs are not available"),
        "{}",
        stderr(&out)
    );
    assert_eq!(inspect(&d, "cpuset-ok", "{{.HostConfig.CpusetCpus}}"), "0");
}

/// `--platform` with a local image of another platform: Docker 28 answers the create with a 404
/// naming both platforms, and the CLI then tries to pull the image for that platform; with no
/// registry reachable the run fails with the pull's error instead of running the wrong image.
#[test]
fn platform_mismatch_is_not_run() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["plat-ok"], vec![]);
    let port = free_port();
    let local = format!("127.0.0.1:{port}/plat/busybox:1");
    let _i = RemoveImagesOwned(&d, vec![local.clone()]);
    assert_ok(&d.docker(&["tag", "busybox", &local]), "tag");
    let arch = inspect(&d, "busybox", "{{.Architecture}}");
    let other = if arch == "arm64" { "amd64" } else { "arm64" };
    let (status, body) = d.api(
        "POST",
        &format!("/containers/create?platform=linux/{other}"),
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(&format!(
            "image with reference busybox was found but its platform (linux/{arch}) does not match the specified platform (linux/{other})"
        )),
        "{body}"
    );
    let started = std::time::Instant::now();
    let out = d.docker(&[
        "run",
        "--rm",
        "--platform",
        &format!("linux/{other}"),
        &local,
        "echo",
        "ran",
    ]);
    assert!(!out.status.success(), "the wrong platform ran");
    assert!(!stdout(&out).contains("ran"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("Unable to find image '{local}' locally")),
        "the CLI pulls after the 404: {}",
        stderr(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // berth's CLI does the same, pulling for the platform asked for.
    let plat = format!("linux/{other}");
    let out = d.berth(&["run", "--rm", "--platform", &plat, &local, "echo", "ran"]);
    assert!(!out.status.success(), "the wrong platform ran (berth)");
    assert!(!stdout(&out).contains("ran"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("Unable to find image '{local}' locally")),
        "{}",
        stderr(&out)
    );
    let log = d.log();
    let pulls: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/images/create?"))
        .collect();
    assert_eq!(pulls.len(), 2, "one pull per CLI: {pulls:?}");
    assert!(
        pulls
            .iter()
            .all(|l| l.contains(&format!("platform=linux%2F{other}"))
                || l.contains(&format!("platform=linux/{other}"))),
        "the pulls ask for the platform: {pulls:?}"
    );
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(stdout(&out), "", "no container was created");
    // The image's own platform, and a bad one.
    let out = d.docker(&[
        "run",
        "--name",
        "plat-ok",
        "--platform",
        &format!("linux/{arch}"),
        "busybox",
        "echo",
        "ran",
    ]);
    assert_ok(&out, "run --platform of the image");
    assert_eq!(stdout(&out), "ran\n");
    let (status, body) = d.api(
        "POST",
        "/containers/create?platform=linux//x",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(status, 400, "{body}");
}

struct RemoveImagesOwned<'a>(&'a Daemon, Vec<String>);

impl Drop for RemoveImagesOwned<'_> {
    fn drop(&mut self) {
        for i in &self.1 {
            let _ = self.0.docker(&["rmi", "-f", i]);
        }
    }
}

/// `docker exec -w` with a directory the container does not have fails with runc's message
/// as Docker prints it; directories in volumes are found.
#[test]
fn exec_with_a_missing_working_dir_says_so() {
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["exec-wd"], vec![]);
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "exec-wd",
            "-v",
            "exec-wd-vol:/data",
            "busybox",
            "sleep",
            "600",
        ]),
        "run -d",
    );
    let out = d.docker(&["exec", "-w", "/nonexist", "exec-wd", "true"]);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nonexist\") set in config.json failed: no such file or directory: unknown"),
        "{all}"
    );
    let out = d.docker(&["exec", "-w", "/etc/passwd", "exec-wd", "true"]);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("failed: not a directory: unknown"),
        "{out:?}"
    );
    // A directory only the container's volume has, and one made after the start.
    assert_ok(
        &d.docker(&["exec", "exec-wd", "mkdir", "-p", "/data/sub", "/made/later"]),
        "mkdir",
    );
    for dir in ["/data/sub", "/made/later"] {
        let out = d.docker(&["exec", "-w", dir, "exec-wd", "pwd"]);
        assert_ok(&out, dir);
        assert_eq!(stdout(&out).trim(), dir);
    }
}
