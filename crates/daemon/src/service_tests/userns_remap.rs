//! A `--userns-remap` daemon over the fakes: a start asks for idmapped views of the image
//! layers (copies when forced or when the mounts fail), gives the container's own files to
//! its root and writes a spec with the user namespace and its mappings; `--userns=host` opts
//! out, and dockerd's refusals hold.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api_types::container::{Config, CreateRequest, HostConfig};

use super::calls_of;
use crate::host::fake::FakeHost;
use crate::host::testkit::{TestDaemon, BIP, BRIDGE, IMAGE};
use crate::userns_remap::IdMap;

const ROOT: &str = "100000:200000";

fn map() -> IdMap {
    IdMap::from_ranges(
        "berthremap:berthremap",
        &[(100_000, 65536)],
        &[(200_000, 65536)],
        340,
    )
    .unwrap()
}

async fn remapped(fake: Arc<FakeHost>, copy: bool) -> TestDaemon {
    TestDaemon::with(fake, move |cfg| {
        cfg.userns_remap = Some(map());
        cfg.userns_remap_copy = copy;
    })
    .await
}

/// The image's layer directories (top first), as a container without remapping mounts them.
fn image_layers(t: &TestDaemon, id: &str) -> Vec<PathBuf> {
    let c = t.d.get(id).expect("container");
    t.d.lower_dirs(c.top_layer.as_deref())
        .expect("layer directories")
}

/// Where the views of [`map`]'s layers are.
fn views_dir(t: &TestDaemon) -> PathBuf {
    crate::remap_fs::remap_dir(&t.cfg.data_root, &map())
}

/// The lower directories of container `id`'s overlay past its init layer.
fn layer_lowers(t: &TestDaemon, id: &str) -> Vec<PathBuf> {
    let lowers = t.fake.lowers_of(&t.d.runtime.rootfs(id));
    assert!(!lowers.is_empty(), "{id} has an overlay");
    lowers[1..].to_vec()
}

