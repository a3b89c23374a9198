//! `--userns-remap` (issue 14): a root berthd that runs every container in a user namespace
//! mapped to a subordinate range. Checked from the host, as a user would: container processes
//! run under an unprivileged uid of the range, while inside they are root and image files keep
//! their owners; a root-owned host file bind-mounted in stays unwritable, a named volume is
//! writable; networking works on the default bridge and on a user network (by name);
//! `--userns=host` opts out (real root), `--privileged` needs it; `docker info` says `userns`.
//!
//! Skips with a printed reason where the host cannot run it (not root, no user namespaces).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use berth_tests::rootless::{proc_uid, User};
use berth_tests::*;

fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if !std::path::Path::new("/proc/self/ns/user").exists() {
        return Some("the kernel has no user namespaces".into());
    }
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max.trim() == "0" {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    for tool in ["useradd", "userdel", "usermod", "cp"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} is missing (Debian's passwd package)"));
        }
    }
    None
}

/// This file's tests change accounts and /etc/subuid: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn skip() -> bool {
    skip_when("userns-remap", missing_prerequisite())
}

fn ok(o: &std::process::Output, what: &str) -> String {
    ok_trimmed(o, what)
}

fn pid_of(d: &Daemon, name: &str) -> u32 {
    inspect(d, name, "{{.State.Pid}}")
        .parse()
        .expect("a running container's pid")
}

