//! Every RPC of both services against the recording fake: validation, the typed call the
//! backend sees, the response, and the error → status mapping.

use std::sync::Arc;

use futures_util::StreamExt;
use tonic::{Code, Request};

use super::fake::Fake;
use super::*;
use crate::api::image_service_server::ImageService;
use crate::api::runtime_service_server::RuntimeService;
use crate::api::*;
use crate::streaming::{StreamRequest, TokenCache};
use crate::types::{ContainerState, PodState};

fn setup() -> (Arc<Fake>, CriServer, Arc<TokenCache>) {
    let fake = Arc::new(Fake::default());
    let cache = Arc::new(TokenCache::default());
    let urls = StreamUrls::new("http://127.0.0.1:9", cache.clone());
    let server = CriServer::new(Backends::from_one(fake.clone()), Some(urls));
    (fake, server, cache)
}

fn req<T>(t: T) -> Request<T> {
    Request::new(t)
}

fn pod_config() -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: "/var/log/pods/x".into(),
        ..Default::default()
    }
}

fn container_config() -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "c".into(),
            attempt: 1,
        }),
        image: Some(ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str) {
    let e = r.expect_err("expected InvalidArgument");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains(field), "{} lacks {field}", e.message());
}

#[tokio::test]
async fn version_and_status() {
    let (fake, s, _) = setup();
    let v = s
        .version(req(VersionRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "berth");
    assert_eq!(v.runtime_api_version, "v1");
    assert_eq!(v.version, "0.1.0");

    let st = s
        .status(req(StatusRequest { verbose: false }))
        .await
        .unwrap()
        .into_inner();
    let conds = st.status.unwrap().conditions;
    assert_eq!(conds[0].r#type, "RuntimeReady");
    assert!(conds[0].status);
    assert_eq!(conds[1].r#type, "NetworkReady");
    assert!(!conds[1].status);
    assert_eq!(conds[1].reason, "NetworkPluginNotReady");
    assert!(st.info.is_empty(), "info only when verbose");
    let st = s
        .status(req(StatusRequest { verbose: true }))
        .await
        .unwrap();
    assert!(st.into_inner().info.contains_key("config"));
    assert_eq!(
        fake.calls(),
        ["version", "status verbose=false", "status verbose=true"]
    );
}

#[tokio::test]
async fn runtime_config_calls() {
    let (fake, s, _) = setup();
    s.update_runtime_config(req(UpdateRuntimeConfigRequest {
        runtime_config: Some(RuntimeConfig {
            network_config: Some(NetworkConfig {
                pod_cidr: "10.88.0.0/16".into(),
            }),
        }),
    }))
    .await
    .unwrap();
    let rc = s
        .runtime_config(req(RuntimeConfigRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rc.linux.unwrap().cgroup_driver,
        crate::api::CgroupDriver::Cgroupfs as i32
    );
    assert_eq!(
        fake.calls(),
        ["update_runtime_config 10.88.0.0/16", "cgroup_driver"]
    );
}

#[tokio::test]
async fn run_pod_sandbox_validates_metadata() {
    let (fake, s, _) = setup();
    assert_invalid(
        s.run_pod_sandbox(req(RunPodSandboxRequest::default()))
            .await,
        "config",
    );
    let mut c = pod_config();
    c.metadata = None;
    assert_invalid(
        s.run_pod_sandbox(req(RunPodSandboxRequest {
            config: Some(c),
            runtime_handler: String::new(),
        }))
        .await,
        "config.metadata",
    );
    for field in ["name", "namespace", "uid"] {
        let mut c = pod_config();
        let md = c.metadata.as_mut().unwrap();
        match field {
            "name" => md.name.clear(),
            "namespace" => md.namespace.clear(),
            _ => md.uid.clear(),
        }
        assert_invalid(
            s.run_pod_sandbox(req(RunPodSandboxRequest {
                config: Some(c),
                runtime_handler: String::new(),
            }))
            .await,
            &format!("config.metadata.{field}"),
        );
    }
    assert!(
        fake.calls().is_empty(),
        "invalid requests never reach the backend"
    );

    let r = s
        .run_pod_sandbox(req(RunPodSandboxRequest {
            config: Some(pod_config()),
            runtime_handler: "runc".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.pod_sandbox_id, "pod1");
    let run = fake.last_run.lock().unwrap().clone().unwrap();
    assert_eq!(run.runtime_handler, "runc");
    assert_eq!(run.config.log_directory, "/var/log/pods/x");
}

#[tokio::test]
async fn stop_and_remove_are_idempotent() {
    let (fake, s, _) = setup();
    fake.fail_next(CriError::not_found("pod sandbox", "gone"));
    s.stop_pod_sandbox(req(StopPodSandboxRequest {
        pod_sandbox_id: "gone".into(),
    }))
    .await
    .unwrap();
    fake.fail_next(CriError::not_found("pod sandbox", "gone"));
    s.remove_pod_sandbox(req(RemovePodSandboxRequest {
        pod_sandbox_id: "gone".into(),
    }))
    .await
    .unwrap();
    fake.fail_next(CriError::not_found("container", "gone"));
    s.stop_container(req(StopContainerRequest {
        container_id: "gone".into(),
        timeout: 10,
    }))
    .await
    .unwrap();
    fake.fail_next(CriError::not_found("container", "gone"));
    s.remove_container(req(RemoveContainerRequest {
        container_id: "gone".into(),
    }))
    .await
    .unwrap();
    fake.fail_next(CriError::not_found("image", "gone"));
    s.remove_image(req(RemoveImageRequest {
        image: Some(ImageSpec {
            image: "gone".into(),
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    assert_eq!(
        fake.calls(),
        [
            "stop_pod_sandbox gone",
            "remove_pod_sandbox gone",
            "stop_container gone 10s",
            "remove_container gone",
            "remove_image gone"
        ]
    );
    // Other failures still fail, with their code.
    fake.fail_next(CriError::Internal("netns busy".into()));
    let e = s
        .stop_pod_sandbox(req(StopPodSandboxRequest {
            pod_sandbox_id: "p".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unknown);
    assert_eq!(e.message(), "netns busy");
    assert_invalid(
        s.stop_pod_sandbox(req(StopPodSandboxRequest::default()))
            .await,
        "pod_sandbox_id",
    );
}

#[tokio::test]
async fn status_calls_map_not_found() {
    let (fake, s, _) = setup();
    fake.fail_next(CriError::not_found("pod sandbox", "x"));
    let e = s
        .pod_sandbox_status(req(PodSandboxStatusRequest {
            pod_sandbox_id: "x".into(),
            verbose: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let st = s
        .pod_sandbox_status(req(PodSandboxStatusRequest {
            pod_sandbox_id: "p".into(),
            verbose: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.status.unwrap().state, PodState::Ready.to_proto());
    assert!(st.info.is_empty());
    assert!(st.timestamp > 0, "the layer stamps the time");
    let st = s
        .container_status(req(ContainerStatusRequest {
            container_id: "c".into(),
            verbose: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.status.unwrap().state, ContainerState::Running.to_proto());
    assert!(st.info.contains_key("info"));
    assert_invalid(
        s.container_status(req(ContainerStatusRequest::default()))
            .await,
        "container_id",
    );
}

#[tokio::test]
async fn lists_and_their_stream_variants() {
    let (fake, s, _) = setup();
    {
        let mut pods = fake.pods.lock().unwrap();
        for i in 0..(STREAM_CHUNK + 3) {
            pods.push(PodSandbox {
                id: format!("p{i}"),
                state: PodState::Ready.to_proto(),
                labels: [(
                    "app".to_string(),
                    if i % 2 == 0 { "a" } else { "b" }.to_string(),
                )]
                .into(),
                ..Default::default()
            });
        }
    }
    let all = s
        .list_pod_sandbox(req(ListPodSandboxRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(all.len(), STREAM_CHUNK + 3);
    let filtered = s
        .list_pod_sandbox(req(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: [("app".to_string(), "b".to_string())].into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(filtered.len(), (STREAM_CHUNK + 3) / 2);

    let msgs: Vec<_> = s
        .stream_pod_sandboxes(req(StreamPodSandboxesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let sizes: Vec<usize> = msgs
        .into_iter()
        .map(|m| m.unwrap().pod_sandboxes.len())
        .collect();
    assert_eq!(sizes, [STREAM_CHUNK, 3]);

    // An empty list streams no message at all.
    let msgs: Vec<_> = s
        .stream_containers(req(StreamContainersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert!(msgs.is_empty());
    fake.containers.lock().unwrap().push(Container {
        id: "c1".into(),
        pod_sandbox_id: "p1".into(),
        ..Default::default()
    });
    let cs = s
        .list_containers(req(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: "p1".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(cs.len(), 1);

    let stats: Vec<_> = s
        .stream_pod_sandbox_stats(req(StreamPodSandboxStatsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].as_ref().unwrap().pod_sandbox_stats.len(), 2);
    let l = s
        .list_pod_sandbox_stats(req(ListPodSandboxStatsRequest::default()))
        .await
        .unwrap();
    assert_eq!(l.into_inner().stats.len(), 2);
    let cstats: Vec<_> = s
        .stream_container_stats(req(StreamContainerStatsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert!(cstats.is_empty());
    s.list_container_stats(req(ListContainerStatsRequest::default()))
        .await
        .unwrap();
    let metrics: Vec<_> = s
        .stream_pod_sandbox_metrics(req(StreamPodSandboxMetricsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert!(metrics.is_empty());
    s.list_metric_descriptors(req(ListMetricDescriptorsRequest {}))
        .await
        .unwrap();
    s.list_pod_sandbox_metrics(req(ListPodSandboxMetricsRequest {}))
        .await
        .unwrap();
}

#[tokio::test]
async fn container_lifecycle() {
    let (fake, s, _) = setup();
    assert_invalid(
        s.create_container(req(CreateContainerRequest {
            pod_sandbox_id: String::new(),
            config: Some(container_config()),
            sandbox_config: None,
        }))
        .await,
        "pod_sandbox_id",
    );
    let mut c = container_config();
    c.image = None;
    assert_invalid(
        s.create_container(req(CreateContainerRequest {
            pod_sandbox_id: "pod1".into(),
            config: Some(c),
            sandbox_config: None,
        }))
        .await,
        "config.image",
    );
    let mut c = container_config();
    c.metadata.as_mut().unwrap().name.clear();
    assert_invalid(
        s.create_container(req(CreateContainerRequest {
            pod_sandbox_id: "pod1".into(),
            config: Some(c),
            sandbox_config: None,
        }))
        .await,
        "config.metadata.name",
    );
    let id = s
        .create_container(req(CreateContainerRequest {
            pod_sandbox_id: "pod1".into(),
            config: Some(container_config()),
            sandbox_config: Some(pod_config()),
        }))
        .await
        .unwrap()
        .into_inner()
        .container_id;
    assert_eq!(id, "ctr1");
    assert!(fake
        .last_create
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .sandbox_config
        .is_some());
    s.start_container(req(StartContainerRequest {
        container_id: id.clone(),
    }))
    .await
    .unwrap();
    s.stop_container(req(StopContainerRequest {
        container_id: id.clone(),
        timeout: -5,
    }))
    .await
    .unwrap();
    s.update_container_resources(req(UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(LinuxContainerResources {
            cpu_shares: 512,
            ..Default::default()
        }),
        ..Default::default()
    }))
    .await
    .unwrap();
    s.reopen_container_log(req(ReopenContainerLogRequest {
        container_id: id.clone(),
    }))
    .await
    .unwrap();
    s.container_stats(req(ContainerStatsRequest {
        container_id: id.clone(),
    }))
    .await
    .unwrap();
    fake.fail_next(CriError::FailedPrecondition(
        "container is not running".into(),
    ));
    let e = s
        .start_container(req(StartContainerRequest {
            container_id: id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        fake.calls(),
        [
            "create_container pod1 c busybox",
            "start_container ctr1",
            "stop_container ctr1 0s",
            "update_container_resources ctr1 shares=512",
            "reopen_container_log ctr1",
            "container_stats ctr1",
            "start_container ctr1",
        ]
    );
}

#[tokio::test]
async fn exec_sync_passes_timeout_and_output() {
    let (fake, s, _) = setup();
    assert_invalid(
        s.exec_sync(req(ExecSyncRequest {
            container_id: "c".into(),
            cmd: vec![],
            timeout: 0,
        }))
        .await,
        "cmd",
    );
    let r = s
        .exec_sync(req(ExecSyncRequest {
            container_id: "c".into(),
            cmd: vec!["true".into()],
            timeout: 2,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out"[..], &b"err"[..], 3)
    );
    fake.fail_next(CriError::DeadlineExceeded("timeout 2s exceeded".into()));
    let e = s
        .exec_sync(req(ExecSyncRequest {
            container_id: "c".into(),
            cmd: vec!["sleep".into(), "9".into()],
            timeout: 2,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    assert_eq!(fake.calls()[0], "exec_sync c [\"true\"] Some(2s)");
}

#[tokio::test]
async fn streaming_calls_hand_out_urls() {
    let (fake, s, cache) = setup();
    assert_invalid(
        s.exec(req(ExecRequest {
            container_id: "c".into(),
            cmd: vec!["sh".into()],
            ..Default::default()
        }))
        .await,
        "stdin",
    );
    assert_invalid(
        s.exec(req(ExecRequest {
            container_id: "c".into(),
            cmd: vec!["sh".into()],
            tty: true,
            stderr: true,
            ..Default::default()
        }))
        .await,
        "stderr",
    );
    let url = s
        .exec(req(ExecRequest {
            container_id: "c".into(),
            cmd: vec!["sh".into()],
            stdin: true,
            stdout: true,
            tty: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .url;
    let token = url.strip_prefix("http://127.0.0.1:9/exec/").expect(&url);
    match cache.consume(token) {
        Some(StreamRequest::Exec(p)) => {
            assert_eq!(p.cmd, ["sh"]);
            assert!(p.tty && p.stdin && p.stdout && !p.stderr);
        }
        other => panic!("{other:?}"),
    }
    let url = s
        .attach(req(AttachRequest {
            container_id: "c".into(),
            stdout: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:9/attach/"));
    let url = s
        .port_forward(req(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            port: vec![80, 8080],
        }))
        .await
        .unwrap()
        .into_inner()
        .url;
    let token = url.strip_prefix("http://127.0.0.1:9/portforward/").unwrap();
    assert!(
        matches!(cache.consume(token), Some(StreamRequest::PortForward(p)) if p.ports == [80, 8080])
    );
    assert_invalid(
        s.port_forward(req(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            port: vec![70000],
        }))
        .await,
        "port",
    );
    // A stopped container gets no URL.
    fake.fail_next(CriError::FailedPrecondition(
        "container c is not running".into(),
    ));
    let e = s
        .attach(req(AttachRequest {
            container_id: "c".into(),
            stdout: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        fake.calls(),
        [
            "check_container_running c",
            "check_container_running c",
            "check_pod_ready p",
            "check_container_running c"
        ]
    );
    // Without a streaming server the calls are unimplemented.
    let bare = CriServer::new(Backends::from_one(fake.clone()), None);
    let e = bare
        .attach(req(AttachRequest {
            container_id: "c".into(),
            stdout: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[tokio::test]
async fn pod_stats_resources_checkpoint_and_events() {
    let (fake, s, _) = setup();
    s.pod_sandbox_stats(req(PodSandboxStatsRequest {
        pod_sandbox_id: "p".into(),
    }))
    .await
    .unwrap();
    // Defaults of the traits: unimplemented.
    let e = s
        .update_pod_sandbox_resources(req(UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: "p".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = s
        .checkpoint_container(req(CheckpointContainerRequest {
            container_id: "c".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    fake.events.lock().unwrap().push(ContainerEventResponse {
        container_id: "c".into(),
        container_event_type: ContainerEventType::ContainerStartedEvent as i32,
        created_at: 5,
        ..Default::default()
    });
    let events: Vec<_> = s
        .get_container_events(req(GetEventsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].as_ref().unwrap().container_id, "c");
}

#[tokio::test]
async fn image_service() {
    let (fake, s, _) = setup();
    fake.images.lock().unwrap().push(Image {
        id: "sha256:1".into(),
        repo_tags: vec!["busybox:latest".into()],
        ..Default::default()
    });
    let imgs = s
        .list_images(req(ListImagesRequest {
            filter: Some(ImageFilter {
                image: Some(ImageSpec::default()),
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(imgs.len(), 1);
    let msgs: Vec<_> = s
        .stream_images(req(StreamImagesRequest {
            filter: Some(ImageFilter {
                image: Some(ImageSpec {
                    image: "busybox".into(),
                    ..Default::default()
                }),
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(msgs.len(), 1);
    let st = s
        .image_status(req(ImageStatusRequest {
            image: Some(ImageSpec {
                image: "busybox:latest".into(),
                ..Default::default()
            }),
            verbose: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image.unwrap().id, "sha256:1");
    assert!(st.info.is_empty());
    // Absent: an empty response, not an error.
    let st = s
        .image_status(req(ImageStatusRequest {
            image: Some(ImageSpec {
                image: "nginx".into(),
                ..Default::default()
            }),
            verbose: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none());
    assert_invalid(
        s.image_status(req(ImageStatusRequest::default())).await,
        "image",
    );
    let r = s
        .pull_image(req(PullImageRequest {
            image: Some(ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            auth: Some(AuthConfig {
                username: "u".into(),
                password: "p".into(),
                ..Default::default()
            }),
            sandbox_config: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, "sha256:abc");
    assert_eq!(
        fake.last_pull
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .auth
            .as_ref()
            .unwrap()
            .username,
        "u"
    );
    assert_invalid(
        s.pull_image(req(PullImageRequest {
            image: Some(ImageSpec::default()),
            ..Default::default()
        }))
        .await,
        "image.image",
    );
    let fs = s
        .image_fs_info(req(ImageFsInfoRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fs.image_filesystems.len(), 1);
    assert_eq!(
        fake.calls(),
        [
            "list_images None",
            "list_images Some(\"busybox\")",
            "image_status busybox:latest verbose=false",
            "image_status nginx verbose=true",
            "pull_image busybox",
            "image_fs_info"
        ]
    );
}

/// The services over a real unix socket, through the generated client.
#[tokio::test]
async fn serves_on_a_unix_socket() {
    use hyper_util::rt::TokioIo;
    use std::os::unix::fs::PermissionsExt;

    let (_fake, s, _) = setup();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/cri.sock");
    let socket = CriSocket::bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_unix(s, socket, async {
        let _ = stop_rx.await;
    }));

    let p = path.clone();
    let channel = tonic::transport::Endpoint::try_from("http://cri")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let p = p.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .unwrap();
    let mut rt = runtime_service_client::RuntimeServiceClient::new(channel.clone());
    let v = rt
        .version(VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "berth");
    let e = rt
        .container_status(ContainerStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut img = image_service_client::ImageServiceClient::new(channel);
    let fs = img.image_fs_info(ImageFsInfoRequest {}).await.unwrap();
    assert_eq!(fs.into_inner().image_filesystems.len(), 1);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!path.exists(), "the socket is removed at shutdown");
}
