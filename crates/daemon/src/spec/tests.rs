//! `build_spec` / `build_exec_process` end to end, on temp-dir rootfs fixtures.

use std::fs;

use berth_api_types::container::{ThrottleDevice, Ulimit};
use oci_spec::runtime::{Capability, LinuxNamespaceType, MountBuilder, PosixRlimitType, Spec};

use super::*;
use crate::sysinfo::{CgroupVersion, SysInfo};

struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
    host_config: HostConfig,
    host: HostFacts,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("rootfs/etc")).unwrap();
        fs::write(
            dir.path().join("rootfs/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("rootfs/etc/group"),
            "root:x:0:\nstaff:x:50:app\n",
        )
        .unwrap();
        let config = Config {
            hostname: "0123456789ab".into(),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let host = HostFacts {
            bounding_caps: ALL_CAPABILITIES
                .iter()
                .filter(|c| **c != "CAP_SYS_RESOURCE")
                .map(|c| (*c).to_string())
                .collect(),
            rlimits: vec![
                ("RLIMIT_NOFILE".into(), 1024, 4096),
                ("RLIMIT_NPROC".into(), u64::MAX, u64::MAX),
            ],
            sys: SysInfo::all_supported(CgroupVersion::V2),
            kernel_version: (6, 1, 0),
        };
        Fixture {
            dir,
            config,
            host_config: HostConfig::default(),
            host,
        }
    }

    fn build(&self) -> Result<Spec, SpecError> {
        self.build_with(&SpecExtras::default())
    }

    fn build_with(&self, extras: &SpecExtras) -> Result<Spec, SpecError> {
        let root = self.dir.path().join("rootfs");
        let p = self.dir.path();
        build_spec_with(
            &SpecInput {
                id: "0123456789abcdef",
                config: &self.config,
                host_config: &self.host_config,
                rootfs: &root,
                hostname_path: &p.join("hostname"),
                hosts_path: &p.join("hosts"),
                resolv_conf_path: &p.join("resolv.conf"),
                cgroup_parent: "berth",
                host: &self.host,
            },
            extras,
        )
    }
}

fn cap_names(set: &oci_spec::runtime::Capabilities) -> Vec<String> {
    set.iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The namespaces a spec asks for, in order.
fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
}

/// The types of the namespaces a spec asks for, in order.
fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    namespaces(spec).iter().map(|n| n.typ()).collect()
}

#[test]
fn defaults_match_docker() {
    let f = Fixture::new();
    let spec = f.build().unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &vec!["sh".to_string()]);
    assert_eq!(
        p.env().as_ref().unwrap(),
        &vec![
            format!("PATH={DEFAULT_PATH_ENV}"),
            "HOSTNAME=0123456789ab".to_string(),
            "HOME=/root".to_string()
        ]
    );
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![0]);
    let caps = p.capabilities().as_ref().unwrap();
    let eff = cap_names(caps.effective().as_ref().unwrap());
    assert_eq!(format!("{:08x}", caps_to_mask(&eff)), "a80425fb");
    assert_eq!(caps.bounding(), caps.effective());
    assert_eq!(caps.permitted(), caps.effective());
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert_eq!(
        p.no_new_privileges(),
        None,
        "absent, not false: libcontainer needs it so"
    );

    let mounts: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        mounts,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts"
        ]
    );
    let shm = &spec.mounts().as_ref().unwrap()[6];
    assert!(shm
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=67108864".to_string()));
    let hosts = &spec.mounts().as_ref().unwrap()[9];
    assert_eq!(hosts.typ().as_deref(), Some("bind"));
    assert_eq!(
        hosts.source().as_ref().unwrap(),
        &f.dir.path().join("hosts")
    );

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 12);
    assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    assert_eq!(
        linux.cgroups_path().as_ref().unwrap(),
        Path::new("/berth/0123456789abcdef")
    );
    let ns = namespace_types(&spec);
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Cgroup
        ]
    );
    assert!(linux.seccomp().is_some());
    assert_eq!(linux.devices().as_ref().unwrap().len(), 6);
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!rules[0].allow());
    assert!(rules[1..].iter().all(|r| r.allow()));
    assert_eq!(
        linux
            .sysctl()
            .as_ref()
            .unwrap()
            .get("net.ipv4.ip_unprivileged_port_start"),
        Some(&"0".to_string())
    );
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));

    // host rlimits are inherited
    let rl = p.rlimits().as_ref().unwrap();
    let nofile = rl
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (1024, 4096));

    // and the whole thing serializes into a config.json oci-spec reads back
    let json = serde_json::to_string(&spec).unwrap();
    if std::env::var_os("BERTH_DUMP_SPEC").is_some() {
        println!("{}", serde_json::to_string_pretty(&spec).unwrap());
    }
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn entrypoint_cmd_env_tty_workdir_user() {
    let mut f = Fixture::new();
    f.config.entrypoint = Some(vec!["/entry".into(), "-x".into()]);
    f.config.cmd = Some(vec!["run".into()]);
    f.config.env = Some(vec!["PATH=/custom".into(), "A=b".into()]);
    f.config.tty = true;
    f.config.working_dir = "/srv".into();
    f.config.user = "app".into();
    f.host_config.group_add = Some(vec!["777".into()]);
    let spec = f.build().unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &vec!["/entry", "-x", "run"]);
    assert_eq!(
        p.env().as_ref().unwrap(),
        &vec![
            "PATH=/custom",
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "A=b",
            "HOME=/home/app"
        ]
    );
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(
        p.user().additional_gids().as_ref().unwrap(),
        &vec![1000, 50, 777]
    );
}

