//! Parsing: the template cut into text and actions, actions into pipelines, and the
//! control structures (`if`, `range`, `with`) into a node tree.

use super::funcs::is_function;
use super::lex::{lex_action, Tok};
use super::{err, Node, Pipeline, TemplateError, Term};

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
pub(super) enum Piece {
    Text(String),
    Action(String),
}

pub(super) fn split_pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
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

pub(super) enum Stop {
    End,
    Else(Option<String>),
    Eof,
}

pub(super) fn parse_nodes(
    pieces: &[Piece],
    pos: &mut usize,
) -> Result<(Vec<Node>, Stop), TemplateError> {
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
