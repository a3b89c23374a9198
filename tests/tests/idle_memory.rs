//! An idle berthd hands back what its last burst of work left (issue 17): its free heap and the
//! page mappings of the code it ran, after its first quiet second, and it keeps working after.

use std::time::Duration;

use berth_tests::*;

/// A field of `/proc/<pid>/status`, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[test]
fn an_idle_daemon_releases_memory_and_keeps_working() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    for _ in 0..5 {
        assert_ok(
            &d.docker(&["run", "--rm", "--network", "none", "busybox", "true"]),
            "docker run",
        );
    }
    let pid = d.pid();
    let busy = status_kb(pid, "RssFile");
    let released = eventually(Duration::from_secs(15), || {
        status_kb(pid, "RssFile") * 2 < busy
    });
    assert!(
        released,
        "file-backed RSS after the runs {busy} kB, still {} kB after 15 s of quiet",
        status_kb(pid, "RssFile")
    );
    // The code comes back as it is needed.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "again",
    ]);
    assert_eq!(ok_trimmed(&out, "docker run after idle"), "again");
    assert_ok(&d.docker(&["ps", "-a"]), "docker ps");
}
