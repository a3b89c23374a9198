//! The build engine over a recording fake backend: instruction semantics, ARG scoping, the
//! cache, multi-stage and targets, ONBUILD, errors — no root, no containers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use berth_image::config::{ContainerConfig, ImageConfig};
use tokio::sync::mpsc::unbounded_channel;

use crate::engine::{
    build, Backend, BackendError, CacheMountLease, CacheMountRequest, Fetched, ImageState, Options,
    Output, RunConfig,
};

/// A recording backend: containers are directories, `RUN` "runs" by printing its command
/// (`sleep N` sleeps N×100 ms, `exit N` fails with N), commits are made-up layers.
#[derive(Default)]
pub(super) struct Fake {
    pub dir: PathBuf,
    pub images: HashMap<String, ImageState>,
    pub runs: Mutex<Vec<RunConfig>>,
    pub by_container: Mutex<HashMap<String, RunConfig>>,
    next: Mutex<u64>,
    cache: Mutex<HashMap<String, ImageState>>,
    pub live: Mutex<Vec<String>>,
    pub creates: Mutex<usize>,
    pub cache_mounts: Mutex<Vec<CacheMountRequest>>,
    /// What `fetch` serves, by URL.
    pub urls: HashMap<String, Vec<u8>>,
    /// Mount sources as they were while the step ran (path → exists).
    pub seen_sources: Mutex<Vec<(PathBuf, bool)>>,
}

