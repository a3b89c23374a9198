//! `images`, `load`, `save`, `import`, `tag`, `rmi`.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use berth_client::{Body, BodyStream, JsonStream, Query};
use http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::args::{ImagesArgs, ImportArgs, LoadArgs, RmiArgs, SaveArgs, TagArgs};
use crate::format::{ago, go_time, human_size, human_size_prec, short_id, ListFormat};
use crate::progress;
use crate::util::{daemon_err, split_ref, CliError, CmdResult, Ctx};

/// `--filter k=v` flags as the API's `filters` JSON (`{"k": ["v"]}`); `None` when empty.
pub fn filters_json(
    filters: &[String],
    extra: &[(&str, String)],
) -> Result<Option<String>, CliError> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| CliError::new(125, format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)")))?;
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    for (k, v) in extra {
        map.entry(k.to_string()).or_default().push(v.clone());
    }
    if map.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(&map).unwrap_or_default()))
}

/// Header names for `images --format table ...`.
fn image_headers() -> Value {
    json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

/// The rows `docker images` shows for one image summary: one per tag, or `<none>` rows.
pub fn image_rows(img: &Value, no_trunc: bool, digests: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id.to_string()
    } else {
        short_id(id)
    };
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let strs = |k: &str| -> Vec<String> {
        img[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let tags: Vec<String> = strs("RepoTags")
        .into_iter()
        .filter(|t| t != "<none>:<none>")
        .collect();
    let repo_digests: Vec<String> = strs("RepoDigests")
        .into_iter()
        .filter(|d| d != "<none>@<none>")
        .collect();
    let digest_of = |repo: &str| -> String {
        repo_digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, dg)| dg.to_string())
            })
            .unwrap_or_else(|| "<none>".to_string())
    };
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for t in &tags {
        let (repo, tag) = split_ref(t);
        let d = digest_of(&repo);
        pairs.push((repo, tag.unwrap_or_else(|| "<none>".into()), d));
    }
    if pairs.is_empty() {
        if repo_digests.is_empty() {
            pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
        } else {
            for d in &repo_digests {
                let (repo, dg) = d.split_once('@').unwrap_or((d.as_str(), "<none>"));
                pairs.push((repo.to_string(), "<none>".into(), dg.to_string()));
            }
        }
    }
    let _ = digests;
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    let opt_size = |k: &str| match img[k].as_i64() {
        Some(v) if v >= 0 => human_size(v),
        _ => "N/A".to_string(),
    };
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            json!({
                "ID": id, "Repository": repo, "Tag": tag, "Digest": digest,
                "CreatedSince": ago(created), "CreatedAt": go_time(created),
                "Size": human_size(size), "VirtualSize": human_size_prec(size as f64, 4),
                "Containers": if containers >= 0 { containers.to_string() } else { "N/A".to_string() },
                "SharedSize": opt_size("SharedSize"), "UniqueSize": "N/A",
            })
        })
        .collect()
}

pub async fn images(ctx: &Ctx, a: ImagesArgs) -> CmdResult {
    let extra: Vec<(&str, String)> = a
        .reference
        .iter()
        .map(|r| ("reference", r.clone()))
        .collect();
    let filters = filters_json(&a.filter, &extra)?;
    let q = Query::new().flag("all", a.all).add_opt("filters", filters);
    let list: Vec<Value> = ctx.client.get_json("/images/json", &q).await?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for img in &list {
            let id = img["Id"].as_str().unwrap_or("");
            let id = if a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let fmt = ListFormat::parse(a.format.as_deref(), default)?;
    let rows: Vec<Value> = list
        .iter()
        .flat_map(|i| image_rows(i, a.no_trunc, a.digests))
        .collect();
    print!("{}", fmt.render(&image_headers(), &rows)?);
    Ok(0)
}

pub async fn load(ctx: &Ctx, a: LoadArgs) -> CmdResult {
    let body = match &a.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::new(1, format!("open {path}: {}", e_text(&e))))?;
            Body::reader(f, "application/x-tar")
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::new(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            Body::reader(tokio::io::stdin(), "application/x-tar")
        }
    };
    let terminal = std::io::stdout().is_terminal();
    let quiet = a.quiet || !terminal;
    let q = Query::new().flag("quiet", quiet);
    let resp = ctx
        .client
        .send(Method::POST, "/images/load", &q, body, &[])
        .await?;
    let is_json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        let mut stream = JsonStream::from_response(resp);
        progress::display(&mut stream, terminal && !a.quiet, false).await?;
    } else {
        let mut body = BodyStream::from_response(resp);
        let mut out = tokio::io::stdout();
        while let Some(chunk) = body.chunk().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
    }
    Ok(0)
}

