//! `berth volume create|ls|inspect|rm|prune`, `berth cp`, and the `--mount` flag's parser.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use berth_client::{Body, Query};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::commands::image::filters_json;
use crate::format::{human_size, ListFormat};
use crate::util::{daemon_err, CliError, CmdResult, Ctx};

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    pub src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    pub dst: String,
}

fn kv(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

pub async fn create(ctx: &Ctx, a: VolumeCreateArgs) -> CmdResult {
    let name =
        match (&a.name_flag, &a.name) {
            (Some(f), Some(n)) if f != n => return Err(CliError::new(
                1,
                "conflicting options: either specify --name or provide positional arg, not both",
            )),
            (Some(f), _) => f.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => String::new(),
        };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    let v: Value = ctx
        .client
        .post_json("/volumes/create", &Query::new(), Body::json(&body)?)
        .await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

fn volume_row(v: &Value) -> Value {
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            l.sort();
            l.join(",")
        })
        .unwrap_or_default();
    let size = v["UsageData"]["Size"]
        .as_i64()
        .map(|s| if s < 0 { "N/A".into() } else { human_size(s) })
        .unwrap_or_else(|| "N/A".into());
    let links = v["UsageData"]["RefCount"]
        .as_i64()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "N/A".into());
    json!({
        "Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"], "Labels": labels, "Links": links, "Size": size,
        "Availability": "N/A", "Group": "N/A",
    })
}

fn volume_headers() -> Value {
    json!({
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
        "Group": "GROUP",
    })
}

pub async fn ls(ctx: &Ctx, a: VolumeLsArgs) -> CmdResult {
    let q = Query::new().add_opt("filters", filters_json(&a.filter, &[])?);
    let resp: Value = ctx.client.get_json("/volumes", &q).await?;
    let mut list: Vec<Value> = resp["Volumes"].as_array().cloned().unwrap_or_default();
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for v in &list {
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let fmt = ListFormat::parse(a.format.as_deref(), "{{.Driver}}\t{{.Name}}")?;
    let rows: Vec<Value> = list.iter().map(volume_row).collect();
    print!("{}", fmt.render(&volume_headers(), &rows)?);
    Ok(0)
}

pub async fn inspect(ctx: &Ctx, a: VolumeInspectArgs) -> CmdResult {
    let template = crate::format::inspect_template(a.format.as_deref())?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match ctx
            .client
            .get_bytes(&format!("/volumes/{n}"), &Query::new())
            .await
        {
            Ok(b) => found.push(b),
            Err(e) => errors.push(daemon_err(&e)),
        }
    }
    crate::format::print_inspected(&found, template.as_ref())?;
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, errors.join("\n")))
    }
}

pub async fn rm(ctx: &Ctx, a: VolumeRmArgs) -> CmdResult {
    let q = Query::new().flag("force", a.force);
    let mut errors = Vec::new();
    for n in &a.names {
        match ctx.client.delete(&format!("/volumes/{n}"), &q).await {
            Ok(_) => println!("{n}"),
            Err(e) => errors.push(daemon_err(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, errors.join("\n")))
    }
}

pub async fn prune(ctx: &Ctx, a: VolumePruneArgs) -> CmdResult {
    let mut extra = Vec::new();
    if a.all {
        extra.push(("all", "true".to_string()));
    }
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all local volumes not used by at least one container."
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Ok(0);
        }
    }
    let q = Query::new().add_opt("filters", filters_json(&a.filter, &extra)?);
    let resp: Value = ctx
        .client
        .post_json("/volumes/prune", &q, Body::Empty)
        .await?;
    let deleted: Vec<&str> = resp["VolumesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(resp["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

/// `container:path` split, or `None` for a local path (docker's `splitCpArg`).
fn split_cp_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

#[derive(Debug, Default, Clone)]
struct Stat {
    name: String,
    is_dir: bool,
    link_target: String,
}

fn decode_stat(headers: &http::HeaderMap) -> Result<Stat, CliError> {
    let raw = headers
        .get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| CliError::new(1, "missing X-Docker-Container-Path-Stat header"))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| CliError::new(1, format!("decoding path stat: {e}")))?;
    let v: Value = serde_json::from_slice(&json).map_err(|e| CliError::new(1, e.to_string()))?;
    let mode = v["mode"].as_u64().unwrap_or(0);
    Ok(Stat {
        name: v["name"].as_str().unwrap_or("").to_string(),
        is_dir: mode & (1 << 31) != 0,
        link_target: v["linkTarget"].as_str().unwrap_or("").to_string(),
    })
}

fn base_of(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| ".".into())
}

/// Renames entries `old/...` to `new/...` (docker's `RebaseArchiveEntries`).
fn rebase_tar(data: &[u8], old: &str, new: &str) -> Result<Vec<u8>, CliError> {
    let mut ar = tar::Archive::new(data);
    let mut out = tar::Builder::new(Vec::new());
    for e in ar.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().to_string();
        let trimmed = name.trim_start_matches("./");
        let old_t = old.trim_start_matches("./");
        let renamed = if old_t == "." || old_t.is_empty() {
            format!("{new}/{trimmed}")
        } else if trimmed == old_t {
            new.to_string()
        } else if let Some(rest) = trimmed.strip_prefix(&format!("{old_t}/")) {
            format!("{new}/{rest}")
        } else {
            continue;
        };
        let mut h = e.header().clone();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf)?;
        if h.entry_type() == tar::EntryType::Symlink || h.entry_type() == tar::EntryType::Link {
            let target = e.link_name()?.map(|t| t.to_path_buf()).unwrap_or_default();
            out.append_link(&mut h, renamed.trim_end_matches('/'), target)?;
        } else {
            out.append_data(&mut h, renamed.trim_end_matches('/'), &buf[..])?;
        }
    }
    Ok(out.into_inner()?)
}

