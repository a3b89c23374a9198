//! Exec instances and the byte bridge between a client connection and a shim stream.

use std::sync::Arc;

use berth_api_types::exec::{CreateRequest, InspectResponse, ProcessConfig, StartRequest};
use berth_api_types::{detach, ApiError};
use berth_services::{BoxedIo, ExecStarted, Session};
use berth_shim_protocol::{encode_frame, ExitStatus, FrameKind, ShimStream};
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::no_such_container;
use crate::{internal, lock, spec, Daemon, Result};

#[derive(Debug, Clone)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub req: CreateRequest,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

/// Copies a shim stream to the client (re-framing for Docker) and the client's input to the shim.
/// `on_exit` gets the exit code carried by the final frame (`None` when none came or the client
/// detached) exactly once, before the client's connection is closed: a client that inspects
/// the exec as soon as its stream ends must find the code recorded.
/// With `detach_keys` and a TTY, that byte sequence on stdin detaches the client (the connection
/// closes, the process runs on) and is not forwarded. Like Docker, a non-TTY stream is copied as
/// it is: binary input (a tar piped into `docker run -i`) may contain any bytes.
/// `tty` is whether the process has a terminal; `raw` whether the client gets its output
/// unframed. They differ only for an exec whose start request's `Tty` differs from its create
/// request's: dockerd frames by the start request, and with a raw stream it drops the stderr of
/// a process without a terminal.
pub(crate) async fn bridge(
    shim: ShimStream,
    io: BoxedIo,
    tty: bool,
    raw: bool,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
    on_exit: impl FnOnce(Option<i64>) + Send + 'static,
) {
    let on_exit: OnExit = Arc::new(std::sync::Mutex::new(Some(Box::new(on_exit))));
    let on_exit_out = on_exit.clone();
    let ShimStream {
        mut reader,
        writer: mut shim_wr,
        ..
    } = shim;
    let (mut cli_rd, mut cli_wr) = tokio::io::split(io);
    let input = async move {
        if !stdin {
            // Without stdin, read on only to notice the client hanging up.
            let mut sink = [0u8; 1024];
            while let Ok(n) = cli_rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            return false;
        }
        let mut scanner = stdin_detach_keys(tty, detach_keys).map(detach::Scanner::new);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match cli_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (data, detached) = match scanner.as_mut() {
                Some(sc) => sc.feed(&buf[..n]),
                None => (buf[..n].to_vec(), false),
            };
            if !data.is_empty() && shim_wr.write_all(&data).await.is_err() {
                break;
            }
            if detached {
                return true;
            }
        }
        // The half-close tells the shim that stdin reached EOF.
        let _ = shim_wr.shutdown().await;
        false
    };
    let output = async move {
        let mut exit = None;
        while let Ok(Some(frame)) = reader.next_frame().await {
            match frame.kind {
                FrameKind::Stderr if raw && !tty => {}
                FrameKind::Stdout | FrameKind::Stderr => {
                    let res = if raw {
                        cli_wr.write_all(&frame.payload).await
                    } else {
                        cli_wr
                            .write_all(&encode_frame(frame.kind, &frame.payload))
                            .await
                    };
                    if res.is_err() || cli_wr.flush().await.is_err() {
                        break;
                    }
                }
                FrameKind::Exit => {
                    exit = serde_json::from_slice::<ExitStatus>(&frame.payload).ok();
                    break;
                }
                FrameKind::Error => {
                    let err = berth_shim_protocol::StartError::from_payload(&frame.payload);
                    let msg = err.message;
                    exit = Some(ExitStatus {
                        exit_code: err.cause.exit_code(),
                        finished_at: crate::model::now_rfc3339(),
                        oom_killed: false,
                        log_dropped: 0,
                    });
                    let line = format!("{msg}\n");
                    let _ = if raw {
                        cli_wr.write_all(line.as_bytes()).await
                    } else {
                        cli_wr
                            .write_all(&encode_frame(FrameKind::Stderr, line.as_bytes()))
                            .await
                    };
                    break;
                }
                FrameKind::Started => {}
            }
        }
        let _ = cli_wr.flush().await;
        fire(&on_exit_out, exit.map(|s| s.exit_code as i64));
        let _ = cli_wr.shutdown().await;
    };
    let mut input_task = tokio::spawn(input);
    tokio::pin!(output);
    tokio::select! {
        () = &mut output => {
            input_task.abort();
        }
        detached = &mut input_task => {
            if matches!(detached, Ok(true)) {
                // Dropping the output side closes the client's connection; the process runs on.
                fire(&on_exit, None);
                return;
            }
            output.await
        }
    }
}

type OnExit = Arc<std::sync::Mutex<Option<Box<dyn FnOnce(Option<i64>) + Send>>>>;

/// Runs the exit callback if it has not run yet.
fn fire(on_exit: &OnExit, code: Option<i64>) {
    let f = lock(on_exit).take();
    if let Some(f) = f {
        f(code);
    }
}

