//! Issue 3: building images from Dockerfiles with the real docker CLI (legacy `POST /build`)
//! and `berth build`, the layer cache, `.dockerignore`, bad input, commit/diff/export.

use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_tests::*;

/// A build context directory under the daemon's test root (removed with it).
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
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

/// Every container the daemon knows (build containers must not linger).
fn all_containers(d: &Daemon) -> String {
    let out = d.docker(&["ps", "-aq"]);
    assert_ok(&out, "ps -aq");
    stdout(&out)
}

const MULTI_STAGE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS b
ARG MSG=default
RUN echo "built $MSG" > /built.txt && echo run-output-line
FROM scratch
COPY --from=b / /
COPY app.txt /app/
ENV GREETING=hello \
    OTHER="two words" \
    SEEN=${GREETING:-unset}
WORKDIR /app
RUN chown -R 1000 /app
USER 1000
ENTRYPOINT ["/bin/sh", "-c", "echo $GREETING; cat /built.txt; pwd; id -u; cat app.txt; echo cmd=$0"]
CMD ["default-cmd"]
HEALTHCHECK --interval=30s --retries=2 CMD true
LABEL org.example.name="my app" version=1
EXPOSE 8080
"#;

#[test]
fn docker_build_multi_stage_then_run() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "ctx",
        &[("Dockerfile", MULTI_STAGE), ("app.txt", "from context\n")],
    );
    let out = d.docker(&[
        "build",
        "-t",
        "app:1",
        "-t",
        "app:latest",
        "--build-arg",
        "MSG=by-arg",
        s(&ctx),
    ]);
    assert_ok(&out, "docker build");
    let text = stdout(&out);
    assert!(text.contains("Step 1/16 : ARG BASE=busybox"), "{text}");
    assert!(
        text.contains("Step 4/16 : RUN echo \"built $MSG\""),
        "{text}"
    );
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(
        text.contains("run-output-line"),
        "RUN output is streamed: {text}"
    );
    assert!(text.contains("Successfully built "), "{text}");
    assert!(text.contains("Successfully tagged app:1"), "{text}");
    assert!(text.contains("Successfully tagged app:latest"), "{text}");
    assert!(
        all_containers(&d).trim().is_empty(),
        "intermediate containers removed"
    );

    let run = d.docker(&["run", "--rm", "app:1"]);
    assert_ok(&run, "docker run");
    assert_eq!(
        stdout(&run),
        "hello\nbuilt by-arg\n/app\n1000\nfrom context\ncmd=default-cmd\n"
    );
    let run = d.docker(&["run", "--rm", "app:1", "override"]);
    assert!(stdout(&run).ends_with("cmd=override\n"), "{}", stdout(&run));
    let env = d.docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        "app:1",
        "-c",
        "echo \"$OTHER\" $SEEN",
    ]);
    // Docker expands every pair of one ENV with the variables from before it.
    assert_eq!(stdout(&env), "two words unset\n");

    let inspect = d.docker(&["image", "inspect", "app:1"]);
    assert_ok(&inspect, "inspect");
    let v: serde_json::Value = serde_json::from_str(&stdout(&inspect)).expect("json");
    let cfg = &v[0]["Config"];
    assert_eq!(cfg["User"], "1000");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Labels"]["org.example.name"], "my app");
    assert_eq!(cfg["Labels"]["version"], "1");
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some());
    assert!(cfg["Env"]
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e == "GREETING=hello"));
    // scratch + COPY + WORKDIR + RUN: three layers.
    assert_eq!(
        v[0]["RootFS"]["Layers"].as_array().expect("layers").len(),
        3
    );

    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "app:1",
    ]);
    assert_ok(&hist, "history");
    let h = stdout(&hist);
    assert!(h.contains("#(nop)  EXPOSE 8080\n"), "{h}");
    assert!(h.contains("/bin/sh -c chown -R 1000 /app"), "{h}");
    assert!(h.contains("COPY file:"), "{h}");
}

