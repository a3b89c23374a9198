//! Issue 17: what berthd makes ahead of need so that a start skips it. Shims spawned ahead
//! (`--shim-pool N`, default 2): a start hands one its config instead of spawning a shim;
//! containers start through them (one after another and in parallel, also with the pool
//! off), and a berthd killed with SIGKILL leaves no pooled shim behind while its containers
//! keep running. Container directories made ahead (`<data-root>/containers-pool`): a create
//! takes one by a rename, and neither a crash nor a shutdown leaves them behind.

use std::path::Path;
use std::time::Duration;

use berth_tests::*;

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Whether `pid` is a live `berth-shim --pooled` (a zombie's cmdline is empty).
fn is_pooled_shim(pid: u32) -> bool {
    let args = cmdline(pid);
    args.first().is_some_and(|a| a.ends_with("berth-shim")) && args.iter().any(|a| a == "--pooled")
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the `(comm)` field: state, then the parent's pid.
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pooled shims waiting in `berthd` (its children running `berth-shim --pooled`).
fn pooled_shims_of(berthd: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(berthd) && is_pooled_shim(pid))
        .collect()
}

/// The monitor (`shim.pid`) of the running container `name`.
fn monitor_of(d: &Daemon, name: &str) -> u32 {
    let id = inspect(d, name, "{{.Id}}");
    let file = d.root.join("exec/containers").join(&id).join("shim.pid");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .expect("shim pid")
}

fn run_echo(d: &Daemon, word: &str) {
    let out = d.berth(&["run", "--rm", "busybox", "echo", word]);
    assert_eq!(ok_trimmed(&out, "berth run --rm"), word);
}

/// The nice value of `pid` (field 19 of `/proc/<pid>/stat`).
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("comm").1;
    after
        .split_whitespace()
        .nth(16)
        .expect("nice")
        .parse()
        .expect("a number")
}

fn starts_with_pool(size: usize) {
    let d = Daemon::start_with_args(&["--shim-pool", &size.to_string()]);
    d.load_busybox();
    if size > 0 {
        assert!(
            eventually(Duration::from_secs(10), || pooled_shims_of(d.pid()).len()
                == size),
            "{size} pooled shims wanted, found {:?}",
            pooled_shims_of(d.pid())
        );
    } else {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(pooled_shims_of(d.pid()), Vec::<u32>::new(), "pool off");
    }
    for i in 0..5 {
        run_echo(&d, &format!("hi-{i}"));
    }
    std::thread::scope(|s| {
        for i in 0..4 {
            let d = &d;
            s.spawn(move || run_echo(d, &format!("parallel-{i}")));
        }
    });
    // A container's monitor is the forked child of the shim that launched it: of a pooled
    // shim when the pool is on, of a `--config` one when it is off.
    let waiting = pooled_shims_of(d.pid());
    let out = d.berth(&["run", "-d", "--name", "held", "busybox", "sleep", "1000"]);
    assert_ok(&out, "run -d");
    let monitor = monitor_of(&d, "held");
    let args = cmdline(monitor);
    // Pooled shims wait at the lowest priority; the one that launched a container was given
    // the daemon's back first, so the monitor and the container run at berthd's (0 here).
    let init: u32 = inspect(&d, "held", "{{.State.Pid}}").parse().expect("pid");
    assert_eq!(nice_of(monitor), 0, "the monitor's nice value");
    assert_eq!(nice_of(init), 0, "the container's nice value");
    if size > 0 {
        assert!(args.iter().any(|a| a == "--pooled"), "monitor {args:?}");
        assert!(
            pooled_shims_of(d.pid()).iter().all(|&p| nice_of(p) == 19),
            "waiting shims are at the lowest priority"
        );
        assert!(
            eventually(Duration::from_secs(10), || {
                let now = pooled_shims_of(d.pid());
                now.len() == size && now.iter().any(|p| !waiting.contains(p))
            }),
            "the pool was not refilled: {:?} (before: {waiting:?})",
            pooled_shims_of(d.pid())
        );
    } else {
        assert!(args.iter().any(|a| a == "--config"), "monitor {args:?}");
    }
    assert_ok(&d.berth(&["rm", "-f", "held"]), "rm -f");
}

