//! The build itself: stages, instructions, the layer cache — over a [`Backend`] that owns
//! images and containers (the daemon implements it).
//!
//! Output follows Docker's legacy builder line for line: `Step n/m : <instruction>`,
//! ` ---> Using cache`, ` ---> Running in <id>`, the command's output,
//! ` ---> Removed intermediate container <id>`, ` ---> <image id>`.
//!
//! As BuildKit does, stages the target does not need are skipped and independent stages
//! run at the same time; [`output::Sequencer`] keeps the stream one block per step, in
//! step order.
//!
//! The cache key of a step is the hash of its parent image id, its `created_by` text (which
//! for `COPY`/`ADD` names a hash of the copied content, never mtimes) and the resulting
//! runtime config (env, user, workdir, shell...), so a change to any of those misses.
//!
//! Files: [`backend`] (the trait), [`plan`] (stages and steps), [`stage`] (a stage's state
//! and the dispatch of one instruction), [`config_cmds`] (instructions that only change the
//! config), [`run`] and [`mounts`] (`RUN` and its `--mount`s), [`copy_cmd`] and [`remote`]
//! (`COPY`/`ADD`, URLs and git), [`cache`] (keys and lookups), [`output`].

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::instruction::{self, Command};
use crate::parser::{self, Instruction};
use crate::shell::Vars;

pub mod backend;
mod cache;
mod config_cmds;
mod copy_cmd;
mod gofmt;
mod healthcheck;
mod mounts;
pub mod output;
pub mod plan;
mod remote;
mod run;
mod stage;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_buildkit;

pub use backend::{
    Backend, BackendError, CacheMountLease, CacheMountRequest, Fetched, ImageState, Output,
    RunConfig, RunMount, RunMountKind,
};
pub use cache::match_cache_from;

use output::{Sequencer, StepOut};
use plan::Plan;
use stage::StageCtx;

/// A named build context (`--build-context name=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory.
    Dir(PathBuf),
    /// `docker-image://name`: a local image.
    Image(String),
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
    /// Named build contexts, usable in `FROM`, `COPY --from` and `RUN --mount=from=`.
    pub contexts: BTreeMap<String, NamedContext>,
    /// Build secrets by id (`RUN --mount=type=secret`).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id (`RUN --mount=type=ssh`).
    pub ssh: BTreeMap<String, PathBuf>,
    /// Where transient files go (heredoc sources, downloads, writable context copies);
    /// empty: next to the context.
    pub work_dir: PathBuf,
    /// Where secret files are written for a step (a tmpfs in a real deployment); empty:
    /// the work directory.
    pub secrets_dir: PathBuf,
    /// `RUN --security=insecure` is allowed (a daemon option).
    pub allow_insecure: bool,
}

impl Options {
    pub(crate) fn work_dir(&self) -> PathBuf {
        if self.work_dir.as_os_str().is_empty() {
            self.context
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("/tmp"))
        } else {
            self.work_dir.clone()
        }
    }

    pub(crate) fn secrets_dir(&self) -> PathBuf {
        if self.secrets_dir.as_os_str().is_empty() {
            self.work_dir()
        } else {
            self.secrets_dir.clone()
        }
    }
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

pub(crate) fn fail(message: impl std::fmt::Display) -> BuildError {
    BuildError {
        message: message.to_string(),
        line: None,
        code: None,
    }
}

/// The message of a stage stopped because another one failed (never reported).
const CANCELLED: &str = "build cancelled: another stage failed";

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

/// One build in progress, shared by its stages.
pub(crate) struct Build<'a> {
    pub backend: &'a dyn Backend,
    pub opts: &'a Options,
    pub escape: char,
    pub insts: &'a [Instruction],
    pub commands: Vec<Command>,
    pub plan: Plan,
    /// Steps shown in `Step n/m` (the plan's plus a `--label` step).
    pub total: usize,
    pub meta_args: BTreeMap<String, Option<String>>,
    pub used_args: Mutex<HashSet<String>>,
    pub seq: Sequencer<'a>,
    /// Each stage's result once it is done (`Some(None)`: it failed).
    slots: Vec<watch::Sender<Option<Option<ImageState>>>>,
    abort: AtomicBool,
    first_error: Mutex<Option<BuildError>>,
}

/// Where a `--from` or `FROM` name points.
pub(crate) enum SourceRef {
    Image(Box<ImageState>),
    /// A local named context.
    Dir(PathBuf),
}

