//! `berth build`'s BuildKit options over the legacy `POST /build` (berth's extensions of it):
//! `--secret` (values read here and sent as `secret=id=..,data=<base64>`), `--ssh`,
//! `--build-context` (local directories travel in the context tar under
//! `.berth-build-contexts/<name>/`) and `--output` (the daemon streams the final stage's
//! files as a tar in `aux` messages; written here as a tar file or unpacked into a
//! directory).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use berth_client::Query;
use serde_json::Value;

use crate::util::CliError;

fn bad(msg: impl Into<String>) -> CliError {
    CliError::new(1, msg.into())
}

/// `id=ID[,src=PATH|,env=VAR][,type=file|env]` → the `secret=` query value.
pub fn secret_param(spec: &str) -> Result<String, CliError> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    let mut kind = None;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid secret {field:?}: expected key=value")))?;
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if matches!(v, "file" | "env") => kind = Some(v.to_string()),
            _ => {
                return Err(bad(format!(
                    "invalid secret field {field:?}: use id, src, env, type=file|env"
                )))
            }
        }
    }
    let id = id
        .or_else(|| {
            src.as_deref()
                .and_then(|s| Path::new(s).file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .ok_or_else(|| bad(format!("invalid secret {spec:?}: it needs an id")))?;
    let env = match (kind.as_deref(), &src, env) {
        (Some("env"), Some(s), None) => Some(s.clone()),
        (Some("env"), None, None) => Some(id.clone()),
        // buildx: neither given reads the variable of that name, else the file.
        (None, None, None) if std::env::var_os(&id).is_some() => Some(id.clone()),
        (_, _, e) => e,
    };
    let value = match env {
        Some(var) => std::env::var_os(&var)
            .ok_or_else(|| {
                bad(format!(
                    "secret {id}: environment variable {var} is not set"
                ))
            })?
            .into_encoded_bytes(),
        None => {
            let path = src.unwrap_or_else(|| id.clone());
            std::fs::read(&path).map_err(|e| bad(format!("secret {id}: reading {path}: {e}")))?
        }
    };
    Ok(format!(
        "id={id},data={}",
        base64::engine::general_purpose::STANDARD.encode(value)
    ))
}

/// `ID[=SOCKET]` → `ssh=ID=SOCKET` (the socket defaults to `$SSH_AUTH_SOCK`).
pub fn ssh_param(spec: &str) -> Result<String, CliError> {
    let (id, sock) = match spec.split_once('=') {
        Some((id, s)) => (id.to_string(), PathBuf::from(s)),
        None => (
            spec.to_string(),
            std::env::var_os("SSH_AUTH_SOCK")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    bad(format!(
                        "--ssh {spec}: no socket given and SSH_AUTH_SOCK is not set"
                    ))
                })?,
        ),
    };
    let sock = std::fs::canonicalize(&sock)
        .map_err(|e| bad(format!("--ssh {id}: {}: {e}", sock.display())))?;
    Ok(format!("{id}={}", sock.display()))
}

/// A `--build-context NAME=VALUE`.
pub enum NamedContext {
    Dir(String, PathBuf),
    Image(String, String),
}

pub fn parse_context(spec: &str) -> Result<NamedContext, CliError> {
    let (name, value) = spec.split_once('=').ok_or_else(|| {
        bad(format!(
            "invalid build context {spec:?}: expected NAME=VALUE"
        ))
    })?;
    if name.is_empty() || name.contains(['/', '\\', '=']) || name.starts_with('.') {
        return Err(bad(format!("invalid build context name {name:?}")));
    }
    if let Some(r) = value.strip_prefix("docker-image://") {
        return Ok(NamedContext::Image(name.into(), r.into()));
    }
    if value.contains("://") || value.starts_with("target:") {
        return Err(bad(format!(
            "unsupported build context {spec}: berth takes a local directory or docker-image://REF"
        )));
    }
    let dir = PathBuf::from(value);
    if !dir.is_dir() {
        return Err(bad(format!(
            "build context {name}: {value} is not a directory"
        )));
    }
    Ok(NamedContext::Dir(name.into(), dir))
}

impl NamedContext {
    pub fn param(&self) -> String {
        match self {
            NamedContext::Dir(n, _) => format!("{n}=local"),
            NamedContext::Image(n, r) => format!("{n}=docker-image://{r}"),
        }
    }
}

/// `--output`: `type=local,dest=DIR`, `type=tar,dest=FILE|-`, or a bare `DIR`/`-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Local(PathBuf),
    Tar(Option<PathBuf>),
}

