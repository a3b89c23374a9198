//! Volumes: the API's create/ls/inspect/rm/prune with dockerd's messages, volumes made at
//! container create, binds and tmpfs in the OCI spec a start writes, `--rm` and `rm -v`.

use berth_api_types::volume::CreateRequest;
use berth_api_types::ErrorKind;

use super::inspect;
use crate::host::testkit::TestDaemon;
use crate::model::Status;

fn vol(name: &str) -> CreateRequest {
    CreateRequest {
        name: name.into(),
        ..CreateRequest::default()
    }
}

fn names(t: &TestDaemon) -> Vec<String> {
    t.d.volume_list(&[])
        .unwrap()
        .volumes
        .into_iter()
        .map(|v| v.name)
        .collect()
}

/// The spec's mount at `dest`.
fn mount_at(spec: &serde_json::Value, dest: &str) -> serde_json::Value {
    spec["mounts"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["destination"] == dest).cloned())
        .unwrap_or_else(|| panic!("no mount at {dest}: {}", spec["mounts"]))
}

fn options(m: &serde_json::Value) -> Vec<String> {
    m["options"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn volume_create_inspect_and_list() {
    let t = TestDaemon::new().await;
    let mut req = vol("data");
    req.labels = Some(
        [("team".to_string(), "a".to_string())]
            .into_iter()
            .collect(),
    );
    let v = t.d.volume_create(req).expect("create");
    assert_eq!(v.name, "data");
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    let mountpoint = t.cfg.data_root.join("volumes/data/_data");
    assert_eq!(v.mountpoint, mountpoint.display().to_string());
    assert!(mountpoint.is_dir(), "the data directory is made");
    let again = t.d.volume_inspect("data").expect("inspect");
    assert_eq!(
        again
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a")
    );
    assert_eq!(names(&t), ["data"]);
    assert_eq!(t.actions_of("data").await, ["volume create"]);
}

#[tokio::test]
async fn volume_create_refuses_bad_names_and_drivers() {
    let t = TestDaemon::new().await;
    let e = t.d.volume_create(vol("a/b")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.message.starts_with("create a/b: "), "{}", e.message);
    let mut req = vol("x");
    req.driver = "nfs-plugin".into();
    let e = t.d.volume_create(req).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.message,
        "create x: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found"
    );
    assert!(names(&t).is_empty());
}

#[tokio::test]
async fn volume_create_without_a_name_makes_a_random_one() {
    let t = TestDaemon::new().await;
    let v = t.d.volume_create(vol("")).expect("create");
    assert_eq!(v.name.len(), 64, "{}", v.name);
    assert!(v.name.chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test]
async fn creating_an_existing_volume_returns_it() {
    let t = TestDaemon::new().await;
    let a = t.d.volume_create(vol("same")).expect("create");
    let b = t.d.volume_create(vol("same")).expect("create again");
    assert_eq!(a.created_at, b.created_at);
    assert_eq!(names(&t), ["same"]);
}

#[tokio::test]
async fn volume_inspect_and_remove_of_a_missing_volume() {
    let t = TestDaemon::new().await;
    let e = t.d.volume_inspect("nope").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "get nope: no such volume");
    let e = t.d.volume_remove("nope", false).unwrap_err();
    assert_eq!(e.message, "get nope: no such volume");
    t.d.volume_remove("nope", true)
        .expect("forced remove of nothing");
}

#[tokio::test]
async fn a_volume_in_use_cannot_be_removed() {
    let t = TestDaemon::new().await;
    t.d.volume_create(vol("busy")).unwrap();
    let id = t
        .create("user", |hc| hc.binds = Some(vec!["busy:/data".into()]))
        .await;
    let e = t.d.volume_remove("busy", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.message, format!("remove busy: volume is in use - [{id}]"));
    // Forced too: dockerd refuses to remove a volume in use whatever `force` says.
    assert!(t.d.volume_remove("busy", true).is_err());
    t.d.container_remove(&id, false, false).await.unwrap();
    t.d.volume_remove("busy", false)
        .expect("remove once unused");
    assert!(!t.cfg.data_root.join("volumes/busy").exists());
    assert_eq!(
        t.actions_of("busy").await,
        ["volume create", "volume destroy"]
    );
}

#[tokio::test]
async fn a_named_volume_at_create_is_made_and_mounted_at_start() {
    let t = TestDaemon::new().await;
    let id = t
        .run("ctr", |hc| hc.binds = Some(vec!["made:/data:ro".into()]))
        .await;
    let v = t.d.volume_inspect("made").expect("made by create");
    let spec = t.spec(&id);
    let m = mount_at(&spec, "/data");
    assert_eq!(m["source"], v.mountpoint.as_str());
    let o = options(&m);
    assert!(
        o.contains(&"rbind".to_string()) || o.contains(&"bind".to_string()),
        "{o:?}"
    );
    assert!(o.contains(&"ro".to_string()), "{o:?}");
    let mounts = inspect(&t, &id)["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "made");
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["RW"], false);
}

#[tokio::test]
async fn a_bind_mount_appears_in_the_spec() {
    let t = TestDaemon::new().await;
    let host = t.dir.path().join("share");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/share", host.display());
    let id = t.run("ctr", |hc| hc.binds = Some(vec![bind])).await;
    let m = mount_at(&t.spec(&id), "/share");
    assert_eq!(m["source"], host.display().to_string());
    assert!(options(&m).contains(&"rbind".to_string()), "{m}");
    assert!(!options(&m).contains(&"ro".to_string()), "{m}");
    let mounts = inspect(&t, &id)["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "bind");
    assert_eq!(mounts[0]["RW"], true);
}

#[tokio::test]
async fn tmpfs_mounts_appear_in_the_spec_with_dockers_defaults() {
    let t = TestDaemon::new().await;
    let id = t
        .run("ctr", |hc| {
            hc.tmpfs = Some(
                [("/scratch".to_string(), "size=64m".to_string())]
                    .into_iter()
                    .collect(),
            )
        })
        .await;
    let m = mount_at(&t.spec(&id), "/scratch");
    assert_eq!(m["type"], "tmpfs");
    let o = options(&m);
    for want in ["noexec", "nosuid", "nodev", "size=64m"] {
        assert!(o.contains(&want.to_string()), "{want} missing: {o:?}");
    }
}

#[tokio::test]
async fn duplicate_mount_points_are_refused_at_create() {
    let t = TestDaemon::new().await;
    let req = berth_api_types::container::CreateRequest {
        host_config: Some(berth_api_types::container::HostConfig {
            network_mode: "none".into(),
            binds: Some(vec!["va:/data".into(), "vb:/data".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = t.create_req("dup", req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert_eq!(e.message, "Duplicate mount point: /data");
    assert!(names(&t).is_empty(), "nothing was created: {:?}", names(&t));
}

#[tokio::test]
async fn an_anonymous_volume_is_made_for_config_volumes() {
    let t = TestDaemon::new().await;
    let mut req = berth_api_types::container::CreateRequest::default();
    req.config.volumes = Some(
        [("/cache".to_string(), serde_json::json!({}))]
            .into_iter()
            .collect(),
    );
    req.host_config = Some(berth_api_types::container::HostConfig {
        network_mode: "none".into(),
        ..Default::default()
    });
    let id = t.create_req("anon", req).await.expect("create");
    let all = t.d.volume_list(&[]).unwrap().volumes;
    assert_eq!(all.len(), 1);
    assert!(all[0]
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(crate::volumes::ANONYMOUS_LABEL)));
    let mounts = inspect(&t, &id)["Mounts"].clone();
    assert_eq!(mounts[0]["Name"], all[0].name.as_str());
    assert_eq!(mounts[0]["Destination"], "/cache");
}

#[tokio::test]
async fn auto_remove_takes_the_anonymous_volumes_with_it() {
    let t = TestDaemon::new().await;
    t.d.volume_create(vol("named")).unwrap();
    let mut req = berth_api_types::container::CreateRequest::default();
    req.config.volumes = Some(
        [("/tmpdata".to_string(), serde_json::json!({}))]
            .into_iter()
            .collect(),
    );
    req.host_config = Some(berth_api_types::container::HostConfig {
        network_mode: "none".into(),
        auto_remove: true,
        binds: Some(vec!["named:/keep".into()]),
        ..Default::default()
    });
    let id = t.create_req("rm", req).await.expect("create");
    t.d.container_start(&id).await.expect("start");
    assert_eq!(names(&t).len(), 2);
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_gone(&id).await;
    for _ in 0..100 {
        if names(&t).len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(names(&t), ["named"], "the named volume stays");
}

#[tokio::test]
async fn rm_v_removes_anonymous_volumes_and_plain_rm_keeps_them() {
    let t = TestDaemon::new().await;
    let mk = |name: &'static str| {
        let mut req = berth_api_types::container::CreateRequest::default();
        req.config.volumes = Some(
            [(format!("/{name}"), serde_json::json!({}))]
                .into_iter()
                .collect(),
        );
        req.host_config = Some(berth_api_types::container::HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        });
        req
    };
    let a = t.create_req("ca", mk("a")).await.unwrap();
    let b = t.create_req("cb", mk("b")).await.unwrap();
    assert_eq!(names(&t).len(), 2);
    t.d.container_remove(&a, false, true).await.unwrap();
    assert_eq!(names(&t).len(), 1, "rm -v took a's volume");
    t.d.container_remove(&b, false, false).await.unwrap();
    assert_eq!(names(&t).len(), 1, "plain rm keeps b's volume");
}

#[tokio::test]
async fn volume_prune_removes_unused_anonymous_volumes_only() {
    let t = TestDaemon::new().await;
    t.d.volume_create(vol("named")).unwrap();
    let mut anon = vol("anon1");
    anon.labels = Some(
        [(crate::volumes::ANONYMOUS_LABEL.to_string(), String::new())]
            .into_iter()
            .collect(),
    );
    t.d.volume_create(anon).unwrap();
    let mut used = vol("anon2");
    used.labels = Some(
        [(crate::volumes::ANONYMOUS_LABEL.to_string(), String::new())]
            .into_iter()
            .collect(),
    );
    t.d.volume_create(used).unwrap();
    t.create("user", |hc| hc.binds = Some(vec!["anon2:/x".into()]))
        .await;
    let r = t.d.volume_prune(&[], false).expect("prune");
    assert_eq!(r.volumes_deleted, ["anon1"]);
    let r =
        t.d.volume_prune(&[("all".into(), vec!["true".into()])], false)
            .expect("prune all");
    assert_eq!(r.volumes_deleted, ["named"]);
    assert_eq!(names(&t), ["anon2"]);
}

#[tokio::test]
async fn volume_list_filters_dangling_and_refuses_unknown_filters() {
    let t = TestDaemon::new().await;
    t.d.volume_create(vol("free")).unwrap();
    t.d.volume_create(vol("taken")).unwrap();
    t.create("user", |hc| hc.binds = Some(vec!["taken:/x".into()]))
        .await;
    let dangling: Vec<String> =
        t.d.volume_list(&[("dangling".into(), vec!["true".into()])])
            .unwrap()
            .volumes
            .into_iter()
            .map(|v| v.name)
            .collect();
    assert_eq!(dangling, ["free"]);
    let e =
        t.d.volume_list(&[("colour".into(), vec!["red".into()])])
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter, "{}", e.message);
}

#[tokio::test]
async fn a_volume_of_a_stopped_container_stays_until_it_is_removed() {
    let t = TestDaemon::new().await;
    let id = t
        .run("ctr", |hc| hc.binds = Some(vec!["kept:/data".into()]))
        .await;
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_status(&id, Status::Exited).await;
    let e = t.d.volume_remove("kept", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{}", e.message);
}
