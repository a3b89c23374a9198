//! Parsing the command line with the definition of the invoked command only.
//!
//! Before it parses, clap copies the global flags (`-H`, `--tls`, ...) into every subcommand the
//! root command has: for berth's ~45 commands that was a good part of the start-up of every
//! invocation. When the arguments name a command after nothing but global flags, the root is
//! given that one command ([`Commands`]); the root's own help, the version flag, an unknown
//! command and everything else the quick look does not recognise get the whole tree, so what is
//! printed is the same either way.

use std::cell::RefCell;
use std::ffi::OsString;

use clap::{ArgMatches, Command, FromArgMatches, Parser, Subcommand};

use crate::app::{Cli, Cmd};

thread_local! {
    /// The one command the root is to be built with, while [`parse_args`] parses.
    static ONLY: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The root's subcommands: [`Cmd`], all of them or only the invoked one.
#[derive(Debug)]
pub struct Commands(pub Cmd);

impl FromArgMatches for Commands {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Cmd::from_arg_matches(m).map(Commands)
    }

    fn from_arg_matches_mut(m: &mut ArgMatches) -> Result<Self, clap::Error> {
        Cmd::from_arg_matches_mut(m).map(Commands)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }

    fn update_from_arg_matches_mut(&mut self, m: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

impl Subcommand for Commands {
    fn augment_subcommands(cmd: Command) -> Command {
        let only = ONLY.with(|o| o.borrow().clone());
        if only.as_deref() == Some("") {
            // `berth --version`: no command to parse.
            return cmd;
        }
        if let Some(name) = only {
            // Every command's (deferred, so cheap) stub, of which the root gets one.
            let all = Cmd::augment_subcommands(Command::new("berth"));
            if let Some(sub) = all.find_subcommand(&name) {
                return cmd.subcommand(sub.clone());
            }
        }
        Cmd::augment_subcommands(cmd)
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Cmd::augment_subcommands_for_update(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        Cmd::has_subcommand(name)
    }
}

/// The global flags that take a value (`-H x`, `--host=x`, `-Hx`).
const VALUE_FLAGS: [&str; 4] = ["--host", "--tlscacert", "--tlscert", "--tlskey"];

/// The command `args` (without the program name) invoke, when only global flags come before
/// it; `None` when anything else does (`-h`, `-v`, an unknown flag) or there is no command.
pub fn invoked_command(args: &[OsString]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        if a == "-H" || VALUE_FLAGS.contains(&a) {
            it.next()?;
        } else if a == "--tls"
            || a == "--tlsverify"
            || a.starts_with("-H")
            || VALUE_FLAGS
                .iter()
                .any(|f| a.strip_prefix(f).is_some_and(|rest| rest.starts_with('=')))
        {
        } else if a.starts_with('-') {
            return None;
        } else {
            return Some(a);
        }
    }
    None
}

/// [`Cli::try_parse_from`], with the root built around the invoked command only when
/// [`invoked_command`] finds one, and without any for a lone `-v`/`--version`.
pub fn parse_args(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let rest = args.get(1..).unwrap_or_default();
    let only = if rest.len() == 1 && (rest[0] == "-v" || rest[0] == "--version") {
        Some(String::new())
    } else {
        invoked_command(rest)
            .filter(|name| Cmd::has_subcommand(name))
            .map(str::to_string)
    };
    ONLY.with(|o| *o.borrow_mut() = only);
    let parsed = Cli::try_parse_from(args);
    ONLY.with(|o| *o.borrow_mut() = None);
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_the_command_after_global_flags() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["ps", "-a"], Some("ps")),
            (&["-H", "unix:///x", "run", "busybox"], Some("run")),
            (&["--host", "ps", "images"], Some("images")),
            (&["--host=x", "--tls", "--tlsverify", "ps"], Some("ps")),
            (
                &["-Hx", "--tlscert", "c", "--tlskey=k", "container", "ls"],
                Some("container"),
            ),
            (&["--tlscacert", "run", "ps"], Some("ps")),
            (&["-h", "ps"], None),
            (&["--help"], None),
            (&["-v"], None),
            (&["--tls=true", "ps"], None),
            (&["-H"], None),
            (&[], None),
            (&["--bogus", "ps"], None),
        ];
        for (args, want) in cases {
            assert_eq!(invoked_command(&os(args)), *want, "{args:?}");
        }
    }

    #[test]
    fn parses_like_the_whole_tree() {
        for args in [
            &["berth", "-H", "unix:///x", "container", "ls", "-a"][..],
            &["berth", "run", "--rm", "-H", "unix:///y", "busybox", "true"],
            &["berth", "--tls", "ps", "-q"],
        ] {
            let lazy = parse_args(os(args)).unwrap();
            let full = Cli::try_parse_from(args).unwrap();
            assert_eq!(format!("{lazy:?}"), format!("{full:?}"), "{args:?}");
        }
        for v in ["-v", "--version"] {
            let e = parse_args(os(&["berth", v])).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
            assert_eq!(
                e.to_string(),
                concat!("berth version ", env!("CARGO_PKG_VERSION"), "\n")
            );
        }
        // The root gets back all its commands afterwards.
        assert_eq!(Cli::command_for_test().get_subcommands().count(), 45);
        // An unknown command is refused with the whole tree's suggestions.
        let e = parse_args(os(&["berth", "pss"])).unwrap_err();
        assert!(e.to_string().contains("ps"), "{e}");
    }

    impl Cli {
        fn command_for_test() -> Command {
            <Cli as clap::CommandFactory>::command()
        }
    }
}
