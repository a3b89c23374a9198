//! berthd's CRI: a pod's namespaces (NamespaceOption POD/CONTAINER/NODE for network, PID and
//! IPC) and the containers' security context (run-as user/group/name, supplemental groups,
//! read-only rootfs, privileged, capabilities, seccomp RuntimeDefault/Unconfined/Localhost,
//! no_new_privs, masked and read-only paths), sysctls and the OOM score, following critest's
//! security_context_linux.go and pod_linux.go cases; everything checked from inside the
//! containers through ExecSync. Needs root and containernetworking-plugins.

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

fn sc_with_ns(pid: api::NamespaceMode) -> api::LinuxContainerSecurityContext {
    api::LinuxContainerSecurityContext {
        namespace_options: Some(api::NamespaceOption {
            pid: pid as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn ns(e: &mut Env, id: &str, kind: &str) -> String {
    e.out(id, &format!("readlink /proc/self/ns/{kind}")).await
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// One capability's bit in a `CapEff:` hex mask.
fn has_cap(status: &str, bit: u32) -> bool {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff")
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << bit) != 0
}

const CAP_CHOWN: u32 = 0;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

#[tokio::test]
async fn namespace_options() {
    if !ready() {
        return;
    }
    use api::NamespaceMode::{Container, Node, Pod};
    let mut e = env().await;

    // POD network and IPC, PID per CONTAINER (a kubelet's default).
    let pod = e.pod("nspod", ns_opts(Pod, Container, Pod), &[]).await;
    let a = e.run(&pod, "a", sc_with_ns(Container)).await;
    let b = e.run(&pod, "b", sc_with_ns(Container)).await;
    for kind in ["net", "ipc", "uts"] {
        let (na, nb) = (ns(&mut e, &a, kind).await, ns(&mut e, &b, kind).await);
        assert_eq!(na, nb, "{kind} shared in the pod");
        assert_ne!(na, host_ns(kind), "{kind} not the host's");
    }
    // One UTS namespace, with the pod's hostname.
    assert_eq!(e.out(&a, "hostname").await, pod.1.hostname);
    assert_eq!(e.out(&b, "cat /etc/hostname").await, pod.1.hostname);
    let (pa, pb) = (ns(&mut e, &a, "pid").await, ns(&mut e, &b, "pid").await);
    assert_ne!(pa, pb, "PID CONTAINER: one namespace each");
    // ...so neither sees the other's sleep (10 + name length seconds: `sleep 101`).
    assert_eq!(
        e.out(&a, "ps -o pid,args | grep -c '[s]leep'").await,
        "1",
        "only its own sleep"
    );
    // The pod's network: its own interface with the pod's IP, not the host's bridges.
    let ifaces = e.out(&a, "ls /sys/class/net").await;
    assert!(
        ifaces.contains("eth0") && !ifaces.contains(&e._net.bridge),
        "{ifaces}"
    );
    // PodSandboxStats: the pod's network usage from its namespace, its processes.
    let gw = format!("{}.1", e._net.subnet.rsplit_once('.').unwrap().0);
    e.out(&a, &format!("ping -c 2 -W 2 {gw}")).await;
    let stats =
        e.c.rt
            .pod_sandbox_stats(api::PodSandboxStatsRequest {
                pod_sandbox_id: pod.0.clone(),
            })
            .await
            .expect("PodSandboxStats")
            .into_inner()
            .stats
            .expect("stats")
            .linux
            .expect("linux");
    let net = stats.network.expect("network usage");
    assert!(net.timestamp > 0);
    let eth0 = net.default_interface.expect("eth0");
    assert_eq!(eth0.name, "eth0");
    assert!(eth0.tx_bytes.unwrap().value >= 2 * 98, "{eth0:?}");
    assert!(eth0.rx_bytes.unwrap().value >= 2 * 98, "{eth0:?}");
    assert!(
        net.interfaces.iter().all(|i| i.name != "lo"),
        "{:?}",
        net.interfaces
    );
    assert!(stats.process.expect("process").process_count.unwrap().value >= 2);
    e.remove_pod(&pod.0).await;

    // PID POD: the pod's containers share one PID namespace and see each other's processes.
    let pod = e.pod("pidpod", ns_opts(Pod, Pod, Pod), &[]).await;
    let a = e.run(&pod, "a", sc_with_ns(Pod)).await;
    let b = e.run(&pod, "bb", sc_with_ns(Pod)).await;
    let c3 = e.run(&pod, "ccc", sc_with_ns(Pod)).await;
    let (pa, pb) = (ns(&mut e, &a, "pid").await, ns(&mut e, &b, "pid").await);
    assert_eq!(pa, pb, "PID POD: one namespace for the pod");
    assert_ne!(pa, host_ns("pid"));
    let ps = e.out(&a, "ps -o args").await;
    assert!(ps.contains("sleep 101") && ps.contains("sleep 102"), "{ps}");
    assert!(ps.contains("sleep 103"), "{ps}");
    // A container started after execs took PIDs in the pod (on cgroup v1 the shim mounts its
    // cgroups: the runtime would look them up under its PID in the pod, in the host's /proc).
    let c4 = e.run(&pod, "dddd", sc_with_ns(Pod)).await;
    assert!(e.out(&c4, "ps -o args").await.contains("sleep 101"));
    // The first container ending does not take the pod's PID namespace with it.
    e.c.rt
        .stop_container(api::StopContainerRequest {
            container_id: a.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    let ps = e.out(&c3, "ps -o args").await;
    assert!(ps.contains("sleep 102") && ps.contains("sleep 103"), "{ps}");
    assert!(!ps.contains("sleep 101"), "{ps}");
    // The namespace's init is berth's own (no pause image); it goes with the pod.
    let info =
        e.c.rt
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: pod.0.clone(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    let init = info["pidInit"].as_i64().expect("pidInit");
    let comm = |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm(init).trim(), "berth-pod-init");
    e.remove_pod(&pod.0).await;
    let gone = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone(init) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        gone(init),
        "pod init {init} still runs after RemovePodSandbox"
    );

    // NODE: the host's network, PID and IPC namespaces.
    let pod = e.pod("nodepod", ns_opts(Node, Node, Node), &[]).await;
    let a = e.run(&pod, "a", sc_with_ns(Node)).await;
    for kind in ["net", "pid", "ipc", "uts"] {
        assert_eq!(ns(&mut e, &a, kind).await, host_ns(kind), "{kind} NODE");
    }
    let ifaces = e.out(&a, "ls /sys/class/net").await;
    assert!(ifaces.contains(&e._net.bridge), "{ifaces}");
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn run_as_user_group_and_supplemental_groups() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    let pod = e.pod("users", kubelet_ns(), &[]).await;
    let id = e
        .run(
            &pod,
            "u",
            api::LinuxContainerSecurityContext {
                run_as_user: Some(api::Int64Value { value: 1000 }),
                run_as_group: Some(api::Int64Value { value: 2000 }),
                supplemental_groups: vec![3000, 4000],
                ..Default::default()
            },
        )
        .await;
    assert_eq!(e.out(&id, "id -u").await, "1000");
    assert_eq!(e.out(&id, "id -g").await, "2000");
    let groups = e.out(&id, "id -G").await;
    for g in ["2000", "3000", "4000"] {
        assert!(groups.split(' ').any(|x| x == g), "{g} in {groups}");
    }
    // By name: the image's `berth` user (1000:1000).
    let id = e
        .run(
            &pod,
            "n",
            api::LinuxContainerSecurityContext {
                run_as_username: "berth".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(e.out(&id, "id -un; id -u").await, "berth\n1000");
    // A group without a user is refused (critest: RunAsGroup without RunAsUser).
    let err = e
        .create(
            &pod,
            sleeper(
                "g",
                api::LinuxContainerSecurityContext {
                    run_as_group: Some(api::Int64Value { value: 2000 }),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("run_as_group"), "{err:?}");
    e.remove_pod(&pod.0).await;
}

/// The identity ContainerStatus reports: (uid, gid, supplemental groups).
async fn status_user(e: &mut Env, id: &str) -> (i64, i64, Vec<i64>) {
    let u = status(&mut e.c, id)
        .await
        .user
        .and_then(|u| u.linux)
        .expect("ContainerStatus.user");
    (u.uid, u.gid, u.supplemental_groups)
}

#[tokio::test]
async fn supplemental_groups_policy_merge_and_strict() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    let features =
        e.c.rt
            .status(api::StatusRequest { verbose: false })
            .await
            .expect("Status")
            .into_inner()
            .features;
    assert!(features.is_some_and(|f| f.supplemental_groups_policy));
    let pod = e.pod("groups", kubelet_ns(), &[]).await;
    // The image's /etc/group lists its user `berth` (1000) in `wheel` (10).
    let sc = |policy: api::SupplementalGroupsPolicy, group: Option<i64>| {
        api::LinuxContainerSecurityContext {
            run_as_user: Some(api::Int64Value { value: 1000 }),
            run_as_group: group.map(|value| api::Int64Value { value }),
            supplemental_groups: vec![3000],
            supplemental_groups_policy: policy as i32,
            ..Default::default()
        }
    };
    use api::SupplementalGroupsPolicy::{Merge, Strict};
    for (name, policy, group, want) in [
        ("merge", Merge, None, "1000 10 3000"),
        // Merge keeps the image's groups with an explicit group too (Docker would not).
        ("mergegid", Merge, Some(2000), "2000 10 3000"),
        ("strict", Strict, None, "1000 3000"),
        ("strictgid", Strict, Some(2000), "2000 3000"),
    ] {
        let id = e.run(&pod, name, sc(policy, group)).await;
        let mut got: Vec<String> = e
            .out(&id, "id -G")
            .await
            .split(' ')
            .map(String::from)
            .collect();
        got.sort();
        let mut want_sorted: Vec<String> = want.split(' ').map(String::from).collect();
        want_sorted.sort();
        assert_eq!(got, want_sorted, "{name}: id -G");
        let (uid, gid, groups) = status_user(&mut e, &id).await;
        assert_eq!((uid, gid), (1000, group.unwrap_or(1000)), "{name}");
        let mut groups: Vec<String> = groups.iter().map(i64::to_string).collect();
        groups.sort();
        assert_eq!(groups, want_sorted, "{name}: ContainerStatus.user");
    }
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn rootfs_privileged_capabilities_and_paths() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    let pod = e.pod("caps", kubelet_ns(), &[]).await;
    let sc = api::LinuxContainerSecurityContext::default;

    // Read-only rootfs true/false.
    let ro = e
        .run(
            &pod,
            "ro",
            api::LinuxContainerSecurityContext {
                readonly_rootfs: true,
                ..sc()
            },
        )
        .await;
    let (code, out) = e.sh(&ro, "touch /newfile").await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let rw = e.run(&pod, "rw", sc()).await;
    e.out(&rw, "touch /newfile").await;

    // Default capabilities: no NET_ADMIN or SYS_ADMIN, CHOWN yes.
    let st = e.out(&rw, "cat /proc/self/status").await;
    assert!(
        has_cap(&st, CAP_CHOWN) && !has_cap(&st, CAP_NET_ADMIN) && !has_cap(&st, CAP_SYS_ADMIN),
        "{st}"
    );
    // Privileged: every capability and a writable /sys; unprivileged cannot mount.
    let (code, _) = e
        .sh(&rw, "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m")
        .await;
    assert_ne!(code, 0);
    let pr = e
        .run(
            &pod,
            "priv",
            api::LinuxContainerSecurityContext {
                privileged: true,
                ..sc()
            },
        )
        .await;
    let st = e.out(&pr, "cat /proc/self/status").await;
    assert!(
        has_cap(&st, CAP_SYS_ADMIN) && has_cap(&st, CAP_NET_ADMIN),
        "{st}"
    );
    e.out(
        &pr,
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && umount /tmp/m",
    )
    .await;

    // Add NET_ADMIN, drop CHOWN (the kubelet's names have no CAP_ prefix).
    let caps = |add: &[&str], drop: &[&str]| api::LinuxContainerSecurityContext {
        capabilities: Some(api::Capability {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..sc()
    };
    let id = e.run(&pod, "add", caps(&["NET_ADMIN"], &["CHOWN"])).await;
    let st = e.out(&id, "cat /proc/self/status").await;
    assert!(
        has_cap(&st, CAP_NET_ADMIN) && !has_cap(&st, CAP_CHOWN),
        "{st}"
    );
    e.out(
        &id,
        "ip addr add 10.99.0.1/32 dev lo && ip addr del 10.99.0.1/32 dev lo",
    )
    .await;
    let id = e.run(&pod, "all", caps(&["ALL"], &[])).await;
    let st = e.out(&id, "cat /proc/self/status").await;
    assert!(
        has_cap(&st, CAP_SYS_ADMIN) && has_cap(&st, CAP_NET_ADMIN),
        "{st}"
    );
    let id = e.run(&pod, "none", caps(&[], &["ALL"])).await;
    let st = e.out(&id, "cat /proc/self/status").await;
    assert!(st.contains("CapEff:\t0000000000000000"), "{st}");

    // Masked paths read empty, read-only paths refuse writes.
    let id = e
        .run(
            &pod,
            "paths",
            api::LinuxContainerSecurityContext {
                masked_paths: vec!["/etc/group".into()],
                readonly_paths: vec!["/tmp".into()],
                ..sc()
            },
        )
        .await;
    assert_eq!(e.out(&id, "cat /etc/group | wc -c").await, "0");
    let (code, out) = e.sh(&id, "touch /tmp/x").await;
    assert_ne!(code, 0, "{out}");
    assert!(e.out(&rw, "cat /etc/group").await.contains("root"));
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn seccomp_and_no_new_privs() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    let pod = e.pod("seccomp", kubelet_ns(), &[]).await;
    let profile = |ty: api::security_profile::ProfileType, path: &str| api::SecurityProfile {
        profile_type: ty as i32,
        localhost_ref: path.into(),
    };
    use api::security_profile::ProfileType;
    let seccomp_mode = |st: &str| {
        st.lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .expect("Seccomp")
            .trim()
            .to_string()
    };
    let with = |p: Option<api::SecurityProfile>, caps: &[&str], privileged: bool| {
        api::LinuxContainerSecurityContext {
            seccomp: p,
            privileged,
            capabilities: Some(api::Capability {
                add_capabilities: caps.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    // RuntimeDefault: filtered; Unconfined and no profile at all: not.
    let id = e
        .run(
            &pod,
            "rd",
            with(Some(profile(ProfileType::RuntimeDefault, "")), &[], false),
        )
        .await;
    assert_eq!(
        seccomp_mode(&e.out(&id, "cat /proc/self/status").await),
        "2"
    );
    let (code, _) = e.sh(&id, "unshare -U true").await;
    assert_ne!(
        code, 0,
        "RuntimeDefault blocks unshare without CAP_SYS_ADMIN"
    );
    let id = e
        .run(
            &pod,
            "un",
            with(Some(profile(ProfileType::Unconfined, "")), &[], false),
        )
        .await;
    assert_eq!(
        seccomp_mode(&e.out(&id, "cat /proc/self/status").await),
        "0"
    );
    let id = e.run(&pod, "nil", with(None, &[], false)).await;
    assert_eq!(
        seccomp_mode(&e.out(&id, "cat /proc/self/status").await),
        "0"
    );
    // Unconfined with SYS_ADMIN may set the hostname.
    let id = e
        .run(
            &pod,
            "host1",
            with(
                Some(profile(ProfileType::Unconfined, "")),
                &["SYS_ADMIN"],
                false,
            ),
        )
        .await;
    e.out(&id, "hostname changed").await;

    // A localhost profile that blocks sethostname, even with SYS_ADMIN...
    let dir = e.d.root.join("seccomp");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("block-hostname.json");
    std::fs::write(
        &path,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let local = || Some(profile(ProfileType::Localhost, &path.display().to_string()));
    let id = e
        .run(&pod, "host2", with(local(), &["SYS_ADMIN"], false))
        .await;
    assert_eq!(
        seccomp_mode(&e.out(&id, "cat /proc/self/status").await),
        "2"
    );
    let (code, out) = e.sh(&id, "hostname blocked").await;
    assert_ne!(code, 0, "{out}");
    // ...is ignored for a privileged container.
    let id = e.run(&pod, "host3", with(local(), &[], true)).await;
    e.out(&id, "hostname allowed").await;
    // A profile file that does not exist is InvalidArgument.
    let err = e
        .create(
            &pod,
            sleeper(
                "bad",
                with(
                    Some(profile(ProfileType::Localhost, "/nonexistent/p.json")),
                    &[],
                    false,
                ),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // no_new_privs true and false.
    let nnp = |v: bool| api::LinuxContainerSecurityContext {
        no_new_privs: v,
        ..Default::default()
    };
    let id = e.run(&pod, "nnp1", nnp(true)).await;
    assert!(e
        .out(&id, "cat /proc/self/status")
        .await
        .contains("NoNewPrivs:\t1"));
    let id = e.run(&pod, "nnp0", nnp(false)).await;
    assert!(e
        .out(&id, "cat /proc/self/status")
        .await
        .contains("NoNewPrivs:\t0"));
    e.remove_pod(&pod.0).await;
}

#[tokio::test]
async fn sysctls_and_oom_score() {
    if !ready() {
        return;
    }
    let mut e = env().await;
    // critest's safe (kernel.shm_rmid_forced) and unsafe (fs.mqueue.msg_max) sysctls.
    let pod = e
        .pod(
            "sysctl",
            api::NamespaceOption::default(),
            &[
                ("kernel.shm_rmid_forced", "1"),
                ("fs.mqueue.msg_max", "100"),
            ],
        )
        .await;
    let id = e.run(&pod, "s", Default::default()).await;
    assert_eq!(
        e.out(&id, "cat /proc/sys/kernel/shm_rmid_forced").await,
        "1"
    );
    assert_eq!(e.out(&id, "cat /proc/sys/fs/mqueue/msg_max").await, "100");

    // A Guaranteed pod's container asks for -997; the daemon sets what it may: -997 with
    // CAP_SYS_RESOURCE, else nothing below its own score (this VM lacks the capability).
    let mut cfg = container_config("oom", "exec sleep 1000");
    cfg.linux = Some(api::LinuxContainerConfig {
        resources: Some(api::LinuxContainerResources {
            oom_score_adj: -997,
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = e.create(&pod, cfg).await.expect("CreateContainer");
    e.c.rt
        .start_container(api::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer with a negative oom_score_adj");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let own: i64 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let want = if has_cap(&status, 24) {
        -997
    } else {
        own.max(-997)
    };
    assert_eq!(
        e.out(&id, "cat /proc/1/oom_score_adj").await,
        want.to_string()
    );

    e.remove_pod(&pod.0).await;
}

/// What a kubelet sends for a pod without shareProcessNamespace: PID per container.
fn kubelet_ns() -> api::NamespaceOption {
    api::NamespaceOption {
        pid: api::NamespaceMode::Container as i32,
        ..Default::default()
    }
}