fn unpack(data: &[u8], dir: &Path) -> Result<(), CliError> {
    let mut ar = tar::Archive::new(data);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    ar.unpack(dir)
        .map_err(|e| CliError::new(1, format!("extracting into {}: {e}", dir.display())))
}

async fn copy_from_container(ctx: &Ctx, a: &CpArgs, container: &str, path: &str) -> CmdResult {
    let mut path = path.to_string();
    let q = |p: &str| Query::new().add("path", p);
    let url = format!("/containers/{container}/archive");
    if a.follow_link {
        let (_, headers) = ctx.client.head(&url, &q(&path)).await?;
        let st = decode_stat(&headers)?;
        if !st.link_target.is_empty() {
            path = st.link_target;
        }
    }
    let resp = ctx
        .client
        .send(http::Method::GET, &url, &q(&path), Body::Empty, &[])
        .await?;
    let stat = decode_stat(resp.headers())?;
    use http_body_util::BodyExt;
    let data = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?
        .to_bytes();
    if a.dst == "-" {
        std::io::stdout().write_all(&data)?;
        return Ok(0);
    }
    let dst = PathBuf::from(&a.dst);
    let src_base = base_of(&path);
    match std::fs::metadata(&dst) {
        Ok(md) if md.is_dir() => unpack(&data, &dst)?,
        Ok(_) if stat.is_dir => {
            return Err(CliError::new(
                1,
                "cannot copy a directory to an existing file",
            ))
        }
        _ => {
            if a.dst.ends_with('/') && !stat.is_dir {
                return Err(CliError::new(
                    1,
                    format!("destination directory {} does not exist", a.dst),
                ));
            }
            let parent = dst
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let new_base = base_of(&a.dst);
            let rebased = rebase_tar(&data, &src_base, &new_base)?;
            unpack(&rebased, &parent)?;
        }
    }
    let _ = stat.name;
    Ok(0)
}

/// Tars a local path with its top entry named `name` (`.` means "the content").
fn tar_local(src: &Path, name: &str, follow: bool) -> Result<Vec<u8>, CliError> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let md = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| CliError::new(1, format!("{}: {e}", src.display())))?;
    if md.is_dir() {
        b.append_dir_all(name, src)?;
    } else {
        b.append_path_with_name(src, name)?;
    }
    Ok(b.into_inner()?)
}

async fn copy_to_container(ctx: &Ctx, a: &CpArgs, container: &str, path: &str) -> CmdResult {
    let url = format!("/containers/{container}/archive");
    let url_ref = &url;
    let put = |dir: String, data: Vec<u8>| {
        let q = Query::new()
            .add("path", dir)
            .add("noOverwriteDirNonDir", "true")
            .flag("copyUIDGID", a.archive);
        async move {
            ctx.client
                .send(
                    http::Method::PUT,
                    url_ref,
                    &q,
                    Body::Bytes {
                        data: bytes::Bytes::from(data),
                        content_type: "application/x-tar".into(),
                    },
                    &[],
                )
                .await
        }
    };
    if a.src == "-" {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        put(path.to_string(), data).await?;
        return Ok(0);
    }
    let src = PathBuf::from(&a.src);
    let src_md = std::fs::symlink_metadata(&src)
        .map_err(|_| CliError::new(1, format!("stat {}: no such file or directory", a.src)))?;
    let dst_stat = match ctx.client.head(&url, &Query::new().add("path", path)).await {
        Ok((_, h)) => Some(decode_stat(&h)?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let src_name = base_of(&a.src);
    let (dir, data) = match dst_stat {
        Some(st) if st.is_dir => (path.to_string(), tar_local(&src, &src_name, a.follow_link)?),
        Some(_) if src_md.is_dir() => {
            return Err(CliError::new(
                1,
                "cannot copy a directory to an existing file",
            ))
        }
        _ => {
            if path.ends_with('/') {
                return Err(CliError::new(
                    1,
                    format!("destination directory {path} does not exist"),
                ));
            }
            let parent = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            (parent, tar_local(&src, &base_of(path), a.follow_link)?)
        }
    };
    put(dir, data).await?;
    Ok(0)
}

pub async fn cp(ctx: &Ctx, a: CpArgs) -> CmdResult {
    match (split_cp_arg(&a.src), split_cp_arg(&a.dst)) {
        (Some((c, p)), None) => {
            let (c, p) = (c.to_string(), p.to_string());
            copy_from_container(ctx, &a, &c, &p).await
        }
        (None, Some((c, p))) => {
            let (c, p) = (c.to_string(), p.to_string());
            copy_to_container(ctx, &a, &c, &p).await
        }
        (Some(_), Some(_)) => Err(CliError::new(
            1,
            "copying between containers is not supported",
        )),
        (None, None) => Err(CliError::new(
            1,
            "must specify at least one container source",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args_and_rebase() {
        assert_eq!(split_cp_arg("c:/x"), Some(("c", "/x")));
        assert_eq!(split_cp_arg("/abs:x"), None);
        assert_eq!(split_cp_arg("./rel:x"), None);
        assert_eq!(split_cp_arg("plain"), None);
        assert_eq!(base_of("/a/b/"), "b");
        assert_eq!(base_of("/a/b/."), ".");
        let mut b = tar::Builder::new(Vec::new());
        for n in ["data", "data/x"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_entry_type(if n == "data" {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            b.append_data(&mut h, n, std::io::empty()).unwrap();
        }
        let data = b.into_inner().unwrap();
        let out = rebase_tar(&data, "data", "copy").unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["copy", "copy/x"]);
    }
}
