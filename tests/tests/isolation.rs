//! Acceptance 4: isolation as Docker does it.

use berth_tests::*;

fn sh(d: &Daemon, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let out = d.docker(&args);
    assert_ok(&out, script);
    stdout(&out)
}

#[test]
fn default_isolation() {
    let d = Daemon::start();
    d.load_busybox();
    let out = sh(&d, &["--hostname", "boxy"], "echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /proc/interrupts /proc/keys /proc/timer_list | wc -c; test -e /proc/kcore && wc -c < /proc/kcore; grep ' / ' /proc/mounts; ls /dev; grep -E ' /dev/(shm|mqueue|pts) ' /proc/mounts");
    assert!(out.contains("pid=1\n"), "PID 1 is the command: {out}");
    assert!(out.contains("boxy\n"), "hostname: {out}");
    let procs: usize = out
        .lines()
        .nth(2)
        .unwrap_or("99")
        .trim()
        .parse()
        .unwrap_or(99);
    assert!(
        procs <= 4,
        "only the container's processes in /proc: {procs}\n{out}"
    );
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    // Docker's masked paths read empty; this kernel has no /proc/kcore, so the others stand in.
    assert_eq!(
        out.lines().nth(6).map(str::trim),
        Some("0"),
        "masked /proc paths read empty: {out}"
    );
    assert!(!out.contains("kcore"), "{out}");
    assert!(out.contains("overlay / overlay"), "root is overlay: {out}");
    assert!(
        out.contains("/dev/shm") && out.contains("/dev/mqueue") && out.contains("/dev/pts"),
        "{out}"
    );
    assert!(
        !out.contains("sda") && !out.contains("vda"),
        "no host devices: {out}"
    );
    assert!(out.contains("size=65536k"), "64 MB /dev/shm: {out}");

    // The default seccomp profile refuses what Docker's refuses.
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(
        !out.status.success(),
        "unshare must fail under the default profile"
    );
}

