//! berth beside Docker on one host (issue 18): Debian's dockerd 20.10 with its iptables
//! handling on turns on IP forwarding, sets the iptables FORWARD policy to DROP and relies on
//! br_netfilter, which sends bridged traffic through that chain. berth's containers must still
//! reach each other by name and be reachable on their published ports; and berthd turns on
//! IP forwarding itself (`--ip-forward`, on by default as with dockerd).
//!
//! Each test runs its daemons in network namespaces of its own (`ip netns add`), so the
//! DROP policy, Docker's chains and the sysctls never touch the host or the tests running
//! beside it; the guards put the namespace's firewall and sysctls back, stop the daemons and
//! delete the namespaces when the test ends, also when it fails.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::*;

const DOCKERD: &str = "/usr/sbin/dockerd";

/// A network namespace made for the test, removed with every process in it when dropped.
struct Netns {
    name: String,
    path: PathBuf,
    /// Commands (run inside) that put back what the test changed, run before the delete.
    restore: Vec<Vec<String>>,
}

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        let st = Command::new("ip").args(["netns", "add", name]).status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns add {name}");
        let ns = Netns {
            name: name.to_string(),
            path: PathBuf::from(format!("/run/netns/{name}")),
            restore: Vec::new(),
        };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside (`ip netns exec`: its own /sys view too).
    fn run(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ok(&out, &format!("{args:?} in {}", self.name));
        stdout(&out)
    }

    fn sysctl(&self, key: &str) -> String {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.ok(&["cat", &path]).trim().to_string()
    }

    /// Sets a sysctl inside, remembering its value to put back.
    fn set_sysctl(&mut self, key: &str, value: &str) {
        let old = self.sysctl(key);
        self.ok(&["sysctl", "-qw", &format!("{key}={value}")]);
        self.restore
            .push(vec!["sysctl".into(), "-qw".into(), format!("{key}={old}")]);
    }

    /// The processes whose network namespace this is.
    fn pids(&self) -> Vec<i32> {
        let Ok(ino) = std::fs::metadata(&self.path).map(|m| m.ino()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::metadata(e.path().join("ns/net")).is_ok_and(|m| m.ino() == ino) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for cmd in &self.restore {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let _ = self.run(&args);
        }
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Debian's dockerd, private (own roots, socket, bridge) but with its iptables handling on,
/// in a test namespace.
struct Dockerd {
    child: Option<Child>,
    root: PathBuf,
}

impl Dockerd {
    fn start(ns: &Netns, root: &Path) -> Dockerd {
        std::fs::create_dir_all(root).expect("dockerd root");
        // Its own pre-created bridge, as for every private dockerd (never --bridge=none).
        ns.ok(&["ip", "link", "add", "dkcx0", "type", "bridge"]);
        ns.ok(&["ip", "addr", "add", "10.253.77.1/24", "dev", "dkcx0"]);
        ns.ok(&["ip", "link", "set", "dkcx0", "up"]);
        let log = std::fs::File::create(root.join("dockerd.log")).expect("dockerd log");
        let sock = root.join("d.sock");
        // nsenter, not `ip netns exec`: that one also remounts /sys, hiding the cgroup
        // mounts dockerd needs.
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path.display()))
            .arg(DOCKERD)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--pidfile")
            .arg(root.join("d.pid"))
            .args(["-b", "dkcx0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            child: Some(child),
            root: root.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let exited = d
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_some()));
            assert!(
                !exited,
                "dockerd exited:\n{}",
                std::fs::read_to_string(root.join("dockerd.log")).unwrap_or_default()
            );
            let up = Command::new(DOCKER)
                .args(["-H", &format!("unix://{}", sock.display()), "version"])
                .env_remove("DOCKER_CONTEXT")
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up:\n{}",
                std::fs::read_to_string(root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // nsenter execs dockerd: this is its pid.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        unmount_under(&self.root);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn have(path: &str) -> bool {
    Path::new(path).exists()
}

fn host_forward_policy() -> String {
    let out = Command::new("iptables-nft")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .map(|o| stdout(&o))
        .unwrap_or_default();
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn berth_networks_work_beside_dockerds_iptables_rules() {
    if !is_root() || !have(DOCKERD) || !have("/usr/sbin/iptables-nft") {
        eprintln!("skipping: needs root, {DOCKERD} and iptables-nft");
        return;
    }
    let host_policy = host_forward_policy();
    let tag = std::process::id();
    let mut ns = Netns::new(&format!("bcx{tag}"));
    let client = Netns::new(&format!("bcxc{tag}"));
    // A host that does not forward yet: dockerd 20.10 turns forwarding on and, because it
    // did, sets the FORWARD policy to DROP.
    ns.set_sysctl("net.ipv4.ip_forward", "0");
    if Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        ns.set_sysctl("net.bridge.bridge-nf-call-iptables", "1");
    }
    // Whatever dockerd (and berthd) leave in the namespace's filter and nat tables is undone
    // too, policy included.
    for args in [
        &["-t", "filter", "-F"][..],
        &["-t", "filter", "-X"][..],
        &["-t", "nat", "-F"][..],
        &["-t", "nat", "-X"][..],
        &["-P", "FORWARD", "ACCEPT"][..],
    ] {
        let mut cmd = vec!["iptables-nft".to_string(), "-w".to_string()];
        cmd.extend(args.iter().map(|a| a.to_string()));
        ns.restore.push(cmd);
    }
    let droot = PathBuf::from(format!("/var/tmp/berth-test-dockerd-{tag}"));
    let docker = Dockerd::start(&ns, &droot);
    let forward = ns.ok(&["iptables-nft", "-w", "-S", "FORWARD"]);
    assert!(forward.starts_with("-P FORWARD DROP"), "{forward}");
    assert!(forward.contains("-j DOCKER-USER"), "{forward}");
    assert_eq!(ns.sysctl("net.ipv4.ip_forward"), "1");

    let d = Daemon::start_in_netns(&ns.path, &[]);
    d.load_busybox();
    let chain = format!("BERTH-FWD-{}", d.bridge);
    let user = ns.ok(&["iptables-nft", "-w", "-S", "DOCKER-USER"]);
    assert!(
        user.contains(&format!("-A DOCKER-USER -j {chain}")),
        "{user}"
    );
    let subnet = d.spare_subnet(0);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &subnet, "cx"]),
        "network create",
    );
    run_sleeper(&d, "cxa", &["--network", "cx"]);
    run_sleeper(&d, "cxb", &["--network", "cx"]);
    let ping = || {
        d.docker(&["exec", "cxa", "ping", "-c1", "-W2", "cxb"])
            .status
            .success()
    };
    assert!(ping(), "cxa reaches cxb by name through FORWARD DROP");

    // A published port, from a client outside (another namespace, through a veth): DNAT,
    // then forwarded into the bridge.
    assert_ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "cx",
            "-p",
            "18080:80",
            "busybox",
            "sh",
            "-c",
            "echo up > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ]),
        "run web",
    );
    // Both ends live in the test's namespaces only: the names cannot clash with the host's.
    ns.ok(&[
        "ip",
        "link",
        "add",
        "vcx0",
        "type",
        "veth",
        "peer",
        "name",
        "vcx1",
        "netns",
        &client.name,
    ]);
    ns.ok(&["ip", "addr", "add", "10.252.77.1/24", "dev", "vcx0"]);
    ns.ok(&["ip", "link", "set", "vcx0", "up"]);
    client.ok(&["ip", "addr", "add", "10.252.77.2/24", "dev", "vcx1"]);
    client.ok(&["ip", "link", "set", "vcx1", "up"]);
    let fetch = || {
        // curl: the host's static busybox wget crashes (Debian 12).
        let out = client.run(&[
            "curl",
            "-s",
            "-m",
            "3",
            "http://10.252.77.1:18080/index.html",
        ]);
        stdout(&out)
    };
    assert!(
        eventually(Duration::from_secs(10), || fetch() == "up\n"),
        "published port from outside: {:?}\n{}\n{}",
        fetch(),
        stdout(&ns.run(&["iptables-nft", "-w", "-L", "-v", "-n"])),
        stdout(&ns.run(&["nft", "list", "ruleset"]))
    );

    // Without berth's accept rule Docker's policy drops it all: the rule is what works.
    ns.ok(&["iptables-nft", "-w", "-D", "DOCKER-USER", "-j", &chain]);
    assert!(
        !ping(),
        "without the rule the DROP policy cuts a off from b"
    );
    assert_ne!(fetch(), "up\n", "and the published port");
    // berthd puts it back when its networks change.
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &d.spare_subnet(1), "cx2"]),
        "network create",
    );
    assert!(ping(), "back after the rules were refreshed");
    assert!(eventually(Duration::from_secs(5), || fetch() == "up\n"));
    // Docker's own chains and policy were left as Docker made them.
    let forward_after = ns.ok(&["iptables-nft", "-w", "-S", "FORWARD"]);
    assert_eq!(forward, forward_after);

    drop(d);
    drop(docker);
    drop(client);
    drop(ns);
    assert_eq!(
        host_forward_policy(),
        host_policy,
        "the host's FORWARD chain"
    );
}

#[test]
fn berthd_turns_on_ip_forwarding_unless_told_not_to() {
    if !is_root() {
        return;
    }
    let tag = std::process::id();
    for (i, (args, expect)) in [(&[][..], "1"), (&["--ip-forward=false"][..], "0")]
        .into_iter()
        .enumerate()
    {
        let mut ns = Netns::new(&format!("bfw{tag}{i}"));
        ns.set_sysctl("net.ipv4.ip_forward", "0");
        let d = Daemon::start_in_netns(&ns.path, args);
        assert_eq!(ns.sysctl("net.ipv4.ip_forward"), expect, "berthd {args:?}");
        let info = d.docker(&["info", "--format", "{{.IPv4Forwarding}}"]);
        assert_ok(&info, "info");
        assert_eq!(
            stdout(&info).trim(),
            if expect == "1" { "true" } else { "false" }
        );
        d.load_busybox();
        let out = d.docker(&["create", "busybox"]);
        assert_ok(&out, "create");
        let warned = stderr(&out).contains("IPv4 forwarding is disabled");
        assert_eq!(warned, expect == "0", "{}", stderr(&out));
        drop(d);
        drop(ns);
    }
}
