//! The CRI client of `bench/cri.sh`: times a pod's start (RunPodSandbox + CreateContainer +
//! StartContainer of one busybox container, until ContainerStatus says RUNNING) and its
//! tear-down (StopPodSandbox + RemovePodSandbox) against any CRI socket, over the same
//! generated `runtime.v1` client as the tests, so berthd and containerd are driven alike.
//!
//!   cri-bench SOCKET [N] [IMAGE]     N rounds (default 20), IMAGE default `busybox`
//!
//! Prints every round's two times and then one line `medians up_ms down_ms` that the script
//! reads. The container asks for `oom_score_adj` -997, what a kubelet gives a Guaranteed pod's
//! container: a runtime that cannot set a negative score must clamp it, not fail.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_tests::cri::{api, CriClient};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn pod_config(i: usize, logs: &std::path::Path) -> api::PodSandboxConfig {
    let name = format!("bench-{}-{i}", std::process::id());
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.clone(),
            namespace: "bench".into(),
            uid: format!("uid-{name}"),
            attempt: 0,
        }),
        hostname: name,
        log_directory: logs.join(i.to_string()).display().to_string(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                // What a kubelet sends for a pod without shareProcessNamespace.
                namespace_options: Some(api::NamespaceOption {
                    pid: api::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(image: &str) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "1000".into()],
        log_path: "app.log".into(),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(api::LinuxContainerResources {
                oom_score_adj: -997,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn up(c: &mut CriClient, i: usize, image: &str, logs: &std::path::Path) -> String {
    let cfg = pod_config(i, logs);
    let pod =
        c.rt.run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let id =
        c.rt.create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(image)),
            sandbox_config: Some(cfg),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    c.rt.start_container(api::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("StartContainer");
    loop {
        let st =
            c.rt.container_status(api::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        if st.state == api::ContainerState::ContainerRunning as i32 {
            break;
        }
        assert_ne!(
            st.state,
            api::ContainerState::ContainerExited as i32,
            "container exited: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pod
}

async fn down(c: &mut CriClient, pod: &str) {
    c.rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("StopPodSandbox");
    c.rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(socket) = args.first() else {
        eprintln!("usage: cri-bench SOCKET [N] [IMAGE]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).map_or(20, |s| s.parse().expect("N"));
    let image = args.get(2).map_or("busybox", String::as_str);
    let logs = PathBuf::from(format!("/var/tmp/cri-bench-logs-{}", std::process::id()));
    let mut c = CriClient::connect(std::path::Path::new(socket)).await;
    // One round not counted: first-use costs (image unpack, CNI plugin binaries into the
    // page cache) are not what is measured.
    let pod = up(&mut c, n, image, &logs).await;
    down(&mut c, &pod).await;
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t0 = Instant::now();
        let pod = up(&mut c, i, image, &logs).await;
        let t1 = Instant::now();
        down(&mut c, &pod).await;
        let t2 = Instant::now();
        let (u, d) = (
            (t1 - t0).as_secs_f64() * 1000.0,
            (t2 - t1).as_secs_f64() * 1000.0,
        );
        println!("round {i}: up {u:.1} ms, down {d:.1} ms");
        ups.push(u);
        downs.push(d);
    }
    let _ = std::fs::remove_dir_all(&logs);
    println!("medians {:.1} {:.1}", median(&mut ups), median(&mut downs));
}
