//! Privileged integration tests: a real busybox container through the built `berth-shim`.
//! They need root (namespaces, cgroups, mounts) and skip with a message otherwise.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_shim_protocol::{
    launch, ExitStatus, FrameKind, RunState, ShimClient, ShimConfig, ShimStream, Status,
};
use tokio::io::AsyncWriteExt;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ps", "tty", "stty", "true", "false", "ls", "id", "yes",
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipping: privileged shim tests need root");
            return;
        }
    };
}

/// One container under test; everything it leaves behind is removed on drop, also when
/// the test panics.
struct TestContainer {
    /// Removed (with the rootfs and state) on drop, after the cleanup below.
    _dir: tempfile::TempDir,
    id: String,
    cfg: ShimConfig,
    cfg_path: PathBuf,
    init_pid: Option<u32>,
}

impl TestContainer {
    fn new(name: &str, args: &[&str], tweak: impl FnOnce(&mut ShimConfig)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-it")
            .tempdir()
            .expect("tempdir");
        let id = format!("{name}-{}", std::process::id());
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a)).expect("symlink applet");
        }
        let cdir = dir.path().join("c");
        let mut cfg = ShimConfig {
            id: id.clone(),
            bundle: bundle.clone(),
            runtime_root: dir.path().join("runtime"),
            socket: cdir.join("shim.sock"),
            state_file: cdir.join("state.json"),
            exit_file: cdir.join("exit.json"),
            log_path: Some(cdir.join(format!("{id}-json.log"))),
            log_max_size: 0,
            log_max_file: 1,
            tty: false,
            open_stdin: false,
            stdin_once: false,
            console_size: None,
            readonly_cgroups: true,
            mount_cgroups_v1: false,
            systemd_cgroup: None,
        };
        tweak(&mut cfg);
        write_spec(&bundle, &rootfs, &id, args, cfg.tty);
        let cfg_path = dir.path().join("shim.json");
        fs::write(&cfg_path, serde_json::to_vec(&cfg).expect("encode")).expect("write shim.json");
        TestContainer {
            _dir: dir,
            id,
            cfg,
            cfg_path,
            init_pid: None,
        }
    }

    fn launch(&mut self) -> Result<u32, String> {
        // BERTH_SHIM_BIN runs the suite against another build (e.g. target/release).
        let bin = std::env::var_os("BERTH_SHIM_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-shim")));
        let r = launch(&bin, &self.cfg_path).map_err(|e| e.message);
        if let Ok(pid) = r {
            self.init_pid = Some(pid);
        }
        r
    }

    fn client(&self) -> ShimClient {
        ShimClient::new(&self.cfg.socket)
    }

    /// How the container ended, as the daemon learns it: from a `wait`, or from `exit.json`
    /// when the shim was already gone (a container that exits at once may end, answer its
    /// waiters and take its shim along before this `wait` connects).
    async fn exit(&self, client: &ShimClient) -> ExitStatus {
        match client.wait().await {
            Ok(exit) => exit,
            Err(e) => {
                let raw = fs::read(&self.cfg.exit_file)
                    .unwrap_or_else(|_| panic!("wait: {e}, and no exit.json"));
                serde_json::from_slice(&raw).expect("exit.json")
            }
        }
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let p = e.path().join(cgroup_name(&self.id));
                if p.exists() {
                    out.push(p);
                }
            }
        }
        let p = Path::new("/sys/fs/cgroup").join(cgroup_name(&self.id));
        if p.exists() {
            out.push(p);
        }
        out
    }

    /// Waits until the shim removed its socket (it does so right before it exits).
    /// The shim removes its socket when the container ends and its pid file last, after
    /// deleting the container's cgroups.
    fn wait_shim_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid_file = self.cfg.pid_file();
        while (self.cfg.socket.exists() || pid_file.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!self.cfg.socket.exists(), "shim socket still there");
        assert!(!pid_file.exists(), "shim pid file still there");
    }

    fn log(&self) -> Vec<serde_json::Value> {
        let path = self.cfg.log_path.as_ref().expect("log path");
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is json"))
            .collect()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let kill = |pid: i32| {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        };
        if let Ok(p) = fs::read_to_string(self.cfg.pid_file()) {
            if let Ok(p) = p.trim().parse() {
                kill(p);
            }
        }
        if let Some(p) = self.init_pid {
            kill(p as i32);
        }
        for d in self.cgroup_dirs() {
            if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                for p in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                    kill(p);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
            let _ = fs::remove_dir(&d);
        }
    }
}

/// Each test container's cgroup sits at the top of every hierarchy, with no parent shared
/// between tests: one test removing an emptied shared parent raced another creating its
/// cgroup under it (ENOENT at launch).
fn cgroup_name(id: &str) -> String {
    format!("berth-test-{id}")
}

