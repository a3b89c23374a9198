//! Networks over the fake links, namespaces and firewall: the default bridge, user-defined
//! networks and their IPAM, connect/disconnect, failures, a daemon restart.

use berth_api_types::network as nt;
use berth_api_types::ErrorKind;

use super::{calls_of, inspect, on_network};
use crate::host::fake::FakeHost;
use crate::host::testkit::{TestDaemon, BRIDGE};
use crate::model::Status;

fn net_req(name: &str, subnet: Option<&str>) -> nt::CreateRequest {
    nt::CreateRequest {
        name: name.into(),
        ipam: subnet.map(|s| nt::Ipam {
            config: Some(vec![nt::IpamConfig {
                subnet: s.into(),
                ..nt::IpamConfig::default()
            }]),
            ..nt::Ipam::default()
        }),
        ..nt::CreateRequest::default()
    }
}

async fn make_net(t: &TestDaemon, name: &str, subnet: &str) -> String {
    t.d.network_create(net_req(name, Some(subnet)))
        .await
        .unwrap_or_else(|e| panic!("network create {name}: {}", e.message))
        .id
}

fn ip_on(t: &TestDaemon, id: &str, net: &str) -> String {
    inspect(t, id)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn connect(t: &TestDaemon, net: &str, id: &str) -> crate::Result<()> {
    t.d.network_connect(
        net,
        nt::ConnectRequest {
            container: id.into(),
            endpoint_config: None,
        },
    )
    .await
}

async fn disconnect(t: &TestDaemon, net: &str, id: &str) -> crate::Result<()> {
    t.d.network_disconnect(
        net,
        nt::DisconnectRequest {
            container: id.into(),
            force: false,
        },
    )
    .await
}

fn members(n: &serde_json::Value) -> usize {
    n["Containers"].as_object().map_or(0, |m| m.len())
}

async fn net_json(t: &TestDaemon, key: &str) -> serde_json::Value {
    serde_json::to_value(t.d.network_inspect(key).await.expect("network inspect")).unwrap()
}

#[tokio::test]
async fn the_default_bridge_comes_from_bridge_and_bip() {
    let t = TestDaemon::with_bridge().await;
    let n = net_json(&t, "bridge").await;
    assert_eq!(n["Name"], "bridge");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/16");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.77.0.1");
    assert_eq!(n["Options"]["com.docker.network.bridge.name"], BRIDGE);
    assert_eq!(
        n["Options"]["com.docker.network.bridge.default_bridge"],
        "true"
    );
}

#[tokio::test]
async fn a_container_on_the_default_bridge_gets_the_first_address() {
    let t = TestDaemon::with_bridge().await;
    let id = t.run("web", |hc| hc.network_mode = "bridge".into()).await;
    let attach = calls_of(&t, "attach");
    assert_eq!(attach, [format!("attach {BRIDGE} eth0 10.77.0.2/16")]);
    assert_eq!(t.fake.namespaces(), 1, "one pinned namespace");
    assert_eq!(ip_on(&t, &id, "bridge"), "10.77.0.2");
    let s = inspect(&t, &id);
    assert_eq!(s["NetworkSettings"]["Gateway"], "10.77.0.1");
    assert_eq!(s["NetworkSettings"]["IPAddress"], "10.77.0.2");
    let routes = calls_of(&t, "set_default_routes");
    assert!(routes.is_empty() || routes.len() == 1, "{routes:?}");
}

