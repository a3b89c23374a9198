//! berth's extensions of `POST /build` (the docker CLI's legacy path has no session to carry
//! them): build secrets (`secret=`), SSH agent sockets (`ssh=`), named build contexts
//! (`buildcontext=`) and exporters (`outputs=`), parsed into the builder's options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use berth_api_types::ErrorKind;
use berth_builder::NamedContext;
use berth_services::BuildOutput;

use crate::errors::{into_api_error, Classified};

/// A build option berth cannot use: the client's to fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildOptionError {
    #[error("invalid secret {0:?}: expected key=value")]
    SecretField(String),
    #[error("invalid secret key {0:?}: use id, src, env or data")]
    SecretKey(String),
    #[error("a secret needs an id")]
    SecretId,
    #[error("secret {id}: invalid base64 data: {source}")]
    SecretData {
        id: String,
        source: base64::DecodeError,
    },
    #[error("secret {id}: env {var} is not set")]
    SecretEnv { id: String, var: String },
    #[error("secret {id}: reading {path}: {source}")]
    SecretFile {
        id: String,
        path: String,
        source: std::io::Error,
    },
    #[error("ssh {0}: no socket given and SSH_AUTH_SOCK is not set")]
    SshAgent(String),
    #[error("invalid ssh {0:?}: expected ID=SOCKET")]
    SshSpec(String),
    #[error("ssh {id}: {} is not a socket", path.display())]
    SshNotSocket { id: String, path: PathBuf },
    #[error("invalid build context {0:?}: expected NAME=VALUE")]
    ContextSpec(String),
    #[error("invalid build context name {0:?}")]
    ContextName(String),
    #[error(
        "unsupported build context {name}={value}: berth takes a local directory or docker-image://REF"
    )]
    ContextKind { name: String, value: String },
    #[error(
        "unsupported output type {0:?}: berth exports type=local and type=tar (type=image is the default)"
    )]
    OutputType(String),
    #[error("berth exports one output at a time")]
    Outputs,
}

impl Classified for BuildOptionError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

into_api_error!(BuildOptionError);

type Result<T> = std::result::Result<T, BuildOptionError>;

/// Where the berth CLI puts named contexts inside the context tar
/// (`.berth-build-contexts/<name>/...`).
pub(crate) const CONTEXTS_DIR: &str = ".berth-build-contexts";

/// `id=ID,src=PATH` (a file on the daemon's host), `id=ID,env=VAR` (the daemon's
/// environment) or `id=ID,data=BASE64` (the value itself, what `berth build --secret`
/// sends); `type=file|env` as buildx takes it.
pub(crate) fn parse_secret(spec: &str) -> Result<(String, Vec<u8>)> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    let mut data = None;
    let mut kind = None;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| BuildOptionError::SecretField(field.to_string()))?;
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "data" => data = Some(v.to_string()),
            "type" => kind = Some(v.to_string()),
            _ => return Err(BuildOptionError::SecretKey(k.to_string())),
        }
    }
    let id = id
        .or_else(|| {
            src.as_deref()
                .and_then(|s| Path::new(s).file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .ok_or(BuildOptionError::SecretId)?;
    if let Some(d) = data {
        let value = base64::engine::general_purpose::STANDARD
            .decode(d.as_bytes())
            .map_err(|source| BuildOptionError::SecretData {
                id: id.clone(),
                source,
            })?;
        return Ok((id, value));
    }
    let env = match (kind.as_deref(), &src, env) {
        (Some("env"), Some(s), None) => Some(s.clone()),
        (_, _, e) => e,
    };
    if let Some(var) = env {
        let Some(v) = std::env::var_os(&var) else {
            return Err(BuildOptionError::SecretEnv { id, var });
        };
        return Ok((id, v.into_encoded_bytes()));
    }
    let path = src.unwrap_or_else(|| id.clone());
    match std::fs::read(&path) {
        Ok(value) => Ok((id, value)),
        Err(source) => Err(BuildOptionError::SecretFile { id, path, source }),
    }
}

/// The secrets of a build, by id.
pub(crate) fn secrets(specs: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (id, v) = parse_secret(s)?;
        out.insert(id, v);
    }
    Ok(out)
}

/// `ID=SOCKET` (or `ID` alone for `$SSH_AUTH_SOCK` of the daemon).
pub(crate) fn ssh_sockets(specs: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (id, path) = match s.split_once('=') {
            Some((id, p)) => (id.to_string(), PathBuf::from(p)),
            None => (
                s.clone(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .map(PathBuf::from)
                    .ok_or_else(|| BuildOptionError::SshAgent(s.clone()))?,
            ),
        };
        if id.is_empty() {
            return Err(BuildOptionError::SshSpec(s.clone()));
        }
        use std::os::unix::fs::FileTypeExt;
        let is_socket = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket());
        if !is_socket {
            return Err(BuildOptionError::SshNotSocket { id, path });
        }
        out.insert(id, path);
    }
    Ok(out)
}