fn e_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

pub async fn save(ctx: &Ctx, a: SaveArgs) -> CmdResult {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i);
    }
    let mut body = ctx
        .client
        .body_stream(Method::GET, "/images/get", &q, Body::Empty)
        .await?;
    match &a.output {
        Some(path) => {
            // Written to a temporary name first so a failed save leaves no partial archive.
            let tmp = format!("{path}.berth-tmp");
            let mut f = tokio::fs::File::create(&tmp).await.map_err(|e| {
                CliError::new(
                    1,
                    format!(
                        "failed to save image: unable to create file: open {path}: {}",
                        e_text(&e)
                    ),
                )
            })?;
            while let Some(chunk) = body.chunk().await {
                match chunk {
                    Ok(c) => f.write_all(&c).await?,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(e.into());
                    }
                }
            }
            f.sync_all().await?;
            tokio::fs::rename(&tmp, path).await?;
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

pub async fn import(ctx: &Ctx, a: ImportArgs) -> CmdResult {
    let mut q = Query::new();
    let body = if a.source == "-" {
        q = q.add("fromSrc", "-");
        Body::reader(tokio::io::stdin(), "application/x-tar")
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        q = q.add("fromSrc", &a.source);
        Body::Empty
    } else {
        q = q.add("fromSrc", "-");
        let f = tokio::fs::File::open(&a.source)
            .await
            .map_err(|e| CliError::new(1, format!("open {}: {}", a.source, e_text(&e))))?;
        Body::reader(f, "application/x-tar")
    };
    q = q
        .add("repo", a.reference.clone().unwrap_or_default())
        .add("tag", "");
    q = q.add_opt("message", a.message.clone());
    for c in &a.change {
        q = q.add("changes", c);
    }
    q = q.add_opt("platform", a.platform.clone());
    let mut stream = ctx
        .client
        .json_stream(Method::POST, "/images/create", &q, body)
        .await?;
    progress::display(&mut stream, std::io::stdout().is_terminal(), false).await?;
    Ok(0)
}

pub async fn tag(ctx: &Ctx, a: TagArgs) -> CmdResult {
    let (repo, tag) = split_ref(&a.target);
    let q = Query::new()
        .add("repo", repo)
        .add("tag", tag.unwrap_or_else(|| "latest".into()));
    ctx.client
        .post(&format!("/images/{}/tag", a.source), &q, Body::Empty)
        .await?;
    Ok(0)
}

pub async fn rmi(ctx: &Ctx, a: RmiArgs) -> CmdResult {
    let q = Query::new()
        .flag("force", a.force)
        .flag("noprune", a.no_prune);
    let mut failed = Vec::new();
    for img in &a.images {
        match ctx.client.delete(&format!("/images/{img}"), &q).await {
            Ok(body) => {
                let items: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                for it in items {
                    if let Some(u) = it["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => failed.push(daemon_err(&e)),
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, failed.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_for_tags_and_dangling() {
        let img = json!({"Id": "sha256:0123456789abcdef", "RepoTags": ["busybox:latest", "localhost:5000/bb:1"], "RepoDigests": [], "Created": 0, "Size": 4264960, "Containers": -1});
        let rows = image_rows(&img, false, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Tag"], "latest");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "4.26MB");
        assert_eq!(rows[1]["Repository"], "localhost:5000/bb");
        assert_eq!(rows[1]["Tag"], "1");
        let dangling = json!({"Id": "sha256:ff", "RepoTags": null, "RepoDigests": null, "Created": 0, "Size": 0});
        let rows = image_rows(&dangling, true, false);
        assert_eq!(rows[0]["Repository"], "<none>");
        assert_eq!(rows[0]["Tag"], "<none>");
        assert_eq!(rows[0]["ID"], "sha256:ff");
        let digested = json!({"Id": "sha256:ff", "RepoTags": [], "RepoDigests": ["busybox@sha256:aa"], "Created": 0, "Size": 0});
        let rows = image_rows(&digested, false, true);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Digest"], "sha256:aa");
    }

    #[test]
    fn filters() {
        assert_eq!(filters_json(&[], &[]).unwrap(), None);
        assert_eq!(
            filters_json(
                &["dangling=true".into(), "label=a=b".into()],
                &[("reference", "bb".into())]
            )
            .unwrap()
            .unwrap(),
            r#"{"dangling":["true"],"label":["a=b"],"reference":["bb"]}"#
        );
        assert!(filters_json(&["bad".into()], &[]).is_err());
    }
}
