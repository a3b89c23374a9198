//! Issue 4, acceptance 3 and 4: resource limits, `docker update`, `docker stats`.

use std::time::Duration;

use berth_daemon::sysinfo::SysInfo;
use berth_tests::*;

fn quiet_run(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    assert_ok(&out, &args.join(" "));
    stdout(&out).trim().to_string()
}

fn v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn memory_limit_oom_kills_with_137() {
    let d = Daemon::start();
    d.load_busybox();
    // `tail` buffers everything it reads: 100 MB against a 32 MB limit (and 64 MB of swap).
    let out = d.docker(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let st = quiet_run(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}",
            "hog",
        ],
    );
    assert_eq!(st, "true 137 33554432");
    // The same work within its means is not marked.
    let out = d.docker(&[
        "run",
        "--name",
        "fine",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 1m /dev/zero | tail > /dev/null",
    ]);
    assert_ok(&out, "small allocation");
    let st = quiet_run(&d, &["inspect", "-f", "{{.State.OOMKilled}}", "fine"]);
    assert_eq!(st, "false");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "n=0; for i in $(seq 1 40); do sleep 30 & n=$((n+1)); done; echo started $n; kill $(jobs -p) 2>/dev/null; true",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "the 11th process must fail to fork: {err}\n{}",
        stdout(&out)
    );
}

#[test]
fn cpus_and_update_show_in_cgroup_files() {
    let d = Daemon::start();
    d.load_busybox();
    quiet_run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "cc",
            "--cpus",
            "0.5",
            "--memory",
            "32m",
            "--memory-swap",
            "64m",
            "--pids-limit",
            "20",
            "--cpu-shares",
            "512",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(cgroup_dir(&d, "cc", ctl).join(file))
            .unwrap_or_else(|e| panic!("{ctl}/{file}: {e}"))
            .trim()
            .to_string()
    };
    if v2() {
        assert_eq!(read("cpu", "cpu.max"), "50000 100000");
        assert_eq!(read("memory", "memory.max"), "33554432");
    } else {
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("memory", "memory.limit_in_bytes"), "33554432");
    }
    assert_eq!(read("pids", "pids.max"), "20");

    // docker update on the running container: raising memory above the current swap limit
    // without raising swap is refused and changes nothing.
    let out = d.docker(&["update", "--memory", "128m", "cc"]);
    assert!(!out.status.success(), "memory above memory-swap");
    assert!(
        stderr(&out).contains("Memory limit should be smaller than already set memoryswap limit"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpus",
        "1",
        "--pids-limit",
        "50",
        "cc",
    ]);
    assert_ok(&out, "docker update");
    if v2() {
        assert_eq!(read("memory", "memory.max"), "134217728");
        assert_eq!(read("cpu", "cpu.max"), "100000 100000");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "100000");
    }
    assert_eq!(read("pids", "pids.max"), "50");
    let hc = quiet_run(
        &d,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
            "cc",
        ],
    );
    assert_eq!(hc, "134217728 268435456 1000000000 50");

    // berth update does the same, and the limit survives a restart of the container.
    let out = d.berth(&["update", "--memory", "96m", "cc"]);
    assert_ok(&out, "berth update");
    assert_eq!(stdout(&out).trim(), "cc");
    d.docker(&["restart", "-t", "0", "cc"]);
    if v2() {
        assert_eq!(read("memory", "memory.max"), "100663296");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "100663296");
    }
    d.docker(&["rm", "-f", "cc"]);
}

