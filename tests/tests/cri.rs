//! berthd's CRI (runtime.v1) driven through the generated gRPC client on `<exec-root>/cri.sock`,
//! following critest's checklist (../shared/spec/cri/critest-checklist.md): runtime Version and
//! Status, the pod lifecycle with real CNI plugins (bridge + host-local + loopback), the
//! container lifecycle, ExecSync, CRI logs, restart recovery, and the pods' containers as seen
//! through the Engine API and the docker CLI. Needs root and containernetworking-plugins.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::cri::*;
use berth_tests::*;
use tonic::Code;

fn ready() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if !cni_plugins_present() {
        eprintln!("skipped: no CNI plugins in {PLUGIN_DIR} (containernetworking-plugins)");
        return false;
    }
    true
}

fn start(net: &CniNet) -> Daemon {
    let args = net.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start_with_args(&args);
    d.load_busybox();
    d
}

async fn run_pod(c: &mut CriClient, cfg: api::PodSandboxConfig) -> String {
    c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(cfg),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

async fn create(
    c: &mut CriClient,
    pod: &str,
    pod_cfg: &api::PodSandboxConfig,
    cfg: api::ContainerConfig,
) -> Result<String, tonic::Status> {
    c.rt.create_container(api::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(cfg),
        sandbox_config: Some(pod_cfg.clone()),
    })
    .await
    .map(|r| r.into_inner().container_id)
}

async fn pod_status(c: &mut CriClient, id: &str) -> api::PodSandboxStatus {
    c.rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: false,
    })
    .await
    .expect("PodSandboxStatus")
    .into_inner()
    .status
    .expect("status")
}

async fn exec(c: &mut CriClient, id: &str, cmd: &[&str], timeout: i64) -> api::ExecSyncResponse {
    c.rt.exec_sync(api::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    })
    .await
    .expect("ExecSync")
    .into_inner()
}

async fn list_pods(c: &mut CriClient, filter: api::PodSandboxFilter) -> Vec<String> {
    c.rt.list_pod_sandbox(api::ListPodSandboxRequest {
        filter: Some(filter),
    })
    .await
    .expect("ListPodSandbox")
    .into_inner()
    .items
    .into_iter()
    .map(|p| p.id)
    .collect()
}

async fn list_containers(c: &mut CriClient, filter: api::ContainerFilter) -> Vec<String> {
    c.rt.list_containers(api::ListContainersRequest {
        filter: Some(filter),
    })
    .await
    .expect("ListContainers")
    .into_inner()
    .containers
    .into_iter()
    .map(|c| c.id)
    .collect()
}

fn state(s: api::ContainerState) -> Option<api::ContainerStateValue> {
    Some(api::ContainerStateValue { state: s as i32 })
}

/// Waits for `f` to hold, polling every 50 ms for up to 10 s.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn in_subnet(ip: &str, subnet: &str) -> bool {
    let prefix = subnet.rsplit_once('.').expect("subnet").0;
    ip.starts_with(&format!("{prefix}."))
}

