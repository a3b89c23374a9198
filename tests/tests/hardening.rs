//! Issue 16, item 6: compressed archive uploads, `docker commit` after a daemon restart (also
//! while clients hold every connection they can), and build errors that keep the daemon's
//! host paths to themselves.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use berth_tests::*;

/// docker-py's `put_archive` with gzip, bzip2 and xz tars, as the API documents them, read
/// back with `get_archive`.
#[test]
fn compressed_archives_can_be_put_into_a_container() {
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script = r#"
import io, sys, tarfile, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
ctr = c.containers.create("busybox", "sleep 300", name="archives")
for comp in ["gz", "bz2", "xz", ""]:
    name = "hello-" + (comp or "plain")
    data = ("content of " + name + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + comp) as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    assert ctr.put_archive("/tmp", buf.getvalue()), name
    bits, stat = ctr.get_archive("/tmp/" + name)
    raw = b"".join(bits)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        got = t.extractfile(name).read()
    assert got == data, (name, got)
    print("ok", name)
ctr.remove(force=True)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &d.host()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "put_archive failed\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    for name in ["gz", "bz2", "xz", "plain"] {
        assert!(
            stdout(&out).contains(&format!("ok hello-{name}")),
            "{}",
            stdout(&out)
        );
    }
}

/// `docker commit` pauses the container through its shim: after a daemon restart, and while
/// clients hold as many API connections as the daemon allows, the shim is still reached.
#[test]
fn commit_after_a_restart_and_under_connection_pressure() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(8192).max(soft), hard);
    let mut d = Daemon::start_with_nofile(1024, &[]);
    d.load_busybox();
    run_sleeper(&d, "committed", &[]);
    assert_ok(
        &d.docker(&["exec", "committed", "sh", "-c", "echo before > /made"]),
        "exec",
    );
    d.restart();
    let out = d.docker(&["commit", "committed", "after-restart:1"]);
    assert_ok(&out, "commit after a daemon restart");
    let out = d.docker(&["run", "--rm", "after-restart:1", "cat", "/made"]);
    assert_eq!(stdout(&out).trim(), "before");

    // Every descriptor the daemon lets clients have, and then some.
    let mut held = Vec::new();
    for _ in 0..1500 {
        match UnixStream::connect(&d.socket) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let out = d.docker(&["commit", "committed", "after-restart:2"]);
    assert_ok(&out, "commit with the API's connections all taken");
    assert_eq!(
        inspect(&d, "committed", "{{.State.Status}}"),
        "running",
        "the container is unpaused again"
    );
    drop(held);
    let _ = d.docker(&["rm", "-f", "committed"]);
}

/// A build whose context cannot be unpacked says why without the host path it was unpacked
/// to.
#[test]
fn build_errors_do_not_show_host_paths() {
    let d = Daemon::start();
    d.load_busybox();
    // A context whose symlink leads out of it, and a file written through the symlink.
    let dir = d.root.join("ctx");
    std::fs::create_dir_all(&dir).expect("ctx dir");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY . /x\n").expect("Dockerfile");
    std::os::unix::fs::symlink("/tmp", dir.join("l")).expect("symlink");
    let tar = d.root.join("ctx.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .args(["Dockerfile", "l"])
        .status()
        .expect("tar");
    assert!(st.success());
    // Append `l/escape` after the symlink.
    let extra = d.root.join("extra");
    std::fs::create_dir_all(extra.join("l")).expect("extra");
    std::fs::write(extra.join("l/escape"), "x").expect("escape");
    let st = Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(&extra)
        .arg("l/escape")
        .status()
        .expect("tar -r");
    assert!(st.success());
    let body = std::fs::read(&tar).expect("read tar");
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.write_all(
        format!(
            "POST /build HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .expect("write head");
    s.write_all(&body).expect("write body");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(
        resp.contains("errorDetail"),
        "the build should fail: {resp}"
    );
    let data_root = d.root.join("data").display().to_string();
    assert!(
        !resp.contains(&data_root) && !resp.contains(d.root.to_str().expect("utf8")),
        "the error shows a host path: {resp}"
    );
    assert!(!std::path::Path::new("/tmp/escape").exists());
}
