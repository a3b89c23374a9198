//! BuildKit's instruction flag values as typed data: `RUN --mount=...`, `RUN --network`,
//! `RUN --security`, and the `# syntax=` frontend names berth serves itself.
//!
//! Pure text handling (no I/O), so the fuzz target exercises it without the engine. The
//! rules follow the Dockerfile frontend's: a mount is a CSV record of `key=value` fields
//! (bare `ro`/`rw`/`readonly`/`readwrite`/`required` allowed), `type` defaults to `bind`,
//! bind and secret mounts are read-only unless `rw` is given, cache and tmpfs mounts are
//! writable, `mode`/`uid`/`gid` only apply to cache, secret and ssh mounts, `sharing` only to
//! cache mounts. Every key berth does not know is an error naming it: nothing is dropped.

use std::fmt;

/// `RUN --mount=type=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        })
    }
}

/// How concurrent users of one cache mount share it (`sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Everyone uses the same directory at the same time.
    #[default]
    Shared,
    /// A writer that finds the directory busy gets a directory of its own.
    Private,
    /// Users wait for each other.
    Locked,
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        })
    }
}

/// One `--mount` of a `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: MountType,
    /// Where it appears in the container (`target`, `dst`, `destination`).
    pub target: Option<String>,
    /// `source`/`src`: a path inside `from` (bind, cache) or the secret's id (secret).
    pub source: Option<String>,
    /// `from`: a stage, an image or a named context (bind, cache).
    pub from: Option<String>,
    /// `id`: the cache's or the secret's/ssh agent's id.
    pub id: Option<String>,
    pub readonly: bool,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs `size` in bytes.
    pub size: Option<u64>,
    /// secret `env`: the environment variable that carries the secret.
    pub env: Option<String>,
    /// secret/ssh `required`: a missing secret fails the step instead of being skipped.
    pub required: bool,
}

impl MountSpec {
    /// The secret's id: `id`, else `source`, else the target's file name (BuildKit's rule).
    pub fn secret_id(&self) -> Option<String> {
        self.id
            .clone()
            .or_else(|| self.source.clone())
            .or_else(|| {
                self.target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').find(|s| !s.is_empty()))
                    .map(str::to_string)
            })
            .filter(|s| !s.is_empty())
    }
}

/// A `RUN` flag or `# syntax=` directive the builder refuses, in BuildKit's words where it
/// has them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("extraneous \" in field of {0:?}")]
    ExtraneousQuote(String),
    #[error("bare \" in non-quoted field of {0:?}")]
    BareQuote(String),
    #[error("a mount can not span lines: {0:?}")]
    MultiLine(String),
    #[error("extraneous or missing \" in quoted field of {0:?}")]
    UnclosedQuote(String),
    #[error("invalid value for {key}: {value}")]
    Bool { key: String, value: String },
    #[error("invalid size: {0:?}")]
    Size(String),
    #[error("invalid value {value} for {key}")]
    Number { key: String, value: String },
    #[error("unsupported mount type {0:?} (berth supports bind, cache, tmpfs, secret and ssh)")]
    MountType(String),
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyForType { key: String, kind: MountType },
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("unsupported sharing value {0:?} (shared, private or locked)")]
    Sharing(String),
    #[error("secret env can not be empty")]
    EmptySecretEnv,
    #[error("unexpected key '{key}' in '{field}' (berth does not support it)")]
    UnknownKey { key: String, field: String },
    #[error("{name} not allowed for \"{kind}\" type mounts")]
    OwnerNotAllowed { name: &'static str, kind: MountType },
    #[error("invalid cache sharing set for {0} mount")]
    SharingNotCache(MountType),
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("both source and id can't be set")]
    SourceAndId,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("ssh mount should not have a from or source")]
    SshFrom,
    #[error("tmpfs mount should not have a from or source")]
    TmpfsFrom,
    #[error("mount target can not be empty")]
    EmptyTarget,
    #[error("{0} mount needs a target")]
    NoTarget(MountType),
    #[error("unsupported network mode {0:?}: RUN --network takes default, none or host")]
    Network(String),
    #[error("unsupported security mode {0:?}: RUN --security takes sandbox or insecure")]
    Security(String),
    #[error(
        "unsupported Dockerfile frontend {0:?}: berth builds with its own Dockerfile parser, which serves docker/dockerfile:1 (any 1.x version, -labs included); other frontends are not run"
    )]
    Frontend(String),
}

