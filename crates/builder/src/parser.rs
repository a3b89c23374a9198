//! The Dockerfile parser: text → a list of [`Instruction`]s with their source lines.
//!
//! Follows the Dockerfile frontend's rules:
//! - parser directives (`# syntax=...`, `# escape=...`) are only recognised in the comment
//!   block at the very top, before any instruction, blank line or other comment;
//! - a line ending in the escape character (`\` or `` ` ``) continues on the next line;
//!   comment lines and blank lines inside a continuation are dropped;
//! - instruction names are case-insensitive; `--flag=value` words right after the name are flags;
//! - `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `COPY`, `ADD`, `VOLUME` accept a JSON string array
//!   ("exec form") as well as plain text ("shell form");
//! - `RUN`, `COPY` and `ADD` accept heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`): the lines after
//!   the instruction up to the terminator are the heredoc body, taken verbatim.
//!
//! Variables are not expanded here: that happens when the builder evaluates each instruction
//! (see [`crate::shell`]), because their values depend on `ARG`/`ENV` seen so far.

use std::fmt;

/// A parse failure with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dockerfile parse error on line {}: {}",
            self.line, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Every instruction the builder knows.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The arguments after the instruction name and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// A JSON string array (`["a", "b"]`).
    Json(Vec<String>),
    /// Everything else, continuation-joined, variables unexpanded.
    Shell(String),
}

impl Args {
    /// The text form, as Docker prints it in `Step n/m : ...` and history.
    pub fn text(&self) -> String {
        match self {
            Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
            Args::Shell(s) => s.clone(),
        }
    }
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word (also the file name for `COPY <<EOF /dest`).
    pub name: String,
    /// The body, each line ending in `\n`.
    pub content: String,
    /// `<<"EOF"` / `<<'EOF'`: no variable expansion in the body.
    pub quoted: bool,
    /// `<<-EOF`: leading tabs were stripped from the body and the terminator.
    pub strip_tabs: bool,
}

/// One parsed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased name (`RUN`).
    pub cmd: String,
    /// `--name=value` flags (`--from=build`); a bare `--link` has value `None`.
    pub flags: Vec<(String, Option<String>)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written (continuations joined), for messages and history.
    pub original: String,
}