#[test]
fn empty_entrypoint_means_none() {
    let mut f = Fixture::new();
    f.config.entrypoint = Some(vec![String::new()]);
    f.config.cmd = Some(vec!["echo".into(), "x".into()]);
    let spec = f.build().unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &vec!["echo", "x"]);
    // Only a lone "" is "no entrypoint"; an empty first word among others is kept.
    f.config.entrypoint = Some(vec![String::new(), "a".into()]);
    assert_eq!(command_argv(&f.config), vec!["", "a", "echo", "x"]);
    f.config.entrypoint = Some(vec![String::new()]);
    f.config.cmd = None;
    assert_eq!(f.build().unwrap_err().to_string(), "no command specified");
}

#[test]
fn no_command_is_refused() {
    let mut f = Fixture::new();
    f.config.cmd = None;
    assert_eq!(f.build().unwrap_err().to_string(), "no command specified");
}

#[test]
fn init_runs_in_front_of_the_command_from_a_read_only_bind() {
    let f = Fixture::new();
    let spec = f
        .build_with(&SpecExtras {
            init_binary: Some(Path::new("/usr/bin/tini-static")),
            ..Default::default()
        })
        .unwrap();
    let args = spec.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(
        args[..2],
        ["/sbin/docker-init".to_string(), "--".to_string()]
    );
    assert_eq!(
        args[2..],
        f.build()
            .unwrap()
            .process()
            .as_ref()
            .unwrap()
            .args()
            .clone()
            .unwrap()[..]
    );
    let m = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sbin/docker-init"))
        .expect("init mount");
    assert_eq!(
        m.source().as_deref(),
        Some(Path::new("/usr/bin/tini-static"))
    );
    assert!(m.options().as_ref().unwrap().contains(&"ro".to_string()));
}

#[test]
fn unknown_user_fails_the_build() {
    let mut f = Fixture::new();
    f.config.user = "nosuch".into();
    assert_eq!(
        f.build().unwrap_err().to_string(),
        "unable to find user nosuch: no matching entries in passwd file"
    );
}

#[test]
fn privileged_without_sys_resource() {
    let mut f = Fixture::new();
    f.host_config.privileged = true;
    let spec = f.build().unwrap();
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let bounding = caps.bounding().as_ref().unwrap();
    assert_eq!(bounding.len(), 40);
    assert!(!bounding.contains(&Capability::SysResource));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].typ().is_none());
    assert!(linux.devices().as_ref().unwrap().len() >= 6);
    for m in spec.mounts().as_ref().unwrap() {
        if m.destination() == Path::new("/sys") || m.destination() == Path::new("/sys/fs/cgroup") {
            let o = m.options().as_ref().unwrap();
            assert!(o.contains(&"rw".to_string()) && !o.contains(&"ro".to_string()));
        }
    }
}

#[test]
fn cap_add_sys_admin_widens_seccomp() {
    let mut f = Fixture::new();
    f.host_config.cap_add = Some(vec!["sys_admin".into()]);
    let spec = f.build().unwrap();
    let sc = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert!(sc
        .syscalls()
        .iter()
        .flatten()
        .any(|c| c.names().contains(&"mount".to_string())));
}