#[test]
fn bad_limits_are_refused_like_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let (code, body) = d.api(
        "POST",
        "/containers/create?name=neg",
        Some(r#"{"Image":"busybox","HostConfig":{"Memory":-5}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Minimum memory limit allowed is 6MB"),
        "{body}"
    );
    let out = d.docker(&["run", "--name", "tiny", "--memory", "4m", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["create", "--cpus", "64", "busybox", "true"]);
    assert!(
        stderr(&out).contains("Range of CPUs is from 0.01"),
        "{}",
        stderr(&out)
    );
    // dockerd discards a weight the kernel cannot apply before it checks its range.
    let out = d.docker(&[
        "create",
        "--name",
        "w5",
        "--blkio-weight",
        "5",
        "busybox",
        "true",
    ]);
    if SysInfo::detect().cgroup.blkio_weight {
        assert!(
            stderr(&out).contains("Range of blkio weight is from 10 to 1000"),
            "{}",
            stderr(&out)
        );
    } else {
        assert_ok(&out, "create with a discarded weight");
        assert!(
            stderr(&out).contains("Weight discarded."),
            "{}",
            stderr(&out)
        );
        assert_ok(&d.docker(&["rm", "w5"]), "rm w5");
    }
    // Nothing was created.
    assert_eq!(quiet_run(&d, &["ps", "-aq"]), "");
    let (code, _) = d.api("POST", "/containers/nosuch/update", Some(r#"{"Memory":1}"#));
    assert_eq!(code, 404);
}

#[test]
fn stats_no_stream_shows_cpu_memory_and_pids() {
    let d = Daemon::start();
    d.load_busybox();
    quiet_run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "busy",
            "--cpus",
            "0.5",
            "--memory",
            "64m",
            "busybox",
            "sh",
            "-c",
            "sleep 300 & while :; do :; done",
        ],
    );
    // Let the loop accumulate some CPU time.
    std::thread::sleep(Duration::from_millis(500));
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        "busy",
    ]);
    assert_ok(&out, "docker stats");
    let line = stdout(&out).trim().to_string();
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 4, "{line}");
    assert_eq!(f[0], "busy");
    let cpu: f64 = f[1].trim_end_matches('%').parse().expect("cpu %");
    // Half a CPU at most, on a shared machine possibly less.
    assert!(cpu > 1.0 && cpu < 75.0, "cpu {cpu}: {line}");
    assert!(f[2].ends_with("/ 64MiB"), "limit shown: {line}");
    assert!(!f[2].starts_with("0B"), "usage shown: {line}");
    assert_eq!(f[3], "2", "sh and sleep: {line}");

    // The raw API in Docker's shape.
    let (code, body) = d.api("GET", "/containers/busy/stats?stream=false", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("json");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0);
    assert!(v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(v["memory_stats"]["limit"], 64 * 1024 * 1024);
    assert!(v["memory_stats"]["stats"].is_object());
    assert_eq!(v["pids_stats"]["current"], 2);
    assert_eq!(v["name"], "/busy");
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");
    let (_, body) = d.api(
        "GET",
        "/containers/busy/stats?stream=false&one-shot=true",
        None,
    );
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("json");
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");

    // berth stats --no-stream prints the same table.
    let out = d.berth(&["stats", "--no-stream", "busy"]);
    assert_ok(&out, "berth stats");
    let text = stdout(&out);
    assert!(text.starts_with("CONTAINER ID"), "{text}");
    assert!(text.contains("busy") && text.contains("/ 64MiB"), "{text}");
    d.docker(&["rm", "-f", "busy"]);
}