/// Docker's `--detach-keys` syntax, as an API parameter error when it does not parse.
pub(crate) fn parse_detach_keys(spec: &str) -> Result<Vec<u8>> {
    detach::parse(spec)
        .map_err(|_| ApiError::invalid(format!("Invalid detach keys ({spec}) provided")))
}

pub(crate) const DEFAULT_DETACH_KEYS: &str = detach::DEFAULT;

/// The command in `exec_create: …` / `exec_start: …` event actions, as dockerd writes it: the
/// program, a space, then the arguments joined by spaces (so a command without arguments
/// leaves a trailing space: `exec_create: ls `).
fn event_cmdline(cmd: &[String]) -> String {
    match cmd.split_first() {
        Some((program, args)) => format!("{program} {}", args.join(" ")),
        None => " ".to_string(),
    }
}

impl Daemon {
    pub async fn exec_create(&self, key: &str, req: CreateRequest) -> Result<String> {
        let c = self.resolve_container(key)?;
        if c.state.status != crate::model::Status::Running {
            if c.state.status == crate::model::Status::Paused {
                return Err(ApiError::conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    key
                )));
            }
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::invalid("No exec command specified"));
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        lock(&self.execs).insert(
            id.clone(),
            ExecInstance {
                id: id.clone(),
                container_id: c.id.clone(),
                req,
                running: false,
                started: false,
                exit_code: None,
                pid: 0,
            },
        );
        let cid = c.id.clone();
        let _ = self.update_exec_ids(&cid, |ids| ids.push(id.clone()));
        let cmdline = lock(&self.execs)
            .get(&id)
            .map(|e| event_cmdline(e.req.cmd.as_deref().unwrap_or_default()))
            .unwrap_or_default();
        self.emit_container(
            &c,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn update_exec_ids(&self, cid: &str, f: impl FnOnce(&mut Vec<String>)) -> Result<()> {
        let mut map = lock(&self.containers);
        if let Some(c) = map.get_mut(cid) {
            f(&mut c.exec_ids);
        }
        Ok(())
    }

    /// Marks the execs of an exited container as finished.
    pub(crate) fn finish_execs(&self, cid: &str) {
        for e in lock(&self.execs)
            .values_mut()
            .filter(|e| e.container_id == cid)
        {
            e.running = false;
        }
        let _ = self.update_exec_ids(cid, |ids| ids.clear());
    }

    pub(crate) fn forget_execs(&self, cid: &str) {
        lock(&self.execs).retain(|_, e| e.container_id != cid);
    }

    pub fn exec_inspect(&self, exec_id: &str) -> Result<InspectResponse> {
        let e = lock(&self.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| no_such_exec(exec_id))?;
        let cmd = e.req.cmd.clone().unwrap_or_default();
        Ok(InspectResponse {
            id: e.id.clone(),
            running: e.running,
            exit_code: e.exit_code,
            process_config: ProcessConfig {
                privileged: e.req.privileged,
                user: e.req.user.clone(),
                tty: e.req.tty,
                entrypoint: cmd.first().cloned().unwrap_or_default(),
                arguments: cmd.iter().skip(1).cloned().collect(),
            },
            open_stdin: e.req.attach_stdin,
            open_stderr: e.req.attach_stderr,
            open_stdout: e.req.attach_stdout,
            can_remove: false,
            container_id: e.container_id.clone(),
            detach_keys: e.req.detach_keys.clone(),
            pid: e.pid,
        })
    }

    pub async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<()> {
        let e = lock(&self.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| no_such_exec(exec_id))?;
        self.runtime
            .client(&e.container_id)
            .resize(Some(exec_id), h, w)
            .await
            .map_err(internal)
    }

    pub(crate) fn exec_process(&self, e: &ExecInstance, tty: bool) -> Result<serde_json::Value> {
        let c = self
            .get(&e.container_id)
            .ok_or_else(|| no_such_container(&e.container_id))?;
        let spec_path = self.runtime.bundle_dir(&c.id).join("config.json");
        let raw = self
            .runtime
            .read_spec(&c.id)
            .map_err(|err| internal(format!("reading {}: {err}", spec_path.display())))?;
        let oci: oci_spec::runtime::Spec = serde_json::from_slice(&raw).map_err(internal)?;
        let base = oci
            .process()
            .clone()
            .ok_or_else(|| internal("container spec has no process"))?;
        let req = spec::ExecSpec {
            cmd: e.req.cmd.clone().unwrap_or_default(),
            env: e.req.env.clone().unwrap_or_default(),
            user: if e.req.user.is_empty() {
                c.config.user.clone()
            } else {
                e.req.user.clone()
            },
            working_dir: e.req.working_dir.clone(),
            tty,
            privileged: e.req.privileged || c.host_config.privileged,
        };
        let process =
            spec::build_exec_process(&base, &req, &self.runtime.rootfs(&c.id), &self.host)
                .map_err(|err| ApiError::invalid(err.to_string()))?;
        serde_json::to_value(process).map_err(internal)
    }

    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        start: StartRequest,
    ) -> Result<ExecStarted> {
        let e = {
            let mut map = lock(&self.execs);
            let e = map.get_mut(exec_id).ok_or_else(|| no_such_exec(exec_id))?;
            if e.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            e.started = true;
            e.running = true;
            e.clone()
        };
        self.runtime.ops.prime_cgroup_migration();
        // The process has a terminal as its create request said; the stream is raw or
        // multiplexed as the start request says (dockerd's `ExecStartCheck.Tty`).
        let tty = e.req.tty;
        let raw = start.tty;
        let keys = match parse_detach_keys(if e.req.detach_keys.is_empty() {
            DEFAULT_DETACH_KEYS
        } else {
            &e.req.detach_keys
        }) {
            Ok(k) => Some(k),
            Err(err) => {
                self.exec_done(exec_id, Some(126));
                return Err(err);
            }
        };
        let cmdline = event_cmdline(e.req.cmd.as_deref().unwrap_or_default());
        self.emit_container_id(
            &e.container_id,
            &format!("exec_start: {cmdline}"),
            &[("execID", exec_id.to_string())],
        );
        let this = self.clone();
        let id = exec_id.to_string();
        if start.detach {
            let stream = match self.start_exec_process(&e, tty, false).await {
                Ok(s) => s,
                Err(err) => {
                    self.exec_done(exec_id, Some(126));
                    return Err(err);
                }
            };
            tokio::spawn(async move {
                let discard = tokio::io::join(tokio::io::empty(), tokio::io::sink());
                let done = move |code| this.exec_done(&id, code);
                bridge(stream, Box::new(discard), tty, raw, false, None, done).await;
            });
            return Ok(ExecStarted::Detached);
        }
        let stdin = e.req.attach_stdin;
        Ok(ExecStarted::Attached(Session {
            tty: raw,
            run: Box::new(move |mut io: BoxedIo| {
                async move {
                    // The process starts only now, once the client has its 101, as with
                    // Docker: a fast process's first output must not travel with the response
                    // headers (clients that read those with a buffered reader, like docker-py,
                    // would lose it), and a failure is told over the stream with exit code 126.
                    match this.start_exec_process(&e, tty, stdin).await {
                        Ok(stream) => {
                            let done = move |code| this.exec_done(&id, code);
                            bridge(stream, io, tty, raw, stdin, keys, done).await;
                        }
                        Err(err) => {
                            let line = format!("{}\r\n", err.message);
                            let bytes = if raw {
                                line.into_bytes()
                            } else {
                                encode_frame(FrameKind::Stdout, line.as_bytes())
                            };
                            let _ = io.write_all(&bytes).await;
                            let _ = io.flush().await;
                            this.exec_done(&id, Some(126));
                            let _ = io.shutdown().await;
                        }
                    }
                }
                .boxed()
            }),
        }))
    }

    /// Builds the exec's process and has the shim start it; errors carry Docker's message.
    async fn start_exec_process(
        &self,
        e: &ExecInstance,
        tty: bool,
        stdin: bool,
    ) -> Result<ShimStream> {
        let process = self.exec_process(e, tty)?;
        if e.req.working_dir.starts_with('/') {
            if let Some(c) = self.get(&e.container_id).filter(|c| c.state.pid > 0) {
                let root = std::path::PathBuf::from(format!("/proc/{}/root", c.state.pid));
                crate::exec_cwd::check(&root, &e.req.working_dir)?;
            }
        }
        self.runtime
            .client(&e.container_id)
            .exec(&e.id, process, stdin)
            .await
            // runc's wording, which dockerd passes on: `OCI runtime exec failed: exec failed:
            // unable to start container process: exec: "x": executable file not found in
            // $PATH: unknown`.
            .map_err(|err| {
                internal(format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {err}: unknown"
                ))
            })
    }

    fn exec_done(&self, exec_id: &str, code: Option<i64>) {
        let done = lock(&self.execs).get_mut(exec_id).map(|e| {
            e.running = false;
            e.exit_code = Some(code.unwrap_or(-1));
            e.container_id.clone()
        });
        if let Some(cid) = done {
            self.emit_container_id(
                &cid,
                "exec_die",
                &[
                    ("execID", exec_id.to_string()),
                    ("exitCode", code.unwrap_or(-1).to_string()),
                ],
            );
        }
    }
}

/// The detach sequence to watch stdin for: Docker watches only TTY streams.
fn stdin_detach_keys(tty: bool, keys: Option<Vec<u8>>) -> Option<Vec<u8>> {
    keys.filter(|_| tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_only_on_a_tty() {
        assert_eq!(
            stdin_detach_keys(true, Some(vec![16, 17])),
            Some(vec![16, 17])
        );
        assert_eq!(stdin_detach_keys(false, Some(vec![16, 17])), None);
        assert_eq!(stdin_detach_keys(true, None), None);
    }

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("xy").is_err());
    }
}
