//! Request bodies as Go-speaking clients send them, decoded as dockerd's encoding/json does
//! (issue 18): `null` for any field, keys in any case, unknown keys, Go's number rules; through
//! the raw API and through the Python SDK's healthcheck dicts and IPAM pools.

use std::process::Command;

use berth_tests::*;
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn bodies_with_nulls_odd_case_and_unknown_keys() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["gj-c1"], vec!["gj-net"]);
    let subnet = d.spare_subnet(0);

    // docker-compose 1.29 / docker-py: nulls in Healthcheck; keys in other cases; unknown keys.
    let (st, body) = d.api(
        "POST",
        "/v1.41/containers/create?name=gj-c1",
        Some(
            r#"{"image":"busybox","CMD":["sleep","60"],"StopTimeout":null,"Entrypoint":null,
                "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Timeout":null,
                "Retries":null,"StartPeriod":null},"Labels":{"Mixed.Case":"v"},
                "hostconfig":{"memory":null,"NetworkMode":null,"PortBindings":null,
                "restartpolicy":{"name":"on-failure","maximumRetryCount":2},"LogConfig":null},
                "NetworkingConfig":null,"XUnknown":{"a":[null]}}"#,
        ),
    );
    assert_eq!(st, 201, "{body}");
    let (_, body) = d.api("GET", "/containers/gj-c1/json", None);
    let v = json(&body);
    assert_eq!(v["Config"]["Image"], "busybox");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sleep", "60"]));
    assert_eq!(v["Config"]["Healthcheck"]["Interval"], 1_000_000_000);
    assert_eq!(v["Config"]["Healthcheck"]["Timeout"], 0);
    assert_eq!(
        v["Config"]["Labels"]["Mixed.Case"], "v",
        "label keys as sent"
    );
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);

    // Go's number rules: an integer field refuses fractions and exponents, a 400.
    for bad in ["1.5", "1e9", "1.0", "9223372036854775808"] {
        let (st, body) = d.api(
            "POST",
            "/containers/create",
            Some(&format!(
                r#"{{"Image":"busybox","HostConfig":{{"Memory":{bad}}}}}"#
            )),
        );
        assert_eq!(st, 400, "Memory {bad}: {body}");
        let msg = json(&body)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            msg.starts_with("invalid JSON: json: cannot unmarshal number")
                && msg.ends_with("into Go struct field HostConfig.HostConfig.Memory of type int64"),
            "{msg}"
        );
    }
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Tty":"yes"}"#),
    );
    assert_eq!(st, 400, "{body}");

    // Ansible's docker_network / docker-py IPAMPool: nulls in the IPAM config, odd case.
    let (st, body) = d.api(
        "POST",
        "/networks/create",
        Some(&format!(
            r#"{{"name":"gj-net","Driver":null,"ipam":{{"Driver":"default","Config":[{{"subnet":"{subnet}",
                "IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}}],"Options":null}},
                "Options":null,"Labels":null,"EnableIPv6":null,"CheckDuplicate":true,"Attachable":null}}"#
        )),
    );
    assert_eq!(st, 201, "{body}");
    let (_, body) = d.api("GET", "/networks/gj-net", None);
    assert_eq!(json(&body)["IPAM"]["Config"][0]["Subnet"], subnet.as_str());

    let (st, body) = d.api(
        "POST",
        "/networks/gj-net/connect",
        Some(r#"{"container":"gj-c1","EndpointConfig":{"aliases":["gj-alias"],"IPAMConfig":null,"Links":null,"DriverOpts":null}}"#),
    );
    assert_eq!(st, 200, "{body}");
    let (_, body) = d.api("GET", "/containers/gj-c1/json", None);
    let aliases = &json(&body)["NetworkSettings"]["Networks"]["gj-net"]["Aliases"];
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "gj-alias")),
        "{aliases}"
    );
    let (st, body) = d.api(
        "POST",
        "/networks/gj-net/disconnect",
        Some(r#"{"CONTAINER":"gj-c1","force":null}"#),
    );
    assert_eq!(st, 200, "{body}");

    let (st, body) = d.api(
        "POST",
        "/volumes/create",
        Some(r#"{"name":"gj-vol","Driver":null,"DriverOpts":null,"labels":{"K":"v"}}"#),
    );
    assert_eq!(st, 201, "{body}");
    assert_eq!(json(&body)["Labels"]["K"], "v");
    let _ = d.api("DELETE", "/volumes/gj-vol", None);

    let (st, body) = d.api("POST", "/containers/gj-c1/start", None);
    assert_eq!(st, 204, "{body}");
    let (st, body) = d.api(
        "POST",
        "/containers/gj-c1/exec",
        Some(r#"{"cmd":["true"],"Env":null,"User":null,"WorkingDir":null,"AttachStdout":null,"ConsoleSize":null}"#),
    );
    assert_eq!(st, 201, "{body}");
    let id = json(&body)["Id"].as_str().expect("exec id").to_string();
    let (st, body) = d.api(
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"detach":true,"Tty":null,"ConsoleSize":null}"#),
    );
    assert_eq!(st, 200, "{body}");

    let (st, body) = d.api(
        "POST",
        "/containers/gj-c1/update",
        Some(r#"{"cpushares":512,"Memory":null,"PidsLimit":null,"RestartPolicy":null,"BlkioWeightDevice":null}"#),
    );
    assert_eq!(st, 200, "{body}");
    let (_, body) = d.api("GET", "/containers/gj-c1/json", None);
    assert_eq!(json(&body)["HostConfig"]["CpuShares"], 512);
    let (st, body) = d.api(
        "POST",
        "/containers/gj-c1/update",
        Some(r#"{"CpuShares":1.5}"#),
    );
    assert_eq!(st, 400, "{body}");

    let (st, body) = d.api(
        "POST",
        "/commit?container=gj-c1&repo=gj-img&tag=1",
        Some(r#"{"cmd":null,"Labels":{"gj":"yes"},"Env":null,"ExposedPorts":null}"#),
    );
    assert_eq!(st, 201, "{body}");
    let (_, body) = d.api("GET", "/images/gj-img:1/json", None);
    assert_eq!(json(&body)["Config"]["Labels"]["gj"], "yes");
    let _ = d.api("DELETE", "/images/gj-img:1?force=1", None);
}

/// The Python SDK's healthcheck dict (its `None`s go out as `null`) and `networks.create` with
/// an IPAM pool, as issue 18 reports them failing; and testcontainers' healthcheck container.
#[test]
fn python_sdk_healthcheck_and_ipam() {
    if !is_root() {
        return;
    }
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["gj-py1", "gj-py2"], vec!["gj-pynet"]);
    let script = format!(
        r#"
import docker
from docker.types import IPAMConfig, IPAMPool
c = docker.from_env()
net = c.networks.create("gj-pynet", driver="bridge",
    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="{subnet}")]))
assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "{subnet}", net.attrs
ct = c.containers.create("busybox", ["sleep", "60"], name="gj-py1", network="gj-pynet",
    healthcheck={{"test": ["CMD-SHELL", "true"], "interval": 1000000000, "timeout": None,
                 "retries": None, "start_period": None}})
ct.reload()
assert ct.attrs["Config"]["Healthcheck"]["Interval"] == 1000000000, ct.attrs["Config"]
assert "gj-pynet" in ct.attrs["NetworkSettings"]["Networks"], ct.attrs["NetworkSettings"]
api = c.api
api.create_container("busybox", "true", name="gj-py2",
    healthcheck=docker.types.Healthcheck(test="true", interval=500000000),
    host_config=api.create_host_config(mem_limit="64m"))
print("ok")
"#,
        subnet = d.spare_subnet(1)
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .env("DOCKER_HOST", d.host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .expect("python3");
    assert!(
        out.status.success() && stdout(&out).contains("ok"),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        inspect(&d, "gj-py2", "{{.Config.Healthcheck.Timeout}}"),
        "0s"
    );
}
