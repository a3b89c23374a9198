//! Published ports over the fake firewall: the DNAT rules in berth's nftables script, the
//! ports in inspect, and a refused ruleset leaving nothing behind.

use berth_api_types::container::{HostConfig, PortBinding, PortMap};

use super::inspect;
use crate::host::testkit::{TestDaemon, BRIDGE};
use crate::model::Status;

fn publish(hc: &mut HostConfig, container_port: &str) {
    hc.network_mode = "bridge".into();
    let mut map = PortMap::new();
    map.insert(
        container_port.into(),
        Some(vec![PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: String::new(),
        }]),
    );
    hc.port_bindings = Some(map);
}

/// The host port the daemon chose for `key` (e.g. `80/tcp`).
fn host_port(t: &TestDaemon, id: &str, key: &str) -> u16 {
    let s = inspect(t, id);
    let p = &s["NetworkSettings"]["Ports"][key][0];
    assert_eq!(p["HostIp"], "127.0.0.1", "{s}");
    p["HostPort"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("host port")
}

#[tokio::test]
async fn a_published_port_becomes_a_dnat_rule() {
    let t = TestDaemon::with_bridge().await;
    let id = t.run("web", |hc| publish(hc, "80/tcp")).await;
    let port = host_port(&t, &id, "80/tcp");
    let script = t.fake.nft_script().unwrap();
    assert!(
        script.contains(&format!(
            "ip daddr 127.0.0.1 tcp dport {port} dnat to 10.77.0.2:80"
        )),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "ip saddr 10.77.0.0/16 oifname != \"{BRIDGE}\" masquerade"
        )),
        "{script}"
    );
    // Loopback traffic to a published port is masqueraded onto the bridge.
    assert!(
        script.contains(&format!(
            "ip saddr 127.0.0.0/8 oifname \"{BRIDGE}\" masquerade"
        )),
        "{script}"
    );
}

#[tokio::test]
async fn the_dnat_rule_goes_when_the_container_exits() {
    let t = TestDaemon::with_bridge().await;
    let id = t.run("web", |hc| publish(hc, "53/udp")).await;
    let port = host_port(&t, &id, "53/udp");
    let rule = format!("udp dport {port} dnat to 10.77.0.2:53");
    assert!(t.fake.nft_script().unwrap().contains(&rule));
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_status(&id, Status::Exited).await;
    for _ in 0..100 {
        if !t.fake.nft_script().unwrap().contains(&rule) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!t.fake.nft_script().unwrap().contains(&rule));
    // An exited container shows no host port any more.
    let ports = inspect(&t, &id)["NetworkSettings"]["Ports"].clone();
    assert!(ports.get("53/udp").is_none_or(|p| p.is_null()), "{ports}");
}

#[tokio::test]
async fn a_refused_ruleset_fails_the_start_and_leaves_nothing() {
    // A /30: one address for containers, so the second start gets it only if it was freed.
    let t = TestDaemon::with(crate::host::fake::FakeHost::new(), |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = "10.77.0.1/30".into();
    })
    .await;
    let id = t.create("web", |hc| publish(hc, "8080/tcp")).await;
    let applied = t.fake.count("apply_nft");
    t.fake.fail_at("apply_nft", applied + 1);
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(e.message.contains("publishing ports"), "{}", e.message);
    assert!(
        e.message.contains("injected failure of apply_nft"),
        "{}",
        e.message
    );
    assert_ne!(t.status(&id), Status::Running);
    assert_eq!(t.fake.namespaces(), 0, "no namespace is left");
    assert_eq!(t.fake.mounts(), 0, "no rootfs is left mounted");
    assert_eq!(t.fake.count("launch_shim"), 0);
    let n = serde_json::to_value(t.d.network_inspect("bridge").await.unwrap()).unwrap();
    assert!(
        n["Containers"].as_object().is_none_or(|m| m.is_empty()),
        "{n}"
    );
    // The next start works and gets the same address.
    t.d.container_start(&id).await.expect("second start");
    let script = t.fake.nft_script().unwrap();
    assert!(script.contains("dnat to 10.77.0.2:8080"), "{script}");
}

#[tokio::test]
async fn publish_all_maps_every_exposed_port() {
    let t = TestDaemon::with_bridge().await;
    let mut req = berth_api_types::container::CreateRequest::default();
    req.config.exposed_ports = Some(
        [("7000/tcp".to_string(), serde_json::json!({}))]
            .into_iter()
            .collect(),
    );
    req.host_config = Some(HostConfig {
        network_mode: "bridge".into(),
        publish_all_ports: true,
        ..HostConfig::default()
    });
    let id = t.create_req("all", req).await.expect("create");
    t.d.container_start(&id).await.expect("start");
    let s = inspect(&t, &id);
    let port = s["NetworkSettings"]["Ports"]["7000/tcp"][0]["HostPort"]
        .as_str()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{s}"));
    let script = t.fake.nft_script().unwrap();
    assert!(
        script.contains(&format!("tcp dport {port} dnat to 10.77.0.2:7000")),
        "{script}"
    );
}