#[tokio::test]
async fn an_exit_releases_the_namespace_and_the_address() {
    // A /30: one address for containers, so a second one gets it only if it was freed.
    let t = TestDaemon::with(FakeHost::new(), |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = "10.77.0.1/30".into();
    })
    .await;
    let a = t.run("ca", |hc| hc.network_mode = "bridge".into()).await;
    t.fake.shim(&a).unwrap().exit(0);
    t.wait_status(&a, Status::Exited).await;
    assert_eq!(
        t.fake.namespaces(),
        0,
        "the namespace goes with the process"
    );
    let calls = t.fake.calls();
    let launch = calls.iter().position(|c| c.starts_with("launch_shim"));
    let removed = calls.iter().rposition(|c| c.starts_with("netns_remove"));
    assert!(launch < removed, "removed after the exit: {calls:?}");
    let b = t.run("cb", |hc| hc.network_mode = "bridge".into()).await;
    assert_eq!(
        ip_on(&t, &b, "bridge"),
        "10.77.0.2",
        "the address was given back"
    );
}

#[tokio::test]
async fn two_running_containers_get_distinct_addresses() {
    let t = TestDaemon::with_bridge().await;
    let a = t.run("ca", |hc| hc.network_mode = "bridge".into()).await;
    let b = t.run("cb", |hc| hc.network_mode = "default".into()).await;
    assert_eq!(ip_on(&t, &a, "bridge"), "10.77.0.2");
    assert_eq!(ip_on(&t, &b, "bridge"), "10.77.0.3");
    assert_eq!(members(&net_json(&t, "bridge").await), 2);
}

#[tokio::test]
async fn without_a_default_bridge_bridge_mode_gets_no_network() {
    let t = TestDaemon::new().await;
    let id = t
        .run("lonely", |hc| hc.network_mode = "bridge".into())
        .await;
    assert!(calls_of(&t, "attach").is_empty());
    assert_eq!(t.fake.namespaces(), 1, "a namespace with just lo");
    assert_eq!(t.status(&id), Status::Running);
}

#[tokio::test]
async fn a_user_defined_network_is_created_with_its_subnet_and_bridge() {
    let t = TestDaemon::new().await;
    let id = make_net(&t, "front", "10.99.0.0/24").await;
    let n = net_json(&t, "front").await;
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.99.0.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.99.0.1");
    let bridge = format!("br-{}", &id[..12]);
    assert!(
        t.fake
            .calls()
            .contains(&format!("ensure_bridge {bridge} 10.99.0.1/24")),
        "{:?}",
        t.fake.calls()
    );
    let script = t.fake.nft_script().unwrap();
    assert!(
        script.contains(&format!(
            "ip saddr 10.99.0.0/24 oifname != \"{bridge}\" masquerade"
        )),
        "{script}"
    );
    // By id prefix as well as by name.
    assert_eq!(net_json(&t, &id[..6]).await["Name"], "front");
}

#[tokio::test]
async fn an_internal_network_is_not_masqueraded() {
    let t = TestDaemon::new().await;
    let mut req = net_req("inner", Some("10.98.0.0/24"));
    req.internal = true;
    let id = t.d.network_create(req).await.expect("create").id;
    let br = format!("br-{}", &id[..12]);
    let script = t.fake.nft_script().unwrap();
    assert!(
        !script.contains("ip saddr 10.98.0.0/24 oifname != "),
        "{script}"
    );
    // Fenced in: nothing forwarded in or out of its bridge.
    assert!(
        script.contains(&format!("iifname \"{br}\" oifname != \"{br}\" drop")),
        "{script}"
    );
    assert!(
        script.contains(&format!("oifname \"{br}\" iifname != \"{br}\" drop")),
        "{script}"
    );
    assert_eq!(net_json(&t, "inner").await["Internal"], true);
}

#[tokio::test]
async fn network_create_refuses_a_duplicate_name() {
    let t = TestDaemon::new().await;
    make_net(&t, "dup", "10.97.0.0/24").await;
    let e =
        t.d.network_create(net_req("dup", Some("10.96.0.0/24")))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.message, "network with name dup already exists");
}