#[tokio::test]
async fn version_status_and_socket() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let d = start(&net);
    let sock = d.cri_socket();
    let mode = std::fs::metadata(&sock)
        .expect("cri.sock")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    let mut c = CriClient::connect(&sock).await;
    let v =
        c.rt.version(api::VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
    assert_eq!(v.runtime_name, "berth");
    assert_eq!(v.runtime_api_version, "v1");
    let s =
        c.rt.status(api::StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
    let conds = s.status.expect("status").conditions;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let cond = conds.iter().find(|c| c.r#type == kind).expect(kind);
        assert!(cond.status, "{kind}: {cond:?}");
    }
    let cfg =
        c.rt.runtime_config(api::RuntimeConfigRequest {})
            .await
            .unwrap()
            .into_inner();
    assert_eq!(
        cfg.linux.expect("linux").cgroup_driver,
        api::CgroupDriver::Cgroupfs as i32
    );

    // Without a CNI config the network is not ready, with a reason (as containerd).
    std::fs::remove_file(net.conf_dir().join("10-test.conflist")).unwrap();
    let s =
        c.rt.status(api::StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
    let conds = s.status.expect("status").conditions;
    let netc = conds.iter().find(|c| c.r#type == "NetworkReady").unwrap();
    assert!(!netc.status);
    assert_eq!(netc.reason, "NetworkPluginNotReady");
    // ...and RunPodSandbox refuses a pod that needs it, leaving nothing behind.
    let tmp = d.root.join("pods-logs");
    let e =
        c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod_config("nonet", &[], &tmp)),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(list_pods(&mut c, Default::default()).await.is_empty());
    let pods_dir = d.root.join("exec/pods");
    let left = std::fs::read_dir(&pods_dir).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "namespaces of the failed pod are gone");
}

#[tokio::test]
async fn cri_socket_flag_and_off() {
    if !is_root() {
        return;
    }
    let d = Daemon::start_with_args(&["--cri-socket", ""]);
    assert!(!d.cri_socket().exists(), "--cri-socket \"\" serves no CRI");
    drop(d);
    let dir = std::env::temp_dir().join(format!("berth-cri-flag-{}", std::process::id()));
    let sock = dir.join("k.sock");
    let d = Daemon::start_with_args(&["--cri-socket", sock.to_str().unwrap()]);
    let mut c = CriClient::connect(&sock).await;
    assert!(c.rt.version(api::VersionRequest::default()).await.is_ok());
    drop(d);
    assert!(!sock.exists(), "the socket goes at shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn pod_and_container_lifecycle() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let d = start(&net);
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let logs = d.root.join("pod-logs");
    let pod_cfg = pod_config("web", &[("tier", "front")], &logs);
    let pod = run_pod(&mut c, pod_cfg.clone()).await;

    // Status: ready, with an IP from the CNI network.
    let ps = pod_status(&mut c, &pod).await;
    assert_eq!(ps.state, api::PodSandboxState::SandboxReady as i32);
    let ip = ps.network.expect("network").ip;
    assert!(in_subnet(&ip, &net.subnet), "{ip} in {}", net.subnet);
    assert_eq!(net.allocated(), vec![ip.clone()]);
    assert_eq!(ps.metadata.unwrap().name, "web");

    // A second pod; the list filters by id prefix, state and labels.
    let other = run_pod(&mut c, pod_config("db", &[("tier", "back")], &logs)).await;
    let all = list_pods(&mut c, Default::default()).await;
    assert_eq!(all.len(), 2);
    let by_label = list_pods(
        &mut c,
        api::PodSandboxFilter {
            label_selector: [("tier".to_string(), "front".to_string())].into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_label, vec![pod.clone()]);
    let by_id = list_pods(
        &mut c,
        api::PodSandboxFilter {
            id: pod[..12].to_string(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_id, vec![pod.clone()]);
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: other.clone(),
    })
    .await
    .unwrap();
    let not_ready = list_pods(
        &mut c,
        api::PodSandboxFilter {
            state: Some(api::PodSandboxStateValue {
                state: api::PodSandboxState::SandboxNotready as i32,
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(not_ready, vec![other.clone()]);

    let mut events =
        c.rt.get_container_events(api::GetEventsRequest {})
            .await
            .expect("GetContainerEvents")
            .into_inner();
    // Containers: created, started, in the pod's network namespace.
    let script = "echo hello; echo oops >&2; exec sleep 1000";
    let id = create(&mut c, &pod, &pod_cfg, container_config("app", script))
        .await
        .expect("CreateContainer");
    let s = status(&mut c, &id).await;
    assert_eq!(s.state, api::ContainerState::ContainerCreated as i32);
    c.rt.start_container(api::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("StartContainer");
    let s = status(&mut c, &id).await;
    assert_eq!(s.state, api::ContainerState::ContainerRunning as i32);
    assert!(s.started_at > 0);
    assert_eq!(s.log_path, logs.join("app.log").display().to_string());
    let side = create(
        &mut c,
        &pod,
        &pod_cfg,
        container_config("side", "exec sleep 1000"),
    )
    .await
    .expect("CreateContainer side");
    let running = list_containers(
        &mut c,
        api::ContainerFilter {
            state: state(api::ContainerState::ContainerRunning),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(running, vec![id.clone()]);
    let by_pod = list_containers(
        &mut c,
        api::ContainerFilter {
            pod_sandbox_id: pod.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_pod.len(), 2);
    let by_label = list_containers(
        &mut c,
        api::ContainerFilter {
            label_selector: [("app".to_string(), "side".to_string())].into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_label, vec![side.clone()]);

    // ExecSync: output, exit codes, the pod's hostname and IP.
    let r = exec(
        &mut c,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        0,
    )
    .await;
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 3)
    );
    let r = exec(&mut c, &id, &["hostname"], 0).await;
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "web");
    let r = exec(&mut c, &id, &["ip", "-4", "addr", "show", "eth0"], 0).await;
    let text = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(text.contains(&format!("inet {ip}/")), "{text}");
    // With a timeout: DeadlineExceeded once it runs out.
    let t0 = Instant::now();
    let e =
        c.rt.exec_sync(api::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // ExecSync into a container that is not running is refused.
    let e =
        c.rt.exec_sync(api::ExecSyncRequest {
            container_id: side.clone(),
            cmd: vec!["true".into()],
            timeout: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // UpdateContainerResources: a new memory limit, in the cgroup and in the status.
    c.rt.update_container_resources(api::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("UpdateContainerResources");
    let r = exec(
        &mut c,
        &id,
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
        5,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "67108864");
    let s = status(&mut c, &id).await;
    assert_eq!(
        s.resources.unwrap().linux.unwrap().memory_limit_in_bytes,
        64 << 20
    );

    // Stats from the cgroups: CPU time and memory of the running one; the pod sums its two.
    // The writable layer counts what the container wrote (100 KiB in 3 new inodes here).
    let r = exec(
        &mut c,
        &id,
        &[
            "sh",
            "-c",
            "mkdir -p /wl/d && dd if=/dev/zero of=/wl/d/f bs=1024 count=100 2>/dev/null",
        ],
        5,
    )
    .await;
    assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
    let st =
        c.rt.container_stats(api::ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .expect("ContainerStats")
        .into_inner()
        .stats
        .expect("stats");
    let wl = st.writable_layer.as_ref().expect("writable layer usage");
    assert!(
        wl.used_bytes.as_ref().unwrap().value >= 100 * 1024,
        "{wl:?}"
    );
    assert!(wl.inodes_used.as_ref().unwrap().value >= 3, "{wl:?}");
    assert!(!wl.fs_id.as_ref().unwrap().mountpoint.is_empty());
    assert_eq!(st.attributes.as_ref().unwrap().id, id);
    let mem = st.memory.expect("memory of a running container");
    assert!(mem.usage_bytes.unwrap().value > 0);
    assert!(mem.working_set_bytes.is_some());
    assert!(st.cpu.expect("cpu").usage_core_nano_seconds.unwrap().value > 0);
    let listed =
        c.rt.list_container_stats(api::ListContainerStatsRequest {
            filter: Some(api::ContainerStatsFilter {
                label_selector: [("app".to_string(), "side".to_string())].into(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attributes.as_ref().unwrap().id, side);
    let ps =
        c.rt.pod_sandbox_stats(api::PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("PodSandboxStats")
        .into_inner()
        .stats
        .expect("pod stats");
    assert_eq!(ps.attributes.unwrap().id, pod);
    assert_eq!(ps.linux.unwrap().containers.len(), 2);

    // The CRI log: `<RFC3339Nano> stdout|stderr F <line>` at log_directory/log_path.
    let log_file = logs.join("app.log");
    until("the CRI log", async || {
        std::fs::read_to_string(&log_file).is_ok_and(|t| t.lines().count() >= 2)
    })
    .await;
    let text = std::fs::read_to_string(&log_file).unwrap();
    let mut seen = Vec::new();
    for line in text.lines() {
        let e = berth_cri::log::parse_line(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
        assert!(
            chrono_like(line.split(' ').next().unwrap()),
            "timestamp of {line}"
        );
        seen.push((
            e.stream.as_str(),
            String::from_utf8_lossy(&e.content).to_string(),
        ));
    }
    assert!(seen.contains(&("stdout", "hello".into())), "{text}");
    assert!(seen.contains(&("stderr", "oops".into())), "{text}");
    // ReopenContainerLog: the kubelet moved the file away; new output goes to a new file.
    std::fs::rename(&log_file, logs.join("app.log.1")).unwrap();
    c.rt.reopen_container_log(api::ReopenContainerLogRequest {
        container_id: id.clone(),
    })
    .await
    .expect("ReopenContainerLog");
    assert!(log_file.exists());

    // The pod's containers are berth containers: the Engine API and docker ps see them.
    let (code, body) = d.api("GET", "/containers/json?all=1", None);
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in {body}"));
    assert_eq!(mine["Labels"]["io.kubernetes.pod.name"], "web");
    assert_eq!(mine["Labels"]["io.kubernetes.container.name"], "app");
    assert_eq!(mine["Labels"]["io.kubernetes.sandbox.id"], pod.as_str());
    assert_eq!(mine["State"], "running");
    let out = d.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.kubernetes.sandbox.id={pod}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_ok(&out, "docker ps");
    let mut names: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "k8s_app_web_default_uid-web_0".to_string(),
            "k8s_side_web_default_uid-web_0".to_string()
        ]
    );

    // StopContainer with a timeout: `sleep` as PID 1 ignores SIGTERM, so SIGKILL after 2 s.
    let t0 = Instant::now();
    c.rt.stop_container(api::StopContainerRequest {
        container_id: id.clone(),
        timeout: 2,
    })
    .await
    .expect("StopContainer");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let s = status(&mut c, &id).await;
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(s.exit_code, 137);
    assert_eq!(s.reason, "Error");
    assert!(s.finished_at >= s.started_at);
    // Idempotent stop; remove; remove again; status of a removed container is NotFound.
    c.rt.stop_container(api::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    })
    .await
    .expect("second StopContainer");
    for _ in 0..2 {
        c.rt.remove_container(api::RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("RemoveContainer");
    }
    let e =
        c.rt.container_status(api::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(stdout(&d.docker(&["ps", "-aq", "--no-trunc"]))
        .lines()
        .all(|l| l != id));

    // GetContainerEvents told the whole life of the container, in order.
    let mut kinds = Vec::new();
    while let Ok(Ok(Some(ev))) =
        tokio::time::timeout(Duration::from_secs(5), events.message()).await
    {
        if ev.container_id == id {
            kinds.push(ev.container_event_type);
            if ev.container_event_type == api::ContainerEventType::ContainerDeletedEvent as i32 {
                break;
            }
        }
    }
    use api::ContainerEventType as E;
    assert_eq!(
        kinds,
        [
            E::ContainerCreatedEvent,
            E::ContainerStartedEvent,
            E::ContainerStoppedEvent,
            E::ContainerDeletedEvent
        ]
        .map(|e| e as i32)
    );

    // A created container of a stopped pod: creating another is refused.
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    assert!(net.allocated().is_empty(), "CNI DEL released the IP");
    let e = create(&mut c, &pod, &pod_cfg, container_config("late", "true"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Stop and remove are idempotent, also for unknown ids.
    for p in [pod.as_str(), other.as_str(), "0123456789ab"] {
        for _ in 0..2 {
            c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: p.into(),
            })
            .await
            .expect("StopPodSandbox");
            c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: p.into(),
            })
            .await
            .expect("RemovePodSandbox");
        }
    }
    let e =
        c.rt.pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(list_containers(&mut c, Default::default()).await.is_empty());
    assert!(
        stdout(&d.docker(&["ps", "-aq"])).trim().is_empty(),
        "the pod's containers went with it"
    );
    let left = std::fs::read_dir(d.root.join("exec/pods"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "pinned namespaces are gone");
    // The containers' files went too (deleted in the background after the answer).
    let files_left = || {
        ["containers", "trash"]
            .iter()
            .map(|sub| {
                std::fs::read_dir(d.data_root.join(sub))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    assert!(
        eventually(Duration::from_secs(10), || files_left() == 0),
        "container directories left: {}",
        files_left()
    );
}

/// An RFC 3339 timestamp with nanoseconds in UTC.
fn chrono_like(ts: &str) -> bool {
    ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.contains('.')
}

#[tokio::test]
async fn bad_input() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let d = start(&net);
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let logs = d.root.join("pod-logs");
    let pod_cfg = pod_config("bad", &[], &logs);
    let e = create(&mut c, "feedbeef", &pod_cfg, container_config("x", "true"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let pod = run_pod(&mut c, pod_cfg.clone()).await;
    // The same pod metadata again: the name is taken.
    let e =
        c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let mut cfg = container_config("m", "true");
    cfg.mounts.push(api::Mount {
        container_path: "/data".into(),
        host_path: "/nonexistent/berth-cri-test".into(),
        ..Default::default()
    });
    let e = create(&mut c, &pod, &pod_cfg, cfg).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("mounts[0].host_path"), "{e:?}");
    let mut cfg = container_config("img", "true");
    cfg.image = Some(api::ImageSpec {
        image: "nosuchimage:1".into(),
        ..Default::default()
    });
    let e = create(&mut c, &pod, &pod_cfg, cfg).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Nothing half-created stays behind.
    assert!(list_containers(&mut c, Default::default()).await.is_empty());
    assert!(stdout(&d.docker(&["ps", "-aq"])).trim().is_empty());
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pods_survive_a_daemon_restart() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let mut d = start(&net);
    let logs = d.root.join("pod-logs");
    let pod_cfg = pod_config("keep", &[], &logs);
    let (pod, id) = {
        let mut c = CriClient::connect(&d.cri_socket()).await;
        let pod = run_pod(&mut c, pod_cfg.clone()).await;
        let id = create(
            &mut c,
            &pod,
            &pod_cfg,
            container_config("k", "while true; do echo tick; sleep 0.2; done"),
        )
        .await
        .unwrap();
        c.rt.start_container(api::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
        (pod, id)
    };
    assert_eq!(net.allocated().len(), 1);
    d.restart();
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let ps = pod_status(&mut c, &pod).await;
    assert_eq!(ps.state, api::PodSandboxState::SandboxReady as i32);
    assert_eq!(
        status(&mut c, &id).await.state,
        api::ContainerState::ContainerRunning as i32
    );
    let r = exec(&mut c, &id, &["echo", "still"], 5).await;
    assert_eq!(r.stdout, b"still\n");
    // The log follower resumed: new lines keep arriving after the restart.
    let log_file = logs.join("k.log");
    let before = std::fs::read_to_string(&log_file).unwrap().lines().count();
    until("log lines after the restart", async || {
        std::fs::read_to_string(&log_file).is_ok_and(|t| t.lines().count() > before + 2)
    })
    .await;
    // Stop after the restart: CNI DEL from the stored attachment releases the IP.
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(net.allocated().is_empty(), "{:?}", net.allocated());
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert!(!Path::new(&d.root.join("exec/pods"))
        .read_dir()
        .is_ok_and(|mut r| r.next().is_some()));
}

/// StopPodSandbox stops every container of the pod (side by side with the network's
/// teardown) before it answers: all of them exited, the address released, the pod NotReady,
/// and so it stays after a daemon restart (the stopped state was written); a second stop
/// changes nothing.
#[tokio::test]
async fn stop_pod_sandbox_stops_all_containers_and_the_network() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let mut d = start(&net);
    let logs = d.root.join("pod-logs");
    let pod_cfg = pod_config("stopall", &[], &logs);
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let pod = run_pod(&mut c, pod_cfg.clone()).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        // The shell as PID 1 ignores SIGTERM: only the SIGKILL after the zero timeout ends it.
        let id = create(&mut c, &pod, &pod_cfg, container_config(name, "sleep 1000"))
            .await
            .unwrap();
        c.rt.start_container(api::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
        ids.push(id);
    }
    assert_eq!(net.allocated().len(), 1);
    let exited = api::ContainerState::ContainerExited as i32;
    let not_ready = api::PodSandboxState::SandboxNotready as i32;
    for round in 0..2 {
        c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("StopPodSandbox");
        assert!(net.allocated().is_empty(), "{:?}", net.allocated());
        assert_eq!(
            pod_status(&mut c, &pod).await.state,
            not_ready,
            "round {round}"
        );
        for id in &ids {
            assert_eq!(
                status(&mut c, id).await.state,
                exited,
                "{id} in round {round}"
            );
        }
    }
    d.restart();
    let mut c = CriClient::connect(&d.cri_socket()).await;
    assert_eq!(pod_status(&mut c, &pod).await.state, not_ready);
    for id in &ids {
        assert_eq!(status(&mut c, id).await.state, exited);
    }
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert!(list_containers(&mut c, Default::default()).await.is_empty());
}

/// A kubelet runs and stops many pods at once: they go in parallel (one lock per pod, not one
/// for all), each gets its own address, two runs of one pod name still cannot both succeed, and
/// stopping and removing a pod at the same time leaves nothing behind.
#[tokio::test]
async fn pods_run_and_stop_concurrently() {
    if !ready() {
        return;
    }
    let net = CniNet::new();
    let d = start(&net);
    let c = CriClient::connect(&d.cri_socket()).await;
    let logs = d.root.join("pod-logs");
    let mut names: Vec<String> = (0..6).map(|i| format!("par{i}")).collect();
    names.extend(["twin".to_string(), "twin".to_string()]);
    let runs = names.iter().map(|n| {
        let mut rt = c.rt.clone();
        let cfg = pod_config(n, &[], &logs);
        async move {
            rt.run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(cfg),
                runtime_handler: String::new(),
            })
            .await
            .map(|r| r.into_inner().pod_sandbox_id)
        }
    });
    let results = futures_util::future::join_all(runs).await;
    let (mut pods, mut refused) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(id) => pods.push(id),
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(pods.len(), 7, "six pods and one twin: {refused:?}");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].code(), Code::AlreadyExists, "{:?}", refused[0]);
    assert!(
        refused[0].message().contains("is reserved for"),
        "{:?}",
        refused[0]
    );
    let mut c = c;
    let mut ips = Vec::new();
    for p in &pods {
        let s = pod_status(&mut c, p).await;
        assert_eq!(s.state, api::PodSandboxState::SandboxReady as i32);
        ips.push(s.network.expect("network").ip);
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), pods.len(), "one address each: {ips:?}");
    assert_eq!(net.allocated().len(), pods.len());
    // Stop and remove every pod, both at once for each.
    let ends = pods.iter().flat_map(|p| {
        let (mut a, mut b) = (c.rt.clone(), c.rt.clone());
        let (p1, p2) = (p.clone(), p.clone());
        [
            Box::pin(async move {
                a.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: p1 })
                    .await
                    .map(|_| ())
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
            Box::pin(async move {
                b.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: p2 })
                    .await
                    .map(|_| ())
            }),
        ]
    });
    for r in futures_util::future::join_all(ends).await {
        // A stop that comes after its pod's removal finds no pod, as containerd answers.
        if let Err(e) = r {
            assert_eq!(e.code(), Code::NotFound, "{e:?}");
        }
    }
    assert!(list_pods(&mut c, api::PodSandboxFilter::default())
        .await
        .is_empty());
    assert!(net.allocated().is_empty(), "{:?}", net.allocated());
    let pins = std::fs::read_dir(d.root.join("exec/pods"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(pins, 0, "pinned namespaces left");
}