impl Instruction {
    /// The value of `--name=...`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether `--name` was given (with or without a value).
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == name)
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    /// `# syntax=` directive, when present.
    pub syntax: Option<String>,
    /// The escape character (`\` unless `# escape=` said otherwise).
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<String>,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses the directive comment block at the top; returns (syntax, escape, lines consumed).
fn directives(lines: &[&str]) -> Result<(Option<String>, char, usize), ParseError> {
    let mut syntax = None;
    let mut escape = '\\';
    let mut seen = Vec::new();
    let mut n = 0;
    for (i, raw) in lines.iter().enumerate() {
        let t = raw.trim();
        let Some(body) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        let value = v.trim().to_string();
        match key.as_str() {
            "syntax" | "escape" | "check" => {}
            // Unknown directives end the directive block and are just comments.
            _ => break,
        }
        if seen.contains(&key) {
            return Err(err(
                i + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        seen.push(key.clone());
        match key.as_str() {
            "syntax" => syntax = Some(value),
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(
                            i + 1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                }
            }
            _ => {}
        }
        n = i + 1;
    }
    Ok((syntax, escape, n))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing escape character (after trailing whitespace); `Some(rest)` when the
/// line continues.
fn continues(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end();
    let rest = t.strip_suffix(escape)?;
    Some(rest)
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let (syntax, escape, mut i) = directives(&lines)?;
    let mut df = Dockerfile {
        syntax,
        escape,
        ..Default::default()
    };
    while i < lines.len() {
        let start = i;
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || is_comment(line) {
            continue;
        }
        // Join continuation lines.
        let mut joined = String::new();
        let mut cur = line;
        let mut saw_empty = false;
        loop {
            match continues(cur, escape) {
                Some(rest) => {
                    joined.push_str(rest);
                    // Next meaningful line.
                    let mut next = None;
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        if is_comment(l) {
                            continue;
                        }
                        if l.trim().is_empty() {
                            saw_empty = true;
                            continue;
                        }
                        next = Some(l);
                        break;
                    }
                    match next {
                        Some(l) => cur = l,
                        None => break,
                    }
                }
                None => {
                    joined.push_str(cur);
                    break;
                }
            }
        }
        if saw_empty {
            df.warnings.push(format!(
                "empty continuation line found in instruction starting on line {}",
                start + 1
            ));
        }
        let mut inst = parse_line(&joined, start + 1, escape)?;
        if matches!(inst.cmd.as_str(), "RUN" | "COPY" | "ADD")
            || (inst.cmd == "ONBUILD" && onbuild_allows_heredoc(&inst))
        {
            let specs = heredoc_specs(&inst.args.text());
            for (name, quoted, strip_tabs) in specs {
                let mut content = String::new();
                let mut done = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if cmp == name {
                        done = true;
                        break;
                    }
                    content.push_str(cmp);
                    content.push('\n');
                }
                if !done {
                    return Err(err(
                        start + 1,
                        format!("unterminated heredoc {name}: no line \"{name}\" before the end of the file"),
                    ));
                }
                inst.heredocs.push(Heredoc {
                    name,
                    content,
                    quoted,
                    strip_tabs,
                });
            }
        }
        df.instructions.push(inst);
    }
    check_structure(&df)?;
    Ok(df)
}

fn onbuild_allows_heredoc(inst: &Instruction) -> bool {
    let t = inst.args.text();
    let first = t
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(first.as_str(), "RUN" | "COPY" | "ADD")
}

/// Finds `<<WORD`, `<<-WORD`, `<<"WORD"`, `<<'WORD'` in a command line, in order.
/// `<<<` (a here-string) is not a heredoc.
pub fn heredoc_specs(s: &str) -> Vec<(String, bool, bool)> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_single = false;
    let mut in_double = false;
    while i < b.len() {
        let c = b[i];
        if c == '\'' && !in_double {
            in_single = !in_single;
            i += 1;
            continue;
        }
        if c == '"' && !in_single {
            in_double = !in_double;
            i += 1;
            continue;
        }
        if in_single || in_double || c != '<' || i + 1 >= b.len() || b[i + 1] != '<' {
            i += 1;
            continue;
        }
        if i + 2 < b.len() && b[i + 2] == '<' {
            i += 3;
            continue;
        }
        let mut j = i + 2;
        let strip = j < b.len() && b[j] == '-';
        if strip {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(q @ ('"' | '\'')) => Some(*q),
            _ => None,
        };
        if quote.is_some() {
            j += 1;
        }
        let ws = j;
        while j < b.len()
            && (b[j].is_ascii_alphanumeric() || b[j] == '_' || b[j] == '.' || b[j] == '-')
        {
            j += 1;
        }
        let word: String = b[ws..j].iter().collect();
        if let Some(q) = quote {
            if b.get(j) != Some(&q) {
                i = j;
                continue;
            }
            j += 1;
        }
        if !word.is_empty() {
            out.push((word, quote.is_some(), strip));
        }
        i = j;
    }
    out
}

/// Splits one logical line into name, flags and args.
pub fn parse_line(line: &str, lineno: usize, escape: char) -> Result<Instruction, ParseError> {
    let trimmed = line.trim();
    let (name, rest) = match trimmed.find(char::is_whitespace) {
        Some(p) => (&trimmed[..p], trimmed[p..].trim_start()),
        None => (trimmed, ""),
    };
    let cmd = name.to_ascii_uppercase();
    if !INSTRUCTIONS.contains(&cmd.as_str()) {
        return Err(err(lineno, format!("unknown instruction: {name}")));
    }
    // Flags: leading `--x` words (not for ONBUILD, whose flags belong to the inner instruction).
    let mut flags = Vec::new();
    let mut rest = rest;
    if cmd != "ONBUILD" {
        while let Some(after) = rest.strip_prefix("--") {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            let word = &after[..end];
            if word.is_empty() {
                break;
            }
            let (k, v) = match word.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (word.to_string(), None),
            };
            flags.push((k, v));
            rest = after[end..].trim_start();
        }
    }
    let json_ok = matches!(
        cmd.as_str(),
        "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "COPY" | "ADD" | "VOLUME"
    );
    let args = if json_ok && rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => Args::Json(v),
            Err(_) => Args::Shell(rest.to_string()),
        }
    } else {
        Args::Shell(rest.to_string())
    };
    let _ = escape;
    let inst = Instruction {
        cmd: cmd.clone(),
        flags,
        args,
        heredocs: Vec::new(),
        line: lineno,
        original: trimmed.to_string(),
    };
    validate(&inst)?;
    Ok(inst)
}

