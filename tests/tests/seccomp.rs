//! Precompiled seccomp filters (issue 2's start-time work): containers and exec processes end
//! up with exactly Docker's capabilities and one seccomp filter, whichever path loaded it.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use berth_tests::*;

/// Docker's default capability sets as `grep Cap /proc/N/status` prints them for root.
const DOCKER_DEFAULT_CAPS: &str = "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n";

const STATUS: &str = "grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/1/status";

fn run_sh(d: &Daemon, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let out = d.docker(&args);
    assert_ok(&out, script);
    stdout(&out)
}

fn caps_of(status: &str) -> String {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn exec_root(d: &Daemon) -> PathBuf {
    d.root.join("exec")
}

fn cache_files(d: &Daemon) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(exec_root(d).join("seccomp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether the container's shim handed libcontainer its own seccomp-less copy of the spec.
fn fast_path(d: &Daemon, id: &str) -> bool {
    exec_root(d)
        .join("containers")
        .join(id)
        .join("bundle/config.json")
        .exists()
}

fn profile_file(d: &Daemon, name: &str, body: &str) -> String {
    let p = d.root.join(name);
    std::fs::write(&p, body).expect("write profile");
    p.to_string_lossy().into_owned()
}

struct Rm<'a>(&'a Daemon, String);

impl Drop for Rm<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["rm", "-f", &self.1]);
    }
}

fn run_d<'a>(d: &'a Daemon, extra: &[&str]) -> Rm<'a> {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "300"]);
    let out = d.docker(&args);
    assert_ok(&out, "run -d");
    Rm(d, stdout(&out).trim().to_string())
}

#[test]
fn default_container_and_exec_have_dockers_caps_and_one_filter() {
    let d = Daemon::start();
    d.load_busybox();
    assert!(cache_files(&d).is_empty());

    let out = run_sh(&d, &[], STATUS);
    assert_eq!(caps_of(&out), DOCKER_DEFAULT_CAPS, "{out}");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0\n"), "{out}");

    // The program was compiled once and cached under the exec root.
    let files = cache_files(&d);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].extension().is_some_and(|e| e == "bpf"),
        "{files:?}"
    );
    let before = std::fs::metadata(&files[0]).expect("cache file");
    assert!(before.len() > 0 && before.len().is_multiple_of(8));

    // A second container reuses it as it is, and so does an exec.
    let c = run_d(&d, &[]);
    assert!(
        fast_path(&d, &c.1),
        "default profile takes the precompiled path"
    );
    assert_eq!(cache_files(&d), files);
    let after = std::fs::metadata(&files[0]).expect("cache file");
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec()),
        "cache file reused, not rewritten"
    );
    let out = d.docker(&["exec", &c.1, "sh", "-c", STATUS]);
    assert_ok(&out, "exec status of pid 1");
    assert_eq!(caps_of(&stdout(&out)), DOCKER_DEFAULT_CAPS);
    let out = d.docker(&[
        "exec",
        &c.1,
        "grep",
        "-E",
        "^(Cap|Seccomp)",
        "/proc/self/status",
    ]);
    assert_ok(&out, "exec status of itself");
    let s = stdout(&out);
    assert_eq!(caps_of(&s), DOCKER_DEFAULT_CAPS, "exec process: {s}");
    assert!(s.contains("Seccomp:\t2\n"), "exec is filtered: {s}");
    assert!(s.contains("Seccomp_filters:\t1\n"), "{s}");

    // What the default profile denies stays denied, in the container and in an exec.
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!out.status.success(), "unshare -U denied");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["exec", &c.1, "unshare", "-U", "true"]);
    assert!(!out.status.success(), "unshare -U denied in exec");
    let out = d.docker(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp",
    ]);
    assert!(!out.status.success(), "mount denied");
    // ... and the same call works without the filter: the denial is the filter's.
    let out = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
    assert_ok(&out, "unshare -U unconfined");

    // An exec as another user: no capabilities left after its exec, filter on.
    let out = d.docker(&[
        "exec",
        "-u",
        "1000",
        &c.1,
        "grep",
        "-E",
        "^(Cap|Seccomp)",
        "/proc/self/status",
    ]);
    assert_ok(&out, "exec -u 1000");
    let s = stdout(&out);
    assert!(s.contains("CapEff:\t0000000000000000\n"), "{s}");
    assert!(s.contains("CapPrm:\t0000000000000000\n"), "{s}");
    assert!(s.contains("CapBnd:\t00000000a80425fb\n"), "{s}");
    assert!(s.contains("Seccomp_filters:\t1\n"), "{s}");

    // `docker exec --privileged`: the whole bounding set, still filtered (as runc does).
    let out = d.docker(&[
        "exec",
        "--privileged",
        &c.1,
        "grep",
        "-E",
        "^(CapEff|Seccomp)",
        "/proc/self/status",
    ]);
    assert_ok(&out, "exec --privileged");
    let s = stdout(&out);
    assert!(s.contains("Seccomp:\t2\n"), "{s}");
    assert!(!s.contains("CapEff:\t00000000a80425fb"), "{s}");
}

