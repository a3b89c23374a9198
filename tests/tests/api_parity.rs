//! Answers the differential check (scripts/differential.sh) found differing from dockerd's,
//! each now as dockerd gives it: query booleans, `tail`, unknown routes and methods, event
//! time ranges and filters, filter values of ps and network ls, network prune filters, create
//! validation, commit with a config body, event actions and exec failures.

use berth_tests::*;

fn create(d: &Daemon, name: &str, body: &str) {
    let (st, out) = d.api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(body),
    );
    assert_eq!(st, 201, "create {name}: {out}");
}

/// `Type Action` of the past events matching one filter.
fn event_lines(d: &Daemon, key: &str, value: &str) -> Vec<String> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    let (st, body) = d.api(
        "GET",
        &format!("/events?since=1&until={until}&filters=%7B%22{key}%22:[%22{value}%22]%7D"),
        None,
    );
    assert_eq!(st, 200, "{body}");
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| {
            format!(
                "{} {}",
                e["Type"].as_str().unwrap_or("?"),
                e["Action"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no message in {body}"))
}

#[test]
fn queries_routes_and_filters_as_dockerd() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    create(
        &d,
        "par-a",
        r#"{"Image":"busybox","Cmd":["sh","-c","echo one; echo two; echo three"]}"#,
    );

    // Booleans: anything but "", 0, no, false, none is true, nothing is refused.
    for (all, listed) in [
        ("maybe", true),
        ("yes", true),
        ("no", false),
        ("none", false),
    ] {
        let (st, body) = d.api("GET", &format!("/containers/json?all={all}"), None);
        assert_eq!(st, 200, "all={all}: {body}");
        assert_eq!(body.contains("/par-a"), listed, "all={all}: {body}");
    }

    // logs: a tail that is not a number shows everything.
    let (st, _) = d.api("POST", "/containers/par-a/start", None);
    assert_eq!(st, 204);
    let (st, _) = d.api("POST", "/containers/par-a/wait", None);
    assert_eq!(st, 200);
    let (st, body) = d.api("GET", "/containers/par-a/logs?stdout=1&tail=abc", None);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("one") && body.contains("three"), "{body}");
    let (_, body) = d.api("GET", "/containers/par-a/logs?stdout=1&tail=1", None);
    assert!(!body.contains("one") && body.contains("three"), "{body}");
    // The tail counts the entries of both streams before the stream filter, as dockerd's.
    create(
        &d,
        "par-l",
        r#"{"Image":"busybox","Cmd":["sh","-c","echo o1; sleep 0.3; echo e1 >&2; sleep 0.3; echo o2"]}"#,
    );
    assert_eq!(d.api("POST", "/containers/par-l/start", None).0, 204);
    assert_eq!(d.api("POST", "/containers/par-l/wait", None).0, 200);
    let (_, body) = d.api("GET", "/containers/par-l/logs?stdout=1&tail=2", None);
    assert!(body.contains("o2") && !body.contains("o1"), "{body}");

    // Unknown paths and methods: dockerd's 404 "page not found".
    for (method, path) in [
        ("GET", "/v1.41/nope"),
        ("POST", "/_ping"),
        ("GET", "/containers/json/extra"),
    ] {
        let (st, body) = d.api(method, path, None);
        assert_eq!(st, 404, "{method} {path}: {body}");
        assert_eq!(message(&body), "page not found", "{method} {path}");
    }

    // Events: since after until is refused; filter names dockerd does not know filter nothing.
    let (st, body) = d.api("GET", "/events?since=200&until=100", None);
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        "`since` time (200) cannot be after `until` time (100)"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (st, body) = d.api(
        "GET",
        &format!(
            "/events?since=1&until={}&filters=%7B%22bogus%22:[%22x%22],%22container%22:[%22par-a%22]%7D",
            now + 1
        ),
        None,
    );
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"Action\":\"die\""), "{body}");

    // Filter values dockerd checks.
    let (st, body) = d.api(
        "GET",
        "/containers/json?filters=%7B%22health%22:[%22bogus%22]%7D",
        None,
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        "Unrecognised filter value for health: bogus"
    );
    let (st, body) = d.api(
        "GET",
        "/networks?filters=%7B%22type%22:[%22bogus%22]%7D",
        None,
    );
    assert_eq!(st, 500, "{body}");
    assert_eq!(message(&body), "invalid filter: 'type'='bogus'");
    let (st, body) = d.api(
        "GET",
        "/networks?filters=%7B%22dangling%22:[%22maybe%22]%7D",
        None,
    );
    assert_eq!(st, 400, "{body}");

    // An error answered before the body was read: the server reads the body first, so a
    // client still writing it (Python's http.client, as docker-py uses) gets the answer, not a
    // broken pipe. Without that, 2-30 % of such requests failed.
    let script = r#"
