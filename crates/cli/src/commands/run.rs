//! `create`, `run`, `start`, `attach`, `exec`: the commands that stream a container's stdio.

use std::io::IsTerminal;

use berth_api_types::detach;
use berth_client::{Body, BodyStream, Client, ClientError, Hijacked, Incoming, Query};
use http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::{AttachArgs, CreateArgs, ExecArgs, RunArgs, StartArgs};
use crate::opts::{build_create, expand_env, parse_env_file, ContainerOpts, Local, RealLocal};
use crate::progress;
use crate::term;
use crate::util::{daemon_err, CliError, CmdResult, Ctx};

const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// Exit status docker uses when the daemon fails to run a container: 127 for a missing
/// executable, 126 when it cannot be executed, 125 otherwise.
pub fn run_error_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied")
        || message.contains("cannot execute")
        || message.contains("is a directory")
    {
        126
    } else {
        125
    }
}

/// A run/create/start failure the way docker prints it: `berth: <error>` plus a help hint.
fn run_failure(cmd: &str, e: &ClientError) -> CliError {
    let msg = daemon_err(e);
    let code = match e {
        ClientError::Api { message, .. } => run_error_code(message),
        _ => 125,
    };
    CliError::new(
        code,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
}

/// `busybox` → `busybox:latest`; references with a tag or digest stay as they are.
pub fn full_ref(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let (_, tag) = crate::util::split_ref(image);
    if tag.is_some() {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

async fn pull(ctx: &Ctx, image: &str, platform: Option<&str>) -> Result<(), CliError> {
    let (repo, tag) = if let Some((r, d)) = image.split_once('@') {
        (r.to_string(), d.to_string())
    } else {
        let (r, t) = crate::util::split_ref(image);
        (r, t.unwrap_or_else(|| "latest".into()))
    };
    let q = Query::new()
        .add("fromImage", repo)
        .add("tag", tag)
        .add_opt("platform", platform.map(str::to_string));
    let mut stream = ctx
        .client
        .json_stream(Method::POST, "/images/create", &q, Body::Empty)
        .await
        .map_err(|e| CliError::new(125, daemon_err(&e)))?;
    progress::display(&mut stream, std::io::stderr().is_terminal(), true)
        .await
        .map_err(|e| CliError::new(125, e.msg))?;
    Ok(())
}

/// Creates the container (pulling a missing image like docker does) and returns its id.
async fn create_container(
    ctx: &Ctx,
    o: &ContainerOpts,
    args: &[String],
    detach: bool,
    is_run: bool,
    cmd_name: &str,
) -> Result<String, CliError> {
    let image = &args[0];
    if image.starts_with('-') {
        // clap hands unknown flags before the image to the trailing arguments.
        let flag = image.split('=').next().unwrap_or(image);
        return Err(CliError::new(
            125,
            format!("unknown flag: {flag}\nSee 'berth {cmd_name} --help'."),
        ));
    }
    let console = if o.tty && std::io::stdout().is_terminal() {
        term::size().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let req =
        build_create(o, image, &args[1..], detach, is_run, console, &RealLocal).map_err(|e| {
            CliError::new(
                125,
                format!(
                    "berth: {}\n\nRun 'berth {cmd_name} --help' for more information",
                    e.0
                ),
            )
        })?;
    let q = Query::new()
        .add_opt("name", req.name.clone())
        .add_opt("platform", req.platform.clone());
    let body = Body::json(&req.wire()).map_err(|e| run_failure(cmd_name, &e))?;
    if o.pull == "always" {
        pull(ctx, image, req.platform.as_deref())
            .await
            .map_err(|e| help_wrap(cmd_name, e))?;
    }
    let created: Result<Value, ClientError> =
        ctx.client.post_json("/containers/create", &q, body).await;
    let created = match created {
        Err(e) if e.is_not_found() && o.pull != "never" => {
            eprintln!("Unable to find image '{}' locally", full_ref(image));
            pull(ctx, image, req.platform.as_deref())
                .await
                .map_err(|e| help_wrap(cmd_name, e))?;
            let body = Body::json(&req.wire()).map_err(|e| run_failure(cmd_name, &e))?;
            ctx.client
                .post_json("/containers/create", &q, body)
                .await
                .map_err(|e| run_failure(cmd_name, &e))?
        }
        Err(e) => return Err(run_failure(cmd_name, &e)),
        Ok(v) => v,
    };
    if let Some(w) = created["Warnings"].as_array() {
        for w in w.iter().filter_map(|w| w.as_str()) {
            eprintln!("WARNING: {w}");
        }
    }
    created["Id"].as_str().map(str::to_string).ok_or_else(|| {
        CliError::new(
            125,
            "berth: Error response from daemon: create answered without an id",
        )
    })
}

fn help_wrap(cmd: &str, e: CliError) -> CliError {
    CliError::new(
        125,
        format!(
            "berth: {}\n\nRun 'berth {cmd} --help' for more information",
            e.msg
        ),
    )
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> CmdResult {
    let id = create_container(ctx, &a.opts, &a.args, false, false, "create").await?;
    println!("{id}");
    Ok(0)
}

/// How stdio flows over a hijacked connection.
struct StreamSpec {
    tty: bool,
    stdin: bool,
    detach_keys: Vec<u8>,
}

enum StreamEnd {
    /// The daemon closed the output stream.
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

/// Pumps stdin into the connection (half-closing at EOF) and the connection's output to
/// stdout/stderr until the output ends or the user detaches.
async fn pump(h: Hijacked, spec: &StreamSpec) -> Result<StreamEnd, CliError> {
    // Decided by the TTY setting, as the docker CLI does: daemons before API 1.42 label framed
    // attach streams `raw-stream`, so the content type cannot be trusted.
    let multiplexed = !spec.tty;
    let _ = h.is_multiplexed();
    let (mut reader, mut writer) = h.split();
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let stdin_task = if spec.stdin {
        let keys = if spec.tty {
            spec.detach_keys.clone()
        } else {
            Vec::new()
        };
        Some(tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut proxy = detach::Scanner::new(keys);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (data, detached) = proxy.feed(&buf[..n]);
                if !data.is_empty() && writer.write_all(&data).await.is_err() {
                    return writer;
                }
                let _ = writer.flush().await;
                if detached {
                    let _ = detach_tx.send(());
                    return writer;
                }
            }
            // stdin EOF: half-close so the container sees EOF on its stdin while its output
            // keeps coming back on the read side.
            let _ = writer.close_write().await;
            writer
        }))
    } else {
        // Keep the write side open (dropping it would half-close the socket).
        tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(writer);
        });
        None
    };
    let output = async {
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        if multiplexed {
            berth_client::mux::demux(&mut reader, &mut stdout, &mut stderr).await?;
        } else {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                stdout.write_all(&buf[..n]).await?;
                stdout.flush().await?;
            }
        }
        Ok::<(), ClientError>(())
    };
    let end = tokio::select! {
        r = output => {
            r.map_err(|e| CliError::new(1, e.message()))?;
            StreamEnd::Eof
        }
        // The sender is dropped when stdin ends without a detach: keep waiting for output then.
        Ok(()) = &mut detach_rx => StreamEnd::Detached,
    };
    if let Some(t) = stdin_task {
        t.abort();
    }
    Ok(end)
}

