//! `COPY` and `ADD`: sources from the context, a named context, a stage or an image,
//! heredocs, URLs and git repositories; `--chown`, `--chmod`, `--link` (a layer made
//! without looking at the base), `--parents` (source directories kept under the
//! destination), `--exclude` (patterns left out), `--checksum`, `--keep-git-dir`.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::cache::{cache_key, lookup, new_config, push_history};
use super::output::StepOut;
use super::remote::{self, Remote};
use super::stage::StageCtx;
use super::{fail, temp_dir, Build, BuildError, ImageState, SourceRef};
use crate::copy::{self, Owner};
use crate::instruction::CopyCmd;
use crate::parser::{Args, Instruction};
use crate::shell::{self, Vars};
use crate::Ignore;

/// One thing to copy.
struct Source {
    /// Where it is on the host.
    host: PathBuf,
    /// Relative to its source root (what `--exclude` patterns see).
    rel: PathBuf,
    /// The name used when a file is copied into a directory.
    name: String,
    is_dir: bool,
    /// With `--parents`: where under the destination it goes.
    parents: Option<PathBuf>,
    /// The pattern's literal directory prefix (exclude patterns also match below it).
    base: PathBuf,
    kind: SourceKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    /// A context, stage or image path (`ADD` extracts local archives).
    Local,
    /// Heredoc content.
    Inline,
    /// `ADD <url>`: never extracted, mode 0600, the server's modification time.
    Url(Option<i64>),
    /// A git checkout (its contents are copied).
    Git,
}

/// Where `--from` points.
enum Root {
    Context(PathBuf),
    Image(Box<ImageState>),
}

fn expand_words(args: &Args, vars: &Vars, escape: char) -> Result<Vec<String>, BuildError> {
    match args {
        Args::Json(v) => v
            .iter()
            .map(|w| shell::expand_word(w, vars, escape).map_err(fail))
            .collect(),
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
            Ok(ws)
        }
    }
}

/// The depth of the `--parents` pivot of a pattern (`a/./b/*.txt`: 1); 0 without one.
fn pivot_depth(pattern: &str) -> usize {
    match pattern.find("/./") {
        Some(i) => copy::clean_rel(&pattern[..i]).components().count(),
        None => 0,
    }
}

/// The literal directory part of a pattern before any glob character.
fn literal_base(rel: &Path, pattern: &str) -> PathBuf {
    if !pattern.contains(['*', '?', '[']) {
        return rel.to_path_buf();
    }
    let mut out = PathBuf::new();
    for c in copy::clean_rel(pattern).components() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            break;
        }
        out.push(c);
    }
    out
}

