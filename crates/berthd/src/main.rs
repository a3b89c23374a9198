//! `berthd`: the daemon. Parses flags, wires the daemon services to the API server (and the
//! CRI, see `cri_adapter`), handles signals.

mod adapter;
mod cri_adapter;
mod idle_memory;
mod remap;
mod rootless;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_daemon::{Daemon, DaemonConfig};
use clap::Parser;
use serde::Deserialize;

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
    /// Address to serve the API on (repeatable): unix:///run/berth/berth.sock, or
    /// tcp://host:port (which needs --tlsverify, --tls, or an explicit --tls=false).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Serve tcp:// hosts over TLS (implied by --tlsverify; --tls=false: plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls: Option<bool>,
    /// Serve tcp:// hosts over TLS and accept only clients with a certificate signed by
    /// --tlscacert.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tlsverify: Option<bool>,
    /// CA certificate clients must be signed by [default: $DOCKER_CERT_PATH/ca.pem or
    /// ~/.docker/ca.pem].
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The server's TLS certificate [default: $DOCKER_CERT_PATH/cert.pem or ~/.docker/cert.pem].
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The server's TLS key [default: $DOCKER_CERT_PATH/key.pem or ~/.docker/key.pem].
    #[arg(long)]
    tlskey: Option<PathBuf>,
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
    /// Storage driver: overlay2 (overlayfs, the default) or vfs (a full copy of the image per
    /// container; slow and large, for filesystems overlayfs cannot use). A rootless daemon
    /// chooses by itself (BERTHD_ROOTLESS_STORAGE).
    #[arg(long = "storage-driver", value_name = "overlay2|vfs")]
    storage_driver: Option<String>,
    /// The berth-shim binary (default: next to berthd).
    #[arg(long)]
    shim_path: Option<PathBuf>,
    /// How many shims wait spawned ahead of need, so a start skips the shim's exec (0: none)
    /// [default: 2].
    #[arg(long = "shim-pool", value_name = "N")]
    shim_pool: Option<usize>,
    /// How many container directories wait made ahead of need (benchmarks) [default: 2].
    #[arg(long = "prepared-dirs", value_name = "N", hide = true)]
    prepared_dirs: Option<usize>,
    /// Interface name of the default bridge (`none` disables it).
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// How many network namespaces wait made ahead of need for containers on bridge networks,
    /// so a start skips making one (0: none) [default: 2].
    #[arg(long = "netns-pool", value_name = "N")]
    netns_pool: Option<usize>,
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
    /// How long a client may take to send a request head (`30s`, `500ms`).
    #[arg(long = "api-header-timeout", hide = true, value_parser = parse_duration)]
    api_header_timeout: Option<Duration>,
    /// How long a keep-alive API connection may sit idle between requests.
    #[arg(long = "api-idle-timeout", hide = true, value_parser = parse_duration)]
    api_idle_timeout: Option<Duration>,
    /// The longest pause in a request body (attach and exec stdin excepted).
    #[arg(long = "api-body-timeout", hide = true, value_parser = parse_duration)]
    api_body_timeout: Option<Duration>,
    /// Open API connections before the idlest is closed [default: from RLIMIT_NOFILE].
    #[arg(long = "api-max-connections", hide = true)]
    api_max_connections: Option<usize>,
    /// Give the default bridge and its containers IPv6 addresses.
    #[arg(long)]
    ipv6: bool,
    /// The default bridge's IPv6 subnet with --ipv6 [default: a ULA /64 derived from the
    /// bridge's name].
    #[arg(long = "fixed-cidr-v6")]
    fixed_cidr_v6: Option<String>,
    /// Turn on the host's IP forwarding (net.ipv4.ip_forward; IPv6 forwarding when an IPv6
    /// network comes up), which containers' outbound traffic needs [default: true].
    #[arg(long = "ip-forward", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ip_forward: Option<bool>,
    /// Allow a build entitlement (repeatable): security.insecure lets builds use
    /// RUN --security=insecure (a privileged step).
    #[arg(long = "allow-insecure-entitlement", value_name = "ENTITLEMENT")]
    allow_insecure_entitlement: Vec<String>,
    /// The Kubernetes CRI socket [default: <exec-root>/cri.sock]; "" turns the CRI off.
    #[arg(long = "cri-socket", value_name = "PATH")]
    cri_socket: Option<String>,
    /// Directory of CNI network configs for pods [default: /etc/cni/net.d].
    #[arg(long = "cni-conf-dir", value_name = "DIR")]
    cni_conf_dir: Option<PathBuf>,
    /// Directories of CNI plugin binaries, colon-separated or repeated
    /// [default: /opt/cni/bin:/usr/lib/cni].
    #[arg(long = "cni-bin-dir", value_name = "DIRS")]
    cni_bin_dir: Vec<String>,
    /// Run every container in a user namespace mapped to a subordinate id range, so that
    /// container root is an unprivileged host uid: `default` (user berthremap, made on
    /// demand) or user[:group] with ranges in /etc/subuid and /etc/subgid.
    #[arg(long = "userns-remap", value_name = "default|USER[:GROUP]")]
    userns_remap: Option<String>,
    /// Turn on the kernel's `favordynmods` cgroup option (Linux 6.0+, on the host's cgroup2
    /// mount), so that container starts and execs do not wait for the cgroup migration lock;
    /// forks and exits cost a little more. Host-wide, and left on when berthd exits.
    #[arg(long = "cgroup-favordynmods")]
    cgroup_favordynmods: bool,
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
    storage_driver: Option<String>,
    shim_path: Option<PathBuf>,
    shim_pool: Option<usize>,
    log_driver: Option<String>,
    log_opts: std::collections::BTreeMap<String, String>,
    bridge: Option<String>,
    netns_pool: Option<usize>,
    bip: Option<String>,
    insecure_registries: Vec<String>,
    registry_mirrors: Vec<String>,
    certs_dir: Option<PathBuf>,
    dns: Vec<String>,
    init: bool,
    init_path: Option<PathBuf>,
    ipv6: bool,
    fixed_cidr_v6: Option<String>,
    ip_forward: Option<bool>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    builder: BuilderFileConfig,
    cri_socket: Option<String>,
    cni_conf_dir: Option<PathBuf>,
    cni_bin_dir: Option<String>,
    userns_remap: Option<String>,
    cgroup_favordynmods: bool,
}

