//! `berth build`, `commit`, `diff`, `export`, `history`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use berth_api_types::container::ChangeItem;
use berth_api_types::image::HistoryItem;
use berth_client::{Body, Query};
use clap::Args;
use http::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::build_extras;
use crate::format;
use crate::progress;
use crate::util::{CliError, CmdResult, Ctx};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long, value_name = "string")]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    pub cache_from: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    pub iidfile: Option<String>,
    /// Set type of progress output ("auto", "plain")
    #[arg(long, value_name = "string", default_value = "auto")]
    pub progress: String,
    /// Always attempt to pull a newer version of the image (accepted; berth has no registry client yet)
    #[arg(long)]
    pub pull: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "string")]
    pub network: Option<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or
    /// "id=mysecret,env=VAR")
    #[arg(long = "secret", value_name = "stringArray")]
    pub secrets: Vec<String>,
    /// SSH agent socket to expose to the build (format: "default|<id>[=<socket>]")
    #[arg(long = "ssh", value_name = "stringArray")]
    pub ssh: Vec<String>,
    /// Additional build contexts (e.g., name=path or name=docker-image://ref)
    #[arg(long = "build-context", value_name = "stringArray")]
    pub build_contexts: Vec<String>,
    /// Output destination (format: "type=local,dest=path" or "type=tar,dest=file|-")
    #[arg(short = 'o', long = "output", value_name = "stringArray")]
    pub output: Option<String>,
    /// PATH | -
    pub context: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    /// (`-H` is the global host flag here.)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    pub image: String,
}

/// `dir` as a tar, skipping what `.dockerignore` excludes (the daemon checks again), with
/// `extra` (a Dockerfile from elsewhere) and the named contexts under
/// `.berth-build-contexts/<name>/` (each with its own `.dockerignore`).
fn tar_context(
    dir: &Path,
    extra: Option<(&str, &[u8])>,
    named: &[(String, PathBuf)],
) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    append_dir(&mut b, dir, Path::new(""))?;
    for (name, d) in named {
        let prefix = Path::new(".berth-build-contexts").join(name);
        append_dir(&mut b, d, &prefix)?;
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, name, data)?;
    }
    b.into_inner()
}

fn append_dir(b: &mut tar::Builder<Vec<u8>>, dir: &Path, prefix: &Path) -> std::io::Result<()> {
    let ignore = std::fs::read_to_string(dir.join(".dockerignore"))
        .map(|t| berth_builder::Ignore::parse(&t))
        .unwrap_or_default();
    if !prefix.as_os_str().is_empty() {
        b.append_dir(prefix, dir)?;
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let rs = r.to_string_lossy().into_owned();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let keep_file = rs == "Dockerfile" || rs == ".dockerignore";
            if ignore.excluded(&rs) && !keep_file && !(is_dir && ignore.may_include_below(&rs)) {
                continue;
            }
            if is_dir {
                b.append_dir(prefix.join(&r), e.path())?;
                stack.push(r);
            } else {
                b.append_path_with_name(e.path(), prefix.join(&r))?;
            }
        }
    }
    Ok(())
}

fn kv(list: &[String], from_env: bool) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
            None if from_env => {
                let v = std::env::var(item)
                    .map(Value::String)
                    .unwrap_or(Value::Null);
                m.insert(item.clone(), v);
            }
            None => {
                m.insert(item.clone(), Value::String(String::new()));
            }
        }
    }
    m
}

