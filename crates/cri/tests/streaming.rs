//! The streaming server end to end: a Rust client per protocol (SPDY/3.1 remotecommand and
//! portforward, WebSocket v4/v5 remotecommand and portforward) against a fake runtime.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_cri::error::{CriError, CriResult};
use berth_cri::streaming::spdy::conn::{Session, SpdyStream};
use berth_cri::streaming::{
    pump, status, AttachParams, BoxRead, BoxWrite, ExecParams, PortForwardParams, StreamIo,
    StreamRequest, StreamRuntime, StreamingServer,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

struct Fake {
    echo_port: u16,
}

#[async_trait]
impl StreamRuntime for Fake {
    async fn exec(&self, container_id: &str, cmd: &[String], mut io: StreamIo) -> CriResult<i32> {
        assert_eq!(container_id, "ctr");
        match cmd[0].as_str() {
            "echo" => {
                let out = io.stdout.as_mut().expect("stdout");
                out.write_all(cmd[1..].join(" ").as_bytes()).await.unwrap();
                out.write_all(b"\n").await.unwrap();
                if let Some(err) = io.stderr.as_mut() {
                    err.write_all(b"to stderr\n").await.unwrap();
                }
                Ok(0)
            }
            "cat" => {
                let mut input = io.stdin.take().expect("stdin");
                let mut out = io.stdout.take().expect("stdout");
                tokio::io::copy(&mut input, &mut out).await.unwrap();
                out.shutdown().await.unwrap();
                Ok(0)
            }
            "exit" => Ok(cmd[1].parse().unwrap()),
            "size" => {
                assert!(io.tty);
                let mut sizes = io.resize.take().expect("resize");
                let s = sizes.recv().await.expect("a size");
                let t = sizes.recv().await.expect("a second size");
                let out = io.stdout.as_mut().unwrap();
                out.write_all(
                    format!("{}x{} {}x{}", s.width, s.height, t.width, t.height).as_bytes(),
                )
                .await
                .unwrap();
                Ok(0)
            }
            _ => Err(CriError::FailedPrecondition("no such command".into())),
        }
    }

    async fn attach(&self, _id: &str, mut io: StreamIo) -> CriResult<()> {
        io.stdout
            .as_mut()
            .unwrap()
            .write_all(b"attached")
            .await
            .unwrap();
        Ok(())
    }

    async fn port_forward(
        &self,
        pod: &str,
        port: u16,
        from: BoxRead,
        to: BoxWrite,
    ) -> CriResult<()> {
        assert_eq!(pod, "pod");
        if port != 1 {
            return Err(CriError::internal(format!("connection refused on {port}")));
        }
        let conn = TcpStream::connect(("127.0.0.1", self.echo_port))
            .await
            .map_err(CriError::internal)?;
        pump(conn, from, to).await.map_err(CriError::internal)
    }
}

/// An upper-casing echo server standing in for the pod's port.
async fn echo_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    let up = buf[..n].to_ascii_uppercase();
                    s.write_all(&up).await.unwrap();
                }
            });
        }
    });
    port
}

async fn server() -> StreamingServer {
    let echo_port = echo_server().await;
    StreamingServer::start(Arc::new(Fake { echo_port }), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn exec(cmd: &[&str], stdin: bool, stderr: bool, tty: bool) -> StreamRequest {
    StreamRequest::Exec(ExecParams {
        container_id: "ctr".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr,
    })
}

/// Upgrades a connection to `url` with SPDY/3.1 offering `protocols`; answers the status line,
/// and the session when it switched.
async fn spdy_connect(url: &str, protocols: &[&str]) -> (u16, Option<(Session, String)>) {
    let url = url.strip_prefix("http://").unwrap();
    let (host, path) = url.split_once('/').unwrap();
    let mut tcp = TcpStream::connect(host).await.unwrap();
    let mut req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
    );
    for p in protocols {
        req += &format!("X-Stream-Protocol-Version: {p}\r\n");
    }
    req += "Content-Length: 0\r\n\r\n";
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if tcp.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    if code != 101 {
        return (code, None);
    }
    let proto = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Stream-Protocol-Version: ")
                .or_else(|| l.strip_prefix("x-stream-protocol-version: "))
        })
        .unwrap_or_default()
        .to_string();
    let (session, _) = Session::start(tcp, false);
    (code, Some((session, proto)))
}

