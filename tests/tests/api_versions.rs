//! Issue 18 items 3 and 4: the swarm endpoints answered as an inactive dockerd answers them, and
//! behaviour chosen by the request's API version (1.24 to 1.55), driven with the real docker CLI
//! (which negotiates its version), raw requests at chosen versions, and the Python SDK pinned
//! to 1.41 or negotiating.

use std::process::Command;

use berth_tests::*;
use serde_json::Value;

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn message(body: &str) -> String {
    json(body)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn swarm_endpoints_answer_as_an_inactive_dockerd() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    let (st, body) = d.api("POST", "/swarm/leave?force=1", None);
    assert_eq!(st, 503, "{body}");
    assert_eq!(message(&body), "This node is not part of a swarm");
    for path in [
        "/swarm",
        "/swarm/unlockkey",
        "/nodes",
        "/nodes/abc",
        "/services",
        "/services/abc",
        "/tasks",
        "/tasks/abc",
        "/secrets",
        "/secrets/abc",
        "/configs",
        "/configs/abc",
        "/v1.41/services",
    ] {
        let (st, body) = d.api("GET", path, None);
        assert_eq!(st, 503, "GET {path}: {body}");
        assert_eq!(message(&body), NOT_A_MANAGER, "GET {path}");
    }
    for (method, path, body) in [
        ("DELETE", "/nodes/abc", None),
        ("DELETE", "/services/abc", None),
        ("DELETE", "/secrets/abc", None),
        ("DELETE", "/configs/abc", None),
        ("POST", "/services/create", Some("{}")),
        ("POST", "/secrets/create", Some(r#"{"Name":"s","Data":""}"#)),
        ("POST", "/configs/create", Some(r#"{"Name":"c","Data":""}"#)),
        ("POST", "/swarm/unlock", Some(r#"{"UnlockKey":"x"}"#)),
        ("POST", "/swarm/update?version=1", Some("{}")),
        ("POST", "/nodes/abc/update?version=1", Some("{}")),
        ("POST", "/services/abc/update?version=1", Some("{}")),
        ("POST", "/secrets/abc/update?version=1", Some("{}")),
        ("POST", "/configs/abc/update?version=1", Some("{}")),
        ("GET", "/services/abc/logs?stdout=1", None),
        ("GET", "/tasks/abc/logs?stderr=1", None),
    ] {
        let (st, text) = d.api(method, path, body);
        assert_eq!(st, 503, "{method} {path}: {text}");
        assert_eq!(message(&text), NOT_A_MANAGER, "{method} {path}");
    }
    // What dockerd's router checks before the node's state.
    let (st, _, body) = d.api_with("POST", "/swarm/init", &[], None);
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        r#"invalid ListenAddr "": invalid empty address"#
    );
    let (st, body) = d.api(
        "POST",
        "/swarm/join",
        Some(r#"{"ListenAddr":"0.0.0.0:2377"}"#),
    );
    assert_eq!(st, 400);
    assert_eq!(message(&body), "at least 1 RemoteAddr is required to join");
    let (st, body) = d.api("POST", "/swarm/update", Some("{}"));
    assert_eq!(st, 400);
    assert_eq!(
        message(&body),
        r#"invalid swarm version '': strconv.ParseUint: parsing "": invalid syntax"#
    );
    let (st, body) = d.api("GET", "/services/abc/logs", None);
    assert_eq!(st, 500);
    assert_eq!(
        message(&body),
        "Bad parameters: you must choose at least one stream"
    );
    let (st, body) = d.api("PUT", "/volumes/v", Some("{}"));
    assert_eq!(st, 503, "{body}");
    // Swarm itself is not implemented: an init dockerd would carry out is refused plainly.
    let (st, body) = d.api(
        "POST",
        "/swarm/init",
        Some(r#"{"ListenAddr":"0.0.0.0:2377"}"#),
    );
    assert_eq!(st, 501, "{body}");

    // /info and /_ping say the node is in no swarm.
    let (_, body) = d.api("GET", "/info", None);
    let swarm = json(&body)["Swarm"].clone();
    assert_eq!(swarm["LocalNodeState"], "inactive");
    assert_eq!(swarm["ControlAvailable"], false);
    for k in ["NodeID", "NodeAddr", "Error", "RemoteManagers"] {
        assert!(swarm.get(k).is_some(), "Swarm.{k} in {swarm}");
    }
    let (st, headers, _) = d.api_with("HEAD", "/_ping", &[], None);
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "swarm"), Some("inactive"));

    // The docker CLI prints dockerd's messages.
    for (args, expected) in [
        (
            &["swarm", "leave", "--force"][..],
            "This node is not part of a swarm",
        ),
        (&["service", "ls"][..], NOT_A_MANAGER),
        (&["node", "ls"][..], NOT_A_MANAGER),
        (&["secret", "ls"][..], NOT_A_MANAGER),
        (&["config", "ls"][..], NOT_A_MANAGER),
    ] {
        let out = d.docker(args);
        assert!(!out.status.success(), "docker {args:?} succeeded");
        assert_eq!(
            stderr(&out).trim(),
            format!("Error response from daemon: {expected}"),
            "docker {args:?}"
        );
    }
    let out = d.docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_ok(&out, "docker info");
    assert_eq!(stdout(&out).trim(), "inactive");
}

#[test]
fn served_versions_headers_and_minimum_from_the_environment() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    let (st, headers, _) = d.api_with("GET", "/_ping", &[], None);
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "api-version"), Some("1.55"));
    let (_, body) = d.api("GET", "/version", None);
    let v = json(&body);
    assert_eq!(v["ApiVersion"], "1.55");
    assert_eq!(v["MinAPIVersion"], "1.24");
    let (_, body) = d.api("GET", "/v1.24/version", None);
    assert_eq!(
        json(&body)["ApiVersion"],
        "1.55",
        "the server's, at any version"
    );
    let (st, body) = d.api("GET", "/v1.23/info", None);
    assert_eq!(st, 400);
    assert_eq!(message(&body), "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version");
    let (st, body) = d.api("GET", "/v1.56/info", None);
    assert_eq!(st, 400);
    assert_eq!(
        message(&body),
        "client version 1.56 is too new. Maximum supported API version is 1.55"
    );
    // The docker CLI negotiates (28.2.2 speaks up to 1.50) and shows the server's range.
    let out = d.docker(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}",
    ]);
    assert_ok(&out, "docker version");
    assert_eq!(stdout(&out).trim(), "1.55 1.24 1.50");
    drop(d);

    let d = Daemon::start_with_env(&[], &[("DOCKER_MIN_API_VERSION", "1.44")]);
    let (st, body) = d.api("GET", "/v1.43/info", None);
    assert_eq!(st, 400);
    assert!(
        message(&body).contains("Minimum supported API version is 1.44"),
        "{body}"
    );
    let (st, _) = d.api("GET", "/v1.44/info", None);
    assert_eq!(st, 200);
    let (_, body) = d.api("GET", "/version", None);
    assert_eq!(json(&body)["MinAPIVersion"], "1.44");
    drop(d);

    // A value dockerd refuses stops berthd before it serves anything.
    for (value, expected) in [
        (
            "1.12",
            "invalid DOCKER_MIN_API_VERSION: minimum supported API version is 1.24: 1.12",
        ),
        (
            "v1.44",
            r#"invalid DOCKER_MIN_API_VERSION: API version must be provided without "v" prefix"#,
        ),
        (
            "1.99",
            "invalid DOCKER_MIN_API_VERSION: maximum supported API version is 1.55: 1.99",
        ),
    ] {
        let dir = std::env::temp_dir().join(format!("berth-apiver-{}", std::process::id()));
        let out = Command::new(bin("berthd"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("s.sock").display()))
            .env("DOCKER_MIN_API_VERSION", value)
            .output()
            .expect("run berthd");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!out.status.success(), "berthd started with {value}");
        assert!(
            stderr(&out).contains(expected),
            "DOCKER_MIN_API_VERSION={value}: {}",
            stderr(&out)
        );
    }
}

