//! `RUN`: the command (shell or exec form, heredocs), the build args it sees, its flags
//! (`--mount`, `--network`, `--security`), the cache, and the container that runs it.

use std::collections::HashSet;

use super::cache::{cache_key, lookup, new_config, push_history};
use super::mounts;
use super::output::StepOut;
use super::stage::StageCtx;
use super::{fail, short, Build, BuildError, RunConfig};
use crate::flags::{self, RunNetwork};
use crate::instruction::RunCmd;
use crate::parser::{self, Args, Instruction};
use crate::shell;

/// The argv of a `RUN`: JSON as is; shell form (with its heredocs) through `SHELL`.
fn argv(ctx: &StageCtx, r: &RunCmd) -> Vec<String> {
    match &r.args {
        Args::Json(v) => v.clone(),
        Args::Shell(s) => {
            let mut sh = ctx.shell();
            let specs = parser::heredoc_specs(s);
            let only_heredoc = r.heredocs.len() == 1
                && s.trim()
                    .trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == r.heredocs[0].name;
            if only_heredoc {
                // `RUN <<EOF`: the body is the script.
                sh.push(r.heredocs[0].content.clone());
            } else if !specs.is_empty() {
                // `RUN cat <<EOF > f`: the shell reads the heredocs itself.
                let mut script = s.clone();
                for h in &r.heredocs {
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
    }
}

pub(crate) async fn run(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    r: &RunCmd,
    inst: &Instruction,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let vars = ctx.vars();
    let expand = |s: &str| shell::expand_word(s, &vars, b.escape).map_err(fail);
    let cmd = argv(ctx, r);
    // The flags, expanded and typed.
    let mut specs = Vec::new();
    for m in &r.mounts {
        specs.push(flags::parse_mount(&expand(m)?).map_err(fail)?);
    }
    let network = match &r.network {
        Some(n) => flags::parse_network(&expand(n)?).map_err(fail)?,
        None => RunNetwork::Default,
    };
    let insecure = match &r.security {
        Some(s) => flags::parse_security(&expand(s)?).map_err(fail)?,
        None => false,
    };
    if insecure && !b.opts.allow_insecure {
        return Err(fail(
            "RUN --security=insecure is not allowed: the daemon must be started with --allow-insecure-entitlement security.insecure (daemon.json: \"builder\": {\"entitlements\": {\"security-insecure\": true}})",
        ));
    }
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
    let resolved = mounts::resolve(b, ctx, specs).await?;
    mounts::check_available(b, &resolved)?;
    // Mounts, network and security key the step too (never a secret's value); history
    // keeps Docker's plain `created_by`.
    let mut key_text = created_by.clone();
    if !resolved.is_empty() || network != RunNetwork::Default || insecure {
        key_text.push_str(&format!(
            "\0mounts={}\0network={network:?}\0insecure={insecure}",
            mounts::fingerprint(b, &resolved).await?
        ));
    }
    let key = cache_key(&ctx.state, &key_text);
    if !b.opts.no_cache {
        let hit = if key_text == created_by {
            lookup(b.backend, &key, &ctx.state, &created_by).await
        } else {
            b.backend.cache_get(&key).await
        };
        if let Some(hit) = hit {
            out.line(" ---> Using cache\n");
            ctx.state = hit;
            return Ok(());
        }
    }
    let prepared = mounts::prepare(b, &resolved, &cmd.join(" ")).await?;
    let cc = ctx.state.config.config.clone().unwrap_or_default();
    let mut env = cc.env.clone().unwrap_or_default();
    env.extend(arg_env);
    env.extend(prepared.env.iter().cloned());
    let rc = RunConfig {
        cmd: cmd.clone(),
        env,
        user: cc.user.clone().unwrap_or_default(),
        workdir: cc.working_dir.clone().unwrap_or_default(),
        mounts: prepared.mounts.clone(),
        network: match network {
            RunNetwork::Default => None,
            RunNetwork::None => Some("none".into()),
            RunNetwork::Host => Some("host".into()),
        },
        privileged: insecure,
        secret_env: prepared.secret_env.clone(),
    };
    let res = run_container(b, ctx, rc, &created_by, inst, out).await;
    prepared.release(b.backend).await;
    let next = res?;
    b.backend.cache_put(&key, &next).await;
    ctx.state = next;
    Ok(())
}

/// Creates, runs and commits the step's container; it is removed whatever happens.
async fn run_container(
    b: &Build<'_>,
    ctx: &StageCtx,
    rc: RunConfig,
    created_by: &str,
    inst: &Instruction,
    out: &StepOut<'_, '_>,
) -> Result<super::ImageState, BuildError> {
    let (cid, _) = b
        .backend
        .create_container(&ctx.state, Some(&rc))
        .await
        .map_err(fail)?;
    out.line(format!(" ---> Running in {}\n", short(&cid)));
    let code = match b.backend.run_container(&cid, out).await {
        Ok(c) => c,
        Err(e) => {
            b.backend.remove_container(&cid).await;
            return Err(fail(e));
        }
    };
    if code != 0 {
        b.backend.remove_container(&cid).await;
        return Err(BuildError {
            message: format!(
                "The command '{}' returned a non-zero code: {code}",
                rc.cmd.join(" ")
            ),
            line: Some(inst.line),
            code: Some(code),
        });
    }
    let mut cfg = new_config(&ctx.state.config);
    push_history(&mut cfg, created_by, false);
    let res = b.backend.commit(&cid, &ctx.state, cfg, false).await;
    b.backend.remove_container(&cid).await;
    out.line(format!(
        " ---> Removed intermediate container {}\n",
        short(&cid)
    ));
    let (next, _) = res.map_err(fail)?;
    Ok(next)
}
