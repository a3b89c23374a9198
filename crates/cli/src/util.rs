//! Shared plumbing for commands: the error type with its exit code, daemon error wording,
//! JSON re-indentation that keeps the daemon's key order, and time-ish flag parsing.

use berth_client::{Client, ClientError};

/// A command failure: what to print on stderr (may be empty) and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub msg: String,
}

impl CliError {
    pub fn new(code: i32, msg: impl Into<String>) -> CliError {
        CliError {
            code,
            msg: msg.into(),
        }
    }

    /// An exit status without a message (a container's exit code).
    pub fn status(code: i32) -> CliError {
        CliError {
            code,
            msg: String::new(),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError::new(1, daemon_err(&e))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::new(1, e.to_string())
    }
}

impl From<crate::template::TemplateError> for CliError {
    fn from(e: crate::template::TemplateError) -> CliError {
        CliError::new(1, e.0)
    }
}

impl From<crate::opts::OptsError> for CliError {
    fn from(e: crate::opts::OptsError) -> CliError {
        CliError::new(1, e.0)
    }
}

/// Exit status of a command.
pub type CmdResult = Result<i32, CliError>;

/// How the docker CLI words client errors.
pub fn daemon_err(e: &ClientError) -> String {
    match e {
        ClientError::Api { message, .. } => format!("Error response from daemon: {message}"),
        ClientError::Connect { host, .. } => {
            format!("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")
        }
        other => format!("error during connect: {other}"),
    }
}

/// The command context: a client for the chosen host.
pub struct Ctx {
    pub client: Client,
}

/// `--since`/`--until` values: unix seconds (with optional fraction), RFC 3339 times, or Go
/// durations relative to now (`10m`, `1h30m`, `45s`), as docker's `GetTimestamp`.
pub fn parse_timestamp(v: &str) -> String {
    if v.is_empty() {
        return String::new();
    }
    // A Go duration before now, in whole seconds (GetTimestamp excludes a plain `0`).
    if let Some(ns) = berth_go::parse_duration(v).ok().filter(|_| v != "0") {
        let t = chrono::Utc::now() - chrono::Duration::nanoseconds(ns);
        return t.timestamp().to_string();
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return t.and_utc().timestamp().to_string();
    }
    if let Ok(t) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(dt) = t.and_hms_opt(0, 0, 0) {
            return dt.and_utc().timestamp().to_string();
        }
    }
    v.to_string()
}

/// Splits `name[:tag]` into name and tag (the tag is after the last `:` that follows the last `/`).
pub fn split_ref(r: &str) -> (String, Option<String>) {
    let r = r.split('@').next().unwrap_or(r);
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (
            r[..slash + i].to_string(),
            Some(r[slash + i + 1..].to_string()),
        ),
        None => (r.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_refs() {
        assert_eq!(parse_timestamp("1700000000"), "1700000000");
        let ago: i64 = parse_timestamp("1h30m").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - 5400 - ago).abs() <= 1);
        assert_eq!(parse_timestamp("0"), "0");
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z"),
            "1700000000.000000000"
        );
        assert_eq!(split_ref("busybox"), ("busybox".into(), None));
        assert_eq!(
            split_ref("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            split_ref("localhost:5000/x"),
            ("localhost:5000/x".into(), None)
        );
        assert_eq!(
            split_ref("localhost:5000/x:y"),
            ("localhost:5000/x".into(), Some("y".into()))
        );
    }
}