fn get_json(d: &Daemon, path: &str) -> Value {
    let (st, body) = d.api("GET", path, None);
    assert_eq!(st, 200, "GET {path}: {body}");
    json(&body)
}

fn list_entry(d: &Daemon, version: &str, name: &str) -> Value {
    let list = get_json(d, &format!("/v{version}/containers/json?all=1"));
    list.as_array()
        .expect("a list")
        .iter()
        .find(|c| c["Names"][0] == format!("/{name}"))
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
}

#[test]
fn container_shapes_by_version() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    run_sleeper(&d, "web", &[]);
    run_sleeper(
        &d,
        "hc",
        &["--health-cmd", "true", "--health-interval", "1s"],
    );

    // Inspect: the default bridge's address at the top of NetworkSettings until 1.51.
    let old = get_json(&d, "/v1.51/containers/web/json");
    let ip = old["NetworkSettings"]["IPAddress"].as_str().unwrap_or("");
    assert!(!ip.is_empty(), "{}", old["NetworkSettings"]);
    assert_eq!(
        old["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
        ip
    );
    for v in ["1.52", "1.55"] {
        let new = get_json(&d, &format!("/v{v}/containers/web/json"));
        for k in [
            "IPAddress",
            "Gateway",
            "MacAddress",
            "IPPrefixLen",
            "Bridge",
            "EndpointID",
        ] {
            assert!(new["NetworkSettings"].get(k).is_none(), "{v} has {k}");
        }
        assert_eq!(
            new["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
            ip
        );
    }
    let unversioned = get_json(&d, "/containers/web/json");
    assert!(unversioned["NetworkSettings"].get("IPAddress").is_none());
    // docker CLI 28 speaks 1.50 and still reads them.
    assert_eq!(inspect(&d, "web", "{{.NetworkSettings.IPAddress}}"), ip);

    // The list: Health from 1.52.
    assert!(list_entry(&d, "1.51", "web").get("Health").is_none());
    let web = list_entry(&d, "1.52", "web");
    assert_eq!(
        web["Health"],
        serde_json::json!({"Status": "none", "FailingStreak": 0})
    );
    assert!(
        eventually(std::time::Duration::from_secs(30), || {
            list_entry(&d, "1.55", "hc")["Health"]["Status"] == "healthy"
        }),
        "{}",
        list_entry(&d, "1.55", "hc")
    );
    assert!(list_entry(&d, "1.51", "hc").get("Health").is_none());

    // Logs say multiplexed from 1.42.
    let (_, h, _) = d.api_with("GET", "/v1.41/containers/web/logs?stdout=1", &[], None);
    assert_eq!(
        header(&h, "content-type"),
        Some("application/vnd.docker.raw-stream")
    );
    let (_, h, _) = d.api_with("GET", "/v1.42/containers/web/logs?stdout=1", &[], None);
    assert_eq!(
        header(&h, "content-type"),
        Some("application/vnd.docker.multiplexed-stream")
    );

    // Create: a container-wide MAC address is deprecated at 1.44-1.51, not read from 1.52.
    let body = r#"{"Image":"busybox","Cmd":["true"],"MacAddress":"02:42:ac:11:00:99"}"#;
    let (st, text) = d.api("POST", "/v1.51/containers/create?name=mac51", Some(body));
    assert_eq!(st, 201, "{text}");
    assert!(
        json(&text)["Warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .unwrap_or("")
                .contains("container-wide MacAddress")),
        "{text}"
    );
    let c = get_json(&d, "/v1.51/containers/mac51/json");
    assert_eq!(c["Config"]["MacAddress"], "02:42:ac:11:00:99");
    assert!(get_json(&d, "/v1.52/containers/mac51/json")["Config"]
        .get("MacAddress")
        .is_none());
    let (st, text) = d.api("POST", "/v1.52/containers/create?name=mac52", Some(body));
    assert_eq!(st, 201, "{text}");
    assert!(json(&text)["Warnings"]
        .as_array()
        .is_none_or(|w| w.is_empty()));
    assert!(get_json(&d, "/v1.51/containers/mac52/json")["Config"]
        .get("MacAddress")
        .is_none());
    // Several networks at create need 1.44.
    let two = r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"a":{},"b":{}}}}"#;
    let (st, text) = d.api("POST", "/v1.43/containers/create", Some(two));
    assert_eq!(st, 400);
    assert_eq!(
        message(&text),
        "Container cannot be created with multiple network endpoints: a, b"
    );
}