#[test]
fn privileged_and_caps() {
    let d = Daemon::start();
    d.load_busybox();
    let out = sh(
        &d,
        &["--privileged"],
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev | wc -l",
    );
    let capeff = out
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap_or_default()
        .to_string();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = host
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        capeff.split_whitespace().nth(1),
        Some(host_bnd.as_str()),
        "privileged = host bounding set: {out}"
    );
    assert!(
        out.contains("Seccomp:\t0"),
        "no seccomp when privileged: {out}"
    );

    let out = sh(
        &d,
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        "grep CapEff /proc/self/status",
    );
    assert!(out.contains("0000000000001000"), "{out}");
    let out = sh(
        &d,
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status",
    );
    assert!(out.contains("Seccomp:\t0"), "{out}");
    let out = sh(
        &d,
        &["--security-opt", "no-new-privileges"],
        "grep NoNewPrivs /proc/self/status",
    );
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let out = sh(&d, &["--user", "berth"], "id");
    assert!(out.starts_with("uid=1000(berth) gid=1000(berth)"), "{out}");
    let out = sh(&d, &["--user", "1234:5678"], "id -u; id -g");
    assert_eq!(out, "1234\n5678\n");
    let out = sh(&d, &["--read-only"], "touch /x 2>&1 || echo refused");
    assert!(out.contains("refused"), "{out}");
    let out = sh(&d, &["-w", "/tmp", "-e", "A=b"], "pwd; echo $A");
    assert_eq!(out, "/tmp\nb\n");
    let out = sh(&d, &["--ulimit", "nofile=512:1024"], "ulimit -n");
    assert_eq!(out, "512\n");
    let out = sh(
        &d,
        &["--network", "none"],
        "cat /etc/hostname; grep -c localhost /etc/hosts",
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = sh(&d, &["--network", "none"], "ip addr");
    assert!(
        out.contains("lo: <LOOPBACK,UP,LOWER_UP>") && out.contains("inet 127.0.0.1/8"),
        "lo is up: {out}"
    );
    assert!(!out.contains("eth0"), "only lo with --network none: {out}");

    let out = d.docker(&["run", "--rm", "--cap-add", "NOPE", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("unknown capability"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cgroup_per_container_removed_with_it() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&["run", "-d", "busybox", "sleep", "100"]);
    assert_ok(&out, "run -d");
    let id = stdout(&out).trim().to_string();
    let cg = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(&d.cgroup_parent).join(&id))
        .find(|p| p.exists());
    let cg = cg.expect("container has its own cgroup under the berth parent");
    let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
    assert!(!procs.trim().is_empty(), "container process in its cgroup");
    assert_ok(&d.docker(&["rm", "-f", &id]), "rm -f");
    assert!(
        eventually(std::time::Duration::from_secs(10), || !cg.exists()),
        "cgroup removed with the container"
    );
}

/// The cgroup filesystem is read-only inside a container, as with Docker (libcontainer
/// mounts v1 hierarchies writable; the shim seals them): a container can neither change its
/// own limits nor make cgroups. A privileged container's stays writable.
#[test]
fn cgroup_filesystem_is_read_only_unless_privileged() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    // The container's pids (v1) or unified (v2) cgroup directory.
    let pick = "c=/sys/fs/cgroup/pids; [ -d $c ] || c=/sys/fs/cgroup;";
    let out = sh(
        &d,
        &["--pids-limit", "50"],
        &format!(
            "{pick} mkdir $c/escape 2>&1; (echo 100000 > $c/pids.max) 2>&1; cat $c/pids.max; \
             mkdir /sys/fs/cgroup/new 2>&1; grep ' /sys/fs/cgroup' /proc/mounts"
        ),
    );
    assert!(
        out.matches("Read-only file system").count() >= 3,
        "writes must fail: {out}"
    );
    assert!(
        out.contains("\n50\n") || out.starts_with("50\n"),
        "limit unchanged: {out}"
    );
    let mounts: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|p| p.starts_with("/sys/fs/cgroup"))
        })
        .collect();
    assert!(!mounts.is_empty(), "{out}");
    for m in &mounts {
        let opts = m.split(' ').nth(3).unwrap_or("");
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "cgroup mount not read-only: {m}"
        );
    }
    // Privileged: writable, as Docker's.
    let out = sh(
        &d,
        &["--privileged"],
        &format!("{pick} mkdir $c/inner && rmdir $c/inner && echo made-and-removed"),
    );
    assert!(out.contains("made-and-removed"), "{out}");
}

/// `--pid container:` and `--ipc container:` join a running container's namespaces, as with
/// Docker: the sidecar sees the target's processes and shares its IPC namespace.
#[test]
fn pid_and_ipc_namespaces_of_another_container() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["app", "gone"], vec![]);
    assert_ok(
        &d.docker(&["run", "-d", "--name", "app", "busybox", "sleep", "3131"]),
        "run app",
    );
    let out = sh(&d, &["--pid", "container:app"], "ps -o pid,args");
    assert!(out.contains("sleep 3131"), "the target's processes: {out}");
    let ns = |args: &[&str]| {
        let out = d.docker(args);
        assert_ok(&out, &args.join(" "));
        stdout(&out).trim().to_string()
    };
    let app_ipc = ns(&["exec", "app", "readlink", "/proc/self/ns/ipc"]);
    let side_ipc = sh(
        &d,
        &["--ipc", "container:app"],
        "readlink /proc/self/ns/ipc",
    );
    assert_eq!(side_ipc.trim(), app_ipc);
    let own_ipc = sh(&d, &[], "readlink /proc/self/ns/ipc");
    assert_ne!(own_ipc.trim(), app_ipc, "a plain container has its own");
    // Recorded with the target's id, as Docker does.
    let out = d.docker(&[
        "create",
        "--name",
        "gone",
        "--pid",
        "container:app",
        "busybox",
        "true",
    ]);
    assert_ok(&out, "create --pid container:app");
    let id = ns(&["inspect", "-f", "{{.Id}}", "app"]);
    assert_eq!(
        ns(&["inspect", "-f", "{{.HostConfig.PidMode}}", "gone"]),
        format!("container:{id}")
    );
    // A target that does not run cannot be joined.
    assert_ok(&d.docker(&["stop", "-t", "0", "app"]), "stop app");
    let out = d.docker(&["start", "gone"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot join PID of a non running container"),
        "{}",
        stderr(&out)
    );
    // A target that does not exist is refused at create, as dockerd does.
    for flag in ["--pid", "--ipc"] {
        let out = d.docker(&["create", flag, "container:nope", "busybox", "true"]);
        assert!(!out.status.success(), "{flag} container:nope");
        assert!(
            stderr(&out).contains("No such container: nope"),
            "{}",
            stderr(&out)
        );
    }
    let out = d.docker(&["run", "--rm", "--ipc", "weird", "busybox", "true"]);
    assert!(
        stderr(&out).contains("invalid IPC mode: weird"),
        "{}",
        stderr(&out)
    );
}

