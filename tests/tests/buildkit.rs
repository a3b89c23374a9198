//! Issue 15: modern (BuildKit-syntax) Dockerfiles on berth's own builder, driven with
//! `berth build` and the docker CLI's legacy path (`DOCKER_BUILDKIT=0 docker build`):
//! `RUN --mount` (cache, bind, tmpfs, secret, ssh), `RUN --network/--security`,
//! `COPY --link/--parents/--exclude`, `ADD <url>`/git/`--checksum`, `# syntax=`, parallel
//! stages, named contexts, `--output`, and refusals that name what is not supported.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::*;

/// A build context directory under the daemon's test root (removed with it).
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("context dir");
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    }
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The docker CLI with the legacy builder, as docker CLI 28 without buildx uses it.
fn legacy(d: &Daemon) -> Command {
    let mut c = Command::new("/usr/local/bin/docker");
    c.env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    c
}

fn legacy_build(d: &Daemon, args: &[&str]) -> Output {
    legacy(d)
        .arg("build")
        .args(args)
        .output()
        .expect("docker build")
}

fn run_in(d: &Daemon, image: &str, script: &str) -> String {
    let out = d.docker(&["run", "--rm", image, "sh", "-c", script]);
    assert_ok(&out, &format!("run {script}"));
    stdout(&out)
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn no_containers_left(d: &Daemon) {
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(stdout(&out).trim(), "", "build containers are removed");
}

/// Cache mounts keep their content across builds (also with `--no-cache`), are not part of
/// the image, show in `system df` and go with `builder prune`.
#[test]
fn cache_mounts_persist_and_are_pruned() {
    let d = Daemon::start();
    d.load_busybox();
    let df = "# syntax=docker/dockerfile:1\nFROM busybox\nRUN --mount=type=cache,target=/var/cache/app,id=counter,uid=1000,mode=0770 \\\n    echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /count && stat -c '%u %a' /var/cache/app > /owner\n";
    let ctx = context(&d, "cache", &[("Dockerfile", df)]);
    for (i, cli) in ["berth", "docker", "berth"].iter().enumerate() {
        let out = if *cli == "berth" {
            d.berth(&["build", "--no-cache", "-t", "cm:1", s(&ctx)])
        } else {
            legacy_build(&d, &["--no-cache", "-t", "cm:1", s(&ctx)])
        };
        assert_ok(&out, &format!("build {i} with {cli}"));
        assert_eq!(run_in(&d, "cm:1", "cat /count").trim(), (i + 1).to_string());
    }
    assert_eq!(run_in(&d, "cm:1", "cat /owner").trim(), "1000 770");
    // The mount point is not in the image (/var/cache did not exist in busybox).
    assert_eq!(
        run_in(&d, "cm:1", "test -e /var/cache && echo there || echo gone").trim(),
        "gone"
    );
    let df_out = d.docker(&["system", "df", "-v"]);
    assert_ok(&df_out, "system df -v");
    assert!(
        stdout(&df_out).contains("exec.cachemount"),
        "{}",
        stdout(&df_out)
    );
    let (code, body) = d.api("GET", "/v1.51/system/df", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("df json");
    let mount = v["BuildCache"]
        .as_array()
        .expect("BuildCache")
        .iter()
        .find(|r| r["Type"] == "exec.cachemount")
        .expect("a cache mount record")
        .clone();
    assert!(mount["Size"].as_i64().unwrap_or(0) > 0, "{mount}");
    assert!(
        mount["Description"]
            .as_str()
            .unwrap_or("")
            .contains("cached mount /var/cache/app"),
        "{mount}"
    );
    let prune = d.docker(&["builder", "prune", "-f"]);
    assert_ok(&prune, "builder prune");
    let out = d.berth(&["build", "--no-cache", "-t", "cm:1", s(&ctx)]);
    assert_ok(&out, "build after prune");
    assert_eq!(run_in(&d, "cm:1", "cat /count").trim(), "1", "pruned cache");
    no_containers_left(&d);
}

/// `sharing=locked`: two builds at once take turns on the cache (a step that finds the
/// other's marker fails).
#[test]
fn concurrent_builds_with_a_locked_cache_take_turns() {
    let d = Daemon::start();
    d.load_busybox();
    let step = "RUN --mount=type=cache,target=/c,sharing=locked \\\n    if [ -e /c/busy ]; then echo CONFLICT; exit 1; fi; touch /c/busy; sleep 1; rm /c/busy; echo $N >> /c/log\n";
    let a = context(
        &d,
        "lock-a",
        &[("Dockerfile", &format!("FROM busybox\nARG N=a\n{step}"))],
    );
    let b = context(
        &d,
        "lock-b",
        &[("Dockerfile", &format!("FROM busybox\nARG N=b\n{step}"))],
    );
    let start = Instant::now();
    let ca = legacy(&d)
        .args(["build", "--no-cache", s(&a)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("build a");
    let cb = legacy(&d)
        .args(["build", "--no-cache", s(&b)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("build b");
    let oa = ca.wait_with_output().expect("wait a");
    let ob = cb.wait_with_output().expect("wait b");
    assert!(oa.status.success(), "build a: {}", text(&oa));
    assert!(ob.status.success(), "build b: {}", text(&ob));
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "the steps took turns"
    );
    let check = context(
        &d,
        "lock-check",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c,sharing=locked sort /c/log > /log\n",
        )],
    );
    assert_ok(
        &d.berth(&["build", "--no-cache", "-t", "lc:1", s(&check)]),
        "read the log",
    );
    assert_eq!(run_in(&d, "lc:1", "cat /log"), "a\nb\n");
}

/// Secrets reach the step as a file and as an environment variable, and never a layer,
/// the history, the cache key or the daemon's log.
#[test]
fn secrets_stay_out_of_layers_history_and_logs() {
    let d = Daemon::start();
    d.load_busybox();
    let value = "s3cr3t-Value-0451";
    let secret_file = d.root.join("token.txt");
    std::fs::write(&secret_file, value).expect("secret file");
    // The Dockerfile names the secret's digest only, so any copy of the value found later
    // came from the secret.
    let sum = sha256_hex(value.as_bytes());
    let df = format!("FROM busybox\nRUN --mount=type=secret,id=tok,required \\\n    test \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = {sum} && stat -c %a /run/secrets/tok > /mode\nRUN --mount=type=secret,id=tok,env=TOKEN,required test \"$(printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1)\" = {sum} && echo env-ok > /env\nRUN --mount=type=secret,id=absent echo optional-skipped > /opt\n");
    let ctx = context(&d, "secret", &[("Dockerfile", &df)]);
    let out = d.berth(&[
        "build",
        "-t",
        "sec:1",
        "--secret",
        &format!("id=tok,src={}", secret_file.display()),
        s(&ctx),
    ]);
    assert_ok(&out, "build with a secret");
    assert!(!text(&out).contains(value), "not in the build output");
    assert_eq!(run_in(&d, "sec:1", "cat /mode").trim(), "400");
    assert_eq!(
        run_in(&d, "sec:1", "cat /env /opt"),
        "env-ok\noptional-skipped\n"
    );
    assert_eq!(
        run_in(
            &d,
            "sec:1",
            "test -e /run/secrets && echo there || echo gone"
        )
        .trim(),
        "gone"
    );
    let hist = d.docker(&["history", "--no-trunc", "sec:1"]);
    assert_ok(&hist, "history");
    assert!(!stdout(&hist).contains(value));
    let saved = d.root.join("sec.tar");
    assert_ok(
        &d.docker(&["save", "-o", s(&saved), "sec:1"]),
        "save the image",
    );
    let raw = std::fs::read(&saved).expect("saved image");
    assert!(
        !raw.windows(value.len()).any(|w| w == value.as_bytes()),
        "the secret is in no layer"
    );
    // The same secret from the environment, and a changed value does not miss the cache
    // (the value is not part of the key).
    let out = Command::new(bin("berth"))
        .args([
            "build",
            "-t",
            "sec:2",
            "--secret",
            "id=tok,env=MY_TOKEN",
            s(&ctx),
        ])
        .env("BERTH_HOST", d.host())
        .env("MY_TOKEN", value)
        .output()
        .expect("berth build");
    assert_ok(&out, "build with an env secret");
    assert_eq!(
        stdout(&out).matches("Using cache").count(),
        3,
        "{}",
        text(&out)
    );
    assert!(
        !d.log().contains(value),
        "the secret is not in the daemon's log"
    );
    // Without the secret, a required one fails with a message naming it.
    let out = legacy_build(&d, &["--no-cache", s(&ctx)]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("secret tok not found"),
        "{}",
        text(&out)
    );
    no_containers_left(&d);
}

/// Bind mounts from a stage, an image and the context; read-only unless `rw`, and the
/// writes of an `rw` bind are thrown away; tmpfs mounts; none of them in the image.
#[test]
fn bind_and_tmpfs_mounts() {
    let d = Daemon::start();
    d.load_busybox();
    let df = "FROM busybox AS tools\nRUN mkdir /out && echo from-stage > /out/f\nFROM busybox\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools cat /mnt/tools/f > /from-stage\nRUN --mount=target=/ctx cat /ctx/data/in.txt > /from-ctx\nRUN --mount=target=/ctx,source=data touch /ctx/new 2> /ro-err || echo refused > /ro\nRUN --mount=target=/ctx,source=data,rw sh -c 'echo changed > /ctx/in.txt && cat /ctx/in.txt > /rw'\nRUN --mount=type=bind,from=busybox,target=/img test -x /img/bin/busybox && echo image-ok > /img-ok\nRUN --mount=type=tmpfs,target=/scratch,size=1m grep ' /scratch ' /proc/mounts | grep -q tmpfs && echo tmpfs-ok > /tmpfs\n";
    let ctx = context(
        &d,
        "binds",
        &[("Dockerfile", df), ("data/in.txt", "from-context\n")],
    );
    let out = legacy_build(&d, &["-t", "bind:1", s(&ctx)]);
    assert_ok(&out, "build with bind mounts");
    assert_eq!(
        run_in(
            &d,
            "bind:1",
            "cat /from-stage /from-ctx /ro /rw /img-ok /tmpfs"
        ),
        "from-stage\nfrom-context\nrefused\nchanged\nimage-ok\ntmpfs-ok\n"
    );
    assert_eq!(
        std::fs::read_to_string(ctx.join("data/in.txt")).expect("context file"),
        "from-context\n",
        "the context is untouched"
    );
    assert_eq!(
        run_in(
            &d,
            "bind:1",
            "for p in /mnt /ctx /img /scratch; do test -e $p && echo $p; done; true"
        ),
        "",
        "no mount point stays in the image"
    );
    // A changed context file misses the cache of the steps that bind it.
    std::fs::write(ctx.join("data/in.txt"), "edited\n").expect("edit");
    let out = d.berth(&["build", "-t", "bind:2", s(&ctx)]);
    assert_ok(&out, "rebuild");
    assert_eq!(run_in(&d, "bind:2", "cat /from-ctx"), "edited\n");
    no_containers_left(&d);
}

/// Two independent 2-second stages run at the same time (their intervals of the host's uptime
/// overlap, whatever the machine's load); an unused stage is skipped; the output stays one
/// block per step, in order.
#[test]
fn independent_stages_run_in_parallel_and_unused_ones_are_skipped() {
    let d = Daemon::start();
    d.load_busybox();
    let run = |n: &str| {
        format!("RUN cut -d' ' -f1 /proc/uptime > /{n} && sleep 2 && cut -d' ' -f1 /proc/uptime >> /{n}")
    };
    let df = format!(
        "FROM busybox AS one\n{}\nFROM busybox AS unused\nRUN echo never-runs && exit 1\nFROM busybox AS two\n{}\nFROM busybox\nCOPY --from=one /one /one\nCOPY --from=two /two /two\n",
        run("one"),
        run("two")
    );
    let ctx = context(&d, "par", &[("Dockerfile", &df)]);
    let out = legacy_build(&d, &["-t", "par:1", s(&ctx)]);
    assert_ok(&out, "parallel build");
    let span = |n: &str| -> (f64, f64) {
        let t = run_in(&d, "par:1", &format!("cat /{n}"));
        let v: Vec<f64> = t
            .lines()
            .map(|l| l.trim().parse().expect("uptime"))
            .collect();
        (v[0], v[1])
    };
    let (one, two) = (span("one"), span("two"));
    assert!(
        one.0 < two.1 && two.0 < one.1,
        "the stages ran one after the other: one {one:?}, two {two:?}"
    );
    let t = stdout(&out);
    assert!(!t.contains("never-runs") && !t.contains("exit 1"), "{t}");
    let steps: Vec<&str> = t.lines().filter(|l| l.starts_with("Step ")).collect();
    let (step2, step4) = (
        format!("Step 2/7 : {}", run("one")),
        format!("Step 4/7 : {}", run("two")),
    );
    assert_eq!(
        steps,
        vec![
            "Step 1/7 : FROM busybox AS one",
            step2.as_str(),
            "Step 3/7 : FROM busybox AS two",
            step4.as_str(),
            "Step 5/7 : FROM busybox",
            "Step 6/7 : COPY --from=one /one /one",
            "Step 7/7 : COPY --from=two /two /two",
        ],
        "{t}"
    );
    // Each step's block is whole: its "Running in" comes right after its Step line.
    let lines: Vec<&str> = t.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("Step 2/7") || l.starts_with("Step 4/7") {
            assert!(lines[i + 1].starts_with(" ---> Running in"), "{t}");
        }
    }
    // A failure in one stage stops the build with its message.
    let bad = context(
        &d,
        "par-bad",
        &[(
            "Dockerfile",
            "FROM busybox AS a\nRUN sleep 1 && exit 4\nFROM busybox AS b\nRUN sleep 2\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n",
        )],
    );
    let out = d.berth(&["build", s(&bad)]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("returned a non-zero code: 4"),
        "{}",
        text(&out)
    );
    no_containers_left(&d);
}

/// `COPY --link`, `--parents` (with a `/./` pivot) and `--exclude`.
#[test]
fn copy_link_parents_and_exclude() {
    let d = Daemon::start();
    d.load_busybox();
    let df = "# syntax=docker/dockerfile:1.7-labs\nFROM busybox\nCOPY --parents a/b/*.txt x/y.txt /p/\nCOPY --parents ./a/./b/c.txt /pivot/\nCOPY --exclude=**/*.md --exclude=skip a /ex/\nCOPY --link a/b/c.txt /linked/\nCOPY --link --chmod=600 x/y.txt /linked/y\n";
    let ctx = context(
        &d,
        "copies",
        &[
            ("Dockerfile", df),
            ("a/b/c.txt", "c\n"),
            ("a/b/d.md", "d\n"),
            ("a/skip/s.txt", "s\n"),
            ("a/keep.txt", "k\n"),
            ("x/y.txt", "y\n"),
        ],
    );
    for (cli, tag) in [("docker", "cp:1"), ("berth", "cp:2")] {
        let out = if cli == "docker" {
            legacy_build(&d, &["-t", tag, s(&ctx)])
        } else {
            d.berth(&["build", "-t", tag, s(&ctx)])
        };
        assert_ok(&out, &format!("{cli} build"));
        assert_eq!(
            run_in(&d, tag, "cd / && find p pivot ex linked -type f | sort"),
            "ex/b/c.txt\nex/keep.txt\nlinked/c.txt\nlinked/y\np/a/b/c.txt\np/x/y.txt\npivot/b/c.txt\n"
        );
        assert_eq!(run_in(&d, tag, "stat -c %a /linked/y").trim(), "600");
    }
    // --exclude keys the cache: an excluded file's change does not miss, a copied one does.
    std::fs::write(ctx.join("a/b/d.md"), "changed\n").expect("edit");
    let out = d.berth(&["build", "-t", "cp:3", s(&ctx)]);
    assert_ok(&out, "rebuild");
    let t = stdout(&out);
    let blocks: Vec<&str> = t.split("Step ").collect();
    let ex = blocks
        .iter()
        .find(|b| b.contains("COPY --exclude"))
        .expect("exclude step");
    assert!(ex.contains("Using cache"), "{t}");
}

/// What berth does not implement is refused with a message naming it.
#[test]
fn refusals_name_what_is_not_supported() {
    let d = Daemon::start();
    d.load_busybox();
    let cases: &[(&str, &str)] = &[
        (
            "# syntax=example.com/my/frontend:2\nFROM busybox\n",
            "unsupported Dockerfile frontend \"example.com/my/frontend:2\"",
        ),
        (
            "# syntax=docker/dockerfile:0.9\nFROM busybox\n",
            "unsupported Dockerfile frontend",
        ),
        (
            "FROM busybox\nRUN --device=/dev/fuse true\n",
            "RUN --device is not supported",
        ),
        (
            "FROM busybox\nRUN --mount=type=ssh true\n",
            "RUN --mount=type=ssh needs an SSH agent socket",
        ),
        (
            "FROM busybox\nRUN --security=insecure true\n",
            "RUN --security=insecure is not allowed",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/c,bogus=1 true\n",
            "unexpected key 'bogus'",
        ),
        (
            "FROM busybox\nRUN --mount=type=nfs,target=/c true\n",
            "unsupported mount type \"nfs\"",
        ),
        (
            "FROM busybox\nRUN --network=bridge true\n",
            "unsupported network mode \"bridge\"",
        ),
        ("FROM busybox\nCOPY --bogus a /b\n", "Unknown flag: bogus"),
        (
            "FROM --platform=linux/s390x busybox\n",
            "berth builds for the host platform",
        ),
        (
            "FROM busybox\nADD --checksum=sha256:00 local.txt /x\n",
            "ADD --checksum can only be used with http(s) URLs and git sources",
        ),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let ctx = context(
            &d,
            &format!("refuse{i}"),
            &[("Dockerfile", df), ("local.txt", "x")],
        );
        let out = legacy_build(&d, &[s(&ctx)]);
        assert!(!out.status.success(), "case {i} must fail: {df}");
        assert!(
            text(&out).contains(want),
            "case {i}: want {want:?} in {}",
            text(&out)
        );
    }
    no_containers_left(&d);
    // Accepted spellings of the builtin frontend, `# check=` and automatic platform ARGs.
    for (i, syntax) in [
        "docker/dockerfile:1",
        "docker.io/docker/dockerfile:1.7-labs",
        "docker/dockerfile:1.9.0@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
    ]
    .iter()
    .enumerate()
    {
        let ctx = context(
            &d,
            &format!("accept{i}"),
            &[(
                "Dockerfile",
                &format!("# syntax={syntax}\n# check=skip=all\nFROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nRUN test -n \"$TARGETARCH\"\n"),
            )],
        );
        assert_ok(&legacy_build(&d, &[s(&ctx)]), syntax);
    }
}

/// `RUN --network=none` and `--security=insecure` with the daemon's entitlement.
#[test]
fn run_network_and_security_flags() {
    let d = Daemon::start_with_args(&["--allow-insecure-entitlement", "security.insecure"]);
    d.load_busybox();
    let df = "FROM busybox\nRUN --network=none sh -c 'ls /sys/class/net > /nets'\nRUN --security=insecure mkdir /m && mount -t tmpfs none /m && echo privileged > /priv\n";
    let ctx = context(&d, "sec", &[("Dockerfile", df)]);
    assert_ok(&d.berth(&["build", "-t", "ns:1", s(&ctx)]), "build");
    assert_eq!(run_in(&d, "ns:1", "cat /nets /priv"), "lo\nprivileged\n");
}

/// A loopback HTTP server serving one body, for `ADD <url>`.
fn serve(body: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    l.set_nonblocking(false).expect("blocking");
    let h = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let _ = l.set_nonblocking(true);
        let mut served = 0;
        while Instant::now() < deadline && served < 4 {
            match l.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let mut buf = [0u8; 4096];
                    let n = c.read(&mut buf).unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let resp = if req.starts_with("GET /file.txt ") {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    };
                    let _ = c.write_all(resp.as_bytes());
                    if req.starts_with("GET /file.txt ") {
                        let _ = c.write_all(body);
                    }
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, h)
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

/// `ADD <url>` (from a loopback server, with `--checksum`) and `ADD` of a git repository
/// (`file://`, a tag and a subdirectory, `--keep-git-dir`).
#[test]
fn add_urls_and_git_repositories() {
    let d = Daemon::start();
    d.load_busybox();
    const BODY: &[u8] = b"downloaded body\n";
    let (port, server) = serve(BODY);
    let repo = d.root.join("repo");
    std::fs::create_dir_all(repo.join("docs")).expect("repo");
    git(&repo, &["init", "--quiet", "-b", "main"]);
    std::fs::write(repo.join("docs/readme"), "v1 docs\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("docs/readme"), "v2 docs\n").expect("write");
    git(&repo, &["commit", "--quiet", "-am", "two"]);
    let sum = sha256_hex(BODY);
    let df = format!(
        "FROM busybox\nADD http://127.0.0.1:{port}/file.txt /dl/\nADD --checksum=sha256:{sum} http://127.0.0.1:{port}/file.txt /checked.txt\nADD file://{r}#v1:docs /v1/\nADD --keep-git-dir file://{r} /head/\n",
        r = repo.display()
    );
    let ctx = context(&d, "add", &[("Dockerfile", &df)]);
    let out = legacy_build(&d, &["-t", "add:1", s(&ctx)]);
    assert_ok(&out, "ADD url and git");
    assert_eq!(
        run_in(
            &d,
            "add:1",
            "cat /dl/file.txt /checked.txt /v1/readme /head/docs/readme"
        ),
        "downloaded body\ndownloaded body\nv1 docs\nv2 docs\n"
    );
    assert_eq!(
        run_in(&d, "add:1", "stat -c '%a %Y' /dl/file.txt").trim(),
        "600 1445412480",
        "mode 0600, mtime from Last-Modified"
    );
    assert_eq!(
        run_in(
            &d,
            "add:1",
            "test -d /head/.git && test ! -e /v1/.git && echo ok"
        )
        .trim(),
        "ok"
    );
    let bad = context(
        &d,
        "add-bad",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD --checksum=sha256:{} http://127.0.0.1:{port}/file.txt /x\n",
                "0".repeat(64)
            ),
        )],
    );
    let out = d.berth(&["build", s(&bad)]);
    assert!(!out.status.success());
    assert!(text(&out).contains("digest mismatch"), "{}", text(&out));
    let missing = context(
        &d,
        "add-404",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD http://127.0.0.1:{port}/nope /x\n"),
        )],
    );
    let out = d.berth(&["build", s(&missing)]);
    assert!(!out.status.success());
    assert!(text(&out).contains("404"), "{}", text(&out));
    let _ = server.join();
}

