//! BuildKit features over the fake backend: parallel and skipped stages, `RUN --mount`,
//! `--network`, `--security`, secrets, `# syntax=`, `ADD <url>`, `COPY --parents/--exclude/
//! --link`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::tests::{go, Fake};
use crate::engine::RunMountKind;
use crate::flags::Sharing;

fn fake() -> (tempfile::TempDir, Fake) {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    (d, f)
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn independent_stages_overlap_and_output_stays_in_order() {
    let (_d, f) = fake();
    // The fake sleeps 100 ms per `sleep` unit: each stage takes 1 s.
    let df = "FROM busybox AS a\nRUN sleep 10 && echo a\nFROM busybox AS unused\nRUN echo never\nFROM busybox AS b\nRUN sleep 10 && echo b\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n";
    let start = Instant::now();
    let (res, out) = go(&f, df, |_| {}).await;
    let took = start.elapsed();
    res.unwrap();
    assert!(took < Duration::from_millis(1800), "took {took:?}");
    let runs: Vec<String> = f
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.cmd.join(" "))
        .collect();
    assert!(!runs.iter().any(|r| r.contains("never")), "{runs:?}");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(steps.len(), 7, "{out}");
    assert!(steps[0].starts_with("Step 1/7 : FROM busybox AS a"));
    assert!(steps[2].starts_with("Step 3/7 : FROM busybox AS b"));
    // Each step's output sits right under its Step line.
    let a = out.find("Step 2/7").unwrap();
    let ran_a = out.find("ran: /bin/sh -c sleep 10 && echo a").unwrap();
    let b = out.find("Step 3/7").unwrap();
    assert!(a < ran_a && ran_a < b, "{out}");
}

#[tokio::test]
async fn a_failing_stage_stops_the_build_with_its_error() {
    let (_d, f) = fake();
    let df = "FROM busybox AS a\nRUN sleep 2 && exit 5\nFROM busybox AS b\nRUN sleep 5\nRUN after\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n";
    let (res, out) = go(&f, df, |_| {}).await;
    let e = res.unwrap_err();
    assert_eq!(e.code, Some(5), "{}", e.message);
    assert_eq!(e.line, Some(2));
    // Stage b finished its running step, then started nothing more.
    assert!(!out.contains("ran: /bin/sh -c after"), "{out}");
    assert!(f.live.lock().unwrap().is_empty(), "containers removed");
}

