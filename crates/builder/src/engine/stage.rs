//! A stage's state while it builds, `FROM` (with `ONBUILD` triggers), `ARG` scoping, and
//! the dispatch of one typed instruction to its function.

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_image::config::{ContainerConfig, ImageConfig};

use super::output::StepOut;
use super::{config_cmds, copy_cmd, fail, run, Build, BuildError, ImageState, SourceRef};
use crate::instruction::{self, Command, FromCmd};
use crate::parser::{self, Instruction};
use crate::shell::{self, Vars};

pub(crate) struct StageCtx {
    /// The stage's index in the Dockerfile.
    pub index: usize,
    pub state: ImageState,
    /// ARGs declared in this stage with their values.
    pub args: BTreeMap<String, Option<String>>,
    pub cmd_set: bool,
}

impl StageCtx {
    pub fn cc(&mut self) -> &mut ContainerConfig {
        self.state
            .config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    pub fn env(&self) -> Vec<String> {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// ARG values first, ENV overrides them (Docker's precedence).
    pub fn vars(&self) -> Vars {
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

    pub fn shell(&self) -> Vec<String> {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .map(|s| s.0)
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub fn workdir(&self) -> String {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into())
    }
}

/// BuildKit's automatic platform ARGs (`TARGETARCH`, `BUILDPLATFORM`, ...), available in
/// the global scope and to a stage that declares them without a value.
pub fn platform_args() -> Vec<(String, String)> {
    let (arch, variant) = berth_image::config::host_platform();
    let variant = variant.filter(|v| *v != "v8").unwrap_or("");
    let platform = if variant.is_empty() {
        format!("linux/{arch}")
    } else {
        format!("linux/{arch}/{variant}")
    };
    let mut out = Vec::new();
    for side in ["BUILD", "TARGET"] {
        out.push((format!("{side}PLATFORM"), platform.clone()));
        out.push((format!("{side}OS"), "linux".to_string()));
        out.push((format!("{side}ARCH"), arch.to_string()));
        out.push((format!("{side}VARIANT"), variant.to_string()));
    }
    out
}

/// Declares the ARGs of one `ARG` line into `into`, taking `--build-arg` values.
pub fn declare_args(
    text: &str,
    into: &mut BTreeMap<String, Option<String>>,
    build_args: &BTreeMap<String, Option<String>>,
    used: &mut HashSet<String>,
    vars: &Vars,
    escape: char,
) -> Result<(), BuildError> {
    for w in shell::raw_words(text) {
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

fn scratch() -> ImageState {
    let (arch, variant) = berth_image::config::host_platform();
    ImageState {
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
    }
}

/// The global ARGs (with the automatic platform ones) as variables for `FROM`.
fn meta_vars(b: &Build<'_>) -> Vars {
    let mut vars = Vars::new();
    for (k, v) in platform_args() {
        vars.insert(k, v);
    }
    for (k, v) in &b.meta_args {
        if let Some(v) = v {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars
}

/// `FROM`: the base (scratch, an earlier stage, a named context, a local image), then the
/// base's `ONBUILD` triggers.
pub(crate) async fn from(
    b: &Build<'_>,
    stage: usize,
    f: &FromCmd,
    inst: &Instruction,
    out: &StepOut<'_, '_>,
) -> Result<StageCtx, BuildError> {
    let vars = meta_vars(b);
    if let Some(p) = &f.platform {
        let p = shell::expand_word(p, &vars, b.escape).map_err(fail)?;
        let host = vars.get("TARGETPLATFORM").cloned().unwrap_or_default();
        let same = p == host || (p.matches('/').count() == 1 && host.starts_with(&p));
        if !same && !p.is_empty() {
            return Err(fail(format!(
                "FROM --platform={p}: berth builds for the host platform ({host}) only"
            )));
        }
    }
    let name = shell::expand_word(&f.image, &vars, b.escape).map_err(fail)?;
    if name.is_empty() {
        return Err(fail(format!("base name ({}) should not be blank", f.image)));
    }
    let state = if name.eq_ignore_ascii_case("scratch") {
        scratch()
    } else {
        match b.source(&name, stage).await? {
            SourceRef::Image(img) => *img,
            SourceRef::Dir(_) => {
                return Err(fail(format!(
                    "FROM {name}: a local build context can not be a base image; use COPY --from={name} or RUN --mount=from={name}"
                )))
            }
        }
    };
    let mut ctx = StageCtx {
        index: stage,
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
    if !triggers.is_empty() {
        out.line(format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
    }
    for t in triggers {
        let tinst = parser::parse_line(&t, inst.line, b.escape).map_err(|e| fail(e.message))?;
        let cmd = instruction::command(&tinst).map_err(fail)?;
        dispatch(b, &mut ctx, &tinst, &cmd, out).await?;
    }
    Ok(ctx)
}

/// Runs one instruction of a stage.
pub(crate) async fn dispatch(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    inst: &Instruction,
    cmd: &Command,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    match cmd {
        Command::From(_) => Err(fail("FROM inside a stage")),
        Command::Arg(text) => config_cmds::arg(b, ctx, text, out).await,
        Command::Env(text) => config_cmds::env(b, ctx, text, out).await,
        Command::Label(text) => config_cmds::label(b, ctx, text, out).await,
        Command::Maintainer(text) => config_cmds::maintainer(b, ctx, text, out).await,
        Command::Expose(text) => config_cmds::expose(b, ctx, text, out).await,
        Command::User(text) => config_cmds::user(b, ctx, text, out).await,
        Command::StopSignal(text) => config_cmds::stop_signal(b, ctx, text, out).await,
        Command::Volume(args) => config_cmds::volume(b, ctx, args, out).await,
        Command::Shell(v) => config_cmds::shell(b, ctx, v, out).await,
        Command::Cmd(args) => config_cmds::cmd(b, ctx, args, out).await,
        Command::Entrypoint(args) => config_cmds::entrypoint(b, ctx, args, out).await,
        Command::Healthcheck(h) => config_cmds::healthcheck(b, ctx, h, out).await,
        Command::Onbuild(text) => config_cmds::onbuild(b, ctx, text, out).await,
        Command::Workdir(text) => config_cmds::workdir(b, ctx, text, out).await,
        Command::Run(r) => run::run(b, ctx, r, inst, out).await,
        Command::Copy(c) => copy_cmd::copy(b, ctx, c, inst, out).await,
    }
}
