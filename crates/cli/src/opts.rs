//! `create`/`run` flags and their translation into the Engine API create body, the way the
//! docker CLI builds it (same keys as the docker 28 fixture: `Config` fields at the top level plus
//! `HostConfig` and `NetworkingConfig`).

use std::collections::BTreeMap;

use clap::Args;
use serde_json::{json, Map, Value};

/// Flags shared by `create` and `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int")]
    pub stop_timeout: Option<i64>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes")]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    #[command(flatten)]
    pub limits: crate::commands::resources::LimitOpts,
    #[command(flatten)]
    pub health: crate::commands::resources::HealthOpts,
    /// Container MAC address
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub pull: String,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
}

/// Where the options' local inputs come from (environment, files); faked in tests.
pub trait Local {
    fn env(&self, key: &str) -> Option<String>;
    fn read_file(&self, path: &str) -> std::io::Result<String>;
}

/// The real process environment and filesystem.
pub struct RealLocal;

impl Local for RealLocal {
    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn read_file(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// A flag value the daemon would reject before any request is made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct OptsError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, OptsError> {
    Err(OptsError(msg.into()))
}

/// `-e FOO=bar` as is; `-e FOO` takes FOO from the local environment, or stays `FOO` when unset
/// (the daemon then leaves it out), as docker's `ValidateEnv`.
pub fn expand_env(item: &str, local: &dyn Local) -> Result<String, OptsError> {
    let (key, has_value) = match item.split_once('=') {
        Some((k, _)) => (k, true),
        None => (item, false),
    };
    if key.is_empty() {
        return bad(format!("invalid environment variable: {item}"));
    }
    if has_value {
        return Ok(item.to_string());
    }
    Ok(match local.env(key) {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    })
}

/// Lines of an env file: blank lines and `#` comments skipped, `KEY` lines filled from the local
/// environment. Leading whitespace is dropped from keys, as docker does.
pub fn parse_env_file(
    content: &str,
    local: &dyn Local,
    for_env: bool,
) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    for line in content.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if for_env {
            if let Some((k, v)) = line.split_once('=') {
                if k.contains(char::is_whitespace) {
                    return bad(format!("variable '{k}' contains whitespaces"));
                }
                out.push(format!("{k}={v}"));
            } else {
                out.push(expand_env(line.trim_end(), local)?);
            }
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Parses sizes like `64m`, `1g`, `512k`, `100` (binary units, as docker's `RAMInBytes`).
pub fn parse_bytes(s: &str) -> Result<i64, OptsError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && r.ends_with(|c: char| c.is_alphabetic()))
        .unwrap_or(&t)
        .to_string();
    let t = t.strip_suffix("ib").map(|r| r.to_string()).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (&t[..], 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| OptsError(format!("invalid size: '{s}'")))?;
    if n < 0.0 {
        return bad(format!("invalid size: '{s}'"));
    }
    Ok((n * mult as f64) as i64)
}

/// `nofile=1024:2048` or `nofile=1024` → `{"Name","Soft","Hard"}`.
pub fn parse_ulimit(s: &str) -> Result<Value, OptsError> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| OptsError(format!("invalid ulimit argument: {s}")))?;
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| OptsError(format!("invalid ulimit argument: {s}")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (`port/proto`, binding).
pub fn parse_publish(s: &str) -> Result<(String, Value), OptsError> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (s, "tcp"),
    };
    // An IPv6 host IP is written in brackets: [::1]:80:80
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r
            .split_once(']')
            .ok_or_else(|| OptsError(format!("invalid publish spec: {s}")))?;
        (ip.to_string(), rest.trim_start_matches(':').to_string())
    } else {
        (String::new(), spec.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host_port, container_port) = match parts.as_slice() {
        [c] => (ip, "", *c),
        [h, c] => (ip, *h, *c),
        [i, h, c] => (i.to_string(), *h, *c),
        _ => return bad(format!("invalid publish spec: {s}")),
    };
    if container_port.is_empty() || container_port.split('-').any(|p| p.parse::<u16>().is_err()) {
        return bad(format!("invalid containerPort: {container_port}"));
    }
    Ok((
        format!("{container_port}/{proto}"),
        json!({"HostIp": ip, "HostPort": host_port}),
    ))
}

