//! Container verbs over the fake kernel (`host::fake`): no root, no kernel features, no shim.

use std::time::Duration;

use berth_api_types::ErrorKind;

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
    assert_eq!(shim.requests(), ["start"], "the start's answer has the pid");
    assert_eq!(
        t.d.get(&id).unwrap().state.pid,
        crate::host::fake::FAKE_PID as i64
    );
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
async fn a_start_answered_without_the_pid_asks_the_shim_for_its_state() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        start_answers_nothing: true,
        ..Behaviour::default()
    });
    let id = t.create("older-shim", |_| {}).await;
    t.d.container_start(&id).await.expect("start");
    let shim = t.fake.shim(&id).expect("a shim");
    assert_eq!(shim.requests(), ["start", "state"]);
    let c = t.d.get(&id).unwrap();
    assert_eq!(c.state.pid, crate::host::fake::FAKE_PID as i64);
    assert!(
        !c.state.started_at.starts_with("0001"),
        "{}",
        c.state.started_at
    );
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

/// The kind and message of a refused verb.
fn refused(r: crate::Result<()>) -> (ErrorKind, String) {
    let e = r.expect_err("refused");
    (e.kind, e.message)
}

#[tokio::test]
async fn starting_a_running_container_is_not_modified() {
    let t = TestDaemon::new().await;
    let id = t.run("twice", |_| {}).await;
    let (kind, _) = refused(t.d.container_start(&id).await);
    assert_eq!(kind, ErrorKind::NotModified);
    assert_eq!(t.fake.count("launch_shim"), 1);
}

#[tokio::test]
async fn starting_a_paused_container_is_refused() {
    let t = TestDaemon::new().await;
    let id = t.run("pstart", |_| {}).await;
    t.d.container_pause(&id, true).await.unwrap();
    let (kind, msg) = refused(t.d.container_start(&id).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert_eq!(msg, "cannot start a paused container, try unpause instead");
}

#[tokio::test]
async fn removing_a_running_container_needs_force() {
    let t = TestDaemon::new().await;
    let id = t.run("busy", |_| {}).await;
    let (kind, msg) = refused(t.d.container_remove(&id, false, false).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.contains("force"), "{msg}");
    assert_eq!(t.status(&id), Status::Running);
    t.d.container_remove(&id, true, false).await.expect("rm -f");
    assert!(t.d.get(&id).is_none());
    let shim = t.fake.shim(&id).unwrap();
    assert!(
        shim.requests().iter().any(|r| r.starts_with("kill 9")),
        "{:?}",
        shim.requests()
    );
    assert_eq!(t.fake.mounts(), 0, "rm -f leaves no mount");
}

#[tokio::test]
async fn removing_a_paused_container_needs_force_too() {
    let t = TestDaemon::new().await;
    let id = t.run("prm", |_| {}).await;
    t.d.container_pause(&id, true).await.unwrap();
    let (kind, msg) = refused(t.d.container_remove(&id, false, false).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.contains("paused"), "{msg}");
}

#[tokio::test]
async fn kill_sends_the_signal_given() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        ignore_sigterm: true,
        ..Behaviour::default()
    });
    let id = t.run("hup", |_| {}).await;
    t.d.container_kill(&id, Some("SIGHUP".into()))
        .await
        .expect("kill -s HUP");
    let shim = t.fake.shim(&id).unwrap();
    assert!(
        shim.requests().contains(&format!("kill {}", libc::SIGHUP)),
        "{:?}",
        shim.requests()
    );
    assert_eq!(t.status(&id), Status::Running, "the process ignored it");
    t.d.container_kill(&id, Some("9".into()))
        .await
        .expect("kill -s 9");
    t.wait_status(&id, Status::Exited).await;
    assert_eq!(t.d.get(&id).unwrap().state.exit_code, 137);
}

#[tokio::test]
async fn kill_with_an_unknown_signal_is_invalid() {
    let t = TestDaemon::new().await;
    let id = t.run("badsig", |_| {}).await;
    let (kind, msg) = refused(t.d.container_kill(&id, Some("SIGNOPE".into())).await);
    assert_eq!(kind, ErrorKind::InvalidParameter);
    assert!(msg.contains("Invalid signal: SIGNOPE"), "{msg}");
    assert_eq!(t.status(&id), Status::Running);
}

#[tokio::test]
async fn killing_a_stopped_container_is_a_conflict() {
    let t = TestDaemon::new().await;
    t.create("idle", |_| {}).await;
    let (kind, msg) = refused(t.d.container_kill("idle", None).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.starts_with("Cannot kill container: idle: "), "{msg}");
    assert!(msg.contains("is not running"), "{msg}");
}