/// `berth build --build-context name=DIR|docker-image://REF` and `--output`.
#[test]
fn named_contexts_and_outputs() {
    let d = Daemon::start();
    d.load_busybox();
    let extra = context(
        &d,
        "extra",
        &[
            ("lib/util.txt", "from the named context\n"),
            (".dockerignore", "lib/ignored\n"),
            ("lib/ignored", "no\n"),
        ],
    );
    let df = "FROM busybox AS build\nCOPY --from=extra lib /lib2\nRUN --mount=from=extra,target=/x cat /x/lib/util.txt > /via-mount\nFROM base\nCOPY --from=build /lib2 /out/lib2\nCOPY --from=build /via-mount /out/\n";
    let ctx = context(&d, "main", &[("Dockerfile", df)]);
    let out = d.berth(&[
        "build",
        "--build-context",
        &format!("extra={}", extra.display()),
        "--build-context",
        "base=docker-image://busybox",
        "-t",
        "nc:1",
        s(&ctx),
    ]);
    assert_ok(&out, "named contexts");
    assert_eq!(
        run_in(
            &d,
            "nc:1",
            "cat /out/lib2/util.txt /out/via-mount; ls /out/lib2"
        ),
        "from the named context\nfrom the named context\nutil.txt\n"
    );
    let dest = d.root.join("exported");
    let out = d.berth(&[
        "build",
        "--build-context",
        &format!("extra={}", extra.display()),
        "--build-context",
        "base=docker-image://busybox",
        "--target",
        "build",
        "-o",
        &format!("type=local,dest={}", dest.display()),
        s(&ctx),
    ]);
    assert_ok(&out, "--output type=local");
    assert_eq!(
        std::fs::read_to_string(dest.join("via-mount")).expect("exported file"),
        "from the named context\n"
    );
    assert!(dest.join("bin/busybox").exists());
    let tar = d.root.join("out.tar");
    let out = d.berth(&[
        "build",
        "--build-context",
        &format!("extra={}", extra.display()),
        "--build-context",
        "base=docker-image://busybox",
        "-o",
        &format!("type=tar,dest={}", tar.display()),
        s(&ctx),
    ]);
    assert_ok(&out, "--output type=tar");
    let list = Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("tar -t");
    assert!(stdout(&list).contains("out/via-mount"), "{}", stdout(&list));
    no_containers_left(&d);
}

/// `berth build --ssh default=SOCKET`: the socket is mounted for `RUN --mount=type=ssh`
/// with `SSH_AUTH_SOCK` pointing at it, and is not left in the image.
#[test]
fn ssh_agent_socket_is_mounted() {
    let d = Daemon::start();
    d.load_busybox();
    let sock = d.root.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("agent socket");
    let df = "FROM busybox\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /sock\nRUN --mount=type=ssh,id=other,target=/agent test -S /agent && echo other > /other\n";
    let ctx = context(&d, "ssh", &[("Dockerfile", df)]);
    let out = d.berth(&[
        "build",
        "-t",
        "ssh:1",
        "--ssh",
        &format!("default={}", sock.display()),
        "--ssh",
        &format!("other={}", sock.display()),
        s(&ctx),
    ]);
    assert_ok(&out, "build with an ssh socket");
    assert_eq!(
        run_in(
            &d,
            "ssh:1",
            "cat /sock /other; test -e /run/buildkit || echo clean"
        ),
        "/run/buildkit/ssh_agent.0\nother\nclean\n"
    );
}