/// `--security-opt`: `seccomp=<file>` is replaced by the file's compacted JSON, as docker does;
/// `key:value` is accepted as the legacy spelling of `key=value`.
pub fn parse_security_opt(s: &str, local: &dyn Local) -> Result<String, OptsError> {
    if s == "no-new-privileges" {
        return Ok(s.to_string());
    }
    let (k, v) = match s.split_once('=') {
        Some(kv) => kv,
        None => match s.split_once(':') {
            Some(kv) => kv,
            None => return bad(format!("Invalid --security-opt: {s:?}")),
        },
    };
    if k == "seccomp" && v != "unconfined" && v != "builtin" {
        let content = local
            .read_file(v)
            .map_err(|e| OptsError(format!("opening seccomp profile ({v}) failed: {e}")))?;
        let parsed: Value = serde_json::from_str(&content).map_err(|e| {
            OptsError(format!(
                "compacting json for seccomp profile ({v}) failed: {e}"
            ))
        })?;
        return Ok(format!(
            "seccomp={}",
            serde_json::to_string(&parsed).unwrap_or_default()
        ));
    }
    Ok(format!("{k}={v}"))
}

fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    m
}

fn list_or_null(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// What `run`/`create` send, plus the bits the command flow needs.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub body: Value,
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// Builds the `POST /containers/create` body. `detach` is `run -d`; `is_run` distinguishes
/// `run` (stdin is attached once, `StdinOnce`) from `create`. `console` is the local terminal
/// size as (rows, cols) when `-t` is used on a terminal.
pub fn build_create(
    o: &ContainerOpts,
    image: &str,
    cmd: &[String],
    detach: bool,
    is_run: bool,
    console: (u16, u16),
    local: &dyn Local,
) -> Result<CreateRequest, OptsError> {
    // Attach streams: -a picks them; default stdout+stderr (and stdin with -i); none with -d.
    let mut attach_stdin = o.interactive;
    let mut attach_stdout = true;
    let mut attach_stderr = true;
    if !o.attach.is_empty() {
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
        for a in &o.attach {
            match a.to_ascii_lowercase().as_str() {
                "stdin" => attach_stdin = true,
                "stdout" => attach_stdout = true,
                "stderr" => attach_stderr = true,
                other => return bad(format!("invalid argument \"{other}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")),
            }
        }
        if detach {
            return bad("conflicting options: cannot specify both --attach and --detach");
        }
    }
    if detach {
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
    }

    let mut env = Vec::new();
    for f in &o.env_file {
        let content = local
            .read_file(f)
            .map_err(|e| OptsError(format!("open {f}: {e}")))?;
        env.extend(parse_env_file(&content, local, true)?);
    }
    for e in &o.env {
        env.push(expand_env(e, local)?);
    }

    let mut labels = Vec::new();
    for f in &o.label_file {
        let content = local
            .read_file(f)
            .map_err(|e| OptsError(format!("open {f}: {e}")))?;
        labels.extend(parse_env_file(&content, local, false)?);
    }
    labels.extend(o.label.iter().cloned());

    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => json!([""]),
        Some(e) => json!([e]),
        None => Value::Null,
    };
    let cmd = if cmd.is_empty() {
        Value::Null
    } else {
        json!(cmd)
    };

    let mut exposed = Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &o.publish {
        let (port, binding) = parse_publish(p)?;
        exposed.insert(port.clone(), json!({}));
        bindings.entry(port).or_default().push(binding);
    }
    for e in &o.expose {
        let port = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(port, json!({}));
    }

    let mut volumes = Map::new();
    let mut binds = Vec::new();
    for v in &o.volume {
        // A lone absolute path is an anonymous volume; anything with a source is a bind/named.
        if v.starts_with('/') && !v.contains(':') {
            volumes.insert(v.clone(), json!({}));
        } else {
            binds.push(v.clone());
        }
    }

    let mut security = Vec::new();
    for s in &o.security_opt {
        security.push(parse_security_opt(s, local)?);
    }
    let mut ulimits = Vec::new();
    for u in &o.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    let mut tmpfs = Map::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), Value::String(opts.to_string()));
    }
    let mut devices = Vec::new();
    for d in &o.device {
        let parts: Vec<&str> = d.split(':').collect();
        let (host, cont, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, c] if c.starts_with('/') => (*h, *c, "rwm"),
            [h, p] => (*h, *h, *p),
            [h, c, p] => (*h, *c, *p),
            _ => return bad(format!("invalid device specification: {d}")),
        };
        devices
            .push(json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms}));
    }
    let restart = match o.restart.as_deref() {
        None | Some("") => json!({"Name": "no", "MaximumRetryCount": 0}),
        Some(r) => {
            let (name, count) = r.split_once(':').unwrap_or((r, "0"));
            let count: i64 = count
                .parse()
                .map_err(|_| OptsError(format!("invalid restart policy: {r}")))?;
            if ![
                "no",
                "always",
                "unless-stopped",
                "on-failure",
                "on-unhealthy",
            ]
            .contains(&name)
            {
                return bad(format!("invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"));
            }
            if o.rm && name != "no" {
                return bad("conflicting options: cannot specify both --restart and --rm");
            }
            json!({"Name": name, "MaximumRetryCount": count})
        }
    };
    let extra_hosts: Vec<String> = o
        .add_host
        .iter()
        .map(|h| match h.split_once('=') {
            Some((host, ip)) if !h.contains(':') || h.find('=') < h.find(':') => {
                format!("{host}:{ip}")
            }
            _ => h.clone(),
        })
        .collect();

    let memory = o
        .memory
        .as_deref()
        .map(parse_bytes)
        .transpose()?
        .unwrap_or(0);
    let memory_swap = match o.memory_swap.as_deref() {
        Some("-1") => -1,
        Some(s) => parse_bytes(s)?,
        None => 0,
    };
    let shm = o
        .shm_size
        .as_deref()
        .map(parse_bytes)
        .transpose()?
        .unwrap_or(0);
    let nano_cpus = o.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0);

    let network = o.network.clone().unwrap_or_else(|| "bridge".to_string());
    let mut endpoints = Map::new();
    let builtin = ["bridge", "host", "none", "default"].contains(&network.as_str())
        || network.starts_with("container:");
    let fixed_ip = o.ip.is_some() || o.ip6.is_some();
    if (o.network.is_some() && (!builtin || !o.network_alias.is_empty())) || fixed_ip {
        let mut ep = json!({"Aliases": list_or_null(&o.network_alias)});
        if fixed_ip {
            ep["IPAMConfig"] = json!({
                "IPv4Address": o.ip.clone().unwrap_or_default(),
                "IPv6Address": o.ip6.clone().unwrap_or_default(),
            });
        }
        endpoints.insert(network.clone(), ep);
    }

    let mut host_config = json!({
        "Binds": list_or_null(&binds),
        "ContainerIDFile": "",
        "LogConfig": {"Type": o.log_driver.clone().unwrap_or_default(), "Config": kv_map(&o.log_opt)},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": o.rm,
        "VolumeDriver": "",
        "VolumesFrom": list_or_null(&o.volumes_from),
        "ConsoleSize": [console.0, console.1],
        "CapAdd": list_or_null(&o.cap_add),
        "CapDrop": list_or_null(&o.cap_drop),
        "CgroupnsMode": o.cgroupns.clone().unwrap_or_default(),
        "Dns": o.dns,
        "DnsOptions": o.dns_option,
        "DnsSearch": o.dns_search,
        "ExtraHosts": list_or_null(&extra_hosts),
        "GroupAdd": list_or_null(&o.group_add),
        "IpcMode": o.ipc.clone().unwrap_or_default(),
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": o.oom_score_adj.unwrap_or(0),
        "PidMode": o.pid.clone().unwrap_or_default(),
        "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": list_or_null(&security),
        "UTSMode": o.uts.clone().unwrap_or_default(),
        "UsernsMode": "",
        "ShmSize": shm,
        "Isolation": "",
        "CpuShares": o.cpu_shares.unwrap_or(0),
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": devices,
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "MemoryReservation": 0,
        "MemorySwap": memory_swap,
        "MemorySwappiness": -1,
        "OomKillDisable": false,
        "PidsLimit": o.pids_limit.unwrap_or(0),
        "Ulimits": ulimits,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": null,
        "ReadonlyPaths": null,
    });
    let hc = host_config
        .as_object_mut()
        .expect("host config is an object literal");
    crate::commands::resources::apply_limits(&o.limits, hc)?;
    if o.init {
        hc.insert("Init".into(), json!(true));
    }
    if !o.sysctl.is_empty() {
        hc.insert("Sysctls".into(), Value::Object(kv_map(&o.sysctl)));
    }
    if !tmpfs.is_empty() {
        hc.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    if !o.mount.is_empty() {
        let mounts = o
            .mount
            .iter()
            .map(|m| crate::commands::volume::parse_mount_flag(m))
            .collect::<Result<Vec<_>, _>>()?;
        hc.insert("Mounts".into(), Value::Array(mounts));
    }
    if let Some(r) = &o.runtime {
        hc.insert("Runtime".into(), json!(r));
    }

    let mut body = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "Domainname": o.domainname.clone().unwrap_or_default(),
        "User": o.user.clone().unwrap_or_default(),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": is_run && o.interactive && attach_stdin,
        "Env": env,
        "Cmd": cmd,
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": o.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "OnBuild": null,
        "Labels": kv_map(&labels),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    let b = body.as_object_mut().expect("body is an object literal");
    if !exposed.is_empty() {
        b.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if let Some(s) = &o.stop_signal {
        b.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = o.stop_timeout {
        b.insert("StopTimeout".into(), json!(t));
    }
    if let Some(m) = &o.mac_address {
        b.insert("MacAddress".into(), json!(m));
    }
    crate::commands::resources::apply_health(&o.health, b)?;
    Ok(CreateRequest {
        body,
        name: o.name.clone(),
        platform: o.platform.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
        #[arg(short = 'd')]
        detach: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    }

    #[derive(Default)]
    struct Fake {
        env: HashMap<String, String>,
        files: HashMap<String, String>,
    }

    impl Local for Fake {
        fn env(&self, key: &str) -> Option<String> {
            self.env.get(key).cloned()
        }
        fn read_file(&self, path: &str) -> std::io::Result<String> {
            self.files.get(path).cloned().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory")
            })
        }
    }

    fn fake() -> Fake {
        let mut f = Fake::default();
        f.env.insert("FROMHOST".into(), "hostval".into());
        f.files.insert(
            "/env.list".into(),
            "# comment\n\nA=1\nFROMHOST\nUNSET\n  B=two words\n".into(),
        );
        f.files.insert(
            "/sec.json".into(),
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n".into(),
        );
        f
    }

    fn build(args: &[&str]) -> Value {
        let mut argv = vec!["run"];
        argv.extend_from_slice(args);
        let t = T::try_parse_from(argv).unwrap();
        build_create(
            &t.o,
            &t.args[0],
            &t.args[1..],
            t.detach,
            true,
            (0, 0),
            &fake(),
        )
        .unwrap()
        .body
    }

    #[test]
    fn fixture_shape() {
        let b = build(&[
            "-i",
            "-t",
            "-h",
            "h1",
            "-e",
            "A=b",
            "-l",
            "k=v",
            "-p",
            "8080:80",
            "-v",
            "/tmp:/data:ro",
            "-m",
            "64m",
            "--restart",
            "unless-stopped",
            "--entrypoint",
            "/bin/sh",
            "nginx:alpine",
            "-c",
            "echo hi",
        ]);
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../../shared/spec/fixtures/docker-cli-28.2.2-create-body.json"
        ))
        .unwrap();
        assert_eq!(b, fixture);
    }

    #[test]
    fn defaults() {
        let b = build(&["busybox"]);
        assert_eq!(b["Cmd"], Value::Null);
        assert_eq!(b["Entrypoint"], Value::Null);
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["StdinOnce"], false);
        assert_eq!(b["HostConfig"]["NetworkMode"], "bridge");
        assert_eq!(b["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(b["HostConfig"]["AutoRemove"], false);
        assert!(b.get("ExposedPorts").is_none());
        assert!(b["HostConfig"].get("Init").is_none());
        assert_eq!(b["Labels"], json!({}));
        assert_eq!(b["Env"], json!([]));
    }

    #[test]
    fn command_after_image_keeps_its_flags() {
        let b = build(&["--rm", "busybox", "ls", "-d", "-l", "--rm"]);
        assert_eq!(b["Cmd"], json!(["ls", "-d", "-l", "--rm"]));
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
    }

    #[test]
    fn detach_clears_attach() {
        let b = build(&["-d", "-i", "busybox"]);
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], false);
    }

    #[test]
    fn entrypoint_empty_is_array_with_empty_string() {
        let b = build(&["--entrypoint", "", "busybox", "echo"]);
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Cmd"], json!(["echo"]));
    }

    #[test]
    fn env_semantics() {
        let b = build(&[
            "--env-file",
            "/env.list",
            "-e",
            "X=1",
            "-e",
            "FROMHOST",
            "-e",
            "NOPE",
            "busybox",
        ]);
        assert_eq!(
            b["Env"],
            json!([
                "A=1",
                "FROMHOST=hostval",
                "UNSET",
                "B=two words",
                "X=1",
                "FROMHOST=hostval",
                "NOPE"
            ])
        );
    }

    #[test]
    fn security_caps_limits_logs_network() {
        let b = build(&[
            "--cap-add",
            "ALL",
            "--cap-drop",
            "NET_RAW",
            "--security-opt",
            "seccomp=/sec.json",
            "--security-opt",
            "no-new-privileges",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=10",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--network",
            "none",
            "--privileged",
            "--read-only",
            "--init",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "3",
            "--add-host",
            "db:10.0.0.1",
            "--add-host",
            "x=1.2.3.4",
            "--dns",
            "8.8.8.8",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "busybox",
        ]);
        let hc = &b["HostConfig"];
        assert_eq!(hc["CapAdd"], json!(["ALL"]));
        assert_eq!(hc["CapDrop"], json!(["NET_RAW"]));
        assert_eq!(
            hc["SecurityOpt"],
            json!([
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
                "no-new-privileges"
            ])
        );
        assert_eq!(
            hc["Ulimits"],
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 10, "Hard": 10}])
        );
        assert_eq!(
            hc["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-size": "1m"}})
        );
        assert_eq!(hc["NetworkMode"], "none");
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
        assert_eq!(hc["Privileged"], true);
        assert_eq!(hc["ReadonlyRootfs"], true);
        assert_eq!(hc["Init"], true);
        assert_eq!(b["StopSignal"], "SIGINT");
        assert_eq!(b["StopTimeout"], 3);
        assert_eq!(hc["ExtraHosts"], json!(["db:10.0.0.1", "x:1.2.3.4"]));
        assert_eq!(hc["Dns"], json!(["8.8.8.8"]));
        assert_eq!(hc["DnsSearch"], json!(["example.com"]));
        assert_eq!(hc["DnsOptions"], json!(["ndots:2"]));
        assert_eq!(hc["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
        assert_eq!(b["User"], "1000:1000");
        assert_eq!(b["WorkingDir"], "/tmp");
    }

    #[test]
    fn user_network_gets_endpoint() {
        let b = build(&["--network", "mynet", "busybox"]);
        assert_eq!(b["HostConfig"]["NetworkMode"], "mynet");
        assert!(b["NetworkingConfig"]["EndpointsConfig"]["mynet"].is_object());
    }

    #[test]
    fn bad_values() {
        let t = T::try_parse_from(["run", "--security-opt", "seccomp=/missing.json", "busybox"])
            .unwrap();
        let e = build_create(&t.o, "busybox", &[], false, true, (0, 0), &fake()).unwrap_err();
        assert!(
            e.0.contains("opening seccomp profile (/missing.json) failed"),
            "{e}"
        );
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_publish("80:abc").is_err());
    }

    #[test]
    fn publish_specs() {
        assert_eq!(
            parse_publish("80").unwrap(),
            ("80/tcp".into(), json!({"HostIp": "", "HostPort": ""}))
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            (
                "80/udp".into(),
                json!({"HostIp": "127.0.0.1", "HostPort": "8080"})
            )
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            (
                "80/tcp".into(),
                json!({"HostIp": "::1", "HostPort": "8080"})
            )
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 67108864);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("1.5GB").unwrap(), 1610612736);
        assert!(parse_bytes("abc").is_err());
    }
}
