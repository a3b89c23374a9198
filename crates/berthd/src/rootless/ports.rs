//! The rootless port driver: a port published by a container of the rootless daemon is
//! opened on the host by the outer process (the only one in the host's network namespace)
//! and each connection is carried into the daemon's namespace, as rootlesskit's builtin
//! driver does.
//!
//! Two unix sockets under `<exec-root>/rootless` (a directory only the user can enter):
//! - `ports.sock`, served by the outer process: the daemon sends one line,
//!   `expose tcp|udp <host ip> <host port> <target ip:port>`, the answer is `ok` or
//!   `error <message>`; the host port stays open as long as the daemon keeps that
//!   connection open (so a crashed daemon leaves no ports behind).
//! - `forward.sock`, served by the daemon: for each connection the outer process accepts on
//!   the host it connects here and sends `<target ip:port>`; the daemon connects to the
//!   target inside its namespace and both sides copy bytes. A UDP flow (one per client
//!   address) sends `udp <target ip:port>` and then carries datagrams framed (`udp.rs`).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use berth_daemon::rootless::PortDriverError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

pub const DRIVER_SOCKET: &str = "ports.sock";
pub const FORWARD_SOCKET: &str = "forward.sock";
/// No request line is longer (`expose tcp` + an IPv6 address twice + ports).
const MAX_LINE: u64 = 256;

/// One `expose` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Expose {
    /// `tcp` or `udp`.
    pub proto: String,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub target: SocketAddr,
}

impl Expose {
    pub fn line(&self) -> String {
        format!(
            "expose {} {} {} {}\n",
            self.proto, self.host_ip, self.host_port, self.target
        )
    }

    pub fn parse(line: &str) -> Result<Expose, String> {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["expose", proto @ ("tcp" | "udp"), ip, port, target] => Ok(Expose {
                proto: proto.to_string(),
                host_ip: ip.parse().map_err(|_| format!("bad host address {ip:?}"))?,
                host_port: port
                    .parse()
                    .map_err(|_| format!("bad host port {port:?}"))?,
                target: target
                    .parse()
                    .map_err(|_| format!("bad target {target:?}"))?,
            }),
            ["expose", proto, ..] => Err(format!(
                "the rootless port driver publishes TCP and UDP, not {proto}"
            )),
            _ => Err(format!("bad request {line:?}")),
        }
    }
}

fn bind_unix(path: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The outer process's side: serves `driver` and forwards accepted host connections through
/// the daemon's `forward` socket.
pub fn serve_driver(driver: &Path, forward: &Path) -> Result<tokio::task::JoinHandle<()>> {
    let listener = bind_unix(driver)?;
    let forward = forward.to_path_buf();
    Ok(tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(expose(conn, forward.clone()));
        }
    }))
}

/// One `expose` connection: binds the host port, answers, serves it until the daemon closes
/// the connection.
async fn expose(conn: UnixStream, forward: PathBuf) {
    let mut conn = BufReader::new(conn);
    let mut line = String::new();
    if (&mut conn)
        .take(MAX_LINE)
        .read_line(&mut line)
        .await
        .is_err()
    {
        return;
    }
    let req = match Expose::parse(&line) {
        Ok(r) => r,
        Err(e) => {
            let _ = conn.write_all(format!("error {e}\n").as_bytes()).await;
            return;
        }
    };
    let at = SocketAddr::new(req.host_ip, req.host_port);
    let server = match serve_port(at, &req, forward).await {
        Ok(s) => s,
        Err(e) => {
            let _ = conn
                .write_all(format!("error {}\n", bind_error(at, &e)).as_bytes())
                .await;
            return;
        }
    };
    // The daemon holds the connection while the port is published; EOF or an error ends it.
    if conn.write_all(b"ok\n").await.is_ok() {
        let mut rest = [0u8; 16];
        while matches!(conn.read(&mut rest).await, Ok(n) if n > 0) {}
    }
    server.abort();
}

/// Binds the host port `at` of `req` and serves it (TCP or UDP) until the task is aborted,
/// each inbound connection or datagram carried through the daemon's `forward` socket.
async fn serve_port(
    at: SocketAddr,
    req: &Expose,
    forward: PathBuf,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let target = req.target;
    if req.proto == "udp" {
        let socket = tokio::net::UdpSocket::bind(at).await?;
        return Ok(tokio::spawn(super::udp::serve_host(
            socket, forward, target,
        )));
    }
    let listener = TcpListener::bind(at).await?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let forward = forward.clone();
            tokio::spawn(async move {
                let _ = carry(inbound, &forward, target).await;
            });
        }
    }))
}

