//! A rootless berthd for tests: a throwaway user with subordinate id ranges, its own
//! `HOME`/`XDG_*` directories under a temporary root, and berthd started as that user with
//! no path flags (so the per-user defaults are what is tested). The test process (root)
//! drives it through the user's socket with the docker CLI. Dropping it stops the daemon,
//! kills whatever the user still runs (by pid), removes the files, the user and its ranges.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, DOCKER};

/// Why rootless tests cannot run here, or `None` when they can.
pub fn missing_prerequisite() -> Option<String> {
    if !crate::is_root() {
        return Some("needs root (to create a throwaway user)".into());
    }
    for (tool, pkg) in [
        ("newuidmap", "uidmap"),
        ("newgidmap", "uidmap"),
        ("slirp4netns", "slirp4netns"),
        ("useradd", "passwd"),
    ] {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        if !found {
            return Some(format!("{tool} not installed (apt-get install {pkg})"));
        }
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let tun = std::fs::metadata("/dev/net/tun");
    if tun
        .map(|m| m.permissions().mode() & 0o006 != 0o006)
        .unwrap_or(true)
    {
        return Some(
            "/dev/net/tun is not open to users (scripts/install-deps.sh makes it 0666)".into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").trim() == "0" {
        return Some("kernel.unprivileged_userns_clone is 0".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").trim() == "1" {
        return Some("kernel.apparmor_restrict_unprivileged_userns is 1".into());
    }
    if read("/proc/sys/user/max_user_namespaces").trim() == "0" {
        return Some("user.max_user_namespaces is 0".into());
    }
    // overlayfs in a user namespace (with `userxattr`) came with Linux 5.11.
    let release = read("/proc/sys/kernel/osrelease");
    let mut v = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (5, 11) {
        return Some(format!(
            "kernel {} has no overlayfs in user namespaces (5.11+)",
            release.trim()
        ));
    }
    None
}

/// useradd, usermod and userdel lock /etc/passwd and give up when another holds it: the
/// tests of one process change accounts one at a time.
static ACCOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A throwaway user with subordinate uids and gids; removed (with its ranges) on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub sub_start: u32,
    pub sub_count: u32,
}

impl User {
    /// A user named `brl<pid><n>` with 65536 subordinate uids and gids of its own.
    pub fn create() -> User {
        Self::make(true)
    }

    /// A user without subordinate ids.
    pub fn without_ranges() -> User {
        Self::make(false)
    }

    fn make(ranges: bool) -> User {
        let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst) % 8;
        let name = format!("brl{}{n}", std::process::id());
        let _ = Command::new("userdel")
            .arg(&name)
            .stderr(Stdio::null())
            .status();
        let st = Command::new("useradd")
            // --system: no subordinate ids allocated by useradd itself (SUB_UID_COUNT).
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                &name,
            ])
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {name}");
        // Ranges past the usual 100000.. allocations, one 65536 block per test process.
        let sub_start = 2_000_000 + ((std::process::id() % 4096) * 8 + n) * 65536;
        let sub_count = 65536;
        let range = format!("{sub_start}-{}", sub_start + sub_count - 1);
        let mut u = User {
            uid: 0,
            gid: 0,
            name,
            sub_start,
            sub_count,
        };
        if ranges {
            let st = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, &u.name])
                .status()
                .expect("usermod");
            assert!(st.success(), "usermod --add-subuids {range} {}", u.name);
        }
        let pw = nix::unistd::User::from_name(&u.name)
            .ok()
            .flatten()
            .expect("the new user");
        u.uid = pw.uid.as_raw();
        u.gid = pw.gid.as_raw();
        u
    }

    /// Whether host uid `uid` is this user's or in its subordinate range.
    pub fn owns_uid(&self, uid: u32) -> bool {
        uid == self.uid || (self.sub_start..self.sub_start + self.sub_count).contains(&uid)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        kill_processes_of(self);
        let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let range = format!("{}-{}", self.sub_start, self.sub_start + self.sub_count - 1);
        let _ = Command::new("usermod")
            .args(["--del-subuids", &range, "--del-subgids", &range, &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("userdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}

/// The real uid of process `pid` (from `/proc/<pid>/status`).
pub fn proc_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// SIGKILLs, by pid, every process running under the user's uid or its subordinate ids
/// (the daemon, slirp4netns, shims and containers: all started by the test).
fn kill_processes_of(u: &User) {
    for _ in 0..50 {
        let mut left = 0;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if proc_uid(pid).is_some_and(|uid| u.owns_uid(uid)) {
                left += 1;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if left == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// berthd run by a throwaway [`User`].
pub struct RootlessDaemon {
    pub root: PathBuf,
    pub runtime_dir: PathBuf,
    pub data_home: PathBuf,
    child: Option<Child>,
    /// Extra berthd flags and environment (see [`RootlessDaemon::start_with`]).
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    /// A cgroup (v2 directory) berthd is started in (see [`DelegatedCgroup`]).
    cgroup: Option<PathBuf>,
    // Dropped last: the user's processes are killed and the user removed after the files.
    pub user: User,
}

impl RootlessDaemon {
    pub fn start() -> RootlessDaemon {
        Self::start_with(&[], &[])
    }

    /// [`RootlessDaemon::start`] with extra berthd flags and environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> RootlessDaemon {
        let mut d = Self::prepare(User::create());
        d.extra_args = args.iter().map(|s| s.to_string()).collect();
        d.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        d.spawn();
        d
    }

    /// [`RootlessDaemon::start`] for `user` in the cgroup `cgroup` (delegated to the user).
    pub fn start_in_cgroup(user: User, cgroup: &Path) -> RootlessDaemon {
        let mut d = Self::prepare(user);
        d.cgroup = Some(cgroup.to_path_buf());
        d.spawn();
        d
    }

    /// The user's directories, without starting the daemon.
    pub fn prepare(user: User) -> RootlessDaemon {
        let root = PathBuf::from(format!("/var/tmp/berth-rootless-{}", user.name));
        let _ = std::fs::remove_dir_all(&root);
        let d = RootlessDaemon {
            runtime_dir: root.join("run"),
            data_home: root.join("home/.local/share"),
            root,
            child: None,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            cgroup: None,
            user,
        };
        for dir in [&d.root, &d.runtime_dir, &d.root.join("home")] {
            std::fs::create_dir_all(dir).expect("test dirs");
            nix::unistd::chown(
                dir.as_path(),
                Some(nix::unistd::Uid::from_raw(d.user.uid)),
                Some(nix::unistd::Gid::from_raw(d.user.gid)),
            )
            .expect("chown test dir");
        }
        std::fs::set_permissions(&d.runtime_dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod runtime dir");
        d
    }

    /// The user's environment: only what a login would give, plus `XDG_RUNTIME_DIR`.
    pub fn user_command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.root.join("home"))
            .env("USER", &self.user.name)
            .env("LOGNAME", &self.user.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .current_dir(self.root.join("home"))
            .uid(self.user.uid)
            .gid(self.user.gid);
        c
    }

    /// Runs `program args` as the user (not through the daemon).
    pub fn run_as_user(&self, program: &Path, args: &[&str]) -> Output {
        self.user_command(program)
            .args(args)
            .output()
            .expect("run as the user")
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("daemon log");
        let mut cmd = self.user_command(&bin("berthd"));
        if let Some(cg) = &self.cgroup {
            // Into the cgroup while still root (the user may not move itself out of the
            // test's cgroup), then the user's ids, as `uid`/`gid` would give them.
            let procs =
                std::ffi::CString::new(cg.join("cgroup.procs").as_os_str().as_encoded_bytes())
                    .expect("cgroup path");
            let (uid, gid) = (self.user.uid, self.user.gid);
            let mut c = Command::new(bin("berthd"));
            c.env_clear()
                .envs(
                    cmd.get_envs()
                        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
                )
                .current_dir(self.root.join("home"));
            // SAFETY: only open/write/close and the id syscalls between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd = c;
        }
        let child = cmd
            .args(["--log-level", "debug"])
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rootless berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.socket().exists() && self.docker(&["version"]).status.success() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("rootless berthd exited ({st}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("rootless berthd did not come up:\n{}", self.log());
    }

    /// The user's socket, where a rootless daemon listens by default.
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("berth/berth.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    /// The outer berthd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("docker")
    }

    /// `docker args` with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker");
        let _ = child.stdin.take().expect("stdin").write_all(input);
        child.wait_with_output().expect("docker")
    }

    /// SIGTERM and wait (the outer process passes it on and exits with the daemon).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for RootlessDaemon {
    fn drop(&mut self) {
        self.stop();
        kill_processes_of(&self.user);
        if std::thread::panicking() {
            eprintln!("rootless berthd log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A cgroup v2 directory delegated to a user as systemd's `Delegate=yes` does (the directory
/// and its `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` given to the user),
/// for a rootless berthd to run its containers' cgroups under. Removed (children first) on
/// drop; drop it after the daemon, whose processes must be gone by then.
pub struct DelegatedCgroup {
    pub dir: PathBuf,
}

impl DelegatedCgroup {
    /// Why a delegated cgroup cannot be made here (not a cgroup v2 host, or memory and pids
    /// not available at the root), or `None`.
    pub fn missing() -> Option<String> {
        let root = Path::new("/sys/fs/cgroup");
        let Ok(ctrls) = std::fs::read_to_string(root.join("cgroup.controllers")) else {
            return Some(
                "/sys/fs/cgroup is not cgroup v2 (a v1 or hybrid host: no cgroups for users)"
                    .into(),
            );
        };
        for c in ["memory", "pids"] {
            if !ctrls.split_whitespace().any(|x| x == c) {
                return Some(format!("the {c} controller is not available on cgroup v2"));
            }
        }
        None
    }

    /// Creates `/sys/fs/cgroup/berth-test-<name>` with memory, pids, cpu, cpuset and io (as
    /// available) enabled for it, delegated to `u`.
    pub fn create(u: &User) -> DelegatedCgroup {
        let root = Path::new("/sys/fs/cgroup");
        let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        for c in ["cpuset", "cpu", "io", "memory", "pids"] {
            if offered.split_whitespace().any(|x| x == c) {
                let _ = std::fs::write(root.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
        let dir = root.join(format!("berth-test-{}", u.name));
        let g = DelegatedCgroup { dir };
        let _ = std::fs::create_dir(&g.dir);
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let p = g.dir.join(f);
            nix::unistd::chown(
                &p,
                Some(nix::unistd::Uid::from_raw(u.uid)),
                Some(nix::unistd::Gid::from_raw(u.gid)),
            )
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        }
        g
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&e.path());
                }
            }
            // Processes left (none once the daemon is dropped) would keep it: a few tries.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        remove(&self.dir);
    }
}
