//! The create body against docker CLI 28's, flag by flag.

use std::collections::HashMap;

use clap::Parser;
use serde_json::{json, Value};

use super::*;

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct T {
    #[command(flatten)]
    o: ContainerOpts,
    #[arg(short = 'd')]
    detach: bool,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Default)]
struct Fake {
    env: HashMap<String, String>,
    files: HashMap<String, String>,
}

impl Local for Fake {
    fn env(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }
    fn read_file(&self, path: &str) -> std::io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory")
        })
    }
}

fn fake() -> Fake {
    let mut f = Fake::default();
    f.env.insert("FROMHOST".into(), "hostval".into());
    f.files.insert(
        "/env.list".into(),
        "# comment\n\nA=1\nFROMHOST\nUNSET\n  B=two words\n".into(),
    );
    f.files.insert(
        "/sec.json".into(),
        "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n".into(),
    );
    f
}

fn build(args: &[&str]) -> Value {
    let mut argv = vec!["run"];
    argv.extend_from_slice(args);
    let t = T::try_parse_from(argv).unwrap();
    build_create(
        &t.o,
        &t.args[0],
        &t.args[1..],
        t.detach,
        true,
        (0, 0),
        &fake(),
    )
    .unwrap()
    .wire()
}

#[test]
fn fixture_shape() {
    let b = build(&[
        "-i",
        "-t",
        "-h",
        "h1",
        "-e",
        "A=b",
        "-l",
        "k=v",
        "-p",
        "8080:80",
        "-v",
        "/tmp:/data:ro",
        "-m",
        "64m",
        "--restart",
        "unless-stopped",
        "--entrypoint",
        "/bin/sh",
        "nginx:alpine",
        "-c",
        "echo hi",
    ]);
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../../../shared/spec/fixtures/docker-cli-28.2.2-create-body.json"
    ))
    .unwrap();
    assert_eq!(b, fixture);
}

