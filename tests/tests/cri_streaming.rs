//! The CRI streaming server of berthd: Exec through the URL the Exec RPC hands out, over the
//! WebSocket remotecommand protocol (`v5.channel.k8s.io`) a kubelet proxies, into a pod's
//! container running on berth. Needs root and containernetworking-plugins.

use std::time::Duration;

use berth_tests::cri::*;
use berth_tests::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str) -> Ws {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().unwrap(),
    );
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
