//! The asynchronous half: serve the control socket, pump output, reap, clean up.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use berth_shim_protocol::{
    encode_frame, format_timestamp, ExecStarted, ExitStatus, FrameKind, Request, Response,
    RunState, ShimConfig, StartError, Status,
};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::cgroup::CgroupInfo;
use crate::errmap::{docker_error, error_chain, RuntimeError};
use crate::logs::{JsonLog, LineSplitter, Stream};
use crate::setup::{Created, InitIo};
use crate::sys;
use crate::util::{exit_code, write_reserved};

mod output;
mod stdio;

use stdio::{pty_fd, read_opt, Sink, Source};

const READ_BUF: usize = 32 * 1024;
/// How long output may keep flowing after the process it belongs to exited.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const EXEC_DRAIN_GRACE: Duration = Duration::from_secs(2);

type FrameBytes = Rc<Vec<u8>>;

enum StdinMsg {
    Data(Vec<u8>),
    Close,
}

struct AttachClient {
    tx: mpsc::Sender<FrameBytes>,
    stdout: bool,
    stderr: bool,
}

struct RunInfo {
    status: Status,
    started_at: Option<String>,
    exit: Option<ExitStatus>,
}

struct Monitor {
    cfg: ShimConfig,
    init_pid: Pid,
    cgroup: CgroupInfo,
    oom_base: Option<u64>,
    run: RefCell<RunInfo>,
    tty: Option<Rc<AsyncFd<OwnedFd>>>,
    attach: RefCell<Vec<AttachClient>>,
    stdin_tx: RefCell<Option<mpsc::Sender<StdinMsg>>>,
    log: RefCell<Option<JsonLog>>,
    /// Log messages that could not be written (see `output`).
    log_dropped: Cell<u64>,
    splitters: RefCell<[LineSplitter; 2]>,
    /// Exec processes by pid: whoever waits for their exit status.
    execs: RefCell<HashMap<i32, oneshot::Sender<WaitStatus>>>,
    exec_ttys: RefCell<HashMap<String, Rc<AsyncFd<OwnedFd>>>>,
    exec_seq: Cell<u64>,
    pumps_open: Cell<usize>,
    pumps_changed: Notify,
    conns: Cell<usize>,
    conns_changed: Notify,
    /// Set once cleanup is over: waits are answered and attach streams end.
    done: watch::Sender<bool>,
    finished: Notify,
    /// The container's precompiled filter, for exec processes (see [`crate::seccomp`]).
    seccomp: Option<crate::seccomp::ExecSeccomp>,
    /// The container's `name=systemd` cgroup, removed with the container.
    systemd: Option<crate::cgroupfs::SystemdCgroup>,
}

/// Hands back the memory that only the container's creation needed (free heap, and the page
/// mappings of code such as libcontainer's that the monitor loop never runs again; see
/// [`berth_sys::memory::release_unused`]) a moment after a container or exec process started, once
/// the answer is out; several starts in a row release once.
fn schedule_memory_release() {
    thread_local!(static PENDING: Cell<bool> = const { Cell::new(false) });
    if PENDING.with(|p| p.replace(true)) {
        return;
    }
    tokio::task::spawn_local(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        PENDING.with(|p| p.set(false));
        berth_sys::memory::release_unused();
    });
}

/// Runs the monitor until the container's init has exited and everything is cleaned up.
pub fn run(cfg: ShimConfig, created: Created) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return 1,
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        match Monitor::start(cfg, created) {
            Ok(m) => m.serve().await,
            Err(_) => 1,
        }
    })
}

