//! Connection abuse (issue 16, item 3): slowloris clients, floods of idle connections, bodies
//! that stop half-way and idle keep-alive connections must not take the API down, and must
//! not cut streams (attach, exec, logs -f, events, wait).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::*;

/// Raises this test process's open-file limit towards `want`; returns the soft limit it got.
fn raise_own_nofile(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let target = want.max(soft).min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        target
    } else {
        soft
    }
}

/// Whether the server still holds `s` open: a read that would block means yes; end of file or
/// a reset means it closed it.
fn still_open(mut s: &UnixStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Everything the server sends on `s` until it closes the connection or `limit` passes.
fn read_until_closed(s: &mut UnixStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).expect("read timeout");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).to_string(), start.elapsed())
}

fn timed_ping(d: &Daemon) -> Duration {
    let t = Instant::now();
    let (status, body) = d
        .try_api("GET", "/_ping", None)
        .unwrap_or_else(|e| panic!("/_ping failed after {:?}: {e}", t.elapsed()));
    assert_eq!((status, body.as_str()), (200, "OK"));
    t.elapsed()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn floods_of_slow_and_idle_connections_leave_the_api_answering() {
    let own = raise_own_nofile(8192);
    let n = usize::try_from(own)
        .unwrap_or(0)
        .saturating_sub(300)
        .min(3000);
    assert!(
        n >= 1500,
        "this test needs about 3000 descriptors of its own; RLIMIT_NOFILE allows {own}"
    );
    let d = Daemon::start_with_nofile(1024, &["--api-header-timeout", "4s"]);
    d.load_busybox();
    // Half the connections are slowloris clients (a request head that never ends, one header
    // line at a time), half just connect and say nothing: three times the daemon's limit.
    let mut slow = Vec::new();
    let mut idle = Vec::new();
    for i in 0..n {
        let mut s = UnixStream::connect(&d.socket).expect("connect");
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n");
            slow.push(s);
        } else {
            idle.push(s);
        }
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        let took = timed_ping(&d);
        assert!(took < Duration::from_secs(2), "/_ping took {took:?}");
        for s in &mut slow {
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let fds = open_fds(d.pid());
    assert!(fds < 900, "the daemon holds {fds} descriptors (limit 1024)");
    // The daemon's own work (shim sockets, log files, layers) still gets descriptors.
    let out = d.docker(&["run", "--rm", "busybox", "echo", "still-working"]);
    assert_ok(&out, "docker run during the flood");
    assert_eq!(stdout(&out).trim(), "still-working");
    // Every trickling client was cut off by the header timeout (4 s, 8 s ago or more).
    let open = slow.iter_mut().filter(|s| still_open(s)).count();
    assert_eq!(
        open, 0,
        "slowloris connections still open after the header timeout"
    );
    drop(idle);
    assert!(
        !d.log().contains("Too many open files"),
        "the daemon ran out of descriptors:\n{}",
        d.log()
    );
}

#[test]
fn stalled_clients_are_cut_and_streams_are_not() {
    let d = Daemon::start_with_args(&[
        "--api-header-timeout",
        "2s",
        "--api-idle-timeout",
        "3s",
        "--api-body-timeout",
        "3s",
    ]);
    d.load_busybox();

    // A body that stops half-way is answered (400, JSON) once it has stalled for 3 s.
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.write_all(b"POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Image\":")
        .expect("write");
    let (resp, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(resp.starts_with("HTTP/1.1 400"), "stalled body: {resp:?}");
    assert!(resp.contains("\"message\""), "stalled body: {resp:?}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(10),
        "stalled body answered after {took:?}"
    );

    // A keep-alive connection with nothing more to ask is closed after the idle timeout.
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
        .expect("write");
    let (resp, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(10),
        "idle keep-alive connection closed after {took:?}"
    );

    // A request head that never ends is cut after the header timeout.
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.write_all(b"GET /_ping HTTP/1.1\r\n").expect("write");
    let (resp, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(8),
        "incomplete head held for {took:?}: {resp:?}"
    );

    // Streams outlive every one of those timeouts: attach with stdin that pauses, an attached
    // container that is quiet for a while, logs -f, wait and events.
    let out = d.run(
        Path::new("/bin/sh"),
        &[
            "-c",
            &format!("(sleep 5; echo from-stdin) | {DOCKER} run -i --rm busybox cat"),
        ],
        None,
    );
    assert_ok(&out, "docker run -i with a pause on stdin");
    assert_eq!(stdout(&out).trim(), "from-stdin");
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", "sleep 5; echo late"]);
    assert_ok(&out, "attached run that is quiet for 5 s");
    assert_eq!(stdout(&out).trim(), "late");
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "quiet",
            "busybox",
            "sh",
            "-c",
            "sleep 5; echo late-log",
        ]),
        "run -d",
    );
    let out = d.docker(&["logs", "-f", "quiet"]);
    assert_ok(&out, "logs -f");
    assert_eq!(stdout(&out).trim(), "late-log");
    let out = d.docker(&["wait", "quiet"]);
    assert_ok(&out, "wait");
    let mut events = UnixStream::connect(&d.socket).expect("connect");
    events
        .write_all(b"GET /events?filters=%7B%22event%22%3A%5B%22create%22%5D%7D HTTP/1.1\r\nHost: berth\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_secs(5));
    assert_ok(
        &d.docker(&["create", "--name", "later", "busybox"]),
        "create",
    );
    events
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("\"create\"") {
        match events.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(
        seen.contains("\"create\""),
        "the events stream ended before the event: {seen:?}"
    );
    let _ = d.docker(&["rm", "-f", "quiet", "later"]);
}