/// `"builder"` in daemon.json: only its entitlements are read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BuilderFileConfig {
    #[serde(alias = "Entitlements")]
    entitlements: EntitlementsFileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct EntitlementsFileConfig {
    security_insecure: Option<bool>,
}

/// Where the API is served.
#[derive(Debug, Clone, PartialEq)]
enum Listen {
    Unix(PathBuf),
    /// `host:port`, resolved when bound.
    Tcp(String),
}

/// Parses a `-H` value as dockerd does: `unix:///path`, `tcp://[host][:port]` (default host
/// 0.0.0.0, default port 2376 with TLS and 2375 without), or `host:port` without a scheme.
fn parse_host(host: &str, tls: bool) -> Result<Listen> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Ok(Listen::Unix(PathBuf::from("/run/berth/berth.sock")));
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    let rest = match host.split_once("://") {
        Some(("tcp", rest)) => rest,
        Some((scheme, _)) => {
            bail!("unsupported host {host:?}: berthd serves unix:// and tcp:// (not {scheme}://)")
        }
        None => host,
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("invalid host {host:?}: a tcp:// host has no path");
    }
    let default_port = if tls { 2376 } else { 2375 };
    // [v6]:port, v6 in brackets alone, host:port, host, :port
    let (name, port) = if let Some(r) = rest.strip_prefix('[') {
        let (name, after) = r
            .split_once(']')
            .with_context(|| format!("invalid host {host:?}"))?;
        (name, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, Some(port)),
            _ => (rest, None),
        }
    };
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .with_context(|| format!("invalid host {host:?}: bad port {p:?}"))?,
        None => default_port,
    };
    let name = if name.is_empty() { "0.0.0.0" } else { name };
    Ok(Listen::Tcp(if name.contains(':') {
        format!("[{name}]:{port}")
    } else {
        format!("{name}:{port}")
    }))
}

