//! Issue 4, parts of 8: a container's binds, tmpfs mounts and read-only root, recursive
//! read-only binds and bind propagation, driven with the real docker CLI against a private
//! berthd.

use std::path::PathBuf;
use std::process::Command;

use berth_tests::volumes::{quiet_ok, scratch};
use berth_tests::*;

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