/// The whole everyday set on one daemon remapped to a throwaway user's range.
#[test]
fn remapped_containers_are_root_inside_and_unprivileged_outside() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::create();
    let d = Daemon::start_with_args(&["--userns-remap", &u.name]);
    let _c = Cleanup(
        &d,
        vec!["rm-sleeper", "rm-hostns", "rm-httpd", "rm-web"],
        vec!["rm-net"],
    );

    let opts = ok(
        &d.docker(&["info", "--format", "{{json .SecurityOptions}}"]),
        "docker info",
    );
    assert!(opts.contains("name=userns"), "{opts}");
    d.load_busybox();

    // Root inside, root-owned image files inside.
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "id -u; stat -c %u /bin/busybox; stat -c %u /etc/hosts",
        ]),
        "docker run id",
    );
    assert_eq!(
        out, "0\n0\n0",
        "root inside, image and /etc files owned by root"
    );
    // The layers reach the remapped root through idmapped mounts where the kernel allows
    // them, else as copies with shifted owners: one or the other is there.
    // dockerd's layout: the remapped daemon's data is `<data-root>/<uid>.<gid>`.
    let maps = d
        .data_root
        .join(format!("{0}.{0}/remap/{0}.{0}", u.sub_start));
    let idmapped = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!("{}/idmapped/", maps.display()));
    let copies = std::fs::read_dir(&maps)
        .map(|r| r.flatten().any(|e| e.file_name() != "idmapped"))
        .unwrap_or(false);
    eprintln!("layers: idmapped mounts {idmapped}, shifted copies {copies}");
    assert!(
        idmapped || copies,
        "no remapped layers under {}",
        maps.display()
    );

    // From the host, the container's processes are the range's first uid, not root.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "rm-sleeper",
            "busybox",
            "sleep",
            "300",
        ]),
        "docker run -d",
    );
    let pid = pid_of(&d, "rm-sleeper");
    let uid = proc_uid(pid).expect("container process status");
    assert_eq!(uid, u.sub_start, "container root is the range's first uid");
    assert_ne!(uid, 0);
    assert_eq!(
        ok(&d.docker(&["exec", "rm-sleeper", "id", "-u"]), "exec id"),
        "0"
    );
    assert_eq!(inspect(&d, "rm-sleeper", "{{.HostConfig.UsernsMode}}"), "");
    // exec'd processes are in the container's user namespace too, as root or as another user:
    // what they write lands on the host under the range's ids.
    ok(
        &d.docker(&["exec", "rm-sleeper", "touch", "/by-exec"]),
        "exec touch",
    );
    ok(
        &d.docker(&[
            "exec",
            "-u",
            "1000:1000",
            "rm-sleeper",
            "touch",
            "/tmp/by-1000",
        ]),
        "exec -u 1000 touch",
    );
    assert_eq!(
        ok(
            &d.docker(&["exec", "-u", "1000", "rm-sleeper", "id", "-u"]),
            "exec -u 1000 id"
        ),
        "1000"
    );
    let upper =
        std::path::PathBuf::from(inspect(&d, "rm-sleeper", "{{.GraphDriver.Data.UpperDir}}"));
    let owner = |p: &str| {
        let md = std::fs::metadata(upper.join(p)).expect("a file an exec wrote");
        (md.uid(), md.gid())
    };
    assert_eq!(owner("by-exec"), (u.sub_start, u.sub_start), "exec as root");
    assert_eq!(
        owner("tmp/by-1000"),
        (u.sub_start + 1000, u.sub_start + 1000),
        "exec as uid 1000"
    );

    // docker cp into the container: the files belong to container root (the range's first
    // ids on the host), as with dockerd.
    let src = d.root.join("to-copy");
    std::fs::write(&src, "copied\n").expect("a file to copy");
    ok(
        &d.docker(&["cp", src.to_str().expect("utf8"), "rm-sleeper:/copied"]),
        "docker cp into the container",
    );
    assert_eq!(owner("copied"), (u.sub_start, u.sub_start), "docker cp");
    assert_eq!(
        ok(
            &d.docker(&["exec", "rm-sleeper", "stat", "-c", "%u:%g", "/copied"]),
            "stat inside"
        ),
        "0:0"
    );
    // --pid container: joins the target's PID namespace (and so its user namespace).
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "--pid",
            "container:rm-sleeper",
            "busybox",
            "ps",
        ]),
        "run --pid container:",
    );
    assert!(out.contains("sleep 300"), "{out}");
    // A working directory the daemon creates belongs to container root.
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "-w",
            "/new/work",
            "busybox",
            "sh",
            "-c",
            "stat -c %u /new /new/work && touch here",
        ]),
        "run -w a new directory",
    );
    assert_eq!(out, "0\n0");
    // docker commit writes the container's ids, not the host's: the files are root's in the
    // new image, remapped or not.
    ok(
        &d.docker(&["commit", "rm-sleeper", "rm-committed"]),
        "docker commit",
    );
    for userns in ["--userns=", "--userns=host"] {
        let out = ok(
            &d.docker(&[
                "run",
                "--rm",
                userns,
                "rm-committed",
                "stat",
                "-c",
                "%u:%g",
                "/by-exec",
                "/copied",
            ]),
            "run the committed image",
        );
        assert_eq!(out, "0:0\n0:0", "{userns}");
    }
    ok(
        &d.docker(&["rmi", "rm-committed"]),
        "rmi the committed image",
    );

    // A root-owned host file (0644) bind-mounted in is not writable by container root.
    let host_file = d.root.join("root-owned");
    std::fs::write(&host_file, "original\n").expect("host file");
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bind = format!("{}:/hostfile", host_file.display());
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /hostfile && echo changed > /hostfile",
    ]);
    assert!(
        !out.status.success(),
        "container root wrote a root-owned host file: {}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("original"), "the file is readable");
    assert_eq!(
        std::fs::read_to_string(&host_file).unwrap(),
        "original\n",
        "the host file is unchanged"
    );

    // A named volume belongs to container root: writable inside, the range's uid outside.
    ok(
        &d.docker(&["volume", "create", "rm-vol"]),
        "docker volume create",
    );
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "rm-vol:/data",
            "busybox",
            "sh",
            "-c",
            "echo hi > /data/f && cat /data/f",
        ]),
        "write to a named volume",
    );
    assert_eq!(out, "hi");
    let data = ok(
        &d.docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", "rm-vol"]),
        "volume inspect",
    );
    let owner = std::fs::metadata(std::path::Path::new(&data).join("f"))
        .expect("the volume's file on the host")
        .uid();
    assert_eq!(owner, u.sub_start, "files written by container root");

    // The default bridge: the gateway answers.
    let gateway = d.bip.split('/').next().expect("bip").to_string();
    let out = d.docker(&[
        "run", "--rm", "busybox", "ping", "-c", "1", "-W", "5", &gateway,
    ]);
    assert_ok(&out, "ping the default bridge's gateway");
    let out = ok(
        &d.docker(&["run", "--rm", "busybox", "cat", "/etc/hosts"]),
        "cat /etc/hosts",
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&d.bip[..d.bip.rfind('.').unwrap()])),
        "the container's address is in its /etc/hosts:\n{out}"
    );

    // A published port answers on the host's loopback.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "rm-httpd",
            "-p",
            &publish,
            "busybox",
            "sh",
            "-c",
            "echo remapped > /index.html && httpd -f -p 80 -h /",
        ]),
        "run a published httpd",
    );
    let got = eventually(std::time::Duration::from_secs(10), || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("remapped")
    });
    assert!(got, "the published port did not answer");

    // A user network: one container reaches another by name (the embedded DNS).
    let subnet = d.spare_subnet(0);
    ok(
        &d.docker(&["network", "create", "--subnet", &subnet, "rm-net"]),
        "network create",
    );
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "rm-web",
            "--network",
            "rm-net",
            "busybox",
            "sleep",
            "300",
        ]),
        "run on the user network",
    );
    assert!(proc_uid(pid_of(&d, "rm-web")).is_some_and(|u2| u2 == u.sub_start));
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "rm-net",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "rm-web",
    ]);
    assert_ok(&out, "ping another container by name");
    // network connect to a running remapped container works through its pinned namespace.
    ok(
        &d.docker(&["network", "connect", "rm-net", "rm-sleeper"]),
        "network connect",
    );
    let out = ok(
        &d.docker(&["exec", "rm-sleeper", "ping", "-c", "1", "-W", "5", "rm-web"]),
        "ping after connect",
    );
    assert!(out.contains("1 packets received"), "{out}");

    // `--userns=host` opts out: real root.
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--userns=host",
            "--name",
            "rm-hostns",
            "busybox",
            "sleep",
            "300",
        ]),
        "run --userns=host",
    );
    assert_eq!(proc_uid(pid_of(&d, "rm-hostns")), Some(0));
    // `--network container:` joins the target's user namespace with its network namespace;
    // a target outside any (`--userns=host`) cannot be joined.
    let ip = inspect(&d, "rm-sleeper", "{{.NetworkSettings.IPAddress}}");
    let out = ok(
        &d.docker(&[
            "run",
            "--rm",
            "--network",
            "container:rm-sleeper",
            "busybox",
            "sh",
            "-c",
            "id -u; ip -4 addr show eth0",
        ]),
        "run --network container:",
    );
    assert!(out.starts_with("0\n") && out.contains(&ip), "{out}");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:rm-hostns",
        "busybox",
        "true",
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("--userns=host"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        inspect(&d, "rm-hostns", "{{.HostConfig.UsernsMode}}"),
        "host"
    );

    // dockerd's rules: --privileged and the host's PID or network namespace need it.
    for (args, msg) in [
        (
            vec!["--privileged"],
            "privileged mode is incompatible with user namespaces",
        ),
        (
            vec!["--pid=host"],
            "cannot share the host PID namespace when user namespaces are enabled",
        ),
        (
            vec!["--network=host"],
            "cannot share the host's network namespace when user namespaces are enabled",
        ),
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(args.iter().copied());
        full.extend(["busybox", "true"]);
        let out = d.docker(&full);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--privileged",
        "--userns=host",
        "busybox",
        "true",
    ]);
    assert_ok(&out, "--privileged --userns=host");

    // Removing the image takes its remapped layers along (mounts or copies).
    ok(
        &d.docker(&["rm", "-f", "rm-sleeper", "rm-hostns", "rm-web", "rm-httpd"]),
        "rm -f",
    );
    ok(&d.docker(&["rmi", "busybox"]), "rmi");
    let left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!("{}/idmapped/", maps.display()));
    assert!(!left, "an idmapped layer mount outlived its image");
    let copies = std::fs::read_dir(&maps)
        .map(|r| r.flatten().filter(|e| e.file_name() != "idmapped").count())
        .unwrap_or(0);
    assert_eq!(copies, 0, "a layer copy outlived its image");
}