#[tokio::test]
async fn restart_runs_a_new_shim() {
    let t = TestDaemon::new().await;
    let id = t.run("again", |_| {}).await;
    t.d.container_restart(&id, None, Some(1))
        .await
        .expect("restart");
    assert_eq!(t.status(&id), Status::Running);
    assert_eq!(t.fake.count("launch_shim"), 2);
    assert_eq!(t.fake.count("mount_overlay"), 2);
    assert_eq!(t.fake.mounts(), 1);
}

#[tokio::test]
async fn restart_of_a_created_container_starts_it() {
    let t = TestDaemon::new().await;
    let id = t.create("fresh", |_| {}).await;
    t.d.container_restart(&id, None, None)
        .await
        .expect("restart");
    assert_eq!(t.status(&id), Status::Running);
}

#[tokio::test]
async fn rename_and_its_conflicts() {
    let t = TestDaemon::new().await;
    let a = t.create("alpha", |_| {}).await;
    t.create("beta", |_| {}).await;
    t.d.container_rename("alpha", "gamma")
        .await
        .expect("rename");
    assert_eq!(t.d.get(&a).unwrap().name, "gamma");
    let (kind, msg) = refused(t.d.container_rename("gamma", "beta").await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.starts_with("Error when allocating new name:"), "{msg}");
    let (kind, _) = refused(t.d.container_rename("nobody", "delta").await);
    assert_eq!(kind, ErrorKind::NotFound);
    let (kind, msg) = refused(t.d.container_rename("gamma", "bad name").await);
    assert_eq!(kind, ErrorKind::InvalidParameter);
    assert!(msg.contains("Invalid container name"), "{msg}");
}

#[tokio::test]
async fn wait_answers_the_exit_code() {
    let t = TestDaemon::new().await;
    let id = t.run("waited", |_| {}).await;
    let fut =
        t.d.container_wait(&id, berth_services::WaitCondition::NotRunning)
            .await
            .expect("wait");
    t.fake.shim(&id).unwrap().exit(42);
    let r = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("answered");
    assert_eq!(r.status_code, 42);
}

#[tokio::test]
async fn wait_on_an_exited_container_answers_at_once() {
    let t = TestDaemon::new().await;
    let id = t.run("done", |_| {}).await;
    t.fake.shim(&id).unwrap().exit(7);
    t.wait_status(&id, Status::Exited).await;
    let fut =
        t.d.container_wait(&id, berth_services::WaitCondition::NotRunning)
            .await
            .expect("wait");
    let r = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("answered");
    assert_eq!(r.status_code, 7);
}

#[tokio::test]
async fn wait_for_an_unknown_container_is_not_found() {
    let t = TestDaemon::new().await;
    let e =
        t.d.container_wait("ghost", berth_services::WaitCondition::NotRunning)
            .await
            .err()
            .expect("refused");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such container: ghost");
}

#[tokio::test]
async fn inspect_shows_the_running_state_and_the_pid() {
    let t = TestDaemon::new().await;
    let id = t.run("shown", |_| {}).await;
    let i = t.d.container_inspect("shown", false).expect("inspect");
    assert_eq!(i.id, id);
    assert_eq!(i.name, "/shown");
    assert_eq!(i.state.status, "running");
    assert!(i.state.running && !i.state.paused);
    assert_eq!(i.state.pid, i64::from(crate::host::fake::FAKE_PID));
    assert_eq!(i.path, "/bin/app");
    assert!(i.log_path.ends_with("-json.log"), "{}", i.log_path);
}

#[tokio::test]
async fn inspect_of_an_exited_container_has_its_exit() {
    let t = TestDaemon::new().await;
    let id = t.run("ended", |_| {}).await;
    t.fake.shim(&id).unwrap().exit(2);
    t.wait_status(&id, Status::Exited).await;
    let i = t.d.container_inspect(&id, false).expect("inspect");
    assert_eq!(i.state.status, "exited");
    assert_eq!((i.state.exit_code, i.state.pid), (2, 0));
    assert!(!i.state.running);
    assert_ne!(i.state.finished_at, "0001-01-01T00:00:00Z");
}

