//! The build itself: stages, instructions, the layer cache — over a [`Backend`] that owns
//! images and containers (the daemon implements it).
//!
//! Output follows Docker's legacy builder line for line: `Step n/m : <instruction>`,
//! ` ---> Using cache`, ` ---> Running in <id>`, the command's output,
//! ` ---> Removed intermediate container <id>`, ` ---> <image id>`.
//!
//! The cache key of a step is the hash of its parent image id, its `created_by` text (which
//! for `COPY`/`ADD` names a hash of the copied content, never mtimes) and the resulting
//! runtime config (env, user, workdir, shell...), so a change to any of those misses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_image::config::{ContainerConfig, HealthConfig, History, ImageConfig, StrSlice};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::copy::{self, Owner};
use crate::parser::{self, Args, Instruction};
use crate::shell::{self, Vars};

/// An image as the builder sees it.
#[derive(Debug, Clone, Default)]
pub struct ImageState {
    /// `sha256:...`; empty for `scratch`.
    pub id: String,
    pub config: ImageConfig,
    /// Layer chain ids, bottom first.
    pub layers: Vec<String>,
}

/// What a `RUN` container executes.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
}

/// The image and container operations the builder needs.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Finds a local image by name or id.
    async fn image(&self, name: &str) -> Result<ImageState, String>;
    /// Creates a build container on `image` and mounts its root filesystem read-write;
    /// returns the container id and the rootfs path.
    async fn create_container(
        &self,
        image: &ImageState,
        run: Option<&RunConfig>,
    ) -> Result<(String, PathBuf), String>;
    /// Starts a container created with a [`RunConfig`], forwards its output, returns its
    /// exit code.
    async fn run_container(
        &self,
        id: &str,
        output: &UnboundedSender<String>,
    ) -> Result<i64, String>;
    /// Turns the container's filesystem changes into a new layer on `parent` and stores
    /// `config` (its diff ids are completed here). With `allow_empty`, no changes means no
    /// layer: the config is stored alone and its last history entry marked `empty_layer`.
    /// Returns the image and whether a layer was added.
    async fn commit(
        &self,
        container: &str,
        parent: &ImageState,
        config: ImageConfig,
        allow_empty: bool,
    ) -> Result<(ImageState, bool), String>;
    /// Stores a config-only image on top of `parent`'s layers.
    async fn commit_config(
        &self,
        parent: &ImageState,
        config: ImageConfig,
    ) -> Result<ImageState, String>;
    /// Removes a build container (and unmounts it).
    async fn remove_container(&self, id: &str);
    async fn cache_get(&self, key: &str) -> Option<ImageState>;
    async fn cache_put(&self, key: &str, image: &ImageState);
    /// Images named by `--cache-from`: their history can satisfy cache lookups.
    fn cache_sources(&self) -> &[ImageState] {
        &[]
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dockerfile: String,
    /// The unpacked build context.
    pub context: PathBuf,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
}

