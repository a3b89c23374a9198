//! Variable substitution and word splitting for instruction arguments, as the Dockerfile
//! frontend's shell lexer does it: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+a}`, `${V+a}`,
//! `${V:?msg}`, `${V?msg}`; single quotes are literal; double quotes allow `$` expansion and
//! `\"`, `\\`, `\$` escapes; outside quotes the escape character escapes the next character.
//! Quotes are removed from the result.

use std::collections::HashMap;

/// An instruction argument that does not expand, or `ENV`/`LABEL` pairs that do not split;
/// the messages are the Dockerfile frontend's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShellError {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnclosedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnclosedDoubleQuote,
    #[error("missing '}}' in variable substitution")]
    MissingBrace,
    #[error("bad substitution: ${{{0}}}")]
    BadSubstitution(String),
    #[error("unsupported modifier ({0}) in substitution")]
    Modifier(String),
    #[error("variable substitution nested more than {MAX_NESTING} levels deep")]
    TooDeep,
    /// `${name:?message}` of an unset (or empty) variable.
    #[error("{name}: {message}")]
    Unset { name: String, message: String },
    #[error("requires at least one argument")]
    NoArguments,
    #[error("LABEL names can not be blank or missing '=': {0}")]
    LabelName(String),
    #[error("ENV must have two arguments")]
    EnvArguments,
    #[error("Syntax error - can't find = in \"{0}\". Must be of the form: name=value")]
    NoEquals(String),
    #[error("ENV names can not be blank")]
    BlankName,
}

type Result<T> = std::result::Result<T, ShellError>;

/// Variables visible to an instruction: build args and the stage's environment.
pub type Vars = HashMap<String, String>;