fn names_of(list: Vec<berth_api_types::container::Summary>) -> Vec<String> {
    let mut names: Vec<String> = list.into_iter().map(|s| s.names[0].clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn list_shows_running_containers_unless_all() {
    let t = TestDaemon::new().await;
    t.run("up", |_| {}).await;
    t.create("down", |_| {}).await;
    let list = |all: bool| {
        names_of(
            t.d.container_list(berth_services::ContainerListOptions {
                all,
                ..Default::default()
            })
            .expect("list"),
        )
    };
    assert_eq!(list(false), ["/up"]);
    assert_eq!(list(true), ["/down", "/up"]);
}

#[tokio::test]
async fn list_filters_by_status_name_and_id() {
    let t = TestDaemon::new().await;
    let a = t.run("one", |_| {}).await;
    t.run("two", |_| {}).await;
    t.fake.shim(&a).unwrap().exit(0);
    t.wait_status(&a, Status::Exited).await;
    let list = |k: &str, v: &str| {
        t.d.container_list(berth_services::ContainerListOptions {
            all: true,
            filters: vec![(k.to_string(), vec![v.to_string()])],
            ..Default::default()
        })
    };
    assert_eq!(names_of(list("status", "exited").unwrap()), ["/one"]);
    assert_eq!(names_of(list("status", "running").unwrap()), ["/two"]);
    assert_eq!(names_of(list("name", "tw").unwrap()), ["/two"]);
    assert_eq!(names_of(list("id", &a[..12]).unwrap()), ["/one"]);
    let e = list("status", "sleepy").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.message.contains("sleepy"), "{}", e.message);
}

#[tokio::test]
async fn events_of_a_run_come_in_dockers_order() {
    let t = TestDaemon::new().await;
    let id = t.run("evented", |_| {}).await;
    t.d.container_stop(&id, None, Some(5)).await.unwrap();
    t.wait_status(&id, Status::Exited).await;
    t.d.container_remove(&id, false, false).await.unwrap();
    let actions: Vec<String> =
        t.d.event_log
            .recent()
            .into_iter()
            .filter(|(kind, _, actor)| kind == "container" && *actor == id)
            .map(|(_, action, _)| action)
            .collect();
    let pos = |a: &str| {
        actions
            .iter()
            .position(|x| x == a || x.starts_with(&format!("{a}:")))
            .unwrap_or_else(|| panic!("no {a} in {actions:?}"))
    };
    assert!(pos("create") < pos("start"), "{actions:?}");
    assert!(pos("start") < pos("kill"), "{actions:?}");
    assert!(pos("kill") < pos("die"), "{actions:?}");
    assert!(pos("die") < pos("stop"), "{actions:?}");
    assert!(pos("stop") < pos("destroy"), "{actions:?}");
}

#[tokio::test]
async fn a_start_error_of_the_runtime_gives_dockers_exit_code() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        start_error: Some("exec: \"nope\": executable file not found in $PATH".into()),
        ..Behaviour::default()
    });
    let id = t.create("nocmd", |_| {}).await;
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(
        e.message.contains("executable file not found"),
        "{}",
        e.message
    );
    let c = t.d.get(&id).unwrap();
    assert_eq!(c.state.exit_code, 127);
    assert_ne!(c.state.status, Status::Running);
    assert_eq!(t.fake.mounts(), 0, "the rootfs is released");
}

#[tokio::test]
async fn a_process_that_exits_at_once_is_recorded() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        exit_at_start: Some(0),
        ..Behaviour::default()
    });
    let id = t.run("quick", |_| {}).await;
    t.wait_status(&id, Status::Exited).await;
    assert_eq!(t.d.get(&id).unwrap().state.exit_code, 0);
}

#[tokio::test]
async fn pause_needs_a_running_container_and_unpause_a_paused_one() {
    let t = TestDaemon::new().await;
    let id = t.create("still", |_| {}).await;
    let (kind, msg) = refused(t.d.container_pause(&id, true).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.contains("is not running"), "{msg}");
    t.d.container_start(&id).await.unwrap();
    let (kind, msg) = refused(t.d.container_pause(&id, false).await);
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(msg.contains("is not paused"), "{msg}");
}

