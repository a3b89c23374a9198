//! Container verbs over the fake kernel (`host::fake`): no root, no kernel features, no shim.

use crate::host::fake_shim::Behaviour;
use crate::host::testkit::TestDaemon;
use crate::model::Status;

#[tokio::test]
async fn create_start_stop_remove() {
    let t = TestDaemon::new().await;
    let id = t.create("web", |_| {}).await;
    assert_eq!(t.status(&id), Status::Created);
    assert_eq!(t.fake.count("launch_shim"), 0, "create launches nothing");
    t.d.container_start(&id).await.expect("start");
    assert_eq!(t.status(&id), Status::Running);
    let rootfs = t.d.runtime.rootfs(&id);
    assert!(t.fake.is_mounted(&rootfs), "rootfs mounted at start");
    let shim = t.fake.shim(&id).expect("a shim");
    assert_eq!(shim.requests(), ["start", "state"]);
    t.d.container_stop(&id, None, Some(10)).await.expect("stop");
    t.wait_status(&id, Status::Exited).await;
    let c = t.d.get(&id).unwrap();
    assert_eq!(c.state.exit_code, 128 + libc::SIGTERM as i64);
    assert!(
        shim.requests().contains(&"kill 15".to_string()),
        "{:?}",
        shim.requests()
    );
    assert!(!t.fake.is_mounted(&rootfs), "rootfs unmounted at exit");
    t.d.container_remove(&id, false, false)
        .await
        .expect("remove");
    assert!(t.d.get(&id).is_none());
    assert_eq!(t.fake.mounts(), 0);
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_timeout() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        ignore_sigterm: true,
        ..Behaviour::default()
    });
    let id = t.run("stubborn", |_| {}).await;
    t.d.container_stop(&id, None, Some(0)).await.expect("stop");
    t.wait_status(&id, Status::Exited).await;
    let shim = t.fake.shim(&id).unwrap();
    let kills: Vec<String> = shim
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("kill"))
        .collect();
    assert_eq!(kills.first().map(String::as_str), Some("kill 15"));
    assert!(kills.iter().any(|k| k.starts_with("kill 9")), "{kills:?}");
    assert_eq!(t.d.get(&id).unwrap().state.exit_code, 137);
}

#[tokio::test]
async fn a_failed_mount_leaves_nothing_half_made() {
    let t = TestDaemon::new().await;
    let id = t.create("mnt", |_| {}).await;
    t.fake.fail_at("mount_overlay", 1);
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(e.message.contains("mounting rootfs"), "{}", e.message);
    assert_eq!(t.fake.count("launch_shim"), 0);
    assert_eq!(t.fake.mounts(), 0);
    assert_ne!(t.status(&id), Status::Running);
    // The next start works.
    t.d.container_start(&id).await.expect("second start");
    assert_eq!(t.status(&id), Status::Running);
}

#[tokio::test]
async fn a_failed_launch_unmounts_and_records_the_exit_code() {
    let t = TestDaemon::new().await;
    let id = t.create("launch", |_| {}).await;
    t.fake.fail_at("launch_shim", 1);
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(
        e.message.starts_with("failed to create task for container"),
        "{}",
        e.message
    );
    assert_eq!(t.fake.mounts(), 0, "rootfs unmounted after the failure");
    // As dockerd: a created container stays created, with the exit code and the error.
    let c = t.d.get(&id).unwrap();
    assert_eq!(c.state.status, Status::Created);
    assert_eq!(c.state.exit_code, 128);
    assert!(
        c.state.error.contains("injected failure"),
        "{}",
        c.state.error
    );
}

#[tokio::test]
async fn a_process_exit_is_recorded_with_its_code() {
    let t = TestDaemon::new().await;
    let id = t.run("exits", |_| {}).await;
    t.fake.shim(&id).unwrap().exit(3);
    t.wait_status(&id, Status::Exited).await;
    assert_eq!(t.d.get(&id).unwrap().state.exit_code, 3);
    assert_eq!(t.fake.mounts(), 0);
}