#[tokio::test]
async fn network_create_refuses_predefined_names_and_unknown_drivers() {
    let t = TestDaemon::new().await;
    let e = t.d.network_create(net_req("host", None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        "operation is not permitted on predefined host network "
    );
    let mut req = net_req("ov", None);
    req.driver = "overlay".into();
    let e = t.d.network_create(req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "plugin \"overlay\" not found");
    let e = t.d.network_create(net_req("  ", None)).await.unwrap_err();
    assert_eq!(e.message, "network name cannot be empty");
    assert_eq!(t.fake.count("ensure_bridge"), 0, "no bridge for a refusal");
}

#[tokio::test]
async fn overlapping_and_reserved_subnets_are_refused() {
    let t = TestDaemon::new().await;
    make_net(&t, "one", "10.95.0.0/16").await;
    let e =
        t.d.network_create(net_req("two", Some("10.95.3.0/24")))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(
        e.message.starts_with(
            "invalid pool request: Pool overlaps with other one on this address space"
        ),
        "{}",
        e.message
    );
    let e =
        t.d.network_create(net_req("lo", Some("127.0.0.0/24")))
            .await
            .unwrap_err();
    assert!(
        e.message
            .contains("overlaps the loopback range 127.0.0.0/8"),
        "{}",
        e.message
    );
    let e =
        t.d.network_create(net_req("bad", Some("10.94.0.0/33")))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter, "{}", e.message);
    assert_eq!(t.fake.count("ensure_bridge"), 1, "only the first network's");
}

#[tokio::test]
async fn a_network_without_a_subnet_gets_one_from_the_default_pools() {
    let t = TestDaemon::new().await;
    t.d.network_create(net_req("auto", None))
        .await
        .expect("create");
    t.d.network_create(net_req("auto2", None))
        .await
        .expect("create");
    let a = net_json(&t, "auto").await["IPAM"]["Config"][0]["Subnet"].clone();
    let b = net_json(&t, "auto2").await["IPAM"]["Config"][0]["Subnet"].clone();
    assert!(a.as_str().is_some_and(|s| s.contains('/')), "{a}");
    assert_ne!(a, b, "pools do not overlap");
}

#[tokio::test]
async fn network_list_filters_by_name_and_refuses_unknown_filters() {
    let t = TestDaemon::new().await;
    make_net(&t, "alpha", "10.93.0.0/24").await;
    make_net(&t, "beta", "10.92.0.0/24").await;
    let names = |v: Vec<nt::Network>| v.into_iter().map(|n| n.name).collect::<Vec<_>>();
    let got = names(
        t.d.network_list(vec![("name".into(), vec!["alp".into()])], false)
            .await
            .unwrap(),
    );
    assert_eq!(got, ["alpha"]);
    let all = names(t.d.network_list(Vec::new(), false).await.unwrap());
    for n in ["alpha", "beta", "host", "none"] {
        assert!(all.contains(&n.to_string()), "{all:?}");
    }
    let builtin = names(
        t.d.network_list(vec![("type".into(), vec!["builtin".into()])], false)
            .await
            .unwrap(),
    );
    assert!(!builtin.contains(&"alpha".to_string()), "{builtin:?}");
    let e =
        t.d.network_list(vec![("colour".into(), vec!["red".into()])], false)
            .await
            .unwrap_err();
    assert_eq!(e.message, "invalid filter 'colour'");
    let e =
        t.d.network_list(vec![("type".into(), vec!["odd".into()])], false)
            .await
            .unwrap_err();
    assert_eq!(e.message, "invalid filter: 'type'='odd'");
}

#[tokio::test]
async fn network_remove_deletes_the_bridge_and_emits_destroy() {
    let t = TestDaemon::new().await;
    let id = make_net(&t, "gone", "10.91.0.0/24").await;
    t.d.network_remove("gone").await.expect("remove");
    assert!(t
        .fake
        .calls()
        .contains(&format!("delete_link br-{}", &id[..12])));
    let e = t.d.network_inspect("gone").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "network gone not found");
    assert_eq!(
        t.actions_of(&id).await,
        ["network create", "network destroy"]
    );
    let script = t.fake.nft_script().unwrap();
    assert!(!script.contains("10.91.0.0/24"), "{script}");
}

