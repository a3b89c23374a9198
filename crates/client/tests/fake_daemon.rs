//! The client against a hand-written fake daemon on a unix socket: version negotiation, error
//! mapping, JSON streams, and a hijacked attach whose stdin EOF is signalled by a half-close.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use berth_client::mux::{encode_frame, StreamKind};
use berth_client::{Body, Client, ClientError, Host, Query};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

async fn read_head(s: &mut UnixStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        buf.push(b[0]);
    }
    String::from_utf8(buf).unwrap()
}

async fn serve(mut s: UnixStream) {
    let head = read_head(&mut s).await;
    let line = head.lines().next().unwrap_or("").to_string();
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let reply = |status: &str, ctype: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nApi-Version: 1.45\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    if path == "/_ping" {
        s.write_all(reply("200 OK", "text/plain", "OK").as_bytes())
            .await
            .unwrap();
    } else if path.starts_with("/v1.45/containers/missing/json") {
        s.write_all(
            reply(
                "404 Not Found",
                "application/json",
                "{\"message\":\"No such container: missing\"}",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    } else if path.starts_with("/v1.45/images/load") {
        let body = "{\"status\":\"Loading\",\"id\":\"l1\"}\n{\"stream\":\"Loaded image: bb:latest\\n\"}{\"aux\":{\"ID\":\"x\"}}\n";
        s.write_all(reply("200 OK", "application/json", body).as_bytes())
            .await
            .unwrap();
    } else if path.starts_with("/v1.45/containers/c1/attach") {
        assert!(head.to_ascii_lowercase().contains("upgrade: tcp"), "{head}");
        s.write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            .await
            .unwrap();
        // Echo stdin back as stdout frames until the client half-closes, then say goodbye on stderr.
        let mut buf = [0u8; 1024];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&encode_frame(StreamKind::Stdout, &buf[..n]))
                .await
                .unwrap();
        }
        s.write_all(&encode_frame(StreamKind::Stderr, b"eof seen"))
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    } else {
        s.write_all(reply("500 Internal Server Error", "text/plain", "boom").as_bytes())
            .await
            .unwrap();
    }
}

async fn start() -> (tempdir::Dir, Client) {
    let dir = tempdir::Dir::new();
    let sock = dir.0.join("d.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(s));
        }
    });
    let mut c = Client::new(Host::Unix(sock));
    c.negotiate().await.unwrap();
    (dir, c)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "berth-client-test-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn negotiates_down_and_maps_errors() {
    let (_d, c) = start().await;
    assert_eq!(c.api_version(), "1.45");
    let err = c
        .get_json::<serde_json::Value>("/containers/missing/json", &Query::new())
        .await
        .unwrap_err();
    match err {
        ClientError::Api { status, message } => {
            assert_eq!(status, 404);
            assert_eq!(message, "No such container: missing");
        }
        other => panic!("{other:?}"),
    }
    let err = c.get_bytes("/other", &Query::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.message(), "boom");
}

#[tokio::test]
async fn streams_json_messages() {
    let (_d, c) = start().await;
    let body = Body::Bytes {
        data: bytes::Bytes::from_static(b"tar"),
        content_type: "application/x-tar".into(),
    };
    let mut s = c
        .json_stream(Method::POST, "/images/load", &Query::new(), body)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(v) = s.next().await {
        got.push(v.unwrap());
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got[1]["stream"], "Loaded image: bb:latest\n");
    assert_eq!(got[2]["aux"]["ID"], "x");
}

#[tokio::test]
async fn hijack_round_trip_with_half_close() {
    let (_d, c) = start().await;
    let q = Query::new()
        .flag("stream", true)
        .flag("stdin", true)
        .flag("stdout", true);
    let h = c.hijack("/containers/c1/attach", &q, None).await.unwrap();
    assert_eq!(h.status, 101);
    assert_eq!(h.is_multiplexed(), Some(true));
    let (mut r, mut w) = h.split();
    w.write_all(b"hello").await.unwrap();
    w.close_write().await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    berth_client::mux::demux(&mut r, &mut out, &mut err)
        .await
        .unwrap();
    assert_eq!(out, b"hello");
    assert_eq!(err, b"eof seen");
}

#[tokio::test]
async fn connect_error_names_the_host() {
    let c = Client::new(Host::parse("unix:///nonexistent/berth.sock").unwrap());
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}