/// Sends the local terminal size now and on every SIGWINCH.
fn monitor_size(client: Client, path: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |client: &Client, path: &str| {
            let client = client.clone();
            let path = path.to_string();
            async move {
                if let Some((h, w)) = term::size() {
                    let q = Query::new().add("h", h).add("w", w);
                    let _ = client.post(&path, &q, Body::Empty).await;
                }
            }
        };
        send(&client, &path).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(&client, &path).await;
        }
    })
}

/// Forwards the signals a user sends to `berth` to the container (docker's `--sig-proxy`).
fn proxy_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        for (kind, name) in kinds {
            if let Ok(mut s) = signal(kind) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(name).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let q = Query::new().add("signal", name);
            let _ = client
                .post(&format!("/containers/{id}/kill"), &q, Body::Empty)
                .await;
        }
    })
}

fn detach_keys(keys: Option<&str>) -> Result<Vec<u8>, CliError> {
    match keys {
        Some(k) => term::parse_detach_keys(k).map_err(|e| CliError::new(1, e)),
        None => Ok(DEFAULT_DETACH_KEYS.to_vec()),
    }
}

fn attach_query(stdin: bool, stdout: bool, stderr: bool, keys: Option<&str>) -> Query {
    Query::new()
        .flag("stream", true)
        .flag("stdin", stdin)
        .flag("stdout", stdout)
        .flag("stderr", stderr)
        .add_opt("detachKeys", keys.map(str::to_string))
}