#[test]
fn events_by_version_and_accept() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    let since = now() - 1;
    assert_ok(
        &d.docker(&["create", "--name", "ev", "busybox", "true"]),
        "create",
    );
    // An `until` in the past makes the stream end after the recorded events.
    let until = now() + 1;
    while now() <= until {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let window =
        format!("since={since}&until={until}&filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
    let events = |version: &str, accept: Option<&str>| {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let (st, h, body) = d.api_with(
            "GET",
            &format!("/v{version}/events?{window}"),
            &headers,
            None,
        );
        assert_eq!(st, 200);
        let lines: Vec<Value> = String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(json)
            .collect();
        (header(&h, "content-type").unwrap_or("").to_string(), lines)
    };
    let (ctype, old) = events("1.51", Some("application/x-ndjson"));
    assert_eq!(ctype, "application/json");
    let create = old
        .iter()
        .find(|e| e["Action"] == "create")
        .unwrap_or_else(|| panic!("no create event: {old:?}"));
    assert_eq!(create["status"], "create");
    assert_eq!(create["id"], create["Actor"]["ID"]);
    assert_eq!(create["from"], "busybox");
    let (ctype, new) = events("1.52", None);
    assert_eq!(ctype, "application/json");
    let create = new
        .iter()
        .find(|e| e["Action"] == "create")
        .unwrap_or_else(|| panic!("no create event: {new:?}"));
    for k in ["status", "id", "from"] {
        assert!(create.get(k).is_none(), "1.52 event has {k}: {create}");
    }
    assert_eq!(events("1.52", Some("*/*")).0, "application/x-ndjson");
    assert_eq!(
        events("1.55", Some("application/json-seq")).0,
        "application/json-seq"
    );
    assert_eq!(
        events("1.55", Some("application/jsonl")).0,
        "application/jsonl"
    );
    assert_eq!(
        events("1.52", Some("application/jsonl")).0,
        "application/json"
    );
    // The docker CLI still reads them.
    let out = d.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_ok(&out, "docker events");
    assert!(stdout(&out).contains("create ev"), "{}", stdout(&out));
}

#[test]
fn disk_usage_and_images_by_version() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.docker(&["create", "--name", "du", "busybox", "true"]),
        "create",
    );
    assert_ok(&d.docker(&["volume", "create", "duvol"]), "volume create");
    let df = |q: &str| get_json(&d, q);
    let old = df("/v1.51/system/df");
    assert!(old["LayersSize"].as_i64().unwrap_or(0) > 0, "{old}");
    assert!(old["Images"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(old.get("ImageUsage").is_none());
    let v52 = df("/v1.52/system/df");
    assert!(
        v52.get("LayersSize").is_some() && v52.get("ImageUsage").is_some(),
        "{v52}"
    );
    let v53 = df("/v1.53/system/df");
    for k in [
        "LayersSize",
        "Images",
        "Containers",
        "Volumes",
        "BuildCache",
    ] {
        assert!(v53.get(k).is_none(), "1.53 has {k}");
    }
    assert_eq!(v53["ImageUsage"]["TotalCount"], 1);
    assert_eq!(v53["ImageUsage"]["ActiveCount"], 1);
    assert_eq!(v53["ContainerUsage"]["TotalCount"], 1);
    assert_eq!(v53["VolumeUsage"]["TotalCount"], 1);
    assert!(v53["ContainerUsage"].get("Items").is_none());
    let verbose = df("/v1.55/system/df?verbose=1");
    assert_eq!(verbose["ContainerUsage"]["Items"][0]["Names"][0], "/du");
    assert_eq!(verbose["VolumeUsage"]["Items"][0]["Name"], "duvol");
    let only = df("/v1.55/system/df?type=volume");
    assert!(
        only.get("VolumeUsage").is_some() && only.get("ImageUsage").is_none(),
        "{only}"
    );
    let (st, body) = d.api("GET", "/v1.55/system/df?type=nope", None);
    assert_eq!(
        (st, message(&body)),
        (400, "unknown object type: nope".to_string())
    );
    let out = d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert_ok(&out, "docker system df");
    assert!(stdout(&out).contains("Images 1"), "{}", stdout(&out));

    // Images: VirtualSize until 1.43, Containers counted from 1.51.
    let img = |v: &str| get_json(&d, &format!("/v{v}/images/json"))[0].clone();
    assert!(img("1.43").get("VirtualSize").is_some());
    assert!(img("1.44").get("VirtualSize").is_none());
    assert_eq!(img("1.50")["Containers"], -1);
    assert_eq!(img("1.51")["Containers"], 1);
    let inspect43 = get_json(&d, "/v1.43/images/busybox/json");
    assert!(inspect43.get("VirtualSize").is_some() && inspect43.get("ContainerConfig").is_some());
    let inspect52 = get_json(&d, "/v1.52/images/busybox/json");
    assert!(inspect52.get("VirtualSize").is_none() && inspect52.get("ContainerConfig").is_none());
    assert!(inspect52["Config"].get("Hostname").is_none());
    // `platform` on inspect from 1.49: another platform than the image's is a 404.
    let arch = inspect52["Architecture"]
        .as_str()
        .expect("architecture")
        .to_string();
    let other = if arch == "s390x" { "riscv64" } else { "s390x" };
    let (st, _) = d.api(
        "GET",
        &format!(
            "/v1.49/images/busybox/json?platform={}",
            platform_param(other)
        ),
        None,
    );
    assert_eq!(st, 404);
    let (st, _) = d.api(
        "GET",
        &format!(
            "/v1.49/images/busybox/json?platform={}",
            platform_param(&arch)
        ),
        None,
    );
    assert_eq!(st, 200);
    let (st, _) = d.api(
        "GET",
        &format!(
            "/v1.48/images/busybox/json?platform={}",
            platform_param(other)
        ),
        None,
    );
    assert_eq!(st, 200, "ignored before 1.49");

    // Attestations: none for an image berth has, 404 for one it does not.
    let (st, body) = d.api("GET", "/images/busybox/attestations", None);
    assert_eq!((st, body.trim()), (200, "[]"));
    let (st, _) = d.api("GET", "/v1.55/images/nope/attestations", None);
    assert_eq!(st, 404);
}

/// `{"os":"linux","architecture":arch}` URL-encoded.
fn platform_param(arch: &str) -> String {
    format!("%7B%22os%22%3A%22linux%22%2C%22architecture%22%3A%22{arch}%22%7D")
}

#[test]
fn image_save_and_load_with_platforms() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let arch = get_json(&d, "/images/busybox/json")["Architecture"]
        .as_str()
        .expect("architecture")
        .to_string();
    let other = if arch == "s390x" { "riscv64" } else { "s390x" };
    let both = format!(
        "names=busybox&platform={}&platform={}",
        platform_param(&arch),
        platform_param(other)
    );
    let (st, h, tar) = d.api_with("GET", &format!("/v1.55/images/get?{both}"), &[], None);
    assert_eq!(st, 200);
    assert_eq!(header(&h, "content-type"), Some("application/x-tar"));
    assert!(tar.len() > 10_000, "a tar of busybox: {} bytes", tar.len());
    let (st, _, body) = d.api_with("GET", &format!("/v1.51/images/get?{both}"), &[], None);
    assert_eq!(st, 400);
    assert_eq!(
        message(&String::from_utf8_lossy(&body)),
        "multiple platform parameters are not supported in this API version; use API version 1.52 or later"
    );
    let (st, _, body) = d.api_with(
        "GET",
        &format!(
            "/v1.55/images/get?names=busybox&platform={}",
            platform_param(other)
        ),
        &[],
        None,
    );
    assert_eq!(st, 404);
    assert!(
        message(&String::from_utf8_lossy(&body)).contains("does not match the specified platform"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Load: an archive of another platform than asked loads nothing.
    assert_ok(&d.docker(&["rmi", "busybox"]), "rmi");
    let (st, _, body) = d.api_with(
        "POST",
        &format!("/v1.55/images/load?platform={}", platform_param(other)),
        &[("Content-Type", "application/x-tar")],
        Some(&tar),
    );
    assert_eq!(st, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("does not match the specified platform"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (st, _) = d.api("GET", "/images/busybox/json", None);
    assert_eq!(st, 404, "nothing loaded");
    let (st, _, body) = d.api_with(
        "POST",
        &format!("/v1.55/images/load?{}", both.replace("names=busybox&", "")),
        &[("Content-Type", "application/x-tar")],
        Some(&tar),
    );
    assert_eq!(st, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("Loaded image: busybox:latest"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The docker CLI (API 1.50) saves one platform.
    let file = d.root.join("bb.tar");
    let file = file.to_str().expect("utf8");
    let out = d.docker(&[
        "save",
        "--platform",
        &format!("linux/{arch}"),
        "-o",
        file,
        "busybox",
    ]);
    assert_ok(&out, "docker save --platform");
    let out = d.docker(&[
        "save",
        "--platform",
        &format!("linux/{other}"),
        "-o",
        file,
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not match the specified platform"),
        "{}",
        stderr(&out)
    );
}

/// tests/python/api_versions.py: docker-py pinned to 1.41 and negotiating (1.55).
#[test]
fn python_sdk_pinned_and_negotiated() {
    if !is_root() {
        return;
    }
    if !has_python_sdk() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/api_versions.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_API_VERSION")
        .output()
        .expect("python3");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "api_versions.py failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for step in [
        "versions",
        "prune at 1.55 keeps named volumes",
        "prune at 1.41 removes named volumes",
        "swarm",
        "shapes",
    ] {
        assert!(
            text.lines().any(|l| l == format!("ok {step}")),
            "step {step} did not pass:\n{text}"
        );
    }
}

/// API 1.55: update applies per-device blkio rules (null keeps, [] clears); older clients'
/// are ignored as before.
#[test]
fn update_blkio_device_rules_from_1_55() {
    if !is_root() {
        return;
    }
    let Some(disk) = host_disk() else {
        eprintln!("no host disk: skipping");
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    run_sleeper(&d, "io", &[]);
    let rdev = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk).expect("disk").rdev()
    };
    let majmin = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let read_rule = || {
        if v2 {
            std::fs::read_to_string(cgroup_dir(&d, "io", "io").join("io.max")).unwrap_or_default()
        } else {
            std::fs::read_to_string(
                cgroup_dir(&d, "io", "blkio").join("blkio.throttle.read_bps_device"),
            )
            .unwrap_or_default()
        }
    };
    let limited = |text: &str| {
        if v2 {
            text.contains(&format!("{majmin} rbps=1048576"))
        } else {
            text.contains(&format!("{majmin} 1048576"))
        }
    };
    let set = format!(r#"{{"BlkioDeviceReadBps":[{{"Path":"{disk}","Rate":1048576}}]}}"#);
    let (st, body) = d.api("POST", "/v1.54/containers/io/update", Some(&set));
    assert_eq!(st, 200, "{body}");
    assert!(
        !limited(&read_rule()),
        "1.54 ignores the field: {}",
        read_rule()
    );
    let hc = get_json(&d, "/containers/io/json")["HostConfig"].clone();
    assert!(
        hc["BlkioDeviceReadBps"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{hc}"
    );

    let (st, body) = d.api("POST", "/v1.55/containers/io/update", Some(&set));
    assert_eq!(st, 200, "{body}");
    assert!(limited(&read_rule()), "{}", read_rule());
    let hc = get_json(&d, "/containers/io/json")["HostConfig"].clone();
    assert_eq!(hc["BlkioDeviceReadBps"][0]["Rate"], 1048576, "{hc}");
    // null keeps the rule; another field's update does not touch it.
    let (st, _) = d.api(
        "POST",
        "/v1.55/containers/io/update",
        Some(r#"{"BlkioDeviceReadBps":null,"CpuShares":512}"#),
    );
    assert_eq!(st, 200);
    assert!(limited(&read_rule()), "{}", read_rule());
    // [] clears it, in the cgroup too.
    let (st, _) = d.api(
        "POST",
        "/v1.55/containers/io/update",
        Some(r#"{"BlkioDeviceReadBps":[]}"#),
    );
    assert_eq!(st, 200);
    assert!(!limited(&read_rule()), "{}", read_rule());
    let hc = get_json(&d, "/containers/io/json")["HostConfig"].clone();
    assert_eq!(hc["BlkioDeviceReadBps"], serde_json::json!([]));
    // A device that does not exist is refused.
    let (st, body) = d.api(
        "POST",
        "/v1.55/containers/io/update",
        Some(r#"{"BlkioDeviceWriteIOps":[{"Path":"/dev/nope","Rate":5}]}"#),
    );
    assert_eq!(st, 400, "{body}");
}
