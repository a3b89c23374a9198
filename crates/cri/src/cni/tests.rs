//! The client against fake plugins (small python scripts that log what they were given).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use super::*;

const FAKE: &str = r#"#!/usr/bin/env python3
import json, os, sys
conf = json.load(sys.stdin)
name = os.path.basename(sys.argv[0])
env = {k: v for k, v in os.environ.items() if k.startswith("CNI_")}
with open(LOG, "a") as f:
    f.write(json.dumps({"plugin": name, "env": env, "conf": conf}) + "\n")
cmd = env["CNI_COMMAND"]
if name == "fakefail":
    print(json.dumps({"cniVersion": "1.0.0", "code": 7, "msg": "no luck", "details": "at all"}))
    sys.exit(1)
if cmd == "ADD":
    if name == "fakeip":
        print(json.dumps({"cniVersion": conf["cniVersion"],
            "interfaces": [{"name": env["CNI_IFNAME"], "sandbox": env["CNI_NETNS"]}],
            "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0"}]}))
    else:
        prev = conf["prevResult"]
        prev["dns"] = {"nameservers": ["10.9.0.53"]}
        print(json.dumps(prev))
"#;

struct Env {
    dir: tempfile::TempDir,
    cni: Cni,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("log.jsonl");
        let script = FAKE.replacen(
            "import json, os, sys",
            &format!("import json, os, sys\nLOG = {:?}", log.to_str().unwrap()),
            1,
        );
        for name in ["fakeip", "fakepass", "fakefail"] {
            let p = bin.join(name);
            std::fs::write(&p, &script).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let cni = Cni::new(vec![dir.path().join("empty"), bin]);
        Env { dir, cni }
    }

    fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("log.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn list(plugins: Value) -> NetworkConfigList {
    NetworkConfigList::from_list_json(
        json!({"cniVersion": "1.0.0", "name": "podnet", "plugins": plugins})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

fn rt() -> RuntimeConf {
    let mut rt = RuntimeConf::for_pod("sb1", "/run/netns/sb1", "default", "web", "u1");
    rt.port_mappings = vec![PortMapping {
        host_port: 8080,
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    rt.bandwidth = Some(Bandwidth {
        ingress_rate: 1000,
        ingress_burst: 10,
        ..Default::default()
    });
    rt
}

fn python_available() -> bool {
    Path::new("/usr/bin/python3").exists()
}

#[tokio::test]
async fn add_chains_prev_results_and_passes_capabilities() {
    if !python_available() {
        eprintln!("skipped: no python3 for the fake plugins");
        return;
    }
    let env = Env::new();
    let l = list(json!([
        {"type": "fakeip", "ipam": {"type": "x"}},
        {"type": "fakepass", "capabilities": {"portMappings": true, "bandwidth": false}}
    ]));
    let (result, att) = env.cni.add(&l, &rt()).await.unwrap();
    assert_eq!(
        result.pod_ips("eth0"),
        vec!["10.9.0.5".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        result.dns.nameservers,
        ["10.9.0.53"],
        "the last plugin's result wins"
    );

    let log = env.log();
    assert_eq!(log.len(), 2);
    let first = &log[0];
    assert_eq!(first["plugin"], "fakeip");
    assert_eq!(first["env"]["CNI_COMMAND"], "ADD");
    assert_eq!(first["env"]["CNI_CONTAINERID"], "sb1");
    assert_eq!(first["env"]["CNI_NETNS"], "/run/netns/sb1");
    assert_eq!(first["env"]["CNI_IFNAME"], "eth0");
    assert_eq!(
        first["env"]["CNI_ARGS"],
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u1"
    );
    let cni_path = first["env"]["CNI_PATH"].as_str().unwrap();
    assert!(
        cni_path.ends_with("/bin") && cni_path.contains(':'),
        "{cni_path}"
    );
    assert_eq!(first["conf"]["name"], "podnet");
    assert_eq!(first["conf"]["cniVersion"], "1.0.0");
    assert_eq!(first["conf"]["ipam"]["type"], "x");
    assert!(first["conf"].get("prevResult").is_none());
    assert!(
        first["conf"].get("runtimeConfig").is_none(),
        "no capabilities declared"
    );

    let second = &log[1];
    assert_eq!(
        second["conf"]["prevResult"]["ips"][0]["address"],
        "10.9.0.5/24"
    );
    assert_eq!(
        second["conf"]["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}),
        "only the declared capability"
    );

    // The attachment survives serialization (the daemon persists it) and drives DEL and CHECK.
    let att: Attachment = serde_json::from_str(&serde_json::to_string(&att).unwrap()).unwrap();
    env.cni.check(&att).await.unwrap();
    env.cni.del(&att).await.unwrap();
    let log = env.log();
    let order: Vec<String> = log[2..]
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["env"]["CNI_COMMAND"].as_str().unwrap(),
                e["plugin"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "CHECK fakeip",
            "CHECK fakepass",
            "DEL fakepass",
            "DEL fakeip"
        ]
    );
    for e in &log[2..] {
        assert_eq!(
            e["conf"]["prevResult"]["dns"]["nameservers"][0],
            "10.9.0.53"
        );
    }
}

#[tokio::test]
async fn bandwidth_capability() {
    if !python_available() {
        return;
    }
    let env = Env::new();
    let l = list(json!([{"type": "fakeip", "capabilities": {"bandwidth": true}}]));
    env.cni.add(&l, &rt()).await.unwrap();
    assert_eq!(
        env.log()[0]["conf"]["runtimeConfig"],
        json!({"bandwidth": {"ingressRate": 1000, "ingressBurst": 10, "egressRate": 0, "egressBurst": 0}})
    );
}

#[tokio::test]
async fn plugin_errors_and_missing_plugins() {
    if !python_available() {
        return;
    }
    let env = Env::new();
    let l = list(json!([{"type": "fakeip"}, {"type": "fakefail"}]));
    let e = env.cni.add(&l, &rt()).await.unwrap_err();
    match &e {
        CniError::Plugin {
            plugin,
            command,
            code,
            msg,
            details,
        } => {
            assert_eq!((plugin.as_str(), *command, *code), ("fakefail", "ADD", 7));
            assert_eq!((msg.as_str(), details.as_str()), ("no luck", "at all"));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        e.to_string(),
        "cni plugin fakefail ADD failed: no luck: at all"
    );

    // DEL runs every plugin even when one fails, and answers the failure.
    let e = env.cni.del_with(&l, &rt(), None).await.unwrap_err();
    assert!(matches!(e, CniError::Plugin { .. }));
    let dels: Vec<_> = env.log()[2..].iter().map(|e| e["plugin"].clone()).collect();
    assert_eq!(dels, [json!("fakefail"), json!("fakeip")]);

    let l = list(json!([{"type": "nosuch"}]));
    let e = env.cni.add(&l, &rt()).await.unwrap_err();
    assert!(matches!(e, CniError::PluginNotFound { .. }), "{e}");
    let l = list(json!([{"type": "../bin/fakeip"}]));
    assert!(matches!(
        env.cni.add(&l, &rt()).await.unwrap_err(),
        CniError::PluginNotFound { .. }
    ));
}

#[tokio::test]
async fn check_needs_0_4_and_honours_disable_check() {
    let env = Env::new();
    let mut att = Attachment {
        network: json!({"cniVersion": "0.3.1", "name": "n", "plugins": [{"type": "fakefail"}]}),
        runtime: rt(),
        result: json!({}),
    };
    assert!(matches!(
        env.cni.check(&att).await,
        Err(CniError::CheckUnsupported { .. })
    ));
    att.network = json!({"cniVersion": "1.0.0", "name": "n", "disableCheck": true, "plugins": [{"type": "fakefail"}]});
    env.cni.check(&att).await.unwrap();
    assert!(env.log().is_empty());
}

#[test]
fn network_condition_follows_the_conf_dir() {
    let dir = tempfile::tempdir().unwrap();
    let c = network_condition(dir.path());
    assert!(!c.ready);
    assert_eq!(c.reason, "NetworkPluginNotReady");
    assert!(c.message.contains("cni plugin not initialized"));
    std::fs::write(
        dir.path().join("10-x.conflist"),
        r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#,
    )
    .unwrap();
    assert!(network_condition(dir.path()).ready);
}
