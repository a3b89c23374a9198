//! `RUN --mount`: what each mount keys in the cache, and the host paths it becomes for the
//! step's container.
//!
//! - `bind`: a path of the context, a named context, a stage or an image (whose filesystem
//!   is mounted for the step), read-only unless `rw` (then writes go to a throw-away copy);
//!   keyed by the source's content (context) or image id (stage, image).
//! - `cache`: a directory the daemon keeps across builds (`Backend::cache_mount`), shared,
//!   private or locked; its content is not part of the key, as with BuildKit.
//! - `tmpfs`: a fresh tmpfs.
//! - `secret`: a file (default `/run/secrets/<id>`) and/or an environment variable for the
//!   step only; the value is never part of the key, the history or a layer.
//! - `ssh`: an SSH agent socket given with `--ssh`; refused without one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::stage::StageCtx;
use super::{
    fail, temp_dir, Backend, Build, BuildError, CacheMountLease, CacheMountRequest, ImageState,
    RunMount, RunMountKind, SourceRef,
};
use crate::copy;
use crate::flags::{MountSpec, MountType};

/// A mount with its `from` resolved.
pub(crate) struct Resolved {
    pub spec: MountSpec,
    /// Absolute target in the container.
    pub target: String,
    pub from: From,
}

pub(crate) enum From {
    /// The build context (no `from`).
    Context,
    Dir(PathBuf),
    Image(Box<ImageState>),
    /// Not applicable (tmpfs, secret, ssh, or a cache without `from`).
    Nothing,
}

fn default_target(spec: &MountSpec, n_ssh: usize) -> Option<String> {
    match spec.kind {
        MountType::Secret if spec.env.is_none() => {
            spec.secret_id().map(|id| format!("/run/secrets/{id}"))
        }
        MountType::Ssh => Some(format!("/run/buildkit/ssh_agent.{n_ssh}")),
        _ => None,
    }
}

/// Resolves the targets and `from` sources of a step's mounts.
pub(crate) async fn resolve(
    b: &Build<'_>,
    ctx: &StageCtx,
    specs: Vec<MountSpec>,
) -> Result<Vec<Resolved>, BuildError> {
    let mut out: Vec<Resolved> = Vec::new();
    let mut n_ssh = 0;
    for spec in specs {
        let target = match spec.target.clone().or_else(|| default_target(&spec, n_ssh)) {
            Some(t) if t.starts_with('/') => t,
            Some(t) => format!("{}/{t}", ctx.workdir().trim_end_matches('/')),
            // A secret given only as an environment variable.
            None => String::new(),
        };
        if spec.kind == MountType::Ssh {
            n_ssh += 1;
        }
        if !target.is_empty() && out.iter().any(|r| r.target == target) {
            return Err(fail(format!("duplicate mount target {target}")));
        }
        let from = match (spec.kind, spec.from.as_deref()) {
            (MountType::Bind, None) => From::Context,
            (MountType::Bind | MountType::Cache, Some(name)) => {
                match b.source(name, ctx.index).await? {
                    SourceRef::Image(img) => From::Image(img),
                    SourceRef::Dir(d) => From::Dir(d),
                }
            }
            _ => From::Nothing,
        };
        out.push(Resolved { spec, target, from });
    }
    Ok(out)
}

fn source_rel(spec: &MountSpec) -> String {
    spec.source.clone().unwrap_or_else(|| "/".into())
}

