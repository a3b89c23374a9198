//! The synchronous half of a shim's life: become a monitor, create the container, report.

use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_shim_protocol::{LaunchStatus, ShimConfig, StartError};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::{pipe2, setsid, ForkResult, Pid};
use oci_spec::runtime::Spec;

use crate::cgroup::CgroupInfo;
use crate::errmap::{docker_error, error_chain};
use crate::logs::JsonLog;
use crate::sys;

/// Name of the console socket, relative to the shim's working directory (the socket dir).
const CONSOLE_SOCKET: &str = "console.sock";

/// Why the shim could not get ready to create the container (reported on the status line).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("usage: berth-shim --config <shim.json> | --pooled")]
    Usage,
    #[error("shim: --config needs a value")]
    ConfigValue,
    #[error("shim: read config {}: {source}", path.display())]
    ReadConfig { path: PathBuf, source: io::Error },
    #[error("shim: parse config {}: {source}", path.display())]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("shim: setsid: {0}")]
    Setsid(nix::Error),
    #[error("shim: set child subreaper: {0}")]
    Subreaper(nix::Error),
    #[error("shim: stdio: {0}")]
    Stdio(io::Error),
    #[error("shim: create {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("shim: chdir {}: {source}", path.display())]
    Chdir { path: PathBuf, source: io::Error },
    /// libcontainer state of a previous run whose init still runs.
    #[error("container {0} is already running")]
    AlreadyRunning(String),
}

/// The shim's ends of the container's stdio.
pub enum InitIo {
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    Tty {
        master: OwnedFd,
    },
}

/// A created container, ready to be monitored.
pub struct Created {
    pub init_pid: Pid,
    pub io: InitIo,
    pub cgroup: CgroupInfo,
    pub oom_base: Option<u64>,
    pub listener: UnixListener,
    pub log: Option<JsonLog>,
    /// The precompiled filter for exec processes (see [`crate::seccomp`]).
    pub seccomp: Option<crate::seccomp::ExecSeccomp>,
    /// The container's cgroup in the `name=systemd` hierarchy, removed at the end.
    pub systemd: Option<crate::cgroupfs::SystemdCgroup>,
}

/// Where the config comes from: the command line, or (a shim berthd spawned ahead of need)
/// one line on stdin.
enum ConfigSource {
    Path(PathBuf),
    Pooled,
}

/// Entry point of `berth-shim --config <path>` (or `--pooled`, which reads the path from
/// stdin); returns the process exit code.
pub fn main_entry(args: Vec<String>) -> i32 {
    if let Some(map_file) = args
        .first()
        .and_then(|a| crate::idmap_helper::map_file_of(a))
    {
        return crate::idmap_helper::run(map_file, &args[1..]);
    }
    if let Err(e) = sys::neutralize_signals() {
        return report(&mut io::stdout(), Err(format!("shim: signals: {e}").into()));
    }
    let path = match parse_args(&args) {
        Ok(ConfigSource::Path(p)) => p,
        Ok(ConfigSource::Pooled) => match await_config_path(&mut io::stdin().lock()) {
            Some(p) => p,
            // berthd is gone or drains its pool: nothing was started, nothing to report.
            None => return 0,
        },
        Err(e) => return report(&mut io::stdout(), Err(e.into())),
    };
    let cfg = match load_config(&path) {
        Ok(c) => c,
        Err(e) => return report(&mut io::stdout(), Err(e.into())),
    };
    // Before any thread: it may change PATH.
    if let Err(e) = crate::idmap_helper::provide(&cfg.bundle) {
        return report(
            &mut io::stdout(),
            Err(format!("shim: id map helpers: {e}").into()),
        );
    }
    let (status_r, status_w) = match pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return report(&mut io::stdout(), Err(format!("shim: pipe: {e}").into())),
    };
    // SAFETY: nothing has started a thread yet; the tokio runtime is built after the fork.
    match unsafe { sys::fork() } {
        Err(e) => report(&mut io::stdout(), Err(format!("shim: fork: {e}").into())),
        Ok(ForkResult::Parent { .. }) => {
            drop(status_w);
            relay_status(status_r)
        }
        // The forked child's life ends with its container's: it exits here with the exit
        // code rather than returning into the launcher's path.
        #[allow(clippy::exit)]
        Ok(ForkResult::Child) => {
            drop(status_r);
            let mut status = fs::File::from(status_w);
            let code = monitor_main(cfg, &mut status);
            std::process::exit(code)
        }
    }
}

