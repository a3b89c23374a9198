//! Kernel link operations over rtnetlink (issue 6): what a user sees when the kernel refuses
//! part of an attachment, and that nothing is left behind when it does.

use std::time::Duration;

use berth_tests::*;

fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

struct Rm<'a>(&'a Daemon, &'static str);
impl Drop for Rm<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["rm", "-f", self.1]);
    }
}

#[test]
fn a_mac_the_kernel_refuses_fails_the_start_and_leaves_no_veth_behind() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _rm = Rm(&d, "badmac");
    // Well-formed, so create accepts it, but a multicast address no Ethernet interface takes.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "badmac",
        "--mac-address",
        "01:00:5e:00:00:01",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("attaching to network bridge") && err.contains("creating veth"),
        "{err}"
    );
    assert!(err.contains("Cannot assign requested address"), "{err}");
    let status = stdout(&d.docker(&["inspect", "-f", "{{.State.Status}}", "badmac"]));
    assert_ne!(status.trim(), "running");
    assert!(
        eventually(Duration::from_secs(5), || bridge_ports(&d.bridge)
            .is_empty()),
        "{:?}",
        bridge_ports(&d.bridge)
    );
    let left: Vec<_> = std::fs::read_dir(d.root.join("exec/netns"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // The bridge is fine for the next container.
    let out = d.docker(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
    assert_ok(&out, "run after the failure");
    let ip = d
        .bip
        .split('/')
        .next()
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    assert!(
        stdout(&out).contains(&format!("inet {ip}.")),
        "{}",
        stdout(&out)
    );
}