type Result<T> = std::result::Result<T, FlagError>;

/// Splits one CSV record (Go's `encoding/csv` rules: fields may be double-quoted, `""` is a
/// quote inside a quoted field).
pub fn csv_fields(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(_) => return Err(FlagError::ExtraneousQuote(s.to_string())),
                    }
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => return Err(FlagError::BareQuote(s.to_string())),
            ',' => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
            }
            '\n' | '\r' => return Err(FlagError::MultiLine(s.to_string())),
            _ => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(FlagError::UnclosedQuote(s.to_string()));
    }
    out.push(cur);
    Ok(out)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(FlagError::Bool {
            key: key.to_string(),
            value: v.to_string(),
        }),
    }
}

/// A size with an optional binary unit (`64m`, `1g`, `4096`): go-units' `RAMInBytes`.
pub fn parse_size(v: &str) -> Result<u64> {
    berth_go::ram_in_bytes(v.trim())
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| FlagError::Size(v.to_string()))
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32> {
    u32::from_str_radix(v, radix).map_err(|_| FlagError::Number {
        key: key.to_string(),
        value: v.to_string(),
    })
}

/// Parses the value of one `RUN --mount=` flag (variables already expanded).
pub fn parse_mount(value: &str) -> Result<MountSpec> {
    let fields = csv_fields(value)?;
    let mut m = MountSpec {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: true,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
        required: false,
    };
    let mut ro_given: Option<bool> = None;
    let mut sharing_given = false;
    // `type` may come after other keys; take it first so per-type checks see it.
    for f in &fields {
        if let Some((k, v)) = f.split_once('=') {
            if k.trim().eq_ignore_ascii_case("type") {
                m.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(FlagError::MountType(v.to_string())),
                };
            }
        }
    }
    let secretish = matches!(m.kind, MountType::Secret | MountType::Ssh);
    for field in &fields {
        if field.is_empty() {
            continue;
        }
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => ro_given = Some(true),
                "readwrite" | "rw" => ro_given = Some(false),
                "required" if secretish => m.required = true,
                "required" => {
                    return Err(FlagError::KeyForType {
                        key: "required".into(),
                        kind: m.kind,
                    })
                }
                _ => return Err(FlagError::NotKeyValue(field.clone())),
            }
            continue;
        };
        match key.as_str() {
            "type" => {}
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => ro_given = Some(parse_bool(&key, &value)?),
            "readwrite" | "rw" => ro_given = Some(!parse_bool(&key, &value)?),
            "required" if secretish => m.required = parse_bool(&key, &value)?,
            "size" if m.kind == MountType::Tmpfs => m.size = Some(parse_size(&value)?),
            "id" => m.id = Some(value),
            "sharing" => {
                sharing_given = true;
                m.sharing = match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(FlagError::Sharing(value)),
                }
            }
            "mode" => m.mode = Some(parse_u32("mode", &value, 8)?),
            "uid" => m.uid = Some(parse_u32("uid", &value, 10)?),
            "gid" => m.gid = Some(parse_u32("gid", &value, 10)?),
            "env" if m.kind == MountType::Secret => {
                if value.is_empty() {
                    return Err(FlagError::EmptySecretEnv);
                }
                m.env = Some(value)
            }
            "required" | "size" | "env" => return Err(FlagError::KeyForType { key, kind: m.kind }),
            _ => {
                return Err(FlagError::UnknownKey {
                    key,
                    field: field.clone(),
                })
            }
        }
    }
    m.readonly = match ro_given {
        Some(ro) => ro,
        None => !matches!(m.kind, MountType::Cache | MountType::Tmpfs),
    };
    if !matches!(
        m.kind,
        MountType::Cache | MountType::Secret | MountType::Ssh
    ) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(FlagError::OwnerNotAllowed { name, kind: m.kind });
            }
        }
    }
    if sharing_given && m.kind != MountType::Cache {
        return Err(FlagError::SharingNotCache(m.kind));
    }
    match m.kind {
        MountType::Secret => {
            if m.from.is_some() {
                return Err(FlagError::SecretFrom);
            }
            if m.source.is_some() && m.id.is_some() {
                return Err(FlagError::SourceAndId);
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                return Err(FlagError::SecretTarget);
            }
        }
        MountType::Ssh => {
            if m.from.is_some() || m.source.is_some() {
                return Err(FlagError::SshFrom);
            }
        }
        MountType::Tmpfs => {
            if m.from.is_some() || m.source.is_some() {
                return Err(FlagError::TmpfsFrom);
            }
        }
        MountType::Bind | MountType::Cache => {}
    }
    if let Some(t) = &m.target {
        if t.is_empty() {
            return Err(FlagError::EmptyTarget);
        }
    } else if !secretish {
        return Err(FlagError::NoTarget(m.kind));
    }
    Ok(m)
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNetwork {
    /// The build's network (`docker build --network`, else the default bridge).
    Default,
    None,
    Host,
}

