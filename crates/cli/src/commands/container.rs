//! `ps`, `logs`, `stop`, `restart`, `kill`, `wait`, `rm`, `rename`, `top`, `inspect`.

use berth_client::{Body, FrameDecoder, Query, StreamKind};
use http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::args::{
    InspectArgs, KillArgs, LogsArgs, NamesArgs, PsArgs, RenameArgs, RmArgs, StopArgs, TopArgs,
    TypedInspectArgs,
};
use crate::commands::image::filters_json;
use crate::format::{ago, ellipsis, go_quote, go_time, human_size, short_id, ListFormat};
use crate::util::{daemon_err, parse_timestamp, CliError, CmdResult, Ctx};

fn ps_headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    })
}

/// `0.0.0.0:8080->80/tcp, 443/tcp` from the list's `Ports`.
pub fn format_ports(ports: &Value) -> String {
    let mut out: Vec<String> = Vec::new();
    if let Some(ports) = ports.as_array() {
        for p in ports {
            let private = p["PrivatePort"].as_u64().unwrap_or(0);
            let proto = p["Type"].as_str().unwrap_or("tcp");
            let s = match (
                p["IP"].as_str().filter(|s| !s.is_empty()),
                p["PublicPort"].as_u64().filter(|&x| x > 0),
            ) {
                (Some(ip), Some(public)) => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{public}->{private}/{proto}")
                }
                (None, Some(public)) => format!("{public}->{private}/{proto}"),
                _ => format!("{private}/{proto}"),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.join(", ")
}

/// One `docker ps` row (the fields a `--format` template can use).
pub fn ps_row(c: &Value, no_trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let image = c["Image"].as_str().unwrap_or("");
    let image = if !no_trunc && image.starts_with("sha256:") {
        short_id(image)
    } else if !no_trunc {
        image.split('@').next().unwrap_or(image).to_string()
    } else {
        image.to_string()
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = if no_trunc {
        go_quote(command)
    } else {
        go_quote(&ellipsis(command, 20))
    };
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
                // Link aliases look like `other/alias`; docker hides them unless --no-trunc.
                .filter(|n| no_trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let created = c["Created"].as_i64().unwrap_or(0);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let mounts: Vec<Value> = c["Mounts"].as_array().cloned().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if no_trunc {
                name.to_string()
            } else {
                ellipsis(name, 15)
            }
        })
        .collect();
    let local_volumes = mounts
        .iter()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let srw = c["SizeRw"].as_i64().unwrap_or(0);
    let sv = c["SizeRootFs"].as_i64().unwrap_or(0);
    let size = if sv > 0 {
        format!("{} (virtual {})", human_size(srw), human_size(sv))
    } else {
        human_size(srw)
    };
    json!({
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Image": image,
        "Command": command,
        "CreatedAt": go_time(created),
        "RunningFor": ago(created),
        "Ports": format_ports(&c["Ports"]),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mount_names.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Platform": null,
    })
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> CmdResult {
    let filters = filters_json(&a.filter, &[])?;
    let limit = if a.latest { 1 } else { a.last };
    let q = Query::new()
        .flag("all", a.all || limit > 0)
        .add_if(limit > 0, "limit", limit)
        .flag("size", a.size)
        .add_opt("filters", filters);
    let list: Vec<Value> = ctx.client.get_json("/containers/json", &q).await?;
    if a.quiet {
        for c in &list {
            let id = c["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id.to_string()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(0);
    }
    let mut default =
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
            .to_string();
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    let fmt = ListFormat::parse(a.format.as_deref(), &default)?;
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, a.no_trunc)).collect();
    print!("{}", fmt.render(&ps_headers(), &rows)?);
    Ok(0)
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> CmdResult {
    let info: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", a.container), &Query::new())
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = Query::new()
        .flag("stdout", true)
        .flag("stderr", true)
        .add_opt("since", a.since.as_deref().map(parse_timestamp))
        .add_opt("until", a.until.as_deref().map(parse_timestamp))
        .flag("timestamps", a.timestamps)
        .flag("follow", a.follow)
        .add("tail", &a.tail)
        .flag("details", a.details);
    let mut body = ctx
        .client
        .body_stream(
            Method::GET,
            &format!("/containers/{}/logs", a.container),
            &q,
            Body::Empty,
        )
        .await?;
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    // As the docker CLI: framing follows the container's TTY setting (older daemons mislabel it).
    let multiplexed = !tty;
    if multiplexed {
        let mut dec = FrameDecoder::new();
        while let Some(frame) = body.next_frame(&mut dec).await {
            let frame = frame?;
            match frame.stream {
                StreamKind::Stderr => {
                    err.write_all(&frame.data).await?;
                    err.flush().await?;
                }
                _ => {
                    out.write_all(&frame.data).await?;
                    out.flush().await?;
                }
            }
        }
    } else {
        while let Some(chunk) = body.chunk().await {
            out.write_all(&chunk?).await?;
            out.flush().await?;
        }
    }
    Ok(0)
}

/// Runs `f` for every name, printing the name on success and collecting daemon errors; exit 1 if
/// any failed, as docker's multi-container commands do.
async fn each<F, Fut>(names: &[String], mut f: F) -> CmdResult
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, berth_client::ClientError>>,
{
    let mut errors = Vec::new();
    for n in names {
        match f(n.clone()).await {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => errors.push(daemon_err(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, errors.join("\n")))
    }
}

pub async fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> CmdResult {
    let q = Query::new()
        .add_opt("t", a.timeout)
        .add_opt("signal", a.signal.clone());
    let verb = if restart { "restart" } else { "stop" };
    each(&a.containers, |n| {
        let q = q.clone();
        async move {
            ctx.client
                .post(&format!("/containers/{n}/{verb}"), &q, Body::Empty)
                .await?;
            Ok(Some(n))
        }
    })
    .await
}

pub async fn kill(ctx: &Ctx, a: KillArgs) -> CmdResult {
    let q = Query::new().add_opt("signal", a.signal.clone());
    each(&a.containers, |n| {
        let q = q.clone();
        async move {
            ctx.client
                .post(&format!("/containers/{n}/kill"), &q, Body::Empty)
                .await?;
            Ok(Some(n))
        }
    })
    .await
}

/// `pause` or `unpause` each container, printing its name as docker does.
pub async fn pause(ctx: &Ctx, a: NamesArgs, action: &str) -> CmdResult {
    each(&a.containers, |n| async move {
        ctx.client
            .post(
                &format!("/containers/{n}/{action}"),
                &Query::new(),
                Body::Empty,
            )
            .await?;
        Ok(Some(n))
    })
    .await
}

pub async fn wait(ctx: &Ctx, a: NamesArgs) -> CmdResult {
    each(&a.containers, |n| async move {
        let v: Value = ctx
            .client
            .post_json(&format!("/containers/{n}/wait"), &Query::new(), Body::Empty)
            .await?;
        if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            return Err(berth_client::ClientError::Api {
                status: 500,
                message: msg.to_string(),
            });
        }
        Ok(Some(v["StatusCode"].as_i64().unwrap_or(0).to_string()))
    })
    .await
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> CmdResult {
    let q = Query::new()
        .flag("force", a.force)
        .flag("v", a.volumes)
        .flag("link", a.link);
    each(&a.containers, |n| {
        let q = q.clone();
        async move {
            ctx.client.delete(&format!("/containers/{n}"), &q).await?;
            Ok(Some(n))
        }
    })
    .await
}

pub async fn rename(ctx: &Ctx, a: RenameArgs) -> CmdResult {
    if a.new_name.trim().is_empty() {
        return Err(CliError::new(
            1,
            "Error: Neither old nor new names may be empty",
        ));
    }
    let q = Query::new().add("name", &a.new_name);
    ctx.client
        .post(
            &format!("/containers/{}/rename", a.container),
            &q,
            Body::Empty,
        )
        .await?;
    Ok(0)
}

pub async fn top(ctx: &Ctx, a: TopArgs) -> CmdResult {
    let q = Query::new().add_if(!a.ps_args.is_empty(), "ps_args", a.ps_args.join(" "));
    let v: Value = ctx
        .client
        .get_json(&format!("/containers/{}/top", a.container), &q)
        .await?;
    let mut text = String::new();
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for p in v["Processes"].as_array().cloned().unwrap_or_default() {
        let cells: Vec<String> = p
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    // docker top uses a tabwriter with minwidth 20.
    print!("{}", crate::format::tabwrite_min(&text, 20));
    Ok(0)
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> CmdResult {
    inspect_objects(
        ctx,
        &a.names,
        a.kind.as_deref(),
        a.format.as_deref(),
        a.size,
    )
    .await
}

pub async fn inspect_typed(ctx: &Ctx, a: TypedInspectArgs, kind: &str) -> CmdResult {
    inspect_objects(ctx, &a.names, Some(kind), a.format.as_deref(), a.size).await
}

async fn inspect_objects(
    ctx: &Ctx,
    names: &[String],
    kind: Option<&str>,
    format: Option<&str>,
    size: bool,
) -> CmdResult {
    let template = crate::format::inspect_template(format)?;
    if let Some(k) = kind {
        if !["container", "image", "network", "volume"].contains(&k) {
            return Err(CliError::new(
                1,
                format!("\"{k}\" is not a valid value for --type"),
            ));
        }
    }
    let mut found: Vec<bytes::Bytes> = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let mut result = None;
        let mut last_err = None;
        if kind.is_none() || kind == Some("container") {
            match ctx
                .client
                .get_bytes(
                    &format!("/containers/{name}/json"),
                    &Query::new().flag("size", size),
                )
                .await
            {
                Ok(b) => result = Some(b),
                Err(e) if e.is_not_found() => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        if result.is_none() && (kind.is_none() || kind == Some("image")) {
            match ctx
                .client
                .get_bytes(&format!("/images/{name}/json"), &Query::new())
                .await
            {
                Ok(b) => result = Some(b),
                Err(e) if e.is_not_found() => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        if result.is_none() && (kind.is_none() || kind == Some("network")) {
            match ctx
                .client
                .get_bytes(&format!("/networks/{name}"), &Query::new())
                .await
            {
                Ok(b) => result = Some(b),
                Err(e) if e.is_not_found() => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        if result.is_none() && (kind.is_none() || kind == Some("volume")) {
            match ctx
                .client
                .get_bytes(&format!("/volumes/{name}"), &Query::new())
                .await
            {
                Ok(b) => result = Some(b),
                Err(e) if e.is_not_found() => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        match result {
            Some(b) => found.push(b),
            None => errors.push(match (kind, last_err) {
                (None, _) => format!("Error: No such object: {name}"),
                (Some(_), Some(e)) => daemon_err(&e),
                (Some(k), None) => format!("Error: No such {k}: {name}"),
            }),
        }
    }
    crate::format::print_inspected(&found, template.as_ref())?;
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_row_like_docker() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web", "/other/alias"], "Image": "busybox",
            "Command": "sh -c 'sleep 1000 && echo done'", "Created": 0, "State": "running", "Status": "Up 5 seconds",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}],
            "Labels": {"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 4264960,
            "NetworkSettings": {"Networks": {"bridge": {}}}, "Mounts": [],
        });
        let r = ps_row(&c, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'sleep 1000 &…\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp, 443/tcp");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Size"], "12B (virtual 4.26MB)");
        assert_eq!(r["Networks"], "bridge");
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "0123456789abcdef0123");
        assert_eq!(r["Command"], "\"sh -c 'sleep 1000 && echo done'\"");
        let fmt = ListFormat::parse(
            None,
            "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Names}}",
        )
        .unwrap();
        let out = fmt.render(&ps_headers(), &[ps_row(&c, false)]).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  STATUS         NAMES\n\
             0123456789ab   busybox   \"sh -c 'sleep 1000 &…\"   Up 5 seconds   web\n"
        );
    }
}
