//! A shim served in-process on the real shim's socket, speaking the same protocol
//! (`docs/shim-protocol.md`): the daemon's `ShimClient` cannot tell it from `berth-shim`. Its
//! "process" is a state machine that a test drives ([`FakeShim::exit`], [`FakeShim::die`]) or
//! lets run by [`Behaviour`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_shim_protocol::{
    encode_frame, format_timestamp, ExecStarted, ExitStatus, FrameKind, Request, Response,
    ShimConfig, Status,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::fake::FAKE_PID;
use crate::lock;

/// How a fake shim's process behaves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Behaviour {
    /// Signals other than SIGKILL are ignored (a `stop` must escalate to SIGKILL).
    pub ignore_sigterm: bool,
    /// The process exits with this code as soon as it starts.
    pub exit_at_start: Option<i32>,
    /// `start` fails with this message.
    pub start_error: Option<String>,
    /// The launch fails with this error (as the runtime's create of a container whose command
    /// is missing does).
    pub launch_error: Option<berth_shim_protocol::StartError>,
    /// Lines the process writes to stdout when it starts (into the json-file log).
    pub output: Vec<String>,
    /// What every exec prints on stdout, and its exit code.
    pub exec_output: Vec<u8>,
    pub exec_exit: i32,
    /// `start` answers without the process's pid and start time (a shim of an earlier berth).
    pub start_answers_nothing: bool,
}

#[derive(Debug)]
struct Process {
    status: Status,
    started_at: Option<String>,
    exit: Option<ExitStatus>,
}

