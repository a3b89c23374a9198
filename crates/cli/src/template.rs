//! A small Go `text/template` engine for `--format` and `inspect -f`, over `serde_json::Value`.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* comments */}}`;
//! fields (`.A.B`), `.`, `$`, variables (`$x := ...`, `range $i, $e := ...`); string, raw string,
//! number, bool and `nil` literals; pipelines with `|`; parenthesized pipelines; `if`/`else if`/
//! `else`, `range` (arrays and maps, with `else`), `with`; and the functions users type with
//! docker: `json`, `join`, `split`, `index`, `len`, `upper`, `lower`, `title`, `println`,
//! `print`, `printf`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or`, `pad`, `truncate`.
//! Values print the way Go prints them: arrays as `[a b]`, maps as `map[k:v]`, null as `<nil>`.

use serde_json::Value;
use std::fmt::Write as _;

/// A parse or execution error; the message follows Go's wording where it matters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        els: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// Variables declared by `$x :=` (or `$i, $e :=` in range).
    decl: Vec<String>,
    /// True for `$x = ...` (assignment to an existing variable).
    assign: bool,
    cmds: Vec<Vec<Term>>,
    text: String,
}

#[derive(Debug, Clone)]
enum Term {
    /// `.A.B` (empty for `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` is the root).
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Bool(bool),
    Nil,
    Ident(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipeline>, Vec<String>),
}

// ---------------------------------------------------------------- lexing of actions

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

fn lex_action(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    // Reads `.A.B` chains starting at a '.'.
    let read_fields = |i: &mut usize| -> Vec<String> {
        let mut fields = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            if j == start {
                break;
            }
            fields.push(chars[start..j].iter().collect());
            *i = j;
        }
        fields
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                if i < chars.len() && chars[i] == '.' {
                    let f = read_fields(&mut i);
                    out.push(Tok::Field(f));
                }
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '.' => {
                if chars.get(i + 1).is_some_and(|c| ident_char(*c)) {
                    let f = read_fields(&mut i);
                    out.push(Tok::Field(f));
                } else {
                    out.push(Tok::Field(Vec::new()));
                    i += 1;
                }
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let f = read_fields(&mut i);
                out.push(Tok::Var(name, f));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return err("unterminated quoted string");
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return err("unterminated quoted string");
                            };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return err("unterminated raw quoted string");
                }
                out.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let v = if let Ok(n) = s.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(f) = s.parse::<f64>() {
                    Value::from(f)
                } else {
                    return err(format!("bad number syntax: {s:?}"));
                };
                out.push(Tok::Num(v));
            }
            c if ident_char(c) => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- parsing

struct TokParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl TokParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn pipeline(&mut self, text: &str, allow_decl: bool) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        if allow_decl {
            // `$x :=`, `$i, $e :=`, `$x =`
            let save = self.pos;
            let mut names = Vec::new();
            while let Some(Tok::Var(name, f)) = self.peek().cloned() {
                if !f.is_empty() {
                    break;
                }
                names.push(name);
                self.pos += 1;
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            match self.peek() {
                Some(Tok::Declare) if !names.is_empty() => {
                    self.pos += 1;
                    decl = names;
                }
                Some(Tok::Assign) if names.len() == 1 => {
                    self.pos += 1;
                    decl = names;
                    assign = true;
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut terms = Vec::new();
            while let Some(t) = self.peek().cloned() {
                match t {
                    Tok::Pipe | Tok::RParen => break,
                    _ => {
                        self.pos += 1;
                        terms.push(self.term(t, text)?);
                    }
                }
            }
            if terms.is_empty() {
                return err(format!("missing value for command in {text:?}"));
            }
            cmds.push(terms);
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
                continue;
            }
            break;
        }
        Ok(Pipeline {
            decl,
            assign,
            cmds,
            text: text.to_string(),
        })
    }

    fn term(&mut self, t: Tok, text: &str) -> Result<Term, TemplateError> {
        Ok(match t {
            Tok::Field(f) => Term::Field(f),
            Tok::Var(n, f) => Term::Var(n, f),
            Tok::Str(s) => Term::Str(s),
            Tok::Num(n) => Term::Num(n),
            Tok::Ident(id) => match id.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ => {
                    if !is_function(&id) {
                        return err(format!("function {id:?} not defined"));
                    }
                    Term::Ident(id)
                }
            },
            Tok::LParen => {
                let p = self.pipeline(text, false)?;
                if self.peek() != Some(&Tok::RParen) {
                    return err("unclosed left paren");
                }
                self.pos += 1;
                let fields = match self.peek() {
                    Some(Tok::Field(f)) if !f.is_empty() => {
                        let f = f.clone();
                        self.pos += 1;
                        f
                    }
                    _ => Vec::new(),
                };
                Term::Sub(Box::new(p), fields)
            }
            other => return err(format!("unexpected {other:?} in operand")),
        })
    }
}

