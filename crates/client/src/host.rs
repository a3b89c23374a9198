use std::path::PathBuf;

use crate::ClientError;

/// The daemon address used when nothing else is configured.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over plain HTTP.
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`
    /// (port defaults to 2375 as in docker).
    pub fn parse(s: &str) -> Result<Host, ClientError> {
        let bad = |why: &str| ClientError::InvalidHost(s.to_string(), why.to_string());
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| bad("unsupported scheme"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(bad("empty address"));
        }
        if rest.contains('/') {
            return Err(bad("paths are not supported"));
        }
        let has_port = match rest.rfind(':') {
            Some(i) => !rest[i..].contains(']'),
            None => false,
        };
        Ok(Host::Tcp(if has_port {
            rest.to_string()
        } else {
            format!("{rest}:2375")
        }))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Host::parse("/tmp/x.sock").unwrap(),
            Host::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert_eq!(Host::parse("tcp://h:1").unwrap().to_string(), "tcp://h:1");
    }
}
