//! Inspect's shape through a container's life, and a daemon restart over the same dirs: shims
//! still running are reattached, exits while the daemon was down are recorded.

use berth_api_types::ErrorKind;

use super::inspect;
use crate::host::fake::{FakeHost, FAKE_PID};
use crate::host::testkit::{TestDaemon, IMAGE};
use crate::model::Status;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[tokio::test]
async fn inspect_of_a_created_container() {
    let t = TestDaemon::new().await;
    let id = t.create("web", |_| {}).await;
    let s = inspect(&t, &id);
    assert_eq!(s["Id"], id.as_str());
    assert_eq!(s["Name"], "/web");
    assert_eq!(s["Path"], "/bin/app");
    assert_eq!(s["Args"], serde_json::json!([]));
    assert_eq!(s["State"]["Status"], "created");
    assert_eq!(s["State"]["Running"], false);
    assert_eq!(s["State"]["Pid"], 0);
    assert_eq!(s["State"]["StartedAt"], ZERO_TIME);
    assert_eq!(s["State"]["FinishedAt"], ZERO_TIME);
    assert_eq!(s["Config"]["Image"], IMAGE);
    assert_eq!(s["Config"]["Cmd"], serde_json::json!(["/bin/app"]));
    assert_eq!(s["Image"], t.d.image_inspect(IMAGE).unwrap().id.as_str());
    assert_eq!(s["HostConfig"]["NetworkMode"], "none");
    assert_eq!(s["Mounts"], serde_json::json!([]));
    assert_eq!(s["RestartCount"], 0);
    assert!(
        s["LogPath"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("{id}-json.log"))),
        "{}",
        s["LogPath"]
    );
    assert!(
        s["Created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{}",
        s["Created"]
    );
}

#[tokio::test]
async fn inspect_of_a_running_then_exited_container() {
    let t = TestDaemon::new().await;
    let id = t.run("web", |_| {}).await;
    let s = inspect(&t, &id);
    assert_eq!(s["State"]["Status"], "running");
    assert_eq!(s["State"]["Running"], true);
    assert_eq!(s["State"]["Pid"], FAKE_PID);
    assert_ne!(s["State"]["StartedAt"], ZERO_TIME);
    t.fake.shim(&id).unwrap().exit(42);
    t.wait_status(&id, Status::Exited).await;
    let s = inspect(&t, &id);
    assert_eq!(s["State"]["Status"], "exited");
    assert_eq!(s["State"]["Running"], false);
    assert_eq!(s["State"]["Pid"], 0);
    assert_eq!(s["State"]["ExitCode"], 42);
    assert_ne!(s["State"]["FinishedAt"], ZERO_TIME);
}

