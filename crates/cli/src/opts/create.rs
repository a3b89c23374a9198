//! The `POST /containers/create` body from the `create`/`run` flags, the way the docker CLI
//! builds it (same keys as the docker 28 fixture: `Config` fields at the top level plus
//! `HostConfig` and `NetworkingConfig`).

use std::collections::BTreeMap;

use berth_api_types::container::{
    self, Config, DeviceMapping, EndpointSettings, HostConfig, LogConfig, NetworkingConfig,
    PortBinding, RestartPolicy,
};
use serde_json::{json, Map, Value};

use super::values::bad;
use super::{
    expand_env, parse_bytes, parse_env_file, parse_publish, parse_security_opt, parse_ulimit,
    ContainerOpts, Local, OptsError,
};

fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_string(), v.to_string());
    }
    m
}

fn list_or_null(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// What `run`/`create` send, plus the bits the command flow needs.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub body: container::CreateRequest,
    pub name: Option<String>,
    pub platform: Option<String>,
}

impl CreateRequest {
    /// The body as the docker CLI writes it: the typed request less what Go's `omitempty`
    /// leaves out (the api-types write every field, as inspect needs).
    pub fn wire(&self) -> Value {
        let mut body = serde_json::to_value(&self.body).unwrap_or_default();
        omit_nil(&mut body, &["Healthcheck", "StopTimeout"]);
        omit_empty(
            &mut body,
            &[
                "ExposedPorts",
                "ArgsEscaped",
                "NetworkDisabled",
                "MacAddress",
                "StopSignal",
                "Shell",
            ],
        );
        if let Some(h) = body.get_mut("Healthcheck") {
            let fields = [
                "Test",
                "Interval",
                "Timeout",
                "StartPeriod",
                "StartInterval",
                "Retries",
            ];
            omit_empty(h, &fields);
        }
        if let Some(hc) = body.get_mut("HostConfig") {
            omit_nil(hc, &["Init"]);
            let fields = [
                "Annotations",
                "Mounts",
                "StorageOpt",
                "Tmpfs",
                "Sysctls",
                "Runtime",
            ];
            omit_empty(hc, &fields);
        }
        body
    }
}

/// Drops `keys` of `v` that are null (Go's `omitempty` on a pointer).
fn omit_nil(v: &mut Value, keys: &[&str]) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, v| !(v.is_null() && keys.contains(&k.as_str())));
    }
}