#[test]
fn cache_reuse_and_invalidation() {
    let d = Daemon::start();
    d.load_busybox();
    let df = "FROM busybox\nRUN sleep 1 && echo one > /one\nCOPY a.txt /a.txt\nRUN sleep 1 && cat /a.txt > /copy\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy\", \"/b.txt\"]\n";
    let ctx = context(
        &d,
        "cache",
        &[("Dockerfile", df), ("a.txt", "A1\n"), ("b.txt", "B\n")],
    );
    let t0 = Instant::now();
    let first = d.docker(&["build", "-t", "c:1", s(&ctx)]);
    let cold = t0.elapsed();
    assert_ok(&first, "first build");
    assert_eq!(stdout(&first).matches("Using cache").count(), 0);
    let id1 = stdout(&d.docker(&["images", "-q", "c:1"]));

    let t1 = Instant::now();
    let second = d.docker(&["build", "-t", "c:1", s(&ctx)]);
    let warm = t1.elapsed();
    assert_ok(&second, "second build");
    assert_eq!(
        stdout(&second).matches(" ---> Using cache").count(),
        5,
        "{}",
        stdout(&second)
    );
    assert!(!stdout(&second).contains("Running in"));
    assert!(
        warm * 5 < cold,
        "warm {warm:?} not under 1/5 of cold {cold:?}"
    );
    assert_eq!(
        stdout(&d.docker(&["images", "-q", "c:1"])),
        id1,
        "same image id"
    );

    // Same content, new mtime: still cached. New content: rebuilt from that step.
    std::fs::write(ctx.join("a.txt"), "A1\n").expect("rewrite");
    let same = d.docker(&["build", "-t", "c:1", s(&ctx)]);
    assert_eq!(stdout(&same).matches(" ---> Using cache").count(), 5);
    std::fs::write(ctx.join("a.txt"), "A2\n").expect("change");
    let third = d.docker(&["build", "-t", "c:1", s(&ctx)]);
    assert_ok(&third, "third build");
    let t = stdout(&third);
    assert_eq!(
        t.matches(" ---> Using cache").count(),
        1,
        "only step 2 cached: {t}"
    );
    let step3 = t.split("Step 3/6").nth(1).expect("step 3");
    assert!(
        !step3.starts_with(" : COPY a.txt /a.txt\n ---> Using cache"),
        "{t}"
    );
    let run = d.docker(&["run", "--rm", "c:1"]);
    assert_eq!(stdout(&run), "A2\nB\n");

    let nocache = d.docker(&["build", "--no-cache", "-t", "c:1", s(&ctx)]);
    assert_ok(&nocache, "no-cache build");
    assert_eq!(stdout(&nocache).matches("Using cache").count(), 0);
    assert!(all_containers(&d).trim().is_empty());
    // Unpacked contexts are removed once the build answered.
    let tmp = d.root.join("data/builder/tmp");
    assert!(
        eventually(std::time::Duration::from_secs(5), || std::fs::read_dir(
            &tmp
        )
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)),
        "build contexts left in {}",
        tmp.display()
    );
}

#[test]
fn dockerignore_excludes_like_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "ign",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n",
            ),
            (
                ".dockerignore",
                "# logs\n**/*.log\n!keep.log\ntmp\nsecret*\n",
            ),
            ("a.log", "x"),
            ("keep.log", "x"),
            ("sub/deep/b.log", "x"),
            ("sub/keep.log", "x"),
            ("sub/code.txt", "x"),
            ("tmp/junk.txt", "x"),
            ("secret.key", "x"),
            ("main.txt", "x"),
        ],
    );
    let out = d.docker(&["build", "-q", "-t", "ign:1", s(&ctx)]);
    assert_ok(&out, "build");
    assert!(
        stdout(&out).trim().starts_with("sha256:"),
        "-q prints the id: {}",
        stdout(&out)
    );
    let run = d.docker(&["run", "--rm", "ign:1"]);
    let mut files: Vec<String> = stdout(&run).lines().map(str::to_string).collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/keep.log",
            "/ctx/main.txt",
            "/ctx/sub/code.txt"
        ]
    );
}

