//! `connect_in_netns` reaches a port on the loopback of another network namespace (what port
//! forwarding into a pod does). Needs root; creates and removes its own netns.
// An integration-test crate: its #[test]s stand at the top level.
#![allow(clippy::tests_outside_test_module)]

use std::process::{Child, Command};
use std::time::Duration;

use berth_cri::streaming::connect_in_netns;
use tokio::io::AsyncReadExt;

struct Guard {
    netns: String,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[tokio::test]
async fn connects_to_a_port_inside_a_netns() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("python3").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and python3");
        return;
    }
    let pid = std::process::id();
    let mut g = Guard {
        netns: format!("bcri-pf-{pid}"),
        child: None,
    };
    assert!(Command::new("ip")
        .args(["netns", "add", &g.netns])
        .status()
        .unwrap()
        .success());
    let path = std::path::PathBuf::from(format!("/run/netns/{}", g.netns));
    let port = 30_000 + (pid % 20_000) as u16;

    // Nothing listens on the namespace's loopback yet (and it is down).
    assert!(connect_in_netns(&path, port).await.is_err());
    assert!(Command::new("ip")
        .args(["netns", "exec", &g.netns, "ip", "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',{port}))\ns.listen(1)\nc,_=s.accept()\nc.sendall(b'inside the pod')\nc.close()\n"
    );
    g.child = Some(
        Command::new("ip")
            .args(["netns", "exec", &g.netns, "python3", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = connect_in_netns(&path, port).await {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = conn.expect("connect inside the netns");
    let mut got = String::new();
    conn.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "inside the pod");
    // The host's own loopback has no such listener: the socket really was made in the netns.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let e = connect_in_netns(std::path::Path::new("/run/netns/bcri-absent"), port)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}
