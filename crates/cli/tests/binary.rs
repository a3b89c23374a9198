//! Drives the `berth` binary without a daemon: flag errors, help, and connection failures.
//! End-to-end tests against berthd live with the integration suites.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run berth")
}

#[test]
fn help_exits_zero() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["ps", "--help"],
        &["container", "ls", "--help"],
        &["image", "ls", "--help"],
    ] {
        let out = berth(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn unknown_flags_exit_125() {
    let out = berth(&["ps", "--bogus"]);
    assert_eq!(out.status.code(), Some(125));
    let out = berth(&[
        "-H",
        "unix:///nonexistent/b.sock",
        "run",
        "--bogus",
        "busybox",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag: --bogus"));
}

#[test]
fn unreachable_daemon() {
    let out = berth(&["-H", "unix:///nonexistent/b.sock", "ps"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Cannot connect to the berth daemon at unix:///nonexistent/b.sock"),
        "{err}"
    );
    let out = berth(&["-H", "unix:///nonexistent/b.sock", "run", "busybox"]);
    assert_eq!(out.status.code(), Some(125));
}
