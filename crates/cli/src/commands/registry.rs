//! `pull`, `push`, `login`, `logout`: registry commands. Credentials live in docker's
//! `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) under `auths`,
//! as base64 `user:password`, so the docker CLI and berth share logins.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use base64::Engine as _;
use berth_api_types::registry::AuthConfig;
use berth_client::{Body, JsonStream, Query};
use clap::Args;
use http::Method;
use serde_json::{json, Value};

use crate::progress;
use crate::util::{CliError, CmdResult, Ctx};

/// Docker Hub's key in `config.json`.
const HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: i64,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// TERM
    pub term: String,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER
    pub server: Option<String>,
}

/// `(name, tag, digest)` of `name[:tag][@digest]`.
fn split(reference: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(i) => (
            rest[..slash + i].to_string(),
            Some(rest[slash + i + 1..].to_string()),
            digest,
        ),
        None => (rest.to_string(), None, digest),
    }
}

/// The registry part of a repository name, if it has one (`127.0.0.1:5000/x` → `127.0.0.1:5000`).
fn registry_of(name: &str) -> Option<&str> {
    let (first, _) = name.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// `docker.io/library/busybox` for `busybox`, as docker prints after a pull.
fn canonical(name: &str) -> String {
    if registry_of(name).is_some() {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// The `config.json` key for a registry: Docker Hub has its historical URL.
fn auth_key(registry: Option<&str>) -> String {
    match registry {
        None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => {
            HUB_KEY.to_string()
        }
        Some(r) => r
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

fn read_config() -> Result<Value, CliError> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| CliError::new(1, format!("loading config file {}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(CliError::new(
            1,
            format!("loading config file {}: {e}", p.display()),
        )),
    }
}

fn write_config(v: &Value) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = config_path();
    let dir = p.parent().map(PathBuf::from).unwrap_or_else(|| ".".into());
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::new(1, format!("creating {}: {e}", dir.display())))?;
    // Write a sibling and rename it over, so a crash never leaves half a config.
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&body).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, &p));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::new(
            1,
            format!("saving credentials to {}: {e}", p.display()),
        ));
    }
    Ok(())
}

/// Stored `(username, password)` for a registry key, tolerating `http(s)://` prefixes.
fn stored_credentials(key: &str) -> Option<(String, String)> {
    let cfg = read_config().ok()?;
    let auths = cfg.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, v)| {
        let k2 = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (k == key || k2 == key.trim_start_matches("https://").trim_end_matches('/')).then_some(v)
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The `X-Registry-Auth` header for an image's registry (`{}` when not logged in).
fn registry_auth_header(name: &str) -> String {
    let key = auth_key(registry_of(name));
    let v = match stored_credentials(&key) {
        Some((u, p)) => AuthConfig {
            username: u,
            password: p,
            serveraddress: key,
            ..AuthConfig::default()
        },
        None => AuthConfig::default(),
    };
    v.to_header()
}

async fn stream_progress(
    ctx: &Ctx,
    path: &str,
    q: &Query,
    auth: &str,
    quiet: bool,
) -> Result<progress::StreamResult, CliError> {
    let resp = ctx
        .client
        .send(
            Method::POST,
            path,
            q,
            Body::Empty,
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    let mut stream = JsonStream::from_response(resp);
    if quiet {
        // Read everything (errors still fail the command), show nothing.
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(CliError::from)?;
            if let Some(e) = msg["errorDetail"]["message"]
                .as_str()
                .or_else(|| msg["error"].as_str())
            {
                return Err(CliError::new(1, e.to_string()));
            }
        }
        return Ok(progress::StreamResult::default());
    }
    let terminal = std::io::stdout().is_terminal();
    progress::display(&mut stream, terminal, false).await
}

pub async fn pull(ctx: &Ctx, a: PullArgs) -> CmdResult {
    let (name, tag, digest) = split(&a.name);
    if a.all_tags && (tag.is_some() || digest.is_some()) {
        return Err(CliError::new(1, "tag can't be used with --all-tags/-a"));
    }
    let reference = match (&tag, &digest) {
        (_, Some(d)) => Some(d.clone()),
        (Some(t), None) => Some(t.clone()),
        (None, None) if a.all_tags => None,
        (None, None) => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            Some("latest".to_string())
        }
    };
    let q = Query::new()
        .add("fromImage", &name)
        .add_opt("tag", reference.clone())
        .add_opt("platform", a.platform.clone());
    stream_progress(
        ctx,
        "/images/create",
        &q,
        &registry_auth_header(&name),
        a.quiet,
    )
    .await?;
    let shown = match (&tag, &digest) {
        (_, Some(d)) => format!("{}@{d}", canonical(&name)),
        _ if a.all_tags => canonical(&name),
        _ => format!(
            "{}:{}",
            canonical(&name),
            tag.as_deref().unwrap_or("latest")
        ),
    };
    println!("{shown}");
    Ok(0)
}