#[test]
fn containers_start_through_pooled_shims() {
    if !is_root() {
        return;
    }
    starts_with_pool(2);
}

#[test]
fn containers_start_with_the_pool_off() {
    if !is_root() {
        return;
    }
    starts_with_pool(0);
}

#[test]
fn a_killed_berthd_leaves_no_pooled_shim() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start_with_args(&["--shim-pool", "3"]);
    d.load_busybox();
    let out = d.berth(&[
        "run", "-d", "--name", "survivor", "busybox", "sleep", "1000",
    ]);
    assert_ok(&out, "run -d");
    let init: u32 = inspect(&d, "survivor", "{{.State.Pid}}")
        .parse()
        .expect("pid");
    let monitor = monitor_of(&d, "survivor");
    let berthd = d.pid();
    assert!(
        eventually(Duration::from_secs(10), || pooled_shims_of(berthd).len()
            == 3),
        "pooled shims: {:?}",
        pooled_shims_of(berthd)
    );
    let pooled = pooled_shims_of(berthd);
    d.kill9();
    assert!(
        eventually(Duration::from_secs(2), || pooled
            .iter()
            .all(|&p| !is_pooled_shim(p))),
        "pooled shims left after kill -9 of berthd: {:?}",
        pooled
            .iter()
            .filter(|&&p| is_pooled_shim(p))
            .collect::<Vec<_>>()
    );
    for (what, pid) in [("init", init), ("shim", monitor)] {
        assert!(
            Path::new(&format!("/proc/{pid}/cmdline")).exists() && !cmdline(pid).is_empty(),
            "the running container's {what} ({pid}) died with berthd"
        );
    }
    d.restart();
    assert_eq!(
        inspect(&d, "survivor", "{{.State.Running}}"),
        "true",
        "the container after the restart"
    );
    assert_ok(&d.berth(&["rm", "-f", "survivor"]), "rm -f");
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    dir_entries(dir)
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn prepared_container_dirs_are_taken_and_leave_nothing_behind() {
    if !is_root() {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    let pool = d.data_root.join("containers-pool");
    assert!(
        eventually(Duration::from_secs(10), || entries(&pool).len() == 2),
        "prepared dirs: {:?}",
        entries(&pool)
    );
    let before = entries(&pool);
    let out = d.berth(&["run", "-d", "--name", "kept", "busybox", "sleep", "1000"]);
    assert_ok(&out, "run -d");
    let id = inspect(&d, "kept", "{{.Id}}");
    assert!(
        before.iter().any(|e| !pool.join(e).exists()),
        "the create took no prepared dir: {before:?} still there"
    );
    for sub in ["fs/upper", "fs/work", "fs/merged"] {
        assert!(
            d.data_root.join("containers").join(&id).join(sub).is_dir(),
            "{sub}"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || entries(&pool).len() == 2),
        "not refilled: {:?}",
        entries(&pool)
    );
    let before_kill = entries(&pool);
    d.kill9();
    std::fs::create_dir_all(pool.join("stale/fs/upper")).expect("stale dir");
    std::fs::write(pool.join("stale/fs/upper/file"), "x").expect("stale file");
    d.restart();
    for e in before_kill.iter().chain(["stale".to_string()].iter()) {
        assert!(!pool.join(e).exists(), "{e} left by the killed daemon");
    }
    assert!(
        eventually(Duration::from_secs(10), || entries(&pool).len() == 2),
        "after the restart: {:?}",
        entries(&pool)
    );
    run_echo(&d, "after-restart");
    assert_eq!(inspect(&d, "kept", "{{.State.Running}}"), "true");
    assert_ok(&d.berth(&["rm", "-f", "kept"]), "rm -f");
    d.stop();
    assert!(!pool.exists(), "left at shutdown: {:?}", entries(&pool));
}