#[tokio::test]
async fn predefined_networks_cannot_be_removed() {
    let t = TestDaemon::with_bridge().await;
    for n in ["bridge", "host", "none"] {
        let e = t.d.network_remove(n).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{n}");
        assert_eq!(
            e.message,
            format!("{n} is a pre-defined network and cannot be removed")
        );
    }
}

#[tokio::test]
async fn a_network_with_a_running_member_cannot_be_removed() {
    let t = TestDaemon::new().await;
    let nid = make_net(&t, "busy", "10.90.0.0/24").await;
    t.run("member", |hc| hc.network_mode = "busy".into()).await;
    let e = t.d.network_remove("busy").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        format!("error while removing network: network busy id {nid} has active endpoints")
    );
    assert_eq!(t.fake.count("delete_link"), 0);
}

#[tokio::test]
async fn network_prune_keeps_networks_that_containers_name() {
    let t = TestDaemon::new().await;
    make_net(&t, "used", "10.89.0.0/24").await;
    make_net(&t, "unused", "10.88.0.0/24").await;
    t.create("user", |hc| hc.network_mode = "used".into()).await;
    let r = t.d.network_prune(Vec::new()).await.expect("prune");
    assert_eq!(r.networks_deleted, Some(vec!["unused".to_string()]));
    assert!(t.d.network_inspect("used").await.is_ok());
    let r = t.d.network_prune(Vec::new()).await.expect("prune");
    assert_eq!(r.networks_deleted, None);
}

#[tokio::test]
async fn a_fixed_ip_is_given_to_the_container() {
    let t = TestDaemon::new().await;
    let nid = make_net(&t, "fixed", "10.87.0.0/24").await;
    let id = t
        .create_req("pinned", on_network("fixed", Some("10.87.0.50")))
        .await
        .expect("create");
    t.d.container_start(&id).await.expect("start");
    assert_eq!(ip_on(&t, &id, "fixed"), "10.87.0.50");
    assert_eq!(
        calls_of(&t, "attach"),
        [format!("attach br-{} eth0 10.87.0.50/24", &nid[..12])]
    );
    // A second container cannot take the same address.
    let other = t
        .create_req("thief", on_network("fixed", Some("10.87.0.50")))
        .await
        .expect("create");
    let e = t.d.container_start(&other).await.unwrap_err();
    assert!(
        e.message
            .contains("invalid IPv4 address 10.87.0.50 for network fixed"),
        "{}",
        e.message
    );
    assert_eq!(t.fake.namespaces(), 1, "the thief's namespace is gone");
}

#[tokio::test]
async fn a_fixed_ip_outside_the_subnet_or_on_the_default_bridge_is_refused() {
    let t = TestDaemon::with_bridge().await;
    make_net(&t, "narrow", "10.86.0.0/24").await;
    let e = t
        .create_req("far", on_network("narrow", Some("10.85.0.9")))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "invalid endpoint settings: no configured subnet contains IP address 10.85.0.9"
    );
    let e = t
        .create_req("dflt", on_network("bridge", Some("10.77.0.9")))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "network-scoped aliases and user specified IP addresses are only supported for user defined networks"
    );
    assert!(t.d.get("far").is_none() && t.d.get("dflt").is_none());
}

#[tokio::test]
async fn an_exhausted_subnet_fails_the_start_and_leaves_nothing() {
    let t = TestDaemon::new().await;
    make_net(&t, "tiny", "10.84.0.0/30").await;
    let a = t.run("first", |hc| hc.network_mode = "tiny".into()).await;
    assert_eq!(ip_on(&t, &a, "tiny"), "10.84.0.2");
    let b = t
        .create("second", |hc| hc.network_mode = "tiny".into())
        .await;
    let e = t.d.container_start(&b).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal, "{}", e.message);
    assert_ne!(t.status(&b), Status::Running);
    assert_eq!(
        t.fake.namespaces(),
        1,
        "only the first container's namespace"
    );
    assert_eq!(calls_of(&t, "attach").len(), 1);
    assert_eq!(t.fake.mounts(), 1, "the second rootfs is not left mounted");
}