fn write_spec(bundle: &Path, rootfs: &Path, id: &str, args: &[&str], tty: bool) {
    let mut spec = serde_json::to_value(oci_spec::runtime::Spec::default()).expect("spec");
    spec["root"] = serde_json::json!({"path": rootfs, "readonly": false});
    spec["hostname"] = serde_json::json!("berth-it");
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["terminal"] = serde_json::json!(tty);
    spec["process"]["env"] = serde_json::json!([PATH_ENV, "TERM=xterm"]);
    spec["process"]["cwd"] = serde_json::json!("/");
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}", cgroup_name(id)));
    spec["linux"]["namespaces"] = serde_json::json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}
    ]);
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).expect("encode spec"),
    )
    .expect("write config.json");
}

fn exec_process(args: &[&str], terminal: bool) -> serde_json::Value {
    serde_json::json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": [PATH_ENV],
        "cwd": "/",
    })
}

/// Reads a stream to its final frame: (stdout, stderr, exit).
async fn collect(s: &mut ShimStream) -> (String, String, ExitStatus) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let fut = async {
        loop {
            let f = s
                .reader
                .next_frame()
                .await
                .expect("read frame")
                .expect("stream ended before the exit frame");
            match f.kind {
                FrameKind::Stdout => out.extend(f.payload),
                FrameKind::Stderr => err.extend(f.payload),
                FrameKind::Exit => {
                    return serde_json::from_slice::<ExitStatus>(&f.payload).expect("exit json")
                }
                k => panic!(
                    "unexpected frame {k:?}: {:?}",
                    String::from_utf8_lossy(&f.payload)
                ),
            }
        }
    };
    let exit = tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("stream timed out");
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        exit,
    )
}

#[tokio::test]
async fn output_logs_exit_code_and_cleanup() {
    require_root!();
    let mut c = TestContainer::new(
        "out",
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        |_| {},
    );
    let pid = c.launch().expect("launch");
    let client = c.client();
    let st = client.state().await.expect("state");
    assert_eq!(st.status, Some(Status::Created));
    assert_eq!(st.pid, Some(pid));
    assert!(!c.cgroup_dirs().is_empty(), "cgroup exists while created");

    let mut attach = client.attach(false, true, true).await.expect("attach");
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.wait().await })
    };
    client.start().await.expect("start");
    let (out, err, exit) = collect(&mut attach).await;
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    assert_eq!(exit.exit_code, 3);
    let waited = waiter.await.expect("join").expect("wait");
    assert_eq!(waited.exit_code, 3);
    assert!(!waited.oom_killed);

    let on_disk: ExitStatus =
        serde_json::from_slice(&fs::read(&c.cfg.exit_file).expect("exit.json")).expect("json");
    assert_eq!(on_disk, waited);
    let state: RunState =
        serde_json::from_slice(&fs::read(&c.cfg.state_file).expect("state.json")).expect("json");
    assert_eq!(state.pid, pid);

    let log = c.log();
    assert_eq!(log.len(), 2, "{log:?}");
    let find = |stream: &str| {
        log.iter()
            .find(|l| l["stream"] == stream)
            .unwrap_or_else(|| panic!("no {stream} line"))
            .clone()
    };
    assert_eq!(find("stdout")["log"], "hello\n");
    assert_eq!(find("stderr")["log"], "oops\n");
    assert!(find("stdout")["time"]
        .as_str()
        .expect("time")
        .ends_with('Z'));

    c.wait_shim_gone();
    assert!(
        c.cgroup_dirs().is_empty(),
        "cgroup removed: {:?}",
        c.cgroup_dirs()
    );
    assert!(
        !c.cfg.runtime_root.join(&c.id).exists(),
        "runtime state removed"
    );
    assert!(!c.cfg.pid_file().exists());
}

#[tokio::test]
async fn stdin_from_attach_reaches_cat() {
    require_root!();
    let mut c = TestContainer::new("stdin", &["cat"], |cfg| {
        cfg.open_stdin = true;
        cfg.stdin_once = true;
    });
    c.launch().expect("launch");
    let client = c.client();
    let mut attach = client.attach(true, true, true).await.expect("attach");
    client.start().await.expect("start");
    attach
        .writer
        .write_all(b"ping\npong\n")
        .await
        .expect("write");
    attach.writer.shutdown().await.expect("close stdin");
    let (out, _, exit) = collect(&mut attach).await;
    assert_eq!(out, "ping\npong\n");
    assert_eq!(exit.exit_code, 0);
    c.wait_shim_gone();
}