async fn open(s: &Session, ty: &str, fin: bool) -> SpdyStream {
    s.open_stream(vec![("streamType".into(), ty.into())], fin)
        .await
        .unwrap()
}

async fn read_all(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut v = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut v))
        .await
        .expect("stream ends")
        .unwrap();
    v
}

#[tokio::test]
async fn spdy_exec_with_stdin_stdout_stderr_and_exit_codes() {
    let srv = server().await;
    let url = srv.urls().issue(exec(&["cat"], true, true, false)).unwrap();
    let (code, conn) = spdy_connect(&url, &["v4.channel.k8s.io", "v3.channel.k8s.io"]).await;
    assert_eq!(code, 101);
    let (s, proto) = conn.unwrap();
    assert_eq!(proto, "v4.channel.k8s.io");
    let mut err = open(&s, "error", true).await;
    let mut stdin = open(&s, "stdin", false).await;
    let mut stdout = open(&s, "stdout", true).await;
    let _stderr = open(&s, "stderr", true).await;
    stdin.writer.write_all(b"hello over spdy\n").await.unwrap();
    stdin.writer.shutdown().await.unwrap();
    assert_eq!(read_all(&mut stdout.reader).await, b"hello over spdy\n");
    assert_eq!(
        status::parse_exit(&read_all(&mut err.reader).await),
        Ok(None)
    );

    // A token is good once.
    let (code, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);

    let url = srv
        .urls()
        .issue(exec(&["exit", "3"], false, true, false))
        .unwrap();
    let (s, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await.1.unwrap();
    let mut err = open(&s, "error", true).await;
    let _o = open(&s, "stdout", true).await;
    let _e = open(&s, "stderr", true).await;
    let st = read_all(&mut err.reader).await;
    assert_eq!(
        status::parse_exit(&st),
        Ok(Some(3)),
        "{}",
        String::from_utf8_lossy(&st)
    );

    let url = srv
        .urls()
        .issue(exec(&["echo", "a", "b"], false, true, false))
        .unwrap();
    let (s, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await.1.unwrap();
    let mut err = open(&s, "error", true).await;
    let mut o = open(&s, "stdout", true).await;
    let mut e = open(&s, "stderr", true).await;
    assert_eq!(read_all(&mut o.reader).await, b"a b\n");
    assert_eq!(read_all(&mut e.reader).await, b"to stderr\n");
    assert_eq!(
        status::parse_exit(&read_all(&mut err.reader).await),
        Ok(None)
    );

    let url = srv
        .urls()
        .issue(exec(&["bogus"], false, false, false))
        .unwrap();
    let (s, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await.1.unwrap();
    let mut err = open(&s, "error", true).await;
    let _o = open(&s, "stdout", true).await;
    let st = read_all(&mut err.reader).await;
    assert_eq!(status::parse_exit(&st), Err("no such command".into()));
}

#[tokio::test]
async fn spdy_tty_resize_and_attach_and_negotiation() {
    let srv = server().await;
    let url = srv
        .urls()
        .issue(exec(&["size"], true, false, true))
        .unwrap();
    let (s, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await.1.unwrap();
    let mut err = open(&s, "error", true).await;
    let _stdin = open(&s, "stdin", false).await;
    let mut out = open(&s, "stdout", true).await;
    let mut resize = open(&s, "resize", false).await;
    // Two sizes in one write, as JSON objects back to back.
    resize
        .writer
        .write_all(br#"{"Width":80,"Height":24}{"Width":100,"Height":30}"#)
        .await
        .unwrap();
    assert_eq!(read_all(&mut out.reader).await, b"80x24 100x30");
    assert_eq!(
        status::parse_exit(&read_all(&mut err.reader).await),
        Ok(None)
    );

    let url = srv
        .urls()
        .issue(StreamRequest::Attach(AttachParams {
            container_id: "ctr".into(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: false,
        }))
        .unwrap();
    let (s, _) = spdy_connect(&url, &["v4.channel.k8s.io"]).await.1.unwrap();
    let mut err = open(&s, "error", true).await;
    let mut out = open(&s, "stdout", true).await;
    assert_eq!(read_all(&mut out.reader).await, b"attached");
    assert_eq!(
        status::parse_exit(&read_all(&mut err.reader).await),
        Ok(None)
    );

    // A client without a protocol we speak is refused; without upgrade headers too.
    let url = srv
        .urls()
        .issue(exec(&["echo"], false, false, false))
        .unwrap();
    let (code, _) = spdy_connect(&url, &["v2.channel.k8s.io"]).await;
    assert_eq!(code, 403);
    let url = srv
        .urls()
        .issue(exec(&["echo"], false, false, false))
        .unwrap();
    let body = reqwest_free_get(&url).await;
    assert!(body.starts_with("HTTP/1.1 400"), "{body}");
    // The exec token cannot be used on the attach path.
    let url = srv
        .urls()
        .issue(exec(&["echo"], false, false, false))
        .unwrap()
        .replace("/exec/", "/attach/");
    assert_eq!(spdy_connect(&url, &["v4.channel.k8s.io"]).await.0, 404);
}

/// A plain GET without upgrade headers; answers the raw response.
async fn reqwest_free_get(url: &str) -> String {
    let url = url.strip_prefix("http://").unwrap();
    let (host, path) = url.split_once('/').unwrap();
    let mut tcp = TcpStream::connect(host).await.unwrap();
    tcp.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    String::from_utf8_lossy(&read_all(&mut tcp).await).to_string()
}

#[tokio::test]
async fn spdy_port_forward() {
    let srv = server().await;
    let url = srv
        .urls()
        .issue(StreamRequest::PortForward(PortForwardParams {
            pod_sandbox_id: "pod".into(),
            ports: vec![1],
        }))
        .unwrap();
    let (s, proto) = spdy_connect(&url, &["portforward.k8s.io"]).await.1.unwrap();
    assert_eq!(proto, "portforward.k8s.io");
    let hdr = |ty: &str, port: &str, id: &str| {
        vec![
            ("streamType".to_string(), ty.to_string()),
            ("port".to_string(), port.to_string()),
            ("requestID".to_string(), id.to_string()),
        ]
    };
    // Two connections to the same port, then one to a port that fails.
    for id in ["0", "1"] {
        let mut err = s.open_stream(hdr("error", "1", id), false).await.unwrap();
        err.writer.shutdown().await.unwrap();
        let mut data = s.open_stream(hdr("data", "1", id), false).await.unwrap();
        data.writer
            .write_all(format!("hello {id}").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 7];
        tokio::time::timeout(Duration::from_secs(10), data.reader.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, format!("HELLO {id}").as_bytes());
        data.writer.shutdown().await.unwrap();
        assert!(read_all(&mut data.reader).await.is_empty());
        assert!(read_all(&mut err.reader).await.is_empty(), "no error");
    }
    let mut err = s.open_stream(hdr("error", "2", "2"), false).await.unwrap();
    let _data = s.open_stream(hdr("data", "2", "2"), false).await.unwrap();
    let msg = String::from_utf8(read_all(&mut err.reader).await).unwrap();
    assert!(
        msg.contains("error forwarding port 2 to pod pod") && msg.contains("refused"),
        "{msg}"
    );
}

async fn ws_connect(
    url: &str,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    if !protocol.is_empty() {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    let got = resp
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(got.unwrap_or_default(), protocol);
    ws
}

/// Reads messages until the server closes; answers the bytes per channel.
async fn ws_collect(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> Vec<Vec<u8>> {
    let mut chans = vec![Vec::new(); 5];
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match m {
            Message::Binary(b) if !b.is_empty() => chans[b[0] as usize].extend_from_slice(&b[1..]),
            Message::Close(_) => break,
            _ => {}
        }
    }
    chans
}

#[tokio::test]
async fn websocket_v5_exec_with_stdin_close_signal() {
    let srv = server().await;
    let url = srv
        .urls()
        .issue(exec(&["cat"], true, false, false))
        .unwrap();
    let mut ws = ws_connect(&url, "v5.channel.k8s.io").await;
    ws.send(Message::Binary(b"\x00over websocket".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![255, 0].into())).await.unwrap(); // close stdin
    let chans = ws_collect(&mut ws).await;
    assert_eq!(chans[1], b"over websocket");
    assert_eq!(status::parse_exit(&chans[3]), Ok(None));
}

#[tokio::test]
async fn websocket_v4_exec_exit_code_stderr_and_resize() {
    let srv = server().await;
    let url = srv
        .urls()
        .issue(exec(&["echo", "x"], false, true, false))
        .unwrap();
    let mut ws = ws_connect(&url, "v4.channel.k8s.io").await;
    let chans = ws_collect(&mut ws).await;
    assert_eq!(chans[1], b"x\n");
    assert_eq!(chans[2], b"to stderr\n");

    let url = srv
        .urls()
        .issue(exec(&["exit", "42"], false, false, false))
        .unwrap();
    let mut ws = ws_connect(&url, "v4.channel.k8s.io").await;
    assert_eq!(
        status::parse_exit(&ws_collect(&mut ws).await[3]),
        Ok(Some(42))
    );

    let url = srv
        .urls()
        .issue(exec(&["size"], true, false, true))
        .unwrap();
    let mut ws = ws_connect(&url, "v5.channel.k8s.io").await;
    ws.send(Message::Binary(
        b"\x04{\"Width\":10,\"Height\":5}".to_vec().into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Binary(
        b"\x04{\"Width\":11,\"Height\":6}".to_vec().into(),
    ))
    .await
    .unwrap();
    assert_eq!(ws_collect(&mut ws).await[1], b"10x5 11x6");
}

#[tokio::test]
async fn websocket_port_forward() {
    let srv = server().await;
    let url = srv
        .urls()
        .issue(StreamRequest::PortForward(PortForwardParams {
            pod_sandbox_id: "pod".into(),
            ports: vec![],
        }))
        .unwrap();
    let mut ws = ws_connect(&format!("{url}?port=1&port=2"), "v4.channel.k8s.io").await;
    // Each channel starts with its port, little-endian.
    let mut firsts = std::collections::BTreeMap::new();
    while firsts.len() < 4 {
        let Some(Ok(Message::Binary(b))) = ws.next().await else {
            panic!("closed")
        };
        firsts.entry(b[0]).or_insert(b[1..].to_vec());
    }
    assert_eq!(firsts[&0], [1, 0]);
    assert_eq!(firsts[&1], [1, 0]);
    assert_eq!(firsts[&2], [2, 0]);
    assert_eq!(firsts[&3], [2, 0]);
    ws.send(Message::Binary(b"\x00abc".to_vec().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut port2_error = String::new();
    while got.len() < 3 || port2_error.is_empty() {
        let Some(Ok(Message::Binary(b))) = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        else {
            panic!("closed")
        };
        match b[0] {
            0 => got.extend_from_slice(&b[1..]),
            3 => port2_error += &String::from_utf8_lossy(&b[1..]),
            _ => {}
        }
    }
    assert_eq!(got, b"ABC");
    assert!(
        port2_error.contains("error forwarding port 2"),
        "{port2_error}"
    );
    ws.close(None).await.unwrap();

    // Without ports the request is refused.
    let url = srv
        .urls()
        .issue(StreamRequest::PortForward(PortForwardParams {
            pod_sandbox_id: "pod".into(),
            ports: vec![],
        }))
        .unwrap();
    let req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}