#[test]
fn devices_and_blkio_throttles() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&["run", "--rm", "--device", "/dev/nope", "busybox", "true"]);
    assert!(
        stderr(&out).contains(
            "error gathering device information while adding custom device \"/dev/nope\""
        ),
        "{}",
        stderr(&out)
    );
    // /dev/loop-control (10:237) is not among the devices every container may use: the
    // mapping's permissions decide whether it opens.
    if std::path::Path::new("/dev/loop-control").exists() {
        let out = d.docker(&[
            "run",
            "--rm",
            "--device",
            "/dev/loop-control:/dev/lc:r",
            "busybox",
            "sh",
            "-c",
            "exec 3</dev/lc && echo opened",
        ]);
        assert_ok(&out, "open an allowed device");
        assert_eq!(stdout(&out).trim(), "opened");
        let out = d.docker(&[
            "run",
            "--rm",
            "--device",
            "/dev/loop-control:/dev/lc:m",
            "busybox",
            "sh",
            "-c",
            "test -c /dev/lc && echo present; exec 3</dev/lc && echo opened",
        ]);
        assert_eq!(stdout(&out).trim(), "present", "{}", stderr(&out));
        assert!(
            stderr(&out).contains("Operation not permitted"),
            "device cgroup denies the open: {}",
            stderr(&out)
        );
        let out = d.docker(&["run", "--rm", "busybox", "test", "-e", "/dev/lc"]);
        assert!(!out.status.success(), "no mapping, no node");
    }
    let Some(disk) = host_disk() else {
        eprintln!("no host disk: skipping the throttle part");
        return;
    };
    // Throttles land in the blkio cgroup (v1) / io.max (v2); the weight only where the
    // kernel has a proportional-weight I/O scheduler (BFQ, or blk-iocost on v2). What the
    // host lacks is discarded with dockerd's warning, and the container still runs.
    let sys = SysInfo::detect();
    let rbps = format!("{disk}:1mb");
    let wiops = format!("{disk}:100");
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "io",
        "--device-read-bps",
        &rbps,
        "--device-write-iops",
        &wiops,
        "--blkio-weight",
        "300",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_ok(&out, "run with block I/O limits");
    let warned = stderr(&out);
    const NO_WEIGHT: &str = "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
    assert_eq!(
        warned.contains(NO_WEIGHT),
        !sys.cgroup.blkio_weight,
        "weight supported: {}; stderr: {warned}",
        sys.cgroup.blkio_weight
    );
    let stored = inspect(&d, "io", "{{.HostConfig.BlkioWeight}}");
    let rdev = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk).expect("disk").rdev()
    };
    let majmin = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let read = |dir: &std::path::Path, files: &[&str]| {
        files
            .iter()
            .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .unwrap_or_default()
    };
    if v2() {
        let dir = cgroup_dir(&d, "io", "io");
        let io = read(&dir, &["io.max"]);
        assert!(io.contains(&format!("{majmin} rbps=1048576")), "{io}");
        assert!(io.contains("wiops=100"), "{io}");
        let weight = read(&dir, &["io.bfq.weight", "io.weight"]);
        if sys.cgroup.blkio_weight {
            assert!(
                weight.contains("300") || weight.contains("2930"),
                "{weight}"
            );
        }
    } else {
        let dir = cgroup_dir(&d, "io", "blkio");
        let r = read(&dir, &["blkio.throttle.read_bps_device"]);
        assert!(r.contains(&format!("{majmin} 1048576")), "{r}");
        let w = read(&dir, &["blkio.throttle.write_iops_device"]);
        assert!(w.contains(&format!("{majmin} 100")), "{w}");
        if sys.cgroup.blkio_weight {
            let weight = read(&dir, &["blkio.bfq.weight", "blkio.weight"]);
            assert!(weight.contains("300"), "{weight}");
        }
    }
    if sys.cgroup.blkio_weight {
        assert_eq!(stored, "300");
    } else {
        // dockerd stores what it applied: the discarded weight is gone from the config.
        assert_eq!(stored, "0");
        let out = d.docker(&["update", "--blkio-weight", "400", "io"]);
        assert_ok(&out, "update the weight");
        // The CLI prints update warnings on stdout.
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains("Weight discarded."), "{said}");
        assert_eq!(inspect(&d, "io", "{{.HostConfig.BlkioWeight}}"), "0");
    }
    d.docker(&["rm", "-f", "io"]);
}

/// `docker info` names what the kernel lacks with dockerd's `WARNING:` lines, the same
/// sysinfo the daemon applies at create.
#[test]
fn info_warns_of_what_the_kernel_lacks() {
    let d = Daemon::start();
    let sys = SysInfo::detect();
    let out = d.docker(&["info", "--format", "{{json .Warnings}}"]);
    assert_ok(&out, "info");
    let warnings: Vec<String> = serde_json::from_str(stdout(&out).trim()).expect("warnings");
    for w in sys.info_warnings() {
        assert!(warnings.contains(&w), "{w} missing from {warnings:?}");
    }
    let cgroup_warnings = warnings
        .iter()
        .filter(|w| !w.contains("forwarding"))
        .count();
    assert_eq!(cgroup_warnings, sys.info_warnings().len(), "{warnings:?}");
    let fields = inspect_info(
        &d,
        "{{.CgroupVersion}} {{.PidsLimit}} {{.CPUSet}} {{.OomKillDisable}}",
    );
    assert_eq!(
        fields,
        format!(
            "{} {} {} {}",
            sys.cgroup_version.as_str(),
            sys.cgroup.pids_limit,
            sys.cgroup.cpuset,
            sys.cgroup.oom_kill_disable
        )
    );
}