#[test]
fn heredocs_add_target_stdin_and_iidfile() {
    let d = Daemon::start();
    d.load_busybox();
    // A gzip tarball for ADD to extract.
    let ctx = context(&d, "here", &[("payload/inner.txt", "inside tar\n")]);
    let tgz = ctx.join("payload.tar.gz");
    let st = std::process::Command::new("tar")
        .args(["czf", s(&tgz), "-C", s(&ctx.join("payload")), "inner.txt"])
        .status()
        .expect("tar");
    assert!(st.success());
    let df = r#"FROM busybox AS first
ENV NAME=world
RUN <<EOF
echo "script $NAME" > /script.txt
echo second-line >> /script.txt
EOF
RUN cat <<EOT > /catted.txt
hello $NAME
EOT
COPY <<EOF /copied.txt
copied $NAME
EOF
COPY --chmod=700 --chown=1:2 <<'RAW' /raw.sh
echo $NAME
RAW
ADD payload.tar.gz /extracted/
FROM busybox AS second
RUN echo never > /never
"#;
    std::fs::write(ctx.join("Dockerfile.custom"), df).expect("dockerfile");
    let iid = ctx.join("iid");
    let out = d.docker(&[
        "build",
        "-f",
        s(&ctx.join("Dockerfile.custom")),
        "--target",
        "first",
        "--iidfile",
        s(&iid),
        "-t",
        "h:1",
        s(&ctx),
    ]);
    assert_ok(&out, "build");
    assert!(
        !stdout(&out).contains("never"),
        "target stops at the first stage"
    );
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert!(id.starts_with("sha256:"), "{id}");
    let run = d.docker(&[
        "run", "--rm", "h:1", "sh", "-c",
        "cat /script.txt /catted.txt /copied.txt /raw.sh /extracted/inner.txt; stat -c '%a %u %g' /raw.sh",
    ]);
    assert_ok(&run, "run");
    assert_eq!(
        stdout(&run),
        "script world\nsecond-line\nhello world\ncopied world\necho $NAME\ninside tar\n700 1 2\n"
    );

    // `-f -`: the Dockerfile on stdin.
    let out = d.docker_stdin(
        &["build", "-t", "stdin:1", "-f", "-", s(&ctx)],
        b"FROM busybox\nLABEL from=stdin\n",
    );
    assert_ok(&out, "build -f -");
    let l = d.docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"from\"}}",
        "stdin:1",
    ]);
    assert_eq!(stdout(&l).trim(), "stdin");
}

