//! The mount syntax of a container create and a volume create, parsed and checked as Docker's
//! linux mount parser does: `Binds` entries (`-v`), `HostConfig.Mounts` (`--mount`), volume
//! names and local-driver options. Pure functions; the volume service (`volumes.rs`) turns
//! their [`MountRecord`]s into mounts.

use std::collections::BTreeMap;
use std::path::Path;

use berth_api_types::container as ct;

use berth_api_types::ErrorKind;

use crate::errors::{into_api_error, Classified};
use crate::model::MountRecord;

/// The longest volume name: it is a directory name under `<data-root>/volumes`.
pub const MAX_VOLUME_NAME: usize = 255;

/// A bind, mount or volume spec Docker would refuse; always the client's mistake (400). The
/// messages are moby's, word for word.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountSpecError {
    #[error("volume name is too short, names should be at least two alphanumeric characters")]
    NameTooShort,
    #[error(
        "{0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    NameInvalid(String),
    #[error(
        "volume name is too long ({0} characters), names can be at most {MAX_VOLUME_NAME} characters"
    )]
    NameTooLong(usize),
    #[error("invalid option key: {0:?}")]
    OptionKey(String),
    #[error("missing required option: {0:?}")]
    MissingOption(&'static str),
    /// A `Binds` entry that does not parse.
    #[error("invalid volume specification: '{0}'")]
    Spec(String),
    /// A `Binds` entry whose destination is refused (the cause after the entry).
    #[error("invalid volume specification: '{raw}': {cause}")]
    SpecTarget {
        raw: String,
        cause: Box<MountSpecError>,
    },
    #[error("invalid mode: {0}")]
    Mode(String),
    /// A mount (`--mount`, or a destination of any kind) that moby's `validateMountConfig` refuses.
    #[error("invalid mount config for type {kind:?}: {problem}")]
    Config {
        kind: String,
        problem: ConfigProblem,
    },
}

