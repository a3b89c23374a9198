//! The instructions that change only the image config (one function each), plus `WORKDIR`,
//! which also creates its directory, and the final `--label` step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_image::config::StrSlice;
use serde_json::json;

use super::cache::{cache_key, config_step, lookup, new_config, push_history};
use super::output::StepOut;
use super::stage::{declare_args, StageCtx};
use super::{fail, gofmt, healthcheck as hc, shell_quote, short, Build, BuildError};
use crate::copy::{self, Owner};
use crate::instruction::HealthcheckCmd;
use crate::parser::Args;
use crate::shell;

fn nop(s: String) -> String {
    format!("/bin/sh -c #(nop)  {s}")
}

fn expand(b: &Build<'_>, ctx: &StageCtx, s: &str) -> Result<String, BuildError> {
    shell::expand_word(s, &ctx.vars(), b.escape).map_err(fail)
}

pub(crate) async fn arg(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let mut declared = BTreeMap::new();
    {
        let mut used = b.used_args.lock().unwrap_or_else(|p| p.into_inner());
        declare_args(
            text,
            &mut declared,
            &b.opts.build_args,
            &mut used,
            &ctx.vars(),
            b.escape,
        )?;
    }
    for (k, v) in declared {
        // `ARG X` in a stage picks up the value of a global `ARG X`.
        let v = v.or_else(|| {
            if b.opts.build_args.contains_key(&k) {
                None
            } else {
                b.meta_args.get(&k).cloned().flatten()
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
    config_step(b, ctx, nop(format!("ARG {shown}")), out).await
}

pub(crate) async fn env(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let vars = ctx.vars();
    let pairs = shell::name_values(text, true).map_err(fail)?;
    let mut shown = Vec::new();
    let mut env = ctx.env();
    // As Docker documents it, every pair is expanded with the variables as they were
    // before this instruction: `ENV A=1 B=$A` does not see the new A.
    for (k, raw) in pairs {
        let v = shell::expand_word(&raw, &vars, b.escape).map_err(fail)?;
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix) && *e != k);
        env.push(format!("{k}={v}"));
        shown.push(format!("{k}={v}"));
    }
    ctx.cc().env = Some(env);
    config_step(b, ctx, nop(format!("ENV {}", shown.join(" "))), out).await
}

pub(crate) async fn label(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let pairs = shell::name_values(text, false).map_err(fail)?;
    let mut shown = Vec::new();
    for (k, raw) in pairs {
        let k = expand(b, ctx, &k)?;
        let v = expand(b, ctx, &raw)?;
        shown.push(format!("{k}={}", shell_quote(&v)));
        ctx.cc()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k, v);
    }
    config_step(b, ctx, nop(format!("LABEL {}", shown.join(" "))), out).await
}

pub(crate) async fn maintainer(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    ctx.state.config.author = Some(expand(b, ctx, text)?);
    config_step(b, ctx, nop(format!("MAINTAINER {text}")), out).await
}

pub(crate) async fn expose(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let words = shell::expand_words(text, &ctx.vars(), b.escape).map_err(fail)?;
    let mut ports = Vec::new();
    for w in &words {
        ports.extend(berth_image::archive::expand_port(w).map_err(fail)?);
    }
    let map = ctx.cc().exposed_ports.get_or_insert_with(BTreeMap::new);
    for p in &ports {
        map.insert(p.clone(), json!({}));
    }
    // History shows the ports as written (after expansion), as dockerd does.
    config_step(b, ctx, nop(format!("EXPOSE {}", words.join(" "))), out).await
}

pub(crate) async fn user(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let u = expand(b, ctx, text.trim())?;
    ctx.cc().user = Some(u.clone());
    config_step(b, ctx, nop(format!("USER {u}")), out).await
}

pub(crate) async fn stop_signal(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let s = expand(b, ctx, text.trim())?;
    ctx.cc().stop_signal = Some(s.clone());
    config_step(b, ctx, nop(format!("STOPSIGNAL {s}")), out).await
}

pub(crate) async fn volume(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    args: &Args,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let vols = match args {
        Args::Json(v) => v.clone(),
        Args::Shell(text) => shell::expand_words(text, &ctx.vars(), b.escape).map_err(fail)?,
    };
    if vols.iter().any(|v| v.trim().is_empty()) {
        return Err(fail("VOLUME specified can not be an empty string"));
    }
    let map = ctx.cc().volumes.get_or_insert_with(BTreeMap::new);
    for v in &vols {
        map.insert(v.clone(), json!({}));
    }
    config_step(b, ctx, nop(format!("VOLUME {}", gofmt::list(&vols))), out).await
}

pub(crate) async fn shell(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    argv: &[String],
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    ctx.cc().shell = Some(StrSlice(argv.to_vec()));
    config_step(b, ctx, nop(format!("SHELL {}", gofmt::list(argv))), out).await
}

/// The argv of `CMD`/`ENTRYPOINT`: JSON as is, shell form through the stage's `SHELL`.
fn command_form(ctx: &StageCtx, args: &Args) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) if s.trim().is_empty() => Vec::new(),
        Args::Shell(s) => {
            let mut sh = ctx.shell();
            sh.push(s.clone());
            sh
        }
    }
}

