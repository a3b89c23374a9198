//! Issue 16, item 1: a shim killed with SIGKILL must not orphan its container. berthd kills
//! the container's processes through its cgroups, releases what it held, records the exit
//! (137, the monitor lost), emits `die` and applies the restart policy — also when the shim
//! died while berthd was down. `rm -f` never leaves a process behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::*;

/// The shim's pid, from the pid file it keeps in its run directory.
fn shim_pid(d: &Daemon, id: &str) -> i32 {
    let file = d.root.join("exec/containers").join(id).join("shim.pid");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .expect("shim pid")
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purposes (its parent reaps it).
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The container's cgroup directories that exist, in every hierarchy.
fn cgroup_dirs(d: &Daemon, id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = m.path().join(&d.cgroup_parent).join(id);
        if dir.is_dir() {
            out.push(dir);
        }
    }
    let unified = Path::new("/sys/fs/cgroup").join(&d.cgroup_parent).join(id);
    if unified.is_dir() {
        out.push(unified);
    }
    out
}

/// A running container with a child process besides its init, and both pids.
fn start_container(d: &Daemon, name: &str, extra: &[&str]) -> (String, i32, i32) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", "sleep 1000 & echo run; wait"]);
    let out = d.docker(&args);
    assert_ok(&out, "run");
    let id = stdout(&out).trim().to_string();
    let init: i32 = inspect(d, name, "{{.State.Pid}}").parse().expect("pid");
    let mut child = 0;
    assert!(
        eventually(Duration::from_secs(5), || {
            child = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            child > 0
        }),
        "the container's sleep did not start"
    );
    (id, init, child)
}

fn assert_cleaned_up(d: &Daemon, name: &str, id: &str, pids: &[i32]) {
    assert!(
        eventually(Duration::from_secs(10), || pids.iter().all(|p| !alive(*p))),
        "container processes {pids:?} outlived their shim"
    );
    assert!(
        eventually(Duration::from_secs(5), || cgroup_dirs(d, id).is_empty()),
        "cgroups left: {:?}",
        cgroup_dirs(d, id)
    );
    assert!(
        !d.root
            .join("data/containers")
            .join(id)
            .join("fs/merged/bin")
            .exists(),
        "rootfs still mounted"
    );
    let _ = name;
}

#[test]
fn a_killed_shim_takes_its_container_down_cleanly() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let since = inspect_time(&d);
    let (id, init, child) = start_container(&d, "orphan", &[]);
    let shim = shim_pid(&d, &id);
    sigkill(shim);
    assert!(
        eventually(Duration::from_secs(10), || inspect(
            &d,
            "orphan",
            "{{.State.Status}}"
        ) == "exited"),
        "state: {}",
        inspect(&d, "orphan", "{{.State.Status}}")
    );
    assert_cleaned_up(&d, "orphan", &id, &[init, child]);
    assert_eq!(inspect(&d, "orphan", "{{.State.ExitCode}}"), "137");
    assert!(
        inspect(&d, "orphan", "{{.State.Error}}").contains("monitor lost"),
        "{}",
        inspect(&d, "orphan", "{{.State.Error}}")
    );
    let out = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &inspect_time(&d),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    assert!(stdout(&out).contains("die 137"), "events: {}", stdout(&out));
    // The container starts again (nothing of the old run is in the way) and rm -f ends it.
    assert_ok(&d.docker(&["start", "orphan"]), "start again");
    assert_eq!(inspect(&d, "orphan", "{{.State.Status}}"), "running");
    let init2: i32 = inspect(&d, "orphan", "{{.State.Pid}}")
        .parse()
        .expect("pid");
    assert_ok(&d.docker(&["rm", "-f", "orphan"]), "rm -f");
    assert!(eventually(Duration::from_secs(5), || !alive(init2)));
    assert!(
        cgroup_dirs(&d, &id).is_empty(),
        "{:?}",
        cgroup_dirs(&d, &id)
    );
}

#[test]
fn the_restart_policy_applies_after_a_lost_shim() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let (id, init, child) = start_container(&d, "phoenix", &["--restart", "always"]);
    sigkill(shim_pid(&d, &id));
    assert!(eventually(Duration::from_secs(10), || !alive(init) && !alive(child)));
    assert!(
        eventually(Duration::from_secs(10), || {
            inspect(&d, "phoenix", "{{.RestartCount}}") == "1"
                && inspect(&d, "phoenix", "{{.State.Status}}") == "running"
        }),
        "restarted: {} {}",
        inspect(&d, "phoenix", "{{.RestartCount}}"),
        inspect(&d, "phoenix", "{{.State.Status}}")
    );
    assert_ok(&d.docker(&["rm", "-f", "phoenix"]), "rm -f");
    assert!(eventually(Duration::from_secs(5), || cgroup_dirs(&d, &id).is_empty()));
}

#[test]
fn a_shim_killed_while_berthd_is_down_is_noticed_at_start() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let (id, init, child) = start_container(&d, "downtime", &[]);
    let shim = shim_pid(&d, &id);
    d.kill9();
    sigkill(shim);
    assert!(eventually(Duration::from_secs(5), || !alive(shim)));
    // The container's processes live on until berthd comes back.
    assert!(alive(init) && alive(child));
    d.restart();
    assert_eq!(inspect(&d, "downtime", "{{.State.Status}}"), "exited");
    assert_cleaned_up(&d, "downtime", &id, &[init, child]);
    assert_eq!(inspect(&d, "downtime", "{{.State.ExitCode}}"), "137");
    assert_ok(&d.docker(&["rm", "downtime"]), "rm");
}

/// The daemon's clock, for `events --since/--until`.
fn inspect_time(d: &Daemon) -> String {
    let out = d.docker(&["info", "--format", "{{.SystemTime}}"]);
    assert_ok(&out, "info");
    stdout(&out).trim().to_string()
}
