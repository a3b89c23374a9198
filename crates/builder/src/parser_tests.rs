//! Parser and shell-lexer tests: every instruction, each syntax feature, and a time-bounded
//! randomized fuzz run asserting the parser and lexer never panic.

use std::collections::HashMap;

use crate::parser::{parse, Args, INSTRUCTIONS};
use crate::shell::{expand_word, expand_words, name_values};

fn one(df: &str) -> crate::parser::Instruction {
    let d = parse(&format!("FROM busybox\n{df}")).unwrap();
    d.instructions[1].clone()
}

#[test]
fn every_instruction_parses() {
    let lines = [
        "ADD --chown=1:1 a.tar /x/",
        "ARG V=1",
        "CMD [\"sh\", \"-c\", \"echo\"]",
        "COPY --from=build /a /b",
        "ENTRYPOINT /bin/app --flag",
        "ENV A=1 B=\"two words\"",
        "EXPOSE 80/tcp 53/udp",
        "HEALTHCHECK --interval=5s CMD true",
        "LABEL a=b \"c d\"=e",
        "MAINTAINER someone",
        "ONBUILD RUN echo hi",
        "RUN echo hi",
        "SHELL [\"/bin/bash\", \"-c\"]",
        "STOPSIGNAL SIGTERM",
        "USER 1000:1000",
        "VOLUME /data /logs",
        "WORKDIR /app",
    ];
    for l in lines {
        let i = one(l);
        let name = l.split_whitespace().next().unwrap();
        assert_eq!(i.cmd, name, "{l}");
        assert!(INSTRUCTIONS.contains(&i.cmd.as_str()));
        assert_eq!(i.line, 2);
        assert_eq!(i.original, l);
    }
}

#[test]
fn case_insensitive_and_flags() {
    let i = one("copy --from=b --chmod=755 --link src/ /dst/");
    assert_eq!(i.cmd, "COPY");
    assert_eq!(i.flag("from"), Some("b"));
    assert_eq!(i.flag("chmod"), Some("755"));
    assert!(i.has_flag("link"));
    assert_eq!(i.args, Args::Shell("src/ /dst/".into()));
    let f = parse("from --platform=linux/amd64 busybox AS Build\n").unwrap();
    assert_eq!(f.instructions[0].flag("platform"), Some("linux/amd64"));
}

#[test]
fn json_vs_shell_form() {
    assert_eq!(
        one("RUN [\"a\", \"b c\"]").args,
        Args::Json(vec!["a".into(), "b c".into()])
    );
    assert_eq!(one("RUN [not json").args, Args::Shell("[not json".into()));
    assert_eq!(one("CMD echo [x]").args, Args::Shell("echo [x]".into()));
    // ENV never takes JSON.
    assert_eq!(one("ENV A=[1]").args, Args::Shell("A=[1]".into()));
}

#[test]
fn continuations_comments_and_blank_lines() {
    let d =
        parse("FROM x\nRUN a \\\n  # inner comment\n  b \\\n\n  c\n# trailing\nCMD d\n").unwrap();
    assert_eq!(d.instructions.len(), 3);
    assert_eq!(d.instructions[1].args, Args::Shell("a   b   c".into()));
    assert_eq!(d.instructions[1].line, 2);
    assert_eq!(d.instructions[2].line, 8);
    assert_eq!(d.warnings.len(), 1, "empty continuation line warns");
    // CRLF line endings.
    let d = parse("FROM x\r\nRUN a \\\r\n b\r\n").unwrap();
    assert_eq!(d.instructions[1].args, Args::Shell("a  b".into()));
}

#[test]
fn directives() {
    let d = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n").unwrap();
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.escape, '`');
    assert_eq!(d.instructions[1].args, Args::Shell("a  b".into()));
    // A directive after a comment is just a comment.
    let d = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n").unwrap();
    assert_eq!(d.escape, '\\');
    assert_eq!(d.instructions[1].args, Args::Shell("a  b".into()));
    let e = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("invalid escape token"));
    let e = parse("# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
    assert!(e.message.contains("only one escape"));
}