/// The TLS files tcp:// hosts are served with, or `None` for plain HTTP, as dockerd decides:
/// `--tlsverify` implies `--tls`; without either, a tcp:// host is refused unless TLS was
/// turned off explicitly (`--tls=false` or `--tlsverify=false`).
fn tls_files(
    tls: Option<bool>,
    verify: Option<bool>,
    files: [Option<PathBuf>; 3],
    tcp_hosts: &[String],
) -> Result<Option<berth_api_server::transport::TlsFiles>> {
    let verify_on = verify == Some(true);
    let tls_on = verify_on || tls == Some(true);
    if !tls_on {
        if !tcp_hosts.is_empty() && tls.is_none() && verify.is_none() {
            bail!(
                "refusing to serve the API on {} without TLS: anyone who can reach it is root on this machine. Use --tlsverify (with --tlscacert, --tlscert, --tlskey), or pass --tls=false to do it anyway",
                tcp_hosts.join(", ")
            );
        }
        return Ok(None);
    }
    let dir = std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"));
    let [ca, cert, key] = files;
    Ok(Some(berth_api_server::transport::TlsFiles {
        cert: cert.unwrap_or_else(|| dir.join("cert.pem")),
        key: key.unwrap_or_else(|| dir.join("key.pem")),
        client_ca: verify_on.then(|| ca.unwrap_or_else(|| dir.join("ca.pem"))),
    }))
}

/// `30s`, `500ms`, `2m` or plain seconds (`30`, `0.5`).
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| format!("invalid duration {s:?} (e.g. 30s, 500ms, 2m)"))
}

/// The API's connection limits: the flags, else the defaults with a connection cap below the
/// soft open-file limit.
fn api_limits(args: &Args) -> berth_api_server::serve::Limits {
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let mut limits = berth_api_server::serve::Limits::for_fd_limit(nofile);
    if let Some(d) = args.api_header_timeout {
        limits.header_read_timeout = d;
    }
    if let Some(d) = args.api_idle_timeout {
        limits.idle_timeout = d;
    }
    if let Some(d) = args.api_body_timeout {
        limits.body_timeout = d;
    }
    if let Some(n) = args.api_max_connections {
        limits.max_connections = n.max(1);
    }
    limits
}