fn assert_build_fails(d: &Daemon, name: &str, df: &str, files: &[(&str, &str)], expect: &[&str]) {
    let mut all = vec![("Dockerfile", df)];
    all.extend_from_slice(files);
    let ctx = context(d, name, &all);
    let out = d.docker(&["build", "-t", &format!("{name}:1"), s(&ctx)]);
    assert!(
        !out.status.success(),
        "{name}: build should fail: {}",
        stdout(&out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for e in expect {
        assert!(text.contains(e), "{name}: expected {e:?} in:\n{text}");
    }
    assert!(
        all_containers(d).trim().is_empty(),
        "{name}: no containers left"
    );
    let img = d.docker(&["images", "-q", &format!("{name}:1")]);
    assert!(stdout(&img).trim().is_empty(), "{name}: no image tagged");
}

#[test]
fn bad_input_gives_docker_style_errors() {
    let d = Daemon::start();
    d.load_busybox();
    assert_build_fails(
        &d,
        "unknown",
        "FROM busybox\nRUN true\nFROBNICATE now\n",
        &[],
        &["dockerfile parse error on line 3: unknown instruction: FROBNICATE"],
    );
    assert_build_fails(
        &d,
        "heredoc",
        "FROM busybox\nRUN <<EOF\necho no end\n",
        &[],
        &["line 2", "unterminated heredoc EOF"],
    );
    assert_build_fails(
        &d,
        "missing",
        "FROM busybox\nCOPY nothere.txt /x\n",
        &[],
        &[
            "Step 2/2 : COPY nothere.txt /x",
            "COPY failed: file not found in build context",
            "nothere.txt",
            "line 2",
        ],
    );
    assert_build_fails(
        &d,
        "failing",
        "FROM busybox\nRUN echo ok\nRUN echo about-to-fail && exit 3\n",
        &[],
        &[
            "Step 3/3 : RUN echo about-to-fail && exit 3",
            "about-to-fail",
            "The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero code: 3",
            "line 3",
        ],
    );
    assert_build_fails(
        &d,
        "noimage",
        "FROM doesnotexist:1\n",
        &[],
        &["doesnotexist"],
    );
    // The daemon keeps serving and still builds.
    let ok = context(&d, "ok", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    assert_ok(
        &d.docker(&["build", "-t", "ok:1", s(&ok)]),
        "build after failures",
    );
    assert_ok(&d.docker(&["version"]), "version");
}

#[test]
fn commit_diff_and_export() {
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo data > /new.txt && rm /bin/true && mkdir -p /etc/x",
    ]);
    assert_ok(&out, "run");
    let diff = d.docker(&["diff", "c1"]);
    assert_ok(&diff, "diff");
    let t = stdout(&diff);
    assert!(t.contains("A /new.txt"), "{t}");
    assert!(t.contains("D /bin/true"), "{t}");
    assert!(t.contains("C /etc"), "{t}");
    assert!(t.contains("A /etc/x"), "{t}");

    let out = d.docker(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/new.txt\"]",
        "-m",
        "my message",
        "-a",
        "me",
        "c1",
        "committed:1",
    ]);
    assert_ok(&out, "commit");
    assert!(stdout(&out).trim().starts_with("sha256:"));
    let run = d.docker(&["run", "--rm", "committed:1"]);
    assert_eq!(stdout(&run), "data\n");
    let run = d.docker(&["run", "--rm", "committed:1", "ls", "/bin/true"]);
    assert!(
        !run.status.success(),
        "the deletion is in the committed layer"
    );
    let insp = d.docker(&["inspect", "-f", "{{.Author}}|{{.Comment}}", "committed:1"]);
    assert_eq!(stdout(&insp).trim(), "me|my message");

    let tarfile = d.root.join("export.tar");
    assert_ok(&d.docker(&["export", "-o", s(&tarfile), "c1"]), "export");
    let list = std::process::Command::new("tar")
        .args(["tf", s(&tarfile)])
        .output()
        .expect("tar tf");
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(
        names
            .lines()
            .any(|l| l.trim_start_matches("./") == "new.txt"),
        "{names}"
    );
    assert!(!names
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/true"));
    assert!(names
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/sh"));
    assert_ok(&d.docker(&["rm", "c1"]), "rm");
}

#[test]
fn berth_build_commit_diff_export_history() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "bctx",
        &[
            ("Dockerfile", "FROM busybox\nARG WHO\nCOPY f.txt /f.txt\nRUN echo \"hi $WHO\" > /who\nCMD [\"cat\", \"/who\", \"/f.txt\"]\n"),
            ("f.txt", "file\n"),
            ("skip.log", "x"),
            (".dockerignore", "*.log\n"),
        ],
    );
    let iid = d.root.join("b.iid");
    let out = d.berth(&[
        "build",
        "-t",
        "bb:1",
        "--build-arg",
        "WHO=berth",
        "--label",
        "k=v",
        "--iidfile",
        s(&iid),
        "--progress",
        "plain",
        s(&ctx),
    ]);
    assert_ok(&out, "berth build");
    let text = stdout(&out);
    assert!(
        text.contains("Step 5/6 : CMD [\"cat\", \"/who\", \"/f.txt\"]"),
        "{text}"
    );
    assert!(
        text.contains("Step 6/6 : LABEL k=v"),
        "--label is a final LABEL step: {text}"
    );
    assert!(text.contains("Successfully tagged bb:1"), "{text}");
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    let run = d.berth(&["run", "--rm", "bb:1"]);
    assert_eq!(stdout(&run), "hi berth\nfile\n");
    let l = d.berth(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"k\"}} {{.Id}}",
        "bb:1",
    ]);
    assert_eq!(stdout(&l).trim(), format!("v {id}"));

    let q = d.berth(&[
        "build",
        "-q",
        s(&ctx),
        "--build-arg",
        "WHO=berth",
        "--label",
        "k=v",
    ]);
    assert_ok(&q, "berth build -q");
    assert_eq!(
        stdout(&q).trim(),
        id,
        "cached rebuild gives the same id, -q prints only it"
    );

    let stdin_df = d.berth_stdin(
        &["build", "-t", "bb:stdin", "-f", "-", s(&ctx)],
        b"FROM busybox\nCOPY . /c/\nRUN ls /c > /list\nCMD [\"cat\", \"/list\"]\n",
    );
    assert_ok(&stdin_df, "berth build -f -");
    let list = stdout(&d.berth(&["run", "--rm", "bb:stdin"]));
    assert!(
        list.contains("f.txt") && !list.contains("skip.log"),
        "{list}"
    );

    let bad = d.berth(&["build", s(&ctx), "-f", s(&ctx.join("nope"))]);
    assert!(!bad.status.success());

    let hist = d.berth(&["history", "--no-trunc", "bb:1"]);
    assert_ok(&hist, "history");
    let h = stdout(&hist);
    assert!(h.starts_with("IMAGE"), "{h}");
    assert!(
        h.contains("|1 WHO=berth /bin/sh -c echo \"hi $WHO\" > /who"),
        "{h}"
    );

    assert_ok(
        &d.berth(&[
            "run",
            "--name",
            "mm",
            "busybox",
            "sh",
            "-c",
            "echo x > /made",
        ]),
        "run",
    );
    let diff = stdout(&d.berth(&["diff", "mm"]));
    assert_eq!(diff, "A /made\n");
    let c = d.berth(&["commit", "-c", "CMD [\"cat\", \"/made\"]", "mm", "made:1"]);
    assert_ok(&c, "commit");
    assert_eq!(stdout(&d.berth(&["run", "--rm", "made:1"])), "x\n");
    let tarfile = d.root.join("mm.tar");
    assert_ok(&d.berth(&["export", "-o", s(&tarfile), "mm"]), "export");
    let list = std::process::Command::new("tar")
        .args(["tf", s(&tarfile)])
        .output()
        .expect("tar");
    assert!(String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l.trim_start_matches("./") == "made"));
    assert_ok(&d.berth(&["rm", "mm"]), "rm");
    assert!(stdout(&d.berth(&["ps", "-aq"])).trim().is_empty());
}

