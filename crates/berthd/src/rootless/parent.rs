//! The outer half of a rootless berthd: the process the user started. It checks the
//! prerequisites, re-executes berthd as the inner half (which unshares its namespaces,
//! `child.rs`), writes the inner half's id maps with `newuidmap`/`newgidmap` (which only
//! this side, outside the namespace, may do), attaches slirp4netns or pasta (`net.rs`) to
//! its network namespace,
//! then lets it go on. Afterwards it serves the port driver (`ports.rs`: published ports
//! opened on the host), passes signals on, and exits with the inner daemon's status.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};

use super::checks::Prereqs;
use super::{net, ports, subid, CHILD_ENV, HOST_LOOPBACK_ENV};

/// Runs the outer half until the inner daemon ends; returns the exit code to exit with.
pub fn run(exec_root: &Path) -> Result<i32> {
    let pre = Prereqs::check().map_err(anyhow::Error::msg)?;
    let state = exec_root.join("rootless");
    // A live port driver socket is another rootless berthd on this exec root; starting a
    // second would take the socket from under the first one's daemon.
    if std::os::unix::net::UnixStream::connect(state.join(ports::DRIVER_SOCKET)).is_ok() {
        bail!(
            "another rootless berthd is running on {} (its port driver answers at {})",
            exec_root.display(),
            state.join(ports::DRIVER_SOCKET).display()
        );
    }
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(exec_root, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", exec_root.display()))?;
    }
    let (child_read, parent_write) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (parent_read, child_write) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let mut child = spawn_inner(&child_read, &child_write)?;
    drop((child_read, child_write));
    let mut from_child = File::from(parent_read);
    let mut to_child = File::from(parent_write);
    let pid = child.id();
    let mut buf = [0u8; 1];
    if from_child.read(&mut buf).unwrap_or(0) != 1 {
        return Ok(exit_code(child.wait()?));
    }
    // Before the network driver starts, so that it lands in the daemon's leaf too.
    let cgroups = super::cgroups::delegate(pid);
    let network = match setup(&pre, pid, &state) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The port driver answers before the daemon runs: restoring containers publishes ports.
    let driver = {
        let _in_rt = rt.enter();
        ports::serve_driver(
            &state.join(ports::DRIVER_SOCKET),
            &state.join(ports::FORWARD_SOCKET),
        )
    };
    let driver = match driver {
        Ok(d) => d,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    to_child
        .write_all(&super::release_message(&cgroups))
        .context("releasing the inner daemon")?;
    drop((to_child, from_child));
    let userns = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    let code = rt.block_on(supervise(child, driver));
    if let Some(ns) = userns {
        end_namespace(&ns);
    }
    drop(network);
    let _ = std::fs::remove_file(state.join(ports::DRIVER_SOCKET));
    code
}

/// Re-executes this berthd with the same arguments as the inner half, the pipe ends named
/// in `_BERTH_ROOTLESS_CHILD`.
fn spawn_inner(read: &OwnedFd, write: &OwnedFd) -> Result<Child> {
    let exe = std::env::current_exe().context("locating berthd")?;
    let (r, w) = (read.as_raw_fd(), write.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(CHILD_ENV, format!("{r}:{w}"))
        .stdin(Stdio::null());
    // SAFETY: between fork and exec only fcntl(2), which is async-signal-safe, is called,
    // on two descriptors this process owns.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [r, w] {
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            }
            Ok(())
        });
    }
    cmd.spawn().context("starting the inner berthd")
}

/// Writes the inner daemon's id maps and attaches the network driver (slirp4netns or
/// pasta, `net.rs`) to its network namespace.
fn setup(pre: &Prereqs, pid: u32, state: &Path) -> Result<net::Network> {
    for (tool, own, ranges) in [
        (&pre.newuidmap, pre.uid, &pre.subuids),
        (&pre.newgidmap, pre.gid, &pre.subgids),
    ] {
        let out = Command::new(tool)
            .arg(pid.to_string())
            .args(subid::map_args(own, ranges))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", tool.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed: {} (is it setuid root or does it have its file capabilities? scripts/rootless-setup.sh checks)",
                tool.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let (kind, bin) = &pre.net;
    net::Network::start(*kind, bin, pid, state, host_loopback())
}

/// `BERTHD_ROOTLESS_DISABLE_HOST_LOOPBACK=false` (Docker's
/// `DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK`) lets the daemon's namespace reach
/// the host's loopback as 10.0.2.2 (e.g. a registry on the host's localhost). Off by
/// default: whatever listens on the host's loopback trusts its callers to be local.
fn host_loopback() -> bool {
    std::env::var(HOST_LOOPBACK_ENV).is_ok_and(|v| matches!(v.as_str(), "false" | "0"))
}

/// Serves the port driver and passes SIGTERM, SIGINT and SIGHUP on to the inner daemon
/// until it exits; returns its exit code.
async fn supervise(mut child: Child, driver: tokio::task::JoinHandle<()>) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let pid = Pid::from_raw(child.id() as i32);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let waiter = tokio::task::spawn_blocking(move || child.wait());
    tokio::pin!(waiter);
    let status = loop {
        tokio::select! {
            st = &mut waiter => break st.context("waiting for the inner berthd")??,
            _ = term.recv() => { let _ = kill(pid, Signal::SIGTERM); }
            _ = int.recv() => { let _ = kill(pid, Signal::SIGINT); }
            _ = hup.recv() => { let _ = kill(pid, Signal::SIGHUP); }
        }
    };
    driver.abort();
    Ok(exit_code(status))
}

/// Ends what the daemon leaves in its user namespace (shims and containers): nothing in there
/// is reachable once the namespace's network and mounts lose their daemon, and a restarted
/// daemon makes new namespaces (as with Docker rootless, containers do not outlive their
/// daemon; restart policies bring them back with the next one). SIGTERM, then SIGKILL.
fn end_namespace(ns: &Path) {
    let members = || -> Vec<Pid> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|l| l == ns))
            .map(Pid::from_raw)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut signal = Signal::SIGTERM;
    loop {
        let left = members();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            signal = Signal::SIGKILL;
        }
        for p in left {
            let _ = kill(p, signal);
        }
        if signal == Signal::SIGKILL && Instant::now() > deadline + Duration::from_secs(5) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}