fn validate(inst: &Instruction) -> Result<(), ParseError> {
    let line = inst.line;
    let empty = match &inst.args {
        Args::Json(v) => v.is_empty(),
        Args::Shell(s) => s.trim().is_empty(),
    };
    match inst.cmd.as_str() {
        "CMD" | "ENTRYPOINT" | "RUN" if empty && matches!(inst.args, Args::Shell(_)) => {
            if inst.cmd == "RUN" {
                return Err(err(line, "RUN requires at least one argument"));
            }
            Ok(())
        }
        "SHELL" => match &inst.args {
            Args::Json(v) if !v.is_empty() => Ok(()),
            _ => Err(err(line, "SHELL requires the arguments to be in JSON form")),
        },
        "COPY" | "ADD" => {
            let n = match &inst.args {
                Args::Json(v) => v.len(),
                Args::Shell(s) => s.split_whitespace().count(),
            };
            let heredocs = heredoc_specs(&inst.args.text()).len();
            if n < 2 && heredocs == 0 {
                Err(err(line, format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", inst.cmd)))
            } else {
                Ok(())
            }
        }
        "FROM" => {
            let words: Vec<&str> = match &inst.args {
                Args::Shell(s) => s.split_whitespace().collect(),
                Args::Json(_) => Vec::new(),
            };
            match words.len() {
                1 => Ok(()),
                3 if words[1].eq_ignore_ascii_case("as") => Ok(()),
                _ => Err(err(line, "FROM requires either one or three arguments")),
            }
        }
        "ONBUILD" => {
            let t = inst.args.text();
            let inner = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match inner.as_str() {
                "" => Err(err(line, "ONBUILD requires at least one argument")),
                "ONBUILD" => Err(err(
                    line,
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                )),
                "FROM" | "MAINTAINER" => Err(err(
                    line,
                    format!("{inner} isn't allowed as an ONBUILD trigger"),
                )),
                _ => parse_line(&t, line, '\\').map(|_| ()),
            }
        }
        "HEALTHCHECK" => {
            let t = inst.args.text();
            let first = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match first.as_str() {
                "NONE" | "CMD" => Ok(()),
                _ => Err(err(line, "HEALTHCHECK requires CMD or NONE")),
            }
        }
        "ARG" | "ENV" | "LABEL" | "EXPOSE" | "USER" | "WORKDIR" | "VOLUME" | "STOPSIGNAL"
        | "MAINTAINER"
            if empty =>
        {
            Err(err(
                line,
                format!("{} requires at least one argument", inst.cmd),
            ))
        }
        "ENV" | "LABEL" => crate::shell::name_values(&inst.args.text(), inst.cmd == "ENV")
            .map(|_| ())
            .map_err(|e| err(line, e.to_string())),
        _ => Ok(()),
    }
}

/// Whole-file checks: instructions other than `ARG` need a preceding `FROM`.
fn check_structure(df: &Dockerfile) -> Result<(), ParseError> {
    let mut seen_from = false;
    for inst in &df.instructions {
        match inst.cmd.as_str() {
            "FROM" => seen_from = true,
            "ARG" => {}
            _ if !seen_from => {
                return Err(err(
                    inst.line,
                    format!(
                        "no build stage in current context: {} must come after FROM",
                        inst.cmd
                    ),
                ))
            }
            _ => {}
        }
    }
    if df.instructions.is_empty() {
        return Err(err(1, "the Dockerfile cannot be empty"));
    }
    if !seen_from {
        return Err(err(1, "no build stage in current context"));
    }
    Ok(())
}