impl Fake {
    pub(super) fn new(dir: PathBuf) -> Fake {
        let mut images = HashMap::new();
        images.insert(
            "busybox".to_string(),
            ImageState {
                id: "sha256:base".into(),
                config: ImageConfig {
                    config: Some(ContainerConfig {
                        cmd: Some(vec!["sh".to_string()].into()),
                        env: Some(vec!["PATH=/bin".into()]),
                        on_build: None,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                layers: vec!["sha256:l0".into()],
            },
        );
        Fake {
            dir,
            images,
            ..Default::default()
        }
    }

    fn id(&self) -> String {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        format!("{:064x}", *n)
    }
}

#[async_trait]
impl Backend for Fake {
    async fn image(&self, name: &str) -> Result<ImageState, BackendError> {
        self.images
            .get(name)
            .cloned()
            .ok_or_else(|| format!("No such image: {name}").into())
    }
    async fn create_container(
        &self,
        _image: &ImageState,
        run: Option<&RunConfig>,
    ) -> Result<(String, PathBuf), BackendError> {
        *self.creates.lock().unwrap() += 1;
        let id = self.id();
        let root = self.dir.join(&id);
        std::fs::create_dir_all(&root).unwrap();
        if let Some(r) = run {
            self.runs.lock().unwrap().push(r.clone());
            self.by_container
                .lock()
                .unwrap()
                .insert(id.clone(), r.clone());
        }
        self.live.lock().unwrap().push(id.clone());
        Ok((id, root))
    }
    async fn run_container(&self, id: &str, output: &dyn Output) -> Result<i64, BackendError> {
        let rc = self.by_container.lock().unwrap()[id].clone();
        for m in &rc.mounts {
            if let crate::engine::RunMountKind::Bind(p) = &m.kind {
                self.seen_sources
                    .lock()
                    .unwrap()
                    .push((p.clone(), p.exists()));
            }
        }
        let script = rc.cmd.join(" ");
        if let Some(n) = script
            .split("sleep ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            tokio::time::sleep(Duration::from_millis(100 * n)).await;
        }
        output.send(format!("ran: {script}\n"));
        Ok(script
            .rsplit_once("exit ")
            .and_then(|(_, c)| c.trim().parse().ok())
            .unwrap_or(0))
    }
    async fn commit(
        &self,
        _c: &str,
        parent: &ImageState,
        mut config: ImageConfig,
        _allow_empty: bool,
    ) -> Result<(ImageState, bool), BackendError> {
        let layer = format!("sha256:layer{}", self.id());
        config
            .rootfs
            .diff_ids
            .push(berth_image::Digest::sha256_of(layer.as_bytes()));
        let mut layers = parent.layers.clone();
        layers.push(layer);
        Ok((
            ImageState {
                id: format!("sha256:{}", self.id()),
                config,
                layers,
            },
            true,
        ))
    }
    async fn commit_config(
        &self,
        parent: &ImageState,
        config: ImageConfig,
    ) -> Result<ImageState, BackendError> {
        Ok(ImageState {
            id: format!("sha256:{}", self.id()),
            config,
            layers: parent.layers.clone(),
        })
    }
    async fn remove_container(&self, id: &str) {
        self.live.lock().unwrap().retain(|x| x != id);
    }
    async fn cache_get(&self, key: &str) -> Option<ImageState> {
        self.cache.lock().unwrap().get(key).cloned()
    }
    async fn cache_put(&self, key: &str, image: &ImageState) {
        self.cache
            .lock()
            .unwrap()
            .insert(key.to_string(), image.clone());
    }
    async fn cache_mount(&self, req: &CacheMountRequest) -> Result<CacheMountLease, BackendError> {
        self.cache_mounts.lock().unwrap().push(req.clone());
        let path = self.dir.join("cachemounts").join(req.id.replace('/', "_"));
        std::fs::create_dir_all(&path).unwrap();
        Ok(CacheMountLease {
            path,
            _guard: Box::new(()),
        })
    }
    async fn fetch(&self, url: &str, dir: &Path) -> Result<Fetched, BackendError> {
        let body = self
            .urls
            .get(url)
            .ok_or_else(|| BackendError::from(format!("{url}: 404 Not Found")))?;
        let path = dir.join("download");
        std::fs::write(&path, body).unwrap();
        Ok(Fetched {
            path,
            modified: Some(1_000_000_000),
        })
    }
}

pub(super) async fn go(
    fake: &Fake,
    dockerfile: &str,
    tweak: impl FnOnce(&mut Options),
) -> (Result<ImageState, crate::BuildError>, String) {
    let ctx = fake.dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut opts = Options {
        dockerfile: dockerfile.to_string(),
        context: ctx,
        ..Default::default()
    };
    tweak(&mut opts);
    let (tx, mut rx) = unbounded_channel();
    let res = build(fake, &opts, &tx).await;
    drop(tx);
    let mut out = String::new();
    while let Some(s) = rx.recv().await {
        out.push_str(&s);
    }
    (res, out)
}

pub(super) fn cc(img: &ImageState) -> ContainerConfig {
    img.config.config.clone().unwrap_or_default()
}

#[tokio::test]
async fn config_instructions() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let df = "FROM busybox\nENV A=1 B=\"x y\"\nENV C=${A}2\nLABEL l1=v1 \"l 2\"=\"v 2\"\nEXPOSE 80 53/udp\nUSER app:app\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nHEALTHCHECK --timeout=3s CMD [\"check\"]\nONBUILD copy . /src\nMAINTAINER me\n";
    let (res, out) = go(&f, df, |_| {}).await;
    let img = res.unwrap();
    let c = cc(&img);
    assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=1", "B=x y", "C=12"]);
    assert_eq!(c.labels.as_ref().unwrap()["l 2"], "v 2");
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
    assert_eq!(c.user.as_deref(), Some("app:app"));
    assert!(c.volumes.unwrap().contains_key("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(
        c.cmd.unwrap().0,
        vec!["/bin/bash", "-c", "echo hi"],
        "shell form uses SHELL"
    );
    let hc = c.healthcheck.unwrap();
    assert_eq!(hc.test.unwrap(), vec!["CMD", "check"]);
    assert_eq!(hc.timeout, Some(3_000_000_000));
    assert_eq!(c.on_build.unwrap(), vec!["COPY . /src"]);
    assert_eq!(img.config.author.as_deref(), Some("me"));
    assert!(out.contains("Step 13/13 : MAINTAINER me"));
    // Every config step is an empty layer in history.
    assert!(img
        .config
        .history
        .iter()
        .all(|h| h.empty_layer == Some(true)));
    assert_eq!(img.config.history.len(), 12);
    // The history text as dockerd's legacy builder writes it (Go's %q and %v).
    let by: Vec<&str> = img
        .config
        .history
        .iter()
        .filter_map(|h| h.created_by.as_deref())
        .collect();
    for want in [
        "/bin/sh -c #(nop)  EXPOSE 80 53/udp",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  SHELL [/bin/bash -c]",
        r#"/bin/sh -c #(nop)  CMD ["/bin/bash" "-c" "echo hi"]"#,
        r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "check"] "0s" "3s" "0s" "0s" '\x00'}"#,
    ] {
        assert!(by.contains(&want), "{want} not in {by:#?}");
    }
}

#[tokio::test]
async fn entrypoint_clears_inherited_cmd_only() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let (res, _) = go(&f, "FROM busybox\nENTRYPOINT [\"/app\"]\n", |_| {}).await;
    assert!(cc(&res.unwrap()).cmd.is_none());
    let (res, _) = go(
        &f,
        "FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"/app\"]\n",
        |_| {},
    )
    .await;
    assert_eq!(cc(&res.unwrap()).cmd.unwrap().0, vec!["x"]);
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn args_scoping_and_run_env() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let df = "ARG IMG=busybox\nARG V=global\nFROM $IMG\nARG V\nARG W=w1\nENV E=$W\nRUN echo $V\nWORKDIR sub\nWORKDIR $W\n";
    let mut args = BTreeMap::new();
    args.insert("W".to_string(), Some("fromcli".to_string()));
    args.insert("UNUSED".to_string(), Some("x".to_string()));
    let (res, out) = go(&f, df, |o| o.build_args = args).await;
    let img = res.unwrap();
    let run = f.runs.lock().unwrap()[0].clone();
    assert_eq!(run.cmd, vec!["/bin/sh", "-c", "echo $V"]);
    assert!(run.env.contains(&"V=global".to_string()), "{:?}", run.env);
    assert!(run.env.contains(&"W=fromcli".to_string()));
    assert!(run.env.contains(&"E=fromcli".to_string()));
    assert_eq!(cc(&img).working_dir.as_deref(), Some("/sub/fromcli"));
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    // ARG values are not persisted in the image's env.
    assert!(!cc(&img).env.unwrap().iter().any(|e| e.starts_with("V=")));
    let by = img
        .config
        .history
        .iter()
        .find_map(|h| h.created_by.clone().filter(|c| c.contains("echo")))
        .unwrap();
    assert!(
        by.starts_with("|2 V=global W=fromcli /bin/sh -c echo $V"),
        "{by}"
    );
}