#[test]
fn clone_rule_is_written_for_libcontainer() {
    let f = Fixture::new();
    let spec = f.build().unwrap();
    let sc = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let clone = sc
        .syscalls()
        .iter()
        .flatten()
        .find(|c| c.names() == &vec!["clone".to_string()])
        .unwrap();
    let arg = &clone.args().as_ref().unwrap()[0];
    // libcontainer: mask = valueTwo, datum = value → (flags & CLONE_NEW*) == 0
    assert_eq!((arg.value(), arg.value_two()), (0, Some(2114060288)));
}

#[test]
fn seccomp_security_opts() {
    let mut f = Fixture::new();
    f.host_config.security_opt = Some(vec!["seccomp=unconfined".into()]);
    assert!(f
        .build()
        .unwrap()
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .is_none());

    f.host_config.security_opt = Some(vec![
        r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#.into(),
        "no-new-privileges:true".into(),
    ]);
    let spec = f.build().unwrap();
    let sc = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(sc.syscalls().as_ref().unwrap().len(), 1);
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );

    f.host_config.security_opt = Some(vec!["seccomp={not json".into()]);
    assert!(matches!(f.build().unwrap_err(), SpecError::Seccomp(_)));
    f.host_config.security_opt = Some(vec!["bogus".into()]);
    assert!(matches!(
        f.build().unwrap_err(),
        SpecError::InvalidSecurityOpt(..)
    ));
}

#[test]
fn ulimits() {
    let mut f = Fixture::new();
    f.host_config.ulimits = Some(vec![Ulimit {
        name: "nofile".into(),
        soft: 100,
        hard: 200,
    }]);
    let spec = f.build().unwrap();
    let rl = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    let nofile = rl
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (100, 200));

    f.host_config.ulimits = Some(vec![Ulimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 8192,
    }]);
    let err = f.build().unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds the daemon's hard limit 4096"),
        "{err}"
    );
    f.host_config.ulimits = Some(vec![Ulimit {
        name: "nofile".into(),
        soft: 300,
        hard: 200,
    }]);
    assert!(f.build().is_err());
    f.host_config.ulimits = Some(vec![Ulimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }]);
    assert_eq!(
        f.build().unwrap_err().to_string(),
        "invalid ulimit type: bogus"
    );
    // unlimited stays allowed where the daemon is unlimited
    f.host_config.ulimits = Some(vec![Ulimit {
        name: "nproc".into(),
        soft: -1,
        hard: -1,
    }]);
    assert!(f.build().is_ok());
}

#[test]
fn sysctl_validation() {
    let mut f = Fixture::new();
    let set = |kv: &[(&str, &str)]| {
        Some(
            kv.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    };
    f.host_config.sysctls = set(&[
        ("net.ipv4.ip_forward", "1"),
        ("kernel.shmmax", "1000"),
        ("kernel.msgmax", "10"),
        ("fs.mqueue.msg_max", "10"),
        ("kernel.domainname", "x"),
    ]);
    let spec = f.build().unwrap();
    assert_eq!(
        spec.linux()
            .as_ref()
            .unwrap()
            .sysctl()
            .as_ref()
            .unwrap()
            .len(),
        7
    );

    f.host_config.sysctls = set(&[("kernel.panic", "1")]);
    assert!(matches!(f.build().unwrap_err(), SpecError::Sysctl(_)));
    f.host_config.sysctls = set(&[("vm.swappiness", "1")]);
    assert!(f.build().is_err());

    f.host_config.network_mode = "host".into();
    f.host_config.sysctls = set(&[("net.ipv4.ip_forward", "1")]);
    let err = f.build().unwrap_err();
    assert!(err.to_string().contains("host network mode"), "{err}");
    f.host_config.sysctls = None;
    let spec = f.build().unwrap();
    assert!(spec
        .linux()
        .as_ref()
        .unwrap()
        .sysctl()
        .as_ref()
        .unwrap()
        .is_empty());
    assert!(!namespace_types(&spec).contains(&LinuxNamespaceType::Network));

    let mut f = Fixture::new();
    f.host_config.ipc_mode = "host".into();
    f.host_config.sysctls = set(&[("kernel.sem", "1 2 3 4")]);
    assert!(f.build().is_err());
}

#[test]
fn masked_paths_override_and_systempaths() {
    let mut f = Fixture::new();
    f.host_config.masked_paths = Some(vec!["/proc/x".into()]);
    f.host_config.readonly_paths = Some(vec![]);
    let spec = f.build().unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.masked_paths().as_ref().unwrap(),
        &vec!["/proc/x".to_string()]
    );
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());

    let mut f = Fixture::new();
    f.host_config.security_opt = Some(vec!["systempaths=unconfined".into()]);
    let spec = f.build().unwrap();
    assert!(spec
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .as_ref()
        .unwrap()
        .is_empty());
}