fn inspect_info(d: &Daemon, format: &str) -> String {
    let out = d.docker(&["info", "--format", format]);
    assert_ok(&out, "info");
    stdout(&out).trim().to_string()
}

#[test]
fn other_limits_reach_the_container() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--rm",
        "--shm-size",
        "8m",
        "--ulimit",
        "nofile=512:1024",
        "--oom-score-adj",
        "300",
        "busybox",
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj",
    ]);
    assert_ok(&out, "run");
    let text = stdout(&out);
    assert!(text.contains("size=8192k"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[1..], ["512", "1024", "300"], "{text}");

    quiet_run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "mm",
            "--memory",
            "64m",
            "--memory-reservation",
            "32m",
            "--oom-kill-disable",
            "--cpuset-cpus",
            "0",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(cgroup_dir(&d, "mm", ctl).join(file))
            .unwrap_or_else(|e| panic!("{ctl}/{file}: {e}"))
            .trim()
            .to_string()
    };
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    if v2() {
        assert_eq!(read("cpu", "cpu.max"), "25000 50000");
        assert_eq!(read("memory", "memory.low"), "33554432");
    } else {
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(read("memory", "memory.soft_limit_in_bytes"), "33554432");
        assert!(
            read("memory", "memory.oom_control").contains("oom_kill_disable 1"),
            "oom killer disabled"
        );
    }
    let out = d.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "mm"]);
    assert!(stdout(&out).trim().ends_with("/ 64MiB"), "{}", stdout(&out));
    d.docker(&["rm", "-f", "mm"]);
}

/// The host's cgroup2 mount as mountinfo shows it: its mount point and super options.
fn cgroup2_mount() -> Option<(String, Vec<String>)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    berth_sys::mountinfo::parse(&info)
        .into_iter()
        .find(|e| e.fstype == "cgroup2")
        .map(|e| {
            (
                e.mount_point.to_string_lossy().into_owned(),
                e.super_options,
            )
        })
}

/// Puts the cgroup2 mount's options back as they were (the flag is host-wide).
struct RestoreCgroup2(String, Vec<String>);

impl Drop for RestoreCgroup2 {
    fn drop(&mut self) {
        let _ = nix::mount::mount(
            None::<&str>,
            self.0.as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(self.1.join(",").as_str()),
        );
    }
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

#[test]
fn cgroup_favordynmods_is_set_on_the_cgroup2_mount_and_containers_run() {
    let Some((point, before)) = cgroup2_mount() else {
        eprintln!("skipped: the host has no cgroup2 mount");
        return;
    };
    let _restore = RestoreCgroup2(point.clone(), before.clone());
    let d = Daemon::start_with_args(&["--cgroup-favordynmods"]);
    let (_, after) = cgroup2_mount().expect("the cgroup2 mount is still there");
    let log = d.log();
    if before.iter().any(|o| o == "favordynmods") {
        assert!(log.contains("cgroup favordynmods: already on"), "{log}");
        assert_eq!(after, before);
    } else if kernel_at_least(6, 0) {
        assert!(log.contains("cgroup favordynmods: turned on"), "{log}");
        // Only the flag is added: nsdelegate and the rest are kept (the kernel lists them in
        // its own order).
        let mut want = before.clone();
        want.push("favordynmods".into());
        want.sort();
        let mut got = after.clone();
        got.sort();
        assert_eq!(got, want, "the cgroup2 mount's options");
    } else {
        assert!(log.contains("cgroup favordynmods not turned on"), "{log}");
        assert_eq!(after, before);
    }
    d.load_busybox();
    let out = quiet_run(
        &d,
        &[
            "run",
            "--rm",
            "--pids-limit",
            "64",
            "busybox",
            "echo",
            "ran",
        ],
    );
    assert_eq!(out, "ran");
    quiet_run(&d, &["run", "-d", "--name", "fd", "busybox", "sleep", "60"]);
    assert_eq!(exec_out(&d, "fd", &["echo", "exec"]).trim(), "exec");
    quiet_run(&d, &["rm", "-f", "fd"]);
}
