//! Executing the node tree over a `serde_json::Value`, printing values the way Go does.

use serde_json::Value;

use super::funcs::call;
use super::{err, Node, Pipeline, TemplateError, Term};

pub(super) struct State {
    pub(super) vars: Vec<(String, Value)>,
}

impl State {
    pub(super) fn walk(
        &mut self,
        nodes: &[Node],
        dot: &Value,
        out: &mut String,
    ) -> Result<(), TemplateError> {
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

pub(super) fn go_type(v: &Value) -> &'static str {
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