#[test]
fn resources_and_cgroups() {
    let mut f = Fixture::new();
    f.host_config.memory = 64 << 20;
    f.host_config.memory_reservation = 32 << 20;
    f.host_config.nano_cpus = 1_500_000_000;
    f.host_config.cpu_shares = 512;
    f.host_config.cpuset_cpus = "0-1".into();
    f.host_config.pids_limit = Some(100);
    f.host_config.blkio_weight = 300;
    f.host_config.cgroup_parent = "custom.parent".into();
    let spec = f.build().unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let r = linux.resources().as_ref().unwrap();
    let mem = r.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(64 << 20));
    assert_eq!(mem.swap(), Some(128 << 20));
    assert_eq!(mem.reservation(), Some(32 << 20));
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    assert_eq!(
        linux.cgroups_path().as_ref().unwrap(),
        Path::new("/custom.parent/0123456789abcdef")
    );

    f.host_config.cpu_quota = 5000;
    assert!(f.build().is_err(), "NanoCpus and CpuQuota conflict");
}

/// A container created where a knob existed never makes the runtime write a cgroup file the
/// host it starts on lacks (the data root moved, BFQ went away): the spec leaves it out.
#[test]
fn resources_the_host_lacks_stay_out_of_the_spec() {
    let mut f = Fixture::new();
    f.host.sys.cgroup_version = CgroupVersion::V1;
    f.host.sys.cgroup.blkio_weight = false;
    f.host.sys.cgroup.pids_limit = false;
    f.host.sys.cgroup.memory_swappiness = false;
    f.host.sys.cgroup.oom_kill_disable = false;
    f.host_config.blkio_weight = 300;
    f.host_config.pids_limit = Some(100);
    f.host_config.memory_swappiness = Some(10);
    f.host_config.oom_kill_disable = Some(true);
    f.host_config.blkio_device_read_bps = Some(vec![ThrottleDevice {
        path: "/dev/null".into(),
        rate: 1 << 20,
    }]);
    let spec = f.build().unwrap();
    let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let bio = r.block_io().as_ref().expect("throttles are supported");
    assert_eq!(bio.weight(), None);
    assert_eq!(
        bio.throttle_read_bps_device().as_ref().map(Vec::len),
        Some(1)
    );
    assert!(r.pids().is_none());
    let mem = r.memory().as_ref().unwrap();
    assert_eq!((mem.swappiness(), mem.disable_oom_killer()), (None, None));
    // The same config on a host with the knobs keeps them.
    f.host.sys = SysInfo::all_supported(CgroupVersion::V1);
    let spec = f.build().unwrap();
    let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(r.memory().as_ref().unwrap().swappiness(), Some(10));
}

