//! berthd's CRI: mounts and exits as critest's container_linux.go checks them — mount
//! propagation (private, host-to-container, bidirectional), read-only mounts (non-recursive,
//! recursive, and the recursive ones the CRI forbids), and a container killed by the OOM killer
//! (exit 137, reason OOMKilled). Needs root and containernetworking-plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::cri::*;
use berth_tests::cri_env::*;
use berth_tests::*;

fn ready() -> bool {
    if !is_root() || !cni_plugins_present() {
        eprintln!("skipped: needs root and the CNI plugins in {PLUGIN_DIR}");
        return false;
    }
    true
}

/// Mounts made on the host by a test, unmounted (recursively, lazily) however it ends.
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn mount(&mut self, args: &[&str], target: &Path) {
        let st = Command::new("mount")
            .args(args)
            .arg(target)
            .status()
            .expect("mount");
        assert!(st.success(), "mount {args:?} {}", target.display());
        self.0.push(target.to_path_buf());
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-R").arg("-l").arg(p).status();
        }
    }
}

fn bind(host: &Path, dest: &str, propagation: api::MountPropagation) -> api::Mount {
    api::Mount {
        container_path: dest.into(),
        host_path: host.display().to_string(),
        propagation: propagation as i32,
        ..Default::default()
    }
}

fn with_mounts(name: &str, mounts: Vec<api::Mount>, privileged: bool) -> api::ContainerConfig {
    let mut cfg = sleeper(
        name,
        api::LinuxContainerSecurityContext {
            privileged,
            ..Default::default()
        },
    );
    cfg.mounts = mounts;
    cfg
}