/// Drops `keys` of `v` that hold Go's empty value (`omitempty` on a value, slice or map).
fn omit_empty(v: &mut Value, keys: &[&str]) {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, v| !(empty(v) && keys.contains(&k.as_str())));
    }
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

    let entrypoint = o.entrypoint.as_ref().map(|e| vec![e.clone()]);
    let cmd = list_or_null(cmd);

    let mut exposed = BTreeMap::new();
    let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in &o.publish {
        let (port, binding) = parse_publish(p)?;
        exposed.insert(port.clone(), json!({}));
        bindings
            .entry(port)
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    for e in &o.expose {
        let port = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(port, json!({}));
    }

    let mut volumes = BTreeMap::new();
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
    let mut tmpfs = BTreeMap::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), opts.to_string());
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
        devices.push(DeviceMapping {
            path_on_host: host.to_string(),
            path_in_container: cont.to_string(),
            cgroup_permissions: perms.to_string(),
        });
    }
    let restart = match o.restart.as_deref() {
        None | Some("") => RestartPolicy {
            name: "no".to_string(),
            maximum_retry_count: 0,
        },
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
            RestartPolicy {
                name: name.to_string(),
                maximum_retry_count: count,
            }
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
    let nano_cpus = o.cpus.map(|c| berth_go::trunc_i64(c * 1e9)).unwrap_or(0);

    let network = o.network.clone().unwrap_or_else(|| "bridge".to_string());
    let mut endpoints = BTreeMap::new();
    let builtin = ["bridge", "host", "none", "default"].contains(&network.as_str())
        || network.starts_with("container:");
    let fixed_ip = o.ip.is_some() || o.ip6.is_some();
    if (o.network.is_some() && (!builtin || !o.network_alias.is_empty())) || fixed_ip {
        let mut ep = EndpointSettings {
            aliases: list_or_null(&o.network_alias),
            ..EndpointSettings::default()
        };
        if fixed_ip {
            // Go's `EndpointIPAMConfig`: each address `omitempty`.
            let mut ipam = Map::new();
            for (key, addr) in [("IPv4Address", &o.ip), ("IPv6Address", &o.ip6)] {
                if let Some(a) = addr.as_ref().filter(|a| !a.is_empty()) {
                    ipam.insert(key.to_string(), json!(a));
                }
            }
            ep.ipam_config = Some(Value::Object(ipam));
        }
        endpoints.insert(network.clone(), ep);
    }

    let mut hc = HostConfig {
        binds: list_or_null(&binds),
        container_id_file: String::new(),
        log_config: LogConfig {
            kind: o.log_driver.clone().unwrap_or_default(),
            config: kv_map(&o.log_opt),
        },
        network_mode: network,
        port_bindings: Some(bindings),
        restart_policy: restart,
        auto_remove: o.rm,
        volumes_from: list_or_null(&o.volumes_from),
        console_size: Some(vec![u32::from(console.0), u32::from(console.1)]),
        cap_add: list_or_null(&o.cap_add),
        cap_drop: list_or_null(&o.cap_drop),
        cgroupns_mode: o.cgroupns.clone().unwrap_or_default(),
        dns: Some(o.dns.clone()),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(o.dns_search.clone()),
        extra_hosts: list_or_null(&extra_hosts),
        group_add: list_or_null(&o.group_add),
        ipc_mode: o.ipc.clone().unwrap_or_default(),
        oom_score_adj: o.oom_score_adj.unwrap_or(0),
        pid_mode: o.pid.clone().unwrap_or_default(),
        privileged: o.privileged,
        publish_all_ports: o.publish_all,
        readonly_rootfs: o.read_only,
        security_opt: list_or_null(&security),
        uts_mode: o.uts.clone().unwrap_or_default(),
        shm_size: shm,
        cpu_shares: o.cpu_shares.unwrap_or(0),
        memory,
        nano_cpus,
        blkio_weight_device: Some(Vec::new()),
        blkio_device_read_bps: Some(Vec::new()),
        blkio_device_write_bps: Some(Vec::new()),
        blkio_device_read_iops: Some(Vec::new()),
        blkio_device_write_iops: Some(Vec::new()),
        devices: Some(devices),
        memory_swap,
        memory_swappiness: Some(-1),
        oom_kill_disable: Some(false),
        pids_limit: Some(o.pids_limit.unwrap_or(0)),
        ulimits: Some(ulimits),
        init: o.init.then_some(true),
        sysctls: (!o.sysctl.is_empty()).then(|| kv_map(&o.sysctl)),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        runtime: o.runtime.clone().unwrap_or_default(),
        ..HostConfig::default()
    };
    super::apply_limits(&o.limits, &mut hc)?;
    if !o.mount.is_empty() {
        let mounts = o
            .mount
            .iter()
            .map(|m| super::parse_mount_flag(m))
            .collect::<Result<Vec<_>, _>>()?;
        hc.mounts = Some(mounts);
    }

    let mut config = Config {
        hostname: o.hostname.clone().unwrap_or_default(),
        domainname: o.domainname.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: o.tty,
        open_stdin: o.interactive,
        stdin_once: is_run && o.interactive && attach_stdin,
        env: Some(env),
        cmd,
        image: image.to_string(),
        volumes: Some(volumes),
        working_dir: o.workdir.clone().unwrap_or_default(),
        entrypoint,
        labels: Some(kv_map(&labels)),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        mac_address: o.mac_address.clone(),
        ..Config::default()
    };
    super::apply_health(&o.health, &mut config)?;
    let body = container::CreateRequest {
        config,
        host_config: Some(hc),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        platform: o.platform.clone(),
    };
    Ok(CreateRequest {
        body,
        name: o.name.clone(),
        platform: o.platform.clone(),
    })
}
