//! The CRI streaming server of berthd: Exec, Attach and PortForward through the URLs the RPCs
//! hand out, over both transports a kubelet proxies: WebSocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io` for port forwarding) and SPDY/3.1 (`v4.channel.k8s.io` remotecommand,
//! `portforward.k8s.io`), into a pod's containers running on berth: stdin/stdout/stderr, exit
//! codes, terminal resize of an attached TTY, and a port served inside the pod's network
//! namespace. Needs root and containernetworking-plugins.

use std::time::Duration;

use berth_cri::streaming::spdy::conn::{Session, SpdyStream};
use berth_tests::cri::*;
use berth_tests::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str) -> Ws {
    ws_connect_with(url, "v5.channel.k8s.io").await
}

/// A WebSocket to a streaming URL, asking for `protocol`.
async fn ws_connect_with(url: &str, protocol: &str) -> Ws {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    ws
}

/// Reads until the server closes; the bytes per channel (1 stdout, 2 stderr, 3 status).
async fn ws_collect(ws: &mut Ws) -> Vec<Vec<u8>> {
    let mut chans = vec![Vec::new(); 5];
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match m {
            Message::Binary(b) if !b.is_empty() && (b[0] as usize) < 5 => {
                chans[b[0] as usize].extend_from_slice(&b[1..])
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    chans
}

#[tokio::test]
async fn exec_over_websocket() {
    if !is_root() || !cni_plugins_present() {
        eprintln!("skipped: needs root and {PLUGIN_DIR}");
        return;
    }
    let net = CniNet::new();
    let args = net.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with_args(&args);
    d.load_busybox();
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let logs = d.root.join("pod-logs");
    let pod_cfg = pod_config("stream", &[], &logs);
    let pod =
        c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let id =
        c.rt.create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("s", "exec sleep 1000")),
            sandbox_config: Some(pod_cfg),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    let exec_req = |cmd: &[&str], stdin: bool| api::ExecRequest {
        container_id: id.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty: false,
        stdin,
        stdout: true,
        stderr: true,
    };
    // Not running yet: no URL.
    let e = c.rt.exec(exec_req(&["true"], false)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    c.rt.start_container(api::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();

    // stdin in, stdout and stderr apart, the exit code in the status.
    let url =
        c.rt.exec(exec_req(
            &["sh", "-c", "read x; echo got $x; echo e >&2; exit 7"],
            true,
        ))
        .await
        .expect("Exec")
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut ws = ws_connect(&url).await;
    ws.send(Message::Binary(b"\x00hello\n".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![255, 0].into())).await.unwrap(); // close stdin
    let chans = ws_collect(&mut ws).await;
    assert_eq!(String::from_utf8_lossy(&chans[1]), "got hello\n");
    assert_eq!(String::from_utf8_lossy(&chans[2]), "e\n");
    assert_eq!(
        berth_cri::streaming::status::parse_exit(&chans[3]),
        Ok(Some(7)),
        "{}",
        String::from_utf8_lossy(&chans[3])
    );

    // Success: the pod's hostname, status Success.
    let url =
        c.rt.exec(exec_req(&["hostname"], false))
            .await
            .unwrap()
            .into_inner()
            .url;
    let mut ws = ws_connect(&url).await;
    let chans = ws_collect(&mut ws).await;
    assert_eq!(String::from_utf8_lossy(&chans[1]), "stream\n");
    assert_eq!(
        berth_cri::streaming::status::parse_exit(&chans[3]),
        Ok(None)
    );

    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

/// Upgrades a connection to `url` to SPDY/3.1 offering `protocol`, as kubectl's SPDY executor
/// (through the kubelet) does; answers the client session.
async fn spdy_connect(url: &str, protocol: &str) -> Session {
    let url = url.strip_prefix("http://").expect("http URL");
    let (host, path) = url.split_once('/').expect("path");
    let mut tcp = TcpStream::connect(host).await.expect("streaming server");
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if tcp.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-stream-protocol-version: {protocol}")),
        "{head}"
    );
    Session::start(tcp, false).0
}

async fn spdy_open(s: &Session, headers: &[(&str, &str)], fin: bool) -> SpdyStream {
    s.open_stream(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fin,
    )
    .await
    .expect("SPDY stream")
}

/// Reads `r` until its bytes contain `want` (10 s at most); answers all it read.
async fn read_until(r: &mut (impl tokio::io::AsyncRead + Unpin), want: &str) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(want) {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!(
                "waiting for {want:?}: {other:?}, got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

/// Reads WebSocket messages until `chan`'s bytes contain `want` (10 s at most).
async fn ws_until(ws: &mut Ws, chan: u8, want: &str) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(want) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if !b.is_empty() && b[0] == chan => {
                got.extend_from_slice(&b[1..])
            }
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "waiting for {want:?} on channel {chan}: {other:?}, got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

/// A daemon on a private CNI network with one ready pod; answers (daemon, net, client, pod id,
/// pod config).
async fn pod_env(name: &str) -> Option<(Daemon, CniNet, CriClient, String, api::PodSandboxConfig)> {
    pod_env_with(name, None).await
}

/// [`pod_env`] with the pod's Linux config (its namespaces, say) given.
async fn pod_env_with(
    name: &str,
    linux: Option<api::LinuxPodSandboxConfig>,
) -> Option<(Daemon, CniNet, CriClient, String, api::PodSandboxConfig)> {
    if !is_root() || !cni_plugins_present() {
        eprintln!("skipped: needs root and {PLUGIN_DIR}");
        return None;
    }
    let net = CniNet::new();
    let args = net.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with_args(&args);
    d.load_busybox();
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let mut pod_cfg = pod_config(name, &[], &d.root.join("pod-logs"));
    if linux.is_some() {
        pod_cfg.linux = linux;
    }
    let pod =
        c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    Some((d, net, c, pod, pod_cfg))
}

async fn run_container(
    c: &mut CriClient,
    pod: &str,
    pod_cfg: &api::PodSandboxConfig,
    cfg: api::ContainerConfig,
) -> String {
    let id =
        c.rt.create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    c.rt.start_container(api::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("StartContainer");
    id
}

async fn attach_url(c: &mut CriClient, id: &str, tty: bool) -> String {
    c.rt.attach(api::AttachRequest {
        container_id: id.into(),
        stdin: true,
        tty,
        stdout: true,
        stderr: !tty,
    })
    .await
    .expect("Attach")
    .into_inner()
    .url
}

/// Attach to a container's main process: a line-echoing shell without a TTY (stdout and stderr
/// apart), and an interactive shell on a TTY whose size follows the client's resize messages,
/// each over SPDY and over WebSocket.
#[tokio::test]
async fn attach_over_spdy_and_websocket_with_resize() {
    let Some((_d, _net, mut c, pod, pod_cfg)) = pod_env("attach").await else {
        return;
    };
    let mut echo = container_config(
        "echo",
        "while read l; do echo out-$l; echo err-$l >&2; done",
    );
    echo.stdin = true;
    let echo = run_container(&mut c, &pod, &pod_cfg, echo).await;
    let mut term = container_config("term", "exec sh");
    term.stdin = true;
    term.tty = true;
    let term = run_container(&mut c, &pod, &pod_cfg, term).await;

    // SPDY, no TTY: stdin in, stdout and stderr on their own streams.
    let url = attach_url(&mut c, &echo, false).await;
    let s = spdy_connect(&url, "v4.channel.k8s.io").await;
    let _err = spdy_open(&s, &[("streamType", "error")], true).await;
    let mut stdin = spdy_open(&s, &[("streamType", "stdin")], false).await;
    let mut stdout = spdy_open(&s, &[("streamType", "stdout")], true).await;
    let mut stderr = spdy_open(&s, &[("streamType", "stderr")], true).await;
    stdin.writer.write_all(b"spdy\n").await.unwrap();
    stdin.writer.flush().await.unwrap();
    let out = read_until(&mut stdout.reader, "out-spdy\n").await;
    assert!(!out.contains("err-"), "{out}");
    read_until(&mut stderr.reader, "err-spdy\n").await;
    s.close().await;

    // WebSocket v5, no TTY: the same container again (the attach above left it running).
    let url = attach_url(&mut c, &echo, false).await;
    let mut ws = ws_connect(&url).await;
    ws.send(Message::Binary(b"\x00ws\n".to_vec().into()))
        .await
        .unwrap();
    ws_until(&mut ws, 1, "out-ws\n").await;
    ws_until(&mut ws, 2, "err-ws\n").await;
    ws.close(None).await.unwrap();

    // SPDY with a TTY: the size the client sends is the terminal's size inside.
    let url = attach_url(&mut c, &term, true).await;
    let s = spdy_connect(&url, "v4.channel.k8s.io").await;
    let _err = spdy_open(&s, &[("streamType", "error")], true).await;
    let mut stdin = spdy_open(&s, &[("streamType", "stdin")], false).await;
    let mut stdout = spdy_open(&s, &[("streamType", "stdout")], true).await;
    let mut resize = spdy_open(&s, &[("streamType", "resize")], false).await;
    resize
        .writer
        .write_all(br#"{"Width":123,"Height":45}"#)
        .await
        .unwrap();
    resize.writer.flush().await.unwrap();
    // The size is applied by a task of its own: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stdin.writer.write_all(b"stty size\n").await.unwrap();
    stdin.writer.flush().await.unwrap();
    read_until(&mut stdout.reader, "45 123").await;
    s.close().await;

    // WebSocket v5 with a TTY: resize on channel 4.
    let url = attach_url(&mut c, &term, true).await;
    let mut ws = ws_connect(&url).await;
    ws.send(Message::Binary(
        b"\x04{\"Width\":77,\"Height\":22}".to_vec().into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(Message::Binary(b"\x00stty size\n".to_vec().into()))
        .await
        .unwrap();
    ws_until(&mut ws, 1, "22 77").await;
    ws.close(None).await.unwrap();

    // Attaching to a container that is not running is refused.
    let created =
        c.rt.create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("idle", "sleep 100")),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    let e =
        c.rt.attach(api::AttachRequest {
            container_id: created,
            stdin: false,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");

    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

/// Port forwarding reaches a server listening inside the pod's network namespace (busybox
/// httpd on the pod's port 8080, which nothing on the host serves), over SPDY
/// (`portforward.k8s.io`, data and error streams per connection) and WebSocket (`?port=`).
#[tokio::test]
async fn port_forward_over_spdy_and_websocket() {
    let Some((_d, _net, mut c, pod, pod_cfg)) = pod_env("pf").await else {
        return;
    };
    let web = run_container(
        &mut c,
        &pod,
        &pod_cfg,
        container_config(
            "web",
            "mkdir -p /tmp/www && echo hello-from-the-pod > /tmp/www/index.html && \
             exec httpd -f -p 8080 -h /tmp/www",
        ),
    )
    .await;
    // Ready when it answers inside the pod.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r =
            c.rt.exec_sync(api::ExecSyncRequest {
                container_id: web.clone(),
                cmd: vec![
                    "sh".into(),
                    "-c".into(),
                    "wget -q -O- http://127.0.0.1:8080/".into(),
                ],
                timeout: 5,
            })
            .await
            .unwrap()
            .into_inner();
        if r.exit_code == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "httpd not up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pf_url = |c: &mut CriClient| {
        let mut rt = c.rt.clone();
        let pod = pod.clone();
        async move {
            rt.port_forward(api::PortForwardRequest {
                pod_sandbox_id: pod,
                port: vec![8080],
            })
            .await
            .expect("PortForward")
            .into_inner()
            .url
        }
    };
    const GET: &[u8] = b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n";

    // SPDY: two connections on one session.
    let url = pf_url(&mut c).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let s = spdy_connect(&url, "portforward.k8s.io").await;
    for id in ["0", "1"] {
        let h = |ty| [("streamType", ty), ("port", "8080"), ("requestID", id)];
        let mut err = spdy_open(&s, &h("error"), false).await;
        err.writer.shutdown().await.unwrap();
        let mut data = spdy_open(&s, &h("data"), false).await;
        data.writer.write_all(GET).await.unwrap();
        data.writer.flush().await.unwrap();
        let resp = read_until(&mut data.reader, "hello-from-the-pod").await;
        assert!(
            resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
            "{resp}"
        );
    }
    // A port nothing listens on: the error stream says so.
    let h = |ty| [("streamType", ty), ("port", "8081"), ("requestID", "2")];
    let mut err = spdy_open(&s, &h("error"), false).await;
    let _data = spdy_open(&s, &h("data"), false).await;
    let msg = read_until(&mut err.reader, "8081").await;
    assert!(msg.contains("error forwarding port 8081"), "{msg}");
    s.close().await;

    // WebSocket: channel 0 is port 8080's data, 1 its errors; each starts with the port.
    let url = pf_url(&mut c).await;
    let mut ws = ws_connect_with(&format!("{url}?port=8080"), "v4.channel.k8s.io").await;
    let mut first = Vec::new();
    while first.len() < 2 {
        let Some(Ok(Message::Binary(b))) = ws.next().await else {
            panic!("closed before the port frames")
        };
        assert_eq!(&b[1..], &8080u16.to_le_bytes(), "{b:?}");
        first.push(b[0]);
    }
    first.sort();
    assert_eq!(first, [0, 1]);
    let mut msg = vec![0u8];
    msg.extend_from_slice(GET);
    ws.send(Message::Binary(msg.into())).await.unwrap();
    ws_until(&mut ws, 0, "hello-from-the-pod").await;
    let _ = ws.close(None).await;

    // A pod that is stopped has no port to forward to.
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let e =
        c.rt.port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![8080],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

/// A pod on the node's network (NamespaceMode NODE) has no namespace of its own: as with
/// containerd, port forwarding reaches the port on the node's loopback, where the pod's
/// server listens.
#[tokio::test]
async fn port_forward_into_a_host_network_pod() {
    let node_network = api::LinuxPodSandboxConfig {
        security_context: Some(api::LinuxSandboxSecurityContext {
            namespace_options: Some(api::NamespaceOption {
                network: api::NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some((_d, _net, mut c, pod, pod_cfg)) = pod_env_with("pfhost", Some(node_network)).await
    else {
        return;
    };
    // A port free on the host right now, for the pod's server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run_container(
        &mut c,
        &pod,
        &pod_cfg,
        container_config(
            "web",
            &format!(
                "mkdir -p /tmp/www && echo hello-from-the-node-pod > /tmp/www/index.html && \
                 exec httpd -f -p 127.0.0.1:{port} -h /tmp/www"
            ),
        ),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "httpd not up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url =
        c.rt.port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![i32::from(port)],
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url;
    let mut ws = ws_connect_with(&format!("{url}?port={port}"), "v4.channel.k8s.io").await;
    let mut msg = vec![0u8];
    msg.extend_from_slice(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n");
    ws.send(Message::Binary(msg.into())).await.unwrap();
    let resp = ws_until(&mut ws, 0, "hello-from-the-node-pod").await;
    assert!(resp.contains("200"), "{resp}");
    let _ = ws.close(None).await;
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}