#[tokio::test]
async fn mount_propagation() {
    if !ready() {
        return;
    }
    use api::MountPropagation::{
        PropagationBidirectional, PropagationHostToContainer, PropagationPrivate,
    };
    let mut e = env().await;
    let mut host = HostMounts(Vec::new());
    // A shared mount on the host, as a kubelet's pod volume directory is.
    let src = e.d.root.join("propagation");
    std::fs::create_dir_all(&src).unwrap();
    host.mount(&["--bind", src.to_str().unwrap()], &src);
    host.mount(&["--make-rshared"], &src);
    let pod = e
        .pod(
            "proppod",
            ns_opts(
                api::NamespaceMode::Pod,
                api::NamespaceMode::Container,
                api::NamespaceMode::Pod,
            ),
            &[],
        )
        .await;
    let private = e
        .start(
            &pod,
            with_mounts("priv", vec![bind(&src, "/m", PropagationPrivate)], false),
        )
        .await;
    let slave = e
        .start(
            &pod,
            with_mounts(
                "slave",
                vec![bind(&src, "/m", PropagationHostToContainer)],
                false,
            ),
        )
        .await;
    let shared = e
        .start(
            &pod,
            with_mounts(
                "shared",
                vec![bind(&src, "/m", PropagationBidirectional)],
                true,
            ),
        )
        .await;

    // A mount made on the host after the containers started.
    let from_host = src.join("from-host");
    std::fs::create_dir_all(&from_host).unwrap();
    host.mount(&["-t", "tmpfs", "cri-prop-host"], &from_host);
    std::fs::write(from_host.join("mark"), "host").unwrap();
    let look = "cat /m/from-host/mark 2>/dev/null || echo none";
    assert_eq!(
        e.out(&private, look).await,
        "none",
        "rprivate: nothing from the host"
    );
    assert_eq!(
        e.out(&slave, look).await,
        "host",
        "rslave: the host's mount shows"
    );
    assert_eq!(
        e.out(&shared, look).await,
        "host",
        "rshared: the host's mount shows"
    );

    // A mount made in the bidirectional container shows on the host; not from the others.
    e.out(&shared, "mkdir -p /m/from-ctr && mount -t tmpfs cri-prop-ctr /m/from-ctr && echo ctr > /m/from-ctr/mark").await;
    host.0.push(src.join("from-ctr"));
    assert_eq!(
        std::fs::read_to_string(src.join("from-ctr/mark")).unwrap_or_default(),
        "ctr\n",
        "rshared: the container's mount reaches the host"
    );
    let (code, out) = e.sh(&slave, "mount -t tmpfs x /m/from-host").await;
    assert_ne!(code, 0, "an unprivileged container cannot mount: {out}");
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn readonly_mounts() {
    if !ready() {
        return;
    }
    use api::MountPropagation::{
        PropagationBidirectional, PropagationHostToContainer, PropagationPrivate,
    };
    let mut e = env().await;
    let mut host = HostMounts(Vec::new());
    let src = e.d.root.join("ro-src");
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    host.mount(&["-t", "tmpfs", "cri-ro-sub"], &sub);
    let pod = e
        .pod(
            "ropod",
            ns_opts(
                api::NamespaceMode::Pod,
                api::NamespaceMode::Container,
                api::NamespaceMode::Pod,
            ),
            &[],
        )
        .await;
    let ro = |recursive: bool| api::Mount {
        readonly: true,
        recursive_read_only: recursive,
        ..bind(&src, "/m", PropagationPrivate)
    };
    let script = "touch /m/top 2>/dev/null && echo top-rw; \
                  if touch /m/sub/f 2>/dev/null; then echo sub-rw; else echo sub-ro; fi";

    // Non-recursive: the top is read-only, the submount below it is not.
    let plain = e
        .start(&pod, with_mounts("plain", vec![ro(false)], false))
        .await;
    assert_eq!(e.out(&plain, script).await, "sub-rw");

    // Recursive, where the runtime says it can.
    let status =
        e.c.rt
            .status(api::StatusRequest { verbose: false })
            .await
            .expect("Status")
            .into_inner();
    let rro = status
        .runtime_handlers
        .first()
        .and_then(|h| h.features)
        .is_some_and(|f| f.recursive_read_only_mounts);
    let recursive = e
        .create(&pod, with_mounts("rec", vec![ro(true)], false))
        .await
        .expect("CreateContainer with recursive_read_only");
    let started =
        e.c.rt
            .start_container(api::StartContainerRequest {
                container_id: recursive.clone(),
            })
            .await;
    if rro {
        started.expect("StartContainer");
        assert_eq!(e.out(&recursive, script).await, "sub-ro");
    } else {
        let err = started.expect_err("recursive read-only without mount_setattr");
        assert!(err.message().contains("not supported"), "{err:?}");
    }

    // What the CRI forbids: recursive with propagation other than private, or not read-only.
    for (name, m) in [
        (
            "h2c",
            api::Mount {
                propagation: PropagationHostToContainer as i32,
                ..ro(true)
            },
        ),
        (
            "bidi",
            api::Mount {
                propagation: PropagationBidirectional as i32,
                ..ro(true)
            },
        ),
        (
            "rw",
            api::Mount {
                readonly: false,
                ..ro(true)
            },
        ),
    ] {
        let err = e
            .create(&pod, with_mounts(name, vec![m], false))
            .await
            .expect_err(name);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{name}: {err:?}");
        assert!(
            err.message().contains("recursive_read_only"),
            "{name}: {err:?}"
        );
    }
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn oom_killed_reason() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    let pod = e
        .pod(
            "oompod",
            ns_opts(
                api::NamespaceMode::Pod,
                api::NamespaceMode::Container,
                api::NamespaceMode::Pod,
            ),
            &[],
        )
        .await;
    // `tail` keeps a line without a newline in memory: /dev/zero has none.
    let mut cfg = container_config("hog", "exec tail /dev/zero");
    cfg.linux = Some(api::LinuxContainerConfig {
        resources: Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = e.start(&pod, cfg).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = status(&mut e.c, &id).await;
        if s.state == api::ContainerState::ContainerExited as i32 {
            break s;
        }
        assert!(Instant::now() < deadline, "the hog was not killed: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.exit_code, 137, "{status:?}");
    assert_eq!(status.reason, "OOMKilled", "{status:?}");
    e.remove_pod(&pod.0).await;
}