/// Containers joining another's PID namespace start whatever PID they get in it, also one
/// that no host process has (on cgroup v1 the runtime library looked the container's cgroups
/// up under that PID in the host's /proc and failed: the shim mounts them there instead), and
/// see their own cgroups, read-only, laid out as on the host.
#[test]
fn joined_pid_namespace_past_the_hosts_pids() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["pidhost"], vec![]);
    assert_ok(
        &d.docker(&["run", "-d", "--name", "pidhost", "busybox", "sleep", "3132"]),
        "run pidhost",
    );
    // The lowest PID no host process has: the first joiner to get it inside the namespace
    // failed before.
    let gap = (2..100_000)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let runs = if gap <= 40 { gap + 2 } else { 3 };
    if gap > 40 {
        eprintln!("the host has PIDs 1..{gap}: only {runs} joins, none past a gap");
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let mut last = 0;
    for _ in 0..runs {
        let script = "echo pid=$$; \
            cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; \
            test -L /sys/fs/cgroup/cpu && echo cpu-link; \
            mkdir /sys/fs/cgroup/memory/x 2>/dev/null || echo read-only";
        let out = sh(
            &d,
            &["--pid", "container:pidhost", "--memory", "64m"],
            script,
        );
        last = out
            .lines()
            .find_map(|l| l.strip_prefix("pid="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        if v1 {
            assert!(
                out.contains("67108864\n"),
                "the container's own memory cgroup: {out}"
            );
            assert!(out.contains("read-only\n"), "{out}");
            if std::path::Path::new("/sys/fs/cgroup/cpu,cpuacct").is_dir() {
                assert!(out.contains("cpu-link\n"), "co-mounted controllers: {out}");
            }
        }
    }
    if gap <= 40 {
        assert!(
            last >= gap,
            "the last joiner got PID {last}, not past {gap}"
        );
    }
}

/// On a cgroup v1 host with a `name=systemd` hierarchy, the container has a cgroup of its own
/// there (as with runc), not the host's root: it does not see the host's systemd cgroups, and
/// the cgroup goes with the container.
#[test]
fn systemd_hierarchy_shows_the_containers_own_cgroup() {
    if !is_root() || !std::path::Path::new("/sys/fs/cgroup/systemd/cgroup.procs").exists() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "sd",
        "busybox",
        "sh",
        "-c",
        "grep name=systemd /proc/self/cgroup; ls /sys/fs/cgroup/systemd; sleep 300",
    ]);
    assert_ok(&out, "run");
    let id = stdout(&out).trim().to_string();
    let rel = format!("{}/{id}", d.cgroup_parent);
    let log = || stdout(&d.docker(&["logs", "sd"]));
    assert!(
        eventually(std::time::Duration::from_secs(5), || log()
            .contains("cgroup.procs")),
        "{}",
        log()
    );
    let text = log();
    assert!(
        text.contains(&format!(":name=systemd:/{rel}\n")),
        "its own cgroup: {text}"
    );
    assert!(!text.contains("release_agent"), "the host's root: {text}");
    let host_dir = std::path::Path::new("/sys/fs/cgroup/systemd").join(&rel);
    assert!(host_dir.is_dir(), "{}", host_dir.display());
    assert_ok(&d.docker(&["rm", "-f", "sd"]), "rm");
    assert!(
        eventually(std::time::Duration::from_secs(5), || !host_dir.exists()),
        "{} is left",
        host_dir.display()
    );
}