pub(crate) async fn copy(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    c: &CopyCmd,
    inst: &Instruction,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    let cmd = if c.add { "ADD" } else { "COPY" };
    let vars = ctx.vars();
    let words = expand_words(&c.args, &vars, b.escape)?;
    if words.len() < 2 {
        return Err(fail(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        )));
    }
    let (srcs, dest) = words.split_at(words.len() - 1);
    let dest_raw = dest[0].clone();
    let dest_abs = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{}", ctx.workdir().trim_end_matches('/'), dest_raw)
    };
    let dest_is_dir =
        dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.") || c.parents;
    let chmod = match &c.chmod {
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
    let expand = |s: &str| shell::expand_word(s, &vars, b.escape).map_err(fail);
    let chown = c.chown.as_deref().map(expand).transpose()?;
    let excludes = c
        .excludes
        .iter()
        .map(|e| expand(e))
        .collect::<Result<Vec<_>, _>>()?;
    let kinds: Vec<Option<Remote>> = srcs
        .iter()
        .map(|s| if c.add { remote::classify(s) } else { None })
        .collect();
    let any_git = kinds.iter().any(|k| matches!(k, Some(Remote::Git(_))));
    let all_remote = kinds.iter().all(Option::is_some);
    if c.checksum.is_some() && !all_remote {
        return Err(fail(
            "ADD --checksum can only be used with http(s) URLs and git sources",
        ));
    }
    if c.keep_git_dir && !any_git {
        return Err(fail("ADD --keep-git-dir can only be used with git sources"));
    }
    // The flags that change what lands in the layer are part of the step's text.
    let mut suffix = String::new();
    if let Some(o) = &chown {
        suffix.push_str(&format!("--chown={o} "));
    }
    if let Some(m) = chmod {
        suffix.push_str(&format!("--chmod={m:o} "));
    }
    if c.link {
        suffix.push_str("--link ");
    }
    if c.parents {
        suffix.push_str("--parents ");
    }
    for e in &excludes {
        suffix.push_str(&format!("--exclude={e} "));
    }
    if c.keep_git_dir {
        suffix.push_str("--keep-git-dir ");
    }

    let from = c.from.as_deref().map(expand).transpose()?;
    let root = match &from {
        None => Root::Context(b.opts.context.clone()),
        Some(f) => match b.source(f, ctx.index).await? {
            SourceRef::Dir(d) => Root::Context(d),
            SourceRef::Image(img) => Root::Image(img),
        },
    };
    // An image's content is fixed by its id and layers: the key needs no mount, so a cache
    // hit skips mounting the source at all.
    let mut from_text = None;
    if let Root::Image(img) = &root {
        let mut h = Sha256::new();
        h.update(format!("{}:{}", img.id, img.layers.join(",")).as_bytes());
        for s in srcs {
            h.update([0]);
            h.update(s.as_bytes());
        }
        let text = format!(
            "/bin/sh -c #(nop) {cmd} from:{} in {dest_raw} {suffix}",
            hex::encode(h.finalize())
        );
        let key = cache_key(&ctx.state, &text);
        if !b.opts.no_cache {
            if let Some(hit) = b.backend.cache_get(&key).await {
                out.line(" ---> Using cache\n");
                ctx.state = hit;
                return Ok(());
            }
        }
        from_text = Some(text);
    }
    let work = temp_dir(&b.opts.work_dir(), "copy")?;
    let mut from_container = None;
    let res = async {
        let src_root = match &root {
            Root::Context(d) => d.clone(),
            Root::Image(img) => {
                let (cid, rootfs) = b.backend.create_container(img, None).await.map_err(fail)?;
                from_container = Some(cid);
                rootfs
            }
        };
        let ignore = Ignore::parse(&excludes.join("\n"));
        let mut sources: Vec<Source> = Vec::new();
        let mut hash = Sha256::new();
        if let Root::Image(img) = &root {
            hash.update(format!("{}:{}", img.id, img.layers.join(",")).as_bytes());
        }
        for (s, kind) in srcs.iter().zip(&kinds) {
            if let Some(spec) = s.strip_prefix("<<") {
                let name = spec.trim_start_matches('-').trim_matches(['"', '\'']);
                let Some(h) = c.heredocs.iter().find(|h| h.name == name) else {
                    return Err(fail(format!("heredoc {name} not found")));
                };
                let content = if h.quoted {
                    h.content.clone()
                } else {
                    shell::expand_word(&format!("\"{}\"", h.content.replace('"', "\\\"")), &vars, b.escape)
                        .unwrap_or_else(|_| h.content.clone())
                };
                let p = work.join(name);
                std::fs::write(&p, &content).map_err(|e| fail(e.to_string()))?;
                hash.update(name.as_bytes());
                hash.update(content.as_bytes());
                sources.push(Source {
                    host: p,
                    rel: PathBuf::from(name),
                    name: name.to_string(),
                    is_dir: false,
                    parents: None,
                    base: PathBuf::new(),
                    kind: SourceKind::Inline,
                });
                continue;
            }
            match kind {
                Some(Remote::Url(url)) => {
                    let d = work.join(format!("url-{}", sources.len()));
                    std::fs::create_dir_all(&d).map_err(|e| fail(e.to_string()))?;
                    let f = remote::fetch_url(b.backend, url, &d, c.checksum.as_deref()).await?;
                    let name = remote::url_file_name(url)?;
                    let path = f.path.clone();
                    let digest = tokio::task::spawn_blocking(move || {
                        copy::hash_paths(path.parent().unwrap_or(Path::new("/")), &[PathBuf::from(path.file_name().unwrap_or_default())])
                    })
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| fail(e.to_string()))?;
                    hash.update(name.as_bytes());
                    hash.update(digest.as_bytes());
                    sources.push(Source {
                        host: f.path,
                        rel: PathBuf::from(&name),
                        name,
                        is_dir: false,
                        parents: None,
                        base: PathBuf::new(),
                        kind: SourceKind::Url(f.modified),
                    });
                    continue;
                }
                Some(Remote::Git(g)) => {
                    let d = work.join(format!("git-{}", sources.len()));
                    std::fs::create_dir_all(&d).map_err(|e| fail(e.to_string()))?;
                    let (g, keep, sum) = (g.clone(), c.keep_git_dir, c.checksum.clone());
                    let (checkout, digest) = tokio::task::spawn_blocking(move || {
                        let (root, _commit) = remote::clone_git(&g, &d, keep, sum.as_deref())?;
                        let digest = copy::hash_paths(&root, &[PathBuf::new()])
                            .map_err(|e| fail(e.to_string()))?;
                        Ok::<_, BuildError>((root, digest))
                    })
                    .await
                    .map_err(|e| fail(e.to_string()))??;
                    hash.update(digest.as_bytes());
                    sources.push(Source {
                        host: checkout,
                        rel: PathBuf::new(),
                        name: String::new(),
                        is_dir: true,
                        parents: None,
                        base: PathBuf::new(),
                        kind: SourceKind::Git,
                    });
                    continue;
                }
                None => {}
            }
            let root2 = src_root.clone();
            let pattern = s.clone();
            let matched = tokio::task::spawn_blocking(move || copy::resolve(&root2, &pattern))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let rels = matched.map_err(|_| {
                let what = if from.is_some() {
                    ""
                } else {
                    " in build context or excluded by .dockerignore"
                };
                fail(format!(
                    "{cmd} failed: file not found{what}: stat {s}: file does not exist"
                ))
            })?;
            let depth = pivot_depth(s);
            for rel in rels {
                let base = literal_base(&rel, s);
                let excluded = |p: &Path| {
                    let ps = p.to_string_lossy();
                    ignore.excluded(&ps)
                        || p.strip_prefix(&base).is_ok_and(|r| {
                            !r.as_os_str().is_empty() && ignore.excluded(&r.to_string_lossy())
                        })
                };
                if !excludes.is_empty() && excluded(&rel) {
                    continue;
                }
                let host = copy::host_path(&src_root, &rel);
                let is_dir = host.is_dir();
                let name = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let parents = c
                    .parents
                    .then(|| rel.components().skip(depth).collect::<PathBuf>());
                sources.push(Source {
                    host,
                    rel,
                    name,
                    is_dir,
                    parents,
                    base,
                    kind: SourceKind::Local,
                });
            }
        }
        // The content hash, without what --exclude leaves out.
        let local: Vec<(PathBuf, PathBuf)> = sources
            .iter()
            .filter(|s| s.kind == SourceKind::Local)
            .map(|s| (s.rel.clone(), s.base.clone()))
            .collect();
        if !local.is_empty() {
            let root2 = src_root.clone();
            let ign = ignore.clone();
            let digest = tokio::task::spawn_blocking(move || {
                let mut h = Sha256::new();
                for (rel, base) in &local {
                    let excluded = |p: &Path| exclude_match(&ign, p, base);
                    h.update(copy::hash_paths_except(&root2, std::slice::from_ref(rel), &excluded)?.as_bytes());
                    h.update(rel.to_string_lossy().as_bytes());
                }
                Ok::<_, std::io::Error>(hex::encode(h.finalize()))
            })
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("{cmd} failed: {e}")))?;
            hash.update(digest.as_bytes());
        }
        if sources.len() > 1 && !dest_is_dir {
            return Err(fail(format!(
                "When using {cmd} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let content = hex::encode(hash.finalize());
        let kind = if sources.len() == 1 && !sources[0].is_dir { "file" } else { "dir" };
        let created_by = from_text
            .clone()
            .unwrap_or_else(|| format!("/bin/sh -c #(nop) {cmd} {kind}:{content} in {dest_raw} {suffix}"));
        let key = cache_key(&ctx.state, &created_by);
        if !b.opts.no_cache {
            if let Some(hit) = lookup(b.backend, &key, &ctx.state, &created_by).await {
                out.line(" ---> Using cache\n");
                return Ok(hit);
            }
        }
        let owner = resolve_owner(b, ctx, chown.as_deref(), chmod).await?;
        // `--link`: the files go into an empty filesystem, so the layer does not depend on
        // the base (no dereferenced destination symlinks, no existing-directory check).
        let base_state = if c.link { ImageState::default() } else { ctx.state.clone() };
        let (cid, rootfs) = b.backend.create_container(&base_state, None).await.map_err(fail)?;
        let plan = CopyPlan {
            dest: dest_abs.clone(),
            dest_is_dir,
            owner,
            chowned: chown.is_some(),
            is_add: c.add,
            ignore: ignore.clone(),
        };
        let copied = tokio::task::spawn_blocking(move || plan.run(&rootfs, &sources))
            .await
            .map_err(|e| fail(e.to_string()))
            .and_then(|r| r.map_err(fail));
        let res = match copied {
            Ok(()) => {
                let mut cfg = new_config(&ctx.state.config);
                push_history(&mut cfg, &created_by, false);
                b.backend.commit(&cid, &ctx.state, cfg, false).await.map(|(s, _)| s).map_err(fail)
            }
            Err(e) => Err(e),
        };
        b.backend.remove_container(&cid).await;
        let next = res?;
        b.backend.cache_put(&key, &next).await;
        Ok(next)
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    if let Some(cid) = from_container {
        b.backend.remove_container(&cid).await;
    }
    ctx.state = res?;
    let _ = inst;
    Ok(())
}

fn exclude_match(ign: &Ignore, p: &Path, base: &Path) -> bool {
    ign.excluded(&p.to_string_lossy())
        || p.strip_prefix(base)
            .is_ok_and(|r| !r.as_os_str().is_empty() && ign.excluded(&r.to_string_lossy()))
}

/// `--chown` resolved against the stage's `/etc/passwd` and `/etc/group` (names need the
/// stage's filesystem, numbers do not).
async fn resolve_owner(
    b: &Build<'_>,
    ctx: &StageCtx,
    chown: Option<&str>,
    chmod: Option<u32>,
) -> Result<Owner, BuildError> {
    let Some(spec) = chown else {
        return Ok(Owner {
            uid: 0,
            gid: 0,
            chmod,
        });
    };
    let numeric = spec.split(':').all(|p| p.parse::<u32>().is_ok());
    let (uid, gid) = if numeric {
        copy::resolve_chown(spec, Path::new("/nonexistent"))
    } else {
        let (cid, rootfs) = b
            .backend
            .create_container(&ctx.state, None)
            .await
            .map_err(fail)?;
        let r = copy::resolve_chown(spec, &rootfs);
        b.backend.remove_container(&cid).await;
        r
    }
    .map_err(fail)?;
    Ok(Owner { uid, gid, chmod })
}

/// A file operation of `COPY`/`ADD` that failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to copy files: {0}")]
struct CopyFailed(std::io::Error);

/// Copies the sources into a container's filesystem with Docker's rules.
struct CopyPlan {
    dest: String,
    dest_is_dir: bool,
    owner: Owner,
    /// `--chown` was given (archives keep their owners otherwise).
    chowned: bool,
    is_add: bool,
    ignore: Ignore,
}

impl CopyPlan {
    fn run(&self, rootfs: &Path, sources: &[Source]) -> Result<(), CopyFailed> {
        let owner = self.owner;
        let parent_owner = Owner {
            chmod: None,
            ..owner
        };
        let dest_host = copy::in_root(rootfs, &self.dest);
        let err = CopyFailed;
        for s in sources {
            let excluded = |p: &Path| exclude_match(&self.ignore, p, &s.base);
            if let Some(rel) = &s.parents {
                // `--parents`: the source's path (after a `/./` pivot) under the destination.
                let target = dest_host.join(rel);
                if let Some(p) = target.parent() {
                    copy::mkdir_all(p, parent_owner).map_err(err)?;
                }
                copy::copy_tree_except(&s.host, &target, owner, &s.rel, &excluded).map_err(err)?;
                continue;
            }
            if s.is_dir {
                copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
                for e in std::fs::read_dir(&s.host).map_err(err)? {
                    let e = e.map_err(err)?;
                    copy::copy_tree_except(
                        &e.path(),
                        &dest_host.join(e.file_name()),
                        owner,
                        &s.rel.join(e.file_name()),
                        &excluded,
                    )
                    .map_err(err)?;
                }
                continue;
            }
            if self.is_add && s.kind == SourceKind::Local && copy::is_archive(&s.host) {
                copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
                copy::extract_archive(&s.host, &dest_host, self.chowned.then_some(owner))
                    .map_err(err)?;
                continue;
            }
            let target = if self.dest_is_dir || dest_host.is_dir() {
                copy::mkdir_all(&dest_host, parent_owner).map_err(err)?;
                dest_host.join(&s.name)
            } else {
                if let Some(p) = dest_host.parent() {
                    copy::mkdir_all(p, parent_owner).map_err(err)?;
                }
                dest_host.clone()
            };
            copy::copy_tree(&s.host, &target, owner).map_err(err)?;
            if let SourceKind::Url(modified) = s.kind {
                url_file_finish(&target, owner, modified).map_err(err)?;
            }
        }
        Ok(())
    }
}

/// `ADD <url>`: mode 0600 (unless `--chmod`), the server's `Last-Modified` as mtime.
fn url_file_finish(path: &Path, owner: Owner, modified: Option<i64>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if owner.chmod.is_none() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    if let Some(t) = modified {
        let when =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t).unwrap_or(0));
        std::fs::File::options()
            .write(true)
            .open(path)?
            .set_modified(when)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pivots_and_bases() {
        assert_eq!(pivot_depth("a/./b/c.txt"), 1);
        assert_eq!(pivot_depth("./x/y"), 0);
        assert_eq!(pivot_depth("a/b/./c"), 2);
        assert_eq!(
            literal_base(Path::new("src/a.txt"), "src/*.txt"),
            PathBuf::from("src")
        );
        assert_eq!(literal_base(Path::new("dir"), "dir"), PathBuf::from("dir"));
    }
}
