//! `berthd`: the daemon. Parses flags, wires the daemon services to the API server, handles signals.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_daemon::{Daemon, DaemonConfig};
use clap::Parser;
use serde::Deserialize;

const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// berthd: a Docker-compatible container engine daemon.
#[derive(Parser, Debug)]
#[command(name = "berthd", version, about)]
struct Args {
    /// Root of persistent state (images, containers, metadata database).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state (shim sockets, runtime state).
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Address to serve the API on (repeatable), e.g. unix:///run/berth/berth.sock.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Daemon configuration file (JSON; keys as in Docker's daemon.json).
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Log level: debug, info, warn, error.
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// Where to write the daemon's pid.
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Parent cgroup for containers.
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// The berth-shim binary (default: next to berthd).
    #[arg(long)]
    shim_path: Option<PathBuf>,
    /// Interface name of the default bridge (`none` disables it).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and subnet (CIDR), e.g. 172.30.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// A registry (host[:port] or CIDR) reached over plain HTTP (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// A Docker Hub mirror (repeatable).
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// Directory of per-registry certificates: <dir>/<host[:port]>/{*.crt,*.cert,*.key}
    /// [default: /etc/berth/certs.d]
    #[arg(long = "certs-dir")]
    certs_dir: Option<PathBuf>,
    /// Upload blobs larger than this many bytes in chunks (testing).
    #[arg(long = "registry-chunk-size", hide = true)]
    registry_chunk_size: Option<u64>,
    /// Verify TLS for loopback registries and never fall back to HTTP (testing).
    #[arg(long = "registry-verify-loopback", hide = true)]
    registry_verify_loopback: bool,
    /// DNS server for containers and upstream of the embedded DNS (repeatable; `ip` or
    /// `ip:port`).
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Run an init inside every container that does not say otherwise (`--init=false`).
    #[arg(long)]
    init: bool,
    /// The init binary bind-mounted at /sbin/docker-init by `--init` (a static executable)
    /// [default: docker-init or tini-static from PATH].
    #[arg(long = "init-path")]
    init_path: Option<PathBuf>,
    /// Give the default bridge and its containers IPv6 addresses.
    #[arg(long)]
    ipv6: bool,
    /// The default bridge's IPv6 subnet with --ipv6 [default: a ULA /64 derived from the
    /// bridge's name].
    #[arg(long = "fixed-cidr-v6")]
    fixed_cidr_v6: Option<String>,
}

/// The subset of Docker's daemon.json berthd understands.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct FileConfig {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Vec<String>,
    log_level: Option<String>,
    pidfile: Option<PathBuf>,
    cgroup_parent: Option<String>,
    shim_path: Option<PathBuf>,
    log_driver: Option<String>,
    log_opts: std::collections::BTreeMap<String, String>,
    bridge: Option<String>,
    bip: Option<String>,
    insecure_registries: Vec<String>,
    registry_mirrors: Vec<String>,
    certs_dir: Option<PathBuf>,
    dns: Vec<String>,
    init: bool,
    init_path: Option<PathBuf>,
    ipv6: bool,
    fixed_cidr_v6: Option<String>,
}

fn load_file_config(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        let default = Path::new("/etc/berth/daemon.json");
        if default.exists() {
            return load_file_config(Some(default));
        }
        return Ok(FileConfig::default());
    };
    let raw =
        std::fs::read(path).with_context(|| format!("reading config file {}", path.display()))?;
    serde_json::from_slice(&raw).with_context(|| format!("parsing config file {}", path.display()))
}

fn write_pidfile(path: &Path) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            if Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id() as i32 {
                bail!(
                    "pid file found, ensure berthd is not running or delete {}",
                    path.display()
                );
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))
}

fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        // A live daemon on this socket answers; a stale file from a crash does not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another daemon is already serving {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Ok(Some(group)) = nix::unistd::Group::from_name("berth") {
        let _ = nix::unistd::chown(path, None, Some(group.gid));
    }
    Ok(listener)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let file = load_file_config(args.config_file.as_deref())?;
    let level = args
        .log_level
        .clone()
        .or(file.log_level)
        .unwrap_or_else(|| "info".to_string());
    let (filter, filter_handle) = tracing_subscriber::reload::Layer::new(log_filter(&level));
    {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init();
    }
    let reloader = Reloader {
        config_file: args.config_file.clone(),
        flag_log_level: args.log_level.clone(),
        filter: filter_handle,
    };
    let mut hosts = if args.hosts.is_empty() {
        file.hosts
    } else {
        args.hosts
    };
    if hosts.is_empty() {
        hosts.push(DEFAULT_HOST.to_string());
    }
    let shim_path = match args.shim_path.or(file.shim_path) {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating berthd")?
            .parent()
            .map(|d| d.join("berth-shim"))
            .context("locating berth-shim")?,
    };
    // Relative roots are taken from the current directory, as dockerd does: the paths end up in
    // bundles and mount options that are resolved from elsewhere.
    let absolute = |p: PathBuf, what: &str| {
        std::path::absolute(&p).with_context(|| format!("{what} {}", p.display()))
    };
    let cfg = DaemonConfig {
        data_root: absolute(
            args.data_root
                .or(file.data_root)
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
            "--data-root",
        )?,
        exec_root: absolute(
            args.exec_root
                .or(file.exec_root)
                .unwrap_or_else(|| PathBuf::from("/run/berth")),
            "--exec-root",
        )?,
        shim_path,
        cgroup_parent: args
            .cgroup_parent
            .or(file.cgroup_parent)
            .unwrap_or_else(|| "berth".to_string()),
        hosts: hosts.clone(),
        log_config: berth_api_types::container::LogConfig {
            kind: file.log_driver.unwrap_or_default(),
            config: file.log_opts,
        },
        bridge: args
            .bridge
            .or(file.bridge)
            .unwrap_or_else(|| "berth0".to_string()),
        bip: args
            .bip
            .or(file.bip)
            .unwrap_or_else(|| "172.30.0.1/16".to_string()),
        insecure_registries: [args.insecure_registries, file.insecure_registries].concat(),
        registry_mirrors: [args.registry_mirrors, file.registry_mirrors].concat(),
        registry_certs_dir: args
            .certs_dir
            .or(file.certs_dir)
            .unwrap_or_else(|| PathBuf::from("/etc/berth/certs.d")),
        registry_chunk_size: args.registry_chunk_size,
        registry_verify_loopback: args.registry_verify_loopback,
        dns: if args.dns.is_empty() {
            file.dns
        } else {
            args.dns
        },
        init: args.init || file.init,
        init_path: args.init_path.or(file.init_path),
        ipv6: args.ipv6 || file.ipv6,
        fixed_cidr_v6: args.fixed_cidr_v6.or(file.fixed_cidr_v6),
    };
    let pidfile = args
        .pidfile
        .or(file.pidfile)
        .unwrap_or_else(|| cfg.exec_root.join("berthd.pid"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cfg, hosts, pidfile, reloader))
}

fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,axum=warn"))
}

/// What a `SIGHUP` needs to re-read the config file and apply it.
struct Reloader {
    config_file: Option<PathBuf>,
    /// `--log-level` given on the command line wins over the file, as at start.
    flag_log_level: Option<String>,
    filter: tracing_subscriber::reload::Handle<
        tracing_subscriber::EnvFilter,
        tracing_subscriber::Registry,
    >,
}

impl Reloader {
    /// Re-reads the config file and applies its reloadable keys (`log-level`, `log-driver`,
    /// `log-opts`); a file that does not parse, or invalid values, change nothing.
    fn reload(&self, daemon: &Daemon) {
        let file = match load_file_config(self.config_file.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("SIGHUP: not reloading: {e:#}");
                return;
            }
        };
        let level = self
            .flag_log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_string());
        let log_config = berth_api_types::container::LogConfig {
            kind: file.log_driver.unwrap_or_default(),
            config: file.log_opts,
        };
        if let Err(e) = daemon.reload(log_config, &level) {
            tracing::error!("SIGHUP: not reloading: {}", e.message);
            return;
        }
        if let Err(e) = self.filter.reload(log_filter(&level)) {
            tracing::error!("SIGHUP: log level not changed: {e}");
        }
        tracing::info!(level, "SIGHUP: configuration reloaded");
    }
}

async fn run(
    cfg: DaemonConfig,
    hosts: Vec<String>,
    pidfile: PathBuf,
    reloader: Reloader,
) -> Result<()> {
    if !cfg.shim_path.exists() {
        bail!(
            "shim binary {} not found (use --shim-path)",
            cfg.shim_path.display()
        );
    }
    write_pidfile(&pidfile)?;
    let daemon = Daemon::open(cfg.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let backend: Arc<dyn berth_api_server::Backend> =
        Arc::new(berth_daemon::backend::Api(daemon.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for host in &hosts {
        let Some(path) = host.strip_prefix("unix://") else {
            bail!("unsupported host {host:?}: only unix:// sockets are served (tcp needs TLS, not implemented yet)");
        };
        let path = PathBuf::from(path);
        let listener = bind_unix(&path)?;
        sockets.push(path.clone());
        tracing::info!("API listening on {}", path.display());
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        servers.push(tokio::spawn(berth_api_server::serve_unix(
            listener,
            backend.clone(),
            shutdown,
        )));
    }
    tracing::info!(data_root = %cfg.data_root.display(), "berthd started");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down (containers keep running)");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: shutting down (containers keep running)");
                break;
            }
            _ = hup.recv() => reloader.reload(&daemon),
        }
    }
    let _ = stop_tx.send(true);
    for s in servers {
        // Hijacked connections may outlive the graceful shutdown; don't wait on them forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s).await;
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
