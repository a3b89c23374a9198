//! The rootless daemon's way out: a user-mode network stack attached to the inner daemon's
//! network namespace from outside, `slirp4netns` or `pasta` (Debian `passt`), as rootlesskit's
//! `--net=slirp4netns|pasta`. Both give the namespace the same network (`tap0`, 10.0.2.100/24,
//! gateway 10.0.2.2, DNS forwarder 10.0.2.3, MTU 65520), so nothing inside depends on which
//! one runs. Published ports do not go through either: berth's port driver (`ports.rs`)
//! carries them.
//!
//! `BERTHD_ROOTLESS_NET=slirp4netns|pasta` (Docker's `DOCKERD_ROOTLESS_ROOTLESSKIT_NET`)
//! chooses; unset, the first installed of slirp4netns and pasta is used.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};

use super::checks::find_program;
use super::{SLIRP_CIDR, SLIRP_DNS, SLIRP_MTU, TAP};

/// berthd's environment variable choosing the network driver.
pub const NET_ENV: &str = "BERTHD_ROOTLESS_NET";

/// The namespace's address and gateway on [`TAP`] (in [`SLIRP_CIDR`]).
const ADDRESS: &str = "10.0.2.100";
const GATEWAY: &str = "10.0.2.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slirp4netns,
    Pasta,
}

impl Kind {
    pub fn program(self) -> &'static str {
        match self {
            Kind::Slirp4netns => "slirp4netns",
            Kind::Pasta => "pasta",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Kind::Slirp4netns => "slirp4netns",
            Kind::Pasta => "passt",
        }
    }
}

/// The driver to use: `choice` is the value of [`NET_ENV`] (`None` or empty: the first of
/// slirp4netns and pasta that `find` locates, as dockerd-rootless.sh prefers slirp4netns).
/// The error says what to install or what the accepted values are.
pub fn choose(
    choice: Option<&str>,
    find: impl Fn(&str) -> Option<PathBuf>,
) -> Result<(Kind, PathBuf), String> {
    let wanted = match choice.unwrap_or("") {
        "" => None,
        "slirp4netns" => Some(Kind::Slirp4netns),
        "pasta" => Some(Kind::Pasta),
        other => {
            return Err(format!(
                "{NET_ENV}={other:?} is not a network driver: use slirp4netns or pasta"
            ))
        }
    };
    let candidates = match wanted {
        Some(k) => vec![k],
        None => vec![Kind::Slirp4netns, Kind::Pasta],
    };
    for k in &candidates {
        if let Some(p) = find(k.program()) {
            return Ok((*k, p));
        }
    }
    Err(match wanted {
        Some(k) => format!(
            "{NET_ENV}={}, but {} is not installed (Debian/Ubuntu: apt-get install {})",
            k.program(),
            k.program(),
            k.package()
        ),
        None => "neither slirp4netns nor pasta is installed (Debian/Ubuntu: apt-get install slirp4netns, or passt for pasta)".to_string(),
    })
}

/// [`choose`] from berthd's environment and `PATH`.
pub fn choose_from_env() -> Result<(Kind, PathBuf), String> {
    choose(std::env::var(NET_ENV).ok().as_deref(), find_program)
}

/// The network driver attached to the inner daemon; it exits when this value is dropped.
pub struct Network {
    child: Child,
    /// slirp4netns' exit pipe: it exits when the write end closes (also when the outer
    /// process dies).
    _exit: Option<OwnedFd>,
}

impl Network {
    /// Attaches `kind` (at `bin`) to the network namespace of process `pid`; its log goes to
    /// `<state>/<program>.log`. `host_loopback`: whether 10.0.2.2 reaches the host's loopback.
    pub fn start(
        kind: Kind,
        bin: &Path,
        pid: u32,
        state: &Path,
        host_loopback: bool,
    ) -> Result<Network> {
        let log_path = state.join(format!("{}.log", kind.program()));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        match kind {
            Kind::Slirp4netns => slirp4netns(bin, pid, log, host_loopback, read_log),
            Kind::Pasta => pasta(bin, pid, log, host_loopback, read_log),
        }
    }
}

fn slirp4netns(
    bin: &Path,
    pid: u32,
    log: File,
    host_loopback: bool,
    read_log: impl Fn() -> String,
) -> Result<Network> {
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (exit_r, exit_w) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (rfd, efd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
    let mut cmd = Command::new(bin);
    cmd.args([
        "--configure",
        &format!("--mtu={SLIRP_MTU}"),
        &format!("--cidr={SLIRP_CIDR}"),
    ]);
    if !host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    cmd.args([
        &format!("--ready-fd={rfd}"),
        &format!("--exit-fd={efd}"),
        &pid.to_string(),
        TAP,
    ])
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    // SAFETY: only fcntl(2), async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [rfd, efd] {
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting slirp4netns")?;
    drop((ready_w, exit_r));
    let mut ready = File::from(ready_r);
    let mut b = [0u8; 1];
    let started = Instant::now();
    if ready.read(&mut b).unwrap_or(0) != 1 {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "slirp4netns did not come up after {:?}: {}",
            started.elapsed(),
            read_log().trim()
        );
    }
    Ok(Network {
        child,
        _exit: Some(exit_w),
    })
}