/// A second subordinate range of a test user (uids and gids), removed on drop.
struct ExtraRange {
    user: String,
    range: String,
}

impl ExtraRange {
    fn add(user: &str, start: u32, count: u32) -> ExtraRange {
        let range = format!("{start}-{}", start + count - 1);
        let st = Command::new("usermod")
            .args(["--add-subuids", &range, "--add-subgids", &range, user])
            .status()
            .expect("usermod");
        assert!(st.success(), "usermod --add-subuids {range} {user}");
        ExtraRange {
            user: user.to_string(),
            range,
        }
    }
}

impl Drop for ExtraRange {
    fn drop(&mut self) {
        let _ = Command::new("usermod")
            .args([
                "--del-subuids",
                &self.range,
                "--del-subgids",
                &self.range,
                &self.user,
            ])
            .stderr(Stdio::null())
            .status();
    }
}

/// A user with two subordinate ranges gets both, as with dockerd: container ids 0..65536 are
/// the first range, the ids after it the second one.
#[test]
fn every_subordinate_range_is_mapped() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::create();
    // Far above the test users' blocks (2000000 + n * 65536), one per test process.
    let second = 3_500_000_000 + (std::process::id() % 4096) * 1000;
    let _extra = ExtraRange::add(&u.name, second, 1000);
    let d = Daemon::start_with_args(&["--userns-remap", &u.name]);
    let _c = Cleanup(&d, vec!["two-root", "two-second"], vec![]);
    d.load_busybox();
    for (name, user, host) in [
        ("two-root", "0:0", u.sub_start),
        ("two-second", "65537:65537", second + 1),
    ] {
        ok(
            &d.docker(&[
                "run", "-d", "--name", name, "-u", user, "busybox", "sleep", "300",
            ]),
            "docker run -d -u",
        );
        assert_eq!(
            proc_uid(pid_of(&d, name)),
            Some(host),
            "{name}: container uid {user} on the host"
        );
        let id = ok(&d.docker(&["exec", name, "id", "-u"]), "exec id -u");
        assert_eq!(format!("{id}:{id}"), user);
    }
    // The map shows both lines, contiguous inside.
    let map = std::fs::read_to_string(format!("/proc/{}/uid_map", pid_of(&d, "two-second")))
        .expect("uid_map");
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let first = u.sub_start.to_string();
    let second = second.to_string();
    assert_eq!(
        lines,
        vec![
            vec!["0", first.as_str(), "65536"],
            vec!["65536", second.as_str(), "1000"]
        ]
    );
}