/// What is wrong with a mount's configuration, in moby's words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigProblem {
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    NotAbsolute(String),
    #[error("invalid specification: destination can't be '/'")]
    RootTarget,
    #[error("field {0} must not be empty")]
    Empty(&'static str),
    #[error("field {0} must not be specified")]
    Specified(&'static str),
    #[error("bind source path does not exist: {0}")]
    NoSource(String),
    #[error("invalid propagation mode: {0}")]
    Propagation(String),
    #[error("invalid tmpfs size")]
    TmpfsSize,
    #[error("mount type unknown")]
    UnknownType,
    /// `ReadOnlyNonRecursive` or `ReadOnlyForceRecursive` on a writable mount.
    #[error("must not set {0} when ReadOnly is false")]
    ReadOnlyOption(&'static str),
    #[error("must set Propagation to rprivate when ReadOnlyForceRecursive is true")]
    ForceRecursivePropagation,
}

impl Classified for MountSpecError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

into_api_error!(MountSpecError);

type Result<T> = std::result::Result<T, MountSpecError>;

/// Docker's rule for local volume names (the local driver's `validateName`), plus a length
/// limit where Docker fails later with a 500 from `mkdir`.
pub fn validate_volume_name(name: &str) -> Result<()> {
    if name.chars().count() == 1 {
        return Err(MountSpecError::NameTooShort);
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok {
        return Err(MountSpecError::NameInvalid(name.to_string()));
    }
    if name.len() > MAX_VOLUME_NAME {
        return Err(MountSpecError::NameTooLong(name.len()));
    }
    Ok(())
}

pub(crate) fn validate_driver_opts(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(MountSpecError::OptionKey(k.clone()));
        }
    }
    let has = |k: &str| opts.get(k).is_some_and(|v| !v.is_empty());
    if (has("device") || has("o")) && !has("type") {
        return Err(MountSpecError::MissingOption("type"));
    }
    if has("type") && !has("device") {
        return Err(MountSpecError::MissingOption("device"));
    }
    Ok(())
}

/// A mount mode list (`ro,z,nocopy,rshared`) as Docker's `ValidMountMode` accepts it.
#[derive(Debug, Default, PartialEq)]
struct Mode {
    rw: Option<bool>,
    propagation: Option<String>,
    nocopy: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn parse_mode(mode: &str) -> Option<Mode> {
    let mut m = Mode::default();
    let (mut label, mut copy, mut consistency) = (false, false, false);
    if mode.is_empty() {
        return Some(m);
    }
    for o in mode.split(',') {
        match o {
            "rw" | "ro" if m.rw.is_none() => m.rw = Some(o == "rw"),
            "z" | "Z" if !label => label = true,
            "nocopy" if !copy => {
                copy = true;
                m.nocopy = true
            }
            // Docker Desktop's file-sharing hints: accepted and ignored, as dockerd does.
            "consistent" | "cached" | "delegated" if !consistency => consistency = true,
            p if PROPAGATIONS.contains(&p) && m.propagation.is_none() => {
                m.propagation = Some(p.to_string())
            }
            _ => return None,
        }
    }
    Some(m)
}

/// A mount's destination: absolute and not `/` (moby's `validateMountConfig` messages).
pub(crate) fn check_target(kind: &str, target: &str) -> Result<()> {
    if !target.starts_with('/') {
        return Err(config(kind, ConfigProblem::NotAbsolute(target.to_string())));
    }
    if Path::new(target).components().count() == 1 {
        return Err(config(kind, ConfigProblem::RootTarget));
    }
    Ok(())
}

/// One `Binds` entry (`src:dst[:mode]`, `dst`) parsed the way Docker's linux parser does.
pub fn parse_bind(raw: &str) -> Result<MountRecord> {
    let invalid = || MountSpecError::Spec(raw.to_string());
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => {
            if parse_mode(t).is_some() && !t.starts_with('/') {
                return Err(invalid());
            }
            (*s, *t, "")
        }
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid()),
    };
    if target.is_empty() {
        return Err(invalid());
    }
    let bad_mode = || MountSpecError::Mode(mode.to_string());
    let m = parse_mode(mode).ok_or_else(bad_mode)?;
    let bind = source.starts_with('/');
    let kind = if bind { "bind" } else { "volume" };
    check_target(kind, target).map_err(|e| MountSpecError::SpecTarget {
        raw: raw.to_string(),
        cause: Box::new(e),
    })?;
    if bind && m.nocopy {
        return Err(bad_mode());
    }
    if !bind && !source.is_empty() {
        validate_volume_name(source)?;
    }
    if !bind && m.propagation.is_some() {
        return Err(bad_mode());
    }
    Ok(MountRecord {
        kind: kind.to_string(),
        name: if bind {
            String::new()
        } else {
            source.to_string()
        },
        source: if bind { clean(source) } else { String::new() },
        destination: clean(target),
        mode: mode.to_string(),
        rw: m.rw.unwrap_or(true),
        propagation: if bind {
            m.propagation.unwrap_or_else(|| "rprivate".into())
        } else {
            String::new()
        },
        copy_data: !bind && !m.nocopy,
        anonymous: source.is_empty(),
        create_source: bind,
        tmpfs_options: Vec::new(),
        ..Default::default()
    })
}