impl Build<'_> {
    pub fn cancelled(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    /// The result of stage `s`, waiting for it to finish.
    pub async fn stage_result(&self, s: usize) -> Result<ImageState, BuildError> {
        let Some(slot) = self.slots.get(s) else {
            return Err(fail(format!("invalid stage index {s}")));
        };
        if !self.plan.stages[s].needed {
            return Err(fail(format!(
                "stage {s} was not planned: only an ONBUILD trigger refers to it, which berth does not support"
            )));
        }
        let mut rx = slot.subscribe();
        let v = rx
            .wait_for(|v| v.is_some())
            .await
            .map_err(|_| fail(CANCELLED))?;
        let v: Option<ImageState> = (*v).clone().flatten();
        match v {
            Some(img) => Ok(img),
            None => Err(fail(CANCELLED)),
        }
    }

    /// Resolves `name` as seen from stage `stage`: a named context, an earlier stage, else
    /// a local image.
    pub async fn source(&self, name: &str, stage: usize) -> Result<SourceRef, BuildError> {
        if let Some((_, c)) = self
            .opts
            .contexts
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return match c {
                NamedContext::Dir(d) => Ok(SourceRef::Dir(d.clone())),
                NamedContext::Image(r) => Ok(SourceRef::Image(Box::new(
                    self.backend.image(r).await.map_err(fail)?,
                ))),
            };
        }
        if let Some(s) = self.plan.stage_ref(name, stage) {
            return Ok(SourceRef::Image(Box::new(self.stage_result(s).await?)));
        }
        Ok(SourceRef::Image(Box::new(
            self.backend.image(name).await.map_err(fail)?,
        )))
    }

    fn record_error(&self, e: &BuildError) {
        self.abort.store(true, Ordering::SeqCst);
        if e.message == CANCELLED {
            return;
        }
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e.clone());
        }
    }
}

/// Runs a build; returns the final image (not yet tagged).
pub async fn build(
    backend: &dyn Backend,
    opts: &Options,
    out: &dyn Output,
) -> Result<ImageState, BuildError> {
    let df = parser::parse(&opts.dockerfile).map_err(|e| BuildError {
        message: e.to_string(),
        line: Some(e.line),
        code: None,
    })?;
    if let Some(s) = &df.syntax {
        crate::flags::check_syntax(s).map_err(fail)?;
    }
    for w in &df.warnings {
        out.send(format!("[WARNING]: {w}\n"));
    }
    let escape = df.escape;
    let mut commands = Vec::with_capacity(df.instructions.len());
    for inst in &df.instructions {
        commands.push(instruction::command(inst).map_err(|e| BuildError {
            message: e.to_string(),
            line: Some(inst.line),
            code: None,
        })?);
    }
    // Global ARGs first: their values resolve stage references in the plan.
    let mut meta_args: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut used_args = HashSet::new();
    let auto_args = stage::platform_args();
    for (inst, cmd) in df.instructions.iter().zip(&commands) {
        let mut seen = Vars::new();
        for (k, v) in &auto_args {
            seen.insert(k.clone(), v.clone());
        }
        for (k, v) in &meta_args {
            if let Some(v) = v {
                seen.insert(k.clone(), v.clone());
            }
        }
        match cmd {
            Command::Arg(text) => stage::declare_args(
                text,
                &mut meta_args,
                &opts.build_args,
                &mut used_args,
                &seen,
                escape,
            )
            .map_err(|mut e| {
                e.line = Some(inst.line);
                e
            })?,
            Command::From(_) => break,
            _ => {
                return Err(BuildError {
                    message: format!("no build stage in current context: {}", inst.cmd),
                    line: Some(inst.line),
                    code: None,
                })
            }
        }
    }
    // The automatic platform ARGs are global ARGs unless given a value.
    for (k, v) in auto_args {
        let e = meta_args.entry(k).or_insert(None);
        if e.is_none() {
            *e = Some(v);
        }
    }
    let mut vars = Vars::new();
    for (k, v) in &meta_args {
        if let Some(v) = v {
            vars.insert(k.clone(), v.clone());
        }
    }
    let context_names: Vec<String> = opts.contexts.keys().cloned().collect();
    let plan = plan::plan(
        &commands,
        opts.target.as_deref(),
        &vars,
        escape,
        &context_names,
    )
    .map_err(fail)?;
    let label_step = !opts.labels.is_empty();
    let total = plan.steps + usize::from(label_step);
    let slots = (0..plan.stages.len())
        .map(|_| watch::channel(None).0)
        .collect();
    let b = Build {
        backend,
        opts,
        escape,
        insts: &df.instructions,
        commands,
        total,
        meta_args,
        used_args: Mutex::new(used_args),
        seq: Sequencer::new(out),
        slots,
        abort: AtomicBool::new(false),
        first_error: Mutex::new(None),
        plan,
    };
    for (i, inst) in df.instructions[..b.plan.meta_end].iter().enumerate() {
        b.seq
            .emit(i, format!("Step {}/{total} : {}\n", i + 1, inst.original));
        b.seq.finish(i);
    }
    let stages = b
        .plan
        .stages
        .iter()
        .filter(|s| s.needed)
        .map(|s| s.index)
        .collect::<Vec<_>>();
    let results =
        futures_util::future::join_all(stages.iter().map(|&s| run_stage_and_publish(&b, s))).await;
    if let Some(e) = b
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        b.seq.flush();
        return Err(e);
    }
    let Some(mut ctx) = stages
        .iter()
        .zip(results)
        .find(|(s, _)| **s == b.plan.target)
        .and_then(|(_, r)| r)
    else {
        b.seq.flush();
        return Err(fail("no build stage in current context"));
    };
    if label_step {
        config_cmds::label_step(&b, &mut ctx, b.plan.steps).await?;
    }
    let used = b
        .used_args
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let unused: Vec<&str> = opts
        .build_args
        .keys()
        .filter(|k| !used.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !unused.is_empty() {
        b.seq.direct(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            unused.join(" ")
        ));
    }
    if ctx.state.id.is_empty() {
        // `FROM scratch` and nothing else still makes an image.
        let cfg = cache::new_config(&ctx.state.config);
        ctx.state = backend.commit_config(&ctx.state, cfg).await.map_err(fail)?;
    }
    Ok(ctx.state)
}