/// `NAME=local` (a directory sent in the context tar, unpacked to `dir/NAME`) or
/// `NAME=docker-image://REF`; anything else BuildKit takes is refused by name.
pub(crate) fn contexts(specs: &[String], dir: &Path) -> Result<BTreeMap<String, NamedContext>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| BuildOptionError::ContextSpec(s.clone()))?;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(BuildOptionError::ContextName(name.to_string()));
        }
        let ctx = if value == "local" {
            NamedContext::Dir(dir.join(name))
        } else if let Some(r) = value.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else {
            return Err(BuildOptionError::ContextKind {
                name: name.to_string(),
                value: value.to_string(),
            });
        };
        out.insert(name.to_ascii_lowercase(), ctx);
    }
    Ok(out)
}

/// Checks `outputs=`: one `local` or `tar` exporter (both stream a tar to the client).
pub(crate) fn check_outputs(outputs: &[BuildOutput]) -> Result<bool> {
    match outputs {
        [] => Ok(false),
        [o] if matches!(o.kind.as_str(), "local" | "tar") => Ok(true),
        [o] => Err(BuildOptionError::OutputType(o.kind.clone())),
        _ => Err(BuildOptionError::Outputs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_from_data_files_and_env() {
        let (id, v) = parse_secret("id=tok,data=czNjcjN0").unwrap();
        assert_eq!((id.as_str(), v.as_slice()), ("tok", &b"s3cr3t"[..]));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("key.txt");
        std::fs::write(&f, "from-file").unwrap();
        let (id, v) = parse_secret(&format!("src={}", f.display())).unwrap();
        assert_eq!((id.as_str(), v.as_slice()), ("key.txt", &b"from-file"[..]));
        std::env::set_var("BERTH_TEST_SECRET_VAR", "from-env");
        let (_, v) = parse_secret("id=e,env=BERTH_TEST_SECRET_VAR").unwrap();
        assert_eq!(v, b"from-env");
        let (_, v) = parse_secret("id=e,type=env,src=BERTH_TEST_SECRET_VAR").unwrap();
        assert_eq!(v, b"from-env");
        assert!(parse_secret("id=x,bogus=1").is_err());
        assert!(parse_secret("id=x,data=!!").is_err());
        assert!(parse_secret("id=x,env=BERTH_TEST_NOT_SET_ANYWHERE").is_err());
    }

    #[test]
    fn contexts_and_outputs() {
        let c = contexts(
            &[
                "Lib=local".into(),
                "base=docker-image://busybox:latest".into(),
            ],
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(c["lib"], NamedContext::Dir(PathBuf::from("/w/Lib")));
        assert_eq!(c["base"], NamedContext::Image("busybox:latest".into()));
        assert!(
            contexts(&["x=https://example.com/a.git".into()], Path::new("/w"))
                .unwrap_err()
                .to_string()
                .contains("unsupported build context")
        );
        assert!(contexts(&["../x=local".into()], Path::new("/w")).is_err());
        let o = |k: &str| BuildOutput {
            kind: k.into(),
            ..Default::default()
        };
        assert!(!check_outputs(&[]).unwrap());
        assert!(check_outputs(&[o("tar")]).unwrap());
        assert!(check_outputs(&[o("registry")]).is_err());
    }
}