#[test]
fn builder_prune_drops_the_cache() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "prune",
        &[(
            "Dockerfile",
            "FROM busybox AS s\nRUN echo a > /a\nFROM busybox\nCOPY --from=s /a /a\nRUN echo b > /b\n",
        )],
    );
    assert_ok(&d.docker(&["build", "-t", "p:1", s(&ctx)]), "build");
    let again = d.docker(&["build", "-t", "p:1", s(&ctx)]);
    assert_eq!(stdout(&again).matches("Using cache").count(), 3);
    let out = d.docker(&["builder", "prune", "-f"]);
    assert_ok(&out, "builder prune");
    assert!(
        stdout(&out).contains("Total reclaimed space"),
        "{}",
        stdout(&out)
    );
    let after = d.docker(&["build", "-t", "p:1", s(&ctx)]);
    assert_ok(&after, "build after prune");
    assert_eq!(stdout(&after).matches("Using cache").count(), 0);
    assert_eq!(
        stdout(&d.docker(&["run", "--rm", "p:1", "cat", "/b"])),
        "b\n"
    );
}

/// The "Build Cache" row of `docker system df --format` as (total, size, reclaimable).
fn build_cache_row(d: &Daemon) -> (String, String, String) {
    let out = d.docker(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    assert_ok(&out, "system df");
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with("Build Cache|"))
        .unwrap_or_else(|| panic!("no Build Cache row in:\n{text}"));
    let f: Vec<&str> = row.split('|').collect();
    (f[1].to_string(), f[2].to_string(), f[3].to_string())
}