#[test]
fn heredocs() {
    let d = parse("FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCMD x\n").unwrap();
    let r = &d.instructions[1];
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].content, "echo one\necho two\n");
    assert_eq!(d.instructions[2].line, 6);

    let d = parse("FROM x\nCOPY <<-\"END\" /f\n\thello $X\n\tEND\n").unwrap();
    let c = &d.instructions[1];
    assert!(c.heredocs[0].quoted && c.heredocs[0].strip_tabs);
    assert_eq!(c.heredocs[0].content, "hello $X\n");

    let d = parse("FROM x\nRUN python3 <<EOF\nprint(1)\nEOF\n").unwrap();
    assert_eq!(d.instructions[1].args, Args::Shell("python3 <<EOF".into()));
    assert_eq!(d.instructions[1].heredocs[0].content, "print(1)\n");

    let d = parse("FROM x\nRUN cat <<A > a && cat <<B > b\n1\nA\n2\nB\n").unwrap();
    let h = &d.instructions[1].heredocs;
    assert_eq!((h[0].name.as_str(), h[0].content.as_str()), ("A", "1\n"));
    assert_eq!((h[1].name.as_str(), h[1].content.as_str()), ("B", "2\n"));

    // A here-string and quoted << are not heredocs.
    assert!(one("RUN cat <<<word").heredocs.is_empty());
    assert!(one("RUN echo '<<EOF'").heredocs.is_empty());

    let e = parse("FROM x\nRUN <<EOF\necho never ends\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated heredoc"), "{e}");
}

#[test]
fn errors_have_lines() {
    let e = parse("FROM x\n\nFOO bar\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: unknown instruction: FOO"
    );
    let e = parse("RUN x\n").unwrap_err();
    assert!(e.message.contains("no build stage"), "{e}");
    assert!(parse("").unwrap_err().message.contains("cannot be empty"));
    assert!(parse("FROM a b\n").is_err());
    assert!(parse("FROM x\nCOPY onlyone\n")
        .unwrap_err()
        .message
        .contains("at least two arguments"));
    assert!(parse("FROM x\nSHELL /bin/sh -c\n")
        .unwrap_err()
        .message
        .contains("JSON"));
    assert!(parse("FROM x\nONBUILD ONBUILD RUN x\n").is_err());
    assert!(parse("FROM x\nONBUILD FROM y\n").is_err());
    assert!(parse("FROM x\nONBUILD BOGUS y\n").is_err());
    assert!(parse("FROM x\nHEALTHCHECK true\n").is_err());
    assert!(parse("FROM x\nENV\n").is_err());
    assert!(parse("FROM x\nLABEL novalue\n").is_err());
    assert!(parse("FROM x\nRUN\n").is_err());
}

#[test]
fn arg_before_from() {
    let d = parse("ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS b\n").unwrap();
    assert_eq!(d.instructions.len(), 3);
    assert_eq!(d.instructions[0].cmd, "ARG");
}

fn vars(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn substitution() {
    let v = vars(&[("A", "a"), ("E", ""), ("SP", "x y")]);
    let x = |s: &str| expand_word(s, &v, '\\').unwrap();
    assert_eq!(x("$A"), "a");
    assert_eq!(x("${A}b"), "ab");
    assert_eq!(x("$Ab"), "");
    assert_eq!(x("${U:-def}"), "def");
    assert_eq!(x("${E:-def}"), "def");
    assert_eq!(x("${E-def}"), "");
    assert_eq!(x("${A:-def}"), "a");
    assert_eq!(x("${A:+alt}"), "alt");
    assert_eq!(x("${E:+alt}"), "");
    assert_eq!(x("${E+alt}"), "alt");
    assert_eq!(x("${U:+alt}"), "");
    assert_eq!(x("${U:-${A}2}"), "a2");
    assert_eq!(x("'$A'"), "$A");
    assert_eq!(x("\"$A b\""), "a b");
    assert_eq!(x("\\$A"), "$A");
    assert_eq!(x("\"\\$A\""), "$A");
    assert_eq!(x("$"), "$");
    assert_eq!(x("a$"), "a$");
    assert!(expand_word("${U:?must be set}", &v, '\\')
        .unwrap_err()
        .to_string()
        .contains("must be set"));
    assert!(expand_word("${A", &v, '\\').is_err());
    assert!(expand_word("'open", &v, '\\').is_err());
    assert_eq!(expand_word("`$A", &v, '`').unwrap(), "$A");
    assert_eq!(
        expand_words("$SP \"$SP\" z", &v, '\\').unwrap(),
        vec!["x", "y", "x y", "z"]
    );
}

#[test]
fn name_value_pairs() {
    assert_eq!(
        name_values("A=1 B=\"two words\" C='x'", true).unwrap(),
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "'x'".into())
        ]
    );
    assert_eq!(
        name_values("KEY some value", true).unwrap(),
        vec![("KEY".into(), "some value".into())]
    );
    assert!(name_values("KEY", true).is_err());
    assert!(name_values("A=1 B", true).is_err());
    assert!(name_values("=1", true).is_err());
}