/// pasta's arguments for the namespace of `pid` (the same network as slirp4netns gives):
/// no port forwarding of its own in either direction (published ports go through berth's
/// port driver, and the namespace must not reach the host's loopback through its own), IPv4
/// only, in the foreground so that this process owns it.
pub fn pasta_args(pid: u32, host_loopback: bool) -> Vec<String> {
    let prefix = SLIRP_CIDR.rsplit_once('/').map_or("24", |(_, p)| p);
    let mut a: Vec<String> = [
        "--foreground",
        "--config-net",
        &format!("--ns-ifname={TAP}"),
        &format!("--mtu={SLIRP_MTU}"),
        &format!("--address={ADDRESS}"),
        &format!("--netmask={prefix}"),
        &format!("--gateway={GATEWAY}"),
        &format!("--dns-forward={SLIRP_DNS}"),
        "--ipv4-only",
        "--tcp-ports=none",
        "--udp-ports=none",
        "--tcp-ns=none",
        "--udp-ns=none",
    ]
    .map(String::from)
    .to_vec();
    if !host_loopback {
        // Without it, connections to the gateway's address reach the host's loopback.
        a.push("--no-map-gw".into());
    }
    a.push(pid.to_string());
    a
}

/// pasta in the foreground, with the parent-death signal (it survives pasta's joining the
/// namespace: checked on Debian 12's passt), so that it ends with the outer process however
/// that ends. Ready once the namespace has its default route through [`TAP`].
fn pasta(
    bin: &Path,
    pid: u32,
    log: File,
    host_loopback: bool,
    read_log: impl Fn() -> String,
) -> Result<Network> {
    let mut cmd = Command::new(bin);
    cmd.args(pasta_args(pid, host_loopback))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: only prctl(2), async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting pasta")?;
    let started = Instant::now();
    loop {
        let routes = std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap_or_default();
        if has_default_route(&routes, TAP) {
            return Ok(Network { child, _exit: None });
        }
        let gone = child.try_wait().ok().flatten();
        if gone.is_some() || started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "pasta did not come up after {:?}{}: {}",
                started.elapsed(),
                gone.map(|s| format!(" ({s})")).unwrap_or_default(),
                read_log().trim()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `/proc/<pid>/net/route` lists a default route through `dev`.
pub fn has_default_route(routes: &str, dev: &str) -> bool {
    routes.lines().skip(1).any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some(dev) && f.next() == Some("00000000")
    })
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<'a>(names: &'a [&'a str]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |n| {
            names
                .contains(&n)
                .then(|| PathBuf::from("/usr/bin").join(n))
        }
    }

    #[test]
    fn unset_prefers_slirp4netns_then_pasta() {
        let both = choose(None, found(&["slirp4netns", "pasta"])).unwrap();
        assert_eq!(both.0, Kind::Slirp4netns);
        let pasta = choose(Some(""), found(&["pasta"])).unwrap();
        assert_eq!(pasta, (Kind::Pasta, PathBuf::from("/usr/bin/pasta")));
        let none = choose(None, found(&[])).unwrap_err();
        assert!(none.contains("neither slirp4netns nor pasta"), "{none}");
    }

    #[test]
    fn a_chosen_driver_must_be_installed() {
        let got = choose(Some("pasta"), found(&["slirp4netns", "pasta"])).unwrap();
        assert_eq!(got.0, Kind::Pasta);
        let err = choose(Some("pasta"), found(&["slirp4netns"])).unwrap_err();
        assert!(err.contains("apt-get install passt"), "{err}");
        let err = choose(Some("vpnkit"), found(&["slirp4netns"])).unwrap_err();
        assert!(err.contains("use slirp4netns or pasta"), "{err}");
    }

    #[test]
    fn pasta_forwards_no_ports_and_hides_the_host_loopback() {
        let a = pasta_args(42, false);
        for want in [
            "--tcp-ports=none",
            "--udp-ports=none",
            "--tcp-ns=none",
            "--udp-ns=none",
            "--no-map-gw",
            "--address=10.0.2.100",
            "--netmask=24",
            "--dns-forward=10.0.2.3",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} missing from {a:?}");
        }
        assert_eq!(a.last().map(String::as_str), Some("42"));
        assert!(!pasta_args(42, true).iter().any(|x| x == "--no-map-gw"));
    }

    #[test]
    fn default_route_is_read_from_proc() {
        let routes = "Iface\tDestination\tGateway \tFlags\n\
                      tap0\t000200C0\t00000000\t0001\n";
        assert!(!has_default_route(routes, "tap0"));
        let routes = format!("{routes}tap0\t00000000\t0202000A\t0003\n");
        assert!(has_default_route(&routes, "tap0"));
        assert!(!has_default_route(&routes, "eth0"));
    }
}