#[test]
fn system_df_reports_the_build_cache() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(build_cache_row(&d).0, "0");
    // The first stage's 200kB layer is kept only by the cache: that is what prune frees
    // (the stage is used, for a 2-byte file, so it is not skipped).
    let ctx = context(
        &d,
        "df",
        &[(
            "Dockerfile",
            "FROM busybox AS s\nRUN head -c 200000 /dev/zero > /a && echo s > /s\nFROM busybox\nCOPY --from=s /s /s\nRUN echo b > /b\nENV X=1\n",
        )],
    );
    assert_ok(&d.docker(&["build", "-t", "df:1", s(&ctx)]), "build");
    let (total, size, reclaim) = build_cache_row(&d);
    assert_eq!(total, "4", "one entry per cached step");
    assert!(size.starts_with("200") && size.ends_with("kB"), "{size}");
    assert_eq!(reclaim, size);
    // `berth system df` shows the same row.
    let ours = stdout(&d.berth(&["system", "df"]));
    let row: Vec<&str> = ours
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("{ours}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[2..], ["4", "0", size.as_str(), size.as_str()], "{ours}");
    let v = d.docker(&["system", "df", "-v"]);
    assert_ok(&v, "system df -v");
    let verbose = stdout(&v);
    assert!(
        verbose.contains("Build cache usage: 200kB")
            && verbose.lines().filter(|l| l.contains(" regular ")).count() == 4,
        "{verbose}"
    );
    let out = d.docker(&["builder", "prune", "-f"]);
    assert_ok(&out, "builder prune");
    assert!(stdout(&out).contains("200"), "{}", stdout(&out));
    assert_eq!(build_cache_row(&d), ("0".into(), "0B".into(), "0B".into()));
    assert_eq!(
        stdout(&d.docker(&["run", "--rm", "df:1", "cat", "/b"])),
        "b\n"
    );
}

/// `--cache-from` with an image brought over by `docker save`/`docker load`: a fresh daemon
/// reuses its steps instead of running them (the RUN output is the original's, not a new one).
#[test]
fn cache_from_a_loaded_image_reuses_its_steps() {
    let df = "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\nENV X=1\nRUN echo $X >> /id\nCMD [\"cat\", \"/id\"]\n";
    let d1 = Daemon::start();
    d1.load_busybox();
    let ctx = context(&d1, "cf", &[("Dockerfile", df)]);
    assert_ok(&d1.docker(&["build", "-t", "cf:1", s(&ctx)]), "build");
    let original = stdout(&d1.docker(&["run", "--rm", "cf:1"]));
    assert!(original.ends_with("\n1\n"), "{original}");
    let tarfile = d1.root.join("cf.tar");
    assert_ok(&d1.docker(&["save", "-o", s(&tarfile), "cf:1"]), "save");

    let d2 = Daemon::start();
    d2.load_busybox();
    assert_ok(&d2.docker(&["load", "-i", s(&tarfile)]), "load");
    let ctx2 = context(&d2, "cf", &[("Dockerfile", df)]);
    let out = d2.docker(&["build", "--cache-from", "cf:1", "-t", "cf:2", s(&ctx2)]);
    assert_ok(&out, "build --cache-from");
    assert_eq!(
        stdout(&out).matches("Using cache").count(),
        4,
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("Running in"), "{}", stdout(&out));
    assert_eq!(stdout(&d2.docker(&["run", "--rm", "cf:2"])), original);
    // Without --cache-from the steps run again (a new uuid).
    let fresh = d2.docker(&["build", "--no-cache", "-t", "cf:3", s(&ctx2)]);
    assert_ok(&fresh, "build --no-cache");
    assert_ne!(stdout(&d2.docker(&["run", "--rm", "cf:3"])), original);
}

