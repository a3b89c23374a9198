//! Network namespaces made ahead of need (`network/netns_pool.rs`), over the fakes.

use std::time::{Duration, Instant};

use crate::host::fake::FakeHost;
use crate::host::testkit::{TestDaemon, BIP, BRIDGE};
use crate::host::Netns;

async fn pooled(capacity: usize) -> TestDaemon {
    TestDaemon::with(FakeHost::new(), move |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = BIP.into();
        cfg.netns_pool = capacity;
    })
    .await
}

fn made_in_pool(t: &TestDaemon) -> Vec<String> {
    let pool = t.cfg.exec_root.join("netns-pool");
    t.fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with(&format!("netns_create_lo_up {}", pool.display())))
        .collect()
}

fn is_netns(t: &TestDaemon, p: &std::path::Path) -> bool {
    Netns::is_mounted(&*t.fake, p)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_start_on_the_bridge_takes_a_ready_namespace_and_the_pool_refills() {
    let t = pooled(1).await;
    until("the pool filled", || made_in_pool(&t).len() == 1).await;
    let pooled_path = made_in_pool(&t)[0]["netns_create_lo_up ".len()..].to_string();
    let id = t.run("web", |hc| hc.network_mode = "bridge".into()).await;
    let ns = t.d.net.netns_path(&id);
    let calls = t.fake.calls();
    assert!(
        calls.contains(&format!("netns_pin {pooled_path} {}", ns.display())),
        "pinned from the pool: {calls:?}"
    );
    assert!(
        !calls.contains(&format!("netns_create {}", ns.display())),
        "not made on the start path: {calls:?}"
    );
    assert!(
        calls.contains(&format!("netns_remove {pooled_path}")),
        "the pool's own mount goes: {calls:?}"
    );
    assert!(is_netns(&t, &ns), "{:?}", t.fake.calls());
    until("refilled", || made_in_pool(&t).len() == 2).await;
    // The container's namespace goes at its exit as one made for it would.
    t.fake.shim(&id).unwrap().exit(0);
    until("released", || !is_netns(&t, &ns)).await;
}

#[tokio::test]
async fn an_empty_pool_makes_the_namespace_on_the_start_path() {
    let t = pooled(0).await;
    let id = t.run("web", |hc| hc.network_mode = "bridge".into()).await;
    let ns = t.d.net.netns_path(&id);
    assert!(t
        .fake
        .calls()
        .contains(&format!("netns_create {}", ns.display())));
    assert!(made_in_pool(&t).is_empty(), "capacity 0 makes nothing");
}

#[tokio::test]
async fn a_failed_pin_falls_back_to_a_new_namespace() {
    let t = pooled(1).await;
    until("the pool filled", || made_in_pool(&t).len() == 1).await;
    t.fake.fail_at("netns_pin", 1);
    let id = t.run("web", |hc| hc.network_mode = "bridge".into()).await;
    let ns = t.d.net.netns_path(&id);
    assert!(t
        .fake
        .calls()
        .contains(&format!("netns_create {}", ns.display())));
    assert!(is_netns(&t, &ns));
}

#[tokio::test]
async fn shutdown_and_a_restart_leave_no_pooled_namespace() {
    let t = pooled(2).await;
    until("the pool filled", || made_in_pool(&t).len() == 2).await;
    let pool_dir = t.cfg.exec_root.join("netns-pool");
    // A daemon killed with its pool full: the next one clears what it finds first.
    let d2 = t.reopen().await;
    for c in made_in_pool(&t).iter().take(2) {
        let path = &c["netns_create_lo_up ".len()..];
        assert!(
            t.fake.calls().contains(&format!("netns_remove {path}")),
            "left-over {path} removed at the next start"
        );
    }
    d2.shutdown();
    t.d.shutdown();
    let left: Vec<_> = std::fs::read_dir(&pool_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left after shutdown: {left:?}");
    assert!(left.iter().all(|p| !is_netns(&t, p)));
}

#[tokio::test]
async fn a_container_without_a_network_joins_a_ready_namespace() {
    let t = pooled(1).await;
    until("the pool filled", || made_in_pool(&t).len() == 1).await;
    let id = t.run("quiet", |hc| hc.network_mode = "none".into()).await;
    let ns = t.d.net.netns_path(&id);
    assert!(is_netns(&t, &ns), "{:?}", t.fake.calls());
    let net = t.spec_namespace(&id, "network");
    assert_eq!(net["path"], ns.display().to_string(), "{net}");
    assert_eq!(
        t.fake.count("loopback_up"),
        0,
        "the pool's namespaces have lo up"
    );
    t.fake.shim(&id).unwrap().exit(0);
    until("released at the exit", || !is_netns(&t, &ns)).await;

    // Without a ready one the runtime makes it, as before.
    let t = pooled(0).await;
    let id = t.run("quiet", |hc| hc.network_mode = "none".into()).await;
    let net = t.spec_namespace(&id, "network");
    assert!(net.get("path").is_none(), "{net}");
    assert_eq!(
        t.fake.count("loopback_up"),
        1,
        "lo brought up in the runtime's namespace"
    );
}
