//! Black-box test harness: each test starts its own `berthd` on a temporary socket, data root,
//! exec root and cgroup parent, drives it with the real `docker` CLI or `berth`, and cleans up
//! (containers, mounts, cgroups, files) when dropped — also when the test fails.

pub mod cri;
pub mod cri_env;
pub mod registry;
pub mod rootless;
pub mod scenarios;
pub mod volumes;

mod leftovers;
use leftovers::{kill_cgroup_members, remove_cgroups};
pub use leftovers::{remove_network_leftovers, unmount_under};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The real docker CLI the acceptance criteria name.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// Where cargo put the binaries (`target/debug` for `cargo test`), or `BERTH_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BERTH_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --bins` first",
        p.display()
    );
    p
}

/// A docker-save archive of busybox built from the host's static busybox, made once per run.
pub fn busybox_archive() -> PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let dir = bin_dir().join("test-fixtures");
            std::fs::create_dir_all(&dir).expect("fixture dir");
            let out = dir.join(format!("busybox-{}.tar", std::process::id()));
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-image.py");
            let st = Command::new("python3")
                .arg(script)
                .arg(&out)
                .stdout(Stdio::null())
                .status()
                .expect("python3");
            assert!(st.success(), "make-busybox-image.py failed");
            out
        })
        .clone()
}