/// dockerd's layout: a remapped daemon keeps everything in `<data-root>/<uid>.<gid>`, so it and
/// a plain daemon on the same data root never see each other's containers, and both work;
/// the data root and the mapping's directory are 0710, group the remapped root's.
#[test]
fn a_remapped_daemon_and_a_plain_one_share_a_data_root_apart() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::create();
    let remapped = Daemon::start_with_args(&["--userns-remap", &u.name]);
    let _cr = Cleanup(&remapped, vec!["split-remapped"], vec![]);
    let plain = Daemon::start_sharing_data(&remapped, &[]);
    let _cp = Cleanup(&plain, vec!["split-plain"], vec![]);
    for (d, name) in [(&remapped, "split-remapped"), (&plain, "split-plain")] {
        d.load_busybox();
        ok(
            &d.docker(&["run", "-d", "--name", name, "busybox", "sleep", "300"]),
            "docker run -d",
        );
    }
    for (d, name) in [(&remapped, "split-remapped"), (&plain, "split-plain")] {
        let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]), "ps -a");
        assert_eq!(names, name, "each daemon sees only its own containers");
    }
    assert_eq!(
        proc_uid(pid_of(&remapped, "split-remapped")),
        Some(u.sub_start)
    );
    assert_eq!(proc_uid(pid_of(&plain, "split-plain")), Some(0));
    let dir = format!("{0}.{0}", u.sub_start);
    let root_dir = ok(
        &remapped.docker(&["info", "--format", "{{.DockerRootDir}}"]),
        "docker info",
    );
    assert_eq!(
        std::path::Path::new(&root_dir),
        remapped.data_root.join(&dir)
    );
    for p in [remapped.data_root.clone(), remapped.data_root.join(&dir)] {
        let md = std::fs::metadata(&p).expect("data root");
        assert_eq!(
            (md.mode() & 0o7777, md.uid(), md.gid()),
            (0o710, 0, u.sub_start),
            "{}",
            p.display()
        );
    }
    // Both keep working side by side.
    for (d, name) in [(&remapped, "split-remapped"), (&plain, "split-plain")] {
        assert_eq!(
            ok(&d.docker(&["exec", name, "id", "-u"]), "exec id -u"),
            "0"
        );
        ok(&d.docker(&["rm", "-f", name]), "rm -f");
    }
}