pub fn parse_network(v: &str) -> Result<RunNetwork> {
    match v {
        "default" => Ok(RunNetwork::Default),
        "none" => Ok(RunNetwork::None),
        "host" => Ok(RunNetwork::Host),
        _ => Err(FlagError::Network(v.to_string())),
    }
}

/// `RUN --security=`: `true` for `insecure`.
pub fn parse_security(v: &str) -> Result<bool> {
    match v {
        "sandbox" => Ok(false),
        "insecure" => Ok(true),
        _ => Err(FlagError::Security(v.to_string())),
    }
}

/// Checks a `# syntax=` directive. berth's own parser is the `docker/dockerfile` frontend
/// at every 1.x version (with or without `-labs`, a digest, the `docker.io/` prefix or the
/// `-upstream` repository); nothing is pulled. Any other frontend is refused.
pub fn check_syntax(syntax: &str) -> Result<()> {
    let s = syntax.trim();
    let refuse = || Err(FlagError::Frontend(s.to_string()));
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return refuse();
        }
    }
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    if !matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream") {
        return refuse();
    }
    let Some(tag) = tag else {
        // `docker/dockerfile` alone is `latest`, a 1.x today; a bare digest is a pinned 1.x.
        return Ok(());
    };
    let version = tag.strip_suffix("-labs").unwrap_or(tag);
    if matches!(tag, "latest" | "labs") {
        return Ok(());
    }
    let mut parts = version.split('.');
    let major_ok = parts.next() == Some("1");
    let rest_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if major_ok && rest_ok && version.split('.').count() <= 3 {
        Ok(())
    } else {
        refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_defaults_and_options() {
        let m = parse_mount("type=cache,target=/root/.cache").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert!(!m.readonly, "cache mounts are writable");
        assert_eq!(m.sharing, Sharing::Shared);
        let m = parse_mount(
            "type=cache,id=go,target=/c,sharing=locked,mode=0700,uid=1000,gid=1001,from=base,source=/seed",
        )
        .unwrap();
        assert_eq!(m.id.as_deref(), Some("go"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(
            (m.mode, m.uid, m.gid),
            (Some(0o700), Some(1000), Some(1001))
        );
        assert_eq!(m.from.as_deref(), Some("base"));
        assert_eq!(m.source.as_deref(), Some("/seed"));
        assert!(parse_mount("type=cache,target=/c,ro").unwrap().readonly);
        assert!(parse_mount("type=cache,target=/c,sharing=bogus").is_err());
    }

    #[test]
    fn bind_is_default_and_read_only() {
        let m = parse_mount("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        assert!(!parse_mount("type=bind,target=/src,rw").unwrap().readonly);
        assert!(
            !parse_mount("type=bind,target=/src,readwrite=true")
                .unwrap()
                .readonly
        );
        assert!(parse_mount("type=bind,target=/src,rw=maybe").is_err());
        let e = parse_mount("type=bind,target=/x,mode=0700")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "mode not allowed for \"bind\" type mounts");
        let e = parse_mount("type=bind,target=/x,sharing=locked")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "invalid cache sharing set for bind mount");
        assert!(parse_mount("type=bind")
            .unwrap_err()
            .to_string()
            .contains("needs a target"));
    }

    #[test]
    fn tmpfs_secret_ssh() {
        let m = parse_mount("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        assert!(!m.readonly);
        assert!(parse_mount("type=bind,target=/t,size=1").is_err());
        let m = parse_mount("type=secret,id=tok").unwrap();
        assert_eq!(m.secret_id().as_deref(), Some("tok"));
        assert!(m.target.is_none() && m.readonly && !m.required);
        let m = parse_mount("type=secret,target=/run/x/key,required").unwrap();
        assert_eq!(m.secret_id().as_deref(), Some("key"));
        assert!(m.required);
        let m = parse_mount("type=secret,id=tok,env=TOKEN,required=true").unwrap();
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert!(parse_mount("type=secret").is_err());
        assert!(parse_mount("type=secret,id=a,source=b").is_err());
        assert!(parse_mount("type=secret,id=a,from=x").is_err());
        assert!(parse_mount("type=cache,target=/c,env=X").is_err());
        assert!(parse_mount("type=cache,target=/c,required").is_err());
        let m = parse_mount("type=ssh").unwrap();
        assert_eq!(m.kind, MountType::Ssh);
    }

    #[test]
    fn unknown_keys_and_types_are_named() {
        let e = parse_mount("type=cache,target=/c,bogus=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'bogus'"), "{e}");
        let e = parse_mount("type=nfs,target=/c").unwrap_err().to_string();
        assert!(e.contains("\"nfs\""), "{e}");
        let e = parse_mount("type=cache,target=/c,weird")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key=value"), "{e}");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields("a=1,\"b=x,y\",c").unwrap(),
            vec!["a=1", "b=x,y", "c"]
        );
        assert_eq!(csv_fields("\"a\"\"b\"").unwrap(), vec!["a\"b"]);
        assert!(csv_fields("\"open").is_err());
        assert!(csv_fields("a\"b").is_err());
        let m = parse_mount("type=bind,\"target=/a,b\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert!(parse_size("x").is_err());
        assert!(parse_size("1q").is_err());
        assert!(parse_size("99999999999999999999999t").is_err());
    }

    #[test]
    fn network_and_security() {
        assert_eq!(parse_network("none").unwrap(), RunNetwork::None);
        assert_eq!(parse_network("host").unwrap(), RunNetwork::Host);
        assert_eq!(parse_network("default").unwrap(), RunNetwork::Default);
        assert!(parse_network("bridge").is_err());
        assert!(parse_security("insecure").unwrap());
        assert!(!parse_security("sandbox").unwrap());
        assert!(parse_security("x").is_err());
    }

    #[test]
    fn syntax_directives() {
        for ok in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7",
            "docker/dockerfile:1.7.1",
            "docker/dockerfile:1-labs",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1",
            "docker/dockerfile-upstream:1.9",
            "docker/dockerfile",
            "docker/dockerfile:labs",
            "docker/dockerfile:1@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
            "docker/dockerfile@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
        ] {
            assert!(check_syntax(ok).is_ok(), "{ok}");
        }
        for bad in [
            "docker/dockerfile:0.8",
            "docker/dockerfile:experimental",
            "docker/dockerfile:2",
            "tonistiigi/dockerfile:1",
            "example.com/my/frontend:1",
            "docker/dockerfile:1@sha256:short",
            "docker/dockerfile:1.x",
        ] {
            let e = check_syntax(bad).unwrap_err().to_string();
            assert!(e.contains("unsupported Dockerfile frontend"), "{bad}: {e}");
        }
    }
}