pub struct Daemon {
    pub root: PathBuf,
    /// `--data-root`: `<root>/data`, or another daemon's (see [`Daemon::start_sharing_data`]).
    pub data_root: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// This daemon's default bridge (unique per test daemon, so parallel daemons never share
    /// interfaces, subnets or nftables tables) and its address.
    pub bridge: String,
    pub bip: String,
    child: Option<Child>,
    /// Extra berthd flags (see [`Daemon::start_with_args`]).
    extra_args: Vec<String>,
    /// Extra environment of berthd (see [`Daemon::start_with_env`]).
    extra_env: Vec<(String, String)>,
    /// The network namespace berthd runs in (see [`Daemon::start_in_netns`]); `None`: the
    /// host's.
    netns: Option<PathBuf>,
    /// The daemon's `RLIMIT_NOFILE` (soft and hard), when the test sets one.
    nofile: Option<u64>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with_args(&[])
    }

    /// [`Daemon::start`] with extra berthd flags (e.g. `--registry-mirror URL`).
    pub fn start_with_args(extra: &[&str]) -> Daemon {
        Self::start_with(extra, &[], None, None, None)
    }

    /// A daemon on `other`'s data root (its own socket, exec root, cgroup parent and bridge),
    /// with extra berthd flags.
    pub fn start_sharing_data(other: &Daemon, extra: &[&str]) -> Daemon {
        let mut d = Self::prepare(extra, &[], None, None);
        d.data_root = other.data_root.clone();
        d.spawn();
        d
    }

    /// [`Daemon::start`] with extra berthd flags and environment variables (e.g.
    /// `DOCKER_MIN_API_VERSION`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::start_with(extra, env, None, None, None)
    }

    /// [`Daemon::start_with_args`] with the daemon's open-file limit (soft and hard) set to
    /// `nofile`, as `ulimit -n` would.
    pub fn start_with_nofile(nofile: u64, extra: &[&str]) -> Daemon {
        Self::start_with(extra, &[], None, Some(nofile), None)
    }

    /// A daemon in the network namespace `netns` (a bind-mounted nsfs file such as
    /// `/run/netns/<name>`), entered with `nsenter --net` so that it shares the host's mount
    /// namespace. Its bridges, rules and sysctls live in that namespace: the test that made
    /// it deletes it, and nothing of the daemon's networking is left on the host.
    pub fn start_in_netns(netns: &Path, extra: &[&str]) -> Daemon {
        Self::start_with(extra, &[], Some(netns.to_path_buf()), None, None)
    }

    /// A daemon whose data root and exec root share one small filesystem (a tmpfs of
    /// `mib` MiB at `<root>/disk`, bind-mounted as `<root>/data` and `<root>/exec`), for
    /// tests that fill it up. Unmounted with the rest at cleanup.
    pub fn start_on_small_fs(mib: u64) -> Daemon {
        Self::start_with(&[], &[], None, None, Some(mib))
    }

    /// Where [`Daemon::start_on_small_fs`] mounted the small filesystem.
    pub fn disk(&self) -> PathBuf {
        self.root.join("disk")
    }

    fn start_with(
        extra: &[&str],
        env: &[(&str, &str)],
        netns: Option<PathBuf>,
        nofile: Option<u64>,
        small_fs: Option<u64>,
    ) -> Daemon {
        let d = Self::prepare(extra, env, netns, nofile);
        if let Some(mib) = small_fs {
            d.mount_small_fs(mib);
        }
        let mut d = d;
        d.spawn();
        d
    }

    /// A daemon's directories and settings, not started.
    fn prepare(
        extra: &[&str],
        env: &[(&str, &str)],
        netns: Option<PathBuf>,
        nofile: Option<u64>,
    ) -> Daemon {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let root = PathBuf::from(format!("/var/tmp/berth-test-{tag}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("test root");
        // 16 bits from the process and the counter pick both the bridge name and a /24 in
        // 10.0.0.0/8 that no other test daemon running at the same time uses: the default
        // bridge takes its lower half, the upper half (`spare_subnet`) is the test's own.
        let key = ((std::process::id() % 1000) << 6) | (n % 64);
        Daemon {
            socket: root.join("berth.sock"),
            data_root: root.join("data"),
            root,
            cgroup_parent: format!("berth-test-{tag}"),
            bridge: format!("bt{key}"),
            bip: format!("10.{}.{}.1/25", key >> 8, key & 0xff),
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            netns,
            nofile,
        }
    }

    fn mount_small_fs(&self, mib: u64) {
        let disk = self.disk();
        std::fs::create_dir_all(&disk).expect("disk dir");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(&disk)
            .status()
            .expect("mount");
        assert!(st.success(), "mounting a tmpfs at {}", disk.display());
        for dir in ["data", "exec"] {
            let (src, dst) = (disk.join(dir), self.root.join(dir));
            std::fs::create_dir_all(&src).expect("dir on the small fs");
            std::fs::create_dir_all(&dst).expect("mount point");
            let st = Command::new("mount")
                .arg("--bind")
                .arg(&src)
                .arg(&dst)
                .status()
                .expect("mount --bind");
            assert!(st.success(), "bind-mounting {}", src.display());
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("daemon log");
        let mut command = match &self.netns {
            Some(ns) => {
                // nsenter execs berthd (no fork for a network namespace): the child is berthd.
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg(bin("berthd"));
                c
            }
            None => Command::new(bin("berthd")),
        };
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the forked child before exec and only makes the
            // setrlimit system call, which is async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = command
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(self.root.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--bip")
            .arg(&self.bip)
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.try_api("GET", "/_ping", None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berthd did not come up:\n{}", self.log());
    }

    /// A /27 no other test daemon uses (`i` in 0..4), for networks a test creates.
    pub fn spare_subnet(&self, i: u8) -> String {
        let ip = self.bip.split('/').next().expect("bip");
        let mut parts: Vec<&str> = ip.split('.').collect();
        parts.pop();
        format!("{}.{}/27", parts.join("."), 128 + 32 * (i % 4))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Sends `signal` (e.g. `HUP`) to the running daemon.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("daemon running").id();
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{signal} {pid}");
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// SIGKILLs the daemon (containers and shims live on).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same roots (stopping it first if it still runs: a
    /// second daemon on the same roots would outlive the test).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn cmd(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// A `docker` command against this daemon, for a test that runs it in the background.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        self.cmd(DOCKER.as_ref(), args)
    }

    /// Runs the real docker CLI against this daemon (stdin closed).
    pub fn docker(&self, args: &[&str]) -> Output {
        self.run(DOCKER.as_ref(), args, None)
    }

    /// Runs `berth` against this daemon (stdin closed).
    pub fn berth(&self, args: &[&str]) -> Output {
        self.run(&bin("berth"), args, None)
    }

    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run(DOCKER.as_ref(), args, Some(input))
    }

    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run(&bin("berth"), args, Some(input))
    }

    /// Runs a CLI with a time bound (a hang fails the test instead of blocking it).
    pub fn run(&self, program: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
        self.run_for(program, args, input, Duration::from_secs(60))
    }

    /// [`Daemon::run`] with another time bound (a whole client suite in one process).
    pub fn run_for(
        &self,
        program: &Path,
        args: &[&str],
        input: Option<&[u8]>,
        limit: Duration,
    ) -> Output {
        self.run_env_for(program, args, &[], input, limit)
    }

    /// [`Daemon::run_for`] with extra environment variables (a client's own settings).
    pub fn run_env_for(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        input: Option<&[u8]>,
        limit: Duration,
    ) -> Output {
        let mut c = self.cmd(program, args);
        c.envs(env.iter().copied());
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        if let Some(data) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(data).expect("write stdin");
        }
        wait_bounded(
            child,
            limit,
            &format!("{} {}", program.display(), args.join(" ")),
        )
    }

    /// Raw HTTP/1.1 over the socket: (status, body).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.try_api(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // A server may answer (413) and close before it read a huge body: keep its answer.
        let written = s.write_all(req.as_bytes());
        let mut raw = Vec::new();
        let read = s.read_to_end(&mut raw);
        if raw.is_empty() {
            written?;
            read?;
        }
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Ok((status, body))
    }

    /// Raw HTTP/1.1 with extra request headers and a binary body: (status, response headers
    /// with lowercase names, body). `Content-Type: application/json` is sent with a body unless
    /// `headers` names a Content-Type.
    pub fn api_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = UnixStream::connect(&self.socket).expect("connect to berthd");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
        let named_type = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() && !named_type {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw_req = req.into_bytes();
        raw_req.extend_from_slice(body);
        s.write_all(&raw_req).expect("send request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read answer");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut rest = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let hdrs: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if hdrs
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
        {
            rest = dechunk_bytes(&rest);
        }
        (status, hdrs, rest)
    }

    /// Loads the busybox fixture with the docker CLI.
    pub fn load_busybox(&self) {
        let archive = busybox_archive();
        let out = self.docker(&["load", "-i", archive.to_str().expect("utf8 path")]);
        assert_ok(&out, "docker load");
    }

    fn cleanup(&mut self) {
        // Kill every container process and shim this daemon started.
        let runtime = self.root.join("data/containers");
        if let Ok(entries) = std::fs::read_dir(&runtime) {
            for e in entries.flatten() {
                if let Ok(raw) = std::fs::read_to_string(e.path().join("state.json")) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&raw) {
                        if let Some(pid) = v["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                }
            }
        }
        kill_cgroup_members(&self.cgroup_parent);
        // The inits of CRI pods' shared PID namespaces (forked by berthd, outside cgroups).
        if let Ok(entries) = std::fs::read_dir(self.root.join("data/cri/pods")) {
            for e in entries.flatten() {
                let Ok(raw) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
                let pid = v["pid_init"]
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(0);
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if pid > 0 && comm.trim() == "berth-pod-init" {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(entries) = std::fs::read_dir(self.root.join("exec/containers")) {
            for e in entries.flatten() {
                if let Ok(pid) = std::fs::read_to_string(e.path().join("shim.pid")) {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        self.stop();
        if self.netns.is_none() {
            remove_network_leftovers(&self.root.join("exec"), &self.bridge);
        }
        unmount_under(&self.root);
        remove_cgroups(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- berthd log ({}) ---\n{}",
                self.root.display(),
                self.log()
            );
        }
        self.cleanup();
    }
}

fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collect output"),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "timed out: {what}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A chunked body's data.
fn dechunk_bytes(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..pos]).to_string();
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let after = &rest[pos + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = &after[n..];
        if rest.starts_with(b"\r\n") {
            rest = &rest[2..];
        }
    }
    out
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// The paths in `dir`, sorted (none when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Whether a `suite` test skips here: it does when a prerequisite is `missing`, saying which.
pub fn skip_when(suite: &str, missing: Option<String>) -> bool {
    match missing {
        Some(why) => {
            eprintln!("skipping {suite} test: {why}");
            true
        }
        None => false,
    }
}

/// Asserts `o` succeeded (see [`assert_ok`]) and answers its stdout, trimmed.
pub fn ok_trimmed(o: &Output, what: &str) -> String {
    assert_ok(o, what);
    stdout(o).trim().to_string()
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `python3` can import the Docker SDK (`docker`); says why the caller skips when not.
pub fn has_python_sdk() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: python3 has no docker module (scripts/install-deps.sh installs it)");
    }
    ok
}

/// Seconds since the epoch, with their fraction.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// An `--until` (or `until=`) for `docker events` that covers every event recorded so far: a
/// fractional timestamp, since the CLI turns `0s` into whole seconds and so leaves out the
/// events of the current second.
pub fn events_until_now() -> String {
    format!("{:.3}", unix_now())
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `docker inspect --format <format> <name>`, trimmed; panics when it fails.
pub fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    let out = d.docker(&["inspect", "--format", format, name]);
    assert_ok(&out, "inspect");
    stdout(&out).trim().to_string()
}

/// `docker exec <name> <cmd…>`'s standard output; panics when it fails.
pub fn exec_out(d: &Daemon, name: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", name];
    args.extend_from_slice(cmd);
    let out = d.docker(&args);
    assert_ok(&out, &format!("exec {cmd:?} in {name}"));
    stdout(&out)
}

/// Removes the named containers, then the named networks, when a test ends, also when it
/// fails.
pub struct Cleanup<'a>(pub &'a Daemon, pub Vec<&'static str>, pub Vec<&'static str>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let mut args = vec!["rm", "-f"];
        args.extend_from_slice(&self.1);
        let _ = self.0.docker(&args);
        for n in &self.2 {
            let _ = self.0.docker(&["network", "rm", n]);
        }
    }
}

/// A TCP port nobody listens on right now, on 127.0.0.1 and (when the host has IPv6) on [::1],
/// and never handed to another test of this process (the kernel may offer a released port
/// again, and tests run in parallel).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        let v6 = std::net::TcpListener::bind(("::1", port));
        if v6.is_err() && std::path::Path::new("/proc/net/if_inet6").exists() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The host-side directory of a controller for a running container (v1), or its v2 directory.
pub fn cgroup_dir(d: &Daemon, name: &str, controller: &str) -> PathBuf {
    let out = d.docker(&["inspect", "-f", "{{.State.Pid}}", name]);
    assert_ok(&out, "inspect pid");
    let pid = stdout(&out).trim().to_string();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
    let v2_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for line in text.lines() {
        let mut p = line.splitn(3, ':');
        let (_, ctrls, path) = (p.next(), p.next().unwrap_or(""), p.next().unwrap_or(""));
        let rel = path.trim_start_matches('/');
        if v2_only && ctrls.is_empty() {
            return PathBuf::from("/sys/fs/cgroup").join(rel);
        }
        if !v2_only && ctrls.split(',').any(|c| c == controller) {
            return PathBuf::from("/sys/fs/cgroup").join(ctrls).join(rel);
        }
    }
    panic!("no {controller} cgroup for {name}: {text}");
}

/// A whole-disk block device of the host (`/dev/vda`, `/dev/sda`, ...), if there is one.
pub fn host_disk() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("/dev/{n}"))
        .find(|p| Path::new(p).exists())
}

/// `docker run -d --name <name> <args…> busybox sleep 300`: a container that stays up for the
/// test; panics when the run fails.
pub fn run_sleeper(d: &Daemon, name: &str, args: &[&str]) {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sleep", "300"]);
    assert_ok(&d.docker(&a), &format!("run -d --name {name}"));
}