impl Monitor {
    fn start(cfg: ShimConfig, created: Created) -> io::Result<(Rc<Self>, UnixListener)> {
        let Created {
            init_pid,
            io,
            cgroup,
            oom_base,
            listener,
            log,
            seccomp,
            systemd,
        } = created;
        listener.set_nonblocking(true)?;
        let listener = UnixListener::from_std(listener)?;
        let (sources, stdin_sink, tty) = match io {
            InitIo::Tty { master } => {
                let fd = pty_fd(master)?;
                let sink = cfg.open_stdin.then(|| Sink::Pty(fd.clone()));
                (
                    vec![(Stream::Stdout, Source::Pty(fd.clone()))],
                    sink,
                    Some(fd),
                )
            }
            InitIo::Pipes {
                stdout,
                stderr,
                stdin,
            } => {
                let sink = match stdin {
                    Some(w) => Some(Sink::Pipe(pipe::Sender::from_owned_fd(w)?)),
                    None => None,
                };
                (
                    vec![
                        (
                            Stream::Stdout,
                            Source::Pipe(pipe::Receiver::from_owned_fd(stdout)?),
                        ),
                        (
                            Stream::Stderr,
                            Source::Pipe(pipe::Receiver::from_owned_fd(stderr)?),
                        ),
                    ],
                    sink,
                    None,
                )
            }
        };
        let (done, _) = watch::channel(false);
        let m = Rc::new(Monitor {
            cfg,
            init_pid,
            cgroup,
            oom_base,
            run: RefCell::new(RunInfo {
                status: Status::Created,
                started_at: None,
                exit: None,
            }),
            tty,
            attach: RefCell::new(Vec::new()),
            stdin_tx: RefCell::new(None),
            log: RefCell::new(log),
            log_dropped: Cell::new(0),
            splitters: RefCell::new(Default::default()),
            execs: RefCell::new(HashMap::new()),
            exec_ttys: RefCell::new(HashMap::new()),
            exec_seq: Cell::new(0),
            pumps_open: Cell::new(0),
            pumps_changed: Notify::new(),
            conns: Cell::new(0),
            conns_changed: Notify::new(),
            done,
            finished: Notify::new(),
            seccomp,
            systemd,
        });
        if let Some(sink) = stdin_sink {
            let (tx, rx) = mpsc::channel(16);
            *m.stdin_tx.borrow_mut() = Some(tx);
            tokio::task::spawn_local(stdin_task(sink, rx));
        }
        for (stream, src) in sources {
            m.pumps_open.set(m.pumps_open.get() + 1);
            tokio::task::spawn_local(m.clone().pump(stream, src));
        }
        Ok((m, listener))
    }
}

trait ServeExt {
    async fn serve(self) -> i32;
}

impl ServeExt for (Rc<Monitor>, UnixListener) {
    async fn serve(self) -> i32 {
        let (m, listener) = self;
        tokio::task::spawn_local(m.clone().reaper());
        loop {
            tokio::select! {
                conn = listener.accept() => {
                    if let Ok((conn, _)) = conn {
                        m.spawn_conn(conn);
                    }
                }
                _ = m.finished.notified() => break,
            }
        }
        // The socket path is gone, so nobody new can connect; serve those who connected
        // before that but were not accepted yet (a `wait` sent right before the exit), then
        // let the open connections get their answers and final frames.
        if let Ok(listener) = listener.into_std() {
            while let Ok((conn, _)) = listener.accept() {
                if conn.set_nonblocking(true).is_err() {
                    continue;
                }
                if let Ok(conn) = UnixStream::from_std(conn) {
                    m.spawn_conn(conn);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while m.conns.get() > 0 {
                let changed = m.conns_changed.notified();
                if m.conns.get() == 0 {
                    break;
                }
                changed.await;
            }
        })
        .await;
        // Off the exit's critical path: libcontainer rediscovers every cgroup hierarchy to
        // remove the container's cgroups (hundreds of system calls, milliseconds).
        if let Ok(mut c) = m.container() {
            let _ = c.delete(true);
        }
        if let Some(s) = &m.systemd {
            s.remove();
        }
        let _ = fs::remove_file(m.cfg.pid_file());
        0
    }
}

async fn stdin_task(mut sink: Sink, mut rx: mpsc::Receiver<StdinMsg>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            StdinMsg::Data(d) => {
                if sink.write_all(&d).await.is_err() {
                    break;
                }
            }
            // Dropping a pipe's write end gives the container EOF; a pty has no separate
            // stdin to close, so there it is a no-op.
            StdinMsg::Close => {
                if matches!(sink, Sink::Pipe(_)) {
                    break;
                }
            }
        }
    }
}