/// Runs stage `s`, publishes its result to the stages waiting for it, and stops the
/// others from starting new steps when it fails.
async fn run_stage_and_publish(b: &Build<'_>, s: usize) -> Option<StageCtx> {
    let res = run_stage(b, s).await;
    b.slots[s].send_replace(Some(res.as_ref().ok().map(|c| c.state.clone())));
    match res {
        Ok(c) => Some(c),
        Err(e) => {
            b.record_error(&e);
            None
        }
    }
}

async fn run_stage(b: &Build<'_>, s: usize) -> Result<StageCtx, BuildError> {
    let ps = b.plan.stages[s].clone();
    let mut ctx: Option<StageCtx> = None;
    for (n, i) in (ps.start..ps.end).enumerate() {
        if b.cancelled() {
            return Err(fail(CANCELLED));
        }
        let step = ps.first_step + n;
        let inst = &b.insts[i];
        let out = StepOut { seq: &b.seq, step };
        out.line(format!(
            "Step {}/{} : {}\n",
            step + 1,
            b.total,
            inst.original
        ));
        let res = match (&b.commands[i], ctx.as_mut()) {
            (Command::From(f), _) => stage::from(b, s, f, inst, &out).await.map(|c| {
                ctx = Some(c);
            }),
            (cmd, Some(c)) => stage::dispatch(b, c, inst, cmd, &out).await,
            (_, None) => Err(fail("no build stage in current context")),
        };
        if let Err(mut e) = res {
            e.line.get_or_insert(inst.line);
            return Err(e);
        }
        if let Some(c) = ctx.as_ref().filter(|c| !c.state.id.is_empty()) {
            out.line(format!(" ---> {}\n", short(&c.state.id)));
        }
        b.seq.finish(step);
    }
    ctx.ok_or_else(|| fail("no build stage in current context"))
}

/// The 12-hex-digit id Docker prints.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

pub(crate) fn shell_quote(v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

/// A fresh directory under `base` for one step's transient files.
pub(crate) fn temp_dir(base: &std::path::Path, what: &str) -> Result<PathBuf, BuildError> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let d = base.join(format!(".{what}-{:016x}", h.finish()));
    std::fs::create_dir_all(&d).map_err(|e| fail(format!("creating {}: {e}", d.display())))?;
    Ok(d)
}
