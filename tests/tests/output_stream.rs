//! Bulk container output through the docker CLI: every byte reaches the client, in the right
//! stream and order, and the json-file log holds it as Docker writes it (one entry per line,
//! lines longer than 16 KiB cut into 16 KiB pieces).

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use berth_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

/// Runs the docker CLI reading its stdout and stderr as they come (output far beyond a pipe's
/// buffer), killed after [`LIMIT`] so that a hang fails the test.
fn docker_for(d: &Daemon, args: &[&str]) -> std::process::Output {
    let child = d
        .docker_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker");
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("collect output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("timed out: docker {}", args.join(" "));
        }
    }
}

#[test]
fn large_output_arrives_complete() {
    let d = Daemon::start();
    d.load_busybox();
    // 64 MiB without a newline: json-file gets 16 KiB partial entries, the client 64 MiB.
    let n = 64 << 20;
    let count = n.to_string();
    let out = docker_for(
        &d,
        &["run", "--rm", "busybox", "head", "-c", &count, "/dev/zero"],
    );
    assert_ok(&out, "run");
    assert_eq!(out.stdout.len(), n, "bytes through docker run");
    assert!(out.stdout.iter().all(|&b| b == 0), "only zeros");

    // The same with no log at all: the attach path alone.
    let out = docker_for(
        &d,
        &[
            "run",
            "--rm",
            "--log-driver",
            "none",
            "busybox",
            "head",
            "-c",
            &count,
            "/dev/zero",
        ],
    );
    assert_ok(&out, "run --log-driver none");
    assert_eq!(out.stdout.len(), n, "bytes without a log");
}

/// What `sh -c` in [`json_file_log_holds_all_output`] writes to stdout and to stderr.
fn expected() -> (Vec<u8>, Vec<u8>) {
    let line = b"abcdefghij0123456789\n";
    let mut out: Vec<u8> = line.iter().copied().cycle().take(10_000_000).collect();
    out.extend(std::iter::repeat_n(0u8, 1_000_000));
    let err: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    (out, err.into_bytes())
}

#[test]
fn json_file_log_holds_all_output() {
    let d = Daemon::start();
    d.load_busybox();
    let script = "yes abcdefghij0123456789 | head -c 10000000; head -c 1000000 /dev/zero; \
                  seq 1 100000 >&2";
    let out = docker_for(
        &d,
        &[
            "run",
            "--name",
            "big",
            "--log-opt",
            "max-size=1g",
            "busybox",
            "sh",
            "-c",
            script,
        ],
    );
    assert_ok(&out, "run");
    let (want_out, want_err) = expected();
    assert_eq!(out.stdout.len(), want_out.len(), "stdout bytes");
    assert!(out.stdout == want_out, "stdout content");
    assert!(out.stderr == want_err, "stderr content");

    let id = stdout(&d.docker(&["inspect", "-f", "{{.Id}}", "big"]))
        .trim()
        .to_string();
    let path = d
        .data_root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let text = std::fs::read_to_string(&path).expect("json-file log");
    let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
        let msg = v["log"].as_str().expect("log").as_bytes();
        let last = i + 1 == lines.len();
        match v["stream"].as_str() {
            Some("stdout") => {
                // ends a line, or a 16 KiB piece, or the partial rest at the end of the stream
                assert!(
                    msg.ends_with(b"\n") || msg.len() == 16 * 1024 || msg.ends_with(b"\0"),
                    "entry {i}: {} bytes",
                    msg.len()
                );
                // the zeros go in as "\u0000": decoded back to NUL by serde
                got_out.extend_from_slice(msg);
            }
            Some("stderr") => {
                assert!(msg.ends_with(b"\n") || last, "stderr entry {i}");
                got_err.extend_from_slice(msg);
            }
            s => panic!("entry {i}: stream {s:?}"),
        }
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert_eq!(got_out.len(), want_out.len(), "stdout bytes in the log");
    assert!(got_out == want_out, "stdout content in the log");
    assert!(got_err == want_err, "stderr content in the log");

    let out = docker_for(&d, &["logs", "big"]);
    assert_ok(&out, "logs");
    assert_eq!(out.stdout.len(), want_out.len(), "docker logs stdout bytes");
    assert!(out.stdout == want_out, "docker logs stdout content");
    assert!(out.stderr == want_err, "docker logs stderr content");
    assert_ok(&d.docker(&["rm", "big"]), "rm");
}
