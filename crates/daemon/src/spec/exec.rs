//! The `process` of a `docker exec`, derived from the container's own.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use super::process::{all_gids, has_env, merge_env, oci_user};
use super::security::capabilities_oci;
use super::{container_capabilities, resolve_user, HostFacts, SpecError};

/// A `docker exec` request.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// The user to run as; empty means the container process's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub tty: bool,
    pub privileged: bool,
}

fn env_value<'e>(env: &'e [String], key: &str) -> Option<&'e str> {
    env.iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// The `process` for an exec, derived from the container's own process (as written to its
/// `config.json`): the exec's command, terminal, user and working directory; the container's
/// environment with the exec's `Env` merged over it (moby `ReplaceOrAppendEnvValues`);
/// capabilities, rlimits, `noNewPrivileges` and the OOM score as the container's, except that
/// `privileged` grants the daemon's whole bounding set.
pub fn build_exec_process(
    container: &Process,
    req: &ExecSpec,
    rootfs: &Path,
    host: &HostFacts,
) -> Result<Process, SpecError> {
    if req.cmd.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let mut p = container.clone();
    p.set_args(Some(req.cmd.clone()));
    p.set_terminal(Some(req.tty));
    p.set_console_size(None);

    let base_user = container.user();
    let container_home = resolve_user(rootfs, &base_user.uid().to_string())
        .map(|u| u.home)
        .unwrap_or_else(|_| "/".into());
    let mut home = container_home.clone();
    if !req.user.is_empty() {
        let user = resolve_user(rootfs, &req.user)?;
        home = user.home.clone();
        // The same identity keeps the container's groups, which include `GroupAdd`.
        if (user.uid, user.gid) != (base_user.uid(), base_user.gid()) {
            p.set_user(oci_user(user.uid, user.gid, all_gids(&user, &[]))?);
        }
    }

    let mut env = container.env().clone().unwrap_or_default();
    // HOME was filled in from passwd for the container's user unless the image set it: an exec
    // as another user gets that user's home instead.
    if env_value(&env, "HOME") == Some(container_home.as_str()) {
        merge_env(&mut env, &[format!("HOME={home}")]);
    }
    if req.tty && !has_env(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, &req.env);
    if !has_env(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    p.set_env(Some(env));

    if !req.working_dir.is_empty() {
        if !req.working_dir.starts_with('/') {
            return Err(SpecError::InvalidParameter(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                req.working_dir
            )));
        }
        p.set_cwd(PathBuf::from(&req.working_dir));
    }
    if req.privileged {
        let caps = container_capabilities(&[], &[], true, &host.bounding_caps)?;
        p.set_capabilities(Some(capabilities_oci(&caps)?));
    }
    Ok(p)
}