pub async fn build(ctx: &Ctx, a: BuildArgs) -> CmdResult {
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty" | "quiet") {
        return Err(CliError::new(
            1,
            format!("invalid progress mode {:?}: use auto or plain", a.progress),
        ));
    }
    let mut q = Query::new();
    let mut named = Vec::new();
    for c in &a.build_contexts {
        let c = build_extras::parse_context(c)?;
        q = q.add("buildcontext", c.param());
        if let build_extras::NamedContext::Dir(n, d) = c {
            named.push((n, d));
        }
    }
    for s in &a.secrets {
        q = q.add("secret", build_extras::secret_param(s)?);
    }
    for s in &a.ssh {
        q = q.add("ssh", build_extras::ssh_param(s)?);
    }
    let output = a
        .output
        .as_deref()
        .map(build_extras::parse_output)
        .transpose()?;
    if let Some(o) = &output {
        q = o.add_to(q);
    }
    if a.context == "-" && !named.is_empty() {
        return Err(CliError::new(
            1,
            "--build-context with a local directory needs a context directory, not -",
        ));
    }
    let body = if a.context == "-" {
        Body::reader(tokio::io::stdin(), "application/x-tar")
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            return Err(CliError::new(
                1,
                format!("unable to prepare context: path {:?} not found", a.context),
            ));
        }
        let mut extra: Option<(String, Vec<u8>)> = None;
        match a.file.as_deref() {
            Some("-") => {
                let mut text = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)?;
                let name = format!(".dockerfile.{:012x}", rand_suffix());
                q = q.add("dockerfile", &name);
                extra = Some((name, text));
            }
            Some(f) => {
                // A Dockerfile outside the context travels inside it under a private name.
                let p = Path::new(f);
                let inside = std::fs::canonicalize(p)
                    .ok()
                    .zip(std::fs::canonicalize(&dir).ok())
                    .and_then(|(fp, dp)| fp.strip_prefix(&dp).ok().map(Path::to_path_buf));
                match inside {
                    Some(rel) => q = q.add("dockerfile", rel.to_string_lossy()),
                    None => {
                        let text = std::fs::read(p).map_err(|e| {
                            CliError::new(1, format!("unable to prepare context: {f}: {e}"))
                        })?;
                        let name = format!(".dockerfile.{:012x}", rand_suffix());
                        q = q.add("dockerfile", &name);
                        extra = Some((name, text));
                    }
                }
            }
            None => {}
        }
        let data = tokio::task::spawn_blocking(move || {
            tar_context(
                &dir,
                extra.as_ref().map(|(n, d)| (n.as_str(), d.as_slice())),
                &named,
            )
        })
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?
        .map_err(|e| CliError::new(1, format!("unable to prepare context: {e}")))?;
        Body::Bytes {
            data: data.into(),
            content_type: "application/x-tar".into(),
        }
    };
    for t in &a.tags {
        q = q.add("t", t);
    }
    let args = kv(&a.build_args, true);
    if !args.is_empty() {
        q = q.add("buildargs", Value::Object(args).to_string());
    }
    let labels = kv(&a.labels, false);
    if !labels.is_empty() {
        q = q.add("labels", Value::Object(labels).to_string());
    }
    if !a.cache_from.is_empty() {
        q = q.add("cachefrom", serde_json::json!(a.cache_from).to_string());
    }
    q = q
        .add_opt("target", a.target.clone())
        .add_opt("networkmode", a.network.clone())
        .flag("nocache", a.no_cache)
        .flag("q", a.quiet)
        .flag("pull", a.pull)
        .add("rm", if a.rm { "1" } else { "0" })
        .flag("forcerm", a.force_rm);
    let mut stream = ctx
        .client
        .json_stream(Method::POST, "/build", &q, body)
        .await?;
    let live = super::build_progress::wants_live(
        &a.progress,
        a.quiet,
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
    );
    let to_stderr = output.as_ref().is_some_and(|o| o.uses_stdout());
    let res = if live && !to_stderr {
        super::build_progress::display(&mut stream).await?
    } else {
        progress::display(&mut stream, false, to_stderr).await?
    };
    if let Some(o) = &output {
        o.write(&res.aux)?;
        return Ok(0);
    }
    let id = res
        .aux
        .iter()
        .find_map(|v| v.get("ID").and_then(Value::as_str).map(str::to_string));
    if let (Some(path), Some(id)) = (&a.iidfile, &id) {
        std::fs::write(path, id)
            .map_err(|e| CliError::new(1, format!("failed to write image ID to {path}: {e}")))?;
    }
    // With `-q` the daemon's only stream line is the image id.
    Ok(0)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
        ^ u64::from(std::process::id())
}