/// `docker build` (the legacy builder) on a remapped daemon: RUN steps run in the same user
/// namespace mapping as containers (root inside, the range's first uid on the host), see
/// what COPY wrote with the owners it gave, and the image's layers carry container ids, so a
/// container run from it with `--userns=host` sees the same owners.
#[test]
fn build_steps_run_remapped() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::create();
    let d = Daemon::start_with_args(&["--userns-remap", &u.name]);
    let _c = Cleanup(&d, vec![], vec![]);
    d.load_busybox();
    let ctx = d.root.join("build-ctx");
    std::fs::create_dir_all(&ctx).expect("context dir");
    std::fs::write(ctx.join("f"), "copied\n").expect("context file");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         COPY --chown=1000:1000 f /f\n\
         COPY f /g\n\
         RUN echo \"stat=$(stat -c %u:%g /f /g | tr '\\n' ' ')id=$(id -u)\" && \
             echo \"map=$(cat /proc/self/uid_map | head -n1 | tr -s ' ')\" && \
             touch /by-run && chown 1000:1000 /f && mkdir /dir && chown 7:8 /dir\n\
         RUN --mount=type=cache,target=/cache touch /cache/x && echo cache-writable\n",
    )
    .expect("Dockerfile");
    let out = d
        .docker_command(&["build", "-t", "remapped-build", ctx.to_str().expect("utf8")])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    let text = ok(&out, "docker build");
    assert!(text.contains("stat=1000:1000 0:0 id=0"), "{text}");
    // A cache mount belongs to the step's root.
    assert!(text.contains("cache-writable"), "{text}");
    let map = format!("map= 0 {} 65536", u.sub_start);
    assert!(
        text.contains(&map) || text.contains(&map.replacen("map= ", "map=", 1)),
        "the RUN step's root is {} on the host: {text}",
        u.sub_start
    );
    // A build on the host's network works too (its steps run again: no cache).
    let out = d
        .docker_command(&[
            "build",
            "--no-cache",
            "--network",
            "host",
            "-t",
            "remapped-build-host",
            ctx.to_str().expect("utf8"),
        ])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build --network host");
    ok(&out, "docker build --network host");
    // The layers hold container ids: the same owners without remapping, and with it.
    let owners = "stat -c %u:%g /f /g /by-run /dir";
    let want = "1000:1000\n0:0\n0:0\n7:8";
    assert_eq!(
        ok(
            &d.docker(&[
                "run",
                "--rm",
                "--userns=host",
                "remapped-build",
                "sh",
                "-c",
                owners
            ]),
            "run --userns=host"
        ),
        want
    );
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", "remapped-build", "sh", "-c", owners]),
            "run remapped"
        ),
        want
    );
}

/// The copying storage driver (`--storage-driver vfs`) under remapping: the container's copy
/// of its layers is made from the mapping's views, so image files keep their owners inside
/// and container root is the range's first uid on the host.
#[test]
fn remapping_works_on_the_vfs_driver() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::create();
    let d = Daemon::start_with_args(&["--userns-remap", &u.name, "--storage-driver", "vfs"]);
    let _c = Cleanup(&d, vec!["vfs-sleeper"], vec![]);
    d.load_busybox();
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "vfs-sleeper",
            "busybox",
            "sleep",
            "300",
        ]),
        "docker run -d",
    );
    assert_eq!(proc_uid(pid_of(&d, "vfs-sleeper")), Some(u.sub_start));
    assert_eq!(
        ok(
            &d.docker(&[
                "exec",
                "vfs-sleeper",
                "sh",
                "-c",
                "id -u; stat -c %u:%g /bin/busybox; touch /new && stat -c %u /new",
            ]),
            "exec"
        ),
        "0\n0:0\n0"
    );
}

/// A user the test must remove, unless it existed before (e.g. `berthremap` from an earlier
/// run on this machine): its processes first, then its ranges and the account.
struct RemoveUserAfter {
    name: &'static str,
    existed: bool,
}