/// A tiny deterministic xorshift generator, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n, a usize")
    }
}

/// Randomized mutation fuzzing under stable `cargo test` (cargo-fuzz needs nightly): starts
/// from valid Dockerfiles, applies byte-level and token-level mutations, and checks that
/// parsing and expanding never panic. Bounded by time (`BERTH_FUZZ_SECS`, default 3s).
#[test]
fn fuzz_parser_never_panics() {
    let seeds = [
        "# syntax=docker/dockerfile:1\n# escape=`\nARG B=busybox\nFROM $B AS x\nRUN a `\n b\n",
        "FROM x\nRUN <<EOF\necho\nEOF\nCOPY <<-\"A\" <<B /d/\n\tx\n\tA\ny\nB\n",
        "FROM x\nENV A=1 B=\"2 3\" \\\n C=${A:-q}\nLABEL a=b\nHEALTHCHECK --interval=1s CMD [\"true\"]\n",
        "FROM x\nONBUILD RUN x\nSHELL [\"sh\",\"-c\"]\nCMD [\"a\"]\nEXPOSE 1-3/udp\nVOLUME [\"/v\"]\n",
    ];
    let tokens: &[&str] = &[
        "\\", "`", "\n", "<<", "<<-", "\"", "'", "${", "}", "$", "[", "]", "#", "=", " ", "\t",
        "--", "EOF", "RUN ", "FROM ", "COPY ", "ONBUILD ", "\r", "é", "\u{feff}", ":-", ":+", ":?",
    ];
    let secs: u64 = std::env::var("BERTH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let v = vars(&[("A", "a b")]);
    let mut runs = 0u64;
    while std::time::Instant::now() < deadline || runs < 2000 {
        let mut s: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
        for _ in 0..1 + rng.below(8) {
            let pos = rng.below(s.len() + 1);
            match rng.below(4) {
                0 if !s.is_empty() => {
                    s.remove(pos.min(s.len() - 1));
                }
                1 => {
                    let t = tokens[rng.below(tokens.len())];
                    for (k, c) in t.chars().enumerate() {
                        s.insert(pos + k, c);
                    }
                }
                2 => s.insert(
                    pos,
                    char::from_u32(u32::try_from(rng.below(0x80)).expect("below 0x80"))
                        .unwrap_or('x'),
                ),
                _ => {
                    let a = rng.below(s.len() + 1);
                    let b = rng.below(s.len() + 1);
                    let (a, b) = (a.min(b), a.max(b));
                    let chunk: Vec<char> = s[a..b].to_vec();
                    for (k, c) in chunk.into_iter().enumerate() {
                        s.insert(pos.min(s.len()) + k, c);
                    }
                }
            }
        }
        let text: String = s.into_iter().collect();
        let r = std::panic::catch_unwind(|| {
            if let Ok(df) = parse(&text) {
                for i in &df.instructions {
                    let t = i.args.text();
                    let _ = expand_words(&t, &v, df.escape);
                    let _ = expand_word(&t, &v, df.escape);
                    let _ = name_values(&t, true);
                }
            }
            let _ = expand_words(&text, &v, '\\');
            let _ = crate::ignore::Ignore::parse(&text).excluded(&text);
        });
        assert!(r.is_ok(), "panic on input (seed {seed}): {text:?}");
        runs += 1;
    }
    eprintln!("fuzz: {runs} inputs, seed {seed}");
}

/// `${a:-${a:-...}}` recursed once per level: 100k levels overflowed the stack of the thread
/// expanding it (an abort of the whole daemon). Nesting is bounded now, and the error is a
/// value; ordinary nesting still works.
#[test]
fn deeply_nested_substitution_is_an_error_not_a_stack_overflow() {
    let r = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let vars = crate::shell::Vars::new();
            let deep = "${a:-".repeat(100_000) + "x" + &"}".repeat(100_000);
            let e = expand_word(&deep, &vars, '\\').unwrap_err().to_string();
            assert!(e.contains("nested more than 64 levels"), "{e}");
            assert!(expand_words(&deep, &vars, '\\').is_err());
            let ok = "${a:-${b:-${c:-deep}}}";
            assert_eq!(expand_word(ok, &vars, '\\').unwrap(), "deep");
            let df = parse(&format!("FROM x\nENV A={deep}\n")).unwrap();
            assert_eq!(df.instructions.len(), 2);
        })
        .unwrap()
        .join();
    assert!(r.is_ok());
}