import http.client, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])
broken = 0
for path, size in (("/build?t=Bad_Tag", 10240), ("/swarm/init", 2)):
    for _ in range(150):
        c = C("localhost")
        try:
            c.request("POST", path, body=b"x" * size, headers={"Content-Type": "application/x-tar"})
            status = c.getresponse().status
            assert status in (400, 404), status
        except OSError:
            broken += 1
        finally:
            c.close()
print(broken)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&d.socket)
        .output()
        .expect("python3");
    assert_ok(&out, "python http.client loop");
    assert_eq!(stdout(&out).trim(), "0", "requests that lost their answer");

    // Predefined networks as dockerd shows them.
    let (_, body) = d.api("GET", "/networks/bridge", None);
    let v: serde_json::Value = serde_json::from_str(&body).expect("bridge json");
    assert_eq!(
        v["Options"]["com.docker.network.bridge.enable_icc"], "true",
        "{body}"
    );
    assert_eq!(
        v["Options"]["com.docker.network.driver.mtu"], "1500",
        "{body}"
    );
    for name in ["host", "none"] {
        let (_, body) = d.api("GET", &format!("/networks/{name}"), None);
        let v: serde_json::Value = serde_json::from_str(&body).expect("network json");
        assert_eq!(v["IPAM"]["Config"], serde_json::json!([]), "{body}");
    }

    // Network prune: only what the filters select, and unknown filters refused.
    for (name, label) in [
        ("par-keep", ""),
        ("par-drop", r#","Labels":{"prune":"me"}"#),
    ] {
        let (st, body) = d.api(
            "POST",
            "/networks/create",
            Some(&format!(r#"{{"Name":"{name}"{label}}}"#)),
        );
        assert_eq!(st, 201, "{body}");
    }
    let (st, body) = d.api(
        "POST",
        "/networks/prune?filters=%7B%22bogus%22:[%22x%22]%7D",
        None,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = d.api(
        "POST",
        "/networks/prune?filters=%7B%22label%22:[%22prune=me%22]%7D",
        None,
    );
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("par-drop") && !body.contains("par-keep"),
        "{body}"
    );
    let (st, _) = d.api("GET", "/networks/par-keep", None);
    assert_eq!(st, 200, "an unlabelled network survived the labelled prune");
    let (st, _) = d.api("DELETE", "/networks/par-keep", None);
    assert_eq!(st, 204);
}

#[test]
fn create_commit_and_exec_as_dockerd() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let (st, body) = d.api("POST", "/containers/create", Some("{}"));
    assert_eq!(st, 400);
    assert_eq!(
        message(&body),
        "Config cannot be empty in order to create a container"
    );
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"CapAdd":["NOT_A_CAP"]}}"#),
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        r#"invalid CapAdd: unknown capability: "CAP_NOT_A_CAP""#
    );
    let (st, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"CapDrop":["bogus"]}}"#),
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        r#"invalid CapDrop: unknown capability: "CAP_BOGUS""#
    );

    // Fixed-size and always-present fields: ConsoleSize [0,0]; a stopped container's stats
    // carry dockerd's zero CPU fields and null blkio lists.
    create(&d, "par-s", r#"{"Image":"busybox","Cmd":["true"]}"#);
    assert_eq!(
        inspect(&d, "par-s", "{{json .HostConfig.ConsoleSize}}"),
        "[0,0]"
    );
    let (st, body) = d.api("GET", "/containers/par-s/stats?stream=0", None);
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats json");
    for cpu in ["cpu_stats", "precpu_stats"] {
        assert_eq!(v[cpu]["cpu_usage"]["usage_in_kernelmode"], 0, "{body}");
        assert_eq!(v[cpu]["throttling_data"]["throttled_time"], 0, "{body}");
    }
    let blkio = v["blkio_stats"].as_object().expect("blkio_stats");
    assert!(blkio.contains_key("sectors_recursive"), "{body}");

    // export: the root's entries, no entry for the root itself.
    let tarball = d.root.join("par-s.tar");
    assert_ok(
        &d.docker(&["export", "-o", tarball.to_str().expect("utf8"), "par-s"]),
        "docker export",
    );
    let out = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tarball)
        .output()
        .expect("tar");
    let names = stdout(&out);
    assert!(names.lines().any(|l| l == ".dockerenv"), "{names}");
    assert!(
        !names.lines().any(|l| l == "./" || l == "."),
        "a root entry: {names}"
    );

    // Messages in dockerd's words.
    let (st, body) = d.api("POST", "/containers/par-s/kill", None);
    assert_eq!(st, 409, "{body}");
    let m = message(&body);
    assert!(
        m.starts_with("Cannot kill container: par-s: Container ") && m.ends_with(" is not running"),
        "{m}"
    );
    let (st, body) = d.api("POST", "/containers/par-s/kill?signal=BOGUS", None);
    assert_eq!(st, 400, "{body}");
    assert_eq!(message(&body), "Invalid signal: BOGUS");
    create(&d, "par-t", r#"{"Image":"busybox"}"#);
    let (st, body) = d.api("POST", "/containers/par-t/rename?name=par-s", None);
    assert_eq!(st, 409, "{body}");
    assert!(
        message(&body)
            .starts_with("Error when allocating new name: Conflict. The container name \"/par-s\""),
        "{body}"
    );
    let (st, body) = d.api("POST", "/containers/par-t/rename?name=bad/name", None);
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        message(&body),
        "Error when allocating new name: Invalid container name (/bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    );
    let (st, body) = d.api(
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"par-v","Driver":"nope"}"#),
    );
    assert_eq!(st, 404, "{body}");
    assert_eq!(
        message(&body),
        r#"create par-v: error looking up volume plugin nope: plugin "nope" not found"#
    );
    // KernelMemoryTCP is in /info up to API 1.51 and gone from 1.52 (Docker 29).
    let (_, body) = d.api("GET", "/v1.51/info", None);
    assert!(body.contains("\"KernelMemoryTCP\":"), "{body}");
    let (_, body) = d.api("GET", "/v1.55/info", None);
    assert!(!body.contains("\"KernelMemoryTCP\":"), "{body}");

    // Commit with a config body: the container's config fills what the body leaves out.
    create(
        &d,
        "par-c",
        r#"{"Image":"busybox","Cmd":["sleep","300"],"Env":["KEEP=1"],"Labels":{"team":"a"}}"#,
    );
    // The user's variables first, then the image's (PATH).
    let env = inspect(&d, "par-c", "{{json .Config.Env}}");
    assert!(env.starts_with(r#"["KEEP=1","PATH="#), "{env}");
    let (st, body) = d.api(
        "POST",
        "/commit?container=par-c&repo=par-img&tag=1",
        Some(r#"{"Env":["FROM_BODY=1"]}"#),
    );
    assert_eq!(st, 201, "{body}");
    let env = inspect(&d, "par-img:1", "{{json .Config.Env}}");
    assert!(
        env.contains("FROM_BODY=1") && env.contains("KEEP=1") && env.contains("PATH="),
        "{env}"
    );
    assert_eq!(inspect(&d, "par-img:1", "{{.Config.Labels.team}}"), "a");
    assert_eq!(
        inspect(&d, "par-img:1", "{{json .Config.Cmd}}"),
        r#"["sleep","300"]"#
    );
    let types = event_lines(&d, "event", "commit");
    assert_eq!(types, ["container commit"]);

    // Exec: the event's command as dockerd writes it, and runc's words for a missing program.
    let (st, _) = d.api("POST", "/containers/par-c/start", None);
    assert_eq!(st, 204);
    let out = d.docker(&["exec", "par-c", "nope-cmd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    // Over the attached stream, so on the CLI's standard output, as with dockerd.
    assert!(
        stdout(&out).contains(
            r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nope-cmd": executable file not found in $PATH: unknown"#
        ),
        "{}",
        stdout(&out)
    );
    let actions = event_lines(&d, "container", "par-c");
    assert!(
        actions
            .iter()
            .any(|a| a == "container exec_create: nope-cmd "),
        "{actions:?}"
    );
    let _ = d.docker(&["rm", "-f", "par-c"]);
}