#[test]
fn defaults() {
    let b = build(&["busybox"]);
    assert_eq!(b["Cmd"], Value::Null);
    assert_eq!(b["Entrypoint"], Value::Null);
    assert_eq!(b["AttachStdin"], false);
    assert_eq!(b["AttachStdout"], true);
    assert_eq!(b["StdinOnce"], false);
    assert_eq!(b["HostConfig"]["NetworkMode"], "bridge");
    assert_eq!(b["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(b["HostConfig"]["AutoRemove"], false);
    assert!(b.get("ExposedPorts").is_none());
    assert!(b["HostConfig"].get("Init").is_none());
    assert_eq!(b["Labels"], json!({}));
    assert_eq!(b["Env"], json!([]));
}

#[test]
fn command_after_image_keeps_its_flags() {
    let b = build(&["--rm", "busybox", "ls", "-d", "-l", "--rm"]);
    assert_eq!(b["Cmd"], json!(["ls", "-d", "-l", "--rm"]));
    assert_eq!(b["HostConfig"]["AutoRemove"], true);
}

#[test]
fn detach_clears_attach() {
    let b = build(&["-d", "-i", "busybox"]);
    assert_eq!(b["AttachStdin"], false);
    assert_eq!(b["AttachStdout"], false);
    assert_eq!(b["OpenStdin"], true);
    assert_eq!(b["StdinOnce"], false);
}

#[test]
fn entrypoint_empty_is_array_with_empty_string() {
    let b = build(&["--entrypoint", "", "busybox", "echo"]);
    assert_eq!(b["Entrypoint"], json!([""]));
    assert_eq!(b["Cmd"], json!(["echo"]));
}

#[test]
fn env_semantics() {
    let b = build(&[
        "--env-file",
        "/env.list",
        "-e",
        "X=1",
        "-e",
        "FROMHOST",
        "-e",
        "NOPE",
        "busybox",
    ]);
    assert_eq!(
        b["Env"],
        json!([
            "A=1",
            "FROMHOST=hostval",
            "UNSET",
            "B=two words",
            "X=1",
            "FROMHOST=hostval",
            "NOPE"
        ])
    );
}

#[test]
fn security_caps_limits_logs_network() {
    let b = build(&[
        "--cap-add",
        "ALL",
        "--cap-drop",
        "NET_RAW",
        "--security-opt",
        "seccomp=/sec.json",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=10",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--network",
        "none",
        "--privileged",
        "--read-only",
        "--init",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "--add-host",
        "db:10.0.0.1",
        "--add-host",
        "x=1.2.3.4",
        "--dns",
        "8.8.8.8",
        "--dns-search",
        "example.com",
        "--dns-option",
        "ndots:2",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "busybox",
    ]);
    let hc = &b["HostConfig"];
    assert_eq!(hc["CapAdd"], json!(["ALL"]));
    assert_eq!(hc["CapDrop"], json!(["NET_RAW"]));
    assert_eq!(
        hc["SecurityOpt"],
        json!([
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
            "no-new-privileges"
        ])
    );
    assert_eq!(
        hc["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 10, "Hard": 10}])
    );
    assert_eq!(
        hc["LogConfig"],
        json!({"Type": "json-file", "Config": {"max-size": "1m"}})
    );
    assert_eq!(hc["NetworkMode"], "none");
    assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
    assert_eq!(hc["Privileged"], true);
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Init"], true);
    assert_eq!(b["StopSignal"], "SIGINT");
    assert_eq!(b["StopTimeout"], 3);
    assert_eq!(hc["ExtraHosts"], json!(["db:10.0.0.1", "x:1.2.3.4"]));
    assert_eq!(hc["Dns"], json!(["8.8.8.8"]));
    assert_eq!(hc["DnsSearch"], json!(["example.com"]));
    assert_eq!(hc["DnsOptions"], json!(["ndots:2"]));
    assert_eq!(hc["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(b["User"], "1000:1000");
    assert_eq!(b["WorkingDir"], "/tmp");
}

#[test]
fn user_network_gets_endpoint() {
    let b = build(&["--network", "mynet", "busybox"]);
    assert_eq!(b["HostConfig"]["NetworkMode"], "mynet");
    assert!(b["NetworkingConfig"]["EndpointsConfig"]["mynet"].is_object());
}

#[test]
fn bad_values() {
    let t =
        T::try_parse_from(["run", "--security-opt", "seccomp=/missing.json", "busybox"]).unwrap();
    let e = build_create(&t.o, "busybox", &[], false, true, (0, 0), &fake()).unwrap_err();
    assert!(
        e.0.contains("opening seccomp profile (/missing.json) failed"),
        "{e}"
    );
    assert!(parse_ulimit("nofile").is_err());
    assert!(parse_ulimit("nofile=2048:1024").is_err());
    assert!(parse_publish("80:abc").is_err());
}

#[test]
fn publish_specs() {
    let parse_publish = |s| {
        let (port, binding) = parse_publish(s).unwrap();
        (port, serde_json::to_value(binding).unwrap())
    };
    assert_eq!(
        parse_publish("80"),
        ("80/tcp".into(), json!({"HostIp": "", "HostPort": ""}))
    );
    assert_eq!(
        parse_publish("127.0.0.1:8080:80/udp"),
        (
            "80/udp".into(),
            json!({"HostIp": "127.0.0.1", "HostPort": "8080"})
        )
    );
    assert_eq!(
        parse_publish("[::1]:8080:80"),
        (
            "80/tcp".into(),
            json!({"HostIp": "::1", "HostPort": "8080"})
        )
    );
}

#[test]
fn byte_sizes() {
    assert_eq!(parse_bytes("64m").unwrap(), 67108864);
    assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
    assert_eq!(parse_bytes("512k").unwrap(), 512 * 1024);
    assert_eq!(parse_bytes("100").unwrap(), 100);
    assert_eq!(parse_bytes("1.5GB").unwrap(), 1610612736);
    assert!(parse_bytes("abc").is_err());
    assert_eq!(parse_bytes("1q").unwrap_err().0, "invalid suffix: 'q'");
}
