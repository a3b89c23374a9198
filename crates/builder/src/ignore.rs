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

/// Glob match of a whole path (`/`-separated) against a pattern.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' if p.get(1) == Some(&b'*') => {
            let rest = &p[2..];
            if rest.is_empty() {
                return true;
            }
            if rest[0] == b'/' {
                // `**/x`: zero or more whole directories, then x.
                let after = &rest[1..];
                if glob(after, s) {
                    return true;
                }
                for (i, c) in s.iter().enumerate() {
                    if *c == b'/' && glob(after, &s[i + 1..]) {
                        return true;
                    }
                }
                return false;
            }
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        b'*' => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    break;
                }
            }
            false
        }
        b'?' => !s.is_empty() && s[0] != b'/' && glob(&p[1..], &s[1..]),
        b'[' => {
            if s.is_empty() || s[0] == b'/' {
                return false;
            }
            let Some(end) = p.iter().skip(1).position(|c| *c == b']').map(|e| e + 1) else {
                return !s.is_empty() && s[0] == b'[' && glob(&p[1..], &s[1..]);
            };
            let mut class = &p[1..end];
            let negate = matches!(class.first(), Some(b'^' | b'!'));
            if negate {
                class = &class[1..];
            }
            let c = s[0];
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    if class[i] <= c && c <= class[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if class[i] == c {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != negate && glob(&p[end + 1..], &s[1..])
        }
        b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && glob(&p[2..], &s[1..]),
        c => !s.is_empty() && s[0] == c && glob(&p[1..], &s[1..]),
    }
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
    fn cleaning() {
        let i = Ignore::parse("./a/../b\n/c/\n");
        assert!(i.excluded("b"));
        assert!(i.excluded("c/d"));
        assert!(!i.excluded("a"));
        assert!(!Ignore::parse(".\n").excluded("x"));
    }
}
