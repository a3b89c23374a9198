//! Issue 17: network namespaces made ahead of need (`berthd --netns-pool`, 2 by default) serve
//! the starts of containers on a bridge network; a graceful stop leaves none mounted, and
//! what a SIGKILLed berthd left is unmounted when it starts again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::*;

fn pool_dir(d: &Daemon) -> PathBuf {
    d.root.join("exec/netns-pool")
}

/// The pool's entries (files the namespaces are bind-mounted on).
fn entries(d: &Daemon) -> Vec<PathBuf> {
    dir_entries(&pool_dir(d))
}

fn mounted(p: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    berth_sys::mountinfo::parse(&text)
        .iter()
        .any(|m| m.mount_point == p && m.fstype == "nsfs")
}

fn ready(d: &Daemon, n: usize) -> bool {
    let e = entries(d);
    e.len() == n && e.iter().all(|p| mounted(p))
}

#[test]
fn pooled_namespaces_serve_bridge_starts_and_leave_nothing_behind() {
    if skip_when("netns_pool", (!is_root()).then(|| "needs root".to_string())) {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox();
    assert!(
        eventually(Duration::from_secs(10), || ready(&d, 2)),
        "two namespaces ready: {:?}",
        entries(&d)
    );
    let prefix = d.bip.rsplit_once('.').expect("an IPv4 bip").0.to_string();
    for i in 0..3 {
        let out = d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -o -4 addr show eth0; ip -o link show lo",
        ]);
        let text = ok_trimmed(&out, &format!("run {i} on the bridge"));
        assert!(text.contains(&format!("inet {prefix}.")), "{text}");
        assert!(text.contains("UP"), "lo is up: {text}");
    }
    // `--network none` joins a ready namespace too: only `lo`, up, nothing of the host's.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    let text = ok_trimmed(&out, "run --network none");
    let links: Vec<&str> = text.lines().collect();
    assert_eq!(links.len(), 1, "{text}");
    assert!(
        links[0].contains(": lo:") && links[0].contains("UP"),
        "{text}"
    );
    assert!(
        eventually(Duration::from_secs(10), || ready(&d, 2)),
        "refilled: {:?}",
        entries(&d)
    );
    // A container started from the pool keeps its namespace at the usual place.
    assert_ok(
        &d.docker(&["run", "-d", "--name", "web", "busybox", "sleep", "300"]),
        "run -d",
    );
    let id = inspect(&d, "web", "{{.Id}}");
    let ns = d.root.join("exec/netns").join(&id);
    assert!(mounted(&ns), "{} mounted", ns.display());
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.SandboxKey}}"),
        ns.display().to_string()
    );
    assert!(
        eventually(Duration::from_secs(10), || ready(&d, 2)),
        "refilled: {:?}",
        entries(&d)
    );

    // SIGKILL: the pool's mounts stay until the next berthd clears them.
    let left = entries(&d);
    d.kill9();
    assert!(left.iter().all(|p| mounted(p)), "{left:?}");
    d.restart();
    assert!(
        eventually(Duration::from_secs(10), || left
            .iter()
            .all(|p| !mounted(p) && !p.exists())),
        "the killed daemon's pool cleared: {left:?}"
    );
    assert!(eventually(Duration::from_secs(10), || ready(&d, 2)));
    assert!(
        mounted(&ns),
        "the running container's namespace is not the pool's"
    );
    assert_eq!(exec_out(&d, "web", &["true"]), "");

    // A graceful stop unmounts what is ready.
    assert_ok(&d.docker(&["rm", "-f", "web"]), "rm -f");
    let ready_now = entries(&d);
    d.stop();
    assert!(
        ready_now.iter().all(|p| !mounted(p)),
        "nothing mounted after the stop: {ready_now:?}"
    );
    assert!(entries(&d).is_empty(), "{:?}", entries(&d));
}
