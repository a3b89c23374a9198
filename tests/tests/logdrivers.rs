//! Log drivers: json-file rotated by default, `none`, `--log-opt`, daemon defaults.

use std::path::PathBuf;
use std::time::Duration;

use berth_tests::*;

fn id_of(d: &Daemon, name: &str) -> String {
    let out = d.docker(&["inspect", "-f", "{{.Id}}", name]);
    assert_ok(&out, "inspect");
    stdout(&out).trim().to_string()
}

fn log_file(d: &Daemon, id: &str, suffix: &str) -> PathBuf {
    d.root
        .join("data/containers")
        .join(id)
        .join(format!("{id}-json.log{suffix}"))
}

#[test]
fn json_file_rotates_by_default_and_log_opts_apply() {
    let d = Daemon::start();
    d.load_busybox();
    // 12 MiB of output against the default 10 MiB × 3 rotation.
    // Detached: the log is what matters, not streaming 12 MiB to the test.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 12582912 /dev/zero | tr '\\0' a | fold -w 1023",
    ]);
    assert_ok(&out, "big output");
    let out = d.docker(&["wait", "big"]);
    assert_eq!(stdout(&out).trim(), "0");
    let id = id_of(&d, "big");
    let out = d.docker(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "big"]);
    assert_eq!(stdout(&out).trim(), "json-file");
    assert!(log_file(&d, &id, ".1").exists(), "rotated once");
    assert!(!log_file(&d, &id, ".3").exists(), "at most 3 files");
    let live = std::fs::metadata(log_file(&d, &id, ""))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        live < 10 * 1024 * 1024 + 4096,
        "live file within max-size: {live}"
    );

    // --log-opt max-size/max-file
    let out = d.docker(&[
        "run",
        "--name",
        "small",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 200); do echo line $i; done",
    ]);
    assert_ok(&out, "small");
    let id = id_of(&d, "small");
    assert!(log_file(&d, &id, ".1").exists());
    assert!(!log_file(&d, &id, ".2").exists());
    let out = d.docker(&["logs", "--tail", "1", "small"]);
    assert_eq!(stdout(&out).trim(), "line 200");

    let out = d.docker(&["run", "--log-opt", "bogus=1", "busybox", "true"]);
    assert!(
        stderr(&out).contains("unknown log opt 'bogus' for json-file log driver"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["run", "--log-driver", "syslog", "busybox", "true"]);
    assert!(!out.status.success(), "unsupported driver refused");
}

#[test]
fn none_driver_keeps_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hello",
    ]);
    assert_ok(&out, "run with none");
    // Attached output still reaches the client.
    assert_eq!(stdout(&out).trim(), "hello");
    let id = id_of(&d, "quiet");
    assert!(!log_file(&d, &id, "").exists(), "no log file");
    let out = d.docker(&["logs", "quiet"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn daemon_config_sets_the_default_driver() {
    /// Removes the config file however the test ends.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let cfg = std::env::temp_dir().join(format!("berth-logcfg-{}.json", std::process::id()));
    let _cleanup = Cleanup(cfg.clone());
    std::fs::write(
        &cfg,
        r#"{"log-driver": "json-file", "log-opts": {"max-size": "2k", "max-file": "2"}}"#,
    )
    .expect("config");
    let d = Daemon::start_with_args(&["--config-file", cfg.to_str().expect("utf-8 path")]);
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 300); do echo line $i; done",
    ]);
    assert_ok(&out, "run");
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}",
        "cc",
    ]);
    assert_eq!(stdout(&out).trim(), "json-file 2k");
    let id = id_of(&d, "cc");
    assert!(log_file(&d, &id, ".1").exists());
    assert!(!log_file(&d, &id, ".2").exists());
}

/// SIGHUP re-reads the config file: new containers get the new log defaults, a `daemon reload`
/// event is emitted, running containers are untouched, and an invalid file changes nothing.
#[test]
fn sighup_reloads_log_defaults_and_emits_a_daemon_event() {
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let cfg = std::env::temp_dir().join(format!("berth-reload-{}.json", std::process::id()));
    let _cleanup = Cleanup(cfg.clone());
    std::fs::write(&cfg, r#"{"log-driver": "json-file"}"#).expect("config");
    let d = Daemon::start_with_args(&["--config-file", cfg.to_str().expect("utf-8 path")]);
    d.load_busybox();
    let driver = |name: &str| {
        let out = d.docker(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", name]);
        assert_ok(&out, "inspect");
        stdout(&out).trim().to_string()
    };
    let now = unix_now;
    let since = format!("{:.3}", now() - 1.0);
    assert_ok(
        &d.docker(&["run", "-d", "--name", "before", "busybox", "sleep", "60"]),
        "run",
    );
    assert_eq!(driver("before"), "json-file");
    std::fs::write(&cfg, r#"{"log-driver": "none"}"#).expect("config");
    d.signal("HUP");
    let reloaded = |want: usize| {
        for _ in 0..50 {
            let until = format!("{:.3}", now());
            let out = d.docker(&[
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                "type=daemon",
                "--format",
                "{{.Action}} {{index .Actor.Attributes \"log-driver\"}}",
            ]);
            let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
            if lines.len() >= want {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no daemon reload event");
    };
    assert_eq!(reloaded(1), vec!["reload none"]);
    assert_ok(
        &d.docker(&["create", "--name", "after", "busybox", "true"]),
        "create",
    );
    assert_eq!(driver("after"), "none");
    assert_eq!(
        driver("before"),
        "json-file",
        "existing containers keep theirs"
    );
    let out = d.docker(&["ps", "-q", "--filter", "name=before"]);
    assert!(
        !stdout(&out).trim().is_empty(),
        "running containers keep running"
    );
    // An invalid file changes nothing and emits nothing.
    std::fs::write(&cfg, r#"{"log-driver": "bogus"}"#).expect("config");
    d.signal("HUP");
    std::fs::write(&cfg, r#"{"log-driver": "#).expect("config");
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_ok(
        &d.docker(&["create", "--name", "later", "busybox", "true"]),
        "create",
    );
    assert_eq!(driver("later"), "none");
    assert_eq!(reloaded(1), vec!["reload none"]);
    assert_ok(&d.docker(&["rm", "-f", "before"]), "rm");
}