/// Why a host port could not be opened, with what to do about the privileged ports.
fn bind_error(at: SocketAddr, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied && at.port() < 1024 {
        let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "1024".into());
        return format!(
            "cannot expose privileged port {}: net.ipv4.ip_unprivileged_port_start is {start}; as root: sysctl -w net.ipv4.ip_unprivileged_port_start={} (or publish a port >= {start})",
            at.port(),
            at.port()
        );
    }
    if e.kind() == std::io::ErrorKind::AddrInUse {
        return format!("Bind for {at} failed: port is already allocated");
    }
    format!("Bind for {at} failed: {e}")
}

async fn carry(mut inbound: TcpStream, forward: &Path, target: SocketAddr) -> std::io::Result<()> {
    let mut out = UnixStream::connect(forward).await?;
    out.write_all(format!("{target}\n").as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut inbound, &mut out).await?;
    Ok(())
}

/// The daemon's side: serves `path`, connecting each forwarded connection to its target in
/// the daemon's network namespace.
pub fn serve_forward(path: &Path) -> Result<tokio::task::JoinHandle<()>> {
    let listener = bind_unix(path)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                let mut conn = BufReader::new(conn);
                let mut line = String::new();
                if (&mut conn)
                    .take(MAX_LINE)
                    .read_line(&mut line)
                    .await
                    .is_err()
                {
                    return;
                }
                if let Some(t) = line.trim().strip_prefix("udp ") {
                    if let Ok(target) = t.parse::<SocketAddr>() {
                        let _ = super::udp::serve_flow(conn, target).await;
                    }
                    return;
                }
                let Ok(target) = line.trim().parse::<SocketAddr>() else {
                    return;
                };
                if let Ok(mut out) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut out).await;
                }
            });
        }
    }))
}

/// The daemon's client of the outer process's `ports.sock`.
#[derive(Debug)]
pub struct Driver {
    pub socket: PathBuf,
}

impl berth_daemon::rootless::PortDriver for Driver {
    fn expose(
        &self,
        proto: &str,
        host_ip: IpAddr,
        host_port: u16,
        target: SocketAddr,
    ) -> std::result::Result<OwnedFd, PortDriverError> {
        let req = Expose {
            proto: proto.to_string(),
            host_ip,
            host_port,
            target,
        };
        let talk = || -> std::io::Result<(std::os::unix::net::UnixStream, String)> {
            let mut s = std::os::unix::net::UnixStream::connect(&self.socket)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(req.line().as_bytes())?;
            // Byte by byte: nothing past the answer's newline may be consumed.
            let mut answer = Vec::new();
            let mut b = [0u8; 1];
            while s.read(&mut b)? == 1 && b[0] != b'\n' && answer.len() < 4096 {
                answer.push(b[0]);
            }
            s.set_read_timeout(None)?;
            Ok((s, String::from_utf8_lossy(&answer).into_owned()))
        };
        let (stream, answer) = talk().map_err(|source| PortDriverError::Unreachable {
            socket: self.socket.clone(),
            source,
        })?;
        match answer.strip_prefix("error ") {
            Some(msg) => Err(PortDriverError::Refused(msg.to_string())),
            None if answer == "ok" => Ok(OwnedFd::from(stream)),
            None => Err(PortDriverError::Garbled(answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_only_tcp_is_served() {
        let r = Expose {
            proto: "tcp".into(),
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 8080,
            target: "172.30.0.2:80".parse().unwrap(),
        };
        assert_eq!(r.line(), "expose tcp 127.0.0.1 8080 172.30.0.2:80\n");
        assert_eq!(Expose::parse(&r.line()).unwrap(), r);
        let v6 = Expose::parse("expose tcp :: 80 [fd00::2]:8080").unwrap();
        assert_eq!(v6.target, "[fd00::2]:8080".parse().unwrap());
        assert_eq!(
            Expose::parse("expose udp 0.0.0.0 53 10.0.0.2:53")
                .unwrap()
                .proto,
            "udp"
        );
        assert!(Expose::parse("expose sctp 0.0.0.0 53 10.0.0.2:53")
            .unwrap_err()
            .contains("TCP and UDP"));
        assert!(Expose::parse("expose tcp x 1 1.2.3.4:5").is_err());
    }

    #[tokio::test]
    async fn a_host_port_forwards_through_both_sockets_and_closes_with_its_lease() {
        use berth_daemon::rootless::PortDriver;
        let dir = std::env::temp_dir().join(format!("berth-ports-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (drv, fwd) = (dir.join(DRIVER_SOCKET), dir.join(FORWARD_SOCKET));
        let _d = serve_driver(&drv, &fwd).unwrap();
        let _f = serve_forward(&fwd).unwrap();
        // The "container": an echo server.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let client = Driver {
            socket: drv.clone(),
        };
        let lease = tokio::task::spawn_blocking(move || {
            client.expose("tcp", "127.0.0.1".parse().unwrap(), port, target)
        })
        .await
        .unwrap()
        .unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        drop(lease);
        let mut closed = false;
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "the host port outlived its lease");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