#[tokio::test]
async fn cache_hits_and_misses() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let df = "FROM busybox\nRUN one\nENV X=1\nRUN two\n";
    let (a, out1) = go(&f, df, |_| {}).await;
    assert_eq!(out1.matches("Using cache").count(), 0);
    let (b, out2) = go(&f, df, |_| {}).await;
    assert_eq!(out2.matches("Using cache").count(), 3);
    assert_eq!(a.unwrap().id, b.unwrap().id);
    let (_, out3) = go(&f, "FROM busybox\nRUN one\nENV X=2\nRUN two\n", |_| {}).await;
    assert_eq!(
        out3.matches("Using cache").count(),
        1,
        "ENV change invalidates what follows: {out3}"
    );
    let (_, out4) = go(&f, df, |o| o.no_cache = true).await;
    assert_eq!(out4.matches("Using cache").count(), 0);
    let mut args = BTreeMap::new();
    args.insert("A".to_string(), Some("1".to_string()));
    let (_, out5) = go(&f, "FROM busybox\nARG A\nRUN one\n", |o| {
        o.build_args = args.clone()
    })
    .await;
    let (_, out6) = go(&f, "FROM busybox\nARG A\nRUN one\n", |o| {
        o.build_args = args
    })
    .await;
    assert_eq!(
        out5.matches("Using cache").count(),
        0,
        "an ARG value keys RUN"
    );
    assert_eq!(out6.matches("Using cache").count(), 2);
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn copy_hashes_content() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let ctx = d.path().join("context");
    std::fs::create_dir_all(ctx.join("dir")).unwrap();
    std::fs::write(ctx.join("a.txt"), "1").unwrap();
    std::fs::write(ctx.join("dir/b.txt"), "2").unwrap();
    let df = "FROM busybox\nWORKDIR /w\nCOPY a.txt dir ./\nCOPY --chmod=600 a.txt /single\nRUN x\n";
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 0);
    // The fake's rootfs for the COPY container got the files (dir contents, not the dir).
    let roots: Vec<PathBuf> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        roots
            .iter()
            .any(|r| r.join("w/a.txt").is_file() && r.join("w/b.txt").is_file()),
        "{roots:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert!(roots
        .iter()
        .any(|r| r
            .join("single")
            .metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600)));
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 4);
    std::fs::write(ctx.join("dir/b.txt"), "changed").unwrap();
    let (_, out) = go(&f, df, |_| {}).await;
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    assert!(f.live.lock().unwrap().is_empty(), "every container removed");
}