/// Expands one word (quotes removed, no splitting).
pub fn expand_word(s: &str, vars: &Vars, escape: char) -> Result<String> {
    let words = lex(s, vars, escape, false, 0)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Expands and splits on unquoted whitespace (values of unquoted variables split too).
pub fn expand_words(s: &str, vars: &Vars, escape: char) -> Result<Vec<String>> {
    lex(s, vars, escape, true, 0)
}

/// How deep `${a:-${b:-...}}` may nest. Each level recurses; without a bound a hostile
/// Dockerfile could overflow the stack of the daemon thread parsing it (an abort, not an
/// error). Real Dockerfiles nest two or three levels.
const MAX_NESTING: usize = 64;

fn lex(s: &str, vars: &Vars, escape: char, split: bool, depth: usize) -> Result<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if have {
                words.push(std::mem::take(&mut cur));
                have = false;
            }
            i += 1;
            continue;
        }
        if c == '\'' {
            have = true;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                cur.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(ShellError::UnclosedSingleQuote);
            }
            i += 1;
            continue;
        }
        if c == '"' {
            have = true;
            i += 1;
            loop {
                if i >= chars.len() {
                    return Err(ShellError::UnclosedDoubleQuote);
                }
                let d = chars[i];
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == escape
                    && i + 1 < chars.len()
                    && matches!(chars[i + 1], '"' | '$' | '\\' | '`')
                {
                    cur.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if d == '$' {
                    let (v, n) = dollar(&chars[i..], vars, escape, depth)?;
                    cur.push_str(&v);
                    i += n;
                    continue;
                }
                cur.push(d);
                i += 1;
            }
            continue;
        }
        if c == escape {
            have = true;
            if i + 1 < chars.len() {
                cur.push(chars[i + 1]);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        if c == '$' {
            let (v, n) = dollar(&chars[i..], vars, escape, depth)?;
            i += n;
            if split {
                // An unquoted expansion splits on whitespace like the shell.
                let mut parts = v.split_whitespace().peekable();
                if v.starts_with(char::is_whitespace) && have {
                    words.push(std::mem::take(&mut cur));
                    have = false;
                }
                while let Some(p) = parts.next() {
                    cur.push_str(p);
                    have = true;
                    if parts.peek().is_some() {
                        words.push(std::mem::take(&mut cur));
                    }
                }
                if v.ends_with(char::is_whitespace) && have {
                    words.push(std::mem::take(&mut cur));
                    have = false;
                }
            } else {
                cur.push_str(&v);
                have = true;
            }
            continue;
        }
        cur.push(c);
        have = true;
        i += 1;
    }
    if have || (!split && words.is_empty()) {
        words.push(cur);
    }
    Ok(words)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a `$...` at the start of `s`; returns the value and the characters consumed.
fn dollar(s: &[char], vars: &Vars, escape: char, nesting: usize) -> Result<(String, usize)> {
    debug_assert_eq!(s.first(), Some(&'$'));
    if s.len() < 2 {
        return Ok(("$".into(), 1));
    }
    if s[1] == '{' {
        let mut j = 2;
        let mut depth = 1;
        while j < s.len() {
            match s[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if j >= s.len() {
            return Err(ShellError::MissingBrace);
        }
        let inner: String = s[2..j].iter().collect();
        let name_end = inner
            .find(|c: char| !is_name_char(c))
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        if name.is_empty() {
            return Err(ShellError::BadSubstitution(inner));
        }
        let op = &inner[name_end..];
        let val = vars.get(name);
        let out = if op.is_empty() {
            val.cloned().unwrap_or_default()
        } else {
            let (kind, word) = if let Some(w) = op.strip_prefix(":-") {
                (":-", w)
            } else if let Some(w) = op.strip_prefix(":+") {
                (":+", w)
            } else if let Some(w) = op.strip_prefix(":?") {
                (":?", w)
            } else if let Some(w) = op.strip_prefix('-') {
                ("-", w)
            } else if let Some(w) = op.strip_prefix('+') {
                ("+", w)
            } else if let Some(w) = op.strip_prefix('?') {
                ("?", w)
            } else {
                return Err(ShellError::Modifier(op.to_string()));
            };
            if nesting >= MAX_NESTING {
                return Err(ShellError::TooDeep);
            }
            let word = lex(word, vars, escape, false, nesting + 1)?
                .into_iter()
                .next()
                .unwrap_or_default();
            let set = val.is_some();
            let nonempty = val.is_some_and(|v| !v.is_empty());
            match kind {
                ":-" if nonempty => val.cloned().unwrap_or_default(),
                ":-" => word,
                "-" if set => val.cloned().unwrap_or_default(),
                "-" => word,
                ":+" if nonempty => word,
                ":+" => String::new(),
                "+" if set => word,
                "+" => String::new(),
                ":?" if nonempty => val.cloned().unwrap_or_default(),
                "?" if set => val.cloned().unwrap_or_default(),
                _ => {
                    let message = if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    };
                    return Err(ShellError::Unset {
                        name: name.to_string(),
                        message,
                    });
                }
            }
        };
        return Ok((out, j + 1));
    }
    let mut j = 1;
    while j < s.len() && is_name_char(s[j]) {
        j += 1;
    }
    if j == 1 {
        return Ok(("$".into(), 1));
    }
    let name: String = s[1..j].iter().collect();
    Ok((vars.get(&name).cloned().unwrap_or_default(), j))
}

/// Splits `ENV`/`LABEL` arguments into raw `(key, value)` words, quotes kept in the value
/// (they are removed when the value is expanded). `ENV key value with spaces` (the legacy
/// form) is accepted when `legacy` allows it.
pub fn name_values(s: &str, legacy: bool) -> Result<Vec<(String, String)>> {
    let words = raw_words(s);
    let Some(first) = words.first() else {
        return Err(ShellError::NoArguments);
    };
    if !first.contains('=') {
        if !legacy {
            return Err(ShellError::LabelName(first.clone()));
        }
        let rest = s.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(ShellError::EnvArguments);
        }
        return Ok(vec![(first.clone(), rest.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ShellError::NoEquals(w.clone()));
        };
        if k.is_empty() {
            return Err(ShellError::BlankName);
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
pub fn raw_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match q {
            Some(open) => {
                cur.push(c);
                if c == '\\' && open == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == open {
                    q = None;
                }
            }
            None => {
                if c.is_whitespace() {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                } else {
                    cur.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    } else if c == '"' || c == '\'' {
                        q = Some(c);
                    }
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
