//! Docker's create-time checks of a container's `Config` and `HostConfig` that are not about
//! resource limits (those are in `resource_checks.rs`, QoS and real-time CPU included), with
//! dockerd's messages: moby's decode-time `runconfig` checks (network-mode conflicts,
//! isolation) and `daemon.verifyContainerSettings` (working directory, environment, health
//! check, port bindings, capabilities, annotations; UTS and cgroup namespace modes, `/dev/shm`
//! size, runtime, tmpfs destinations, security options, storage options).
//!
//! Everything here is refused with a 400 when the container is created, so nothing invalid is
//! stored and fails only at start (or, for a health check, runs with a negative interval).
//! Where Docker 29 and 20.10 answer differently the newer message is used.

use berth_api_types::container::{Config, HealthConfig, HostConfig};
use berth_api_types::ApiError;

use crate::Result;

/// The shortest health-check interval, timeout, start period and start interval (1 ms).
const MIN_HEALTH_DURATION_NS: i64 = 1_000_000;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg)
}

/// Every check below, in moby's order. `config` is the request's (before the image's config is
/// merged in); its `WorkingDir` is cleaned as Docker 29 stores it. Docker's warnings for what
/// is accepted but ignored go to `warnings`.
pub(crate) fn verify(
    config: &mut Config,
    hc: &HostConfig,
    warnings: &mut Vec<String>,
) -> Result<()> {
    validate_net_mode(config, hc)?;
    validate_isolation(&hc.isolation)?;
    validate_container_config(config)?;
    validate_host_config(hc)?;
    verify_platform(hc)?;
    if hc.network_mode == "host" && hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
        warnings.push("Published ports are discarded when using host network mode".into());
    }
    Ok(())
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// moby `runconfig.validateNetMode`: what cannot go with `container:<id>` networking, and the
/// hostname with a shared UTS namespace, links with host networking.
fn validate_net_mode(c: &Config, hc: &HostConfig) -> Result<()> {
    let conflict = |what: &str| Err(invalid(format!("conflicting options: {what}")));
    let mode = hc.network_mode.as_str();
    if mode == "container" || mode.starts_with("container:") {
        if mode.strip_prefix("container:").unwrap_or("").is_empty() {
            return Err(invalid(
                "invalid network mode: invalid container format container:<name|id>",
            ));
        }
        if !c.hostname.is_empty() {
            return conflict("hostname and the network mode");
        }
        if non_empty(&hc.links) {
            return conflict(
                "container type network can't be used with links. This would result in undefined behavior",
            );
        }
        if non_empty(&hc.dns) {
            return conflict("dns and the network mode");
        }
        if non_empty(&hc.extra_hosts) {
            return conflict("custom host-to-IP mapping and the network mode");
        }
        if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports {
            return conflict("port publishing and the container type network mode");
        }
        if c.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
            return conflict("port exposing and the container type network mode");
        }
    }
    if hc.uts_mode == "host" && !c.hostname.is_empty() {
        return conflict("hostname and the UTS mode");
    }
    if mode == "host" && non_empty(&hc.links) {
        return conflict(
            "host type networking can't be used with links. This would result in undefined behavior",
        );
    }
    Ok(())
}

/// Linux knows only the default isolation.
fn validate_isolation(isolation: &str) -> Result<()> {
    if isolation.is_empty() || isolation.eq_ignore_ascii_case("default") {
        return Ok(());
    }
    Err(invalid(format!(
        "invalid isolation ({isolation}): linux only supports 'default'"
    )))
}

/// moby `validateContainerConfig` (the stop signal is checked after the image's config is
/// merged, by the create itself).
fn validate_container_config(c: &mut Config) -> Result<()> {
    if !c.working_dir.is_empty() {
        if !c.working_dir.starts_with('/') {
            return Err(invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                c.working_dir
            )));
        }
        c.working_dir = clean_path(&c.working_dir);
    }
    for e in c.env.iter().flatten() {
        if e.split_once('=').map_or(e.as_str(), |(k, _)| k).is_empty() {
            return Err(invalid(format!("invalid environment variable: {e}")));
        }
    }
    if let Some(h) = &c.healthcheck {
        validate_health_check(h)?;
    }
    Ok(())
}

