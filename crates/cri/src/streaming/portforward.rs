//! Port forwarding into a pod: SPDY (`portforward.k8s.io`: per forwarded connection the client
//! opens a data and an error stream with the same `requestID` and a `port` header) and
//! WebSocket (ports from the `port` query parameters; channel 2n carries the n-th port's data
//! and 2n+1 its errors, each starting with the port as two little-endian bytes).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::runtime::{BoxRead, BoxWrite, StreamRuntime};
use super::spdy::conn::{Session, SpdyStream};
use super::websocket::Channels;

pub const PROTOCOL_V1: &str = "portforward.k8s.io";

/// A stream pair waits at most this long for its other half.
const PAIR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn forward(
    rt: Arc<dyn StreamRuntime>,
    pod: String,
    port: u16,
    from_client: BoxRead,
    to_client: BoxWrite,
    mut errors: BoxWrite,
) {
    if let Err(e) = rt.port_forward(&pod, port, from_client, to_client).await {
        let msg = format!("error forwarding port {port} to pod {pod}: {e}");
        let _ = errors.write_all(msg.as_bytes()).await;
    }
    let _ = errors.shutdown().await;
}

/// Serves port forwarding on a SPDY session until the client closes it.
pub async fn serve_spdy(
    rt: Arc<dyn StreamRuntime>,
    pod: String,
    session: Session,
    mut incoming: mpsc::Receiver<SpdyStream>,
) {
    struct Half {
        data: Option<SpdyStream>,
        error: Option<SpdyStream>,
        since: tokio::time::Instant,
    }
    let mut pending: HashMap<String, Half> = HashMap::new();
    while let Some(s) = incoming.recv().await {
        pending.retain(|_, h| h.since.elapsed() < PAIR_TIMEOUT);
        let Some(request) = s.header("requestid").map(str::to_string) else {
            session.reset(s.id).await;
            continue;
        };
        let port = s.header("port").and_then(|p| p.parse::<u16>().ok());
        let ty = s.header("streamtype").map(str::to_string);
        let half = pending.entry(request.clone()).or_insert(Half {
            data: None,
            error: None,
            since: tokio::time::Instant::now(),
        });
        match ty.as_deref() {
            Some("data") => half.data = Some(s),
            Some("error") => half.error = Some(s),
            _ => {
                session.reset(s.id).await;
                continue;
            }
        }
        if half.data.is_some() && half.error.is_some() {
            let Some(Half {
                data: Some(data),
                error: Some(error),
                ..
            }) = pending.remove(&request)
            else {
                continue;
            };
            let mut err_w: BoxWrite = Box::new(error.writer);
            let Some(port) = port.or_else(|| data.header("port").and_then(|p| p.parse().ok()))
            else {
                let _ = err_w.write_all(b"invalid port header").await;
                let _ = err_w.shutdown().await;
                continue;
            };
            tokio::spawn(forward(
                rt.clone(),
                pod.clone(),
                port,
                Box::new(data.reader),
                Box::new(data.writer),
                err_w,
            ));
        }
    }
    session.close().await;
}

/// Serves port forwarding of `ports` on a WebSocket.
pub async fn serve_websocket(
    rt: Arc<dyn StreamRuntime>,
    pod: String,
    ports: Vec<u16>,
    mut ch: Channels,
) {
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        // Channel numbers are one byte, two per port: ports past the 128th get none.
        let (Ok(data), Ok(err)) = (u8::try_from(2 * i), u8::try_from(2 * i + 1)) else {
            break;
        };
        let prefix = port.to_le_bytes().to_vec();
        if ch.send(data, prefix.clone()).await.is_err() || ch.send(err, prefix).await.is_err() {
            return;
        }
        let Some(reader) = ch.reader(data) else {
            continue;
        };
        tasks.push(tokio::spawn(forward(
            rt.clone(),
            pod.clone(),
            port,
            Box::new(reader),
            Box::new(ch.writer(data)),
            Box::new(ch.writer(err)),
        )));
    }
    // The connection lives until the client leaves.
    ch.client_gone().await;
    for t in tasks {
        t.abort();
    }
    ch.close().await;
}