/// One `HostConfig.Mounts` entry (`--mount`) validated like Docker's.
pub fn parse_api_mount(m: &ct::Mount) -> Result<MountRecord> {
    let kind = m.kind.as_str();
    let cfg_err = |problem| config(kind, problem);
    if m.target.is_empty() {
        return Err(cfg_err(ConfigProblem::Empty("Target")));
    }
    check_target(kind, &m.target)?;
    let opt = |v: &Option<serde_json::Value>, key: &str| -> Option<serde_json::Value> {
        v.as_ref().and_then(|o| o.get(key)).cloned()
    };
    let mut rec = MountRecord {
        kind: kind.to_string(),
        destination: clean(&m.target),
        rw: !m.read_only,
        ..Default::default()
    };
    match kind {
        "bind" => {
            if m.source.is_empty() {
                return Err(cfg_err(ConfigProblem::Empty("Source")));
            }
            if !m.source.starts_with('/') {
                return Err(cfg_err(ConfigProblem::NotAbsolute(m.source.clone())));
            }
            if m.volume_options.is_some() {
                return Err(cfg_err(ConfigProblem::Specified("VolumeOptions")));
            }
            if std::fs::metadata(&m.source).is_err() {
                return Err(cfg_err(ConfigProblem::NoSource(m.source.clone())));
            }
            rec.source = clean(&m.source);
            let prop = opt(&m.bind_options, "Propagation")
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into());
            if !PROPAGATIONS.contains(&prop.as_str()) {
                return Err(cfg_err(ConfigProblem::Propagation(prop)));
            }
            rec.propagation = prop;
            let flag = |key| {
                opt(&m.bind_options, key)
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
            };
            rec.ro_non_recursive = flag("ReadOnlyNonRecursive");
            rec.ro_force_recursive = flag("ReadOnlyForceRecursive");
            for (set, key) in [
                (rec.ro_non_recursive, "ReadOnlyNonRecursive"),
                (rec.ro_force_recursive, "ReadOnlyForceRecursive"),
            ] {
                if set && !m.read_only {
                    return Err(cfg_err(ConfigProblem::ReadOnlyOption(key)));
                }
            }
            if rec.ro_force_recursive && rec.propagation != "rprivate" {
                return Err(cfg_err(ConfigProblem::ForceRecursivePropagation));
            }
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(cfg_err(ConfigProblem::Specified("BindOptions")));
            }
            if !m.source.is_empty() {
                validate_volume_name(&m.source)?;
            }
            rec.name = m.source.clone();
            rec.anonymous = m.source.is_empty();
            rec.copy_data = !opt(&m.volume_options, "NoCopy")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(cfg_err(ConfigProblem::Specified("Source")));
            }
            let mut opts = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
            if let Some(size) = opt(&m.tmpfs_options, "SizeBytes").and_then(|v| v.as_i64()) {
                if size < 0 {
                    return Err(cfg_err(ConfigProblem::TmpfsSize));
                }
                if size > 0 {
                    opts.push(format!("size={size}"));
                }
            }
            if let Some(mode) = opt(&m.tmpfs_options, "Mode").and_then(|v| v.as_u64()) {
                if mode > 0 {
                    opts.push(format!("mode={:o}", mode & 0o7777));
                }
            }
            if m.read_only {
                opts.push("ro".into());
            }
            rec.tmpfs_options = opts;
        }
        _ => return Err(cfg_err(ConfigProblem::UnknownType)),
    }
    Ok(rec)
}

fn config(kind: &str, problem: ConfigProblem) -> MountSpecError {
    MountSpecError::Config {
        kind: kind.to_string(),
        problem,
    }
}

