//! A small Go `text/template` engine for `--format` and `inspect -f`, over `serde_json::Value`.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* comments */}}`;
//! fields (`.A.B`), `.`, `$`, variables (`$x := ...`, `range $i, $e := ...`); string, raw string,
//! number, bool and `nil` literals; pipelines with `|`; parenthesized pipelines; `if`/`else if`/
//! `else`, `range` (arrays and maps, with `else`), `with`; and the functions users type with
//! docker: `json`, `join`, `split`, `index`, `len`, `upper`, `lower`, `title`, `println`,
//! `print`, `printf`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or`, `pad`, `truncate`.
//! Values print the way Go prints them: arrays as `[a b]`, maps as `map[k:v]`, null as `<nil>`.
//!
//! Layout: `parse` cuts the source into text and actions and builds the node tree (the types
//! below), using `lex` for the inside of an action; `exec` walks the tree; `funcs` holds the
//! functions and `printf`.

mod exec;
mod funcs;
mod lex;
mod parse;

use serde_json::Value;

use exec::State;
use parse::{parse_nodes, split_pieces, Stop};

pub use exec::go_string;

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

/// Expands the `\t` and `\n` escapes users type in `--format` strings, as docker does.
pub fn unescape_format(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

#[cfg(test)]
mod tests;
