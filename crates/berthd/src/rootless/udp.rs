//! UDP through the rootless port driver. The outer process receives datagrams on the host
//! port; each client address is a flow with its own connection to the daemon's
//! `forward.sock` (header line `udp <target>`), over which datagrams travel as frames: a
//! 2-byte big-endian length, then the payload. The daemon sends each frame from a UDP socket
//! connected to the target and frames the replies back. A flow idle for a while is closed,
//! as a NAT forgets a UDP mapping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UdpSocket, UnixStream};
use tokio::sync::{mpsc, Mutex};

/// How long a flow lives without traffic either way.
const IDLE: Duration = Duration::from_secs(60);
/// The largest UDP payload (IPv4: 65535 - 20 - 8).
const MAX_DATAGRAM: usize = 65507;

async fn write_frame(w: &mut (impl AsyncWrite + Unpin), data: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(data.len()).map_err(|_| std::io::Error::other("datagram too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(data).await
}

async fn read_frame(r: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    r.read_exact(buf).await?;
    Ok(())
}

/// The outer process's side: datagrams arriving on `socket` (the host port) go to `target`
/// through the daemon, one flow per client address.
pub async fn serve_host(socket: UdpSocket, forward: PathBuf, target: SocketAddr) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>> = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let datagram = buf[..n].to_vec();
        let mut map = flows.lock().await;
        let tx = match map.get(&client) {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(64);
                map.insert(client, tx.clone());
                let (socket, flows, forward) = (socket.clone(), flows.clone(), forward.clone());
                tokio::spawn(async move {
                    let _ = host_flow(&forward, target, client, rx, &socket).await;
                    flows.lock().await.remove(&client);
                });
                tx
            }
        };
        drop(map);
        // A full queue drops the datagram, as a congested network would.
        let _ = tx.try_send(datagram);
    }
}

async fn host_flow(
    forward: &Path,
    target: SocketAddr,
    client: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    socket: &UdpSocket,
) -> std::io::Result<()> {
    let conn = UnixStream::connect(forward).await?;
    let (mut r, mut w) = conn.into_split();
    w.write_all(format!("udp {target}\n").as_bytes()).await?;
    let mut reply = Vec::new();
    loop {
        tokio::select! {
            d = rx.recv() => match d {
                Some(d) => write_frame(&mut w, &d).await?,
                None => return Ok(()),
            },
            res = read_frame(&mut r, &mut reply) => {
                res?;
                socket.send_to(&reply, client).await?;
            }
            _ = tokio::time::sleep(IDLE) => return Ok(()),
        }
    }
}

/// The daemon's side of one flow: `conn` has passed its header line; frames go to `target`
/// from a socket of their own and replies come back framed.
pub async fn serve_flow(
    conn: tokio::io::BufReader<UnixStream>,
    target: SocketAddr,
) -> std::io::Result<()> {
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal address")
    } else {
        "[::]:0".parse().expect("literal address")
    };
    let udp = UdpSocket::bind(local).await?;
    udp.connect(target).await?;
    let (mut r, mut w) = tokio::io::split(conn);
    let mut frame = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            res = read_frame(&mut r, &mut frame) => {
                res?;
                let _ = udp.send(&frame).await;
            }
            res = udp.recv(&mut buf) => {
                // ICMP errors (nothing listening yet) surface here; the flow goes on.
                if let Ok(n) = res {
                    write_frame(&mut w, &buf[..n]).await?;
                }
            }
            _ = tokio::time::sleep(IDLE) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_go_through_both_sides_and_back() {
        let dir = std::env::temp_dir().join(format!("berth-udp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fwd = dir.join("forward.sock");
        let _f = super::super::ports::serve_forward(&fwd).unwrap();
        // The "container": a UDP echo server.
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 1500];
            while let Ok((n, from)) = echo.recv_from(&mut b).await {
                let _ = echo.send_to(&b[..n], from).await;
            }
        });
        let host = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let host_addr = host.local_addr().unwrap();
        tokio::spawn(serve_host(host, fwd.clone(), target));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(host_addr).await.unwrap();
        for msg in [&b"one"[..], b"two"] {
            client.send(msg).await.unwrap();
            let mut b = [0u8; 16];
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut b))
                .await
                .expect("a reply")
                .unwrap();
            assert_eq!(&b[..n], msg);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