#[test]
fn readonly_rootfs_tmpfs_and_shm() {
    let mut f = Fixture::new();
    f.host_config.readonly_rootfs = true;
    f.host_config.shm_size = 1 << 20;
    f.host_config.tmpfs = Some([("/run".to_string(), "size=64m,exec".to_string())].into());
    let spec = f.build().unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    let mounts = spec.mounts().as_ref().unwrap();
    let run = mounts
        .iter()
        .find(|m| m.destination() == Path::new("/run"))
        .unwrap();
    assert_eq!(
        run.options().as_ref().unwrap(),
        &vec!["nosuid", "nodev", "size=64m", "exec"]
    );
    let shm = mounts
        .iter()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert!(shm
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=1048576".to_string()));
    let hosts = mounts
        .iter()
        .find(|m| m.destination() == Path::new("/etc/hosts"))
        .unwrap();
    assert!(hosts
        .options()
        .as_ref()
        .unwrap()
        .contains(&"ro".to_string()));

    f.host_config.tmpfs = Some([("relative".to_string(), String::new())].into());
    assert!(f.build().is_err());
}

#[test]
fn host_namespaces_and_cgroupns() {
    let mut f = Fixture::new();
    f.host_config.pid_mode = "host".into();
    f.host_config.uts_mode = "host".into();
    f.host_config.cgroupns_mode = "host".into();
    let spec = f.build().unwrap();
    let ns = namespace_types(&spec);
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc
        ]
    );
    assert!(spec.hostname().is_none());

    let mut f = Fixture::new();
    f.host.sys.cgroup_version = CgroupVersion::V1;
    let spec = f.build().unwrap();
    assert!(!namespace_types(&spec).contains(&LinuxNamespaceType::Cgroup));

    // `--pid/--ipc container:` join the target's namespaces the daemon passes in.
    let mut f = Fixture::new();
    f.host_config.pid_mode = "container:abc".into();
    f.host_config.ipc_mode = "container:abc".into();
    assert!(matches!(f.build().unwrap_err(), SpecError::Unsupported(_)));
    let spec = f
        .build_with(&SpecExtras {
            pid_ns_path: Some(Path::new("/proc/42/ns/pid")),
            ipc_ns_path: Some(Path::new("/proc/42/ns/ipc")),
            ..Default::default()
        })
        .unwrap();
    for (typ, path) in [
        (LinuxNamespaceType::Pid, "/proc/42/ns/pid"),
        (LinuxNamespaceType::Ipc, "/proc/42/ns/ipc"),
    ] {
        let n = namespaces(&spec)
            .iter()
            .find(|n| n.typ() == typ)
            .expect("namespace");
        assert_eq!(n.path().as_deref(), Some(Path::new(path)));
    }
    // A CRI pod's UTS namespace is joined through the path the pods service passes in.
    let f = Fixture::new();
    let spec = f
        .build_with(&SpecExtras {
            uts_ns_path: Some(Path::new("/run/pods/p/uts")),
            ..Default::default()
        })
        .unwrap();
    let uts = namespaces(&spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Uts)
        .expect("uts namespace")
        .path()
        .clone();
    assert_eq!(uts.as_deref(), Some(Path::new("/run/pods/p/uts")));
    // `--network container:` is joined through the netns path the daemon passes in.
    let mut f = Fixture::new();
    f.host_config.network_mode = "container:abc".into();
    assert!(f.build().is_ok());
}

#[test]
fn extra_mounts_replace_defaults() {
    let f = Fixture::new();
    let extra = vec![
        MountBuilder::default()
            .destination("/data/sub")
            .typ("bind")
            .source("/a")
            .build()
            .unwrap(),
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("/b")
            .build()
            .unwrap(),
        MountBuilder::default()
            .destination("/dev/shm")
            .typ("bind")
            .source("/c")
            .build()
            .unwrap(),
    ];
    let spec = f
        .build_with(&SpecExtras {
            netns_path: Some(Path::new("/run/berth/netns/x")),
            extra_mounts: &extra,
            ..Default::default()
        })
        .unwrap();
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_str().unwrap().to_string())
        .collect();
    assert_eq!(dests.iter().filter(|d| *d == "/dev/shm").count(), 1);
    let tail: Vec<_> = dests[dests.len() - 3..].to_vec();
    assert_eq!(tail, ["/data", "/data/sub", "/dev/shm"]);
    let net = namespaces(&spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path().as_deref(), Some(Path::new("/run/berth/netns/x")));
}