#[tokio::test]
async fn exec_pids_pause_and_kill() {
    require_root!();
    let mut c = TestContainer::new("exec", &["sleep", "100"], |_| {});
    let pid = c.launch().expect("launch");
    let client = c.client();
    client.start().await.expect("start");
    assert_eq!(
        client.state().await.expect("state").status,
        Some(Status::Running)
    );

    let mut s = client
        .exec("e1", exec_process(&["echo", "from-exec"], false), false)
        .await
        .expect("exec echo");
    assert!(s.pid.is_some());
    let (out, _, exit) = collect(&mut s).await;
    assert_eq!(out, "from-exec\n");
    assert_eq!(exit.exit_code, 0);

    let mut s = client
        .exec(
            "e2",
            exec_process(&["sh", "-c", "echo err >&2; exit 7"], false),
            false,
        )
        .await
        .expect("exec sh");
    let (_, err, exit) = collect(&mut s).await;
    assert_eq!(err, "err\n");
    assert_eq!(exit.exit_code, 7);

    let mut s = client
        .exec("e3", exec_process(&["cat"], false), true)
        .await
        .expect("exec cat");
    s.writer.write_all(b"via exec\n").await.expect("write");
    s.writer.shutdown().await.expect("shutdown");
    let (out, _, exit) = collect(&mut s).await;
    assert_eq!(out, "via exec\n");
    assert_eq!(exit.exit_code, 0);

    match client
        .exec("e4", exec_process(&["nosuchcmd"], false), false)
        .await
    {
        Err(berth_shim_protocol::ClientError::Start(e)) => {
            assert!(
                e.message.contains("executable file not found"),
                "unexpected message {}",
                e.message
            );
            assert_eq!(e.cause, berth_shim_protocol::StartCause::NotFound);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("exec of a missing command succeeded"),
    }

    let pids = client.pids().await.expect("pids");
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");

    client.pause().await.expect("pause");
    assert_eq!(
        client.state().await.expect("state").status,
        Some(Status::Paused)
    );
    client.resume().await.expect("resume");
    assert_eq!(
        client.state().await.expect("state").status,
        Some(Status::Running)
    );

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.wait().await })
    };
    client.kill(9, false).await.expect("kill");
    let exit = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("wait timed out")
        .expect("join")
        .expect("wait");
    assert_eq!(exit.exit_code, 137);
    c.wait_shim_gone();
    assert!(c.cgroup_dirs().is_empty(), "cgroup removed");
}

#[tokio::test]
async fn tty_gives_a_pty() {
    require_root!();
    let mut c = TestContainer::new("tty", &["sh", "-c", "tty; stty size"], |cfg| {
        cfg.tty = true;
        cfg.console_size = Some([30, 100]);
    });
    c.launch().expect("launch");
    let client = c.client();
    let mut attach = client.attach(false, true, true).await.expect("attach");
    client.start().await.expect("start");
    let (out, err, exit) = collect(&mut attach).await;
    assert!(err.is_empty(), "tty output all comes as stdout");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("30 100"), "{out:?}");
    assert_eq!(exit.exit_code, 0);
    let log = c.log();
    assert!(log.iter().all(|l| l["stream"] == "stdout"));
    assert!(log
        .iter()
        .any(|l| l["log"].as_str().unwrap_or("").contains("/dev/pts/")));
    c.wait_shim_gone();
}

#[tokio::test]
async fn missing_executable_is_reported_at_launch() {
    require_root!();
    let mut c = TestContainer::new("missing", &["nosuchcmd"], |_| {});
    let err = c.launch().expect_err("launch must fail");
    assert_eq!(
        err,
        "exec: \"nosuchcmd\": executable file not found in $PATH"
    );
    assert!(
        c.cgroup_dirs().is_empty(),
        "cgroup removed after failed create"
    );
    assert!(!c.cfg.runtime_root.join(&c.id).exists());
}