impl Drop for RemoveUserAfter {
    fn drop(&mut self) {
        if self.existed {
            return;
        }
        // usermod and userdel lock the account files (other tests change them too).
        for (file, flag) in [
            ("/etc/subuid", "--del-subuids"),
            ("/etc/subgid", "--del-subgids"),
        ] {
            let prefix = format!("{}:", self.name);
            let ranges: Vec<String> = std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .filter_map(|r| {
                    let (start, count) = r.split_once(':')?;
                    let (start, count): (u64, u64) =
                        (start.trim().parse().ok()?, count.trim().parse().ok()?);
                    Some(format!("{start}-{}", start + count.max(1) - 1))
                })
                .collect();
            for r in ranges {
                let _ = Command::new("usermod")
                    .args([flag, &r, self.name])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = Command::new("userdel")
            .arg(self.name)
            .stderr(Stdio::null())
            .status();
    }
}

/// `--userns-remap=default` makes the `berthremap` user and its ranges when they are missing,
/// and its containers run in that range.
#[test]
fn default_makes_berthremap_with_its_ranges() {
    if skip() {
        return;
    }
    let _serial = serial();
    let existed = nix::unistd::User::from_name("berthremap")
        .ok()
        .flatten()
        .is_some();
    let _user = RemoveUserAfter {
        name: "berthremap",
        existed,
    };
    // This daemon copies layers with shifted owners (the fallback where idmapped mounts are
    // not available), whatever the kernel can do.
    let d = Daemon::start_with_env(
        &["--userns-remap=default"],
        &[("BERTHD_USERNS_REMAP_COPY", "1")],
    );
    let _c = Cleanup(&d, vec!["def-sleeper"], vec![]);
    let pw = nix::unistd::User::from_name("berthremap")
        .ok()
        .flatten()
        .expect("berthd made the user berthremap");
    assert_ne!(pw.uid.as_raw(), 0);
    let line = std::fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("berthremap:"))
        .map(str::to_string)
        .expect("a subuid range for berthremap");
    let start: u32 = line.split(':').nth(1).unwrap().parse().unwrap();
    assert!(
        std::fs::read_to_string("/etc/subgid")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("berthremap:")),
        "a subgid range for berthremap"
    );
    d.load_busybox();
    ok(
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "def-sleeper",
            "busybox",
            "sleep",
            "300",
        ]),
        "docker run -d",
    );
    assert_eq!(proc_uid(pid_of(&d, "def-sleeper")), Some(start));
    assert_eq!(
        ok(&d.docker(&["exec", "def-sleeper", "id", "-u"]), "exec id"),
        "0"
    );
    let out = ok(
        &d.docker(&[
            "exec",
            "def-sleeper",
            "stat",
            "-c",
            "%u:%g",
            "/bin/busybox",
            "/",
        ]),
        "stat inside",
    );
    assert_eq!(out, "0:0\n0:0", "image files keep their owners inside");
    // The copies are there, each layer's files owned by the range's first ids on the host,
    // and no idmapped mount.
    let gid_start: u32 = std::fs::read_to_string("/etc/subgid")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("berthremap:"))
        .and_then(|l| l.split(':').nth(1).and_then(|n| n.parse().ok()))
        .expect("berthremap's subgid range");
    let maps = d
        .data_root
        .join(format!("{start}.{gid_start}/remap/{start}.{gid_start}"));
    let copies: Vec<_> = std::fs::read_dir(&maps)
        .expect("the mapping's directory")
        .flatten()
        .filter(|e| e.file_name() != "idmapped")
        .map(|e| e.path())
        .collect();
    assert!(!copies.is_empty(), "no copies under {}", maps.display());
    for c in &copies {
        let md = std::fs::metadata(c.join("bin/busybox")).expect("busybox in the copy");
        assert_eq!((md.uid(), md.gid()), (start, gid_start), "{}", c.display());
    }
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!("{}/idmapped/", maps.display())));
    // Removing the image removes its copies.
    ok(&d.docker(&["rm", "-f", "def-sleeper"]), "rm");
    ok(&d.docker(&["rmi", "busybox"]), "rmi");
    for c in &copies {
        assert!(!c.exists(), "{} outlived its layer", c.display());
    }
}

/// A user without subordinate ranges is refused at start with a clear message.
#[test]
fn a_user_without_ranges_is_refused() {
    if skip() {
        return;
    }
    let _serial = serial();
    let u = User::without_ranges();
    let out = Command::new(bin("berthd"))
        .args(["--userns-remap", &u.name, "--data-root", "/nonexistent/x"])
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} has no subordinate id range", u.name)),
        "{err}"
    );
}
