//! The acceptance scenarios, written once and driven through either CLI: the real docker CLI
//! (acceptance 2) and `berth` (acceptance 3) must behave the same against berthd.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::*;

/// Which command-line client drives the daemon.
#[derive(Clone, Copy, Debug)]
pub enum Cli {
    Docker,
    Berth,
}

impl Cli {
    pub fn path(self) -> PathBuf {
        match self {
            Cli::Docker => PathBuf::from(DOCKER),
            Cli::Berth => bin("berth"),
        }
    }

    pub fn run(self, d: &Daemon, args: &[&str]) -> Output {
        d.run(&self.path(), args, None)
    }

    pub fn run_stdin(self, d: &Daemon, args: &[&str], input: &[u8]) -> Output {
        d.run(&self.path(), args, Some(input))
    }

    /// Runs `args` under a pseudo-terminal (`script`), for `-t`.
    pub fn run_tty(self, d: &Daemon, args: &str) -> Output {
        let cmd = format!("{} {args}", self.path().display());
        d.run(
            "/usr/bin/script".as_ref(),
            &["-qec", &cmd, "/dev/null"],
            None,
        )
    }
}

/// load; run with exit codes, stdin, a tty, stderr, a missing command; `--rm` leaves nothing.
pub fn run_basics(d: &Daemon, cli: Cli) {
    let archive = busybox_archive();
    let out = cli.run(d, &["load", "-i", archive.to_str().expect("utf8 path")]);
    assert_ok(&out, "load");
    assert!(
        stdout(&out).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&out)
    );

    let out = cli.run(d, &["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_ok(&out, "run echo");
    assert_eq!(stdout(&out), "hello from berth\n");

    let out = cli.run(d, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    let out = cli.run_stdin(d, &["run", "--rm", "-i", "busybox", "cat"], b"hi\n");
    assert_ok(&out, "run -i cat");
    assert_eq!(stdout(&out), "hi\n");

    let out = cli.run(
        d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(stdout(&out), "out\n");
    assert!(
        stderr(&out).contains("err\n"),
        "stderr is demultiplexed: {}",
        stderr(&out)
    );

    let out = cli.run_tty(d, "run --rm -t busybox tty");
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "tty expected: {} {}",
        stdout(&out),
        stderr(&out)
    );

    let out = cli.run(d, &["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );

    let out = cli.run(d, &["ps", "-aq"]);
    assert_eq!(stdout(&out).trim(), "", "containers left behind");
}

/// `run -d`, logs, `logs -f`, exec (PID 1, exit code, -it), top, stop within its timeout,
/// inspect, ps filters, rm.
pub fn detached_lifecycle(d: &Daemon, cli: Cli) {
    let out = cli.run(
        d,
        &[
            "run",
            "-d",
            "--name",
            "tt",
            "busybox",
            "sh",
            "-c",
            "while :; do echo tick; sleep 1; done",
        ],
    );
    assert_ok(&out, "run -d");
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "full id printed: {id}");

    assert!(eventually(Duration::from_secs(10), || stdout(
        &cli.run(d, &["logs", "tt"])
    )
    .contains("tick")));

    // logs -f streams until stopped: bound it in time and expect more than one tick.
    let path = cli.path();
    let out = d.run(
        "/usr/bin/timeout".as_ref(),
        &["3", path.to_str().expect("utf8"), "logs", "-f", "tt"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(124),
        "logs -f should still be following"
    );
    assert!(
        stdout(&out).matches("tick").count() >= 2,
        "{}",
        stdout(&out)
    );

    let out = cli.run(d, &["exec", "tt", "ps"]);
    assert_ok(&out, "exec ps");
    let first = stdout(&out).lines().nth(1).unwrap_or_default().to_string();
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("while :"),
        "PID 1 is the loop: {}",
        stdout(&out)
    );

    let out = cli.run(d, &["exec", "tt", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));

    let out = cli.run_tty(d, "exec -it tt tty");
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "exec -it gets a tty: {}",
        stdout(&out)
    );

    let out = cli.run(d, &["top", "tt"]);
    assert_ok(&out, "top");
    assert!(
        stdout(&out).starts_with("UID") && stdout(&out).contains("while :"),
        "{}",
        stdout(&out)
    );

    let out = cli.run(d, &["ps"]);
    assert!(stdout(&out).starts_with("CONTAINER ID"), "{}", stdout(&out));
    assert!(stdout(&out).contains(" tt\n"), "{}", stdout(&out));

    let started = std::time::Instant::now();
    assert_ok(&cli.run(d, &["stop", "-t", "2", "tt"]), "stop");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop honours its timeout"
    );

    let out = cli.run(
        d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.User}} {{.State.ExitCode}}",
            "tt",
        ],
    );
    assert_eq!(stdout(&out), "exited  137\n");

    let out = cli.run(d, &["ps", "-a", "--filter", "status=exited", "-q"]);
    assert_eq!(stdout(&out).trim(), &id[..12]);
    let out = cli.run(d, &["ps", "-q"]);
    assert_eq!(stdout(&out).trim(), "", "nothing running");

    assert_ok(&cli.run(d, &["rename", "tt", "t2"]), "rename");
    assert_ok(&cli.run(d, &["rm", "t2"]), "rm");
    assert!(!cli.run(d, &["inspect", "t2"]).status.success());
}

/// save → rmi → load gives the same image id, and the image still runs.
pub fn save_and_load(d: &Daemon, cli: Cli) {
    let id = stdout(&cli.run(d, &["images", "-q", "--no-trunc", "busybox"]))
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let archive = d.root.join("saved.tar");
    assert_ok(
        &cli.run(
            d,
            &["save", "-o", archive.to_str().expect("utf8"), "busybox"],
        ),
        "save",
    );
    assert_ok(&cli.run(d, &["rmi", "busybox"]), "rmi");
    assert_eq!(stdout(&cli.run(d, &["images", "-q"])).trim(), "");
    let out = cli.run(d, &["load", "-i", archive.to_str().expect("utf8")]);
    assert_ok(&out, "load of a saved archive");
    assert!(
        stdout(&out).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&out)
    );
    let again = stdout(&cli.run(d, &["images", "-q", "--no-trunc", "busybox"]))
        .trim()
        .to_string();
    assert_eq!(again, id, "same image id after save → load");
    let out = cli.run(d, &["run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!(stdout(&out), "ok\n");
}