/// `berth build --progress`: `auto` off a terminal (the tests' pipe) and `plain` keep docker's
/// line stream; `tty` forces the live view, whose final screen holds one collapsed line per
/// step (`CACHED` on a cache hit) and not the steps' ` ---> ` chatter.
#[test]
fn berth_build_progress_modes() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "prog",
        &[("Dockerfile", "FROM busybox\nRUN echo out-line\nENV A=1\n")],
    );
    for mode in ["auto", "plain"] {
        let out = d.berth(&["build", "--progress", mode, "-t", "pg:1", s(&ctx)]);
        assert_ok(&out, "build");
        let text = stdout(&out);
        assert!(
            text.contains("Step 2/3 : RUN echo out-line\n")
                && text.contains("out-line\n")
                && text.contains(" ---> ")
                && text.contains("Successfully tagged pg:1")
                && !text.contains('\x1b'),
            "{mode}: {text}"
        );
    }
    let out = d.berth(&["build", "--progress", "tty", "-t", "pg:1", s(&ctx)]);
    assert_ok(&out, "build --progress tty");
    let text = stdout(&out);
    assert!(
        text.contains("=> Step 1/3 : FROM busybox\n")
            && text.contains("=> CACHED Step 2/3 : RUN echo out-line\n")
            && text.contains("=> CACHED Step 3/3 : ENV A=1\n")
            && text.contains("Successfully tagged pg:1\n")
            && !text.contains(" ---> "),
        "{text}"
    );
    // `auto` on a real terminal (a pty from util-linux `script`) draws the live view.
    let cmd = format!(
        "{} build --progress auto -t pg:1 {}",
        bin("berth").display(),
        s(&ctx)
    );
    let pty = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&pty.stdout);
    assert!(pty.status.success(), "{text}");
    assert!(
        text.contains("=> CACHED Step 2/3 : RUN echo out-line")
            && text.contains('\x1b')
            && !text.contains(" ---> "),
        "{text}"
    );
    let bad = d.berth(&["build", "--progress", "fancy", s(&ctx)]);
    assert!(!bad.status.success());
}

/// `docker history` of a built image names each step's image (the ids the build printed
/// as ` ---> <id>`) and the base image, like Docker's legacy builder; only what came with the
/// base image below its top stays `<missing>`.
#[test]
fn history_shows_step_image_ids() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "hist",
        &[("Dockerfile", "FROM busybox\nRUN echo a > /a\nENV X=1\n")],
    );
    let out = d.docker(&["build", "-t", "h:1", s(&ctx)]);
    assert_ok(&out, "build");
    // The ` ---> <id>` line that ends each step, in order: FROM, RUN, ENV.
    let step_ids: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| l.len() == 12 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect();
    assert_eq!(step_ids.len(), 3, "{}", stdout(&out));
    let hist = d.docker(&["history", "--format", "{{.ID}}|{{.CreatedBy}}", "h:1"]);
    assert_ok(&hist, "history");
    let rows: Vec<(String, String)> = stdout(&hist)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('|').expect("row");
            (a.to_string(), b.to_string())
        })
        .collect();
    assert!(rows.len() >= 3, "{rows:?}");
    assert!(
        rows[0].1.contains("ENV X=1") && rows[0].0 == step_ids[2],
        "{rows:?}"
    );
    assert!(
        rows[1].1.contains("echo a") && rows[1].0 == step_ids[1],
        "{rows:?}"
    );
    assert_eq!(rows[2].0, step_ids[0], "{rows:?}");
    let busybox = stdout(&d.docker(&["images", "-q", "busybox"]));
    assert_eq!(rows[2].0, busybox.trim());
    assert!(rows[3..].iter().all(|r| r.0 == "<missing>"), "{rows:?}");
    // The step images are intermediate images that h:1 keeps: pruning the build cache
    // leaves them (and the history) alone, as with Docker's legacy builder.
    assert_ok(&d.docker(&["builder", "prune", "-f"]), "prune");
    let hist = stdout(&d.docker(&["history", "--format", "{{.ID}}", "h:1"]));
    assert_eq!(hist.lines().nth(1), Some(step_ids[1].as_str()), "{hist}");
}

