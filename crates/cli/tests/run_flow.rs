//! `berth run` against a fake daemon: the request order docker uses (create → attach → wait →
//! start), create warnings, demuxed output, and the exit code from the wait body.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

#[derive(Default)]
struct State {
    log: Vec<String>,
    started: bool,
    create_body: String,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![stream, 0, 0, 0];
    f.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    f.extend_from_slice(data);
    f
}

fn wait_started(shared: &Shared) {
    let (m, cv) = &**shared;
    let mut st = m.lock().unwrap();
    while !st.started {
        st = cv.wait(st).unwrap();
    }
}

fn handle(s: UnixStream, shared: Shared) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap().to_string();
    let path = parts.next().unwrap().to_string();
    let path = path.split('?').next().unwrap().to_string();
    let path = path.trim_start_matches("/v1.51").to_string();
    if path != "/_ping" {
        shared
            .0
            .lock()
            .unwrap()
            .log
            .push(format!("{method} {path}"));
    }
    let json = |w: &mut UnixStream, status: &str, b: &str| {
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .unwrap();
    };
    match path.as_str() {
        "/_ping" => write!(
            w,
            "HTTP/1.1 200 OK\r\nApi-Version: 1.51\r\nContent-Length: 2\r\n\r\nOK"
        )
        .unwrap(),
        "/containers/create" => {
            shared.0.lock().unwrap().create_body = String::from_utf8(body).unwrap();
            json(
                &mut w,
                "201 Created",
                r#"{"Id":"abc123","Warnings":["careful"]}"#,
            );
        }
        "/containers/abc123/attach" => {
            w.write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").unwrap();
            wait_started(&shared);
            w.write_all(&frame(1, b"hello\n")).unwrap();
            w.write_all(&frame(2, b"oops\n")).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        }
        "/containers/abc123/wait" => {
            // Headers at once, body when the container "exits" (after start).
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
            w.flush().unwrap();
            wait_started(&shared);
            let b = r#"{"StatusCode":3,"Error":null}"#;
            write!(w, "{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).unwrap();
        }
        "/containers/abc123/start" => {
            let (m, cv) = &*shared;
            m.lock().unwrap().started = true;
            cv.notify_all();
            w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        }
        _ => json(&mut w, "404 Not Found", r#"{"message":"page not found"}"#),
    }
}

#[test]
fn run_follows_dockers_request_order() {
    let dir = std::env::temp_dir().join(format!("berth-run-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let shared: Shared = Arc::default();
    let s2 = shared.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let conn = conn.unwrap();
            let sh = s2.clone();
            thread::spawn(move || handle(conn, sh));
        }
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "-H",
            &format!("unix://{}", sock.display()),
            "run",
            "--rm",
            "-e",
            "A=1",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout={stdout} stderr={stderr}"
    );
    assert_eq!(stdout, "hello\n");
    assert!(stderr.contains("WARNING: careful"), "{stderr}");
    assert!(stderr.contains("oops"), "{stderr}");
    let st = shared.0.lock().unwrap();
    assert_eq!(
        st.log,
        [
            "POST /containers/create",
            "POST /containers/abc123/attach",
            "POST /containers/abc123/wait",
            "POST /containers/abc123/start"
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&st.create_body).unwrap();
    assert_eq!(body["Image"], "busybox");
    assert_eq!(body["Cmd"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(body["Env"], serde_json::json!(["A=1"]));
    assert_eq!(body["HostConfig"]["AutoRemove"], true);
    drop(st);
    let _ = std::fs::remove_dir_all(&dir);
}