fn parse_pipeline(src: &str, allow_decl: bool) -> Result<Pipeline, TemplateError> {
    let toks = lex_action(src)?;
    let mut p = TokParser { toks, pos: 0 };
    let pipe = p.pipeline(src.trim(), allow_decl)?;
    if p.pos != p.toks.len() {
        return err(format!("unexpected {:?} in command", p.toks[p.pos]));
    }
    Ok(pipe)
}

/// A raw piece of the template: literal text or the inside of an action.
#[derive(Debug)]
enum Piece {
    Text(String),
    Action(String),
}

fn split_pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next_text {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let (trim_left, after) = match after.strip_prefix("- ") {
            Some(a) => (true, a),
            None => match after
                .strip_prefix("-\t")
                .or_else(|| after.strip_prefix("-\n"))
            {
                Some(a) => (true, a),
                None => (false, after),
            },
        };
        if trim_left {
            text = text.trim_end().to_string();
        }
        pieces.push(Piece::Text(text));
        let end = find_action_end(after).ok_or_else(|| TemplateError("unclosed action".into()))?;
        let mut inner = &after[..end];
        let mut close_len = 2;
        trim_next_text = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next_text = true;
        } else if inner == "-" {
            inner = "";
        }
        let _ = &mut close_len;
        pieces.push(Piece::Action(inner.to_string()));
        rest = &after[end + close_len..];
    }
    let mut text = rest.to_string();
    if trim_next_text {
        text = text.trim_start().to_string();
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// Finds the closing `}}` of an action, skipping quoted strings.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

enum Stop {
    End,
    Else(Option<String>),
    Eof,
}

fn parse_nodes(pieces: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < pieces.len() {
        let piece = &pieces[*pos];
        *pos += 1;
        match piece {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t.clone()));
                }
            }
            Piece::Action(a) => {
                let a = a.trim();
                if a.starts_with("/*") {
                    if !a.ends_with("*/") {
                        return err("unclosed comment");
                    }
                    continue;
                }
                let (kw, rest) = match a.find(|c: char| c.is_whitespace()) {
                    Some(i) => (&a[..i], a[i..].trim()),
                    None => (a, ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => {
                        let cond = rest.strip_prefix("if").map(|r| r.trim().to_string());
                        return Ok((nodes, Stop::Else(cond)));
                    }
                    "if" => nodes.push(parse_if(rest, pieces, pos)?),
                    "range" | "with" => {
                        let pipe = parse_pipeline(rest, kw == "range")?;
                        let (body, stop) = parse_nodes(pieces, pos)?;
                        let els = match stop {
                            Stop::End => Vec::new(),
                            Stop::Else(None) => {
                                let (els, stop) = parse_nodes(pieces, pos)?;
                                if !matches!(stop, Stop::End) {
                                    return err(format!("unexpected EOF in {kw}"));
                                }
                                els
                            }
                            Stop::Else(Some(_)) => return err(format!("else if in {kw}")),
                            Stop::Eof => return err(format!("unexpected EOF in {kw}")),
                        };
                        nodes.push(if kw == "range" {
                            Node::Range { pipe, body, els }
                        } else {
                            Node::With { pipe, body, els }
                        });
                    }
                    "" => return err("missing value for command"),
                    _ => nodes.push(Node::Action(parse_pipeline(a, true)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_if(cond_src: &str, pieces: &[Piece], pos: &mut usize) -> Result<Node, TemplateError> {
    let cond = parse_pipeline(cond_src, true)?;
    let (then, stop) = parse_nodes(pieces, pos)?;
    let els = match stop {
        Stop::End => Vec::new(),
        Stop::Else(None) => {
            let (els, stop) = parse_nodes(pieces, pos)?;
            if !matches!(stop, Stop::End) {
                return err("unexpected EOF in if");
            }
            els
        }
        // `else if` shares the outer `end`.
        Stop::Else(Some(c)) => vec![parse_if(&c, pieces, pos)?],
        Stop::Eof => return err("unexpected EOF in if"),
    };
    Ok(Node::If { cond, then, els })
}

impl Template {
    /// Parses a template.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let pieces =
            split_pieces(src).map_err(|e| TemplateError(format!("template: :1: {}", e.0)))?;
        let mut pos = 0;
        let (nodes, stop) = parse_nodes(&pieces, &mut pos)
            .map_err(|e| TemplateError(format!("template: :1: {}", e.0)))?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => err("template: :1: unexpected {{end}}"),
            Stop::Else(_) => err("template: :1: unexpected {{else}}"),
        }
    }

    /// Executes the template with `data` as `.`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut st = State {
            vars: vec![("$".to_string(), data.clone())],
        };
        st.walk(&self.nodes, data, &mut out)
            .map_err(|e| TemplateError(format!("template: :1: executing \"\" at {}", e.0)))?;
        Ok(out)
    }
}

// ---------------------------------------------------------------- execution

struct State {
    vars: Vec<(String, Value)>,
}

impl State {
    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        match (&v, last_field(p)) {
                            (Value::Null, Some(name)) => out.push_str(null_as(name)),
                            _ => out.push_str(&go_string(&v)),
                        }
                    }
                }
                Node::If { cond, then, els } => {
                    let mark = self.vars.len();
                    let v = self.pipeline(cond, dot)?;
                    if truthy(&v) {
                        self.walk(then, dot, out)?;
                    } else {
                        self.walk(els, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With { pipe, body, els } => {
                    let mark = self.vars.len();
                    let v = self.pipeline(pipe, dot)?;
                    if truthy(&v) {
                        self.walk(body, &v, out)?;
                    } else {
                        self.walk(els, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range { pipe, body, els } => {
                    let mark = self.vars.len();
                    let mut p = pipe.clone();
                    let decl = std::mem::take(&mut p.decl);
                    let v = self.pipeline(&p, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(m) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::from(k.clone()), m[k].clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => {
                            return err(format!(
                                "<{}>: range can't iterate over {}",
                                pipe.text,
                                go_string(other)
                            ))
                        }
                    };
                    if items.is_empty() {
                        self.walk(els, dot, out)?;
                    }
                    for (k, item) in items {
                        let inner = self.vars.len();
                        match decl.len() {
                            0 => {}
                            1 => self.vars.push((decl[0].clone(), item.clone())),
                            _ => {
                                self.vars.push((decl[0].clone(), k));
                                self.vars.push((decl[1].clone(), item.clone()));
                            }
                        }
                        self.walk(body, &item, out)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.command(cmd, dot, piped, &p.text)?);
        }
        let v = piped.unwrap_or(Value::Null);
        if !p.decl.is_empty() {
            if p.assign {
                let name = &p.decl[0];
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return err(format!("<{}>: undefined variable: {name}", p.text)),
                }
            } else {
                self.vars.push((p.decl[0].clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        terms: &[Term],
        dot: &Value,
        piped: Option<Value>,
        text: &str,
    ) -> Result<Value, TemplateError> {
        if let Term::Ident(name) = &terms[0] {
            let mut args = Vec::new();
            for t in &terms[1..] {
                args.push(self.term(t, dot, text)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return call(name, args)
                .map_err(|e| TemplateError(format!("<{text}>: error calling {name}: {}", e.0)));
        }
        if terms.len() > 1 || piped.is_some() {
            return err(format!(
                "<{text}>: can't give argument to non-function {}",
                term_text(&terms[0])
            ));
        }
        self.term(&terms[0], dot, text)
    }

    fn term(&mut self, t: &Term, dot: &Value, text: &str) -> Result<Value, TemplateError> {
        match t {
            Term::Field(f) => fields(dot, f, text),
            Term::Var(name, f) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        TemplateError(format!("<{text}>: undefined variable: {name}"))
                    })?;
                fields(&v, f, text)
            }
            Term::Str(s) => Ok(Value::String(s.clone())),
            Term::Num(n) => Ok(n.clone()),
            Term::Bool(b) => Ok(Value::Bool(*b)),
            Term::Nil => Ok(Value::Null),
            Term::Ident(name) => call(name, Vec::new())
                .map_err(|e| TemplateError(format!("<{text}>: error calling {name}: {}", e.0))),
            Term::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                fields(&v, f, text)
            }
        }
    }
}

/// The last field name of a pipeline that is just a field reference (`.HostConfig.CapAdd`).
fn last_field(p: &Pipeline) -> Option<&str> {
    match p.cmds.as_slice() {
        [cmd] => match cmd.as_slice() {
            [Term::Field(f)] | [Term::Var(_, f)] => f.last().map(String::as_str),
            _ => None,
        },
        _ => None,
    }
}

/// How Go prints a nil field of docker's typed structs: nil slices as `[]`, nil maps as `map[]`,
/// nil pointers as `<nil>`. JSON only says `null`, so the field name decides.
fn null_as(field: &str) -> &'static str {
    const MAPS: &[&str] = &[
        "Labels",
        "Volumes",
        "ExposedPorts",
        "Sysctls",
        "Tmpfs",
        "PortBindings",
        "Ports",
        "Options",
        "DriverOpts",
        "StorageOpt",
        "Config",
        "Data",
        "Networks",
        "Annotations",
    ];
    const POINTERS: &[&str] = &[
        "Health",
        "Healthcheck",
        "IPAMConfig",
        "Init",
        "OomKillDisable",
        "PidsLimit",
        "MemorySwappiness",
        "Error",
        "Metadata",
        "GraphDriver",
        "RootFS",
        "ContainerConfig",
        "Platform",
        "Descriptor",
        "ImageManifestDescriptor",
        "EndpointSettings",
        "NetworkSettings",
        "Node",
        "State",
    ];
    if MAPS.contains(&field) {
        "map[]"
    } else if POINTERS.contains(&field) {
        "<nil>"
    } else {
        "[]"
    }
}

fn term_text(t: &Term) -> String {
    match t {
        Term::Field(f) => format!(".{}", f.join(".")),
        Term::Var(n, f) if f.is_empty() => n.clone(),
        Term::Var(n, f) => format!("{n}.{}", f.join(".")),
        Term::Str(s) => format!("{s:?}"),
        Term::Num(n) => n.to_string(),
        Term::Bool(b) => b.to_string(),
        Term::Nil => "nil".into(),
        Term::Ident(i) => i.clone(),
        Term::Sub(..) => "(...)".into(),
    }
}

fn fields(v: &Value, path: &[String], text: &str) -> Result<Value, TemplateError> {
    let mut cur = v;
    for (i, name) in path.iter().enumerate() {
        let shown = format!(".{}", path[..=i].join("."));
        cur = match cur {
            Value::Object(m) => match m.get(name) {
                Some(x) => x,
                None => return err(format!("<{shown}>: map has no entry for key {name:?}")),
            },
            Value::Null => {
                return err(format!(
                    "<{shown}>: nil pointer evaluating interface {{}}.{name}"
                ))
            }
            other => {
                return err(format!(
                    "<{shown}>: can't evaluate field {name} in type {}",
                    go_type(other)
                ))
            }
        };
    }
    let _ = text;
    Ok(cur.clone())
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's truthiness: false, 0, "", nil and empty collections are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Formats a value as Go's `fmt` `%v` does.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_string(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

const FUNCTIONS: &[&str] = &[
    "json", "join", "split", "index", "len", "upper", "lower", "title", "println", "print",
    "printf", "eq", "ne", "lt", "le", "gt", "ge", "not", "and", "or", "pad", "truncate", "slice",
    "html", "urlquery",
];

fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn want(args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return err(format!("wrong number of args: want {n} got {}", args.len()));
    }
    Ok(())
}

fn as_str(v: &Value) -> String {
    go_string(v)
}

fn as_int(v: &Value) -> Result<i64, TemplateError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| TemplateError("bad number".into())),
        Value::String(s) => s
            .parse()
            .map_err(|_| TemplateError(format!("{s:?} is not an integer"))),
        other => err(format!("can't use {} as an integer", go_string(other))),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y)
                .ok_or_else(|| TemplateError("incomparable numbers".into()))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => err("incompatible types for comparison"),
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    use std::cmp::Ordering::*;
    Ok(match name {
        "json" => {
            want(&args, 1)?;
            // Go's encoding/json escapes HTML characters; docker's `json` function keeps that.
            let s = serde_json::to_string(&args[0]).map_err(|e| TemplateError(e.to_string()))?;
            Value::String(
                s.replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026"),
            )
        }
        "join" => {
            want(&args, 2)?;
            let parts: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect(),
                Value::Null => Vec::new(),
                other => return err(format!("can't join {}", go_string(other))),
            };
            Value::String(parts.join(&as_str(&args[1])))
        }
        "split" => {
            want(&args, 2)?;
            let s = as_str(&args[0]);
            let sep = as_str(&args[1]);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Value::Array(parts)
        }
        "index" => {
            if args.is_empty() {
                return err("wrong number of args for index: want at least 1 got 0");
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(m), k) => m
                        .get(&as_str(k))
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                    (Value::Array(a), k) => {
                        let i = as_int(k)?;
                        if i < 0 || i as usize >= a.len() {
                            return err(format!("index out of range: {i}"));
                        }
                        a[i as usize].clone()
                    }
                    (Value::Null, _) => Value::String(String::new()),
                    (other, _) => {
                        return err(format!("can't index item of type {}", go_type(other)))
                    }
                };
            }
            cur
        }
        "slice" => {
            if args.is_empty() {
                return err("wrong number of args for slice");
            }
            match &args[0] {
                Value::String(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let a = args.get(1).map(as_int).transpose()?.unwrap_or(0).max(0) as usize;
                    let b = args
                        .get(2)
                        .map(as_int)
                        .transpose()?
                        .map(|b| b as usize)
                        .unwrap_or(chars.len());
                    if a > b || b > chars.len() {
                        return err("slice index out of range");
                    }
                    Value::String(chars[a..b].iter().collect())
                }
                Value::Array(arr) => {
                    let a = args.get(1).map(as_int).transpose()?.unwrap_or(0).max(0) as usize;
                    let b = args
                        .get(2)
                        .map(as_int)
                        .transpose()?
                        .map(|b| b as usize)
                        .unwrap_or(arr.len());
                    if a > b || b > arr.len() {
                        return err("slice index out of range");
                    }
                    Value::Array(arr[a..b].to_vec())
                }
                other => return err(format!("can't slice item of type {}", go_type(other))),
            }
        }
        "len" => {
            want(&args, 1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return err(format!("len of type {}", go_type(other))),
            })
        }
        "upper" => {
            want(&args, 1)?;
            Value::String(as_str(&args[0]).to_uppercase())
        }
        "lower" => {
            want(&args, 1)?;
            Value::String(as_str(&args[0]).to_lowercase())
        }
        "title" => {
            want(&args, 1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::String(out)
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(as_str).collect::<Vec<_>>().join(" ")
        )),
        "print" => {
            // Go's Sprint adds spaces between operands when neither is a string.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 && !args[i - 1].is_string() && !a.is_string() {
                    out.push(' ');
                }
                out.push_str(&as_str(a));
            }
            Value::String(out)
        }
        "printf" => {
            if args.is_empty() {
                return err("wrong number of args for printf");
            }
            Value::String(sprintf(&as_str(&args[0]), &args[1..]))
        }
        "html" | "urlquery" => Value::String(args.iter().map(as_str).collect::<Vec<_>>().join("")),
        "eq" => {
            if args.len() < 2 {
                return err("missing argument for comparison");
            }
            let first = &args[0];
            Value::Bool(args[1..].iter().any(|b| match (first, b) {
                (Value::Number(_), Value::Number(_)) => {
                    compare(first, b).map(|o| o == Equal).unwrap_or(false)
                }
                _ => first == b,
            }))
        }
        "ne" => {
            want(&args, 2)?;
            Value::Bool(match (&args[0], &args[1]) {
                (Value::Number(_), Value::Number(_)) => compare(&args[0], &args[1])? != Equal,
                (a, b) => a != b,
            })
        }
        "lt" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? == Less)
        }
        "le" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? != Greater)
        }
        "gt" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? == Greater)
        }
        "ge" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? != Less)
        }
        "not" => {
            want(&args, 1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => {
            if args.is_empty() {
                return err("wrong number of args for and");
            }
            args.iter()
                .find(|a| !truthy(a))
                .cloned()
                .unwrap_or_else(|| args[args.len() - 1].clone())
        }
        "or" => {
            if args.is_empty() {
                return err("wrong number of args for or");
            }
            args.iter()
                .find(|a| truthy(a))
                .cloned()
                .unwrap_or_else(|| args[args.len() - 1].clone())
        }
        "pad" => {
            want(&args, 3)?;
            let l = as_int(&args[1])?.max(0) as usize;
            let r = as_int(&args[2])?.max(0) as usize;
            Value::String(format!(
                "{}{}{}",
                " ".repeat(l),
                as_str(&args[0]),
                " ".repeat(r)
            ))
        }
        "truncate" => {
            want(&args, 2)?;
            let s = as_str(&args[0]);
            let n = as_int(&args[1])?.max(0) as usize;
            Value::String(s.chars().take(n).collect())
        }
        other => return err(format!("function {other:?} not defined")),
    })
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d q t x f %` with flags `-`, `0` and a width.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let s = match verb {
            'q' => serde_json::to_string(&as_str(arg)).unwrap_or_default(),
            'd' => as_int(arg)
                .map(|i| i.to_string())
                .unwrap_or_else(|_| format!("%!d({})", as_str(arg))),
            'x' => as_int(arg)
                .map(|i| format!("{i:x}"))
                .unwrap_or_else(|_| as_str(arg).bytes().map(|b| format!("{b:02x}")).collect()),
            'f' => {
                let f = arg.as_f64().unwrap_or(0.0);
                format!("{f:.*}", prec.unwrap_or(6))
            }
            _ => {
                let s = as_str(arg);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len >= w {
            out.push_str(&s);
        } else if left {
            out.push_str(&s);
            out.push_str(&" ".repeat(w - len));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(w - len));
            out.push_str(&s);
        }
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        let _ = write!(
            out,
            "%!(EXTRA {})",
            extra
                .iter()
                .map(|v| as_str(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// Expands the `\t` and `\n` escapes users type in `--format` strings, as docker does.
pub fn unescape_format(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    fn inspect() -> Value {
        json!({
            "Id": "abc",
            "State": {"Status": "exited", "ExitCode": 0, "Running": false, "Pid": 0},
            "Config": {"User": "", "Labels": {"k": "v", "a.b": "c"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": null},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "zz": {"IPAddress": "10.0.0.2"}}},
            "Mounts": [],
            "Size": 1.5,
        })
    }

    #[test]
    fn fields_and_zero_values() {
        let v = inspect();
        assert_eq!(
            r("{{.State.Status}} {{.Config.User}} {{.State.ExitCode}}", &v),
            "exited  0"
        );
        assert_eq!(r("{{.Id}}", &v), "abc");
        assert_eq!(r("{{.State.Running}}", &v), "false");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c echo hi]");
        assert_eq!(r("{{.Config.Entrypoint}}", &v), "[]");
        assert_eq!(
            r("{{.State.Health}}", &json!({"State": {"Health": null}})),
            "<nil>"
        );
        assert_eq!(
            r("{{.Config.Labels}}", &json!({"Config": {"Labels": null}})),
            "map[]"
        );
        assert_eq!(r("{{json .Config.Entrypoint}}", &v), "null");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a.b:c k:v]");
        assert_eq!(r("{{.Size}}", &v), "1.5");
        assert_eq!(r("plain text", &v), "plain text");
        assert_eq!(r("{{.}}", &json!("x")), "x");
    }

    #[test]
    fn missing_key_is_an_error() {
        let t = Template::parse("{{.Config.Nope}}").unwrap();
        let e = t.render(&inspect()).unwrap_err();
        assert!(e.0.contains("map has no entry for key \"Nope\""), "{e}");
        let e = Template::parse("{{.State.Status.X}}")
            .unwrap()
            .render(&inspect())
            .unwrap_err();
        assert!(e.0.contains("can't evaluate field X"), "{e}");
    }

    #[test]
    fn functions() {
        let v = inspect();
        assert_eq!(r(r#"{{index .Config.Labels "k"}}"#, &v), "v");
        assert_eq!(r(r#"{{index .Config.Labels "a.b"}}"#, &v), "c");
        assert_eq!(r(r#"{{index .Config.Labels "missing"}}"#, &v), "");
        assert_eq!(r("{{index .Config.Cmd 1}}", &v), "-c");
        assert_eq!(r(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
        assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a.b":"c","k":"v"}"#);
        assert_eq!(r("{{json .Mounts}}", &v), "[]");
        assert_eq!(
            r("{{json .}}", &json!({"D": "<none>&"})),
            r#"{"D":"\u003cnone\u003e\u0026"}"#
        );
        assert_eq!(r("{{json .Config.Entrypoint}}", &v), "null");
        assert_eq!(r("{{upper .State.Status}}", &v), "EXITED");
        assert_eq!(r("{{.State.Status | upper}}", &v), "EXITED");
        assert_eq!(r("{{lower \"ABC\"}}", &v), "abc");
        assert_eq!(r("{{title \"hello world\"}}", &v), "Hello World");
        assert_eq!(r("{{len .Config.Env}}", &v), "2");
        assert_eq!(r(r#"{{split "a:b:c" ":"}}"#, &v), "[a b c]");
        assert_eq!(r(r#"{{join (split "a:b" ":") "-"}}"#, &v), "a-b");
        assert_eq!(
            r(r#"{{printf "%s-%d|%-5s|%5s|" "x" 3 "ab" "cd"}}"#, &v),
            "x-3|ab   |   cd|"
        );
        assert_eq!(r(r#"{{printf "%q" .Id}}"#, &v), "\"abc\"");
        assert_eq!(r(r#"{{truncate .Id 2}}"#, &v), "ab");
        assert_eq!(r(r#"{{pad .Id 1 2}}|"#, &v), " abc  |");
        assert_eq!(r("{{println .Id}}{{println}}", &v), "abc\n\n");
        assert_eq!(r("{{println .Id .State.ExitCode}}", &v), "abc 0\n");
        assert_eq!(r("{{print 1 2 \"a\" \"b\"}}", &v), "1 2ab");
        assert_eq!(
            r(
                "{{eq .State.Status \"exited\"}} {{ne .State.ExitCode 0}}",
                &v
            ),
            "true false"
        );
        assert_eq!(
            r(
                "{{if and .State.Running (eq .State.Pid 0)}}y{{else}}n{{end}}",
                &v
            ),
            "n"
        );
        assert_eq!(r("{{or .Config.User \"root\"}}", &v), "root");
        assert_eq!(r("{{not .State.Running}}", &v), "true");
        assert_eq!(r("{{gt (len .Config.Env) 1}}", &v), "true");
        assert_eq!(r("{{slice .Id 1}}", &v), "bc");
    }

    #[test]
    fn range_if_with_and_variables() {
        let v = inspect();
        assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}", &v), "[A=1][B=2]");
        assert_eq!(
            r("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", &v),
            "0=A=1 1=B=2 "
        );
        assert_eq!(
            r(
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}};{{end}}",
                &v
            ),
            "bridge:172.17.0.2;zz:10.0.0.2;"
        );
        assert_eq!(
            r(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &v
            ),
            "172.17.0.210.0.0.2"
        );
        assert_eq!(r("{{range .Mounts}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(r("{{range .Config.Env}}{{$.Id}}{{end}}", &v), "abcabc");
        assert_eq!(
            r(
                "{{if .Config.User}}u{{else if .State.Running}}r{{else}}other{{end}}",
                &v
            ),
            "other"
        );
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}", &v), "exited");
        assert_eq!(r("{{with .Config.User}}x{{else}}empty{{end}}", &v), "empty");
        assert_eq!(r("{{$x := .Id}}{{$x}}-{{$x = \"y\"}}{{$x}}", &v), "abc-y");
        assert_eq!(r("{{/* a comment */}}ok", &v), "ok");
    }

    #[test]
    fn trim_markers() {
        let v = inspect();
        assert_eq!(r("a  {{- .Id -}}  b", &v), "aabcb");
        assert_eq!(
            r("{{range .Config.Env -}}\n  {{.}}\n{{- end}}", &v),
            "A=1B=2"
        );
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.Id").is_err());
        assert!(Template::parse("{{if .Id}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let e = Template::parse("{{nosuch .Id}}").unwrap_err();
        assert!(e.0.contains("function \"nosuch\" not defined"), "{e}");
        assert!(Template::parse(r#"{{"unterminated}}"#).is_err());
    }

    #[test]
    fn strings_with_braces_and_escapes() {
        let v = json!({"A": "x"});
        assert_eq!(r(r#"{{"}}"}}{{.A}}"#, &v), "}}x");
        assert_eq!(r(r#"{{"a\tb"}}"#, &v), "a\tb");
        assert_eq!(r("{{`raw\\n`}}", &v), "raw\\n");
    }

    #[test]
    fn unescapes_format_tabs() {
        assert_eq!(
            unescape_format(r"{{.ID}}\t{{.Names}}\n"),
            "{{.ID}}\t{{.Names}}\n"
        );
    }
}