/// One container's fake shim.
pub(crate) struct FakeShim {
    cfg: ShimConfig,
    behaviour: Behaviour,
    process: Mutex<Process>,
    exited: watch::Sender<Option<ExitStatus>>,
    /// Set when the shim dies: every connection is cut, nothing is recorded.
    dead: watch::Sender<bool>,
    /// The requests served, by name (`state`, `start`, `kill 15`, ...).
    requests: Mutex<Vec<String>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl FakeShim {
    /// Listens on `cfg.socket` and serves it on the current tokio runtime.
    pub(crate) fn serve(cfg: &ShimConfig, behaviour: Behaviour) -> std::io::Result<Arc<FakeShim>> {
        if let Some(dir) = cfg.socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&cfg.socket);
        let std_listener = std::os::unix::net::UnixListener::bind(&cfg.socket)?;
        std_listener.set_nonblocking(true)?;
        let shim = Arc::new(FakeShim {
            cfg: cfg.clone(),
            behaviour,
            process: Mutex::new(Process {
                status: Status::Created,
                started_at: None,
                exit: None,
            }),
            exited: watch::channel(None).0,
            dead: watch::channel(false).0,
            requests: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let handle = tokio::runtime::Handle::current();
        let this = shim.clone();
        let accept = handle.spawn(async move {
            let Ok(listener) = tokio::net::UnixListener::from_std(std_listener) else {
                return;
            };
            let mut exited = this.exited.subscribe();
            let mut dead = this.dead.subscribe();
            loop {
                tokio::select! {
                    conn = listener.accept() => {
                        let Ok((conn, _)) = conn else { break };
                        let me = this.clone();
                        let task = tokio::spawn(async move { me.handle(conn).await });
                        lock(&this.tasks).push(task);
                    }
                    _ = exited.wait_for(Option::is_some) => break,
                    _ = dead.wait_for(|d| *d) => break,
                }
            }
            // As the real shim: once the process has exited and its waiters are answered,
            // the shim goes, and its socket with it.
            let _ = std::fs::remove_file(&this.cfg.socket);
        });
        lock(&shim.tasks).push(accept);
        Ok(shim)
    }

    /// The requests this shim served, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }

    pub(crate) fn status(&self) -> Status {
        lock(&self.process).status
    }

    /// The process exits with `code` (the shim records it in `exit.json` first, as the real
    /// one does, then answers its waiters).
    pub(crate) fn exit(&self, code: i32) {
        let status = {
            let mut p = lock(&self.process);
            if p.exit.is_some() {
                return;
            }
            let status = ExitStatus {
                exit_code: code,
                finished_at: format_timestamp(std::time::SystemTime::now()),
                oom_killed: false,
                log_dropped: 0,
            };
            p.status = Status::Exited;
            p.exit = Some(status.clone());
            status
        };
        if let Ok(body) = serde_json::to_vec(&status) {
            let _ = std::fs::write(&self.cfg.exit_file, body);
        }
        self.exited.send_replace(Some(status));
    }

    /// The shim dies (SIGKILL): connections are cut, no exit is recorded, its "process" is
    /// left as it was.
    pub(crate) fn die(&self) {
        self.dead.send_replace(true);
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.cfg.socket);
    }

    async fn handle(self: Arc<Self>, conn: UnixStream) {
        let (r, mut w) = conn.into_split();
        let mut reader = BufReader::new(r);
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let Ok(req) = serde_json::from_str::<Request>(line.trim_end()) else {
            let _ = reply(&mut w, &Response::err("bad request")).await;
            return;
        };
        lock(&self.requests).push(name(&req));
        match req {
            Request::Attach { .. } => {
                let _ = w.write_all(&encode_frame(FrameKind::Started, b"")).await;
                let status = self.wait_exit().await;
                if let Ok(body) = serde_json::to_vec(&status) {
                    let _ = w.write_all(&encode_frame(FrameKind::Exit, &body)).await;
                }
            }
            Request::Exec { .. } => {
                let started = ExecStarted {
                    pid: Some(FAKE_PID),
                };
                let body = serde_json::to_vec(&started).unwrap_or_default();
                let _ = w.write_all(&encode_frame(FrameKind::Started, &body)).await;
                if !self.behaviour.exec_output.is_empty() {
                    let out = &self.behaviour.exec_output;
                    let _ = w.write_all(&encode_frame(FrameKind::Stdout, out)).await;
                }
                let status = ExitStatus {
                    exit_code: self.behaviour.exec_exit,
                    finished_at: format_timestamp(std::time::SystemTime::now()),
                    oom_killed: false,
                    log_dropped: 0,
                };
                let body = serde_json::to_vec(&status).unwrap_or_default();
                let _ = w.write_all(&encode_frame(FrameKind::Exit, &body)).await;
            }
            Request::Wait => {
                let status = self.wait_exit().await;
                let _ = reply(
                    &mut w,
                    &Response {
                        exit: Some(status),
                        ..Response::ok()
                    },
                )
                .await;
            }
            other => {
                let resp = self.answer(other);
                let _ = reply(&mut w, &resp).await;
            }
        }
    }

    async fn wait_exit(&self) -> ExitStatus {
        let mut rx = self.exited.subscribe();
        let got = rx.wait_for(Option::is_some).await.map(|v| v.clone());
        match got {
            Ok(Some(s)) => s,
            // The sender lives as long as the shim: unreachable in practice.
            _ => std::future::pending().await,
        }
    }

    fn answer(&self, req: Request) -> Response {
        match req {
            Request::State => {
                let p = lock(&self.process);
                Response {
                    status: Some(p.status),
                    pid: (p.status != Status::Exited).then_some(FAKE_PID),
                    started_at: p.started_at.clone(),
                    exit: p.exit.clone(),
                    ..Response::ok()
                }
            }
            Request::Start => {
                if let Some(msg) = &self.behaviour.start_error {
                    return Response::err(msg.clone());
                }
                let started_at = {
                    let mut p = lock(&self.process);
                    if p.status != Status::Created {
                        return Response::err("container already started");
                    }
                    p.status = Status::Running;
                    let at = format_timestamp(std::time::SystemTime::now());
                    p.started_at = Some(at.clone());
                    at
                };
                self.write_output();
                if let Some(code) = self.behaviour.exit_at_start {
                    self.exit(code);
                }
                if self.behaviour.start_answers_nothing {
                    return Response::ok();
                }
                Response {
                    pid: Some(FAKE_PID),
                    started_at: Some(started_at),
                    ..Response::ok()
                }
            }
            Request::Kill { signal, .. } => {
                if lock(&self.process).status == Status::Exited {
                    return Response::err("process already finished");
                }
                if signal == libc::SIGKILL || !self.behaviour.ignore_sigterm {
                    self.exit(128 + signal);
                }
                Response::ok()
            }
            Request::Pids => {
                let running = lock(&self.process).status != Status::Exited;
                Response {
                    pids: Some(if running { vec![FAKE_PID] } else { Vec::new() }),
                    ..Response::ok()
                }
            }
            Request::Pause => self.set_status(Status::Running, Status::Paused),
            Request::Resume => self.set_status(Status::Paused, Status::Running),
            Request::Resize { .. } => Response::ok(),
            Request::Wait | Request::Attach { .. } | Request::Exec { .. } => {
                Response::err("streaming request on the plain path")
            }
        }
    }

    fn set_status(&self, from: Status, to: Status) -> Response {
        let mut p = lock(&self.process);
        if p.status != from {
            return Response::err(format!("container is {:?}, not {from:?}", p.status));
        }
        p.status = to;
        Response::ok()
    }

    /// The process's output, as the real shim's json-file writer stores it.
    fn write_output(&self) {
        let Some(path) = &self.cfg.log_path else {
            return;
        };
        let mut text = String::new();
        for l in &self.behaviour.output {
            let entry = serde_json::json!({
                "log": format!("{l}\n"),
                "stream": "stdout",
                "time": format_timestamp(std::time::SystemTime::now()),
            });
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(&PathBuf::from("/")));
        let _ = std::fs::write(path, text);
    }
}

impl Drop for FakeShim {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

fn name(req: &Request) -> String {
    match req {
        Request::State => "state".into(),
        Request::Start => "start".into(),
        Request::Kill { signal, all } => format!("kill {signal}{}", if *all { " all" } else { "" }),
        Request::Resize { .. } => "resize".into(),
        Request::Pids => "pids".into(),
        Request::Pause => "pause".into(),
        Request::Resume => "resume".into(),
        Request::Wait => "wait".into(),
        Request::Attach { .. } => "attach".into(),
        Request::Exec { exec_id, .. } => format!("exec {exec_id}"),
    }
}

async fn reply(w: &mut tokio::net::unix::OwnedWriteHalf, resp: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}
