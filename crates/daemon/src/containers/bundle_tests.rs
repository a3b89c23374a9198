//! What a start hands the runtime, over the fake kernel: the OCI spec in the bundle, the /etc
//! files and the container's directories, as the create request asked for them.

use std::path::Path;

use berth_api_types::container::HostConfig;
use serde_json::Value;

use crate::host::testkit::TestDaemon;

/// The `config.json` of a started container's bundle.
fn spec_of(t: &TestDaemon, id: &str) -> Value {
    let path = t.d.runtime.bundle_dir(id).join("config.json");
    serde_json::from_slice(&std::fs::read(&path).expect("config.json")).expect("JSON")
}

/// A create request for the test image without a network.
fn request() -> berth_api_types::container::CreateRequest {
    berth_api_types::container::CreateRequest {
        config: berth_api_types::container::Config {
            image: crate::host::testkit::IMAGE.into(),
            ..Default::default()
        },
        host_config: Some(HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates (with the request changed by `req`) and starts a container.
async fn started(
    t: &TestDaemon,
    name: &str,
    req: impl FnOnce(&mut berth_api_types::container::CreateRequest),
) -> String {
    let mut r = request();
    req(&mut r);
    let id =
        t.d.container_create(Some(name.into()), r)
            .await
            .unwrap_or_else(|e| panic!("create: {}", e.message))
            .id;
    t.d.container_start(&id)
        .await
        .unwrap_or_else(|e| panic!("start: {}", e.message));
    id
}

fn hc(r: &mut berth_api_types::container::CreateRequest) -> &mut HostConfig {
    r.host_config.get_or_insert_with(Default::default)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_process_gets_the_image_command_env_and_user() {
    let t = TestDaemon::new().await;
    let id = started(&t, "proc", |r| {
        r.config.env = Some(vec!["A=1".into(), "B=two".into()]);
        r.config.user = "1000:1001".into();
    })
    .await;
    let s = spec_of(&t, &id);
    assert_eq!(strings(&s["process"]["args"]), ["/bin/app"]);
    let env = strings(&s["process"]["env"]);
    assert!(
        env.contains(&"A=1".into()) && env.contains(&"B=two".into()),
        "{env:?}"
    );
    assert!(env.iter().any(|e| e.starts_with("HOSTNAME=")), "{env:?}");
    assert_eq!(s["process"]["user"]["uid"], 1000);
    assert_eq!(s["process"]["user"]["gid"], 1001);
    assert_eq!(s["process"]["cwd"], "/");
}

#[tokio::test]
async fn cmd_and_entrypoint_of_the_request_replace_the_images() {
    let t = TestDaemon::new().await;
    let id = started(&t, "cmd", |r| {
        r.config.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        r.config.cmd = Some(vec!["echo hi".into()]);
    })
    .await;
    assert_eq!(
        strings(&spec_of(&t, &id)["process"]["args"]),
        ["/bin/sh", "-c", "echo hi"]
    );
}

#[tokio::test]
async fn a_working_dir_is_made_in_the_rootfs() {
    let t = TestDaemon::new().await;
    let id = started(&t, "wd", |r| r.config.working_dir = "/srv/app".into()).await;
    assert_eq!(spec_of(&t, &id)["process"]["cwd"], "/srv/app");
    assert!(t.d.runtime.rootfs(&id).join("srv/app").is_dir());
}

#[tokio::test]
async fn read_only_rootfs_and_privileged() {
    let t = TestDaemon::new().await;
    let id = started(&t, "ro", |r| hc(r).readonly_rootfs = true).await;
    let s = spec_of(&t, &id);
    assert_eq!(s["root"]["readonly"], true);
    assert!(
        s["linux"]["seccomp"].is_object(),
        "the default profile applies"
    );
    let id = started(&t, "priv", |r| hc(r).privileged = true).await;
    let s = spec_of(&t, &id);
    assert!(
        s["linux"]["seccomp"].is_null(),
        "no seccomp when privileged"
    );
    let caps = strings(&s["process"]["capabilities"]["bounding"]);
    assert!(caps.contains(&"CAP_SYS_ADMIN".into()), "{caps:?}");
}

#[tokio::test]
async fn capabilities_added_and_dropped() {
    let t = TestDaemon::new().await;
    let id = started(&t, "caps", |r| {
        hc(r).cap_add = Some(vec!["NET_ADMIN".into()]);
        hc(r).cap_drop = Some(vec!["CHOWN".into()]);
    })
    .await;
    let caps = strings(&spec_of(&t, &id)["process"]["capabilities"]["bounding"]);
    assert!(caps.contains(&"CAP_NET_ADMIN".into()), "{caps:?}");
    assert!(!caps.contains(&"CAP_CHOWN".into()), "{caps:?}");
    assert!(
        caps.contains(&"CAP_KILL".into()),
        "a default one stays: {caps:?}"
    );
}

#[tokio::test]
async fn binds_and_tmpfs_become_mounts() {
    let t = TestDaemon::new().await;
    let src = t.dir.path().join("hostdata");
    std::fs::create_dir_all(&src).unwrap();
    let id = started(&t, "mounts", |r| {
        hc(r).binds = Some(vec![format!("{}:/data:ro", src.display())]);
        hc(r).tmpfs = Some([("/scratch".to_string(), "size=1m".to_string())].into());
    })
    .await;
    let s = spec_of(&t, &id);
    let mounts = s["mounts"].as_array().expect("mounts");
    let data = mounts
        .iter()
        .find(|m| m["destination"] == "/data")
        .expect("the bind");
    assert_eq!(data["source"], src.display().to_string());
    assert!(strings(&data["options"]).contains(&"ro".into()), "{data}");
    let scratch = mounts
        .iter()
        .find(|m| m["destination"] == "/scratch")
        .expect("the tmpfs");
    assert_eq!(scratch["type"], "tmpfs");
    assert!(
        strings(&scratch["options"]).contains(&"size=1m".into()),
        "{scratch}"
    );
}

#[tokio::test]
async fn resource_limits_reach_the_spec() {
    let t = TestDaemon::new().await;
    let id = started(&t, "limits", |r| {
        hc(r).memory = 32 << 20;
        hc(r).pids_limit = Some(20);
        hc(r).cpu_shares = 256;
    })
    .await;
    let res = &spec_of(&t, &id)["linux"]["resources"];
    assert_eq!(res["memory"]["limit"], 32 << 20);
    assert_eq!(res["pids"]["limit"], 20);
    assert_eq!(res["cpu"]["shares"], 256);
}

#[tokio::test]
async fn the_etc_files_are_written_for_the_container() {
    let t = TestDaemon::new().await;
    let id = started(&t, "etc", |r| {
        r.config.hostname = "box".into();
        hc(r).dns = Some(vec!["10.9.8.7".into()]);
        hc(r).extra_hosts = Some(vec!["db:10.0.0.5".into()]);
    })
    .await;
    let rt = &t.d.runtime;
    assert_eq!(
        std::fs::read_to_string(rt.hostname_path(&id)).unwrap(),
        "box\n"
    );
    let hosts = std::fs::read_to_string(rt.hosts_path(&id)).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(hosts.contains("10.0.0.5\tdb"), "{hosts}");
    let resolv = std::fs::read_to_string(rt.resolv_conf_path(&id)).unwrap();
    assert!(resolv.contains("nameserver 10.9.8.7"), "{resolv}");
    let s = spec_of(&t, &id);
    assert_eq!(s["hostname"], "box");
    let etc: Vec<&str> = s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .filter(|d| d.starts_with("/etc/"))
        .collect();
    for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
        assert!(etc.contains(&f), "{f} in {etc:?}");
    }
}

#[tokio::test]
async fn network_none_gets_a_new_namespace_and_lo_up() {
    let t = TestDaemon::new().await;
    let id = started(&t, "nonet", |_| {}).await;
    let ns = &spec_of(&t, &id)["linux"]["namespaces"];
    let net = ns
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .expect("a network namespace");
    assert!(net["path"].is_null(), "a new one: {net}");
    assert_eq!(t.fake.count("loopback_up"), 1);
}

#[tokio::test]
async fn network_host_shares_the_hosts_namespace() {
    let t = TestDaemon::new().await;
    let id = started(&t, "hostnet", |r| hc(r).network_mode = "host".into()).await;
    let ns = &spec_of(&t, &id)["linux"]["namespaces"];
    assert!(
        !ns.as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"),
        "{ns}"
    );
    assert_eq!(
        t.fake.count("loopback_up"),
        0,
        "the host's lo is left alone"
    );
}

#[tokio::test]
async fn the_cgroup_is_under_the_daemons_parent() {
    let t = TestDaemon::new().await;
    let id = started(&t, "cg", |_| {}).await;
    let path = spec_of(&t, &id)["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(path.ends_with(&id), "{path}");
    assert!(path.contains("berth-unit-"), "{path}");
}

#[tokio::test]
async fn the_init_layer_has_dockerenv_and_is_shared_by_the_images_containers() {
    let t = TestDaemon::new().await;
    let a = started(&t, "init", |_| {}).await;
    let b = started(&t, "init2", |_| {}).await;
    let lowers_a = t.fake.lowers_of(&t.d.runtime.rootfs(&a));
    let lowers_b = t.fake.lowers_of(&t.d.runtime.rootfs(&b));
    let init = &lowers_a[0];
    assert!(init.join(".dockerenv").exists(), "{}", init.display());
    assert!(init.ends_with("init"), "{}", init.display());
    assert_eq!(
        lowers_a, lowers_b,
        "one init layer for the image's containers"
    );
    assert!(
        !t.d.runtime.container_dir(&a).join("fs/init").exists(),
        "no init layer of its own"
    );
    // Inspect shows it as the top lower directory.
    let info = t.d.container_inspect(&a, false).unwrap();
    let data = &info.graph_driver.data;
    let shown = data.get("LowerDir").unwrap().split(':').next().unwrap();
    assert_eq!(Path::new(shown), init.as_path());
}

#[tokio::test]
async fn a_container_with_its_own_init_layer_keeps_it() {
    let t = TestDaemon::new().await;
    let id = t.d.container_create(None, request()).await.unwrap().id;
    // As an earlier berth made it.
    let own = t.d.runtime.container_dir(&id).join("fs/init");
    std::fs::create_dir_all(&own).unwrap();
    t.d.container_start(&id).await.unwrap();
    assert_eq!(t.fake.lowers_of(&t.d.runtime.rootfs(&id))[0], own);
}