fn mappings(spec: &serde_json::Value, key: &str) -> Vec<(u64, u64, u64)> {
    spec["linux"][key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["containerID"].as_u64().unwrap(),
                        m["hostID"].as_u64().unwrap(),
                        m["size"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_user_namespace(spec: &serde_json::Value) -> bool {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user")
}

#[tokio::test]
async fn a_remapped_start_mounts_idmapped_views_and_maps_the_ids() {
    let t = remapped(FakeHost::new(), false).await;
    let id = t.run("c1", |_| {}).await;
    let views = views_dir(&t).join("idmapped");
    let mounted = calls_of(&t, "mount_idmapped");
    assert_eq!(mounted.len(), 1, "one view per image layer: {mounted:?}");
    let lowers = layer_lowers(&t, &id);
    assert_eq!(lowers.len(), 1);
    assert!(lowers[0].starts_with(&views), "{lowers:?} under {views:?}");
    assert!(mounted[0].starts_with("mount_idmapped 100000.200000 "));
    assert!(mounted[0].ends_with(&lowers[0].display().to_string()));
    assert!(calls_of(&t, "copy_tree").is_empty());
    // The spec: a new user namespace whose root is the range's first id.
    let spec = t.spec(&id);
    assert!(has_user_namespace(&spec), "{}", spec["linux"]["namespaces"]);
    assert_eq!(mappings(&spec, "uidMappings"), vec![(0, 100_000, 65536)]);
    assert_eq!(mappings(&spec, "gidMappings"), vec![(0, 200_000, 65536)]);
    // The writable layer and the /etc files belong to the remapped root.
    let chowns = calls_of(&t, "chown");
    let rt = &t.d.runtime;
    for p in [
        rt.upper_dir(&id),
        rt.hostname_path(&id),
        rt.hosts_path(&id),
        rt.resolv_conf_path(&id),
    ] {
        let want = format!("chown {ROOT} {}", p.display());
        assert!(chowns.contains(&want), "{want} in {chowns:?}");
    }
    // A second container reuses the views.
    let id2 = t.run("c2", |_| {}).await;
    assert_eq!(calls_of(&t, "mount_idmapped").len(), 1);
    assert_eq!(layer_lowers(&t, &id2), lowers);
    // Removing the image detaches its views.
    for id in [&id, &id2] {
        t.d.container_remove(id, true, false).await.unwrap();
    }
    t.d.image_remove(IMAGE, true, false).await.unwrap();
    let gone = calls_of(&t, "unmount_idmapped");
    assert_eq!(
        gone,
        vec![format!("unmount_idmapped {}", lowers[0].display())]
    );
    assert!(!t.fake.is_mounted(&lowers[0]));
}

#[tokio::test]
async fn forced_copies_replace_the_idmapped_views() {
    let t = remapped(FakeHost::new(), true).await;
    let id = t.run("c1", |_| {}).await;
    assert!(calls_of(&t, "mount_idmapped").is_empty());
    let copies = calls_of(&t, "copy_tree");
    assert_eq!(copies.len(), 1, "{copies:?}");
    let lowers = layer_lowers(&t, &id);
    let dir = views_dir(&t);
    assert_eq!(lowers[0].parent(), Some(dir.as_path()));
    assert!(lowers[0].is_dir(), "the copy was renamed into place");
    // The copy's owners were shifted (the fake records them).
    assert!(calls_of(&t, "chown")
        .iter()
        .any(|c| c.contains(&format!("{}/.tmp-", dir.display()))));
    // A second start reuses the copy.
    t.run("c2", |_| {}).await;
    assert_eq!(calls_of(&t, "copy_tree").len(), 1);
}

#[tokio::test]
async fn failed_idmapped_mounts_fall_back_to_copies_for_good() {
    let fake = FakeHost::new();
    fake.fail_at("mount_idmapped", 1);
    let t = remapped(fake, false).await;
    let id = t.run("c1", |_| {}).await;
    assert_eq!(calls_of(&t, "copy_tree").len(), 1);
    assert_eq!(
        layer_lowers(&t, &id)[0].parent(),
        Some(views_dir(&t).as_path())
    );
    t.run("c2", |_| {}).await;
    assert_eq!(t.fake.count("mount_idmapped"), 1, "not tried again");
    // A kernel without them is not asked at all.
    let fake = FakeHost::new();
    fake.set_idmap_supported(false);
    let t = remapped(fake, false).await;
    t.run("c1", |_| {}).await;
    assert_eq!(t.fake.count("mount_idmapped"), 0);
    assert_eq!(calls_of(&t, "copy_tree").len(), 1);
}

#[tokio::test]
async fn userns_host_opts_a_container_out() {
    let t = remapped(FakeHost::new(), false).await;
    let id = t.run("plain", |hc| hc.userns_mode = "host".into()).await;
    let spec = t.spec(&id);
    assert!(!has_user_namespace(&spec));
    assert!(mappings(&spec, "uidMappings").is_empty());
    assert!(calls_of(&t, "mount_idmapped").is_empty());
    assert!(calls_of(&t, "chown").is_empty());
    assert_eq!(layer_lowers(&t, &id), image_layers(&t, &id));
}

#[tokio::test]
async fn a_remapped_container_on_a_bridge_is_plumbed_after_its_creation() {
    let t = TestDaemon::with(FakeHost::new(), |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = BIP.into();
        cfg.userns_remap = Some(map());
    })
    .await;
    let id = t.run("web", |hc| hc.network_mode = "bridge".into()).await;
    let calls = t.fake.calls();
    let pos = |op: &str| calls.iter().position(|c| c.starts_with(op));
    let (launch, pin) = (pos("launch_shim ").unwrap(), pos("netns_pin ").unwrap());
    assert!(launch < pin, "{calls:?}");
    assert!(calls[pin].contains(&format!("/proc/{}/ns/net", crate::host::fake::FAKE_PID)));
    assert!(calls_of(&t, "netns_create").is_empty());
    // The runtime makes the network namespace inside the user namespace: no path to join.
    let net = t.spec_namespace(&id, "network");
    assert!(net.get("path").is_none(), "{net}");
}

#[tokio::test]
async fn dockerds_refusals_hold_under_remapping() {
    let t = remapped(FakeHost::new(), false).await;
    let create = |hc: HostConfig| {
        let req = CreateRequest {
            config: Config {
                image: IMAGE.into(),
                ..Config::default()
            },
            host_config: Some(hc),
            ..CreateRequest::default()
        };
        let d = t.d.clone();
        async move { d.container_create(None, req).await.map(|r| r.id) }
    };
    let refused = [
        (
            HostConfig {
                privileged: true,
                ..HostConfig::default()
            },
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode",
        ),
        (
            HostConfig {
                pid_mode: "host".into(),
                ..HostConfig::default()
            },
            "cannot share the host PID namespace when user namespaces are enabled",
        ),
        (
            HostConfig {
                network_mode: "host".into(),
                ..HostConfig::default()
            },
            "cannot share the host's network namespace when user namespaces are enabled",
        ),
        (
            HostConfig {
                userns_mode: "private".into(),
                ..HostConfig::default()
            },
            "invalid USER mode: private",
        ),
    ];
    for (hc, want) in refused {
        let e = create(hc).await.unwrap_err();
        assert_eq!(e.message, want);
        assert_eq!(e.kind, berth_api_types::ErrorKind::InvalidParameter);
    }
    // `--userns=host` lifts them.
    create(HostConfig {
        userns_mode: "host".into(),
        privileged: true,
        pid_mode: "host".into(),
        network_mode: "host".into(),
        ..HostConfig::default()
    })
    .await
    .expect("--userns=host takes privileged and host namespaces");
    // Named volumes of a remapped daemon belong to its root.
    t.d.volume_create(berth_api_types::volume::CreateRequest {
        name: "vol".into(),
        ..Default::default()
    })
    .unwrap();
    assert!(calls_of(&t, "chown")
        .iter()
        .any(|c| c.starts_with(&format!("chown {ROOT} ")) && c.contains("vol")));
}

#[tokio::test]
async fn every_range_of_the_mapping_reaches_the_spec_and_the_views() {
    let two = IdMap::from_ranges(
        "u:g",
        &[(300_000, 1000), (100_000, 65536)],
        &[(200_000, 65536), (400_000, 10)],
        340,
    )
    .unwrap();
    let t = TestDaemon::with(FakeHost::new(), move |cfg| {
        cfg.userns_remap = Some(two);
    })
    .await;
    let id = t.run("two", |_| {}).await;
    let spec = t.spec(&id);
    assert_eq!(
        mappings(&spec, "uidMappings"),
        vec![(0, 100_000, 65536), (65536, 300_000, 1000)]
    );
    assert_eq!(
        mappings(&spec, "gidMappings"),
        vec![(0, 200_000, 65536), (65536, 400_000, 10)]
    );
    // Container root is the lowest range's first id; the views are named after it.
    let mounted = calls_of(&t, "mount_idmapped");
    assert!(
        mounted[0].starts_with("mount_idmapped 100000.200000 "),
        "{mounted:?}"
    );
    let want = format!(
        "chown 100000:200000 {}",
        t.d.runtime.upper_dir(&id).display()
    );
    assert!(calls_of(&t, "chown").contains(&want));
}

#[tokio::test]
async fn build_steps_run_remapped_unless_privileged_or_on_the_host_network() {
    let t = remapped(FakeHost::new(), false).await;
    let image = t.d.image_state(IMAGE).expect("image state");
    let step = |run: berth_builder::RunConfig, net: &str| {
        let host = HostConfig {
            network_mode: net.into(),
            ..HostConfig::default()
        };
        let (id, _) =
            t.d.create_build_container(&image, Some(&run), &host)
                .expect("build container");
        (t.d.get(&id).expect("record").host_config.userns_mode, id)
    };
    let run = || berth_builder::RunConfig {
        cmd: vec!["true".into()],
        ..Default::default()
    };
    let (mode, id) = step(run(), "none");
    assert_eq!(mode, "", "a RUN step is remapped");
    let privileged = berth_builder::RunConfig {
        privileged: true,
        ..run()
    };
    assert_eq!(step(privileged, "none").0, "host");
    let host_net = berth_builder::RunConfig {
        network: Some("host".into()),
        ..run()
    };
    assert_eq!(step(host_net, "none").0, "host");
    assert_eq!(step(run(), "host").0, "host", "docker build --network host");
    // Its start goes the remapped way: views of the layers, a spec with the mapping.
    t.d.runtime.unmount_rootfs(&id);
    t.d.container_start(&id).await.expect("step start");
    assert_eq!(calls_of(&t, "mount_idmapped").len(), 1);
    assert_eq!(
        mappings(&t.spec(&id), "uidMappings"),
        vec![(0, 100_000, 65536)]
    );
}
