//! `.dockerignore` with Docker's semantics (moby's `patternmatcher`):
//! - one pattern per line; blank lines and lines starting with `#` are ignored; surrounding
//!   whitespace is trimmed; a leading `/` is dropped and the pattern is cleaned (`a/./b` →
//!   `a/b`);
//! - `*` matches any run of characters except `/`, `?` one character except `/`, `[a-z]`
//!   (`[^a]`) a class, `\` escapes, `**` any number of directories (also none);
//! - `!pattern` re-includes what an earlier pattern excluded; the last matching line wins;
//! - a pattern that matches a directory also matches everything below it.

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    depth: usize,
}

/// `path.Clean` for relative slash paths.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }
}

impl Ignore {
    /// Parses the contents of a `.dockerignore` file.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let p = clean(p.trim_start_matches('/'));
            if p == "." && !exclusion {
                // `.` or `/` would exclude the context root itself: Docker ignores it.
                continue;
            }
            let depth = p.split('/').count();
            patterns.push(Pattern {
                text: p,
                exclusion,
                depth,
            });
        }
        Ignore { patterns }
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches("./").trim_start_matches('/'));
        if path == "." {
            return false;
        }
        let dirs: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // Only a pattern that could change the outcome needs to run.
            if p.exclusion != matched {
                continue;
            }
            let mut m = glob(p.text.as_bytes(), path.as_bytes());
            if !m && dirs.len() > 1 {
                // A pattern matching a parent directory matches everything below it.
                for n in 1..dirs.len() {
                    if (n == p.depth || p.text.contains("**"))
                        && glob(p.text.as_bytes(), dirs[..n].join("/").as_bytes())
                    {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` pattern could re-include something below the excluded directory
    /// `dir` (so a walker must descend into it).
    pub fn may_include_below(&self, dir: &str) -> bool {
        self.patterns.iter().any(|p| {
            p.exclusion
                && (p.text.contains("**")
                    || p.text.starts_with(&format!("{dir}/"))
                    || p.text.contains('*'))
        })
    }
}

/// One element of a compiled glob.
#[derive(Debug, Clone)]
enum Tok {
    /// A literal byte.
    Lit(u8),
    /// `?`: one byte other than `/`.
    Any,
    /// `[...]` / `[^...]`: one byte other than `/`, in (or not in) the ranges.
    Class(Vec<(u8, u8)>, bool),
    /// `*`: any run without `/`.
    Star,
    /// `**` not followed by `/`: any run.
    DStar,
    /// `**/` is two states: this one consumes nothing and leads both into the group and
    /// past it (`(.*/)?`)...
    DStarSlash,
    /// ...and this one is the group: any run, left only through a `/`.
    DStarSlashBody,
}

fn compile(p: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' if p.get(i + 1) == Some(&b'*') => {
                if p.get(i + 2) == Some(&b'/') {
                    toks.push(Tok::DStarSlash);
                    toks.push(Tok::DStarSlashBody);
                    i += 3;
                } else {
                    toks.push(Tok::DStar);
                    i += 2;
                }
            }
            b'*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            b'?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            b'[' => match p[i + 1..].iter().position(|c| *c == b']') {
                // No closing bracket: a literal `[`.
                None => {
                    toks.push(Tok::Lit(b'['));
                    i += 1;
                }
                Some(len) => {
                    let mut class = &p[i + 1..i + 1 + len];
                    let negate = matches!(class.first(), Some(b'^' | b'!'));
                    if negate {
                        class = &class[1..];
                    }
                    let mut ranges = Vec::new();
                    let mut j = 0;
                    while j < class.len() {
                        if j + 2 < class.len() && class[j + 1] == b'-' {
                            ranges.push((class[j], class[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((class[j], class[j]));
                            j += 1;
                        }
                    }
                    toks.push(Tok::Class(ranges, negate));
                    i += len + 2;
                }
            },
            b'\\' if i + 1 < p.len() => {
                toks.push(Tok::Lit(p[i + 1]));
                i += 2;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    toks
}

/// Glob match of a whole path (`/`-separated) against a pattern.
///
/// The pattern is compiled to a small automaton and run over the name once, keeping the set
/// of live positions (no backtracking, no recursion): a `.dockerignore` is untrusted input,
/// and a pattern full of stars must cost linear time, as moby's regexp-based matcher does.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let toks = compile(p);
    let n = toks.len();
    // `seen[i] == step` marks state `i` as live in the set being built for `step`, so a
    // step costs the number of live states, not the pattern's length.
    let mut seen = vec![usize::MAX; n + 1];
    // Adds state `i` and everything reachable from it without consuming a byte.
    fn close(toks: &[Tok], seen: &mut [usize], live: &mut Vec<usize>, step: usize, mut i: usize) {
        loop {
            if seen[i] == step {
                return;
            }
            seen[i] = step;
            live.push(i);
            match toks.get(i) {
                Some(Tok::Star | Tok::DStar) => i += 1,
                Some(Tok::DStarSlash) => {
                    close(toks, seen, live, step, i + 1);
                    i += 2;
                }
                _ => return,
            }
        }
    }
    let mut cur = Vec::new();
    close(&toks, &mut seen, &mut cur, 0, 0);
    let mut next = Vec::new();
    for (k, &c) in s.iter().enumerate() {
        let step = k + 1;
        next.clear();
        for &i in &cur {
            let Some(tok) = toks.get(i) else { continue };
            let (stay, advance) = match tok {
                Tok::Lit(l) => (false, *l == c),
                Tok::Any => (false, c != b'/'),
                Tok::Class(ranges, negate) => (
                    false,
                    c != b'/' && ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *negate,
                ),
                Tok::Star => (c != b'/', false),
                Tok::DStar => (true, false),
                Tok::DStarSlash => (false, false),
                Tok::DStarSlashBody => (true, c == b'/'),
            };
            if stay {
                close(&toks, &mut seen, &mut next, step, i);
            }
            if advance {
                close(&toks, &mut seen, &mut next, step, i + 1);
            }
        }
        if next.is_empty() {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur.contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_directories() {
        let i = Ignore::parse("# comment\n\n node_modules \n*.tmp\n/build\n");
        assert!(i.excluded("node_modules"));
        assert!(i.excluded("node_modules/x/y.js"));
        assert!(i.excluded("a.tmp"));
        assert!(!i.excluded("sub/a.tmp"), "* does not cross directories");
        assert!(i.excluded("build/out.o"));
        assert!(!i.excluded("src/build"));
        assert!(!i.excluded("main.rs"));
    }

    #[test]
    fn double_star_and_exceptions() {
        let i = Ignore::parse("**/*.log\n!keep.log\n");
        assert!(i.excluded("a.log"));
        assert!(i.excluded("x/y/z.log"));
        assert!(!i.excluded("keep.log"));
        assert!(
            i.excluded("sub/keep.log"),
            "!keep.log only re-includes the top-level one"
        );
        assert!(!i.excluded("a.txt"));
        let j = Ignore::parse("**/*.log\n!**/keep.log\n");
        assert!(!j.excluded("sub/keep.log"));
    }

    #[test]
    fn last_match_wins() {
        let i = Ignore::parse("docs\n!docs/README.md\ndocs/README.md\n");
        assert!(i.excluded("docs/README.md"));
        let j = Ignore::parse("*\n!src\n");
        assert!(j.excluded("Dockerfile"));
        assert!(!j.excluded("src"));
        assert!(!j.excluded("src/main.rs"));
    }

    #[test]
    fn glob_details() {
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"a/c"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[^a-c]x", b"bx"));
        assert!(glob(b"a/**/b", b"a/b"));
        assert!(glob(b"a/**/b", b"a/x/y/b"));
        assert!(glob(b"a/**", b"a/x/y"));
        assert!(glob(b"\\*", b"*"));
        assert!(!glob(b"\\*", b"x"));
        assert!(glob(b"**", b"anything/at/all"));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob(b"a[b", b"a[b"), "an unclosed [ is literal");
        assert!(!glob(b"a[b", b"ab"));
        assert!(glob(b"\\", b"\\"), "a trailing escape is literal");
        assert!(glob(b"*", b""));
        assert!(!glob(b"*", b"a/b"));
        assert!(glob(b"***", b"a/b"), "** then * still crosses directories");
        assert!(glob(b"**/", b"a/"));
        assert!(!glob(b"**/x", b"ax"));
        assert!(glob(b"**/x", b"x"));
        assert!(glob(b"a*b*c", b"aXbYbZc"));
        assert!(!glob(b"a*b*c", b"aXbYbZ"));
        assert!(glob(b"[!x]", b"y") && !glob(b"[!x]", b"x") && !glob(b"[!x]", b"/"));
        assert!(!glob(b"", b"a") && glob(b"", b""));
    }

    /// Found by thinking like the fuzzer: star-heavy patterns used to backtrack
    /// exponentially, and long patterns recursed once per byte (a stack overflow aborts the
    /// whole daemon). Both are untrusted `.dockerignore` input.
    #[test]
    fn hostile_patterns_are_cheap() {
        let t = std::time::Instant::now();
        let p = "*a".repeat(40) + "b";
        let s = "a".repeat(200);
        assert!(!glob(p.as_bytes(), s.as_bytes()));
        let p = "**a".repeat(40) + "b";
        assert!(!glob(p.as_bytes(), s.as_bytes()));
        let long = "*".repeat(1_000_000);
        assert!(glob(long.as_bytes(), b"abc"));
        let lits = "a".repeat(1_000_000);
        assert!(glob(lits.as_bytes(), lits.as_bytes()));
        let i = Ignore::parse(&format!("{}\n!{}\n", "*x".repeat(500), "**/y".repeat(500)));
        assert!(!i.excluded(&"x/".repeat(500)));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn cleaning() {
        let i = Ignore::parse("./a/../b\n/c/\n");
        assert!(i.excluded("b"));
        assert!(i.excluded("c/d"));
        assert!(!i.excluded("a"));
        assert!(!Ignore::parse(".\n").excluded("x"));
    }
}