pub fn parse_output(spec: &str) -> Result<Output, CliError> {
    if !spec.contains('=') {
        return Ok(if spec == "-" {
            Output::Tar(None)
        } else {
            Output::Local(PathBuf::from(spec))
        });
    }
    let mut kind = None;
    let mut dest = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(v.to_string()),
            _ => {
                return Err(bad(format!(
                    "invalid output field {field:?}: berth takes type=local|tar and dest="
                )))
            }
        }
    }
    match (kind.as_deref(), dest) {
        (Some("local"), Some(d)) if d != "-" => Ok(Output::Local(PathBuf::from(d))),
        (Some("local"), _) => Err(bad("--output type=local needs dest=DIR")),
        (Some("tar"), Some(d)) if d != "-" => Ok(Output::Tar(Some(PathBuf::from(d)))),
        (Some("tar"), _) => Ok(Output::Tar(None)),
        (Some(other), _) => Err(bad(format!(
            "unsupported output type {other:?}: berth exports type=local and type=tar"
        ))),
        (None, _) => Err(bad("--output needs type=local or type=tar")),
    }
}

impl Output {
    pub fn add_to(&self, q: Query) -> Query {
        let kind = match self {
            Output::Local(_) => "local",
            Output::Tar(_) => "tar",
        };
        q.add("outputs", serde_json::json!([{ "Type": kind }]).to_string())
    }

    /// Progress goes to stderr when the tar goes to stdout.
    pub fn uses_stdout(&self) -> bool {
        matches!(self, Output::Tar(None))
    }

    /// Writes the exported tar carried by the stream's `aux` messages.
    pub fn write(&self, aux: &[Value]) -> Result<(), CliError> {
        let mut tar = Vec::new();
        for a in aux {
            if let Some(chunk) = a.get("berth.output").and_then(Value::as_str) {
                tar.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(chunk)
                        .map_err(|e| bad(format!("reading the exported files: {e}")))?,
                );
            }
        }
        match self {
            Output::Tar(None) => {
                use std::io::Write;
                let mut o = std::io::stdout();
                o.write_all(&tar)?;
                o.flush()?;
            }
            Output::Tar(Some(p)) => {
                std::fs::write(p, &tar).map_err(|e| bad(format!("writing {}: {e}", p.display())))?
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
                let mut ar = tar::Archive::new(&tar[..]);
                ar.set_preserve_permissions(true);
                ar.set_preserve_mtime(true);
                ar.set_overwrite(true);
                ar.unpack(dir)
                    .map_err(|e| bad(format!("writing into {}: {e}", dir.display())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sent_as_data() {
        let d = std::env::temp_dir().join(format!("berth-cli-secret-{}", std::process::id()));
        std::fs::write(&d, "file-value").unwrap();
        let p = secret_param(&format!("id=a,src={}", d.display())).unwrap();
        assert_eq!(p, "id=a,data=ZmlsZS12YWx1ZQ==");
        std::fs::remove_file(&d).unwrap();
        std::env::set_var("BERTH_CLI_TEST_SECRET", "env-value");
        let p = secret_param("id=b,env=BERTH_CLI_TEST_SECRET").unwrap();
        assert_eq!(p, "id=b,data=ZW52LXZhbHVl");
        let p = secret_param("id=BERTH_CLI_TEST_SECRET").unwrap();
        assert_eq!(p, "id=BERTH_CLI_TEST_SECRET,data=ZW52LXZhbHVl");
        assert!(secret_param("id=c,src=/nonexistent/x").is_err());
        assert!(secret_param("bogus").is_err());
    }

    #[test]
    fn outputs() {
        assert_eq!(
            parse_output("type=local,dest=out").unwrap(),
            Output::Local("out".into())
        );
        assert_eq!(parse_output("type=tar,dest=-").unwrap(), Output::Tar(None));
        assert_eq!(
            parse_output("type=tar,dest=a.tar").unwrap(),
            Output::Tar(Some("a.tar".into()))
        );
        assert_eq!(parse_output("dir").unwrap(), Output::Local("dir".into()));
        assert!(parse_output("type=image").is_err());
        assert!(parse_output("type=local").is_err());
    }

    #[test]
    fn contexts() {
        assert!(matches!(
            parse_context("base=docker-image://busybox").unwrap(),
            NamedContext::Image(_, _)
        ));
        assert!(parse_context("x=https://example.com/r.git").is_err());
        assert!(parse_context("noequals").is_err());
        assert!(parse_context("x=/nonexistent/dir").is_err());
    }
}