#[tokio::test]
async fn multi_stage_target_and_onbuild() {
    let d = tempfile::tempdir().unwrap();
    let mut f = Fake::new(d.path().to_path_buf());
    let mut trig = f.images["busybox"].clone();
    trig.config.config.as_mut().unwrap().on_build = Some(vec!["ENV TRIGGERED=yes".into()]);
    f.images.insert("withtrigger".into(), trig);
    let df = "FROM busybox AS one\nENV S=one\nFROM withtrigger AS two\nENV S=two\nFROM one\nENV T=three\n";
    let (res, out) = go(&f, df, |o| o.target = Some("two".into())).await;
    let img = res.unwrap();
    let env = cc(&img).env.unwrap();
    assert!(env.contains(&"TRIGGERED=yes".to_string()), "{env:?}");
    assert!(env.contains(&"S=two".to_string()));
    assert!(cc(&img).on_build.is_none(), "triggers are consumed");
    assert!(out.contains("# Executing 1 build trigger"));
    assert!(!out.contains("T=three"));
    let (res, _) = go(&f, df, |_| {}).await;
    let env = cc(&res.unwrap()).env.unwrap();
    assert!(
        env.contains(&"S=one".to_string()) && env.contains(&"T=three".to_string()),
        "FROM an earlier stage"
    );
    let (res, _) = go(&f, df, |o| o.target = Some("nope".into())).await;
    assert!(res
        .unwrap_err()
        .message
        .contains("failed to reach build target nope"));
}

#[tokio::test]
async fn errors_name_the_line() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let (res, out) = go(&f, "FROM busybox\nRUN ok\nRUN bad; exit 7\n", |_| {}).await;
    let e = res.unwrap_err();
    assert_eq!(e.line, Some(3));
    assert_eq!(e.code, Some(7));
    assert_eq!(
        e.message,
        "The command '/bin/sh -c bad; exit 7' returned a non-zero code: 7"
    );
    assert!(out.contains("ran: /bin/sh -c bad; exit 7"));
    let (res, _) = go(&f, "FROM busybox\n\nCOPY missing /x\n", |_| {}).await;
    let e = res.unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(
        e.message.contains("file not found in build context"),
        "{}",
        e.message
    );
    let (res, _) = go(&f, "FROM nosuch\n", |_| {}).await;
    assert!(res.unwrap_err().message.contains("No such image: nosuch"));
    let (res, _) = go(&f, "FROM busybox\nCOPY a b c\n", |_| {}).await;
    assert!(res.is_err());
    let (res, _) = go(
        &f,
        "FROM busybox\nADD http://example.invalid/x /x\n",
        |_| {},
    )
    .await;
    assert!(res.unwrap_err().message.contains("404 Not Found"));
    let (res, _) = go(&f, "FROM busybox\nCOPY --bogus=1 a /b\n", |_| {}).await;
    assert!(res.unwrap_err().message.contains("Unknown flag: bogus"));
    assert!(
        f.live.lock().unwrap().is_empty(),
        "every container removed after failures"
    );
}