#[test]
fn capability_and_privilege_variants() {
    let d = Daemon::start();
    d.load_busybox();

    // --cap-add SYS_ADMIN: kept (not dropped with the helper), and its calls are allowed.
    let out = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN"],
        &format!("{STATUS}; unshare -n true && echo unshare-ok; mount -t tmpfs none /tmp && echo mount-ok"),
    );
    assert!(out.contains("CapEff:\t00000000a82425fb\n"), "{out}");
    assert!(out.contains("CapPrm:\t00000000a82425fb\n"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a82425fb\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    assert!(
        out.contains("unshare-ok") && out.contains("mount-ok"),
        "{out}"
    );
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-n", "true"]);
    assert!(!out.status.success(), "unshare -n denied by default");

    // --cap-drop ALL: nothing left anywhere, filter on.
    let out = run_sh(&d, &["--cap-drop", "ALL"], STATUS);
    assert_eq!(
        caps_of(&out),
        DOCKER_DEFAULT_CAPS.replace("00000000a80425fb", "0000000000000000"),
        "{out}"
    );
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");

    // A non-root user: no effective/permitted capabilities after exec, bounding as Docker's.
    let out = run_sh(
        &d,
        &["--user", "1000"],
        "id -u; grep -E '^(Cap|Seccomp)' /proc/self/status",
    );
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000\n"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000000\n"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");

    // no-new-privileges.
    let out = run_sh(&d, &["--security-opt", "no-new-privileges"], STATUS);
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    assert_eq!(caps_of(&out), DOCKER_DEFAULT_CAPS, "{out}");

    // --privileged: no filter, every capability of the host's bounding set.
    let out = run_sh(&d, &["--privileged"], STATUS);
    assert!(out.contains("Seccomp:\t0\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t0\n"), "{out}");
    let host = std::fs::read_to_string("/proc/self/status").expect("status");
    let bnd = host
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .expect("CapBnd")
        .to_string();
    assert!(
        out.contains(&bnd.replace("CapBnd", "CapEff")),
        "{out}\n{bnd}"
    );
    let files = cache_files(&d);
    assert!(!files.is_empty(), "{files:?}");
}

#[test]
fn custom_profiles() {
    let d = Daemon::start();
    d.load_busybox();

    // Blocks mkdir, allows everything else (capset included): precompiled path.
    let no_mkdir = profile_file(
        &d,
        "no-mkdir.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    );
    let opt = format!("seccomp={no_mkdir}");
    let out = run_sh(
        &d,
        &["--security-opt", &opt],
        &format!(
            "{STATUS}; mkdir /tmp/x 2>&1 || echo mkdir-refused; touch /tmp/y && echo touch-ok"
        ),
    );
    assert!(out.contains("mkdir-refused"), "{out}");
    assert!(out.contains("touch-ok"), "{out}");
    assert_eq!(caps_of(&out), DOCKER_DEFAULT_CAPS, "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    let c = run_d(&d, &["--security-opt", &opt]);
    assert!(fast_path(&d, &c.1));
    let out = d.docker(&["exec", &c.1, "mkdir", "/tmp/z"]);
    assert!(!out.status.success(), "mkdir refused in exec too");
    drop(c);

    // capset may be refused (here only for a NULL header, which libcontainer never passes):
    // the shim cannot drop its helper capability under that filter and leaves the profile to
    // libcontainer, which still runs the container with it.
    let capset_cond = profile_file(
        &d,
        "capset.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["capset"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    );
    let opt = format!("seccomp={capset_cond}");
    let c = run_d(&d, &["--security-opt", &opt]);
    assert!(
        !fast_path(&d, &c.1),
        "capset not certainly allowed: fallback"
    );
    let out = d.docker(&["exec", &c.1, "sh", "-c", STATUS]);
    assert_ok(&out, "exec in fallback container");
    let s = stdout(&out);
    assert_eq!(caps_of(&s), DOCKER_DEFAULT_CAPS, "{s}");
    assert!(s.contains("Seccomp_filters:\t1\n"), "{s}");
    // The exec itself: the container's filter (libcontainer's exec path would leave it out).
    let out = d.docker(&[
        "exec",
        &c.1,
        "grep",
        "-E",
        "^(Cap|Seccomp)",
        "/proc/self/status",
    ]);
    assert_ok(&out, "exec status in fallback container");
    let s = stdout(&out);
    assert_eq!(caps_of(&s), DOCKER_DEFAULT_CAPS, "{s}");
    assert!(s.contains("Seccomp_filters:\t1\n"), "{s}");
    let out = d.docker(&[
        "exec",
        &c.1,
        "sh",
        "-c",
        "mkdir /tmp/q 2>&1 || echo refused",
    ]);
    assert!(stdout(&out).contains("refused"), "{}", stdout(&out));
    drop(c);

    // A profile refusing capset outright, with no-new-privileges: no capability games
    // needed, the precompiled path loads it after libcontainer's own capset calls.
    let capset_no = profile_file(
        &d,
        "capset-no.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["capset"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    );
    let opt = format!("seccomp={capset_no}");
    let out = run_sh(
        &d,
        &[
            "--security-opt",
            &opt,
            "--security-opt",
            "no-new-privileges",
        ],
        STATUS,
    );
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.contains("Seccomp_filters:\t1\n"), "{out}");
    assert_eq!(caps_of(&out), DOCKER_DEFAULT_CAPS, "{out}");
}

#[test]
fn a_filter_that_cannot_be_loaded_fails_the_start() {
    let d = Daemon::start();
    d.load_busybox();
    let out = run_sh(&d, &[], "true");
    assert_eq!(out, "");
    let files = cache_files(&d);
    assert_eq!(files.len(), 1, "{files:?}");
    // A cache file of the right shape that the kernel refuses (no return instruction).
    std::fs::write(&files[0], [0xffu8; 16]).expect("corrupt cache file");
    let out = d.docker(&["run", "--name", "bad", "busybox", "echo", "ran"]);
    assert!(!out.status.success(), "start must fail");
    eprintln!("start error: {}", stderr(&out));
    assert!(!stdout(&out).contains("ran"), "{}", stdout(&out));
    assert!(stderr(&out).contains("seccomp"), "{}", stderr(&out));
    let out = d.docker(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "bad"]);
    assert_eq!(stdout(&out).trim(), "false 0", "nothing left running");
    assert_ok(&d.docker(&["rm", "-f", "bad"]), "rm");
    // Removing the file gets it compiled again.
    std::fs::remove_file(&files[0]).expect("remove cache file");
    let out = run_sh(&d, &[], "grep Seccomp_filters /proc/1/status");
    assert_eq!(out, "Seccomp_filters:\t1\n");
    assert_eq!(cache_files(&d), files);
}