#[tokio::test]
async fn inspect_finds_by_name_and_id_prefix() {
    let t = TestDaemon::new().await;
    let id = t.create("named", |_| {}).await;
    assert_eq!(inspect(&t, "named")["Id"], id.as_str());
    assert_eq!(inspect(&t, "/named")["Id"], id.as_str());
    assert_eq!(inspect(&t, &id[..8])["Id"], id.as_str());
    let e = t.d.container_inspect("ghost", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such container: ghost");
}

#[tokio::test]
async fn a_duplicate_name_is_a_conflict() {
    let t = TestDaemon::new().await;
    let id = t.create("twin", |_| {}).await;
    let e = t.create_req("twin", Default::default()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!(
            "Conflict. The container name \"/twin\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )
    );
}

#[tokio::test]
async fn removing_a_running_container_needs_force() {
    let t = TestDaemon::new().await;
    let id = t.run("busy", |_| {}).await;
    let e = t.d.container_remove(&id, false, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(
        e.message
            .starts_with("cannot remove container \"/busy\": container is running"),
        "{}",
        e.message
    );
    t.d.container_remove(&id, true, false)
        .await
        .expect("forced");
    assert!(t.d.get(&id).is_none());
    assert_eq!(t.fake.mounts(), 0);
    let reqs = t.fake.shim(&id).unwrap().requests();
    assert!(reqs.iter().any(|r| r.starts_with("kill 9")), "{reqs:?}");
}

/// A daemon whose shims are served on `shims`, opened on (and living in) `rt`.
fn daemon_on(rt: &tokio::runtime::Runtime, shims: &tokio::runtime::Runtime) -> TestDaemon {
    let fake = FakeHost::new();
    fake.serve_shims_on(shims.handle().clone());
    rt.block_on(TestDaemon::with(fake, |_| {}))
}

fn runtimes() -> (tokio::runtime::Runtime, tokio::runtime::Runtime) {
    let shims = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (shims, first)
}

fn second_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_restarted_daemon_reattaches_to_running_shims() {
    let (shims, first) = runtimes();
    let t = daemon_on(&first, &shims);
    let id = first.block_on(t.run("survivor", |_| {}));
    let states = |shim: &crate::host::fake_shim::FakeShim| {
        shim.requests().iter().filter(|r| *r == "state").count()
    };
    let asked_before = states(&t.fake.shim(&id).unwrap());
    // berthd goes away; its shim does not.
    drop(first);
    let second = second_runtime();
    second.block_on(async {
        let d2 = t.reopen().await;
        let c = d2.get(&id).expect("restored");
        assert_eq!(c.state.status, Status::Running);
        assert_eq!(c.state.pid, i64::from(FAKE_PID));
        let shim = t.fake.shim(&id).unwrap();
        assert!(states(&shim) > asked_before, "the new daemon asks the shim");
        // The new daemon monitors it: an exit now is recorded by it.
        shim.exit(4);
        for _ in 0..500 {
            if d2
                .get(&id)
                .is_some_and(|c| c.state.status == Status::Exited)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let c = d2.get(&id).unwrap();
        assert_eq!(c.state.status, Status::Exited);
        assert_eq!(c.state.exit_code, 4);
        assert_eq!(t.fake.mounts(), 0, "the rootfs is unmounted at the exit");
    });
}

#[test]
fn an_exit_while_the_daemon_was_down_is_recorded_at_restart() {
    let (shims, first) = runtimes();
    let t = daemon_on(&first, &shims);
    let id = first.block_on(t.run("quitter", |_| {}));
    drop(first);
    t.fake.shim(&id).unwrap().exit(9);
    let second = second_runtime();
    second.block_on(async {
        let d2 = t.reopen().await;
        for _ in 0..500 {
            if d2
                .get(&id)
                .is_some_and(|c| c.state.status == Status::Exited)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let c = d2.get(&id).unwrap();
        assert_eq!(c.state.status, Status::Exited);
        assert_eq!(c.state.exit_code, 9, "from the shim's exit file");
        assert_eq!(t.fake.mounts(), 0);
    });
}

#[test]
fn a_shim_that_died_with_the_daemon_down_is_an_exit_137() {
    let (shims, first) = runtimes();
    let t = daemon_on(&first, &shims);
    let id = first.block_on(t.run("orphan", |hc| hc.network_mode = "bridge".into()));
    drop(first);
    t.fake.shim(&id).unwrap().die();
    let second = second_runtime();
    second.block_on(async {
        let d2 = t.reopen().await;
        for _ in 0..500 {
            if d2
                .get(&id)
                .is_some_and(|c| c.state.status == Status::Exited)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let c = d2.get(&id).unwrap();
        assert_eq!(c.state.status, Status::Exited);
        assert_eq!(c.state.exit_code, 137);
        assert_eq!(t.fake.mounts(), 0);
        assert_eq!(t.fake.namespaces(), 0, "its namespace is released");
    });
}

#[test]
fn a_restarted_daemon_keeps_created_and_exited_containers() {
    let (shims, first) = runtimes();
    let t = daemon_on(&first, &shims);
    let created = first.block_on(t.create("idle", |_| {}));
    let exited = first.block_on(async {
        let id = t.run("done", |_| {}).await;
        t.fake.shim(&id).unwrap().exit(1);
        t.wait_status(&id, Status::Exited).await;
        id
    });
    drop(first);
    let second = second_runtime();
    second.block_on(async {
        let d2 = t.reopen().await;
        assert_eq!(d2.get(&created).unwrap().state.status, Status::Created);
        let c = d2.get(&exited).unwrap();
        assert_eq!((c.state.status, c.state.exit_code), (Status::Exited, 1));
        assert_eq!(c.name, "done");
        // A restored created container starts.
        let t2 = TestDaemon {
            d: d2,
            fake: t.fake.clone(),
            dir: tempfile::tempdir().unwrap(),
            cfg: t.cfg.clone(),
        };
        t2.d.container_start(&created)
            .await
            .expect("start after restart");
        assert_eq!(t2.status(&created), Status::Running);
    });
}