#[test]
fn exec_process() {
    let mut f = Fixture::new();
    f.config.env = Some(vec!["A=1".into(), "B=2".into()]);
    f.config.working_dir = "/srv".into();
    f.host_config.group_add = Some(vec!["777".into()]);
    let spec = f.build().unwrap();
    let root = f.dir.path().join("rootfs");
    let container = spec.process().as_ref().unwrap();
    let req = ExecSpec {
        cmd: vec!["ls".into()],
        env: vec!["B=3".into(), "C=4".into(), "A".into()],
        user: "app".into(),
        working_dir: String::new(),
        tty: true,
        privileged: false,
    };
    let p = build_exec_process(container, &req, &root, &f.host).unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &vec!["ls".to_string()]);
    assert_eq!(
        p.env().as_ref().unwrap(),
        &vec![
            format!("PATH={DEFAULT_PATH_ENV}"),
            "HOSTNAME=0123456789ab".into(),
            "B=3".into(),
            "HOME=/home/app".into(),
            "TERM=xterm".into(),
            "C=4".into(),
        ]
    );
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(
        p.user().additional_gids().as_ref().unwrap(),
        &vec![1000, 50]
    );
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.capabilities(), container.capabilities());
    assert_eq!(p.rlimits(), container.rlimits());

    // the container's own user keeps its GroupAdd groups; privileged widens the capabilities
    let req = ExecSpec {
        privileged: true,
        user: String::new(),
        working_dir: "/tmp".into(),
        ..req
    };
    let p = build_exec_process(container, &req, &root, &f.host).unwrap();
    assert_eq!(p.user().uid(), 0);
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![0, 777]);
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/root".to_string()));
    assert_eq!(p.cwd(), Path::new("/tmp"));
    assert_eq!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len(),
        40
    );
    let req = ExecSpec { cmd: vec![], ..req };
    assert!(build_exec_process(container, &req, &root, &f.host).is_err());
    let req = ExecSpec {
        cmd: vec!["x".into()],
        user: "nosuch".into(),
        ..req
    };
    assert!(build_exec_process(container, &req, &root, &f.host).is_err());
}

#[test]
fn adapt_host_config_fills_dockers_defaults() {
    let mut hc = HostConfig {
        memory: 100,
        ..Default::default()
    };
    adapt_host_config(&mut hc);
    assert_eq!(hc.memory_swap, 200);
    assert_eq!(hc.shm_size, DEFAULT_SHM_SIZE);
    assert_eq!(hc.masked_paths.as_ref().unwrap().len(), 12);
    let mut hc = HostConfig {
        privileged: true,
        ..Default::default()
    };
    adapt_host_config(&mut hc);
    assert!(hc.masked_paths.is_none());
}

#[test]
fn filled_in_ipc_and_cgroupns_defaults_keep_private_namespaces() {
    for ipc in ["", "private", "shareable", "none"] {
        let mut f = Fixture::new();
        f.host_config.ipc_mode = ipc.into();
        f.host_config.cgroupns_mode = "private".into();
        let spec = f.build().unwrap();
        let ns = namespace_types(&spec);
        assert!(ns.contains(&LinuxNamespaceType::Ipc), "{ipc:?}: {ns:?}");
        assert!(ns.contains(&LinuxNamespaceType::Cgroup), "{ipc:?}: {ns:?}");
    }
}

#[test]
fn userns_remap_adds_a_user_namespace_with_its_mappings() {
    let map = crate::userns_remap::IdMap::from_ranges(
        "u:u",
        &[(100_000, 65536), (300_000, 10)],
        &[(200_000, 1000)],
        340,
    )
    .unwrap();
    let f = Fixture::new();
    let spec = f
        .build_with(&SpecExtras {
            userns: Some(&map),
            ..Default::default()
        })
        .unwrap();
    let user = namespaces(&spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .expect("a user namespace");
    assert_eq!(user.path(), &None, "a new one");
    let linux = spec.linux().as_ref().unwrap();
    let m = &linux.uid_mappings().as_ref().unwrap()[0];
    assert_eq!(
        (m.container_id(), m.host_id(), m.size()),
        (0, 100_000, 65536)
    );
    // Every subordinate range, container ids contiguous.
    let m = &linux.uid_mappings().as_ref().unwrap()[1];
    assert_eq!(
        (m.container_id(), m.host_id(), m.size()),
        (65536, 300_000, 10)
    );
    let m = &linux.gid_mappings().as_ref().unwrap()[0];
    assert_eq!(
        (m.container_id(), m.host_id(), m.size()),
        (0, 200_000, 1000)
    );
    // Unprivileged ping over the gids the namespace maps (the full range is refused there).
    let sysctl = linux.sysctl().as_ref().unwrap();
    assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 999");
    // Joining another container's namespaces joins its user namespace, without mappings.
    let spec = f
        .build_with(&SpecExtras {
            userns: Some(&map),
            userns_path: Some(Path::new("/proc/42/ns/user")),
            ..Default::default()
        })
        .unwrap();
    let user = namespaces(&spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .expect("a user namespace");
    assert_eq!(user.path().as_deref(), Some(Path::new("/proc/42/ns/user")));
    assert!(spec.linux().as_ref().unwrap().uid_mappings().is_none());
    // Without remapping: no user namespace.
    assert!(!namespace_types(&f.build().unwrap()).contains(&LinuxNamespaceType::User));
}