/// The config file `path`, else `default` when it exists (`/etc/berth/daemon.json`, or the
/// user's for a rootless daemon).
fn load_file_config(path: Option<&Path>, default: &Path) -> Result<FileConfig> {
    let Some(path) = path else {
        if default.exists() {
            return load_file_config(Some(default), default);
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
    match std::fs::write(path, format!("{}", std::process::id())) {
        // A daemon must come back on a full disk (to let the user free it): the pid file is
        // a convenience, the socket check guards against a second daemon.
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
            let _ = std::fs::remove_file(path);
            tracing::warn!("pid file {} not written: {e}", path.display());
            Ok(())
        }
        res => res.with_context(|| format!("writing {}", path.display())),
    }
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
    // Before anything could start a thread: the inner half of a rootless daemon unshares a
    // user namespace, which the kernel refuses to a multi-threaded process.
    let mode = rootless::Mode::detect();
    let defaults = if mode.rootless() {
        rootless::paths::Defaults::user(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?
    } else {
        rootless::paths::Defaults::system()
    };
    let limits = api_limits(&args);
    let file = load_file_config(args.config_file.as_deref(), &defaults.config_file)?;
    let exec_root_choice = args
        .exec_root
        .clone()
        .or(file.exec_root.clone())
        .unwrap_or_else(|| defaults.exec_root.clone());
    match &mode {
        rootless::Mode::Root => {}
        rootless::Mode::Parent => {
            let code = rootless::parent::run(&std::path::absolute(&exec_root_choice)?)?;
            #[allow(clippy::exit)]
            std::process::exit(code);
        }
        rootless::Mode::Child(pipes) => {
            rootless::child::enter(pipes, &std::path::absolute(&exec_root_choice)?)?
        }
    }
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
        cri: cri_adapter::CriOptions::resolve(Some(String::new()), Path::new("/"), None, vec![]),
        config_file: args.config_file.clone(),
        default_config_file: defaults.config_file.clone(),
        flag_log_level: args.log_level.clone(),
        filter: filter_handle,
    };
    let mut hosts = if args.hosts.is_empty() {
        file.hosts
    } else {
        args.hosts
    };
    if hosts.is_empty() {
        hosts.push(defaults.host.clone());
    }
    let tls_flag = args.tls.or(file.tls);
    let verify_flag = args.tlsverify.or(file.tlsverify);
    let tls_wanted = tls_flag == Some(true) || verify_flag == Some(true);
    let listens = hosts
        .iter()
        .map(|h| parse_host(h, tls_wanted))
        .collect::<Result<Vec<_>>>()?;
    let tcp_hosts: Vec<String> = hosts
        .iter()
        .zip(&listens)
        .filter(|(_, l)| matches!(l, Listen::Tcp(_)))
        .map(|(h, _)| h.clone())
        .collect();
    let tls = tls_files(
        tls_flag,
        verify_flag,
        [
            args.tlscacert.or(file.tlscacert),
            args.tlscert.or(file.tlscert),
            args.tlskey.or(file.tlskey),
        ],
        &tcp_hosts,
    )?;
    // Loaded now so that a bad file stops the daemon before it starts anything.
    let tls = match (&tls, tcp_hosts.is_empty()) {
        (Some(files), false) => {
            Some(berth_api_server::transport::tls_config(files).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
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
                .unwrap_or_else(|| defaults.data_root.clone()),
            "--data-root",
        )?,
        exec_root: absolute(exec_root_choice, "--exec-root")?,
        shim_path,
        shim_pool: args.shim_pool.or(file.shim_pool).unwrap_or(2),
        prepared_dirs: args.prepared_dirs.unwrap_or(2),
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
        netns_pool: args.netns_pool.or(file.netns_pool).unwrap_or(2),
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
        ip_forward: args.ip_forward.or(file.ip_forward).unwrap_or(true),
        builder_insecure: args
            .allow_insecure_entitlement
            .iter()
            .any(|e| e == "security.insecure")
            || file.builder.entitlements.security_insecure == Some(true),
        rootless: None,
        userns_remap: None,
        userns_remap_copy: false,
    };
    let cfg = DaemonConfig {
        rootless: mode
            .rootless()
            .then(|| rootless::daemon_config(&cfg.exec_root)),
        ..cfg
    };
    let storage_driver = args.storage_driver.or(file.storage_driver);
    match (storage_driver.as_deref(), cfg.rootless.is_some()) {
        (None, true) => rootless::storage::choose(&cfg.data_root)?,
        (None | Some("overlay2" | "overlay"), false) => {}
        (Some("vfs"), false) => berth_image::overlay::use_copies(),
        (Some(_), true) => {
            bail!("--storage-driver is not supported in rootless mode: use BERTHD_ROOTLESS_STORAGE=overlay|fuse-overlayfs|vfs")
        }
        (Some(other), false) => {
            bail!("unsupported --storage-driver {other:?}: use overlay2 or vfs")
        }
    }
    let remap_value = args
        .userns_remap
        .or(file.userns_remap)
        .filter(|v| !v.is_empty());
    let cfg = match remap_value {
        Some(_) if cfg.rootless.is_some() => {
            bail!("--userns-remap is not supported in rootless mode")
        }
        Some(v) => {
            let map = remap::resolve(&v, Path::new("/etc/subuid"), Path::new("/etc/subgid"))?;
            // As dockerd: the remapped daemon's data is `<data-root>/<uid>.<gid>`.
            let data_root = berth_daemon::userns_remap::remapped_data_root(&cfg.data_root, &map)
                .with_context(|| {
                    format!("creating the remapped root in {}", cfg.data_root.display())
                })?;
            berth_daemon::userns_remap::check_path_access(&data_root, &map)
                .map_err(anyhow::Error::msg)?;
            DaemonConfig {
                data_root,
                userns_remap: Some(map),
                // Copies instead of idmapped mounts, for tests of that path on any kernel.
                userns_remap_copy: std::env::var_os("BERTHD_USERNS_REMAP_COPY")
                    .is_some_and(|v| v == "1"),
                ..cfg
            }
        }
        None => cfg,
    };
    for e in &args.allow_insecure_entitlement {
        if !matches!(e.as_str(), "security.insecure" | "network.host") {
            anyhow::bail!("invalid entitlement {e:?}: use security.insecure or network.host");
        }
    }
    let pidfile = args
        .pidfile
        .or(file.pidfile)
        .unwrap_or_else(|| cfg.exec_root.join("berthd.pid"));
    // As dockerd: `DOCKER_MIN_API_VERSION` raises the oldest API version served; a bad value
    // stops the daemon before it listens.
    let versions = berth_api_server::Versions::from_env().map_err(anyhow::Error::msg)?;
    let cri = cri_adapter::CriOptions::resolve(
        args.cri_socket.or(file.cri_socket),
        &cfg.exec_root,
        args.cni_conf_dir.or(file.cni_conf_dir),
        if args.cni_bin_dir.is_empty() {
            file.cni_bin_dir.into_iter().collect()
        } else {
            args.cni_bin_dir
        },
    );
    let reloader = Reloader { cri, ..reloader };
    if args.cgroup_favordynmods || file.cgroup_favordynmods {
        set_favordynmods(cfg.rootless.is_some());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cfg, listens, tls, versions, limits, pidfile, reloader))
}

/// `--cgroup-favordynmods`: a host that cannot take it is told why and served anyway.
fn set_favordynmods(rootless: bool) {
    use berth_daemon::cgroup_lock::{enable_favordynmods, Favordynmods};
    if rootless {
        tracing::warn!("--cgroup-favordynmods is not available to a rootless daemon: ignored");
        return;
    }
    match enable_favordynmods() {
        Ok(Favordynmods::AlreadyOn) => tracing::info!("cgroup favordynmods: already on"),
        Ok(Favordynmods::Enabled(point)) => {
            tracing::info!("cgroup favordynmods: turned on ({})", point.display())
        }
        Err(e) => tracing::warn!("cgroup favordynmods not turned on: {e}"),
    }
}

fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,axum=warn"))
}