pub(crate) fn validate_health_check(h: &HealthConfig) -> Result<()> {
    let too_short = |what: &str, ns: i64| {
        if ns != 0 && ns < MIN_HEALTH_DURATION_NS {
            Err(invalid(format!(
                "{what} in Healthcheck cannot be less than 1ms"
            )))
        } else {
            Ok(())
        }
    };
    too_short("Interval", h.interval)?;
    too_short("Timeout", h.timeout)?;
    if h.retries < 0 {
        return Err(invalid("Retries in Healthcheck cannot be negative"));
    }
    too_short("StartPeriod", h.start_period)?;
    too_short("StartInterval", h.start_interval)
}

/// moby `validateHostConfig` (auto-remove with a restart policy, mounts, extra hosts and the
/// restart policy are checked by their own services).
fn validate_host_config(hc: &HostConfig) -> Result<()> {
    validate_port_bindings(hc)?;
    for (field, list) in [("CapAdd", &hc.cap_add), ("CapDrop", &hc.cap_drop)] {
        crate::spec::validate_capability_names(list.as_deref().unwrap_or_default())
            .map_err(|e| invalid(format!("invalid {field}: {e}")))?;
    }
    if hc.annotations.as_ref().is_some_and(|a| a.contains_key("")) {
        return Err(invalid(
            "invalid Annotations: the empty string is not permitted as an annotation key",
        ));
    }
    Ok(())
}

/// go-connections' `SplitProtoPort`: (`proto`, `port`) of `80/tcp`, `80`, `8000-8001/udp`.
fn split_proto_port(raw: &str) -> (&str, &str) {
    match raw.split_once('/') {
        None => ("tcp", raw),
        Some((port, "")) => ("tcp", port),
        Some((port, rest)) => (rest.split('/').next().unwrap_or(rest), port),
    }
}

/// A 16-bit port number, or a range of them (`8000-8001`); empty means "any".
fn valid_port_range(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    match s.split_once('-') {
        None => s.parse::<u16>().is_ok(),
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or(b);
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= b)
        }
    }
}

/// moby `validatePortBindings`: the container port must be a number and every `HostPort` a
/// port or a range.
fn validate_port_bindings(hc: &HostConfig) -> Result<()> {
    let bad = |s: &str| Err(invalid(format!("invalid port specification: {s:?}")));
    for (key, bindings) in hc.port_bindings.iter().flatten() {
        let (_, port) = split_proto_port(key);
        if !port.is_empty() && port.parse::<u16>().is_err() {
            return bad(port);
        }
        for b in bindings.iter().flatten() {
            let (_, host_port) = split_proto_port(&b.host_port);
            if !valid_port_range(host_port) {
                return bad(&b.host_port);
            }
        }
    }
    Ok(())
}

/// The OCI runtimes berth runs: its built-in one, under Docker's default name (and the
/// containerd shim name Docker 29 also accepts for it).
const RUNTIMES: [&str; 2] = [
    crate::create_defaults::DEFAULT_RUNTIME,
    "io.containerd.runc.v2",
];

/// moby `verifyPlatformContainerSettings`, past the resource checks.
fn verify_platform(hc: &HostConfig) -> Result<()> {
    if !matches!(hc.uts_mode.as_str(), "" | "host") {
        return Err(invalid(format!("invalid UTS mode: {}", hc.uts_mode)));
    }
    if hc.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if !hc.runtime.is_empty() && !RUNTIMES.contains(&hc.runtime.as_str()) {
        return Err(invalid(format!(
            "unknown or invalid runtime name: {}",
            hc.runtime
        )));
    }
    for dest in hc.tmpfs.iter().flat_map(|t| t.keys()) {
        let dest = dest.replace('\\', "/");
        if clean_path(&dest) == "/" {
            return Err(invalid("invalid specification: destination can't be '/'"));
        }
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid mount path: '{dest}' mount path must be absolute"
            )));
        }
    }
    if !matches!(hc.cgroupns_mode.as_str(), "" | "host" | "private") {
        return Err(invalid(format!(
            "invalid cgroup namespace mode: {}",
            hc.cgroupns_mode
        )));
    }
    crate::spec::validate_security_opts(hc.security_opt.as_deref().unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    if hc.storage_opt.as_ref().is_some_and(|o| !o.is_empty()) {
        // Per-container quotas need overlay on xfs with project quotas; berth has none.
        return Err(invalid(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ));
    }
    Ok(())
}