pub async fn push(ctx: &Ctx, a: PushArgs) -> CmdResult {
    let (name, tag, digest) = split(&a.name);
    if digest.is_some() {
        return Err(CliError::new(1, "cannot push a digest reference"));
    }
    if a.all_tags && tag.is_some() {
        return Err(CliError::new(1, "tag can't be used with --all-tags/-a"));
    }
    let tag = if a.all_tags {
        None
    } else {
        Some(tag.unwrap_or_else(|| {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".to_string()
        }))
    };
    let q = Query::new().add_opt("tag", tag.clone());
    let path = format!("/images/{name}/push");
    stream_progress(ctx, &path, &q, &registry_auth_header(&name), a.quiet).await?;
    if a.quiet {
        println!("{}", a.name);
    }
    Ok(0)
}

fn read_line() -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut s)
        .map_err(|e| CliError::new(1, format!("reading stdin: {e}")))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn login(ctx: &Ctx, a: LoginArgs) -> CmdResult {
    let key = auth_key(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        return Err(CliError::new(
            1,
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if a.password_stdin && a.username.is_none() {
        return Err(CliError::new(
            1,
            "Must provide --username with --password-stdin",
        ));
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if interactive => {
            print!("Username: ");
            let _ = std::io::stdout().flush();
            read_line()?
        }
        None => {
            return Err(CliError::new(
                1,
                "Error: Cannot perform an interactive login from a non TTY device",
            ))
        }
    };
    let password = match a.password {
        Some(p) => p,
        None if a.password_stdin || !interactive => read_line()?,
        None => {
            print!("Password: ");
            let _ = std::io::stdout().flush();
            read_line()?
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError::new(1, "Error: Non-null Username Required"));
    }
    let body = AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: key.clone(),
        ..AuthConfig::default()
    };
    let _: Value = ctx
        .client
        .post_json("/auth", &Query::new(), Body::json(&body)?)
        .await?;
    let mut cfg = read_config()?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    cfg["auths"]
        .as_object_mut()
        .map(|m| {
            m.insert(key.clone(), json!({"auth": auth}));
        })
        .unwrap_or_else(|| cfg["auths"] = json!({ key.clone(): {"auth": auth} }));
    write_config(&cfg)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        config_path().display()
    );
    println!("Login Succeeded");
    Ok(0)
}

pub async fn search(ctx: &Ctx, a: SearchArgs) -> CmdResult {
    let q = Query::new().add("term", &a.term).add("limit", a.limit);
    let results: Vec<Value> = ctx.client.get_json("/images/search", &q).await?;
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let mut desc = r["description"].as_str().unwrap_or("").replace('\n', " ");
            if !a.no_trunc && desc.chars().count() > 45 {
                desc = desc.chars().take(44).collect::<String>() + "…";
            }
            [
                r["name"].as_str().unwrap_or("").to_string(),
                desc,
                r["star_count"].as_i64().unwrap_or(0).to_string(),
                if r["is_official"].as_bool().unwrap_or(false) {
                    "[OK]"
                } else {
                    ""
                }
                .to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}

pub async fn logout(_ctx: &Ctx, a: LogoutArgs) -> CmdResult {
    let key = auth_key(a.server.as_deref());
    let mut cfg = read_config()?;
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|m| {
            let before = m.len();
            m.retain(|k, _| {
                k.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    != key.trim_start_matches("https://").trim_end_matches('/')
            });
            before != m.len()
        })
        .unwrap_or(false);
    if !removed {
        println!("Not logged in to {key}");
        return Ok(0);
    }
    println!("Removing login credentials for {key}");
    write_config(&cfg)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_keys() {
        assert_eq!(split("busybox"), ("busybox".into(), None, None));
        assert_eq!(
            split("127.0.0.1:5000/a/b:1@sha256:x"),
            (
                "127.0.0.1:5000/a/b".into(),
                Some("1".into()),
                Some("sha256:x".into())
            )
        );
        assert_eq!(canonical("busybox"), "docker.io/library/busybox");
        assert_eq!(canonical("me/app"), "docker.io/me/app");
        assert_eq!(canonical("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(auth_key(None), HUB_KEY);
        assert_eq!(auth_key(registry_of("127.0.0.1:5000/x")), "127.0.0.1:5000");
        assert_eq!(auth_key(Some("http://r.example:5000/")), "r.example:5000");
        assert_eq!(registry_of("library/busybox"), None);
    }
}