impl Monitor {
    fn status(&self) -> Status {
        self.run.borrow().status
    }

    fn container(&self) -> Result<Container, RuntimeError> {
        Ok(Container::load(self.cfg.runtime_root.join(&self.cfg.id))?)
    }

    // ---- processes ----------------------------------------------------------------

    async fn reaper(self: Rc<Self>) {
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
        loop {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => break,
                    Ok(st) => {
                        if let Some(pid) = st.pid() {
                            self.child_exited(pid, st);
                        }
                    }
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            match sigchld.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn child_exited(self: &Rc<Self>, pid: Pid, st: WaitStatus) {
        if pid == self.init_pid {
            tokio::task::spawn_local(self.clone().finish(st));
        } else if let Some(tx) = self.execs.borrow_mut().remove(&pid.as_raw()) {
            let _ = tx.send(st);
        }
        // Anything else is an orphan reparented to us: reaping it is all there is to do.
    }

    /// The init exited: record, drain, clean up, answer, leave.
    async fn finish(self: Rc<Self>, st: WaitStatus) {
        // Docker marks a container OOMKilled when the kernel OOM-killed any process of its
        // cgroup during its life, not only the init (`sh -c 'alloc | x'` exits 137 itself).
        let oom_now = self.cgroup.oom.as_ref().and_then(|o| o.read());
        let oom_killed = match (self.oom_base, oom_now) {
            (Some(a), Some(b)) => b > a,
            (None, Some(b)) => b > 0,
            _ => false,
        };
        let exit = ExitStatus {
            exit_code: exit_code(&st).unwrap_or(255),
            finished_at: format_timestamp(SystemTime::now()),
            oom_killed,
            log_dropped: self.log_dropped.get(),
        };
        if let Ok(data) = serde_json::to_vec(&exit) {
            let _ = write_reserved(&self.cfg.exit_file, &data);
        }
        {
            let mut run = self.run.borrow_mut();
            run.status = Status::Exited;
            run.exit = Some(exit);
        }
        for pid in self.execs.borrow().keys() {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        // Without a pid namespace, children of the init may survive it and hold the pipes:
        // give them a moment, then kill whatever is left in the cgroup.
        let drained = tokio::time::timeout(DRAIN_GRACE, async {
            while self.pumps_open.get() > 0 {
                let changed = self.pumps_changed.notified();
                if self.pumps_open.get() == 0 {
                    break;
                }
                changed.await;
            }
        })
        .await;
        self.kill_cgroup().await;
        if drained.is_err() {
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while self.pumps_open.get() > 0 {
                    self.pumps_changed.notified().await;
                }
            })
            .await;
        }
        // The runtime's record and cgroups are deleted after the answers are out (end of
        // `serve`); the pid file stays until then, and berthd waits for this process to end
        // before it launches the same container again.
        // Messages dropped while draining count too (the exit file has the earlier count).
        if let Some(exit) = self.run.borrow_mut().exit.as_mut() {
            exit.log_dropped = self.log_dropped.get();
        }
        let _ = fs::remove_file(&self.cfg.socket);
        self.attach.borrow_mut().clear();
        self.stdin_tx.borrow_mut().take();
        self.done.send_replace(true);
        self.finished.notify_one();
    }

    async fn kill_cgroup(&self) {
        for _ in 0..20 {
            let pids = self.cgroup.pids().unwrap_or_default();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ---- connections --------------------------------------------------------------

    /// Counted before the task runs, so the exit path cannot miss a connection.
    fn spawn_conn(self: &Rc<Self>, conn: UnixStream) {
        self.conns.set(self.conns.get() + 1);
        tokio::task::spawn_local(self.clone().handle(conn));
    }

    async fn handle(self: Rc<Self>, conn: UnixStream) {
        let (r, mut w) = conn.into_split();
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        let res = (&mut r).take(1 << 20).read_until(b'\n', &mut line).await;
        if matches!(res, Ok(n) if n > 0) {
            match serde_json::from_slice::<Request>(&line) {
                Ok(Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                }) => self.clone().attach(r, w, stdin, stdout, stderr).await,
                Ok(Request::Exec {
                    exec_id,
                    process,
                    stdin,
                }) => self.clone().exec(r, w, exec_id, process, stdin).await,
                Ok(req) => {
                    let resp = self.plain(req).await;
                    write_response(&mut w, &resp).await;
                }
                Err(e) => write_response(&mut w, &Response::err(format!("bad request: {e}"))).await,
            }
        }
        self.conns.set(self.conns.get() - 1);
        self.conns_changed.notify_waiters();
    }

    async fn plain(&self, req: Request) -> Response {
        match req {
            Request::State => {
                let run = self.run.borrow();
                Response {
                    ok: true,
                    status: Some(run.status),
                    pid: Some(self.init_pid.as_raw().unsigned_abs()),
                    started_at: run.started_at.clone(),
                    exit: run.exit.clone(),
                    ..Default::default()
                }
            }
            Request::Start => self.start_container(),
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Resize {
                exec_id,
                height,
                width,
            } => {
                let fd = match &exec_id {
                    None => self.tty.clone(),
                    Some(id) => self.exec_ttys.borrow().get(id).cloned(),
                };
                match fd {
                    Some(fd) => match sys::set_winsize(fd.get_ref().as_raw_fd(), height, width) {
                        Ok(()) => Response::ok(),
                        Err(e) => Response::err(format!("resize tty: {e}")),
                    },
                    // Docker accepts resizes of containers without a tty and ignores them.
                    None => Response::ok(),
                }
            }
            Request::Pids => {
                if self.status() == Status::Exited {
                    return Response {
                        pids: Some(Vec::new()),
                        ..Response::ok()
                    };
                }
                match self.cgroup.pids() {
                    Ok(p) => Response {
                        pids: Some(p),
                        ..Response::ok()
                    },
                    Err(e) => Response::err(format!("read cgroup pids: {e}")),
                }
            }
            Request::Pause => match self.status() {
                Status::Running => match self.container().and_then(|mut c| Ok(c.pause()?)) {
                    Ok(()) => {
                        self.run.borrow_mut().status = Status::Paused;
                        Response::ok()
                    }
                    Err(e) => Response::err(format!("pause container: {e}")),
                },
                Status::Paused => Response::err("container is already paused"),
                _ => Response::err("container is not running"),
            },
            Request::Resume => match self.status() {
                Status::Paused => match self.resume_container() {
                    Ok(()) => Response::ok(),
                    Err(e) => Response::err(format!("resume container: {e}")),
                },
                _ => Response::err("container is not paused"),
            },
            Request::Wait => {
                let mut rx = self.done.subscribe();
                let _ = rx.wait_for(|d| *d).await;
                Response {
                    exit: self.run.borrow().exit.clone(),
                    ..Response::ok()
                }
            }
            Request::Attach { .. } | Request::Exec { .. } => Response::err("not a plain request"),
        }
    }

    fn resume_container(&self) -> Result<(), RuntimeError> {
        self.container().and_then(|mut c| Ok(c.resume()?))?;
        self.run.borrow_mut().status = Status::Running;
        Ok(())
    }

    fn start_container(&self) -> Response {
        if self.status() != Status::Created {
            return Response::err(match self.status() {
                Status::Exited => "container has already exited",
                _ => "container is already started",
            });
        }
        if let Err(e) = self.container().and_then(|mut c| Ok(c.start()?)) {
            return Response::err(format!("start container: {e}"));
        }
        schedule_memory_release();
        let started_at = format_timestamp(SystemTime::now());
        {
            let mut run = self.run.borrow_mut();
            // The init may already have exited and been recorded.
            if run.status == Status::Created {
                run.status = Status::Running;
            }
            run.started_at = Some(started_at.clone());
        }
        let state = RunState {
            pid: self.init_pid.as_raw().unsigned_abs(),
            started_at,
        };
        if let Ok(data) = serde_json::to_vec(&state) {
            if let Err(e) = write_reserved(&self.cfg.state_file, &data) {
                return Response::err(format!("write {}: {e}", self.cfg.state_file.display()));
            }
        }
        // What the daemon records for the start, so that it need not ask `state` after.
        Response {
            pid: Some(state.pid),
            started_at: Some(state.started_at),
            ..Response::ok()
        }
    }

    fn kill(&self, signal: i32, all: bool) -> Response {
        let status = self.status();
        if status == Status::Exited {
            return Response::err("container is not running");
        }
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return Response::err(format!("invalid signal {signal}")),
        };
        if all {
            for p in self.cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(p as i32), sig);
            }
        } else if let Err(e) = kill(self.init_pid, sig) {
            if e != Errno::ESRCH {
                return Response::err(format!("kill container: {e}"));
            }
        }
        // Frozen tasks act on SIGKILL only once thawed.
        if sig == Signal::SIGKILL && status == Status::Paused {
            let _ = self.resume_container();
        }
        Response::ok()
    }

    async fn attach(
        self: Rc<Self>,
        mut r: BufReader<OwnedReadHalf>,
        mut w: OwnedWriteHalf,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) {
        let (tx, mut rx) = mpsc::channel::<FrameBytes>(16);
        let live = !*self.done.borrow();
        if live {
            self.attach
                .borrow_mut()
                .push(AttachClient { tx, stdout, stderr });
        }
        let started = serde_json::to_vec(&ExecStarted::default()).unwrap_or_default();
        if w.write_all(&encode_frame(FrameKind::Started, &started))
            .await
            .is_err()
        {
            return;
        }
        let stdin_tx = if stdin {
            self.stdin_tx.borrow().clone()
        } else {
            None
        };
        let stdin_once = self.cfg.stdin_once;
        let input = async move {
            let Some(tx) = stdin_tx else {
                return std::future::pending().await;
            };
            let mut buf = vec![0u8; READ_BUF];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(StdinMsg::Data(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
            if stdin_once {
                let _ = tx.send(StdinMsg::Close).await;
            }
            std::future::pending::<()>().await
        };
        let output = async {
            while let Some(frame) = rx.recv().await {
                if w.write_all(&frame).await.is_err() {
                    return false;
                }
            }
            true
        };
        // The output side ends when the monitor drops our sender after the exit.
        let client_ok = tokio::select! {
            ok = output => ok,
            _ = input => false,
        };
        if client_ok {
            let exit = self.run.borrow().exit.clone();
            if let Some(exit) = exit {
                let payload = serde_json::to_vec(&exit).unwrap_or_default();
                let _ = w.write_all(&encode_frame(FrameKind::Exit, &payload)).await;
            }
            let _ = w.shutdown().await;
        }
    }

    async fn exec(
        self: Rc<Self>,
        mut r: BufReader<OwnedReadHalf>,
        mut w: OwnedWriteHalf,
        exec_id: String,
        process: serde_json::Value,
        want_stdin: bool,
    ) {
        let started = match self.spawn_exec(&exec_id, &process, want_stdin) {
            Ok(s) => {
                schedule_memory_release();
                s
            }
            Err(e) => {
                // A JSON `StartError`: the daemon takes the exit code from its cause.
                let payload = serde_json::to_vec(&e).unwrap_or_else(|_| e.message.into_bytes());
                let _ = w.write_all(&encode_frame(FrameKind::Error, &payload)).await;
                let _ = w.shutdown().await;
                return;
            }
        };
        let SpawnedExec {
            pid,
            exit_rx,
            mut stdout,
            mut stderr,
            stdin,
            tty,
        } = started;
        let payload = serde_json::to_vec(&ExecStarted { pid: Some(pid) }).unwrap_or_default();
        let mut client_ok = w
            .write_all(&encode_frame(FrameKind::Started, &payload))
            .await
            .is_ok();

        // stdin: client bytes to the process; half-close means EOF. Under a tty the master
        // stays open (it is the output side too), so EOF is sent as the EOF character.
        if let Some(mut sink) = stdin {
            let is_tty = tty.is_some();
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; READ_BUF];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if sink.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                if is_tty {
                    let _ = sink.write_all(&[4]).await;
                }
            });
        }

        let mut exit_rx = exit_rx;
        let mut exit: Option<WaitStatus> = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut buf1 = vec![0u8; READ_BUF];
        let mut buf2 = vec![0u8; READ_BUF];
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                res = read_opt(&mut stdout, &mut buf1) => match res {
                    Ok(n) if n > 0 => {
                        if client_ok {
                            client_ok = w.write_all(&encode_frame(FrameKind::Stdout, &buf1[..n])).await.is_ok();
                        }
                    }
                    _ => stdout = None,
                },
                res = read_opt(&mut stderr, &mut buf2) => match res {
                    Ok(n) if n > 0 => {
                        if client_ok {
                            client_ok = w.write_all(&encode_frame(FrameKind::Stderr, &buf2[..n])).await.is_ok();
                        }
                    }
                    _ => stderr = None,
                },
                st = &mut exit_rx, if exit.is_none() => {
                    exit = Some(st.unwrap_or(WaitStatus::StillAlive));
                    deadline = Some(tokio::time::Instant::now() + EXEC_DRAIN_GRACE);
                }
                _ = sleep_until_opt(deadline) => break,
            }
        }
        let st = match exit {
            Some(st) => st,
            None => exit_rx.await.unwrap_or(WaitStatus::StillAlive),
        };
        self.exec_ttys.borrow_mut().remove(&exec_id);
        drop(tty);
        let status = ExitStatus {
            exit_code: exit_code(&st).unwrap_or(137),
            finished_at: format_timestamp(SystemTime::now()),
            oom_killed: false,
            log_dropped: 0,
        };
        if client_ok {
            let payload = serde_json::to_vec(&status).unwrap_or_default();
            let _ = w.write_all(&encode_frame(FrameKind::Exit, &payload)).await;
            let _ = w.shutdown().await;
        }
    }

    /// Creates the exec process with libcontainer's tenant builder (blocking, but short).
    fn spawn_exec(
        &self,
        exec_id: &str,
        process: &serde_json::Value,
        want_stdin: bool,
    ) -> Result<SpawnedExec, StartError> {
        match self.status() {
            Status::Running => {}
            Status::Paused => {
                return Err(format!(
                    "container {} is paused, unpause the container before exec",
                    self.cfg.id
                )
                .into())
            }
            _ => return Err(format!("container {} is not running", self.cfg.id).into()),
        }
        let terminal = process
            .get("terminal")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
        let n = self.exec_seq.get() + 1;
        self.exec_seq.set(n);
        let dir = self.cfg.socket_dir().to_owned();
        let proc_path = dir.join(format!("exec-{n}.json"));
        let console_name = format!("exec-{n}.console");
        // A container in its own user namespace (`--userns-remap`): the exec process is made
        // as root and joins it as its user (see `crate::userns_exec`).
        let userns = if crate::userns_exec::in_other_userns(self.init_pid.as_raw()) {
            let ns = format!("/proc/{}/ns/user", self.init_pid.as_raw());
            let fd = fs::File::open(&ns).map_err(|e| format!("open {ns}: {e}"))?;
            let mut p = process.clone();
            let user = crate::userns_exec::take_user(&mut p);
            Some((OwnedFd::from(fd), user, p))
        } else {
            None
        };
        let process = userns.as_ref().map_or(process, |(_, _, p)| p);
        // On the precompiled-seccomp path the exec loads the container's filter itself.
        let (data, executor) = match &self.seccomp {
            Some(sc) => {
                let (data, filter, drop) = sc.prepare_exec(process)?;
                let ex = crate::executor::SeccompExecutor::new(filter, drop);
                (data, Some(ex))
            }
            None => (
                serde_json::to_vec(process).map_err(|e| format!("encode process: {e}"))?,
                None,
            ),
        };
        // The process may carry secrets in its environment: owner-only.
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&proc_path)
            .and_then(|mut f| f.write_all(&data))
            .map_err(|e| format!("write {}: {e}", proc_path.display()))?;
        let _cleanup = RemoveOnDrop(vec![proc_path.clone(), dir.join(&console_name)]);

        let pipe = || pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("create pipe: {e}"));
        let mut builder = ContainerBuilder::new(self.cfg.id.clone(), SyscallType::default())
            .with_root_path(&self.cfg.runtime_root)
            .map_err(|e| error_chain(&e))?;
        match (&userns, executor) {
            (Some((fd, user, _)), inner) => {
                builder = builder.with_executor(crate::userns_exec::UsernsExecutor::new(
                    fd.as_raw_fd(),
                    user.clone(),
                    inner,
                ));
            }
            (None, Some(ex)) => builder = builder.with_executor(ex),
            (None, None) => {}
        }
        let mut console = None;
        let mut ours: (Option<OwnedFd>, Option<OwnedFd>, Option<OwnedFd>) = (None, None, None);
        if terminal {
            let l = std::os::unix::net::UnixListener::bind(&console_name)
                .map_err(|e| format!("bind console socket: {e}"))?;
            builder = builder.with_console_socket(Some(dir.join(&console_name)));
            console = Some(l);
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            builder = builder.with_stdout(out_w).with_stderr(err_w);
            ours.0 = Some(out_r);
            ours.1 = Some(err_r);
            if want_stdin {
                let (in_r, in_w) = pipe()?;
                builder = builder.with_stdin(in_r);
                ours.2 = Some(in_w);
            }
        }
        let pid = builder
            .as_tenant()
            .with_process(Some(&proc_path))
            .with_detach(true)
            .build()
            .map_err(|e| docker_error(&error_chain(&e)))?;
        // Registered before this task yields, so the reaper cannot miss the exit.
        let (tx, exit_rx) = oneshot::channel();
        self.execs.borrow_mut().insert(pid.as_raw(), tx);

        let to_io = |e: io::Error| StartError::from(format!("exec io: {e}"));
        let (stdout, stderr, stdin, tty) = match console {
            Some(l) => {
                let master = sys::receive_pty_master(&l, Duration::from_secs(10)).map_err(to_io)?;
                if let Some(size) = process.get("consoleSize") {
                    let dim = |k: &str| {
                        let n = size.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                        u16::try_from(n).unwrap_or(u16::MAX)
                    };
                    let (h, w) = (dim("height"), dim("width"));
                    if h > 0 && w > 0 {
                        let _ = sys::set_winsize(master.as_raw_fd(), h, w);
                    }
                }
                let fd = pty_fd(master).map_err(to_io)?;
                self.exec_ttys
                    .borrow_mut()
                    .insert(exec_id.to_owned(), fd.clone());
                (
                    Some(Source::Pty(fd.clone())),
                    None,
                    want_stdin.then(|| Sink::Pty(fd.clone())),
                    Some(fd),
                )
            }
            None => {
                let src = |fd: Option<OwnedFd>| -> Result<Option<Source>, StartError> {
                    fd.map(|fd| pipe::Receiver::from_owned_fd(fd).map(Source::Pipe))
                        .transpose()
                        .map_err(to_io)
                };
                let stdin = ours
                    .2
                    .map(|fd| pipe::Sender::from_owned_fd(fd).map(Sink::Pipe))
                    .transpose()
                    .map_err(to_io)?;
                (src(ours.0)?, src(ours.1)?, stdin, None)
            }
        };
        Ok(SpawnedExec {
            pid: pid.as_raw().unsigned_abs(),
            exit_rx,
            stdout,
            stderr,
            stdin,
            tty,
        })
    }
}

struct SpawnedExec {
    pid: u32,
    exit_rx: oneshot::Receiver<WaitStatus>,
    stdout: Option<Source>,
    stderr: Option<Source>,
    stdin: Option<Sink>,
    tty: Option<Rc<AsyncFd<OwnedFd>>>,
}

struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn write_response(w: &mut OwnedWriteHalf, resp: &Response) {
    let mut line = serde_json::to_vec(resp).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    line.push(b'\n');
    let _ = w.write_all(&line).await;
    let _ = w.shutdown().await;
}