fn request(image: &str) -> berth_api_types::container::CreateRequest {
    berth_api_types::container::CreateRequest {
        config: berth_api_types::container::Config {
            image: image.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn names_are_unique() {
    let t = TestDaemon::new().await;
    let id = t.create("taken", |_| {}).await;
    let e =
        t.d.container_create(Some("taken".into()), request(crate::host::testkit::IMAGE))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(
        e.message.contains("is already in use by container"),
        "{}",
        e.message
    );
    assert!(e.message.contains(&id), "{}", e.message);
}

#[tokio::test]
async fn an_unknown_image_is_not_found_at_create() {
    let t = TestDaemon::new().await;
    let e =
        t.d.container_create(None, request("missing:1"))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains("No such image: missing:1"),
        "{}",
        e.message
    );
}

/// Waits (up to 10 s) until the container's shim was launched `n` times in all.
async fn launched(t: &TestDaemon, n: usize) {
    for _ in 0..1000 {
        if t.fake.count("launch_shim") >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} launches, wanted {n}", t.fake.count("launch_shim"));
}

fn policy(name: &str, retries: i64) -> impl FnOnce(&mut berth_api_types::container::HostConfig) {
    let name = name.to_string();
    move |hc| {
        hc.restart_policy = berth_api_types::container::RestartPolicy {
            name,
            maximum_retry_count: retries,
        }
    }
}

#[tokio::test]
async fn always_restarts_a_container_that_exits() {
    let t = TestDaemon::new().await;
    let id = t.run("always", policy("always", 0)).await;
    t.fake.shim(&id).unwrap().exit(0);
    launched(&t, 2).await;
    t.wait_status(&id, Status::Running).await;
    assert_eq!(t.d.get(&id).unwrap().restart_count, 1);
}

#[tokio::test]
async fn on_failure_restarts_exactly_n_times() {
    let t = TestDaemon::new().await;
    let id = t.run("flaky", policy("on-failure", 2)).await;
    for n in 2..=3 {
        t.fake.shim(&id).unwrap().exit(1);
        launched(&t, n).await;
        t.wait_status(&id, Status::Running).await;
    }
    t.fake.shim(&id).unwrap().exit(1);
    t.wait_status(&id, Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(t.fake.count("launch_shim"), 3, "no third restart");
    let c = t.d.get(&id).unwrap();
    assert_eq!((c.state.status, c.restart_count), (Status::Exited, 2));
}

#[tokio::test]
async fn on_failure_leaves_a_clean_exit_alone() {
    let t = TestDaemon::new().await;
    let id = t.run("clean", policy("on-failure", 0)).await;
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_status(&id, Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.fake.count("launch_shim"), 1);
}

#[tokio::test]
async fn a_stopped_container_is_not_restarted_by_its_policy() {
    for p in ["always", "unless-stopped", "on-failure"] {
        let t = TestDaemon::new().await;
        let id = t.run("stopped", policy(p, 0)).await;
        t.d.container_stop(&id, None, Some(1)).await.expect("stop");
        t.wait_status(&id, Status::Exited).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(t.fake.count("launch_shim"), 1, "{p}");
        assert_eq!(t.status(&id), Status::Exited, "{p}");
    }
}

#[tokio::test]
async fn a_killed_container_is_not_restarted_by_its_policy() {
    let t = TestDaemon::new().await;
    let id = t.run("killed", policy("always", 0)).await;
    t.d.container_kill(&id, None).await.expect("kill");
    t.wait_status(&id, Status::Exited).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.fake.count("launch_shim"), 1);
}

#[tokio::test]
async fn the_policy_applies_after_a_lost_shim() {
    let t = TestDaemon::new().await;
    let id = t.run("phoenix", policy("always", 0)).await;
    t.fake.shim(&id).unwrap().die();
    launched(&t, 2).await;
    t.wait_status(&id, Status::Running).await;
}

#[tokio::test]
async fn restart_policies_are_validated_at_create() {
    let t = TestDaemon::new().await;
    let mut req = request(crate::host::testkit::IMAGE);
    req.host_config = Some(berth_api_types::container::HostConfig {
        restart_policy: berth_api_types::container::RestartPolicy {
            name: "sometimes".into(),
            maximum_retry_count: 0,
        },
        ..Default::default()
    });
    let e = t.d.container_create(None, req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.message.contains("sometimes"), "{}", e.message);
    let mut req = request(crate::host::testkit::IMAGE);
    req.host_config = Some(berth_api_types::container::HostConfig {
        auto_remove: true,
        restart_policy: berth_api_types::container::RestartPolicy {
            name: "always".into(),
            maximum_retry_count: 0,
        },
        ..Default::default()
    });
    let e = t.d.container_create(None, req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.message.contains("AutoRemove"), "{}", e.message);
}

#[tokio::test]
async fn update_changes_the_restart_policy() {
    let t = TestDaemon::new().await;
    let id = t.run("later", |_| {}).await;
    t.d.container_update(
        &id,
        serde_json::json!({"RestartPolicy": {"Name": "always"}}),
        berth_services::UpdateOptions::default(),
    )
    .await
    .expect("update");
    t.fake.shim(&id).unwrap().exit(3);
    launched(&t, 2).await;
    t.wait_status(&id, Status::Running).await;
}

#[tokio::test]
async fn the_exit_code_of_a_failed_create_comes_from_the_runtimes_cause() {
    use berth_shim_protocol::{StartCause, StartError};
    // The message alone would say 127 (dockerd's text rule); the cause the shim sent wins.
    for (cause, code) in [
        (StartCause::PermissionDenied, 126),
        (StartCause::NotFound, 127),
        (StartCause::Other, 128),
    ] {
        let t = TestDaemon::new().await;
        t.fake.set_behaviour(Behaviour {
            launch_error: Some(StartError::new(
                cause,
                "exec: \"/x\": no such file or directory",
            )),
            ..Behaviour::default()
        });
        let id = t.create("caused", |_| {}).await;
        let e = t.d.container_start(&id).await.unwrap_err();
        assert!(
            e.message
                .starts_with("failed to create task for container: exec:"),
            "{}",
            e.message
        );
        assert_eq!(t.d.get(&id).unwrap().state.exit_code, code, "{cause:?}");
    }
}