#[tokio::test]
async fn cache_mounts_are_requested_and_key_the_step() {
    let (_d, f) = fake();
    let df =
        "FROM busybox\nRUN --mount=type=cache,target=/root/.cache,sharing=locked,uid=5 build\n";
    go(&f, df, |_| {}).await.0.unwrap();
    {
        let reqs = f.cache_mounts.lock().unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].id, "/root/.cache", "the id defaults to the target");
        assert_eq!(reqs[0].sharing, Sharing::Locked);
        assert_eq!((reqs[0].uid, reqs[0].mode), (5, 0o755));
        assert!(reqs[0]
            .description
            .contains("cached mount /root/.cache from exec"));
    }
    let run = f.runs.lock().unwrap()[0].clone();
    assert_eq!(run.mounts.len(), 1);
    assert_eq!(run.mounts[0].target, "/root/.cache");
    assert!(!run.mounts[0].readonly);
    // Same mounts: cached; another cache id: a new key.
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    let other = "FROM busybox\nRUN --mount=type=cache,target=/root/.cache,id=x,sharing=locked,uid=5 build\n";
    let (_, out) = go(&f, other, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    // ...and a plain RUN of the same command does not take the mounted step's result.
    let (_, out) = go(&f, "FROM busybox\nRUN build\n", |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn secrets_reach_the_step_only() {
    let (d, f) = fake();
    let df = "FROM busybox\nRUN --mount=type=secret,id=tok --mount=type=secret,id=tok,env=TOKEN,target=/s2 use-it\n";
    let mut secrets = BTreeMap::new();
    secrets.insert("tok".to_string(), b"hunter2".to_vec());
    let secrets_dir = d.path().join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let sd = secrets_dir.clone();
    let (res, out) = go(&f, df, |o| {
        o.secrets = secrets.clone();
        o.secrets_dir = sd;
    })
    .await;
    let img = res.unwrap();
    let run = f.runs.lock().unwrap()[0].clone();
    assert_eq!(run.secret_env, vec!["TOKEN=hunter2"]);
    assert!(!run.env.iter().any(|e| e.contains("hunter2")));
    let targets: Vec<&str> = run.mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, vec!["/run/secrets/tok", "/s2"]);
    assert!(run.mounts.iter().all(|m| m.readonly));
    // The files existed while the step ran and are gone after it.
    assert!(f.seen_sources.lock().unwrap().iter().all(|(_, e)| *e));
    assert_eq!(std::fs::read_dir(&secrets_dir).unwrap().count(), 0);
    let hist = serde_json::to_string(&img.config.history).unwrap();
    assert!(!hist.contains("hunter2") && !out.contains("hunter2"));
    // A changed value hits the cache (the value is not in the key).
    secrets.insert("tok".to_string(), b"other".to_vec());
    let (_, out) = go(&f, df, |o| o.secrets = secrets.clone()).await;
    assert_eq!(out.matches("Using cache").count(), 1);
    // Missing: skipped unless required.
    go(
        &f,
        "FROM busybox\nRUN --mount=type=secret,id=nope x\n",
        |_| {},
    )
    .await
    .0
    .unwrap();
    let (res, _) = go(
        &f,
        "FROM busybox\nRUN --mount=type=secret,id=nope,required x\n",
        |_| {},
    )
    .await;
    assert!(res.unwrap_err().message.contains("secret nope not found"));
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn bind_mounts_from_stages_context_and_tmpfs() {
    let (d, f) = fake();
    let ctx = d.path().join("context");
    std::fs::create_dir_all(ctx.join("src")).unwrap();
    std::fs::write(ctx.join("src/a"), "1").unwrap();
    let df = "FROM busybox AS s\nRUN make\nFROM busybox\nRUN --mount=type=bind,from=s,target=/s --mount=source=src,target=/src --mount=type=tmpfs,target=/t,size=1k --mount=type=bind,source=src,target=/w,rw use\n";
    go(&f, df, |_| {}).await.0.unwrap();
    let run = f.runs.lock().unwrap()[1].clone();
    let kinds: Vec<(&str, bool)> = run
        .mounts
        .iter()
        .map(|m| (m.target.as_str(), m.readonly))
        .collect();
    assert_eq!(
        kinds,
        vec![("/s", true), ("/src", true), ("/t", false), ("/w", false)]
    );
    assert_eq!(run.mounts[2].kind, RunMountKind::Tmpfs(Some(1024)));
    match &run.mounts[1].kind {
        RunMountKind::Bind(p) => assert_eq!(p, &ctx.join("src")),
        k => panic!("{k:?}"),
    }
    match &run.mounts[3].kind {
        RunMountKind::Bind(p) => assert_ne!(p, &ctx.join("src"), "rw gets a copy"),
        k => panic!("{k:?}"),
    }
    assert!(
        f.live.lock().unwrap().is_empty(),
        "the stage's container is removed"
    );
    // A changed context file misses the step that binds it.
    std::fs::write(ctx.join("src/a"), "2").unwrap();
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(
        out.matches("Using cache").count(),
        1,
        "only the stage's RUN: {out}"
    );
}

#[tokio::test]
async fn network_security_and_ssh() {
    let (_d, f) = fake();
    go(
        &f,
        "FROM busybox\nRUN --network=none x\nRUN --network=host y\n",
        |_| {},
    )
    .await
    .0
    .unwrap();
    let nets: Vec<Option<String>> = f
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.network.clone())
        .collect();
    assert_eq!(nets, vec![Some("none".into()), Some("host".into())]);
    let df = "FROM busybox\nRUN --security=insecure x\n";
    let (res, _) = go(&f, df, |_| {}).await;
    assert!(res
        .unwrap_err()
        .message
        .contains("--allow-insecure-entitlement security.insecure"));
    go(&f, df, |o| o.allow_insecure = true).await.0.unwrap();
    assert!(f.runs.lock().unwrap().last().unwrap().privileged);
    let (res, _) = go(&f, "FROM busybox\nRUN --mount=type=ssh x\n", |_| {}).await;
    assert!(res
        .unwrap_err()
        .message
        .contains("needs an SSH agent socket"));
    let sock = PathBuf::from("/run/agent.sock");
    go(&f, "FROM busybox\nRUN --mount=type=ssh git fetch\n", |o| {
        o.ssh.insert("default".into(), sock.clone());
    })
    .await
    .0
    .unwrap();
    let run = f.runs.lock().unwrap().last().unwrap().clone();
    assert!(run
        .env
        .contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string()));
    assert_eq!(run.mounts[0].kind, RunMountKind::Bind(sock));
}