/// RUN steps are on the default bridge, as with Docker's builder (so they can fetch things),
/// and `--network none` takes them off it; the step containers' interfaces are released.
#[test]
fn run_steps_use_the_build_network() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "net",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN ip -4 route | grep default && ip -4 addr show eth0 > /addr\n",
        )],
    );
    let out = d.docker(&["build", "--no-cache", "-t", "n:1", s(&ctx)]);
    assert_ok(&out, "build on the default bridge");
    let addr = stdout(&d.docker(&["run", "--rm", "n:1", "cat", "/addr"]));
    let prefix = d.bip.rsplit_once('.').expect("bip").0.to_string();
    assert!(addr.contains(&format!("inet {prefix}.")), "{addr}");
    let out = d.docker(&["build", "--no-cache", "--network", "none", s(&ctx)]);
    assert!(
        !out.status.success(),
        "no default route with --network none"
    );
    let out = d.berth(&["build", "--no-cache", "--network", "none", s(&ctx)]);
    assert!(!out.status.success(), "berth build --network none");
    assert_eq!(all_containers(&d), "", "step containers are removed");
}

/// Issue 16, item 8: a fully cached build answers at once; the daemon must still read the
/// client's whole request body first (the context tar's second end block and record padding
/// come after the point where the archive reader stops), or the server closes the connection
/// under a client still writing and the docker CLI fails with "use of closed network
/// connection". The trailer is held back until the build could long have answered.
#[test]
fn a_build_reads_the_whole_request_before_it_answers() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.load_busybox();
    let dir = context(
        &d,
        "trailer",
        &[("Dockerfile", "FROM busybox\nLABEL cached=yes\n")],
    );
    // Cache the step first, so the build below has nothing to wait for.
    assert_ok(
        &d.docker(&["build", "-q", "-t", "trailer", s(&dir)]),
        "first build",
    );
    // GNU tar pads the archive to a 10 KiB record: well beyond the end-of-archive block.
    let tar = std::process::Command::new("tar")
        .args(["-cf", "-", "-C", s(&dir), "Dockerfile"])
        .output()
        .expect("tar");
    assert!(tar.status.success() && tar.stdout.len() >= 10240);
    let (head, tail) = tar.stdout.split_at(tar.stdout.len() - 512);
    for round in 0..3 {
        let mut conn = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        let chunk = |c: &mut std::os::unix::net::UnixStream, b: &[u8]| -> std::io::Result<()> {
            write!(c, "{:x}\r\n", b.len())?;
            c.write_all(b)?;
            c.write_all(b"\r\n")
        };
        write!(
            conn,
            "POST /v1.41/build?t=trailer HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .expect("request head");
        chunk(&mut conn, head).expect("context");
        std::thread::sleep(std::time::Duration::from_millis(700));
        let rest = chunk(&mut conn, tail).and_then(|()| conn.write_all(b"0\r\n\r\n"));
        assert!(
            rest.is_ok(),
            "round {round}: the daemon stopped reading before the body ended: {rest:?}"
        );
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
        assert!(
            answer.contains("Successfully built"),
            "round {round}: {answer}"
        );
    }
}