/// A failed build: Docker's message, and where.
#[derive(Debug, Clone)]
pub struct BuildError {
    pub message: String,
    /// Dockerfile line of the failing instruction.
    pub line: Option<usize>,
    /// Exit code of a failed `RUN`.
    pub code: Option<i64>,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(message: impl Into<String>) -> BuildError {
    BuildError {
        message: message.into(),
        line: None,
        code: None,
    }
}

/// The argument names every build accepts without an `ARG` line.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

struct Stage {
    name: Option<String>,
    state: ImageState,
}

struct StageCtx {
    state: ImageState,
    /// ARGs declared in this stage with their values.
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

impl StageCtx {
    fn cc(&mut self) -> &mut ContainerConfig {
        self.state
            .config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn env(&self) -> Vec<String> {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// ARG values first, ENV overrides them (Docker's precedence).
    fn vars(&self) -> Vars {
        let mut v: Vars = HashMap::new();
        for (k, val) in &self.args {
            if let Some(val) = val {
                v.insert(k.clone(), val.clone());
            }
        }
        for e in self.env() {
            match e.split_once('=') {
                Some((k, val)) => v.insert(k.to_string(), val.to_string()),
                None => v.insert(e.clone(), String::new()),
            };
        }
        v
    }

    fn shell(&self) -> Vec<String> {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .map(|s| s.0)
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// Runs a build; returns the final image (not yet tagged).
pub async fn build(
    backend: &dyn Backend,
    opts: &Options,
    out: &UnboundedSender<String>,
) -> Result<ImageState, BuildError> {
    let df = parser::parse(&opts.dockerfile).map_err(|e| BuildError {
        message: e.to_string(),
        line: Some(e.line),
        code: None,
    })?;
    for w in &df.warnings {
        let _ = out.send(format!("[WARNING]: {w}\n"));
    }
    let escape = df.escape;
    // Which instructions run: up to the end of the target stage.
    let mut end = df.instructions.len();
    if let Some(t) = opts.target.as_deref().filter(|t| !t.is_empty()) {
        let mut found = None;
        for (i, inst) in df.instructions.iter().enumerate() {
            if inst.cmd == "FROM" {
                if let Some(n) = stage_name(inst) {
                    if n.eq_ignore_ascii_case(t) {
                        found = Some(i);
                    }
                }
            }
        }
        let Some(start) = found else {
            return Err(fail(format!(
                "failed to reach build target {t} in Dockerfile"
            )));
        };
        end = df.instructions[start + 1..]
            .iter()
            .position(|i| i.cmd == "FROM")
            .map(|p| start + 1 + p)
            .unwrap_or(df.instructions.len());
    }
    let label_step = !opts.labels.is_empty();
    let total = end + usize::from(label_step);
    let mut used_args: HashSet<String> = HashSet::new();
    let mut meta_args: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut cur: Option<StageCtx> = None;
    let mut cur_name: Option<String> = None;
    let mut step = 0;
    for inst in &df.instructions[..end] {
        step += 1;
        let _ = out.send(format!("Step {step}/{total} : {}\n", inst.original));
        let res = match cur.as_mut() {
            None if inst.cmd == "ARG" => declare_args(
                inst,
                &mut meta_args,
                &opts.build_args,
                &mut used_args,
                &Vars::new(),
                escape,
            ),
            _ if inst.cmd == "FROM" => {
                if let Some(done) = cur.take() {
                    stages.push(Stage {
                        name: cur_name.take(),
                        state: done.state,
                    });
                }
                let mut vars = Vars::new();
                for (k, v) in &meta_args {
                    if let Some(v) = v {
                        vars.insert(k.clone(), v.clone());
                    }
                }
                match from(backend, inst, &stages, &vars, escape, out).await {
                    Ok(state) => {
                        cur_name = stage_name(inst);
                        let mut ctx = StageCtx {
                            state,
                            args: BTreeMap::new(),
                            cmd_set: false,
                        };
                        let triggers = ctx
                            .state
                            .config
                            .config
                            .as_mut()
                            .and_then(|c| c.on_build.take())
                            .unwrap_or_default();
                        let mut r = Ok(());
                        if !triggers.is_empty() {
                            let _ = out.send(format!(
                                "# Executing {} build trigger{}\n",
                                triggers.len(),
                                if triggers.len() == 1 { "" } else { "s" }
                            ));
                        }
                        for t in triggers {
                            let tinst = match parser::parse_line(&t, inst.line, escape) {
                                Ok(i) => i,
                                Err(e) => {
                                    r = Err(fail(e.message));
                                    break;
                                }
                            };
                            r = dispatch(
                                backend,
                                &tinst,
                                &mut ctx,
                                opts,
                                &stages,
                                &meta_args,
                                &mut used_args,
                                escape,
                                out,
                            )
                            .await;
                            if r.is_err() {
                                break;
                            }
                        }
                        cur = Some(ctx);
                        r
                    }
                    Err(e) => Err(e),
                }
            }
            None => Err(fail(format!(
                "no build stage in current context: {}",
                inst.cmd
            ))),
            Some(ctx) => {
                dispatch(
                    backend,
                    inst,
                    ctx,
                    opts,
                    &stages,
                    &meta_args,
                    &mut used_args,
                    escape,
                    out,
                )
                .await
            }
        };
        if let Err(mut e) = res {
            e.line.get_or_insert(inst.line);
            return Err(e);
        }
        if let Some(ctx) = cur.as_ref().filter(|c| !c.state.id.is_empty()) {
            let _ = out.send(format!(" ---> {}\n", short(&ctx.state.id)));
        }
    }
    let Some(mut ctx) = cur else {
        return Err(fail("no build stage in current context"));
    };
    if label_step {
        step += 1;
        let text = opts
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = out.send(format!("Step {step}/{total} : LABEL {text}\n"));
        for (k, v) in &opts.labels {
            ctx.cc()
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(k.clone(), v.clone());
        }
        let created_by = format!("/bin/sh -c #(nop)  LABEL {text}");
        config_step(backend, &mut ctx, created_by, opts.no_cache, out).await?;
        let _ = out.send(format!(" ---> {}\n", short(&ctx.state.id)));
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        let _ = out.send(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        ));
    }
    if ctx.state.id.is_empty() {
        // `FROM scratch` and nothing else still makes an image.
        let cfg = new_config(&ctx.state.config);
        ctx.state = backend.commit_config(&ctx.state, cfg).await.map_err(fail)?;
    }
    Ok(ctx.state)
}

fn shell_quote(v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

/// The 12-hex-digit id Docker prints.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

fn stage_name(inst: &Instruction) -> Option<String> {
    let t = inst.args.text();
    let w: Vec<&str> = t.split_whitespace().collect();
    (w.len() == 3 && w[1].eq_ignore_ascii_case("as")).then(|| w[2].to_ascii_lowercase())
}

async fn from(
    backend: &dyn Backend,
    inst: &Instruction,
    stages: &[Stage],
    vars: &Vars,
    escape: char,
    out: &UnboundedSender<String>,
) -> Result<ImageState, BuildError> {
    let t = inst.args.text();
    let first = t.split_whitespace().next().unwrap_or("");
    let name = shell::expand_word(first, vars, escape).map_err(fail)?;
    if name.is_empty() {
        return Err(fail(
            "base name (".to_string() + first + ") should not be blank",
        ));
    }
    if name.eq_ignore_ascii_case("scratch") {
        let (arch, variant) = berth_image::config::host_platform();
        return Ok(ImageState {
            id: String::new(),
            config: ImageConfig {
                architecture: arch.to_string(),
                os: "linux".into(),
                variant: variant.filter(|v| *v != "v8").map(str::to_string),
                config: Some(ContainerConfig {
                    env: Some(vec![
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            layers: Vec::new(),
        });
    }
    if let Some(s) = stages
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(name.to_ascii_lowercase().as_str()))
    {
        return Ok(s.state.clone());
    }
    let _ = out;
    backend.image(&name).await.map_err(fail)
}

fn declare_args(
    inst: &Instruction,
    into: &mut BTreeMap<String, Option<String>>,
    build_args: &BTreeMap<String, Option<String>>,
    used: &mut HashSet<String>,
    vars: &Vars,
    escape: char,
) -> Result<(), BuildError> {
    for w in shell::raw_words(&inst.args.text()) {
        let (name, default) = match w.split_once('=') {
            Some((k, v)) => (
                k.to_string(),
                Some(shell::expand_word(v, vars, escape).map_err(fail)?),
            ),
            None => (w.clone(), None),
        };
        if name.is_empty() {
            return Err(fail("ARG names can not be blank"));
        }
        let value = match build_args.get(&name) {
            Some(Some(v)) => {
                used.insert(name.clone());
                Some(v.clone())
            }
            Some(None) => {
                used.insert(name.clone());
                default
            }
            None => default,
        };
        into.insert(name, value);
    }
    Ok(())
}

/// A config for the next image: the parent's, with history copied and the time refreshed.
fn new_config(parent: &ImageConfig) -> ImageConfig {
    let mut c = parent.clone();
    c.created = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    c.container = None;
    c.container_config = None;
    c
}

fn cache_key(parent: &ImageState, created_by: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.id.as_bytes());
    h.update([0]);
    h.update(parent.layers.join(",").as_bytes());
    h.update([0]);
    h.update(created_by.as_bytes());
    h.update([0]);
    let cfg = serde_json::to_vec(&parent.config.config).unwrap_or_default();
    h.update(&cfg);
    hex::encode(h.finalize())
}

/// The layer cache, then the `--cache-from` images (as Docker's legacy builder does): a
/// source image whose history and layers extend the parent's with this very step gives the
/// step's result without running it.
async fn lookup(
    backend: &dyn Backend,
    key: &str,
    parent: &ImageState,
    created_by: &str,
) -> Option<ImageState> {
    if let Some(hit) = backend.cache_get(key).await {
        return Some(hit);
    }
    let (cfg, layers) = match_cache_from(backend.cache_sources(), parent, created_by)?;
    let base = ImageState {
        layers,
        ..parent.clone()
    };
    let next = backend.commit_config(&base, cfg).await.ok()?;
    backend.cache_put(key, &next).await;
    Some(next)
}

/// Finds the step `created_by` on top of `parent` in a `--cache-from` image: the image's
/// history and layers must start with the parent's, and its next history entry must be this
/// step. Returns the step's config (the parent's config, which already carries a config
/// step's change, with the source's history and layers up to the step) and layer chain.
pub fn match_cache_from(
    sources: &[ImageState],
    parent: &ImageState,
    created_by: &str,
) -> Option<(ImageConfig, Vec<String>)> {
    let ph = &parent.config.history;
    let pd = &parent.config.rootfs.diff_ids;
    let same = |a: &History, b: &History| {
        a.created_by == b.created_by
            && a.empty_layer.unwrap_or(false) == b.empty_layer.unwrap_or(false)
    };
    for src in sources {
        let sh = &src.config.history;
        let sd = &src.config.rootfs.diff_ids;
        if sh.len() <= ph.len()
            || !ph.iter().zip(sh.iter()).all(|(a, b)| same(a, b))
            || sd.len() < pd.len()
            || sd[..pd.len()] != pd[..]
            || src.layers.len() != sd.len()
        {
            continue;
        }
        let step = &sh[ph.len()];
        if step.created_by.as_deref() != Some(created_by) {
            continue;
        }
        let n = pd.len() + usize::from(!step.empty_layer.unwrap_or(false));
        if n > sd.len() {
            continue;
        }
        let mut cfg = parent.config.clone();
        cfg.history = sh[..=ph.len()].to_vec();
        cfg.rootfs.diff_ids = sd[..n].to_vec();
        cfg.created = step.created.clone().or_else(|| src.config.created.clone());
        cfg.container = None;
        cfg.container_config = None;
        return Some((cfg, src.layers[..n].to_vec()));
    }
    None
}

fn push_history(cfg: &mut ImageConfig, created_by: &str, empty: bool) {
    cfg.history.push(History {
        created: cfg.created.clone(),
        created_by: Some(created_by.to_string()),
        empty_layer: empty.then_some(true),
        ..Default::default()
    });
}

/// A step that only changes the config (ENV, LABEL, CMD...): cached like any other.
async fn config_step(
    backend: &dyn Backend,
    ctx: &mut StageCtx,
    created_by: String,
    no_cache: bool,
    out: &UnboundedSender<String>,
) -> Result<(), BuildError> {
    // The key covers the config *after* the change: ctx.state.config already has it.
    let key = cache_key(&ctx.state, &created_by);
    if !no_cache {
        if let Some(hit) = lookup(backend, &key, &ctx.state, &created_by).await {
            let _ = out.send(" ---> Using cache\n".into());
            ctx.state = hit;
            return Ok(());
        }
    }
    let mut cfg = new_config(&ctx.state.config);
    push_history(&mut cfg, &created_by, true);
    let next = backend.commit_config(&ctx.state, cfg).await.map_err(fail)?;
    backend.cache_put(&key, &next).await;
    ctx.state = next;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    backend: &dyn Backend,
    inst: &Instruction,
    ctx: &mut StageCtx,
    opts: &Options,
    stages: &[Stage],
    meta_args: &BTreeMap<String, Option<String>>,
    used_args: &mut HashSet<String>,
    escape: char,
    out: &UnboundedSender<String>,
) -> Result<(), BuildError> {
    let vars = ctx.vars();
    let text = inst.args.text();
    let expand = |s: &str| shell::expand_word(s, &vars, escape).map_err(fail);
    let nop = |s: String| format!("/bin/sh -c #(nop)  {s}");
    match inst.cmd.as_str() {
        "ARG" => {
            let mut declared = BTreeMap::new();
            declare_args(
                inst,
                &mut declared,
                &opts.build_args,
                used_args,
                &vars,
                escape,
            )?;
            for (k, v) in declared {
                // `ARG X` in a stage picks up the value of a global `ARG X`.
                let v = v.or_else(|| {
                    if opts.build_args.contains_key(&k) {
                        None
                    } else {
                        meta_args.get(&k).cloned().flatten()
                    }
                });
                ctx.args.insert(k, v);
            }
            let shown = ctx
                .args
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            if ctx.state.id.is_empty() {
                return Ok(());
            }
            config_step(
                backend,
                ctx,
                nop(format!("ARG {shown}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "ENV" => {
            let pairs = shell::name_values(&text, true).map_err(fail)?;
            let mut shown = Vec::new();
            let mut env = ctx.env();
            // As Docker documents it, every pair is expanded with the variables as they were
            // before this instruction: `ENV A=1 B=$A` does not see the new A.
            for (k, raw) in pairs {
                let v = shell::expand_word(&raw, &vars, escape).map_err(fail)?;
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix) && *e != k);
                env.push(format!("{k}={v}"));
                shown.push(format!("{k}={v}"));
            }
            ctx.cc().env = Some(env);
            config_step(
                backend,
                ctx,
                nop(format!("ENV {}", shown.join(" "))),
                opts.no_cache,
                out,
            )
            .await
        }
        "LABEL" => {
            let pairs = shell::name_values(&text, false).map_err(fail)?;
            let mut shown = Vec::new();
            for (k, raw) in pairs {
                let k = expand(&k)?;
                let v = expand(&raw)?;
                shown.push(format!("{k}={}", shell_quote(&v)));
                ctx.cc()
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k, v);
            }
            config_step(
                backend,
                ctx,
                nop(format!("LABEL {}", shown.join(" "))),
                opts.no_cache,
                out,
            )
            .await
        }
        "MAINTAINER" => {
            ctx.state.config.author = Some(expand(&text)?);
            config_step(
                backend,
                ctx,
                nop(format!("MAINTAINER {text}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "EXPOSE" => {
            let words = shell::expand_words(&text, &vars, escape).map_err(fail)?;
            let mut ports = Vec::new();
            for w in &words {
                ports.extend(berth_image::archive::expand_port(w).map_err(fail)?);
            }
            let map = ctx.cc().exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in &ports {
                map.insert(p.clone(), json!({}));
            }
            config_step(
                backend,
                ctx,
                nop(format!("EXPOSE {}", ports.join(" "))),
                opts.no_cache,
                out,
            )
            .await
        }
        "USER" => {
            let u = expand(text.trim())?;
            ctx.cc().user = Some(u.clone());
            config_step(backend, ctx, nop(format!("USER {u}")), opts.no_cache, out).await
        }
        "STOPSIGNAL" => {
            let s = expand(text.trim())?;
            ctx.cc().stop_signal = Some(s.clone());
            config_step(
                backend,
                ctx,
                nop(format!("STOPSIGNAL {s}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "VOLUME" => {
            let vols = match &inst.args {
                Args::Json(v) => v.clone(),
                Args::Shell(_) => shell::expand_words(&text, &vars, escape).map_err(fail)?,
            };
            for v in &vols {
                if v.trim().is_empty() {
                    return Err(fail("VOLUME specified can not be an empty string"));
                }
            }
            let map = ctx.cc().volumes.get_or_insert_with(BTreeMap::new);
            for v in &vols {
                map.insert(v.clone(), json!({}));
            }
            config_step(
                backend,
                ctx,
                nop(format!("VOLUME {vols:?}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "SHELL" => {
            let Args::Json(v) = &inst.args else {
                return Err(fail("SHELL requires the arguments to be in JSON form"));
            };
            ctx.cc().shell = Some(StrSlice(v.clone()));
            config_step(
                backend,
                ctx,
                nop(format!("SHELL {text}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "CMD" | "ENTRYPOINT" => {
            let v = match &inst.args {
                Args::Json(v) => v.clone(),
                Args::Shell(s) if s.trim().is_empty() => Vec::new(),
                Args::Shell(s) => {
                    let mut sh = ctx.shell();
                    sh.push(s.clone());
                    sh
                }
            };
            let shown = serde_json::to_string(&v).unwrap_or_default();
            if inst.cmd == "CMD" {
                ctx.cc().cmd = Some(StrSlice(v));
                ctx.cmd_set = true;
            } else {
                ctx.cc().entrypoint = if v.is_empty() {
                    None
                } else {
                    Some(StrSlice(v))
                };
                if !ctx.cmd_set {
                    // An ENTRYPOINT drops the CMD inherited from the base image.
                    ctx.cc().cmd = None;
                }
            }
            config_step(
                backend,
                ctx,
                nop(format!("{} {shown}", inst.cmd)),
                opts.no_cache,
                out,
            )
            .await
        }
        "HEALTHCHECK" => {
            let hc = healthcheck(inst, &ctx.shell())?;
            ctx.cc().healthcheck = Some(hc);
            // History shows the flags too (`--interval=5s CMD ...`).
            let shown = inst
                .original
                .split_once(char::is_whitespace)
                .map(|(_, r)| r.trim().to_string())
                .unwrap_or_default();
            config_step(
                backend,
                ctx,
                nop(format!("HEALTHCHECK {shown}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "ONBUILD" => {
            let trimmed = text.trim();
            let (first, rest) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            let trigger = format!("{} {}", first.to_ascii_uppercase(), rest.trim());
            ctx.cc()
                .on_build
                .get_or_insert_with(Vec::new)
                .push(trigger.clone());
            config_step(
                backend,
                ctx,
                nop(format!("ONBUILD {trigger}")),
                opts.no_cache,
                out,
            )
            .await
        }
        "WORKDIR" => {
            let w = expand(text.trim())?;
            let base = ctx
                .state
                .config
                .config
                .as_ref()
                .and_then(|c| c.working_dir.clone())
                .unwrap_or_else(|| "/".into());
            let joined = if w.starts_with('/') {
                PathBuf::from(&w)
            } else {
                Path::new(&base).join(&w)
            };
            let dir = format!(
                "/{}",
                copy::clean_rel(&joined.to_string_lossy()).to_string_lossy()
            );
            ctx.cc().working_dir = Some(dir.clone());
            // The directory is created in the image (a layer only when it was missing).
            let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
            let key = cache_key(&ctx.state, &created_by);
            if !opts.no_cache {
                if let Some(hit) = lookup(backend, &key, &ctx.state, &created_by).await {
                    let _ = out.send(" ---> Using cache\n".into());
                    ctx.state = hit;
                    return Ok(());
                }
            }
            let (cid, rootfs) = backend
                .create_container(&ctx.state, None)
                .await
                .map_err(fail)?;
            let res = mkdir_in(&rootfs, &dir).await;
            let res = match res {
                Ok(()) => {
                    let mut cfg = new_config(&ctx.state.config);
                    push_history(&mut cfg, &created_by, false);
                    backend
                        .commit(&cid, &ctx.state, cfg, true)
                        .await
                        .map_err(fail)
                }
                Err(e) => Err(e),
            };
            backend.remove_container(&cid).await;
            let (next, _) = res?;
            backend.cache_put(&key, &next).await;
            ctx.state = next;
            Ok(())
        }
        "RUN" => run(backend, inst, ctx, opts, escape, out).await,
        "COPY" | "ADD" => copy_step(backend, inst, ctx, opts, stages, &vars, escape, out).await,
        other => Err(fail(format!("unknown instruction: {other}"))),
    }
}

async fn mkdir_in(rootfs: &Path, dir: &str) -> Result<(), BuildError> {
    let target = copy::in_root(rootfs, dir);
    tokio::task::spawn_blocking(move || copy::mkdir_all(&target, Owner::default()))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(format!("failed to create working directory {dir}: {e}")))
}

fn parse_duration(s: &str) -> Result<i64, String> {
    // Go durations: sequences like 1h2m3s, 500ms, 1.5s.
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    if s.is_empty() {
        return Err("invalid duration \"\"".into());
    }
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            i += 1;
            continue;
        }
        let mut unit = String::new();
        while i < chars.len() && !(chars[i].is_ascii_digit() || chars[i] == '.') {
            unit.push(chars[i]);
            i += 1;
        }
        let n: f64 = num
            .parse()
            .map_err(|_| format!("time: invalid duration \"{s}\""))?;
        num.clear();
        let mult = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += n * mult;
    }
    if !num.is_empty() {
        if num == "0" {
            return Ok(0);
        }
        return Err(format!("time: missing unit in duration \"{s}\""));
    }
    Ok(total as i64)
}

fn healthcheck(inst: &Instruction, shell: &[String]) -> Result<HealthConfig, BuildError> {
    let text = inst.args.text();
    let trimmed = text.trim();
    let (kind, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let mut hc = HealthConfig::default();
    if kind.eq_ignore_ascii_case("NONE") {
        if !rest.trim().is_empty() {
            return Err(fail("HEALTHCHECK NONE takes no arguments"));
        }
        hc.test = Some(vec!["NONE".into()]);
        return Ok(hc);
    }
    let dur = |name: &str| -> Result<Option<i64>, BuildError> {
        match inst.flag(name) {
            Some(v) => {
                let d = parse_duration(v).map_err(fail)?;
                if d != 0 && d < 1_000_000 {
                    return Err(fail(format!("Interval \"{name}\" cannot be less than 1ms")));
                }
                Ok(Some(d))
            }
            None => Ok(None),
        }
    };
    for (k, _) in &inst.flags {
        if !matches!(
            k.as_str(),
            "interval" | "timeout" | "start-period" | "start-interval" | "retries"
        ) {
            return Err(fail(format!("Unknown flag: {k}")));
        }
    }
    hc.interval = dur("interval")?;
    hc.timeout = dur("timeout")?;
    hc.start_period = dur("start-period")?;
    hc.start_interval = dur("start-interval")?;
    if let Some(r) = inst.flag("retries") {
        let n: i64 = r
            .parse()
            .map_err(|_| fail(format!("invalid retries value {r:?}")))?;
        if n < 0 {
            return Err(fail("--retries cannot be negative"));
        }
        hc.retries = Some(n);
    }
    let rest = rest.trim();
    let test = if rest.starts_with('[') {
        let v: Vec<String> = serde_json::from_str(rest).map_err(|e| fail(e.to_string()))?;
        let mut t = vec!["CMD".to_string()];
        t.extend(v);
        t
    } else {
        let _ = shell;
        vec!["CMD-SHELL".to_string(), rest.to_string()]
    };
    hc.test = Some(test);
    Ok(hc)
}

async fn run(
    backend: &dyn Backend,
    inst: &Instruction,
    ctx: &mut StageCtx,
    opts: &Options,
    escape: char,
    out: &UnboundedSender<String>,
) -> Result<(), BuildError> {
    let _ = escape;
    let cmd: Vec<String> = match &inst.args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => {
            let mut sh = ctx.shell();
            let specs = parser::heredoc_specs(s);
            let only_heredoc = inst.heredocs.len() == 1
                && s.trim()
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == inst.heredocs[0].name;
            if only_heredoc {
                // `RUN <<EOF`: the body is the script.
                sh.push(inst.heredocs[0].content.clone());
            } else if !specs.is_empty() {
                // `RUN cat <<EOF > f`: the shell reads the heredocs itself.
                let mut script = s.clone();
                for h in &inst.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                sh.push(script);
            } else {
                sh.push(s.clone());
            }
            sh
        }
    };
    // Build args declared in the stage reach RUN as environment (and key the cache).
    let env_names: HashSet<String> = ctx
        .env()
        .iter()
        .map(|e| e.split('=').next().unwrap_or("").to_string())
        .collect();
    let arg_env: Vec<String> = ctx
        .args
        .iter()
        .filter(|(k, _)| !env_names.contains(*k))
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut created_by = cmd.join(" ");
    if !arg_env.is_empty() {
        created_by = format!("|{} {} {created_by}", arg_env.len(), arg_env.join(" "));
    }
    let key = cache_key(&ctx.state, &created_by);
    if !opts.no_cache {
        if let Some(hit) = lookup(backend, &key, &ctx.state, &created_by).await {
            let _ = out.send(" ---> Using cache\n".into());
            ctx.state = hit;
            return Ok(());
        }
    }
    let cc = ctx.state.config.config.clone().unwrap_or_default();
    let mut env = cc.env.clone().unwrap_or_default();
    env.extend(arg_env);
    let rc = RunConfig {
        cmd: cmd.clone(),
        env,
        user: cc.user.clone().unwrap_or_default(),
        workdir: cc.working_dir.clone().unwrap_or_default(),
    };
    let (cid, _) = backend
        .create_container(&ctx.state, Some(&rc))
        .await
        .map_err(fail)?;
    let _ = out.send(format!(" ---> Running in {}\n", short(&cid)));
    let code = match backend.run_container(&cid, out).await {
        Ok(c) => c,
        Err(e) => {
            backend.remove_container(&cid).await;
            return Err(fail(e));
        }
    };
    if code != 0 {
        backend.remove_container(&cid).await;
        return Err(BuildError {
            message: format!(
                "The command '{}' returned a non-zero code: {code}",
                cmd.join(" ")
            ),
            line: Some(inst.line),
            code: Some(code),
        });
    }
    let mut cfg = new_config(&ctx.state.config);
    push_history(&mut cfg, &created_by, false);
    let res = backend.commit(&cid, &ctx.state, cfg, false).await;
    backend.remove_container(&cid).await;
    let _ = out.send(format!(
        " ---> Removed intermediate container {}\n",
        short(&cid)
    ));
    let (next, _) = res.map_err(fail)?;
    backend.cache_put(&key, &next).await;
    ctx.state = next;
    Ok(())
}

/// One thing to copy: an absolute host path (context, stage rootfs or heredoc file).
struct Source {
    host: PathBuf,
    /// Name used when copying a file into a directory.
    name: String,
    is_dir: bool,
}

#[allow(clippy::too_many_arguments)]
async fn copy_step(
    backend: &dyn Backend,
    inst: &Instruction,
    ctx: &mut StageCtx,
    opts: &Options,
    stages: &[Stage],
    vars: &Vars,
    escape: char,
    out: &UnboundedSender<String>,
) -> Result<(), BuildError> {
    let is_add = inst.cmd == "ADD";
    for (k, _) in &inst.flags {
        let ok = match k.as_str() {
            "chown" | "chmod" | "link" => true,
            "from" => !is_add,
            "keep-git-dir" | "checksum" => is_add,
            _ => false,
        };
        if !ok {
            return Err(fail(format!("Unknown flag: {k}")));
        }
    }
    let words: Vec<String> = match &inst.args {
        Args::Json(v) => v
            .iter()
            .map(|w| shell::expand_word(w, vars, escape).map_err(fail))
            .collect::<Result<_, _>>()?,
        Args::Shell(s) => {
            // Heredoc markers must survive expansion untouched.
            let mut ws = Vec::new();
            for raw in shell::raw_words(s) {
                if raw.starts_with("<<") {
                    ws.push(raw);
                } else {
                    ws.extend(shell::expand_words(&raw, vars, escape).map_err(fail)?);
                }
            }
            ws
        }
    };
    if words.len() < 2 {
        return Err(fail(format!(
            "{} requires at least two arguments, but only one was provided. Destination could not be determined",
            inst.cmd
        )));
    }
    let (srcs, dest) = words.split_at(words.len() - 1);
    let dest_raw = dest[0].clone();
    let workdir = ctx
        .state
        .config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let dest_abs = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest_raw)
    };
    let dest_is_dir_syntax = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
    let chmod = match inst.flag("chmod") {
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    fail(format!(
                        "invalid chmod parameter {m:?}: must be an octal mode"
                    ))
                })?,
        ),
        None => None,
    };
    let chown = inst
        .flag("chown")
        .map(|c| shell::expand_word(c, vars, escape))
        .transpose()
        .map_err(fail)?;

    // Where the sources live.
    let from = inst
        .flag("from")
        .map(|f| shell::expand_word(f, vars, escape))
        .transpose()
        .map_err(fail)?;
    let mut from_container: Option<String> = None;
    let mut from_created_by: Option<String> = None;
    let mut src_hash_prefix = String::new();
    let src_root: PathBuf = match &from {
        None => opts.context.clone(),
        Some(f) => {
            let img = if let Some(idx) = f.parse::<usize>().ok().filter(|i| *i < stages.len()) {
                stages[idx].state.clone()
            } else if let Some(s) = stages
                .iter()
                .rev()
                .find(|s| s.name.as_deref() == Some(f.to_ascii_lowercase().as_str()))
            {
                s.state.clone()
            } else {
                backend.image(f).await.map_err(fail)?
            };
            src_hash_prefix = format!("{}:{}", img.id, img.layers.join(","));
            // An image's content is fixed by its id and layers: the key needs no mount, so a
            // cache hit skips mounting the source stage at all.
            let mut h = Sha256::new();
            h.update(src_hash_prefix.as_bytes());
            for s in srcs {
                h.update([0]);
                h.update(s.as_bytes());
            }
            let mut text = format!(
                "/bin/sh -c #(nop) {} from:{} in {dest_raw} ",
                inst.cmd,
                hex::encode(h.finalize())
            );
            if let Some(c) = &chown {
                text.push_str(&format!("--chown={c} "));
            }
            if let Some(m) = chmod {
                text.push_str(&format!("--chmod={m:o} "));
            }
            let key = cache_key(&ctx.state, &text);
            if !opts.no_cache {
                if let Some(hit) = backend.cache_get(&key).await {
                    let _ = out.send(" ---> Using cache\n".into());
                    ctx.state = hit;
                    return Ok(());
                }
            }
            from_created_by = Some(text);
            let (cid, root) = backend.create_container(&img, None).await.map_err(fail)?;
            from_container = Some(cid);
            root
        }
    };
    let heredoc_dir = tempfile_dir(&opts.context)?;
    let result = async {
        let mut sources: Vec<Source> = Vec::new();
        let mut hash = Sha256::new();
        hash.update(src_hash_prefix.as_bytes());
        for s in srcs {
            if let Some(spec) = s.strip_prefix("<<") {
                let name = spec.trim_start_matches('-').trim_matches(['"', '\'']);
                let Some(h) = inst.heredocs.iter().find(|h| h.name == name) else {
                    return Err(fail(format!("heredoc {name} not found")));
                };
                let content = if h.quoted {
                    h.content.clone()
                } else {
                    shell::expand_word(&format!("\"{}\"", h.content.replace('"', "\\\"")), vars, escape)
                        .unwrap_or_else(|_| h.content.clone())
                };
                let p = heredoc_dir.join(name);
                std::fs::write(&p, &content).map_err(|e| fail(e.to_string()))?;
                hash.update(name.as_bytes());
                hash.update(content.as_bytes());
                sources.push(Source { host: p, name: name.to_string(), is_dir: false });
                continue;
            }
            if is_add && (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")) {
                return Err(fail(format!(
                    "ADD failed: cannot download {s}: berth does not fetch remote sources during a build; download it into the build context and ADD the local file"
                )));
            }
            let root = src_root.clone();
            let pattern = s.clone();
            let matched = tokio::task::spawn_blocking(move || {
                let m = copy::resolve(&root, &pattern)?;
                let h = copy::hash_paths(&root, &m)?;
                Ok::<_, std::io::Error>((m, h))
            })
            .await
            .map_err(|e| fail(e.to_string()))?;
            let (rels, h) = match matched {
                Ok(x) => x,
                Err(_) => {
                    let what = if from.is_some() { "" } else { " in build context or excluded by .dockerignore" };
                    return Err(fail(format!(
                        "{} failed: file not found{what}: stat {s}: file does not exist",
                        inst.cmd
                    )));
                }
            };
            hash.update(h.as_bytes());
            for rel in rels {
                let host = copy::host_path(&src_root, &rel);
                let is_dir = host.is_dir();
                let name = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                sources.push(Source { host, name, is_dir });
            }
        }
        if sources.len() > 1 && !dest_is_dir_syntax {
            return Err(fail(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                inst.cmd
            )));
        }
        let content = hex::encode(hash.finalize());
        let kind = if sources.len() == 1 && !sources[0].is_dir { "file" } else { "dir" };
        let mut created_by = format!("/bin/sh -c #(nop) {} {kind}:{content} in {dest_raw} ", inst.cmd);
        if let Some(c) = &chown {
            created_by.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            created_by.push_str(&format!("--chmod={m:o} "));
        }
        if let Some(t) = &from_created_by {
            created_by = t.clone();
        }
        let key = cache_key(&ctx.state, &created_by);
        if !opts.no_cache {
            if let Some(hit) = lookup(backend, &key, &ctx.state, &created_by).await {
                let _ = out.send(" ---> Using cache\n".into());
                return Ok(hit);
            }
        }
        let (cid, rootfs) = backend.create_container(&ctx.state, None).await.map_err(fail)?;
        let rootfs2 = rootfs.clone();
        let dest_abs2 = dest_abs.clone();
        let chown2 = chown.clone();
        let copied = tokio::task::spawn_blocking(move || {
            do_copy(&rootfs2, &sources, &dest_abs2, dest_is_dir_syntax, chown2.as_deref(), chmod, is_add)
        })
        .await
        .map_err(|e| fail(e.to_string()))
        .and_then(|r| r.map_err(fail));
        let res = match copied {
            Ok(()) => {
                let mut cfg = new_config(&ctx.state.config);
                push_history(&mut cfg, &created_by, false);
                backend.commit(&cid, &ctx.state, cfg, false).await.map(|(s, _)| s).map_err(fail)
            }
            Err(e) => Err(e),
        };
        backend.remove_container(&cid).await;
        let next = res?;
        backend.cache_put(&key, &next).await;
        Ok(next)
    }
    .await;
    let _ = std::fs::remove_dir_all(&heredoc_dir);
    if let Some(cid) = from_container {
        backend.remove_container(&cid).await;
    }
    ctx.state = result?;
    Ok(())
}

fn tempfile_dir(context: &Path) -> Result<PathBuf, BuildError> {
    let base = context.parent().unwrap_or(Path::new("/tmp"));
    let n: u64 = rand_u64();
    let d = base.join(format!(".heredoc-{n:x}"));
    std::fs::create_dir_all(&d).map_err(|e| fail(format!("creating {}: {e}", d.display())))?;
    Ok(d)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn do_copy(
    rootfs: &Path,
    sources: &[Source],
    dest: &str,
    dest_dir_syntax: bool,
    chown: Option<&str>,
    chmod: Option<u32>,
    is_add: bool,
) -> Result<(), String> {
    let (uid, gid) = match chown {
        Some(c) => copy::resolve_chown(c, rootfs)?,
        None => (0, 0),
    };
    let owner = Owner { uid, gid, chmod };
    let parent_owner = Owner {
        uid,
        gid,
        chmod: None,
    };
    let dest_host = copy::in_root(rootfs, dest);
    let err = |e: std::io::Error| format!("failed to copy files: {e}");
    for s in sources {
        if s.is_dir {
            copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
            for e in std::fs::read_dir(&s.host).map_err(err)? {
                let e = e.map_err(err)?;
                copy::copy_tree(&e.path(), &dest_host.join(e.file_name()), owner).map_err(err)?;
            }
            continue;
        }
        if is_add && copy::is_archive(&s.host) {
            copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
            copy::extract_archive(&s.host, &dest_host, chown.map(|_| owner)).map_err(err)?;
            continue;
        }
        let target = if dest_dir_syntax || dest_host.is_dir() {
            copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
            dest_host.join(&s.name)
        } else {
            if let Some(p) = dest_host.parent() {
                copy::mkdir_all(p, parent_owner).map_err(err)?;
            }
            dest_host.clone()
        };
        copy::copy_tree(&s.host, &target, owner).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::archive::expand_port;

    #[test]
    fn ports_and_durations() {
        assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_port("8000-8002").unwrap().len(), 3);
        assert!(expand_port("x").is_err());
        assert!(expand_port("80/icmp").is_err());
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn healthcheck_forms() {
        let p = |s: &str| {
            parser::parse(&format!("FROM x\n{s}\n"))
                .unwrap()
                .instructions[1]
                .clone()
        };
        let hc = healthcheck(
            &p("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/ || exit 1"),
            &[],
        )
        .unwrap();
        assert_eq!(hc.interval, Some(5_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(
            hc.test.unwrap(),
            vec!["CMD-SHELL", "curl -f http://x/ || exit 1"]
        );
        let hc = healthcheck(&p("HEALTHCHECK CMD [\"true\"]"), &[]).unwrap();
        assert_eq!(hc.test.unwrap(), vec!["CMD", "true"]);
        let hc = healthcheck(&p("healthcheck none"), &[]).unwrap();
        assert_eq!(hc.test.unwrap(), vec!["NONE"]);
        assert!(healthcheck(&p("HEALTHCHECK --bogus=1 CMD true"), &[]).is_err());
    }
}