#[tokio::test]
async fn heredoc_run_forms() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let df = "FROM busybox\nRUN <<EOF\necho a\nEOF\nRUN cat <<X > /f\nbody\nX\nRUN [\"/bin/true\", \"x\"]\n";
    go(&f, df, |_| {}).await.0.unwrap();
    let runs = f.runs.lock().unwrap().clone();
    assert_eq!(runs[0].cmd, vec!["/bin/sh", "-c", "echo a\n"]);
    assert_eq!(runs[1].cmd, vec!["/bin/sh", "-c", "cat <<X > /f\nbody\nX"]);
    assert_eq!(runs[2].cmd, vec!["/bin/true", "x"]);
}

#[tokio::test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
async fn copy_from_stage_hits_cache_without_mounting() {
    let d = tempfile::tempdir().unwrap();
    let f = Fake::new(d.path().to_path_buf());
    let df = "FROM busybox AS a\nRUN make\nFROM busybox\nCOPY --from=a /out /out\n";
    // The fake's stage rootfs is empty: the first build fails to find /out...
    let (res, _) = go(&f, df, |_| {}).await;
    assert!(res.unwrap_err().message.contains("file not found"));
    // ...so give the source a file by building a stage whose COPY source exists.
    let ctx = d.path().join("context");
    std::fs::write(ctx.join("x"), "1").unwrap();
    let df = "FROM busybox AS a\nCOPY x /x\nFROM busybox\nCOPY --from=0 / /copied\n";
    go(&f, df, |_| {}).await.0.unwrap();
    let before = *f.creates.lock().unwrap();
    let (res, out) = go(&f, df, |_| {}).await;
    res.unwrap();
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert_eq!(
        *f.creates.lock().unwrap(),
        before,
        "a cached COPY --from mounts nothing"
    );
}

#[test]
fn cache_from_matches_history_and_layer_prefixes() {
    use crate::engine::match_cache_from;
    use berth_image::config::History;
    use berth_image::digest::Digest;
    let h = |c: &str, empty: bool| History {
        created_by: Some(c.to_string()),
        created: Some(format!("t-{c}")),
        empty_layer: empty.then_some(true),
        ..Default::default()
    };
    let d = |s: &str| Digest::sha256_of(s.as_bytes());
    let mut base = ImageState {
        id: "sha256:base".into(),
        ..Default::default()
    };
    base.config.history = vec![h("ADD rootfs", false)];
    base.config.rootfs.diff_ids = vec![d("l0")];
    base.layers = vec!["c0".into()];
    let mut src = base.clone();
    src.config.history.push(h("RUN a", false));
    src.config.history.push(h("ENV X=1", true));
    src.config.history.push(h("RUN b", false));
    src.config.rootfs.diff_ids.extend([d("l1"), d("l2")]);
    src.layers.extend(["c1".to_string(), "c2".to_string()]);
    let srcs = vec![src];

    // The first step: one more layer, the source's history entry (and its time).
    let (cfg, layers) = match_cache_from(&srcs, &base, "RUN a").expect("hit");
    assert_eq!(layers, ["c0", "c1"]);
    assert_eq!(cfg.rootfs.diff_ids, [d("l0"), d("l1")]);
    assert_eq!(cfg.history.len(), 2);
    assert_eq!(cfg.created.as_deref(), Some("t-RUN a"));
    // A different command, or the right command at the wrong place, misses.
    assert!(match_cache_from(&srcs, &base, "RUN other").is_none());
    assert!(match_cache_from(&srcs, &base, "RUN b").is_none());
    assert!(match_cache_from(&[], &base, "RUN a").is_none());

    // An empty-layer step keeps the layers; the next one adds its own.
    let mut p1 = base.clone();
    p1.config = cfg;
    p1.layers = layers;
    let (cfg2, layers2) = match_cache_from(&srcs, &p1, "ENV X=1").expect("hit");
    assert_eq!(layers2, ["c0", "c1"]);
    let mut p2 = p1.clone();
    p2.config = cfg2;
    let (_, layers3) = match_cache_from(&srcs, &p2, "RUN b").expect("hit");
    assert_eq!(layers3, ["c0", "c1", "c2"]);

    // A parent whose layers differ from the source's is not a prefix.
    let mut other = p1.clone();
    other.config.rootfs.diff_ids[1] = d("zz");
    assert!(match_cache_from(&srcs, &other, "ENV X=1").is_none());
}