/// What a `SIGHUP` needs to re-read the config file and apply it.
struct Reloader {
    /// Not reloadable: where the CRI is served, read once at start (it rides along here to
    /// keep `run`'s arguments few).
    cri: cri_adapter::CriOptions,
    config_file: Option<PathBuf>,
    default_config_file: PathBuf,
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
        let file = match load_file_config(self.config_file.as_deref(), &self.default_config_file) {
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
    listens: Vec<Listen>,
    tls: Option<Arc<rustls::ServerConfig>>,
    versions: berth_api_server::Versions,
    limits: berth_api_server::serve::Limits,
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
    let _forward = match &cfg.rootless {
        Some(_) => Some(rootless::ports::serve_forward(
            &cfg.exec_root
                .join("rootless")
                .join(rootless::ports::FORWARD_SOCKET),
        )?),
        None => None,
    };
    let daemon = Daemon::open(cfg.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let backend: Arc<dyn berth_api_server::Backend> = Arc::new(adapter::Api(daemon.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cri = {
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        cri_adapter::start(daemon.clone(), reloader.cri.clone(), shutdown).await?
    };
    let idle_memory = idle_memory::spawn();
    tracing::debug!(?limits, "API connection limits");
    let conns = berth_api_server::serve::Connections::new(limits);
    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for listen in listens {
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        match listen {
            Listen::Unix(path) => {
                let listener = bind_unix(&path)?;
                sockets.push(path.clone());
                tracing::info!("API listening on {}", path.display());
                servers.push(tokio::spawn(berth_api_server::serve_unix(
                    listener,
                    backend.clone(),
                    versions,
                    conns.clone(),
                    shutdown,
                )));
            }
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("listening on tcp://{addr}"))?;
                let local = listener.local_addr()?;
                if tls.is_some() {
                    tracing::info!("API listening on tcp://{local} (TLS)");
                } else {
                    tracing::warn!("API listening on tcp://{local} without TLS: anyone who can reach it is root on this machine");
                }
                servers.push(tokio::spawn(berth_api_server::transport::serve_tcp(
                    listener,
                    tls.clone(),
                    backend.clone(),
                    versions,
                    conns.clone(),
                    shutdown,
                )));
            }
        }
    }
    tracing::info!(
        data_root = %cfg.data_root.display(),
        api_versions = %format!("{}-{}", versions.min, versions.max),
        "berthd started"
    );
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
    idle_memory.abort();
    daemon.shutdown();
    if let Some(cri) = cri {
        cri.stop();
        let _ = tokio::time::timeout(Duration::from_secs(2), cri.server).await;
        let _ = std::fs::remove_file(&cri.socket);
    }
    for s in servers {
        // Hijacked connections may outlive the graceful shutdown; don't wait on them forever.
        let _ = tokio::time::timeout(Duration::from_secs(2), s).await;
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_dockerd_parses_them() {
        let tcp = |s: &str| Listen::Tcp(s.to_string());
        assert_eq!(
            parse_host("unix:///x/y.sock", false).unwrap(),
            Listen::Unix("/x/y.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2000", false).unwrap(),
            tcp("127.0.0.1:2000")
        );
        assert_eq!(
            parse_host("tcp://:2000", false).unwrap(),
            tcp("0.0.0.0:2000")
        );
        assert_eq!(parse_host("tcp://", false).unwrap(), tcp("0.0.0.0:2375"));
        assert_eq!(
            parse_host("tcp://10.0.0.1", true).unwrap(),
            tcp("10.0.0.1:2376")
        );
        assert_eq!(
            parse_host("localhost:7", false).unwrap(),
            tcp("localhost:7")
        );
        assert_eq!(parse_host("tcp://[::1]:9", false).unwrap(), tcp("[::1]:9"));
        assert_eq!(parse_host("tcp://[::1]", false).unwrap(), tcp("[::1]:2375"));
        assert!(parse_host("fd://", false).is_err());
        assert!(parse_host("tcp://h:port", false).is_err());
        assert!(parse_host("tcp://h:1/path", false).is_err());
    }

    #[test]
    fn ip_forward_is_a_flag_with_an_optional_value_and_a_config_key() {
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("berthd").chain(args.iter().copied()))
                .unwrap()
                .ip_forward
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--ip-forward"]), Some(true));
        assert_eq!(parse(&["--ip-forward=false"]), Some(false));
        let file: FileConfig = serde_json::from_str(r#"{"ip-forward": false}"#).unwrap();
        assert_eq!(file.ip_forward, Some(false));
    }

    #[test]
    fn cgroup_favordynmods_is_a_flag_and_a_config_key() {
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("berthd").chain(args.iter().copied()))
                .unwrap()
                .cgroup_favordynmods
        };
        assert!(!parse(&[]));
        assert!(parse(&["--cgroup-favordynmods"]));
        let file: FileConfig = serde_json::from_str(r#"{"cgroup-favordynmods": true}"#).unwrap();
        assert!(file.cgroup_favordynmods);
    }

    #[test]
    fn tls_follows_dockerds_rules() {
        let files = || [None, None, None];
        let tcp = vec!["tcp://:2375".to_string()];
        // TCP without a word about TLS is refused; an explicit no is accepted.
        assert!(tls_files(None, None, files(), &tcp).is_err());
        assert!(tls_files(Some(false), None, files(), &tcp)
            .unwrap()
            .is_none());
        assert!(tls_files(None, Some(false), files(), &tcp)
            .unwrap()
            .is_none());
        assert!(tls_files(None, None, files(), &[]).unwrap().is_none());
        // --tls: no client verification; --tlsverify: the CA, also over --tls=false.
        let t = tls_files(Some(true), None, files(), &tcp).unwrap().unwrap();
        assert!(t.client_ca.is_none());
        let t = tls_files(
            Some(false),
            Some(true),
            [Some("/c/ca.pem".into()), Some("/c/s.pem".into()), None],
            &tcp,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.client_ca, Some(PathBuf::from("/c/ca.pem")));
        assert_eq!(t.cert, PathBuf::from("/c/s.pem"));
        assert!(t.key.ends_with("key.pem"));
    }
}