#[tokio::test]
async fn a_failed_attach_leaves_no_namespace_endpoint_or_address() {
    let t = TestDaemon::new().await;
    make_net(&t, "flaky", "10.83.0.0/30").await;
    let id = t
        .create("victim", |hc| hc.network_mode = "flaky".into())
        .await;
    t.fake.fail_at("attach", 1);
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(
        e.message.contains("attaching to network flaky"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("injected failure of attach"),
        "{}",
        e.message
    );
    assert_eq!(t.fake.namespaces(), 0);
    assert_eq!(t.fake.mounts(), 0);
    assert_eq!(members(&net_json(&t, "flaky").await), 0);
    assert_eq!(t.fake.count("launch_shim"), 0);
    t.d.container_start(&id).await.expect("second start");
    assert_eq!(
        ip_on(&t, &id, "flaky"),
        "10.83.0.2",
        "the address was freed"
    );
}

#[tokio::test]
async fn a_failed_namespace_leaves_no_address_taken() {
    let t = TestDaemon::new().await;
    make_net(&t, "nsfail", "10.82.0.0/24").await;
    let id = t
        .create("ctr", |hc| hc.network_mode = "nsfail".into())
        .await;
    t.fake.fail_at("netns_create", 1);
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(e.message.contains("network namespace"), "{}", e.message);
    assert_eq!(t.fake.count("attach"), 0);
    assert_eq!(t.fake.mounts(), 0);
    t.d.container_start(&id).await.expect("second start");
    assert_eq!(ip_on(&t, &id, "nsfail"), "10.82.0.2");
}

#[tokio::test]
async fn connecting_a_created_container_attaches_at_start() {
    let t = TestDaemon::with_bridge().await;
    let nid = make_net(&t, "later", "10.81.0.0/24").await;
    let id = t
        .create("ctr", |hc| hc.network_mode = "bridge".into())
        .await;
    connect(&t, "later", &id).await.expect("connect");
    assert_eq!(
        t.fake.count("attach"),
        0,
        "nothing attached before the start"
    );
    let nets = inspect(&t, &id)["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("later").is_some(), "{nets}");
    // Connecting a stopped container twice keeps its settings (dockerd answers 200).
    connect(&t, "later", &id).await.expect("second connect");
    t.d.container_start(&id).await.expect("start");
    let attach = calls_of(&t, "attach");
    assert_eq!(attach.len(), 2, "{attach:?}");
    assert!(
        attach.contains(&format!("attach br-{} eth1 10.81.0.2/24", &nid[..12]))
            || attach.contains(&format!("attach br-{} eth0 10.81.0.2/24", &nid[..12])),
        "{attach:?}"
    );
    assert_eq!(
        t.actions_of(&nid).await,
        ["network create", "network connect"]
    );
}

#[tokio::test]
async fn connecting_a_running_container_adds_an_interface_and_disconnect_removes_it() {
    let t = TestDaemon::new().await;
    make_net(&t, "first", "10.80.0.0/24").await;
    let nid = make_net(&t, "second", "10.79.0.0/30").await;
    let id = t.run("ctr", |hc| hc.network_mode = "first".into()).await;
    connect(&t, "second", &id).await.expect("connect");
    assert!(
        calls_of(&t, "attach").contains(&format!("attach br-{} eth1 10.79.0.2/30", &nid[..12])),
        "{:?}",
        t.fake.calls()
    );
    assert_eq!(ip_on(&t, &id, "second"), "10.79.0.2");
    let e = connect(&t, "second", &id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        "endpoint with name ctr already exists in network second"
    );
    let before = t.fake.count("delete_link");
    disconnect(&t, "second", &id).await.expect("disconnect");
    assert_eq!(t.fake.count("delete_link"), before + 1);
    assert_eq!(members(&net_json(&t, "second").await), 0);
    let e = disconnect(&t, "second", &id).await.unwrap_err();
    assert_eq!(
        e.message,
        format!("container {id} is not connected to network second")
    );
    // The address went back to the pool: the next member gets it.
    let other = t.run("cd", |hc| hc.network_mode = "second".into()).await;
    assert_eq!(ip_on(&t, &other, "second"), "10.79.0.2");
}

#[tokio::test]
async fn a_failed_hot_attach_leaves_the_container_as_it_was() {
    let t = TestDaemon::new().await;
    make_net(&t, "base", "10.78.0.0/24").await;
    make_net(&t, "extra", "10.76.0.0/30").await;
    let id = t.run("ctr", |hc| hc.network_mode = "base".into()).await;
    t.fake.fail_at("attach", 2);
    let e = connect(&t, "extra", &id).await.unwrap_err();
    assert!(
        e.message.contains("attaching to network extra"),
        "{}",
        e.message
    );
    assert_eq!(members(&net_json(&t, "extra").await), 0);
    let nets = inspect(&t, &id)["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("extra").is_none(), "{nets}");
    assert_eq!(ip_on(&t, &id, "base"), "10.78.0.2");
    connect(&t, "extra", &id).await.expect("connect again");
    assert_eq!(
        ip_on(&t, &id, "extra"),
        "10.76.0.2",
        "the address was freed"
    );
}

#[tokio::test]
async fn host_and_none_containers_cannot_be_connected() {
    let t = TestDaemon::new().await;
    make_net(&t, "n", "10.75.0.0/24").await;
    let id = t
        .create("isolated", |hc| hc.network_mode = "none".into())
        .await;
    let e = connect(&t, "n", &id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert_eq!(
        e.message,
        "container cannot be disconnected from host network or connected to host network (network mode none)"
    );
    let e = connect(&t, "nowhere", &id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "network nowhere not found");
}

#[tokio::test]
async fn networks_and_endpoints_survive_a_daemon_restart() {
    let t = TestDaemon::new().await;
    let nid = make_net(&t, "kept", "10.74.0.0/24").await;
    let id = t.run("runner", |hc| hc.network_mode = "kept".into()).await;
    let d2 = t.reopen().await;
    let n = serde_json::to_value(d2.network_inspect("kept").await.expect("restored")).unwrap();
    assert_eq!(n["Id"], nid.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.74.0.0/24");
    assert_eq!(members(&n), 1, "the running member's endpoint is back: {n}");
    assert_eq!(d2.get(&id).map(|c| c.state.status), Some(Status::Running));
    // The restored pool knows the address is taken.
    let r2 = crate::host::testkit::TestDaemon {
        d: d2,
        fake: t.fake.clone(),
        dir: tempfile::tempdir().unwrap(),
        cfg: t.cfg.clone(),
    };
    let other = r2.run("next", |hc| hc.network_mode = "kept".into()).await;
    assert_eq!(ip_on(&r2, &other, "kept"), "10.74.0.3");
}

#[tokio::test]
async fn a_second_daemon_over_a_fake_keeps_the_default_bridge_id() {
    let fake = FakeHost::new();
    let t = TestDaemon::with(fake, |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = "10.73.0.1/24".into();
    })
    .await;
    let before = net_json(&t, "bridge").await["Id"].clone();
    let d2 = t.reopen().await;
    let after = serde_json::to_value(d2.network_inspect("bridge").await.unwrap()).unwrap();
    assert_eq!(after["Id"], before);
    assert_eq!(after["IPAM"]["Config"][0]["Subnet"], "10.73.0.0/24");
}