/// Lexical clean of an absolute path (`/a//b/` → `/a/b`).
pub(crate) fn clean(p: &str) -> String {
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        assert!(validate_volume_name("data").is_ok());
        assert!(validate_volume_name("my_vol-1.x").is_ok());
        assert!(validate_volume_name("a").is_err());
        assert!(validate_volume_name("a/b").is_err());
        assert!(validate_volume_name("_x").is_err());
        assert!(validate_volume_name("x y").is_err());
    }

    #[test]
    fn binds_parse_like_docker() {
        let m = parse_bind("data:/srv:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.name.as_str(),
                m.destination.as_str(),
                m.rw
            ),
            ("volume", "data", "/srv", false)
        );
        assert!(m.copy_data);
        let m = parse_bind("data:/srv:nocopy").unwrap();
        assert!(!m.copy_data && m.rw);
        let m = parse_bind("/host/dir/:/c:rw,Z,rshared").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.propagation.as_str()),
            ("bind", "/host/dir", "rshared")
        );
        let m = parse_bind("/anon").unwrap();
        assert!(m.anonymous && m.kind == "volume");
        assert_eq!(
            parse_bind("a/b:/x").unwrap_err().to_string(),
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert_eq!(
            parse_bind("/x:/y:bogus").unwrap_err().to_string(),
            "invalid mode: bogus"
        );
        assert_eq!(
            parse_bind("/x:ro").unwrap_err().to_string(),
            "invalid volume specification: '/x:ro'"
        );
        assert!(parse_bind("/x:/").is_err());
        assert!(parse_bind("/x:rel").is_err());
        assert!(parse_bind("/x:/y:ro,rw").is_err());
        assert!(parse_bind("/x:/y:nocopy").is_err());
        assert!(parse_bind("a:b:c:d").is_err());
    }

    #[test]
    fn consistency_modes_are_accepted_and_ignored() {
        for mode in [
            "cached",
            "delegated",
            "consistent",
            "ro,cached",
            "cached,rprivate",
        ] {
            let m = parse_bind(&format!("/src:/dst:{mode}")).unwrap();
            assert_eq!(m.mode, mode);
            assert_eq!(m.rw, !mode.contains("ro"), "{mode}");
        }
        assert!(parse_bind("data:/dst:delegated").is_ok());
        assert_eq!(
            parse_bind("/src:/dst:cached,delegated")
                .unwrap_err()
                .to_string(),
            "invalid mode: cached,delegated"
        );
        assert!(parse_bind("/src:/dst:default").is_err());
    }

    #[test]
    fn api_mounts_validate() {
        let missing = ct::Mount {
            kind: "bind".into(),
            source: "/definitely/not/here".into(),
            target: "/x".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_api_mount(&missing).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /definitely/not/here"
        );
        let t = ct::Mount {
            kind: "tmpfs".into(),
            target: "/t".into(),
            tmpfs_options: Some(serde_json::json!({"SizeBytes": 1048576, "Mode": 0o1777})),
            ..Default::default()
        };
        let m = parse_api_mount(&t).unwrap();
        assert!(m.tmpfs_options.contains(&"size=1048576".to_string()));
        assert!(m.tmpfs_options.contains(&"mode=1777".to_string()));
        let b = ct::Mount {
            kind: "bind".into(),
            source: "/tmp".into(),
            target: "/h".into(),
            read_only: true,
            bind_options: Some(serde_json::json!({"Propagation": "rslave"})),
            ..Default::default()
        };
        let m = parse_api_mount(&b).unwrap();
        assert_eq!((m.rw, m.propagation.as_str()), (false, "rslave"));
        let v = ct::Mount {
            kind: "volume".into(),
            target: "/v".into(),
            volume_options: Some(serde_json::json!({"NoCopy": true})),
            ..Default::default()
        };
        let m = parse_api_mount(&v).unwrap();
        assert!(m.anonymous && !m.copy_data);
        let bad = ct::Mount {
            kind: "floppy".into(),
            target: "/v".into(),
            ..Default::default()
        };
        assert!(parse_api_mount(&bad).is_err());
    }

    #[test]
    fn driver_options() {
        let o = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate_driver_opts(&o(&[])).is_ok());
        assert!(validate_driver_opts(&o(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert!(validate_driver_opts(&o(&[("foo", "x")])).is_err());
        assert!(validate_driver_opts(&o(&[("device", "/x")])).is_err());
    }

    #[test]
    fn volume_name_lengths() {
        assert_eq!(
            validate_volume_name("a").unwrap_err().to_string(),
            "volume name is too short, names should be at least two alphanumeric characters"
        );
        assert!(validate_volume_name(&"a".repeat(255)).is_ok());
        assert!(validate_volume_name(&"a".repeat(256))
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }

    #[test]
    fn mount_messages_are_dockers() {
        assert_eq!(
            parse_bind("/tmp:/").unwrap_err().to_string(),
            "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            parse_bind("vv:rel").unwrap_err().to_string(),
            "invalid volume specification: 'vv:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        let m = |kind: &str, source: &str, target: &str| ct::Mount {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        assert_eq!(
            parse_api_mount(&m("bind", "/tmp", "/")).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            parse_api_mount(&m("foo", "", "/x"))
                .unwrap_err()
                .to_string(),
            "invalid mount config for type \"foo\": mount type unknown"
        );
        assert_eq!(
            parse_api_mount(&m("tmpfs", "x", "/x"))
                .unwrap_err()
                .to_string(),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
    }
}