#[tokio::test]
async fn a_dead_shim_is_a_lost_monitor_with_137() {
    let t = TestDaemon::new().await;
    let id = t.run("lost", |_| {}).await;
    t.fake.shim(&id).unwrap().die();
    for _ in 0..600 {
        if t.d
            .get(&id)
            .is_some_and(|c| c.state.status == Status::Exited)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let c = t.d.get(&id).unwrap();
    assert_eq!(c.state.status, Status::Exited);
    assert_eq!(c.state.exit_code, 137);
    assert!(c.state.error.contains("monitor lost"), "{}", c.state.error);
}

#[tokio::test]
async fn pause_and_unpause_go_to_the_shim() {
    let t = TestDaemon::new().await;
    let id = t.run("paused", |_| {}).await;
    t.d.container_pause(&id, true).await.expect("pause");
    assert_eq!(t.status(&id), Status::Paused);
    let e = t.d.container_pause(&id, true).await.unwrap_err();
    assert!(e.message.contains("is already paused"), "{}", e.message);
    t.d.container_pause(&id, false).await.expect("unpause");
    assert_eq!(t.status(&id), Status::Running);
    let reqs = t.fake.shim(&id).unwrap().requests();
    assert!(reqs.contains(&"pause".to_string()) && reqs.contains(&"resume".to_string()));
}

#[tokio::test]
async fn auto_remove_containers_go_when_they_exit() {
    let t = TestDaemon::new().await;
    let id = t.run("rm", |hc| hc.auto_remove = true).await;
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_gone(&id).await;
}

#[tokio::test]
async fn update_writes_the_limits_of_a_running_container() {
    let t = TestDaemon::new().await;
    let id = t.run("limited", |_| {}).await;
    let warnings =
        t.d.container_update(
            &id,
            serde_json::json!({"Memory": 64 << 20, "PidsLimit": 50}),
            berth_services::UpdateOptions {
                pids_limit: true,
                blkio_devices: true,
            },
        )
        .await
        .expect("update");
    assert!(warnings.is_empty(), "{warnings:?}");
    let writes = t.fake.writes();
    let cg = t.dir.path().join("cgroup");
    assert!(
        writes.contains(&(cg.join("memory.max"), (64u64 << 20).to_string())),
        "{writes:?}"
    );
    assert!(
        writes.contains(&(cg.join("pids.max"), "50".into())),
        "{writes:?}"
    );
    let hc = t.d.get(&id).unwrap().host_config;
    assert_eq!((hc.memory, hc.pids_limit), (64 << 20, Some(50)));
}

#[tokio::test]
async fn update_of_a_stopped_container_only_stores_the_limits() {
    let t = TestDaemon::new().await;
    let id = t.create("stored", |_| {}).await;
    t.d.container_update(
        &id,
        serde_json::json!({"CpuShares": 512}),
        berth_services::UpdateOptions::default(),
    )
    .await
    .expect("update");
    assert!(t.fake.writes().is_empty());
    assert_eq!(t.d.get(&id).unwrap().host_config.cpu_shares, 512);
}

#[tokio::test]
async fn the_shim_status_follows_the_verbs() {
    let t = TestDaemon::new().await;
    let id = t.run("follows", |_| {}).await;
    let shim = t.fake.shim(&id).unwrap();
    assert_eq!(shim.status(), berth_shim_protocol::Status::Running);
    t.d.container_pause(&id, true).await.unwrap();
    assert_eq!(shim.status(), berth_shim_protocol::Status::Paused);
    t.d.container_pause(&id, false).await.unwrap();
    t.d.container_kill(&id, None).await.expect("kill");
    t.wait_status(&id, Status::Exited).await;
    assert_eq!(shim.status(), berth_shim_protocol::Status::Exited);
    let calls = t.fake.calls();
    let mount = calls.iter().position(|c| c.starts_with("mount_overlay"));
    let launch = calls.iter().position(|c| c.starts_with("launch_shim"));
    assert!(
        mount < launch,
        "the rootfs is mounted before the shim: {calls:?}"
    );
    let unmount = calls.iter().position(|c| c.starts_with("unmount"));
    assert!(launch < unmount, "unmounted after the exit: {calls:?}");
    assert_eq!(t.fake.namespaces(), 0, "no network namespace is left");
    // At daemon start berth's (empty) nftables table is written once.
    let script = t.fake.nft_script().expect("nft table written at start");
    assert!(script.contains("table ip berth_none_"), "{script}");
}