pub(crate) async fn cmd(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    args: &Args,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let v = command_form(ctx, args);
    let shown = gofmt::quote_list(&v);
    ctx.cc().cmd = Some(StrSlice(v));
    ctx.cmd_set = true;
    config_step(b, ctx, nop(format!("CMD {shown}")), out).await
}

pub(crate) async fn entrypoint(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    args: &Args,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let v = command_form(ctx, args);
    let shown = gofmt::quote_list(&v);
    ctx.cc().entrypoint = if v.is_empty() {
        None
    } else {
        Some(StrSlice(v))
    };
    if !ctx.cmd_set {
        // An ENTRYPOINT drops the CMD inherited from the base image.
        ctx.cc().cmd = None;
    }
    config_step(b, ctx, nop(format!("ENTRYPOINT {shown}")), out).await
}

pub(crate) async fn healthcheck(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    h: &HealthcheckCmd,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let health = hc::healthcheck(h)?;
    // History shows Go's `%q` of the health config, as dockerd writes it.
    let shown = gofmt::healthcheck(&health);
    ctx.cc().healthcheck = Some(health);
    config_step(b, ctx, nop(format!("HEALTHCHECK {shown}")), out).await
}

pub(crate) async fn onbuild(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let trimmed = text.trim();
    let (first, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let trigger = format!("{} {}", first.to_ascii_uppercase(), rest.trim());
    ctx.cc()
        .on_build
        .get_or_insert_with(Vec::new)
        .push(trigger.clone());
    config_step(b, ctx, nop(format!("ONBUILD {trigger}")), out).await
}

/// `WORKDIR`: the config, and the directory in the image (a layer only when it was missing).
pub(crate) async fn workdir(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    text: &str,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let w = expand(b, ctx, text.trim())?;
    let joined = if w.starts_with('/') {
        PathBuf::from(&w)
    } else {
        Path::new(&ctx.workdir()).join(&w)
    };
    let dir = format!(
        "/{}",
        copy::clean_rel(&joined.to_string_lossy()).to_string_lossy()
    );
    ctx.cc().working_dir = Some(dir.clone());
    let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
    let key = cache_key(&ctx.state, &created_by);
    if !b.opts.no_cache {
        if let Some(hit) = lookup(b.backend, &key, &ctx.state, &created_by).await {
            out.line(" ---> Using cache\n");
            ctx.state = hit;
            return Ok(());
        }
    }
    let (cid, rootfs) = b
        .backend
        .create_container(&ctx.state, None)
        .await
        .map_err(fail)?;
    let target = copy::in_root(&rootfs, &dir);
    let made = tokio::task::spawn_blocking(move || copy::mkdir_all(&target, Owner::default()))
        .await
        .map_err(|e| fail(e.to_string()))
        .and_then(|r| {
            r.map_err(|e| fail(format!("failed to create working directory {dir}: {e}")))
        });
    let res = match made {
        Ok(()) => {
            let mut cfg = new_config(&ctx.state.config);
            push_history(&mut cfg, &created_by, false);
            b.backend
                .commit(&cid, &ctx.state, cfg, true)
                .await
                .map_err(fail)
        }
        Err(e) => Err(e),
    };
    b.backend.remove_container(&cid).await;
    let (next, _) = res?;
    b.backend.cache_put(&key, &next).await;
    ctx.state = next;
    Ok(())
}

/// `--label k=v`: a final `LABEL` step on the target stage.
pub(crate) async fn label_step(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    step: usize,
) -> Result<(), BuildError> {
    let out = StepOut { seq: &b.seq, step };
    let text = b
        .opts
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect::<Vec<_>>()
        .join(" ");
    out.line(format!("Step {}/{} : LABEL {text}\n", step + 1, b.total));
    for (k, v) in &b.opts.labels {
        ctx.cc()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.clone(), v.clone());
    }
    config_step(b, ctx, format!("/bin/sh -c #(nop)  LABEL {text}"), &out).await?;
    out.line(format!(" ---> {}\n", short(&ctx.state.id)));
    b.seq.finish(step);
    Ok(())
}