fn proc_status_field(pid: u32, field: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn sig_bit(mask_hex: &str, sig: i32) -> bool {
    let mask = u64::from_str_radix(mask_hex, 16).expect("hex mask");
    mask & (1 << (sig - 1)) != 0
}

#[tokio::test]
async fn shim_is_detached_small_and_ignores_signals() {
    require_root!();
    let mut c = TestContainer::new("detached", &["sleep", "100"], |_| {});
    let init = c.launch().expect("launch");
    let client = c.client();
    client.start().await.expect("start");
    let shim: u32 = fs::read_to_string(c.cfg.pid_file())
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("pid");
    // Own session, so a signal to berthd's process group does not reach it.
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(
            i32::try_from(shim).unwrap()
        )))
        .expect("sid")
        .as_raw()
        .unsigned_abs(),
        shim
    );
    // The container's init is the shim's child (subreaper).
    assert_eq!(proc_status_field(init, "PPid:"), shim.to_string());
    let rss_kb: u64 = proc_status_field(shim, "VmRSS:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("rss");
    let anon_kb: u64 = proc_status_field(shim, "RssAnon:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("rss");
    eprintln!("berth-shim VmRSS: {rss_kb} kB (anonymous {anon_kb} kB)");
    // Private memory; file-backed pages of the binary are shared by every shim.
    assert!(anon_kb < 4096, "shim uses {anon_kb} kB of anonymous memory");
    // The container must get default dispositions, not the shim's.
    let ign = proc_status_field(init, "SigIgn:");
    for sig in [libc::SIGPIPE, libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
        assert!(
            !sig_bit(&ign, sig),
            "container inherits ignored signal {sig}"
        );
    }
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGPIPE,
    ] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim as i32), sig).expect("signal");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = client.state().await.expect("shim survives signals");
    assert_eq!(st.status, Some(Status::Running));
    client.kill(9, false).await.expect("kill");
    assert_eq!(c.exit(&client).await.exit_code, 137);
    c.wait_shim_gone();
}

#[tokio::test]
async fn exec_with_tty_and_resize() {
    require_root!();
    let mut c = TestContainer::new("exectty", &["sleep", "100"], |_| {});
    c.launch().expect("launch");
    let client = c.client();
    client.start().await.expect("start");
    let mut p = exec_process(&["sh"], true);
    p["consoleSize"] = serde_json::json!({"height": 20, "width": 60});
    let mut s = client.exec("t1", p, true).await.expect("exec tty");
    client
        .resize(Some("t1"), 40, 120)
        .await
        .expect("resize exec tty");
    s.writer
        .write_all(b"tty; stty size; exit 5\n")
        .await
        .expect("write");
    let (out, _, exit) = collect(&mut s).await;
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("40 120"), "{out:?}");
    assert_eq!(exit.exit_code, 5);
    client.kill(9, false).await.expect("kill");
    c.exit(&client).await;
    c.wait_shim_gone();
}

#[tokio::test]
async fn not_executable_is_permission_denied() {
    require_root!();
    let mut c = TestContainer::new("noexec", &["/etc/hostname"], |_| {});
    fs::write(c.cfg.bundle.join("rootfs/etc/hostname"), "x\n").expect("write file");
    let err = c.launch().expect_err("launch must fail");
    assert_eq!(err, "exec: \"/etc/hostname\": permission denied");
}

#[tokio::test]
async fn log_rotation_end_to_end() {
    require_root!();
    let mut c = TestContainer::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
        |cfg| {
            cfg.log_max_size = 1000;
            cfg.log_max_file = 3;
        },
    );
    c.launch().expect("launch");
    let client = c.client();
    client.start().await.expect("start");
    assert_eq!(c.exit(&client).await.exit_code, 0);
    let log = c.cfg.log_path.clone().expect("log path");
    let live = fs::read_to_string(&log).expect("live log");
    assert!(live.contains("line-199"), "{live}");
    assert!(fs::metadata(&log).expect("meta").len() < 1100);
    let one = PathBuf::from(format!("{}.1", log.display()));
    let two = PathBuf::from(format!("{}.2", log.display()));
    assert!(one.exists() && two.exists());
    assert!(!PathBuf::from(format!("{}.3", log.display())).exists());
}

#[tokio::test]
async fn oom_kill_is_reported() {
    require_root!();
    let mut c = TestContainer::new("oom", &["sh", "-c", "tail /dev/zero"], |_| {});
    let spec_path = c.cfg.bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(&spec_path).expect("spec")).expect("json");
    spec["linux"]["resources"]["memory"] =
        serde_json::json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    fs::write(&spec_path, serde_json::to_vec(&spec).expect("encode")).expect("write spec");
    c.launch().expect("launch");
    let client = c.client();
    client.start().await.expect("start");
    let exit = tokio::time::timeout(Duration::from_secs(30), client.wait())
        .await
        .expect("wait timed out")
        .expect("wait");
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
}

#[tokio::test]
async fn unopenable_log_fails_launch_and_kill_before_start_works() {
    require_root!();
    let mut bad = TestContainer::new("badlog", &["true"], |cfg| {
        cfg.log_path = Some(PathBuf::from("/proc/version/x-json.log"));
    });
    let err = bad.launch().expect_err("launch must fail");
    assert!(err.contains("failed to open log file"), "{err}");

    let mut c = TestContainer::new("killcreated", &["sleep", "100"], |_| {});
    c.launch().expect("launch");
    let client = c.client();
    client.kill(9, false).await.expect("kill");
    let exit = c.exit(&client).await;
    assert_eq!(exit.exit_code, 137);
    c.wait_shim_gone();
    assert!(c.cgroup_dirs().is_empty());
}