pub async fn commit(ctx: &Ctx, a: CommitArgs) -> CmdResult {
    let (repo, tag) = match a.reference.as_deref() {
        Some(r) => {
            let (repo, tag) = crate::util::split_ref(r);
            (repo, tag.unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    let mut q = Query::new()
        .add("container", &a.container)
        .add("repo", repo)
        .add("tag", tag)
        .add_opt("comment", a.message.clone())
        .add_opt("author", a.author.clone())
        .add("pause", if a.pause { "1" } else { "0" });
    for c in &a.change {
        q = q.add("changes", c);
    }
    let v: Value = ctx.client.post_json("/commit", &q, Body::Empty).await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

pub async fn diff(ctx: &Ctx, a: DiffArgs) -> CmdResult {
    let changes: Vec<ChangeItem> = ctx
        .client
        .get_json(
            &format!("/containers/{}/changes", a.container),
            &Query::new(),
        )
        .await?;
    let mut out = String::new();
    for c in changes {
        let k = match c.kind {
            0 => 'C',
            1 => 'A',
            _ => 'D',
        };
        out.push_str(&format!("{k} {}\n", c.path));
    }
    print!("{out}");
    Ok(0)
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> CmdResult {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut body = ctx
        .client
        .body_stream(
            Method::GET,
            &format!("/containers/{}/export", a.container),
            &Query::new(),
            Body::Empty,
        )
        .await?;
    match &a.output {
        Some(path) => {
            let mut f = tokio::fs::File::create(path)
                .await
                .map_err(|e| CliError::new(1, format!("failed to export container: {e}")))?;
            while let Some(chunk) = body.chunk().await {
                f.write_all(&chunk?).await?;
            }
            f.flush().await?;
        }
        None => {
            let mut out = tokio::io::stdout();
            while let Some(chunk) = body.chunk().await {
                out.write_all(&chunk?).await?;
            }
            out.flush().await?;
        }
    }
    Ok(0)
}

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> CmdResult {
    let items: Vec<HistoryItem> = ctx
        .client
        .get_json(&format!("/images/{}/history", a.image), &Query::new())
        .await?;
    let mut out = String::new();
    let show_id = |id: &str| -> String {
        if id == "<missing>" || a.no_trunc {
            id.to_string()
        } else {
            format::short_id(id)
        }
    };
    if a.quiet {
        for i in &items {
            out.push_str(&show_id(&i.id));
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
    }
    if let Some(f) = &a.format {
        let rows: Vec<Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "ID": show_id(&i.id),
                    "CreatedSince": format::ago(i.created),
                    "CreatedAt": format::go_time(i.created),
                    "CreatedBy": i.created_by,
                    "Size": format::human_size(i.size),
                    "Comment": i.comment,
                })
            })
            .collect();
        let lf = format::ListFormat::parse(Some(f), "")?;
        let headers = serde_json::json!({
            "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
            "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"
        });
        let text = lf.render(&headers, &rows)?;
        print!("{text}");
        return Ok(0);
    }
    out.push_str("IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT\n");
    for i in &items {
        let created_by = i.created_by.replace('\t', " ");
        let created_by = if a.no_trunc {
            created_by
        } else {
            format::ellipsis(&created_by, 45)
        };
        let created = if a.human {
            format::ago(i.created)
        } else {
            format::go_time(i.created)
        };
        let size = if a.human {
            format::human_size(i.size)
        } else {
            i.size.to_string()
        };
        out.push_str(&format!(
            "{}\t{created}\t{created_by}\t{size}\t{}\n",
            show_id(&i.id),
            i.comment
        ));
    }
    print!("{}", format::tabwrite(&out));
    Ok(0)
}
