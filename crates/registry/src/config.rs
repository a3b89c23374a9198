//! Which registries speak plain HTTP, and where Docker Hub really lives.

use std::net::IpAddr;
use std::path::PathBuf;

/// Where per-registry certificates live unless configured (`certs-dir`).
pub const DEFAULT_CERTS_DIR: &str = "/etc/berth/certs.d";

/// Docker Hub's API host behind the `docker.io` name.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The key docker stores Docker Hub credentials under in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Registry settings from the daemon's flags and `daemon.json`.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `--insecure-registry` / `insecure-registries`: `host[:port]` or CIDR blocks.
    pub insecure: Vec<String>,
    /// `registry-mirrors` for Docker Hub, tried before it.
    pub mirrors: Vec<String>,
    /// `certs-dir`: `<dir>/<host[:port]>/` holds `*.crt` CAs trusted for that registry (on top
    /// of the system roots) and `*.cert`/`*.key` client certificate pairs, like Docker's
    /// `/etc/docker/certs.d`.
    pub certs_dir: Option<PathBuf>,
    /// Blobs larger than this are uploaded in `PATCH` chunks of this size with
    /// `Content-Range`; `None` or 0: one streamed `PATCH` per blob.
    pub chunk_size: Option<u64>,
    /// Treat loopback registries as secure (TLS verified, no HTTP fallback). Docker never
    /// does; berthd's hidden `--registry-verify-loopback` exists for tests.
    pub verify_loopback: bool,
}

/// The API host for a reference domain: `docker.io` (and its aliases) is `registry-1.docker.io`.
pub fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_HOST,
        d => d,
    }
}

fn host_ip(host: &str) -> Option<IpAddr> {
    // `[::1]:5000`, `127.0.0.1:5000`, `127.0.0.1`
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        }
    };
    h.parse().ok()
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl RegistryConfig {
    /// Whether `host` (`name[:port]`) may be reached over plain HTTP. Like Docker, loopback
    /// (`localhost`, 127.0.0.0/8, ::1) always may; others only when listed by name (with or
    /// without port) or by a CIDR block containing their address.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_name(host);
        let ip = host_ip(host);
        if !self.verify_loopback && (name == "localhost" || ip.is_some_and(|ip| ip.is_loopback())) {
            return true;
        }
        self.insecure.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            entry == host
                || (!entry.contains(':') && entry == name)
                || ip.is_some_and(|ip| in_cidr(ip, entry))
        })
    }
}

/// `host` without its port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_insecure_by_default() {
        let c = RegistryConfig::default();
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("127.3.4.5"));
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(!c.is_insecure("registry.example.com"));
        assert!(!c.is_insecure("10.0.0.1:5000"));
    }

    #[test]
    fn listed_hosts_and_cidrs() {
        let c = RegistryConfig {
            insecure: vec!["myreg:5000".into(), "other".into(), "10.1.0.0/16".into()],
            ..Default::default()
        };
        assert!(c.is_insecure("myreg:5000"));
        assert!(!c.is_insecure("myreg:5001"));
        assert!(c.is_insecure("other:443"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("10.2.0.1"));
    }

    #[test]
    fn docker_hub_aliases() {
        assert_eq!(api_host("docker.io"), DOCKER_HUB_HOST);
        assert_eq!(api_host("index.docker.io"), DOCKER_HUB_HOST);
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