/// Reads `{"StatusCode": N, "Error": {"Message": ...}}` from a wait response body.
async fn read_wait(resp: http::Response<Incoming>) -> Result<i32, CliError> {
    let mut stream = BodyStream::from_response(resp);
    let mut body = Vec::new();
    while let Some(chunk) = stream.chunk().await {
        body.extend_from_slice(&chunk.map_err(|e| CliError::new(125, e.message()))?);
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| CliError::new(125, format!("invalid wait response: {e}")))?;
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(CliError::new(125, msg.to_string()));
    }
    Ok(exit_status(&v["StatusCode"]))
}

/// Attach and wait (headers) → start → stream → exit code: the order the docker CLI uses, so that
/// no output is lost and the exit status of *this* run is reported.
#[allow(clippy::too_many_arguments)]
async fn attach_start_wait(
    ctx: &Ctx,
    id: &str,
    spec: StreamSpec,
    streams: (bool, bool, bool),
    keys: Option<&str>,
    auto_remove: bool,
    sig_proxy: bool,
    cmd_name: &str,
) -> CmdResult {
    let attached = streams.0 || streams.1 || streams.2;
    let attach = async {
        if !attached {
            return Ok(None);
        }
        let q = attach_query(streams.0, streams.1, streams.2, keys);
        let path = format!("/containers/{id}/attach");
        ctx.client.hijack(&path, &q, None).await.map(Some)
    };
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let (wait_path, wait_query) = (
        format!("/containers/{id}/wait"),
        Query::new().add("condition", condition),
    );
    let wait = ctx
        .client
        .send(Method::POST, &wait_path, &wait_query, Body::Empty, &[]);
    // Both in flight at once (they are independent), both answered before the start.
    let (hijacked, wait) = tokio::join!(attach, wait);
    let hijacked = hijacked.map_err(|e| run_failure(cmd_name, &e))?;
    let wait = wait.map_err(|e| run_failure(cmd_name, &e))?;

    // Raw mode only once everything that can fail early has succeeded.
    let raw = if spec.tty && spec.stdin {
        term::raw_stdin()
    } else {
        None
    };
    if let Err(e) = ctx
        .client
        .post(
            &format!("/containers/{id}/start"),
            &Query::new(),
            Body::Empty,
        )
        .await
    {
        drop(raw);
        return Err(run_failure(cmd_name, &e));
    }
    let resize = (spec.tty && std::io::stdout().is_terminal())
        .then(|| monitor_size(ctx.client.clone(), format!("/containers/{id}/resize")));
    let signals =
        (sig_proxy && !spec.tty).then(|| proxy_signals(ctx.client.clone(), id.to_string()));
    let end = match hijacked {
        Some(h) => pump(h, &spec).await,
        None => Ok(StreamEnd::Eof),
    };
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    let result = match end? {
        StreamEnd::Detached => return Ok(0),
        StreamEnd::Eof => read_wait(wait).await,
    };
    if let Some(s) = signals {
        s.abort();
    }
    result
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> CmdResult {
    let o = &a.create.opts;
    if o.tty && o.interactive && !a.detach && !std::io::stdin().is_terminal() {
        return Err(CliError::new(1, "the input device is not a TTY"));
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let id = create_container(ctx, o, &a.create.args, a.detach, true, "run").await?;
    if a.detach {
        ctx.client
            .post(
                &format!("/containers/{id}/start"),
                &Query::new(),
                Body::Empty,
            )
            .await
            .map_err(|e| run_failure("run", &e))?;
        println!("{id}");
        return Ok(0);
    }
    let (mut si, mut so, mut se) = (o.interactive, true, true);
    if !o.attach.is_empty() {
        si = o.attach.iter().any(|s| s.eq_ignore_ascii_case("stdin"));
        so = o.attach.iter().any(|s| s.eq_ignore_ascii_case("stdout"));
        se = o.attach.iter().any(|s| s.eq_ignore_ascii_case("stderr"));
    }
    let spec = StreamSpec {
        tty: o.tty,
        stdin: si,
        detach_keys: keys,
    };
    let code = attach_start_wait(
        ctx,
        &id,
        spec,
        (si, so, se),
        a.detach_keys.as_deref(),
        o.rm,
        a.sig_proxy,
        "run",
    )
    .await?;
    Ok(code)
}

pub async fn start(ctx: &Ctx, a: StartArgs) -> CmdResult {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(CliError::new(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let info: Value = ctx
            .client
            .get_json(&format!("/containers/{name}/json"), &Query::new())
            .await?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        if tty && stdin && !std::io::stdin().is_terminal() {
            return Err(CliError::new(1, "the input device is not a TTY"));
        }
        let keys = detach_keys(a.detach_keys.as_deref())?;
        let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        let spec = StreamSpec {
            tty,
            stdin,
            detach_keys: keys,
        };
        return attach_start_wait(
            ctx,
            &id,
            spec,
            (stdin, true, true),
            a.detach_keys.as_deref(),
            auto_remove,
            true,
            "start",
        )
        .await;
    }
    let mut failed = Vec::new();
    for c in &a.containers {
        match ctx
            .client
            .post(
                &format!("/containers/{c}/start"),
                &Query::new(),
                Body::Empty,
            )
            .await
        {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("{}", daemon_err(&e));
                failed.push(c.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(
            1,
            format!("Error: failed to start containers: {}", failed.join(", ")),
        ))
    }
}

pub async fn attach(ctx: &Ctx, a: AttachArgs) -> CmdResult {
    let info: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", a.container), &Query::new())
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(CliError::new(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(CliError::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::new(1, "the input device is not a TTY"));
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let q = attach_query(stdin, true, true, a.detach_keys.as_deref());
    let h = ctx
        .client
        .hijack(&format!("/containers/{id}/attach"), &q, None)
        .await?;
    let raw = if tty && stdin {
        term::raw_stdin()
    } else {
        None
    };
    let resize = (tty && std::io::stdout().is_terminal())
        .then(|| monitor_size(ctx.client.clone(), format!("/containers/{id}/resize")));
    let signals = (a.sig_proxy && !tty).then(|| proxy_signals(ctx.client.clone(), id.clone()));
    let end = pump(
        h,
        &StreamSpec {
            tty,
            stdin,
            detach_keys: keys,
        },
    )
    .await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if let Some(s) = signals {
        s.abort();
    }
    if let StreamEnd::Detached = end? {
        return Ok(0);
    }
    // The stream ends when the container exits (or the user detached on the daemon side).
    let info: Value = ctx
        .client
        .get_json(&format!("/containers/{id}/json"), &Query::new())
        .await
        .unwrap_or(Value::Null);
    if info["State"]["Running"].as_bool() == Some(false) {
        return Ok(exit_status(&info["State"]["ExitCode"]));
    }
    Ok(0)
}

/// The `POST /containers/{id}/exec` body for `exec` flags.
pub fn exec_body(a: &ExecArgs, local: &dyn Local, console: (u16, u16)) -> Result<Value, CliError> {
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = local
            .read_file(f)
            .map_err(|e| CliError::new(1, format!("open {f}: {e}")))?;
        env.extend(parse_env_file(&content, local, true)?);
    }
    for e in &a.env {
        env.push(expand_env(e, local)?);
    }
    Ok(json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "ConsoleSize": if a.tty { json!([console.0, console.1]) } else { Value::Null },
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.args[1..],
    }))
}

pub async fn exec(ctx: &Ctx, a: ExecArgs) -> CmdResult {
    let container = &a.args[0];
    if a.tty && a.interactive && !a.detach && !std::io::stdin().is_terminal() {
        return Err(CliError::new(1, "the input device is not a TTY"));
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let console = if a.tty && std::io::stdout().is_terminal() {
        term::size().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let body = exec_body(&a, &RealLocal, console)?;
    let created: Value = ctx
        .client
        .post_json(
            &format!("/containers/{container}/exec"),
            &Query::new(),
            Body::json(&body)?,
        )
        .await?;
    let exec_id = created["Id"]
        .as_str()
        .or_else(|| created["ID"].as_str())
        .ok_or_else(|| CliError::new(1, "exec create answered without an id"))?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty, "ConsoleSize": body["ConsoleSize"]});
    if a.detach {
        ctx.client
            .post(
                &format!("/exec/{exec_id}/start"),
                &Query::new(),
                Body::json(&start)?,
            )
            .await?;
        return Ok(0);
    }
    let h = ctx
        .client
        .hijack(
            &format!("/exec/{exec_id}/start"),
            &Query::new(),
            Some(serde_json::to_vec(&start).unwrap_or_default()),
        )
        .await?;
    let raw = if a.tty && a.interactive {
        term::raw_stdin()
    } else {
        None
    };
    let resize = (a.tty && std::io::stdout().is_terminal())
        .then(|| monitor_size(ctx.client.clone(), format!("/exec/{exec_id}/resize")));
    let end = pump(
        h,
        &StreamSpec {
            tty: a.tty,
            stdin: a.interactive,
            detach_keys: keys,
        },
    )
    .await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if let StreamEnd::Detached = end? {
        return Ok(0);
    }
    let info: Value = ctx
        .client
        .get_json(&format!("/exec/{exec_id}/json"), &Query::new())
        .await?;
    Ok(exit_status(&info["ExitCode"]))
}

/// A container's or exec's exit code as the daemon reports it (0-255, or Docker's
/// 125-128): a number outside `i32` is not one and reads as 0, as a missing one.
fn exit_status(v: &Value) -> i32 {
    v.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `berth exec`'s arguments alone.
    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Exec {
        #[command(flatten)]
        a: ExecArgs,
    }

    struct NoLocal;
    impl Local for NoLocal {
        fn env(&self, key: &str) -> Option<String> {
            (key == "HOME").then(|| "/root".to_string())
        }
        fn read_file(&self, _: &str) -> std::io::Result<String> {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or directory",
            ))
        }
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            run_error_code(
                "failed to create task: exec: \"nope\": executable file not found in $PATH"
            ),
            127
        );
        assert_eq!(run_error_code("exec /x: no such file or directory"), 127);
        assert_eq!(run_error_code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(run_error_code("cannot execute binary file"), 126);
        assert_eq!(run_error_code("No such image: x"), 125);
    }

    #[test]
    fn refs() {
        assert_eq!(full_ref("busybox"), "busybox:latest");
        assert_eq!(full_ref("busybox:1"), "busybox:1");
        assert_eq!(full_ref("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full_ref("x@sha256:ab"), "x@sha256:ab");
    }

    #[test]
    fn exec_body_shape() {
        let cli = Exec::try_parse_from([
            "exec", "-i", "-e", "A=1", "-e", "HOME", "-u", "nobody", "-w", "/tmp", "c1", "sh",
            "-c", "id",
        ])
        .unwrap();
        let b = exec_body(&cli.a, &NoLocal, (0, 0)).unwrap();
        assert_eq!(b["Cmd"], json!(["sh", "-c", "id"]));
        assert_eq!(b["Env"], json!(["A=1", "HOME=/root"]));
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["Tty"], false);
        assert_eq!(b["User"], "nobody");
        assert_eq!(b["WorkingDir"], "/tmp");
        let cli = Exec::try_parse_from(["exec", "-d", "c1", "true"]).unwrap();
        let b = exec_body(&cli.a, &NoLocal, (0, 0)).unwrap();
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["Detach"], true);
    }
}