#[tokio::test]
async fn syntax_directive_and_platform_args() {
    let (_d, f) = fake();
    let (res, _) = go(&f, "# syntax=acme/frontend:3\nFROM busybox\n", |_| {}).await;
    assert!(res
        .unwrap_err()
        .message
        .contains("unsupported Dockerfile frontend"));
    let df = "# syntax=docker/dockerfile:1.4\nARG TARGETOS\nFROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nRUN echo $TARGETOS/$TARGETARCH\n";
    go(&f, df, |_| {}).await.0.unwrap();
    let run = f.runs.lock().unwrap()[0].clone();
    let (arch, _) = berth_image::config::host_platform();
    assert!(
        run.env.contains(&format!("TARGETARCH={arch}")),
        "{:?}",
        run.env
    );
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn add_url_with_checksum() {
    let (d, mut f) = fake();
    f.urls
        .insert("http://h/data.bin".into(), b"payload".to_vec());
    let good = "sha256:239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5";
    let df = format!("FROM busybox\nADD --checksum={good} http://h/data.bin /d/\n");
    go(&f, &df, |_| {}).await.0.unwrap();
    let copied: Vec<PathBuf> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path().join("d/data.bin"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(copied.len(), 1);
    assert_eq!(std::fs::read(&copied[0]).unwrap(), b"payload");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        copied[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bad = "FROM busybox\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 http://h/data.bin /d/\n";
    let (res, _) = go(&f, bad, |_| {}).await;
    assert!(res.unwrap_err().message.contains("digest mismatch"));
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn copy_parents_exclude_and_link() {
    let (d, f) = fake();
    let ctx = d.path().join("context");
    for (p, c) in [
        ("a/b/c.txt", "c"),
        ("a/b/d.md", "d"),
        ("a/e.md", "e"),
        ("x/y.txt", "y"),
    ] {
        let p = ctx.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    let df = "FROM busybox\nCOPY --parents a/b/*.txt ./x/./y.txt /p/\nCOPY --exclude=*.md a /ex/\nCOPY --link x/y.txt /l/\n";
    go(&f, df, |_| {}).await.0.unwrap();
    let find = |rel: &str| {
        std::fs::read_dir(d.path())
            .unwrap()
            .any(|e| e.unwrap().path().join(rel).is_file())
    };
    assert!(find("p/a/b/c.txt") && find("p/y.txt"));
    assert!(
        find("ex/b/c.txt") && find("ex/b/d.md"),
        "*.md is the top level only"
    );
    assert!(!find("ex/e.md"));
    assert!(find("l/y.txt"));
    // An excluded file's change keeps the cache; a copied one's does not.
    std::fs::write(ctx.join("a/e.md"), "changed").unwrap();
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    std::fs::write(ctx.join("a/b/c.txt"), "changed").unwrap();
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
}
