//! critest's multi-container and port-mapping cases against berthd's CRI: the containers of a
//! pod share its network (one reaches the other on `localhost`), each has its own CRI log and
//! takes ExecSync; a pod's `port_mappings` reach the CNI `portmap` plugin, so the node's
//! address and the host port lead to the container port, and the container port alone is served
//! on the pod's IP. Needs root and containernetworking-plugins (and `iptables` for `portmap`).

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_tests::cri::*;
use berth_tests::cri_env::Env;
use berth_tests::*;

fn ready() -> bool {
    if !is_root() || !cni_plugins_present() {
        eprintln!("skipped: needs root and the CNI plugins in {PLUGIN_DIR}");
        return false;
    }
    true
}

/// A server in the container: each connection to `port` gets `reply`.
fn server(name: &str, port: u16, reply: &str) -> api::ContainerConfig {
    container_config(
        name,
        &format!("echo {name} up; while true; do echo {reply} | nc -l -p {port}; done"),
    )
}

/// The pod's IP, from PodSandboxStatus.
async fn pod_ip(e: &mut Env, pod: &str) -> String {
    e.c.rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default()
}

/// What a TCP connection to `addr` reads until the server closes it (retried while the
/// server is not yet listening).
fn fetch(addr: &str) -> String {
    let mut got = String::new();
    eventually(Duration::from_secs(15), || {
        let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        got.clear();
        s.read_to_string(&mut got).is_ok() && !got.is_empty()
    });
    got.trim().to_string()
}

#[tokio::test]
async fn containers_of_a_pod_share_its_network_and_have_their_own_logs_and_exec() {
    if !ready() {
        return;
    }
    let mut e = cri_env::env().await;
    let pod = e
        .pod(
            "multi",
            cri_env::ns_opts(
                api::NamespaceMode::Pod,
                api::NamespaceMode::Container,
                api::NamespaceMode::Pod,
            ),
            &[],
        )
        .await;
    let srv = e.start(&pod, server("srv", 8080, "hello-from-srv")).await;
    let cli = e
        .start(
            &pod,
            container_config("cli", "echo cli up; exec sleep 1000"),
        )
        .await;
    // The client container reaches the server container on the pod's loopback.
    let mut got = String::new();
    for _ in 0..30 {
        got = e.sh(&cli, "nc -w 2 127.0.0.1 8080 </dev/null").await.1;
        if got.contains("hello-from-srv") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(got.contains("hello-from-srv"), "over localhost: {got:?}");
    // Both see the same interfaces and address.
    let addr = |out: String| {
        out.lines()
            .filter(|l| l.contains("inet "))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(";")
    };
    let a = addr(e.out(&srv, "ip -4 addr").await);
    let b = addr(e.out(&cli, "ip -4 addr").await);
    assert_eq!(a, b, "one network namespace");
    assert!(a.contains(&pod_ip(&mut e, &pod.0).await), "{a}");
    // Each container has its own hostname-independent process view and its own log.
    assert_eq!(
        e.out(&srv, "cat /proc/1/cmdline | tr '\\0' ' '")
            .await
            .split(' ')
            .next(),
        Some("sh")
    );
    assert_eq!(
        e.out(&cli, "cat /proc/1/cmdline | tr '\\0' ' '")
            .await
            .split(' ')
            .next(),
        Some("sleep")
    );
    for (name, line) in [("srv", "srv up"), ("cli", "cli up")] {
        let path = e.logs().join(format!("{name}.log"));
        assert!(
            eventually(Duration::from_secs(10), || std::fs::read_to_string(&path)
                .is_ok_and(|t| t
                    .lines()
                    .any(|l| l.ends_with(&format!(" stdout F {line}"))))),
            "{}: {:?}",
            path.display(),
            std::fs::read_to_string(&path)
        );
    }
    e.remove_pod(&pod.0).await;
}

/// The nat table's chains `portmap` adds (its `CNI-HOSTPORT-*` chains once per host, a
/// `CNI-DN-*` chain per pod) and the jumps to them: whatever the test added is removed at the
/// end, also when it fails before CNI DEL ran.
struct PortmapChains {
    before: Vec<String>,
}

fn nat_rules() -> String {
    Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

fn nat_chains(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|r| r.strip_prefix("-N "))
        .map(str::to_string)
        .collect()
}

impl PortmapChains {
    fn note() -> PortmapChains {
        PortmapChains {
            before: nat_chains(&nat_rules()),
        }
    }
}

impl Drop for PortmapChains {
    fn drop(&mut self) {
        let rules = nat_rules();
        let new: Vec<String> = nat_chains(&rules)
            .into_iter()
            .filter(|c| !self.before.contains(c))
            .collect();
        for r in rules.lines().filter(|r| r.starts_with("-A ")) {
            if new.iter().any(|c| r.ends_with(&format!("-j {c}"))) {
                // Through a shell: the rules carry quoted comments.
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(format!("iptables -w -t nat -D {}", &r[3..]))
                    .output();
            }
        }
        for chain in &new {
            let _ = Command::new("iptables")
                .args(["-w", "-t", "nat", "-F", chain])
                .output();
        }
        for chain in &new {
            let _ = Command::new("iptables")
                .args(["-w", "-t", "nat", "-X", chain])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_mapping_with_a_host_port_and_with_the_container_port_only() {
    if !ready() {
        return;
    }
    let have_portmap = std::path::Path::new(PLUGIN_DIR).join("portmap").exists()
        && Command::new("iptables")
            .args(["-w", "-t", "nat", "-S"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !have_portmap {
        eprintln!("skipped: needs the portmap plugin and a working iptables");
        return;
    }
    let _chains = PortmapChains::note();
    let net = CniNet::with_plugins(vec![serde_json::json!(
        {"type": "portmap", "capabilities": {"portMappings": true}}
    )]);
    let args = net.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with_args(&args);
    d.load_busybox();
    let c = CriClient::connect(&d.cri_socket()).await;
    let mut e = Env { d, _net: net, c };
    let host_port = free_port();
    let mut cfg = pod_config("ports", &[], &e.logs());
    cfg.port_mappings = vec![
        api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port: 8080,
            host_port: i32::from(host_port),
            host_ip: String::new(),
        },
        api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port: 9090,
            host_port: 0,
            host_ip: String::new(),
        },
    ];
    let pod = e.run_pod(cfg).await;
    e.start(&pod, server("web", 8080, "via-host-port")).await;
    e.start(&pod, server("other", 9090, "via-pod-ip")).await;
    let ip = pod_ip(&mut e, &pod.0).await;
    assert!(!ip.is_empty(), "the pod has an IP");
    // The node's address on the pod network (the bridge's gateway) and the host port.
    let gateway = format!(
        "{}1",
        ip.rsplit_once('.').map(|(n, _)| format!("{n}.")).unwrap()
    );
    assert_eq!(fetch(&format!("{gateway}:{host_port}")), "via-host-port");
    // A container port without a host port is served on the pod's IP.
    assert_eq!(fetch(&format!("{ip}:9090")), "via-pod-ip");
    assert!(
        nat_rules().contains(&format!("--dport {host_port}")),
        "portmap's DNAT rule"
    );
    // Stopping the pod takes the mapping away (CNI DEL reaches portmap).
    e.c.rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.0.clone(),
        })
        .await
        .expect("StopPodSandbox");
    assert!(
        !nat_rules().contains(&format!("--dport {host_port}")),
        "the DNAT rule stayed"
    );
    e.remove_pod(&pod.0).await;
}
