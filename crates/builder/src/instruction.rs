//! A parsed [`Instruction`] as a typed [`Command`]: one variant per Dockerfile instruction,
//! its flags checked and typed. The engine dispatches on this enum, one function per
//! variant; a flag berth does not know, or knows but does not implement, is an error
//! naming it here, before anything runs.
//!
//! Values stay unexpanded: variables are substituted when the instruction runs, with the
//! `ARG`/`ENV` values of that point of the build.

use crate::flags;
use crate::parser::{Args, Heredoc, Instruction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromCmd {
    /// The image word as written (`${BASE}`, `scratch`, a stage name).
    pub image: String,
    /// `AS name`, lower-cased.
    pub alias: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCmd {
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` values, as written (expanded and parsed with [`flags::parse_mount`] when
    /// the step runs).
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCmd {
    /// `ADD` rather than `COPY`.
    pub add: bool,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// `ADD --checksum=sha256:...` (a URL's content, or a git source's commit).
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
    /// `NONE`, or `CMD ...` as written.
    pub body: String,
}

/// Every instruction, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    From(FromCmd),
    Arg(String),
    Run(RunCmd),
    Copy(CopyCmd),
    Env(String),
    Label(String),
    Maintainer(String),
    Expose(String),
    User(String),
    StopSignal(String),
    Volume(Args),
    Shell(Vec<String>),
    Cmd(Args),
    Entrypoint(Args),
    Healthcheck(HealthcheckCmd),
    Onbuild(String),
    Workdir(String),
}

/// An instruction berth cannot type: unknown, badly flagged or with the wrong arguments (the
/// build fails at its line, before any step runs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstructionError {
    #[error("{cmd} --{flag} is not supported by berth's builder")]
    NotImplemented { cmd: String, flag: String },
    #[error("Unknown flag: {0}")]
    UnknownFlag(String),
    #[error("missing a value on flag: --{0}")]
    MissingValue(String),
    #[error("expecting boolean value for flag {name}, not: {value}")]
    NotBool { name: String, value: String },
    #[error(transparent)]
    Flag(#[from] flags::FlagError),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("unknown instruction: {0}")]
    Unknown(String),
}

type Result<T> = std::result::Result<T, InstructionError>;

/// BuildKit flags berth knows but does not implement: refused with a message naming them.
const NOT_IMPLEMENTED: &[(&str, &str)] =
    &[("RUN", "device"), ("ADD", "unpack"), ("COPY", "unpack")];

/// Reads the flags of one instruction, refusing what it does not take.
struct Flags<'a> {
    inst: &'a Instruction,
}

impl<'a> Flags<'a> {
    fn check(inst: &'a Instruction, allowed: &[&str]) -> Result<Flags<'a>> {
        for (k, _) in &inst.flags {
            if allowed.contains(&k.as_str()) {
                continue;
            }
            if NOT_IMPLEMENTED
                .iter()
                .any(|(c, f)| *c == inst.cmd && f == k)
            {
                return Err(InstructionError::NotImplemented {
                    cmd: inst.cmd.clone(),
                    flag: k.clone(),
                });
            }
            return Err(InstructionError::UnknownFlag(k.clone()));
        }
        Ok(Flags { inst })
    }

    /// The last value of `--name=value` (a bare `--name` is an error).
    fn value(&self, name: &str) -> Result<Option<String>> {
        let mut out = None;
        for (k, v) in &self.inst.flags {
            if k == name {
                match v {
                    Some(v) => out = Some(v.clone()),
                    None => return Err(InstructionError::MissingValue(name.to_string())),
                }
            }
        }
        Ok(out)
    }

    /// Every value of a repeatable flag.
    fn values(&self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, v) in &self.inst.flags {
            if k == name {
                match v {
                    Some(v) => out.push(v.clone()),
                    None => return Err(InstructionError::MissingValue(name.to_string())),
                }
            }
        }
        Ok(out)
    }

    /// A boolean flag: `--name`, `--name=true|false`.
    fn bool(&self, name: &str) -> Result<bool> {
        let mut out = false;
        for (k, v) in &self.inst.flags {
            if k == name {
                out = match v.as_deref() {
                    None | Some("true") | Some("1") | Some("") => true,
                    Some("false") | Some("0") => false,
                    Some(other) => {
                        return Err(InstructionError::NotBool {
                            name: name.to_string(),
                            value: other.to_string(),
                        })
                    }
                };
            }
        }
        Ok(out)
    }
}

fn words(args: &Args) -> Vec<String> {
    match args {
        Args::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
        Args::Json(v) => v.clone(),
    }
}

/// Types one instruction.
pub fn command(inst: &Instruction) -> Result<Command> {
    let text = inst.args.text();
    let none = |inst| Flags::check(inst, &[]).map(|_| ());
    Ok(match inst.cmd.as_str() {
        "FROM" => {
            let f = Flags::check(inst, &["platform"])?;
            let w = words(&inst.args);
            let (image, alias) = match w.len() {
                1 => (w[0].clone(), None),
                3 if w[1].eq_ignore_ascii_case("as") => {
                    (w[0].clone(), Some(w[2].to_ascii_lowercase()))
                }
                _ => return Err(InstructionError::FromArguments),
            };
            Command::From(FromCmd {
                image,
                alias,
                platform: f.value("platform")?,
            })
        }
        "RUN" => {
            let f = Flags::check(inst, &["mount", "network", "security"])?;
            let mounts = f.values("mount")?;
            // Type errors in a mount (unknown keys, bad values) surface now, before any
            // step runs; values with variables are checked again once expanded.
            for m in &mounts {
                if !m.contains('$') {
                    flags::parse_mount(m)?;
                }
            }
            let network = f.value("network")?;
            if let Some(n) = network.as_deref().filter(|n| !n.contains('$')) {
                flags::parse_network(n)?;
            }
            let security = f.value("security")?;
            if let Some(s) = security.as_deref().filter(|s| !s.contains('$')) {
                flags::parse_security(s)?;
            }
            Command::Run(RunCmd {
                args: inst.args.clone(),
                heredocs: inst.heredocs.clone(),
                mounts,
                network,
                security,
            })
        }
        "COPY" | "ADD" => {
            let add = inst.cmd == "ADD";
            let allowed: &[&str] = if add {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            } else {
                &["chown", "chmod", "link", "from", "parents", "exclude"]
            };
            let f = Flags::check(inst, allowed)?;
            Command::Copy(CopyCmd {
                add,
                args: inst.args.clone(),
                heredocs: inst.heredocs.clone(),
                from: f.value("from")?,
                chown: f.value("chown")?,
                chmod: f.value("chmod")?,
                link: f.bool("link")?,
                parents: f.bool("parents")?,
                excludes: f.values("exclude")?,
                checksum: f.value("checksum")?,
                keep_git_dir: f.bool("keep-git-dir")?,
            })
        }
        "HEALTHCHECK" => {
            let f = Flags::check(
                inst,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            )?;
            Command::Healthcheck(HealthcheckCmd {
                interval: f.value("interval")?,
                timeout: f.value("timeout")?,
                start_period: f.value("start-period")?,
                start_interval: f.value("start-interval")?,
                retries: f.value("retries")?,
                body: text,
            })
        }
        "ARG" => {
            none(inst)?;
            Command::Arg(text)
        }
        "ENV" => {
            none(inst)?;
            Command::Env(text)
        }
        "LABEL" => {
            none(inst)?;
            Command::Label(text)
        }
        "MAINTAINER" => {
            none(inst)?;
            Command::Maintainer(text)
        }
        "EXPOSE" => {
            none(inst)?;
            Command::Expose(text)
        }
        "USER" => {
            none(inst)?;
            Command::User(text)
        }
        "STOPSIGNAL" => {
            none(inst)?;
            Command::StopSignal(text)
        }
        "VOLUME" => {
            none(inst)?;
            Command::Volume(inst.args.clone())
        }
        "SHELL" => {
            none(inst)?;
            match &inst.args {
                Args::Json(v) if !v.is_empty() => Command::Shell(v.clone()),
                _ => return Err(InstructionError::ShellNotJson),
            }
        }
        "CMD" => {
            none(inst)?;
            Command::Cmd(inst.args.clone())
        }
        "ENTRYPOINT" => {
            none(inst)?;
            Command::Entrypoint(inst.args.clone())
        }
        "ONBUILD" => Command::Onbuild(text),
        "WORKDIR" => {
            none(inst)?;
            Command::Workdir(text)
        }
        other => return Err(InstructionError::Unknown(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser;

    fn one(line: &str) -> std::result::Result<Command, String> {
        let df = parser::parse(&format!("FROM x\n{line}\n")).map_err(|e| e.message)?;
        command(&df.instructions[1]).map_err(|e| e.to_string())
    }

    #[test]
    fn run_flags() {
        let Command::Run(r) = one(
            "RUN --mount=type=cache,target=/c --mount=type=secret,id=s --network=none --security=sandbox make",
        )
        .unwrap() else {
            panic!("not a RUN")
        };
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(r.security.as_deref(), Some("sandbox"));
        // Checked when typed: unknown mount keys, networks, devices.
        assert!(one("RUN --mount=type=cache,target=/c,bogus=1 make")
            .unwrap_err()
            .contains("bogus"));
        assert!(one("RUN --network=bridge make").is_err());
        assert_eq!(
            one("RUN --device=/dev/fuse make").unwrap_err(),
            "RUN --device is not supported by berth's builder"
        );
        assert_eq!(one("RUN --frob make").unwrap_err(), "Unknown flag: frob");
        // A mount with a variable is checked once expanded.
        assert!(one("RUN --mount=type=$T,target=/c make").is_ok());
    }

    #[test]
    fn copy_and_add_flags() {
        let Command::Copy(c) = one(
            "COPY --link --parents --exclude=*.md --exclude=tmp/ --from=build --chown=1:2 --chmod=600 a b/",
        )
        .unwrap() else {
            panic!("not a COPY")
        };
        assert!(c.link && c.parents && !c.add);
        assert_eq!(c.excludes, vec!["*.md", "tmp/"]);
        assert_eq!(c.from.as_deref(), Some("build"));
        let Command::Copy(a) =
            one("ADD --checksum=sha256:00 --keep-git-dir=true --link=false u /d").unwrap()
        else {
            panic!("not an ADD")
        };
        assert!(a.add && a.keep_git_dir && !a.link);
        assert_eq!(a.checksum.as_deref(), Some("sha256:00"));
        assert_eq!(one("ADD --from=x a b").unwrap_err(), "Unknown flag: from");
        assert_eq!(
            one("COPY --checksum=sha256:00 a b").unwrap_err(),
            "Unknown flag: checksum"
        );
        assert!(one("COPY --link=maybe a b").is_err());
        assert!(one("COPY --from a b").is_err(), "--from needs a value");
    }

    #[test]
    fn other_instructions() {
        assert!(matches!(one("ENV A=1").unwrap(), Command::Env(_)));
        assert_eq!(one("ENV --x=1 A=1").unwrap_err(), "Unknown flag: x");
        let Command::Healthcheck(h) = one("HEALTHCHECK --interval=5s CMD true").unwrap() else {
            panic!("not a HEALTHCHECK")
        };
        assert_eq!(h.interval.as_deref(), Some("5s"));
        let df = parser::parse("FROM --platform=linux/amd64 busybox AS Build\n").unwrap();
        let Command::From(f) = command(&df.instructions[0]).unwrap() else {
            panic!("not a FROM")
        };
        assert_eq!(f.alias.as_deref(), Some("build"));
        assert_eq!(f.platform.as_deref(), Some("linux/amd64"));
    }
}