/// Refuses a step whose required secrets or SSH sockets were not given, before the cache is
/// asked (a cached step must not hide a missing secret).
pub(crate) fn check_available(b: &Build<'_>, mounts: &[Resolved]) -> Result<(), BuildError> {
    for m in mounts {
        let s = &m.spec;
        match s.kind {
            MountType::Secret if s.required => {
                let id = s.secret_id().unwrap_or_default();
                if !b.opts.secrets.contains_key(&id) {
                    return Err(fail(format!(
                        "secret {id} not found: pass it with berth build --secret id={id},src=FILE (or env=VAR)"
                    )));
                }
            }
            MountType::Ssh => {
                let id = s.id.clone().unwrap_or_else(|| "default".into());
                if !b.opts.ssh.contains_key(&id) {
                    return Err(fail(format!(
                        "RUN --mount=type=ssh needs an SSH agent socket for id {id:?}: pass one with berth build --ssh {id}[=SOCKET] (the docker CLI's legacy builder has no way to give one)"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the mounts add to the step's cache key (never a secret's value).
pub(crate) async fn fingerprint(b: &Build<'_>, mounts: &[Resolved]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for m in mounts {
        let s = &m.spec;
        h.update(
            format!(
                "{}|{}|{}|{}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}\n",
                s.kind,
                s.required,
                m.target,
                s.readonly,
                s.id,
                s.source,
                s.sharing,
                s.mode,
                s.uid,
                s.gid,
                s.size,
                s.env
            )
            .as_bytes(),
        );
        if s.kind != MountType::Bind {
            continue;
        }
        match &m.from {
            From::Image(img) => {
                h.update(img.id.as_bytes());
                h.update(img.layers.join(",").as_bytes());
            }
            From::Context | From::Dir(_) => {
                let root = match &m.from {
                    From::Dir(d) => d.clone(),
                    _ => b.opts.context.clone(),
                };
                let rel = copy::clean_rel(&source_rel(s));
                let digest = tokio::task::spawn_blocking(move || copy::hash_paths(&root, &[rel]))
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| {
                        fail(format!(
                            "RUN --mount: source {} not found: {e}",
                            source_rel(s)
                        ))
                    })?;
                h.update(digest.as_bytes());
            }
            From::Nothing => {}
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The host side of a step's mounts, released after the step.
#[derive(Default)]
pub(crate) struct Prepared {
    pub mounts: Vec<RunMount>,
    pub env: Vec<String>,
    pub secret_env: Vec<String>,
    containers: Vec<String>,
    dirs: Vec<PathBuf>,
    leases: Vec<CacheMountLease>,
}

impl Prepared {
    /// Removes what the step borrowed: source containers, secret files, copies, locks.
    pub async fn release(self, backend: &dyn Backend) {
        for c in &self.containers {
            backend.remove_container(c).await;
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        drop(self.leases);
    }
}

/// The filesystem of `img`, mounted through a build container that `p` removes later.
async fn image_root(
    backend: &dyn Backend,
    img: &ImageState,
    p: &mut Prepared,
) -> Result<PathBuf, BuildError> {
    let (cid, root) = backend.create_container(img, None).await.map_err(fail)?;
    p.containers.push(cid);
    Ok(root)
}

fn write_secret(path: &Path, value: &[u8], mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value)?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Turns the mounts into host paths for the step (`cmd` describes cache mounts in
/// `system df`). On failure, what was prepared so far is released.
pub(crate) async fn prepare(
    b: &Build<'_>,
    mounts: &[Resolved],
    cmd: &str,
) -> Result<Prepared, BuildError> {
    let mut p = Prepared::default();
    match prepare_into(b, mounts, cmd, &mut p).await {
        Ok(()) => Ok(p),
        Err(e) => {
            p.release(b.backend).await;
            Err(e)
        }
    }
}

async fn prepare_into(
    b: &Build<'_>,
    mounts: &[Resolved],
    cmd: &str,
    p: &mut Prepared,
) -> Result<(), BuildError> {
    let mut secret_dir: Option<PathBuf> = None;
    for m in mounts {
        let s = &m.spec;
        let bind = |path: PathBuf, readonly: bool| RunMount {
            target: m.target.clone(),
            kind: RunMountKind::Bind(path),
            readonly,
        };
        match s.kind {
            MountType::Bind => {
                let rel = source_rel(s);
                let root = match &m.from {
                    From::Image(img) => image_root(b.backend, img, p).await?,
                    From::Dir(d) => d.clone(),
                    _ => b.opts.context.clone(),
                };
                let src = copy::in_root(&root, &rel);
                if std::fs::symlink_metadata(&src).is_err() {
                    return Err(fail(format!(
                        "RUN --mount=type=bind: source {rel} not found{}",
                        match s.from.as_deref() {
                            Some(f) => format!(" in {f}"),
                            None => " in the build context".into(),
                        }
                    )));
                }
                let is_image = matches!(m.from, From::Image(_));
                let path = if !s.readonly && !is_image {
                    // Writes to a writable bind of a directory are thrown away after the
                    // step, as with BuildKit: give it a copy, never the context itself.
                    let d = temp_dir(&b.opts.work_dir(), "rw-bind")?;
                    p.dirs.push(d.clone());
                    let dst = d.join("src");
                    let src2 = src.clone();
                    let dst2 = dst.clone();
                    tokio::task::spawn_blocking(move || {
                        copy::copy_tree(&src2, &dst2, copy::Owner::default())
                    })
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| fail(format!("copying bind source {rel}: {e}")))?;
                    dst
                } else {
                    // An image's filesystem is a throw-away overlay already.
                    src
                };
                p.mounts.push(bind(path, s.readonly));
            }
            MountType::Cache => {
                let seed = match &m.from {
                    From::Image(img) => Some(copy::in_root(
                        &image_root(b.backend, img, p).await?,
                        &source_rel(s),
                    )),
                    From::Dir(d) => Some(copy::in_root(d, &source_rel(s))),
                    _ => None,
                };
                let req = CacheMountRequest {
                    id: s.id.clone().unwrap_or_else(|| m.target.clone()),
                    sharing: s.sharing,
                    mode: s.mode.unwrap_or(0o755),
                    uid: s.uid.unwrap_or(0),
                    gid: s.gid.unwrap_or(0),
                    seed,
                    description: format!("cached mount {} from exec {cmd}", m.target),
                };
                let lease = b.backend.cache_mount(&req).await.map_err(fail)?;
                p.mounts.push(bind(lease.path.clone(), s.readonly));
                p.leases.push(lease);
            }
            MountType::Tmpfs => p.mounts.push(RunMount {
                target: m.target.clone(),
                kind: RunMountKind::Tmpfs(s.size),
                readonly: false,
            }),
            MountType::Secret => {
                let id = s.secret_id().unwrap_or_default();
                let Some(value) = b.opts.secrets.get(&id) else {
                    if s.required {
                        return Err(fail(format!(
                            "secret {id} not found: pass it with berth build --secret id={id},src=FILE (or env=VAR)"
                        )));
                    }
                    continue;
                };
                if let Some(var) = &s.env {
                    let text = String::from_utf8(value.clone()).map_err(|_| {
                        fail(format!(
                            "secret {id} is not UTF-8 text and can not be the environment variable {var}"
                        ))
                    })?;
                    p.secret_env.push(format!("{var}={text}"));
                    if s.target.is_none() {
                        continue;
                    }
                }
                let dir = match &secret_dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = temp_dir(&b.opts.secrets_dir(), "secrets")?;
                        p.dirs.push(d.clone());
                        secret_dir = Some(d.clone());
                        d
                    }
                };
                let file = dir.join(format!("{}", p.mounts.len()));
                write_secret(
                    &file,
                    value,
                    s.mode.unwrap_or(0o400),
                    s.uid.unwrap_or(0),
                    s.gid.unwrap_or(0),
                )
                .map_err(|e| fail(format!("writing secret {id}: {e}")))?;
                p.mounts.push(bind(file, true));
            }
            MountType::Ssh => {
                let id = s.id.clone().unwrap_or_else(|| "default".into());
                if s.mode.is_some() || s.uid.is_some() || s.gid.is_some() {
                    return Err(fail(
                        "RUN --mount=type=ssh: mode, uid and gid are not supported by berth (the agent socket is mounted as it is)",
                    ));
                }
                let Some(sock) = b.opts.ssh.get(&id) else {
                    return Err(fail(format!(
                        "RUN --mount=type=ssh needs an SSH agent socket for id {id:?}: pass one with berth build --ssh {id}[=SOCKET] (the docker CLI's legacy builder has no way to give one)"
                    )));
                };
                if p.env.iter().all(|e| !e.starts_with("SSH_AUTH_SOCK=")) {
                    p.env.push(format!("SSH_AUTH_SOCK={}", m.target));
                }
                p.mounts.push(bind(sock.clone(), false));
            }
        }
    }
    Ok(())
}