fn parse_args(args: &[String]) -> Result<ConfigSource, SetupError> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--config" {
            return it
                .next()
                .map(|v| ConfigSource::Path(PathBuf::from(v)))
                .ok_or(SetupError::ConfigValue);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Ok(ConfigSource::Path(PathBuf::from(v)));
        }
        if a == berth_shim_protocol::POOLED_ARG {
            return Ok(ConfigSource::Pooled);
        }
    }
    Err(SetupError::Usage)
}

/// A pooled shim's wait: one `\n`-terminated config path. `None` at EOF before a whole
/// line (the daemon holding the other end exited, or drained its pool).
fn await_config_path(input: &mut dyn BufRead) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut line = Vec::new();
    input.read_until(b'\n', &mut line).ok()?;
    if line.pop() != Some(b'\n') || line.is_empty() {
        return None;
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(line)))
}

fn load_config(path: &Path) -> Result<ShimConfig, SetupError> {
    let data = fs::read(path).map_err(|source| SetupError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| SetupError::ParseConfig {
        path: path.to_owned(),
        source,
    })
}

/// The launcher half: copy the monitor's single status line to our stdout. Reads only up to
/// the newline: the container's init inherits the pipe until it execs, so EOF would come
/// only after `start`.
fn relay_status(status_r: OwnedFd) -> i32 {
    let mut f = fs::File::from(status_r);
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = f.read(&mut b) {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    let parsed: Option<LaunchStatus> = serde_json::from_slice(&line).ok();
    match parsed {
        Some(st) => {
            let ok = st.ok;
            let mut out = io::stdout();
            let _ = out.write_all(&line).and_then(|_| out.flush());
            if ok {
                0
            } else {
                1
            }
        }
        None => report(
            &mut io::stdout(),
            Err("shim: monitor exited without reporting".into()),
        ),
    }
}

/// Writes the status line; returns the launcher's exit code.
fn report(out: &mut dyn Write, res: Result<u32, StartError>) -> i32 {
    let (st, code) = match res {
        Ok(pid) => (
            LaunchStatus {
                ok: true,
                pid: Some(pid),
                error: None,
                cause: None,
            },
            0,
        ),
        Err(e) => (
            LaunchStatus {
                ok: false,
                pid: None,
                error: Some(e.message),
                cause: Some(e.cause),
            },
            1,
        ),
    };
    let mut line = serde_json::to_vec(&st).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    line.push(b'\n');
    let _ = out.write_all(&line).and_then(|_| out.flush());
    code
}

/// The monitor process: new session, subreaper, create the container, report, monitor.
fn monitor_main(cfg: ShimConfig, status: &mut fs::File) -> i32 {
    match become_monitor(&cfg)
        .map_err(StartError::from)
        .and_then(|_| create(&cfg))
    {
        Err(e) => {
            cleanup_files(&cfg);
            report(status, Err(e))
        }
        Ok(created) => {
            report(status, Ok(created.init_pid.as_raw().unsigned_abs()));
            crate::monitor::run(cfg, created)
        }
    }
}

fn become_monitor(cfg: &ShimConfig) -> Result<(), SetupError> {
    setsid().map_err(SetupError::Setsid)?;
    // The container's init is created by an intermediate process that exits; as a child
    // subreaper we inherit the init (and exec processes) and can wait for them.
    nix::sys::prctl::set_child_subreaper(true).map_err(SetupError::Subreaper)?;
    sys::stdio_to_devnull().map_err(SetupError::Stdio)?;
    let dir = cfg.socket_dir();
    let create = |path: &Path| {
        fs::create_dir_all(path).map_err(|source| SetupError::CreateDir {
            path: path.to_owned(),
            source,
        })
    };
    create(dir)?;
    // Working in the socket directory lets us bind sockets by short relative names
    // (sun_path is limited to 108 bytes).
    std::env::set_current_dir(dir).map_err(|source| SetupError::Chdir {
        path: dir.to_owned(),
        source,
    })?;
    create(&cfg.runtime_root)?;
    Ok(())
}

fn cleanup_files(cfg: &ShimConfig) {
    let _ = fs::remove_file(cfg.socket_dir().join(CONSOLE_SOCKET));
}

/// Removes libcontainer state left by a previous run whose processes are gone (a shim that
/// crashed); refuses if the old init still runs.
fn clear_stale_state(cfg: &ShimConfig) -> Result<(), SetupError> {
    let dir = cfg.runtime_root.join(&cfg.id);
    if !dir.exists() {
        return Ok(());
    }
    match Container::load(dir.clone()) {
        Ok(c) if c.status() != ContainerStatus::Stopped => {
            return Err(SetupError::AlreadyRunning(cfg.id.clone()))
        }
        Ok(mut c) => {
            let _ = c.delete(true);
        }
        Err(_) => {}
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

fn create(cfg: &ShimConfig) -> Result<Created, StartError> {
    clear_stale_state(cfg)?;
    // The records written when the container starts and ends get their space now, while
    // a full disk can still fail the start (see `util::reserve`).
    for (what, path) in [
        ("exit status", &cfg.exit_file),
        ("start record", &cfg.state_file),
    ] {
        crate::util::reserve(path).map_err(|e| format!("reserving space for the {what}: {e}"))?;
    }
    // Like Docker, a log that cannot be opened fails the start.
    let log = match &cfg.log_path {
        Some(p) => Some(
            JsonLog::open(p, cfg.log_max_size, cfg.log_max_file)
                .map_err(|e| format!("failed to open log file {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let pipe = || pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("shim: pipe: {e}"));

    let mut builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_root_path(&cfg.runtime_root)
        .map_err(|e| error_chain(&e))?;
    // The seccomp profile precompiled and loaded by our executor, or left to libcontainer.
    let mut prepared = match crate::seccomp::cache_dir(&cfg.runtime_root) {
        Some(cache) => {
            crate::seccomp::prepare(&cfg.bundle, &cfg.socket_dir().join("bundle"), &cache)
        }
        None => crate::seccomp::Prepared::unchanged(&cfg.bundle),
    };
    if let Some((filter, drop)) = prepared.init.clone() {
        builder = builder.with_executor(crate::executor::SeccompExecutor::new(filter, drop));
    }
    let mut console = None;
    let mut pipes = None;
    if cfg.tty {
        let _ = fs::remove_file(CONSOLE_SOCKET);
        let l = UnixListener::bind(CONSOLE_SOCKET)
            .map_err(|e| format!("shim: bind console socket: {e}"))?;
        builder = builder.with_console_socket(Some(cfg.socket_dir().join(CONSOLE_SOCKET)));
        console = Some(l);
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        builder = builder.with_stdout(out_w).with_stderr(err_w);
        let stdin = if cfg.open_stdin {
            let (in_r, in_w) = pipe()?;
            builder = builder.with_stdin(in_r);
            Some(in_w)
        } else {
            None
        };
        pipes = Some((out_r, err_r, stdin));
    }

    // The container's processes inherit the shim's name=systemd cgroup (cgroup v1 hosts).
    let systemd = cfg
        .systemd_cgroup
        .as_deref()
        .and_then(crate::cgroupfs::SystemdCgroup::enter);
    // Blocks until the init is set up and waits on the exec fifo; on failure libcontainer
    // removes the cgroup and its state directory itself. The builder (and with it our
    // copies of the container's ends of the pipes) is consumed here.
    let container = builder
        .as_init(&prepared.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| docker_error(&error_chain(&e)));
    let _ = fs::remove_file(CONSOLE_SOCKET);
    if let Some(s) = &systemd {
        s.leave();
        if container.is_err() {
            s.remove();
        }
    }
    let mut container = container?;
    let init_pid = container
        .pid()
        .ok_or_else(|| "shim: container has no init pid".to_string())?;
    // Never start a container whose limits it could change itself (read-only cgroup mounts),
    // nor one whose binds propagate otherwise than asked (see `fixup`).
    let spec: Result<Spec, String> = match prepared.spec.take() {
        Some(spec) => Ok(spec),
        None => Spec::load(prepared.bundle.join("config.json"))
            .map_err(|e| format!("shim: reading the spec: {e}")),
    };
    let fixed = spec.and_then(|spec| {
        crate::fixup::apply(
            init_pid.as_raw(),
            &spec,
            cfg.readonly_cgroups,
            cfg.mount_cgroups_v1,
        )
        .map_err(|e| e.to_string())
    });
    if let Err(e) = fixed {
        let _ = container.delete(true);
        if let Some(s) = &systemd {
            s.remove();
        }
        return Err(e.into());
    }

    let io = match (console, pipes) {
        (Some(l), _) => {
            let master = sys::receive_pty_master(&l, Duration::from_secs(10))
                .map_err(|e| format!("shim: receive pty master: {e}"))?;
            if let Some([h, w]) = cfg.console_size {
                let _ = sys::set_winsize(std::os::fd::AsRawFd::as_raw_fd(&master), h, w);
            }
            InitIo::Tty { master }
        }
        (None, Some((stdout, stderr, stdin))) => InitIo::Pipes {
            stdout,
            stderr,
            stdin,
        },
        (None, None) => return Err("shim: no stdio".into()),
    };

    let cgroup = CgroupInfo::for_container(init_pid.as_raw(), Path::new("/sys/fs/cgroup"))
        .unwrap_or_default();
    let oom_base = cgroup.oom.as_ref().and_then(|o| o.read());

    let _ = fs::remove_file(&cfg.socket);
    // Bound by its name relative to the socket directory (our cwd): sun_path holds only
    // 108 bytes and `<exec-root>/containers/<64 hex>/shim.sock` comes close.
    let sock_name = cfg
        .socket
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.socket.clone());
    let listener = UnixListener::bind(&sock_name)
        .map_err(|e| format!("shim: bind {}: {e}", cfg.socket.display()))?;
    fs::write(cfg.pid_file(), std::process::id().to_string())
        .map_err(|e| format!("shim: write {}: {e}", cfg.pid_file().display()))?;
    Ok(Created {
        init_pid,
        io,
        cgroup,
        oom_base,
        listener,
        log,
        seccomp: prepared.exec,
        systemd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_from_args_or_stdin() {
        assert!(matches!(
            parse_args(&args(&["berth-shim", "--config", "/a.json"])),
            Ok(ConfigSource::Path(p)) if p == Path::new("/a.json")
        ));
        assert!(matches!(
            parse_args(&args(&["berth-shim", "--pooled"])),
            Ok(ConfigSource::Pooled)
        ));
        assert!(matches!(
            parse_args(&args(&["berth-shim"])),
            Err(SetupError::Usage)
        ));
    }

    #[test]
    fn pooled_shim_reads_one_line_and_stops_at_eof() {
        let path = |input: &[u8]| await_config_path(&mut io::Cursor::new(input.to_vec()));
        assert_eq!(path(b"/x/shim.json\n"), Some(PathBuf::from("/x/shim.json")));
        assert_eq!(path(b"/x/a.json\n/y\n"), Some(PathBuf::from("/x/a.json")));
        assert_eq!(path(b""), None, "EOF: the daemon is gone");
        assert_eq!(path(b"/x/half"), None, "no whole line");
        assert_eq!(path(b"\n"), None);
    }
}