/// Go's `path.Clean` for a slash-separated path: `/a/../b/` → `/b`, `a/./b` → `a/b`.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::container::PortBinding;
    use std::collections::BTreeMap;

    fn err(mut c: Config, hc: HostConfig) -> String {
        verify(&mut c, &hc, &mut Vec::new()).unwrap_err().message
    }

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    #[test]
    fn container_config_checks() {
        let ok = |c: Config| {
            let mut c = c;
            verify(&mut c, &hc(), &mut Vec::new()).map(|_| c.working_dir)
        };
        let c = Config {
            working_dir: "rel".into(),
            ..Default::default()
        };
        assert_eq!(
            err(c, hc()),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        let c = Config {
            working_dir: "/a/../b/".into(),
            ..Default::default()
        };
        assert_eq!(ok(c).unwrap(), "/b");
        for bad in ["=x", ""] {
            let c = Config {
                env: Some(vec!["A=1".into(), bad.into()]),
                ..Default::default()
            };
            assert_eq!(err(c, hc()), format!("invalid environment variable: {bad}"));
        }
        let c = Config {
            env: Some(vec!["A".into(), "B=".into()]),
            ..Default::default()
        };
        assert!(ok(c).is_ok());
    }

    #[test]
    fn health_check_durations() {
        let hcfg = |f: fn(&mut HealthConfig)| {
            let mut h = HealthConfig::default();
            f(&mut h);
            Config {
                healthcheck: Some(h),
                ..Default::default()
            }
        };
        assert_eq!(
            err(hcfg(|h| h.interval = -1), hc()),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(hcfg(|h| h.interval = 999_999), hc()),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(hcfg(|h| h.timeout = -5), hc()),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(hcfg(|h| h.start_period = -1), hc()),
            "StartPeriod in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(hcfg(|h| h.start_interval = 5), hc()),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            err(hcfg(|h| h.retries = -1), hc()),
            "Retries in Healthcheck cannot be negative"
        );
        let mut c = hcfg(|h| h.interval = 1_000_000);
        assert!(verify(&mut c, &hc(), &mut Vec::new()).is_ok());
    }

    #[test]
    fn port_bindings() {
        let with = |key: &str, host_port: &str| HostConfig {
            port_bindings: Some(BTreeMap::from([(
                key.to_string(),
                Some(vec![PortBinding {
                    host_ip: String::new(),
                    host_port: host_port.into(),
                }]),
            )])),
            ..Default::default()
        };
        for (key, hp, bad) in [
            ("80/tcp", "abc", "abc"),
            ("80/tcp", "70000", "70000"),
            ("80/tcp", "8001-8000", "8001-8000"),
            ("abc/tcp", "1", "abc"),
            ("80-81/tcp", "1", "80-81"),
        ] {
            assert_eq!(
                err(Config::default(), with(key, hp)),
                format!("invalid port specification: \"{bad}\""),
                "{key} {hp}"
            );
        }
        for (key, hp) in [("80/tcp", ""), ("80/tcp", "8000-8001"), ("80", "80/udp")] {
            assert!(verify(&mut Config::default(), &with(key, hp), &mut Vec::new()).is_ok());
        }
    }

    #[test]
    fn host_config_checks() {
        let caps = |add: &[&str], drop: &[&str]| HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            err(Config::default(), caps(&["FOO"], &[])),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            err(Config::default(), caps(&[], &["cap_bar"])),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
        assert!(verify(
            &mut Config::default(),
            &caps(&["all", "net_admin", "CAP_SYS_ADMIN"], &["ALL"]),
            &mut Vec::new()
        )
        .is_ok());
        type Case = (fn(&mut HostConfig), &'static str);
        let cases: Vec<Case> = vec![
            (
                |h| h.isolation = "hyperv".into(),
                "invalid isolation (hyperv): linux only supports 'default'",
            ),
            (|h| h.uts_mode = "foo".into(), "invalid UTS mode: foo"),
            (|h| h.shm_size = -1, "SHM size can not be less than 0"),
            (
                |h| h.runtime = "foo".into(),
                "unknown or invalid runtime name: foo",
            ),
            (
                |h| h.cgroupns_mode = "foo".into(),
                "invalid cgroup namespace mode: foo",
            ),
            (
                |h| h.tmpfs = Some(BTreeMap::from([("rel".into(), String::new())])),
                "invalid mount path: 'rel' mount path must be absolute",
            ),
            (
                |h| h.tmpfs = Some(BTreeMap::from([("/a/..".into(), String::new())])),
                "invalid specification: destination can't be '/'",
            ),
            (
                |h| h.security_opt = Some(vec!["foo".into()]),
                "invalid --security-opt 1: \"foo\"",
            ),
            (
                |h| h.security_opt = Some(vec!["foo=bar".into()]),
                "invalid --security-opt 2: \"foo=bar\"",
            ),
            (
                |h| h.storage_opt = Some(BTreeMap::from([("size".into(), "1G".into())])),
                "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
            ),
            (
                |h| h.annotations = Some(BTreeMap::from([(String::new(), "x".into())])),
                "invalid Annotations: the empty string is not permitted as an annotation key",
            ),
        ];
        for (set, want) in cases {
            let mut h = hc();
            set(&mut h);
            assert_eq!(err(Config::default(), h), want);
        }
        let mut h = hc();
        h.isolation = "Default".into();
        h.runtime = "runc".into();
        h.cgroupns_mode = "private".into();
        h.uts_mode = "host".into();
        h.security_opt = Some(vec![
            "no-new-privileges".into(),
            "seccomp=unconfined".into(),
        ]);
        assert!(verify(&mut Config::default(), &h, &mut Vec::new()).is_ok());
    }

    #[test]
    fn network_mode_conflicts() {
        let net = |mode: &str| HostConfig {
            network_mode: mode.into(),
            ..Default::default()
        };
        let named = Config {
            hostname: "h".into(),
            ..Default::default()
        };
        assert_eq!(
            err(Config::default(), net("container:")),
            "invalid network mode: invalid container format container:<name|id>"
        );
        assert_eq!(
            err(Config::default(), net("container")),
            "invalid network mode: invalid container format container:<name|id>"
        );
        assert_eq!(
            err(named.clone(), net("container:x")),
            "conflicting options: hostname and the network mode"
        );
        let exposed = Config {
            exposed_ports: Some(BTreeMap::from([("80/tcp".into(), Default::default())])),
            ..Default::default()
        };
        assert_eq!(
            err(exposed, net("container:x")),
            "conflicting options: port exposing and the container type network mode"
        );
        let mut h = net("host");
        h.links = Some(vec!["a:b".into()]);
        assert_eq!(
            err(Config::default(), h),
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
        );
        let mut h = hc();
        h.uts_mode = "host".into();
        assert_eq!(
            err(named.clone(), h),
            "conflicting options: hostname and the UTS mode"
        );
        let mut warnings = Vec::new();
        let mut published = net("host");
        published.port_bindings = Some(BTreeMap::from([("80/tcp".into(), None)]));
        assert!(verify(&mut named.clone(), &published, &mut warnings).is_ok());
        assert_eq!(
            warnings,
            ["Published ports are discarded when using host network mode"]
        );
    }

    #[test]
    fn paths_clean_as_go_cleans_them() {
        assert_eq!(clean_path("/a/../b/"), "/b");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path("a/./b/.."), "a");
        assert_eq!(clean_path("../x"), "../x");
    }
}
